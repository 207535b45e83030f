/* Hash tiers (common/tier.c): the primaries' table is the table of the
 * primaries alone, the backups' the table of the backups alone, indexes are
 * the caller's, and the tier in use follows what is down. */
#include "tier.h"
#include "unit.h"

#define SIZE 1009u

static const char *const names[] = {"web1", "bak1", "web2", "web3", "bak2"};
static const unsigned weights[] = {1, 2, 3, 1, 1};
static const uint8_t backup[] = {0, 1, 0, 0, 1};
#define N 5

/* A plain table of the backends whose backup flag is want, and their
 * indexes in names[]. */
static int plain(struct maglev *m, int want, unsigned *index)
{
	const char *sub[N];
	unsigned w[N], n = 0;
	char err[ERR_LEN];

	for (unsigned i = 0; i < N; i++)
		if (backup[i] == want) {
			sub[n] = names[i];
			w[n] = weights[i];
			index[n++] = i;
		}
	return maglev_build(m, sub, w, n, SIZE, err);
}

TEST(each_tier_is_the_table_of_its_backends_alone)
{
	struct tiers t;
	struct maglev p, b;
	unsigned pi[N], bi[N];
	char err[ERR_LEN];

	REQUIRE(tiers_build(&t, names, weights, backup, N, SIZE, err) == 0);
	REQUIRE(plain(&p, 0, pi) == 0);
	REQUIRE(plain(&b, 1, bi) == 0);
	for (uint64_t h = 0; h < 5000; h++) {
		unsigned want = maglev_lookup(&p, h * 0x9e3779b97f4a7c15ULL);

		CHECK_EQ_INT(tiers_lookup(&t, TIER_PRIMARY, h * 0x9e3779b97f4a7c15ULL), pi[want]);
		want = maglev_lookup(&b, h * 0x9e3779b97f4a7c15ULL);
		CHECK_EQ_INT(tiers_lookup(&t, TIER_BACKUP, h * 0x9e3779b97f4a7c15ULL), bi[want]);
	}
	CHECK_EQ_INT(t.tier[1], TIER_BACKUP);
	CHECK_EQ_INT(t.tier[2], TIER_PRIMARY);
	maglev_free(&p);
	maglev_free(&b);
	tiers_free(&t);
}

TEST(without_backups_the_table_is_maglevs_own)
{
	struct tiers t;
	struct maglev m;
	char err[ERR_LEN];

	REQUIRE(tiers_build(&t, names, weights, NULL, N, SIZE, err) == 0);
	REQUIRE(maglev_build(&m, names, weights, N, SIZE, err) == 0);
	CHECK_EQ_INT(t.t[TIER_BACKUP].m.size, 0);
	CHECK(memcmp(t.t[TIER_PRIMARY].m.table, m.table, SIZE * sizeof(*m.table)) == 0);
	CHECK_EQ_INT(tiers_in_use(&t), TIER_PRIMARY);
	CHECK_EQ_INT(tiers_lookup(&t, TIER_BACKUP, 12345), MAGLEV_NONE);
	maglev_free(&m);
	tiers_free(&t);
}

static int not_web2(unsigned b, void *ctx)
{
	(void)ctx;
	return b != 2;
}

TEST(the_tier_in_use_and_walks_in_callers_indexes)
{
	struct tiers t;
	uint8_t down[N] = {0};
	unsigned pref[N];
	char err[ERR_LEN];
	size_t n;

	REQUIRE(tiers_build(&t, names, weights, backup, N, SIZE, err) == 0);
	CHECK_EQ_INT(tiers_in_use(&t), TIER_PRIMARY);
	down[0] = down[2] = 1;
	tiers_set_down(&t, down);
	CHECK_EQ_INT(tiers_in_use(&t), TIER_PRIMARY); /* web3 is left */
	down[3] = 1;
	tiers_set_down(&t, down);
	CHECK_EQ_INT(tiers_in_use(&t), TIER_BACKUP);
	for (uint64_t h = 0; h < 1000; h++) {
		unsigned b = tiers_lookup(&t, TIER_BACKUP, h * 7919);

		CHECK(b == 1 || b == 4);
		CHECK_EQ_INT(tiers_lookup(&t, TIER_PRIMARY, h * 7919), MAGLEV_NONE);
	}
	n = tiers_preference(&t, TIER_PRIMARY, 42, pref, N);
	CHECK_EQ_INT(n, 3);
	for (size_t i = 0; i < n; i++)
		CHECK(pref[i] == 0 || pref[i] == 2 || pref[i] == 3);
	CHECK(tiers_first(&t, TIER_PRIMARY, 42, not_web2, NULL) != 2);
	n = tiers_preference(&t, TIER_BACKUP, 42, pref, N);
	CHECK_EQ_INT(n, 2);
	/* Back up: bit-identical to before. */
	memset(down, 0, sizeof(down));
	tiers_set_down(&t, down);
	CHECK_EQ_INT(tiers_in_use(&t), TIER_PRIMARY);
	tiers_free(&t);
}

TEST(only_backups)
{
	static const uint8_t all[N] = {1, 1, 1, 1, 1};
	struct tiers t;
	char err[ERR_LEN];

	REQUIRE(tiers_build(&t, names, weights, all, N, SIZE, err) == 0);
	CHECK_EQ_INT(t.t[TIER_PRIMARY].m.size, 0);
	CHECK_EQ_INT(tiers_in_use(&t), TIER_BACKUP);
	CHECK(tiers_lookup(&t, TIER_BACKUP, 99) < N);
	tiers_free(&t);
}

UNIT_MAIN(T(each_tier_is_the_table_of_its_backends_alone), T(without_backups_the_table_is_maglevs_own),
	  T(the_tier_in_use_and_walks_in_callers_indexes), T(only_backups))
