/* The client key that consistent hashing reads: SipHash-2-4 of the client's
 * address bytes (network order; IPv4-mapped IPv6 is IPv4), and with
 * hash_key = ip_port its port too, under the pool's 16-byte hash_seed. */
#ifndef TCPDIST_HASH_H
#define TCPDIST_HASH_H

#include <stdint.h>
#include <sys/socket.h>

#define HASH_SEED_LEN 16

uint64_t siphash24(const uint8_t key[HASH_SEED_LEN], const void *data, size_t len);

/* with_port: hash_key = ip_port. */
uint64_t hash_client(const uint8_t key[HASH_SEED_LEN], const struct sockaddr *sa, int with_port);

#endif
