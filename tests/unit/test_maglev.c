/* Weighted Maglev: balance, order independence, minimal disruption. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maglev.h"
#include "unit.h"

#define N 40
#define SIZE 131071u

static char names_buf[N][16];
static const char *names[N];
static unsigned weights[N];

static void setup(int mixed)
{
	for (int i = 0; i < N; i++) {
		snprintf(names_buf[i], sizeof(names_buf[i]), "be%02d", i);
		names[i] = names_buf[i];
		weights[i] = mixed ? 1 + (unsigned)(i * 7) % 4 : 1;
	}
}

static uint32_t slots_of(const struct maglev *m, unsigned b)
{
	return maglev_slots(m, b);
}

/* Quotas are D'Hondt's: slot k + 1 of a backend goes by the smallest
 * (k + 1) / weight, so every backend is within [ideal - 1,
 * ideal + N * weight / total] slots. */
TEST(shares_follow_weights_within_the_turn_bound)
{
	struct maglev m;
	char err[ERR_LEN];
	unsigned total = 0;

	setup(1);
	REQUIRE(maglev_build(&m, names, weights, N, SIZE, err) == 0);
	for (int i = 0; i < N; i++)
		total += weights[i];
	for (int i = 0; i < N; i++) {
		double ideal = (double)SIZE * weights[i] / total;
		double got = slots_of(&m, (unsigned)i);

		CHECK(got >= ideal - 1.0 && got <= ideal + (double)N * weights[i] / total);
	}
	maglev_free(&m);
}

TEST(table_ignores_the_order_of_backends)
{
	struct maglev a, b;
	const char *rev[N];
	unsigned revw[N];
	char err[ERR_LEN];

	setup(1);
	for (int i = 0; i < N; i++) {
		rev[i] = names[N - 1 - i];
		revw[i] = weights[N - 1 - i];
	}
	REQUIRE(maglev_build(&a, names, weights, N, SIZE, err) == 0);
	REQUIRE(maglev_build(&b, rev, revw, N, SIZE, err) == 0);
	for (uint32_t s = 0; s < SIZE; s++)
		if (!CHECK(a.table[s] == N - 1 - b.table[s]))
			break;
	maglev_free(&a);
	maglev_free(&b);
}

/* Removing any one backend from the file, or adding one, moves its own
 * slots and few others: at most 1.2 times its share of the table. */
TEST(removing_or_adding_a_backend_moves_little_more_than_its_share)
{
	static char extra[] = "be40";
	struct maglev all, other;
	const char *less[N + 1];
	unsigned lessw[N + 1], total = 0;
	char err[ERR_LEN];

	setup(1);
	for (int i = 0; i < N; i++)
		total += weights[i];
	REQUIRE(maglev_build(&all, names, weights, N, SIZE, err) == 0);
	for (int x = 0; x < N; x++) {
		uint32_t moved = 0, k = 0, map[N];

		for (int i = 0; i < N; i++)
			if (i != x) {
				map[k] = (uint32_t)i;
				less[k] = names[i];
				lessw[k++] = weights[i];
			}
		REQUIRE(maglev_build(&other, less, lessw, N - 1, SIZE, err) == 0);
		for (uint32_t s = 0; s < SIZE; s++)
			moved += all.table[s] != map[other.table[s]];
		CHECK(moved >= maglev_slots(&all, (unsigned)x));
		CHECK(moved <= 1.2 * SIZE * weights[x] / total);
		maglev_free(&other);
	}
	for (int i = 0; i < N; i++) {
		less[i] = names[i];
		lessw[i] = weights[i];
	}
	less[N] = extra;
	lessw[N] = 2;
	REQUIRE(maglev_build(&other, less, lessw, N + 1, SIZE, err) == 0);
	uint32_t moved = 0;
	for (uint32_t s = 0; s < SIZE; s++)
		moved += all.table[s] != other.table[s];
	CHECK(moved >= maglev_slots(&other, N));
	CHECK(moved <= 1.2 * SIZE * 2 / (total + 2));
	maglev_free(&other);
	maglev_free(&all);
}

TEST(down_moves_only_its_own_slots_and_up_restores_the_table)
{
	struct maglev m;
	uint8_t down[N] = {0};
	uint16_t *before;
	char err[ERR_LEN];
	uint32_t moved = 0, own;

	setup(1);
	REQUIRE(maglev_build(&m, names, weights, N, SIZE, err) == 0);
	before = malloc(SIZE * sizeof(*before));
	REQUIRE(before != NULL);
	memcpy(before, m.table, SIZE * sizeof(*before));
	own = slots_of(&m, 7);
	down[7] = 1;
	maglev_set_down(&m, down);
	for (uint32_t s = 0; s < SIZE; s++) {
		if (m.table[s] != before[s]) {
			moved++;
			CHECK(before[s] == 7); /* nobody else's client moves */
		}
		CHECK(m.table[s] != 7);
	}
	CHECK_EQ_INT(moved, own);
	down[7] = 0;
	maglev_set_down(&m, down);
	CHECK(memcmp(before, m.table, SIZE * sizeof(*before)) == 0);
	free(before);
	maglev_free(&m);
}

TEST(preference_order_starts_with_the_lookup_and_explains_failover)
{
	struct maglev m;
	uint8_t down[N] = {0};
	unsigned pref[4];
	char err[ERR_LEN];

	setup(0);
	REQUIRE(maglev_build(&m, names, weights, N, SIZE, err) == 0);
	for (uint64_t h = 1; h < 200000; h += 997) {
		size_t k = maglev_preference(&m, h * 0x9e3779b97f4a7c15ULL, pref, 4);

		if (!CHECK_EQ_INT(k, 4))
			break;
		CHECK_EQ_INT(pref[0], maglev_lookup(&m, h * 0x9e3779b97f4a7c15ULL));
		CHECK(pref[0] != pref[1] && pref[1] != pref[2] && pref[0] != pref[2]);
		/* With its first two choices down, a client goes to its third. */
		memset(down, 0, sizeof(down));
		down[pref[0]] = down[pref[1]] = 1;
		maglev_set_down(&m, down);
		CHECK_EQ_INT(maglev_lookup(&m, h * 0x9e3779b97f4a7c15ULL), pref[2]);
		memset(down, 0, sizeof(down));
		maglev_set_down(&m, down);
	}
	maglev_free(&m);
}

TEST(weight_zero_takes_no_slots_and_all_down_gives_none)
{
	struct maglev m;
	uint8_t down[N];
	char err[ERR_LEN];

	setup(0);
	weights[3] = 0;
	REQUIRE(maglev_build(&m, names, weights, N, SIZE, err) == 0);
	CHECK_EQ_INT(slots_of(&m, 3), 0);
	memset(down, 1, sizeof(down));
	maglev_set_down(&m, down);
	CHECK_EQ_INT(maglev_lookup(&m, 12345), MAGLEV_NONE);
	maglev_free(&m);
}

TEST(rejects_bad_sizes)
{
	struct maglev m;
	char err[ERR_LEN];

	setup(0);
	CHECK(maglev_build(&m, names, weights, N, 65536, err) == -1);
	CHECK_CONTAINS(err, "not a prime");
	CHECK(maglev_build(&m, names, weights, N, 31, err) == -1);
	CHECK(prime_check(131071) && prime_check(65537) && !prime_check(1) && !prime_check(91));
}

UNIT_MAIN(T(shares_follow_weights_within_the_turn_bound), T(table_ignores_the_order_of_backends),
	  T(removing_or_adding_a_backend_moves_little_more_than_its_share),
	  T(down_moves_only_its_own_slots_and_up_restores_the_table),
	  T(preference_order_starts_with_the_lookup_and_explains_failover),
	  T(weight_zero_takes_no_slots_and_all_down_gives_none), T(rejects_bad_sizes))
