/* The control socket's commands: `tcpdist status`, `sessions`, `kill` and a
 * new binary's `--takeover` ask the running process (the protocol is in
 * tcpdist(1), CONTROL SOCKET). The socket, its clients, the framing and the
 * deadlines are common/ctlserver.c's; this file answers the request lines.
 * It runs on the main loop like the metrics server. Questions about
 * connections go to the workers as surveys (survey.c) and are answered when
 * every worker has replied: the client may be gone by then. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acceptpause.h"
#include "ctlserver.h"
#include "escape.h"
#include "log.h"
#include "num.h"
#include "out.h"
#include "tcpdist.h"

#define CONTROL_CLIENTS_MAX 8     /* the descriptors kept back for it (fdbudget.c) */
#define CONTROL_REQUEST_MAX 1024
#define CONTROL_REQUEST_TIME 2.0  /* seconds to the request line, and to a survey's answer */
#define CONTROL_ANSWER_TIME 10.0  /* seconds to send the answer */
#define CONTROL_TAKEOVER_TIME 60.0 /* for the new process to start and say ok */
#define CONTROL_ACCEPT_REST 1.0   /* seconds without accepting when out of descriptors */
#define SESSIONS_LIMIT_DEFAULT 1000
#define SESSIONS_LIMIT_MAX 1000000

/* One request line being answered. */
struct request {
	struct ctlconn *conn;
	struct proc *p;
	int json;
};

/* What a survey carries back to its client. */
struct job {
	struct ctlconn *conn; /* NULL once the client is gone */
	struct proc *p;
	struct session_query *q;
	int json;
	int kill;
	int *fds; /* takeover: the listening sockets the workers lent */
	size_t nfds, capfds;
	pthread_mutex_t lock;
};

/* --- answering ------------------------------------------------------------ */

/* An output layer over a memory stream: the answer is built, then sent. */
struct answer {
	FILE *f;
	char *buf;
	size_t len;
	struct out o;
};

static int answer_begin(struct answer *a, enum out_format format, int array)
{
	a->buf = NULL;
	a->len = 0;
	a->f = open_memstream(&a->buf, &a->len);
	if (a->f == NULL)
		return -1;
	out_init(&a->o, a->f, format, array);
	return 0;
}

static void answer_send(struct ctlconn *conn, struct answer *a)
{
	if (fclose(a->f) != 0) {
		free(a->buf);
		ctlconn_error(conn, "out of memory");
		return;
	}
	ctlconn_answer(conn, a->buf, a->len);
}

/* --- status --------------------------------------------------------------- */

static void status_backend(struct out *o, const struct farm *f, size_t i)
{
	const struct farm_backend *b = &f->b[i];
	struct upstream *u = b->up;
	char reason[sizeof(u->reason)];
	int down = atomic_load_explicit(&u->down, memory_order_relaxed);

	upstream_reason(u, reason, sizeof(reason));
	out_record_begin(o);
	if (o->format == OUT_ROWS)
		out_str(o, "type", "backend");
	out_str(o, "name", u->name);
	out_str(o, "address", u->addr_text);
	out_str(o, "state", backend_state_name(b->state));
	out_str(o, "health", down ? "down" : "up");
	out_str(o, "reason", reason[0] ? reason : "-");
	out_uint(o, "weight", b->weight);
	out_str(o, "tier", b->backup ? "backup" : "primary");
	out_str(o, "zone", f->pool->backends[i].zone_name[0] ? f->pool->backends[i].zone_name : "-");
	out_uint(o, "active", atomic_load_explicit(&u->active, memory_order_relaxed));
	out_uint(o, "total", atomic_load_explicit(&u->total, memory_order_relaxed));
	out_uint(o, "bytes_in", atomic_load_explicit(&u->bytes_in, memory_order_relaxed));
	out_uint(o, "bytes_out", atomic_load_explicit(&u->bytes_out, memory_order_relaxed));
	out_fixed(o, "changed",
		  (double)atomic_load_explicit(&u->changed_ms, memory_order_relaxed) / 1000.0, 3);
	out_record_end(o);
}

static void status_pool(struct out *o, struct proc *p)
{
	char digest[17];

	snprintf(digest, sizeof(digest), "%016llx", (unsigned long long)p->pool_digest);
	out_record_begin(o);
	if (o->format == OUT_ROWS)
		out_str(o, "type", "pool");
	out_str(o, "file", p->opt->pool_path);
	out_fixed(o, "loaded", p->last_reload, 3);
	out_str(o, "digest", digest);
	out_bool(o, "file_differs", loader_file_differs(p));
	out_str(o, "last_error", p->reload_error[0] ? p->reload_error : "-");
	out_uint(o, "backends", p->farm->n);
	out_uint(o, "available", farm_count_available(p->farm));
	out_uint(o, "connections", proc_connections(p));
	out_bool(o, "backup_in_use", farm_backup_in_use(p->farm));
	out_record_end(o);
}

/* One backend, KEY<TAB>VALUE lines (or a JSON object): what tcppool drain
 * --wait polls. */
static void control_backend(struct request *r, const char *name)
{
	const struct farm *f = r->p->farm;
	const struct farm_backend *b = farm_find(f, name);
	struct answer a;

	if (b == NULL) {
		char clip[TEXT_CLIP_LEN];

		ctlconn_error(r->conn, "no backend '%s' in the pool in force", text_clip(clip, name));
		return;
	}
	if (answer_begin(&a, r->json ? OUT_JSON : OUT_PAIRS, 0) < 0) {
		ctlconn_error(r->conn, "out of memory");
		return;
	}
	status_backend(&a.o, f, (size_t)(b - f->b));
	out_end(&a.o);
	answer_send(r->conn, &a);
}

/* Text: a pool row, then a row per backend, the first column naming the
 * kind. JSON: {"pool": {...}, "backends": [...]}. */
static void control_status(struct request *r)
{
	struct proc *p = r->p;
	const struct farm *f = p->farm;
	struct answer a;

	if (answer_begin(&a, r->json ? OUT_JSON : OUT_ROWS, 0) < 0) {
		ctlconn_error(r->conn, "out of memory");
		return;
	}
	if (r->json)
		fputs("{\"pool\": ", a.f);
	status_pool(&a.o, p);
	if (r->json) {
		fputs(", \"backends\": ", a.f);
		out_init(&a.o, a.f, OUT_JSON, 1);
	}
	for (size_t i = 0; i < f->n; i++)
		status_backend(&a.o, f, i);
	if (r->json) {
		out_end(&a.o);
		fputs("}\n", a.f);
	}
	answer_send(r->conn, &a);
}

/* --- sessions and kill ------------------------------------------------------ */

static void job_free(struct job *j)
{
	if (j == NULL)
		return;
	session_query_free(j->q);
	for (size_t i = 0; i < j->nfds; i++)
		close(j->fds[i]);
	free(j->fds);
	pthread_mutex_destroy(&j->lock);
	free(j);
}

static struct job *job_new(struct request *r)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	j->conn = r->conn;
	j->p = r->p;
	j->json = r->json;
	pthread_mutex_init(&j->lock, NULL);
	return j;
}

/* The client went before its survey's answer: the survey finishes alone. */
static void job_client_gone(void *arg)
{
	((struct job *)arg)->conn = NULL;
}

static void sessions_render(struct job *j)
{
	const struct session_query *q = j->q;
	struct answer a;
	size_t total = 0, shown = 0;

	if (answer_begin(&a, j->json ? OUT_JSON : OUT_ROWS, 0) < 0) {
		ctlconn_error(j->conn, "out of memory");
		return;
	}
	for (int k = 0; k < q->nworkers; k++)
		total += q->per[k].total;
	if (j->json) {
		fputs("{\"sessions\": ", a.f);
		out_init(&a.o, a.f, OUT_JSON, 1);
	}
	for (int k = 0; k < q->nworkers; k++) {
		for (size_t i = 0; i < q->per[k].n && shown < q->limit; i++, shown++) {
			const struct session_row *r = &q->per[k].rows[i];

			out_record_begin(&a.o);
			out_str(&a.o, "client", r->client);
			out_str(&a.o, "backend", r->backend);
			out_str(&a.o, "listener", r->listener);
			out_fixed(&a.o, "age", r->age, 3);
			out_uint(&a.o, "bytes_in", r->in);
			out_uint(&a.o, "bytes_out", r->out);
			out_str(&a.o, "phase", r->connected ? "relaying" : "connecting");
			out_record_end(&a.o);
		}
	}
	if (j->json) {
		out_end(&a.o);
		fprintf(a.f, ", \"total\": %zu, \"shown\": %zu}\n", total, shown);
	} else if (shown < total) {
		fprintf(a.f, "# %zu of %zu sessions shown\n", shown, total);
	}
	answer_send(j->conn, &a);
}

static void sessions_done(struct survey *s)
{
	struct job *j = s->ctx;

	if (j->conn) {
		if (j->kill) {
			size_t killed = 0;
			char *text;

			for (int k = 0; k < j->q->nworkers; k++)
				killed += j->q->per[k].total;
			if (killed)
				log_info("control: %zu session%s reset", killed, killed == 1 ? "" : "s");
			if (asprintf(&text, "%zu\n", killed) < 0)
				text = NULL;
			ctlconn_answer(j->conn, text, text ? strlen(text) : 0);
		} else {
			sessions_render(j);
		}
	}
	job_free(j);
	survey_free(s);
}

static void sessions_session_ask(struct worker *w, struct survey *s)
{
	struct job *j = s->ctx;

	s->ctx = j->q;
	if (j->kill)
		sessions_kill(w, s);
	else
		sessions_ask(w, s);
	s->ctx = j;
}

/* Starts the survey for sessions or kill; the answer comes in sessions_done. */
static void sessions_start(struct request *r, struct job *j)
{
	struct survey *s;

	j->q->nworkers = r->p->nworkers;
	s = survey_new(r->p, sessions_session_ask, sessions_done, j);
	if (s == NULL) {
		job_free(j);
		ctlconn_error(r->conn, "out of memory");
		return;
	}
	ctlconn_later(r->conn, job_client_gone, j);
	survey_start(s);
}

/* NAME=VALUE arguments of a request. */
static const char *arg_value(char *const *args, int nargs, const char *name)
{
	size_t len = strlen(name);

	for (int i = 0; i < nargs; i++)
		if (strncmp(args[i], name, len) == 0 && args[i][len] == '=')
			return args[i] + len + 1;
	return NULL;
}

static int args_known(struct request *r, char *const *args, int nargs, const char *const *known)
{
	for (int i = 0; i < nargs; i++) {
		int ok = strcmp(args[i], "json") == 0;

		for (int k = 0; known[k] && !ok; k++)
			ok = strncmp(args[i], known[k], strlen(known[k])) == 0 &&
			     args[i][strlen(known[k])] == '=';
		if (!ok) {
			char clip[TEXT_CLIP_LEN];

			ctlconn_error(r->conn, "unknown argument '%s'", text_clip(clip, args[i]));
			return 0;
		}
	}
	return 1;
}

static int query_client(struct request *r, struct session_query *q, const char *text)
{
	struct addr a;
	char err[ERR_LEN];
	int has_port;

	if (addr_parse_client(text, &a, &has_port, err) < 0) {
		ctlconn_error(r->conn, "client: %s", err);
		return -1;
	}
	q->by_client = 1;
	q->client_has_port = has_port;
	session_ip_key((const struct sockaddr *)&a.ss, q->client_ip, &q->client_port);
	return 0;
}

static void control_sessions(struct request *r, char *const *args, int nargs, int kill)
{
	static const char *const known_sessions[] = {"limit", "backend", NULL};
	static const char *const known_kill[] = {"backend", "client", NULL};
	const char *backend = arg_value(args, nargs, "backend");
	const char *client = arg_value(args, nargs, "client");
	const char *limit = arg_value(args, nargs, "limit");
	struct job *j;
	char err[ERR_LEN];
	long long n = SESSIONS_LIMIT_DEFAULT;

	if (!args_known(r, args, nargs, kill ? known_kill : known_sessions))
		return;
	if (kill && (backend == NULL) == (client == NULL)) {
		ctlconn_error(r->conn, "kill needs backend=NAME or client=ADDR");
		return;
	}
	if (limit && num_parse(limit, 1, SESSIONS_LIMIT_MAX, &n, err) < 0) {
		ctlconn_error(r->conn, "limit: %s", err);
		return;
	}
	if (backend && !pool_name_valid(backend)) {
		char clip[TEXT_CLIP_LEN];

		ctlconn_error(r->conn, "backend: '%s' is not a backend name", text_clip(clip, backend));
		return;
	}
	if ((j = job_new(r)) == NULL || (j->q = session_query_new(r->p->nworkers)) == NULL) {
		job_free(j);
		ctlconn_error(r->conn, "out of memory");
		return;
	}
	j->kill = kill;
	j->q->limit = (size_t)n;
	if (backend)
		snprintf(j->q->backend, sizeof(j->q->backend), "%s", backend);
	if (client && query_client(r, j->q, client) < 0) {
		job_free(j);
		return;
	}
	sessions_start(r, j);
}

/* --- takeover ---------------------------------------------------------------- */

/* On a worker: a duplicate of each socket it listens on, for the new process. */
static void takeover_ask(struct worker *w, struct survey *s)
{
	struct job *j = s->ctx;

	pthread_mutex_lock(&j->lock);
	for (struct listener *l = w->listeners; l; l = l->next) {
		int fd;

		if (l->draining)
			continue;
		if (j->nfds == j->capfds) {
			size_t cap = j->capfds ? j->capfds * 2 : 16;
			int *fds = realloc(j->fds, cap * sizeof(*fds));

			if (fds == NULL)
				break;
			j->fds = fds;
			j->capfds = cap;
		}
		if ((fd = fcntl(l->fd, F_DUPFD_CLOEXEC, 0)) >= 0)
			j->fds[j->nfds++] = fd;
	}
	pthread_mutex_unlock(&j->lock);
}

/* The new process's word on the same connection: "ok" once it accepts;
 * NULL when it said nothing in time. */
static void takeover_reply(const char *line, void *arg)
{
	struct proc *p = arg;

	if (line == NULL) {
		log_warn("control: takeover: the new process did not say it runs; serving on");
	} else if (strncmp(line, "ok", 2) == 0) {
		/* The new process runs: this one stops as on SIGTERM. */
		log_info("control: takeover: the new process runs; stopping");
		proc_stop(p);
	}
}

static void takeover_done(struct survey *s)
{
	struct job *j = s->ctx;
	struct ctlconn *c = j->conn;

	if (c) {
		if (takeover_send(ctlconn_fd(c), j->fds, j->nfds) < 0) {
			log_warn("control: takeover: cannot send the listening sockets: %s",
				 strerror(errno));
			ctlconn_close(c);
		} else {
			/* Ours stay open and accepting until the new process says
			 * it runs: if it fails, nothing is lost. */
			log_info("control: takeover: %zu listening socket%s handed over; waiting for the new process",
				 j->nfds, j->nfds == 1 ? "" : "s");
			ctlconn_expect(c, CONTROL_TAKEOVER_TIME, takeover_reply, j->p);
		}
	}
	job_free(j);
	survey_free(s);
}

static void control_takeover(struct request *r)
{
	struct job *j = job_new(r);
	struct survey *s = j ? survey_new(r->p, takeover_ask, takeover_done, j) : NULL;

	if (s == NULL) {
		job_free(j);
		ctlconn_error(r->conn, "out of memory");
		return;
	}
	ctlconn_later(r->conn, job_client_gone, j);
	survey_start(s);
}

/* --- requests ---------------------------------------------------------------- */

static const char help_text[] =
	"status [json]\n"
	"backend NAME [json]\n"
	"sessions [json] [limit=N] [backend=NAME]\n"
	"kill backend=NAME | client=ADDR\n"
	"takeover\n"
	"help\n";

static void control_request(struct ctlconn *conn, char *line, void *ctx)
{
	struct request r = {.conn = conn, .p = ctx};
	char *args[8], *save = NULL, *word;
	int nargs = 0;
	const char *cmd;

	cmd = strtok_r(line, " \t", &save);
	while ((word = strtok_r(NULL, " \t", &save)) != NULL) {
		if (nargs == (int)(sizeof(args) / sizeof(args[0]))) {
			ctlconn_error(conn, "too many arguments");
			return;
		}
		args[nargs++] = word;
		r.json |= strcmp(word, "json") == 0;
	}
	if (cmd == NULL) {
		ctlconn_error(conn, "empty request (try help)");
	} else if (strcmp(cmd, "status") == 0) {
		static const char *const none[] = {NULL};

		if (args_known(&r, args, nargs, none))
			control_status(&r);
	} else if (strcmp(cmd, "backend") == 0) {
		if (nargs == 1 || (nargs == 2 && r.json && strcmp(args[1], "json") == 0))
			control_backend(&r, args[0]);
		else
			ctlconn_error(conn, "backend NAME [json]");
	} else if (strcmp(cmd, "sessions") == 0) {
		control_sessions(&r, args, nargs, 0);
	} else if (strcmp(cmd, "kill") == 0) {
		control_sessions(&r, args, nargs, 1);
	} else if (strcmp(cmd, "takeover") == 0 && nargs == 0) {
		control_takeover(&r);
	} else if (strcmp(cmd, "help") == 0) {
		char *text = strdup(help_text);

		ctlconn_answer(conn, text, text ? strlen(text) : 0);
	} else {
		char clip[TEXT_CLIP_LEN];

		ctlconn_error(conn, "unknown request '%s' (try help)", text_clip(clip, cmd));
	}
}

/* --- the socket ------------------------------------------------------------- */

static void control_paused(int error, void *ctx)
{
	(void)ctx;
	log_err("control: %s: pausing accept", accept_pause_reason(error));
}

static int control_open_failed(const char *path, enum ctlserver_open_result result, char *err)
{
	const char *why = strerror(errno);

	switch (result) {
	case CTLSERVER_PATH_TOO_LONG:
		return err_set(err, "control %s: path longer than %zu bytes", path, CTLSERVER_PATH_MAX);
	case CTLSERVER_NOT_A_SOCKET:
		return err_set(err, "control %s: exists and is not a socket", path);
	case CTLSERVER_IN_USE:
		return err_set(err, "control %s: a running tcpdist answers there "
				    "(to replace it, start the new one with --takeover)", path);
	case CTLSERVER_STALE_STUCK:
		return err_set(err, "control %s: cannot remove the stale socket: %s", path, why);
	case CTLSERVER_NO_SOCKET:
		return err_set(err, "control: socket: %s", why);
	default:
		return err_set(err, "control %s: %s", path, why);
	}
}

int control_open(struct proc *p, const char *path, int replace, char *err)
{
	const struct ctlserver_config cfg = {
		.clients_max = CONTROL_CLIENTS_MAX,
		.request_max = CONTROL_REQUEST_MAX,
		.request_time = CONTROL_REQUEST_TIME,
		.answer_time = CONTROL_ANSWER_TIME,
		.accept_rest = CONTROL_ACCEPT_REST,
		.request = control_request,
		.paused = control_paused,
		.ctx = p,
	};
	enum ctlserver_open_result result;
	struct ctlserver *s = ctlserver_open(p->loop, path, replace, &cfg, &result);

	if (s == NULL)
		return control_open_failed(path, result, err);
	if (result == CTLSERVER_REPLACED)
		log_info("control %s: replaced a stale socket", path);
	p->control = s;
	log_info("control socket %s", path);
	return 0;
}

/* The socket file goes only while it is ours: after a takeover the path is
 * the new process's. */
void control_close(struct proc *p)
{
	ctlserver_close(p->control);
	p->control = NULL;
}

const char *control_path(const struct proc *p)
{
	return ctlserver_path(p->control);
}
