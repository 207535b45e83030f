/* One health check's protocol. send-expect runs the steps in file order: a
 * send writes its bytes and forgets what came before it; an expect waits
 * until its text occurs (or its ERE matches) in what came since the last
 * send, which two expects in a row share. As in HAProxy's tcp-check, an
 * expect without a match waits for more until the backend closes, its
 * CHECK_READ_MAX bytes are full or check_timeout ends: an answer may come in
 * pieces. http sends one HTTP/1.1 request and judges the status line alone.
 * Whatever fails says why in words for the log: what was expected and what
 * came, as C-escaped text cut to a readable length. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkproto.h"
#include "num.h"

#define SHOWN_BYTES 64 /* of an answer, in a reason */

const char *check_result_name(enum check_result r)
{
	static const char *const names[] = {
		[CHECK_NONE] = "none",
		[CHECK_PASSED] = "passed",
		[CHECK_REFUSED] = "refused",
		[CHECK_CONNECT_TIMEOUT] = "connect_timeout",
		[CHECK_CONNECT_ERROR] = "connect_error",
		[CHECK_TIMEOUT] = "timeout",
		[CHECK_CLOSED] = "closed",
		[CHECK_MISMATCH] = "mismatch",
		[CHECK_STATUS] = "status",
		[CHECK_PROTOCOL] = "protocol",
		[CHECK_ERROR] = "error",
	};
	return r < CHECK_RESULTS ? names[r] : "none";
}

static void finish(struct check_proto *cp, enum check_result r, const char *fmt, ...)
	PRINTF_LIKE(3, 4);

static void finish(struct check_proto *cp, enum check_result r, const char *fmt, ...)
{
	va_list ap;

	cp->result = r;
	cp->outlen = 0;
	va_start(ap, fmt);
	vsnprintf(cp->reason, sizeof(cp->reason), fmt, ap);
	va_end(ap);
}

/* What came, for a reason: its first bytes, without the line end. */
static const char *shown_input(const struct check_proto *cp, char *buf, size_t cap)
{
	size_t n = cp->inlen;

	while (n > 0 && (cp->in[n - 1] == '\n' || cp->in[n - 1] == '\r'))
		n--;
	return check_text_encode(buf, cap, cp->in, n, SHOWN_BYTES);
}

/* What the expect under way looks for, quoted as written. */
static const char *shown_expect(const struct check_proto *cp, char *buf, size_t cap)
{
	const struct check_step *st = &cp->spec->steps->step[cp->step];
	char text[48];

	check_text_encode(text, sizeof(text), st->text, st->len, 32);
	snprintf(buf, cap, "%s%s", st->kind == STEP_EXPECT_RE ? "~" : "", text);
	return buf;
}

static int expect_matches(struct check_proto *cp, const struct check_step *st)
{
	if (st->kind == STEP_EXPECT_RE) {
		regmatch_t m = {0, (regoff_t)cp->inlen};

		return cp->inlen > 0 && regexec(st->re, cp->in, 1, &m, REG_STARTEND) == 0;
	}
	/* Only what came since the last search, and the text's length less one
	 * before it: a trickling peer costs no more than one that sends at once. */
	size_t from = cp->scanned >= st->len ? cp->scanned - st->len + 1 : 0;

	cp->scanned = cp->inlen;
	return cp->inlen >= from + st->len &&
	       memmem(cp->in + from, cp->inlen - from, st->text, st->len) != NULL;
}

/* The expect under way ends unmatched: nothing came (then the result is
 * none_came), or the wrong thing. */
static void step_expect_failed(struct check_proto *cp, enum check_result none_came,
			       const char *why)
{
	char want[64], got[SHOWN_BYTES * 4 + 8];

	shown_expect(cp, want, sizeof(want));
	if (cp->inlen == 0)
		finish(cp, none_came, "%s (expected '%s', got nothing)", why, want);
	else
		finish(cp, CHECK_MISMATCH, "expected '%s', got '%s' (%s)", want,
		       shown_input(cp, got, sizeof(got)), why);
}

/* HTTP/1.x NNN, at the start of the answer. */
static int status_code(const char *s, size_t n)
{
	if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' || s[8] != ' ')
		return -1;
	for (int i = 9; i < 12; i++)
		if (s[i] < '0' || s[i] > '9')
			return -1;
	if (n > 12 && s[12] != ' ' && s[12] != '\r' && s[12] != '\n')
		return -1;
	return (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
}

/* The status line is complete (or is all there will be): the verdict. */
static void http_judge(struct check_proto *cp, size_t linelen)
{
	char got[SHOWN_BYTES * 4 + 8];
	int code = status_code(cp->in, linelen);

	if (code < 0) {
		cp->inlen = linelen;
		finish(cp, CHECK_PROTOCOL, "not an HTTP response: got '%s'",
		       shown_input(cp, got, sizeof(got)));
	} else if (!check_spec_status_ok(cp->spec, (unsigned)code)) {
		finish(cp, CHECK_STATUS, "HTTP %d", code);
	} else {
		finish(cp, CHECK_PASSED, "HTTP %d", code);
	}
}

/* Runs the steps as far as the bytes at hand allow. */
static void advance(struct check_proto *cp)
{
	const struct check_steps *steps = cp->spec->steps;

	if (cp->result != CHECK_NONE || cp->outlen > 0)
		return;
	if (cp->spec->kind == CHECK_HTTP) {
		const char *nl = memchr(cp->in ? cp->in : "", '\n', cp->inlen);

		if (nl != NULL)
			http_judge(cp, (size_t)(nl - cp->in));
		else if (cp->inlen >= CHECK_STATUS_LINE_MAX)
			http_judge(cp, cp->inlen); /* too long for a status line */
		return;
	}
	while (steps && cp->step < steps->n) {
		const struct check_step *st = &steps->step[cp->step];

		if (st->kind == STEP_SEND) {
			cp->out = st->text;
			cp->outlen = st->len;
			cp->inlen = cp->scanned = 0;
			return;
		}
		if (!expect_matches(cp, st)) {
			if (cp->inlen == CHECK_READ_MAX) {
				char why[64];

				snprintf(why, sizeof(why), "%d bytes without a match", CHECK_READ_MAX);
				step_expect_failed(cp, CHECK_MISMATCH, why);
			}
			return;
		}
		cp->step++;
		cp->scanned = 0;
	}
	finish(cp, CHECK_PASSED, "%s", "");
}

int check_proto_begin(struct check_proto *cp, const struct check_spec *spec, const char *host)
{
	memset(cp, 0, sizeof(*cp));
	cp->spec = spec;
	if (spec->kind == CHECK_HTTP) {
		const char *m = spec->http_method ? spec->http_method : "GET";
		const char *path = spec->http_path ? spec->http_path : "/";
		int n = asprintf(&cp->req,
				 "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tcpdist-check/%s\r\n"
				 "Connection: close\r\n\r\n",
				 m, path, host, TCPDIST_VERSION);

		if (n < 0) {
			cp->req = NULL;
			finish(cp, CHECK_ERROR, "out of memory");
			return -1;
		}
		cp->out = cp->req;
		cp->outlen = (size_t)n;
		return 0;
	}
	advance(cp);
	return 0;
}

enum check_want check_proto_want(const struct check_proto *cp)
{
	if (cp->result != CHECK_NONE)
		return CHECK_WANT_NOTHING;
	return cp->outlen > 0 ? CHECK_WANT_SEND : CHECK_WANT_RECV;
}

const char *check_proto_output(const struct check_proto *cp, size_t *len)
{
	*len = cp->outlen;
	return cp->out;
}

void check_proto_sent(struct check_proto *cp, size_t n)
{
	if (n > cp->outlen)
		n = cp->outlen;
	cp->out += n;
	cp->outlen -= n;
	if (cp->outlen > 0)
		return;
	if (cp->spec->kind == CHECK_HTTP)
		cp->req_sent = 1;
	else
		cp->step++;
	advance(cp);
}

char *check_proto_input(struct check_proto *cp, size_t *room)
{
	if (cp->in == NULL && (cp->in = malloc(CHECK_READ_MAX)) == NULL) {
		finish(cp, CHECK_ERROR, "out of memory");
		*room = 0;
		return NULL;
	}
	*room = CHECK_READ_MAX - cp->inlen;
	return cp->in + cp->inlen;
}

void check_proto_received(struct check_proto *cp, size_t n)
{
	cp->inlen += n;
	advance(cp);
}

void check_proto_closed(struct check_proto *cp, int reset)
{
	const char *how = reset ? "connection reset" : "connection closed";
	char got[SHOWN_BYTES * 4 + 8];

	if (cp->result != CHECK_NONE)
		return;
	if (cp->outlen > 0) {
		finish(cp, CHECK_CLOSED, "%s while sending", how);
	} else if (cp->spec->kind == CHECK_HTTP) {
		if (cp->inlen > 0 && status_code(cp->in, cp->inlen) >= 0)
			http_judge(cp, cp->inlen); /* a status line without its line end */
		else if (cp->inlen > 0)
			finish(cp, CHECK_CLOSED, "%s in the status line: got '%s'", how,
			       shown_input(cp, got, sizeof(got)));
		else
			finish(cp, CHECK_CLOSED, "%s before an answer", how);
	} else {
		step_expect_failed(cp, CHECK_CLOSED, how);
	}
}

void check_proto_timeout(struct check_proto *cp, uint64_t timeout_ms)
{
	char after[48], got[SHOWN_BYTES * 4 + 8], d[24];

	if (cp->result != CHECK_NONE)
		return;
	duration_format(timeout_ms, d, sizeof(d));
	snprintf(after, sizeof(after), "timeout after %s", d);
	if (cp->outlen > 0)
		finish(cp, CHECK_TIMEOUT, "%s while sending", after);
	else if (cp->spec->kind == CHECK_HTTP && cp->inlen > 0)
		finish(cp, CHECK_TIMEOUT, "%s in the status line: got '%s'", after,
		       shown_input(cp, got, sizeof(got)));
	else if (cp->spec->kind == CHECK_HTTP)
		finish(cp, CHECK_TIMEOUT, "%s (no answer to %s %s)", after,
		       cp->spec->http_method ? cp->spec->http_method : "GET",
		       cp->spec->http_path ? cp->spec->http_path : "/");
	else
		step_expect_failed(cp, CHECK_TIMEOUT, after);
}

void check_proto_end(struct check_proto *cp)
{
	free(cp->req);
	free(cp->in);
	cp->req = cp->in = NULL;
	cp->out = NULL;
	cp->outlen = cp->inlen = 0;
}
