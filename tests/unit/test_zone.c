/* Locality: the pool's zone keys and zone_pick (common/zone.c). */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "hash.h"
#include "pool.h"
#include "unit.h"
#include "zone.h"

#define ZONED_HEAD "[pool]\nlocality = %s\ntable_size = 4099\n"
#define ZONE_A "[zone a]\nclients = 10.1.0.0/16, 2001:db8:a::/48\n"
#define ZONE_B "[zone b]\nclients = 10.2.0.0/16\nclients = 10.2.9.0/24\n"
#define ZONE_C "[zone c]\nclients = 10.3.0.0/16\n"
#define BACKENDS                                                                                   \
	"[backend a1]\naddress = 127.0.0.1:1\nzone = a\n[backend a2]\naddress = 127.0.0.1:2\nzone = a\n" \
	"[backend b1]\naddress = 127.0.0.1:3\nzone = b\n[backend b2]\naddress = 127.0.0.1:4\nzone = b\n" \
	"[backend c1]\naddress = 127.0.0.1:5\nzone = c\n[backend c2]\naddress = 127.0.0.1:6\nzone = c\n" \
	"[backend n1]\naddress = 127.0.0.1:7\n"

static struct pool *load(const char *text)
{
	char err[ERR_LEN] = "";
	struct pool *p = pool_parse("z.pool", text, strlen(text), err);

	unit_check(p != NULL, __FILE__, __LINE__, "pool_parse failed: %s", err);
	return p;
}

static const char *problem(const char *text)
{
	static char err[ERR_LEN];
	struct pool *p;

	err[0] = '\0';
	p = pool_parse("z.pool", text, strlen(text), err);
	pool_free(p);
	return p ? "" : err;
}

static struct sockaddr_in v4(const char *ip)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};

	inet_pton(AF_INET, ip, &sin.sin_addr);
	return sin;
}

/* A pool and its tables, as tcphash builds them. */
struct zoned {
	struct pool *p;
	struct tiers all;
	struct zone_set zs;
	uint8_t down[32];
};

static int up(unsigned b, const void *z)
{
	return !((const struct zoned *)z)->down[b];
}

static int up_accept(unsigned b, void *z)
{
	return up(b, z);
}

static int zoned_build(struct zoned *z, const char *text)
{
	const char *names[32];
	unsigned weights[32];
	uint8_t backup[32] = {0};
	char err[ERR_LEN];

	memset(z, 0, sizeof(*z));
	if ((z->p = load(text)) == NULL || z->p->nbackends > sizeof(z->down))
		return -1;
	for (size_t i = 0; i < z->p->nbackends; i++) {
		names[i] = z->p->backends[i].name;
		weights[i] = z->p->backends[i].weight;
		backup[i] = (uint8_t)z->p->backends[i].backup;
		z->down[i] = z->p->backends[i].state != BACKEND_UP;
	}
	if (tiers_build(&z->all, names, weights, backup, z->p->nbackends, z->p->table_size, err) <
		    0 ||
	    zones_build(&z->zs, z->p, names, weights, backup, z->down, err) < 0)
		return -1;
	return 0;
}

static void zoned_down(struct zoned *z, const char *name)
{
	z->down[pool_find_backend(z->p, name) - z->p->backends] = 1;
}

static void zoned_free(struct zoned *z)
{
	zones_free(&z->zs);
	tiers_free(&z->all);
	pool_free(z->p);
}

/* The backend's name and where it landed, for client ip. */
static const char *pick(const struct zoned *z, const char *ip, enum zone_where *where)
{
	struct sockaddr_in sin = v4(ip);
	uint64_t hash = hash_client(z->p->hash_seed, (struct sockaddr *)&sin, 0);
	unsigned zone = pool_client_zone(z->p, (struct sockaddr *)&sin);
	unsigned b = zone_pick(z->p, &z->zs, &z->all, zone, hash, up, z, up_accept, (void *)z,
			       where);

	return b == MAGLEV_NONE ? "-" : z->p->backends[b].name;
}

TEST(zones_parse_in_name_order)
{
	char text[2048];
	struct pool *p;
	struct sockaddr_in sin;

	snprintf(text, sizeof(text), ZONED_HEAD ZONE_C ZONE_B BACKENDS ZONE_A, "prefer");
	REQUIRE((p = load(text)) != NULL);
	CHECK_EQ_INT(p->locality, LOCALITY_PREFER);
	CHECK_EQ_INT(p->locality_overprovision, 140);
	REQUIRE(p->nzones == 3);
	CHECK_STR(p->zones[0].name, "a");
	CHECK_STR(p->zones[2].name, "c");
	CHECK_EQ_INT(p->backends[0].zone, 0);
	CHECK_EQ_INT(p->backends[6].zone, POOL_ZONE_NONE);
	sin = v4("10.2.9.1");
	CHECK_EQ_INT(pool_client_zone(p, (struct sockaddr *)&sin), 1);
	sin = v4("10.4.0.1");
	CHECK_EQ_INT(pool_client_zone(p, (struct sockaddr *)&sin), POOL_ZONE_NONE);
	CHECK_EQ_INT(pool_find_zone(p, "c"), 2);
	pool_free(p);
}

TEST(zone_keys_checked)
{
	CHECK(strstr(problem("[pool]\nlocality = near\n"), "locality: unknown value") != NULL);
	CHECK(strstr(problem("[pool]\nlocality_overprovision = 0.5\n"), "not a number") != NULL);
	CHECK(strstr(problem("[pool]\nlocality_overprovision = 1.234\n"), "not a number") != NULL);
	CHECK(strstr(problem("[pool]\n[zone a]\nclients = 10.0.0.0/8\n[zone a]\n"),
		     "duplicate zone") != NULL);
	CHECK(strstr(problem("[pool]\n[zone a]\nclients = 10.0.0.0/8\n[zone b]\nclients = "
			     "10.0.0.0/8\n"),
		     "10.0.0.0/8 is in [zone a] and [zone b]") != NULL);
	CHECK(strncmp(problem("[pool]\n[zone a]\nweight = 1\n"), "z.pool:3: weight: ", 18) == 0);
	CHECK(strstr(problem("[pool]\n[zone a b]\n"), "invalid zone name") != NULL);
	CHECK_STR(problem("[pool]\nlocality_overprovision = 2.5\n[backend x]\naddress = "
			     "127.0.0.1:1\nzone = a\n[zone a]\nclients = 10.0.0.0/8\n"),
		     "");
}

TEST(zone_keeps_the_formula)
{
	unsigned kept = 0, n = 20000;

	/* full: all stay; 0.5 x 1.4 = 0.7 stay; 0.8 x 1.4 >= 1: all stay. */
	for (uint64_t h = 0; h < n; h++)
		CHECK(zone_keeps(4, 4, 140, h * 0x9e3779b97f4a7c15ULL));
	for (uint64_t h = 0; h < n; h++)
		kept += (unsigned)zone_keeps(4, 2, 140, h * 0x9e3779b97f4a7c15ULL);
	CHECK(kept > n * 68 / 100 && kept < n * 72 / 100);
	for (uint64_t h = 0; h < n; h++)
		CHECK(zone_keeps(5, 4, 140, h * 0x9e3779b97f4a7c15ULL));
	/* Less capacity keeps a subset: no client comes home as others leave. */
	for (uint64_t h = 0; h < n; h++) {
		uint64_t x = h * 0x9e3779b97f4a7c15ULL;

		CHECK(!zone_keeps(10, 3, 140, x) || zone_keeps(10, 5, 140, x));
	}
}

TEST(zone_pick_prefers_then_spills)
{
	char text[2048], ip[32];
	struct zoned z;
	enum zone_where where;
	unsigned spill = 0, local = 0, to_c = 0;

	snprintf(text, sizeof(text), ZONED_HEAD ZONE_A ZONE_B ZONE_C BACKENDS, "prefer");
	REQUIRE(zoned_build(&z, text) == 0);
	for (int i = 0; i < 500; i++) {
		const char *b;

		snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 200, i % 200 + 1);
		b = pick(&z, ip, &where);
		CHECK(b[0] == 'a' && where == ZONE_LOCAL);
	}
	CHECK_STR(pick(&z, "10.9.0.1", &where), pick(&z, "10.9.0.1", &where));
	CHECK_EQ_INT(where, ZONE_ANY);
	zoned_down(&z, "a1");
	for (int i = 0; i < 2000; i++) {
		const char *b;

		snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 200, i % 200 + 1);
		b = pick(&z, ip, &where);
		CHECK(strcmp(b, "a1") != 0);
		if (where == ZONE_SPILL) {
			spill++;
			CHECK(b[0] != 'a');
			to_c += b[0] == 'c';
		} else {
			local += b[0] == 'a';
		}
	}
	/* 1 - 0.5 x 1.4 = 0.3 spill, spread over b, c and n1 by weight (2:2:1) */
	CHECK(spill > 2000 * 26 / 100 && spill < 2000 * 34 / 100);
	CHECK(local + spill == 2000);
	CHECK(to_c > spill * 30 / 100 && to_c < spill * 50 / 100);
	zoned_down(&z, "a2");
	CHECK(pick(&z, "10.1.0.7", &where)[0] != 'a' && where == ZONE_SPILL);
	zoned_free(&z);
}

TEST(zone_pick_strict_refuses)
{
	char text[2048];
	struct zoned z;
	enum zone_where where;

	snprintf(text, sizeof(text), ZONED_HEAD ZONE_A ZONE_B ZONE_C BACKENDS, "strict");
	REQUIRE(zoned_build(&z, text) == 0);
	zoned_down(&z, "b1");
	for (int i = 1; i < 200; i++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "10.2.0.%d", i);
		CHECK_STR(pick(&z, ip, &where), "b2");
	}
	zoned_down(&z, "b2");
	CHECK_STR(pick(&z, "10.2.0.1", &where), "-");
	CHECK_EQ_INT(where, ZONE_LOCAL);
	zoned_free(&z);
}

TEST(zone_pick_ignores_section_order)
{
	char t1[2048], t2[2048], ip[32];
	struct zoned z1, z2;
	enum zone_where w1, w2;

	snprintf(t1, sizeof(t1), ZONED_HEAD ZONE_A ZONE_B ZONE_C BACKENDS, "prefer");
	snprintf(t2, sizeof(t2), ZONED_HEAD BACKENDS ZONE_C ZONE_A ZONE_B, "prefer");
	REQUIRE(zoned_build(&z1, t1) == 0);
	REQUIRE(zoned_build(&z2, t2) == 0);
	zoned_down(&z1, "b2");
	zoned_down(&z2, "b2");
	for (int i = 0; i < 600; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", 1 + i % 4, i / 250, i % 250 + 1);
		CHECK_STR(pick(&z1, ip, &w1), pick(&z2, ip, &w2));
		CHECK_EQ_INT(w1, w2);
	}
	zoned_free(&z1);
	zoned_free(&z2);
}

/* zone_table_size: a prime of its own, 65521 unless set, whatever the
 * pool's table_size; checked as table_size is, and against the backends of
 * the largest zone (whatever the locality: switching it on must not make
 * the file invalid). */
TEST(zone_table_size_parsed)
{
	static char text[32768];
	struct pool *p;
	size_t len;

	REQUIRE((p = load("[pool]\n")) != NULL);
	CHECK_EQ_INT(p->zone_table_size, 65521);
	CHECK_EQ_INT(p->table_size, MAGLEV_SIZE_DEFAULT);
	pool_free(p);
	REQUIRE((p = load("[pool]\ntable_size = 4099\nzone_table_size = 131071\n")) != NULL);
	CHECK_EQ_INT(p->zone_table_size, 131071); /* larger than table_size: allowed */
	CHECK_EQ_INT(p->table_size, 4099);
	pool_free(p);
	REQUIRE((p = load("[pool]\nzone_table_size = 257\n")) != NULL);
	CHECK_EQ_INT(p->zone_table_size, 257);
	CHECK_EQ_INT(p->table_size, MAGLEV_SIZE_DEFAULT);
	pool_free(p);
	CHECK_STR(problem("[pool]\nzone_table_size = 65536\n"),
		  "z.pool:2: zone_table_size: 65536 is not a prime");
	CHECK(strstr(problem("[pool]\nzone_table_size = 251\n"), "zone_table_size: 251 is out of "
								 "range (257-8388593)") != NULL);
	CHECK(strstr(problem("[pool]\nzone_table_size = 8388617\n"), "out of range") != NULL);
	CHECK(strstr(problem("[pool]\nzone_table_size = big\n"), "zone_table_size: ") != NULL);
	CHECK(strstr(problem("[pool]\nzone_table_size = 4099\nzone_table_size = 4099\n"),
		     "zone_table_size") != NULL);
	CHECK(strstr(problem("[backend x]\naddress = 127.0.0.1:1\nzone_table_size = 4099\n"),
		     "only in the [pool] section") != NULL);

	/* 258 backends in zone b, 2 in zone a: 257 slots are too few for b, not
	 * for a; the pool's table_size is not the zone's limit */
	len =
	    (size_t)snprintf(text, sizeof(text),
			     "[pool]\nlocality = off\ntable_size = 4099\nzone_table_size = 257\n");
	for (int i = 0; i < 260; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
					"[backend n%d]\naddress = 127.0.0.1:%d\nzone = %s\n", i,
					1000 + i, i < 2 ? "a" : "b");
	REQUIRE(len < sizeof(text));
	CHECK_STR(problem(text), "z.pool: zone_table_size 257 is smaller than the number of "
				 "backends of zone b (258)");
	memcpy(strstr(text, "= 257\n"), "= 263\n", 6);
	REQUIRE((p = load(text)) != NULL);
	CHECK_EQ_INT(p->zone_table_size, 263);
	pool_free(p);
}

/* zones_build gives every zone, both tiers, zone_table_size slots: not the
 * pool's table_size, and not a size that depends on the zone's backends. */
TEST(zones_build_uses_zone_table_size)
{
	static const char *const heads[] = {
	    "[pool]\nlocality = prefer\n",
	    "[pool]\nlocality = prefer\ntable_size = 4099\nzone_table_size = 131071\n",
	};
	static const uint32_t sizes[][2] = {{MAGLEV_SIZE_DEFAULT, 65521}, {4099, 131071}};
	char text[4096];
	struct zoned z;

	for (size_t t = 0; t < 2; t++) {
		/* zone a: a1, a2, 14 more and a backup; zone b: b1, b2; zone c: c1, c2 */
		size_t len =
		    (size_t)snprintf(text, sizeof(text), "%s" ZONE_A ZONE_B BACKENDS, heads[t]);

		for (int i = 3; i <= 16; i++)
			len += (size_t)snprintf(text + len, sizeof(text) - len,
						"[backend a%d]\naddress = 127.0.0.1:%d\nzone = a\n",
						i, 100 + i);
		snprintf(text + len, sizeof(text) - len,
			 "[backend ab]\naddress = 127.0.0.1:99\nzone = a\nbackup = yes\n");
		REQUIRE(zoned_build(&z, text) == 0);
		CHECK_EQ_INT(z.all.t[TIER_PRIMARY].m.size, sizes[t][0]);
		REQUIRE(z.zs.n == 3);
		CHECK_EQ_INT(z.zs.z[0].n, 17); /* zones in name order: a, b, c */
		CHECK_EQ_INT(z.zs.z[0].tiers.t[TIER_PRIMARY].m.size, sizes[t][1]);
		CHECK_EQ_INT(z.zs.z[0].tiers.t[TIER_BACKUP].m.size, sizes[t][1]);
		CHECK_EQ_INT(z.zs.z[1].tiers.t[TIER_PRIMARY].m.size, sizes[t][1]);
		CHECK_EQ_INT(z.zs.z[2].tiers.t[TIER_PRIMARY].m.size, sizes[t][1]);
		zoned_free(&z);
	}
}

/* A zone of n backends of weights 1 to 4, a1..an, and one of no zone. */
static int zone_of(struct zoned *z, int n)
{
	char text[4096];
	size_t len = (size_t)snprintf(text, sizeof(text),
				      "[pool]\nlocality = prefer\n" ZONE_A
				      "[backend x]\naddress = 127.0.0.1:9\n");

	for (int i = 1; i <= n; i++)
		len += (size_t)snprintf(
		    text + len, sizeof(text) - len,
		    "[backend a%d]\naddress = 127.0.0.1:%d\nzone = a\nweight = %d\n", i, 100 + i,
		    i == 14 ? 2 : (i - 1) % 4 + 1);
	return len < sizeof(text) ? zoned_build(z, text) : -1;
}

/* Consistent hashing in a zone: a 14th backend (weight 2) in a zone of 13
 * (weight 31) takes its share of the zone's clients, 2/33, and moves within
 * 1.2 times that (tcpdist.pool(5), ZONES: 5,000 slots a backend or more).
 * A zone table sized by its number of backends changed size at 14 and moved
 * nearly every client. */
TEST(zone_adding_a_backend_moves_its_share)
{
	struct zoned before, after;
	uint64_t seq = 42;
	unsigned moved = 0, to_new = 0, n = 100000;
	double ideal = 2.0 / 33, frac;

	REQUIRE(zone_of(&before, 13) == 0);
	REQUIRE(zone_of(&after, 14) == 0);
	for (unsigned i = 0; i < n; i++) {
		uint64_t h = seq += 0x9e3779b97f4a7c15ULL;
		enum zone_where w1 = ZONE_ANY, w2 = ZONE_ANY;
		unsigned a, b;

		h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
		h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
		h ^= h >> 31;
		a = zone_lookup(before.p, &before.zs, &before.all, 0, h, &w1);
		b = zone_lookup(after.p, &after.zs, &after.all, 0, h, &w2);
		REQUIRE(a != MAGLEV_NONE && b != MAGLEV_NONE && w1 == ZONE_LOCAL &&
			w2 == ZONE_LOCAL);
		if (strcmp(before.p->backends[a].name, after.p->backends[b].name) != 0) {
			moved++;
			to_new += strcmp(after.p->backends[b].name, "a14") == 0;
		}
	}
	frac = (double)moved / n;
	unit_check(frac <= 1.2 * ideal + 0.005, __FILE__, __LINE__,
		   "moved %.4f of the zone's clients, ideal %.4f (%.2f times)", frac, ideal,
		   frac / ideal);
	CHECK(frac >= ideal - 0.005);
	CHECK((double)to_new / n >= ideal - 0.005); /* the movers went to the new one */
	zoned_free(&before);
	zoned_free(&after);
}

UNIT_MAIN(T(zones_parse_in_name_order), T(zone_keys_checked), T(zone_keeps_the_formula),
	  T(zone_pick_prefers_then_spills), T(zone_pick_strict_refuses),
	  T(zone_pick_ignores_section_order), T(zone_table_size_parsed),
	  T(zones_build_uses_zone_table_size), T(zone_adding_a_backend_moves_its_share))
