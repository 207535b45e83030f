/* tcphash internals. */
#ifndef TCPDIST_TCPHASH_H
#define TCPDIST_TCPHASH_H

#include <stdint.h>

#include "maglev.h"
#include "pool.h"

#define PREFERENCE_MAX 64

/* A pool file with its Maglev table, as tcpdist would build it. */
struct hashed {
	const char *path;
	struct pool *pool;
	struct maglev table;
	uint8_t *down; /* per backend: drained or down in the file, or --down */
};

struct options {
	const char *pool_path;
	const char *down_names[POOL_BACKENDS_MAX];
	size_t ndown;
	unsigned preference; /* -n K */
	int json;
};

int hashed_load(struct hashed *h, const char *path, const char *const *down, size_t ndown,
		char *err);
void hashed_free(struct hashed *h);
/* Where the table sends a client hash, in the availability the file and
 * --down describe; MAGLEV_NONE if nothing is available. */
unsigned hashed_lookup(const struct hashed *h, uint64_t hash);

int run_lookup(const struct options *opt, char **clients, int nclients);
int run_stats(const struct options *opt);
int run_diff(const struct options *opt, const char *old_path, const char *new_path);

#endif
