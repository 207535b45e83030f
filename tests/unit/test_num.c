/* num_parse, duration_parse, duration_format. */
#include <limits.h>
#include <stdint.h>

#include "num.h"
#include "unit.h"

/* num_parse(s) in [min, max] must succeed with want. */
static void num_ok(const char *s, long long min, long long max, long long want, const char *file,
		   int line)
{
	char err[ERR_LEN] = "";
	long long v = -12345;
	int rc = num_parse(s, min, max, &v, err);

	unit_check(rc == 0 && v == want, file, line,
		   "num_parse(\"%s\", %lld, %lld): rc %d, value %lld, err \"%s\"; expected %lld", s,
		   min, max, rc, v, err, want);
}

/* num_parse(s) must fail, leave *out alone and say want_msg. */
static void num_bad(const char *s, long long min, long long max, const char *want_msg,
		    const char *file, int line)
{
	char err[ERR_LEN] = "";
	long long v = -12345;
	int rc = num_parse(s, min, max, &v, err);

	unit_check(
	    rc == -1 && v == -12345 && strcmp(err, want_msg) == 0, file, line,
	    "num_parse(\"%s\", %lld, %lld): rc %d, value %lld, err \"%s\"; expected -1, \"%s\"",
	    s ? s : "(null)", min, max, rc, v, err, want_msg);
}

#define NUM_OK(s, min, max, want) num_ok(s, min, max, want, __FILE__, __LINE__)
#define NUM_BAD(s, min, max, msg) num_bad(s, min, max, msg, __FILE__, __LINE__)

static void dur_ok(const char *s, uint64_t min, uint64_t max, uint64_t want, const char *file,
		   int line)
{
	char err[ERR_LEN] = "";
	uint64_t v = 12345;
	int rc = duration_parse(s, min, max, &v, err);

	unit_check(rc == 0 && v == want, file, line,
		   "duration_parse(\"%s\"): rc %d, value %llu, err \"%s\"; expected %llu", s, rc,
		   (unsigned long long)v, err, (unsigned long long)want);
}

static void dur_bad(const char *s, uint64_t min, uint64_t max, const char *want_msg,
		    const char *file, int line)
{
	char err[ERR_LEN] = "";
	uint64_t v = 12345;
	int rc = duration_parse(s, min, max, &v, err);

	unit_check(rc == -1 && v == 12345 && strcmp(err, want_msg) == 0, file, line,
		   "duration_parse(\"%s\"): rc %d, value %llu, err \"%s\"; expected -1, \"%s\"",
		   s ? s : "(null)", rc, (unsigned long long)v, err, want_msg);
}

#define DUR_OK(s, want) dur_ok(s, 0, UINT64_MAX, want, __FILE__, __LINE__)
#define DUR_BAD(s, msg) dur_bad(s, 0, UINT64_MAX, msg, __FILE__, __LINE__)
#define HOUR 3600000ull

TEST(num_accepts_values_in_range)
{
	NUM_OK("0", 0, 10, 0);
	NUM_OK("10", 0, 10, 10);
	NUM_OK("7", 7, 7, 7);
	NUM_OK("007", 0, 10, 7);
	NUM_OK("65535", 1, 65535, 65535);
	NUM_OK("256", 0, 256, 256);
	NUM_OK("10000000", 0, 10000000, 10000000);
}

TEST(num_rejects_values_out_of_range)
{
	NUM_BAD("11", 0, 10, "11 is out of range (0-10)");
	NUM_BAD("0", 1, 65535, "0 is out of range (1-65535)");
	NUM_BAD("65536", 1, 65535, "65536 is out of range (1-65535)");
	NUM_BAD("257", 0, 256, "257 is out of range (0-256)");
	NUM_BAD("6", 7, 7, "6 is out of range (7-7)");
	NUM_BAD("-11", -10, 10, "-11 is out of range (-10-10)");
}

TEST(num_signs)
{
	NUM_OK("-5", -10, 10, -5);
	NUM_OK("-0", -10, 10, 0);
	NUM_OK("-10", -10, -1, -10);
	/* A minus sign is not a number when the range has no negatives. */
	NUM_BAD("-1", 0, 256, "invalid number '-1'");
	NUM_BAD("-0", 0, 10, "invalid number '-0'");
	/* strtoll would take these; a range-checked parser must not. */
	NUM_BAD("+5", 0, 10, "invalid number '+5'");
	NUM_BAD("+5", -10, 10, "invalid number '+5'");
	NUM_BAD("--5", -10, 10, "invalid number '--5'");
	NUM_BAD("-+5", -10, 10, "invalid number '-+5'");
	NUM_BAD("-", -10, 10, "invalid number '-'");
	NUM_BAD("- 5", -10, 10, "invalid number '- 5'");
	NUM_BAD("5-", -10, 10, "invalid number '5-'");
}

TEST(num_rejects_garbage)
{
	NUM_BAD(" 5", 0, 10, "invalid number ' 5'");
	NUM_BAD("\t5", 0, 10, "invalid number '\t5'");
	NUM_BAD("5 ", 0, 10, "invalid number '5 '");
	NUM_BAD("5\n", 0, 10, "invalid number '5\n'");
	NUM_BAD("5x", 0, 10, "invalid number '5x'");
	NUM_BAD("x5", 0, 10, "invalid number 'x5'");
	NUM_BAD("abc", 0, 10, "invalid number 'abc'");
	NUM_BAD("0x10", 0, 100, "invalid number '0x10'");
	NUM_BAD("1e3", 0, 10000, "invalid number '1e3'");
	NUM_BAD("1.5", 0, 10, "invalid number '1.5'");
	NUM_BAD("1,000", 0, 10000, "invalid number '1,000'");
	NUM_BAD("1_000", 0, 10000, "invalid number '1_000'");
	NUM_BAD("\xd9\xa3", 0, 10, "invalid number '\xd9\xa3'"); /* ARABIC-INDIC DIGIT THREE */
}

TEST(num_rejects_empty_and_null)
{
	NUM_BAD("", 0, 10, "invalid number ''");
	NUM_BAD(NULL, 0, 10, "invalid number ''");
}

TEST(num_overflow_is_out_of_range)
{
	NUM_OK("9223372036854775807", 0, LLONG_MAX, LLONG_MAX);
	NUM_OK("-9223372036854775808", LLONG_MIN, 0, LLONG_MIN);
	NUM_BAD("9223372036854775808", 0, LLONG_MAX,
		"9223372036854775808 is out of range (0-9223372036854775807)");
	NUM_BAD("-9223372036854775809", LLONG_MIN, 0,
		"-9223372036854775809 is out of range (-9223372036854775808-0)");
	NUM_BAD("99999999999999999999999999", 0, 10,
		"99999999999999999999999999 is out of range (0-10)");
	/* ERANGE from one call must not leak into the next. */
	NUM_OK("3", 0, 10, 3);
}

TEST(num_err_may_be_null)
{
	long long v = 0;

	CHECK_EQ_INT(num_parse("x", 0, 10, &v, NULL), -1);
	CHECK_EQ_INT(num_parse("11", 0, 10, &v, NULL), -1);
	CHECK_EQ_INT(num_parse("4", 0, 10, &v, NULL), 0);
	CHECK_EQ_INT(v, 4);
}

TEST(duration_units)
{
	DUR_OK("1ms", 1);
	DUR_OK("250ms", 250);
	DUR_OK("0ms", 0);
	DUR_OK("1s", 1000);
	DUR_OK("3s", 3000);
	DUR_OK("2m", 120000);
	DUR_OK("90m", 90 * 60000);
	DUR_OK("1h", HOUR);
	DUR_OK("720h", 720 * HOUR);
	DUR_OK("010s", 10000);
}

TEST(duration_bare_number_is_seconds)
{
	DUR_OK("5", 5000);
	DUR_OK("0", 0);
	DUR_OK("3600", HOUR);
}

TEST(duration_rejects_bad_units)
{
	DUR_BAD("5x", "invalid duration '5x' (use a number with ms, s, m or h)");
	DUR_BAD("5S", "invalid duration '5S' (use a number with ms, s, m or h)");
	DUR_BAD("5H", "invalid duration '5H' (use a number with ms, s, m or h)");
	DUR_BAD("5sec", "invalid duration '5sec' (use a number with ms, s, m or h)");
	DUR_BAD("5min", "invalid duration '5min' (use a number with ms, s, m or h)");
	DUR_BAD("5d", "invalid duration '5d' (use a number with ms, s, m or h)");
	DUR_BAD("5us", "invalid duration '5us' (use a number with ms, s, m or h)");
	DUR_BAD("5hs", "invalid duration '5hs' (use a number with ms, s, m or h)");
	DUR_BAD("5sm", "invalid duration '5sm' (use a number with ms, s, m or h)");
	DUR_BAD("1h30m", "invalid duration '1h30m' (use a number with ms, s, m or h)");
	DUR_BAD("5 s", "invalid duration '5 s' (use a number with ms, s, m or h)");
	DUR_BAD("5s ", "invalid duration '5s ' (use a number with ms, s, m or h)");
	DUR_BAD(" 5s", "invalid duration ' 5s' (use a number with ms, s, m or h)");
	DUR_BAD("1.5s", "invalid duration '1.5s' (use a number with ms, s, m or h)");
	DUR_BAD("-1s", "invalid duration '-1s' (use a number with ms, s, m or h)");
	DUR_BAD("+1s", "invalid duration '+1s' (use a number with ms, s, m or h)");
	DUR_BAD("s", "invalid duration 's' (use a number with ms, s, m or h)");
	DUR_BAD("ms", "invalid duration 'ms' (use a number with ms, s, m or h)");
	DUR_BAD("", "invalid duration '' (use a number with ms, s, m or h)");
	DUR_BAD(NULL, "invalid duration '' (use a number with ms, s, m or h)");
}

TEST(duration_overflow)
{
	/* Too many digits for 64 bits at all. */
	DUR_BAD("18446744073709551616", "duration '18446744073709551616' is too large");
	DUR_BAD("99999999999999999999999ms", "duration '99999999999999999999999ms' is too large");
	/* Fits as a number, overflows once the unit multiplies it. */
	DUR_BAD("5124095576031h", "duration '5124095576031h' is too large");
	DUR_BAD("307445734561826m", "duration '307445734561826m' is too large");
	DUR_BAD("18446744073709552s", "duration '18446744073709552s' is too large");
	DUR_BAD("18446744073709552", "duration '18446744073709552' is too large");
	/* The largest whole hours that fit. */
	DUR_OK("5124095576030h", 5124095576030ull * HOUR);
	DUR_OK("307445734561825m", 307445734561825ull * 60000);
	DUR_OK("18446744073709551s", 18446744073709551000ull);
}

TEST(duration_range)
{
	uint64_t v = 7;
	char err[ERR_LEN] = "";

	/* connect_timeout: 1ms..1h */
	dur_ok("1ms", 1, HOUR, 1, __FILE__, __LINE__);
	dur_ok("1h", 1, HOUR, HOUR, __FILE__, __LINE__);
	dur_ok("3600s", 1, HOUR, HOUR, __FILE__, __LINE__);
	dur_bad("0", 1, HOUR, "0 is out of range (1ms-1h)", __FILE__, __LINE__);
	dur_bad("0ms", 1, HOUR, "0ms is out of range (1ms-1h)", __FILE__, __LINE__);
	dur_bad("3600001ms", 1, HOUR, "3600001ms is out of range (1ms-1h)", __FILE__, __LINE__);
	dur_bad("61m", 1, HOUR, "61m is out of range (1ms-1h)", __FILE__, __LINE__);
	dur_bad("2h", 1, HOUR, "2h is out of range (1ms-1h)", __FILE__, __LINE__);
	/* check_interval: 10ms..1h; idle_timeout: up to 30 days. */
	dur_bad("9ms", 10, HOUR, "9ms is out of range (10ms-1h)", __FILE__, __LINE__);
	dur_ok("720h", 1, 720 * HOUR, 720 * HOUR, __FILE__, __LINE__);
	dur_bad("721h", 1, 720 * HOUR, "721h is out of range (1ms-720h)", __FILE__, __LINE__);
	dur_bad("1500ms", 2000, 2500, "1500ms is out of range (2s-2500ms)", __FILE__, __LINE__);

	CHECK_EQ_INT(duration_parse("2h", 1, HOUR, &v, NULL), -1);
	CHECK_EQ_INT(v, 7);
	CHECK_EQ_INT(duration_parse("5", 1, HOUR, &v, err), 0);
	CHECK_EQ_INT(v, 5000);
}

/* duration_format(ms) must write want. */
static void fmt_is(uint64_t ms, const char *want, const char *file, int line)
{
	char buf[32];

	memset(buf, 'X', sizeof(buf));
	duration_format(ms, buf, sizeof(buf));
	unit_check(strcmp(buf, want) == 0, file, line,
		   "duration_format(%llu): got \"%s\", expected \"%s\"", (unsigned long long)ms,
		   buf, want);
}

#define FMT_IS(ms, want) fmt_is(ms, want, __FILE__, __LINE__)

TEST(duration_format_picks_the_largest_whole_unit)
{
	FMT_IS(0, "0s");
	FMT_IS(1, "1ms");
	FMT_IS(999, "999ms");
	FMT_IS(1000, "1s");
	FMT_IS(1500, "1500ms");
	FMT_IS(3000, "3s");
	FMT_IS(59000, "59s");
	FMT_IS(60000, "1m");
	FMT_IS(90000, "90s");
	FMT_IS(120000, "2m");
	FMT_IS(HOUR, "1h");
	FMT_IS(HOUR + 1, "3600001ms");
	FMT_IS(90 * 60000, "90m");
	FMT_IS(24 * HOUR, "24h");
	FMT_IS(30 * 24 * HOUR, "720h");
	FMT_IS(UINT64_MAX, "18446744073709551615ms");
}

TEST(duration_format_truncates_to_the_buffer)
{
	char buf[8];

	memset(buf, 'X', sizeof(buf));
	duration_format(1500, buf, 4);
	CHECK_STR(buf, "150");
	CHECK_EQ_INT(buf[4], 'X'); /* nothing written past len */
	duration_format(HOUR, buf, 1);
	CHECK_STR(buf, "");
}

TEST(duration_format_round_trips)
{
	static const uint64_t values[] = {0,	1,	  7,	     999,	 1000,
					  1001, 59999,	  60000,     61000,	 3599999,
					  HOUR, 2 * HOUR, 25 * HOUR, 720 * HOUR, 123456789};
	char buf[32], err[ERR_LEN];
	uint64_t v;

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		duration_format(values[i], buf, sizeof(buf));
		v = 1;
		if (!CHECK_EQ_INT(duration_parse(buf, 0, UINT64_MAX, &v, err), 0))
			continue;
		unit_check(v == values[i], __FILE__, __LINE__, "%llu -> \"%s\" -> %llu",
			   (unsigned long long)values[i], buf, (unsigned long long)v);
	}
}

UNIT_MAIN(T(num_accepts_values_in_range), T(num_rejects_values_out_of_range), T(num_signs),
	  T(num_rejects_garbage), T(num_rejects_empty_and_null), T(num_overflow_is_out_of_range),
	  T(num_err_may_be_null), T(duration_units), T(duration_bare_number_is_seconds),
	  T(duration_rejects_bad_units), T(duration_overflow), T(duration_range),
	  T(duration_format_picks_the_largest_whole_unit),
	  T(duration_format_truncates_to_the_buffer), T(duration_format_round_trips))
