/* A pool file and its tables, built exactly as tcpdist builds them. */
#include <stdlib.h>
#include <string.h>

#include "tcphash.h"

int hashed_load(struct hashed *h, const char *path, const char *const *down, size_t ndown,
		char *err)
{
	struct pool *p = pool_load(path, err);

	if (p == NULL) {
		memset(h, 0, sizeof(*h));
		return -1;
	}
	return hashed_build(h, path, p, down, ndown, err);
}

int hashed_build(struct hashed *h, const char *path, struct pool *p, const char *const *down,
		 size_t ndown, char *err)
{
	const char **names = NULL;
	unsigned *weights = NULL;
	uint8_t *backup = NULL;
	int rc = -1;

	memset(h, 0, sizeof(*h));
	h->path = path;
	h->pool = p;
	if (p->balance != BALANCE_HASH) {
		err_set(err, "%s: balance is %s: clients have no fixed backend (tcphash answers for "
			     "balance = hash)", path, balance_name(p->balance));
		goto out;
	}
	names = calloc(p->nbackends + 1, sizeof(*names));
	weights = calloc(p->nbackends + 1, sizeof(*weights));
	backup = calloc(p->nbackends + 1, 1);
	h->down = calloc(p->nbackends + 1, 1);
	if (names == NULL || weights == NULL || backup == NULL || h->down == NULL) {
		err_set(err, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < p->nbackends; i++) {
		names[i] = p->backends[i].name;
		weights[i] = p->backends[i].weight;
		backup[i] = (uint8_t)p->backends[i].backup;
		h->down[i] = p->backends[i].state != BACKEND_UP;
	}
	for (size_t i = 0; i < ndown; i++) {
		const struct pool_backend *b = pool_find_backend(p, down[i]);

		if (b == NULL) {
			err_set(err, "--down: no backend named '%s' in %s", down[i], path);
			goto out;
		}
		h->down[b - p->backends] = 1;
	}
	if (tiers_build(&h->tiers, names, weights, backup, p->nbackends, p->table_size, err) < 0)
		goto out;
	tiers_set_down(&h->tiers, h->down);
	h->tier = tiers_in_use(&h->tiers);
	if (zones_build(&h->zones, p, names, weights, backup, h->down, err) < 0)
		goto out;
	rc = 0;
out:
	free(names);
	free(weights);
	free(backup);
	if (rc < 0)
		hashed_free(h);
	return rc;
}

void hashed_free(struct hashed *h)
{
	pool_free(h->pool);
	tiers_free(&h->tiers);
	zones_free(&h->zones);
	free(h->down);
	memset(h, 0, sizeof(*h));
}

unsigned hashed_lookup(const struct hashed *h, uint64_t hash)
{
	return tiers_lookup(&h->tiers, h->tier, hash);
}

uint32_t hashed_size(const struct hashed *h)
{
	return h->tiers.t[h->tier].m.size;
}

unsigned hashed_slot(const struct hashed *h, uint32_t s)
{
	const struct tier_table *tt = &h->tiers.t[h->tier];
	unsigned b = tt->m.table[s];

	return b == MAGLEV_NONE ? MAGLEV_NONE : tt->backend[b];
}

int hashed_live(const struct hashed *h, size_t i)
{
	return !h->down[i] && h->tiers.tier[i] == h->tier;
}

static int up(unsigned b, const void *h)
{
	return !((const struct hashed *)h)->down[b];
}

static int up_accept(unsigned b, void *h)
{
	return up(b, h);
}

unsigned hashed_pick(const struct hashed *h, unsigned zone, uint64_t hash,
		     zone_accept_fn accept, void *ctx, enum zone_where *where)
{
	return zone_pick(h->pool, &h->zones, &h->tiers, zone, hash, up, h,
			 accept ? accept : up_accept, accept ? ctx : (void *)h, where);
}

int hashed_has_backup(const struct hashed *h)
{
	return h->tiers.t[TIER_BACKUP].m.size != 0;
}
