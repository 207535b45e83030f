/* Backend selection for roundrobin, leastconn and random. Pure functions
 * over caller-owned arrays so each tcpdist thread keeps its own state. */
#ifndef TCPDIST_BALANCE_H
#define TCPDIST_BALANCE_H

#include <stddef.h>
#include <stdint.h>

/* What the selectors need to know about backend i. A backend with weight 0
 * or with eligible == 0 is never chosen. */
struct balance_candidate {
	unsigned weight;
	unsigned active; /* open connections (leastconn, random) */
	int eligible;
};

/* Smooth weighted round robin (as in nginx): over any run of sum(weights)
 * picks each backend is chosen exactly weight times, evenly spread.
 * current[] holds n values owned by the caller, zeroed at start. */
int balance_roundrobin(const struct balance_candidate *c, size_t n, int64_t *current);

/* Fewest active connections per unit of weight; ties broken by rotating
 * from *cursor so equal backends share the load. */
int balance_leastconn(const struct balance_candidate *c, size_t n, size_t *cursor);

/* Two weighted random choices, the less loaded (per weight) wins.
 * rng is the caller's rng_next() state (nonzero). */
int balance_random(const struct balance_candidate *c, size_t n, uint64_t *rng);

#endif
