/* Error-buffer convention: library code never prints or exits.  A function
 * that can fail returns -1 (or NULL) and writes one lowercase line, without
 * a trailing full stop, into a caller-supplied buffer of ERR_LEN bytes. */
#ifndef TCPDIST_ERR_H
#define TCPDIST_ERR_H

#define ERR_LEN 256

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

/* Formats into err (ERR_LEN bytes) when err is not NULL; returns -1 so a
 * failing path can end with "return err_set(err, ...)". */
int err_set(char *err, const char *fmt, ...) PRINTF_LIKE(2, 3);

#endif
