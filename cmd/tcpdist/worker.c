/* A worker thread: its own libev loop, listeners and connections. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "tcpdist.h"

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

int worker_init(struct worker *w, int id, const struct options *opt, struct farm *farm)
{
	uint64_t seed;

	memset(w, 0, sizeof(*w));
	w->id = id;
	w->opt = opt;
	w->farm = farm;
	w->spare_fd = -1;
	w->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
	if (w->loop == NULL)
		w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV);
	w->scratch = malloc(RELAY_SCRATCH);
	w->cand = calloc(farm->n ? farm->n : 1, sizeof(*w->cand));
	w->rr_current = calloc(farm->n ? farm->n : 1, sizeof(*w->rr_current));
	if (w->loop == NULL || w->scratch == NULL || w->cand == NULL || w->rr_current == NULL)
		return -1;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	w->rng = seed | 1;
	w->lc_cursor = (size_t)id;
	w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	atomic_init(&w->stopping, 0);
	atomic_init(&w->nconns, 0);
	ev_async_init(&w->stop, worker_stop_cb);
	ev_async_init(&w->force, worker_force_cb);
	ev_async_start(w->loop, &w->stop);
	ev_async_start(w->loop, &w->force);
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (size_t i = 0; i < w->nlisteners; i++)
		ev_io_start(w->loop, &w->listeners[i].io);
	ev_run(w->loop, 0);
	if (w->on_exit)
		w->on_exit(w);
	return NULL;
}

int worker_start(struct worker *w)
{
	sigset_t all, old;
	int rc;

	/* Signals belong to the main thread's loop. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc == 0 ? 0 : -1;
}

void worker_destroy(struct worker *w)
{
	listeners_close(w);
	if (w->loop) {
		conn_close_all(w);
		relay_cache_free(w);
		ev_loop_destroy(w->loop);
	}
	if (w->spare_fd >= 0)
		close(w->spare_fd);
	free(w->listeners);
	free(w->scratch);
	free(w->cand);
	free(w->rr_current);
}
