#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "escape.h"
#include "num.h"

/* Messages quote what the user wrote, shortened so that the reason after it
 * always fits in ERR_LEN (and behind the pool loader's "FILE:LINE: key: "),
 * with control bytes as \xNN so that a message stays one line that cannot
 * drive a terminal (tcphash reads clients from logs). */
#define QUOTE_MAX 64

static const char *quote(const char *s, char buf[QUOTE_MAX + 4])
{
	const char *c = s, *rest;
	size_t o;

	while (*c && !is_control_byte((unsigned char)*c))
		c++;
	if (*c == '\0' && (size_t)(c - s) <= QUOTE_MAX)
		return s;
	o = escape_controls(buf, QUOTE_MAX - 3 + 1, s, &rest);
	if (*rest)
		memcpy(buf + o, "...", 4);
	return buf;
}

/* Splits "host:port" or "[v6]:port" into its parts; host may be empty. */
static int addr_split(const char *text, char *host, size_t hostlen, const char **port, char *err)
{
	const char *colon, *end;
	char q[QUOTE_MAX + 4];
	size_t n;

	if (text[0] == '[') {
		end = strchr(text, ']');
		if (end == NULL)
			return err_set(err, "'%s' has no closing ']'", quote(text, q));
		if (end[1] != ':')
			return err_set(err, "'%s' needs a port: [ADDRESS]:PORT", quote(text, q));
		n = (size_t)(end - text - 1);
		if (n == 0 || n >= hostlen)
			return err_set(err, "'%s' has an invalid IPv6 address", quote(text, q));
		memcpy(host, text + 1, n);
		host[n] = '\0';
		*port = end + 2;
		return 0;
	}
	colon = strrchr(text, ':');
	if (colon == NULL)
		return err_set(err, "'%s' needs a port: HOST:PORT", quote(text, q));
	if (memchr(text, ':', (size_t)(colon - text)) != NULL)
		return err_set(err, "'%s': write IPv6 addresses as [ADDRESS]:PORT", quote(text, q));
	n = (size_t)(colon - text);
	if (n >= hostlen)
		return err_set(err, "'%s': host name too long (at most %zu characters)",
			       quote(text, q), hostlen - 1);
	memcpy(host, text, n);
	host[n] = '\0';
	*port = colon + 1;
	return 0;
}

int addr_parse(const char *text, int flags, struct addr *out, char *err)
{
	struct addrinfo hints, *res;
	struct in_addr legacy;
	char host[256], numerr[ERR_LEN], q[QUOTE_MAX + 4], qp[QUOTE_MAX + 4];
	const char *portstr = NULL;
	long long port;
	int rc;

	if (text == NULL || *text == '\0')
		return err_set(err, "empty address");
	if (addr_split(text, host, sizeof(host), &portstr, err) < 0)
		return -1;
	if (num_parse(portstr, (flags & ADDR_ALLOW_PORT0) ? 0 : 1, 65535, &port, numerr) < 0)
		return err_set(err, "'%s': bad port '%s' (%d-65535)", quote(text, q),
			       quote(portstr, qp), (flags & ADDR_ALLOW_PORT0) ? 0 : 1);
	if (host[0] == '\0')
		return err_set(err, "'%s' has no host", quote(text, q));

	memset(out, 0, sizeof(*out));
	if (text[0] != '[') {
		struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;

		if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
			sin->sin_family = AF_INET;
			sin->sin_port = htons((uint16_t)port);
			out->len = sizeof(*sin);
			return 0;
		}
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;

		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return err_set(err, "'%s' has an invalid IPv6 address", quote(text, q));
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		out->len = sizeof(*sin6);
		return 0;
	}
	/* Numeric but not dotted-quad: getaddrinfo would take inet_aton's legacy
	 * forms (010.0.0.1 is 8.0.0.1, 127.1 is 127.0.0.1), and an all-numeric
	 * name is no host name either: say so rather than ask DNS. */
	if (strspn(host, "0123456789.") == strlen(host) || inet_aton(host, &legacy) != 0)
		return err_set(err, "'%s' has an invalid IPv4 address", quote(text, q));
	if (flags & ADDR_NO_RESOLVE)
		return err_set(err, "'%s' is not a numeric address", quote(text, q));
	if (flags & ADDR_NAME_UNCHECKED) {
		if (strspn(host, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_") !=
			    strlen(host) ||
		    host[0] == '.' || host[0] == '-' || strstr(host, "..") != NULL)
			return err_set(err, "'%s' is not a valid host name", quote(host, q));
		return 0;
	}

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0)
		return addr_resolve_error(err, host, rc);
	addr_from_lookup(out, res->ai_addr, res->ai_addrlen, (uint16_t)port);
	freeaddrinfo(res);
	return 0;
}

int addr_host_port(const char *text, char *host, size_t hostlen, uint16_t *port, char *err)
{
	char numerr[ERR_LEN], q[QUOTE_MAX + 4];
	const char *portstr = NULL;
	long long n;

	if (addr_split(text, host, hostlen, &portstr, err) < 0)
		return -1;
	if (num_parse(portstr, 0, 65535, &n, numerr) < 0)
		return err_set(err, "'%s': bad port", quote(text, q));
	*port = (uint16_t)n;
	return 0;
}

void addr_from_lookup(struct addr *out, const struct sockaddr *sa, socklen_t len, uint16_t port)
{
	memset(out, 0, sizeof(*out));
	if (len > sizeof(out->ss))
		len = sizeof(out->ss);
	memcpy(&out->ss, sa, len);
	out->len = len;
	if (out->ss.ss_family == AF_INET)
		((struct sockaddr_in *)&out->ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)&out->ss)->sin6_port = htons(port);
}

int addr_resolve_error(char *err, const char *host, int eai)
{
	char q[QUOTE_MAX + 4];

	return err_set(err, "cannot resolve '%s': %s", quote(host, q),
		       eai == EAI_SYSTEM ? "system error" : gai_strerror(eai));
}

int addr_parse_client(const char *text, struct addr *out, int *has_port, char *err)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
	char host[INET6_ADDRSTRLEN + 1], q[QUOTE_MAX + 4];
	const char *given = text, *port = NULL, *colon = strchr(text, ':');
	long long p = 0;
	size_t n;

	memset(out, 0, sizeof(*out));
	if (text[0] == '[') {
		const char *end = strchr(text, ']');

		if (end == NULL || (end[1] != '\0' && end[1] != ':'))
			return err_set(err, "invalid client '%s'", quote(given, q));
		n = (size_t)(end - text - 1);
		if (end[1] == ':')
			port = end + 2;
		text++;
	} else if (colon != NULL && strchr(colon + 1, ':') == NULL) {
		n = (size_t)(colon - text); /* one colon: IPv4 with a port */
		port = colon + 1;
	} else {
		n = strlen(text); /* no colon, or a bare IPv6 address */
	}
	if (n == 0 || n >= sizeof(host))
		return err_set(err, "invalid client '%s'", quote(given, q));
	memcpy(host, text, n);
	host[n] = '\0';
	if (port != NULL && num_parse(port, 0, 65535, &p, NULL) < 0)
		return err_set(err, "invalid port in client '%s'", quote(given, q));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		out->len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		out->len = sizeof(*sin6);
	} else {
		return err_set(err, "invalid client address '%s'", quote(host, q));
	}
	*has_port = port != NULL;
	return 0;
}

const char *addr_format(const struct sockaddr *sa, char *buf, unsigned long len)
{
	char ip[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], ip, sizeof(ip));
			snprintf(buf, len, "%s:%u", ip, ntohs(sin6->sin6_port));
		} else {
			inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
			snprintf(buf, len, "[%s]:%u", ip, ntohs(sin6->sin6_port));
		}
	} else {
		snprintf(buf, len, "(unknown family %d)", sa->sa_family);
	}
	return buf;
}

/* Reduces an address to 16 address bytes plus port, mapping IPv4 into ::ffff:0:0/96. */
static void addr_canonical(const struct addr *a, unsigned char ip[16], uint16_t *port)
{
	static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;

		memcpy(ip, v4mapped, 12);
		memcpy(ip + 12, &sin->sin_addr, 4);
		*port = sin->sin_port;
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;

		memcpy(ip, &sin6->sin6_addr, 16);
		*port = sin6->sin6_port;
	}
}

int addr_equal(const struct addr *a, const struct addr *b)
{
	unsigned char ia[16], ib[16];
	uint16_t pa, pb;

	addr_canonical(a, ia, &pa);
	addr_canonical(b, ib, &pb);
	return pa == pb && memcmp(ia, ib, 16) == 0;
}
