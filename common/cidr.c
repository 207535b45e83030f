/* CIDR networks and longest-prefix tables. A table is sorted once, when a
 * pool is loaded, by family, prefix length (longest first), network and tag
 * (highest first); a lookup masks the address to each length present, from
 * the longest, and searches that run: a few binary searches, whatever the
 * number of networks, and no allocation. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "escape.h"
#include "num.h"

struct cidr_group {
	uint8_t v6, bits;
	size_t start, end; /* entries [start, end) */
};

static void mask(uint8_t *a, unsigned bits, unsigned size)
{
	for (unsigned i = 0; i < size; i++) {
		unsigned keep = bits > 8 * i ? bits - 8 * i : 0;

		if (keep < 8)
			a[i] &= (uint8_t)(0xff00u >> keep);
	}
}

int cidr_parse(const char *text, struct cidr *out, char *err)
{
	char host[INET6_ADDRSTRLEN + 1], clip[TEXT_CLIP_LEN], num[ERR_LEN];
	const char *slash = strchr(text, '/');
	size_t n = slash ? (size_t)(slash - text) : strlen(text);
	uint8_t masked[16];
	long long bits;

	memset(out, 0, sizeof(*out));
	if (n == 0 || n >= sizeof(host))
		return err_set(err, "'%s' is not an address or network", text_clip(clip, text));
	memcpy(host, text, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, out->addr) == 1) {
		out->v6 = 0;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		out->v6 = 1;
	} else {
		return err_set(err, "'%s' is not an address or network", text_clip(clip, text));
	}
	bits = out->v6 ? 128 : 32;
	if (slash && num_parse(slash + 1, 0, bits, &bits, num) < 0)
		return err_set(err, "'%s': prefix length: %s", text_clip(clip, text), num);
	out->bits = (uint8_t)bits;
	memcpy(masked, out->addr, sizeof(masked));
	mask(masked, out->bits, out->v6 ? 16 : 4);
	if (memcmp(masked, out->addr, sizeof(masked)) != 0) {
		char net[CIDR_TEXT_LEN];
		struct cidr c = *out;

		memcpy(c.addr, masked, sizeof(masked));
		cidr_format(&c, net, sizeof(net));
		return err_set(err, "'%s' has host bits set (the network is %s)",
			       text_clip(clip, text), net);
	}
	return 0;
}

void cidr_format(const struct cidr *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(c->v6 ? AF_INET6 : AF_INET, c->addr, a, sizeof(a));
	snprintf(buf, len, "%s/%u", a, c->bits);
}

int cidr_key(const struct sockaddr *sa, uint8_t key[16], int *v6)
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		memcpy(key, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		*v6 = 0;
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -1;
	const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

	if (IN6_IS_ADDR_V4MAPPED(a)) {
		memcpy(key, &a->s6_addr[12], 4);
		*v6 = 0;
	} else {
		memcpy(key, a->s6_addr, 16);
		*v6 = 1;
	}
	return 0;
}

int cidr_table_add(struct cidr_table *t, const struct cidr *c, int tag)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		struct cidr_entry *e = realloc(t->e, cap * sizeof(*e));

		if (e == NULL)
			return -1;
		t->e = e;
		t->cap = cap;
	}
	t->e[t->n].net = *c;
	t->e[t->n].tag = tag;
	t->n++;
	return 0;
}

int cidr_table_add_list(struct cidr_table *t, const char *list, int tag, char *err)
{
	const char *s = list;

	for (;;) {
		char item[CIDR_TEXT_LEN + 16];
		struct cidr c;
		size_t n;

		s += strspn(s, ", \t");
		if (*s == '\0')
			return 0;
		n = strcspn(s, ", \t");
		if (n >= sizeof(item)) {
			char clip[TEXT_CLIP_LEN];

			memcpy(item, s, sizeof(item) - 1);
			item[sizeof(item) - 1] = '\0';
			return err_set(err, "'%s' is not an address or network", text_clip(clip, item));
		}
		memcpy(item, s, n);
		item[n] = '\0';
		if (cidr_parse(item, &c, err) < 0)
			return -1;
		if (cidr_table_add(t, &c, tag) < 0)
			return err_set(err, "out of memory");
		s += n;
	}
}

/* Family, then the longest prefix first, then network, then the highest tag. */
static int entry_cmp(const void *a, const void *b)
{
	const struct cidr_entry *x = a, *y = b;
	int c;

	if (x->net.v6 != y->net.v6)
		return x->net.v6 - y->net.v6;
	if (x->net.bits != y->net.bits)
		return y->net.bits - x->net.bits;
	if ((c = memcmp(x->net.addr, y->net.addr, 16)) != 0)
		return c;
	return (y->tag > x->tag) - (y->tag < x->tag);
}

int cidr_table_finish(struct cidr_table *t)
{
	size_t g = 0;

	free(t->groups);
	t->groups = NULL;
	t->ngroups = 0;
	if (t->n == 0)
		return 0;
	qsort(t->e, t->n, sizeof(*t->e), entry_cmp);
	for (size_t i = 0; i < t->n; i++)
		g += i == 0 || t->e[i].net.v6 != t->e[i - 1].net.v6 ||
		     t->e[i].net.bits != t->e[i - 1].net.bits;
	if ((t->groups = calloc(g, sizeof(*t->groups))) == NULL)
		return -1;
	for (size_t i = 0; i < t->n; i++) {
		struct cidr_group *cg = &t->groups[t->ngroups - (t->ngroups > 0)];

		if (t->ngroups == 0 || cg->v6 != t->e[i].net.v6 || cg->bits != t->e[i].net.bits) {
			cg = &t->groups[t->ngroups++];
			cg->v6 = t->e[i].net.v6;
			cg->bits = t->e[i].net.bits;
			cg->start = i;
		}
		cg->end = i + 1;
	}
	return 0;
}

void cidr_table_free(struct cidr_table *t)
{
	free(t->e);
	free(t->groups);
	memset(t, 0, sizeof(*t));
}

const struct cidr_entry *cidr_table_match(const struct cidr_table *t, const struct sockaddr *sa)
{
	uint8_t key[16];
	int v6;

	if (t->ngroups == 0 || cidr_key(sa, key, &v6) < 0)
		return NULL;
	for (size_t g = 0; g < t->ngroups; g++) {
		const struct cidr_group *cg = &t->groups[g];
		size_t lo = cg->start, hi = cg->end;
		uint8_t net[16];

		if (cg->v6 != v6)
			continue;
		memcpy(net, key, sizeof(net));
		mask(net, cg->bits, 16);
		/* The first entry not below net: the highest tag of its network. */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (memcmp(t->e[mid].net.addr, net, 16) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < cg->end && memcmp(t->e[lo].net.addr, net, 16) == 0)
			return &t->e[lo];
	}
	return NULL;
}
