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

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const int priority[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	char line[1024];
	va_list ap;
	int n, m;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	if (log_syslog) {
		vsnprintf(line, sizeof(line), fmt, ap);
		syslog(priority[level], "%s", line);
		va_end(ap);
		return;
	}
	n = snprintf(line, sizeof(line), "%s: ", log_progname);
	m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	n += (size_t)m < sizeof(line) - n - 1 ? m : (int)(sizeof(line) - n - 2);
	line[n++] = '\n';
	/* One write per line keeps lines from several threads whole. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}
