/* --pool FILE --service-tag TAG: every alive member whose tags hold
 * TAG=host:port is a [backend NAME] section of the pool file, marked as ours
 * by a comment line; sections we added for members that failed or left are
 * removed. Sections without the mark are never touched. A burst of changes
 * is written once, a moment after the last. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "num.h"
#include "pool.h"
#include "pooledit.h"
#include "tcppeer.h"

#define POOL_MARK "; managed by tcppeer"
#define POOL_RETRY 1.0
#define POOL_NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

struct poolsync {
	struct peer *peer;
	ev_timer timer;
	double started;
	size_t warned; /* members last warned about, so a bad tag is not logged every write */
};

struct want {
	char name[POOL_NAME_MAX + 1];
	char addr[256];
};

/* host:port, [v6]:port or a host name, as the pool loader would take it. */
static int service_addr_ok(const char *v)
{
	struct addr a;
	const char *colon = strrchr(v, ':');
	long long port;
	char err[ERR_LEN];

	if (addr_parse(v, ADDR_NO_RESOLVE, &a, err) == 0)
		return 1;
	if (colon == NULL || colon == v || num_parse(colon + 1, 1, 65535, &port, err) < 0)
		return 0;
	return strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") ==
	       (size_t)(colon - v);
}

/* The backends the pool should hold: alive members carrying the tag. */
static size_t wanted(struct peer *p, struct want *out, size_t max, int warn)
{
	static char keys[TAGS_MAX][128], vals[TAGS_MAX][256];
	size_t n = 0;

	for (size_t i = 0; i < p->nnodes && n < max; i++) {
		struct node *nd = p->nodes[i];
		int nt;

		if (nd->state != STATE_ALIVE && nd->state != STATE_SUSPECT)
			continue;
		nt = tags_decode(nd->meta, nd->metalen, keys, vals, TAGS_MAX);
		for (int t = 0; t < nt; t++) {
			if (strcmp(keys[t], p->cfg.service_tag) != 0)
				continue;
			if (strlen(nd->name) > POOL_NAME_MAX ||
			    strspn(nd->name, POOL_NAME_CHARS) != strlen(nd->name)) {
				if (warn)
					log_warn("pool: member '%.64s' has a name a pool cannot use", nd->name);
			} else if (!service_addr_ok(vals[t])) {
				if (warn)
					log_warn("pool: member '%s': %s=%.64s is not host:port", nd->name,
						 p->cfg.service_tag, vals[t]);
			} else {
				snprintf(out[n].name, sizeof(out[n].name), "%s", nd->name);
				snprintf(out[n].addr, sizeof(out[n].addr), "%s", vals[t]);
				n++;
			}
			break;
		}
	}
	return n;
}

struct edit_ctx {
	struct want *want;
	size_t nwant;
	int added, removed, updated;
};

static int pool_apply(struct pool_doc *doc, void *vctx, char *err)
{
	struct edit_ctx *ctx = vctx;
	char cur[256];
	const char *name;
	size_t i;

	/* Ours that are no longer wanted go; names are copied, as removal moves them. */
	for (i = 0; (name = pool_doc_backend(doc, i)) != NULL;) {
		char copy[POOL_NAME_MAX + 1];
		int keep = 0;

		snprintf(copy, sizeof(copy), "%s", name);
		for (size_t w = 0; w < ctx->nwant && !keep; w++)
			keep = strcmp(ctx->want[w].name, copy) == 0;
		if (!keep && pool_doc_backend_has_comment(doc, copy, POOL_MARK)) {
			if (pool_doc_remove_backend(doc, copy, err) < 0)
				return -1;
			ctx->removed++;
			continue;
		}
		i++;
	}
	for (size_t w = 0; w < ctx->nwant; w++) {
		const struct want *x = &ctx->want[w];

		if (!pool_doc_has_backend(doc, x->name)) {
			if (pool_doc_add_backend(doc, x->name, POOL_MARK, err) < 0 ||
			    pool_doc_set(doc, x->name, "address", x->addr, err) < 0)
				return -1;
			ctx->added++;
			continue;
		}
		if (!pool_doc_backend_has_comment(doc, x->name, POOL_MARK))
			continue; /* someone else's backend of that name */
		if (pool_doc_get(doc, x->name, "address", cur, sizeof(cur)) != 1 ||
		    strcmp(cur, x->addr) != 0) {
			if (pool_doc_set(doc, x->name, "address", x->addr, err) < 0)
				return -1;
			ctx->updated++;
		}
	}
	return ctx->added + ctx->removed + ctx->updated ? 0 : POOL_EDIT_UNCHANGED;
}

static void poolsync_write(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct poolsync *ps = w->data;
	struct peer *p = ps->peer;
	struct edit_ctx ctx;
	char err[ERR_LEN];
	int rc;

	(void)revents;
	/* Until the first join answers, our view is empty: writing it would
	 * drop every backend a moment after a restart. */
	if (!p->joined && p->cfg.nseeds > 0 && peer_now(p) - ps->started < p->cfg.tcp_timeout) {
		ev_timer_set(w, p->cfg.pool_delay, 0);
		ev_timer_start(loop, w);
		return;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.want = calloc(p->nnodes ? p->nnodes : 1, sizeof(*ctx.want));
	if (ctx.want == NULL)
		return;
	ctx.nwant = wanted(p, ctx.want, p->nnodes, p->nnodes != ps->warned);
	ps->warned = p->nnodes;
	rc = pool_edit(p->cfg.pool_path, pool_apply, &ctx, err);
	free(ctx.want);
	if (rc < 0) {
		log_err("pool %s: %s; retrying in %.0fs", p->cfg.pool_path, err, POOL_RETRY);
		ev_timer_set(w, POOL_RETRY, 0);
		ev_timer_start(loop, w);
		return;
	}
	if (rc == 0)
		log_info("pool %s: %d added, %d removed, %d changed", p->cfg.pool_path, ctx.added,
			 ctx.removed, ctx.updated);
}

int poolsync_open(struct peer *p, char *err)
{
	struct poolsync *ps;
	struct pool *pool;

	if (p->cfg.pool_path == NULL)
		return 0;
	pool = pool_load(p->cfg.pool_path, err);
	if (pool == NULL)
		return -1;
	pool_free(pool);
	ps = calloc(1, sizeof(*ps));
	if (ps == NULL)
		return err_set(err, "out of memory");
	ps->peer = p;
	ps->started = peer_now(p);
	ps->warned = (size_t)-1;
	ev_timer_init(&ps->timer, poolsync_write, p->cfg.pool_delay, 0);
	ps->timer.data = ps;
	p->poolsync = ps;
	return 0;
}

void poolsync_changed(struct peer *p)
{
	struct poolsync *ps = p->poolsync;

	if (ps != NULL && !ev_is_active(&ps->timer) && !p->leaving)
		ev_timer_start(p->loop, &ps->timer);
}

void poolsync_close(struct peer *p)
{
	if (p->poolsync == NULL)
		return;
	ev_timer_stop(p->loop, &p->poolsync->timer);
	free(p->poolsync);
	p->poolsync = NULL;
}
