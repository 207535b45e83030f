/* tcphash internals. */
#ifndef TCPDIST_TCPHASH_H
#define TCPDIST_TCPHASH_H

#include <stdint.h>

#include "pool.h"
#include "tier.h"
#include "zone.h"

#define PREFERENCE_MAX 64

/* A pool file with its Maglev tables, as tcpdist would build them. */
struct hashed {
	const char *path;
	struct pool *pool;
	struct tiers tiers;
	enum tier tier; /* in use: the backups' once no primary is live */
	uint8_t *down;  /* per backend: drained or down in the file, or --down */
	struct zone_set zones; /* locality's tables, as tcpdist builds them */
};

/* --without NAME or --set NAME.KEY=VALUE, for --diff POOL. */
struct pool_change {
	int without;
	const char *arg;
};

#define CHANGES_MAX 64

struct options {
	const char *pool_path;
	struct pool_change changes[CHANGES_MAX];
	size_t nchanges;
	const char *down_names[POOL_BACKENDS_MAX];
	size_t ndown;
	unsigned preference; /* -n K */
	int json;
	const char *zone; /* --zone NAME: every client asks as one of that zone */
};

int hashed_load(struct hashed *h, const char *path, const char *const *down, size_t ndown,
		char *err);
/* hashed_load for a pool already parsed, which h then owns (freed on failure). */
int hashed_build(struct hashed *h, const char *path, struct pool *p, const char *const *down,
		 size_t ndown, char *err);
/* The pool at path with the changes applied, in memory, as tcppool would
 * apply them. */
int hashed_load_changed(struct hashed *h, const char *path, const struct pool_change *changes,
			size_t n, char *err);
void hashed_free(struct hashed *h);
/* Where the table sends a client hash, in the availability the file and
 * --down describe; MAGLEV_NONE if nothing is available. */
unsigned hashed_lookup(const struct hashed *h, uint64_t hash);
/* The table in use: its size, and slot s's backend (MAGLEV_NONE: none). */
uint32_t hashed_size(const struct hashed *h);
unsigned hashed_slot(const struct hashed *h, uint32_t s);
/* Whether backend i takes clients: not down, and of the tier in use. */
int hashed_live(const struct hashed *h, size_t i);
/* Whether the pool has backups (then JSON answers name the tier). */
int hashed_has_backup(const struct hashed *h);
/* With locality: where zone_pick sends a client of zone (POOL_ZONE_NONE:
 * none), as tcpdist would; accept as for zone_pick, NULL for "available". */
unsigned hashed_pick(const struct hashed *h, unsigned zone, uint64_t hash,
		     zone_accept_fn accept, void *ctx, enum zone_where *where);

int run_lookup(const struct options *opt, char **clients, int nclients);
int run_stats(const struct options *opt);
int run_diff(const struct options *opt, const char *old_path, const char *new_path);

#endif
