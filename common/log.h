/* Logging for the tools' main programs (never called from library code).
 * Lines go to stderr or to syslog as plain text ("tool: message"), logfmt
 * or JSON, one formatter for all (log.c). Thread-safe: each line is written
 * with one write(2). */
#ifndef TCPDIST_LOG_H
#define TCPDIST_LOG_H

#include <stddef.h>

#include "err.h"

enum log_level { LOG_LEVEL_ERR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_LOGFMT, LOG_FORMAT_JSON };

void log_init(const char *progname, int use_syslog, enum log_level max_level);
/* The format, and whether lines to a plain stream carry their time (never
 * to syslog or to systemd's journal, which stamp their own). */
void log_setup(enum log_format format, int timestamps);
/* "text", "logfmt" or "json"; -1 for anything else. */
int log_format_parse(const char *s, enum log_format *out);
int log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) PRINTF_LIKE(2, 3);

/* An event with fields: "msg key=value..." in text and logfmt, members of
 * the object in JSON. Keys are fixed words that no other key contains. */
enum log_field_kind { LOG_FIELD_STR, LOG_FIELD_UINT, LOG_FIELD_SECONDS };
struct log_field {
	const char *key;
	enum log_field_kind kind;
	const char *str;
	unsigned long long u;
	double secs; /* written as seconds with milliseconds, a bare number */
};
#define LOG_STR(k, v) {(k), LOG_FIELD_STR, (v), 0, 0}
#define LOG_UINT(k, v) {(k), LOG_FIELD_UINT, NULL, (v), 0}
#define LOG_SECONDS(k, v) {(k), LOG_FIELD_SECONDS, NULL, 0, (v)}
void log_event(enum log_level level, const char *msg, const struct log_field *fields,
	       size_t nfields);

#define log_err(...) log_msg(LOG_LEVEL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_enabled(LOG_LEVEL_DEBUG))                                                  \
			log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__);                                     \
	} while (0)

#endif
