/* --pool FILE --service-tag TAG: every alive member whose tags hold
 * TAG=host:port is a [backend NAME] section of the pool file, marked as ours
 * by a comment line; sections we added for members that failed or left are
 * removed. Sections without the mark are never touched. A burst of changes
 * is written once, a moment after the last.
 *
 * With --zone-tag TAG, the member's tag TAG is the section's zone key (no
 * key when the member has none); a value a pool cannot take as a zone name
 * is logged and the backend written without a zone.
 *
 * One member's bad tag must not hold up the others: a member whose address
 * the file cannot take, or whose host name does not resolve, is logged and
 * left out. Host names are looked up off the event loop (resolve.c) and the
 * file is checked without DNS, so a slow DNS server cannot stall gossip. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "log.h"
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
	struct resolver *resolver;
	/* What each write warned about, as sorted hashes of the messages: a
	 * warning the last write gave is not repeated. */
	struct warned {
		uint64_t *keys;
		size_t n, cap;
	} warned, warning;
	char last_err[ERR_LEN]; /* the last failed write's reason, logged once */
};

struct want {
	char name[POOL_NAME_MAX + 1];
	char addr[256];
	char zone[POOL_NAME_MAX + 1]; /* "" for none */
	int pending; /* its host name is being looked up: keep what the file has */
};

enum { ADDR_READY, ADDR_PENDING, ADDR_REFUSED };

static int key_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Logs a warning about a member unless the last write gave the same one. */
static void warn_once(struct poolsync *ps, const char *fmt, ...) PRINTF_LIKE(2, 3);

static void warn_once(struct poolsync *ps, const char *fmt, ...)
{
	struct warned *w = &ps->warning;
	static const uint8_t seed[HASH_SEED_LEN]; /* identity of a message, not security */
	char msg[512];
	uint64_t key;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	key = siphash24(seed, msg, strlen(msg));
	if (ps->warned.n == 0 ||
	    bsearch(&key, ps->warned.keys, ps->warned.n, sizeof(key), key_cmp) == NULL)
		log_warn("pool: %s", msg);
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		uint64_t *k = realloc(w->keys, cap * sizeof(*k));

		if (k == NULL)
			return; /* it is only logged again next time */
		w->keys = k;
		w->cap = cap;
	}
	w->keys[w->n++] = key;
}

/* This write's warnings become the ones not to repeat. */
static void warnings_done(struct poolsync *ps)
{
	struct warned t = ps->warned;

	if (ps->warning.n > 0)
		qsort(ps->warning.keys, ps->warning.n, sizeof(uint64_t), key_cmp);
	ps->warned = ps->warning;
	ps->warning = t;
	ps->warning.n = 0;
}

/* Whether v, host:port or [v6]:port as the pool loader takes it, can be
 * written now: numbers at once, a host name once it resolved. For
 * ADDR_REFUSED, why says so, naming the tag. */
static int service_addr_state(struct poolsync *ps, const char *v, char *why, size_t whylen)
{
	const char *tag = ps->peer->cfg.service_tag;
	struct addr a;
	char err[ERR_LEN], host[256];
	const char *colon, *reason;

	/* "address = " and v would not fit on a line: no need to ask DNS. */
	if (strlen(v) + 10 > POOL_LINE_MAX) {
		snprintf(why, whylen, "address: the line would be %zu bytes long (at most %d)",
			 strlen(v) + 10, POOL_LINE_MAX);
		return ADDR_REFUSED;
	}
	if (addr_parse(v, ADDR_NO_RESOLVE, &a, err) == 0)
		return ADDR_READY;
	if (addr_parse(v, ADDR_NAME_UNCHECKED, &a, err) < 0) {
		snprintf(why, whylen, "%s=%.64s is not host:port", tag, v);
		return ADDR_REFUSED;
	}
	colon = strrchr(v, ':'); /* a name, so no brackets: the last ':' ends it */
	snprintf(host, sizeof(host), "%.*s", (int)(colon - v), v);
	switch (resolver_check(ps->resolver, host, &reason)) {
	case NAME_OK:
		return ADDR_READY;
	case NAME_PENDING:
		return ADDR_PENDING;
	default:
		snprintf(why, whylen, "%s=%.64s cannot be resolved (%s)", tag, v, reason);
		return ADDR_REFUSED;
	}
}

/* want's zone from the member's --zone-tag tag, if any. */
static void want_zone(struct poolsync *ps, struct want *w, char (*keys)[128], char (*vals)[256],
		      int nt)
{
	const char *tag = ps->peer->cfg.zone_tag;

	for (int t = 0; tag != NULL && t < nt; t++) {
		if (strcmp(keys[t], tag) != 0)
			continue;
		if (pool_name_valid(vals[t]))
			snprintf(w->zone, sizeof(w->zone), "%s", vals[t]);
		else
			warn_once(ps, "member '%s': %s=%.64s is not a zone name (1-%d of A-Z a-z "
				  "0-9 . _ -); written without a zone", w->name, tag, vals[t],
				  POOL_NAME_MAX);
		return;
	}
}

/* The backends the pool should hold: alive members carrying the tag. */
static size_t wanted(struct poolsync *ps, struct want *out, size_t max)
{
	static char keys[TAGS_MAX][128], vals[TAGS_MAX][256];
	struct peer *p = ps->peer;
	char why[512];
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
				warn_once(ps, "member '%.64s' has a name a pool cannot use", nd->name);
			} else {
				int st = service_addr_state(ps, vals[t], why, sizeof(why));

				if (st == ADDR_REFUSED) {
					warn_once(ps, "member '%s': %s; left out", nd->name, why);
					break;
				}
				snprintf(out[n].name, sizeof(out[n].name), "%s", nd->name);
				snprintf(out[n].addr, sizeof(out[n].addr), "%s", vals[t]);
				out[n].pending = st == ADDR_PENDING;
				want_zone(ps, &out[n], keys, vals, nt);
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
	struct poolsync *ps;
	int added, removed, updated;
};

/* A member the file cannot take (its line would be too long, say): logged,
 * its new section taken out again, and the others written all the same. */
static void member_refused(struct pool_doc *doc, struct edit_ctx *ctx, const struct want *x,
			   const char *why, int added)
{
	char err[ERR_LEN];

	warn_once(ctx->ps, "member '%s': %s; left out", x->name, why);
	if (added)
		pool_doc_remove_backend(doc, x->name, err);
}

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

		if (x->pending)
			continue; /* kept as it is until its name resolves */
		if (!pool_doc_has_backend(doc, x->name)) {
			if (pool_doc_add_backend(doc, x->name, POOL_MARK, err) < 0) {
				member_refused(doc, ctx, x, err, 0);
				continue;
			}
			if (pool_doc_set(doc, x->name, "address", x->addr, err) < 0 ||
			    (x->zone[0] && pool_doc_set(doc, x->name, "zone", x->zone, err) < 0)) {
				member_refused(doc, ctx, x, err, 1);
				continue;
			}
			ctx->added++;
			continue;
		}
		if (!pool_doc_backend_has_comment(doc, x->name, POOL_MARK))
			continue; /* someone else's backend of that name */
		if (pool_doc_get(doc, x->name, "address", cur, sizeof(cur)) != 1 ||
		    strcmp(cur, x->addr) != 0) {
			if (pool_doc_set(doc, x->name, "address", x->addr, err) < 0) {
				member_refused(doc, ctx, x, err, 0);
				continue;
			}
			ctx->updated++;
		}
		if (ctx->ps->peer->cfg.zone_tag != NULL) { /* the zone follows the tag */
			int has = pool_doc_get(doc, x->name, "zone", cur, sizeof(cur)) == 1;

			if (has == (x->zone[0] != '\0') && (!has || strcmp(cur, x->zone) == 0))
				continue;
			if ((x->zone[0] ? pool_doc_set(doc, x->name, "zone", x->zone, err)
					: pool_doc_unset(doc, x->name, "zone", err)) < 0) {
				member_refused(doc, ctx, x, err, 0);
				continue;
			}
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
	if (!join_done(p) && p->cfg.nseeds > 0 && peer_now(p) - ps->started < p->cfg.tcp_timeout) {
		ev_timer_set(w, p->cfg.pool_delay, 0);
		ev_timer_start(loop, w);
		return;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.want = calloc(p->nnodes ? p->nnodes : 1, sizeof(*ctx.want));
	if (ctx.want == NULL)
		return;
	ctx.ps = ps;
	ctx.nwant = wanted(ps, ctx.want, p->nnodes);
	rc = pool_edit(p->cfg.pool_path, POOL_EDIT_NO_DNS, pool_apply, &ctx, err);
	free(ctx.want);
	warnings_done(ps);
	if (rc < 0) {
		/* Said once, not every retry: the file stays as it was until the
		 * problem (a hand edit, a full disk) is gone. */
		if (strcmp(err, ps->last_err) != 0)
			log_err("pool %s: %s; retrying every %.0fs", p->cfg.pool_path, err,
				POOL_RETRY);
		snprintf(ps->last_err, sizeof(ps->last_err), "%s", err);
		ev_timer_set(w, POOL_RETRY, 0);
		ev_timer_start(loop, w);
		return;
	}
	if (ps->last_err[0] != '\0') {
		log_info("pool %s: written again", p->cfg.pool_path);
		ps->last_err[0] = '\0';
	}
	if (rc == 0)
		log_info("pool %s: %d added, %d removed, %d changed", p->cfg.pool_path, ctx.added,
			 ctx.removed, ctx.updated);
}

/* Subscribed to membership changes. */
static void poolsync_member(void *ctx, const char *event, const struct node *n)
{
	(void)event;
	(void)n;
	poolsync_changed(ctx);
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
	if ((ps->resolver = resolver_new(p)) == NULL) {
		free(ps);
		return err_set(err, "out of memory");
	}
	ev_timer_init(&ps->timer, poolsync_write, p->cfg.pool_delay, 0);
	ps->timer.data = ps;
	p->poolsync = ps;
	members_watch(p, poolsync_member, p);
	return 0;
}

void poolsync_changed(struct peer *p)
{
	struct poolsync *ps = p->poolsync;

	if (ps != NULL && !ev_is_active(&ps->timer) && !leave_started(p)) {
		/* A one-shot timer that fired would start from where it ended:
		 * at once, not pool_delay later. */
		ev_timer_set(&ps->timer, p->cfg.pool_delay, 0);
		ev_timer_start(p->loop, &ps->timer);
	}
}

void poolsync_close(struct peer *p)
{
	if (p->poolsync == NULL)
		return;
	ev_timer_stop(p->loop, &p->poolsync->timer);
	resolver_free(p->poolsync->resolver);
	free(p->poolsync->warned.keys);
	free(p->poolsync->warning.keys);
	free(p->poolsync);
	p->poolsync = NULL;
}
