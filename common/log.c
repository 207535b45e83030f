#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

static const char *log_progname = "tcpdist";
static int log_syslog;
static enum log_level log_max = LOG_LEVEL_INFO;

void log_init(const char *progname, int use_syslog, enum log_level max_level)
{
	log_progname = progname;
	log_syslog = use_syslog;
	log_max = max_level;
	if (use_syslog)
		openlog(progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

int log_enabled(enum log_level level)
{
	return level <= log_max;
}

/* Control bytes become \xNN: messages quote names and text that came from
 * the network or from files, and one message must stay one line that cannot
 * drive a terminal. Returns the length written, always NUL-terminated. */
static size_t copy_escaped(char *out, size_t outlen, const char *in)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (const unsigned char *c = (const unsigned char *)in; *c && o + 1 < outlen; c++) {
		if (*c >= 0x20 && *c != 0x7f) {
			out[o++] = (char)*c;
		} else if (o + 5 < outlen) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[*c >> 4];
			out[o++] = hex[*c & 15];
		} else {
			break;
		}
	}
	out[o] = '\0';
	return o;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const int priority[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	char msg[1024], line[1024];
	va_list ap;
	size_t n;
	int rc;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	rc = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (rc < 0)
		return;
	if (log_syslog) {
		copy_escaped(line, sizeof(line), msg);
		syslog(priority[level], "%s", line);
		return;
	}
	n = (size_t)snprintf(line, sizeof(line) - 1, "%s: ", log_progname);
	n += copy_escaped(line + n, sizeof(line) - 1 - n, msg);
	line[n++] = '\n';
	/* One write per line keeps lines from several threads whole. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}
