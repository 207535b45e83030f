/* tcphash --diff OLD NEW: what share of clients moves, and where to. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "json.h"
#include "tcphash.h"

#define SAMPLE_CLIENTS (1u << 20)

static const char *name_of(const struct hashed *h, unsigned b)
{
	return b == MAGLEV_NONE ? "-" : h->pool->backends[b].name;
}

/* Backends match by name; "none available" matches only itself (a backend
 * may be named "-"). */
static int same_backend(const struct hashed *o, unsigned a, const struct hashed *n, unsigned b)
{
	if (a == MAGLEV_NONE || b == MAGLEV_NONE)
		return a == b;
	return strcmp(o->pool->backends[a].name, n->pool->backends[b].name) == 0;
}

/* In JSON no backend is null, never mistaken for one named "-". */
static void json_backend(const struct hashed *h, unsigned b)
{
	if (b == MAGLEV_NONE)
		fputs("null", stdout);
	else
		json_string(stdout, h->pool->backends[b].name);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Weight share of backend i among the available ones of the tier in use. */
static double weight_share(const struct hashed *h, size_t i)
{
	uint64_t total = 0;

	for (size_t k = 0; k < h->pool->nbackends; k++)
		if (hashed_live(h, k))
			total += h->pool->backends[k].weight;
	return !hashed_live(h, i) || total == 0 ? 0.0
						 : (double)h->pool->backends[i].weight / total;
}

static int none_available(const struct hashed *h)
{
	for (size_t k = 0; k < h->pool->nbackends; k++)
		if (hashed_live(h, k) && h->pool->backends[k].weight > 0)
			return 0;
	return 1;
}

/* The least share that must move: half the L1 distance between the two
 * pools' weight shares, matched by backend name, "no backend" being one
 * more place a client can be. */
static double ideal_move(const struct hashed *o, const struct hashed *n)
{
	double sum = none_available(o) && !none_available(n) ? 1.0 : 0.0;

	for (size_t i = 0; i < o->pool->nbackends; i++) {
		const struct pool_backend *nb = pool_find_backend(n->pool, o->pool->backends[i].name);
		double p = weight_share(o, i), q = nb ? weight_share(n, (size_t)(nb - n->pool->backends)) : 0;

		if (p > q)
			sum += p - q;
	}
	return sum;
}

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

int run_diff(const struct options *opt, const char *old_path, const char *new_path)
{
	struct hashed o, n;
	char err[ERR_LEN];
	uint64_t *moves, total, nmoves = 0, seq = 1;
	int exact;
	double moved, ideal;

	if (hashed_load(&o, old_path, NULL, 0, err) < 0) {
		fprintf(stderr, "tcphash: %s\n", err);
		return 2;
	}
	if ((opt->nchanges ? hashed_load_changed(&n, old_path, opt->changes, opt->nchanges, err)
			   : hashed_load(&n, new_path, NULL, 0, err)) < 0) {
		fprintf(stderr, "tcphash: %s\n", err);
		hashed_free(&o);
		return 2;
	}
	/* Same table size and client hashing: compare slot by slot, exactly.
	 * Otherwise follow a fixed sample of a million clients through both. */
	exact = hashed_size(&o) == hashed_size(&n) && hashed_size(&o) != 0 &&
		o.pool->hash_key == n.pool->hash_key &&
		memcmp(o.pool->hash_seed, n.pool->hash_seed, HASH_SEED_LEN) == 0;
	total = exact ? hashed_size(&o) : SAMPLE_CLIENTS;
	moves = malloc(total * sizeof(*moves));
	if (moves == NULL) {
		fprintf(stderr, "tcphash: out of memory\n");
		return 2;
	}
	for (uint64_t i = 0; i < total; i++) {
		unsigned a, b;

		if (exact) {
			a = hashed_slot(&o, (uint32_t)i);
			b = hashed_slot(&n, (uint32_t)i);
		} else {
			uint64_t r = splitmix(&seq);
			struct sockaddr_in sin = {.sin_family = AF_INET,
						  .sin_addr.s_addr = (uint32_t)r,
						  .sin_port = (uint16_t)(r >> 32)};

			a = hashed_lookup(&o, hash_client(o.pool->hash_seed, (struct sockaddr *)&sin,
							  o.pool->hash_key == HASH_KEY_IP_PORT));
			b = hashed_lookup(&n, hash_client(n.pool->hash_seed, (struct sockaddr *)&sin,
							  n.pool->hash_key == HASH_KEY_IP_PORT));
		}
		if (!same_backend(&o, a, &n, b))
			moves[nmoves++] = (uint64_t)(a & 0xffff) << 16 | (b & 0xffff);
	}
	qsort(moves, nmoves, sizeof(*moves), cmp_u64);
	moved = (double)nmoves / total;
	ideal = ideal_move(&o, &n);

	if (opt->json) {
		printf("{\"moved\": %.6f, \"ideal\": %.6f, \"ratio\": %.4f, \"exact\": %s, "
		       "\"moves\": [", moved, ideal, ideal > 0 ? moved / ideal : 0.0,
		       exact ? "true" : "false");
	} else {
		printf("moved %.4f%% of clients, ideal minimum %.4f%%", 100 * moved, 100 * ideal);
		if (ideal > 0)
			printf(" (%.4fx)", moved / ideal);
		printf("%s\n", exact ? "" : " (estimated from a sample of 1048576 clients)");
	}
	for (uint64_t i = 0, first = 1; i < nmoves;) {
		uint64_t j = i;

		while (j < nmoves && moves[j] == moves[i])
			j++;
		unsigned from = (unsigned)(moves[i] >> 16), to = (unsigned)(moves[i] & 0xffff);
		double share = (double)(j - i) / total;

		if (opt->json) {
			fputs(first ? "\n  {\"from\": " : ",\n  {\"from\": ", stdout);
			json_backend(&o, from);
			fputs(", \"to\": ", stdout);
			json_backend(&n, to);
			printf(", \"share\": %.6f}", share);
		} else {
			printf("%s\t%s\t%.6f\n", name_of(&o, from), name_of(&n, to), share);
		}
		first = 0;
		i = j;
	}
	if (opt->json)
		printf("%s]}\n", nmoves ? "\n" : "");
	free(moves);
	hashed_free(&o);
	hashed_free(&n);
	return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 2;
}
