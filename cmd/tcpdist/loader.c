/* Loading the pool off the main loop. A load reads the file, parses it,
 * looks up its host names and builds the farm (with balance = hash, the
 * Maglev table): a name server that does not answer, or the largest table,
 * would hold up signals, health checks and metrics for seconds. So one loader
 * thread does all of that and hands the result to the main loop, which only
 * applies it (reload.c). One load at a time, each built on the farm in force:
 * requests that come meanwhile are folded into one more load after it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "hash.h"
#include "log.h"
#include "tcpdist.h"
#include "thread.h"

#define RESOLVE_TIMEOUT_MS 5000 /* for all the names of one load */
#define JOIN_WAIT 0.2           /* seconds a quitting process waits for a load */

static const uint8_t digest_key[HASH_SEED_LEN]; /* content identity, not security */

struct loader {
	struct proc *p;
	pthread_t thread;
	int started;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int requested;             /* LOAD_ bits, under lock */
	int applying;              /* a result waits for the main loop, under lock */
	struct load_result *done;  /* under lock */
	atomic_int quit;
	ev_async finished;         /* main loop: a result is ready */
	ev_timer resolve;          /* main loop: look names up again */
	struct resolver *resolver; /* loader thread */
	uint64_t digest;           /* of the bytes last read, loader thread */
	size_t size;
	int have_digest;
	int gone;
};

/* -l replaces the pool's listen lines. Names are left for resolve_pool(). */
static int apply_listen_options(const struct options *opt, struct pool *pool, char *err)
{
	char e[ERR_LEN];

	if (opt->nlisten == 0)
		return 0;
	for (size_t i = 0; i < opt->nlisten; i++) {
		struct pool_listen *l = &pool->listen[i];

		if (addr_parse(opt->listen[i], ADDR_ALLOW_PORT0 | ADDR_NAME_UNCHECKED, &l->addr,
			       e) < 0)
			return err_set(err, "-l: %s", e);
		snprintf(l->text, sizeof(l->text), "%s", opt->listen[i]);
		l->line = 0;
	}
	pool->nlisten = opt->nlisten;
	return 0;
}

/* The file's bytes into a pool this process can run, names looked up. */
static struct pool *config_parse(const struct options *opt, struct resolver *r, const char *data,
				 size_t len, const atomic_int *quit, char *err)
{
	struct pool *pool = pool_parse_unresolved(opt->pool_path, data, len, err);

	if (pool == NULL)
		return NULL;
	if (apply_listen_options(opt, pool, err) < 0)
		goto fail;
	if (pool->nlisten == 0) {
		err_set(err, "%s: no listen address (add 'listen = ADDR:PORT' to [pool] or give -l ADDR)",
			opt->pool_path);
		goto fail;
	}
	if (resolve_pool(r, pool, opt->pool_path, RESOLVE_TIMEOUT_MS, quit, err) < 0 ||
	    listen_loop_check(pool, err) < 0)
		goto fail;
	return pool;
fail:
	pool_free(pool);
	return NULL;
}

struct pool *config_load(struct proc *p, char *err)
{
	static const atomic_int never;
	struct loader *l = p->loader;
	char why[ERR_LEN];
	struct pool *pool;
	size_t len;
	char *data = pool_read(p->opt->pool_path, &len, why);

	if (data == NULL)
		return err_set(err, "%s: %s", p->opt->pool_path, why), NULL;
	pool = config_parse(p->opt, l->resolver, data, len, &never, err);
	if (pool) {
		l->digest = p->pool_digest = siphash24(digest_key, data, len);
		l->size = len;
		l->have_digest = 1;
	}
	free(data);
	return pool;
}

/* --- on the loader thread ------------------------------------------------ */

static struct load_result *result_new(enum load_outcome outcome, int why)
{
	struct load_result *r = calloc(1, sizeof(*r));

	if (r) {
		r->outcome = outcome;
		r->why = why;
	}
	return r;
}

/* Whether every address of next is the one in force: names that answered
 * as before change nothing. */
static int same_addresses(const struct pool *next, const struct farm *cur)
{
	const struct pool *pool = cur->pool;

	if (next->nbackends != cur->n || next->nlisten != pool->nlisten)
		return 0;
	for (size_t i = 0; i < next->nbackends; i++)
		if (!addr_equal(&next->backends[i].addr, &cur->b[i].up->addr))
			return 0;
	for (size_t i = 0; i < next->nlisten; i++)
		if (!addr_equal(&next->listen[i].addr, &pool->listen[i].addr))
			return 0;
	return 1;
}

static struct load_result *load_run(struct loader *l, int why)
{
	struct proc *p = l->p;
	const char *path = p->opt->pool_path;
	struct load_result *res;
	struct farm *prev;
	struct pool *pool;
	struct stat st;
	uint64_t digest;
	char why_read[ERR_LEN];
	size_t len;
	char *data;

	unsigned gen = atomic_load(&p->file_gen);

	if (stat(path, &st) < 0 && errno == ENOENT) {
		/* Between a delete and a recreate, or gone for good: wait. */
		if (l->gone && !(why & LOAD_FORCE))
			return NULL; /* said already; a SIGHUP hears it again */
		l->gone = 1;
		return result_new(LOAD_GONE, why);
	}
	l->gone = 0;
	if ((res = result_new(LOAD_FAILED, why)) == NULL)
		return NULL;
	res->file_gen = gen;
	data = pool_read(path, &len, why_read);
	if (data == NULL) {
		snprintf(res->err, sizeof(res->err), "%s: %s", path, why_read);
		return res;
	}
	digest = siphash24(digest_key, data, len);
	if (!(why & (LOAD_FORCE | LOAD_RESOLVE)) && l->have_digest && digest == l->digest &&
	    len == l->size) {
		free(data);
		free(res);
		return NULL; /* the same bytes: an unrelated event, or a touch */
	}
	if ((why & LOAD_RESOLVE) && !(why & LOAD_FORCE) && l->have_digest &&
	    (digest != l->digest || len != l->size))
		why = res->why = why | LOAD_FILE; /* changed meanwhile: a reload after all */
	pthread_mutex_lock(&l->lock); /* loader_file_differs reads it */
	l->digest = digest;
	l->size = len;
	l->have_digest = 1;
	pthread_mutex_unlock(&l->lock);
	res->digest = digest;
	pool = config_parse(p->opt, l->resolver, data, len, &l->quit, res->err);
	free(data);
	if (pool == NULL)
		return res;
	pthread_mutex_lock(&p->lock);
	prev = p->farm;
	farm_ref(prev);
	pthread_mutex_unlock(&p->lock);
	if (why == LOAD_RESOLVE && same_addresses(pool, prev)) {
		farm_unref(prev);
		pool_free(pool);
		free(res);
		return NULL;
	}
	res->farm = farm_create(pool, prev, res->err);
	farm_unref(prev);
	if (res->farm == NULL) {
		pool_free(pool);
		return res;
	}
	res->outcome = LOAD_READY;
	return res;
}

static void *loader_main(void *arg)
{
	struct loader *l = arg;

	pthread_mutex_lock(&l->lock);
	for (;;) {
		while (!atomic_load(&l->quit) && (l->applying || l->requested == 0))
			pthread_cond_wait(&l->wake, &l->lock);
		if (atomic_load(&l->quit))
			break;
		int why = l->requested;

		l->requested = 0;
		pthread_mutex_unlock(&l->lock);
		struct load_result *res = load_run(l, why);
		pthread_mutex_lock(&l->lock);
		if (res == NULL)
			continue;
		if (atomic_load(&l->quit)) {
			load_result_free(res);
			break;
		}
		l->done = res;
		l->applying = 1;
		ev_async_send(l->p->loop, &l->finished);
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

/* --- on the main loop ---------------------------------------------------- */

void load_result_free(struct load_result *r)
{
	if (r) {
		farm_unref(r->farm);
		free(r);
	}
}

static void loader_finished_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	struct loader *l = container_of(a, struct loader, finished);
	struct load_result *res;

	(void)loop;
	(void)revents;
	pthread_mutex_lock(&l->lock);
	res = l->done;
	l->done = NULL;
	pthread_mutex_unlock(&l->lock);
	if (res == NULL)
		return;
	if (res->outcome != LOAD_GONE && !(res->why & LOAD_FORCE) &&
	    (watch_writing(l->p) || res->file_gen != atomic_load(&l->p->file_gen))) {
		/* The file changed while it was being read (an editor's
		 * backup-and-rename writes it anew): what was read may be half
		 * of it. The change asked for another load, or the writer's
		 * close will; forget these bytes so that load is no repeat. */
		pthread_mutex_lock(&l->lock);
		l->have_digest = 0;
		pthread_mutex_unlock(&l->lock);
	} else {
		reload_apply(l->p, res);
	}
	load_result_free(res);
	loader_names_changed(l->p);
	pthread_mutex_lock(&l->lock);
	l->applying = 0;
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&l->lock);
}

static void loader_resolve_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct loader *l = container_of(t, struct loader, resolve);

	(void)loop;
	(void)revents;
	loader_request(l->p, LOAD_RESOLVE);
}

/* The pool in force has names (and resolve_interval): look them up again
 * every interval; without, stop. */
void loader_names_changed(struct proc *p)
{
	struct loader *l = p->loader;
	const struct pool *pool = p->farm->pool;
	double every = (double)pool->resolve_interval_ms / 1000.0;

	if (l == NULL || !l->started)
		return;
	if (pool->resolve_interval_ms == 0 || !pool_has_names(pool)) {
		ev_timer_stop(p->loop, &l->resolve);
		return;
	}
	if (ev_is_active(&l->resolve) && l->resolve.repeat == every)
		return;
	ev_timer_stop(p->loop, &l->resolve);
	ev_timer_set(&l->resolve, every, every);
	ev_timer_start(p->loop, &l->resolve);
}

int loader_file_differs(struct proc *p)
{
	struct loader *l = p->loader;
	int differs;

	if (l == NULL)
		return 0;
	pthread_mutex_lock(&l->lock);
	differs = l->have_digest && l->digest != p->pool_digest;
	pthread_mutex_unlock(&l->lock);
	return differs;
}

void loader_request(struct proc *p, int why)
{
	struct loader *l = p->loader;

	pthread_mutex_lock(&l->lock);
	l->requested |= why;
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&l->lock);
}

int loader_init(struct proc *p, char *err)
{
	struct loader *l = calloc(1, sizeof(*l));

	if (l == NULL || (l->resolver = resolver_new()) == NULL) {
		free(l);
		return err_set(err, "out of memory");
	}
	l->p = p;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->wake, NULL);
	atomic_init(&l->quit, 0);
	ev_async_init(&l->finished, loader_finished_cb);
	ev_init(&l->resolve, loader_resolve_cb);
	p->loader = l;
	return 0;
}

int loader_start(struct proc *p, char *err)
{
	struct loader *l = p->loader;
	int rc = thread_start(&l->thread, loader_main, l);

	if (rc != 0)
		return err_set(err, "cannot start the loader thread: %s", strerror(rc));
	l->started = 1;
	ev_async_start(p->loop, &l->finished);
	loader_names_changed(p);
	return 0;
}

/* Stops the loader. A load still running (a name lookup, a large table) is
 * given JOIN_WAIT, then left to end with the process. */
void loader_close(struct proc *p)
{
	struct loader *l = p->loader;
	struct timespec until;

	if (l == NULL)
		return;
	if (l->started) {
		ev_async_stop(p->loop, &l->finished);
		ev_timer_stop(p->loop, &l->resolve);
		pthread_mutex_lock(&l->lock);
		atomic_store(&l->quit, 1);
		pthread_cond_signal(&l->wake);
		pthread_mutex_unlock(&l->lock);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += (long)(JOIN_WAIT * 1e9);
		if (until.tv_nsec >= 1000000000L)
			until.tv_sec++, until.tv_nsec -= 1000000000L;
		if (pthread_timedjoin_np(l->thread, NULL, &until) != 0)
			return; /* still loading: l stays reachable, the thread ends with us */
		l->started = 0;
	}
	load_result_free(l->done);
	l->done = NULL;
	if (resolver_free(l->resolver) < 0)
		return; /* lookups glibc still owns keep l reachable */
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->wake);
	free(l);
	p->loader = NULL;
}
