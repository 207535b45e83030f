/* tcpdist internals shared by its source files. */
#ifndef TCPDIST_TCPDIST_H
#define TCPDIST_TCPDIST_H

#include <ev.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "balance.h"
#include "maglev.h"
#include "pool.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* Relay tuning. A direction starts copying through the worker's scratch
 * buffer and switches to splice(2) once a single read fills SPLICE_AFTER
 * bytes: small request/response traffic is cheaper to copy, bulk to splice. */
#define RELAY_SCRATCH (64 * 1024)
#define RELAY_SPLICE_AFTER (32 * 1024)
#define RELAY_PIPE_SIZE (64 * 1024)
#define RELAY_ROUNDS 8 /* reads per direction per event, for fairness */
#define CACHE_MAX 64   /* idle pipes and buffers a worker keeps */
#define ACCEPT_BATCH 64

struct options {
	const char *pool_path;
	const char *listen[POOL_LISTEN_MAX]; /* -l, overrides the pool's listen lines */
	size_t nlisten;
	int threads;
	int check_only;
	int verbose;
	int use_syslog;
	int splice;
	uint64_t drain_timeout_ms;
};

/* A backend as the running proxy sees it: configuration plus live counters
 * shared by every worker thread. */
struct upstream {
	char name[POOL_NAME_MAX + 1];
	struct addr addr;
	char addr_text[ADDR_TEXT_LEN];
	unsigned weight;
	enum backend_state state;
	unsigned max_conns;
	atomic_uint active; /* connections being opened or relayed */
	atomic_ullong total;
};

/* Everything the workers need from the configuration, read-only once built. */
struct farm {
	struct pool *pool;
	struct upstream *up;
	size_t n;
	struct maglev maglev; /* balance = hash: the same table tcphash computes */
};

struct farm *farm_create(struct pool *pool, char *err);
void farm_destroy(struct farm *farm);

struct listener {
	ev_io io;
	struct worker *worker;
	int fd;
	char text[ADDR_TEXT_LEN];
};

/* Per-thread state: one libev loop, its listeners and its connections. */
struct worker {
	int id;
	pthread_t thread;
	struct ev_loop *loop;
	const struct options *opt;
	struct farm *farm;
	struct listener *listeners;
	size_t nlisteners;
	ev_async stop;  /* stop accepting, finish connections */
	ev_async force; /* close everything now */
	atomic_int stopping;
	atomic_size_t nconns;
	struct conn *conns; /* all open connections, for a forced close */
	int spare_fd;       /* released to accept (and drop) when out of fds */
	ev_tstamp emfile_logged;

	/* Selection state owned by this thread. */
	struct balance_candidate *cand;
	int64_t *rr_current;
	size_t lc_cursor;
	uint64_t rng;

	/* Relay resources: shared scratch plus small caches so idle
	 * connections hold neither pipes nor buffers. */
	char *scratch;
	char *buf_cache[CACHE_MAX];
	int nbuf_cache;
	int pipe_cache[CACHE_MAX][2];
	int npipe_cache;
	void (*on_exit)(struct worker *w);
};

int worker_init(struct worker *w, int id, const struct options *opt, struct farm *farm);
int worker_start(struct worker *w);
void worker_destroy(struct worker *w);

/* listener.c */
int listeners_open(struct worker *workers, int nworkers, struct pool_listen *addrs, size_t n,
		   char *err);
void listeners_close(struct worker *w);
void listener_accept_cb(struct ev_loop *loop, ev_io *io, int revents);

/* farm.c: pick a backend for a connection, skipping the ones in tried[]. */
int farm_pick(struct worker *w, uint64_t client_hash, const uint32_t *tried, size_t ntried);

/* One direction of a relay. */
struct half {
	int pipe[2];        /* -1 when none is held */
	uint32_t pipe_bytes;
	char *buf;          /* pending copy data, NULL when none */
	uint32_t buf_off;
	uint32_t buf_len;
	uint8_t splice;     /* copy, splice, or splice found impossible */
	uint8_t eof;        /* its source sent FIN */
	uint8_t shut;       /* FIN passed on to its destination */
	uint8_t blocked;    /* destination is full: wait for it to be writable */
	uint64_t bytes;
};

struct attempts; /* connect failures, kept only while connecting */

struct conn {
	ev_io cio; /* client socket */
	ev_io bio; /* backend socket */
	ev_timer timer; /* connect timeout, then idle timeout */
	struct worker *w;
	struct upstream *up;
	struct attempts *attempts;
	struct half c2b, b2c;
	ev_tstamp last_active;
	uint64_t hash; /* of the client, for balance = hash */
	struct conn *prev, *next;
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} client;
	uint8_t connected;
};

void conn_accepted(struct worker *w, int fd, const struct sockaddr *sa, socklen_t len);
void conn_close(struct conn *c, int reset);
void conn_close_all(struct worker *w);
const char *conn_client_text(const struct conn *c, char *buf, size_t len);

/* relay.c */
void relay_start(struct conn *c);
void relay_release(struct worker *w, struct half *h);
void relay_cache_free(struct worker *w);

#endif
