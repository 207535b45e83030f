/* Locality: tables per zone and the choice between them (see zone.h). */
#include <stdlib.h>
#include <string.h>

#include "zone.h"

int zones_build(struct zone_set *zs, const struct pool *pool, const char *const *names,
		const unsigned *weights, const uint8_t *backup, const uint8_t *down, char *err)
{
	size_t n = pool->nbackends ? pool->nbackends : 1;
	const char **znames = calloc(n, sizeof(*znames));
	unsigned *zweights = calloc(n, sizeof(*zweights));
	uint8_t *zbackup = calloc(n, 1), *zdown = calloc(n, 1);
	int rc = -1;

	memset(zs, 0, sizeof(*zs));
	if (znames == NULL || zweights == NULL || zbackup == NULL || zdown == NULL)
		goto oom;
	if (pool->locality == LOCALITY_OFF || pool->nzones == 0) {
		rc = 0;
		goto out;
	}
	if ((zs->z = calloc(pool->nzones, sizeof(*zs->z))) == NULL)
		goto oom;
	zs->n = pool->nzones;
	for (size_t k = 0; k < zs->n; k++) {
		struct zone_hash *zh = &zs->z[k];

		if ((zh->member = calloc(n, sizeof(*zh->member))) == NULL)
			goto oom;
		for (size_t i = 0; i < pool->nbackends; i++) {
			if (pool->backends[i].zone != k)
				continue;
			zh->member[zh->n] = (uint32_t)i;
			znames[zh->n] = names[i];
			zweights[zh->n] = weights[i];
			zbackup[zh->n] = backup[i];
			zdown[zh->n] = down[i];
			if (!backup[i])
				zh->weight += weights[i];
			if (!backup[i] && !down[i])
				zh->avail += weights[i];
			zh->n++;
		}
		if (tiers_build(&zh->tiers, znames, zweights, zbackup, zh->n, pool->zone_table_size,
				err) < 0)
			goto out;
		tiers_set_down(&zh->tiers, zdown);
	}
	rc = 0;
	goto out;
oom:
	err_set(err, "out of memory");
out:
	free(znames);
	free(zweights);
	free(zbackup);
	free(zdown);
	if (rc < 0)
		zones_free(zs);
	return rc;
}

void zones_free(struct zone_set *zs)
{
	for (size_t k = 0; k < zs->n; k++) {
		tiers_free(&zs->z[k].tiers);
		free(zs->z[k].member);
	}
	free(zs->z);
	memset(zs, 0, sizeof(*zs));
}

/* The client's place in 0..65535: a mix of the whole hash, so it owes
 * nothing to the slot (hash % size) or to a slow start's place (bits 40..). */
static uint64_t zone_place(uint64_t hash)
{
	hash ^= hash >> 31;
	hash *= 0xbf58476d1ce4e5b9ULL;
	hash ^= hash >> 29;
	return hash >> 48;
}

int zone_keeps(uint64_t full, uint64_t avail, unsigned overprovision, uint64_t hash)
{
	if (avail >= full)
		return 1;
	/* place / 65536 < avail / full * overprovision / 100 */
	return zone_place(hash) * full * 100 < avail * overprovision * 65536;
}

const char *zone_where_name(enum zone_where w)
{
	return w == ZONE_LOCAL ? "local" : w == ZONE_SPILL ? "spill" : "any";
}

/* A walk of one set of tiers: the primaries' table, then the backups' if
 * no primary is available. */
struct walk {
	const struct pool *pool;
	const uint32_t *member; /* tiers' index -> caller's; NULL: the same */
	unsigned skip_zone;     /* backends of this zone are passed over */
	zone_accept_fn accept;
	void *ctx;
	int live; /* the tier walked has an available backend */
};

static int walk_accept(unsigned b, void *ctx)
{
	struct walk *w = ctx;
	unsigned i = w->member ? w->member[b] : b;
	int r;

	if (w->skip_zone != POOL_ZONE_NONE && w->pool->backends[i].zone == w->skip_zone)
		return 0;
	r = w->accept(i, w->ctx);
	w->live |= r != 0;
	return r > 0;
}

static unsigned walk_tiers(const struct tiers *t, uint64_t hash, struct walk *w)
{
	for (int tier = TIER_PRIMARY; tier < TIERS; tier++) {
		unsigned b;

		if (t->t[tier].m.size == 0)
			continue;
		w->live = 0;
		b = tiers_lookup(t, (enum tier)tier, hash);
		if (b == MAGLEV_NONE || !walk_accept(b, w))
			b = tiers_first(t, (enum tier)tier, hash, walk_accept, w);
		if (b != MAGLEV_NONE)
			return w->member ? w->member[b] : b;
		if (w->live)
			break; /* this tier is in use, full as it is */
	}
	return MAGLEV_NONE;
}

/* Every answer of a table with a live backend is live (maglev_set_down's
 * refill), so where walk_tiers would take the slot's backend at once this
 * takes it without asking; tiers_in_use is the tier walk_tiers ends in. */
unsigned zone_lookup(const struct pool *pool, const struct zone_set *zs, const struct tiers *all,
		     unsigned zone, uint64_t hash, enum zone_where *where)
{
	const struct zone_hash *zh;
	unsigned b;

	if (zs->n == 0 || zone >= zs->n) {
		*where = ZONE_ANY;
		return tiers_lookup(all, tiers_in_use(all), hash);
	}
	zh = &zs->z[zone];
	if (zh->n == 0 || (pool->locality != LOCALITY_STRICT &&
			   !zone_keeps(zh->weight, zh->avail, pool->locality_overprovision, hash)))
		return MAGLEV_NONE;
	b = tiers_lookup(&zh->tiers, tiers_in_use(&zh->tiers), hash);
	if (b == MAGLEV_NONE)
		return MAGLEV_NONE;
	*where = ZONE_LOCAL;
	return zh->member[b];
}

uint64_t zone_available(const struct pool *pool, const struct zone_set *zs, unsigned zone,
			int (*available)(unsigned b, const void *actx), const void *actx)
{
	const struct zone_hash *zh = &zs->z[zone];
	uint64_t avail = 0;

	for (size_t j = 0; j < zh->n; j++) {
		const struct pool_backend *b = &pool->backends[zh->member[j]];

		if (!b->backup && available(zh->member[j], actx))
			avail += b->weight;
	}
	return avail;
}

unsigned zone_pick(const struct pool *pool, const struct zone_set *zs, const struct tiers *all,
		   unsigned zone, uint64_t hash, int (*available)(unsigned b, const void *actx),
		   const void *actx, zone_accept_fn accept, void *ctx, enum zone_where *where)
{
	struct walk w = {pool, NULL, POOL_ZONE_NONE, accept, ctx, 0};
	const struct zone_hash *zh;
	unsigned b = MAGLEV_NONE;
	int stay;

	if (zs->n == 0 || zone >= zs->n) {
		*where = ZONE_ANY;
		return walk_tiers(all, hash, &w);
	}
	zh = &zs->z[zone];
	stay = pool->locality == LOCALITY_STRICT ||
	       zone_keeps(zh->weight, zone_available(pool, zs, zone, available, actx),
			  pool->locality_overprovision, hash);
	*where = ZONE_LOCAL;
	if (stay) {
		w.member = zh->member;
		if (zh->n && (b = walk_tiers(&zh->tiers, hash, &w)) != MAGLEV_NONE)
			return b;
		if (pool->locality == LOCALITY_STRICT)
			return MAGLEV_NONE;
	}
	w.member = NULL;
	w.skip_zone = zone;
	if ((b = walk_tiers(all, hash, &w)) != MAGLEV_NONE) {
		*where = ZONE_SPILL;
		return b;
	}
	if (!stay && zh->n) { /* nothing outside: home after all */
		w.member = zh->member;
		w.skip_zone = POOL_ZONE_NONE;
		return walk_tiers(&zh->tiers, hash, &w);
	}
	return MAGLEV_NONE;
}
