/* Networks as users write them (10.0.0.0/8, 2001:db8::/32, a bare address
 * for one host) and tables of them matched by the longest prefix. */
#ifndef TCPDIST_CIDR_H
#define TCPDIST_CIDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "err.h"

#define CIDR_TEXT_LEN 52 /* INET6_ADDRSTRLEN, "/128" and its NUL */

struct cidr {
	uint8_t addr[16]; /* IPv4 in the first 4 bytes; host bits are 0 */
	uint8_t bits;     /* prefix length: 0-32 for IPv4, 0-128 for IPv6 */
	uint8_t v6;
};

struct cidr_entry {
	struct cidr net;
	int tag; /* the caller's: of two entries for one network the higher wins */
};

struct cidr_group; /* entries of one family and prefix length */

/* Entries sorted for lookup: cidr_table_add, then cidr_table_finish. */
struct cidr_table {
	struct cidr_entry *e;
	size_t n, cap;
	struct cidr_group *groups;
	size_t ngroups;
};

/* "ADDR/BITS" or "ADDR": -1 with err on a bad address, a length out of
 * range, or host bits set below the length (10.1.0.0/8). */
int cidr_parse(const char *text, struct cidr *out, char *err);
void cidr_format(const struct cidr *c, char *buf, size_t len);

/* Each network of a list separated by commas and blanks; -1 with err on
 * the first bad one (or when out of memory). */
int cidr_table_add_list(struct cidr_table *t, const char *list, int tag, char *err);
int cidr_table_add(struct cidr_table *t, const struct cidr *c, int tag);
int cidr_table_finish(struct cidr_table *t);
void cidr_table_free(struct cidr_table *t);

/* The entry with the longest prefix that holds the address of sa (IPv4,
 * or IPv6; IPv4-mapped IPv6 counts as IPv4), or NULL. */
const struct cidr_entry *cidr_table_match(const struct cidr_table *t, const struct sockaddr *sa);

/* The address of sa as a table keys it: 16 bytes (IPv4 in the first 4),
 * and whether it is IPv6. -1 if sa is neither. */
int cidr_key(const struct sockaddr *sa, uint8_t key[16], int *v6);

#endif
