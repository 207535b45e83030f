/* The PROXY protocol, versions 1 and 2 (HAProxy's doc/proxy-protocol.txt):
 * the header a proxy puts before a connection's first byte to say whose
 * connection it relays. A pure codec: no sockets, no allocation.
 *
 * proxy_parse() takes the bytes received so far and says whether they hold
 * a whole valid header (and how long it is), a valid beginning of one, or
 * something that never will be: a receiver can call it after every read,
 * and refuses a bad header as soon as its first wrong byte arrives. */
#ifndef TCPDIST_PROXY_H
#define TCPDIST_PROXY_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROXY_V1_MAX 107 /* the longest v1 line, CRLF included */
#define PROXY_V2_HEAD 16 /* signature, version and command, family, length */
/* The longest header accepted: a v2 address block (216 bytes for AF_UNIX)
 * with room for TLVs (AWS, SSL, unique ID). Longer is refused at once. */
#define PROXY_HEADER_MAX 1024
/* The longest header proxy_write() makes: a v1 TCP6 line. */
#define PROXY_OUT_MAX 108

/* PROXY_OFF: no header (a pool's proxy_protocol = off). */
enum proxy_version { PROXY_OFF = 0, PROXY_V1 = 1, PROXY_V2 = 2 };

union proxy_addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

struct proxy_info {
	enum proxy_version version;
	/* 1: the header carries no client to use (v2 LOCAL, v1 UNKNOWN, or a
	 * family other than IPv4 and IPv6): the socket's addresses stand. */
	int local;
	union proxy_addr src, dst; /* when !local */
};

/* Returns the header's length when buf[0..len) begins with a whole valid
 * header (info filled), 0 when it is a valid beginning that needs more
 * bytes, -1 when it is not a PROXY header (why gets the reason, ERR_LEN). */
int proxy_parse(const void *buf, size_t len, struct proxy_info *info, char *why);

/* Writes a header for a connection from src to dst into out (at least
 * PROXY_OUT_MAX bytes) and returns its length. With src NULL: a v2 LOCAL
 * header, or the v1 line "PROXY UNKNOWN" (health checks). Addresses of
 * mixed families are both written as IPv6 (IPv4-mapped). */
size_t proxy_write(enum proxy_version v, const struct sockaddr *src, const struct sockaddr *dst,
		   void *out);

#endif
