/* freeport: prints N (default 1) distinct TCP ports, one per line, that
 * are free on 127.0.0.1 (or ::1 with -6) right now. They are taken from
 * below the kernel's ephemeral range when it leaves room, so an outgoing
 * connection's local port cannot grab one before the test listens on it. */
#include "helper.h"

#define PORTS_MAX 64
#define LOW_START 10000

static _Noreturn void usage(void)
{
	fprintf(stderr, "usage: freeport [-6] [N]\n");
	exit(2);
}

/* Binds fd to port (0 = any) on the loopback address; returns the port or -1. */
static int port_bind(int v6, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		s6->sin6_port = htons((unsigned short)port);
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s4->sin_port = htons((unsigned short)port);
		len = sizeof(*s4);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (v6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		close(fd);
		return -1;
	}
	/* fd stays open until exit so the N ports are distinct */
	return ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
}

int main(int argc, char **argv)
{
	int v6 = 0, n = 1, lo = 32768, hi = 60999, range_lo, range_hi, ports[PORTS_MAX];
	FILE *f;
	int c;

	while ((c = getopt(argc, argv, "6")) != -1) {
		if (c != '6')
			usage();
		v6 = 1;
	}
	if (argc - optind > 1)
		usage();
	if (argc - optind == 1) {
		long v;

		if (long_parse(argv[optind], 1, PORTS_MAX, &v) < 0)
			usage();
		n = (int)v;
	}
	if ((f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) != NULL) {
		if (fscanf(f, "%d %d", &lo, &hi) != 2)
			lo = 32768, hi = 60999;
		fclose(f);
	}
	if (lo - LOW_START >= 2000)
		range_lo = LOW_START, range_hi = lo - 1;
	else if (65535 - hi >= 2000)
		range_lo = hi + 1, range_hi = 65535;
	else
		range_lo = range_hi = 0;
	srandom((unsigned)time(NULL) ^ (unsigned)getpid() << 16);
	for (int i = 0; i < n; i++) {
		int port = -1;

		for (int tries = 0; port < 0 && range_lo != 0 && tries < 200; tries++)
			port = port_bind(v6, range_lo + (int)(random() % (range_hi - range_lo + 1)));
		if (port < 0)
			port = port_bind(v6, 0);
		if (port < 0) {
			fprintf(stderr, "freeport: bind: %s\n", strerror(errno));
			return 1;
		}
		ports[i] = port;
	}
	for (int i = 0; i < n; i++)
		printf("%d\n", ports[i]);
	return fclose(stdout) != 0;
}
