/* Weighted Maglev (Eisenbud et al., NSDI 2016) with per-slot fallbacks.
 *
 * Filling, in two steps. Quotas first: slot k + 1 of a backend is handed
 * out in the order of (k + 1) / weight (D'Hondt), so each backend ends with
 * its weight's share to within a slot: at most size * w / total + n * w / total.
 * Then a race for the slots: every backend walks its own permutation of the
 * slots, (offset + j * skip) mod size with offset and skip derived from its
 * name, and takes every slot it reaches that is still free, until it has its
 * quota. The walk runs in ticks on an exponential clock: backend b makes
 * w_b * (size - j_b) / (size / 16) steps per tick (j_b: steps made so far, the
 * remainder carried), so at every moment each backend finds the free slots
 * at a rate proportional to its weight alone (a clock linear in j_b favours
 * heavy backends, which have swept more of the taken slots); within a tick,
 * backends move in the order of a hash of their name. A slot therefore goes to the backend
 * that reaches it first along its own permutation (weighted rendezvous
 * hashing), unless that one has its quota already. Unlike classic Maglev,
 * where a backend skips slots that others took and so walks a path that
 * depends on every other backend, a backend's path here depends on its name
 * and weight only; adding or removing one backend moves its own slots and
 * the few that shift where the others reach their quotas.
 *
 * Fallbacks: slot s's preference order is its owner, then the owners of
 * slots probe(s, 1), probe(s, 2), ..., then every backend in name order: a
 * pseudo-random, weight-proportional spread that is a function of s alone. */
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "maglev.h"

#define PROBES 128 /* fallback slots examined before the name-order scan */
#define TICK 16    /* steps per tick and unit of weight at full speed */

static const uint8_t key_offset[HASH_SEED_LEN] = "tcpdist:offset:1";
static const uint8_t key_skip[HASH_SEED_LEN] = "tcpdist:skip::::";
static const uint8_t key_order[HASH_SEED_LEN] = "tcpdist:order:2:";

struct filler {
	uint64_t order;    /* hash of the name: the tie-break and the order within a tick */
	const char *name;  /* the last tie-break, should two hashes be equal */
	uint64_t acc;      /* clock remainder, below size */
	uint32_t steps;    /* slots of the permutation visited, always below size while racing */
	uint32_t pos;
	uint32_t skip;
	uint32_t weight;
	uint32_t quota;
	uint32_t taken;
	uint32_t backend;
};

int prime_check(uint32_t n)
{
	if (n < 2)
		return 0;
	if (n % 2 == 0)
		return n == 2;
	for (uint32_t d = 3; (uint64_t)d * d <= n; d += 2)
		if (n % d == 0)
			return 0;
	return 1;
}

static int by_order(const void *pa, const void *pb)
{
	const struct filler *a = pa, *b = pb;

	if (a->order != b->order)
		return a->order < b->order ? -1 : 1;
	return strcmp(a->name, b->name);
}

/* a's next quota slot comes before b's: smaller (quota + 1) / weight, then
 * the earlier in hash order (fillers are sorted by it). */
static int seat_before(const struct filler *f, uint32_t a, uint32_t b)
{
	uint64_t x = ((uint64_t)f[a].quota + 1) * f[b].weight;
	uint64_t y = ((uint64_t)f[b].quota + 1) * f[a].weight;

	return x < y || (x == y && a < b);
}

static void heap_down(const struct filler *f, uint32_t *heap, uint32_t n, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < n && seat_before(f, heap[l], heap[m]))
			m = l;
		if (r < n && seat_before(f, heap[r], heap[m]))
			m = r;
		if (m == i)
			return;
		uint32_t t = heap[i];
		heap[i] = heap[m];
		heap[m] = t;
		i = m;
	}
}

/* D'Hondt: floor(size * w / total) each (never more than D'Hondt gives),
 * then the few remaining slots one at a time by (quota + 1) / weight. */
static void set_quotas(struct filler *f, uint32_t nf, uint32_t size, uint32_t *heap)
{
	uint64_t total = 0, given = 0;

	for (uint32_t i = 0; i < nf; i++)
		total += f[i].weight;
	for (uint32_t i = 0; i < nf; i++) {
		f[i].quota = (uint32_t)((uint64_t)size * f[i].weight / total);
		given += f[i].quota;
		heap[i] = i;
	}
	for (uint32_t i = nf / 2; i-- > 0;)
		heap_down(f, heap, nf, i);
	for (; given < size; given++) {
		f[heap[0]].quota++;
		heap_down(f, heap, nf, 0);
	}
}

static const char *const *sort_names; /* qsort has no context argument */

static int by_name(const void *a, const void *b)
{
	return strcmp(sort_names[*(const uint32_t *)a], sort_names[*(const uint32_t *)b]);
}

/* A slot's j-th fallback slot: splitmix64's finalizer over (slot, j). */
static uint32_t probe(uint32_t slot, uint32_t j, uint32_t size)
{
	uint64_t z = ((uint64_t)slot << 32 | j) + 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (uint32_t)((z ^ (z >> 31)) % size);
}

/* The race. active[] holds the backends still short of their quota, in
 * hash order; used[] is a bitmap of the taken slots. */
static void race(struct filler *f, uint32_t *active, uint32_t nactive, uint16_t *base,
		 uint64_t *used, uint32_t size)
{
	const uint64_t M = size, D = size / TICK;
	uint16_t spare;

	while (nactive > 0) {
		/* Ticks until some backend makes a step: 1 but near the end. */
		uint64_t jump = UINT64_MAX;

		for (uint32_t k = 0; k < nactive && jump > 1; k++) {
			const struct filler *t = &f[active[k]];
			uint64_t rate = (M - t->steps) * t->weight;
			uint64_t need = t->acc + rate >= D ? 1 : (D - t->acc + rate - 1) / rate;

			if (need < jump)
				jump = need;
		}
		uint32_t still = 0;

		for (uint32_t k = 0; k < nactive; k++) {
			struct filler *t = &f[active[k]];
			uint64_t a = t->acc + jump * ((M - t->steps) * t->weight);
			uint32_t pos = t->pos, taken = t->taken, steps = t->steps;
			const uint32_t skip = t->skip, quota = t->quota;
			const uint16_t owner = (uint16_t)t->backend;

			/* Branch-free: whether a slot is free is a coin toss to the CPU. */
			for (; a >= D && taken < quota; a -= D, steps++) {
				uint64_t bit = (uint64_t)1 << (pos & 63), *word = &used[pos >> 6];
				uint32_t is_free = !(*word & bit), next = pos + skip;

				*word |= bit;
				*(is_free ? &base[pos] : &spare) = owner;
				taken += is_free;
				pos = next >= size ? next - size : next;
			}
			t->acc = a; /* below D unless the quota is met */
			t->pos = pos;
			t->taken = taken;
			t->steps = steps;
			if (taken < quota)
				active[still++] = active[k];
		}
		nactive = still;
	}
}

static int fill(struct maglev *m, const char *const *names, const unsigned *weights, size_t n,
		char *err)
{
	struct filler *f = calloc(n ? n : 1, sizeof(*f));
	uint32_t *idx = calloc(n ? n : 1, sizeof(*idx));
	uint64_t *used = calloc(((size_t)m->size + 63) / 64, sizeof(*used));
	uint32_t nf = 0;

	if (f == NULL || idx == NULL || used == NULL) {
		free(f), free(idx), free(used);
		return err_set(err, "out of memory");
	}
	for (uint32_t i = 0; i < n; i++) {
		size_t len = strlen(names[i]);

		if (weights[i] == 0)
			continue;
		f[nf].order = siphash24(key_order, names[i], len);
		f[nf].name = names[i];
		f[nf].pos = (uint32_t)(siphash24(key_offset, names[i], len) % m->size);
		f[nf].skip = (uint32_t)(siphash24(key_skip, names[i], len) % (m->size - 1)) + 1;
		f[nf].weight = weights[i];
		f[nf].backend = i;
		nf++;
	}
	qsort(f, nf, sizeof(*f), by_order);
	memset(m->base, 0xff, (size_t)m->size * sizeof(*m->base));
	if (nf > 0) {
		set_quotas(f, nf, m->size, idx);
		for (uint32_t i = 0; i < nf; i++)
			idx[i] = i;
		race(f, idx, nf, m->base, used, m->size);
	}
	free(f);
	free(idx);
	free(used);
	return 0;
}

int maglev_build(struct maglev *m, const char *const *names, const unsigned *weights, size_t n,
		 uint32_t size, char *err)
{
	memset(m, 0, sizeof(*m));
	if (n >= MAGLEV_NONE)
		return err_set(err, "too many backends for a table (at most %u)", MAGLEV_NONE - 1);
	if (size < MAGLEV_SIZE_MIN || size > MAGLEV_SIZE_MAX || !prime_check(size))
		return err_set(err, "table size %u is not a prime in %u-%u", size, MAGLEV_SIZE_MIN,
			       MAGLEV_SIZE_MAX);
	if (size < n)
		return err_set(err, "table size %u is smaller than the %zu backends", size, n);
	m->size = size;
	m->n = (uint32_t)n;
	m->base = malloc((size_t)size * sizeof(*m->base));
	m->table = malloc((size_t)size * sizeof(*m->table));
	m->down = calloc(n ? n : 1, 1);
	m->weight = calloc(n ? n : 1, sizeof(*m->weight));
	m->rank = calloc(n ? n : 1, sizeof(*m->rank));
	if (m->base == NULL || m->table == NULL || m->down == NULL || m->weight == NULL ||
	    m->rank == NULL) {
		maglev_free(m);
		return err_set(err, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		m->weight[i] = weights[i];
		m->rank[i] = (uint32_t)i;
	}
	sort_names = names;
	qsort(m->rank, n, sizeof(*m->rank), by_name);
	if (fill(m, names, weights, n, err) < 0) {
		maglev_free(m);
		return -1;
	}
	maglev_set_down(m, m->down);
	return 0;
}

void maglev_free(struct maglev *m)
{
	free(m->base);
	free(m->table);
	free(m->down);
	free(m->weight);
	free(m->rank);
	memset(m, 0, sizeof(*m));
}

static int live(const struct maglev *m, unsigned b)
{
	return b != MAGLEV_NONE && m->weight[b] != 0 && !m->down[b];
}

/* Walks slot s's preference order; calls visit(b) for each distinct backend
 * until it returns nonzero. Returns that backend or MAGLEV_NONE. */
static unsigned walk(const struct maglev *m, uint32_t s,
		     int (*visit)(const struct maglev *m, unsigned b, void *ctx), void *ctx)
{
	unsigned b = m->base[s];

	if (b == MAGLEV_NONE)
		return MAGLEV_NONE;
	if (visit(m, b, ctx))
		return b;
	for (uint32_t j = 1; j <= PROBES; j++) {
		b = m->base[probe(s, j, m->size)];
		if (visit(m, b, ctx))
			return b;
	}
	for (uint32_t k = 0; k < m->n; k++) {
		b = m->rank[(s + k) % m->n];
		if (m->weight[b] != 0 && visit(m, b, ctx))
			return b;
	}
	return MAGLEV_NONE;
}

static int visit_live(const struct maglev *m, unsigned b, void *ctx)
{
	(void)ctx;
	return live(m, b);
}

void maglev_set_down(struct maglev *m, const uint8_t *down)
{
	if (down != m->down)
		memcpy(m->down, down, m->n);
	m->nlive = 0;
	for (uint32_t i = 0; i < m->n; i++)
		m->nlive += live(m, i);
	for (uint32_t s = 0; s < m->size; s++) {
		unsigned b = m->base[s];

		if (m->nlive == 0)
			m->table[s] = MAGLEV_NONE;
		else
			m->table[s] = (uint16_t)(live(m, b) ? b : walk(m, s, visit_live, NULL));
	}
}

struct collect {
	unsigned *out;
	size_t k, n;
};

static int visit_collect(const struct maglev *m, unsigned b, void *ctx)
{
	struct collect *c = ctx;

	(void)m;
	for (size_t i = 0; i < c->n; i++)
		if (c->out[i] == b)
			return 0;
	c->out[c->n++] = b;
	return c->n == c->k;
}

size_t maglev_preference(const struct maglev *m, uint64_t hash, unsigned *out, size_t k)
{
	struct collect c = {out, k, 0};

	if (m->size == 0 || k == 0)
		return 0;
	walk(m, (uint32_t)(hash % m->size), visit_collect, &c);
	return c.n;
}

struct first {
	int (*accept)(unsigned b, void *ctx);
	void *ctx;
	unsigned *seen; /* small list of visited backends, to visit each once */
	size_t nseen, cap;
};

static int visit_first(const struct maglev *m, unsigned b, void *ctx)
{
	struct first *f = ctx;

	(void)m;
	for (size_t i = 0; i < f->nseen; i++)
		if (f->seen[i] == b)
			return 0;
	if (f->nseen < f->cap)
		f->seen[f->nseen++] = b;
	return f->accept(b, f->ctx);
}

unsigned maglev_first(const struct maglev *m, uint64_t hash, int (*accept)(unsigned b, void *ctx),
		      void *ctx)
{
	unsigned seen[PROBES + 1];
	struct first f = {accept, ctx, seen, 0, PROBES + 1};

	if (m->size == 0)
		return MAGLEV_NONE;
	return walk(m, (uint32_t)(hash % m->size), visit_first, &f);
}

uint32_t maglev_slots(const struct maglev *m, unsigned i)
{
	uint32_t n = 0;

	for (uint32_t s = 0; s < m->size; s++)
		n += m->table[s] == i;
	return n;
}
