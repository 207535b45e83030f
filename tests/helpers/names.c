/* names: makes COUNT connections (PARALLEL at a time, default 1, i.e.
 * sequential) and prints the first line each one receives: with namesrv
 * behind a relay, the name of the backend it reached. With --send TEXT,
 * each connection sends "TEXT\n" as soon as it is established, then
 * expects the echo of it as the second line. Each connection is bounded by
 * --timeout MS (default 5000). A failed connection prints "ERROR reason"
 * in place of a name; the exit status is then 1. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_storage dest;
static socklen_t destlen;
static const char *send_text;
static long timeout_ms = 5000;
static long count, next_index, failures;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void usage(void)
{
	fprintf(stderr, "usage: names [--parallel P] [--send TEXT] [--timeout MS] ADDR:PORT COUNT\n");
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

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for fd to become ready for events before deadline; 0 or -1 (errno set). */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd pfd = {fd, events, 0};
		int64_t left = deadline - now_ms();
		int rc;

		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		rc = poll(&pfd, 1, (int)left);
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return -1;
	}
}

/* One connection; fills name (or an error text) and returns 0 or -1. */
static int name_fetch(char *name, size_t namelen)
{
	int64_t deadline = now_ms() + timeout_ms;
	char buf[8192], expect[4200];
	size_t have = 0, want_lines = send_text ? 2 : 1, lines = 0, len;
	int fd, err = 0, rc = -1;
	socklen_t errlen = sizeof(err);
	char *nl;

	fd = socket(dest.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(name, namelen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&dest, destlen) < 0) {
		if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, deadline) < 0 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) < 0 || err != 0) {
			snprintf(name, namelen, "connect: %s", strerror(err ? err : errno));
			goto out;
		}
	}
	if (send_text != NULL) {
		int n = snprintf(expect, sizeof(expect), "%s\n", send_text);
		if (send(fd, expect, (size_t)n, MSG_NOSIGNAL) != n) {
			snprintf(name, namelen, "send: %s", strerror(errno));
			goto out;
		}
	}
	while (lines < want_lines) {
		ssize_t n;

		if (have == sizeof(buf)) {
			snprintf(name, namelen, "line too long");
			goto out;
		}
		if (wait_fd(fd, POLLIN, deadline) < 0) {
			snprintf(name, namelen, "after %zu bytes: %s", have, strerror(errno));
			goto out;
		}
		n = read(fd, buf + have, sizeof(buf) - have);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			snprintf(name, namelen, "after %zu bytes: %s", have,
				 n == 0 ? "connection closed" : strerror(errno));
			goto out;
		}
		for (ssize_t i = 0; i < n; i++)
			if (buf[have + (size_t)i] == '\n')
				lines++;
		have += (size_t)n;
	}
	nl = memchr(buf, '\n', have);
	len = (size_t)(nl - buf);
	if (send_text != NULL) {
		size_t elen = strlen(expect);
		if (have - len - 1 < elen || memcmp(nl + 1, expect, elen) != 0) {
			snprintf(name, namelen, "echo of the sent line differs");
			goto out;
		}
	}
	if (len >= namelen)
		len = namelen - 1;
	memcpy(name, buf, len);
	name[len] = '\0';
	rc = 0;
out:
	close(fd);
	return rc;
}

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		char name[512];
		int rc;

		pthread_mutex_lock(&lock);
		if (next_index >= count) {
			pthread_mutex_unlock(&lock);
			return NULL;
		}
		next_index++;
		pthread_mutex_unlock(&lock);

		rc = name_fetch(name, sizeof(name));
		pthread_mutex_lock(&lock);
		if (rc < 0) {
			failures++;
			printf("ERROR %s\n", name);
		} else {
			printf("%s\n", name);
		}
		pthread_mutex_unlock(&lock);
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"parallel", required_argument, NULL, 'p'},
		{"send", required_argument, NULL, 's'},
		{"timeout", required_argument, NULL, 't'},
		{NULL, 0, NULL, 0},
	};
	long parallel = 1;
	pthread_t tids[256];
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			errno = 0;
			parallel = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || parallel < 1 || parallel > 256)
				usage();
			break;
		case 's':
			send_text = optarg;
			if (strlen(send_text) > 4096 || strchr(send_text, '\n') != NULL)
				usage();
			break;
		case 't':
			errno = 0;
			timeout_ms = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || timeout_ms <= 0 || timeout_ms > 3600000)
				usage();
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 2 || hostport_parse(argv[optind], &dest, &destlen) < 0)
		usage();
	errno = 0;
	count = strtol(argv[optind + 1], &end, 10);
	if (errno != 0 || *end != '\0' || count < 0 || count > 10000000)
		usage();
	signal(SIGPIPE, SIG_IGN);
	if (parallel > count)
		parallel = count > 0 ? count : 1;
	for (long i = 0; i < parallel; i++)
		if (pthread_create(&tids[i], NULL, worker, NULL) != 0) {
			fprintf(stderr, "names: pthread_create failed\n");
			return 2;
		}
	for (long i = 0; i < parallel; i++)
		pthread_join(tids[i], NULL);
	if (fclose(stdout) != 0)
		return 2;
	if (failures > 0) {
		fprintf(stderr, "names: %ld of %ld connections failed\n", failures, count);
		return 1;
	}
	return 0;
}
