/* crowd: many client connections, counted. A connection is accepted when a
 * line comes back (a namesrv backend sends its name), refused when it is
 * closed or reset first, or when nothing comes within 3 s. Prints
 * "accepted=A refused=R" on stdout.
 *
 *   crowd burst ADDR:PORT FROM N [HOLD_MS]
 *	N connections from address FROM at once; those accepted are held open
 *	HOLD_MS more milliseconds (default 0) after the count is printed.
 *   crowd rate ADDR:PORT FROM SECONDS
 *	One connection after another from FROM for SECONDS (decimals allowed),
 *	each closed once it is decided, a millisecond apart.
 *   crowd sources ADDR:PORT FIRST N PARALLEL [STRIDE]
 *	One connection from each of N IPv4 addresses FIRST, FIRST+1, ...,
 *	PARALLEL at a time; with STRIDE (prime to N), the k-th connection
 *	comes from FIRST + k * STRIDE mod N, so that neighbours (one zone,
 *	one backend) do not come in a row. */
#include "helper.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>

#define DECIDE_MS 3000

static _Noreturn void usage(void)
{
	fprintf(stderr, "usage: crowd burst ADDR:PORT FROM N [HOLD_MS]\n"
			"       crowd rate ADDR:PORT FROM SECONDS\n"
			"       crowd sources ADDR:PORT FIRST N PARALLEL [STRIDE]\n");
	exit(2);
}

static struct sockaddr_storage target;
static socklen_t target_len;

/* A non-blocking connect from src (NULL: any), or -1. */
static int open_from(const struct sockaddr_storage *src, socklen_t srclen)
{
	int one = 1, fd = socket(target.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if ((src && bind(fd, (const struct sockaddr *)src, srclen) < 0) ||
	    (connect(fd, (struct sockaddr *)&target, target_len) < 0 && errno != EINPROGRESS)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int parse_from(const char *ip, struct sockaddr_storage *ss, socklen_t *len)
{
	char text[128];

	snprintf(text, sizeof(text), strchr(ip, ':') ? "[%s]:0" : "%s:0", ip);
	return hostport_parse(text, ss, len);
}

/* Waits until each of fds[0..n) is decided: 1 accepted, 0 refused. */
static void decide(const int *fds, int *verdict, int n)
{
	struct pollfd *p = calloc((size_t)n, sizeof(*p));
	int64_t deadline = now_ms() + DECIDE_MS;
	int left = 0;

	for (int i = 0; i < n; i++) {
		verdict[i] = -1;
		p[i].fd = fds[i];
		p[i].events = POLLIN;
		if (fds[i] < 0)
			verdict[i] = 0, p[i].fd = -1;
		else
			left++;
	}
	while (left > 0 && now_ms() < deadline) {
		if (poll(p, (nfds_t)n, (int)(deadline - now_ms())) <= 0)
			continue;
		for (int i = 0; i < n; i++) {
			char buf[256];
			ssize_t r;

			if (p[i].fd < 0 || !p[i].revents)
				continue;
			r = recv(p[i].fd, buf, sizeof(buf), 0);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			verdict[i] = r > 0 && memchr(buf, '\n', (size_t)r) != NULL;
			if (r > 0 && !verdict[i])
				continue; /* a part of the line */
			p[i].fd = -1;
			left--;
		}
	}
	for (int i = 0; i < n; i++)
		if (verdict[i] < 0)
			verdict[i] = 0;
	free(p);
}

int main(int argc, char **argv)
{
	struct sockaddr_storage src;
	socklen_t srclen;
	long n, accepted = 0, refused = 0;

	if (argc < 5 || hostport_parse(argv[2], &target, &target_len) < 0)
		usage();
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(argv[1], "burst") == 0) {
		long hold = 0;
		int *fds, *v;

		if (parse_from(argv[3], &src, &srclen) < 0 || long_parse(argv[4], 1, 60000, &n) < 0 ||
		    (argc > 5 && long_parse(argv[5], 0, 3600000, &hold) < 0))
			usage();
		fds = calloc((size_t)n, sizeof(int));
		v = calloc((size_t)n, sizeof(int));
		for (long i = 0; i < n; i++)
			fds[i] = open_from(&src, srclen);
		decide(fds, v, (int)n);
		for (long i = 0; i < n; i++) {
			accepted += v[i];
			refused += !v[i];
			if (!v[i] && fds[i] >= 0)
				close(fds[i]);
		}
		printf("accepted=%ld refused=%ld\n", accepted, refused);
		fflush(stdout);
		if (hold)
			usleep((useconds_t)hold * 1000);
		return 0;
	}
	if (strcmp(argv[1], "rate") == 0) {
		double secs = atof(argv[4]);
		int64_t end;

		if (parse_from(argv[3], &src, &srclen) < 0 || secs <= 0)
			usage();
		end = now_ms() + (int64_t)(secs * 1000);
		while (now_ms() < end) {
			int fd = open_from(&src, srclen), v;

			decide(&fd, &v, 1);
			accepted += v;
			refused += !v;
			if (fd >= 0)
				close(fd);
			usleep(1000); /* a thousand tries a second say enough */
		}
		printf("accepted=%ld refused=%ld\n", accepted, refused);
		return 0;
	}
	if (strcmp(argv[1], "sources") == 0) {
		struct in_addr first;
		long par, stride = 1, a, b;

		if ((argc != 6 && argc != 7) || inet_pton(AF_INET, argv[3], &first) != 1 ||
		    long_parse(argv[4], 1, 16000000, &n) < 0 || long_parse(argv[5], 1, 4096, &par) < 0 ||
		    (argc == 7 && long_parse(argv[6], 1, 16000000, &stride) < 0))
			usage();
		for (a = stride, b = n; b;) { /* gcd: every address once */
			long t = a % b;
			a = b;
			b = t;
		}
		if (a != 1)
			usage();
		for (long done = 0; done < n; done += par) {
			int k = (int)(n - done < par ? n - done : par), fds[4096], v[4096];

			for (int i = 0; i < k; i++) {
				struct sockaddr_in *s4 = (struct sockaddr_in *)&src;

				memset(&src, 0, sizeof(src));
				s4->sin_family = AF_INET;
				s4->sin_addr.s_addr =
				    htonl(ntohl(first.s_addr) + (uint32_t)((done + i) * stride % n));
				fds[i] = open_from(&src, sizeof(*s4));
			}
			decide(fds, v, k);
			for (int i = 0; i < k; i++) {
				accepted += v[i];
				refused += !v[i];
				if (fds[i] >= 0)
					close(fds[i]);
			}
		}
		printf("accepted=%ld refused=%ld\n", accepted, refused);
		return 0;
	}
	usage();
}
