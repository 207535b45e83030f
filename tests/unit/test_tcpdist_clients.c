/* tcpdist's client table (cmd/tcpdist/clients.c): client_max_conns and
 * client_rate per client, IPv6 clients counted by client_prefix6, and the
 * table bounded whatever the number of clients. */
#include <arpa/inet.h>
#include <sys/resource.h>
#include <time.h>

#include "tcpdist.h"
#include "unit.h"

static struct sockaddr_storage client(const char *text)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	return ss;
}

static struct clients *table(struct pool *p)
{
	struct clients *t = NULL;
	char err[ERR_LEN];

	if (clients_carry(&t, NULL, p, err) < 0)
		return NULL;
	return t;
}

static enum client_verdict take(struct clients *t, const struct pool *p, const char *who,
				uint32_t *slot)
{
	struct sockaddr_storage ss = client(who);

	return clients_take(t, (struct sockaddr *)&ss, p, slot);
}

TEST(max_conns_per_client_and_given_back)
{
	struct pool p = {.client_max_conns = 3, .client_prefix6 = 64};
	struct clients *t = table(&p);
	uint32_t s[4], other;

	REQUIRE(t != NULL);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(take(t, &p, "10.0.0.1", &s[i]), CLIENT_OK);
	CHECK_EQ_INT(take(t, &p, "10.0.0.1", &s[3]), CLIENT_MAX_CONNS);
	CHECK_EQ_INT(s[3], 0);
	CHECK_EQ_INT(take(t, &p, "10.0.0.2", &other), CLIENT_OK); /* another client */
	clients_release(t, s[0]);
	CHECK_EQ_INT(take(t, &p, "10.0.0.1", &s[0]), CLIENT_OK);
	for (int i = 0; i < 3; i++)
		clients_release(t, s[i]);
	clients_release(t, other);
	{
		struct clients_stats st;

		clients_stats(t, &st);
		CHECK_EQ_INT(st.used, 0); /* no connections, no bucket: nothing kept */
	}
	clients_unref(t);
}

TEST(rate_is_a_bucket_of_burst_refilled_at_rate)
{
	struct pool p = {.client_rate = 2, .client_burst = 3, .client_prefix6 = 64};
	struct clients *t = table(&p);
	struct timespec t0, t1;
	double slept;
	uint32_t s;
	int ok = 0;

	REQUIRE(t != NULL);
	/* at once: the burst, then nothing */
	for (int i = 0; i < 10; i++) {
		if (take(t, &p, "192.0.2.1", &s) == CLIENT_OK) {
			ok++;
			clients_release(t, s);
		}
	}
	CHECK_EQ_INT(ok, 3);
	CHECK_EQ_INT(take(t, &p, "192.0.2.1", &s), CLIENT_RATE);
	/* 0.6 s later: one more token (2 a second); a slow machine may have
	 * slept longer, and then earned more */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	usleep(600000);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	slept = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	ok = 0;
	while (take(t, &p, "192.0.2.1", &s) == CLIENT_OK && ok < 10) {
		ok++;
		clients_release(t, s);
	}
	CHECK_EQ_INT(ok, slept < 0.95 ? 1 : (int)(slept / 0.5));
	clients_unref(t);
}

TEST(ipv6_clients_count_by_prefix)
{
	struct pool p = {.client_max_conns = 1, .client_prefix6 = 64};
	struct clients *t = table(&p);
	uint32_t a, b;

	REQUIRE(t != NULL);
	CHECK_EQ_INT(take(t, &p, "2001:db8:1:2::1", &a), CLIENT_OK);
	CHECK_EQ_INT(take(t, &p, "2001:db8:1:2::ffff", &b), CLIENT_MAX_CONNS); /* same /64 */
	CHECK_EQ_INT(take(t, &p, "2001:db8:1:3::1", &b), CLIENT_OK);          /* another */
	clients_release(t, b);
	p.client_prefix6 = 128;
	CHECK_EQ_INT(take(t, &p, "2001:db8:1:2::ffff", &b), CLIENT_OK);
	clients_release(t, b);
	/* IPv4 and IPv4-mapped IPv6 are one client */
	CHECK_EQ_INT(take(t, &p, "10.9.8.7", &b), CLIENT_OK);
	CHECK_EQ_INT(take(t, &p, "::ffff:10.9.8.7", &b), CLIENT_MAX_CONNS);
	clients_unref(t);
}

TEST(the_table_stays_within_its_bound)
{
	struct rlimit rl, low = {2048, 2048};
	struct pool p = {.client_rate = 1, .client_burst = 5, .client_prefix6 = 64};
	struct clients *t;
	struct clients_stats st;
	char who[32];
	uint32_t s;
	int ok = 0;

	/* A lower limit makes a table of the least size, 4096 entries. */
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_max < 2048)
		low = rl;
	REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
	t = table(&p);
	REQUIRE(t != NULL);
	for (int i = 0; i < 20000; i++) {
		snprintf(who, sizeof(who), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		if (take(t, &p, who, &s) == CLIENT_OK) {
			ok++;
			clients_release(t, s);
		}
	}
	clients_stats(t, &st);
	CHECK_EQ_INT(st.size, 4096);
	CHECK(st.used <= st.size && st.used > 4000);
	CHECK_EQ_INT(ok, 20000); /* every newcomer got a place */
	CHECK(st.evicted >= 20000 - 4096);
	CHECK_EQ_INT(st.full, 0);
	clients_unref(t);
}

UNIT_MAIN(T(max_conns_per_client_and_given_back), T(rate_is_a_bucket_of_burst_refilled_at_rate),
	  T(ipv6_clients_count_by_prefix), T(the_table_stays_within_its_bound))
