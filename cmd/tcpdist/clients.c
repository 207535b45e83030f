/* The table of clients behind client_max_conns and client_rate: for each
 * client (an IPv4 address, or an IPv6 prefix of client_prefix6 bits) its
 * connections open now and its token bucket, shared by every worker so the
 * limits hold across -j threads.
 *
 * It is bounded: a fixed number of entries, 8-way set associative under a
 * keyed hash (a random key, so clients cannot aim at one set), sized when
 * the first pool with limits is loaded to twice the connections the
 * descriptor limit allows (at least 4096 entries, at most 2^20), so that
 * clients with open connections, which are never evicted, fit. A newcomer
 * whose set is full takes the place of the least recently seen entry
 * without connections, first one whose bucket is full again (it says
 * nothing a new entry would not), else one that still held part of a rate
 * (counted as evicted: that client gets a fresh burst). When all 8 have
 * connections open, the newcomer is let through uncounted (counted as
 * table_full): a set full of connected clients is not the newcomer's doing.
 *
 * The bucket is kept as GCRA's theoretical arrival time (tat): one number,
 * integer nanoseconds, no floating point. A connection is allowed while
 * tat - now <= (burst - 1) * T with T = 1 s / rate, and then moves tat on
 * by T: a bucket of burst tokens refilled at rate a second. Sets are locked
 * by stripes of mutexes; a lookup is a hash, a lock and 8 compares. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>

#include "cidr.h"
#include "hash.h"
#include "rng.h"
#include "tcpdist.h"

#define CLIENT_WAYS 8
#define CLIENT_LOCKS 1024
#define CLIENT_ENTRIES_MIN 4096u
#define CLIENT_ENTRIES_MAX (1u << 20)
#define NS 1000000000ull

struct client_entry {
	uint8_t key[16];  /* IPv4 as IPv4-mapped IPv6, IPv6 cut to client_prefix6 */
	uint64_t tat;     /* GCRA: when the bucket is full again, ns; 0 if it is */
	uint32_t conns;   /* open now */
	uint32_t seen;    /* last admission, seconds since the table began, + 1; 0: free */
};

struct clients {
	atomic_uint refs;
	uint32_t nsets; /* a power of two */
	uint8_t seed[HASH_SEED_LEN];
	uint64_t t0;    /* the monotonic clock when the table was made, ns */
	struct client_entry *e;
	pthread_mutex_t locks[CLIENT_LOCKS];
	atomic_long used;
	atomic_ullong evicted, full;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

/* Entries for twice the clients the descriptor limit lets connect at once. */
static uint32_t clients_size(void)
{
	struct rlimit rl;
	uint64_t want = CLIENT_ENTRIES_MIN;
	uint32_t n = CLIENT_ENTRIES_MIN;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY)
		want = (uint64_t)rl.rlim_max / CONN_FDS * 2;
	else if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		want = CLIENT_ENTRIES_MAX;
	while (n < want && n < CLIENT_ENTRIES_MAX)
		n *= 2;
	return n;
}

static struct clients *clients_new(void)
{
	struct clients *t = calloc(1, sizeof(*t));
	uint64_t rng = rng_seed();
	uint32_t n = clients_size();

	if (t == NULL)
		return NULL;
	/* calloc of this size maps fresh zero pages: untouched sets cost no memory. */
	if ((t->e = calloc(n, sizeof(*t->e))) == NULL) {
		free(t);
		return NULL;
	}
	t->nsets = n / CLIENT_WAYS;
	if (getrandom(t->seed, sizeof(t->seed), GRND_NONBLOCK) != (ssize_t)sizeof(t->seed))
		for (int i = 0; i < HASH_SEED_LEN; i++)
			t->seed[i] = (uint8_t)(rng_next(&rng) >> 24);
	for (int i = 0; i < CLIENT_LOCKS; i++)
		pthread_mutex_init(&t->locks[i], NULL);
	t->t0 = now_ns();
	atomic_init(&t->refs, 1);
	return t;
}

int clients_carry(struct clients **out, struct clients *prev, const struct pool *pool, char *err)
{
	*out = NULL;
	if (prev) {
		atomic_fetch_add_explicit(&prev->refs, 1, memory_order_relaxed);
		*out = prev;
		return 0;
	}
	if (pool->client_max_conns == 0 && pool->client_rate == 0)
		return 0;
	if ((*out = clients_new()) == NULL)
		return err_set(err, "out of memory");
	return 0;
}

void clients_ref(struct clients *t)
{
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void clients_unref(struct clients *t)
{
	if (t == NULL || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (int i = 0; i < CLIENT_LOCKS; i++)
		pthread_mutex_destroy(&t->locks[i]);
	free(t->e);
	free(t);
}

/* The client's key: IPv4 as IPv4-mapped IPv6, IPv6 cut to prefix6 bits. */
static int client_key(const struct sockaddr *sa, unsigned prefix6, uint8_t key[16])
{
	uint8_t a[16];
	int v6;

	if (cidr_key(sa, a, &v6) < 0)
		return -1;
	memset(key, 0, 16);
	if (!v6) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, a, 4);
		return 0;
	}
	for (unsigned i = 0; i < 16; i++) {
		unsigned keep = prefix6 > 8 * i ? prefix6 - 8 * i : 0;

		key[i] = keep >= 8 ? a[i] : (uint8_t)(a[i] & (0xff00u >> keep));
	}
	return 0;
}

/* The way of set that a newcomer takes, or NULL when all hold connections. */
static struct client_entry *client_place(struct clients *t, struct client_entry *set, uint64_t now)
{
	struct client_entry *stale = NULL, *oldest = NULL;

	for (int i = 0; i < CLIENT_WAYS; i++) {
		struct client_entry *e = &set[i];

		if (e->seen == 0) {
			atomic_fetch_add_explicit(&t->used, 1, memory_order_relaxed);
			return e;
		}
		if (e->conns)
			continue;
		if (e->tat <= now && (stale == NULL || e->seen < stale->seen))
			stale = e;
		if (oldest == NULL || e->seen < oldest->seen)
			oldest = e;
	}
	if (stale)
		return stale;
	if (oldest)
		atomic_fetch_add_explicit(&t->evicted, 1, memory_order_relaxed);
	return oldest;
}

enum client_verdict clients_take(struct clients *t, const struct sockaddr *sa,
				 const struct pool *pool, uint32_t *slot)
{
	uint8_t key[16];
	uint64_t h, now = 0, tat;
	uint32_t set;
	struct client_entry *e = NULL, *ways;
	pthread_mutex_t *lock;
	enum client_verdict v = CLIENT_OK;

	*slot = 0;
	if (client_key(sa, pool->client_prefix6, key) < 0)
		return CLIENT_UNCOUNTED;
	if (pool->client_rate)
		now = now_ns() - t->t0 + NS; /* never 0: tat 0 means a full bucket */
	h = siphash24(t->seed, key, sizeof(key));
	set = (uint32_t)h & (t->nsets - 1);
	ways = &t->e[(size_t)set * CLIENT_WAYS];
	lock = &t->locks[set % CLIENT_LOCKS];
	pthread_mutex_lock(lock);
	for (int i = 0; i < CLIENT_WAYS && e == NULL; i++)
		if (ways[i].seen && memcmp(ways[i].key, key, sizeof(key)) == 0)
			e = &ways[i];
	if (e == NULL) {
		if (now == 0)
			now = now_ns() - t->t0 + NS;
		if ((e = client_place(t, ways, now)) == NULL) {
			pthread_mutex_unlock(lock);
			atomic_fetch_add_explicit(&t->full, 1, memory_order_relaxed);
			return CLIENT_UNCOUNTED;
		}
		memcpy(e->key, key, sizeof(key));
		e->tat = 0;
		e->conns = 0;
	}
	if (now == 0)
		now = now_ns() - t->t0 + NS;
	e->seen = (uint32_t)(now / NS) + 1;
	if (pool->client_max_conns && e->conns >= pool->client_max_conns) {
		v = CLIENT_MAX_CONNS;
	} else if (pool->client_rate) {
		uint64_t period = NS / pool->client_rate;

		tat = e->tat > now ? e->tat : now;
		if (tat - now > period * (pool->client_burst - 1))
			v = CLIENT_RATE;
		else
			e->tat = tat + period;
	}
	if (v == CLIENT_OK) {
		e->conns++;
		*slot = (uint32_t)(e - t->e) + 1;
	}
	pthread_mutex_unlock(lock);
	return v;
}

void clients_release(struct clients *t, uint32_t slot)
{
	struct client_entry *e = &t->e[slot - 1];
	pthread_mutex_t *lock = &t->locks[((slot - 1) / CLIENT_WAYS) % CLIENT_LOCKS];

	pthread_mutex_lock(lock);
	/* Idle and its bucket full: it says nothing, so it goes now. */
	if (--e->conns == 0 && (e->tat == 0 || e->tat <= now_ns() - t->t0 + NS)) {
		e->seen = 0;
		atomic_fetch_sub_explicit(&t->used, 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(lock);
}

void clients_stats(const struct clients *t, struct clients_stats *s)
{
	memset(s, 0, sizeof(*s));
	if (t == NULL)
		return;
	s->size = (unsigned long)t->nsets * CLIENT_WAYS;
	s->used = (unsigned long)atomic_load_explicit(&t->used, memory_order_relaxed);
	s->evicted = atomic_load_explicit(&t->evicted, memory_order_relaxed);
	s->full = atomic_load_explicit(&t->full, memory_order_relaxed);
}
