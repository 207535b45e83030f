/* Configurations (farms) and the choice of a backend for a connection.
 *
 * Tiers: backups (backup = yes) take new connections only while no primary
 * is available (up, weighted, passing its checks); with balance = hash each
 * tier has its own table, so both keep the contract below. A tier in use
 * whose backends are all full or tried refuses rather than spill over.
 *
 * Slow start: a backend that came up (by its checks, or by the file) is
 * ramped from RAMP_MIN to its whole weight over its slowstart. roundrobin,
 * leastconn and random scale its weight. hash moves no other client: each
 * client has a fixed place in 0..RAMP_FULL-1 (bits of its hash the table
 * does not use), and a ramping backend takes those of its clients whose
 * place is below its share; the rest go where they went while it was down,
 * further along their preference order. */
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "rng.h"
#include "tcpdist.h"

/* The configured tables, then drained and down backends' slots refilled.
 * Health is not part of them: a failing backend is skipped at pick time by
 * walking the client's preference order, which lands where the refilled
 * table would (see maglev.h), so health changes never rebuild anything. */
static int farm_build_table(struct farm *f, char *err)
{
	size_t n = f->n ? f->n : 1;
	const char **names = calloc(n, sizeof(*names));
	unsigned *weights = calloc(n, sizeof(*weights));
	uint8_t *down = calloc(n, 1), *backup = calloc(n, 1);
	int rc = -1;

	if (names == NULL || weights == NULL || down == NULL || backup == NULL) {
		err_set(err, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < f->n; i++) {
		names[i] = f->b[i].up->name;
		weights[i] = f->b[i].weight;
		down[i] = f->b[i].state != BACKEND_UP;
		backup[i] = f->b[i].backup;
	}
	if (tiers_build(&f->tiers, names, weights, backup, f->n, f->pool->table_size, err) < 0)
		goto out;
	tiers_set_down(&f->tiers, down);
	if (zones_build(&f->zones, f->pool, names, weights, backup, down, err) < 0)
		goto out;
	rc = 0;
out:
	free(names);
	free(weights);
	free(down);
	free(backup);
	return rc;
}

static int by_name(const void *a, const void *b, void *ctx)
{
	const struct farm *f = ctx;

	return strcmp(f->b[*(const uint32_t *)a].up->name, f->b[*(const uint32_t *)b].up->name);
}

/* The index by name that farm_find searches: 10,000 backends matched one by
 * one against as many would take a reload 10^8 comparisons. */
static int farm_index(struct farm *f)
{
	if ((f->by_name = malloc((f->n ? f->n : 1) * sizeof(*f->by_name))) == NULL)
		return -1;
	for (size_t i = 0; i < f->n; i++)
		f->by_name[i] = (uint32_t)i;
	qsort_r(f->by_name, f->n, sizeof(*f->by_name), by_name, f);
	return 0;
}

const struct farm_backend *farm_find(const struct farm *f, const char *name)
{
	size_t lo = 0, hi = f ? f->n : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct farm_backend *b = &f->b[f->by_name[mid]];
		int c = strcmp(name, b->up->name);

		if (c == 0)
			return b;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* prev's upstream with this name and address, if any. */
static struct upstream *farm_reusable(const struct farm *prev, const struct pool_backend *b)
{
	const struct farm_backend *fb = farm_find(prev, b->name);

	return fb && addr_equal(&fb->up->addr, &b->addr) ? fb->up : NULL;
}

static void farm_free(struct farm *f)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->b[i].up)
			upstream_unref(f->b[i].up);
	tiers_free(&f->tiers);
	zones_free(&f->zones);
	clients_unref(f->clients);
	pool_free(f->pool);
	free(f->by_name);
	free(f->b);
	free(f);
}

struct farm *farm_create(struct pool *pool, const struct farm *prev, char *err)
{
	struct farm *f = calloc(1, sizeof(*f));

	if (f == NULL || (pool->nbackends && !(f->b = calloc(pool->nbackends, sizeof(*f->b))))) {
		free(f);
		return err_set(err, "out of memory"), NULL;
	}
	atomic_init(&f->refs, 1);
	f->n = pool->nbackends;
	for (size_t i = 0; i < f->n; i++) {
		const struct pool_backend *b = &pool->backends[i];
		struct farm_backend *fb = &f->b[i];

		fb->up = farm_reusable(prev, b);
		if (fb->up)
			upstream_ref(fb->up);
		else if ((fb->up = upstream_create(b)) == NULL) {
			farm_free(f);
			return err_set(err, "out of memory"), NULL;
		}
		fb->weight = b->weight;
		fb->state = b->state;
		fb->max_conns = b->max_conns;
		fb->proxy = b->proxy_protocol;
		fb->backup = (uint8_t)b->backup;
		fb->slowstart_ms = b->check.slowstart_ms;
		f->has_backup |= b->backup;
		f->has_slowstart |= b->check.slowstart_ms != 0;
	}
	if (farm_index(f) < 0) {
		farm_free(f);
		return err_set(err, "out of memory"), NULL;
	}
	/* The client table lives on across reloads, as upstreams do. */
	if (clients_carry(&f->clients, prev ? prev->clients : NULL, pool, err) < 0) {
		farm_free(f);
		return NULL;
	}
	f->pool = pool;
	/* Other balances use the zones' members and weights (zone.h) alone. */
	if ((pool->balance == BALANCE_HASH || (pool->locality != LOCALITY_OFF && pool->nzones)) &&
	    farm_build_table(f, err) < 0) {
		f->pool = NULL; /* still the caller's */
		farm_free(f);
		return NULL;
	}
	return f;
}

void farm_ref(struct farm *f)
{
	atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

void farm_unref(struct farm *f)
{
	if (f && atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
		farm_free(f);
}

/* Drain, down and weight 0 keep established connections but take no new
 * ones, and neither does a backend failing its health checks. */
int farm_available(const struct farm *f, size_t i)
{
	const struct farm_backend *b = &f->b[i];

	return b->state == BACKEND_UP && b->weight > 0 &&
	       !atomic_load_explicit(&b->up->down, memory_order_relaxed);
}

size_t farm_count_available(const struct farm *f)
{
	size_t n = 0;

	for (size_t i = 0; i < f->n; i++)
		n += (size_t)farm_available(f, i);
	return n;
}

int farm_zone_available(const struct farm *f, unsigned zone)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->pool->backends[i].zone == zone && farm_available(f, i))
			return 1;
	return 0;
}

static int primary_available(const struct farm *f)
{
	for (size_t i = 0; i < f->n; i++)
		if (!f->b[i].backup && farm_available(f, i))
			return 1;
	return 0;
}

int farm_backup_in_use(const struct farm *f)
{
	if (!f->has_backup || primary_available(f))
		return 0;
	for (size_t i = 0; i < f->n; i++)
		if (farm_available(f, i))
			return 1;
	return 0;
}

uint64_t monotonic_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

unsigned farm_ramp(const struct farm *f, size_t i, uint64_t now_ms)
{
	const struct farm_backend *b = &f->b[i];
	uint64_t from = atomic_load_explicit(&b->up->ramp_from, memory_order_relaxed), share;

	if (b->slowstart_ms == 0 || from == 0 || now_ms >= from + b->slowstart_ms)
		return RAMP_FULL;
	share = now_ms > from ? (now_ms - from) * RAMP_FULL / b->slowstart_ms : 0;
	return share < RAMP_MIN ? RAMP_MIN : (unsigned)share;
}

/* Below its connection limit, and not tried already. */
static int has_room(const struct farm *f, const uint32_t *tried, size_t ntried, size_t i)
{
	const struct farm_backend *b = &f->b[i];

	if (b->max_conns &&
	    atomic_load_explicit(&b->up->active, memory_order_relaxed) >= b->max_conns)
		return 0;
	for (size_t k = 0; k < ntried; k++)
		if (tried[k] == i)
			return 0;
	return 1;
}

/* Available, below its connection limit, and not tried already. */
static int eligible(const struct farm *f, const uint32_t *tried, size_t ntried, size_t i)
{
	return farm_available(f, i) && has_room(f, tried, ntried, i);
}

struct pick_ctx {
	const struct farm *farm;
	const uint32_t *tried;
	size_t ntried;
	unsigned place;  /* the client's place in a slow start */
	uint64_t now_ms; /* 0: no backend of the farm has a slowstart */
	int busy;        /* an available backend was full or tried */
	int ramping;     /* the first one its slow start held back, or -1 */
};

static int pick_accept(unsigned b, void *ctx)
{
	struct pick_ctx *p = ctx;

	if (!farm_available(p->farm, b))
		return 0;
	if (!has_room(p->farm, p->tried, p->ntried, b)) {
		p->busy = 1;
		return 0;
	}
	if (p->now_ms && p->place >= farm_ramp(p->farm, b, p->now_ms)) {
		if (p->ramping < 0)
			p->ramping = (int)b;
		return 0;
	}
	return 1;
}

/* pick_accept for zone_pick: 1 take it, 0 unavailable, -1 available but
 * full or tried (see zone.h). */
static int pick_accept_zone(unsigned b, void *ctx)
{
	struct pick_ctx *p = ctx;
	int busy = p->busy, r;

	p->busy = 0;
	r = pick_accept(b, ctx) ? 1 : p->busy ? -1 : 0;
	p->busy |= busy;
	return r;
}

static int pick_available(unsigned b, const void *farm)
{
	return farm_available(farm, b);
}

/* With locality, zone_pick walks the client's zone's tables first. */
static int farm_pick_zone(const struct farm *f, uint64_t hash, unsigned zone,
			  const uint32_t *tried, size_t ntried, enum zone_where *where)
{
	struct pick_ctx ctx = {f, tried, ntried, (unsigned)(hash >> 40) % RAMP_FULL, 0, 0, -1};
	unsigned b;

	if (f->has_slowstart)
		ctx.now_ms = monotonic_ms();
	b = zone_pick(f->pool, &f->zones, &f->tiers, zone, hash, pick_available, f,
		      pick_accept_zone, &ctx, where);
	return b != MAGLEV_NONE ? (int)b : ctx.ramping;
}

/* The client's own backend if it can take the connection, else the first
 * that can in the client's preference order (what tcphash -n prints), in
 * the primaries' table and then, if none of them is available, in the
 * backups'. A client that only a slow start keeps from a backend goes
 * there rather than nowhere. */
static int farm_pick_hash(const struct farm *f, uint64_t hash, const uint32_t *tried,
			  size_t ntried)
{
	struct pick_ctx ctx = {f, tried, ntried, (unsigned)(hash >> 40) % RAMP_FULL, 0, 0, -1};

	if (f->has_slowstart)
		ctx.now_ms = monotonic_ms();
	for (int tier = TIER_PRIMARY; tier < TIERS; tier++) {
		unsigned b = tiers_lookup(&f->tiers, (enum tier)tier, hash);

		if (b != MAGLEV_NONE && pick_accept(b, &ctx))
			return (int)b;
		b = tiers_first(&f->tiers, (enum tier)tier, hash, pick_accept, &ctx);
		if (b != MAGLEV_NONE)
			return (int)b;
		if (ctx.busy)
			break; /* this tier is in use, full as it is */
	}
	return ctx.ramping;
}

/* Of the primaries if one is available, else of the backups. */
static int first_eligible(const struct farm *f, const uint32_t *tried, size_t ntried)
{
	int backup = -1, primary = 0;

	for (size_t i = 0; i < f->n; i++) {
		if (!farm_available(f, i))
			continue;
		if (!f->b[i].backup && has_room(f, tried, ntried, i))
			return (int)i;
		primary |= !f->b[i].backup;
		if (f->b[i].backup && backup < 0 && has_room(f, tried, ntried, i))
			backup = (int)i;
	}
	return primary ? -1 : backup;
}

/* Marks eligible the backends of zone (in = 1) or of the other zones
 * (in = 0; every backend when zone is POOL_ZONE_NONE), backups only when no
 * primary of that set is available, as the tables of zone.c do. */
static void cand_eligible(const struct farm *f, struct balance_candidate *c, unsigned zone,
			  int in, const uint32_t *tried, size_t ntried)
{
	int primary = 0;

	for (size_t i = 0; i < f->n; i++) {
		int member = zone == POOL_ZONE_NONE || (f->pool->backends[i].zone == zone) == in;

		c[i].eligible = member && eligible(f, tried, ntried, i);
		primary |= member && !f->b[i].backup && farm_available(f, i);
	}
	if (f->has_backup && primary)
		for (size_t i = 0; i < f->n; i++)
			if (f->b[i].backup)
				c[i].eligible = 0;
}

static int cand_pick(struct worker *w, const struct farm *f)
{
	struct balance_candidate *c = w->cand;

	switch (f->pool->balance) {
	case BALANCE_LEASTCONN:
		return balance_leastconn(c, f->n, &w->lc_cursor);
	case BALANCE_RANDOM:
		return balance_random(c, f->n, &w->rng);
	case BALANCE_ROUNDROBIN:
	case BALANCE_HASH: /* handled above */
		break;
	}
	return balance_roundrobin(c, f->n, w->rr_current);
}

/* Locality for roundrobin, leastconn and random: zone_pick's choice of
 * tables, made over the candidates. The share kept in the zone follows the
 * same formula (zone_keeps), drawn per connection since these balances
 * have no client hash; spilled connections go to the other zones' backends
 * by the balance, so by their available weight. */
static int farm_pick_cand_zone(struct worker *w, const struct farm *f, unsigned zone,
			       const uint32_t *tried, size_t ntried, enum zone_where *where)
{
	const struct zone_hash *zh = &f->zones.z[zone];
	int stay, b;

	stay = f->pool->locality == LOCALITY_STRICT ||
	       zone_keeps(zh->weight, zone_available(f->pool, &f->zones, zone, pick_available, f),
			  f->pool->locality_overprovision, rng_next(&w->rng));
	*where = ZONE_LOCAL;
	if (stay) {
		cand_eligible(f, w->cand, zone, 1, tried, ntried);
		if ((b = cand_pick(w, f)) >= 0 || f->pool->locality == LOCALITY_STRICT)
			return b;
	}
	cand_eligible(f, w->cand, zone, 0, tried, ntried);
	if ((b = cand_pick(w, f)) >= 0) {
		*where = ZONE_SPILL;
		return b;
	}
	if (stay)
		return -1;
	cand_eligible(f, w->cand, zone, 1, tried, ntried); /* nothing outside: home after all */
	return cand_pick(w, f);
}

int farm_pick(struct worker *w, const struct farm *f, uint64_t client_hash, unsigned zone,
	      const uint32_t *tried, size_t ntried, enum zone_where *where)
{
	struct balance_candidate *c = w->cand;
	uint64_t now = f->has_slowstart ? monotonic_ms() : 0;

	*where = ZONE_ANY;
	if (f->pool->balance == BALANCE_HASH && f->zones.n)
		return farm_pick_zone(f, client_hash, zone, tried, ntried, where);
	if (f->pool->balance == BALANCE_HASH)
		return farm_pick_hash(f, client_hash, tried, ntried);

	/* The worker's selection state is sized for its own farm; a client
	 * still connecting on an older one simply takes the first eligible. */
	if (f != w->farm)
		return first_eligible(f, tried, ntried);
	for (size_t i = 0; i < f->n; i++) {
		c[i].weight = f->b[i].weight;
		c[i].active = atomic_load_explicit(&f->b[i].up->active, memory_order_relaxed);
		if (now)
			c[i].weight *= farm_ramp(f, i, now); /* the same scale for all */
	}
	if (f->zones.n && zone < f->zones.n)
		return farm_pick_cand_zone(w, f, zone, tried, ntried, where);
	cand_eligible(f, c, POOL_ZONE_NONE, 1, tried, ntried);
	return cand_pick(w, f);
}
