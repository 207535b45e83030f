/* The check keys of a pool file: parsed once here, for every tool. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkspec.h"
#include "escape.h"
#include "num.h"

#define CHECK_TIMEOUT_MAX 3600000

static const char *const kind_names[] = {"connect", "send-expect", "http", NULL};
static const char *const on_down_names[] = {"keep", "shutdown", NULL};

const char *check_kind_name(enum check_kind k)
{
	return kind_names[k];
}

const char *check_on_down_name(enum check_on_down d)
{
	return on_down_names[d];
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes the escapes; with ere, only those POSIX regular expressions lack
 * (\r \n \t \xNN), every other backslash staying for regcomp. */
static int text_decode(const char *text, int ere, char *out, size_t cap, size_t *len, char *err)
{
	size_t n = 0;

	for (const char *s = text; *s != '\0'; s++) {
		char c = *s;

		if (n + 1 + (c == '\\' && ere) >= cap)
			return err_set(err, "longer than %zu bytes", cap - 1);
		if (c != '\\') {
			out[n++] = c;
			continue;
		}
		if (ere && s[1] != 'r' && s[1] != 'n' && s[1] != 't' && s[1] != 'x') {
			out[n++] = c;
			if (s[1] != '\0')
				out[n++] = *++s;
			continue;
		}
		switch (*++s) {
		case 'r':
			c = '\r';
			break;
		case 'n':
			c = '\n';
			break;
		case 't':
			c = '\t';
			break;
		case '\\':
			c = '\\';
			break;
		case 'x':
			if (hex_digit(s[1]) < 0 || hex_digit(s[2]) < 0)
				return err_set(err, "\\x needs two hexadecimal digits");
			c = (char)(hex_digit(s[1]) << 4 | hex_digit(s[2]));
			s += 2;
			break;
		case '\0':
			return err_set(err, "a lone '\\' at the end (write \\\\ for one)");
		default:
			if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
				return err_set(err, "unknown escape (use \\r \\n \\t \\\\ \\xNN)");
			return err_set(err, "unknown escape '\\%c' (use \\r \\n \\t \\\\ \\xNN)", *s);
		}
		out[n++] = c;
	}
	out[n] = '\0';
	*len = n;
	return 0;
}

int check_text_decode(const char *text, char *out, size_t cap, size_t *len, char *err)
{
	return text_decode(text, 0, out, cap, len, err);
}

char *check_text_encode(char *out, size_t cap, const char *in, size_t len, size_t max_in)
{
	size_t o = 0, i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)in[i];
		char piece[8];
		size_t k = 1, plen;

		if (c == '\r' || c == '\n' || c == '\t' || c == '\\') {
			piece[0] = '\\';
			piece[1] = c == '\r' ? 'r' : c == '\n' ? 'n' : c == '\t' ? 't' : '\\';
			plen = 2;
		} else if (c >= 0x80 && (k = utf8_char_len((const unsigned char *)in + i)) != 0 &&
			   i + k <= len) {
			memcpy(piece, in + i, k);
			plen = k;
		} else if (c < 0x20 || c >= 0x7f) {
			snprintf(piece, sizeof(piece), "\\x%02x", c);
			plen = 4, k = 1;
		} else {
			piece[0] = (char)c;
			plen = 1;
		}
		if (i >= max_in || o + plen + 4 > cap) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(out + o, piece, plen);
		o += plen;
		i += k;
	}
	out[o] = '\0';
	return out;
}

/* A status code of three digits at *s, moved past it; -1 if none. */
static long status_code_at(const char **s)
{
	const char *p = *s;

	if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9' || p[2] < '0' || p[2] > '9' ||
	    (p[3] >= '0' && p[3] <= '9'))
		return -1;
	*s = p + 3;
	return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

int check_status_parse(const char *text, uint16_t out[][2], uint8_t *n, char *err)
{
	const char *s = text;
	char clip[TEXT_CLIP_LEN];

	*n = 0;
	for (;;) {
		long lo, hi;

		while (*s == ' ' || *s == '\t')
			s++;
		if ((lo = hi = status_code_at(&s)) < 0 ||
		    (*s == '-' && (++s, hi = status_code_at(&s)) < 0) ||
		    (*s != '\0' && *s != ',' && *s != ' ' && *s != '\t'))
			return err_set(err, "'%s': expected a status code, a range such as 200-299, "
					    "or a list of them such as 200,204",
				       text_clip(clip, text));
		if (lo < 100 || lo > 599 || hi < 100 || hi > 599)
			return err_set(err, "status codes are 100-599");
		if (hi < lo)
			return err_set(err, "range %ld-%ld runs backwards", lo, hi);
		if (*n == CHECK_STATUS_MAX)
			return err_set(err, "at most %d codes or ranges", CHECK_STATUS_MAX);
		out[*n][0] = (uint16_t)lo;
		out[*n][1] = (uint16_t)hi;
		(*n)++;
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			return 0;
		if (*s != ',')
			return err_set(err, "expected ',' between codes");
		s++;
	}
}

void check_status_format(const struct check_spec *s, char *out, size_t cap)
{
	size_t o = 0;

	out[0] = '\0';
	if (s->nstatus == 0) {
		snprintf(out, cap, "200-399");
		return;
	}
	for (unsigned i = 0; i < s->nstatus && o < cap; i++) {
		int w = s->status[i][0] == s->status[i][1]
				? snprintf(out + o, cap - o, "%s%u", i ? "," : "", s->status[i][0])
				: snprintf(out + o, cap - o, "%s%u-%u", i ? "," : "", s->status[i][0],
					   s->status[i][1]);
		o += (size_t)w;
	}
}

int check_spec_status_ok(const struct check_spec *s, unsigned code)
{
	if (s->nstatus == 0)
		return code >= 200 && code <= 399;
	for (unsigned i = 0; i < s->nstatus; i++)
		if (code >= s->status[i][0] && code <= s->status[i][1])
			return 1;
	return 0;
}

/* RFC 9110 token characters. */
static int tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* "METHOD PATH", one blank run between. */
static int http_parse(struct check_spec *s, const char *value, char *err)
{
	const char *m = value, *p;
	size_t mlen = 0, plen;
	char *buf;

	while (tchar(m[mlen]))
		mlen++;
	if (mlen == 0 || (m[mlen] != ' ' && m[mlen] != '\t'))
		return err_set(err, "check_http: expected METHOD PATH, such as 'GET /health'");
	if (mlen > CHECK_METHOD_MAX)
		return err_set(err, "check_http: the method is longer than %d bytes",
			       CHECK_METHOD_MAX);
	for (p = m + mlen; *p == ' ' || *p == '\t'; p++)
		;
	if (*p != '/' && strcmp(p, "*") != 0)
		return err_set(err, "check_http: the path starts with '/' (or is '*')");
	plen = strlen(p);
	for (size_t i = 0; i < plen; i++)
		if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
			return err_set(err, "check_http: the path holds a blank or a byte that "
					    "is not printable ASCII (write it %%-encoded)");
	if ((buf = malloc(mlen + 1 + plen + 1)) == NULL)
		return err_set(err, "out of memory");
	memcpy(buf, m, mlen);
	buf[mlen] = '\0';
	memcpy(buf + mlen + 1, p, plen + 1);
	s->http_method = buf;
	s->http_path = buf + mlen + 1;
	return 0;
}

static int step_add(struct check_spec *s, enum check_step_kind kind, const char *key,
		    const char *value, int line, char *err)
{
	struct check_steps *st = (s->given & CK_STEPS) ? s->steps : NULL;
	struct check_step *step;
	char buf[CHECK_TEXT_MAX + 1], e[ERR_LEN];
	size_t len;

	if (kind == STEP_EXPECT && value[0] == '~') {
		kind = STEP_EXPECT_RE;
		if (value[1] == '\0')
			return err_set(err, "%s: '~' needs a regular expression after it", key);
		if (text_decode(value + 1, 1, buf, sizeof(buf), &len, e) < 0)
			return err_set(err, "%s: %s", key, e);
		if (memchr(buf, '\0', len) != NULL)
			return err_set(err, "%s: \\x00 in a regular expression", key);
	} else if (check_text_decode(value, buf, sizeof(buf), &len, e) < 0) {
		return err_set(err, "%s: %s", key, e);
	} else if (len == 0) {
		return err_set(err, "%s: empty", key);
	}
	if (st && st->n == CHECK_STEPS_MAX)
		return err_set(err, "%s: too many check_send and check_expect lines (at most %d)",
			       key, CHECK_STEPS_MAX);
	if (st == NULL || st->n == st->cap) {
		size_t cap = st ? st->cap * 2 : 4;
		struct check_steps *grown = realloc(st, sizeof(*st) + cap * sizeof(st->step[0]));

		if (grown == NULL)
			return err_set(err, "out of memory");
		if (st == NULL)
			grown->n = 0;
		grown->cap = cap;
		st = grown;
		s->steps = st;
		if (!(s->given & CK_STEPS)) {
			s->given |= CK_STEPS;
			s->line_steps = line;
		}
	}
	step = &st->step[st->n];
	memset(step, 0, sizeof(*step));
	step->kind = kind;
	step->len = len;
	if ((step->text = malloc(len + 1)) == NULL)
		return err_set(err, "out of memory");
	memcpy(step->text, buf, len + 1);
	if (kind == STEP_EXPECT_RE) {
		int rc;

		step->re = malloc(sizeof(*step->re));
		if (step->re == NULL) {
			free(step->text);
			return err_set(err, "out of memory");
		}
		rc = regcomp(step->re, step->text, REG_EXTENDED | REG_NEWLINE | REG_NOSUB);
		if (rc != 0) {
			char why[128];

			regerror(rc, step->re, why, sizeof(why));
			free(step->re);
			free(step->text);
			return err_set(err, "%s: invalid regular expression: %s", key, why);
		}
	}
	st->n++;
	return 0;
}

/* A key that may be given once per section. */
static int once(struct check_spec *s, unsigned bit, const char *key, char *err)
{
	if (s->given & bit)
		return err_set(err, "%s: given twice in this section", key);
	return 0;
}

static int word(const char *key, const char *value, const char *const *words,
		const char *expected, char *err)
{
	char clip[TEXT_CLIP_LEN];

	for (int i = 0; words[i] != NULL; i++)
		if (strcmp(value, words[i]) == 0)
			return i;
	return err_set(err, "%s: unknown value '%s' (expected %s)", key, text_clip(clip, value),
		       expected);
}

int check_spec_key(struct check_spec *s, const char *key, const char *value, int line, char *err)
{
	char e[ERR_LEN];
	long long n;
	int v;

	if (strcmp(key, "check") == 0) {
		if (once(s, CK_CHECK, key, err) < 0 ||
		    (v = word(key, value, kind_names, "connect, send-expect or http", err)) < 0)
			return -1;
		s->kind = (enum check_kind)v;
		s->line_check = line;
		s->given |= CK_CHECK;
	} else if (strcmp(key, "check_send") == 0 || strcmp(key, "check_expect") == 0) {
		if (step_add(s, key[6] == 's' ? STEP_SEND : STEP_EXPECT, key, value, line, err) < 0)
			return -1;
	} else if (strcmp(key, "check_http") == 0) {
		if (once(s, CK_HTTP, key, err) < 0 || http_parse(s, value, err) < 0)
			return -1;
		s->line_http = line;
		s->given |= CK_HTTP;
	} else if (strcmp(key, "check_expect_status") == 0) {
		if (once(s, CK_STATUS, key, err) < 0)
			return -1;
		if (check_status_parse(value, s->status, &s->nstatus, e) < 0)
			return err_set(err, "%s: %s", key, e);
		s->line_status = line;
		s->given |= CK_STATUS;
	} else if (strcmp(key, "check_port") == 0) {
		if (once(s, CK_PORT, key, err) < 0)
			return -1;
		if (num_parse(value, 1, 65535, &n, e) < 0)
			return err_set(err, "%s: %s", key, e);
		s->port = (uint16_t)n;
		s->given |= CK_PORT;
	} else if (strcmp(key, "check_timeout") == 0) {
		if (once(s, CK_TIMEOUT, key, err) < 0)
			return -1;
		if (duration_parse(value, 1, CHECK_TIMEOUT_MAX, &s->timeout_ms, e) < 0)
			return err_set(err, "%s: %s", key, e);
		s->given |= CK_TIMEOUT;
	} else if (strcmp(key, "on_down") == 0) {
		if (once(s, CK_ON_DOWN, key, err) < 0 ||
		    (v = word(key, value, on_down_names, "keep or shutdown", err)) < 0)
			return -1;
		s->on_down = (enum check_on_down)v;
		s->given |= CK_ON_DOWN;
	} else if (strcmp(key, "slowstart") == 0) {
		if (once(s, CK_SLOWSTART, key, err) < 0)
			return -1;
		if (duration_parse(value, 0, CHECK_SLOWSTART_MAX, &s->slowstart_ms, e) < 0)
			return err_set(err, "%s: %s", key, e);
		s->given |= CK_SLOWSTART;
	} else {
		return 0;
	}
	return 1;
}

static const char *steps_key(const struct check_spec *s)
{
	return s->steps && s->steps->n && s->steps->step[0].kind == STEP_SEND ? "check_send"
									       : "check_expect";
}

int check_spec_finish(struct check_spec *s, const struct check_spec *pool, char *err, int *line)
{
	enum check_kind kind = s->kind;

	*line = 0;
	if (pool != NULL) {
		unsigned missing = ~s->given;

		if (missing & CK_CHECK)
			kind = s->kind = pool->kind;
		if (missing & CK_STEPS)
			s->steps = pool->steps;
		if (missing & CK_HTTP) {
			s->http_method = pool->http_method;
			s->http_path = pool->http_path;
		}
		if (missing & CK_STATUS) {
			memcpy(s->status, pool->status, sizeof(s->status));
			s->nstatus = pool->nstatus;
		}
		if (missing & CK_PORT)
			s->port = pool->port;
		if (missing & CK_TIMEOUT)
			s->timeout_ms = pool->timeout_ms;
		if (missing & CK_ON_DOWN)
			s->on_down = pool->on_down;
		if (missing & CK_SLOWSTART)
			s->slowstart_ms = pool->slowstart_ms;
	}
	if ((s->given & CK_STEPS) && kind != CHECK_SEND_EXPECT) {
		*line = s->line_steps;
		return err_set(err, "%s: needs check = send-expect (check is %s)", steps_key(s),
			       check_kind_name(kind));
	}
	if ((s->given & CK_HTTP) && kind != CHECK_HTTP) {
		*line = s->line_http;
		return err_set(err, "check_http: needs check = http (check is %s)",
			       check_kind_name(kind));
	}
	if ((s->given & CK_STATUS) && kind != CHECK_HTTP) {
		*line = s->line_status;
		return err_set(err, "check_expect_status: needs check = http (check is %s)",
			       check_kind_name(kind));
	}
	if (kind == CHECK_SEND_EXPECT && (s->steps == NULL || s->steps->n == 0) &&
	    (s->given & CK_CHECK)) {
		*line = s->line_check;
		return err_set(err, "check: send-expect needs check_send or check_expect lines");
	}
	return 0;
}

void check_spec_free(struct check_spec *s)
{
	if ((s->given & CK_STEPS) && s->steps) {
		for (size_t i = 0; i < s->steps->n; i++) {
			struct check_step *st = &s->steps->step[i];

			if (st->re) {
				regfree(st->re);
				free(st->re);
			}
			free(st->text);
		}
		free(s->steps);
	}
	if (s->given & CK_HTTP)
		free(s->http_method);
	memset(s, 0, sizeof(*s));
}

static int steps_equal(const struct check_steps *a, const struct check_steps *b)
{
	size_t na = a ? a->n : 0, nb = b ? b->n : 0;

	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++) {
		const struct check_step *x = &a->step[i], *y = &b->step[i];

		if (x->kind != y->kind || x->len != y->len || memcmp(x->text, y->text, x->len) != 0)
			return 0;
	}
	return 1;
}

static int str_equal(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

int check_spec_equal(const struct check_spec *a, const struct check_spec *b)
{
	return a->kind == b->kind && steps_equal(a->steps, b->steps) &&
	       str_equal(a->http_method, b->http_method) && str_equal(a->http_path, b->http_path) &&
	       a->nstatus == b->nstatus &&
	       memcmp(a->status, b->status, a->nstatus * sizeof(a->status[0])) == 0 &&
	       a->port == b->port && a->timeout_ms == b->timeout_ms && a->on_down == b->on_down &&
	       a->slowstart_ms == b->slowstart_ms;
}

uint64_t check_spec_timeout(const struct check_spec *s, uint64_t connect_timeout_ms,
			    uint64_t interval_ms)
{
	if (s->timeout_ms)
		return s->timeout_ms;
	return interval_ms && interval_ms < connect_timeout_ms ? interval_ms : connect_timeout_ms;
}
