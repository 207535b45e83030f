/* One formatter for every line a tool logs: plain text ("tool: message"),
 * logfmt or JSON, the same call sites for all three, so the formats cannot
 * drift apart. Events (log_event) carry fields: key=value in text and logfmt,
 * members in JSON. Lines to a plain stream start with an RFC 3339 time in
 * UTC with milliseconds; syslog and the journal stamp their own. Each line
 * is one write(2), so lines from several threads stay whole. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "escape.h"
#include "log.h"

#define LOG_LINE_MAX 2048

/* Process-wide, like openlog(3)'s: set once by main before any thread. */
static struct {
	const char *progname;
	int use_syslog;
	int timestamps;
	enum log_level max;
	enum log_format format;
} logger = {"tcpdist", 0, 0, LOG_LEVEL_INFO, LOG_FORMAT_TEXT};

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_init(const char *progname, int use_syslog, enum log_level max_level)
{
	logger.progname = progname;
	logger.use_syslog = use_syslog;
	logger.max = max_level;
	if (use_syslog)
		openlog(progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

/* systemd's journal says so in $JOURNAL_STREAM: the device and inode of the
 * stream it gave us, which must still be our stderr. */
static int stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	return js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
	       (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_setup(enum log_format format, int timestamps)
{
	logger.format = format;
	logger.timestamps = timestamps && !logger.use_syslog && !stderr_is_journal();
}

int log_format_parse(const char *s, enum log_format *out)
{
	static const char *const names[] = {"text", "logfmt", "json"};

	for (int i = 0; i < 3; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (enum log_format)i;
			return 0;
		}
	return -1;
}

int log_enabled(enum log_level level)
{
	return level <= logger.max;
}

/* A line being built, cut (never overrun) at its end. */
struct line {
	char buf[LOG_LINE_MAX];
	size_t n;
};

static void put(struct line *l, const char *s, size_t len)
{
	if (len > sizeof(l->buf) - 2 - l->n)
		len = sizeof(l->buf) - 2 - l->n; /* room kept for the newline */
	memcpy(l->buf + l->n, s, len);
	l->n += len;
}

static void puts_(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

static void PRINTF_LIKE(2, 3) putf(struct line *l, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		put(l, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Text: control bytes as \xNN, the rest as it is (one message, one line). */
static void put_text(struct line *l, const char *s)
{
	char esc[256];
	const char *rest = s;

	while (*rest) {
		size_t n = escape_controls(esc, sizeof(esc), rest, &rest);

		put(l, esc, n);
	}
}

/* A quoted string: JSON's escapes, which logfmt readers take too. Bytes
 * that are not UTF-8 become U+FFFD, so a JSON line stays valid. */
static void put_quoted(struct line *l, const char *s)
{
	put(l, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		size_t clen = utf8_char_len(p);

		if (*p == '"' || *p == '\\') {
			char e[2] = {'\\', (char)*p};

			put(l, e, 2);
			p++;
		} else if (*p < 0x20 || *p == 0x7f) {
			putf(l, "\\u%04x", *p);
			p++;
		} else if (clen == 0) {
			puts_(l, "\xef\xbf\xbd");
			p++;
		} else {
			put(l, (const char *)p, clen);
			p += clen;
		}
	}
	put(l, "\"", 1);
}

/* logfmt leaves a value bare when nothing in it needs quoting. */
static int bare(const char *s)
{
	if (*s == '\0')
		return 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == '=' || *p == '"' || *p == '\\' || *p == 0x7f || *p >= 0x80)
			return 0;
	return 1;
}

static void put_value(struct line *l, const struct log_field *f)
{
	switch (f->kind) {
	case LOG_FIELD_STR:
		if (logger.format == LOG_FORMAT_JSON || !bare(f->str))
			put_quoted(l, f->str);
		else
			puts_(l, f->str);
		break;
	case LOG_FIELD_UINT:
		putf(l, "%llu", f->u);
		break;
	case LOG_FIELD_SECONDS:
		putf(l, "%.3f", f->secs < 0 ? 0.0 : f->secs);
		break;
	}
}

static void put_time(struct line *l)
{
	struct timespec ts;
	struct tm tm;
	char t[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
	putf(l, "%s.%03ldZ", t, ts.tv_nsec / 1000000);
}

static void emit(enum log_level level, const char *msg, const struct log_field *fields,
		 size_t nfields)
{
	static const int priority[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	struct line l = {.n = 0};

	switch (logger.format) {
	case LOG_FORMAT_TEXT:
		if (logger.timestamps) {
			put_time(&l);
			put(&l, " ", 1);
		}
		if (!logger.use_syslog)
			putf(&l, "%s: ", logger.progname);
		put_text(&l, msg);
		for (size_t i = 0; i < nfields; i++) {
			putf(&l, " %s=", fields[i].key);
			put_value(&l, &fields[i]);
		}
		break;
	case LOG_FORMAT_LOGFMT:
		if (logger.timestamps) {
			puts_(&l, "time=");
			put_time(&l);
			put(&l, " ", 1);
		}
		putf(&l, "level=%s msg=", level_names[level]);
		if (bare(msg))
			puts_(&l, msg);
		else
			put_quoted(&l, msg);
		for (size_t i = 0; i < nfields; i++) {
			putf(&l, " %s=", fields[i].key);
			put_value(&l, &fields[i]);
		}
		break;
	case LOG_FORMAT_JSON:
		put(&l, "{", 1);
		if (logger.timestamps) {
			puts_(&l, "\"time\":\"");
			put_time(&l);
			puts_(&l, "\",");
		}
		putf(&l, "\"level\":\"%s\",\"msg\":", level_names[level]);
		put_quoted(&l, msg);
		for (size_t i = 0; i < nfields; i++) {
			putf(&l, ",\"%s\":", fields[i].key);
			put_value(&l, &fields[i]);
		}
		put(&l, "}", 1);
		break;
	}
	if (logger.use_syslog) {
		l.buf[l.n] = '\0';
		syslog(priority[level], "%s", l.buf);
		return;
	}
	l.buf[l.n++] = '\n';
	if (write(STDERR_FILENO, l.buf, l.n) < 0)
		return;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int rc;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	rc = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (rc < 0)
		return;
	if ((size_t)rc >= sizeof(msg))
		utf8_drop_partial(msg);
	emit(level, msg, NULL, 0);
}

void log_event(enum log_level level, const char *msg, const struct log_field *fields,
	       size_t nfields)
{
	if (log_enabled(level))
		emit(level, msg, fields, nfields);
}
