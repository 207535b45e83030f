/* --metrics ADDR: Prometheus text exposition (format 0.0.4) at /metrics,
 * served by the main thread. Connections are few and short, and no client
 * may hold the endpoint: a bounded number at a time, a bounded request, a
 * header timeout from accept to the request's blank line, a separate write
 * deadline for the answer (a big pool makes a long one), then a close.
 * When every slot is taken a newcomer is accepted and the idlest client
 * evicted, so idle connections cannot lock scrapers out. Every request
 * gets an answer, a malformed one included; after it we shut our side and
 * linger briefly, as a close with unread bytes would reset the connection
 * and could discard the answer. Counters come from the workers' own stats
 * and the backends' atomics, read without locks. */
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

/* The man page gives these figures: keep it in step. */
#define METRICS_CLIENTS_MAX 16
#define METRICS_REQUEST_MAX 4096    /* bytes of request header */
#define METRICS_HEADER_TIMEOUT 2.0  /* seconds from accept to the blank line */
#define METRICS_WRITE_DEADLINE 10.0 /* seconds to send the answer */
#define METRICS_LINGER 1.0          /* seconds to wait for the client's close */

/* A client's phases, in the order eviction picks them: one that has its
 * answer goes first, one whose answer is being sent last. */
enum mphase { MC_LINGERING, MC_READING, MC_WRITING };

struct mclient {
	ev_io io;
	ev_timer timer; /* header timeout, write deadline or linger, by phase */
	struct metrics_server *ms;
	struct mclient *prev, *next;
	enum mphase phase;
	ev_tstamp progress; /* accept, then the last bytes read or sent */
	char req[METRICS_REQUEST_MAX + 1];
	size_t reqlen;
	struct sbuf out;
	size_t outoff;
};

struct metrics_server {
	struct proc *p;
	int fd;
	ev_io io;
	struct accept_pause pause;
	struct mclient *clients;
	int nclients;
};

static void client_close(struct ev_loop *loop, struct mclient *c)
{
	struct metrics_server *ms = c->ms;

	ev_io_stop(loop, &c->io);
	ev_timer_stop(loop, &c->timer);
	close(c->io.fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		ms->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ms->nclients--;
	free(c->out.p);
	free(c);
}

/* The phase's one timer: a one-shot restarted without a set fires at once. */
static void client_phase(struct ev_loop *loop, struct mclient *c, enum mphase phase,
			 ev_tstamp timeout)
{
	c->phase = phase;
	c->progress = ev_now(loop);
	ev_timer_stop(loop, &c->timer);
	ev_timer_set(&c->timer, timeout, 0.0);
	ev_timer_start(loop, &c->timer);
}

/* Waits for the client's close, discarding what it still sends; a few
 * reads an event, so that a client that floods us cannot hold the loop. */
static void client_linger_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct mclient *c = container_of(io, struct mclient, io);
	char buf[4096];
	ssize_t n;

	(void)revents;
	for (int i = 0; i < 16; i++) {
		n = recv(io->fd, buf, sizeof(buf), 0);
		if (n > 0)
			continue;
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			client_close(loop, c);
		return;
	}
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
			client_close(loop, c);
			return;
		}
		c->outoff += (size_t)n;
		c->progress = ev_now(loop);
	}
	free(c->out.p);
	c->out = (struct sbuf){0};
	shutdown(io->fd, SHUT_WR);
	ev_io_stop(loop, io);
	ev_io_init(io, client_linger_cb, io->fd, EV_READ);
	ev_io_start(loop, io);
	client_phase(loop, c, MC_LINGERING, METRICS_LINGER);
}

/* The whole answer into c->out: status line, headers, and the body (the
 * metrics, or the status as text). */
static void client_answer(struct mclient *c, const char *status, const struct sbuf *body,
			  int head)
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
}

static void client_respond(struct ev_loop *loop, struct mclient *c, const char *status,
			   const struct sbuf *body, int head)
{
	client_answer(c, status, body, head);
	if (c->out.oom) {
		client_close(loop, c);
		return;
	}
	ev_io_stop(loop, &c->io);
	ev_io_init(&c->io, client_write_cb, c->io.fd, EV_WRITE);
	ev_io_start(loop, &c->io);
	client_phase(loop, c, MC_WRITING, METRICS_WRITE_DEADLINE);
	client_write_cb(loop, &c->io, EV_WRITE); /* most answers fit at once */
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

	metrics_render(c->ms->p, &body);
	if (body.oom)
		client_respond(loop, c, "503 Service Unavailable", NULL, head);
	else
		client_respond(loop, c, "200 OK", &body, head);
	free(body.p);
}

static void client_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct mclient *c = container_of(io, struct mclient, io);
	const char *from;
	ssize_t n;

	(void)revents;
	n = recv(io->fd, c->req + c->reqlen, sizeof(c->req) - 1 - c->reqlen, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0 || (n == 0 && c->reqlen == 0)) {
		client_close(loop, c);
		return;
	}
	if (n == 0) { /* the client ended its side before the blank line */
		client_respond(loop, c, "400 Bad Request", NULL, 0);
		return;
	}
	/* A NUL would also hide the blank line from the search below. */
	if (memchr(c->req + c->reqlen, '\0', (size_t)n)) {
		client_respond(loop, c, "400 Bad Request", NULL, 0);
		return;
	}
	/* The blank line may begin in the bytes read before. */
	from = c->req + (c->reqlen > 3 ? c->reqlen - 3 : 0);
	c->reqlen += (size_t)n;
	c->req[c->reqlen] = '\0';
	c->progress = ev_now(loop);
	if (strstr(from, "\r\n\r\n") || strstr(from, "\n\n"))
		client_request(loop, c);
	else if (c->reqlen == sizeof(c->req) - 1)
		client_respond(loop, c, "431 Request Header Fields Too Large", NULL, 0);
}

static void client_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct mclient *c = container_of(t, struct mclient, timer);

	(void)revents;
	if (c->phase == MC_READING)
		client_respond(loop, c, "408 Request Timeout", NULL, 0);
	else
		client_close(loop, c); /* the write deadline, or the linger is over */
}

/* Makes room for a newcomer: closes the client done with soonest (see
 * enum mphase), the idlest of its phase; of clients accepted in one batch,
 * the first (the list runs from the newest). One still waiting for its
 * request is told why, if the answer fits in one send. */
static void client_evict(struct ev_loop *loop, struct metrics_server *ms)
{
	struct mclient *victim = ms->clients;

	for (struct mclient *c = ms->clients; c; c = c->next)
		if (c->phase < victim->phase ||
		    (c->phase == victim->phase && c->progress <= victim->progress))
			victim = c;
	if (victim->phase == MC_READING) {
		char buf[4096];

		/* Bytes left unread would turn the close into a reset. */
		for (int i = 0; i < 4 && recv(victim->io.fd, buf, sizeof(buf), MSG_DONTWAIT) > 0; i++)
			;
		client_answer(victim, "503 Service Unavailable", NULL, 0);
		if (!victim->out.oom)
			(void)send(victim->io.fd, victim->out.p, victim->out.len,
				   MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	client_close(loop, victim);
}

static void metrics_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct metrics_server *ms = container_of(io, struct metrics_server, io);

	(void)revents;
	/* A batch per event: a flood of connects cannot starve the loop. */
	for (int i = 0; i < METRICS_CLIENTS_MAX; i++) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct mclient *c;

		if (fd < 0) {
			int error = errno;

			if (accept_pause(loop, &ms->pause, error) == ACCEPT_PAUSED)
				log_err("metrics: %s: pausing accept", accept_pause_reason(error));
			return; /* else EAGAIN: the next event brings the next */
		}
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			close(fd);
			return;
		}
		if (ms->nclients == METRICS_CLIENTS_MAX)
			client_evict(loop, ms);
		c->ms = ms;
		ev_io_init(&c->io, client_read_cb, fd, EV_READ);
		ev_io_start(loop, &c->io);
		ev_timer_init(&c->timer, client_timer_cb, METRICS_HEADER_TIMEOUT, 0.0);
		client_phase(loop, c, MC_READING, METRICS_HEADER_TIMEOUT);
		c->next = ms->clients;
		if (ms->clients)
			ms->clients->prev = c;
		ms->clients = c;
		ms->nclients++;
		/* The request often comes with the handshake: read it now, so a
		 * newcomer in this batch cannot evict a client it would complete. */
		client_read_cb(loop, &c->io, EV_READ);
	}
}

int metrics_init(struct proc *p, const char *text, char *err)
{
	struct metrics_server *ms;
	struct addr a;
	char e[ERR_LEN];
	int one = 1;

	if (addr_parse(text, 0, &a, e) < 0)
		return err_set(err, "--metrics: %s", e);
	if ((ms = calloc(1, sizeof(*ms))) == NULL)
		return err_set(err, "--metrics %s: %s", text, strerror(ENOMEM));
	ms->p = p;
	ms->fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ms->fd < 0) {
		err_set(err, "--metrics %s: %s", text, strerror(errno));
		free(ms);
		return -1;
	}
	setsockopt(ms->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(ms->fd, (const struct sockaddr *)&a.ss, a.len) < 0 || listen(ms->fd, 64) < 0) {
		err_set(err, "--metrics %s: %s", text, strerror(errno));
		close(ms->fd);
		free(ms);
		return -1;
	}
	ev_io_init(&ms->io, metrics_accept_cb, ms->fd, EV_READ);
	ev_io_start(p->loop, &ms->io);
	accept_pause_init(&ms->pause, &ms->io, 1.0);
	p->metrics = ms;
	log_info("metrics on http://%s/metrics", text);
	return 0;
}

void metrics_close(struct proc *p)
{
	struct metrics_server *ms = p->metrics;

	if (ms == NULL)
		return;
	while (ms->clients)
		client_close(p->loop, ms->clients);
	ev_io_stop(p->loop, &ms->io);
	accept_pause_stop(p->loop, &ms->pause);
	close(ms->fd);
	free(ms);
	p->metrics = NULL;
}
