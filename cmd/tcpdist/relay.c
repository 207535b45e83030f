/* Moving bytes between the client and the backend, both directions.
 *
 * Each direction (struct half) reads its source only while its destination
 * has taken everything read so far: a side that cannot keep up stops the
 * other from being read (backpressure), so memory per connection is bounded
 * by one buffer or one pipe per direction. Small reads are copied through
 * the worker's scratch buffer; once a read is large, the direction switches
 * to splice(2) through a pipe. Buffers and pipes are borrowed from the
 * worker only while bytes are in flight, so idle connections hold neither.
 * A pipe's descriptors come out of the workers' budget (fdbudget.c) when it
 * has room; when not, the direction copies: a relay never fails for want of
 * a pipe, and idle pipes are kept only while descriptors are plentiful.
 * A FIN is passed on with shutdown(SHUT_WR) and the other direction goes on;
 * a reset on either side resets the other. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "num.h"
#include "tcpdist.h"

#define PIPE_FDS 2
#define PIPE_KEEP_ROOM (4 * CACHE_MAX) /* descriptors still free when a pipe is kept idle */
#define HEADER_HOLD 0.001 /* seconds a PROXY header waits for the client's bytes: tcpdist.pool(5) */

enum { FLUSH_ERROR = -1, FLUSH_BLOCKED = 0, FLUSH_DONE = 1 };
enum { HALF_COPY = 0, HALF_SPLICE = 1, HALF_NO_SPLICE = 2 }; /* struct half's splice */

static char *buf_get(struct worker *w)
{
	if (w->nbuf_cache > 0)
		return w->buf_cache[--w->nbuf_cache];
	return malloc(RELAY_SCRATCH);
}

static void buf_put(struct worker *w, char *buf)
{
	if (w->nbuf_cache < CACHE_MAX)
		w->buf_cache[w->nbuf_cache++] = buf;
	else
		free(buf);
}

static int pipe_get(struct worker *w, struct half *h)
{
	struct fd_budget *fdb = &w->proc->fds;

	if (w->npipe_cache > 0) {
		w->npipe_cache--;
		h->pipe[0] = w->pipe_cache[w->npipe_cache][0];
		h->pipe[1] = w->pipe_cache[w->npipe_cache][1];
		return 0;
	}
	if (fd_take(fdb, PIPE_FDS) < 0)
		return -1;
	if (pipe2(h->pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
		fd_give(fdb, PIPE_FDS);
		return -1;
	}
	return 0;
}

static void pipe_close(struct worker *w, int fds[2])
{
	close(fds[0]);
	close(fds[1]);
	fd_give(&w->proc->fds, PIPE_FDS);
}

/* Returns an empty pipe to the worker; a pipe still holding bytes is closed. */
static void pipe_put(struct worker *w, struct half *h)
{
	if (h->pipe[0] < 0)
		return;
	if (h->pipe_bytes == 0 && w->npipe_cache < CACHE_MAX &&
	    fd_room(&w->proc->fds) >= PIPE_KEEP_ROOM &&
	    !(atomic_load_explicit(&w->paused, memory_order_relaxed) & PAUSE_FDS)) {
		w->pipe_cache[w->npipe_cache][0] = h->pipe[0];
		w->pipe_cache[w->npipe_cache][1] = h->pipe[1];
		w->npipe_cache++;
	} else {
		pipe_close(w, h->pipe);
	}
	h->pipe[0] = h->pipe[1] = -1;
	h->pipe_bytes = 0;
}

void relay_release(struct worker *w, struct half *h)
{
	if (h->buf) {
		buf_put(w, h->buf);
		h->buf = NULL;
	}
	pipe_put(w, h);
}

/* Before the relay starts, what the backend gets first: the bytes read with
 * a client's PROXY header, then the header it is sent itself in front. The
 * buffer keeps PROXY_OUT_MAX bytes free at its head for that. */
int relay_queue(struct conn *c, const void *data, size_t len, int front)
{
	struct half *h = &c->c2b;

	if (h->buf == NULL) {
		if ((h->buf = buf_get(c->w)) == NULL)
			return -1;
		h->buf_off = PROXY_OUT_MAX;
		h->buf_len = 0;
	}
	if (front) {
		if (len > h->buf_off)
			return -1;
		h->buf_off -= (uint32_t)len;
		memcpy(h->buf + h->buf_off, data, len);
	} else {
		if (len > RELAY_SCRATCH - h->buf_off - h->buf_len)
			return -1;
		memcpy(h->buf + h->buf_off + h->buf_len, data, len);
	}
	h->buf_len += (uint32_t)len;
	return 0;
}

void relay_pipes_drop(struct worker *w)
{
	while (w->npipe_cache > 0) {
		w->npipe_cache--;
		pipe_close(w, w->pipe_cache[w->npipe_cache]);
	}
}

void relay_cache_free(struct worker *w)
{
	while (w->nbuf_cache > 0)
		free(w->buf_cache[--w->nbuf_cache]);
	relay_pipes_drop(w);
}

static int would_block(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/* Writes out what a direction holds. */
static int half_flush(struct conn *c, struct half *h, int dst)
{
	ssize_t n;

	if (h->pipe_bytes > 0) {
		n = splice(h->pipe[0], NULL, dst, NULL, h->pipe_bytes,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n < 0)
			return would_block() ? FLUSH_BLOCKED : FLUSH_ERROR;
		h->pipe_bytes -= (uint32_t)n;
		c->last_active = ev_now(c->w->loop);
		return h->pipe_bytes ? FLUSH_BLOCKED : FLUSH_DONE;
	}
	if (h->buf) {
		n = write(dst, h->buf + h->buf_off, h->buf_len);
		if (n < 0)
			return would_block() ? FLUSH_BLOCKED : FLUSH_ERROR;
		h->buf_off += (uint32_t)n;
		h->buf_len -= (uint32_t)n;
		c->last_active = ev_now(c->w->loop);
		if (h->buf_len)
			return FLUSH_BLOCKED;
		buf_put(c->w, h->buf);
		h->buf = NULL;
	}
	return FLUSH_DONE;
}

static void log_splicing(struct conn *c, struct half *h)
{
	char ct[ADDR_TEXT_LEN];

	log_debug("client %s: splicing %s", conn_client_text(c, ct, sizeof(ct)),
		  h == &c->c2b ? "client->backend" : "backend->client");
}

/* Reads once into the scratch buffer and writes it straight on; keeps only
 * what the destination would not take. Returns bytes read, 0 at EOF, -1. */
static ssize_t half_copy(struct conn *c, struct half *h, int src, int dst)
{
	struct worker *w = c->w;
	ssize_t n, m;

	n = read(src, w->scratch, RELAY_SCRATCH);
	if (n <= 0)
		return n;
	m = write(dst, w->scratch, (size_t)n);
	if (m < 0) {
		if (!would_block())
			return errno = EPIPE, -1;
		m = 0;
	}
	if (m < n) {
		h->buf = buf_get(w);
		if (h->buf == NULL)
			return errno = ENOMEM, -1;
		h->buf_off = 0;
		h->buf_len = (uint32_t)(n - m);
		memcpy(h->buf, w->scratch + m, h->buf_len);
	}
	if (n >= RELAY_SPLICE_AFTER && w->opt->splice && h->splice == HALF_COPY) {
		h->splice = HALF_SPLICE;
		log_splicing(c, h);
	}
	return n;
}

/* Moves bytes from the source socket into the direction's pipe. */
static ssize_t half_splice_in(struct conn *c, struct half *h, int src)
{
	ssize_t n;

	if (h->pipe[0] < 0 && pipe_get(c->w, h) < 0) {
		h->pipe[0] = h->pipe[1] = -1;
		h->splice = HALF_COPY; /* no fds for a pipe now: copy, try again later */
		return -2;
	}
	n = splice(src, NULL, h->pipe[1], NULL, RELAY_PIPE_SIZE, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (n > 0)
		h->pipe_bytes += (uint32_t)n;
	else if (n < 0 && (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
		h->splice = HALF_NO_SPLICE; /* this kind of socket cannot splice */
		return -2;
	}
	return n;
}

/* Read from its source and not yet taken by its destination. */
static int half_holds_data(const struct half *h)
{
	return h->blocked || h->pipe_bytes > 0 || h->buf != NULL;
}

/* Everything is passed on in both directions: the pair is done. */
static int conn_finished(struct conn *c)
{
	return c->c2b.shut && c->b2c.shut;
}

/* Which side a failed read (ECONNRESET) or write (EPIPE) of h points at. */
static enum conn_end half_failure(const struct conn *c, const struct half *h, int error)
{
	int from_client = h == &c->c2b;

	if (error == ECONNRESET)
		return from_client ? END_CLIENT_RESET : END_BACKEND_RESET;
	if (error == EPIPE)
		return from_client ? END_BACKEND_RESET : END_CLIENT_RESET;
	return END_ERROR;
}

void relay_count(struct conn *c, struct half *h, size_t n)
{
	h->bytes += n;
	/* Shared by the workers: an atomic add, once per read. */
	atomic_fetch_add_explicit(h == &c->c2b ? &c->up->bytes_in : &c->up->bytes_out, n,
				  memory_order_relaxed);
	stat_add(h == &c->c2b ? &c->w->stats.bytes_in : &c->w->stats.bytes_out, n);
}

/* Reads the client's bytes in behind the PROXY header queued in c2b, once,
 * without waiting: 1 some came (or its end), 0 none yet, -1 the client
 * failed and the connection is closed. */
static int relay_fill(struct conn *c)
{
	struct half *h = &c->c2b;
	size_t room = RELAY_SCRATCH - h->buf_off - h->buf_len;
	ssize_t n;

	h->held = 0;
	if (room == 0)
		return 1;
	n = recv(c->cio.fd, h->buf + h->buf_off + h->buf_len, room, MSG_DONTWAIT);
	if (n > 0) {
		h->buf_len += (uint32_t)n;
		relay_count(c, h, (size_t)n);
		c->last_active = ev_now(c->w->loop);
		/* Read short: the relay's first read would find nothing. */
		h->drained = (size_t)n < room;
		return 1;
	}
	if (n == 0) {
		/* As the relay would have read it: while the header waited,
		 * the backend may have ended first. */
		h->eof = 1;
		h->eof_first = !c->b2c.eof;
		return 1;
	}
	if (!would_block()) {
		conn_close(c, 1, END_CLIENT_RESET);
		return -1;
	}
	h->drained = 1;
	return 0;
}

/* Moves what it can from src to dst. Returns -1 once the connection is closed. */
static int half_pump(struct conn *c, struct half *h, int src, int dst)
{
	int drained;
	ssize_t n;

	/* The client spoke, or the header waited long enough (relay_hold_cb). */
	if (h->held && relay_fill(c) < 0)
		return -1;
	drained = h->drained;
	h->drained = 0;

	for (int round = 0;; round++) {
		switch (half_flush(c, h, dst)) {
		case FLUSH_ERROR: /* the destination is gone */
			conn_close(c, 1, h == &c->c2b ? END_BACKEND_RESET : END_CLIENT_RESET);
			return -1;
		case FLUSH_BLOCKED:
			h->blocked = 1;
			return 0;
		}
		h->blocked = 0;
		if (h->eof) {
			pipe_put(c->w, h);
			h->shut = 1;
			/* The last FIN of the pair: close() sends it with the rest. */
			if (conn_finished(c)) {
				conn_close(c, 0, c->b2c.eof_first ? END_BACKEND_CLOSE : END_CLIENT_CLOSE);
				return -1;
			}
			shutdown(dst, SHUT_WR);
			return 0;
		}
		/* A short read emptied the socket; epoll tells when more comes. */
		if (drained || round == RELAY_ROUNDS) {
			pipe_put(c->w, h);
			return 0;
		}
		n = h->splice == HALF_SPLICE ? half_splice_in(c, h, src) : -2;
		if (n == -2)
			n = half_copy(c, h, src, dst);
		if (n > 0) {
			relay_count(c, h, (size_t)n);
			c->last_active = ev_now(c->w->loop);
			drained = n < (h->pipe[0] >= 0 ? RELAY_PIPE_SIZE : RELAY_SCRATCH);
			continue;
		}
		if (n == 0) {
			h->eof = 1;
			h->eof_first = !(h == &c->c2b ? c->b2c.eof : c->c2b.eof);
			continue;
		}
		if (would_block()) {
			pipe_put(c->w, h);
			return 0;
		}
		conn_close(c, 1, half_failure(c, h, errno)); /* passed on as a reset */
		return -1;
	}
}

static void watch_set(struct ev_loop *loop, ev_io *io, int events)
{
	if (ev_is_active(io)) {
		if ((io->events & (EV_READ | EV_WRITE)) == events)
			return;
		ev_io_stop(loop, io);
	}
	if (events) {
		ev_io_modify(io, events);
		ev_io_start(loop, io);
	}
}

static void relay_watch(struct conn *c)
{
	struct ev_loop *loop = c->w->loop;

	watch_set(loop, &c->cio,
		  (!c->c2b.eof && !c->c2b.blocked ? EV_READ : 0) | (c->b2c.blocked ? EV_WRITE : 0));
	watch_set(loop, &c->bio,
		  (!c->b2c.eof && !c->b2c.blocked ? EV_READ : 0) | (c->c2b.blocked ? EV_WRITE : 0));
}

static void relay_client_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct conn *c = container_of(io, struct conn, cio);

	(void)loop;
	if ((revents & EV_WRITE) && half_pump(c, &c->b2c, c->bio.fd, c->cio.fd) < 0)
		return;
	if ((revents & EV_READ) && half_pump(c, &c->c2b, c->cio.fd, c->bio.fd) < 0)
		return;
	relay_watch(c);
}

static void relay_backend_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct conn *c = container_of(io, struct conn, bio);

	(void)loop;
	if ((revents & EV_WRITE) && half_pump(c, &c->c2b, c->cio.fd, c->bio.fd) < 0)
		return;
	if ((revents & EV_READ) && half_pump(c, &c->b2c, c->bio.fd, c->cio.fd) < 0)
		return;
	relay_watch(c);
}

/* "Be smart about timeouts" (ev(3)): activity only stamps last_active; the
 * timer re-arms itself for the remaining time when it fires early. */
static void relay_idle_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct conn *c = container_of(t, struct conn, timer);
	ev_tstamp idle = (ev_tstamp)c->idle_ms / 1000.0;
	ev_tstamp left = c->last_active + idle - ev_now(loop);

	(void)revents;
	if (left > 0.0005) {
		ev_timer_set(t, left, 0.0);
		ev_timer_start(loop, t);
		return;
	}
	if (log_enabled(LOG_LEVEL_DEBUG)) {
		char ct[ADDR_TEXT_LEN], d[32];

		duration_format(c->idle_ms, d, sizeof(d));
		log_debug("client %s: idle for %s, closing", conn_client_text(c, ct, sizeof(ct)),
			  d);
	}
	/* Bytes still held for a side that stopped reading would be lost: a
	 * FIN would pass the cut stream off as whole, a reset says it is not. */
	conn_close(c, half_holds_data(&c->c2b) || half_holds_data(&c->b2c), END_IDLE);
}

static void relay_idle_start(struct conn *c)
{
	if (c->idle_ms) {
		ev_timer_init(&c->timer, relay_idle_cb, (ev_tstamp)c->idle_ms / 1000.0, 0.0);
		ev_timer_start(c->w->loop, &c->timer);
	}
}

/* A held PROXY header has waited its millisecond: it goes now, with
 * whatever the client sent meanwhile, so that a backend which speaks first
 * (SMTP, MySQL) is not kept waiting for a client that waits for it. */
static void relay_hold_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct conn *c = container_of(t, struct conn, timer);

	(void)loop;
	(void)revents;
	relay_idle_start(c);
	if (c->c2b.held) {
		if (half_pump(c, &c->c2b, c->cio.fd, c->bio.fd) < 0)
			return;
		relay_watch(c);
	}
}

void relay_start(struct conn *c)
{
	struct ev_loop *loop = c->w->loop;

	ev_set_cb(&c->cio, relay_client_cb);
	ev_set_cb(&c->bio, relay_backend_cb);
	ev_io_stop(loop, &c->bio);
	c->last_active = ev_now(loop);
	if (c->c2b.held) {
		/* The client's first bytes, if they come within 1 ms, go with
		 * it (the relay's client read, half_pump); else the timer sends it. */
		ev_timer_init(&c->timer, relay_hold_cb, HEADER_HOLD, 0.0);
		ev_timer_start(loop, &c->timer);
		relay_watch(c);
		return;
	}
	relay_idle_start(c);
	/* The client often spoke already (an HTTP request): no need to wait
	 * for the loop to say so. */
	if (half_pump(c, &c->c2b, c->cio.fd, c->bio.fd) < 0)
		return;
	relay_watch(c);
}
