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
 * slots probe(s, 1..MAGLEV_PROBES) (the order began so before, with more
 * probes), then MAGLEV_PROBES + 1 walks of a ring that holds every slot
 * once in a pseudo-random order, from starting points hashed from s, a
 * step at a time together, up to MAGLEV_RING steps, then every backend in
 * name order from s % n; each backend counts once. A function of s alone,
 * so no client of a live backend moves when another goes down; its first
 * live backend is spread by weight, as random slots are, and among the
 * walks the one nearest a live slot wins, which evens out the gaps between
 * live slots (one walk alone hands each live slot the gap before it).
 * More probes would not do: a probe finds a live slot with the live share
 * of the table, so with nearly every backend down, probes alone cost a
 * refill O(size * n). This order costs O(1) a slot whatever is down: one
 * backward sweep of the ring gives every position the distance to the
 * nearest live one (gap[]), so each walk is one read, and the name order's
 * first live backend from each position is an array of n. */
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "maglev.h"

#define TICK 16 /* steps per tick and unit of weight at full speed */

_Static_assert(MAGLEV_RING < UINT8_MAX, "gap[] holds MAGLEV_RING + 1");

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

/* splitmix64's finalizer over (slot, j). */
static uint64_t mix(uint32_t slot, uint32_t j)
{
	uint64_t z = ((uint64_t)slot << 32 | j) + 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* z % size, inv being UINT64_MAX / size. Where the compiler has 128 bits
 * a multiply does it (Barrett: the estimate of z / size is at most one
 * short, for any z), at half the cost of a division. */
static uint32_t reduce(uint64_t z, uint32_t size, uint64_t inv)
{
#ifdef __SIZEOF_INT128__
	uint64_t r = z - (uint64_t)((unsigned __int128)z * inv >> 64) * size;

	return (uint32_t)(r >= size ? r - size : r);
#else
	(void)inv;
	return (uint32_t)(z % size);
#endif
}

/* The ring has 2^k positions, k the bits of size - 1; position r holds
 * slot ring_slot(r, k) if that is below size, else none. A bijection of k
 * bits, so every slot is on the ring once, in a pseudo-random order: the
 * table's own order would favour some backends, as the slots of a backend
 * lie on arithmetic progressions and some sit after longer runs of other
 * backends' slots than the rest. */
static uint32_t ring_bits(uint32_t size)
{
	return 32 - (uint32_t)__builtin_clz(size - 1);
}

static uint32_t ring_slot(uint32_t r, uint32_t k)
{
	const uint32_t mask = (1u << k) - 1;

	r = (r * 0x9e3779b1u) & mask;
	r ^= r >> (k / 2);
	r = (r * 0x85ebca77u) & mask;
	return r ^ r >> (k / 2 + 1);
}

/* Where slot s's preference order looks: first at the slots probe[0] = s
 * and probe[1..], then along the ring from the positions walk[0..]. Walk j
 * starts at the top bits of the hash whose remainder modulo size is probe
 * j, a remainder that all but ignores them. */
struct ways {
	uint32_t probe[MAGLEV_PROBES + 1];
	uint32_t walk[MAGLEV_PROBES + 1];
};

static void ways_of(uint32_t s, uint32_t size, uint64_t inv, struct ways *w)
{
	const uint32_t mask = (1u << ring_bits(size)) - 1;

	w->probe[0] = s;
	w->walk[0] = (uint32_t)(mix(s, 0) >> 32) & mask;
	for (uint32_t j = 1; j <= MAGLEV_PROBES; j++) {
		uint64_t z = mix(s, j);

		w->probe[j] = reduce(z, size, inv);
		w->walk[j] = (uint32_t)(z >> 32) & mask;
	}
}

/* The race. active[] holds the backends still short of their quota, in
 * hash order; used[] is a bitmap of the taken slots; base[size] takes the
 * writes of a backend that reaches a taken slot. */
static void race(struct filler *f, uint32_t *active, uint32_t nactive, uint16_t *base,
		 uint64_t *used, uint32_t size)
{
	const uint64_t M = size, D = size / TICK;

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
				base[is_free ? pos : size] = owner;
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
	m->base = malloc(((size_t)size + 1) * sizeof(*m->base));
	m->table = malloc((size_t)size * sizeof(*m->table));
	m->down = calloc(n ? n : 1, 1);
	m->weight = calloc(n ? n : 1, sizeof(*m->weight));
	m->rank = calloc(n ? n : 1, sizeof(*m->rank));
	m->gap = malloc((size_t)1 << ring_bits(size));
	m->live_slot = calloc(((size_t)1 << ring_bits(size)) / 64, sizeof(*m->live_slot));
	m->rank_live = malloc((n ? n : 1) * sizeof(*m->rank_live));
	if (m->base == NULL || m->table == NULL || m->down == NULL || m->weight == NULL ||
	    m->rank == NULL || m->gap == NULL || m->live_slot == NULL || m->rank_live == NULL) {
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
	free(m->gap);
	free(m->live_slot);
	free(m->rank_live);
	memset(m, 0, sizeof(*m));
}

static int live(const struct maglev *m, unsigned b)
{
	return b != MAGLEV_NONE && m->weight[b] != 0 && !m->down[b];
}

/* Whether slot s's owner is live; never for those from size to 2^k - 1,
 * on the ring but in no table. */
static int slot_live(const struct maglev *m, uint32_t s)
{
	return m->live_slot[s >> 6] >> (s & 63) & 1;
}

/* The first live backend of dead slot s's preference order. */
static unsigned refill(const struct maglev *m, uint32_t s, uint64_t inv)
{
	const uint32_t k = ring_bits(m->size);
	uint32_t hit = UINT32_MAX, r, d;
	struct ways w;

	ways_of(s, m->size, inv, &w);
	for (uint32_t j = MAGLEV_PROBES; j >= 1; j--)
		hit = slot_live(m, w.probe[j]) ? w.probe[j] : hit;
	if (hit != UINT32_MAX)
		return m->base[hit];
	/* The walks together: the nearest live position wins, the first walk
	 * on a tie. No branches: which one wins is a coin toss to the CPU. */
	r = w.walk[0];
	d = m->gap[r];
	for (uint32_t j = 1; j <= MAGLEV_PROBES; j++) {
		uint32_t e = m->gap[w.walk[j]];

		r = e < d ? w.walk[j] : r;
		d = e < d ? e : d;
	}
	if (d > MAGLEV_RING)
		return m->rank_live[s % m->n];
	return m->base[ring_slot((r + d) & ((1u << k) - 1), k)];
}

void maglev_set_down(struct maglev *m, const uint8_t *down)
{
	const uint32_t words = (m->size + 63) / 64, k = ring_bits(m->size), len = 1u << k;
	const uint64_t inv = UINT64_MAX / m->size;
	uint32_t next = UINT32_MAX, weighted = 0;
	unsigned b = MAGLEV_NONE;

	if (down != m->down)
		memcpy(m->down, down, m->n);
	m->nlive = 0;
	for (uint32_t i = 0; i < m->n; i++) {
		m->nlive += live(m, i);
		weighted += m->weight[i] != 0;
	}
	if (m->nlive == 0) {
		memset(m->table, 0xff, (size_t)m->size * sizeof(*m->table));
		return;
	}
	memcpy(m->table, m->base, (size_t)m->size * sizeof(*m->table));
	if (m->nlive == weighted)
		return;
	/* Twice around the name order, so that every position has one ahead. */
	for (uint32_t i = 2 * m->n; i-- > 0;) {
		if (live(m, m->rank[i % m->n]))
			b = m->rank[i % m->n];
		if (i < m->n)
			m->rank_live[i] = (uint16_t)b;
	}
	/* Every owner has a weight: down alone says whether it is live. No
	 * branch per slot: half of them may be down, at random, and a CPU
	 * guessing wrong costs more than all the rest. */
	for (uint32_t w = 0; w < words; w++) {
		uint32_t end = w + 1 < words ? 64 : m->size - 64 * w;
		uint64_t bits = 0;

		for (uint32_t i = 0; i < end; i++)
			bits |= (uint64_t)!m->down[m->base[64 * w + i]] << i;
		m->live_slot[w] = bits;
	}
	/* gap[r]: how many positions on from r the nearest live one is,
	 * MAGLEV_RING + 1 if farther. Backwards, next being the nearest after r
	 * around the ring, UINT32_MAX (farther than any) if live backends own
	 * no slot. Masks, not branches, as for the bitmap. */
	for (uint32_t r = 0; r < len && next == UINT32_MAX; r++)
		next = slot_live(m, ring_slot(r, k)) ? r : next;
	for (uint32_t r = len; r-- > 0;) {
		uint32_t d = next > r ? next - r : next + len - r;
		uint32_t dead = (uint32_t)slot_live(m, ring_slot(r, k)) - 1; /* all ones or 0 */

		m->gap[r] = (uint8_t)((d > MAGLEV_RING ? MAGLEV_RING + 1 : d) & dead);
		next = (next & dead) | (r & ~dead);
	}
	for (uint32_t w = 0; w < words; w++) {
		uint64_t dead = ~m->live_slot[w];

		if (w + 1 == words && m->size % 64)
			dead &= ((uint64_t)1 << (m->size % 64)) - 1;
		for (; dead; dead &= dead - 1) {
			uint32_t s = 64 * w + (uint32_t)__builtin_ctzll(dead);

			m->table[s] = (uint16_t)refill(m, s, inv);
		}
	}
}

/* Whether b is met for the first time; marks it met. */
static int unseen(uint64_t *seen, unsigned b)
{
	uint64_t bit = (uint64_t)1 << (b & 63);

	if (seen[b >> 6] & bit)
		return 0;
	seen[b >> 6] |= bit;
	return 1;
}

/* Calls visit(b) for each distinct backend of slot s's preference order
 * until it returns nonzero; returns that backend or MAGLEV_NONE. */
static unsigned walk(const struct maglev *m, uint32_t s, int (*visit)(unsigned b, void *ctx),
		     void *ctx)
{
	const uint32_t k = ring_bits(m->size), mask = (1u << k) - 1;
	uint64_t seen[(MAGLEV_NONE + 63) / 64];
	unsigned b = m->base[s];
	struct ways w;

	if (b == MAGLEV_NONE)
		return MAGLEV_NONE;
	memset(seen, 0, ((size_t)m->n + 63) / 64 * sizeof(*seen));
	ways_of(s, m->size, UINT64_MAX / m->size, &w);
	for (uint32_t j = 0; j <= MAGLEV_PROBES; j++) {
		b = m->base[w.probe[j]];
		if (unseen(seen, b) && visit(b, ctx))
			return b;
	}
	for (uint32_t d = 0; d <= MAGLEV_RING; d++) {
		for (uint32_t j = 0; j <= MAGLEV_PROBES; j++) {
			uint32_t t = ring_slot((w.walk[j] + d) & mask, k);

			if (t >= m->size)
				continue;
			b = m->base[t];
			if (unseen(seen, b) && visit(b, ctx))
				return b;
		}
	}
	for (uint32_t i = 0, r = s % m->n; i < m->n; i++, r = r + 1 == m->n ? 0 : r + 1) {
		b = m->rank[r];
		if (m->weight[b] != 0 && unseen(seen, b) && visit(b, ctx))
			return b;
	}
	return MAGLEV_NONE;
}

struct collect {
	unsigned *out;
	size_t k, n;
};

static int collect(unsigned b, void *ctx)
{
	struct collect *c = ctx;

	c->out[c->n++] = b;
	return c->n == c->k;
}

size_t maglev_preference(const struct maglev *m, uint64_t hash, unsigned *out, size_t k)
{
	struct collect c = {out, k, 0};

	if (m->size == 0 || k == 0)
		return 0;
	walk(m, (uint32_t)(hash % m->size), collect, &c);
	return c.n;
}

unsigned maglev_first(const struct maglev *m, uint64_t hash, int (*accept)(unsigned b, void *ctx),
		      void *ctx)
{
	if (m->size == 0)
		return MAGLEV_NONE;
	return walk(m, (uint32_t)(hash % m->size), accept, ctx);
}

void maglev_count_slots(const struct maglev *m, uint32_t *slots)
{
	memset(slots, 0, m->n * sizeof(*slots));
	for (uint32_t s = 0; s < m->size; s++)
		if (m->table[s] != MAGLEV_NONE)
			slots[m->table[s]]++;
}
