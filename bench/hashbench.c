/* make bench: consistent hashing figures against the targets.
 * For N = 10, 100, 1000 backends, weights all 1 and mixed 1-4: table
 * balance, disruption when a backend goes down, when one is removed from the
 * file and when one is added to it (several different backends each way,
 * the mean and the worst reported, the worst held to the target), lookups
 * per second (hashing included, one core) and the table build time that
 * bounds a reload (the median of several builds). Then the balance of the
 * table with most backends drained, and the reload of a pool file of 10,000
 * backends (parse, build, refill) with 0, 5,000, 9,000 and 9,999 of them
 * drained, at the default and the largest table size. Last, locality's
 * pick (issue 17): zone_lookup and zone_pick against the plain tiers_lookup,
 * the same pool (bench/zones.sh's) and clients, rounds interleaved.
 *
 *	hashbench [TABLE_SIZE]	(default: MAGLEV_SIZE_DEFAULT; the reload
 *				 figures are for both sizes whatever it is)
 *	hashbench zones		(locality's pick alone) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "hash.h"
#include "maglev.h"
#include "pool.h"
#include "zone.h"

#define NMAX 10000
#define CHANGES 8 /* backends removed, and backends added, one at a time */
#define BUILDS 5  /* timed builds, the median reported */

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int failures;

static void report(const char *what, double value, const char *op, double target)
{
	int ok = strcmp(op, "<=") == 0 ? value <= target : value >= target;

	printf("  %-46s %12.4f   target %s %-10g %s\n", what, value, op, target,
	       ok ? "ok" : "MISSED");
	failures += !ok;
}

static void note(const char *what, double value, const char *why)
{
	printf("  %-46s %12.4f   (%s)\n", what, value, why);
}

/* Backend g of the whole universe: its name and weight. */
static char names_buf[NMAX + CHANGES][32];
static unsigned weight_of[NMAX + CHANGES];

static void universe(int mixed)
{
	for (unsigned g = 0; g < NMAX + CHANGES; g++) {
		snprintf(names_buf[g], sizeof(names_buf[g]), "backend-%u", g);
		weight_of[g] = mixed ? 1 + g * 7 % 4 : 1;
	}
}

/* Builds the table of backends ids[0..n) and leaves it in m. */
static void build(struct maglev *m, const unsigned *ids, size_t n, uint32_t size)
{
	const char *names[NMAX + CHANGES];
	unsigned w[NMAX + CHANGES];
	char err[ERR_LEN];

	for (size_t i = 0; i < n; i++) {
		names[i] = names_buf[ids[i]];
		w[i] = weight_of[ids[i]];
	}
	if (maglev_build(m, names, w, n, size, err) < 0) {
		fprintf(stderr, "hashbench: %s\n", err);
		exit(2);
	}
}

/* The live table as backend ids of the universe. */
static void ids_of(const struct maglev *m, const unsigned *ids, unsigned *out)
{
	for (uint32_t s = 0; s < m->size; s++)
		out[s] = m->table[s] == MAGLEV_NONE ? ~0u : ids[m->table[s]];
}

/* Share of slots that differ between two tables, over the ideal share. */
static double moved_ratio(const unsigned *a, const unsigned *b, uint32_t size, double ideal)
{
	uint32_t moved = 0;

	for (uint32_t s = 0; s < size; s++)
		moved += a[s] != b[s];
	return moved / (ideal * size);
}

/* Largest share of the table divided by the weight share, among the
 * backends not down. */
static double peak_to_mean(const struct maglev *m, const unsigned *ids, size_t n)
{
	static uint32_t slots[NMAX + CHANGES];
	double total = 0, peak = 0;

	maglev_count_slots(m, slots);
	for (size_t i = 0; i < n; i++)
		total += m->down[i] ? 0 : weight_of[ids[i]];
	for (size_t i = 0; i < n; i++) {
		double r = slots[i] / (m->size * weight_of[ids[i]] / total);

		if (!m->down[i] && r > peak)
			peak = r;
	}
	return peak;
}

static int by_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void one(size_t n, int mixed, uint32_t size)
{
	unsigned ids[NMAX + 1], less[NMAX], total = 0;
	unsigned *before = malloc(size * sizeof(*before)), *after = malloc(size * sizeof(*after));
	uint8_t *down = calloc(n, 1);
	double ms[BUILDS], t0, r, sum, worst;
	struct maglev m, o;
	char title[80];

	if (before == NULL || after == NULL || down == NULL) {
		fprintf(stderr, "hashbench: out of memory\n");
		exit(2);
	}
	for (size_t i = 0; i < n; i++) {
		ids[i] = (unsigned)i;
		total += weight_of[i];
	}
	printf("N = %zu, weights %s\n", n, mixed ? "mixed 1-4" : "all 1");
	for (int k = 0; k < BUILDS; k++) {
		t0 = now();
		build(&m, ids, n, size);
		ms[k] = (now() - t0) * 1e3;
		if (k < BUILDS - 1)
			maglev_free(&m);
	}
	qsort(ms, BUILDS, sizeof(*ms), by_double);
	report("table balance peak/mean", peak_to_mean(&m, ids, n), "<=", n <= 100 ? 1.002 : 1.01);
	report("table build ms, median (bounds a reload)", ms[BUILDS / 2], "<=", 50);

	/* Backend 0 goes down, then up again. */
	ids_of(&m, ids, before);
	down[0] = 1;
	maglev_set_down(&m, down);
	ids_of(&m, ids, after);
	uint32_t others = 0;
	for (uint32_t s = 0; s < size; s++)
		others += before[s] != after[s] && before[s] != ids[0];
	report("down: moved / ideal", moved_ratio(before, after, size, (double)weight_of[0] / total),
	       "<=", 1.01);
	report("down: slots moved between healthy backends", others, "<=", 0);
	down[0] = 0;
	maglev_set_down(&m, down);
	ids_of(&m, ids, after);
	report("up again: slots differing from before", memcmp(before, after, size * sizeof(*after)) != 0,
	       "<=", 0);

	/* CHANGES backends spread over the file removed, one at a time. */
	sum = worst = 0;
	for (size_t c = 0; c < CHANGES; c++) {
		size_t x = (c * n + n / 2) / CHANGES, k = 0;

		for (size_t i = 0; i < n; i++)
			if (i != x)
				less[k++] = ids[i];
		build(&o, less, k, size);
		ids_of(&o, less, after);
		maglev_free(&o);
		r = moved_ratio(before, after, size, (double)weight_of[x] / total);
		sum += r;
		worst = r > worst ? r : worst;
	}
	snprintf(title, sizeof(title), "remove one: moved / ideal, mean of %d", CHANGES);
	note(title, sum / CHANGES, "the worst is held to the target");
	if (n <= 100)
		report("remove one: moved / ideal, worst", worst, "<=", 1.2);
	else
		note("remove one: moved / ideal, worst", worst, "no target above N = 100");

	/* CHANGES new backends added, one at a time. */
	sum = worst = 0;
	for (size_t c = 0; c < CHANGES; c++) {
		ids[n] = (unsigned)(NMAX + c);
		build(&o, ids, n + 1, size);
		ids_of(&o, ids, after);
		maglev_free(&o);
		r = moved_ratio(before, after, size,
				(double)weight_of[ids[n]] / (total + weight_of[ids[n]]));
		sum += r;
		worst = r > worst ? r : worst;
	}
	snprintf(title, sizeof(title), "add one: moved / ideal, mean of %d", CHANGES);
	note(title, sum / CHANGES, "the worst is held to the target");
	if (n <= 100)
		report("add one: moved / ideal, worst", worst, "<=", 1.2);
	else
		note("add one: moved / ideal, worst", worst, "no target above N = 100");

	/* Lookups, hashing included, on this one core. */
	uint8_t key[HASH_SEED_LEN] = {0};
	volatile unsigned sink = 0;
	const int lookups = 20000000;
	t0 = now();
	for (int i = 0; i < lookups; i++) {
		uint32_t ip = 0x0a000000u + (uint32_t)i * 2654435761u;
		sink += maglev_lookup(&m, siphash24(key, &ip, 4));
	}
	report("lookups per second, millions", lookups / (now() - t0) / 1e6, ">=", 30);
	(void)sink; /* clang: set but not used */
	maglev_free(&m);
	free(before);
	free(after);
	free(down);
}

/* Backend i of n is drained when its place in a fixed shuffle is among the
 * first k, so that the drained ones spread over the name order. */
static int drained(size_t i, size_t n, size_t k)
{
	return (i * 7919 + 13) % n < k;
}

/* The peak share of the backends left, with most of them drained: what
 * the refill of their slots gives the others. No target: the issue sets
 * none, bench/README.md compares it with the fallback it replaced. */
static void refill_balance(size_t n, int mixed, uint32_t size)
{
	static const unsigned per_mille[] = {500, 900, 990, 999};
	unsigned ids[NMAX];
	uint8_t *down = malloc(n);
	struct maglev m;
	char what[80];

	if (down == NULL) {
		fprintf(stderr, "hashbench: out of memory\n");
		exit(2);
	}
	for (size_t i = 0; i < n; i++)
		ids[i] = (unsigned)i;
	printf("N = %zu, weights %s, most drained\n", n, mixed ? "mixed 1-4" : "all 1");
	build(&m, ids, n, size);
	for (size_t k = 0; k < sizeof(per_mille) / sizeof(*per_mille); k++) {
		size_t nd = n * per_mille[k] / 1000;

		for (size_t i = 0; i < n; i++)
			down[i] = drained(i, n, nd);
		maglev_set_down(&m, down);
		snprintf(what, sizeof(what), "%zu drained: peak/mean of the %zu left", nd, n - nd);
		note(what, peak_to_mean(&m, ids, n), "no target");
	}
	maglev_free(&m);
	free(down);
}

/* A pool file of n backends, k of them drained, in a buffer of the caller's. */
static size_t pool_text(char *buf, size_t cap, size_t n, size_t k, uint32_t size)
{
	size_t len = (size_t)snprintf(buf, cap, "[pool]\nlisten = 127.0.0.1:8080\ntable_size = %u\n",
				      size);

	for (size_t i = 0; i < n && len < cap; i++)
		len += (size_t)snprintf(buf + len, cap - len,
					"[backend be%05zu]\naddress = 10.0.%zu.%zu:80\nweight = %zu\n%s",
					i, i / 256, i % 256, 1 + i * 7 % 4,
					drained(i, n, k) ? "state = drain\n" : "");
	if (len >= cap) {
		fprintf(stderr, "hashbench: pool text too long\n");
		exit(2);
	}
	return len;
}

/* What a reload of the file costs tcpdist: parse it, build the table, refill
 * the drained backends' slots (cmd/tcpdist/farm.c does the same). */
static void reload_once(const char *text, size_t len, double ms[3])
{
	static const char *names[NMAX];
	static unsigned weights[NMAX];
	static uint8_t down[NMAX];
	char err[ERR_LEN];
	struct maglev m;
	struct pool *p;
	double t0 = now(), t1, t2;

	if ((p = pool_parse("bench.pool", text, len, err)) == NULL) {
		fprintf(stderr, "hashbench: %s\n", err);
		exit(2);
	}
	for (size_t i = 0; i < p->nbackends; i++) {
		names[i] = p->backends[i].name;
		weights[i] = p->backends[i].weight;
		down[i] = p->backends[i].state != BACKEND_UP;
	}
	t1 = now();
	if (maglev_build(&m, names, weights, p->nbackends, p->table_size, err) < 0) {
		fprintf(stderr, "hashbench: %s\n", err);
		exit(2);
	}
	t2 = now();
	maglev_set_down(&m, down);
	ms[0] = (t1 - t0) * 1e3;
	ms[1] = (t2 - t1) * 1e3;
	ms[2] = (now() - t2) * 1e3;
	maglev_free(&m);
	pool_free(p);
}

static void reload(uint32_t size, int runs, double target)
{
	static const size_t ndrained[] = {0, 5000, 9000, 9999};
	static const char *const parts[] = {"parse", "build", "refill"};
	size_t cap = 96 * NMAX + 256;
	char *text = malloc(cap), what[80];
	double ms[BUILDS][4];

	if (text == NULL) {
		fprintf(stderr, "hashbench: out of memory\n");
		exit(2);
	}
	printf("reload of %d backends, table size %u (median of %d)\n", NMAX, size, runs);
	for (size_t k = 0; k < sizeof(ndrained) / sizeof(*ndrained); k++) {
		size_t len = pool_text(text, cap, NMAX, ndrained[k], size);
		double col[BUILDS];

		for (int r = 0; r < runs; r++) {
			reload_once(text, len, ms[r]);
			ms[r][3] = ms[r][0] + ms[r][1] + ms[r][2];
		}
		for (int part = 0; part < 4; part++) {
			for (int r = 0; r < runs; r++)
				col[r] = ms[r][part];
			qsort(col, (size_t)runs, sizeof(*col), by_double);
			if (part < 3) {
				snprintf(what, sizeof(what), "%zu drained: %s ms", ndrained[k], parts[part]);
				note(what, col[runs / 2], part == 1 ? "the race" : "part of the reload");
			} else {
				snprintf(what, sizeof(what), "%zu drained: reload ms", ndrained[k]);
				report(what, col[runs / 2], "<=", target);
			}
		}
	}
	free(text);
}

/* bench/zones.sh's pool: 3 zones x 2 backends, balance = hash. */
#define ZPOOL                                                                          \
	"[pool]\nlisten = 127.0.0.1:1\nbalance = hash\nlocality = prefer\n"            \
	"[zone a]\nclients = 127.0.0.0/20\n[zone b]\nclients = 127.0.16.0/20\n"        \
	"[zone c]\nclients = 127.0.32.0/19\n"                                           \
	"[backend a1]\naddress = 127.0.0.1:2\nzone = a\n"                                \
	"[backend a2]\naddress = 127.0.0.1:3\nzone = a\n"                                \
	"[backend b1]\naddress = 127.0.0.1:4\nzone = b\n"                                \
	"[backend b2]\naddress = 127.0.0.1:5\nzone = b\n"                                \
	"[backend c1]\naddress = 127.0.0.1:6\nzone = c\n"                                \
	"[backend c2]\naddress = 127.0.0.1:7\nzone = c\n"
#define ZCLIENTS 1000000
#define ZROUNDS 9

struct zbench {
	struct pool *p;
	struct tiers all;
	struct zone_set zs;
	uint8_t down[8];
};

static int zup(unsigned b, const void *z)
{
	return !((const struct zbench *)z)->down[b];
}

static int zup_accept(unsigned b, void *z)
{
	return zup(b, z);
}

static void zbench_build(struct zbench *z, const uint8_t *down)
{
	const char *names[8];
	unsigned weights[8];
	uint8_t backup[8];
	char err[ERR_LEN];

	memset(z, 0, sizeof(*z));
	if ((z->p = pool_parse_unresolved("zones.pool", ZPOOL, strlen(ZPOOL), err)) == NULL) {
		fprintf(stderr, "hashbench: %s\n", err);
		exit(2);
	}
	for (size_t i = 0; i < z->p->nbackends; i++) {
		names[i] = z->p->backends[i].name;
		weights[i] = z->p->backends[i].weight;
		backup[i] = (uint8_t)z->p->backends[i].backup;
		z->down[i] = down[i];
	}
	if (tiers_build(&z->all, names, weights, backup, z->p->nbackends, z->p->table_size, err) <
		    0 ||
	    zones_build(&z->zs, z->p, names, weights, backup, z->down, err) < 0) {
		fprintf(stderr, "hashbench: %s\n", err);
		exit(2);
	}
	tiers_set_down(&z->all, z->down);
}

static void zbench_free(struct zbench *z)
{
	zones_free(&z->zs);
	tiers_free(&z->all);
	pool_free(z->p);
}

/* What tcphash's answer does without zones, with zone_lookup, and with
 * zone_pick's walk alone; each returns the sum of the backends, so that
 * nothing is optimized away. */
static unsigned long zpass(const struct zbench *z, int how, const uint64_t *hash,
			   const unsigned *zone, double *ns)
{
	enum tier tier = tiers_in_use(&z->all);
	enum zone_where where;
	unsigned long sum = 0;
	double t0 = now();

	for (size_t i = 0; i < ZCLIENTS; i++) {
		unsigned b;

		if (how == 0)
			b = tiers_lookup(&z->all, tier, hash[i]);
		else if (how == 1 &&
			 (b = zone_lookup(z->p, &z->zs, &z->all, zone[i], hash[i], &where)) !=
				 MAGLEV_NONE)
			;
		else
			b = zone_pick(z->p, &z->zs, &z->all, zone[i], hash[i], zup, z, zup_accept,
				      (void *)z, &where);
		sum += b;
	}
	*ns = (now() - t0) * 1e9 / ZCLIENTS;
	return sum;
}

/* zone_lookup must answer as zone_pick does wherever it answers at all. */
static void zcheck(const struct zbench *z, const uint64_t *hash, const unsigned *zone)
{
	size_t fast = 0;

	for (size_t i = 0; i < ZCLIENTS; i++) {
		enum zone_where w1 = ZONE_WHERES, w2;
		unsigned b1 = zone_lookup(z->p, &z->zs, &z->all, zone[i], hash[i], &w1);
		unsigned b2 = zone_pick(z->p, &z->zs, &z->all, zone[i], hash[i], zup, z, zup_accept,
					(void *)z, &w2);

		fast += b1 != MAGLEV_NONE;
		if (b1 != MAGLEV_NONE && (b1 != b2 || w1 != w2)) {
			printf("  zone_lookup and zone_pick disagree for client %zu\n", i);
			failures++;
			return;
		}
	}
	printf("  zone_lookup agrees with zone_pick: %zu of %d answered without a walk\n", fast,
	       ZCLIENTS);
}

static void zones(void)
{
	static const uint8_t none[8], b1_down[8] = {0, 0, 1};
	static const char *const hows[] = {"tiers_lookup (no zones)", "zone_lookup (tcphash)",
					   "zone_pick (walk, callbacks)"};
	uint64_t *hash = malloc(ZCLIENTS * sizeof(*hash));
	unsigned *zone = malloc(ZCLIENTS * sizeof(*zone));
	double ns[3][ZROUNDS], zns[ZROUNDS];
	unsigned long sum = 0;
	struct zbench z;
	char what[80];

	if (hash == NULL || zone == NULL) {
		fprintf(stderr, "hashbench: out of memory\n");
		exit(2);
	}
	zbench_build(&z, b1_down);
	printf("locality: %d clients of bench/zones.sh's pool (median of %d rounds)\n", ZCLIENTS,
	       ZROUNDS);
	for (int r = 0; r < ZROUNDS; r++) {
		double t0 = now();

		for (size_t i = 0; i < ZCLIENTS; i++) {
			struct sockaddr_in sin = {.sin_family = AF_INET};

			sin.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)(i / 250 % 64) << 8 |
						    (uint32_t)(i % 250 + 1));
			hash[i] = hash_client(z.p->hash_seed, (struct sockaddr *)&sin, 0);
			zone[i] = pool_client_zone(z.p, (struct sockaddr *)&sin);
		}
		zns[r] = (now() - t0) * 1e9 / ZCLIENTS;
	}
	printf("  b1 down (zone b spills):\n");
	zcheck(&z, hash, zone);
	zbench_free(&z);
	zbench_build(&z, none);
	printf("  all up:\n");
	zcheck(&z, hash, zone);
	for (int r = 0; r < ZROUNDS; r++)
		for (int k = 0; k < 3; k++) /* rotated, so that none always runs first */
			sum += zpass(&z, (k + r) % 3, hash, zone, &ns[(k + r) % 3][r]);
	for (int k = 0; k < 3; k++) {
		qsort(ns[k], ZROUNDS, sizeof(**ns), by_double);
		snprintf(what, sizeof(what), "%s ns per pick", hows[k]);
		note(what, ns[k][ZROUNDS / 2], k ? "against the plain lookup" : "the baseline");
	}
	qsort(zns, ZROUNDS, sizeof(*zns), by_double);
	note("hash and zone of a client ns", zns[ZROUNDS / 2], "siphash and the LPM, not in the above");
	note("zone_lookup / tiers_lookup", ns[1][ZROUNDS / 2] / ns[0][ZROUNDS / 2], "the pick");
	note("zone_pick / tiers_lookup", ns[2][ZROUNDS / 2] / ns[0][ZROUNDS / 2], "the pick");
	if (sum == 42)
		putchar('\n');
	zbench_free(&z);
	free(hash);
	free(zone);
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = {10, 100, 1000};
	const uint32_t table = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : MAGLEV_SIZE_DEFAULT;

	if (argc > 1 && strcmp(argv[1], "zones") == 0) {
		zones();
		return failures ? 1 : 0;
	}

	printf("consistent hashing, table size %u\n", table);
	for (int mixed = 0; mixed < 2; mixed++) {
		universe(mixed);
		for (size_t k = 0; k < 3; k++)
			one(sizes[k], mixed, table);
	}
	universe(1);
	refill_balance(1000, 1, table);
	universe(0);
	refill_balance(NMAX, 0, table);
	reload(MAGLEV_SIZE_DEFAULT, BUILDS, 50);
	reload(MAGLEV_SIZE_MAX, 3, 2000);
	zones();
	printf("%s\n", failures ? "some targets MISSED" : "all targets met");
	return failures ? 1 : 0;
}
