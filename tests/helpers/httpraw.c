/* httpraw: opens N connections (default 1) one after another, sends REQUEST
 * on each (C escapes \r \n \0 \\ \xNN; none: sends nothing and holds the
 * connection idle), and reads each answer until the server ends it.
 * --shut ends the sending side after REQUEST (shutdown SHUT_WR).
 * --read-after MS reads nothing for MS milliseconds after the connects: a
 * slow reader, whose unread answer fills the buffers; --rcvbuf B sets
 * SO_RCVBUF before connecting, so that the client's buffer takes little.
 * Prints, flushed, as things happen:
 *	connected N
 *	I status=FIRSTLINE bytes=T body=B length=L after_ms=E end=eof|reset|timeout
 * one line per connection I (1..N in opening order): FIRSTLINE is the
 * answer's first line without its CR ("none" if nothing came), T the bytes
 * received, B those after the header, L the Content-Length (-1 if none),
 * E the milliseconds from its connect to its end. At --timeout MS (default
 * 5000) the connections left end as "timeout". Exits 0, or 1 if a connect
 * failed. */
#include "helper.h"
#include <getopt.h>
#include <poll.h>
#include <signal.h>

#define HTTPRAW_MAX 64

struct hconn {
	int fd;
	int done;
	int64_t start;
	char head[8192]; /* the answer's first bytes, for its header */
	size_t headlen;
	unsigned long long bytes;
};

static _Noreturn void usage(void)
{
	fprintf(stderr, "usage: httpraw [-n N] [--rcvbuf B] [--read-after MS] [--shut] "
			"[--timeout MS] ADDR:PORT [REQUEST]\n");
	exit(2);
}

/* REQUEST's escapes decoded into out: its length. */
static size_t unescape(const char *s, char *out, size_t cap)
{
	size_t n = 0;

	while (*s && n < cap) {
		if (*s != '\\' || s[1] == '\0') {
			out[n++] = *s++;
			continue;
		}
		s++;
		switch (*s) {
		case 'r':
			out[n++] = '\r';
			s++;
			break;
		case 'n':
			out[n++] = '\n';
			s++;
			break;
		case '0':
			out[n++] = '\0';
			s++;
			break;
		case 'x': {
			char hex[3] = {s[1], s[1] ? s[2] : '\0', '\0'};

			out[n++] = (char)strtol(hex, NULL, 16);
			s += 1 + strlen(hex);
			break;
		}
		default:
			out[n++] = *s++;
			break;
		}
	}
	return n;
}

static void report(struct hconn *c, int i, const char *end)
{
	char first[512] = "none", *hdr_end, *cl;
	size_t len, body = 0;
	long long length = -1;

	c->head[c->headlen < sizeof(c->head) ? c->headlen : sizeof(c->head) - 1] = '\0';
	len = strcspn(c->head, "\r\n");
	if (len > 0) {
		if (len >= sizeof(first))
			len = sizeof(first) - 1;
		memcpy(first, c->head, len);
		first[len] = '\0';
	}
	if ((hdr_end = strstr(c->head, "\r\n\r\n")) != NULL) {
		body = (size_t)c->bytes - (size_t)(hdr_end + 4 - c->head);
		*hdr_end = '\0';
		if ((cl = strcasestr(c->head, "\r\nContent-Length:")) != NULL)
			length = strtoll(cl + 17, NULL, 10);
	}
	printf("%d status=%s bytes=%llu body=%zu length=%lld after_ms=%lld end=%s\n", i + 1, first,
	       c->bytes, body, length, (long long)(now_ms() - c->start), end);
	fflush(stdout);
	c->done = 1;
	close(c->fd);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"rcvbuf", required_argument, NULL, 'b'},
		{"read-after", required_argument, NULL, 'a'},
		{"shut", no_argument, NULL, 's'},
		{"timeout", required_argument, NULL, 't'},
		{NULL, 0, NULL, 0},
	};
	static struct hconn conns[HTTPRAW_MAX];
	struct sockaddr_storage ss;
	socklen_t sslen;
	char req[8192];
	size_t reqlen = 0;
	long n = 1, rcvbuf = 0, after = 0, timeout = 5000, left;
	int64_t deadline, read_from;
	int c, shut = 0;

	while ((c = getopt_long(argc, argv, "n:", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (long_parse(optarg, 1, HTTPRAW_MAX, &n) < 0)
				usage();
			break;
		case 'b':
			if (long_parse(optarg, 1, 1 << 24, &rcvbuf) < 0)
				usage();
			break;
		case 'a':
			if (long_parse(optarg, 0, 600000, &after) < 0)
				usage();
			break;
		case 's':
			shut = 1;
			break;
		case 't':
			if (long_parse(optarg, 1, 600000, &timeout) < 0)
				usage();
			break;
		default:
			usage();
		}
	}
	if (argc - optind < 1 || argc - optind > 2 || hostport_parse(argv[optind], &ss, &sslen) < 0)
		usage();
	if (argc - optind == 2)
		reqlen = unescape(argv[optind + 1], req, sizeof(req));
	signal(SIGPIPE, SIG_IGN);

	for (long i = 0; i < n; i++) {
		struct hconn *h = &conns[i];
		int size = (int)rcvbuf;

		h->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (h->fd >= 0 && rcvbuf)
			setsockopt(h->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
		if (h->fd < 0 || connect(h->fd, (const struct sockaddr *)&ss, sslen) < 0) {
			fprintf(stderr, "httpraw: connect %s: %s\n", argv[optind], strerror(errno));
			return 1;
		}
		h->start = now_ms();
		if (reqlen > 0 && write_all(h->fd, req, reqlen) < 0) {
			fprintf(stderr, "httpraw: send: %s\n", strerror(errno));
			return 1;
		}
		if (shut)
			shutdown(h->fd, SHUT_WR);
	}
	printf("connected %ld\n", n);
	fflush(stdout);

	deadline = now_ms() + timeout;
	read_from = now_ms() + after;
	for (left = n; left > 0;) {
		struct pollfd pfd[HTTPRAW_MAX];
		int64_t now = now_ms(), wait = deadline - now;

		if (wait <= 0)
			break;
		if (now < read_from)
			wait = wait < read_from - now ? wait : read_from - now;
		for (long i = 0; i < n; i++) {
			pfd[i].fd = conns[i].done || now < read_from ? -1 : conns[i].fd;
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
		}
		if (poll(pfd, (nfds_t)n, (int)wait) <= 0)
			continue;
		for (long i = 0; i < n; i++) {
			struct hconn *h = &conns[i];
			char buf[65536];
			ssize_t got;

			if (pfd[i].fd < 0 || pfd[i].revents == 0)
				continue;
			got = recv(h->fd, buf, sizeof(buf), 0);
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				report(h, (int)i, got == 0 ? "eof" : "reset");
				left--;
				continue;
			}
			if (h->headlen < sizeof(h->head) - 1) {
				size_t take = sizeof(h->head) - 1 - h->headlen;

				take = take < (size_t)got ? take : (size_t)got;
				memcpy(h->head + h->headlen, buf, take);
				h->headlen += take;
			}
			h->bytes += (unsigned long long)got;
		}
	}
	for (long i = 0; i < n; i++)
		if (!conns[i].done)
			report(&conns[i], (int)i, "timeout");
	return 0;
}
