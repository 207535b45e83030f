/* blast: bulk-integrity tester. Both ends send pseudo-random bytes and
 * hash (SHA-256) what they send and what they receive, so a harness can
 * check that a relay in the middle changed nothing.
 *
 *   blast server ADDR:PORT --bytes N [--rate BPS]
 *	Per connection: read a 4-byte big-endian id, then at once read to EOF
 *	(hashing) and send N bytes (stream seeded by id + 0x5eed) followed by
 *	shutdown(SHUT_WR). Prints "ID RECEIVED_BYTES RECEIVED_SHA256 SENT_SHA256"
 *	per finished connection ("ID ERROR reason" if it failed).
 *
 *   blast client ADDR:PORT --conns C --bytes N [--first-id K] [--rate BPS]
 *	Opens C connections at once (ids K..K+C-1); each sends its id and N
 *	bytes (stream seeded by id), then shutdown(SHUT_WR), while reading to
 *	EOF. Prints "ID SENT_SHA256 RECEIVED_BYTES RECEIVED_SHA256" per
 *	connection; exits 0 only if every connection completed cleanly.
 *
 * N takes a K, M or G suffix (powers of 1024). --rate caps each sender at
 * BPS bytes per second (same suffixes), for tests that need a transfer to
 * last a while. With --timing the client also prints, on stderr,
 * "ID timing sent_ms=S eof_ms=E": when (ms after connect) it finished
 * sending and when it saw the peer's EOF. */
#include "helper.h"
#include <getopt.h>
#include <signal.h>

#define CHUNK 65536
#define SERVER_SEED_OFFSET 0x5eed

struct stream {
	int fd;
	uint32_t id;
	uint64_t seed;
	uint64_t bytes;  /* to send */
	uint64_t rate;   /* bytes per second, 0 = unlimited */
	int send_id;     /* client: send the 4-byte id first */
	uint64_t done;   /* sent or received */
	double end;      /* when sending or receiving finished (now_s()) */
	char hex[65];
	char err[160];
};

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static _Noreturn void usage(void)
{
	fprintf(stderr, "usage: blast server ADDR:PORT --bytes N [--rate BPS]\n"
			"       blast client ADDR:PORT --conns C --bytes N [--first-id K] [--rate BPS]\n"
			"                    [--timing]\n");
	exit(2);
}

/* A whole number with an optional K, M or G suffix (binary). */
static int size_parse(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mult = 1;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end == 'K' || *end == 'k')
		mult = 1024, end++;
	else if (*end == 'M' || *end == 'm')
		mult = 1024 * 1024, end++;
	else if (*end == 'G' || *end == 'g')
		mult = 1024 * 1024 * 1024, end++;
	if (*end != '\0' || v > max / mult)
		return -1;
	*out = v * mult;
	return 0;
}

/* xoshiro256** seeded through splitmix64: fast and good enough. */
struct prng {
	uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void prng_seed(struct prng *p, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		p->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static void prng_fill(struct prng *p, unsigned char *buf, size_t len)
{
	uint64_t *s = p->s;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
		s[2] ^= s[0];
		s[3] ^= s[1];
		s[1] ^= s[2];
		s[0] ^= s[3];
		s[2] ^= t;
		s[3] = rotl(s[3], 45);
		memcpy(buf + i, &r, 8);
	}
	if (i < len) {
		unsigned char tail[8];
		prng_fill(p, tail, 8);
		memcpy(buf + i, tail, len - i);
	}
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *stream_send(void *arg)
{
	struct stream *st = arg;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *buf = malloc(CHUNK);
	struct prng prng;
	size_t chunk = CHUNK;
	double start = now_s();

	if (ctx == NULL || buf == NULL) {
		snprintf(st->err, sizeof(st->err), "out of memory");
		goto out;
	}
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	prng_seed(&prng, st->seed);
	if (st->rate > 0 && st->rate / 20 < chunk)
		chunk = st->rate / 20 > 0 ? st->rate / 20 : 1;
	if (st->send_id) {
		unsigned char idb[4] = {st->id >> 24, st->id >> 16, st->id >> 8, st->id};
		if (write_all(st->fd, idb, 4) < 0) {
			snprintf(st->err, sizeof(st->err), "send id: %s", strerror(errno));
			goto out;
		}
	}
	while (st->done < st->bytes) {
		size_t n = st->bytes - st->done < chunk ? (size_t)(st->bytes - st->done) : chunk;

		prng_fill(&prng, buf, n);
		EVP_DigestUpdate(ctx, buf, n);
		if (write_all(st->fd, buf, n) < 0) {
			snprintf(st->err, sizeof(st->err), "send after %llu bytes: %s",
				 (unsigned long long)st->done, strerror(errno));
			goto out;
		}
		st->done += n;
		if (st->rate > 0) {
			double due = start + (double)st->done / (double)st->rate, wait = due - now_s();
			if (wait > 0) {
				struct timespec ts = {(time_t)wait, (long)((wait - (time_t)wait) * 1e9)};
				nanosleep(&ts, NULL);
			}
		}
	}
	if (shutdown(st->fd, SHUT_WR) < 0)
		snprintf(st->err, sizeof(st->err), "shutdown: %s", strerror(errno));
	st->end = now_s();
	hex_digest(ctx, st->hex);
out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	return NULL;
}

/* Reads to EOF, hashing; returns -1 with st->err set on error. */
static int stream_recv(struct stream *st)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *buf = malloc(CHUNK);
	int rc = -1;

	if (ctx == NULL || buf == NULL) {
		snprintf(st->err, sizeof(st->err), "out of memory");
		goto out;
	}
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (;;) {
		ssize_t n = read(st->fd, buf, CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(st->err, sizeof(st->err), "receive after %llu bytes: %s",
				 (unsigned long long)st->done, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		st->done += (uint64_t)n;
	}
	st->end = now_s();
	hex_digest(ctx, st->hex);
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	return rc;
}

static int read_exact(int fd, unsigned char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = read(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- server ---- */

static uint64_t opt_bytes, opt_rate;
static int opt_timing;

static void *server_conn(void *arg)
{
	int fd = (int)(long)arg;
	unsigned char idb[4];
	struct stream in, out;
	pthread_t tid;
	const char *why;

	if (read_exact(fd, idb, 4) < 0) {
		/* health checks and port probes connect without an id */
		close(fd);
		return NULL;
	}
	memset(&in, 0, sizeof(in));
	memset(&out, 0, sizeof(out));
	in.fd = out.fd = fd;
	in.id = out.id = (uint32_t)idb[0] << 24 | (uint32_t)idb[1] << 16 | (uint32_t)idb[2] << 8 | idb[3];
	out.seed = (uint64_t)out.id + SERVER_SEED_OFFSET;
	out.bytes = opt_bytes;
	out.rate = opt_rate;
	if (pthread_create(&tid, NULL, stream_send, &out) != 0) {
		snprintf(out.err, sizeof(out.err), "pthread_create failed");
		stream_recv(&in);
	} else {
		stream_recv(&in);
		pthread_join(tid, NULL);
	}
	close(fd);
	why = in.err[0] ? in.err : out.err;
	pthread_mutex_lock(&out_lock);
	if (why[0])
		printf("%u ERROR %s\n", in.id, why);
	else
		printf("%u %llu %s %s\n", in.id, (unsigned long long)in.done, in.hex, out.hex);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
	return NULL;
}

static int server_run(const struct sockaddr_storage *ss, socklen_t sslen, const char *text)
{
	int fd = tcp_listen("blast", ss, sslen, text, 4096);

	if (fd < 0)
		return 1;
	printf("ready\n");
	fflush(stdout);
	accept_forever(fd, server_conn, 0);
}

/* ---- client ---- */

struct client_conn {
	const struct sockaddr_storage *ss;
	socklen_t sslen;
	struct stream out, in;
	int ok;
};

static void *client_conn_run(void *arg)
{
	struct client_conn *cc = arg;
	pthread_t tid;
	double start;
	int fd;

	fd = tcp_connect(cc->ss, cc->sslen);
	if (fd < 0) {
		snprintf(cc->out.err, sizeof(cc->out.err), "connect: %s", strerror(errno));
		return NULL;
	}
	cc->out.fd = cc->in.fd = fd;
	start = now_s();
	if (pthread_create(&tid, NULL, stream_send, &cc->out) != 0) {
		snprintf(cc->out.err, sizeof(cc->out.err), "pthread_create failed");
		close(fd);
		return NULL;
	}
	stream_recv(&cc->in);
	pthread_join(tid, NULL);
	close(fd);
	cc->ok = cc->in.err[0] == '\0' && cc->out.err[0] == '\0';
	pthread_mutex_lock(&out_lock);
	if (cc->ok)
		printf("%u %s %llu %s\n", cc->out.id, cc->out.hex, (unsigned long long)cc->in.done,
		       cc->in.hex);
	else
		printf("%u ERROR %s\n", cc->out.id, cc->out.err[0] ? cc->out.err : cc->in.err);
	fflush(stdout);
	if (opt_timing && cc->ok)
		fprintf(stderr, "%u timing sent_ms=%.0f eof_ms=%.0f\n", cc->out.id,
			(cc->out.end - start) * 1000, (cc->in.end - start) * 1000);
	pthread_mutex_unlock(&out_lock);
	return NULL;
}

static int client_run(const struct sockaddr_storage *ss, socklen_t sslen, uint64_t conns,
		      uint64_t first_id)
{
	struct client_conn *cc = calloc(conns, sizeof(*cc));
	pthread_t *tids = calloc(conns, sizeof(*tids));
	int failed = 0;

	if (cc == NULL || tids == NULL) {
		fprintf(stderr, "blast: out of memory\n");
		return 1;
	}
	for (uint64_t i = 0; i < conns; i++) {
		cc[i].ss = ss;
		cc[i].sslen = sslen;
		cc[i].out.id = cc[i].in.id = (uint32_t)(first_id + i);
		cc[i].out.seed = first_id + i;
		cc[i].out.bytes = opt_bytes;
		cc[i].out.rate = opt_rate;
		cc[i].out.send_id = 1;
		if (pthread_create(&tids[i], NULL, client_conn_run, &cc[i]) != 0) {
			fprintf(stderr, "blast: pthread_create failed\n");
			return 1;
		}
	}
	for (uint64_t i = 0; i < conns; i++) {
		pthread_join(tids[i], NULL);
		if (!cc[i].ok) {
			fprintf(stderr, "blast: connection %u: %s\n", cc[i].out.id,
				cc[i].out.err[0] ? cc[i].out.err : cc[i].in.err);
			failed++;
		}
	}
	free(cc);
	free(tids);
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"bytes", required_argument, NULL, 'b'},
		{"conns", required_argument, NULL, 'c'},
		{"first-id", required_argument, NULL, 'i'},
		{"rate", required_argument, NULL, 'r'},
		{"timing", no_argument, NULL, 't'},
		{NULL, 0, NULL, 0},
	};
	struct sockaddr_storage ss;
	socklen_t sslen;
	uint64_t conns = 0, first_id = 0;
	int c, have_bytes = 0, server;

	if (argc < 3)
		usage();
	if (strcmp(argv[1], "server") == 0)
		server = 1;
	else if (strcmp(argv[1], "client") == 0)
		server = 0;
	else
		usage();
	if (hostport_parse(argv[2], &ss, &sslen) < 0)
		usage();
	optind = 3;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (size_parse(optarg, UINT64_C(1) << 50, &opt_bytes) < 0)
				usage();
			have_bytes = 1;
			break;
		case 'c':
			if (size_parse(optarg, 10000, &conns) < 0 || conns == 0)
				usage();
			break;
		case 'i':
			if (size_parse(optarg, UINT32_MAX, &first_id) < 0)
				usage();
			break;
		case 'r':
			if (size_parse(optarg, UINT64_C(1) << 40, &opt_rate) < 0)
				usage();
			break;
		case 't':
			opt_timing = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || !have_bytes || (!server && conns == 0) || (server && (conns || opt_timing)) ||
	    first_id + conns > (uint64_t)UINT32_MAX + 1)
		usage();
	signal(SIGPIPE, SIG_IGN);
	if (server)
		return server_run(&ss, sslen, argv[2]);
	return client_run(&ss, sslen, conns, first_id);
}
