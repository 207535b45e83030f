/* hold: connects and keeps the connection open SECONDS (decimals allowed),
 * sending nothing, or "ping\n" every MS milliseconds with --every MS.
 * Prints, flushed, as things happen:
 *	connected
 *	line TEXT                 for each complete line received
 *	held after_ms=E           if it held the full time (then it closes)
 *	closed-by-peer after_ms=E how=eof|reset|error
 * E counts from the moment the connection was established. Exits 0 in
 * both cases, 1 if the connect failed. */
#include "helper.h"
#include <getopt.h>
#include <poll.h>
#include <signal.h>

static _Noreturn void usage(void)
{
	fprintf(stderr, "usage: hold [--every MS] ADDR:PORT SECONDS\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"every", required_argument, NULL, 'e'},
		{NULL, 0, NULL, 0},
	};
	struct sockaddr_storage ss;
	socklen_t sslen;
	char line[4096], *end;
	size_t linelen = 0;
	long every = 0;
	double secs;
	int64_t start, deadline, next_ping;
	int c, fd;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'e':
			if (long_parse(optarg, 1, 3600000, &every) < 0)
				usage();
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 2 || hostport_parse(argv[optind], &ss, &sslen) < 0)
		usage();
	errno = 0;
	secs = strtod(argv[optind + 1], &end);
	if (errno != 0 || *end != '\0' || end == argv[optind + 1] || !(secs >= 0) || secs > 86400)
		usage();
	signal(SIGPIPE, SIG_IGN);

	fd = tcp_connect(&ss, sslen);
	if (fd < 0) {
		fprintf(stderr, "hold: connect %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	start = now_ms();
	deadline = start + (int64_t)(secs * 1000);
	next_ping = every ? start + every : INT64_MAX;
	printf("connected\n");
	fflush(stdout);
	for (;;) {
		struct pollfd pfd = {fd, POLLIN, 0};
		int64_t now = now_ms(), until = deadline < next_ping ? deadline : next_ping;
		char buf[4096];
		ssize_t n;

		if (now >= deadline) {
			printf("held after_ms=%lld\n", (long long)(now - start));
			break;
		}
		if (now >= next_ping) {
			if (send(fd, "ping\n", 5, MSG_NOSIGNAL) < 0) {
				printf("closed-by-peer after_ms=%lld how=%s\n", (long long)(now - start),
				       errno == ECONNRESET ? "reset" : "error");
				break;
			}
			next_ping += every;
			continue;
		}
		if (poll(&pfd, 1, (int)(until - now)) <= 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			printf("closed-by-peer after_ms=%lld how=%s\n", (long long)(now_ms() - start),
			       n == 0 ? "eof" : errno == ECONNRESET ? "reset" : "error");
			break;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n' || linelen == sizeof(line) - 1) {
				line[linelen] = '\0';
				printf("line %s\n", line);
				linelen = 0;
				if (buf[i] == '\n')
					continue;
			}
			line[linelen++] = buf[i];
		}
		fflush(stdout);
	}
	fflush(stdout);
	close(fd);
	return 0;
}
