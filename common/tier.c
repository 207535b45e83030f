/* Hash tiers: one Maglev table per tier, each of its own backends. */
#include <stdlib.h>
#include <string.h>

#include "tier.h"

int tiers_build(struct tiers *t, const char *const *names, const unsigned *weights,
		const uint8_t *backup, size_t n, uint32_t size, char *err)
{
	const char **tnames = calloc(n ? n : 1, sizeof(*tnames));
	unsigned *tweights = calloc(n ? n : 1, sizeof(*tweights));
	int rc = -1;

	memset(t, 0, sizeof(*t));
	t->n = n;
	t->tier = calloc(n ? n : 1, 1);
	if (tnames == NULL || tweights == NULL || t->tier == NULL) {
		err_set(err, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		t->tier[i] = backup && backup[i] ? TIER_BACKUP : TIER_PRIMARY;
	for (int k = 0; k < TIERS; k++) {
		struct tier_table *tt = &t->t[k];
		size_t m = 0;

		for (size_t i = 0; i < n; i++)
			m += t->tier[i] == k;
		if (m == 0 && !(k == TIER_PRIMARY && n == 0))
			continue;
		tt->backend = calloc(m ? m : 1, sizeof(*tt->backend));
		tt->down = calloc(m ? m : 1, 1);
		if (tt->backend == NULL || tt->down == NULL) {
			err_set(err, "out of memory");
			goto out;
		}
		m = 0;
		for (size_t i = 0; i < n; i++) {
			if (t->tier[i] != k)
				continue;
			tt->backend[m] = (uint32_t)i;
			tnames[m] = names[i];
			tweights[m] = weights[i];
			m++;
		}
		if (maglev_build(&tt->m, tnames, tweights, m, size, err) < 0)
			goto out;
	}
	rc = 0;
out:
	free(tnames);
	free(tweights);
	if (rc < 0)
		tiers_free(t);
	return rc;
}

void tiers_free(struct tiers *t)
{
	for (int k = 0; k < TIERS; k++) {
		maglev_free(&t->t[k].m);
		free(t->t[k].backend);
		free(t->t[k].down);
	}
	free(t->tier);
	memset(t, 0, sizeof(*t));
}

void tiers_set_down(struct tiers *t, const uint8_t *down)
{
	for (int k = 0; k < TIERS; k++) {
		struct tier_table *tt = &t->t[k];

		if (tt->m.size == 0)
			continue;
		for (uint32_t j = 0; j < tt->m.n; j++)
			tt->down[j] = down[tt->backend[j]] != 0;
		maglev_set_down(&tt->m, tt->down);
	}
}

enum tier tiers_in_use(const struct tiers *t)
{
	return t->t[TIER_PRIMARY].m.nlive > 0 || t->t[TIER_BACKUP].m.size == 0 ? TIER_PRIMARY
										: TIER_BACKUP;
}

unsigned tiers_lookup(const struct tiers *t, enum tier tier, uint64_t hash)
{
	const struct tier_table *tt = &t->t[tier];
	unsigned b = maglev_lookup(&tt->m, hash);

	return b == MAGLEV_NONE ? MAGLEV_NONE : tt->backend[b];
}

struct translate {
	const uint32_t *backend;
	int (*accept)(unsigned b, void *ctx);
	void *ctx;
};

static int translated(unsigned b, void *ctx)
{
	const struct translate *tr = ctx;

	return tr->accept(tr->backend[b], tr->ctx);
}

unsigned tiers_first(const struct tiers *t, enum tier tier, uint64_t hash,
		     int (*accept)(unsigned b, void *ctx), void *ctx)
{
	const struct tier_table *tt = &t->t[tier];
	struct translate tr = {tt->backend, accept, ctx};
	unsigned b = maglev_first(&tt->m, hash, translated, &tr);

	return b == MAGLEV_NONE ? MAGLEV_NONE : tt->backend[b];
}

size_t tiers_preference(const struct tiers *t, enum tier tier, uint64_t hash, unsigned *out,
			size_t k)
{
	const struct tier_table *tt = &t->t[tier];
	size_t n = maglev_preference(&tt->m, hash, out, k);

	for (size_t i = 0; i < n; i++)
		out[i] = tt->backend[out[i]];
	return n;
}
