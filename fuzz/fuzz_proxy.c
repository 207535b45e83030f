/* libFuzzer harness for what tcpdist reads from clients before anything
 * else (make fuzz): the PROXY protocol parser and the CIDR parser.
 *   - proxy_parse on the input whole, then on every prefix as reads would
 *     bring it: a prefix of a valid header must wait (0), never be refused;
 *     once refused, every longer prefix is refused too; the length is
 *     within the input and PROXY_HEADER_MAX.
 *   - a header that names a client, written again by proxy_write in both
 *     versions, must read back as the same client.
 *   - the input as text: cidr_parse, formatted and parsed again, must give
 *     the same network; as a list in a table, lookups must not fail. */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_client(const union proxy_addr *a, const union proxy_addr *b)
{
	if (a->sa.sa_family == AF_INET && b->sa.sa_family == AF_INET)
		return a->in.sin_addr.s_addr == b->in.sin_addr.s_addr &&
		       a->in.sin_port == b->in.sin_port;
	if (a->sa.sa_family == AF_INET6 && b->sa.sa_family == AF_INET6)
		return memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 16) == 0 &&
		       a->in6.sin6_port == b->in6.sin6_port;
	/* IPv4-mapped IPv6 is written as IPv4 */
	if (a->sa.sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr))
		return memcmp(&a->in6.sin6_addr.s6_addr[12], &b->in.sin_addr, 4) == 0 &&
		       a->in6.sin6_port == b->in.sin_port;
	return 0;
}

static void fuzz_proxy(const uint8_t *data, size_t size)
{
	struct proxy_info info, again;
	char why[256];
	int rc = proxy_parse(data, size, &info, why), refused = 0;
	size_t upto = size < 2 * PROXY_HEADER_MAX ? size : 2 * PROXY_HEADER_MAX;

	if (rc > (int)size || rc > PROXY_HEADER_MAX)
		abort();
	for (size_t k = 0; k <= upto; k++) {
		struct proxy_info part;
		int r = proxy_parse(data, k, &part, why);

		if (refused && r >= 0)
			abort(); /* refused, then accepted with more bytes */
		if (r < 0)
			refused = 1;
		if (rc > 0 && k < (size_t)rc && r != 0)
			abort(); /* a prefix of a valid header was not "wait" */
		if (rc > 0 && k >= (size_t)rc && r != rc)
			abort(); /* the same header, whatever follows it */
	}
	if (rc <= 0 || info.local)
		return;
	for (int v = PROXY_V1; v <= PROXY_V2; v++) {
		uint8_t out[PROXY_OUT_MAX];
		size_t n = proxy_write(v, &info.src.sa, &info.dst.sa, out);

		if (n > PROXY_OUT_MAX || proxy_parse(out, n, &again, why) != (int)n || again.local ||
		    !same_client(&info.src, &again.src))
			abort();
	}
}

static void fuzz_cidr(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), out[CIDR_TEXT_LEN], err[256];
	struct cidr c, c2;
	struct cidr_table t = {0};

	if (text == NULL)
		return;
	memcpy(text, data, size);
	text[size] = '\0';
	if (cidr_parse(text, &c, err) == 0) {
		cidr_format(&c, out, sizeof(out));
		if (cidr_parse(out, &c2, err) != 0 || memcmp(&c, &c2, sizeof(c)) != 0)
			abort();
	}
	if (cidr_table_add_list(&t, text, size & 1, err) == 0 && cidr_table_finish(&t) == 0) {
		struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
		struct sockaddr_in s4 = {.sin_family = AF_INET};

		if (size >= 16)
			memcpy(&s6.sin6_addr, data, 16);
		if (size >= 4)
			memcpy(&s4.sin_addr, data, 4);
		(void)cidr_table_match(&t, (struct sockaddr *)&s6);
		(void)cidr_table_match(&t, (struct sockaddr *)&s4);
	}
	cidr_table_free(&t);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_proxy(data, size);
	fuzz_cidr(data, size);
	return 0;
}
