/* The keys of a pool file and the sections each may stand in: the one list
 * that the loader checks a key against before it reads the value, and that
 * suggestions for a mistyped key come from. A key the loader reads must be
 * here (else it is refused as unknown), and every key here must be read by
 * the loader (tests/unit/test_pool.c checks both). */
#ifndef TCPDIST_POOLKEYS_H
#define TCPDIST_POOLKEYS_H

#include <stddef.h>

enum pool_section_bit { PK_POOL = 1, PK_BACKEND = 2, PK_ZONE = 4 };

struct pool_key_def {
	const char *name;
	unsigned sections; /* enum pool_section_bit */
};

/* Every key, ended by a NULL name. */
extern const struct pool_key_def pool_keys[];

/* The key named name, or NULL. */
const struct pool_key_def *pool_key_find(const char *name);

/* The key of the sections (PK_ bits) nearest to name by edit distance
 * (a swap of two letters counts once), when it is close enough to be a
 * typo; else NULL. */
const char *pool_key_nearest(const char *name, unsigned sections);

/* Where the sections (PK_ bits) are, for "KEY: only in ...": "the [pool]
 * section", "a [backend NAME] section", "[pool] or [backend NAME]". */
const char *pool_sections_text(unsigned sections, char *buf, size_t len);

#endif
