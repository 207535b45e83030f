#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "escape.h"
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
	/* Messages quote names from the network and text from files. */
	if (log_syslog) {
		escape_controls(line, sizeof(line), msg, NULL);
		syslog(priority[level], "%s", line);
		return;
	}
	n = (size_t)snprintf(line, sizeof(line) - 1, "%s: ", log_progname);
	n += escape_controls(line + n, sizeof(line) - 1 - n, msg, NULL);
	line[n++] = '\n';
	/* One write per line keeps lines from several threads whole. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}
