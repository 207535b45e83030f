/* Socket addresses as users write them: 1.2.3.4:80, [::1]:80, host:port. */
#ifndef TCPDIST_ADDR_H
#define TCPDIST_ADDR_H

#include <stdint.h>
#include <sys/socket.h>

#include "err.h"

/* Enough for "[" + INET6_ADDRSTRLEN + "]:" + port. */
#define ADDR_TEXT_LEN 64

struct addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

enum {
	ADDR_ALLOW_PORT0 = 1 << 0, /* listen addresses may ask for an ephemeral port */
	ADDR_NO_RESOLVE = 1 << 1,  /* numeric only: never consult DNS */
	/* A host name is checked for its form only, never looked up, and out is
	 * left empty (AF_UNSPEC, len 0): for validating without waiting on DNS. */
	ADDR_NAME_UNCHECKED = 1 << 2,
};

/* Parses and, for a host name, resolves (getaddrinfo, first answer). */
int addr_parse(const char *text, int flags, struct addr *out, char *err);

/* The host and port of HOST:PORT text, for a name addr_parse() left
 * unresolved (ADDR_NAME_UNCHECKED) and looked up elsewhere (getaddrinfo_a). */
int addr_host_port(const char *text, char *host, size_t hostlen, uint16_t *port, char *err);

/* out from one answer of a lookup, with port. */
void addr_from_lookup(struct addr *out, const struct sockaddr *sa, socklen_t len, uint16_t port);

/* A failed lookup (an EAI_* code) in words, as addr_parse() puts it; returns -1. */
int addr_resolve_error(char *err, const char *host, int eai);

/* A client as users write it, numeric only, port optional: 1.2.3.4,
 * 1.2.3.4:5678, ::1, [::1], [::1]:5678. *has_port tells if one was given. */
int addr_parse_client(const char *text, struct addr *out, int *has_port, char *err);

/* "1.2.3.4:80" or "[::1]:80"; IPv4-mapped IPv6 is shown as IPv4. */
const char *addr_format(const struct sockaddr *sa, char *buf, unsigned long len);

/* Same address and port (IPv4-mapped IPv6 equal to its IPv4). */
int addr_equal(const struct addr *a, const struct addr *b);

#endif
