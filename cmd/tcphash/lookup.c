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
};

static void print_text(struct lookup *l, const char *client, const unsigned *b, size_t n)
{
	const struct pool_backend *be = l->h.pool->backends;

	for (size_t i = 0; i < n; i++) {
		fputs_unlocked(client, stdout);
		putc_unlocked('\t', stdout);
		fputs_unlocked(be[b[i]].name, stdout);
		putc_unlocked('\t', stdout);
		fputs_unlocked(be[b[i]].addr_text, stdout);
		putc_unlocked('\n', stdout);
	}
}

static void print_json(struct lookup *l, const char *client, const unsigned *b, size_t n)
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

/* The first k available backends of the client's preference order in the
 * tier in use. */
static size_t preference(struct lookup *l, uint64_t hash, unsigned *out, size_t k)
{
	struct collect c = {l->h.down, out, 0, k};

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
	if (l->opt->preference > 0) {
		n = preference(l, hash, b, l->opt->preference);
	} else {
		b[0] = hashed_lookup(&l->h, hash);
		n = b[0] != MAGLEV_NONE;
	}
	if (n == 0) {
		if (lineno)
			snprintf(where, sizeof(where), "stdin:%lu: ", lineno);
		fprintf(stderr, "tcphash: %sclient '%s': no backend available\n", where, client);
		l->unanswered++;
	}
	if (l->opt->json)
		print_json(l, client, b, n);
	else
		print_text(l, client, b, n);
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
