/* A worker thread: its own libev loop, listeners and connections. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "rng.h"
#include "tcpdist.h"
#include "thread.h"

#define FD_RETRY 0.1 /* seconds between accept attempts when out of fds */

size_t proc_connections(const struct proc *p)
{
	size_t n = 0;

	for (int i = 0; i < p->nworkers; i++)
		n += atomic_load_explicit(&p->workers[i].nconns, memory_order_relaxed);
	return n;
}

void proc_publish(struct proc *p, struct farm *f)
{
	struct farm *old;

	pthread_mutex_lock(&p->lock);
	old = p->farm;
	p->farm = f;
	pthread_mutex_unlock(&p->lock);
	farm_unref(old);
	for (int i = 0; i < p->nworkers; i++)
		ev_async_send(p->workers[i].loop, &p->workers[i].reconfig);
}

void worker_pause(struct worker *w, int why)
{
	int was = atomic_fetch_or(&w->paused, why);

	listeners_watch(w);
	if (why == PAUSE_FDS && !(was & PAUSE_FDS)) {
		atomic_fetch_add(&w->proc->fds.waiting, 1);
		relay_pipes_drop(w);
		ev_timer_again(w->loop, &w->fd_retry);
	}
}

/* Out of file descriptors (the budget's, or the kernel's), at accept on
 * listener (its text) or, with NULL, at a backend's socket: stop accepting
 * and say so, once a second at most. */
void worker_out_of_fds(struct worker *w, const char *listener)
{
	worker_pause(w, PAUSE_FDS);
	if (ev_now(w->loop) - w->emfile_logged < 1.0)
		return;
	w->emfile_logged = ev_now(w->loop);
	if (listener)
		log_warn("out of file descriptors: pausing accept on %s", listener);
	else
		log_warn("out of file descriptors: pausing accept (no socket for a backend)");
}

void worker_unpause(struct worker *w, int why)
{
	int was = atomic_load(&w->paused);

	if (!(was & why))
		return;
	if (why == PAUSE_FDS) {
		/* Room for a client and its backend, or fd_retry tries again. */
		if (fd_room(&w->proc->fds) < CONN_FDS)
			return;
		ev_timer_stop(w->loop, &w->fd_retry);
		atomic_fetch_sub(&w->proc->fds.waiting, 1);
	}
	if (why == PAUSE_LIMIT)
		atomic_fetch_sub(&w->proc->paused_for_limit, 1);
	atomic_fetch_and(&w->paused, ~why);
	listeners_watch(w);
}

static void worker_stop_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	struct worker *w = container_of(a, struct worker, stop);

	(void)revents;
	atomic_store(&w->stopping, 1);
	listeners_close(w);
	if (atomic_load(&w->nconns) == 0)
		ev_break(loop, EVBREAK_ALL);
}

static void worker_force_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	struct worker *w = container_of(a, struct worker, force);

	(void)revents;
	atomic_store(&w->stopping, 1);
	listeners_close(w);
	conn_close_all(w);
	ev_break(loop, EVBREAK_ALL);
}

/* Descriptors were given back, or the pool is below its max_conns. */
static void worker_resume_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	struct worker *w = container_of(a, struct worker, resume);
	unsigned max = w->farm->pool->max_conns;

	(void)loop;
	(void)revents;
	worker_unpause(w, PAUSE_FDS);
	if (max == 0 || proc_connections(w->proc) < max)
		worker_unpause(w, PAUSE_LIMIT);
}

static void worker_fd_retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = container_of(t, struct worker, fd_retry);

	(void)loop;
	(void)revents;
	worker_unpause(w, PAUSE_FDS);
}

/* Selection state sized for farm f. */
static int worker_size_for(struct worker *w, const struct farm *f)
{
	size_t n = f->n ? f->n : 1;
	struct balance_candidate *cand = calloc(n, sizeof(*cand));
	int64_t *rr = calloc(n, sizeof(*rr));

	if (cand == NULL || rr == NULL) {
		free(cand);
		free(rr);
		return -1;
	}
	free(w->cand);
	free(w->rr_current);
	w->cand = cand;
	w->rr_current = rr;
	return 0;
}

/* A new farm or listener changes from the main thread. */
static void worker_reconfig_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	struct worker *w = container_of(a, struct worker, reconfig);
	struct proc *p = w->proc;
	struct listener_op *ops;
	struct farm *f;

	(void)loop;
	(void)revents;
	pthread_mutex_lock(&p->lock);
	ops = w->ops;
	w->ops = NULL;
	f = p->farm;
	if (f != w->farm)
		farm_ref(f);
	pthread_mutex_unlock(&p->lock);

	listeners_apply(w, ops);
	if (f == w->farm)
		return;
	if (worker_size_for(w, f) < 0) {
		log_err("worker %d: out of memory: keeping the previous pool", w->id);
		farm_unref(f);
		return;
	}
	farm_unref(w->farm);
	w->farm = f;
	worker_resume_cb(loop, &w->resume, 0); /* max_conns may have grown */
}

int worker_init(struct worker *w, int id, struct proc *proc, struct farm *farm)
{
	memset(w, 0, sizeof(*w));
	w->id = id;
	w->proc = proc;
	w->opt = proc->opt;
	w->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
	if (w->loop == NULL)
		w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV);
	w->scratch = malloc(RELAY_SCRATCH);
	if (w->loop == NULL || w->scratch == NULL || worker_size_for(w, farm) < 0)
		return -1;
	farm_ref(farm);
	w->farm = farm;
	w->rng = rng_seed();
	w->lc_cursor = (size_t)id;
	atomic_init(&w->stopping, 0);
	atomic_init(&w->paused, 0);
	atomic_init(&w->nconns, 0);
	ev_async_init(&w->stop, worker_stop_cb);
	ev_async_init(&w->force, worker_force_cb);
	ev_async_init(&w->reconfig, worker_reconfig_cb);
	ev_async_init(&w->resume, worker_resume_cb);
	ev_init(&w->fd_retry, worker_fd_retry_cb);
	w->fd_retry.repeat = FD_RETRY;
	ev_async_start(w->loop, &w->stop);
	ev_async_start(w->loop, &w->force);
	ev_async_start(w->loop, &w->reconfig);
	ev_async_start(w->loop, &w->resume);
	survey_worker_init(w);
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	ev_run(w->loop, 0);
	survey_answer(w); /* questions that came as the loop ended */
	if (w->on_exit)
		w->on_exit(w);
	return NULL;
}

int worker_start(struct worker *w)
{
	return thread_start(&w->thread, worker_main, w) == 0 ? 0 : -1;
}

void worker_destroy(struct worker *w)
{
	if (w->loop) {
		listeners_close(w);
		conn_close_all(w);
		relay_cache_free(w);
		ev_loop_destroy(w->loop);
	}
	while (w->ops) {
		struct listener_op *op = w->ops;

		w->ops = op->next;
		if (op->fd >= 0) {
			close(op->fd);
			fd_other_add(&w->proc->fds, -1);
		}
		free(op);
	}
	farm_unref(w->farm);
	free(w->scratch);
	free(w->cand);
	free(w->rr_current);
}
