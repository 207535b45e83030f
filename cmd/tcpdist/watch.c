/* Watching the pool file. Its directory is watched with inotify rather than
 * the file itself, so every way of replacing it is seen: writing in place,
 * renaming a new file over it, an editor's backup-and-rename, delete and
 * recreate, and a symlink swap (a Kubernetes ConfigMap replaces its "..data"
 * link). A change asks the loader for a load (loader.c). */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "tcpdist.h"

#define RELOAD_SETTLE 0.002 /* seconds: let a burst of events end first */
#define RELOAD_QUIET 1.0    /* a created file nobody closed for this long is complete */
#define REWATCH_EVERY 1.0   /* while the pool's directory is gone */

struct watch {
	struct proc *p;
	int fd;
	ev_io io;
	ev_timer settle;
	ev_timer quiet;   /* a created pool that no writer closes (a hard link) */
	ev_timer rewatch; /* the directory was removed: watch it when it is back */
	int wd_dir, wd_target;
	char dir[PATH_MAX], base[NAME_MAX + 1];
	char target[PATH_MAX]; /* the resolved file, when the pool is a symlink */
	int writing; /* the pool was just created and is not closed yet */
};

#define WATCH_MASK                                                                  \
	(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE |     \
	 IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

/* A pool reached through a symlink may live in another directory: watch
 * that one too, and follow the link when it moves. */
static void watch_target(struct watch *w)
{
	char resolved[PATH_MAX], dir[PATH_MAX], self_dir[PATH_MAX];

	if (w->fd < 0 || realpath(w->p->opt->pool_path, resolved) == NULL)
		return;
	if (strcmp(resolved, w->target) == 0)
		return;
	snprintf(w->target, sizeof(w->target), "%s", resolved);
	snprintf(dir, sizeof(dir), "%s", resolved);
	if (w->wd_target >= 0 && w->wd_target != w->wd_dir)
		inotify_rm_watch(w->fd, w->wd_target);
	w->wd_target = -1;
	if (realpath(w->dir, self_dir) != NULL && strcmp(self_dir, dirname(dir)) == 0)
		return;
	snprintf(dir, sizeof(dir), "%s", resolved);
	w->wd_target = inotify_add_watch(w->fd, dirname(dir), WATCH_MASK);
}

static const char *target_base(const struct watch *w)
{
	const char *slash = strrchr(w->target, '/');

	return slash ? slash + 1 : w->target;
}

/* Whether an event can concern the pool. In its own directory: the pool's
 * name, or anything when the pool is a symlink (ConfigMaps swap "..data",
 * not the pool's name). In the target's directory: the target's name. */
static int event_matters(struct watch *w, const struct inotify_event *ev)
{
	struct stat st;

	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_Q_OVERFLOW))
		return 1;
	if (ev->len == 0)
		return 0;
	if (ev->wd == w->wd_target && ev->wd != w->wd_dir)
		return strcmp(ev->name, target_base(w)) == 0;
	if (lstat(w->p->opt->pool_path, &st) == 0 && S_ISLNK(st.st_mode))
		return 1;
	if (strcmp(ev->name, w->base) != 0)
		return 0;
	/* A regular file just created is still being written (an editor's
	 * backup-and-rename, delete and recreate): wait for its IN_CLOSE_WRITE
	 * rather than read half of it. One with another link came whole (ln of
	 * a staged file): nobody will close it. RELOAD_QUIET is the backstop
	 * for a writer that never closes. */
	if ((ev->mask & IN_CREATE) && lstat(w->p->opt->pool_path, &st) == 0 &&
	    S_ISREG(st.st_mode) && st.st_nlink == 1) {
		w->writing = 1;
		ev_timer_again(w->p->loop, &w->quiet);
		return 0;
	}
	w->writing = 0;
	ev_timer_stop(w->p->loop, &w->quiet);
	return 1;
}

static int rewatch(struct watch *w);

/* Follows the directory and the symlink's target, then asks for a load. */
void watch_reload(struct proc *p, int force)
{
	struct watch *w = p->watch;

	if (w && w->fd >= 0) {
		rewatch(w);
		watch_target(w);
	}
	loader_request(p, force ? LOAD_FORCE : LOAD_FILE);
}

static void quiet_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct watch *w = container_of(t, struct watch, quiet);

	(void)revents;
	ev_timer_stop(loop, t); /* armed by ev_timer_again: it would repeat */
	if (w->writing) {
		w->writing = 0;
		watch_reload(w->p, 0);
	}
}

/* Watches the pool's directory again once it exists; 0 when watched. */
static int rewatch(struct watch *w)
{
	if (w->wd_dir >= 0)
		return 0;
	w->wd_dir = inotify_add_watch(w->fd, w->dir, WATCH_MASK);
	if (w->wd_dir < 0) {
		if (!ev_is_active(&w->rewatch))
			ev_timer_again(w->p->loop, &w->rewatch);
		return -1;
	}
	ev_timer_stop(w->p->loop, &w->rewatch);
	return 0;
}

static void rewatch_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct watch *w = container_of(t, struct watch, rewatch);

	(void)loop;
	(void)revents;
	if (rewatch(w) == 0) {
		log_info("watching %s again", w->dir);
		watch_reload(w->p, 0);
	}
}

static void settle_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct watch *w = container_of(t, struct watch, settle);

	(void)loop;
	(void)revents;
	if (!w->writing)
		watch_reload(w->p, 0);
}

static void inotify_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct watch *w = container_of(io, struct watch, io);
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	int matters = 0;
	ssize_t n;

	(void)revents;
	while ((n = read(io->fd, buf, sizeof(buf))) > 0) {
		for (char *ptr = buf; ptr < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)ptr;

			matters |= event_matters(w, ev);
			if (ev->mask & IN_IGNORED) {
				/* The directory itself went away: watch it again when
				 * it is back (checked on the next reload). */
				if (ev->wd == w->wd_dir)
					w->wd_dir = -1;
				if (ev->wd == w->wd_target)
					w->wd_target = -1, w->target[0] = '\0';
			}
			ptr += sizeof(*ev) + ev->len;
		}
	}
	rewatch(w);
	if (matters || w->writing)
		atomic_fetch_add(&w->p->file_gen, 1); /* a load under way may have read old bytes */
	if (matters && !ev_is_active(&w->settle)) {
		ev_timer_set(&w->settle, RELOAD_SETTLE, 0.0);
		ev_timer_start(loop, &w->settle);
	}
}

int watch_init(struct proc *p, char *err)
{
	struct watch *w = calloc(1, sizeof(*w));
	char path[PATH_MAX];

	if (w == NULL)
		return err_set(err, "out of memory");
	w->p = p;
	w->wd_dir = w->wd_target = -1;
	snprintf(path, sizeof(path), "%s", p->opt->pool_path);
	snprintf(w->base, sizeof(w->base), "%s", basename(path));
	snprintf(path, sizeof(path), "%s", p->opt->pool_path);
	snprintf(w->dir, sizeof(w->dir), "%s", dirname(path));
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0) {
		err_set(err, "inotify: %s", strerror(errno));
		free(w);
		return -1;
	}
	w->wd_dir = inotify_add_watch(w->fd, w->dir, WATCH_MASK);
	if (w->wd_dir < 0) {
		err_set(err, "cannot watch %s: %s", w->dir, strerror(errno));
		close(w->fd);
		free(w);
		return -1;
	}
	watch_target(w);
	ev_io_init(&w->io, inotify_cb, w->fd, EV_READ);
	ev_io_start(p->loop, &w->io);
	ev_timer_init(&w->settle, settle_cb, RELOAD_SETTLE, 0.0);
	ev_init(&w->quiet, quiet_cb);
	w->quiet.repeat = RELOAD_QUIET;
	ev_init(&w->rewatch, rewatch_cb);
	w->rewatch.repeat = REWATCH_EVERY;
	p->watch = w;
	return 0;
}

int watch_writing(const struct proc *p)
{
	return p->watch && p->watch->writing;
}

void watch_close(struct proc *p)
{
	struct watch *w = p->watch;

	if (w == NULL)
		return;
	ev_io_stop(p->loop, &w->io);
	ev_timer_stop(p->loop, &w->settle);
	ev_timer_stop(p->loop, &w->quiet);
	ev_timer_stop(p->loop, &w->rewatch);
	close(w->fd);
	free(w);
	p->watch = NULL;
}
