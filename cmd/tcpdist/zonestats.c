/* Locality's counters: connections by the client's zone and the zone of
 * the backend chosen for it, spills and strict refusals. They are keyed by
 * zone name, not by index, as a reload may add zones and renumber them
 * (zones are in name order). Pairs are few and never removed: a worker
 * finds its pair by a scan without locks and takes the lock only to add
 * one. The table is made on the first count and freed at exit. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpdist.h"

#define ZONE_PAIRS_MAX 1024 /* (client zone, backend zone) pairs; more share the last */

struct zone_pair {
	char czone[POOL_NAME_MAX + 1], bzone[POOL_NAME_MAX + 1];
	atomic_ullong n[ZONE_STATS_KINDS]; /* by enum zone_where, and refusals */
};

struct zone_stats {
	pthread_mutex_t lock;  /* adding a pair */
	atomic_size_t npairs;  /* published after the pair is written */
	struct zone_pair pairs[ZONE_PAIRS_MAX];
};

static struct zone_stats *zone_stats_get(struct proc *p)
{
	struct zone_stats *zs = atomic_load_explicit(&p->zone_stats, memory_order_acquire), *none = NULL;

	if (zs)
		return zs;
	if ((zs = calloc(1, sizeof(*zs))) == NULL)
		return NULL;
	pthread_mutex_init(&zs->lock, NULL);
	if (!atomic_compare_exchange_strong(&p->zone_stats, &none, zs)) {
		pthread_mutex_destroy(&zs->lock);
		free(zs);
		return none; /* another worker's */
	}
	return zs;
}

static struct zone_pair *pair_find(struct zone_stats *zs, size_t from, size_t n,
				   const char *czone, const char *bzone)
{
	for (size_t i = from; i < n; i++)
		if (strcmp(zs->pairs[i].czone, czone) == 0 && strcmp(zs->pairs[i].bzone, bzone) == 0)
			return &zs->pairs[i];
	return NULL;
}

/* The pair's entry, added if new: it lives until exit, so a connection may
 * keep a pointer to it (the zones' names for its log line) instead of a
 * copy of both names. */
const struct zone_pair *zone_stats_pair(struct proc *p, const char *czone, const char *bzone)
{
	struct zone_stats *zs = zone_stats_get(p);
	struct zone_pair *pair;
	size_t n;

	if (zs == NULL)
		return NULL;
	n = atomic_load_explicit(&zs->npairs, memory_order_acquire);
	if ((pair = pair_find(zs, 0, n, czone, bzone)) == NULL) {
		pthread_mutex_lock(&zs->lock);
		n = atomic_load_explicit(&zs->npairs, memory_order_relaxed);
		if ((pair = pair_find(zs, 0, n, czone, bzone)) == NULL) {
			if (n == ZONE_PAIRS_MAX) {
				pair = &zs->pairs[n - 1];
			} else {
				pair = &zs->pairs[n];
				snprintf(pair->czone, sizeof(pair->czone), "%s", czone);
				snprintf(pair->bzone, sizeof(pair->bzone), "%s", bzone);
				atomic_store_explicit(&zs->npairs, n + 1, memory_order_release);
			}
		}
		pthread_mutex_unlock(&zs->lock);
	}
	return pair;
}

void zone_stats_count(const struct zone_pair *pair, int kind)
{
	if (pair)
		atomic_fetch_add_explicit(&((struct zone_pair *)pair)->n[kind], 1,
					  memory_order_relaxed);
}

const char *zone_pair_name(const struct zone_pair *pair, int backend)
{
	return pair == NULL ? "-" : backend ? pair->bzone : pair->czone;
}

void zone_stats_free(struct proc *p)
{
	struct zone_stats *zs = atomic_exchange(&p->zone_stats, NULL);

	if (zs) {
		pthread_mutex_destroy(&zs->lock);
		free(zs);
	}
}

void zone_stats_render(const struct proc *p, struct sbuf *b)
{
	struct zone_stats *zs = atomic_load_explicit(&p->zone_stats, memory_order_acquire);
	size_t n = zs ? atomic_load_explicit(&zs->npairs, memory_order_acquire) : 0;
	static const struct {
		const char *name, *help;
		int kinds; /* bits of the kinds summed */
	} families[] = {
		{"tcpdist_zone_connections_total",
		 "Client connections by the client's zone and the zone of the backend first chosen "
		 "(\"-\": none).", 1 << ZONE_ANY | 1 << ZONE_LOCAL | 1 << ZONE_SPILL},
		{"tcpdist_zone_spills_total",
		 "Client connections sent out of their zone (locality = prefer), by the zone they "
		 "went to.", 1 << ZONE_SPILL},
		{"tcpdist_zone_refused_total",
		 "Client connections refused for want of a backend (locality = strict: in their "
		 "zone).", 1 << ZONE_STATS_REFUSED},
	};

	if (n == 0)
		return;
	for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
		sb_printf(b, "# HELP %s %s\n# TYPE %s counter\n", families[f].name, families[f].help,
			  families[f].name);
		for (size_t i = 0; i < n; i++) {
			const struct zone_pair *pr = &zs->pairs[i];
			unsigned long long v = 0;

			for (int k = 0; k < ZONE_STATS_KINDS; k++)
				if (families[f].kinds & 1 << k)
					v += atomic_load_explicit(&pr->n[k], memory_order_relaxed);
			if (f == 0 || v)
				sb_printf(b, "%s{client_zone=\"%s\",backend_zone=\"%s\"} %llu\n",
					  families[f].name, pr->czone, pr->bzone, v);
		}
	}
}
