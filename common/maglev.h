/* Weighted Maglev consistent hashing, shared by tcpdist and tcphash.
 *
 * The table depends only on the backends' NAMES, weights and the table
 * size: not on their order in the pool file, their addresses, the machine
 * or the compiler (integer arithmetic only). Backends that are down or
 * drained keep their slots in the configured table; only those slots are
 * refilled, each from the slot's own fallback sequence, so no client of a
 * healthy backend ever moves and the table is bit-identical once they are
 * back. The same fallback sequence is a client's preference order: the
 * owners of the slot and of MAGLEV_PROBES pseudo-random slots, then of the
 * slots met by MAGLEV_PROBES + 1 walks of a ring of all the slots, a step
 * at a time up to MAGLEV_RING steps, then every backend in name order (see
 * maglev.c). Refilling costs O(size + n) whatever is down. */
#ifndef TCPDIST_MAGLEV_H
#define TCPDIST_MAGLEV_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define MAGLEV_SIZE_DEFAULT 524287u /* why: tcpdist.pool(5), TABLE SIZE */
#define MAGLEV_SIZE_MIN 257u
#define MAGLEV_SIZE_MAX 8388593u /* a reload of 10,000 backends within 2 s: bench/README.md */
#define MAGLEV_NONE 0xffffu
#define MAGLEV_PROBES 4 /* random fallback slots: each costs every dead slot a read */
#define MAGLEV_RING 254 /* steps from each: rarely short of a live slot, fits a byte */

struct maglev {
	uint32_t size;       /* slots, a prime */
	uint32_t n;          /* backends given to maglev_build */
	uint16_t *base;      /* slot -> backend, every configured backend present; 1 spare */
	uint16_t *table;     /* slot -> backend, with unavailable backends' slots refilled */
	uint8_t *down;       /* per backend: 1 if excluded from the live table */
	unsigned *weight;    /* per backend, as built */
	uint32_t *rank;      /* backends in name order: the last-resort fallback */
	uint32_t nlive;      /* backends with weight > 0 that are not down */
	uint64_t *live_slot; /* maglev_set_down's: bitmap of the slots whose owner is live */
	uint8_t *gap;        /* maglev_set_down's: per ring position, to the nearest live one */
	uint16_t *rank_live; /* maglev_set_down's: per rank, the first live backend from it on */
};

/* Builds the configured table for n backends (names unique, weights 0..).
 * Backend indexes everywhere are positions in names[]. Weight 0 takes no slots. */
int maglev_build(struct maglev *m, const char *const *names, const unsigned *weights, size_t n,
		 uint32_t size, char *err);
void maglev_free(struct maglev *m);

/* Marks backends unavailable (down[i] != 0) and refills their slots. */
void maglev_set_down(struct maglev *m, const uint8_t *down);

/* The backend for a client hash, MAGLEV_NONE if none is available. */
static inline unsigned maglev_lookup(const struct maglev *m, uint64_t hash)
{
	return m->size ? m->table[hash % m->size] : MAGLEV_NONE;
}

/* The first k distinct backends of a client's preference order, ignoring
 * availability: the first is its configured backend, the next ones are where
 * it goes if those before are unavailable. Returns how many were written. */
size_t maglev_preference(const struct maglev *m, uint64_t hash, unsigned *out, size_t k);

/* Walks the client's whole preference order (every backend with weight,
 * each once) and returns the first one accept() takes, or MAGLEV_NONE.
 * It reads at most (MAGLEV_PROBES + 1) * (MAGLEV_RING + 2) slots and n names. */
unsigned maglev_first(const struct maglev *m, uint64_t hash, int (*accept)(unsigned b, void *ctx),
		      void *ctx);

/* Slots of each of the n backends in the live table, in one pass. */
void maglev_count_slots(const struct maglev *m, uint32_t *slots);

int prime_check(uint32_t n);

#endif
