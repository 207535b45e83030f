/* Event lines for scripts, one per membership change or user event, on stdout:
 *   member-join NAME ADDR:PORT key=value...
 *   user-event NAME PAYLOAD
 * Names, keys and values come from the network: bytes outside printable
 * ASCII, spaces, '\' and (in keys) '=' are written as \xHH. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcppeer.h"

void format_escaped(char *out, size_t outlen, const char *s, const char *also)
{
	size_t o = 0;

	for (const unsigned char *c = (const unsigned char *)s; *c && o + 5 < outlen; c++) {
		if (*c <= 0x20 || *c >= 0x7f || *c == '\\' || strchr(also, *c) != NULL)
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", *c);
		else
			out[o++] = (char)*c;
	}
	out[o] = '\0';
}

const char *node_addr_text(const struct node *n, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (n->addr.len == 4) {
		inet_ntop(AF_INET, n->addr.b, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, n->port);
	} else if (n->addr.len == 16) {
		inet_ntop(AF_INET6, n->addr.b, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, n->port);
	} else {
		snprintf(buf, len, "-");
	}
	return buf;
}

static int tag_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* serf's decodeTags: 0xFF and a map of strings; anything else is the old
 * single "role" tag. Returns the count, sorted by key (each key sits at the
 * start of a 384-byte key+value record). */
int tags_decode(const uint8_t *meta, size_t len, char keys[][128], char vals[][256], int max)
{
	struct mp_reader r;
	struct msg_tags t;
	struct msg_tag tag;
	struct wire_iter it;
	char (*rec)[384];
	int got = 0;

	if (len == 0)
		return 0;
	if (meta[0] != DESC_TAGS.type) {
		snprintf(keys[0], 128, "role");
		snprintf(vals[0], 256, "%.*s", (int)(len < 255 ? len : 255), (const char *)meta);
		vals[0][strnlen(vals[0], 255)] = '\0';
		return 1;
	}
	mp_reader_init(&r, meta + 1, len - 1);
	if (wire_decode(&DESC_TAGS, &r, &t) < 0)
		return 0;
	rec = calloc((size_t)max, sizeof(*rec));
	if (rec == NULL)
		return 0;
	wire_iter_init(&it, &t.tags);
	while (got < max && wire_iter_next(&it, &tag) == 1) {
		if (tag.keylen == 0 || tag.keylen > 127 || tag.vallen > 255 ||
		    memchr(tag.key, 0, tag.keylen) || memchr(tag.val, 0, tag.vallen))
			continue;
		memcpy(rec[got], tag.key, tag.keylen);
		rec[got][tag.keylen] = '\0';
		memcpy(rec[got] + 128, tag.val, tag.vallen);
		rec[got][128 + tag.vallen] = '\0';
		got++;
	}
	qsort(rec, (size_t)got, sizeof(*rec), tag_cmp);
	for (int i = 0; i < got; i++) {
		memcpy(keys[i], rec[i], 128);
		memcpy(vals[i], rec[i] + 128, 256);
	}
	free(rec);
	return got;
}

void events_member(void *ctx, const char *event, const struct node *n)
{
	static char keys[TAGS_MAX][128], vals[TAGS_MAX][256];
	char name[4 * PEER_NAME_MAX + 1], addr[ADDR_TEXT_LEN], k[4 * 128], v[4 * 256];
	int nt = tags_decode(n->meta, n->metalen, keys, vals, TAGS_MAX);

	format_escaped(name, sizeof(name), n->name, "");
	printf("%s %s %s", event, name, node_addr_text(n, addr, sizeof(addr)));
	for (int i = 0; i < nt; i++) {
		format_escaped(k, sizeof(k), keys[i], "=");
		format_escaped(v, sizeof(v), vals[i], "");
		printf(" %s=%s", k, v);
	}
	(void)ctx;
	putchar('\n');
	fflush(stdout);
}

/* user-event NAME PAYLOAD, both escaped as above (bytes, not C strings);
 * an empty payload prints no field. */
static void put_escaped(const uint8_t *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '\\')
			printf("\\x%02x", s[i]);
		else
			putchar(s[i]);
	}
}

void events_user(const uint8_t *name, size_t namelen, const uint8_t *payload, size_t payloadlen)
{
	fputs("user-event ", stdout);
	put_escaped(name, namelen);
	if (payloadlen > 0) {
		putchar(' ');
		put_escaped(payload, payloadlen);
	}
	putchar('\n');
	fflush(stdout);
}
