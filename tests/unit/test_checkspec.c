/* The check keys: C escapes, status lists, the keys in a pool and what a
 * backend takes from the pool. */
#include "checkspec.h"
#include "pool.h"
#include "unit.h"

static struct pool *parse(const char *text, char *err)
{
	return pool_parse("web.pool", text, strlen(text), err);
}

TEST(escapes_decode)
{
	char out[64], err[ERR_LEN];
	size_t len = 0;

	REQUIRE(check_text_decode("PING\\r\\n", out, sizeof(out), &len, err) == 0);
	CHECK_EQ_INT(len, 6);
	CHECK(memcmp(out, "PING\r\n", 6) == 0);
	REQUIRE(check_text_decode("a\\tb\\\\c\\x00d\\x7E", out, sizeof(out), &len, err) == 0);
	CHECK_EQ_INT(len, 8);
	CHECK(memcmp(out, "a\tb\\c\0d~", 8) == 0);
	REQUIRE(check_text_decode("plain", out, sizeof(out), &len, err) == 0);
	CHECK_STR(out, "plain");
}

TEST(bad_escapes_are_refused)
{
	char out[64], err[ERR_LEN];
	size_t len;

	CHECK(check_text_decode("a\\q", out, sizeof(out), &len, err) < 0);
	CHECK_CONTAINS(err, "unknown escape '\\q'");
	CHECK(check_text_decode("a\\x4", out, sizeof(out), &len, err) < 0);
	CHECK_CONTAINS(err, "two hexadecimal digits");
	CHECK(check_text_decode("a\\xg0", out, sizeof(out), &len, err) < 0);
	CHECK(check_text_decode("end\\", out, sizeof(out), &len, err) < 0);
	CHECK_CONTAINS(err, "lone");
	CHECK(check_text_decode("toolong", out, 4, &len, err) < 0);
}

TEST(encode_is_the_inverse_for_messages)
{
	char out[64];

	CHECK_STR(check_text_encode(out, sizeof(out), "PING\r\n", 6, 64), "PING\\r\\n");
	CHECK_STR(check_text_encode(out, sizeof(out), "a\0b\x7f", 4, 64), "a\\x00b\\x7f");
	CHECK_STR(check_text_encode(out, sizeof(out), "caf\xc3\xa9", 5, 64), "caf\xc3\xa9");
	CHECK_STR(check_text_encode(out, sizeof(out), "\xff\xfe", 2, 64), "\\xff\\xfe");
	CHECK_STR(check_text_encode(out, sizeof(out), "abcdefgh", 8, 4), "abcd...");
	/* Cut to the buffer, never in the middle of an escape. */
	CHECK_STR(check_text_encode(out, 10, "\r\r\r\r\r\r", 6, 64), "\\r\\r\\r...");
}

TEST(status_lists_and_ranges)
{
	uint16_t r[CHECK_STATUS_MAX][2];
	uint8_t n;
	char err[ERR_LEN];

	REQUIRE(check_status_parse("200", r, &n, err) == 0);
	CHECK_EQ_INT(n, 1);
	CHECK(r[0][0] == 200 && r[0][1] == 200);
	REQUIRE(check_status_parse("200,204", r, &n, err) == 0);
	CHECK_EQ_INT(n, 2);
	CHECK(r[1][0] == 204 && r[1][1] == 204);
	REQUIRE(check_status_parse("200-299, 301 ,302-303", r, &n, err) == 0);
	CHECK_EQ_INT(n, 3);
	CHECK(r[0][0] == 200 && r[0][1] == 299 && r[2][0] == 302 && r[2][1] == 303);
	CHECK(check_status_parse("", r, &n, err) < 0);
	CHECK(check_status_parse("abc", r, &n, err) < 0);
	CHECK(check_status_parse("200,", r, &n, err) < 0);
	CHECK(check_status_parse("99", r, &n, err) < 0);
	CHECK(check_status_parse("2xx", r, &n, err) < 0);
	CHECK_CONTAINS(err, "'2xx': expected a status code");
	CHECK(check_status_parse("2000", r, &n, err) < 0);
	CHECK(check_status_parse("600", r, &n, err) < 0);
	CHECK_CONTAINS(err, "100-599");
	CHECK(check_status_parse("299-200", r, &n, err) < 0);
	CHECK_CONTAINS(err, "backwards");
	CHECK(check_status_parse("200-", r, &n, err) < 0);
	CHECK(check_status_parse("200;204", r, &n, err) < 0);
	CHECK(check_status_parse("1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7", r, &n, err) < 0);
}

TEST(status_ok_and_its_default)
{
	struct check_spec s;
	char err[ERR_LEN], text[64];

	memset(&s, 0, sizeof(s));
	CHECK(check_spec_status_ok(&s, 200));
	CHECK(check_spec_status_ok(&s, 302));
	CHECK(!check_spec_status_ok(&s, 404));
	CHECK(!check_spec_status_ok(&s, 503));
	check_status_format(&s, text, sizeof(text));
	CHECK_STR(text, "200-399");
	REQUIRE(check_spec_key(&s, "check_expect_status", "200,204-206", 1, err) == 1);
	CHECK(check_spec_status_ok(&s, 205));
	CHECK(!check_spec_status_ok(&s, 201));
	check_status_format(&s, text, sizeof(text));
	CHECK_STR(text, "200,204-206");
	check_spec_free(&s);
}

static const char redis_pool[] = "[pool]\n"
				 "check = send-expect\n"
				 "check_send = PING\\r\\n\n"
				 "check_expect = +PONG\n"
				 "check_send = INFO replication\\r\\n\n"
				 "check_expect = ~^role:master\n"
				 "check_timeout = 500ms\n"
				 "on_down = shutdown\n"
				 "slowstart = 10s\n"
				 "[backend a]\n"
				 "address = 127.0.0.1:1\n"
				 "[backend b]\n"
				 "address = 127.0.0.1:2\n"
				 "check = connect\n"
				 "backup = yes\n"
				 "on_down = keep\n"
				 "[backend c]\n"
				 "address = 127.0.0.1:3\n"
				 "check_port = 8008\n"
				 "check_expect = +PONG\n";

TEST(keys_in_the_pool_and_backends_override)
{
	char err[ERR_LEN] = "";
	struct pool *p = parse(redis_pool, err);
	const struct check_spec *a, *b, *c;

	REQUIRE(p != NULL);
	a = &p->backends[0].check;
	b = &p->backends[1].check;
	c = &p->backends[2].check;
	CHECK_EQ_INT(a->kind, CHECK_SEND_EXPECT);
	REQUIRE(a->steps != NULL && a->steps->n == 4);
	CHECK_EQ_INT(a->steps->step[0].kind, STEP_SEND);
	CHECK_EQ_INT(a->steps->step[0].len, 6);
	CHECK_EQ_INT(a->steps->step[1].kind, STEP_EXPECT);
	CHECK_STR(a->steps->step[1].text, "+PONG");
	CHECK_EQ_INT(a->steps->step[3].kind, STEP_EXPECT_RE);
	CHECK_STR(a->steps->step[3].text, "^role:master");
	CHECK(a->steps->step[3].re != NULL);
	CHECK_EQ_INT(a->timeout_ms, 500);
	CHECK_EQ_INT(a->on_down, ON_DOWN_SHUTDOWN);
	CHECK_EQ_INT(a->slowstart_ms, 10000);
	CHECK_EQ_INT(p->backends[0].backup, 0);

	CHECK_EQ_INT(b->kind, CHECK_CONNECT);
	CHECK_EQ_INT(b->on_down, ON_DOWN_KEEP);
	CHECK_EQ_INT(b->timeout_ms, 500);
	CHECK_EQ_INT(p->backends[1].backup, 1);

	/* Its own steps replace the pool's as a whole. */
	CHECK_EQ_INT(c->kind, CHECK_SEND_EXPECT);
	REQUIRE(c->steps != NULL && c->steps->n == 1);
	CHECK_EQ_INT(c->port, 8008);
	CHECK(c->steps != a->steps);
	CHECK(check_spec_equal(a, a));
	CHECK(!check_spec_equal(a, c));
	CHECK_EQ_INT(check_spec_timeout(b, 3000, 2000), 500);
	pool_free(p);
}

/* An ERE keeps its own backslashes; \r \n \t \xNN, which POSIX lacks, are bytes. */
TEST(ere_escapes)
{
	struct check_spec s;
	char err[ERR_LEN];

	memset(&s, 0, sizeof(s));
	REQUIRE(check_spec_key(&s, "check_expect", "~^a\\.b\\\\c\\r\\x41$", 1, err) == 1);
	REQUIRE(s.steps != NULL);
	CHECK_STR(s.steps->step[0].text, "^a\\.b\\\\c\rA$");
	CHECK(regexec(s.steps->step[0].re, "x\na.b\\c\rA\n", 0, NULL, 0) == 0);
	CHECK(regexec(s.steps->step[0].re, "axb\\c\rA", 0, NULL, 0) != 0);
	CHECK(check_spec_key(&s, "check_expect", "~a\\x00", 2, err) < 0);
	check_spec_free(&s);
}

TEST(defaults)
{
	char err[ERR_LEN] = "";
	struct pool *p = parse("[pool]\n[backend a]\naddress = 127.0.0.1:1\n", err);
	const struct check_spec *a;

	REQUIRE(p != NULL);
	a = &p->backends[0].check;
	CHECK_EQ_INT(a->kind, CHECK_CONNECT);
	CHECK(a->steps == NULL);
	CHECK_EQ_INT(a->port, 0);
	CHECK_EQ_INT(a->on_down, ON_DOWN_KEEP);
	CHECK_EQ_INT(a->slowstart_ms, 0);
	CHECK_EQ_INT(p->backends[0].backup, 0);
	/* connect_timeout, but no longer than the interval. */
	CHECK_EQ_INT(check_spec_timeout(a, 3000, 2000), 2000);
	CHECK_EQ_INT(check_spec_timeout(a, 3000, 5000), 3000);
	pool_free(p);
}

TEST(http_keys)
{
	char err[ERR_LEN] = "";
	struct pool *p = parse("[pool]\ncheck = http\ncheck_http = OPTIONS /primary\n"
			       "check_expect_status = 200\ncheck_port = 8008\n"
			       "[backend a]\naddress = 127.0.0.1:5432\n"
			       "[backend b]\naddress = 127.0.0.1:5433\ncheck_http = GET *\n",
			       err);

	REQUIRE(p != NULL);
	CHECK_EQ_INT(p->backends[0].check.kind, CHECK_HTTP);
	CHECK_STR(p->backends[0].check.http_method, "OPTIONS");
	CHECK_STR(p->backends[0].check.http_path, "/primary");
	CHECK(check_spec_status_ok(&p->backends[0].check, 200));
	CHECK(!check_spec_status_ok(&p->backends[0].check, 204));
	CHECK_EQ_INT(p->backends[0].check.port, 8008);
	CHECK_STR(p->backends[1].check.http_method, "GET");
	CHECK_STR(p->backends[1].check.http_path, "*");
	pool_free(p);
}

/* A pool that must fail, with text in its first problem and on line. */
static void refused(const char *text, int line, const char *want, const char *file, int at)
{
	char err[ERR_LEN] = "", where[32];
	struct pool *p = parse(text, err);

	unit_check(p == NULL, file, at, "accepted: %s", text);
	pool_free(p);
	snprintf(where, sizeof(where), "web.pool:%d: ", line);
	unit_check(strstr(err, where) != NULL, file, at, "'%s' is not on line %d", err, line);
	unit_check(strstr(err, want) != NULL, file, at, "'%s' does not say '%s'", err, want);
}
#define REFUSED(text, line, want) refused(text, line, want, __FILE__, __LINE__)

TEST(bad_values_name_the_key_and_line)
{
	REFUSED("[pool]\ncheck = tcp\n", 2, "check: unknown value 'tcp'");
	REFUSED("[pool]\ncheck = http\ncheck = http\n", 3, "check: given twice");
	REFUSED("[pool]\ncheck = send-expect\ncheck_send = A\\q\n", 3, "check_send: unknown escape");
	REFUSED("[pool]\ncheck = send-expect\ncheck_expect = ~a(\n", 3,
		"check_expect: invalid regular expression");
	REFUSED("[pool]\ncheck = send-expect\ncheck_expect = ~\n", 3, "check_expect: '~' needs");
	REFUSED("[pool]\ncheck = http\ncheck_http = GET\n", 3, "check_http: expected METHOD PATH");
	REFUSED("[pool]\ncheck = http\ncheck_http = GET health\n", 3, "check_http: the path");
	REFUSED("[pool]\ncheck = http\ncheck_http = G(T /\n", 3, "check_http");
	REFUSED("[pool]\ncheck = http\ncheck_expect_status = 2xx\n", 3, "check_expect_status:");
	REFUSED("[pool]\ncheck_port = 0\n", 2, "check_port:");
	REFUSED("[pool]\ncheck_port = 65536\n", 2, "check_port:");
	REFUSED("[pool]\ncheck_timeout = 0\n", 2, "check_timeout:");
	REFUSED("[pool]\ncheck_timeout = soon\n", 2, "check_timeout:");
	REFUSED("[pool]\non_down = kill\n", 2, "on_down: unknown value 'kill'");
	REFUSED("[pool]\nslowstart = 2d\n", 2, "slowstart:");
	REFUSED("[pool]\nbackup = yes\n", 2, "backup: only in a [backend NAME] section");
	REFUSED("[pool]\n[backend a]\naddress = 127.0.0.1:1\nbackup = maybe\n", 4,
		"backup: unknown value 'maybe'");
	REFUSED("[pool]\n[backend a]\naddress = 127.0.0.1:1\nbackup = yes\nbackup = no\n", 5,
		"backup: given twice");
}

TEST(keys_that_do_not_fit_the_check)
{
	REFUSED("[pool]\ncheck_send = PING\\r\\n\n", 2,
		"check_send: needs check = send-expect (check is connect)");
	REFUSED("[pool]\ncheck = http\ncheck_expect = +PONG\n", 3,
		"check_expect: needs check = send-expect (check is http)");
	REFUSED("[pool]\ncheck_http = GET /\n", 2, "check_http: needs check = http");
	REFUSED("[pool]\ncheck_expect_status = 200\n", 2, "check_expect_status: needs check = http");
	REFUSED("[pool]\ncheck = send-expect\n", 2, "send-expect needs check_send or check_expect");
	/* In a backend: against the check it ends up with. */
	REFUSED("[pool]\ncheck = http\n[backend a]\naddress = 127.0.0.1:1\ncheck_send = X\n", 5,
		"check_send: needs check = send-expect (check is http)");
	REFUSED("[pool]\n[backend a]\naddress = 127.0.0.1:1\ncheck = send-expect\n", 4,
		"send-expect needs");
}

TEST(too_many_steps)
{
	char text[4096] = "[pool]\ncheck = send-expect\n";

	for (int i = 0; i <= CHECK_STEPS_MAX; i++)
		strcat(text, "check_send = x\n");
	REFUSED(text, 3 + CHECK_STEPS_MAX, "too many check_send and check_expect lines");
}

TEST(a_pool_section_after_the_backends_still_gives_defaults)
{
	char err[ERR_LEN] = "";
	struct pool *p = parse("[backend a]\naddress = 127.0.0.1:1\n"
			       "[pool]\ncheck = send-expect\ncheck_expect = SSH-\n",
			       err);

	REQUIRE(p != NULL);
	CHECK_EQ_INT(p->backends[0].check.kind, CHECK_SEND_EXPECT);
	REQUIRE(p->backends[0].check.steps != NULL);
	CHECK_STR(p->backends[0].check.steps->step[0].text, "SSH-");
	pool_free(p);
}

UNIT_MAIN(T(escapes_decode), T(bad_escapes_are_refused), T(encode_is_the_inverse_for_messages),
	  T(status_lists_and_ranges), T(status_ok_and_its_default),
	  T(keys_in_the_pool_and_backends_override), T(ere_escapes), T(defaults), T(http_keys),
	  T(bad_values_name_the_key_and_line), T(keys_that_do_not_fit_the_check),
	  T(too_many_steps), T(a_pool_section_after_the_backends_still_gives_defaults))
