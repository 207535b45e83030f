/* A client connection from accept to close: choosing a backend, connecting
 * with a timeout, retrying on another backend, then handing over to the relay.
 * The client is not read from until a backend accepted, so whatever it sent
 * meanwhile waits in the kernel and reaches the final backend intact. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hash.h"
#include "log.h"
#include "num.h"
#include "tcpdist.h"

/* Why each tried backend failed, for the retry order and the final message. */
struct attempts {
	size_t n;
	uint32_t tried[POOL_RETRIES_MAX + 1];
	int error[POOL_RETRIES_MAX + 1]; /* errno, or ETIMEDOUT */
};

static void conn_connect_next(struct conn *c);

const char *conn_client_text(const struct conn *c, char *buf, size_t len)
{
	return addr_format(&c->client.sa, buf, len);
}

static void set_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Closing with SO_LINGER 0 sends RST instead of FIN. */
static void close_reset(int fd)
{
	struct linger lg = {1, 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static void conn_unlink(struct conn *c)
{
	struct worker *w = c->w;

	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	atomic_fetch_sub_explicit(&w->nconns, 1, memory_order_relaxed);
}

static void backend_release(struct conn *c)
{
	if (c->up) {
		atomic_fetch_sub_explicit(&c->up->active, 1, memory_order_relaxed);
		c->up = NULL;
	}
}

void conn_close(struct conn *c, int reset)
{
	struct worker *w = c->w;

	if (log_enabled(LOG_LEVEL_DEBUG) && c->connected) {
		char ct[ADDR_TEXT_LEN];

		log_debug("client %s: closed%s (in %llu bytes, out %llu bytes)",
			  conn_client_text(c, ct, sizeof(ct)), reset ? " with reset" : "",
			  (unsigned long long)c->c2b.bytes, (unsigned long long)c->b2c.bytes);
	}
	ev_io_stop(w->loop, &c->cio);
	ev_io_stop(w->loop, &c->bio);
	ev_timer_stop(w->loop, &c->timer);
	if (reset) {
		close_reset(c->cio.fd);
		if (c->bio.fd >= 0)
			close_reset(c->bio.fd);
	} else {
		close(c->cio.fd);
		if (c->bio.fd >= 0)
			close(c->bio.fd);
	}
	relay_release(w, &c->c2b);
	relay_release(w, &c->b2c);
	backend_release(c);
	free(c->attempts);
	conn_unlink(c);
	free(c);
	if (atomic_load_explicit(&w->stopping, memory_order_relaxed) &&
	    atomic_load_explicit(&w->nconns, memory_order_relaxed) == 0)
		ev_break(w->loop, EVBREAK_ALL);
}

void conn_close_all(struct worker *w)
{
	while (w->conns)
		conn_close(w->conns, 1);
}

static const char *failure_text(int error)
{
	switch (error) {
	case ETIMEDOUT:
		return "connect timed out";
	case ECONNREFUSED:
		return "connection refused";
	default:
		return strerror(error);
	}
}

/* Every try failed, or nothing is eligible: refuse the client at once. */
static void conn_fail(struct conn *c)
{
	char ct[ADDR_TEXT_LEN], why[ERR_LEN * 2] = "none is up";
	struct attempts *a = c->attempts;

	if (a && a->n) {
		size_t off = 0;

		for (size_t i = 0; i < a->n && off < sizeof(why); i++)
			off += (size_t)snprintf(why + off, sizeof(why) - off, "%s%s: %s",
						i ? "; " : "", c->w->farm->up[a->tried[i]].name,
						failure_text(a->error[i]));
	}
	log_warn("client %s: no backend available (%s)", conn_client_text(c, ct, sizeof(ct)),
		 why);
	conn_close(c, 1);
}

/* Records why the current backend failed and moves on to the next one. */
static void conn_connect_failed(struct conn *c, int error)
{
	struct upstream *up = c->up;
	struct attempts *a = c->attempts;
	unsigned retries = c->w->farm->pool->retries;
	char ct[ADDR_TEXT_LEN];

	ev_io_stop(c->w->loop, &c->bio);
	ev_timer_stop(c->w->loop, &c->timer);
	close(c->bio.fd);
	ev_io_set(&c->bio, -1, 0);
	if (a == NULL) {
		/* First failure: start keeping the list, beginning with this try. */
		a = c->attempts = calloc(1, sizeof(*a));
		if (a == NULL) {
			backend_release(c);
			conn_close(c, 1);
			return;
		}
		a->tried[a->n++] = (uint32_t)(up - c->w->farm->up);
	}
	backend_release(c);

	a->error[a->n - 1] = error;
	if (a->n <= retries) {
		char tmo[32] = "";

		if (error == ETIMEDOUT) {
			duration_format(c->w->farm->pool->connect_timeout_ms, tmo, sizeof(tmo));
			log_warn("client %s: backend %s %s: connect timed out after %s, trying another",
				 conn_client_text(c, ct, sizeof(ct)), up->name, up->addr_text, tmo);
		} else {
			log_warn("client %s: backend %s %s: %s, trying another",
				 conn_client_text(c, ct, sizeof(ct)), up->name, up->addr_text,
				 failure_text(error));
		}
		conn_connect_next(c);
		return;
	}
	conn_fail(c);
}

static void conn_connected(struct conn *c)
{
	char ct[ADDR_TEXT_LEN];

	ev_timer_stop(c->w->loop, &c->timer);
	free(c->attempts);
	c->attempts = NULL;
	c->connected = 1;
	atomic_fetch_add_explicit(&c->up->total, 1, memory_order_relaxed);
	log_debug("client %s: connected to backend %s %s", conn_client_text(c, ct, sizeof(ct)),
		  c->up->name, c->up->addr_text);
	relay_start(c);
}

static void conn_connect_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct conn *c = container_of(io, struct conn, bio);
	socklen_t len = sizeof(int);
	int error = 0;

	(void)loop;
	(void)revents;
	if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
		error = errno;
	if (error == 0)
		conn_connected(c);
	else
		conn_connect_failed(c, error);
}

static void conn_connect_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct conn *c = container_of(t, struct conn, timer);

	(void)loop;
	(void)revents;
	conn_connect_failed(c, ETIMEDOUT);
}

static void conn_connect_next(struct conn *c)
{
	struct worker *w = c->w;
	struct attempts *a = c->attempts;
	struct upstream *up;
	int idx, fd;

	idx = farm_pick(w, c->hash, a ? a->tried : NULL, a ? a->n : 0);
	if (idx < 0) {
		conn_fail(c);
		return;
	}
	up = &w->farm->up[idx];
	c->up = up;
	atomic_fetch_add_explicit(&up->active, 1, memory_order_relaxed);
	if (a)
		a->tried[a->n++] = (uint32_t)idx;

	fd = socket(up->addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		char ct[ADDR_TEXT_LEN];

		log_warn("client %s: cannot open a socket to %s: %s",
			 conn_client_text(c, ct, sizeof(ct)), up->name, strerror(errno));
		backend_release(c);
		conn_close(c, 1);
		return;
	}
	set_nodelay(fd);
	ev_io_init(&c->bio, conn_connect_io_cb, fd, EV_WRITE);
	if (connect(fd, (const struct sockaddr *)&up->addr.ss, up->addr.len) == 0) {
		conn_connected(c);
		return;
	}
	if (errno != EINPROGRESS) {
		conn_connect_failed(c, errno);
		return;
	}
	/* On loopback and fast networks the handshake is often done by now: a
	 * second connect() says so (EISCONN) or gives the refusal, sparing a
	 * trip through the event loop. */
	if (connect(fd, (const struct sockaddr *)&up->addr.ss, up->addr.len) == 0 ||
	    errno == EISCONN) {
		conn_connected(c);
		return;
	}
	if (errno != EALREADY && errno != EINPROGRESS) {
		conn_connect_failed(c, errno);
		return;
	}
	ev_io_start(w->loop, &c->bio);
	ev_timer_init(&c->timer, conn_connect_timeout_cb,
		      (ev_tstamp)w->farm->pool->connect_timeout_ms / 1000.0, 0.0);
	ev_timer_start(w->loop, &c->timer);
}

static void half_init(struct half *h)
{
	memset(h, 0, sizeof(*h));
	h->pipe[0] = h->pipe[1] = -1;
}

void conn_accepted(struct worker *w, int fd, const struct sockaddr *sa, socklen_t len)
{
	struct conn *c;

	if (atomic_load_explicit(&w->stopping, memory_order_relaxed)) {
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close_reset(fd);
		log_warn("out of memory: dropping a new connection");
		return;
	}
	c->w = w;
	memcpy(&c->client, sa, len < sizeof(c->client) ? len : sizeof(c->client));
	/* TCP_NODELAY comes from the listening socket. */
	if (w->farm->pool->balance == BALANCE_HASH)
		c->hash = hash_client(w->farm->pool->hash_seed, &c->client.sa,
				      w->farm->pool->hash_key == HASH_KEY_IP_PORT);
	ev_io_init(&c->cio, NULL, fd, 0);
	ev_io_init(&c->bio, NULL, -1, 0);
	half_init(&c->c2b);
	half_init(&c->b2c);
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	atomic_fetch_add_explicit(&w->nconns, 1, memory_order_relaxed);
	conn_connect_next(c);
}
