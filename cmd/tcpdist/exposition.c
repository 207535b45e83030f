/* The metrics as text: Prometheus's exposition format 0.0.4, built from the
 * workers' own counters and the backends' atomics, read without locks.
 * metrics.c serves it over HTTP. The names and their HAProxy counterparts
 * are in tcpdist(1), METRICS. */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "tcpdist.h"

void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		if (b->oom)
			return;
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 16384;
		while (cap <= b->len + (size_t)n)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (p == NULL) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

static void header(struct sbuf *b, const char *name, const char *type, const char *help)
{
	sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static unsigned long long load(const atomic_ullong *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

/* Clients turned away before a backend was chosen, PROXY headers read, and
 * the client table (admit.c, proxyconn.c, clients.c). */
static void metrics_render_clients(const struct proc *p, struct sbuf *b)
{
	static const char *const refuse_names[REFUSE_REASONS] = {
		"proxy_untrusted", "proxy_timeout", "proxy_invalid",
		"denied",          "client_max_conns", "client_rate",
	};
	unsigned long long refused[REFUSE_REASONS] = {0}, headers[3] = {0};
	struct clients_stats cs;

	for (int i = 0; i < p->nworkers; i++) {
		const struct worker_stats *s = &p->workers[i].stats;

		for (int r = 0; r < REFUSE_REASONS; r++)
			refused[r] += load(&s->refused[r]);
		for (int v = PROXY_V1; v <= PROXY_V2; v++)
			headers[v] += load(&s->proxy_headers[v]);
	}
	header(b, "tcpdist_connections_refused_total", "counter",
	       "Client connections closed before a backend was chosen: from outside "
	       "accept_proxy_from, without a valid PROXY header in time, denied by allow/deny, "
	       "or over client_max_conns or client_rate.");
	for (int r = 0; r < REFUSE_REASONS; r++)
		sb_printf(b, "tcpdist_connections_refused_total{reason=\"%s\"} %llu\n",
			  refuse_names[r], refused[r]);
	header(b, "tcpdist_proxy_headers_total", "counter",
	       "Valid PROXY protocol headers received from clients, by version.");
	for (int v = PROXY_V1; v <= PROXY_V2; v++)
		sb_printf(b, "tcpdist_proxy_headers_total{version=\"%d\"} %llu\n", v, headers[v]);
	clients_stats(p->farm->clients, &cs);
	header(b, "tcpdist_client_table_size", "gauge",
	       "Clients the table of client_max_conns and client_rate can hold (0: no table).");
	sb_printf(b, "tcpdist_client_table_size %lu\n", cs.size);
	header(b, "tcpdist_client_table_entries", "gauge", "Clients in that table now.");
	sb_printf(b, "tcpdist_client_table_entries %lu\n", cs.used);
	header(b, "tcpdist_client_table_evictions_total", "counter",
	       "Clients dropped from the table while their client_rate bucket was not full.");
	sb_printf(b, "tcpdist_client_table_evictions_total %llu\n", cs.evicted);
	header(b, "tcpdist_client_table_full_total", "counter",
	       "Connections let through uncounted: every entry of their set had connections.");
	sb_printf(b, "tcpdist_client_table_full_total %llu\n", cs.full);
}

/* A label value as the text format wants it: \\, \" and \n escaped. */
static const char *label_escape(const char *in, char *out, size_t cap)
{
	size_t o = 0;

	for (; *in != '\0' && o + 3 < cap; in++) {
		if (*in == '\\' || *in == '"' || *in == '\n')
			out[o++] = '\\';
		out[o++] = *in == '\n' ? 'n' : *in;
	}
	out[o] = '\0';
	return out;
}

/* Health checks, tiers and slow starts (health.c, farm.c). */
static void metrics_render_checks(const struct proc *p, struct sbuf *b)
{
	const struct farm *f = p->farm;
	uint64_t now = monotonic_ms();
	char reason[CHECK_REASON_LEN * 2];

	header(b, "tcpdist_backend_check_duration_seconds", "gauge",
	       "How long the backend's last health check took.");
	for (size_t i = 0; i < f->n; i++)
		if (f->b[i].up->check.last_result != CHECK_NONE)
			sb_printf(b, "tcpdist_backend_check_duration_seconds{backend=\"%s\"} %.6f\n",
				  f->b[i].up->name, f->b[i].up->check.last_duration);
	header(b, "tcpdist_backend_check_result", "gauge",
	       "The result of the backend's last health check, and why it failed.");
	for (size_t i = 0; i < f->n; i++) {
		const struct check *k = &f->b[i].up->check;

		if (k->last_result != CHECK_NONE)
			sb_printf(b, "tcpdist_backend_check_result{backend=\"%s\",result=\"%s\","
				     "reason=\"%s\"} 1\n",
				  f->b[i].up->name, check_result_name(k->last_result),
				  label_escape(k->last_reason, reason, sizeof(reason)));
	}
	header(b, "tcpdist_backend_backup", "gauge",
	       "1 for a backup: it takes new connections only while no other backend can.");
	for (size_t i = 0; i < f->n; i++)
		sb_printf(b, "tcpdist_backend_backup{backend=\"%s\"} %d\n", f->b[i].up->name,
			  f->b[i].backup);
	header(b, "tcpdist_backend_effective_weight", "gauge",
	       "The weight new connections see: below the weight during a slow start.");
	for (size_t i = 0; i < f->n; i++)
		sb_printf(b, "tcpdist_backend_effective_weight{backend=\"%s\"} %.3f\n",
			  f->b[i].up->name,
			  (double)f->b[i].weight * farm_ramp(f, i, now) / RAMP_FULL);
	header(b, "tcpdist_backup_in_use", "gauge",
	       "1 while no primary backend is available and the backups take new connections.");
	sb_printf(b, "tcpdist_backup_in_use %d\n", farm_backup_in_use(f));
}

static void metrics_render_core(const struct proc *p, struct sbuf *b)
{
	static const char *const fail_names[] = {"no_backend", "connect", "resources",
						 "max_conns", "zone"};
	static const char *const error_names[] = {"refused", "timeout", "other"};
	const struct farm *f = p->farm;
	unsigned long long accepted = 0, in = 0, out = 0, failed[FAIL_REASONS] = {0};

	for (int i = 0; i < p->nworkers; i++) {
		const struct worker_stats *s = &p->workers[i].stats;

		accepted += load(&s->accepted);
		in += load(&s->bytes_in);
		out += load(&s->bytes_out);
		for (int r = 0; r < FAIL_REASONS; r++)
			failed[r] += load(&s->failed[r]);
	}
	header(b, "tcpdist_connections_accepted_total", "counter", "Client connections accepted.");
	sb_printf(b, "tcpdist_connections_accepted_total %llu\n", accepted);
	header(b, "tcpdist_connections_active", "gauge", "Client connections open now.");
	sb_printf(b, "tcpdist_connections_active %zu\n", proc_connections(p));
	header(b, "tcpdist_connections_failed_total", "counter",
	       "Client connections refused: no backend available, every connect failed, "
	       "out of resources, every available backend at its max_conns, or (locality = strict) "
	       "no available backend in the client's zone.");
	for (int r = 0; r < FAIL_REASONS; r++)
		sb_printf(b, "tcpdist_connections_failed_total{reason=\"%s\"} %llu\n", fail_names[r],
			  failed[r]);
	metrics_render_clients(p, b);
	header(b, "tcpdist_bytes_in_total", "counter", "Bytes relayed from clients to backends.");
	sb_printf(b, "tcpdist_bytes_in_total %llu\n", in);
	header(b, "tcpdist_bytes_out_total", "counter", "Bytes relayed from backends to clients.");
	sb_printf(b, "tcpdist_bytes_out_total %llu\n", out);
	header(b, "tcpdist_backends_available", "gauge",
	       "Backends taking new connections (up, weighted and passing health checks).");
	sb_printf(b, "tcpdist_backends_available %zu\n", farm_count_available(f));

	header(b, "tcpdist_backend_up", "gauge", "1 if the backend passes its health checks.");
	for (size_t i = 0; i < f->n; i++)
		sb_printf(b, "tcpdist_backend_up{backend=\"%s\",address=\"%s\"} %d\n",
			  f->b[i].up->name, f->b[i].up->addr_text,
			  !atomic_load_explicit(&f->b[i].up->down, memory_order_relaxed));
	header(b, "tcpdist_backend_state", "gauge", "The backend's state in the pool file.");
	for (size_t i = 0; i < f->n; i++)
		for (int st = BACKEND_UP; st <= BACKEND_DOWN; st++)
			sb_printf(b, "tcpdist_backend_state{backend=\"%s\",state=\"%s\"} %d\n",
				  f->b[i].up->name, backend_state_name((enum backend_state)st),
				  f->b[i].state == (enum backend_state)st);
	header(b, "tcpdist_backend_weight", "gauge", "The backend's weight in the pool file.");
	for (size_t i = 0; i < f->n; i++)
		sb_printf(b, "tcpdist_backend_weight{backend=\"%s\"} %u\n", f->b[i].up->name,
			  f->b[i].weight);
	header(b, "tcpdist_backend_connections_active", "gauge",
	       "Connections being opened to or relayed with the backend.");
	for (size_t i = 0; i < f->n; i++)
		sb_printf(b, "tcpdist_backend_connections_active{backend=\"%s\"} %u\n",
			  f->b[i].up->name,
			  atomic_load_explicit(&f->b[i].up->active, memory_order_relaxed));
	header(b, "tcpdist_backend_connections_total", "counter",
	       "Connections relayed with the backend.");
	for (size_t i = 0; i < f->n; i++)
		sb_printf(b, "tcpdist_backend_connections_total{backend=\"%s\"} %llu\n",
			  f->b[i].up->name, load(&f->b[i].up->total));
	header(b, "tcpdist_backend_connect_errors_total", "counter",
	       "Failed connects to the backend, by reason.");
	for (size_t i = 0; i < f->n; i++)
		for (int e = 0; e < CONNECT_ERRORS; e++)
			sb_printf(b, "tcpdist_backend_connect_errors_total{backend=\"%s\",reason=\"%s\"} %llu\n",
				  f->b[i].up->name, error_names[e],
				  load(&f->b[i].up->connect_errors[e]));
	header(b, "tcpdist_backend_health_transitions_total", "counter",
	       "Health changes of the backend, by the state it went to.");
	for (size_t i = 0; i < f->n; i++) {
		sb_printf(b, "tcpdist_backend_health_transitions_total{backend=\"%s\",to=\"down\"} %llu\n",
			  f->b[i].up->name, load(&f->b[i].up->went_down));
		sb_printf(b, "tcpdist_backend_health_transitions_total{backend=\"%s\",to=\"up\"} %llu\n",
			  f->b[i].up->name, load(&f->b[i].up->came_up));
	}
	metrics_render_checks(p, b);

	header(b, "tcpdist_reloads_total", "counter", "Pool file reloads applied.");
	sb_printf(b, "tcpdist_reloads_total %llu\n", p->reloads);
	header(b, "tcpdist_reload_failures_total", "counter",
	       "Pool file reloads refused (invalid or unreadable); the last good pool stayed.");
	sb_printf(b, "tcpdist_reload_failures_total %llu\n", p->reload_failures);
	header(b, "tcpdist_last_reload_success_timestamp_seconds", "gauge",
	       "When the pool in force was loaded, in seconds since the Unix epoch.");
	sb_printf(b, "tcpdist_last_reload_success_timestamp_seconds %.3f\n", p->last_reload);
}

/* --- histograms ------------------------------------------------------------ */

/* Bucket bounds in seconds; the last bucket is +Inf. */
const double connect_bounds[CONNECT_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
						0.05,   0.1,   0.25,   0.5,   1,    2.5};
const double duration_bounds[DURATION_BUCKETS] = {0.005, 0.01, 0.05, 0.1, 0.5, 1,
						  5,     10,   30,   60,  300, 3600};

unsigned hist_bucket(const double *bounds, unsigned n, double v)
{
	unsigned i = 0;

	while (i < n && v > bounds[i])
		i++;
	return i;
}

/* One histogram series: cumulative buckets, then _sum and _count. labels
 * is "" or `key="value",`. */
static void histogram(struct sbuf *b, const char *name, const char *labels, const double *bounds,
		      unsigned n, const unsigned long long *counts, double sum)
{
	unsigned long long cum = 0;
	size_t llen = strlen(labels);

	for (unsigned i = 0; i <= n; i++) {
		cum += counts[i];
		if (i < n)
			sb_printf(b, "%s_bucket{%sle=\"%g\"} %llu\n", name, labels, bounds[i], cum);
		else
			sb_printf(b, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels, cum);
	}
	/* labels without its trailing comma, in braces, or nothing */
	if (llen)
		sb_printf(b, "%s_sum{%.*s} %.6f\n%s_count{%.*s} %llu\n", name, (int)llen - 1, labels,
			  sum, name, (int)llen - 1, labels, cum);
	else
		sb_printf(b, "%s_sum %.6f\n%s_count %llu\n", name, sum, name, cum);
}

/* --- traffic, timings and the process ---------------------------------------- */

static void metrics_render_traffic(const struct proc *p, struct sbuf *b)
{
	const struct farm *f = p->farm;
	unsigned long long dur[DURATION_BUCKETS + 1] = {0}, dur_ms = 0, retries = 0;
	char labels[POOL_NAME_MAX + 16];

	header(b, "tcpdist_backend_bytes_in_total", "counter",
	       "Bytes relayed from clients to the backend.");
	for (size_t i = 0; i < f->n; i++)
		sb_printf(b, "tcpdist_backend_bytes_in_total{backend=\"%s\"} %llu\n", f->b[i].up->name,
			  load(&f->b[i].up->bytes_in));
	header(b, "tcpdist_backend_bytes_out_total", "counter",
	       "Bytes relayed from the backend to clients.");
	for (size_t i = 0; i < f->n; i++)
		sb_printf(b, "tcpdist_backend_bytes_out_total{backend=\"%s\"} %llu\n",
			  f->b[i].up->name, load(&f->b[i].up->bytes_out));
	header(b, "tcpdist_backend_connect_seconds", "histogram",
	       "How long connecting to the backend took, for connects that succeeded.");
	for (size_t i = 0; i < f->n; i++) {
		const struct upstream *u = f->b[i].up;
		unsigned long long c[CONNECT_BUCKETS + 1];

		for (unsigned k = 0; k <= CONNECT_BUCKETS; k++)
			c[k] = load(&u->connect_hist[k]);
		snprintf(labels, sizeof(labels), "backend=\"%s\",", u->name);
		histogram(b, "tcpdist_backend_connect_seconds", labels, connect_bounds,
			  CONNECT_BUCKETS, c, (double)load(&u->connect_us) / 1e6);
	}
	for (int i = 0; i < p->nworkers; i++) {
		const struct worker_stats *s = &p->workers[i].stats;

		for (unsigned k = 0; k <= DURATION_BUCKETS; k++)
			dur[k] += load(&s->duration_hist[k]);
		dur_ms += load(&s->duration_ms);
		retries += load(&s->retries);
	}
	header(b, "tcpdist_session_duration_seconds", "histogram",
	       "How long relayed connections lasted, from accept to close.");
	histogram(b, "tcpdist_session_duration_seconds", "", duration_bounds, DURATION_BUCKETS, dur,
		  (double)dur_ms / 1000.0);
	header(b, "tcpdist_connection_retries_total", "counter",
	       "Connects to a backend that failed and were tried again on another.");
	sb_printf(b, "tcpdist_connection_retries_total %llu\n", retries);
}

/* Open descriptors: the entries of /proc/self/fd (the kernel's own listing,
 * which cannot hang), less the one reading it. */
static long open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

static void metrics_render_process(const struct proc *p, struct sbuf *b)
{
	struct rlimit rl;

	header(b, "tcpdist_build_info", "gauge", "The running build: its version, always 1.");
	sb_printf(b, "tcpdist_build_info{version=\"%s\"} 1\n", TCPDIST_VERSION);
	header(b, "process_start_time_seconds", "gauge",
	       "When the process started, in seconds since the Unix epoch.");
	sb_printf(b, "process_start_time_seconds %.3f\n", p->started_at);
	long fds = open_fds();

	if (fds >= 0) {
		header(b, "process_open_fds", "gauge", "Open file descriptors.");
		sb_printf(b, "process_open_fds %ld\n", fds);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		header(b, "process_max_fds", "gauge", "The most file descriptors the process may open.");
		sb_printf(b, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
	}
}

/* instance = NAME in [pool]: every sample gets instance="NAME", so several
 * tcpdist on one host stay apart behind one scrape target. */
static int label_instance(struct sbuf *b, const char *instance)
{
	struct sbuf out = {0};
	char esc[POOL_NAME_MAX * 2 + 8];

	label_escape(instance, esc, sizeof(esc));
	for (const char *line = b->p; line && line < b->p + b->len;) {
		const char *nl = memchr(line, '\n', (size_t)(b->p + b->len - line));
		size_t len = nl ? (size_t)(nl - line) : (size_t)(b->p + b->len - line);
		const char *brace = memchr(line, '{', len), *space = memchr(line, ' ', len);

		if (line[0] == '#' || space == NULL)
			sb_printf(&out, "%.*s\n", (int)len, line);
		else if (brace && brace < space)
			sb_printf(&out, "%.*sinstance=\"%s\",%.*s\n", (int)(brace + 1 - line), line, esc,
				  (int)(len - (size_t)(brace + 1 - line)), brace + 1);
		else
			sb_printf(&out, "%.*s{instance=\"%s\"}%.*s\n", (int)(space - line), line, esc,
				  (int)(len - (size_t)(space - line)), space);
		line = nl ? nl + 1 : NULL;
	}
	free(b->p);
	*b = out;
	return out.oom ? -1 : 0;
}

void metrics_render(const struct proc *p, struct sbuf *b)
{
	metrics_render_core(p, b);
	metrics_render_traffic(p, b);
	metrics_render_process(p, b);
	zone_stats_render(p, b);
	if (p->farm->pool->instance[0] && !b->oom)
		label_instance(b, p->farm->pool->instance);
}
