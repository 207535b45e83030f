/* CIDR networks: parsing (strict about host bits and lengths) and the
 * longest-prefix match that allow/deny and accept_proxy_from use, with the
 * higher tag winning a tie (deny over allow). */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "cidr.h"
#include "unit.h"

enum { ALLOW = 0, DENY = 1 };

static void parse_ok(const char *text, const char *want, const char *file, int line)
{
	struct cidr c;
	char err[ERR_LEN] = "", out[CIDR_TEXT_LEN] = "";
	int rc = cidr_parse(text, &c, err);

	if (rc == 0)
		cidr_format(&c, out, sizeof(out));
	unit_check(rc == 0 && strcmp(out, want) == 0, file, line,
		   "cidr_parse(\"%s\"): rc %d \"%s\" -> \"%s\", expected \"%s\"", text, rc, err, out,
		   want);
}

static void parse_bad(const char *text, const char *want, const char *file, int line)
{
	struct cidr c;
	char err[ERR_LEN] = "";
	int rc = cidr_parse(text, &c, err);

	unit_check(rc == -1 && strcmp(err, want) == 0, file, line,
		   "cidr_parse(\"%s\"): rc %d \"%s\", expected -1 \"%s\"", text, rc, err, want);
}
#define PARSE_OK(t, w) parse_ok(t, w, __FILE__, __LINE__)
#define PARSE_BAD(t, w) parse_bad(t, w, __FILE__, __LINE__)

TEST(parses_networks_and_hosts)
{
	PARSE_OK("10.0.0.0/8", "10.0.0.0/8");
	PARSE_OK("10.1.2.3", "10.1.2.3/32");
	PARSE_OK("0.0.0.0/0", "0.0.0.0/0");
	PARSE_OK("2001:db8::/32", "2001:db8::/32");
	PARSE_OK("::1", "::1/128");
	PARSE_OK("::/0", "::/0");
	PARSE_OK("127.0.0.0/8", "127.0.0.0/8");
}

TEST(refuses_what_it_cannot_mean)
{
	PARSE_BAD("10.1.0.0/8", "'10.1.0.0/8' has host bits set (the network is 10.0.0.0/8)");
	PARSE_BAD("10.0.0.0/33", "'10.0.0.0/33': prefix length: 33 is out of range (0-32)");
	PARSE_BAD("::/129", "'::/129': prefix length: 129 is out of range (0-128)");
	PARSE_BAD("10.0.0.0/", "'10.0.0.0/': prefix length: invalid number ''");
	PARSE_BAD("10.0.0.0/x", "'10.0.0.0/x': prefix length: invalid number 'x'");
	PARSE_BAD("host.example", "'host.example' is not an address or network");
	PARSE_BAD("010.0.0.1", "'010.0.0.1' is not an address or network");
	PARSE_BAD("/8", "'/8' is not an address or network");
	PARSE_BAD("", "'' is not an address or network");
}

static struct sockaddr_storage sa(const char *text)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	return ss;
}

/* The tag of the entry matching text, or -1 for none. */
static int verdict(const struct cidr_table *t, const char *text)
{
	struct sockaddr_storage ss = sa(text);
	const struct cidr_entry *e = cidr_table_match(t, (struct sockaddr *)&ss);

	return e ? e->tag : -1;
}

TEST(longest_prefix_wins_and_deny_wins_a_tie)
{
	struct cidr_table t = {0};
	char err[ERR_LEN];

	REQUIRE(cidr_table_add_list(&t, "10.0.0.0/8, 192.168.1.0/24 2001:db8::/32", ALLOW, err) ==
		0);
	REQUIRE(cidr_table_add_list(&t, "10.1.0.0/16,192.168.1.0/24", DENY, err) == 0);
	REQUIRE(cidr_table_add_list(&t, "10.1.2.3 2001:db8:bad::/48", ALLOW, err) == 0);
	REQUIRE(cidr_table_finish(&t) == 0);
	CHECK_EQ_INT(verdict(&t, "10.2.3.4"), ALLOW);
	CHECK_EQ_INT(verdict(&t, "10.1.9.9"), DENY);   /* /16 is longer than /8 */
	CHECK_EQ_INT(verdict(&t, "10.1.2.3"), ALLOW);  /* /32 is longer than /16 */
	CHECK_EQ_INT(verdict(&t, "192.168.1.7"), DENY); /* a tie: deny */
	CHECK_EQ_INT(verdict(&t, "11.0.0.1"), -1);
	CHECK_EQ_INT(verdict(&t, "2001:db8::1"), ALLOW);
	CHECK_EQ_INT(verdict(&t, "2001:db8:bad::1"), ALLOW);
	CHECK_EQ_INT(verdict(&t, "2001:db9::1"), -1);
	/* IPv4-mapped IPv6 (a dual-stack listener) is IPv4 */
	CHECK_EQ_INT(verdict(&t, "::ffff:10.1.9.9"), DENY);
	cidr_table_free(&t);
}

TEST(families_stay_apart)
{
	struct cidr_table t = {0};
	char err[ERR_LEN];

	REQUIRE(cidr_table_add_list(&t, "::/0", DENY, err) == 0);
	REQUIRE(cidr_table_add_list(&t, "0.0.0.0/0", ALLOW, err) == 0);
	REQUIRE(cidr_table_finish(&t) == 0);
	CHECK_EQ_INT(verdict(&t, "1.2.3.4"), ALLOW);
	CHECK_EQ_INT(verdict(&t, "::ffff:1.2.3.4"), ALLOW);
	CHECK_EQ_INT(verdict(&t, "::1"), DENY);
	CHECK_EQ_INT(verdict(&t, "fe80::1"), DENY);
	cidr_table_free(&t);
}

TEST(every_length_is_looked_at)
{
	struct cidr_table t = {0};
	char net[64], err[ERR_LEN];

	/* 1.0.0.0/1 ... each length once, alternating tags: the longest wins */
	for (int bits = 0; bits <= 32; bits++) {
		struct cidr c;

		snprintf(net, sizeof(net), "255.255.255.255/%d", bits);
		memset(&c, 0, sizeof(c));
		c.bits = (uint8_t)bits;
		for (int i = 0; i < 4; i++) {
			int keep = bits - 8 * i;

			c.addr[i] = keep >= 8 ? 0xff : keep > 0 ? (uint8_t)(0xff00u >> keep) : 0;
		}
		REQUIRE(cidr_table_add(&t, &c, bits) == 0);
	}
	REQUIRE(cidr_table_finish(&t) == 0);
	CHECK_EQ_INT(verdict(&t, "255.255.255.255"), 32);
	CHECK_EQ_INT(verdict(&t, "255.255.255.254"), 31);
	CHECK_EQ_INT(verdict(&t, "255.255.0.0"), 16);
	CHECK_EQ_INT(verdict(&t, "128.0.0.0"), 1);
	CHECK_EQ_INT(verdict(&t, "1.2.3.4"), 0);
	CHECK_EQ_INT(verdict(&t, "::1"), -1);
	(void)err;
	cidr_table_free(&t);
}

TEST(a_bad_list_names_its_bad_item)
{
	struct cidr_table t = {0};
	char err[ERR_LEN];

	CHECK_EQ_INT(cidr_table_add_list(&t, "10.0.0.0/8, bogus", ALLOW, err), -1);
	CHECK_STR(err, "'bogus' is not an address or network");
	CHECK_EQ_INT(cidr_table_add_list(&t, " , ", ALLOW, err), 0);
	cidr_table_free(&t);
	/* an empty table matches nothing */
	CHECK_EQ_INT(cidr_table_finish(&t), 0);
	CHECK_EQ_INT(verdict(&t, "10.0.0.1"), -1);
}

UNIT_MAIN(T(parses_networks_and_hosts), T(refuses_what_it_cannot_mean),
	  T(longest_prefix_wins_and_deny_wins_a_tie), T(families_stay_apart),
	  T(every_length_is_looked_at), T(a_bad_list_names_its_bad_item))
