/* Range-checked number and duration parsing (glibc has no strtonum). */
#ifndef TCPDIST_NUM_H
#define TCPDIST_NUM_H

#include <stdint.h>

#include "err.h"

/* Parses a whole decimal integer in [min, max]. On failure returns -1 and
 * writes "invalid number 'x'" / "'x' is out of range (min-max)" into err. */
int num_parse(const char *s, long long min, long long max, long long *out, char *err);

/* Parses a duration: a whole number with an optional unit ms, s, m or h;
 * a bare number is seconds. The result is milliseconds in [min_ms, max_ms]. */
int duration_parse(const char *s, uint64_t min_ms, uint64_t max_ms, uint64_t *out_ms, char *err);

/* Formats milliseconds the way a person would write them: 1500ms, 3s, 2m, 1h. */
void duration_format(uint64_t ms, char *buf, unsigned long len);

#endif
