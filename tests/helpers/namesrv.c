/* namesrv: a TCP backend for tests and demos. To every connection it
 * writes "NAME\n", then echoes what it receives until the client's EOF.
 * With --eof-line MS it then waits MS milliseconds and writes
 * "eof N\n" (N = bytes received) before closing, which proves that a
 * half-closed connection still carries data the other way. With --reset
 * it answers the first data it receives (after the name) by resetting the
 * connection (RST) instead of echoing. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *srv_name;
static long eof_line_ms = -1;
static int reset_mode;

static void usage(void)
{
	fprintf(stderr, "usage: namesrv [--eof-line MS | --reset] NAME ADDR:PORT\n");
	exit(2);
}

/* "1.2.3.4:80", "[::1]:80" or "host:80". */
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

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void *conn_serve(void *arg)
{
	int fd = (int)(long)arg;
	char buf[65536];
	unsigned long long total = 0;
	size_t namelen = strlen(srv_name);

	memcpy(buf, srv_name, namelen);
	buf[namelen] = '\n';
	if (write_all(fd, buf, namelen + 1) < 0)
		goto out;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		total += (unsigned long long)n;
		if (reset_mode) {
			struct linger lg = {1, 0};
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			goto out;
		}
		if (write_all(fd, buf, (size_t)n) < 0)
			goto out;
	}
	if (eof_line_ms >= 0) {
		struct timespec ts = {eof_line_ms / 1000, (eof_line_ms % 1000) * 1000000L};
		int len;

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		len = snprintf(buf, sizeof(buf), "eof %llu\n", total);
		(void)write_all(fd, buf, (size_t)len);
	}
out:
	close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"eof-line", required_argument, NULL, 'e'},
		{"help", no_argument, NULL, 'h'},
		{"reset", no_argument, NULL, 'r'},
		{NULL, 0, NULL, 0},
	};
	struct sockaddr_storage ss;
	socklen_t sslen;
	pthread_attr_t attr;
	int c, fd, one = 1;
	char *end;

	while ((c = getopt_long(argc, argv, "e:hr", longopts, NULL)) != -1) {
		switch (c) {
		case 'e':
			errno = 0;
			eof_line_ms = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || eof_line_ms < 0 || eof_line_ms > 3600000)
				usage();
			break;
		case 'r':
			reset_mode = 1;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 2 || (reset_mode && eof_line_ms >= 0) || argv[0][0] == '\0' || hostport_parse(argv[1], &ss, &sslen) < 0)
		usage();
	srv_name = argv[0];

	signal(SIGPIPE, SIG_IGN);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("namesrv: socket");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sslen) < 0 || listen(fd, 4096) < 0) {
		fprintf(stderr, "namesrv: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
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
		if (pthread_create(&tid, &attr, conn_serve, (void *)(long)cfd) != 0)
			close(cfd);
	}
}
