/* Backend health. Passive: the workers report every connect result, and
 * check_fall failures in a row take a backend out. Active: the main thread
 * checks every backend each check_interval (jittered so checks of many
 * tcpdist processes do not line up): a connect, or a conversation
 * (send-expect, http) that checkproto.c judges, never waiting on a socket
 * and bounded by check_timeout and CHECK_READ_MAX; check_rise successes in
 * a row bring a failing backend back, check_fall failures take a healthy
 * one out. They count apart from the passive failures, which client
 * connects reset: a service that accepts connections may still answer
 * wrong. Each transition is logged once, by whoever makes it, with the
 * reason; a backend taken down with on_down = shutdown has its connections
 * reset by every worker (a survey, as tcpdist kill does). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "num.h"
#include "rng.h"
#include "tcpdist.h"

#define CHECKS_IN_FLIGHT_MAX 64 /* descriptors kept back for checks (worker.c) */
#define CHECK_WAIT_SLOT 0.05     /* seconds before a check held back tries again */
#define CHECK_BATCH 0.01         /* seconds of events the main loop gathers... */
#define CHECK_BATCH_RATE 100     /* ...once checks come this often a second */

#define upstream_of(ptr, member) container_of(ptr, struct upstream, check.member)

/* slowstart: the backend's weight ramps up from now (farm_ramp). Stamped
 * whatever its slowstart, which a reload may change. */
static void ramp_begin(struct upstream *u)
{
	uint64_t now = monotonic_ms();

	atomic_store_explicit(&u->ramp_from, now ? now : 1, memory_order_relaxed);
}

/* " (slow start over 10s)" for the log of a backend that came up, or "". */
static const char *ramp_text(const struct pool_backend *cfg, char *buf, size_t cap)
{
	char d[24];

	if (cfg == NULL || cfg->check.slowstart_ms == 0)
		return "";
	duration_format(cfg->check.slowstart_ms, d, sizeof(d));
	snprintf(buf, cap, " (slow start over %s)", d);
	return buf;
}

/* why: the last failure's reason. */
static void mark_down(struct upstream *u, const char *how, unsigned count, const char *why)
{
	int up = 0;

	if (!atomic_compare_exchange_strong(&u->down, &up, 1))
		return;
	char reason[CHECK_REASON_LEN + 48];

	atomic_fetch_add_explicit(&u->went_down, 1, memory_order_relaxed);
	snprintf(reason, sizeof(reason), "%u %s failed in a row (%s)", count, how, why);
	upstream_set_reason(u, reason);
	upstream_changed(u);
	log_warn("backend %s %s is down: %s", u->name, u->addr_text, reason);
}

static void mark_up(struct upstream *u, unsigned rises)
{
	int down = 1;

	if (!atomic_compare_exchange_strong(&u->down, &down, 0))
		return;
	atomic_fetch_add_explicit(&u->came_up, 1, memory_order_relaxed);
	ramp_begin(u);
	char reason[64];

	snprintf(reason, sizeof(reason), "%u check%s passed", rises, rises == 1 ? "" : "s");
	upstream_set_reason(u, reason);
	upstream_changed(u);
	char ramp[48];

	log_info("backend %s %s is up: %u check%s passed%s", u->name, u->addr_text, rises,
		 rises == 1 ? "" : "s", ramp_text(u->check.cfg, ramp, sizeof(ramp)));
}

void health_connect_ok(struct upstream *u)
{
	/* Read first: a store per connection would bounce the cache line. */
	if (atomic_load_explicit(&u->fails, memory_order_relaxed))
		atomic_store_explicit(&u->fails, 0, memory_order_relaxed);
}

static enum connect_error connect_error_kind(int error)
{
	return error == ECONNREFUSED ? CONNECT_REFUSED
	       : error == ETIMEDOUT ? CONNECT_TIMEOUT
				    : CONNECT_OTHER;
}

/* Without active checks nothing could bring a backend back, so passive
 * failures then only count; the retries cover the client. */
void health_connect_failed(struct proc *p, const struct farm *f, struct upstream *u, int error)
{
	unsigned fails;

	atomic_fetch_add_explicit(&u->connect_errors[connect_error_kind(error)], 1,
				  memory_order_relaxed);
	if (f->pool->check_interval_ms == 0)
		return;
	fails = atomic_fetch_add_explicit(&u->fails, 1, memory_order_relaxed) + 1;
	if (fails >= f->pool->check_fall && !atomic_load(&u->down)) {
		mark_down(u, "connection attempts", fails, connect_error_text(error));
		ev_async_send(p->loop, &p->health_changed);
	}
}

/* --- on_down = shutdown -------------------------------------------------- */

/* Every worker resets its connections to the backend (sessions.c's kill);
 * then one line says how many went, if any did. */
static void cut_ask(struct worker *w, struct survey *s)
{
	sessions_kill(w, s);
}

static void cut_done(struct survey *s)
{
	struct session_query *q = s->ctx;
	size_t n = 0;

	for (int k = 0; k < q->nworkers; k++)
		n += q->per[k].total;
	if (n > 0)
		log_warn("backend %s: on_down = shutdown: %zu connection%s reset", q->backend, n,
			 n == 1 ? "" : "s");
	session_query_free(q);
	survey_free(s);
}

/* Main thread: a backend its health took down, with on_down = shutdown,
 * has its connections reset, once per time it went down. */
static void cut_if_down(struct proc *p, struct upstream *u)
{
	struct check *k = &u->check;
	unsigned long long went = atomic_load_explicit(&u->went_down, memory_order_relaxed);
	struct session_query *q;
	struct survey *s;

	if (k->cfg == NULL || k->cfg->check.on_down != ON_DOWN_SHUTDOWN ||
	    !atomic_load(&u->down) || k->cut_for == went)
		return;
	k->cut_for = went;
	if ((q = session_query_new(p->nworkers)) == NULL ||
	    (s = survey_new(p, cut_ask, cut_done, q)) == NULL) {
		session_query_free(q);
		log_err("backend %s: on_down = shutdown: out of memory, its connections stay",
			u->name);
		return;
	}
	snprintf(q->backend, sizeof(q->backend), "%s", u->name);
	q->limit = 0;
	survey_start(s);
}

/* --- active checks, main thread only ------------------------------------ */

/* A check under way. It holds the farm whose settings it runs, so a reload
 * meanwhile frees nothing it reads. */
struct check_run {
	struct farm *farm;
	const struct pool_backend *cfg;
	struct check_proto proto; /* send-expect and http */
	uint64_t timeout_ms;
	int connected;
};

/* The next check every check_interval (jittered) from the start of the
 * last, so a slow check does not stretch the interval; first >= 0 instead
 * gives the delay. */
static void check_schedule(struct upstream *u, double first)
{
	struct check *k = &u->check;
	struct proc *p = k->proc;
	double every = (double)k->interval_ms / 1000.0, delay = first;

	if (delay < 0) {
		delay = every * (0.9 + 0.2 * rng_unit(&p->rng)) - (ev_now(p->loop) - k->started);
		if (delay < every * 0.1)
			delay = every * 0.1;
	}
	ev_timer_stop(p->loop, &k->timer);
	ev_timer_set(&k->timer, delay, 0.0);
	ev_timer_start(p->loop, &k->timer);
}

/* The result of a check: rises and falls, and the transitions they make. */
static void check_verdict(struct upstream *u, enum check_result result, const char *reason)
{
	struct check *k = &u->check;
	struct proc *p = k->proc;
	const struct pool *pool = p->farm->pool;

	k->last_result = result;
	snprintf(k->last_reason, sizeof(k->last_reason), "%s",
		 result == CHECK_PASSED ? "" : reason);
	if (result == CHECK_PASSED) {
		k->falls = 0;
		atomic_store_explicit(&u->fails, 0, memory_order_relaxed);
		if (atomic_load(&u->down) && ++k->rises >= pool->check_rise) {
			mark_up(u, k->rises);
			k->rises = 0;
			health_availability(p);
		}
	} else {
		k->rises = 0;
		if (++k->falls >= pool->check_fall && !atomic_load(&u->down)) {
			mark_down(u, "checks", k->falls, reason);
			cut_if_down(p, u);
			health_availability(p);
		} else if (!atomic_load(&u->down)) {
			log_debug("backend %s %s: check failed (%s)", u->name, u->addr_text, reason);
		}
	}
}

/* Ends the check under way, if any: its socket closed, its run freed. */
static void check_release(struct upstream *u)
{
	struct check *k = &u->check;
	struct check_run *run = k->run;

	ev_io_stop(k->proc->loop, &k->io);
	if (k->fd >= 0) {
		/* A reset, not a FIN: no TIME_WAIT left behind per check. */
		struct linger lg = {1, 0};

		if (run && run->connected)
			setsockopt(k->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(k->fd);
		k->fd = -1;
		k->proc->checks_running--;
	}
	k->run = NULL;
	if (run) {
		check_proto_end(&run->proto);
		farm_unref(run->farm); /* last: it may hold the last reference to u's farm */
		free(run);
	}
}

static void check_end(struct upstream *u, enum check_result result, const char *reason)
{
	struct check *k = &u->check;
	char why[CHECK_REASON_LEN];

	snprintf(why, sizeof(why), "%s", reason); /* it may live in the run */
	ev_timer_stop(k->proc->loop, &k->timer);
	k->last_duration = ev_now(k->proc->loop) - k->started;
	if (k->last_duration < 0)
		k->last_duration = 0;
	check_release(u);
	check_verdict(u, result, why);
	check_schedule(u, -1);
}

/* A failed connect in the words of the log and its result. */
static void check_connect_failed(struct upstream *u, int error)
{
	char reason[CHECK_REASON_LEN];

	if (error == ETIMEDOUT) {
		char d[24];

		duration_format(u->check.run->timeout_ms, d, sizeof(d));
		snprintf(reason, sizeof(reason), "connect timed out after %s", d);
		check_end(u, CHECK_CONNECT_TIMEOUT, reason);
		return;
	}
	snprintf(reason, sizeof(reason), "%s", connect_error_text(error));
	check_end(u, error == ECONNREFUSED ? CHECK_REFUSED : CHECK_CONNECT_ERROR, reason);
}

/* Moves bytes between the socket and the protocol until it waits or ends. */
static void check_pump(struct upstream *u, int readable)
{
	struct check *k = &u->check;
	struct check_proto *cp = &k->run->proto;
	int events = 0;

	for (;;) {
		enum check_want want = check_proto_want(cp);
		size_t len;
		ssize_t n;

		if (want == CHECK_WANT_NOTHING) {
			check_end(u, cp->result, cp->reason);
			return;
		}
		if (want == CHECK_WANT_SEND) {
			const char *out = check_proto_output(cp, &len);

			n = send(k->fd, out, len, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n >= 0)
				check_proto_sent(cp, (size_t)n);
			else if (errno == EAGAIN || errno == EWOULDBLOCK)
				events = EV_WRITE;
			else if (errno != EINTR)
				check_proto_closed(cp, 1);
		} else if (readable) {
			char *in = check_proto_input(cp, &len);

			if (in == NULL)
				continue;
			n = recv(k->fd, in, len, MSG_DONTWAIT);
			readable = 0; /* once per event: the next comes when more is there */
			if (n > 0)
				check_proto_received(cp, (size_t)n);
			else if (n == 0)
				check_proto_closed(cp, 0);
			else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				check_proto_closed(cp, 1);
			else
				events = EV_READ;
		} else {
			events = EV_READ;
		}
		if (events) {
			if ((k->io.events & (EV_READ | EV_WRITE)) != events || !ev_is_active(&k->io)) {
				ev_io_stop(k->proc->loop, &k->io);
				ev_io_set(&k->io, k->fd, events);
				ev_io_start(k->proc->loop, &k->io);
			}
			return;
		}
	}
}

/* The Host header of an HTTP check: the backend's host as written in the
 * pool, with the port checked. */
static void check_host(const struct upstream *u, const struct pool_backend *cfg, char *out,
		       size_t cap)
{
	const char *a = cfg->addr_text, *colon = strrchr(a, ':');
	const struct sockaddr *sa = (const struct sockaddr *)&u->addr.ss;
	unsigned port = cfg->check.port
				? cfg->check.port
				: ntohs(sa->sa_family == AF_INET6
						? ((const struct sockaddr_in6 *)sa)->sin6_port
						: ((const struct sockaddr_in *)sa)->sin_port);
	size_t hlen = colon && (a[0] != '[' || colon[-1] == ']') ? (size_t)(colon - a) : strlen(a);

	snprintf(out, cap, "%.*s:%u", (int)hlen, a, port);
}

static void check_connected(struct upstream *u)
{
	struct check *k = &u->check;
	struct check_run *run = k->run;
	const struct check_spec *spec = &run->cfg->check;
	char host[ADDR_TEXT_LEN * 4 + 8];

	run->connected = 1;
	if (proxy_check_hello(k->fd, run->cfg->proxy_protocol) < 0) {
		check_end(u, CHECK_ERROR, "cannot send the PROXY header");
		return;
	}
	if (spec->kind == CHECK_CONNECT) {
		check_end(u, CHECK_PASSED, "");
		return;
	}
	check_host(u, run->cfg, host, sizeof(host));
	if (check_proto_begin(&run->proto, spec, host) < 0) {
		check_end(u, CHECK_ERROR, "out of memory");
		return;
	}
	check_pump(u, 0);
}

static void check_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct upstream *u = upstream_of(io, io);
	socklen_t len = sizeof(int);
	int error = 0;

	(void)loop;
	if (u->check.run->connected) {
		check_pump(u, revents & EV_READ);
		return;
	}
	if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
		error = errno;
	if (error)
		check_connect_failed(u, error);
	else
		check_connected(u);
}

/* Where checks go: the backend's address, or its host on check_port. */
static void check_addr(const struct upstream *u, const struct check_spec *spec,
		       struct sockaddr_storage *ss)
{
	*ss = u->addr.ss;
	if (spec->port && ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(spec->port);
	else if (spec->port)
		((struct sockaddr_in *)ss)->sin_port = htons(spec->port);
}

static void check_begin(struct upstream *u)
{
	struct check *k = &u->check;
	struct proc *p = k->proc;
	struct sockaddr_storage ss;
	struct check_run *run;
	int fd;

	/* Checks use the descriptors kept back from clients: never more at once. */
	if (p->checks_running >= CHECKS_IN_FLIGHT_MAX || k->cfg == NULL) {
		check_schedule(u, CHECK_WAIT_SLOT * (1.0 + rng_unit(&p->rng)));
		return;
	}
	if ((run = calloc(1, sizeof(*run))) == NULL) {
		check_schedule(u, -1);
		return;
	}
	fd = socket(u->addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		/* Out of descriptors says nothing about the backend: try later. */
		free(run);
		check_schedule(u, -1);
		return;
	}
	k->started = ev_now(p->loop);
	farm_ref(p->farm);
	run->farm = p->farm;
	run->cfg = k->cfg;
	run->timeout_ms = check_spec_timeout(&k->cfg->check, p->farm->pool->connect_timeout_ms,
					     k->interval_ms);
	k->run = run;
	k->fd = fd;
	p->checks_running++;
	ev_timer_set(&k->timer, (double)run->timeout_ms / 1000.0, 0.0);
	ev_timer_start(p->loop, &k->timer);
	check_addr(u, &k->cfg->check, &ss);
	if (connect(fd, (const struct sockaddr *)&ss, u->addr.len) == 0) {
		check_connected(u);
		return;
	}
	if (errno != EINPROGRESS) {
		check_connect_failed(u, errno);
		return;
	}
	/* Near backends (loopback, a LAN) have often answered by now: a second
	 * connect() says so, and spares a trip through the loop, as in conn.c. */
	if (connect(fd, (const struct sockaddr *)&ss, u->addr.len) == 0 || errno == EISCONN) {
		check_connected(u);
		return;
	}
	if (errno != EALREADY && errno != EINPROGRESS) {
		check_connect_failed(u, errno);
		return;
	}
	ev_io_set(&k->io, fd, EV_WRITE);
	ev_io_start(p->loop, &k->io);
}

/* One timer per backend: it starts a check, and times out a running one. */
static void check_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct upstream *u = upstream_of(t, timer);
	struct check_run *run = u->check.run;

	(void)loop;
	(void)revents;
	if (run == NULL) {
		check_begin(u);
	} else if (!run->connected) {
		check_connect_failed(u, ETIMEDOUT);
	} else {
		check_proto_timeout(&run->proto, run->timeout_ms);
		check_end(u, run->proto.result, run->proto.reason);
	}
}

static void check_stop(struct upstream *u)
{
	struct check *k = &u->check;

	if (k->interval_ms == 0)
		return;
	ev_timer_stop(k->proc->loop, &k->timer);
	check_release(u);
	k->interval_ms = 0;
	k->rises = k->falls = 0;
}

static void check_start(struct proc *p, struct upstream *u, uint64_t interval_ms)
{
	struct check *k = &u->check;

	check_stop(u);
	k->proc = p;
	k->interval_ms = interval_ms;
	ev_timer_init(&k->timer, check_timer_cb, 0.0, 0.0);
	ev_io_init(&k->io, check_io_cb, -1, EV_WRITE);
	/* The first check somewhere within the first interval. */
	check_schedule(u, (double)interval_ms / 1000.0 * rng_unit(&p->rng));
}

/* With checks off, nothing would ever bring a backend back: up it goes. */
static void up_without_checks(struct upstream *u)
{
	if (atomic_load(&u->down)) {
		atomic_store(&u->down, 0);
		ramp_begin(u);
		log_info("backend %s %s: health checks are off, taking it as up", u->name,
			 u->addr_text);
	}
}

/* Whether the file lets the backend take new connections. */
static int file_up(const struct farm_backend *b)
{
	return b->state == BACKEND_UP && b->weight > 0;
}

/* Runs before next is published and prev let go: backends that stay keep
 * their checks (restarted if the interval or their check changed), new ones
 * start, and removed ones stop, so no check outlives its backend. Backends
 * added, or set up again, by a reload begin their slow start. */
void health_sync(struct proc *p, struct farm *next, struct farm *prev)
{
	uint64_t interval = next->pool->check_interval_ms;
	unsigned gen = ++p->health_gen;
	double batch = interval && next->n * 1000 / interval >= CHECK_BATCH_RATE ? CHECK_BATCH : 0;

	/* Many checks a second would each wake the main loop (twice): it gathers
	 * CHECK_BATCH of events instead, which halves their CPU. */
	ev_set_timeout_collect_interval(p->loop, batch);
	ev_set_io_collect_interval(p->loop, batch);

	for (size_t i = 0; i < next->n; i++) {
		struct upstream *u = next->b[i].up;
		const struct pool_backend *cfg = &next->pool->backends[i], *was = u->check.cfg;
		const struct farm_backend *old = prev ? farm_find(prev, u->name) : NULL;

		if (prev && file_up(&next->b[i]) && (old == NULL || old->up != u || !file_up(old)))
			ramp_begin(u);
		u->check.sync_gen = gen;
		u->check.cfg = cfg;
		if (interval == 0) {
			check_stop(u);
			up_without_checks(u);
		} else if (u->check.interval_ms != interval || was == NULL ||
			   !check_spec_equal(&was->check, &cfg->check)) {
			check_start(p, u, interval);
		}
	}
	if (prev == NULL)
		return;
	for (size_t i = 0; i < prev->n; i++) {
		struct upstream *u = prev->b[i].up;

		if (u->check.sync_gen != gen)
			check_stop(u);
	}
}

void health_stop_all(struct farm *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->n; i++)
		check_stop(f->b[i].up);
}

void health_changed(struct proc *p)
{
	/* A worker still on the farm before a reload that turned checks off can
	 * mark a backend down after health_sync() ran. */
	if (p->farm->pool->check_interval_ms == 0)
		for (size_t i = 0; i < p->farm->n; i++)
			up_without_checks(p->farm->b[i].up);
	/* Failed connects took it down on a worker. */
	for (size_t i = 0; i < p->farm->n; i++)
		cut_if_down(p, p->farm->b[i].up);
	health_availability(p);
}

/* "no backend available" once when the last one goes, and once when one
 * comes back. */
void health_availability(struct proc *p)
{
	size_t n = farm_count_available(p->farm);

	if (n == 0 && p->available != 0 && p->farm->n == 0)
		log_warn("no backend available: the pool has no backends");
	else if (n == 0 && p->available != 0)
		log_warn("no backend available: all %zu backend%s down, drained or of weight 0",
			 p->farm->n, p->farm->n == 1 ? " is" : "s are");
	else if (n > 0 && p->available == 0)
		log_info("backends available again: %zu of %zu", n, p->farm->n);
	p->available = n;
	if (farm_backup_in_use(p->farm) != p->backup_in_use) {
		p->backup_in_use = !p->backup_in_use;
		if (p->backup_in_use)
			log_warn("no primary backend available: the backups take new connections");
		else if (n > 0)
			log_info("a primary backend is available again: the backups take no new "
				 "connections");
	}
	proc_notify_status(p);
}
