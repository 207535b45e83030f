/* The protocol of one health check, as a state machine with no socket in
 * it: health.c moves bytes between it and the backend, tests feed it bytes
 * directly (tests/unit/test_tcpdist_checkproto.c). */
#ifndef TCPDIST_CHECKPROTO_H
#define TCPDIST_CHECKPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "checkspec.h"

#define CHECK_REASON_LEN 160
#define CHECK_READ_MAX 16384       /* bytes kept for an expect: those since the last send */
#define CHECK_STATUS_LINE_MAX 1024 /* an HTTP status line longer than this is no status line */

/* How a check ended; check_result_name() gives the metrics' label. */
enum check_result {
	CHECK_NONE,            /* not ended (or none ran yet) */
	CHECK_PASSED,
	CHECK_REFUSED,         /* the connect was refused */
	CHECK_CONNECT_TIMEOUT, /* the connect did not complete in time */
	CHECK_CONNECT_ERROR,   /* the connect failed otherwise */
	CHECK_TIMEOUT,         /* connected, but nothing to judge came in time */
	CHECK_CLOSED,          /* the backend closed or reset before the answer */
	CHECK_MISMATCH,        /* an expect found no match */
	CHECK_STATUS,          /* an HTTP status not in check_expect_status */
	CHECK_PROTOCOL,        /* not an HTTP response */
	CHECK_ERROR,           /* on our side: out of memory, descriptors */
	CHECK_RESULTS
};

enum check_want { CHECK_WANT_SEND, CHECK_WANT_RECV, CHECK_WANT_NOTHING };

struct check_proto {
	const struct check_spec *spec;
	size_t step;         /* send-expect: the step under way */
	const char *out;     /* bytes still to send, outlen of them */
	size_t outlen;
	char *req;           /* http: the request */
	int req_sent;
	char *in;            /* received since the last send, CHECK_READ_MAX at most */
	size_t inlen;
	size_t scanned;      /* bytes of in that an expect of text searched already */
	enum check_result result;
	char reason[CHECK_REASON_LEN]; /* when result is not CHECK_PASSED */
};

/* Starts a check of kind send-expect or http; host is the Host header's
 * value (http). -1 when out of memory. */
int check_proto_begin(struct check_proto *cp, const struct check_spec *spec, const char *host);
enum check_want check_proto_want(const struct check_proto *cp);
/* CHECK_WANT_SEND: the bytes to send, then how many went. */
const char *check_proto_output(const struct check_proto *cp, size_t *len);
void check_proto_sent(struct check_proto *cp, size_t n);
/* CHECK_WANT_RECV: where to receive at most *room bytes (NULL when out of
 * memory: the check has ended), then how many came. */
char *check_proto_input(struct check_proto *cp, size_t *room);
void check_proto_received(struct check_proto *cp, size_t n);
/* The backend ended its side (reset: with an error) before the check did. */
void check_proto_closed(struct check_proto *cp, int reset);
/* check_timeout ran out (timeout_ms of it) before the check ended. */
void check_proto_timeout(struct check_proto *cp, uint64_t timeout_ms);
/* Frees what the check holds; result and reason stay. */
void check_proto_end(struct check_proto *cp);

const char *check_result_name(enum check_result r);

#endif
