/* Locality: each zone has its own hash tables (struct tiers over its
 * backends alone) beside the pool's global ones, and zone_pick chooses
 * between them. tcpdist and tcphash both pick through zone_pick, so they
 * answer alike.
 *
 * prefer keeps min(1, available_fraction x locality_overprovision) of a
 * zone's clients in the zone. Which ones is a fixed function of the client
 * hash (its place, bits the tables do not use), never a coin flip per
 * connection: a client goes the same way on every connection and on every
 * tcpdist instance, and as the zone loses capacity the clients that leave
 * are those with the highest places, the others stay put. Spilled clients
 * walk the global preference order without their zone's backends, which
 * spreads them over the other backends by available weight. A zone whose
 * available backends are all full (max_conns) or tried spills rather than
 * refuse, so a zone with most of the clients does not overload its own. */
#ifndef TCPDIST_ZONE_H
#define TCPDIST_ZONE_H

#include <stddef.h>
#include <stdint.h>

#include "pool.h"
#include "tier.h"

/* Where a client landed: any backend (it has no zone, or locality is off),
 * its own zone, or another one. */
enum zone_where { ZONE_ANY, ZONE_LOCAL, ZONE_SPILL, ZONE_WHERES };

struct zone_hash {
	struct tiers tiers; /* its backends alone, primaries and backups */
	uint32_t *member;   /* tiers' index -> the caller's backend index */
	size_t n;
	uint64_t weight;    /* its primaries' configured weight: "full" */
	uint64_t avail;     /* of which not down when built (zones_build's down) */
};

struct zone_set {
	struct zone_hash *z; /* one per pool->zones; NULL when locality is off */
	size_t n;
};

/* Builds a table per zone of pool when pool->locality is not off, each of
 * pool->zone_table_size slots: a size fixed by the file, not by the zone's
 * backends, so that adding one to a zone moves only that backend's share
 * of its clients (tcpdist.pool(5), ZONES). The arrays are per backend of
 * pool, as given to tiers_build for the global tables; down[i] marks
 * backends unavailable in the file. */
int zones_build(struct zone_set *zs, const struct pool *pool, const char *const *names,
		const unsigned *weights, const uint8_t *backup, const uint8_t *down, char *err);
void zones_free(struct zone_set *zs);

/* Whether a client with this hash stays in its zone, the zone having
 * avail of its full weight available (integer arithmetic only). */
int zone_keeps(uint64_t full, uint64_t avail, unsigned overprovision, uint64_t hash);

/* What the caller thinks of backend b (its index): 1 it takes the client,
 * 0 unavailable, -1 available but not now (full, or tried already). */
typedef int (*zone_accept_fn)(unsigned b, void *ctx);

/* The backend for a client of zone (POOL_ZONE_NONE: none): the first its
 * accept takes in its preference order, inside its zone first (prefer and
 * strict), then outside (prefer). available(b, actx) says whether backend b
 * counts in its zone's available weight. MAGLEV_NONE if none; *where says
 * which table answered, or where a strict client was refused (ZONE_LOCAL). */
unsigned zone_pick(const struct pool *pool, const struct zone_set *zs, const struct tiers *all,
		   unsigned zone, uint64_t hash, int (*available)(unsigned b, const void *actx),
		   const void *actx, zone_accept_fn accept, void *ctx, enum zone_where *where);

/* zone_pick's answer for a caller whose available and accept take exactly
 * the backends live in the tables (zones_build's and tiers_set_down's down,
 * as tcphash's are): the slot alone, no walk and no callback, the way
 * tiers_lookup answers without zones. MAGLEV_NONE when a walk is needed
 * (the client spills, or its zone has nothing live): then ask zone_pick. */
unsigned zone_lookup(const struct pool *pool, const struct zone_set *zs, const struct tiers *all,
		     unsigned zone, uint64_t hash, enum zone_where *where);

/* The available weight of zone's primaries. */
uint64_t zone_available(const struct pool *pool, const struct zone_set *zs, unsigned zone,
			int (*available)(unsigned b, const void *actx), const void *actx);

const char *zone_where_name(enum zone_where w); /* any, local, spill */

#endif
