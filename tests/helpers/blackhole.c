/* blackhole: a listening port that never answers a SYN. It listens with a
 * backlog of 0, fills its own accept queue with connections from inside
 * the process and never accepts, so the kernel drops every further SYN
 * (net.ipv4.tcp_abort_on_overflow = 0, the default). Prints "ready" once
 * a connect to it hangs, then sleeps until killed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FILL_MAX 64
#define HANG_MS 300

static void usage(void)
{
	fprintf(stderr, "usage: blackhole ADDR:PORT\n");
	exit(2);
}

static int hostport_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len)
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

/* 1: connected, 0: still pending after HANG_MS, -1: failed. */
static int connect_try(const struct sockaddr_storage *ss, socklen_t len, int *fdp)
{
	struct pollfd pfd;
	int fd, err = 0;
	socklen_t errlen = sizeof(err);

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	*fdp = fd;
	if (connect(fd, (const struct sockaddr *)ss, len) == 0)
		return 1;
	if (errno != EINPROGRESS)
		return -1;
	pfd.fd = fd;
	pfd.events = POLLOUT;
	if (poll(&pfd, 1, HANG_MS) == 0)
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) < 0 || err != 0)
		return -1;
	return 1;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int lfd, one = 1, i;

	if (argc != 2 || hostport_parse(argv[1], &ss, &sslen) < 0)
		usage();
	lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0) {
		perror("blackhole: socket");
		return 1;
	}
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&ss, sslen) < 0 || listen(lfd, 0) < 0) {
		fprintf(stderr, "blackhole: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	/* The filling sockets stay open (and unaccepted) for the process's life. */
	for (i = 0; i < FILL_MAX; i++) {
		int fd = -1, rc = connect_try(&ss, sslen, &fd);

		if (rc < 0) {
			fprintf(stderr, "blackhole: filling the accept queue: %s\n", strerror(errno));
			return 1;
		}
		if (rc == 0) {
			close(fd);
			break;
		}
	}
	if (i == FILL_MAX) {
		fprintf(stderr, "blackhole: accept queue never filled\n");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
