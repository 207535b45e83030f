/* notifysink: a stand-in for systemd's notification socket. Binds a Unix
 * datagram socket at PATH, prints "ready", then each datagram it receives
 * on one line (its own newlines as spaces), flushed, until killed or for
 * SECONDS (default 60). */
#include "helper.h"
#include <poll.h>
#include <sys/un.h>

int main(int argc, char **argv)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int64_t deadline;
	char buf[4096];
	int fd;

	if (argc < 2 || argc > 3 || strlen(argv[1]) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "usage: notifysink PATH [SECONDS]\n");
		return 2;
	}
	deadline = now_ms() + (argc == 3 ? atol(argv[2]) : 60) * 1000;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", argv[1]);
	unlink(argv[1]);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM, 0)) < 0 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		perror("notifysink");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (now_ms() < deadline) {
		struct pollfd pfd = {fd, POLLIN, 0};
		ssize_t n;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n < 0)
			continue;
		buf[n] = '\0';
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] == '\n')
				buf[i] = ' ';
		printf("%s\n", buf);
		fflush(stdout);
	}
	unlink(argv[1]);
	return 0;
}
