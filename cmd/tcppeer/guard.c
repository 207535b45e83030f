/* Who may talk to us and how fast: --allow networks (none given: everyone),
 * and token buckets per source for probes (per address and port, as each
 * member sends from its own port) and for inbound streams (per address).
 * The bucket table has a fixed size; a new source takes the slot least
 * recently used among the few it hashes to. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "num.h"
#include "tcppeer.h"

#define PROBE_RATE 50.0  /* pings and indirect pings a second from one member */
#define PROBE_BURST 100.0
#define STREAM_RATE 20.0 /* streams a second from one address */
#define STREAM_BURST 50.0
#define LIMITER_WAYS 8

/* A token bucket per source, for probes and for streams. */
struct limiter_entry {
	struct ipbytes ip;
	uint16_t port;
	uint8_t kind, used;
	double tokens, last;
};

/* The module's state: the buckets of LIMITER_SLOTS sources, allocated at
 * the first request counted. */
struct guard {
	struct limiter_entry slot[LIMITER_SLOTS];
};

int allow_net_parse(const char *s, struct allow_net *c, char *err)
{
	char text[INET6_ADDRSTRLEN + 8], numerr[ERR_LEN], *slash;
	long long bits;

	memset(c, 0, sizeof(*c));
	if (strlen(s) >= sizeof(text))
		return err_set(err, "'%s' is not ADDR[/BITS]", s);
	snprintf(text, sizeof(text), "%s", s);
	slash = strchr(text, '/');
	if (slash != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, text, c->b) == 1)
		c->len = 4;
	else if (inet_pton(AF_INET6, text, c->b) == 1)
		c->len = 16;
	else
		return err_set(err, "'%s' is not ADDR[/BITS]", s);
	bits = c->len * 8;
	if (slash != NULL && num_parse(slash, 0, c->len * 8, &bits, numerr) < 0)
		return err_set(err, "'%s': prefix length: %s", s, numerr);
	c->bits = (uint8_t)bits;
	/* 10.1.2.3/8 means 10.0.0.0/8. */
	for (int i = 0; i < c->len; i++) {
		int keep = c->bits - i * 8;

		if (keep <= 0)
			c->b[i] = 0;
		else if (keep < 8)
			c->b[i] &= (uint8_t)(0xff << (8 - keep));
	}
	return 0;
}

/* The source as 4 bytes for IPv4 and IPv4-mapped IPv6, else 16. */
static int source_of(const struct sockaddr *sa, struct ipbytes *ip, uint16_t *port)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		memcpy(ip->b, &sin->sin_addr, 4);
		ip->len = 4;
		*port = ntohs(sin->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			memcpy(ip->b, sin6->sin6_addr.s6_addr + 12, 4);
			ip->len = 4;
		} else {
			memcpy(ip->b, &sin6->sin6_addr, 16);
			ip->len = 16;
		}
		*port = ntohs(sin6->sin6_port);
		return 0;
	}
	return -1;
}

void guard_source(const struct peer *p, const struct sockaddr *sa, struct ipbytes *ip)
{
	uint16_t port;

	(void)p;
	memset(ip, 0, sizeof(*ip));
	source_of(sa, ip, &port);
}

static int allow_net_match(const struct allow_net *c, const struct ipbytes *ip)
{
	int full = c->bits / 8, rest = c->bits % 8;

	if (c->len != ip->len || memcmp(c->b, ip->b, (size_t)full) != 0)
		return 0;
	return rest == 0 || ((ip->b[full] ^ c->b[full]) & (0xff << (8 - rest))) == 0;
}

int guard_allowed(const struct peer *p, const struct sockaddr *sa)
{
	struct ipbytes ip;
	uint16_t port;

	if (p->cfg.nallow == 0)
		return 1;
	if (source_of(sa, &ip, &port) < 0)
		return 0;
	for (int i = 0; i < p->cfg.nallow; i++)
		if (allow_net_match(&p->cfg.allow[i], &ip))
			return 1;
	return 0;
}

static uint32_t source_hash(enum limit_kind kind, const struct ipbytes *ip, uint16_t port)
{
	uint32_t h = 2166136261u ^ (uint32_t)kind;

	for (int i = 0; i < ip->len; i++)
		h = (h ^ ip->b[i]) * 16777619u;
	h = (h ^ (port & 0xff)) * 16777619u;
	return (h ^ (port >> 8)) * 16777619u;
}

int guard_rate_ok(struct peer *p, enum limit_kind kind, const struct sockaddr *sa)
{
	double rate = kind == LIMIT_PROBE ? PROBE_RATE : STREAM_RATE;
	double burst = kind == LIMIT_PROBE ? PROBE_BURST : STREAM_BURST;
	double now = peer_now(p);
	struct limiter_entry *e = NULL, *victim = NULL;
	struct ipbytes ip;
	uint16_t port;
	uint32_t h;

	if (source_of(sa, &ip, &port) < 0)
		return 1;
	if (kind == LIMIT_STREAM)
		port = 0; /* a stream's source port is ephemeral */
	if (p->guard == NULL) {
		p->guard = calloc(1, sizeof(*p->guard));
		if (p->guard == NULL)
			return 1;
	}
	h = source_hash(kind, &ip, port);
	for (int i = 0; i < LIMITER_WAYS; i++) {
		struct limiter_entry *c = &p->guard->slot[(h + (uint32_t)i) % LIMITER_SLOTS];

		if (c->used && c->kind == kind && c->port == port && c->ip.len == ip.len &&
		    memcmp(c->ip.b, ip.b, ip.len) == 0) {
			e = c;
			break;
		}
		if (victim == NULL || !c->used || (victim->used && c->last < victim->last))
			victim = c;
	}
	if (e == NULL) {
		e = victim;
		e->used = 1;
		e->kind = (uint8_t)kind;
		e->ip = ip;
		e->port = port;
		e->tokens = burst;
		e->last = now;
	}
	e->tokens += (now - e->last) * rate;
	if (e->tokens > burst)
		e->tokens = burst;
	e->last = now;
	if (e->tokens < 1.0) {
		p->stats.rate_limited++;
		return 0;
	}
	e->tokens -= 1.0;
	return 1;
}

void guard_free(struct peer *p)
{
	free(p->guard);
	p->guard = NULL;
}
