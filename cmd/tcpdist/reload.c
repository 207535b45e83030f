/* Loading the pool file, at start and whenever it changes. The file's
 * directory is watched with inotify rather than the file itself, so every
 * way of replacing it is seen: writing in place, renaming a new file over
 * it, an editor's backup-and-rename, delete and recreate, and a symlink
 * swap (a Kubernetes ConfigMap replaces its "..data" link). A new pool is
 * parsed into a fresh farm and swapped in only when valid ("configuration
 * reloading FAILED" leaves the old one in force); backends are matched by
 * name, so what did not change keeps its health, counters and connections. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hash.h"
#include "log.h"
#include "tcpdist.h"

#define RELOAD_SETTLE 0.002 /* seconds: let a burst of events end first */
#define RELOAD_QUIET 1.0    /* a created file nobody closed for this long is complete */
#define REWATCH_EVERY 1.0   /* while the pool's directory is gone */
#define NAMES_LISTED 8     /* backends named per kind in the reload line */

static const uint8_t digest_key[HASH_SEED_LEN]; /* content identity, not security */

static struct {
	struct proc *p;
	int fd;
	ev_io io;
	ev_timer settle;
	ev_timer quiet;   /* a created pool that no writer closes (a hard link) */
	ev_timer rewatch; /* the directory was removed: watch it when it is back */
	int wd_dir, wd_target;
	char dir[PATH_MAX], base[NAME_MAX + 1];
	char target[PATH_MAX]; /* the resolved file, when the pool is a symlink */
	uint64_t digest;
	size_t size;
	int have_digest;
	int gone;
	int writing; /* the pool was just created and is not closed yet */
} rl = {.fd = -1, .wd_dir = -1, .wd_target = -1};

/* -l replaces the pool's listen lines. */
static int apply_listen_options(const struct options *opt, struct pool *pool, char *err)
{
	char e[ERR_LEN];

	if (opt->nlisten == 0)
		return 0;
	for (size_t i = 0; i < opt->nlisten; i++) {
		struct pool_listen *l = &pool->listen[i];

		if (addr_parse(opt->listen[i], ADDR_ALLOW_PORT0, &l->addr, e) < 0)
			return err_set(err, "-l: %s", e);
		snprintf(l->text, sizeof(l->text), "%s", opt->listen[i]);
		l->line = 0;
	}
	pool->nlisten = opt->nlisten;
	return 0;
}

static struct pool *config_parse(const struct options *opt, const char *data, size_t len,
				 char *err)
{
	struct pool *pool = pool_parse(opt->pool_path, data, len, err);

	if (pool == NULL)
		return NULL;
	if (apply_listen_options(opt, pool, err) < 0 || listen_loop_check(pool, err) < 0) {
		pool_free(pool);
		return NULL;
	}
	if (pool->nlisten == 0) {
		err_set(err, "%s: no listen address (add 'listen = ADDR:PORT' to [pool] or give -l ADDR)",
			opt->pool_path);
		pool_free(pool);
		return NULL;
	}
	return pool;
}

struct pool *config_load(const struct options *opt, char *err)
{
	char why[ERR_LEN];
	struct pool *pool;
	size_t len;
	char *data = pool_read(opt->pool_path, &len, why);

	if (data == NULL)
		return err_set(err, "%s: %s", opt->pool_path, why), NULL;
	pool = config_parse(opt, data, len, err);
	if (pool) {
		rl.digest = siphash24(digest_key, data, len);
		rl.size = len;
		rl.have_digest = 1;
	}
	free(data);
	return pool;
}

/* --- what changed, for the log ------------------------------------------ */

struct name_list {
	char text[NAMES_LISTED * (POOL_NAME_MAX + 2) + 32];
	size_t n;
};

static void name_list_add(struct name_list *l, const char *name)
{
	size_t len = strlen(l->text);

	if (l->n++ < NAMES_LISTED)
		snprintf(l->text + len, sizeof(l->text) - len, "%s%s", l->n > 1 ? ", " : "", name);
}

static void name_list_print(const struct name_list *l, const char *what, char *out, size_t cap)
{
	size_t len = strlen(out);

	if (l->n == 0)
		return;
	snprintf(out + len, cap - len, "%s%s %s", len ? "; " : "", what, l->text);
	len = strlen(out);
	if (l->n > NAMES_LISTED)
		snprintf(out + len, cap - len, " and %zu more", l->n - NAMES_LISTED);
}

static const struct farm_backend *farm_find(const struct farm *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->b[i].up->name, name) == 0)
			return &f->b[i];
	return NULL;
}

static int pool_settings_differ(const struct pool *a, const struct pool *b)
{
	if (a->nlisten != b->nlisten)
		return 1;
	for (size_t i = 0; i < a->nlisten; i++)
		if (!addr_equal(&a->listen[i].addr, &b->listen[i].addr))
			return 1;
	return a->balance != b->balance || a->hash_key != b->hash_key ||
	       a->connect_timeout_ms != b->connect_timeout_ms ||
	       a->idle_timeout_ms != b->idle_timeout_ms || a->retries != b->retries ||
	       a->check_interval_ms != b->check_interval_ms || a->check_rise != b->check_rise ||
	       a->check_fall != b->check_fall || a->max_conns != b->max_conns ||
	       memcmp(a->hash_seed, b->hash_seed, sizeof(a->hash_seed)) != 0 ||
	       a->table_size != b->table_size;
}

static void reload_describe(const struct farm *old, const struct farm *new, char *out,
			    size_t cap)
{
	struct name_list added = {{0}, 0}, removed = {{0}, 0}, changed = {{0}, 0};

	out[0] = '\0';
	for (size_t i = 0; i < new->n; i++) {
		const struct farm_backend *b = &new->b[i], *o = farm_find(old, b->up->name);

		if (o == NULL)
			name_list_add(&added, b->up->name);
		else if (o->up != b->up || o->weight != b->weight || o->state != b->state ||
			 o->max_conns != b->max_conns)
			name_list_add(&changed, b->up->name);
	}
	for (size_t i = 0; i < old->n; i++)
		if (farm_find(new, old->b[i].up->name) == NULL)
			name_list_add(&removed, old->b[i].up->name);
	name_list_print(&added, "added", out, cap);
	name_list_print(&removed, "removed", out, cap);
	name_list_print(&changed, "changed", out, cap);
	if (pool_settings_differ(old->pool, new->pool)) {
		size_t len = strlen(out);

		snprintf(out + len, cap - len, "%spool settings changed", len ? "; " : "");
	}
	if (out[0] == '\0')
		snprintf(out, cap, "no changes");
}

/* --- reloading ----------------------------------------------------------- */

static void reload_failed(struct proc *p, const char *why)
{
	p->reload_failures++;
	log_err("reload failed, keeping the last good pool: %s", why);
}

static void watch_target(void);
static int rewatch(void);

void reload_now(struct proc *p, int force)
{
	const struct options *opt = p->opt;
	char err[ERR_LEN * 2], why[ERR_LEN], changes[1024];
	struct farm *next, *prev = p->farm;
	struct pool *pool;
	struct timespec now;
	uint64_t digest;
	struct stat st;
	size_t len;
	char *data;

	if (rl.fd >= 0)
		rewatch();
	watch_target();
	if (stat(opt->pool_path, &st) < 0 && errno == ENOENT) {
		/* Between a delete and a recreate, or gone for good: wait. */
		if (!rl.gone)
			log_warn("pool %s is gone: keeping the last good pool until it is back",
				 opt->pool_path);
		rl.gone = 1;
		return;
	}
	rl.gone = 0;
	data = pool_read(opt->pool_path, &len, why);
	if (data == NULL) {
		snprintf(err, sizeof(err), "%s: %s", opt->pool_path, why);
		reload_failed(p, err);
		return;
	}
	digest = siphash24(digest_key, data, len);
	if (!force && rl.have_digest && digest == rl.digest && len == rl.size) {
		free(data);
		return; /* the same bytes: an unrelated event, or a touch */
	}
	rl.digest = digest;
	rl.size = len;
	rl.have_digest = 1;
	pool = config_parse(opt, data, len, err);
	free(data);
	if (pool == NULL) {
		reload_failed(p, err);
		return;
	}
	next = farm_create(pool, prev, err);
	if (next == NULL) {
		pool_free(pool);
		reload_failed(p, err);
		return;
	}
	if (opt->nlisten == 0 &&
	    listeners_update(p, pool->listen, pool->nlisten, err) < 0) {
		farm_unref(next);
		reload_failed(p, err);
		return;
	}
	reload_describe(prev, next, changes, sizeof(changes));
	health_sync(p, next, prev);
	proc_publish(p, next);
	p->reloads++;
	clock_gettime(CLOCK_REALTIME, &now);
	p->last_reload = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
	log_info("pool %s reloaded: %zu backend%s, balance %s (%s)", opt->pool_path, next->n,
		 next->n == 1 ? "" : "s", balance_name(pool->balance), changes);
	health_availability(p);
}

/* --- inotify -------------------------------------------------------------- */

#define WATCH_MASK                                                                  \
	(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE |     \
	 IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

/* A pool reached through a symlink may live in another directory: watch
 * that one too, and follow the link when it moves. */
static void watch_target(void)
{
	char resolved[PATH_MAX], dir[PATH_MAX], self_dir[PATH_MAX];

	if (rl.fd < 0 || realpath(rl.p->opt->pool_path, resolved) == NULL)
		return;
	if (strcmp(resolved, rl.target) == 0)
		return;
	snprintf(rl.target, sizeof(rl.target), "%s", resolved);
	snprintf(dir, sizeof(dir), "%s", resolved);
	if (rl.wd_target >= 0 && rl.wd_target != rl.wd_dir)
		inotify_rm_watch(rl.fd, rl.wd_target);
	rl.wd_target = -1;
	if (realpath(rl.dir, self_dir) != NULL && strcmp(self_dir, dirname(dir)) == 0)
		return;
	snprintf(dir, sizeof(dir), "%s", resolved);
	rl.wd_target = inotify_add_watch(rl.fd, dirname(dir), WATCH_MASK);
}

static const char *target_base(void)
{
	const char *slash = strrchr(rl.target, '/');

	return slash ? slash + 1 : rl.target;
}

/* Whether an event can concern the pool. In its own directory: the pool's
 * name, or anything when the pool is a symlink (ConfigMaps swap "..data",
 * not the pool's name). In the target's directory: the target's name. */
static int event_matters(const struct inotify_event *ev)
{
	struct stat st;

	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_Q_OVERFLOW))
		return 1;
	if (ev->len == 0)
		return 0;
	if (ev->wd == rl.wd_target && ev->wd != rl.wd_dir)
		return strcmp(ev->name, target_base()) == 0;
	if (lstat(rl.p->opt->pool_path, &st) == 0 && S_ISLNK(st.st_mode))
		return 1;
	if (strcmp(ev->name, rl.base) != 0)
		return 0;
	/* A regular file just created is still being written (an editor's
	 * backup-and-rename, delete and recreate): wait for its IN_CLOSE_WRITE
	 * rather than read half of it. One with another link came whole (ln of
	 * a staged file): nobody will close it. RELOAD_QUIET is the backstop
	 * for a writer that never closes. */
	if ((ev->mask & IN_CREATE) && lstat(rl.p->opt->pool_path, &st) == 0 &&
	    S_ISREG(st.st_mode) && st.st_nlink == 1) {
		rl.writing = 1;
		ev_timer_again(rl.p->loop, &rl.quiet);
		return 0;
	}
	rl.writing = 0;
	ev_timer_stop(rl.p->loop, &rl.quiet);
	return 1;
}

static void quiet_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)revents;
	ev_timer_stop(loop, t); /* armed by ev_timer_again: it would repeat */
	if (rl.writing) {
		rl.writing = 0;
		reload_now(rl.p, 0);
	}
}

/* Watches the pool's directory again once it exists; 0 when watched. */
static int rewatch(void)
{
	if (rl.wd_dir >= 0)
		return 0;
	rl.wd_dir = inotify_add_watch(rl.fd, rl.dir, WATCH_MASK);
	if (rl.wd_dir < 0) {
		if (!ev_is_active(&rl.rewatch))
			ev_timer_again(rl.p->loop, &rl.rewatch);
		return -1;
	}
	ev_timer_stop(rl.p->loop, &rl.rewatch);
	return 0;
}

static void rewatch_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)t;
	(void)revents;
	if (rewatch() == 0) {
		log_info("watching %s again", rl.dir);
		reload_now(rl.p, 0);
	}
}

static void settle_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)t;
	(void)revents;
	if (!rl.writing)
		reload_now(rl.p, 0);
}

static void inotify_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	int matters = 0;
	ssize_t n;

	(void)revents;
	while ((n = read(io->fd, buf, sizeof(buf))) > 0) {
		for (char *ptr = buf; ptr < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)ptr;

			matters |= event_matters(ev);
			if (ev->mask & IN_IGNORED) {
				/* The directory itself went away: watch it again when
				 * it is back (checked on the next reload). */
				if (ev->wd == rl.wd_dir)
					rl.wd_dir = -1;
				if (ev->wd == rl.wd_target)
					rl.wd_target = -1, rl.target[0] = '\0';
			}
			ptr += sizeof(*ev) + ev->len;
		}
	}
	rewatch();
	if (matters && !ev_is_active(&rl.settle)) {
		ev_timer_set(&rl.settle, RELOAD_SETTLE, 0.0);
		ev_timer_start(loop, &rl.settle);
	}
}

int reload_init(struct proc *p, char *err)
{
	char path[PATH_MAX];

	rl.p = p;
	snprintf(path, sizeof(path), "%s", p->opt->pool_path);
	snprintf(rl.base, sizeof(rl.base), "%s", basename(path));
	snprintf(path, sizeof(path), "%s", p->opt->pool_path);
	snprintf(rl.dir, sizeof(rl.dir), "%s", dirname(path));
	rl.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (rl.fd < 0)
		return err_set(err, "inotify: %s", strerror(errno));
	rl.wd_dir = inotify_add_watch(rl.fd, rl.dir, WATCH_MASK);
	if (rl.wd_dir < 0) {
		err_set(err, "cannot watch %s: %s", rl.dir, strerror(errno));
		close(rl.fd);
		rl.fd = -1;
		return -1;
	}
	watch_target();
	ev_io_init(&rl.io, inotify_cb, rl.fd, EV_READ);
	ev_io_start(p->loop, &rl.io);
	ev_timer_init(&rl.settle, settle_cb, RELOAD_SETTLE, 0.0);
	ev_init(&rl.quiet, quiet_cb);
	rl.quiet.repeat = RELOAD_QUIET;
	ev_init(&rl.rewatch, rewatch_cb);
	rl.rewatch.repeat = REWATCH_EVERY;
	return 0;
}

void reload_close(void)
{
	if (rl.fd < 0)
		return;
	ev_io_stop(rl.p->loop, &rl.io);
	ev_timer_stop(rl.p->loop, &rl.settle);
	ev_timer_stop(rl.p->loop, &rl.quiet);
	ev_timer_stop(rl.p->loop, &rl.rewatch);
	close(rl.fd);
	rl.fd = -1;
}
