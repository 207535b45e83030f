/* --metrics ADDR: Prometheus text exposition (format 0.0.4) at /metrics,
 * served by the main thread. Connections are few and short: a bounded
 * number at a time, a bounded request, a deadline, then the answer and a
 * close. Counters come from the workers' own stats and the backends'
 * atomics, read without locks. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "acceptpause.h"
#include "log.h"
#include "tcpdist.h"

#define METRICS_CLIENTS_MAX 16
#define METRICS_REQUEST_MAX 4096
#define METRICS_DEADLINE 10.0 /* seconds for a whole exchange */

struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
};

static void PRINTF_LIKE(2, 3) sb_printf(struct sbuf *b, const char *fmt, ...)
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

struct mclient {
	ev_io io;
	ev_timer deadline;
	struct mclient *prev, *next;
	char req[METRICS_REQUEST_MAX];
	size_t reqlen;
	struct sbuf out;
	size_t outoff;
};

static struct {
	struct proc *p;
	int fd;
	ev_io io;
	struct accept_pause pause;
	struct mclient *clients;
	int nclients;
} ms = {.fd = -1};

static void header(struct sbuf *b, const char *name, const char *type, const char *help)
{
	sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static unsigned long long load(const atomic_ullong *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static void metrics_render(struct sbuf *b)
{
	static const char *const fail_names[] = {"no_backend", "connect", "resources", "max_conns"};
	static const char *const error_names[] = {"refused", "timeout", "other"};
	struct proc *p = ms.p;
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
	       "out of resources, or every available backend at its max_conns.");
	for (int r = 0; r < FAIL_REASONS; r++)
		sb_printf(b, "tcpdist_connections_failed_total{reason=\"%s\"} %llu\n", fail_names[r],
			  failed[r]);
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

	header(b, "tcpdist_reloads_total", "counter", "Pool file reloads applied.");
	sb_printf(b, "tcpdist_reloads_total %llu\n", p->reloads);
	header(b, "tcpdist_reload_failures_total", "counter",
	       "Pool file reloads refused (invalid or unreadable); the last good pool stayed.");
	sb_printf(b, "tcpdist_reload_failures_total %llu\n", p->reload_failures);
	header(b, "tcpdist_last_reload_success_timestamp_seconds", "gauge",
	       "When the pool in force was loaded, in seconds since the Unix epoch.");
	sb_printf(b, "tcpdist_last_reload_success_timestamp_seconds %.3f\n", p->last_reload);
}

static void client_close(struct ev_loop *loop, struct mclient *c)
{
	ev_io_stop(loop, &c->io);
	ev_timer_stop(loop, &c->deadline);
	close(c->io.fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		ms.clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ms.nclients--;
	free(c->out.p);
	free(c);
	if (!ev_is_active(&ms.io) && ms.fd >= 0)
		ev_io_start(loop, &ms.io); /* below the limit again */
}

static void client_write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct mclient *c = container_of(io, struct mclient, io);
	ssize_t n;

	(void)revents;
	while (c->outoff < c->out.len) {
		n = send(io->fd, c->out.p + c->outoff, c->out.len - c->outoff, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			break;
		}
		c->outoff += (size_t)n;
	}
	client_close(loop, c);
}

static void client_respond(struct ev_loop *loop, struct mclient *c, const char *status,
			   const struct sbuf *body, int head)
{
	sb_printf(&c->out,
		  "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		  "%sConnection: close\r\n\r\n",
		  status, body == NULL ? "text/plain; charset=utf-8"
				       : "text/plain; version=0.0.4; charset=utf-8",
		  body ? body->len : strlen(status) + 1,
		  strncmp(status, "405", 3) == 0 ? "Allow: GET, HEAD\r\n" : "");
	if (!head && body)
		sb_printf(&c->out, "%.*s", (int)body->len, body->p);
	else if (!head)
		sb_printf(&c->out, "%s\n", status);
	if (c->out.oom) {
		client_close(loop, c);
		return;
	}
	ev_io_stop(loop, &c->io);
	ev_io_init(&c->io, client_write_cb, c->io.fd, EV_WRITE);
	ev_io_start(loop, &c->io);
}

/* "GET /metrics HTTP/1.1": the request line is all that matters. */
static void client_request(struct ev_loop *loop, struct mclient *c)
{
	char *line = c->req, *sp1, *sp2;
	size_t pathlen;
	int head;

	c->req[strcspn(c->req, "\r\n")] = '\0';
	sp1 = strchr(line, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (sp1 == NULL || sp2 == NULL) {
		client_respond(loop, c, "400 Bad Request", NULL, 0);
		return;
	}
	head = (size_t)(sp1 - line) == 4 && memcmp(line, "HEAD", 4) == 0;
	if (!head && !((size_t)(sp1 - line) == 3 && memcmp(line, "GET", 3) == 0)) {
		client_respond(loop, c, "405 Method Not Allowed", NULL, 0);
		return;
	}
	pathlen = strcspn(sp1 + 1, " ?");
	if (pathlen != 8 || memcmp(sp1 + 1, "/metrics", 8) != 0) {
		client_respond(loop, c, "404 Not Found", NULL, head);
		return;
	}
	struct sbuf body = {0};

	metrics_render(&body);
	if (body.oom)
		client_respond(loop, c, "503 Service Unavailable", NULL, head);
	else
		client_respond(loop, c, "200 OK", &body, head);
	free(body.p);
}

static void client_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct mclient *c = container_of(io, struct mclient, io);
	ssize_t n;

	(void)revents;
	n = recv(io->fd, c->req + c->reqlen, sizeof(c->req) - 1 - c->reqlen, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_close(loop, c);
		return;
	}
	c->reqlen += (size_t)n;
	c->req[c->reqlen] = '\0';
	if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n"))
		client_request(loop, c);
	else if (c->reqlen == sizeof(c->req) - 1)
		client_respond(loop, c, "431 Request Header Fields Too Large", NULL, 0);
}

static void client_deadline_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)revents;
	client_close(loop, container_of(t, struct mclient, deadline));
}

static void metrics_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)revents;
	for (;;) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct mclient *c;

		if (fd < 0) {
			int error = errno;

			if (accept_pause(loop, &ms.pause, error) == ACCEPT_PAUSED)
				log_err("metrics: %s: pausing accept", accept_pause_reason(error));
			return; /* else EAGAIN: the next event brings the next */
		}
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			close(fd);
			return;
		}
		ev_io_init(&c->io, client_read_cb, fd, EV_READ);
		ev_io_start(loop, &c->io);
		ev_timer_init(&c->deadline, client_deadline_cb, METRICS_DEADLINE, 0.0);
		ev_timer_start(loop, &c->deadline);
		c->next = ms.clients;
		if (ms.clients)
			ms.clients->prev = c;
		ms.clients = c;
		if (++ms.nclients == METRICS_CLIENTS_MAX) {
			ev_io_stop(loop, io); /* the rest wait in the backlog */
			return;
		}
	}
}

int metrics_init(struct proc *p, const char *text, char *err)
{
	struct addr a;
	char e[ERR_LEN];
	int one = 1;

	ms.p = p;
	if (addr_parse(text, 0, &a, e) < 0)
		return err_set(err, "--metrics: %s", e);
	ms.fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ms.fd < 0)
		return err_set(err, "--metrics %s: %s", text, strerror(errno));
	setsockopt(ms.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(ms.fd, (const struct sockaddr *)&a.ss, a.len) < 0 || listen(ms.fd, 64) < 0) {
		err_set(err, "--metrics %s: %s", text, strerror(errno));
		close(ms.fd);
		ms.fd = -1;
		return -1;
	}
	ev_io_init(&ms.io, metrics_accept_cb, ms.fd, EV_READ);
	ev_io_start(p->loop, &ms.io);
	accept_pause_init(&ms.pause, &ms.io, 1.0);
	log_info("metrics on http://%s/metrics", text);
	return 0;
}

void metrics_close(void)
{
	if (ms.fd < 0)
		return;
	while (ms.clients)
		client_close(ms.p->loop, ms.clients);
	ev_io_stop(ms.p->loop, &ms.io);
	accept_pause_stop(ms.p->loop, &ms.pause);
	close(ms.fd);
	ms.fd = -1;
}
