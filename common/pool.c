/* Pool file loader. inih splits lines into sections and KEY = VALUE pairs;
 * the line reader in front of it counts lines, rejects what inih would cut
 * or misread (over-long lines, control bytes, continuation lines), and
 * notices section headers so that empty and duplicate sections are seen. */
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "escape.h"
#include "num.h"
#include "pool.h"
#include "poolkeys.h"

enum section { SECTION_NONE, SECTION_POOL, SECTION_BACKEND, SECTION_ZONE, SECTION_IGNORED };

/* Keys that may appear once per section, as bits for duplicate detection. */
enum pool_key_bit {
	KEY_BALANCE = 1 << 0,
	KEY_HASH_KEY = 1 << 1,
	KEY_CONNECT_TIMEOUT = 1 << 2,
	KEY_IDLE_TIMEOUT = 1 << 3,
	KEY_RETRIES = 1 << 4,
	KEY_CHECK_INTERVAL = 1 << 5,
	KEY_CHECK_RISE = 1 << 6,
	KEY_CHECK_FALL = 1 << 7,
	KEY_MAX_CONNS = 1 << 8,
	KEY_ADDRESS = 1 << 9,
	KEY_WEIGHT = 1 << 10,
	KEY_STATE = 1 << 11,
	KEY_HASH_SEED = 1 << 12,
	KEY_TABLE_SIZE = 1 << 13,
	KEY_RESOLVE_INTERVAL = 1 << 14,
	/* The client's identity, counted down from the top. */
	KEY_PROXY_PROTOCOL = 1 << 30,
	KEY_ACCEPT_PROXY_TIMEOUT = 1 << 29,
	KEY_CLIENT_MAX_CONNS = 1 << 28,
	KEY_CLIENT_RATE = 1 << 27,
	KEY_CLIENT_PREFIX6 = 1 << 26,
	KEY_CONTROL = 1 << 16,
	KEY_INSTANCE = 1 << 17,
	KEY_BACKUP = 1 << 15,
	/* Locality. */
	KEY_LOCALITY = 1 << 22,
	KEY_LOCALITY_OVERPROVISION = 1 << 23,
	KEY_ZONE = 1 << 24,
	KEY_ZONE_TABLE_SIZE = 1 << 25,
};

struct loader {
	const char *path;
	const char *data;
	size_t len, pos;
	int line;
	struct pool *pool;
	size_t backend_cap;
	uint32_t *names;              /* by name hash: backend index + 1, 0 if free */
	enum section section;
	struct pool_backend *backend; /* current [backend NAME], while section is BACKEND */
	struct pool_zone *zone;       /* current [zone NAME], while section is ZONE */
	unsigned seen;                /* enum pool_key_bit of the current section */
	int pool_line;                /* line of [pool], 0 if none yet */
	int problems;
	pool_problem_fn fn;
	void *ctx;
	int addr_flags; /* for addr_parse(): ADDR_NAME_UNCHECKED to stay off DNS */
	int value_has_hash; /* the current value has a '#' after a blank */
	char first[ERR_LEN];
};

static void problem(struct loader *ld, int line, const char *fmt, ...) PRINTF_LIKE(3, 4);

static void problem(struct loader *ld, int line, const char *fmt, ...)
{
	char msg[ERR_LEN - 48]; /* leaves room for "FILE:LINE: " in first */
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) >= (int)sizeof(msg))
		utf8_drop_partial(msg); /* a long message is cut between characters */
	va_end(ap);
	/* The loader keeps ' #' in values (check_send texts hold it): a value
	 * refused with one was most likely meant to end in a comment. */
	if (ld->value_has_hash && strlen(msg) + 48 < sizeof(msg))
		strcat(msg, " (an inline comment needs ' ;', not ' #')");
	if (ld->problems++ == 0) {
		if (line > 0)
			snprintf(ld->first, sizeof(ld->first), "%s:%d: %s", ld->path, line, msg);
		else
			snprintf(ld->first, sizeof(ld->first), "%s: %s", ld->path, msg);
	}
	if (ld->fn)
		ld->fn(ld->ctx, ld->path, line, msg);
}

const char *balance_name(enum balance b)
{
	static const char *const names[] = {"hash", "roundrobin", "leastconn", "random"};
	return names[b];
}

const char *hash_key_name(enum hash_key k)
{
	return k == HASH_KEY_IP ? "ip" : "ip_port";
}

const char *backend_state_name(enum backend_state s)
{
	static const char *const names[] = {"up", "drain", "down"};
	return names[s];
}

int pool_name_valid(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		char c = s[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return n >= 1 && n <= POOL_NAME_MAX;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* Checks one raw line (without its newline); reports and returns -1 if unusable. */
static int line_check(struct loader *ld, const char *s, size_t n)
{
	size_t i, k;

	if (n > POOL_LINE_MAX) {
		problem(ld, ld->line, "line is too long (%zu bytes, at most %d)", n,
			POOL_LINE_MAX);
		return -1;
	}
	for (i = 0; i < n; i += k) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			problem(ld, ld->line, "binary data: control byte 0x%02x in column %zu", c,
				i + 1);
			return -1;
		}
		k = utf8_sequence((const unsigned char *)s + i, n - i);
		if (k == 0) {
			problem(ld, ld->line, "binary data: invalid UTF-8 in column %zu", i + 1);
			return -1;
		}
	}
	return 0;
}

/* The cell of names that holds name, or the free cell where it would go;
 * names has twice as many cells as backend_cap, a power of two. */
static uint32_t *name_cell(const struct loader *ld, const char *name)
{
	static const uint8_t key[HASH_SEED_LEN];
	size_t mask = 2 * ld->backend_cap - 1, i = siphash24(key, name, strlen(name)) & mask;

	while (ld->names[i] && strcmp(ld->pool->backends[ld->names[i] - 1].name, name) != 0)
		i = (i + 1) & mask;
	return &ld->names[i];
}

static void backend_defaults(struct pool_backend *b, const char *name, int line)
{
	memset(b, 0, sizeof(*b));
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->weight = 1;
	b->state = BACKEND_UP;
	b->line = line;
}

/* The zone named name, adding it (at line, 0 for a backend's zone key) if
 * new; NULL when there are too many. Zones are few: a scan will do. */
static struct pool_zone *zone_add(struct loader *ld, const char *name, int line)
{
	struct pool *p = ld->pool;

	for (size_t i = 0; i < p->nzones; i++)
		if (strcmp(p->zones[i].name, name) == 0)
			return &p->zones[i];
	if (p->nzones == POOL_ZONES_MAX)
		return NULL;
	if (p->zones == NULL && (p->zones = calloc(POOL_ZONES_MAX, sizeof(*p->zones))) == NULL)
		return NULL;
	snprintf(p->zones[p->nzones].name, sizeof(p->zones->name), "%s", name);
	p->zones[p->nzones].line = line;
	return &p->zones[p->nzones++];
}

/* "[zone NAME]": the networks of its clients follow. */
static void zone_begin(struct loader *ld, const char *name)
{
	struct pool_zone *z;

	while (is_blank(*name))
		name++;
	if (!pool_name_valid(name)) {
		problem(ld, ld->line, "[zone %s]: invalid zone name (use 1-%d of A-Z a-z 0-9 . _ -)",
			name, POOL_NAME_MAX);
		return;
	}
	if ((z = zone_add(ld, name, ld->line)) == NULL) {
		problem(ld, ld->line, "[zone %s]: too many zones (at most %d)", name,
			POOL_ZONES_MAX);
		return;
	}
	if (z->line == 0) /* named by a backend before */
		z->line = ld->line;
	else if (z->line != ld->line) {
		problem(ld, ld->line, "[zone %s]: duplicate zone (first at line %d)", name, z->line);
		return;
	}
	ld->zone = z;
	ld->section = SECTION_ZONE;
}

/* "[pool]" or "[backend NAME]", with an optional trailing comment. */
static void section_begin(struct loader *ld, char *s)
{
	struct pool *p = ld->pool;
	char *end = strchr(s, ']'), *name, *rest;
	uint32_t dup;
	size_t i;

	ld->section = SECTION_IGNORED;
	ld->backend = NULL;
	ld->zone = NULL;
	ld->seen = 0;
	if (end == NULL) {
		problem(ld, ld->line, "section header without closing ']'");
		return;
	}
	for (rest = end + 1; is_blank(*rest); rest++)
		;
	if (*rest != '\0' && *rest != ';' && *rest != '#') {
		problem(ld, ld->line, "unexpected text after section header");
		return;
	}
	*end = '\0';
	for (s++; is_blank(*s); s++)
		;
	for (char *t = end; t > s && is_blank(t[-1]); t--)
		t[-1] = '\0';

	if (strcmp(s, "pool") == 0) {
		if (ld->pool_line) {
			problem(ld, ld->line, "[pool]: duplicate section (first at line %d)",
				ld->pool_line);
			return;
		}
		ld->pool_line = ld->line;
		ld->section = SECTION_POOL;
		return;
	}
	if (strncmp(s, "zone", 4) == 0 && (s[4] == '\0' || is_blank(s[4]))) {
		zone_begin(ld, s + 4);
		return;
	}
	if (strncmp(s, "backend", 7) != 0 || (s[7] != '\0' && !is_blank(s[7]))) {
		problem(ld, ld->line,
			"[%s]: unknown section (expected [pool], [backend NAME] or [zone NAME])", s);
		return;
	}
	for (name = s + 7; is_blank(*name); name++)
		;
	if (*name == '\0') {
		problem(ld, ld->line, "[backend]: backend needs a name: [backend NAME]");
		return;
	}
	if (!pool_name_valid(name)) {
		problem(ld, ld->line,
			"[backend %s]: invalid backend name (use 1-%d of A-Z a-z 0-9 . _ -)", name,
			POOL_NAME_MAX);
		return;
	}
	dup = p->nbackends ? *name_cell(ld, name) : 0; /* a scan made 10,000 backends slow */
	if (dup) {
		problem(ld, ld->line, "[backend %s]: duplicate backend (first at line %d)", name,
			p->backends[dup - 1].line);
		return;
	}
	if (p->nbackends == POOL_BACKENDS_MAX) {
		problem(ld, ld->line, "[backend %s]: too many backends (at most %d)", name,
			POOL_BACKENDS_MAX);
		return;
	}
	if (p->nbackends == ld->backend_cap) {
		size_t cap = ld->backend_cap ? ld->backend_cap * 2 : 8;
		struct pool_backend *nb = realloc(p->backends, cap * sizeof(*nb));
		uint32_t *names = nb ? calloc(2 * cap, sizeof(*names)) : NULL;

		if (nb != NULL)
			p->backends = nb;
		if (names == NULL) {
			problem(ld, ld->line, "out of memory");
			return;
		}
		free(ld->names);
		ld->names = names;
		ld->backend_cap = cap;
		for (i = 0; i < p->nbackends; i++)
			*name_cell(ld, p->backends[i].name) = (uint32_t)i + 1;
	}
	ld->backend = &p->backends[p->nbackends++];
	backend_defaults(ld->backend, name, ld->line);
	*name_cell(ld, name) = (uint32_t)p->nbackends;
	ld->section = SECTION_BACKEND;
}

/* Whether inih will find the '=' (or ':') of KEY = VALUE: it stops looking
 * at an inline comment, a ';' after a blank. */
static int has_separator(const char *s)
{
	int was_blank = 0;

	for (; *s != '\0'; s++) {
		if (*s == '=' || *s == ':')
			return 1;
		if (was_blank && *s == ';')
			return 0;
		was_blank = is_blank(*s);
	}
	return 0;
}

/* inih's line source: one line at a time, cleaned up, with the count kept. */
static char *loader_read_line(char *out, int size, void *stream)
{
	struct loader *ld = stream;
	const char *s, *nl;
	size_t n;

	if (ld->pos >= ld->len)
		return NULL;
	s = ld->data + ld->pos;
	nl = memchr(s, '\n', ld->len - ld->pos);
	n = nl ? (size_t)(nl - s) : ld->len - ld->pos;
	ld->pos += n + (nl != NULL);
	ld->line++;
	if (n > 0 && s[n - 1] == '\r')
		n--;
	out[0] = '\0';
	if (line_check(ld, s, n) < 0)
		return out; /* reported; inih sees a blank line */

	/* Leading blanks dropped: inih would take an indented line as the
	 * continuation of the previous value, which nobody means here. */
	while (n > 0 && is_blank(*s))
		s++, n--;
	if ((size_t)size <= n)
		return out; /* cannot happen: n <= POOL_LINE_MAX < INI_MAX_LINE */
	memcpy(out, s, n);
	out[n] = '\0';

	if (out[0] == '[') {
		char copy[POOL_LINE_MAX + 1];

		memcpy(copy, out, n + 1);
		section_begin(ld, copy);
	} else if (out[0] != '\0' && out[0] != ';' && out[0] != '#' && !has_separator(out)) {
		problem(ld, ld->line, "expected KEY = VALUE, a [section] or a comment");
		out[0] = '\0';
	}
	return out;
}

/* Marks a once-only key as seen; reports a repeat. */
static int key_once(struct loader *ld, const char *key, unsigned bit)
{
	if (ld->seen & bit) {
		problem(ld, ld->line, "%s: given twice in this section", key);
		return -1;
	}
	ld->seen |= bit;
	return 0;
}

static void key_number(struct loader *ld, const char *key, const char *value, unsigned bit,
		       long long min, long long max, unsigned *out)
{
	char err[ERR_LEN];
	long long v;

	if (key_once(ld, key, bit) < 0)
		return;
	if (num_parse(value, min, max, &v, err) < 0)
		problem(ld, ld->line, "%s: %s", key, err);
	else
		*out = (unsigned)v;
}

/* A Maglev table's slots: a prime in MAGLEV_SIZE_MIN..MAGLEV_SIZE_MAX. */
static void key_table_size(struct loader *ld, const char *key, const char *value, unsigned bit,
			   uint32_t *out)
{
	unsigned size = 0;

	key_number(ld, key, value, bit, MAGLEV_SIZE_MIN, MAGLEV_SIZE_MAX, &size);
	if (size && !prime_check(size))
		problem(ld, ld->line, "%s: %u is not a prime", key, size);
	else if (size)
		*out = size;
}

static void key_duration(struct loader *ld, const char *key, const char *value, unsigned bit,
			 uint64_t min, uint64_t max, int zero_ok, uint64_t *out)
{
	char err[ERR_LEN];
	uint64_t v;

	if (key_once(ld, key, bit) < 0)
		return;
	if (duration_parse(value, zero_ok ? 0 : min, max, &v, err) < 0)
		problem(ld, ld->line, "%s: %s", key, err);
	else if (v != 0 && v < min)
		problem(ld, ld->line, "%s: %s is too short (0 turns it off, else at least %llums)",
			key, value, (unsigned long long)min);
	else
		*out = v;
}

/* Looks value up in a NULL-terminated list of words; -1 if absent. */
static int key_word(struct loader *ld, const char *key, const char *value, unsigned bit,
		    const char *const *words, const char *expected)
{
	char clip[TEXT_CLIP_LEN];

	if (key_once(ld, key, bit) < 0)
		return -1;
	for (int i = 0; words[i] != NULL; i++)
		if (strcmp(value, words[i]) == 0)
			return i;
	problem(ld, ld->line, "%s: unknown value '%s' (expected %s)", key, text_clip(clip, value),
		expected);
	return -1;
}

int hash_seed_parse(const char *hex, uint8_t seed[HASH_SEED_LEN])
{
	for (int i = 0; i < 2 * HASH_SEED_LEN; i++) {
		int c = hex[i], v;

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v = c - 'A' + 10;
		else
			return -1;
		if (i % 2 == 0)
			seed[i / 2] = (uint8_t)(v << 4);
		else
			seed[i / 2] |= (uint8_t)v;
	}
	return hex[2 * HASH_SEED_LEN] == '\0' ? 0 : -1;
}

/* --- the client's identity ------------------------------------------------ */

static const char *const proxy_protocols[] = {"off", "v1", "v2", NULL};

const char *proxy_protocol_name(enum proxy_version v)
{
	return proxy_protocols[v];
}

void client_rate_format(unsigned rate, unsigned burst, char *buf, size_t len)
{
	if (rate == 0)
		snprintf(buf, len, "0");
	else if (burst == rate)
		snprintf(buf, len, "%u/s", rate);
	else
		snprintf(buf, len, "%u/s:%u", rate, burst);
}

/* "N/s" or "N/s:BURST" (BURST defaults to N), or "0" for no limit. */
static void key_client_rate(struct loader *ld, const char *value, struct pool *p)
{
	char num[32], err[ERR_LEN], clip[TEXT_CLIP_LEN];
	const char *per = strstr(value, "/s"), *colon;
	long long rate, burst;
	size_t n;

	if (key_once(ld, "client_rate", KEY_CLIENT_RATE) < 0)
		return;
	if (strcmp(value, "0") == 0) {
		p->client_rate = p->client_burst = 0;
		return;
	}
	colon = per ? per + 2 : NULL;
	n = per ? (size_t)(per - value) : 0;
	if (per == NULL || n == 0 || n >= sizeof(num) || (*colon != '\0' && *colon != ':')) {
		problem(ld, ld->line, "client_rate: '%s': expected N/s or N/s:BURST",
			text_clip(clip, value));
		return;
	}
	memcpy(num, value, n);
	num[n] = '\0';
	if (num_parse(num, 1, POOL_CLIENT_RATE_MAX, &rate, err) < 0) {
		problem(ld, ld->line, "client_rate: %s", err);
		return;
	}
	burst = rate;
	if (*colon == ':' && num_parse(colon + 1, 1, POOL_CLIENT_RATE_MAX, &burst, err) < 0) {
		problem(ld, ld->line, "client_rate: burst %s", err);
		return;
	}
	p->client_rate = (unsigned)rate;
	p->client_burst = (unsigned)burst;
}

/* A network list key, repeatable: every line adds to its table. */
static void key_networks(struct loader *ld, const char *key, const char *value,
			 struct cidr_table *t, int tag)
{
	char err[ERR_LEN];

	if (cidr_table_add_list(t, value, tag, err) < 0)
		problem(ld, ld->line, "%s: %s", key, err);
}

/* The keys of tcpdist.pool(5)'s CLIENTS in [pool]; 0 if key is none of them. */
static int pool_client_key(struct loader *ld, const char *key, const char *value)
{
	struct pool *p = ld->pool;
	int v;

	if (strcmp(key, "proxy_protocol") == 0) {
		v = key_word(ld, key, value, KEY_PROXY_PROTOCOL, proxy_protocols, "off, v1 or v2");
		if (v >= 0)
			p->proxy_protocol = (enum proxy_version)v;
	} else if (strcmp(key, "accept_proxy_from") == 0) {
		key_networks(ld, key, value, &p->accept_proxy_from, 0);
	} else if (strcmp(key, "accept_proxy_timeout") == 0) {
		key_duration(ld, key, value, KEY_ACCEPT_PROXY_TIMEOUT, 10, 3600000, 0,
			     &p->accept_proxy_timeout_ms);
	} else if (strcmp(key, "allow") == 0) {
		size_t before = p->access.n;

		key_networks(ld, key, value, &p->access, POOL_ALLOW);
		p->nallow += p->access.n - before;
	} else if (strcmp(key, "deny") == 0) {
		key_networks(ld, key, value, &p->access, POOL_DENY);
	} else if (strcmp(key, "client_max_conns") == 0) {
		key_number(ld, key, value, KEY_CLIENT_MAX_CONNS, 0, POOL_MAX_CONNS_MAX,
			   &p->client_max_conns);
	} else if (strcmp(key, "client_rate") == 0) {
		key_client_rate(ld, value, p);
	} else if (strcmp(key, "client_prefix6") == 0) {
		key_number(ld, key, value, KEY_CLIENT_PREFIX6, 1, 128, &p->client_prefix6);
	} else {
		return 0;
	}
	return 1;
}

/* After the whole file: backends take the pool's proxy_protocol unless they
 * set their own (wherever [pool] stands), the networks are sorted. */
static void pool_clients_finish(struct loader *ld)
{
	struct pool *p = ld->pool;

	for (size_t i = 0; i < p->nbackends; i++)
		if (p->backends[i].proxy_protocol_line == 0)
			p->backends[i].proxy_protocol = p->proxy_protocol;
	if (cidr_table_finish(&p->accept_proxy_from) < 0 || cidr_table_finish(&p->access) < 0)
		problem(ld, 0, "out of memory");
}

/* "1", "1.4", "1.25" into hundredths in [min, max]; -1 if malformed. */
static int hundredths_parse(const char *s, unsigned min, unsigned max, unsigned *out)
{
	unsigned v = 0, decimals = 0;
	const char *c = s;

	for (; *c >= '0' && *c <= '9' && c - s < 4; c++)
		v = v * 10 + (unsigned)(*c - '0');
	if (c == s)
		return -1;
	if (*c == '.')
		for (c++; *c >= '0' && *c <= '9' && decimals < 2; c++, decimals++)
			v = v * 10 + (unsigned)(*c - '0');
	if (*c != '\0' || (c[-1] == '.'))
		return -1;
	for (; decimals < 2; decimals++)
		v *= 10;
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static void pool_key(struct loader *ld, const char *key, const char *value)
{
	static const char *const balances[] = {"hash", "roundrobin", "leastconn", "random", NULL};
	static const char *const hash_keys[] = {"ip", "ip_port", NULL};
	struct pool *p = ld->pool;
	char err[ERR_LEN], clip[TEXT_CLIP_LEN];
	int v;

	if (strcmp(key, "listen") == 0) {
		struct pool_listen *l;

		if (p->nlisten == POOL_LISTEN_MAX) {
			problem(ld, ld->line, "listen: too many listen addresses (at most %d)",
				POOL_LISTEN_MAX);
			return;
		}
		l = &p->listen[p->nlisten];
		if (addr_parse(value, ADDR_ALLOW_PORT0 | ld->addr_flags, &l->addr, err) < 0) {
			problem(ld, ld->line, "listen: %s", err);
			return;
		}
		for (size_t i = 0; i < p->nlisten; i++) {
			if (l->addr.len != 0 && addr_equal(&p->listen[i].addr, &l->addr)) {
				problem(ld, ld->line, "listen: %s given twice (first at line %d)",
					text_clip(clip, value), p->listen[i].line);
				return;
			}
		}
		snprintf(l->text, sizeof(l->text), "%s", value);
		l->line = ld->line;
		p->nlisten++;
	} else if (strcmp(key, "balance") == 0) {
		v = key_word(ld, key, value, KEY_BALANCE, balances,
			     "hash, roundrobin, leastconn or random");
		if (v >= 0)
			p->balance = (enum balance)v;
	} else if (strcmp(key, "hash_key") == 0) {
		v = key_word(ld, key, value, KEY_HASH_KEY, hash_keys, "ip or ip_port");
		if (v >= 0)
			p->hash_key = (enum hash_key)v;
	} else if (strcmp(key, "connect_timeout") == 0) {
		key_duration(ld, key, value, KEY_CONNECT_TIMEOUT, 1, 3600000, 0,
			     &p->connect_timeout_ms);
	} else if (strcmp(key, "idle_timeout") == 0) {
		key_duration(ld, key, value, KEY_IDLE_TIMEOUT, 1, 30ull * 86400000, 1,
			     &p->idle_timeout_ms);
	} else if (strcmp(key, "retries") == 0) {
		key_number(ld, key, value, KEY_RETRIES, 0, POOL_RETRIES_MAX, &p->retries);
	} else if (strcmp(key, "check_interval") == 0) {
		key_duration(ld, key, value, KEY_CHECK_INTERVAL, 10, 3600000, 1,
			     &p->check_interval_ms);
	} else if (strcmp(key, "check_rise") == 0) {
		key_number(ld, key, value, KEY_CHECK_RISE, 1, 100, &p->check_rise);
	} else if (strcmp(key, "check_fall") == 0) {
		key_number(ld, key, value, KEY_CHECK_FALL, 1, 100, &p->check_fall);
	} else if (strcmp(key, "max_conns") == 0) {
		key_number(ld, key, value, KEY_MAX_CONNS, 0, POOL_MAX_CONNS_MAX, &p->max_conns);
	} else if (strcmp(key, "instance") == 0) {
		if (key_once(ld, key, KEY_INSTANCE) < 0)
			return;
		if (!pool_name_valid(value))
			problem(ld, ld->line, "instance: a label of 1-%d of A-Z a-z 0-9 . _ -",
				POOL_NAME_MAX);
		else
			snprintf(p->instance, sizeof(p->instance), "%s", value);
	} else if (strcmp(key, "control") == 0) {
		if (key_once(ld, key, KEY_CONTROL) < 0)
			return;
		if (value[0] == '\0' || strlen(value) > POOL_CONTROL_MAX)
			problem(ld, ld->line, "control: a socket path of 1-%d bytes", POOL_CONTROL_MAX);
		else
			snprintf(p->control, sizeof(p->control), "%s", value);
	} else if (strcmp(key, "resolve_interval") == 0) {
		key_duration(ld, key, value, KEY_RESOLVE_INTERVAL, 1000, 86400000, 1,
			     &p->resolve_interval_ms);
	} else if (strcmp(key, "hash_seed") == 0) {
		if (key_once(ld, key, KEY_HASH_SEED) == 0 && hash_seed_parse(value, p->hash_seed) < 0)
			problem(ld, ld->line, "hash_seed: expected %d hexadecimal digits",
				2 * HASH_SEED_LEN);
	} else if (strcmp(key, "table_size") == 0) {
		key_table_size(ld, key, value, KEY_TABLE_SIZE, &p->table_size);
	} else if (strcmp(key, "zone_table_size") == 0) {
		key_table_size(ld, key, value, KEY_ZONE_TABLE_SIZE, &p->zone_table_size);
	} else if ((v = check_spec_key(&p->check, key, value, ld->line, err)) != 0) {
		if (v < 0)
			problem(ld, ld->line, "%s", err);
	} else if (strcmp(key, "locality") == 0) {
		static const char *const localities[] = {"off", "prefer", "strict", NULL};

		v = key_word(ld, key, value, KEY_LOCALITY, localities, "off, prefer or strict");
		if (v >= 0)
			p->locality = (enum locality)v;
	} else if (strcmp(key, "locality_overprovision") == 0) {
		if (key_once(ld, key, KEY_LOCALITY_OVERPROVISION) == 0 &&
		    hundredths_parse(value, 100, 1000, &p->locality_overprovision) < 0)
			problem(ld, ld->line,
				"locality_overprovision: '%s' is not a number from 1 to 10 "
				"(two decimals at most)", text_clip(clip, value));
	} else if (!pool_client_key(ld, key, value)) {
		problem(ld, ld->line, "%s: unknown key in [pool]", text_clip(clip, key));
	}
}

static void backend_key(struct loader *ld, const char *key, const char *value)
{
	static const char *const states[] = {"up", "drain", "down", NULL};
	struct pool_backend *b = ld->backend;
	char err[ERR_LEN], clip[TEXT_CLIP_LEN];
	int v;

	if (strcmp(key, "address") == 0) {
		if (key_once(ld, key, KEY_ADDRESS) < 0)
			return;
		b->addr_line = ld->line;
		if (addr_parse(value, ld->addr_flags, &b->addr, err) < 0) {
			problem(ld, ld->line, "address: %s", err);
			return;
		}
		snprintf(b->addr_text, sizeof(b->addr_text), "%s", value);
	} else if (strcmp(key, "weight") == 0) {
		key_number(ld, key, value, KEY_WEIGHT, 0, POOL_WEIGHT_MAX, &b->weight);
	} else if (strcmp(key, "state") == 0) {
		v = key_word(ld, key, value, KEY_STATE, states, "up, drain or down");
		if (v >= 0)
			b->state = (enum backend_state)v;
	} else if (strcmp(key, "max_conns") == 0) {
		key_number(ld, key, value, KEY_MAX_CONNS, 0, POOL_MAX_CONNS_MAX, &b->max_conns);
	} else if (strcmp(key, "backup") == 0) {
		static const char *const yes_no[] = {"no", "yes", NULL};

		v = key_word(ld, key, value, KEY_BACKUP, yes_no, "yes or no");
		if (v >= 0)
			b->backup = v;
	} else if ((v = check_spec_key(&b->check, key, value, ld->line, err)) != 0) {
		if (v < 0)
			problem(ld, ld->line, "%s", err);
	} else if (strcmp(key, "zone") == 0) {
		if (key_once(ld, key, KEY_ZONE) < 0)
			return;
		if (!pool_name_valid(value))
			problem(ld, ld->line, "zone: invalid zone name (use 1-%d of A-Z a-z 0-9 . _ -)",
				POOL_NAME_MAX);
		else if (zone_add(ld, value, 0) == NULL)
			problem(ld, ld->line, "zone: too many zones (at most %d)", POOL_ZONES_MAX);
		else
			snprintf(b->zone_name, sizeof(b->zone_name), "%s", value);
	} else if (strcmp(key, "proxy_protocol") == 0) {
		v = key_word(ld, key, value, KEY_PROXY_PROTOCOL, proxy_protocols, "off, v1 or v2");
		if (v >= 0) {
			b->proxy_protocol = (enum proxy_version)v;
			b->proxy_protocol_line = ld->line;
		}
	} else {
		problem(ld, ld->line, "%s: unknown key in [backend %s]", text_clip(clip, key), b->name);
	}
}

static void zone_key(struct loader *ld, const char *key, const char *value)
{
	char clip[TEXT_CLIP_LEN];

	if (strcmp(key, "clients") == 0)
		key_networks(ld, key, value, &ld->pool->zone_clients,
			     (int)(ld->zone - ld->pool->zones));
	else
		problem(ld, ld->line, "%s: unknown key in [zone %s]", text_clip(clip, key),
			ld->zone->name);
}

static int by_zone_name(const void *a, const void *b)
{
	return strcmp(((const struct pool_zone *)a)->name, ((const struct pool_zone *)b)->name);
}

/* After the whole file: zones in name order (indexes then depend on names
 * alone), backends and client networks pointed at them, a network claimed
 * by two zones reported. */
static void pool_zones_finish(struct loader *ld)
{
	struct pool *p = ld->pool;
	struct pool_zone sorted[POOL_ZONES_MAX];
	unsigned remap[POOL_ZONES_MAX];
	struct cidr_table *t = &p->zone_clients;
	char net[CIDR_TEXT_LEN];

	if (p->nzones) /* p->zones is NULL without zones: no memcpy from NULL (UBSan) */
		memcpy(sorted, p->zones, p->nzones * sizeof(*sorted));
	qsort(sorted, p->nzones, sizeof(*sorted), by_zone_name);
	for (size_t i = 0; i < p->nzones; i++)
		remap[i] = pool_find_zone(&(struct pool){.zones = sorted, .nzones = p->nzones},
					  p->zones[i].name);
	if (p->nzones)
		memcpy(p->zones, sorted, p->nzones * sizeof(*sorted));
	for (size_t i = 0; i < t->n; i++)
		t->e[i].tag = (int)remap[t->e[i].tag];
	for (size_t i = 0; i < p->nbackends; i++)
		p->backends[i].zone = p->backends[i].zone_name[0]
					      ? pool_find_zone(p, p->backends[i].zone_name)
					      : POOL_ZONE_NONE;
	if (cidr_table_finish(t) < 0) {
		problem(ld, 0, "out of memory");
		return;
	}
	for (size_t i = 1; i < t->n; i++) {
		const struct cidr_entry *a = &t->e[i - 1], *b = &t->e[i];

		if (a->net.v6 == b->net.v6 && a->net.bits == b->net.bits &&
		    memcmp(a->net.addr, b->net.addr, 16) == 0 && a->tag != b->tag) {
			cidr_format(&a->net, net, sizeof(net));
			problem(ld, p->zones[a->tag].line, "clients: %s is in [zone %s] and [zone %s]",
				net, p->zones[b->tag].name, p->zones[a->tag].name);
		}
	}
}

/* Every zone's tables have zone_table_size slots, whatever the locality
 * (as table_size is checked whatever the balance): at least a slot for
 * each backend of the largest zone. */
static void pool_zone_sizes_finish(struct loader *ld)
{
	const struct pool *p = ld->pool;
	size_t count[POOL_ZONES_MAX] = {0}, largest = 0;

	for (size_t i = 0; i < p->nbackends; i++)
		if (p->backends[i].zone < p->nzones)
			count[p->backends[i].zone]++;
	for (size_t k = 1; k < p->nzones; k++)
		if (count[k] > count[largest])
			largest = k;
	if (p->nzones && count[largest] > p->zone_table_size)
		problem(
		    ld, 0,
		    "zone_table_size %u is smaller than the number of backends of zone %s (%zu)",
		    p->zone_table_size, p->zones[largest].name, count[largest]);
}

const char *locality_name(enum locality l)
{
	return l == LOCALITY_STRICT ? "strict" : l == LOCALITY_PREFER ? "prefer" : "off";
}

unsigned pool_find_zone(const struct pool *pool, const char *name)
{
	size_t lo = 0, hi = pool->nzones;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, pool->zones[mid].name);

		if (c == 0)
			return (unsigned)mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return POOL_ZONE_NONE;
}

unsigned pool_client_zone(const struct pool *pool, const struct sockaddr *sa)
{
	const struct cidr_entry *e = cidr_table_match(&pool->zone_clients, sa);

	return e ? (unsigned)e->tag : POOL_ZONE_NONE;
}

/* Refuses a key that pool_keys[] does not list for the current section,
 * with the nearest known key or the section where it belongs; 1 if it did. */
static int key_unknown(struct loader *ld, const char *key)
{
	static const unsigned bits[] = {[SECTION_POOL] = PK_POOL,
					[SECTION_BACKEND] = PK_BACKEND,
					[SECTION_ZONE] = PK_ZONE};
	const struct pool_key_def *k = pool_key_find(key);
	unsigned here = bits[ld->section];
	char clip[TEXT_CLIP_LEN], where[80], in[POOL_NAME_MAX + 16];
	const char *near;

	if (k != NULL && (k->sections & here))
		return 0;
	if (k != NULL) {
		problem(ld, ld->line, "%s: only in %s", key,
			pool_sections_text(k->sections, where, sizeof(where)));
		return 1;
	}
	if (ld->section == SECTION_POOL)
		snprintf(in, sizeof(in), "[pool]");
	else
		snprintf(in, sizeof(in), "[%s %s]", ld->section == SECTION_ZONE ? "zone" : "backend",
			 ld->section == SECTION_ZONE ? ld->zone->name : ld->backend->name);
	if ((near = pool_key_nearest(key, here)) != NULL)
		problem(ld, ld->line, "%s: unknown key in %s; did you mean %s?", text_clip(clip, key),
			in, near);
	else if ((near = pool_key_nearest(key, PK_POOL | PK_BACKEND | PK_ZONE)) != NULL)
		problem(ld, ld->line, "%s: unknown key in %s; did you mean %s (only in %s)?",
			text_clip(clip, key), in, near,
			pool_sections_text(pool_key_find(near)->sections, where, sizeof(where)));
	else
		problem(ld, ld->line, "%s: unknown key in %s", text_clip(clip, key), in);
	return 1;
}

static int loader_key(void *user, const char *section, const char *key, const char *value)
{
	struct loader *ld = user;
	char clip[TEXT_CLIP_LEN];

	(void)section; /* the reader tracks sections itself */
	if ((ld->section == SECTION_POOL || ld->section == SECTION_BACKEND ||
	     ld->section == SECTION_ZONE) &&
	    key_unknown(ld, key))
		return 1;
	ld->value_has_hash = strstr(value, " #") != NULL || strstr(value, "\t#") != NULL;
	if (*value == '\0') {
		if (ld->section == SECTION_BACKEND && strcmp(key, "address") == 0)
			ld->backend->addr_line = ld->line; /* there, if empty */
		if (ld->section != SECTION_IGNORED)
			problem(ld, ld->line, "%s: missing value", text_clip(clip, key));
		return 1;
	}
	switch (ld->section) {
	case SECTION_NONE:
		problem(ld, ld->line, "%s: key outside any section (start with [pool])",
			text_clip(clip, key));
		break;
	case SECTION_POOL:
		pool_key(ld, key, value);
		break;
	case SECTION_BACKEND:
		backend_key(ld, key, value);
		break;
	case SECTION_ZONE:
		zone_key(ld, key, value);
		break;
	case SECTION_IGNORED:
		break; /* its header was reported */
	}
	ld->value_has_hash = 0;
	return 1;
}

/* The check keys fit together, and each backend has the pool's for those
 * it did not give (after the whole file: [pool] may come last). */
static void pool_checks_finish(struct loader *ld)
{
	struct pool *p = ld->pool;
	char err[ERR_LEN];
	int line;

	if (check_spec_finish(&p->check, NULL, err, &line) < 0)
		problem(ld, line, "%s", err);
	for (size_t i = 0; i < p->nbackends; i++) {
		struct pool_backend *b = &p->backends[i];

		if (check_spec_finish(&b->check, &p->check, err, &line) < 0)
			problem(ld, line, "%s", err);
	}
}

static struct pool *pool_new(void)
{
	struct pool *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->listen = calloc(POOL_LISTEN_MAX, sizeof(*p->listen));
	if (p->listen == NULL) {
		free(p);
		return NULL;
	}
	p->balance = BALANCE_HASH;
	p->table_size = MAGLEV_SIZE_DEFAULT;
	p->zone_table_size = POOL_ZONE_TABLE_SIZE_DEFAULT;
	hash_seed_parse(POOL_HASH_SEED_DEFAULT, p->hash_seed);
	p->hash_key = HASH_KEY_IP;
	p->connect_timeout_ms = 3000;
	p->idle_timeout_ms = 3600000;
	p->retries = 2;
	p->check_interval_ms = 2000;
	p->check_rise = 2;
	p->check_fall = 3;
	p->max_conns = 0;
	p->resolve_interval_ms = 30000;
	p->accept_proxy_timeout_ms = 3000;
	p->client_prefix6 = 64;
	p->locality_overprovision = 140;
	return p;
}

static struct pool *pool_parse_all(const char *path, const char *data, size_t len,
				   int addr_flags, pool_problem_fn fn, void *ctx, int *nproblems,
				   char *err)
{
	struct loader ld;
	size_t blank = 0;
	int rc;

	memset(&ld, 0, sizeof(ld));
	ld.path = path;
	ld.data = data;
	ld.len = len;
	ld.fn = fn;
	ld.ctx = ctx;
	ld.addr_flags = addr_flags;
	ld.pool = pool_new();
	if (ld.pool == NULL) {
		err_set(err, "%s: out of memory", path);
		*nproblems = 1;
		return NULL;
	}
	if (len > POOL_FILE_MAX) { /* an edit must not make what no reader takes */
		problem(&ld, 0, "file too large (%zu bytes, at most %u)", len, POOL_FILE_MAX);
		*nproblems = ld.problems;
		snprintf(err ? err : (char[ERR_LEN]){0}, ERR_LEN, "%s", ld.first);
		pool_free(ld.pool);
		return NULL;
	}
	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
		ld.pos = 3; /* a UTF-8 byte order mark */

	rc = ini_parse_stream(loader_read_line, &ld, loader_key, &ld);
	if (rc > 0 && ld.problems == 0)
		problem(&ld, rc, "syntax error");
	else if (rc < 0)
		problem(&ld, 0, "out of memory while parsing");
	pool_clients_finish(&ld);
	pool_zones_finish(&ld);

	/* data need not end in a NUL: no strspn. */
	while (blank < len && (is_blank(data[blank]) || data[blank] == '\r' || data[blank] == '\n'))
		blank++;
	if (blank == len)
		problem(&ld, 0, "empty file (a pool needs at least a [pool] section)");
	else if (ld.pool_line == 0)
		problem(&ld, 0, "no [pool] section");
	for (size_t i = 0; i < ld.pool->nbackends; i++) {
		const struct pool_backend *b = &ld.pool->backends[i];

		if (b->addr_line == 0) /* not when it is there but wrong: that was said */
			problem(&ld, b->line, "[backend %s]: missing address", b->name);
	}
	pool_checks_finish(&ld);
	if (ld.pool->nbackends > ld.pool->table_size)
		problem(&ld, 0, "table_size %u is smaller than the number of backends (%zu)",
			ld.pool->table_size, ld.pool->nbackends);
	pool_zone_sizes_finish(&ld);

	*nproblems = ld.problems;
	if (ld.problems) {
		snprintf(err ? err : (char[ERR_LEN]){0}, ERR_LEN, "%s", ld.first);
		pool_free(ld.pool);
		ld.pool = NULL;
	}
	free(ld.names);
	return ld.pool;
}

struct pool *pool_parse(const char *path, const char *data, size_t len, char *err)
{
	int n;

	return pool_parse_all(path, data, len, 0, NULL, NULL, &n, err);
}

struct pool *pool_parse_unresolved(const char *path, const char *data, size_t len, char *err)
{
	int n;

	return pool_parse_all(path, data, len, ADDR_NAME_UNCHECKED, NULL, NULL, &n, err);
}

/* Reads a whole regular file of at most POOL_FILE_MAX bytes; on failure
 * writes why (without the path, which callers add) into why. */
char *pool_read(const char *path, size_t *len, char *why)
{
	struct stat st;
	char *buf;
	size_t got = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return err_set(why, "%s", strerror(errno)), NULL;
	if (fstat(fd, &st) < 0) {
		err_set(why, "%s", strerror(errno));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set(why, "%s", S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
		close(fd);
		return NULL;
	}
	if ((unsigned long long)st.st_size > POOL_FILE_MAX) {
		err_set(why, "file too large (%lld bytes, at most %u)", (long long)st.st_size,
			POOL_FILE_MAX);
		close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return err_set(why, "out of memory"), NULL;
	}
	/* The file may change size under us; read what is there now, bounded. */
	while (got < (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err_set(why, "%s", strerror(errno));
			free(buf);
			close(fd);
			return NULL;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	*len = got;
	return buf;
}

struct pool *pool_load(const char *path, char *err)
{
	struct pool *p;
	size_t len;
	char why[ERR_LEN];
	char *data = pool_read(path, &len, why);

	if (data == NULL)
		return err_set(err, "%s: %s", path, why), NULL;
	p = pool_parse(path, data, len, err);
	free(data);
	return p;
}

int pool_check(const char *path, pool_problem_fn fn, void *ctx)
{
	char why[ERR_LEN];
	struct pool *p;
	size_t len;
	int n;
	char *data = pool_read(path, &len, why);

	if (data == NULL) {
		if (fn)
			fn(ctx, path, 0, why);
		return 1;
	}
	p = pool_parse_all(path, data, len, 0, fn, ctx, &n, NULL);
	pool_free(p);
	free(data);
	return n;
}

void pool_free(struct pool *pool)
{
	if (pool == NULL)
		return;
	free(pool->listen);
	for (size_t i = 0; i < pool->nbackends; i++)
		check_spec_free(&pool->backends[i].check);
	check_spec_free(&pool->check);
	cidr_table_free(&pool->accept_proxy_from);
	cidr_table_free(&pool->access);
	cidr_table_free(&pool->zone_clients);
	free(pool->zones);
	free(pool->backends);
	free(pool);
}

const struct pool_backend *pool_find_backend(const struct pool *pool, const char *name)
{
	for (size_t i = 0; i < pool->nbackends; i++)
		if (strcmp(pool->backends[i].name, name) == 0)
			return &pool->backends[i];
	return NULL;
}
