/* tcphash CLIENT...: which backend each client maps to. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "json.h"
#include "tcphash.h"

struct lookup {
	const struct options *opt;
	struct hashed h;
	int with_port;
	unsigned long records; /* JSON records written, for the commas */
	int bad;               /* malformed clients */
	int unanswered;        /* clients with no backend available */
	unsigned zone;         /* --zone's, or POOL_ZONE_NONE: each client's own */
};

/* With zones: the client's zone and where it landed (any, local, spill). */
struct landing {
	unsigned zone;
	enum zone_where where;
};

static const char *zone_text(const struct pool *p, unsigned zone)
{
	return zone < p->nzones ? p->zones[zone].name : "-";
}

static void print_text(struct lookup *l, const char *client, const unsigned *b, size_t n,
		       const struct landing *at)
{
	const struct pool_backend *be = l->h.pool->backends;

	for (size_t i = 0; i < n; i++) {
		fputs_unlocked(client, stdout);
		putc_unlocked('\t', stdout);
		fputs_unlocked(be[b[i]].name, stdout);
		putc_unlocked('\t', stdout);
		fputs_unlocked(be[b[i]].addr_text, stdout);
		if (l->h.pool->nzones) { /* trailing: the client's zone, where it landed */
			putc_unlocked('\t', stdout);
			fputs_unlocked(zone_text(l->h.pool, at->zone), stdout);
			putc_unlocked('\t', stdout);
			fputs_unlocked(i == 0 ? zone_where_name(at->where)
				       : be[b[i]].zone == at->zone && at->zone != POOL_ZONE_NONE
					       ? "local" : at->zone == POOL_ZONE_NONE ? "any" : "spill",
				       stdout);
		}
		putc_unlocked('\n', stdout);
	}
}

static void print_json(struct lookup *l, const char *client, const unsigned *b, size_t n,
		       const struct landing *at)
{
	const struct pool_backend *be = l->h.pool->backends;

	fputs(l->records++ ? ",\n  {\"client\": " : "  {\"client\": ", stdout);
	json_string(stdout, client);
	if (n == 0) {
		fputs(", \"backend\": null, \"address\": null", stdout);
	} else {
		fputs(", \"backend\": ", stdout);
		json_string(stdout, be[b[0]].name);
		fputs(", \"address\": ", stdout);
		json_string(stdout, be[b[0]].addr_text);
	}
	if (hashed_has_backup(&l->h))
		fputs(l->h.tier == TIER_BACKUP ? ", \"tier\": \"backup\"" : ", \"tier\": \"primary\"",
		      stdout);
	if (l->h.pool->nzones) {
		fputs(", \"zone\": ", stdout);
		if (at->zone == POOL_ZONE_NONE)
			fputs("null", stdout);
		else
			json_string(stdout, zone_text(l->h.pool, at->zone));
		fputs(", \"backend_zone\": ", stdout);
		if (n == 0 || be[b[0]].zone == POOL_ZONE_NONE)
			fputs("null", stdout);
		else
			json_string(stdout, zone_text(l->h.pool, be[b[0]].zone));
		printf(", \"locality\": \"%s\"", n ? zone_where_name(at->where) : "none");
	}
	if (l->opt->preference > 0) {
		fputs(", \"preference\": [", stdout);
		for (size_t i = 0; i < n; i++) {
			fputs(i ? ", {\"backend\": " : "{\"backend\": ", stdout);
			json_string(stdout, be[b[i]].name);
			fputs(", \"address\": ", stdout);
			json_string(stdout, be[b[i]].addr_text);
			putc('}', stdout);
		}
		putc(']', stdout);
	}
	putc('}', stdout);
}

struct collect {
	const uint8_t *down;
	unsigned *out;
	size_t n, k;
};

static int collect_available(unsigned b, void *ctx)
{
	struct collect *c = ctx;

	if (c->down[b])
		return 0;
	for (size_t i = 0; i < c->n; i++)
		if (c->out[i] == b)
			return 0;
	c->out[c->n++] = b;
	return c->n == c->k; /* stop the walk once k are found */
}

/* For zone_pick: collected, and the walk goes on (see zone.h). */
static int collect_zoned(unsigned b, void *ctx)
{
	struct collect *c = ctx;

	if (c->down[b])
		return 0;
	return collect_available(b, ctx) ? 1 : -1;
}

/* The first k available backends of the client's preference order in the
 * tier in use. */
static size_t preference(struct lookup *l, unsigned zone, uint64_t hash, unsigned *out,
			 size_t k)
{
	struct collect c = {l->h.down, out, 0, k};
	enum zone_where where;

	if (l->h.zones.n)
		hashed_pick(&l->h, zone, hash, collect_zoned, &c, &where);
	else
		tiers_first(&l->h.tiers, l->h.tier, hash, collect_available, &c);
	return c.n;
}

/* lineno: 0 for arguments, else the line of stdin, for messages. */
static void answer(struct lookup *l, const char *client, unsigned long lineno)
{
	char where[48] = "";
	unsigned b[PREFERENCE_MAX];
	struct addr a;
	char err[ERR_LEN];
	struct landing at;
	uint64_t hash;
	size_t n;
	int has_port;

	if (addr_parse_client(client, &a, &has_port, err) < 0) {
		if (lineno)
			snprintf(where, sizeof(where), "stdin:%lu: ", lineno);
		fprintf(stderr, "tcphash: %s%s\n", where, err);
		l->bad++;
		return;
	}
	if (l->with_port && !has_port) {
		if (lineno)
			snprintf(where, sizeof(where), "stdin:%lu: ", lineno);
		fprintf(stderr, "tcphash: %sclient '%s' needs a port: the pool hashes ip_port\n",
			where, client);
		l->bad++;
		return;
	}
	hash = hash_client(l->h.pool->hash_seed, (const struct sockaddr *)&a.ss, l->with_port);
	at.zone = l->zone != POOL_ZONE_NONE ? l->zone
					    : pool_client_zone(l->h.pool, (const struct sockaddr *)&a.ss);
	at.where = ZONE_ANY;
	if (l->h.zones.n) {
		/* The tables' slot where it answers, a walk where it does not. */
		b[0] = zone_lookup(l->h.pool, &l->h.zones, &l->h.tiers, at.zone, hash, &at.where);
		if (b[0] == MAGLEV_NONE)
			b[0] = hashed_pick(&l->h, at.zone, hash, NULL, NULL, &at.where);
		n = b[0] != MAGLEV_NONE;
	} else {
		b[0] = hashed_lookup(&l->h, hash);
		n = b[0] != MAGLEV_NONE;
	}
	if (l->opt->preference > 0)
		n = preference(l, at.zone, hash, b, l->opt->preference);
	if (n == 0) {
		if (lineno)
			snprintf(where, sizeof(where), "stdin:%lu: ", lineno);
		fprintf(stderr, "tcphash: %sclient '%s': no backend available\n", where, client);
		l->unanswered++;
	}
	if (l->opt->json)
		print_json(l, client, b, n, &at);
	else
		print_text(l, client, b, n, &at);
}

/* Trims blanks and the line end in place. */
static char *trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' ||
			 s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

int run_lookup(const struct options *opt, char **clients, int nclients)
{
	static char outbuf[1 << 16];
	struct lookup l;
	char err[ERR_LEN];
	int rc;

	memset(&l, 0, sizeof(l));
	l.opt = opt;
	if (hashed_load(&l.h, opt->pool_path, opt->down_names, opt->ndown, err) < 0) {
		fprintf(stderr, "tcphash: %s\n", err);
		return 2;
	}
	l.with_port = l.h.pool->hash_key == HASH_KEY_IP_PORT;
	l.zone = POOL_ZONE_NONE;
	if (opt->zone && (l.zone = pool_find_zone(l.h.pool, opt->zone)) == POOL_ZONE_NONE) {
		fprintf(stderr, "tcphash: --zone: no zone named '%s' in %s\n", opt->zone,
			opt->pool_path);
		hashed_free(&l.h);
		return 2;
	}
	setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
	if (opt->json)
		fputs("[\n", stdout);
	if (nclients > 0) {
		for (int i = 0; i < nclients; i++)
			answer(&l, clients[i], 0);
	} else {
		char *line = NULL;
		size_t cap = 0;
		ssize_t len;
		unsigned long lineno = 0;

		while ((len = getline(&line, &cap, stdin)) != -1) {
			char *client;

			lineno++;
			/* A NUL would end the string early and pass off the rest. */
			if (memchr(line, '\0', (size_t)len) != NULL) {
				fprintf(stderr, "tcphash: stdin:%lu: invalid client: the line holds a NUL byte\n",
					lineno);
				l.bad++;
				continue;
			}
			client = trim(line);
			if (*client == '\0')
				continue;
			answer(&l, client, lineno);
		}
		free(line);
	}
	if (opt->json)
		fputs(l.records ? "\n]\n" : "]\n", stdout);
	hashed_free(&l.h);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("tcphash: stdout");
		return 2;
	}
	rc = l.bad ? 2 : l.unanswered ? 1 : 0;
	return rc;
}
