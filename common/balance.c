#include "balance.h"
#include "rng.h"

int balance_roundrobin(const struct balance_candidate *c, size_t n, int64_t *current)
{
	int64_t total = 0;
	int best = -1;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!c[i].eligible || c[i].weight == 0)
			continue;
		current[i] += c[i].weight;
		total += c[i].weight;
		if (best < 0 || current[i] > current[best])
			best = (int)i;
	}
	if (best >= 0)
		current[best] -= total;
	return best;
}

/* a has fewer connections per weight than b: a.active/a.weight < b.active/b.weight,
 * cross-multiplied to stay in integers. */
static int lighter(const struct balance_candidate *a, const struct balance_candidate *b)
{
	return (uint64_t)a->active * b->weight < (uint64_t)b->active * a->weight;
}

int balance_leastconn(const struct balance_candidate *c, size_t n, size_t *cursor)
{
	int best = -1;
	size_t k, i;

	if (n == 0)
		return -1;
	for (k = 0; k < n; k++) {
		i = (*cursor + k) % n;
		if (!c[i].eligible || c[i].weight == 0)
			continue;
		if (best < 0 || lighter(&c[i], &c[best]))
			best = (int)i;
	}
	if (best >= 0)
		*cursor = ((size_t)best + 1) % n;
	return best;
}

/* One backend drawn with probability proportional to its weight. */
static int weighted_draw(const struct balance_candidate *c, size_t n, uint64_t total,
			 uint64_t *rng)
{
	uint64_t r = rng_next(rng) % total;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!c[i].eligible || c[i].weight == 0)
			continue;
		if (r < c[i].weight)
			return (int)i;
		r -= c[i].weight;
	}
	return -1;
}

int balance_random(const struct balance_candidate *c, size_t n, uint64_t *rng)
{
	uint64_t total = 0;
	size_t i;
	int a, b;

	for (i = 0; i < n; i++)
		if (c[i].eligible)
			total += c[i].weight;
	if (total == 0)
		return -1;
	a = weighted_draw(c, n, total, rng);
	b = weighted_draw(c, n, total, rng);
	return lighter(&c[b], &c[a]) ? b : a;
}
