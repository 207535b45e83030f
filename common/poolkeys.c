/* The table of pool file keys (see poolkeys.h) and the nearest-key search
 * behind "did you mean weight?". */
#include <stdio.h>
#include <string.h>

#include "poolkeys.h"

#define PK_BOTH (PK_POOL | PK_BACKEND)

/* In the order of tcpdist.pool(5). */
const struct pool_key_def pool_keys[] = {
	{"listen", PK_POOL},
	{"balance", PK_POOL},
	{"hash_key", PK_POOL},
	{"hash_seed", PK_POOL},
	{"table_size", PK_POOL},
	{"zone_table_size", PK_POOL},
	{"connect_timeout", PK_POOL},
	{"idle_timeout", PK_POOL},
	{"retries", PK_POOL},
	{"max_conns", PK_BOTH},
	{"resolve_interval", PK_POOL},
	{"control", PK_POOL},
	{"instance", PK_POOL},
	/* health */
	{"check_interval", PK_POOL},
	{"check_rise", PK_POOL},
	{"check_fall", PK_POOL},
	{"check", PK_BOTH},
	{"check_send", PK_BOTH},
	{"check_expect", PK_BOTH},
	{"check_http", PK_BOTH},
	{"check_expect_status", PK_BOTH},
	{"check_port", PK_BOTH},
	{"check_timeout", PK_BOTH},
	{"on_down", PK_BOTH},
	{"slowstart", PK_BOTH},
	/* the client's identity */
	{"proxy_protocol", PK_BOTH},
	{"accept_proxy_from", PK_POOL},
	{"accept_proxy_timeout", PK_POOL},
	{"allow", PK_POOL},
	{"deny", PK_POOL},
	{"client_max_conns", PK_POOL},
	{"client_rate", PK_POOL},
	{"client_prefix6", PK_POOL},
	/* locality */
	{"locality", PK_POOL},
	{"locality_overprovision", PK_POOL},
	{"zone", PK_BACKEND},
	{"clients", PK_ZONE},
	/* backends */
	{"address", PK_BACKEND},
	{"weight", PK_BACKEND},
	{"state", PK_BACKEND},
	{"backup", PK_BACKEND},
	{NULL, 0},
};

const struct pool_key_def *pool_key_find(const char *name)
{
	for (const struct pool_key_def *k = pool_keys; k->name != NULL; k++)
		if (strcmp(k->name, name) == 0)
			return k;
	return NULL;
}

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Optimal string alignment distance, letters compared without case; keys
 * are short (longer names are never close, and are cut at 31). */
static size_t distance(const char *a, const char *b)
{
	enum { N = 32 };
	size_t d[N + 1][N + 1], m = strnlen(a, N), n = strnlen(b, N);

	for (size_t i = 0; i <= m; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= n; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= m; i++) {
		for (size_t j = 1; j <= n; j++) {
			size_t cost = lower(a[i - 1]) != lower(b[j - 1]), best = d[i - 1][j - 1] + cost;

			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
			    lower(a[i - 2]) == lower(b[j - 1]) && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[m][n];
}

const char *pool_key_nearest(const char *name, unsigned sections)
{
	const char *best = NULL;
	size_t best_d = (size_t)-1, len = strlen(name);
	/* A third of the letters may be wrong, at most 3: "wieght", "adress",
	 * "check_intervall", not "colour" for "control". */
	size_t limit = len < 3 ? 1 : len / 3 > 3 ? 3 : len / 3;

	for (const struct pool_key_def *k = pool_keys; k->name != NULL; k++) {
		size_t d;

		if (!(k->sections & sections))
			continue;
		d = distance(name, k->name);
		if (d < best_d)
			best = k->name, best_d = d;
	}
	return best_d <= limit ? best : NULL;
}

const char *pool_sections_text(unsigned sections, char *buf, size_t len)
{
	static const char *const one[] = {"the [pool] section", "a [backend NAME] section",
					  "a [zone NAME] section"};
	static const char *const bare[] = {"[pool]", "[backend NAME]", "[zone NAME]"};
	size_t at = 0;
	int n = 0, count = __builtin_popcount(sections & (PK_POOL | PK_BACKEND | PK_ZONE));

	buf[0] = '\0';
	for (int i = 0; i < 3; i++) {
		if (!(sections & (1u << i)))
			continue;
		if (count == 1)
			return snprintf(buf, len, "%s", one[i]), buf;
		at += (size_t)snprintf(buf + at, at < len ? len - at : 0, "%s%s",
				       n == 0 ? "" : n == count - 1 ? " or " : ", ", bare[i]);
		n++;
	}
	return buf;
}
