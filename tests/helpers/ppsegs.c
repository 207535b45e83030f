/* ppsegs: whether a PROXY header reaches the backend in the same segment as
 * the client's first bytes. It is both ends: the backend, listening on
 * BACKEND, and a client of PROXY (a tcpdist sending that header to
 * BACKEND). N times (-n, default 20) the client connects, waits DELAY
 * microseconds (--delay-us, default 300: after tcpdist has connected to the
 * backend, as a real client's first bytes often come), sends "hello\n";
 * the backend reads the header and those 6 bytes, then counts the data
 * segments it received (TCP_INFO: tcpi_segs_in less the handshake's two).
 * Prints "one K of N": the connections where one segment carried both.
 * Exits 0 when all N went through, 1 if one did not, 2 on usage errors.
 * --timeout MS bounds each connection (default 2000). */
#include "helper.h"
#include <getopt.h>
#include <linux/tcp.h>
#include <poll.h>

static _Noreturn void usage(void)
{
	fprintf(stderr, "usage: ppsegs [-n N] [--delay-us US] [--timeout MS] BACKEND PROXY\n");
	exit(2);
}

/* Bytes of a whole header at the start of b[0..n), 0 if not whole yet. */
static size_t header_len(const unsigned char *b, size_t n)
{
	static const unsigned char sig[12] = "\r\n\r\n\0\r\nQUIT\n";

	if (n >= 16 && memcmp(b, sig, sizeof(sig)) == 0) {
		size_t len = 16 + ((size_t)b[14] << 8 | b[15]);
		return n >= len ? len : 0;
	}
	for (size_t i = 1; i < n; i++)
		if (b[i - 1] == '\r' && b[i] == '\n')
			return i + 1;
	return 0;
}

/* Reads from fd until the header and 6 bytes are in; 0, or -1. */
static int read_all(int fd, int64_t deadline)
{
	unsigned char buf[1024];
	size_t have = 0, hlen = 0;

	while (hlen == 0 || have < hlen + 6) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int64_t left = deadline - now_ms();
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return -1;
		n = read(fd, buf + have, sizeof(buf) - have);
		if (n <= 0)
			return -1;
		have += (size_t)n;
		if (hlen == 0)
			hlen = header_len(buf, have);
		if (have == sizeof(buf))
			return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"delay-us", required_argument, NULL, 'd'},
		{"timeout", required_argument, NULL, 't'},
		{NULL, 0, NULL, 0},
	};
	struct sockaddr_storage bss, pss;
	socklen_t blen, plen;
	long n = 20, delay = 300, timeout = 2000, one = 0;
	int c, lfd;

	while ((c = getopt_long(argc, argv, "n:", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (long_parse(optarg, 1, 100000, &n) < 0)
				usage();
			break;
		case 'd':
			if (long_parse(optarg, 0, 1000000, &delay) < 0)
				usage();
			break;
		case 't':
			if (long_parse(optarg, 1, 600000, &timeout) < 0)
				usage();
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 2 || hostport_parse(argv[optind], &bss, &blen) < 0 ||
	    hostport_parse(argv[optind + 1], &pss, &plen) < 0)
		usage();
	if ((lfd = tcp_listen("ppsegs", &bss, blen, argv[optind], 16)) < 0)
		return 2;
	for (long i = 0; i < n; i++) {
		int64_t deadline = now_ms() + timeout;
		struct pollfd pfd = {.fd = lfd, .events = POLLIN};
		struct tcp_info ti;
		socklen_t tlen = sizeof(ti);
		int cfd, bfd;

		if ((cfd = tcp_connect(&pss, plen)) < 0) {
			fprintf(stderr, "ppsegs: connect %s: %s\n", argv[optind + 1], strerror(errno));
			return 1;
		}
		if (delay > 0)
			usleep((useconds_t)delay);
		if (write_all(cfd, "hello\n", 6) < 0 || poll(&pfd, 1, (int)timeout) <= 0 ||
		    (bfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
			fprintf(stderr, "ppsegs: connection %ld never reached the backend\n", i + 1);
			return 1;
		}
		if (read_all(bfd, deadline) < 0 || getsockopt(bfd, IPPROTO_TCP, TCP_INFO, &ti, &tlen) < 0) {
			fprintf(stderr, "ppsegs: connection %ld: no header and hello in time\n", i + 1);
			return 1;
		}
		/* The segments in: the handshake's SYN and ACK, then the data. */
		if (ti.tcpi_segs_in <= 3)
			one++;
		close(bfd);
		close(cfd);
	}
	printf("one %ld of %ld\n", one, n);
	return 0;
}
