/* PROXY protocol codec. The parser is strict where the specification is:
 * v1 is one line of printable ASCII ended by CRLF within 107 bytes, with
 * numbers free of leading zeros; v2 has its version, command, family and
 * protocol checked, its length bounded (PROXY_HEADER_MAX) and checked
 * against the address block of its family, and its TLVs walked so that
 * none reaches past the header (a CRC32C one is verified). Anything else
 * is refused as soon as a byte shows it, never guessed at. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "proxy.h"

static const uint8_t v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
				   0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
static const char v1_sig[] = "PROXY ";

#define PP2_TYPE_CRC32C 0x03

/* --- v1 -------------------------------------------------------------------- */

/* A decimal number of 1 to 5 digits without a leading zero, up to max. */
static int v1_number(const char *s, size_t n, unsigned max, unsigned *out)
{
	unsigned v = 0;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* Four numbers 0-255 joined by dots, no leading zeros (no octal doubt). */
static int v1_ipv4(const char *s, size_t n, struct in_addr *out)
{
	uint8_t b[4];
	size_t start = 0;
	int k = 0;

	for (size_t i = 0; i <= n; i++) {
		unsigned v;

		if (i < n && s[i] != '.')
			continue;
		if (k == 4 || v1_number(s + start, i - start, 255, &v) < 0)
			return -1;
		b[k++] = (uint8_t)v;
		start = i + 1;
	}
	if (k != 4)
		return -1;
	memcpy(&out->s_addr, b, 4);
	return 0;
}

static int v1_ipv6(const char *s, size_t n, struct in6_addr *out)
{
	char text[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof(text))
		return -1;
	memcpy(text, s, n);
	text[n] = '\0';
	return inet_pton(AF_INET6, text, out) == 1 ? 0 : -1;
}

/* The fields of a whole line (without "PROXY " and CRLF): "TCP4 SRC DST
 * SPORT DPORT", the same with TCP6, or UNKNOWN and anything. */
static int v1_fields(const char *s, size_t n, struct proxy_info *info, char *why)
{
	const char *tok[5];
	size_t len[5], k = 0, start = 0;
	unsigned sport, dport;
	int v6;

	if (n >= 7 && memcmp(s, "UNKNOWN", 7) == 0 && (n == 7 || s[7] == ' ')) {
		info->local = 1;
		return 0;
	}
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != ' ')
			continue;
		if (k == 5)
			return err_set(why, "v1: more than 5 fields");
		if (i == start)
			return err_set(why, "v1: empty field (two spaces in a row)");
		tok[k] = s + start;
		len[k++] = i - start;
		start = i + 1;
	}
	if (len[0] != 4 || (memcmp(tok[0], "TCP4", 4) != 0 && memcmp(tok[0], "TCP6", 4) != 0))
		return err_set(why, "v1: unknown protocol (expected TCP4, TCP6 or UNKNOWN)");
	if (k != 5)
		return err_set(why, "v1: %zu fields, expected 5", k);
	v6 = tok[0][3] == '6';
	memset(&info->src, 0, sizeof(info->src));
	memset(&info->dst, 0, sizeof(info->dst));
	if (v1_number(tok[3], len[3], 65535, &sport) < 0 ||
	    v1_number(tok[4], len[4], 65535, &dport) < 0)
		return err_set(why, "v1: invalid port");
	if (!v6) {
		if (v1_ipv4(tok[1], len[1], &info->src.in.sin_addr) < 0 ||
		    v1_ipv4(tok[2], len[2], &info->dst.in.sin_addr) < 0)
			return err_set(why, "v1: invalid IPv4 address");
		info->src.in.sin_family = info->dst.in.sin_family = AF_INET;
		info->src.in.sin_port = htons((uint16_t)sport);
		info->dst.in.sin_port = htons((uint16_t)dport);
	} else {
		if (v1_ipv6(tok[1], len[1], &info->src.in6.sin6_addr) < 0 ||
		    v1_ipv6(tok[2], len[2], &info->dst.in6.sin6_addr) < 0)
			return err_set(why, "v1: invalid IPv6 address");
		info->src.in6.sin6_family = info->dst.in6.sin6_family = AF_INET6;
		info->src.in6.sin6_port = htons((uint16_t)sport);
		info->dst.in6.sin6_port = htons((uint16_t)dport);
	}
	info->local = 0;
	return 0;
}

static int v1_parse(const uint8_t *b, size_t len, struct proxy_info *info, char *why)
{
	static const char *const protos[] = {"TCP4 ", "TCP6 ", "UNKNOWN"};
	size_t n = len < PROXY_V1_MAX ? len : PROXY_V1_MAX, p = sizeof(v1_sig) - 1;
	int maybe = 0;

	if (memcmp(b, v1_sig, len < p ? len : p) != 0)
		return err_set(why, "not a PROXY header");
	/* The protocol is known from its first bytes: refuse a wrong one now. */
	for (int i = 0; i < 3 && len > p; i++) {
		size_t m = strlen(protos[i]);

		maybe |= memcmp(b + p, protos[i], len - p < m ? len - p : m) == 0;
	}
	if (len > p && !maybe)
		return err_set(why, "v1: unknown protocol (expected TCP4, TCP6 or UNKNOWN)");
	for (size_t i = 0; i < n; i++) {
		if (b[i] == '\r') {
			if (i + 2 > PROXY_V1_MAX)
				break;
			if (i + 1 == len)
				return 0;
			if (b[i + 1] != '\n')
				return err_set(why, "v1: CR without LF");
			info->version = PROXY_V1;
			if (v1_fields((const char *)b + p, i - p, info, why) < 0)
				return -1;
			return (int)(i + 2);
		}
		if (b[i] < 0x20 || b[i] > 0x7e)
			return err_set(why, "v1: control or non-ASCII byte 0x%02x", b[i]);
	}
	if (n == PROXY_V1_MAX)
		return err_set(why, "v1: no CRLF within %d bytes", PROXY_V1_MAX);
	return 0;
}

/* --- v2 -------------------------------------------------------------------- */

/* CRC32C (Castagnoli) of the header with its checksum field taken as 0. */
static uint32_t crc32c_header(const uint8_t *b, size_t len, size_t zero_at)
{
	uint32_t crc = 0xffffffffu;

	for (size_t i = 0; i < len; i++) {
		crc ^= (i >= zero_at && i < zero_at + 4) ? 0 : b[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return ~crc;
}

/* Every TLV within [off, total), none reaching past it. */
static int v2_tlvs(const uint8_t *b, size_t off, size_t total, char *why)
{
	while (off < total) {
		size_t tlen;

		if (total - off < 3)
			return err_set(why, "v2: a TLV cut short");
		tlen = (size_t)b[off + 1] << 8 | b[off + 2];
		if (tlen > total - off - 3)
			return err_set(why, "v2: a TLV of %zu bytes reaches past the header", tlen);
		if (b[off] == PP2_TYPE_CRC32C) {
			uint32_t want;

			if (tlen != 4)
				return err_set(why, "v2: a CRC32C TLV of %zu bytes", tlen);
			want = (uint32_t)b[off + 3] << 24 | (uint32_t)b[off + 4] << 16 |
			       (uint32_t)b[off + 5] << 8 | b[off + 6];
			if (crc32c_header(b, total, off + 3) != want)
				return err_set(why, "v2: CRC32C mismatch");
		}
		off += 3 + tlen;
	}
	return 0;
}

static int v2_parse(const uint8_t *b, size_t len, struct proxy_info *info, char *why)
{
	static const size_t addr_len[] = {0, 12, 36, 216}; /* by family */
	unsigned cmd, fam, proto;
	size_t total, alen;

	if (memcmp(b, v2_sig, len < sizeof(v2_sig) ? len : sizeof(v2_sig)) != 0)
		return err_set(why, "not a PROXY header");
	if (len < 13)
		return 0;
	if (b[12] >> 4 != 2)
		return err_set(why, "v2: version %u", b[12] >> 4);
	cmd = b[12] & 0xf;
	if (cmd > 1)
		return err_set(why, "v2: unknown command %u", cmd);
	if (len < 14)
		return 0;
	fam = b[13] >> 4;
	proto = b[13] & 0xf;
	if (fam > 3 || proto > 2)
		return err_set(why, "v2: unknown family or protocol 0x%02x", b[13]);
	if (len < PROXY_V2_HEAD)
		return 0;
	total = PROXY_V2_HEAD + ((size_t)b[14] << 8 | b[15]);
	if (total > PROXY_HEADER_MAX)
		return err_set(why, "v2: header of %zu bytes (at most %d)", total, PROXY_HEADER_MAX);
	alen = fam && proto ? addr_len[fam] : 0;
	if (total - PROXY_V2_HEAD < alen)
		return err_set(why, "v2: %zu address bytes, family 0x%02x needs %zu",
			       total - PROXY_V2_HEAD, b[13], alen);
	if (len < total)
		return 0;
	/* An unspecified family or protocol says nothing of where TLVs begin. */
	if (fam && proto && v2_tlvs(b, PROXY_V2_HEAD + alen, total, why) < 0)
		return -1;
	info->version = PROXY_V2;
	info->local = cmd == 0 || !(fam == 1 || fam == 2) || proto == 0;
	if (info->local)
		return (int)total;
	memset(&info->src, 0, sizeof(info->src));
	memset(&info->dst, 0, sizeof(info->dst));
	b += PROXY_V2_HEAD;
	if (fam == 1) {
		info->src.in.sin_family = info->dst.in.sin_family = AF_INET;
		memcpy(&info->src.in.sin_addr, b, 4);
		memcpy(&info->dst.in.sin_addr, b + 4, 4);
		memcpy(&info->src.in.sin_port, b + 8, 2);
		memcpy(&info->dst.in.sin_port, b + 10, 2);
	} else {
		info->src.in6.sin6_family = info->dst.in6.sin6_family = AF_INET6;
		memcpy(&info->src.in6.sin6_addr, b, 16);
		memcpy(&info->dst.in6.sin6_addr, b + 16, 16);
		memcpy(&info->src.in6.sin6_port, b + 32, 2);
		memcpy(&info->dst.in6.sin6_port, b + 34, 2);
	}
	return (int)total;
}

int proxy_parse(const void *buf, size_t len, struct proxy_info *info, char *why)
{
	const uint8_t *b = buf;

	if (len == 0)
		return 0;
	if (b[0] == v2_sig[0])
		return v2_parse(b, len, info, why);
	return v1_parse(b, len, info, why);
}

/* --- writing --------------------------------------------------------------- */

/* An address as the header carries it: IPv4-mapped IPv6 as IPv4; with
 * to6, IPv4 as IPv4-mapped IPv6. 0 if not IPv4 or IPv6. */
static int addr_norm(const struct sockaddr *sa, union proxy_addr *out, int to6)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		if (!to6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			out->in.sin_family = AF_INET;
			out->in.sin_port = s6->sin6_port;
			memcpy(&out->in.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
		} else {
			out->in6 = *s6;
		}
		return AF_INET6;
	}
	if (sa->sa_family != AF_INET)
		return 0;
	if (!to6) {
		out->in = *(const struct sockaddr_in *)sa;
		return AF_INET;
	}
	out->in6.sin6_family = AF_INET6;
	out->in6.sin6_port = ((const struct sockaddr_in *)sa)->sin_port;
	out->in6.sin6_addr.s6_addr[10] = out->in6.sin6_addr.s6_addr[11] = 0xff;
	memcpy(&out->in6.sin6_addr.s6_addr[12], &((const struct sockaddr_in *)sa)->sin_addr, 4);
	return AF_INET6;
}

/* Both addresses in one family, IPv6 if they differ: its AF_, or 0. */
static int pair_norm(const struct sockaddr *src, const struct sockaddr *dst, union proxy_addr *s,
		     union proxy_addr *d)
{
	if (src == NULL || dst == NULL || !addr_norm(src, s, 0) || !addr_norm(dst, d, 0))
		return 0;
	if (s->sa.sa_family != d->sa.sa_family) {
		addr_norm(src, s, 1);
		addr_norm(dst, d, 1);
	}
	return s->sa.sa_family;
}

size_t proxy_write(enum proxy_version v, const struct sockaddr *src, const struct sockaddr *dst,
		   void *out)
{
	union proxy_addr s, d;
	int fam = pair_norm(src, dst, &s, &d);
	uint8_t *b = out;

	if (v == PROXY_V1) {
		char st[INET6_ADDRSTRLEN], dt[INET6_ADDRSTRLEN];
		int n;

		if (fam == 0)
			return (size_t)snprintf(out, PROXY_OUT_MAX, "PROXY UNKNOWN\r\n");
		if (fam == AF_INET) {
			inet_ntop(AF_INET, &s.in.sin_addr, st, sizeof(st));
			inet_ntop(AF_INET, &d.in.sin_addr, dt, sizeof(dt));
		} else {
			inet_ntop(AF_INET6, &s.in6.sin6_addr, st, sizeof(st));
			inet_ntop(AF_INET6, &d.in6.sin6_addr, dt, sizeof(dt));
		}
		n = snprintf(out, PROXY_OUT_MAX, "PROXY TCP%c %s %s %u %u\r\n",
			     fam == AF_INET ? '4' : '6', st, dt,
			     ntohs(fam == AF_INET ? s.in.sin_port : s.in6.sin6_port),
			     ntohs(fam == AF_INET ? d.in.sin_port : d.in6.sin6_port));
		return (size_t)n;
	}
	memcpy(b, v2_sig, sizeof(v2_sig));
	if (src == NULL) { /* LOCAL */
		b[12] = 0x20;
		memset(b + 13, 0, 3);
		return PROXY_V2_HEAD;
	}
	b[12] = 0x21;
	if (fam == AF_INET) {
		b[13] = 0x11;
		b[14] = 0;
		b[15] = 12;
		memcpy(b + 16, &s.in.sin_addr, 4);
		memcpy(b + 20, &d.in.sin_addr, 4);
		memcpy(b + 24, &s.in.sin_port, 2);
		memcpy(b + 26, &d.in.sin_port, 2);
		return PROXY_V2_HEAD + 12;
	}
	if (fam == AF_INET6) {
		b[13] = 0x21;
		b[14] = 0;
		b[15] = 36;
		memcpy(b + 16, &s.in6.sin6_addr, 16);
		memcpy(b + 32, &d.in6.sin6_addr, 16);
		memcpy(b + 48, &s.in6.sin6_port, 2);
		memcpy(b + 50, &d.in6.sin6_port, 2);
		return PROXY_V2_HEAD + 36;
	}
	memset(b + 13, 0, 3); /* a client of another family: PROXY, UNSPEC */
	return PROXY_V2_HEAD;
}
