#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "num.h"

int num_parse(const char *s, long long min, long long max, long long *out, char *err)
{
	char *end;
	long long v;

	/* strtoll accepts leading blanks and signs we do not want. */
	if (s == NULL || *s == '\0' || !(isdigit((unsigned char)*s) || (*s == '-' && min < 0)))
		return err_set(err, "invalid number '%s'", s ? s : "");
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0')
		return err_set(err, "invalid number '%s'", s);
	if (errno == ERANGE || v < min || v > max)
		return err_set(err, "%s is out of range (%lld-%lld)", s, min, max);
	*out = v;
	return 0;
}

static const struct duration_unit {
	const char *suffix;
	uint64_t ms;
} duration_units[] = {
	{"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}, {"", 1000},
};

int duration_parse(const char *s, uint64_t min_ms, uint64_t max_ms, uint64_t *out_ms, char *err)
{
	const char *p = s;
	uint64_t v = 0;
	size_t i;

	if (s == NULL || !isdigit((unsigned char)*s))
		return err_set(err, "invalid duration '%s' (use a number with ms, s, m or h)",
			       s ? s : "");
	while (isdigit((unsigned char)*p)) {
		if (v > (UINT64_MAX - 9) / 10)
			return err_set(err, "duration '%s' is too large", s);
		v = v * 10 + (uint64_t)(*p++ - '0');
	}
	for (i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++)
		if (strcmp(p, duration_units[i].suffix) == 0)
			break;
	if (i == sizeof(duration_units) / sizeof(duration_units[0]))
		return err_set(err, "invalid duration '%s' (use a number with ms, s, m or h)", s);
	if (v > UINT64_MAX / duration_units[i].ms)
		return err_set(err, "duration '%s' is too large", s);
	v *= duration_units[i].ms;
	if (v < min_ms || v > max_ms) {
		char lo[32], hi[32];

		duration_format(min_ms, lo, sizeof(lo));
		duration_format(max_ms, hi, sizeof(hi));
		return err_set(err, "%s is out of range (%s-%s)", s, lo, hi);
	}
	*out_ms = v;
	return 0;
}

void duration_format(uint64_t ms, char *buf, unsigned long len)
{
	if (ms != 0 && ms % (60 * 60 * 1000) == 0)
		snprintf(buf, len, "%lluh", (unsigned long long)(ms / (60 * 60 * 1000)));
	else if (ms != 0 && ms % (60 * 1000) == 0)
		snprintf(buf, len, "%llum", (unsigned long long)(ms / (60 * 1000)));
	else if (ms % 1000 == 0)
		snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, len, "%llums", (unsigned long long)ms);
}
