/* Host names in the pool, looked up on the loader thread with getaddrinfo_a(3)
 * and a deadline. A name server that does not answer would hold a blocking
 * getaddrinfo for its own timeouts (10 s and more); here every name of a load
 * is asked at once, the wait is cut into slices so a quitting process is not
 * held up, and past the deadline the load fails with the names that did not
 * answer. glibc owns a request until it is done, so one that outlives its
 * deadline is kept on a list and freed once glibc lets go of it. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tcpdist.h"

#define RESOLVE_SLICE_MS 100 /* longest wait before looking at quit again */
#define RESOLVE_PARALLEL 8   /* lookups at once: each holds a socket of the reserve */

struct lookup {
	char host[256];
	struct addrinfo hints;
	struct gaicb req;
};

/* The lookups of one load; the addresses wait for their answers. */
struct batch {
	struct batch *next;
	struct lookup *lk;
	struct gaicb **list;
	size_t n;
	size_t started; /* list[0..started) were handed to glibc */
};

struct resolver {
	struct batch *stale; /* past their deadline, still glibc's */
};

struct resolver *resolver_new(void)
{
	return calloc(1, sizeof(struct resolver));
}

static size_t batch_running(const struct batch *b)
{
	size_t n = 0;

	for (size_t i = 0; i < b->started; i++)
		n += gai_error(&b->lk[i].req) == EAI_INPROGRESS;
	return n;
}

static void batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->started; i++)
		if (gai_error(&b->lk[i].req) == 0)
			freeaddrinfo(b->lk[i].req.ar_result);
	free(b->lk);
	free(b->list);
	free(b);
}

/* Frees the stale batches glibc is done with; returns how many remain. */
static size_t resolver_sweep(struct resolver *r)
{
	size_t left = 0;

	for (struct batch **pb = &r->stale; *pb;) {
		struct batch *b = *pb;

		if (batch_running(b)) {
			left++;
			pb = &b->next;
			continue;
		}
		*pb = b->next;
		batch_free(b);
	}
	return left;
}

int resolver_free(struct resolver *r)
{
	if (r == NULL)
		return 0;
	if (resolver_sweep(r) > 0)
		return -1; /* still glibc's: the caller keeps r reachable */
	free(r);
	return 0;
}

static int is_name(const struct addr *a)
{
	return a->ss.ss_family == AF_UNSPEC;
}

/* Whether an address was written as a host name (resolved or not). */
static int written_as_name(const char *text)
{
	struct addr a;
	char err[ERR_LEN];

	return addr_parse(text, ADDR_ALLOW_PORT0 | ADDR_NAME_UNCHECKED, &a, err) == 0 &&
	       is_name(&a);
}

int pool_has_names(const struct pool *pool)
{
	for (size_t i = 0; i < pool->nbackends; i++)
		if (written_as_name(pool->backends[i].addr_text))
			return 1;
	for (size_t i = 0; i < pool->nlisten; i++)
		if (written_as_name(pool->listen[i].text))
			return 1;
	return 0;
}

/* An address of the pool that waits for a name. */
struct wanted {
	struct addr *out;
	const char *text; /* as written */
	const char *key;
	int line;
	uint16_t port;
	size_t lookup; /* index into the batch */
};

static size_t batch_add(struct batch *b, const char *host)
{
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(b->lk[i].host, host) == 0)
			return i;
	struct lookup *k = &b->lk[b->n];

	snprintf(k->host, sizeof(k->host), "%s", host);
	k->hints.ai_family = AF_UNSPEC;
	k->hints.ai_socktype = SOCK_STREAM;
	k->hints.ai_flags = AI_ADDRCONFIG; /* as addr_parse asks */
	k->req.ar_name = k->host;
	k->req.ar_request = &k->hints;
	b->list[b->n] = &k->req;
	return b->n++;
}

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Hands glibc the next lookups, RESOLVE_PARALLEL at most running; -1 if it
 * takes none. */
static int batch_start(struct batch *b)
{
	size_t room = RESOLVE_PARALLEL - batch_running(b);

	while (room-- > 0 && b->started < b->n) {
		if (getaddrinfo_a(GAI_NOWAIT, &b->list[b->started], 1, NULL) != 0)
			return -1;
		b->started++;
	}
	return 0;
}

/* Waits for every answer until the deadline, or until *quit. */
static int batch_wait(struct batch *b, double deadline, const atomic_int *quit)
{
	for (;;) {
		double left = deadline - now_mono();
		struct timespec ts;

		if (batch_start(b) < 0)
			return -1;
		if ((b->started == b->n && batch_running(b) == 0) || atomic_load(quit) || left <= 0)
			return 0;
		if (left > RESOLVE_SLICE_MS / 1000.0)
			left = RESOLVE_SLICE_MS / 1000.0;
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
		/* Only lookups still running: gai_suspend returns at once for a done one. */
		const struct gaicb *running[RESOLVE_PARALLEL];
		int nrunning = 0;

		for (size_t i = 0; i < b->started && nrunning < RESOLVE_PARALLEL; i++)
			if (gai_error(b->list[i]) == EAI_INPROGRESS)
				running[nrunning++] = b->list[i];
		gai_suspend(running, nrunning, &ts);
	}
}

static size_t collect(struct pool *pool, struct wanted *w)
{
	size_t n = 0;

	for (size_t i = 0; i < pool->nlisten; i++) {
		struct pool_listen *l = &pool->listen[i];

		if (is_name(&l->addr))
			w[n++] = (struct wanted){&l->addr, l->text, l->line ? "listen" : "-l",
						 l->line, 0, 0};
	}
	for (size_t i = 0; i < pool->nbackends; i++) {
		struct pool_backend *b = &pool->backends[i];

		if (is_name(&b->addr))
			w[n++] = (struct wanted){&b->addr, b->addr_text, "address", b->addr_line, 0,
						 0};
	}
	return n;
}

static void wanted_error(const struct wanted *w, const char *path, const char *why, char *err)
{
	if (w->line > 0)
		err_set(err, "%s:%d: %s: %s", path, w->line, w->key, why);
	else
		err_set(err, "%s: %s", w->key, why);
}

int resolve_pool(struct resolver *r, struct pool *pool, const char *path, uint64_t timeout_ms,
		 const atomic_int *quit, char *err)
{
	size_t cap = pool->nbackends + pool->nlisten, n;
	struct wanted *w = calloc(cap ? cap : 1, sizeof(*w));
	struct batch *b = calloc(1, sizeof(*b));
	char host[256], why[ERR_LEN];
	int rc = -1;

	resolver_sweep(r);
	if (w == NULL || b == NULL || (b->lk = calloc(cap ? cap : 1, sizeof(*b->lk))) == NULL ||
	    (b->list = calloc(cap ? cap : 1, sizeof(*b->list))) == NULL) {
		free(w);
		if (b)
			free(b->lk), free(b->list), free(b);
		return err_set(err, "out of memory");
	}
	n = collect(pool, w);
	for (size_t i = 0; i < n; i++) {
		if (addr_host_port(w[i].text, host, sizeof(host), &w[i].port, why) < 0) {
			wanted_error(&w[i], path, why, err);
			goto out;
		}
		w[i].lookup = batch_add(b, host);
	}
	if (b->n == 0) {
		rc = 0;
		goto out;
	}
	if (batch_wait(b, now_mono() + (double)timeout_ms / 1000.0, quit) < 0) {
		err_set(err, "cannot start name lookups: %s", strerror(errno));
		goto out;
	}
	rc = 0;
	for (size_t i = 0; i < n; i++) {
		struct lookup *k = &b->lk[w[i].lookup];
		int e = w[i].lookup < b->started ? gai_error(&k->req) : EAI_INPROGRESS;

		if (e == 0) {
			addr_from_lookup(w[i].out, k->req.ar_result->ai_addr,
					 k->req.ar_result->ai_addrlen, w[i].port);
			continue;
		}
		if (e == EAI_INPROGRESS)
			snprintf(why, sizeof(why), "cannot resolve '%.128s': no answer within %llums",
				 k->host, (unsigned long long)timeout_ms);
		else
			addr_resolve_error(why, k->host, e);
		wanted_error(&w[i], path, why, err);
		rc = -1;
		break;
	}
out:
	for (size_t i = 0; i < b->started; i++)
		if (gai_error(&b->lk[i].req) == EAI_INPROGRESS)
			gai_cancel(&b->lk[i].req);
	if (batch_running(b)) {
		b->next = r->stale;
		r->stale = b;
	} else {
		batch_free(b);
	}
	free(w);
	return rc;
}
