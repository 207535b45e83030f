/*
 * idleconns - open N TCP connections to HOST PORT, send nothing, hold them.
 *
 * Used by bench/run.sh to measure a proxy's memory per idle connection.
 * Prints "open N" on stdout once every connection is established, then
 * waits for SIGTERM or SIGINT (or the -w limit), checks how many
 * connections the peer has not closed, prints "alive K of N" and exits
 * 0 if all are alive, 1 if some were closed, 2 on error.
 *
 * Build: cc -O2 -o idleconns bench/idleconns.c
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>

static void usage(void)
{
	fprintf(stderr, "usage: idleconns [-t CONNECT_TIMEOUT] [-w MAX_HOLD] HOST PORT N\n");
	exit(2);
}

static long parse_num(const char *s, long min, long max, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno == ERANGE || v < min || v > max) {
		fprintf(stderr, "idleconns: %s '%s' is invalid (%ld-%ld)\n", what, s, min, max);
		exit(2);
	}
	return v;
}

static int connect_one(const struct addrinfo *ai, long timeout_s)
{
	struct timeval tv = {.tv_sec = timeout_s, .tv_usec = 0};
	int fd;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -1;
	/* A blocking connect(2) honours SO_SNDTIMEO on Linux. */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* A connection is dead when it polls readable and a peek sees EOF or an error. */
static int still_open(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char c;
	ssize_t n;

	if (poll(&p, 1, 0) <= 0)
		return 1;
	if (p.revents & (POLLERR | POLLHUP))
		return 0;
	n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0)
		return 0;
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
		return 0;
	return 1;
}

int main(int argc, char *argv[])
{
	struct addrinfo hints, *ai;
	struct rlimit rl;
	sigset_t set;
	long timeout_s = 5, hold_s = 600, n, i, alive;
	int *fds, ch, rc, sig;

	while ((ch = getopt(argc, argv, "t:w:")) != -1) {
		switch (ch) {
		case 't':
			timeout_s = parse_num(optarg, 1, 3600, "connect timeout");
			break;
		case 'w':
			hold_s = parse_num(optarg, 1, 86400, "hold time");
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 3)
		usage();
	n = parse_num(argv[2], 1, 1000000, "connection count");

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rc = getaddrinfo(argv[0], argv[1], &hints, &ai)) != 0) {
		fprintf(stderr, "idleconns: '%s' port '%s': %s\n", argv[0], argv[1],
			gai_strerror(rc));
		return 2;
	}

	/* Block the signals before the first connect so none is lost. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGALRM);
	sigprocmask(SIG_BLOCK, &set, NULL);

	if ((fds = calloc((size_t)n, sizeof(*fds))) == NULL) {
		fprintf(stderr, "idleconns: out of memory\n");
		return 2;
	}
	for (i = 0; i < n; i++) {
		if ((fds[i] = connect_one(ai, timeout_s)) < 0) {
			fprintf(stderr, "idleconns: connection %ld of %ld to %s port %s: %s\n",
				i + 1, n, argv[0], argv[1], strerror(errno));
			return 2;
		}
	}
	freeaddrinfo(ai);
	printf("open %ld\n", n);
	if (fflush(stdout) == EOF)
		return 2;

	alarm((unsigned)hold_s);
	if (sigwait(&set, &sig) != 0)
		return 2;

	for (alive = 0, i = 0; i < n; i++)
		alive += still_open(fds[i]);
	printf("alive %ld of %ld\n", alive, n);
	if (fclose(stdout) == EOF)
		return 2;
	return alive == n ? 0 : 1;
}
