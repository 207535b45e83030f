/* tcpdist's check protocol (cmd/tcpdist/checkproto.c), bytes fed by hand. */
#include "checkproto.h"
#include "pool.h"
#include "unit.h"

/* The check of the first backend of a pool whose [pool] section has keys. */
struct fixture {
	struct pool *pool;
	const struct check_spec *spec;
	struct check_proto cp;
};

static int setup(struct fixture *f, const char *keys)
{
	char text[2048], err[ERR_LEN] = "";

	snprintf(text, sizeof(text), "[pool]\n%s[backend a]\naddress = 127.0.0.1:6379\n", keys);
	f->pool = pool_parse("t.pool", text, strlen(text), err);
	if (f->pool == NULL) {
		fprintf(stderr, "# %s\n", err);
		return -1;
	}
	f->spec = &f->pool->backends[0].check;
	return check_proto_begin(&f->cp, f->spec, "db:8008");
}

static void teardown(struct fixture *f)
{
	check_proto_end(&f->cp);
	pool_free(f->pool);
}

/* Sends what the check wants sent, all of it; returns it as a string. */
static const char *take_output(struct fixture *f, char *buf, size_t cap)
{
	size_t len;
	const char *out = check_proto_output(&f->cp, &len);

	snprintf(buf, cap, "%.*s", (int)len, out);
	check_proto_sent(&f->cp, len);
	return buf;
}

static void feed(struct fixture *f, const char *bytes, size_t len)
{
	size_t room;
	char *in = check_proto_input(&f->cp, &room);

	if (in == NULL || room < len)
		abort();
	memcpy(in, bytes, len);
	check_proto_received(&f->cp, len);
}
#define FEED(f, s) feed(f, s, sizeof(s) - 1)

static const char redis[] = "check = send-expect\n"
			    "check_send = PING\\r\\n\n"
			    "check_expect = +PONG\n"
			    "check_send = INFO replication\\r\\n\n"
			    "check_expect = role:master\n";

TEST(redis_master_passes)
{
	struct fixture f;
	char out[128];
	size_t len;

	REQUIRE(setup(&f, redis) == 0);
	CHECK_EQ_INT(check_proto_want(&f.cp), CHECK_WANT_SEND);
	CHECK_STR(take_output(&f, out, sizeof(out)), "PING\r\n");
	CHECK_EQ_INT(check_proto_want(&f.cp), CHECK_WANT_RECV);
	FEED(&f, "+PO");
	CHECK_EQ_INT(check_proto_want(&f.cp), CHECK_WANT_RECV);
	FEED(&f, "NG\r\n");
	CHECK_EQ_INT(check_proto_want(&f.cp), CHECK_WANT_SEND);
	/* A short write: the rest is still wanted. */
	check_proto_output(&f.cp, &len);
	check_proto_sent(&f.cp, 4);
	CHECK_STR(take_output(&f, out, sizeof(out)), " replication\r\n");
	FEED(&f, "$40\r\n# Replication\r\nrole:master\r\nconnected_slaves:1\r\n");
	CHECK_EQ_INT(check_proto_want(&f.cp), CHECK_WANT_NOTHING);
	CHECK_EQ_INT(f.cp.result, CHECK_PASSED);
	teardown(&f);
}

TEST(redis_replica_fails_at_the_timeout_with_what_it_said)
{
	struct fixture f;
	char out[128];

	REQUIRE(setup(&f, redis) == 0);
	take_output(&f, out, sizeof(out));
	FEED(&f, "-NOAUTH Authentication required.\r\n");
	CHECK_EQ_INT(check_proto_want(&f.cp), CHECK_WANT_RECV);
	check_proto_timeout(&f.cp, 2000);
	CHECK_EQ_INT(f.cp.result, CHECK_MISMATCH);
	CHECK_STR(f.cp.reason,
		  "expected '+PONG', got '-NOAUTH Authentication required.' (timeout after 2s)");
	teardown(&f);
}

TEST(silence_is_a_timeout)
{
	struct fixture f;
	char out[128];

	REQUIRE(setup(&f, redis) == 0);
	take_output(&f, out, sizeof(out));
	check_proto_timeout(&f.cp, 300);
	CHECK_EQ_INT(f.cp.result, CHECK_TIMEOUT);
	CHECK_STR(f.cp.reason, "timeout after 300ms (expected '+PONG', got nothing)");
	teardown(&f);
}

TEST(closed_mid_line)
{
	struct fixture f;
	char out[128];

	REQUIRE(setup(&f, redis) == 0);
	take_output(&f, out, sizeof(out));
	FEED(&f, "+PO");
	check_proto_closed(&f.cp, 0);
	CHECK_EQ_INT(f.cp.result, CHECK_MISMATCH);
	CHECK_STR(f.cp.reason, "expected '+PONG', got '+PO' (connection closed)");
	teardown(&f);
}

TEST(closed_or_reset_before_anything)
{
	struct fixture f;
	char out[128];

	REQUIRE(setup(&f, redis) == 0);
	take_output(&f, out, sizeof(out));
	check_proto_closed(&f.cp, 1);
	CHECK_EQ_INT(f.cp.result, CHECK_CLOSED);
	CHECK_STR(f.cp.reason, "connection reset (expected '+PONG', got nothing)");
	teardown(&f);
	REQUIRE(setup(&f, redis) == 0);
	check_proto_closed(&f.cp, 0);
	CHECK_EQ_INT(f.cp.result, CHECK_CLOSED);
	CHECK_STR(f.cp.reason, "connection closed while sending");
	teardown(&f);
}

/* A megabyte of garbage: no more than CHECK_READ_MAX is ever taken. */
TEST(garbage_is_bounded)
{
	struct fixture f;
	char out[128], junk[4096];
	size_t total = 0, room;

	memset(junk, 'x', sizeof(junk));
	REQUIRE(setup(&f, redis) == 0);
	take_output(&f, out, sizeof(out));
	while (total < (1 << 20) && check_proto_want(&f.cp) == CHECK_WANT_RECV) {
		char *in = check_proto_input(&f.cp, &room);
		size_t n = room < sizeof(junk) ? room : sizeof(junk);

		REQUIRE(in != NULL && room > 0);
		memcpy(in, junk, n);
		check_proto_received(&f.cp, n);
		total += n;
	}
	CHECK_EQ_INT(total, CHECK_READ_MAX);
	CHECK_EQ_INT(f.cp.result, CHECK_MISMATCH);
	CHECK_CONTAINS(f.cp.reason, "expected '+PONG', got 'xxxxxxxx");
	CHECK_CONTAINS(f.cp.reason, "...' (16384 bytes without a match)");
	CHECK(strlen(f.cp.reason) < CHECK_REASON_LEN);
	teardown(&f);
}

/* One byte at a time still finds the text across the pieces. */
TEST(trickle)
{
	struct fixture f;
	char out[128];
	const char *answer = "junk+PONG\r\n";

	REQUIRE(setup(&f, "check = send-expect\ncheck_send = PING\\r\\n\ncheck_expect = +PONG\n") == 0);
	take_output(&f, out, sizeof(out));
	for (const char *c = answer; *c && check_proto_want(&f.cp) == CHECK_WANT_RECV; c++)
		feed(&f, c, 1);
	CHECK_EQ_INT(f.cp.result, CHECK_PASSED);
	teardown(&f);
}

TEST(ere_with_lines)
{
	struct fixture f;
	char out[128];
	const char *keys = "check = send-expect\ncheck_send = INFO\\r\\n\n"
			   "check_expect = ~^role:(master|primary)\\r?$\n";

	REQUIRE(setup(&f, keys) == 0);
	take_output(&f, out, sizeof(out));
	FEED(&f, "# Replication\r\nrole:slave\r\n");
	CHECK_EQ_INT(check_proto_want(&f.cp), CHECK_WANT_RECV);
	check_proto_closed(&f.cp, 0);
	CHECK_EQ_INT(f.cp.result, CHECK_MISMATCH);
	CHECK_CONTAINS(f.cp.reason, "expected '~^role:(master|primary)");
	teardown(&f);

	REQUIRE(setup(&f, keys) == 0);
	take_output(&f, out, sizeof(out));
	FEED(&f, "# Replication\r\nrole:master\r\n");
	CHECK_EQ_INT(f.cp.result, CHECK_PASSED);
	teardown(&f);
}

/* A send forgets what came before it; two expects share what came. */
TEST(send_starts_afresh_and_expects_share)
{
	struct fixture f;
	char out[128];

	REQUIRE(setup(&f, "check = send-expect\ncheck_send = A\ncheck_expect = ok\n"
			  "check_expect = 42\ncheck_send = B\ncheck_expect = ok\n") == 0);
	CHECK_STR(take_output(&f, out, sizeof(out)), "A");
	FEED(&f, "42 ok");
	CHECK_EQ_INT(check_proto_want(&f.cp), CHECK_WANT_SEND);
	CHECK_STR(take_output(&f, out, sizeof(out)), "B");
	CHECK_EQ_INT(check_proto_want(&f.cp), CHECK_WANT_RECV);
	FEED(&f, "o");
	CHECK_EQ_INT(check_proto_want(&f.cp), CHECK_WANT_RECV);
	FEED(&f, "k");
	CHECK_EQ_INT(f.cp.result, CHECK_PASSED);
	teardown(&f);
}

TEST(banner_first_and_binary)
{
	struct fixture f;

	REQUIRE(setup(&f, "check = send-expect\ncheck_expect = \\x00\\x01\\xff\n") == 0);
	CHECK_EQ_INT(check_proto_want(&f.cp), CHECK_WANT_RECV);
	feed(&f, "z\0\1", 3);
	CHECK_EQ_INT(check_proto_want(&f.cp), CHECK_WANT_RECV);
	feed(&f, "\xff", 1);
	CHECK_EQ_INT(f.cp.result, CHECK_PASSED);
	teardown(&f);
}

static const char http[] = "check = http\ncheck_http = OPTIONS /primary\ncheck_expect_status = 200\n";

TEST(http_request)
{
	struct fixture f;
	char out[512];

	REQUIRE(setup(&f, http) == 0);
	CHECK_STR(take_output(&f, out, sizeof(out)),
		  "OPTIONS /primary HTTP/1.1\r\nHost: db:8008\r\nUser-Agent: tcpdist-check/" TCPDIST_VERSION
		  "\r\nConnection: close\r\n\r\n");
	CHECK_EQ_INT(check_proto_want(&f.cp), CHECK_WANT_RECV);
	FEED(&f, "HTTP/1.1 20");
	CHECK_EQ_INT(check_proto_want(&f.cp), CHECK_WANT_RECV);
	FEED(&f, "0 OK\r\nContent-Length: 0\r\n");
	CHECK_EQ_INT(f.cp.result, CHECK_PASSED);
	teardown(&f);
}

TEST(http_status_not_expected)
{
	struct fixture f;
	char out[512];

	REQUIRE(setup(&f, http) == 0);
	take_output(&f, out, sizeof(out));
	FEED(&f, "HTTP/1.1 503 Service Unavailable\r\n\r\n");
	CHECK_EQ_INT(f.cp.result, CHECK_STATUS);
	CHECK_STR(f.cp.reason, "HTTP 503");
	teardown(&f);
	/* The default: 2xx and 3xx. */
	REQUIRE(setup(&f, "check = http\n") == 0);
	CHECK_STR(take_output(&f, out, 16), "GET / HTTP/1.1\r");
	FEED(&f, "HTTP/1.0 302 Found\n");
	CHECK_EQ_INT(f.cp.result, CHECK_PASSED);
	teardown(&f);
}

TEST(http_garbage_and_cuts)
{
	struct fixture f;
	char out[512], junk[CHECK_STATUS_LINE_MAX + 10];

	REQUIRE(setup(&f, http) == 0);
	take_output(&f, out, sizeof(out));
	FEED(&f, "SSH-2.0-OpenSSH_9.2\r\n");
	CHECK_EQ_INT(f.cp.result, CHECK_PROTOCOL);
	CHECK_STR(f.cp.reason, "not an HTTP response: got 'SSH-2.0-OpenSSH_9.2'");
	teardown(&f);

	REQUIRE(setup(&f, http) == 0);
	take_output(&f, out, sizeof(out));
	memset(junk, 'H', sizeof(junk));
	feed(&f, junk, sizeof(junk));
	CHECK_EQ_INT(f.cp.result, CHECK_PROTOCOL);
	teardown(&f);

	REQUIRE(setup(&f, http) == 0);
	take_output(&f, out, sizeof(out));
	FEED(&f, "HTTP/1.1 2");
	check_proto_closed(&f.cp, 0);
	CHECK_EQ_INT(f.cp.result, CHECK_CLOSED);
	CHECK_STR(f.cp.reason, "connection closed in the status line: got 'HTTP/1.1 2'");
	teardown(&f);

	/* A status line the close ends, not a line end. */
	REQUIRE(setup(&f, http) == 0);
	take_output(&f, out, sizeof(out));
	FEED(&f, "HTTP/1.1 200 OK");
	check_proto_closed(&f.cp, 0);
	CHECK_EQ_INT(f.cp.result, CHECK_PASSED);
	teardown(&f);

	REQUIRE(setup(&f, http) == 0);
	take_output(&f, out, sizeof(out));
	check_proto_timeout(&f.cp, 1500);
	CHECK_EQ_INT(f.cp.result, CHECK_TIMEOUT);
	CHECK_STR(f.cp.reason, "timeout after 1500ms (no answer to OPTIONS /primary)");
	teardown(&f);
}

TEST(result_names)
{
	CHECK_STR(check_result_name(CHECK_PASSED), "passed");
	CHECK_STR(check_result_name(CHECK_MISMATCH), "mismatch");
	CHECK_STR(check_result_name(CHECK_STATUS), "status");
	CHECK_STR(check_result_name(CHECK_RESULTS), "none");
	for (int r = 0; r < CHECK_RESULTS; r++)
		CHECK(check_result_name((enum check_result)r) != NULL);
}

UNIT_MAIN(T(redis_master_passes), T(redis_replica_fails_at_the_timeout_with_what_it_said),
	  T(silence_is_a_timeout), T(closed_mid_line), T(closed_or_reset_before_anything),
	  T(garbage_is_bounded), T(trickle), T(ere_with_lines), T(send_starts_afresh_and_expects_share),
	  T(banner_first_and_binary), T(http_request), T(http_status_not_expected),
	  T(http_garbage_and_cuts), T(result_names))
