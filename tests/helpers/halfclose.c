/* halfclose: connects, sends BYTES bytes (pseudo-random, or the start of
 * FILE with --data), shuts down its write side, and reads the reply until
 * EOF, reading all the while so an echoing peer never stalls. Prints
 *	sent N SHA256
 *	received M SHA256
 * and with --out saves the reply to FILE. Exits 1 if the connection
 * failed (connect error, reset). */
#include "helper.h"
#include <getopt.h>
#include <signal.h>

#define CHUNK 65536

static int sock = -1;
static unsigned long long want;
static FILE *data_in;
static char sent_err[160];
static char sent_hex[65];

static _Noreturn void usage(void)
{
	fprintf(stderr, "usage: halfclose [--data FILE] [--out FILE] ADDR:PORT BYTES\n");
	exit(2);
}

static void *sender(void *arg)
{
	static unsigned char buf[CHUNK];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned long long done = 0;
	uint64_t x = 0x243f6a8885a308d3ULL;

	(void)arg;
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	while (done < want) {
		size_t n = want - done < CHUNK ? (size_t)(want - done) : CHUNK, off = 0;

		if (data_in != NULL) {
			if (fread(buf, 1, n, data_in) != n) {
				snprintf(sent_err, sizeof(sent_err), "data file shorter than %llu bytes",
					 want);
				goto out;
			}
		} else {
			for (size_t i = 0; i < n; i++) { /* xorshift64 */
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				buf[i] = (unsigned char)(x >> 32);
			}
		}
		EVP_DigestUpdate(ctx, buf, n);
		while (off < n) {
			ssize_t w = send(sock, buf + off, n - off, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				snprintf(sent_err, sizeof(sent_err), "send after %llu bytes: %s",
					 done + off, strerror(errno));
				goto out;
			}
			off += (size_t)w;
		}
		done += n;
	}
	if (shutdown(sock, SHUT_WR) < 0)
		snprintf(sent_err, sizeof(sent_err), "shutdown: %s", strerror(errno));
	hex_digest(ctx, sent_hex);
out:
	EVP_MD_CTX_free(ctx);
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"data", required_argument, NULL, 'd'},
		{"out", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	static unsigned char buf[CHUNK];
	struct sockaddr_storage ss;
	socklen_t sslen;
	EVP_MD_CTX *ctx;
	FILE *out = NULL;
	unsigned long long got = 0;
	char hex[65] = "", *end;
	const char *recv_err = NULL;
	pthread_t tid;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if ((data_in = fopen(optarg, "rb")) == NULL) {
				fprintf(stderr, "halfclose: %s: %s\n", optarg, strerror(errno));
				exit(2);
			}
			break;
		case 'o':
			if ((out = fopen(optarg, "wb")) == NULL) {
				fprintf(stderr, "halfclose: %s: %s\n", optarg, strerror(errno));
				exit(2);
			}
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 2 || hostport_parse(argv[optind], &ss, &sslen) < 0)
		usage();
	errno = 0;
	want = strtoull(argv[optind + 1], &end, 10);
	if (errno != 0 || *end != '\0' || argv[optind + 1][0] < '0' || argv[optind + 1][0] > '9')
		usage();
	signal(SIGPIPE, SIG_IGN);

	sock = tcp_connect(&ss, sslen);
	if (sock < 0) {
		fprintf(stderr, "halfclose: connect %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	if (pthread_create(&tid, NULL, sender, NULL) != 0) {
		fprintf(stderr, "halfclose: pthread_create failed\n");
		return 1;
	}
	ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (;;) {
		ssize_t n = read(sock, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			recv_err = strerror(errno);
			break;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		if (out != NULL && fwrite(buf, 1, (size_t)n, out) != (size_t)n) {
			fprintf(stderr, "halfclose: writing the reply: %s\n", strerror(errno));
			return 1;
		}
		got += (unsigned long long)n;
	}
	hex_digest(ctx, hex);
	EVP_MD_CTX_free(ctx);
	pthread_join(tid, NULL);
	if (out != NULL && fclose(out) != 0) {
		fprintf(stderr, "halfclose: writing the reply: %s\n", strerror(errno));
		return 1;
	}
	printf("sent %llu %s\n", sent_err[0] ? 0ULL : want, sent_err[0] ? "-" : sent_hex);
	printf("received %llu %s\n", got, recv_err ? "-" : hex);
	if (sent_err[0])
		fprintf(stderr, "halfclose: %s\n", sent_err);
	if (recv_err)
		fprintf(stderr, "halfclose: receive after %llu bytes: %s\n", got, recv_err);
	if (fclose(stdout) != 0)
		return 1;
	return sent_err[0] || recv_err ? 1 : 0;
}
