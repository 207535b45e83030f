/* names: makes COUNT connections (PARALLEL at a time, default 1, i.e.
 * sequential) and prints the first line each one receives: with namesrv
 * behind a relay, the name of the backend it reached. With --send TEXT,
 * each connection sends "TEXT\n" as soon as it is established, then
 * expects the echo of it as the second line. Each connection is bounded by
 * --timeout MS (default 5000). With --hold MS, each connection waits MS
 * milliseconds once established before it sends, so that many stay open at
 * once. A failed connection prints "ERROR reason"
 * in place of a name; the exit status is then 1. */
#include "helper.h"
#include <getopt.h>
#include <poll.h>
#include <signal.h>

static struct sockaddr_storage dest;
static socklen_t destlen;
static const char *send_text;
static long timeout_ms = 5000, hold_ms;
static long count, next_index, failures;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static _Noreturn void usage(void)
{
	fprintf(stderr, "usage: names [--parallel P] [--send TEXT] [--hold MS] [--timeout MS] ADDR:PORT COUNT\n");
	exit(2);
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
	int fd, err = 0, rc = -1, state;
	char *nl;

	state = connect_start(&dest, destlen, &fd);
	if (fd < 0) {
		snprintf(name, namelen, "socket: %s", strerror(errno));
		return -1;
	}
	if (state < 0 ||
	    (state == 0 && (wait_fd(fd, POLLOUT, deadline) < 0 || (err = sock_error(fd)) != 0))) {
		snprintf(name, namelen, "connect: %s", strerror(err ? err : errno));
		goto out;
	}
	if (hold_ms > 0)
		nanosleep(&(struct timespec){hold_ms / 1000, hold_ms % 1000 * 1000000L}, NULL);
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
		{"hold", required_argument, NULL, 'H'},
		{NULL, 0, NULL, 0},
	};
	long parallel = 1;
	pthread_t tids[1024];
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (long_parse(optarg, 1, 1024, &parallel) < 0)
				usage();
			break;
		case 's':
			send_text = optarg;
			if (strlen(send_text) > 4096 || strchr(send_text, '\n') != NULL)
				usage();
			break;
		case 't':
			if (long_parse(optarg, 1, 3600000, &timeout_ms) < 0)
				usage();
			break;
		case 'H':
			if (long_parse(optarg, 0, 60000, &hold_ms) < 0)
				usage();
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 2 || hostport_parse(argv[optind], &dest, &destlen) < 0 ||
	    long_parse(argv[optind + 1], 0, 10000000, &count) < 0)
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
