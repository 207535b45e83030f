/* namesrv: a TCP backend for tests and demos. To every connection it
 * writes "NAME\n", then echoes what it receives until the client's EOF.
 * With --eof-line MS it then waits MS milliseconds and writes
 * "eof N\n" (N = bytes received) before closing, which proves that a
 * half-closed connection still carries data the other way. With --reset
 * it answers the first data it receives (after the name) by resetting the
 * connection (RST) instead of echoing. With --stall MS it reads nothing for
 * MS milliseconds after the name, then reads (without echoing) to the end
 * and prints "got N eof" or "got N reset" (N = bytes received) on stdout:
 * whether a relay passed a cut stream off as a whole one. */
#include "helper.h"
#include <getopt.h>
#include <signal.h>

static const char *srv_name;
static long eof_line_ms = -1, stall_ms = -1;
static int reset_mode;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static _Noreturn void usage(void)
{
	fprintf(stderr, "usage: namesrv [--eof-line MS | --reset | --stall MS] NAME ADDR:PORT\n");
	exit(2);
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
	if (stall_ms >= 0) {
		struct timespec ts = {stall_ms / 1000, (stall_ms % 1000) * 1000000L};
		ssize_t n;

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
			total += n > 0 ? (unsigned long long)n : 0;
		pthread_mutex_lock(&out_lock);
		printf("got %llu %s\n", total, n == 0 ? "eof" : errno == ECONNRESET ? "reset" : "error");
		fflush(stdout);
		pthread_mutex_unlock(&out_lock);
		goto out;
	}
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
		{"stall", required_argument, NULL, 's'},
		{NULL, 0, NULL, 0},
	};
	struct sockaddr_storage ss;
	socklen_t sslen;
	int c, fd;

	while ((c = getopt_long(argc, argv, "e:hrs:", longopts, NULL)) != -1) {
		switch (c) {
		case 'e':
			if (long_parse(optarg, 0, 3600000, &eof_line_ms) < 0)
				usage();
			break;
		case 'r':
			reset_mode = 1;
			break;
		case 's':
			if (long_parse(optarg, 0, 3600000, &stall_ms) < 0)
				usage();
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 2 || (reset_mode + (eof_line_ms >= 0) + (stall_ms >= 0)) > 1 || argv[0][0] == '\0' || hostport_parse(argv[1], &ss, &sslen) < 0)
		usage();
	srv_name = argv[0];

	signal(SIGPIPE, SIG_IGN);
	fd = tcp_listen("namesrv", &ss, sslen, argv[1], 4096);
	if (fd < 0)
		return 1;
	printf("ready\n");
	fflush(stdout);
	accept_forever(fd, conn_serve, 256 * 1024);
}
