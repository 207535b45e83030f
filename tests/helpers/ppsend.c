/* ppsend: one connection that sends given bytes (a PROXY header, or a
 * broken one) and reports what came back, one line each on stdout:
 *	line TEXT                  each complete line received
 *	eof bytes=N ms=E           the peer closed (FIN)
 *	reset bytes=N ms=E         the peer reset the connection
 *	timeout bytes=N ms=E       still open when --timeout ran out
 *	refused ms=E | connect-error ms=E REASON
 * E counts from the connect. The bytes are BYTES with C escapes (\r \n \0
 * \xHH \\), sent at once, or with --drip MS one byte every MS ms. --from
 * binds the source address (any 127.0.0.0/8 address is local). --v2 SRC:PORT
 * sends a v2 PROXY header for that client (IPv4 or [IPv6]) before BYTES.
 * With --lines N it closes after N lines, once printed.
 * Exits 0 whatever the outcome, 2 on bad usage. */
#include "helper.h"
#include <arpa/inet.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>

static _Noreturn void usage(void)
{
	fprintf(stderr, "usage: ppsend [--from IP] [--v2 CLIENT:PORT] [--drip MS] [--timeout MS] "
			"[--lines N] ADDR:PORT [BYTES]\n");
	exit(2);
}

static size_t unescape(const char *s, unsigned char *out, size_t cap)
{
	size_t n = 0;

	while (*s && n < cap) {
		if (*s != '\\') {
			out[n++] = (unsigned char)*s++;
			continue;
		}
		s++;
		switch (*s) {
		case 'r': out[n++] = '\r'; s++; break;
		case 'n': out[n++] = '\n'; s++; break;
		case '0': out[n++] = 0; s++; break;
		case 'x': {
			unsigned v;

			if (sscanf(s + 1, "%2x", &v) != 1)
				usage();
			out[n++] = (unsigned char)v;
			s += 3;
			break;
		}
		case '\\': out[n++] = '\\'; s++; break;
		default: usage();
		}
	}
	return n;
}

/* A v2 header for client text "1.2.3.4:5" or "[2001:db8::1]:5", to 127.0.0.1:80. */
static size_t v2_header(const char *text, unsigned char *out)
{
	struct sockaddr_storage ss;
	socklen_t len;
	static const unsigned char sig[12] = {13, 10, 13, 10, 0, 13, 10, 'Q', 'U', 'I', 'T', 10};

	if (hostport_parse(text, &ss, &len) < 0)
		usage();
	memcpy(out, sig, 12);
	out[12] = 0x21;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;

		out[13] = 0x11, out[14] = 0, out[15] = 12;
		memcpy(out + 16, &s4->sin_addr, 4);
		out[20] = 127, out[21] = 0, out[22] = 0, out[23] = 1;
		memcpy(out + 24, &s4->sin_port, 2);
		out[26] = 0, out[27] = 80;
		return 28;
	}
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;

	out[13] = 0x21, out[14] = 0, out[15] = 36;
	memcpy(out + 16, &s6->sin6_addr, 16);
	memset(out + 32, 0, 16);
	out[47] = 1;
	memcpy(out + 48, &s6->sin6_port, 2);
	out[50] = 0, out[51] = 80;
	return 52;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"from", required_argument, NULL, 'f'},
		{"v2", required_argument, NULL, '2'},
		{"drip", required_argument, NULL, 'd'},
		{"timeout", required_argument, NULL, 't'},
		{"lines", required_argument, NULL, 'l'},
		{NULL, 0, NULL, 0},
	};
	struct sockaddr_storage ss;
	socklen_t sslen;
	unsigned char bytes[65536];
	char line[4096];
	size_t nbytes = 0, sent = 0, linelen = 0;
	const char *from = NULL;
	long drip = 0, timeout = 5000, maxlines = 0, nlines = 0;
	unsigned long long got = 0;
	int64_t start, deadline, next_drip;
	int c, fd, one = 1;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': from = optarg; break;
		case '2': nbytes = v2_header(optarg, bytes); break;
		case 'd':
			if (long_parse(optarg, 1, 60000, &drip) < 0)
				usage();
			break;
		case 't':
			if (long_parse(optarg, 1, 3600000, &timeout) < 0)
				usage();
			break;
		case 'l':
			if (long_parse(optarg, 1, 1000000, &maxlines) < 0)
				usage();
			break;
		default: usage();
		}
	}
	if (optind + 1 != argc && optind + 2 != argc)
		usage();
	if (hostport_parse(argv[optind], &ss, &sslen) < 0)
		usage();
	if (optind + 2 == argc)
		nbytes += unescape(argv[optind + 1], bytes + nbytes, sizeof(bytes) - nbytes);
	signal(SIGPIPE, SIG_IGN);
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (from) {
		struct sockaddr_storage src;
		socklen_t srclen;
		char text[128];

		snprintf(text, sizeof(text), ss.ss_family == AF_INET6 ? "[%s]:0" : "%s:0", from);
		if (hostport_parse(text, &src, &srclen) < 0 ||
		    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		    bind(fd, (struct sockaddr *)&src, srclen) < 0) {
			fprintf(stderr, "ppsend: bind %s: %s\n", from, strerror(errno));
			return 2;
		}
	}
	start = now_ms();
	if (connect(fd, (struct sockaddr *)&ss, sslen) < 0) {
		if (errno == ECONNREFUSED)
			printf("refused ms=%lld\n", (long long)(now_ms() - start));
		else
			printf("connect-error ms=%lld %s\n", (long long)(now_ms() - start),
			       strerror(errno));
		return 0;
	}
	start = now_ms();
	deadline = start + timeout;
	next_drip = start;
	if (!drip && nbytes) {
		if (write_all(fd, bytes, nbytes) == 0)
			sent = nbytes;
	}
	for (;;) {
		int64_t now = now_ms(), wait = deadline - now;
		struct pollfd pfd = {fd, POLLIN, 0};
		char buf[4096];
		ssize_t n;

		if (drip && sent < nbytes) {
			if (now >= next_drip) {
				if (send(fd, bytes + sent, 1, MSG_NOSIGNAL) == 1)
					sent++;
				next_drip = now + drip;
			}
			if (next_drip - now < wait)
				wait = next_drip - now;
		}
		if (now >= deadline) {
			printf("timeout bytes=%llu ms=%lld\n", got, (long long)(now - start));
			break;
		}
		if (poll(&pfd, 1, (int)(wait > 0 ? wait : 0)) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n > 0) {
			got += (unsigned long long)n;
			for (ssize_t i = 0; i < n; i++) {
				if (buf[i] == '\n' || linelen == sizeof(line) - 1) {
					line[linelen] = '\0';
					printf("line %s\n", line);
					fflush(stdout);
					linelen = 0;
					if (++nlines == maxlines) {
						close(fd);
						return 0;
					}
				} else if (buf[i] != '\r') {
					line[linelen++] = buf[i];
				}
			}
			continue;
		}
		printf("%s bytes=%llu ms=%lld\n", n == 0 ? "eof" : "reset", got,
		       (long long)(now_ms() - start));
		break;
	}
	close(fd);
	return 0;
}
