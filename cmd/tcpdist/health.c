/* Backend health. Passive: the workers report every connect result, and
 * check_fall failures in a row take a backend out. Active: the main thread
 * connects to every backend each check_interval (jittered so checks of many
 * tcpdist processes do not line up); check_rise successes bring a failing
 * backend back, check_fall failures take a healthy one out. Each transition
 * is logged once, by whoever makes it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "rng.h"
#include "tcpdist.h"

#define CHECKS_IN_FLIGHT_MAX 64 /* descriptors kept back for checks (worker.c) */
#define CHECK_WAIT_SLOT 0.05     /* seconds before a check held back tries again */

#define upstream_of(ptr, member) container_of(ptr, struct upstream, check.member)

static void mark_down(struct upstream *u, const char *how, unsigned count, int error)
{
	int up = 0;

	if (!atomic_compare_exchange_strong(&u->down, &up, 1))
		return;
	char reason[160];

	atomic_fetch_add_explicit(&u->went_down, 1, memory_order_relaxed);
	snprintf(reason, sizeof(reason), "%u %s failed in a row (%s)", count, how,
		 connect_error_text(error));
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
	char reason[64];

	snprintf(reason, sizeof(reason), "%u check%s passed", rises, rises == 1 ? "" : "s");
	upstream_set_reason(u, reason);
	upstream_changed(u);
	log_info("backend %s %s is up: %u check%s passed", u->name, u->addr_text, rises,
		 rises == 1 ? "" : "s");
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
		mark_down(u, "connection attempts", fails, error);
		ev_async_send(p->loop, &p->health_changed);
	}
}

/* --- active checks, main thread only ------------------------------------ */

static void check_schedule(struct upstream *u, double first)
{
	struct check *k = &u->check;
	struct proc *p = k->proc;
	double every = (double)k->interval_ms / 1000.0;

	ev_timer_stop(p->loop, &k->timer);
	ev_timer_set(&k->timer, first >= 0 ? first : every * (0.9 + 0.2 * rng_unit(&p->rng)), 0.0);
	ev_timer_start(p->loop, &k->timer);
}

static void check_done(struct upstream *u, int error)
{
	struct check *k = &u->check;
	struct proc *p = k->proc;
	const struct pool *pool = p->farm->pool;
	const struct farm_backend *fb = farm_find(p->farm, u->name);

	/* A backend that takes PROXY headers gets one first (proxyconn.c). */
	if (error == 0 && k->fd >= 0 && fb && proxy_check_hello(k->fd, fb->proxy) < 0)
		error = EIO;
	ev_io_stop(p->loop, &k->io);
	if (k->fd >= 0) {
		close(k->fd);
		k->fd = -1;
		p->checks_running--;
	}
	if (error == 0) {
		atomic_store_explicit(&u->fails, 0, memory_order_relaxed);
		if (atomic_load(&u->down) && ++k->rises >= pool->check_rise) {
			mark_up(u, k->rises);
			k->rises = 0;
			health_availability(p);
		}
	} else {
		unsigned fails = atomic_fetch_add(&u->fails, 1) + 1;

		k->rises = 0;
		if (!atomic_load(&u->down) && fails >= pool->check_fall) {
			mark_down(u, "checks", fails, error);
			health_availability(p);
		}
	}
	check_schedule(u, -1);
}

static void check_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct upstream *u = upstream_of(io, io);
	socklen_t len = sizeof(int);
	int error = 0;

	(void)loop;
	(void)revents;
	if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
		error = errno;
	check_done(u, error);
}

/* One timer per backend: it starts a check, and times out a running one. */
static void check_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct upstream *u = upstream_of(t, timer);
	struct check *k = &u->check;
	uint64_t timeout_ms;
	int fd;

	(void)revents;
	if (k->fd >= 0) {
		check_done(u, ETIMEDOUT);
		return;
	}
	/* Checks use the descriptors kept back from clients: never more at once. */
	if (k->proc->checks_running >= CHECKS_IN_FLIGHT_MAX) {
		check_schedule(u, CHECK_WAIT_SLOT * (1.0 + rng_unit(&k->proc->rng)));
		return;
	}
	fd = socket(u->addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		/* Out of descriptors says nothing about the backend: try later. */
		check_schedule(u, -1);
		return;
	}
	k->fd = fd;
	k->proc->checks_running++;
	if (connect(fd, (const struct sockaddr *)&u->addr.ss, u->addr.len) == 0) {
		check_done(u, 0);
		return;
	}
	if (errno != EINPROGRESS) {
		check_done(u, errno);
		return;
	}
	ev_io_set(&k->io, fd, EV_WRITE);
	ev_io_start(loop, &k->io);
	timeout_ms = k->proc->farm->pool->connect_timeout_ms;
	if (timeout_ms > k->interval_ms)
		timeout_ms = k->interval_ms;
	ev_timer_set(t, (double)timeout_ms / 1000.0, 0.0);
	ev_timer_start(loop, t);
}

static void check_stop(struct upstream *u)
{
	struct check *k = &u->check;

	if (k->interval_ms == 0)
		return;
	ev_timer_stop(k->proc->loop, &k->timer);
	ev_io_stop(k->proc->loop, &k->io);
	if (k->fd >= 0) {
		close(k->fd);
		k->proc->checks_running--;
	}
	k->fd = -1;
	k->interval_ms = 0;
	k->rises = 0;
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
		log_info("backend %s %s: health checks are off, taking it as up", u->name,
			 u->addr_text);
	}
}

/* Runs before next is published and prev let go: backends that stay keep
 * their checks (restarted if the interval changed), new ones start, and
 * removed ones stop, so no check outlives its backend. */
void health_sync(struct proc *p, struct farm *next, struct farm *prev)
{
	uint64_t interval = next->pool->check_interval_ms;
	unsigned gen = ++p->health_gen;

	for (size_t i = 0; i < next->n; i++) {
		struct upstream *u = next->b[i].up;

		u->check.sync_gen = gen;
		if (interval == 0) {
			check_stop(u);
			up_without_checks(u);
		} else if (u->check.interval_ms != interval) {
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
	proc_notify_status(p);
}
