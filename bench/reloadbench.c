/* reloadbench: how fast tcpdist applies a pool change, and whether reloads
 * slow the connection rate.
 *
 *   reloadbench POOL LISTEN_PORT PORT_A PORT_B [RELOADS] [SECONDS]
 *
 * Two namesrv backends (a, b) must answer on PORT_A and PORT_B, and tcpdist
 * must run on POOL. Part 1: RELOADS times (default 100), the pool is
 * replaced (write a temporary file, rename it over) by one naming only the
 * other backend, and connections are made back to back until one reaches
 * it: that delay is the reload latency (write to first connection on the
 * new backend); median and p99 are printed. Part 2: the connection rate of
 * 4 client threads without reloads and with a rewrite every 100 ms, in
 * alternating windows of 1 s over SECONDS (default 10) so that load from
 * elsewhere on a shared machine hits both alike; the median of each and
 * their ratio are printed. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CLIENTS 4

static const char *pool_path;
static int listen_port, port_a, port_b;
static atomic_int running;
static atomic_ullong made;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One connection through tcpdist: the first byte of the backend's name. */
static int ask(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)listen_port)};
	char c = 0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || read(fd, &c, 1) != 1)
		c = 0;
	close(fd);
	return c;
}

static void pool_write(int which, unsigned weight)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.reloadbench", pool_path);
	f = fopen(tmp, "w");
	if (f == NULL) {
		perror(tmp);
		exit(2);
	}
	fprintf(f, "[pool]\nlisten = 127.0.0.1:%d\nbalance = roundrobin\n\n", listen_port);
	if (which != 'b')
		fprintf(f, "[backend a]\naddress = 127.0.0.1:%d\nweight = %u\n\n", port_a, weight);
	if (which != 'a')
		fprintf(f, "[backend b]\naddress = 127.0.0.1:%d\n", port_b);
	if (fclose(f) != 0 || rename(tmp, pool_path) != 0) {
		perror(pool_path);
		exit(2);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void *client(void *arg)
{
	(void)arg;
	while (atomic_load(&running))
		if (ask() > 0)
			atomic_fetch_add(&made, 1);
	return NULL;
}

static double rate(double secs, int reloading)
{
	pthread_t t[CLIENTS];
	double start, next;
	unsigned flip = 0;

	atomic_store(&made, 0);
	atomic_store(&running, 1);
	for (int i = 0; i < CLIENTS; i++)
		pthread_create(&t[i], NULL, client, NULL);
	start = now();
	next = start + 0.1;
	while (now() - start < secs) {
		if (reloading && now() >= next) {
			pool_write(0, 1 + (flip++ & 1)); /* a weight change: a real reload */
			next += 0.1;
		}
		usleep(2000);
	}
	atomic_store(&running, 0);
	for (int i = 0; i < CLIENTS; i++)
		pthread_join(t[i], NULL);
	return (double)atomic_load(&made) / (now() - start);
}

int main(int argc, char **argv)
{
	int reloads = argc > 5 ? atoi(argv[5]) : 100;
	double secs = argc > 6 ? atof(argv[6]) : 10.0, *lat, base, busy;

	if (argc < 5 || reloads < 2 || secs <= 0) {
		fprintf(stderr, "usage: reloadbench POOL LISTEN_PORT PORT_A PORT_B [RELOADS] [SECONDS]\n");
		return 2;
	}
	pool_path = argv[1];
	listen_port = atoi(argv[2]);
	port_a = atoi(argv[3]);
	port_b = atoi(argv[4]);
	lat = calloc((size_t)reloads, sizeof(*lat));
	if (lat == NULL)
		return 2;
	for (int i = 0; i < reloads; i++) {
		int want = i % 2 ? 'a' : 'b';
		double t0, deadline;

		pool_write(want, 1);
		t0 = now();
		deadline = t0 + 5.0;
		while (ask() != want) {
			if (now() > deadline) {
				fprintf(stderr, "reloadbench: reload %d not applied within 5 s\n", i);
				return 1;
			}
		}
		lat[i] = (now() - t0) * 1000.0;
		usleep(20000); /* separate reloads */
	}
	qsort(lat, (size_t)reloads, sizeof(*lat), cmp_double);
	printf("reload latency (write to first connection on the new backend), %d reloads:\n",
	       reloads);
	printf("  median %.2f ms, p99 %.2f ms, max %.2f ms\n", lat[reloads / 2],
	       lat[(reloads * 99 + 99) / 100 - 1], lat[reloads - 1]);
	pool_write(0, 1);
	usleep(100000);
	int windows = (int)(secs / 2.0) < 1 ? 1 : (int)(secs / 2.0);
	double *quiet = calloc((size_t)windows, sizeof(double));
	double *loaded = calloc((size_t)windows, sizeof(double));
	if (quiet == NULL || loaded == NULL)
		return 2;
	for (int i = 0; i < windows; i++) {
		if (i % 2) {
			loaded[i] = rate(1.0, 1);
			quiet[i] = rate(1.0, 0);
		} else {
			quiet[i] = rate(1.0, 0);
			loaded[i] = rate(1.0, 1);
		}
	}
	qsort(quiet, (size_t)windows, sizeof(double), cmp_double);
	qsort(loaded, (size_t)windows, sizeof(double), cmp_double);
	base = quiet[windows / 2];
	busy = loaded[windows / 2];
	printf("connection rate, %d clients, median of %d alternating 1 s windows: %.0f/s without "
	       "reloads, %.0f/s with a reload every 100 ms (ratio %.3f)\n",
	       CLIENTS, windows, base, busy, busy / base);
	free(quiet);
	free(loaded);
	free(lat);
	return 0;
}
