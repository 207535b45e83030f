/* probe: one connection attempt, reported as one line on stdout:
 *	refused ms=E                  connect refused
 *	connect-timeout ms=E          no answer to the SYN within the timeout
 *	connect-error ms=E REASON
 *	eof bytes=N ms=E              the peer closed (FIN)
 *	reset bytes=N ms=E            the peer reset the connection (RST)
 *	timeout bytes=N ms=E          still open when the timeout ran out
 * E is milliseconds since the connect began; N the bytes received. With
 * --send TEXT it sends "TEXT\n" once connected. --timeout MS bounds the
 * whole probe (default 2000). Exits 0 whatever the outcome. */
#include "helper.h"
#include <getopt.h>
#include <poll.h>
#include <signal.h>

static _Noreturn void usage(void)
{
	fprintf(stderr, "usage: probe [--send TEXT] [--timeout MS] ADDR:PORT\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"send", required_argument, NULL, 's'},
		{"timeout", required_argument, NULL, 't'},
		{NULL, 0, NULL, 0},
	};
	struct sockaddr_storage ss;
	socklen_t sslen;
	const char *text = NULL;
	long timeout = 2000;
	unsigned long long got = 0;
	int64_t start, deadline;
	struct pollfd pfd;
	int c, fd, err = 0;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			text = optarg;
			break;
		case 't':
			if (long_parse(optarg, 1, 3600000, &timeout) < 0)
				usage();
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 1 || hostport_parse(argv[optind], &ss, &sslen) < 0)
		usage();
	signal(SIGPIPE, SIG_IGN);

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("probe: socket");
		return 2;
	}
	start = now_ms();
	deadline = start + timeout;
	if (connect(fd, (struct sockaddr *)&ss, sslen) < 0) {
		if (errno != EINPROGRESS) {
			err = errno;
		} else {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, (int)timeout) == 0) {
				printf("connect-timeout ms=%lld\n", (long long)(now_ms() - start));
				return 0;
			}
			err = sock_error(fd);
		}
		if (err == ECONNREFUSED) {
			printf("refused ms=%lld\n", (long long)(now_ms() - start));
			return 0;
		}
		if (err == ECONNRESET) { /* accepted, then reset before we looked */
			printf("reset bytes=0 ms=%lld\n", (long long)(now_ms() - start));
			return 0;
		}
		if (err != 0) {
			printf("connect-error ms=%lld %s\n", (long long)(now_ms() - start), strerror(err));
			return 0;
		}
	}
	if (text != NULL) {
		char line[4096];
		int len = snprintf(line, sizeof(line), "%s\n", text);
		if (len >= (int)sizeof(line) || send(fd, line, (size_t)len, MSG_NOSIGNAL) != len) {
			printf("%s bytes=0 ms=%lld\n", errno == ECONNRESET ? "reset" : "send-error",
			       (long long)(now_ms() - start));
			return 0;
		}
	}
	for (;;) {
		int64_t now = now_ms();
		char buf[4096];
		ssize_t n;

		if (now >= deadline) {
			printf("timeout bytes=%llu ms=%lld\n", got, (long long)(now - start));
			return 0;
		}
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, (int)(deadline - now)) <= 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n == 0) {
			printf("eof bytes=%llu ms=%lld\n", got, (long long)(now_ms() - start));
			return 0;
		}
		if (n < 0) {
			printf("%s bytes=%llu ms=%lld\n", errno == ECONNRESET ? "reset" : "error", got,
			       (long long)(now_ms() - start));
			return 0;
		}
		got += (unsigned long long)n;
	}
}
