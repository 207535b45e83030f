/* Weighted Maglev (Eisenbud et al., NSDI 2016) with per-slot fallbacks.
 *
 * Filling: every backend walks its own permutation of the slots, given by
 * (offset + j * skip) mod size with offset and skip derived from its name.
 * Turns go to the backend with the smallest (slots taken + 1) / weight, ties
 * to the smaller name, so each ends with its weight's share to within one
 * slot. Fallbacks: slot s's preference order is its owner, then the owners
 * of slots probe(s, 1), probe(s, 2), ..., then every backend in name order:
 * a pseudo-random, weight-proportional spread that is a function of s alone. */
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "maglev.h"

#define PROBES 128 /* fallback slots examined before the name-order scan */

static const uint8_t key_offset[HASH_SEED_LEN] = "tcpdist:offset:1";
static const uint8_t key_skip[HASH_SEED_LEN] = "tcpdist:skip::::";

struct filler {
	uint32_t pos;
	uint32_t skip;
	uint32_t taken;
	uint32_t weight;
	uint32_t rank; /* position in name order: the tie-break */
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

/* a takes the next turn before b. */
static int turn_before(const struct filler *a, const struct filler *b)
{
	uint64_t x = ((uint64_t)a->taken + 1) * b->weight;
	uint64_t y = ((uint64_t)b->taken + 1) * a->weight;

	return x < y || (x == y && a->rank < b->rank);
}

static void heap_down(struct filler *f, uint32_t *heap, uint32_t n, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < n && turn_before(&f[heap[l]], &f[heap[m]]))
			m = l;
		if (r < n && turn_before(&f[heap[r]], &f[heap[m]]))
			m = r;
		if (m == i)
			return;
		uint32_t t = heap[i];
		heap[i] = heap[m];
		heap[m] = t;
		i = m;
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

static int fill(struct maglev *m, const char *const *names, const unsigned *weights, size_t n,
		char *err)
{
	struct filler *f = calloc(n ? n : 1, sizeof(*f));
	uint32_t *order = calloc(n ? n : 1, sizeof(*order));
	uint32_t *heap = calloc(n ? n : 1, sizeof(*heap));
	uint32_t nf = 0;

	if (f == NULL || order == NULL || heap == NULL) {
		free(f), free(order), free(heap);
		return err_set(err, "out of memory");
	}
	for (uint32_t i = 0; i < n; i++)
		order[i] = i;
	sort_names = names;
	qsort(order, n, sizeof(*order), by_name);
	for (uint32_t r = 0; r < n; r++) {
		uint32_t i = order[r];
		size_t len = strlen(names[i]);

		if (weights[i] == 0)
			continue;
		f[nf].pos = (uint32_t)(siphash24(key_offset, names[i], len) % m->size);
		f[nf].skip = (uint32_t)(siphash24(key_skip, names[i], len) % (m->size - 1)) + 1;
		f[nf].weight = weights[i];
		f[nf].rank = r;
		f[nf].backend = i;
		heap[nf] = nf;
		nf++;
	}
	for (uint32_t i = nf / 2; i-- > 0;)
		heap_down(f, heap, nf, i);

	memset(m->base, 0xff, (size_t)m->size * sizeof(*m->base));
	for (uint32_t filled = 0; nf > 0 && filled < m->size; filled++) {
		struct filler *t = &f[heap[0]];

		while (m->base[t->pos] != MAGLEV_NONE) {
			t->pos += t->skip;
			if (t->pos >= m->size)
				t->pos -= m->size;
		}
		m->base[t->pos] = (uint16_t)t->backend;
		t->taken++;
		heap_down(f, heap, nf, 0);
	}
	free(f);
	free(heap);
	free(order);
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
