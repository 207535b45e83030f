/* checkpeer MODE ADDR:PORT: a hostile peer for health checks. Prints
 * "ready" once it listens, then serves every connection on its own thread:
 *   silent        reads what comes and never answers
 *   garbage N     answers N bytes of text that matches nothing, then reads
 *   cut TEXT      waits for the request, answers TEXT and closes
 * Each connection served is counted on stdout ("conn N"). */
#include "helper.h"

static const char *mode, *arg;
static long garbage_bytes;
static long served;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static _Noreturn void usage(void)
{
	fprintf(stderr, "usage: checkpeer silent|garbage N|cut TEXT ADDR:PORT\n");
	exit(2);
}

static void drain(int fd)
{
	char buf[4096];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

static void *serve(void *p)
{
	int fd = (int)(long)p;
	char buf[4096];

	pthread_mutex_lock(&lock);
	printf("conn %ld\n", ++served);
	fflush(stdout);
	pthread_mutex_unlock(&lock);
	if (strcmp(mode, "silent") == 0) {
		drain(fd);
	} else if (strcmp(mode, "garbage") == 0) {
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = (char)('a' + i % 26);
		for (long left = garbage_bytes; left > 0;) {
			size_t n = left < (long)sizeof(buf) ? (size_t)left : sizeof(buf);
			ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);

			if (w <= 0)
				break;
			left -= w;
		}
		drain(fd);
	} else {
		if (read(fd, buf, sizeof(buf)) > 0)
			write_all(fd, arg, strlen(arg));
	}
	close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	if (argc < 3)
		usage();
	mode = argv[1];
	if (strcmp(mode, "silent") == 0) {
		if (argc != 3)
			usage();
	} else if (strcmp(mode, "garbage") == 0 || strcmp(mode, "cut") == 0) {
		if (argc != 4)
			usage();
		arg = argv[2];
		if (mode[0] == 'g' && long_parse(arg, 1, 1L << 30, &garbage_bytes) < 0)
			usage();
	} else {
		usage();
	}
	if (hostport_parse(argv[argc - 1], &ss, &len) < 0)
		usage();
	if ((fd = tcp_listen("checkpeer", &ss, len, argv[argc - 1], 64)) < 0)
		return 1;
	printf("ready\n");
	fflush(stdout);
	accept_forever(fd, serve, 64 * 1024);
}
