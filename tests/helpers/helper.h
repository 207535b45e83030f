/* helper.h: what the test helpers share (address parsing, connecting,
 * listening, small utilities). Each helper is one .c file built alone, so
 * everything here is static inline: a helper that does not use a function
 * gets no copy of it and no unused-function warning. Include it first. */
#ifndef TESTS_HELPERS_HELPER_H
#define TESTS_HELPERS_HELPER_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* "1.2.3.4:80", "[::1]:80" or "host:80" (numeric port): 0, or -1. */
static inline int hostport_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	const char *port;
	struct addrinfo hints, *res;
	size_t n;

	if (text[0] == '[') {
		const char *end = strchr(text, ']');
		if (end == NULL || end[1] != ':')
			return -1;
		n = (size_t)(end - text - 1);
		if (n >= sizeof(host))
			return -1;
		memcpy(host, text + 1, n);
		host[n] = '\0';
		port = end + 2;
	} else {
		const char *colon = strrchr(text, ':');
		if (colon == NULL)
			return -1;
		n = (size_t)(colon - text);
		if (n >= sizeof(host))
			return -1;
		memcpy(host, text, n);
		host[n] = '\0';
		port = colon + 1;
	}
	if (*port == '\0')
		return -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* A decimal number (strtol, base 10, whole string) in [lo, hi]: 0 with
 * *out set, or -1. As with strtol, an empty string reads as 0. */
static inline int long_parse(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* Monotonic clock in milliseconds. */
static inline int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends all of buf (retrying on EINTR, no SIGPIPE): 0, or -1 with errno set. */
static inline int write_all(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Finishes ctx and writes its digest as lowercase hex (2 * size + 1 bytes). */
static inline void hex_digest(EVP_MD_CTX *ctx, char *hex)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	EVP_DigestFinal_ex(ctx, md, &mdlen);
	for (unsigned int i = 0; i < mdlen; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
}

/* A blocking TCP connection to ss: the socket, or -1 with errno set. */
static inline int tcp_connect(const struct sockaddr_storage *ss, socklen_t len)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)ss, len) < 0) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* Starts a non-blocking TCP connect to ss. *fdp gets the socket (-1 if none
 * could be made). Returns 1 if already connected, 0 if in progress, -1 if
 * it failed (errno set). */
static inline int connect_start(const struct sockaddr_storage *ss, socklen_t len, int *fdp)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	*fdp = fd;
	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)ss, len) == 0)
		return 1;
	return errno == EINPROGRESS ? 0 : -1;
}

/* The socket's pending error (SO_ERROR), 0 if none; errno if it cannot be read. */
static inline int sock_error(int fd)
{
	int err = 0;
	socklen_t errlen = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) < 0)
		return errno;
	return err;
}

/* A TCP socket listening on ss with SO_REUSEADDR (and IPV6_V6ONLY for an
 * IPv6 address). On failure prints "PROG: socket: REASON" or
 * "PROG: TEXT: REASON" on stderr and returns -1. */
static inline int tcp_listen(const char *prog, const struct sockaddr_storage *ss, socklen_t len,
			     const char *text, int backlog)
{
	int fd, one = 1;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "%s: socket: %s\n", prog, strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)ss, len) < 0 || listen(fd, backlog) < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, text, strerror(errno));
		return -1;
	}
	return fd;
}

/* Accepts on the listening socket fd forever, serving each connection on a
 * detached thread as serve((void *)(long)cfd); stacksize 0 keeps the default
 * stack. Out of descriptors or memory, it pauses 10 ms before the next try;
 * a connection no thread can be made for is closed. */
static inline _Noreturn void accept_forever(int fd, void *(*serve)(void *), size_t stacksize)
{
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (stacksize > 0)
		pthread_attr_setstacksize(&attr, stacksize);
	for (;;) {
		pthread_t tid;
		int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

		if (cfd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				struct timespec ts = {0, 10 * 1000000L};
				nanosleep(&ts, NULL);
			}
			continue;
		}
		if (pthread_create(&tid, &attr, serve, (void *)(long)cfd) != 0)
			close(cfd);
	}
}

#endif
