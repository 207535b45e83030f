/* Hash tiers. With balance = hash the primary backends have one Maglev
 * table and the backups (backup = yes) another, each built from its own
 * backends alone: a client's backup is as stable as its primary, a backup
 * coming or going moves no client of a primary, and a pool without backups
 * has the very table it always had. Clients use the backups' table only
 * while no primary is available. tcpdist and tcphash build and read the
 * tiers here, so they answer alike. Backend indexes are the caller's
 * (positions in the arrays given to tiers_build). */
#ifndef TCPDIST_TIER_H
#define TCPDIST_TIER_H

#include <stddef.h>
#include <stdint.h>

#include "maglev.h"

enum tier { TIER_PRIMARY, TIER_BACKUP, TIERS };

struct tier_table {
	struct maglev m;   /* size 0 when the tier has no backend */
	uint32_t *backend; /* table index -> caller's index */
	uint8_t *down;     /* per table index, for maglev_set_down */
};

struct tiers {
	struct tier_table t[TIERS];
	uint8_t *tier; /* per caller's index: its enum tier */
	size_t n;
};

/* n backends: names unique, weights 0.., backup[i] != 0 for the backups
 * (backup may be NULL: none). */
int tiers_build(struct tiers *t, const char *const *names, const unsigned *weights,
		const uint8_t *backup, size_t n, uint32_t size, char *err);
void tiers_free(struct tiers *t);

/* Marks backends unavailable (down[i] != 0, by caller's index) and refills
 * their slots in their tier's table. */
void tiers_set_down(struct tiers *t, const uint8_t *down);

/* The tier in use: the primaries' while one of them is live (has weight
 * and is not down), else the backups'. */
enum tier tiers_in_use(const struct tiers *t);

/* maglev_lookup, maglev_first and maglev_preference in one tier, with the
 * caller's indexes in and out. */
unsigned tiers_lookup(const struct tiers *t, enum tier tier, uint64_t hash);
unsigned tiers_first(const struct tiers *t, enum tier tier, uint64_t hash,
		     int (*accept)(unsigned b, void *ctx), void *ctx);
size_t tiers_preference(const struct tiers *t, enum tier tier, uint64_t hash, unsigned *out,
			size_t k);

#endif
