/* fromaddrs TARGET SRC... : for each source address (IP or IP:PORT), connect
 * from it to TARGET, read the first line the far side sends (a namesrv
 * answers with its name) and print "SRC<TAB>LINE". Exit 1 if any failed. */
#include "helper.h"
#include <arpa/inet.h>
#include <sys/time.h>

static int parse(const char *s, struct sockaddr_in *sin, int need_port)
{
	char host[64];
	const char *colon = strchr(s, ':');
	size_t n = colon ? (size_t)(colon - s) : strlen(s);

	if (n >= sizeof(host) || (need_port && !colon))
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(colon ? (uint16_t)atoi(colon + 1) : 0);
	return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct sockaddr_in target, src;
	struct timeval tv = {5, 0};
	int failures = 0, one = 1;

	if (argc < 3 || parse(argv[1], &target, 1) < 0) {
		fprintf(stderr, "usage: fromaddrs TARGET_IP:PORT SRC_IP[:PORT]...\n");
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		char line[256];
		size_t got = 0;
		int fd;

		if (parse(argv[i], &src, 0) < 0) {
			fprintf(stderr, "fromaddrs: bad source '%s'\n", argv[i]);
			return 2;
		}
		fd = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0 ||
		    connect(fd, (struct sockaddr *)&target, sizeof(target)) < 0) {
			fprintf(stderr, "fromaddrs: %s: %s\n", argv[i], strerror(errno));
			printf("%s\t-\n", argv[i]);
			failures++;
			close(fd);
			continue;
		}
		while (got < sizeof(line) - 1) {
			ssize_t r = read(fd, line + got, 1);
			if (r <= 0 || line[got] == '\n')
				break;
			got++;
		}
		line[got] = '\0';
		printf("%s\t%s\n", argv[i], got ? line : "-");
		failures += got == 0;
		close(fd);
	}
	return failures ? 1 : 0;
}
