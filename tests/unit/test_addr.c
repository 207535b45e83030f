/* addr_parse, addr_format, addr_equal. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "addr.h"
#include "unit.h"

/* Parses text (must succeed) and checks addr_format gives want back. */
static void parses_as(const char *text, int flags, const char *want, const char *file, int line)
{
	char err[ERR_LEN] = "", buf[ADDR_TEXT_LEN];
	struct addr a;

	if (!unit_check(addr_parse(text, flags, &a, err) == 0, file, line,
			"addr_parse(\"%s\", %d) failed: %s", text, flags, err))
		return;
	addr_format((const struct sockaddr *)&a.ss, buf, sizeof(buf));
	unit_check(strcmp(buf, want) == 0, file, line,
		   "addr_parse(\"%s\") formats as \"%s\", expected \"%s\"", text, buf, want);
}

/* Parsing text must fail with exactly want_msg. */
static void fails_with(const char *text, int flags, const char *want_msg, const char *file,
		       int line)
{
	char err[ERR_LEN] = "";
	struct addr a;
	int rc = addr_parse(text, flags, &a, err);

	unit_check(rc == -1 && strcmp(err, want_msg) == 0, file, line,
		   "addr_parse(\"%s\", %d): rc %d, err \"%s\"; expected -1, \"%s\"",
		   text ? text : "(null)", flags, rc, err, want_msg);
}

#define PARSES_AS(text, flags, want) parses_as(text, flags, want, __FILE__, __LINE__)
#define FAILS_WITH(text, flags, msg) fails_with(text, flags, msg, __FILE__, __LINE__)

static struct addr parse(const char *text, int flags)
{
	struct addr a;
	char err[ERR_LEN];

	if (addr_parse(text, flags, &a, err) < 0) {
		fprintf(stderr, "test_addr: cannot parse %s: %s\n", text, err);
		exit(2);
	}
	return a;
}

TEST(ipv4)
{
	struct addr a;
	char err[ERR_LEN];
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&a.ss;

	REQUIRE(addr_parse("10.0.0.11:80", 0, &a, err) == 0);
	CHECK_EQ_INT(a.ss.ss_family, AF_INET);
	CHECK_EQ_INT(a.len, sizeof(struct sockaddr_in));
	CHECK_EQ_INT(ntohs(sin->sin_port), 80);
	CHECK_EQ_INT(ntohl(sin->sin_addr.s_addr), 0x0a00000b);

	PARSES_AS("0.0.0.0:8080", 0, "0.0.0.0:8080");
	PARSES_AS("127.0.0.1:1", 0, "127.0.0.1:1");
	PARSES_AS("255.255.255.255:65535", 0, "255.255.255.255:65535");
	PARSES_AS("192.0.2.1:00080", 0, "192.0.2.1:80");
}

TEST(ipv6_in_brackets)
{
	struct addr a;
	char err[ERR_LEN];
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a.ss;

	REQUIRE(addr_parse("[::1]:8080", 0, &a, err) == 0);
	CHECK_EQ_INT(a.ss.ss_family, AF_INET6);
	CHECK_EQ_INT(a.len, sizeof(struct sockaddr_in6));
	CHECK_EQ_INT(ntohs(sin6->sin6_port), 8080);
	CHECK(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));

	PARSES_AS("[::]:80", 0, "[::]:80");
	PARSES_AS("[2001:DB8:0:0::1]:443", 0, "[2001:db8::1]:443");
	PARSES_AS("[fe80::1:2:3:4]:65535", 0, "[fe80::1:2:3:4]:65535");
	PARSES_AS("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", 0,
		  "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
}

TEST(ipv4_mapped_ipv6)
{
	struct addr a = parse("[::ffff:10.0.0.1]:80", 0);
	char buf[ADDR_TEXT_LEN];

	CHECK_EQ_INT(a.ss.ss_family, AF_INET6);
	CHECK_STR(addr_format((const struct sockaddr *)&a.ss, buf, sizeof(buf)), "10.0.0.1:80");
	PARSES_AS("[::ffff:0a00:0001]:81", 0, "10.0.0.1:81");
}

TEST(localhost_resolves)
{
	struct addr a;
	char err[ERR_LEN] = "", buf[ADDR_TEXT_LEN];

	if (!CHECK_EQ_INT(addr_parse("localhost:8080", 0, &a, err), 0)) {
		unit_diag(__FILE__, __LINE__, "err: %s", err);
		return;
	}
	addr_format((const struct sockaddr *)&a.ss, buf, sizeof(buf));
	if (a.ss.ss_family == AF_INET) {
		CHECK_EQ_INT(a.len, sizeof(struct sockaddr_in));
		CHECK_STR(buf, "127.0.0.1:8080");
	} else {
		CHECK_EQ_INT(a.ss.ss_family, AF_INET6);
		CHECK_EQ_INT(a.len, sizeof(struct sockaddr_in6));
		CHECK_STR(buf, "[::1]:8080");
	}
}

TEST(unresolvable_host)
{
	struct addr a;
	char err[ERR_LEN] = "";

	CHECK_EQ_INT(addr_parse("no-such-host.invalid:80", 0, &a, err), -1);
	CHECK_CONTAINS(err, "cannot resolve 'no-such-host.invalid': ");
}

TEST(bad_ports)
{
	FAILS_WITH("1.2.3.4:0", 0, "'1.2.3.4:0': bad port '0' (1-65535)");
	FAILS_WITH("1.2.3.4:65536", 0, "'1.2.3.4:65536': bad port '65536' (1-65535)");
	FAILS_WITH("1.2.3.4:99999999999999999999", 0,
		   "'1.2.3.4:99999999999999999999': bad port '99999999999999999999' (1-65535)");
	FAILS_WITH("1.2.3.4:", 0, "'1.2.3.4:': bad port '' (1-65535)");
	FAILS_WITH("1.2.3.4", 0, "'1.2.3.4' needs a port: HOST:PORT");
	FAILS_WITH("localhost", 0, "'localhost' needs a port: HOST:PORT");
	FAILS_WITH("1.2.3.4:http", 0, "'1.2.3.4:http': bad port 'http' (1-65535)");
	FAILS_WITH("1.2.3.4:8o", 0, "'1.2.3.4:8o': bad port '8o' (1-65535)");
	FAILS_WITH("1.2.3.4:-1", 0, "'1.2.3.4:-1': bad port '-1' (1-65535)");
	FAILS_WITH("1.2.3.4:+80", 0, "'1.2.3.4:+80': bad port '+80' (1-65535)");
	FAILS_WITH("1.2.3.4: 80", 0, "'1.2.3.4: 80': bad port ' 80' (1-65535)");
	FAILS_WITH("1.2.3.4:80 ", 0, "'1.2.3.4:80 ': bad port '80 ' (1-65535)");
	FAILS_WITH("[::1]:0", 0, "'[::1]:0': bad port '0' (1-65535)");
	FAILS_WITH("[::1]:", 0, "'[::1]:': bad port '' (1-65535)");
	FAILS_WITH("[::1]:65536", 0, "'[::1]:65536': bad port '65536' (1-65535)");
	FAILS_WITH("localhost:0", 0, "'localhost:0': bad port '0' (1-65535)");
}

TEST(brackets)
{
	FAILS_WITH("[::1:80", 0, "'[::1:80' has no closing ']'");
	FAILS_WITH("[::1", 0, "'[::1' has no closing ']'");
	FAILS_WITH("[::1]80", 0, "'[::1]80' needs a port: [ADDRESS]:PORT");
	FAILS_WITH("[::1]", 0, "'[::1]' needs a port: [ADDRESS]:PORT");
	FAILS_WITH("[]:80", 0, "'[]:80' has an invalid IPv6 address");
	FAILS_WITH("[1.2.3.4]:80", 0, "'[1.2.3.4]:80' has an invalid IPv6 address");
	FAILS_WITH("[localhost]:80", 0, "'[localhost]:80' has an invalid IPv6 address");
	FAILS_WITH("[::1::2]:80", 0, "'[::1::2]:80' has an invalid IPv6 address");
	FAILS_WITH("[::g]:80", 0, "'[::g]:80' has an invalid IPv6 address");
}

TEST(bare_ipv6_is_rejected)
{
	FAILS_WITH("::1:80", 0, "'::1:80': write IPv6 addresses as [ADDRESS]:PORT");
	FAILS_WITH("2001:db8::1:443", 0,
		   "'2001:db8::1:443': write IPv6 addresses as [ADDRESS]:PORT");
	FAILS_WITH("::1", 0, "'::1': write IPv6 addresses as [ADDRESS]:PORT");
	FAILS_WITH("::ffff:1.2.3.4:80", ADDR_NO_RESOLVE,
		   "'::ffff:1.2.3.4:80': write IPv6 addresses as [ADDRESS]:PORT");
}

TEST(empty_and_missing_host)
{
	FAILS_WITH("", 0, "empty address");
	FAILS_WITH(NULL, 0, "empty address");
	FAILS_WITH(":80", 0, "':80' has no host");
	FAILS_WITH(":", 0, "':': bad port '' (1-65535)");
}

TEST(long_host_name)
{
	char text[400], err[ERR_LEN] = "";
	struct addr a;

	/* The reason must survive: quoting a 300-character text in full would push
	 * it out of the ERR_LEN buffer. */
	memset(text, 'a', 300);
	strcpy(text + 300, ":80");
	CHECK_EQ_INT(addr_parse(text, 0, &a, err), -1);
	CHECK_CONTAINS(err, "host name too long");
	CHECK_CONTAINS(err, "'aaaa");

	memset(text, 0, sizeof(text));
	text[0] = '[';
	memset(text + 1, '1', 300);
	strcpy(text + 301, "]:80");
	CHECK_EQ_INT(addr_parse(text, 0, &a, err), -1);
	CHECK_CONTAINS(err, "has an invalid IPv6 address");
	CHECK_CONTAINS(err, "'[1111");

	/* A host name of 255 characters is long but legal: it fails only in DNS. */
	memset(text, 0, sizeof(text));
	memset(text, 'b', 255);
	strcpy(text + 255, ":80");
	CHECK_EQ_INT(addr_parse(text, ADDR_NO_RESOLVE, &a, err), -1);
	CHECK_CONTAINS(err, "is not a numeric address");
}

/* Quoted input keeps a message on one line that cannot drive a terminal:
 * tcphash reads clients from logs, whatever they hold. */
TEST(control_bytes_are_escaped_in_messages)
{
	char text[200], err[ERR_LEN] = "";
	struct addr a;
	int has_port;

	CHECK_EQ_INT(addr_parse_client("x\x1b[31m", &a, &has_port, err), -1);
	CHECK_STR(err, "invalid client address 'x\\x1b[31m'");
	CHECK_EQ_INT(addr_parse_client("[::1\n", &a, &has_port, err), -1);
	CHECK_STR(err, "invalid client '[::1\\x0a'");
	CHECK_EQ_INT(addr_parse("a\rb\x7f:80", ADDR_NO_RESOLVE, &a, err), -1);
	CHECK_CONTAINS(err, "'a\\x0db\\x7f:80'");
	/* Escapes count towards the length limit. */
	memset(text, '\t', 150);
	strcpy(text + 150, ":80");
	CHECK_EQ_INT(addr_parse(text, ADDR_NO_RESOLVE, &a, err), -1);
	CHECK_CONTAINS(err, "'\\x09\\x09");
	CHECK_CONTAINS(err, "...'");
	CHECK(strlen(err) < 100);
}

TEST(legacy_ipv4_forms_are_not_addresses)
{
	/* inet_aton (and so getaddrinfo) reads these as 1.2.0.3, 8.0.0.1 (octal),
	 * 127.0.0.1 (one number) and 127.0.0.1 (hex): nobody writing a pool file
	 * means that, so they must be errors, not silently different addresses. */
	static const char *const texts[] = {
	    "1.2.3:80",	    "010.0.0.1:80",  "2130706433:80", "0x7f.0.0.1:80", "127.1:80",
	    "1.2.3.4.5:80", "10.0.0.256:80", "1.2.3.04:80",   "1.2.3.4.:80",   "1.2.3.4 x:80"};
	struct addr a;
	char err[ERR_LEN], buf[ADDR_TEXT_LEN];

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		int rc;

		err[0] = '\0';
		rc = addr_parse(texts[i], 0, &a, err);
		if (rc == 0)
			addr_format((const struct sockaddr *)&a.ss, buf, sizeof(buf));
		if (!unit_check(rc == -1, __FILE__, __LINE__,
				"addr_parse(\"%s\") accepted it as %s", texts[i], buf))
			continue;
		unit_check(strstr(err, texts[i]) != NULL || strstr(err, "resolve") != NULL,
			   __FILE__, __LINE__, "addr_parse(\"%s\"): unclear error \"%s\"", texts[i],
			   err);
	}
}

TEST(port0_only_when_allowed)
{
	struct addr a;
	char err[ERR_LEN];

	PARSES_AS("0.0.0.0:0", ADDR_ALLOW_PORT0, "0.0.0.0:0");
	PARSES_AS("127.0.0.1:0", ADDR_ALLOW_PORT0, "127.0.0.1:0");
	PARSES_AS("[::1]:0", ADDR_ALLOW_PORT0, "[::1]:0");
	PARSES_AS("[::1]:00", ADDR_ALLOW_PORT0 | ADDR_NO_RESOLVE, "[::1]:0");
	PARSES_AS("127.0.0.1:80", ADDR_ALLOW_PORT0, "127.0.0.1:80");
	CHECK_EQ_INT(addr_parse("localhost:0", ADDR_ALLOW_PORT0, &a, err), 0);
	CHECK_EQ_INT(addr_parse("127.0.0.1:0", 0, &a, err), -1);
	/* The flag widens the range down to 0, not up. */
	CHECK_EQ_INT(addr_parse("127.0.0.1:65536", ADDR_ALLOW_PORT0, &a, err), -1);
	CHECK_CONTAINS(err, "bad port '65536'");
	CHECK_EQ_INT(addr_parse("127.0.0.1:-0", ADDR_ALLOW_PORT0, &a, err), -1);
}

TEST(no_resolve_takes_numbers_only)
{
	PARSES_AS("192.0.2.7:80", ADDR_NO_RESOLVE, "192.0.2.7:80");
	PARSES_AS("[2001:db8::7]:80", ADDR_NO_RESOLVE, "[2001:db8::7]:80");
	FAILS_WITH("localhost:80", ADDR_NO_RESOLVE, "'localhost:80' is not a numeric address");
	FAILS_WITH("no-such-host.invalid:80", ADDR_NO_RESOLVE,
		   "'no-such-host.invalid:80' is not a numeric address");
	/* The port is still checked first. */
	FAILS_WITH("localhost:0", ADDR_NO_RESOLVE, "'localhost:0': bad port '0' (1-65535)");
}

TEST(name_unchecked_takes_names_by_their_form)
{
	char err[ERR_LEN] = "";
	struct addr a;

	PARSES_AS("192.0.2.7:80", ADDR_NAME_UNCHECKED, "192.0.2.7:80");
	CHECK_EQ_INT(addr_parse("no-such-host.invalid:80", ADDR_NAME_UNCHECKED, &a, err), 0);
	CHECK_EQ_INT(a.len, 0);
	CHECK_EQ_INT(a.ss.ss_family, AF_UNSPEC);
	FAILS_WITH("bad!name:80", ADDR_NAME_UNCHECKED, "'bad!name' is not a valid host name");
	FAILS_WITH("-x.example:80", ADDR_NAME_UNCHECKED, "'-x.example' is not a valid host name");
	FAILS_WITH("a..b:80", ADDR_NAME_UNCHECKED, "'a..b' is not a valid host name");
	FAILS_WITH("name:0", ADDR_NAME_UNCHECKED, "'name:0': bad port '0' (1-65535)");
}

TEST(err_may_be_null)
{
	struct addr a;

	CHECK_EQ_INT(addr_parse("nonsense", 0, &a, NULL), -1);
	CHECK_EQ_INT(addr_parse("1.2.3.4:0", 0, &a, NULL), -1);
	CHECK_EQ_INT(addr_parse("1.2.3.4:1", 0, &a, NULL), 0);
}

TEST(format_v4_v6_mapped_and_unknown)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr_un sun;
	char buf[ADDR_TEXT_LEN], small[8];

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(40000);
	sin.sin_addr.s_addr = htonl(0xc0000201);
	CHECK_STR(addr_format((struct sockaddr *)&sin, buf, sizeof(buf)), "192.0.2.1:40000");

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(443);
	inet_pton(AF_INET6, "2001:db8::42", &sin6.sin6_addr);
	CHECK_STR(addr_format((struct sockaddr *)&sin6, buf, sizeof(buf)), "[2001:db8::42]:443");

	inet_pton(AF_INET6, "::ffff:198.51.100.9", &sin6.sin6_addr);
	CHECK_STR(addr_format((struct sockaddr *)&sin6, buf, sizeof(buf)), "198.51.100.9:443");
	/* IPv4-compatible (deprecated ::a.b.c.d) is not IPv4-mapped: it stays IPv6. */
	inet_pton(AF_INET6, "::198.51.100.9", &sin6.sin6_addr);
	addr_format((struct sockaddr *)&sin6, buf, sizeof(buf));
	CHECK(buf[0] == '[' && strstr(buf, "]:443") != NULL);

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	CHECK_STR(addr_format((struct sockaddr *)&sun, buf, sizeof(buf)), "(unknown family 1)");

	/* A short buffer is truncated, never overrun; the return value is the buffer. */
	memset(small, 'X', sizeof(small));
	CHECK(addr_format((struct sockaddr *)&sin, small, 6) == small);
	CHECK_STR(small, "192.0");
	CHECK_EQ_INT(small[6], 'X');
}

TEST(equal)
{
	struct addr a = parse("10.0.0.1:80", 0);
	struct addr same = parse("10.0.0.1:80", 0);
	struct addr mapped = parse("[::ffff:10.0.0.1]:80", 0);
	struct addr other_port = parse("10.0.0.1:81", 0);
	struct addr other_ip = parse("10.0.0.2:80", 0);
	struct addr v6 = parse("[2001:db8::1]:80", 0);
	struct addr v6_same = parse("[2001:db8:0::1]:80", 0);
	struct addr any4 = parse("0.0.0.0:80", 0);
	struct addr any6 = parse("[::]:80", 0);
	struct addr lo4 = parse("127.0.0.1:80", 0);
	struct addr lo6 = parse("[::1]:80", 0);

	CHECK(addr_equal(&a, &a));
	CHECK(addr_equal(&a, &same));
	CHECK(addr_equal(&a, &mapped));
	CHECK(addr_equal(&mapped, &a));
	CHECK(!addr_equal(&a, &other_port));
	CHECK(!addr_equal(&a, &other_ip));
	CHECK(!addr_equal(&mapped, &other_port));
	CHECK(addr_equal(&v6, &v6_same));
	CHECK(!addr_equal(&v6, &a));
	/* Different addresses even though both mean "any" or "loopback". */
	CHECK(!addr_equal(&any4, &any6));
	CHECK(!addr_equal(&lo4, &lo6));
}

UNIT_MAIN(T(ipv4), T(ipv6_in_brackets), T(ipv4_mapped_ipv6), T(localhost_resolves),
	  T(unresolvable_host), T(bad_ports), T(brackets), T(bare_ipv6_is_rejected),
	  T(empty_and_missing_host), T(long_host_name),
	  T(control_bytes_are_escaped_in_messages), T(legacy_ipv4_forms_are_not_addresses),
	  T(port0_only_when_allowed), T(no_resolve_takes_numbers_only),
	  T(name_unchecked_takes_names_by_their_form), T(err_may_be_null),
	  T(format_v4_v6_mapped_and_unknown), T(equal))
