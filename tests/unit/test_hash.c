/* siphash24 against the reference vectors and libsodium; hash_client keys. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <string.h>

#include "hash.h"
#include "unit.h"

static const uint8_t ref_key[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/* From the SipHash paper's appendix (key 00..0f, message 00..0e, 15 bytes)
 * and the reference implementation's vectors for lengths 0 and 8. */
TEST(reference_vectors)
{
	uint8_t msg[15];

	for (int i = 0; i < 15; i++)
		msg[i] = (uint8_t)i;
	CHECK(siphash24(ref_key, msg, 15) == 0xa129ca6149be45e5ULL);
	CHECK(siphash24(ref_key, msg, 0) == 0x726fdb47dd0e0e31ULL);
	CHECK(siphash24(ref_key, msg, 8) == 0x93f5f5799a932462ULL);
}

TEST(matches_libsodium_for_every_length_to_64)
{
	uint8_t msg[64], key[16], out[8];
	uint64_t want;

	REQUIRE(sodium_init() >= 0);
	for (int round = 0; round < 50; round++) {
		randombytes_buf(key, sizeof(key));
		randombytes_buf(msg, sizeof(msg));
		for (size_t len = 0; len <= sizeof(msg); len++) {
			crypto_shorthash_siphash24(out, msg, len, key);
			want = (uint64_t)out[0] | (uint64_t)out[1] << 8 | (uint64_t)out[2] << 16 |
			       (uint64_t)out[3] << 24 | (uint64_t)out[4] << 32 |
			       (uint64_t)out[5] << 40 | (uint64_t)out[6] << 48 |
			       (uint64_t)out[7] << 56;
			if (!CHECK(siphash24(key, msg, len) == want))
				return;
		}
	}
}

static uint64_t client_hash(const char *ip, unsigned port, int with_port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};

	if (inet_pton(AF_INET, ip, &sin.sin_addr) == 1)
		return hash_client(ref_key, (struct sockaddr *)&sin, with_port);
	inet_pton(AF_INET6, ip, &sin6.sin6_addr);
	return hash_client(ref_key, (struct sockaddr *)&sin6, with_port);
}

TEST(client_key_is_the_address_bytes_in_network_order)
{
	const uint8_t v4[4] = {10, 1, 2, 3};
	const uint8_t v4port[6] = {10, 1, 2, 3, 0x1f, 0x90};

	CHECK(client_hash("10.1.2.3", 8080, 0) == siphash24(ref_key, v4, 4));
	CHECK(client_hash("10.1.2.3", 8080, 1) == siphash24(ref_key, v4port, 6));
}

TEST(ipv4_mapped_ipv6_hashes_as_ipv4)
{
	CHECK(client_hash("::ffff:10.1.2.3", 0, 0) == client_hash("10.1.2.3", 0, 0));
	CHECK(client_hash("::ffff:10.1.2.3", 99, 1) == client_hash("10.1.2.3", 99, 1));
	CHECK(client_hash("2001:db8::1", 0, 0) != client_hash("10.1.2.3", 0, 0));
}

TEST(port_matters_only_with_ip_port)
{
	CHECK(client_hash("192.0.2.7", 1000, 0) == client_hash("192.0.2.7", 2000, 0));
	CHECK(client_hash("192.0.2.7", 1000, 1) != client_hash("192.0.2.7", 2000, 1));
}

UNIT_MAIN(T(reference_vectors), T(matches_libsodium_for_every_length_to_64),
	  T(client_key_is_the_address_bytes_in_network_order), T(ipv4_mapped_ipv6_hashes_as_ipv4),
	  T(port_matters_only_with_ip_port))
