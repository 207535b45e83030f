/* Health check settings: the check keys of a pool file (tcpdist.pool(5),
 * HEALTH CHECKS), parsed and validated here so that tcpdist, tcppool and
 * tcphash read them alike. A [pool] section gives every backend's defaults,
 * a [backend NAME] section overrides them key by key; the repeated
 * check_send and check_expect lines of a section replace the pool's steps
 * as a whole.
 *
 * A spec owns what it gave itself (the CK_ bits in given); a backend's spec
 * points at the pool's steps and request for what it inherits, so those
 * live as long as the pool. */
#ifndef TCPDIST_CHECKSPEC_H
#define TCPDIST_CHECKSPEC_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CHECK_STEPS_MAX 32    /* check_send and check_expect lines of one section */
#define CHECK_TEXT_MAX 255    /* bytes of one step, escapes decoded */
#define CHECK_STATUS_MAX 16   /* codes and ranges of check_expect_status */
#define CHECK_METHOD_MAX 15   /* bytes of check_http's METHOD */
#define CHECK_SLOWSTART_MAX (24ull * 3600000)

enum check_kind { CHECK_CONNECT, CHECK_SEND_EXPECT, CHECK_HTTP };
enum check_on_down { ON_DOWN_KEEP, ON_DOWN_SHUTDOWN };
enum check_step_kind { STEP_SEND, STEP_EXPECT, STEP_EXPECT_RE };

/* The keys a section gave. */
enum check_key_bit {
	CK_CHECK = 1 << 0,
	CK_STEPS = 1 << 1, /* check_send, check_expect */
	CK_HTTP = 1 << 2,
	CK_STATUS = 1 << 3,
	CK_PORT = 1 << 4,
	CK_TIMEOUT = 1 << 5,
	CK_ON_DOWN = 1 << 6,
	CK_SLOWSTART = 1 << 7,
};

struct check_step {
	enum check_step_kind kind;
	char *text;  /* bytes to send or to find, escapes decoded; an ERE as written */
	size_t len;  /* of text, which may hold NULs; a NUL follows it */
	regex_t *re; /* STEP_EXPECT_RE, compiled with REG_EXTENDED | REG_NEWLINE */
};

struct check_steps {
	size_t n, cap;
	struct check_step step[];
};

struct check_spec {
	unsigned given; /* CK_ bits: what this section wrote itself */
	enum check_kind kind;
	struct check_steps *steps; /* NULL when there are none */
	char *http_method;         /* check_http's METHOD and PATH, one allocation; NULL: GET / */
	char *http_path;
	uint16_t status[CHECK_STATUS_MAX][2]; /* inclusive ranges; none: 200-399 */
	uint8_t nstatus;
	uint16_t port;         /* 0: the backend's own */
	uint64_t timeout_ms;   /* 0: the default (see check_spec_timeout) */
	enum check_on_down on_down;
	uint64_t slowstart_ms; /* 0: off */
	int line_check, line_steps, line_http, line_status; /* where they were given */
};

/* Applies KEY = VALUE to s if KEY is a check key. Returns 0 when it is not
 * one, 1 when applied, -1 with "key: reason" in err. */
int check_spec_key(struct check_spec *s, const char *key, const char *value, int line, char *err);

/* Checks that what a section gave fits together (check_send only with
 * check = send-expect, and so on) once pool is merged in; with pool not
 * NULL, s (a backend's) takes pool's value for every key it did not give.
 * -1 with the reason in err and its line in *line (0 if none). */
int check_spec_finish(struct check_spec *s, const struct check_spec *pool, char *err, int *line);

/* Frees what s owns (what it gave), and zeroes it. */
void check_spec_free(struct check_spec *s);

/* 1 if a and b check alike (kind, steps, request, codes, port, timeout),
 * on_down and slowstart included. */
int check_spec_equal(const struct check_spec *a, const struct check_spec *b);

/* The timeout of one whole check: check_timeout, else connect_timeout but
 * no longer than check_interval. */
uint64_t check_spec_timeout(const struct check_spec *s, uint64_t connect_timeout_ms,
			    uint64_t interval_ms);

/* Whether an HTTP status code passes s's check_expect_status. */
int check_spec_status_ok(const struct check_spec *s, unsigned code);

/* --- the pieces, for tcppool and the tests ---------------------------- */

/* Decodes C escapes (\r \n \t \\ \xNN) in text into out (cap bytes, at
 * least strlen(text) + 1), NUL-terminated, its length in *len. */
int check_text_decode(const char *text, char *out, size_t cap, size_t *len, char *err);

/* The inverse, for messages and tcppool: len bytes of in as text with \r \n
 * \t \\ and \xNN for other control bytes and bytes past 0x7e that are not
 * UTF-8, NUL-terminated in out (cap bytes, at least 5); cut with "..." when
 * longer than max_in bytes of in or than out. Returns out. */
char *check_text_encode(char *out, size_t cap, const char *in, size_t len, size_t max_in);

/* "200", "200,204", "200-299,301": ranges of 100-599, at most
 * CHECK_STATUS_MAX. */
int check_status_parse(const char *text, uint16_t out[][2], uint8_t *n, char *err);

/* check_expect_status as written back: "200-299,301". */
void check_status_format(const struct check_spec *s, char *out, size_t cap);

const char *check_kind_name(enum check_kind k);
const char *check_on_down_name(enum check_on_down d);

#endif
