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
		upstream_unref(c->up);
		c->up = NULL;
	}
}

/* Done connecting: the farm is needed no longer. */
static void farm_release(struct conn *c)
{
	farm_unref(c->farm);
	c->farm = NULL;
}

static const char *const end_names[] = {
	[END_CLIENT_CLOSE] = "client-close",   [END_BACKEND_CLOSE] = "backend-close",
	[END_CLIENT_RESET] = "client-reset",   [END_BACKEND_RESET] = "backend-reset",
	[END_IDLE] = "idle-timeout",           [END_NO_BACKEND] = "no-backend",
	[END_SHUTDOWN] = "shutdown",           [END_ERROR] = "error",
	[END_KILLED] = "killed",
	[END_PROXY] = "proxy-header",          [END_DENIED] = "denied",
	[END_CLIENT_LIMIT] = "client-limit",
};

/* --log-connections: one line per connection, key=value for scripts. */
/* --log-connections: one line per connection, a stable contract in every
 * --log-format (tcpdist(1), CONNECTION LOG). No key contains another, so a
 * search for " end=" cannot hit "backend=". */
static void conn_log_end(const struct conn *c, enum conn_end end)
{
	char ct[ADDR_TEXT_LEN], lt[ADDR_TEXT_LEN] = "-";
	struct sockaddr_storage local;
	socklen_t len = sizeof(local);

	if (getsockname(c->cio.fd, (struct sockaddr *)&local, &len) == 0)
		addr_format((const struct sockaddr *)&local, lt, sizeof(lt));
	struct log_field f[] = {
		LOG_STR("client", conn_client_text(c, ct, sizeof(ct))),
		LOG_STR("listener", lt),
		LOG_STR("backend", c->up ? c->up->name : "-"),
		LOG_STR("address", c->up ? c->up->addr_text : "-"),
		LOG_STR("tier", c->tier == 1 ? "primary" : c->tier == 2 ? "backup" : "-"), /* with backups only */
		LOG_STR("czone", zone_pair_name(c->zones, 0)), /* with zones only: the client's */
		LOG_STR("bzone", zone_pair_name(c->zones, 1)), /* and its backend's */
		LOG_UINT("in", c->c2b.bytes),
		LOG_UINT("out", c->b2c.bytes),
		LOG_SECONDS("connect", c->connected ? c->connect_secs : 0.0),
		LOG_UINT("retries", c->retries),
		LOG_SECONDS("duration", ev_now(c->w->loop) - c->started),
		LOG_STR("close", end_names[end]),
	};
	size_t n = sizeof(f) / sizeof(f[0]);

	/* Fields that exist only in some pools: left out, not written as "-". */
	if (!c->zoned) {
		memmove(&f[5], &f[7], (n - 7) * sizeof(f[0]));
		n -= 2;
	}
	if (c->tier == 0) {
		memmove(&f[4], &f[5], (n - 5) * sizeof(f[0]));
		n -= 1;
	}
	log_event(LOG_LEVEL_INFO, "connection", f, n);
}

/* A connection ended: its descriptors are free again, and maybe the pool
 * is below its max_conns. Whichever worker waits for either is woken. */
static void conn_wake_accept(struct worker *w)
{
	struct proc *p = w->proc;
	int waits = 0;

	if (atomic_load_explicit(&w->paused, memory_order_relaxed) & PAUSE_FDS)
		worker_unpause(w, PAUSE_FDS);
	if (atomic_load_explicit(&p->fds.waiting, memory_order_relaxed) > 0)
		waits |= PAUSE_FDS;
	if (atomic_load_explicit(&p->paused_for_limit, memory_order_relaxed) > 0)
		waits |= PAUSE_LIMIT;
	if (waits == 0)
		return;
	for (int i = 0; i < p->nworkers; i++)
		if (atomic_load(&p->workers[i].paused) & waits)
			ev_async_send(p->workers[i].loop, &p->workers[i].resume);
}

void conn_close(struct conn *c, int reset, enum conn_end end)
{
	struct worker *w = c->w;

	if (w->opt->log_connections)
		conn_log_end(c, end);
	if (c->connected) {
		double secs = ev_now(w->loop) - c->started;

		stat_add(&w->stats.duration_hist[hist_bucket(duration_bounds, DURATION_BUCKETS,
							     secs)], 1);
		stat_add(&w->stats.duration_ms, (unsigned long long)(secs * 1000.0));
	}
	if (log_enabled(LOG_LEVEL_DEBUG) && c->connected) {
		char ct[ADDR_TEXT_LEN];
		const struct log_field f[] = {
			LOG_STR("client", conn_client_text(c, ct, sizeof(ct))),
			LOG_UINT("in", c->c2b.bytes),
			LOG_UINT("out", c->b2c.bytes),
			LOG_STR("close", reset ? "reset" : "fin"),
		};

		log_event(LOG_LEVEL_DEBUG, "closed", f, sizeof(f) / sizeof(f[0]));
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
	fd_give(&w->proc->fds, CONN_FDS);
	relay_release(w, &c->c2b);
	relay_release(w, &c->b2c);
	backend_release(c);
	farm_release(c);
	free(c->attempts);
	free(c->pp);
	conn_unadmit(c);
	conn_unlink(c);
	free(c);
	if (atomic_load_explicit(&w->stopping, memory_order_relaxed)) {
		if (atomic_load_explicit(&w->nconns, memory_order_relaxed) == 0)
			ev_break(w->loop, EVBREAK_ALL);
		return;
	}
	conn_wake_accept(w);
}

void conn_close_all(struct worker *w)
{
	while (w->conns)
		conn_close(w->conns, 1, END_SHUTDOWN);
}

/* A failed connect in words, for the log (health checks use it too). */
const char *connect_error_text(int error)
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

/* Every try failed, or nothing is eligible: refuse the client at once. The
 * reason tells a pool that is down from one that is full. */
static void conn_fail(struct conn *c)
{
	char ct[ADDR_TEXT_LEN], why[ERR_LEN * 2] = "none is up";
	struct attempts *a = c->attempts;
	enum fail_reason reason = FAIL_NO_BACKEND;

	if (a && a->n) {
		size_t off = 0;

		reason = FAIL_CONNECT;
		for (size_t i = 0; i < a->n && off < sizeof(why); i++)
			off += (size_t)snprintf(why + off, sizeof(why) - off, "%s%s: %s",
						i ? "; " : "", c->farm->b[a->tried[i]].up->name,
						connect_error_text(a->error[i]));
	} else if (c->where == ZONE_LOCAL && c->farm->pool->locality == LOCALITY_STRICT &&
		   !farm_zone_available(c->farm, c->zone)) {
		reason = FAIL_ZONE;
		snprintf(why, sizeof(why), "zone %s has no available backend (locality = strict)",
			 c->farm->pool->zones[c->zone].name);
	} else if (c->where == ZONE_LOCAL && c->farm->pool->locality == LOCALITY_STRICT) {
		reason = FAIL_FULL;
		snprintf(why, sizeof(why),
			 "every available backend of zone %s is at its max_conns (locality = strict)",
			 c->farm->pool->zones[c->zone].name);
	} else if (farm_count_available(c->farm) > 0) {
		reason = FAIL_FULL;
		snprintf(why, sizeof(why), "every available backend is at its max_conns");
	}
	stat_add(&c->w->stats.failed[reason], 1);
	log_warn("client %s: no backend available (%s)", conn_client_text(c, ct, sizeof(ct)),
		 why);
	conn_close(c, 1, END_NO_BACKEND);
}

/* Records why the current backend failed and moves on to the next one. */
static void conn_connect_failed(struct conn *c, int error)
{
	struct upstream *up = c->up;
	struct attempts *a = c->attempts;
	unsigned retries = c->farm->pool->retries;
	char ct[ADDR_TEXT_LEN];

	ev_io_stop(c->w->loop, &c->bio);
	ev_timer_stop(c->w->loop, &c->timer);
	close(c->bio.fd);
	ev_io_set(&c->bio, -1, 0);
	if (a == NULL) {
		/* First failure: start keeping the list, beginning with this try. */
		a = c->attempts = calloc(1, sizeof(*a));
		if (a == NULL) {
			stat_add(&c->w->stats.failed[FAIL_RESOURCES], 1);
			backend_release(c);
			conn_close(c, 1, END_ERROR);
			return;
		}
		a->tried[a->n++] = c->picked;
	}
	health_connect_failed(c->w->proc, c->farm, up, error);
	upstream_ref(up); /* for the messages below */
	backend_release(c);

	a->error[a->n - 1] = error;
	if (a->n <= retries) {
		stat_add(&c->w->stats.retries, 1);
		char tmo[32] = "";

		if (error == ETIMEDOUT) {
			duration_format(c->farm->pool->connect_timeout_ms, tmo, sizeof(tmo));
			log_warn("client %s: backend %s %s: connect timed out after %s, trying another",
				 conn_client_text(c, ct, sizeof(ct)), up->name, up->addr_text, tmo);
		} else {
			log_warn("client %s: backend %s %s: %s, trying another",
				 conn_client_text(c, ct, sizeof(ct)), up->name, up->addr_text,
				 connect_error_text(error));
		}
		upstream_unref(up);
		conn_connect_next(c);
		return;
	}
	upstream_unref(up);
	conn_fail(c);
}

static void conn_connected(struct conn *c)
{
	enum proxy_version pp = c->farm->b[c->picked].proxy;
	char ct[ADDR_TEXT_LEN];

	ev_timer_stop(c->w->loop, &c->timer);
	free(c->attempts);
	c->attempts = NULL;
	c->connected = 1;
	c->idle_ms = c->farm->pool->idle_timeout_ms;
	farm_release(c);
	health_connect_ok(c->up);
	atomic_fetch_add_explicit(&c->up->total, 1, memory_order_relaxed);
	c->connect_secs = (float)(ev_time() - c->started) - c->connect_at;
	if (c->connect_secs < 0)
		c->connect_secs = 0;
	atomic_fetch_add_explicit(&c->up->connect_hist[hist_bucket(connect_bounds, CONNECT_BUCKETS,
								    c->connect_secs)],
				  1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->up->connect_us, (unsigned long long)(c->connect_secs * 1e6),
				  memory_order_relaxed);
	if (log_enabled(LOG_LEVEL_DEBUG)) {
		const struct log_field f[] = {
			LOG_STR("client", conn_client_text(c, ct, sizeof(ct))),
			LOG_STR("backend", c->up->name),
			LOG_STR("address", c->up->addr_text),
			LOG_SECONDS("connect", c->connect_secs),
			LOG_UINT("retries", c->retries),
		};

		log_event(LOG_LEVEL_DEBUG, "connected", f, sizeof(f) / sizeof(f[0]));
	}
	if ((c->c2b.buf || pp != PROXY_OFF) && proxy_connected(c, pp) < 0)
		return; /* closed */
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

/* The zones' names for the log (the farm is gone by the close) and the
 * counts of the metrics. */
static void conn_zones(struct conn *c, int idx)
{
	const struct pool *p = c->farm->pool;
	unsigned bz = idx < 0 ? POOL_ZONE_NONE : p->backends[idx].zone;

	c->zoned = 1;
	c->zones = zone_stats_pair(c->w->proc, c->zone < p->nzones ? p->zones[c->zone].name : "-",
				   bz < p->nzones ? p->zones[bz].name : "-");
	if (c->attempts == NULL) /* its first choice */
		zone_stats_count(c->zones, idx < 0 ? ZONE_STATS_REFUSED : (int)c->where);
}

static void conn_connect_next(struct conn *c)
{
	struct worker *w = c->w;
	struct attempts *a = c->attempts;
	struct upstream *up;
	enum zone_where where;
	int idx, fd;

	idx = farm_pick(w, c->farm, c->hash, c->zone, a ? a->tried : NULL, a ? a->n : 0, &where);
	c->where = (uint8_t)where;
	if (c->farm->pool->nzones)
		conn_zones(c, idx);
	if (idx < 0) {
		conn_fail(c);
		return;
	}
	up = c->farm->b[idx].up;
	upstream_ref(up);
	c->up = up;
	c->picked = (uint32_t)idx;
	c->tier = c->farm->has_backup ? 1 + c->farm->b[idx].backup : 0;
	c->retries = (uint8_t)(a ? a->n : 0); /* before this try joins the list */
	c->connect_at = (float)(ev_time() - c->started);
	atomic_fetch_add_explicit(&up->active, 1, memory_order_relaxed);
	if (a)
		a->tried[a->n++] = (uint32_t)idx;

	/* Its descriptor was counted at accept (listener.c): only the
	 * kernel's own limits, or the main thread past its reserve, fail it. */
	fd = socket(up->addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		char ct[ADDR_TEXT_LEN];
		int error = errno;

		log_warn("client %s: cannot open a socket to %s: %s",
			 conn_client_text(c, ct, sizeof(ct)), up->name, strerror(error));
		stat_add(&w->stats.failed[FAIL_RESOURCES], 1);
		if (error == EMFILE || error == ENFILE)
			worker_out_of_fds(w, NULL);
		conn_close(c, 1, END_ERROR);
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
		      (ev_tstamp)c->farm->pool->connect_timeout_ms / 1000.0, 0.0);
	ev_timer_start(w->loop, &c->timer);
}

static void half_init(struct half *h)
{
	memset(h, 0, sizeof(*h));
	h->pipe[0] = h->pipe[1] = -1;
}

/* fd and its backend's socket are counted in the budget (CONN_FDS); the
 * connection gives them back at its close. */
void conn_accepted(struct worker *w, int fd, const struct sockaddr *sa, socklen_t len,
		   const union proxy_addr *local)
{
	struct conn *c;

	if (atomic_load_explicit(&w->stopping, memory_order_relaxed)) {
		close(fd);
		fd_give(&w->proc->fds, CONN_FDS);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close_reset(fd);
		fd_give(&w->proc->fds, CONN_FDS);
		log_warn("out of memory: dropping a new connection");
		return;
	}
	c->w = w;
	c->farm = w->farm;
	c->tier = c->farm->has_backup ? 3 : 0; /* none chosen yet */
	farm_ref(c->farm);
	c->started = ev_now(w->loop);
	stat_add(&w->stats.accepted, 1);
	memcpy(&c->client, sa, len < sizeof(c->client) ? len : sizeof(c->client));
	if (local) {
		c->dst = *local;
		c->has_dst = 1;
	}
	/* TCP_NODELAY comes from the listening socket. */
	ev_io_init(&c->cio, NULL, fd, 0);
	ev_io_init(&c->bio, NULL, -1, 0);
	half_init(&c->c2b);
	half_init(&c->b2c);
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	atomic_fetch_add_explicit(&w->nconns, 1, memory_order_relaxed);
	if (c->farm->pool->accept_proxy_from.n)
		proxy_accept(c); /* then conn_identified */
	else
		conn_identified(c);
}

/* The client is known, from its PROXY header if it sent one: admitted, it
 * is hashed and connected. */
void conn_identified(struct conn *c)
{
	const struct pool *p = c->farm->pool;

	if (conn_admit(c) < 0)
		return;
	if (p->balance == BALANCE_HASH)
		c->hash = hash_client(p->hash_seed, &c->client.sa, p->hash_key == HASH_KEY_IP_PORT);
	c->zone = p->nzones ? (uint16_t)pool_client_zone(p, &c->client.sa) : POOL_ZONE_NONE;
	conn_connect_next(c);
}
