/* make bench: consistent hashing figures against the targets.
 * For N = 10, 100, 1000 backends, weights all 1 and mixed 1-4: table
 * balance, disruption when a backend goes down and when one is removed from
 * or added to the file, lookups per second (hashing included, one core) and
 * the table build time that bounds a reload. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hash.h"
#include "maglev.h"

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

/* Largest share of the table divided by the weight share. */
static double peak_to_mean(const struct maglev *m, const unsigned *w, size_t n)
{
	double total = 0, peak = 0;

	for (size_t i = 0; i < n; i++)
		total += w[i];
	for (size_t i = 0; i < n; i++) {
		double r = maglev_slots(m, (unsigned)i) / (m->size * w[i] / total);
		if (r > peak)
			peak = r;
	}
	return peak;
}

/* Moved share between two tables whose backend i is the same name, over
 * the ideal; "others" counts slots that moved between backends kept in both. */
static double moved_ratio(const struct maglev *a, const struct maglev *b, double ideal,
			  unsigned removed, unsigned *others)
{
	uint32_t moved = 0;

	*others = 0;
	for (uint32_t s = 0; s < a->size; s++) {
		if (a->table[s] != b->table[s]) {
			moved++;
			*others += a->table[s] != removed && b->table[s] != removed;
		}
	}
	return moved / (ideal * a->size);
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = {10, 100, 1000};
	const uint32_t table = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : MAGLEV_SIZE_DEFAULT;
	char err[ERR_LEN];

	printf("consistent hashing, table size %u\n", table);
	for (int mixed = 0; mixed < 2; mixed++) {
		for (size_t k = 0; k < 3; k++) {
			size_t n = sizes[k];
			const char **names = calloc(n, sizeof(*names));
			unsigned *w = calloc(n, sizeof(*w)), total = 0, others;
			uint8_t *down = calloc(n, 1);
			struct maglev m, less;
			double t0, t1, ideal, r;
			char title[64];

			for (size_t i = 0; i < n; i++) {
				char *s = malloc(32);
				snprintf(s, 32, "backend-%zu", i);
				names[i] = s;
				w[i] = mixed ? 1 + (unsigned)(i * 7 % 4) : 1;
				total += w[i];
			}
			printf("N = %zu, weights %s\n", n, mixed ? "mixed 1-4" : "all 1");
			t0 = now();
			if (maglev_build(&m, names, w, n, table, err) < 0) {
				fprintf(stderr, "hashbench: %s\n", err);
				return 2;
			}
			t1 = now();
			report("table balance peak/mean", peak_to_mean(&m, w, n), "<=",
			       n <= 100 ? 1.002 : 1.01);
			report("table build ms (bounds a reload)", (t1 - t0) * 1e3, "<=", 50);

			/* Backend 0 goes down. */
			uint16_t *before = malloc(table * sizeof(*before));
			memcpy(before, m.table, table * sizeof(*before));
			down[0] = 1;
			maglev_set_down(&m, down);
			struct maglev snap = m;
			snap.table = before;
			ideal = (double)w[0] / total;
			r = moved_ratio(&snap, &m, ideal, 0, &others);
			report("down: moved / ideal", r, "<=", 1.01);
			report("down: slots moved between healthy backends", others, "<=", 0);
			down[0] = 0;
			maglev_set_down(&m, down);
			report("up again: slots differing from before", memcmp(before, m.table, table * 2) != 0,
			       "<=", 0);

			/* The last backend removed from the file (same names otherwise). */
			if (maglev_build(&less, names, w, n - 1, table, err) == 0) {
				ideal = (double)w[n - 1] / total;
				r = moved_ratio(&m, &less, ideal, (unsigned)(n - 1), &others);
				snprintf(title, sizeof(title), "remove one from the file: moved / ideal");
				if (n <= 100)
					report(title, r, "<=", 1.2);
				else
					printf("  %-46s %12.4f   (no target above N = 100)\n", title, r);
				maglev_free(&less);
			}

			/* Lookups, hashing included, on this one core. */
			uint8_t key[HASH_SEED_LEN] = {0};
			volatile unsigned sink = 0;
			const int lookups = 20000000;
			t0 = now();
			for (int i = 0; i < lookups; i++) {
				uint32_t ip = 0x0a000000u + (uint32_t)i * 2654435761u;
				sink += maglev_lookup(&m, siphash24(key, &ip, 4));
			}
			t1 = now();
			report("lookups per second, millions", lookups / (t1 - t0) / 1e6, ">=", 30);
			maglev_free(&m);
			free(before);
			free(down);
			free(w);
			for (size_t i = 0; i < n; i++)
				free((void *)names[i]);
			free(names);
		}
	}
	printf("%s\n", failures ? "some targets MISSED" : "all targets met");
	return failures ? 1 : 0;
}
