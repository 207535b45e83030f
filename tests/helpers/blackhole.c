/* blackhole: a listening port that never answers a SYN. It listens with a
 * backlog of 0, fills its own accept queue with connections from inside
 * the process and never accepts, so the kernel drops every further SYN
 * (net.ipv4.tcp_abort_on_overflow = 0, the default). Prints "ready" once
 * a connect to it hangs, then sleeps until killed. */
#include "helper.h"
#include <poll.h>

#define FILL_MAX 64
#define HANG_MS 300

static _Noreturn void usage(void)
{
	fprintf(stderr, "usage: blackhole ADDR:PORT\n");
	exit(2);
}

/* 1: connected, 0: still pending after HANG_MS, -1: failed. */
static int connect_try(const struct sockaddr_storage *ss, socklen_t len, int *fdp)
{
	struct pollfd pfd;
	int rc = connect_start(ss, len, fdp);

	if (rc != 0)
		return rc;
	pfd.fd = *fdp;
	pfd.events = POLLOUT;
	if (poll(&pfd, 1, HANG_MS) == 0)
		return 0;
	return sock_error(*fdp) != 0 ? -1 : 1;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int lfd, i;

	if (argc != 2 || hostport_parse(argv[1], &ss, &sslen) < 0)
		usage();
	lfd = tcp_listen("blackhole", &ss, sslen, argv[1], 0);
	if (lfd < 0)
		return 1;
	/* The filling sockets stay open (and unaccepted) for the process's life. */
	for (i = 0; i < FILL_MAX; i++) {
		int fd = -1, rc = connect_try(&ss, sslen, &fd);

		if (rc < 0) {
			fprintf(stderr, "blackhole: filling the accept queue: %s\n", strerror(errno));
			return 1;
		}
		if (rc == 0) {
			close(fd);
			break;
		}
	}
	if (i == FILL_MAX) {
		fprintf(stderr, "blackhole: accept queue never filled\n");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
