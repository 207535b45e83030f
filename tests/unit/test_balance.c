/* Backend selection: smooth weighted round robin, leastconn, random (two choices). */
#include <stdint.h>

#include "balance.h"
#include "rng.h"
#include "unit.h"

#define MAXN 16

/* Candidates from weights; all eligible, no connections. */
static size_t candidates(struct balance_candidate *c, const unsigned *w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		c[i].weight = w[i];
		c[i].active = 0;
		c[i].eligible = 1;
	}
	return n;
}

/* k roundrobin picks from fresh state, as letters a, b, c... */
static void rr_sequence(const unsigned *w, size_t n, size_t k, char *out)
{
	struct balance_candidate c[MAXN];
	int64_t current[MAXN] = {0};

	candidates(c, w, n);
	for (size_t i = 0; i < k; i++) {
		int b = balance_roundrobin(c, n, current);

		out[i] = b < 0 ? '-' : (char)('a' + b);
	}
	out[k] = '\0';
}

static void rr_pattern(const unsigned *w, size_t n, const char *want, const char *file, int line)
{
	char got[256];

	rr_sequence(w, n, strlen(want), got);
	unit_check(strcmp(got, want) == 0, file, line, "roundrobin picks \"%s\", expected \"%s\"",
		   got, want);
}

#define RR_PATTERN(want, ...)                                                                      \
	do {                                                                                       \
		static const unsigned w_[] = {__VA_ARGS__};                                        \
		rr_pattern(w_, sizeof(w_) / sizeof(w_[0]), want, __FILE__, __LINE__);              \
	} while (0)

/* ---- roundrobin ---- */

TEST(rr_weights_1_2_3_exact_over_600)
{
	static const unsigned w[] = {1, 2, 3};
	struct balance_candidate c[3];
	int64_t current[3] = {0};
	int count[3] = {0}, picks[600];

	candidates(c, w, 3);
	for (int i = 0; i < 600; i++) {
		picks[i] = balance_roundrobin(c, 3, current);
		REQUIRE(picks[i] >= 0 && picks[i] < 3);
		count[picks[i]]++;
	}
	CHECK_EQ_INT(count[0], 100);
	CHECK_EQ_INT(count[1], 200);
	CHECK_EQ_INT(count[2], 300);
	/* Exact not only overall: every run of sum(weights) = 6 picks, wherever it
	 * starts, holds each backend exactly weight times. */
	for (int s = 0; s + 6 <= 600; s++) {
		int win[3] = {0};

		for (int i = s; i < s + 6; i++)
			win[picks[i]]++;
		if (!unit_check(win[0] == 1 && win[1] == 2 && win[2] == 3, __FILE__, __LINE__,
				"picks %d..%d hold %d/%d/%d, expected 1/2/3", s, s + 5, win[0],
				win[1], win[2]))
			break;
	}
}

TEST(rr_smooth_like_nginx)
{
	/* nginx's example: weights 5,1,1 give a a b a c a a, not a a a a a b c. */
	RR_PATTERN("aabacaaaabacaa", 5, 1, 1);
	RR_PATTERN("cbacbccbacbc", 1, 2, 3);
	RR_PATTERN("abacaba", 4, 2, 1);
	RR_PATTERN("abcabab", 3, 3, 1);
	RR_PATTERN("abaaba", 2, 1);
	RR_PATTERN("abaaabaaba", 7, 3);
	RR_PATTERN("bbabbb", 1, 5);
}

TEST(rr_equal_weights_rotate)
{
	RR_PATTERN("abcabcabc", 1, 1, 1);
	RR_PATTERN("abababab", 2, 2);
	RR_PATTERN("abcdabcd", 256, 256, 256, 256);
	RR_PATTERN("aaaa", 7);
}

TEST(rr_no_long_runs)
{
	/* Within one period of 5,1,1 the heavy backend never runs more than
	 * twice in a row (a plain weighted round robin would run it 5 times). */
	static const unsigned w[] = {5, 1, 1};
	char seq[8];

	rr_sequence(w, 3, 7, seq);
	CHECK(strstr(seq, "aaa") == NULL);
	/* Two equal heavy backends and a light one never repeat back to back. */
	{
		static const unsigned w2[] = {10, 10, 1};
		char s2[22];

		rr_sequence(w2, 3, 21, s2);
		CHECK(strstr(s2, "aa") == NULL && strstr(s2, "bb") == NULL);
	}
}

TEST(rr_exact_for_many_weight_sets)
{
	static const unsigned sets[][6] = {
	    {1, 1, 1, 1, 1, 1},	     {256, 1, 0, 0, 0, 0},  {3, 7, 11, 13, 0, 0},
	    {100, 200, 56, 1, 1, 1}, {2, 4, 8, 16, 32, 64}, {255, 256, 254, 1, 2, 3},
	};

	for (size_t s = 0; s < sizeof(sets) / sizeof(sets[0]); s++) {
		struct balance_candidate c[6];
		int64_t current[6] = {0};
		int count[6] = {0};
		unsigned total = 0;

		candidates(c, sets[s], 6);
		for (int i = 0; i < 6; i++)
			total += sets[s][i];
		for (unsigned k = 0; k < 3 * total; k++) {
			int b = balance_roundrobin(c, 6, current);

			if (b >= 0)
				count[b]++;
		}
		for (int i = 0; i < 6; i++)
			unit_check(count[i] == 3 * (int)sets[s][i], __FILE__, __LINE__,
				   "set %zu backend %d: %d picks, expected %u", s, i, count[i],
				   3 * sets[s][i]);
		/* After whole periods the state is back where it started. */
		for (int i = 0; i < 6; i++)
			unit_check(current[i] == 0, __FILE__, __LINE__,
				   "set %zu: current[%d] = %lld", s, i, (long long)current[i]);
	}
}

TEST(rr_ineligible_and_weight0_never_picked)
{
	static const unsigned w[] = {1, 0, 2, 3, 5};
	struct balance_candidate c[5];
	int64_t current[5] = {0};
	int count[5] = {0};

	candidates(c, w, 5);
	c[3].eligible = 0;
	c[4].eligible = 0;
	for (int i = 0; i < 300; i++) {
		int b = balance_roundrobin(c, 5, current);

		REQUIRE(b >= 0 && b < 5);
		count[b]++;
	}
	CHECK_EQ_INT(count[0], 100);
	CHECK_EQ_INT(count[1], 0);
	CHECK_EQ_INT(count[2], 200);
	CHECK_EQ_INT(count[3], 0);
	CHECK_EQ_INT(count[4], 0);
	/* Their state is left alone, so they rejoin cleanly. */
	CHECK_EQ_INT(current[1], 0);
	CHECK_EQ_INT(current[3], 0);
	CHECK_EQ_INT(current[4], 0);
}

TEST(rr_nothing_to_pick)
{
	static const unsigned w[] = {1, 2, 0};
	struct balance_candidate c[3];
	int64_t current[3] = {0};

	candidates(c, w, 3);
	c[0].eligible = 0;
	c[1].eligible = 0;
	CHECK_EQ_INT(balance_roundrobin(c, 3, current), -1);
	CHECK_EQ_INT(current[0] | current[1] | current[2], 0);
	c[0].eligible = 1;
	c[0].weight = 0;
	CHECK_EQ_INT(balance_roundrobin(c, 3, current), -1);
	CHECK_EQ_INT(balance_roundrobin(c, 0, current), -1);
}

TEST(rr_backend_comes_back)
{
	static const unsigned w[] = {1, 1, 1};
	struct balance_candidate c[3];
	int64_t current[3] = {0};
	int count[3] = {0};

	candidates(c, w, 3);
	c[1].eligible = 0;
	for (int i = 0; i < 10; i++)
		CHECK(balance_roundrobin(c, 3, current) != 1);
	c[1].eligible = 1;
	for (int i = 0; i < 300; i++)
		count[balance_roundrobin(c, 3, current)]++;
	/* Back in the rotation at once and at its full share (within one pick). */
	CHECK(count[1] >= 99 && count[1] <= 101);
	CHECK(count[0] >= 99 && count[0] <= 101);
}

/* ---- leastconn ---- */

TEST(lc_picks_fewest_active)
{
	struct balance_candidate c[3] = {{1, 5, 1}, {1, 2, 1}, {1, 7, 1}};
	size_t cursor = 0;

	CHECK_EQ_INT(balance_leastconn(c, 3, &cursor), 1);
	c[1].active = 9;
	CHECK_EQ_INT(balance_leastconn(c, 3, &cursor), 0);
	c[2].active = 0;
	CHECK_EQ_INT(balance_leastconn(c, 3, &cursor), 2);
}

TEST(lc_per_unit_of_weight)
{
	/* 1 connection at weight 1 is heavier than 2 at weight 3. */
	struct balance_candidate c[2] = {{1, 1, 1}, {3, 2, 1}};
	size_t cursor = 0;

	CHECK_EQ_INT(balance_leastconn(c, 2, &cursor), 1);
	/* 3 at weight 2 (1.5) is lighter than 2 at weight 1. */
	c[0] = (struct balance_candidate){2, 3, 1};
	c[1] = (struct balance_candidate){1, 2, 1};
	cursor = 1;
	CHECK_EQ_INT(balance_leastconn(c, 2, &cursor), 0);
	/* Products beyond 32 bits compare right: 3e9 per unit against 1.5e9. */
	c[0] = (struct balance_candidate){1, 3000000000u, 1};
	c[1] = (struct balance_candidate){2, 3000000001u, 1};
	cursor = 0;
	CHECK_EQ_INT(balance_leastconn(c, 2, &cursor), 1);
	/* And close ratios: 4e9/256 = 15625000 against 15625000.005, 15624999.995. */
	c[0] = (struct balance_candidate){256, 4000000000u, 1};
	c[1] = (struct balance_candidate){200, 3125000001u, 1};
	cursor = 0;
	CHECK_EQ_INT(balance_leastconn(c, 2, &cursor), 0);
	c[1].active = 3124999999u;
	cursor = 0;
	CHECK_EQ_INT(balance_leastconn(c, 2, &cursor), 1);
}

TEST(lc_ties_rotate)
{
	struct balance_candidate c[4] = {{1, 0, 1}, {1, 0, 1}, {1, 0, 1}, {1, 3, 1}};
	size_t cursor = 0;
	char seq[10];

	for (int i = 0; i < 9; i++)
		seq[i] = (char)('a' + balance_leastconn(c, 4, &cursor));
	seq[9] = '\0';
	CHECK_STR(seq, "abcabcabc");
	/* Equal per weight also counts as a tie: 2/2 and 1/1. */
	c[0] = (struct balance_candidate){2, 2, 1};
	c[1] = (struct balance_candidate){1, 1, 1};
	c[2] = (struct balance_candidate){1, 5, 1};
	c[3] = (struct balance_candidate){4, 4, 1};
	cursor = 0;
	for (int i = 0; i < 6; i++)
		seq[i] = (char)('a' + balance_leastconn(c, 4, &cursor));
	seq[6] = '\0';
	CHECK_STR(seq, "abdabd");
}

TEST(lc_ineligible_and_weight0_never_picked)
{
	struct balance_candidate c[4] = {{0, 0, 1}, {1, 0, 0}, {1, 50, 1}, {5, 0, 0}};
	size_t cursor = 0;

	for (int i = 0; i < 10; i++)
		CHECK_EQ_INT(balance_leastconn(c, 4, &cursor), 2);
	c[2].eligible = 0;
	CHECK_EQ_INT(balance_leastconn(c, 4, &cursor), -1);
	CHECK_EQ_INT(balance_leastconn(c, 0, &cursor), -1);
}

TEST(lc_fills_in_proportion_to_weight)
{
	/* Connections that never close: leastconn hands them out by weight. */
	struct balance_candidate c[3] = {{1, 0, 1}, {2, 0, 1}, {3, 0, 1}};
	size_t cursor = 0;

	for (int i = 0; i < 600; i++) {
		int b = balance_leastconn(c, 3, &cursor);

		REQUIRE(b >= 0);
		c[b].active++;
	}
	CHECK_EQ_INT(c[0].active, 100);
	CHECK_EQ_INT(c[1].active, 200);
	CHECK_EQ_INT(c[2].active, 300);
}

/* ---- random (power of two choices) ---- */

TEST(rng_is_deterministic_and_moves)
{
	uint64_t a = 42, b = 42, x = 1;

	CHECK(rng_next(&a) == rng_next(&b));
	CHECK(a == b);
	CHECK(a != 42);
	for (int i = 0; i < 1000; i++) {
		rng_next(&x);
		if (!CHECK(x != 0))
			break;
	}
}

TEST(random_never_picks_weight0_or_ineligible)
{
	struct balance_candidate c[6] = {{0, 0, 1}, {3, 0, 1}, {5, 0, 0},
					 {0, 0, 0}, {1, 9, 1}, {256, 0, 0}};
	uint64_t rng = 12345;
	int count[6] = {0};

	for (int i = 0; i < 20000; i++) {
		int b = balance_random(c, 6, &rng);

		REQUIRE(b >= 0 && b < 6);
		count[b]++;
	}
	CHECK_EQ_INT(count[0], 0);
	CHECK_EQ_INT(count[2], 0);
	CHECK_EQ_INT(count[3], 0);
	CHECK_EQ_INT(count[5], 0);
	CHECK(count[1] > 0 && count[4] > 0);
}

TEST(random_nothing_to_pick)
{
	struct balance_candidate c[3] = {{0, 0, 1}, {4, 0, 0}, {0, 0, 0}};
	uint64_t rng = 7;

	CHECK_EQ_INT(balance_random(c, 3, &rng), -1);
	CHECK_EQ_INT(balance_random(c, 0, &rng), -1);
	c[1].eligible = 1;
	for (int i = 0; i < 100; i++)
		CHECK_EQ_INT(balance_random(c, 3, &rng), 1);
}

/* count within 3% of want. */
static int near(int count, double want)
{
	return count >= want * 0.97 && count <= want * 1.03;
}

TEST(random_follows_weights)
{
	struct balance_candidate c[3] = {{1, 0, 1}, {2, 0, 1}, {3, 0, 1}};
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	int count[3] = {0};

	for (int i = 0; i < 60000; i++)
		count[balance_random(c, 3, &rng)]++;
	for (int i = 0; i < 3; i++)
		unit_check(near(count[i], 10000.0 * c[i].weight), __FILE__, __LINE__,
			   "weight %u: %d of 60000, expected %d +-3%%", c[i].weight, count[i],
			   10000 * c[i].weight);
}

TEST(random_equal_load_is_uniform)
{
	struct balance_candidate c[4] = {{5, 7, 1}, {5, 7, 1}, {5, 7, 1}, {5, 7, 1}};
	uint64_t rng = 99;
	int count[4] = {0};

	for (int i = 0; i < 60000; i++)
		count[balance_random(c, 4, &rng)]++;
	for (int i = 0; i < 4; i++)
		unit_check(near(count[i], 15000), __FILE__, __LINE__,
			   "backend %d: %d of 60000, expected 15000 +-3%%", i, count[i]);
}

TEST(random_prefers_the_less_loaded)
{
	/* Two draws, the lighter wins: the loaded one of two is chosen only when
	 * both draws land on it, a quarter of the time. */
	struct balance_candidate c[4] = {{1, 10, 1}, {1, 0, 1}, {1, 0, 1}, {1, 0, 1}};
	uint64_t rng = 2024;
	int count[4] = {0};

	for (int i = 0; i < 40000; i++)
		count[balance_random(c, 2, &rng)]++;
	unit_check(near(count[0], 10000), __FILE__, __LINE__,
		   "loaded backend: %d of 40000, expected 10000 +-3%%", count[0]);
	/* One loaded of four: 1/16. */
	memset(count, 0, sizeof(count));
	for (int i = 0; i < 256000; i++)
		count[balance_random(c, 4, &rng)]++;
	unit_check(near(count[0], 16000), __FILE__, __LINE__,
		   "loaded backend: %d of 256000, expected 16000 +-3%%", count[0]);
	/* Load is weighed against weight: 10 at weight 10 is lighter than 2 at weight 1. */
	c[0] = (struct balance_candidate){10, 10, 1};
	c[1] = (struct balance_candidate){1, 2, 1};
	memset(count, 0, sizeof(count));
	for (int i = 0; i < 12100; i++)
		count[balance_random(c, 2, &rng)]++;
	/* b wins only when drawn twice: (1/11)^2 of the time. */
	unit_check(count[1] > 50 && count[1] < 150, __FILE__, __LINE__,
		   "heavier-per-weight backend picked %d of 12100 times, expected about 100",
		   count[1]);
}

UNIT_MAIN(T(rr_weights_1_2_3_exact_over_600), T(rr_smooth_like_nginx), T(rr_equal_weights_rotate),
	  T(rr_no_long_runs), T(rr_exact_for_many_weight_sets),
	  T(rr_ineligible_and_weight0_never_picked), T(rr_nothing_to_pick),
	  T(rr_backend_comes_back), T(lc_picks_fewest_active), T(lc_per_unit_of_weight),
	  T(lc_ties_rotate), T(lc_ineligible_and_weight0_never_picked),
	  T(lc_fills_in_proportion_to_weight), T(rng_is_deterministic_and_moves),
	  T(random_never_picks_weight0_or_ineligible), T(random_nothing_to_pick),
	  T(random_follows_weights), T(random_equal_load_is_uniform),
	  T(random_prefers_the_less_loaded))
