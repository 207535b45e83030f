/* tcphash --stats: each backend's share of the table against its weight
 * share. Backups (backup = yes) have a table of their own, and their shares
 * are of that one. With locality, each backend's share of its zone's table
 * as well, and per zone the share of its clients it keeps (zone.h). */
#include <stdio.h>
#include <stdlib.h>

#include "json.h"
#include "tcphash.h"

/* FNV-1a over the backend name of every slot, in slot order, the primaries'
 * table then the backups': equal digests mean equal tables, whatever the
 * order of sections in the file. */
static uint64_t table_digest(const struct hashed *h)
{
	uint64_t d = 0xcbf29ce484222325ULL;

	for (int k = 0; k < TIERS; k++) {
		const struct tier_table *tt = &h->tiers.t[k];

		for (uint32_t s = 0; s < tt->m.size; s++) {
			unsigned b = tt->m.table[s];
			const char *name =
				b == MAGLEV_NONE ? "-" : h->pool->backends[tt->backend[b]].name;

			for (const char *c = name;; c++) {
				d = (d ^ (unsigned char)*c) * 0x100000001b3ULL;
				if (*c == '\0')
					break;
			}
		}
	}
	return d;
}

/* Slots of each backend (pool index) in its zone's tables, and the live
 * weight of each zone's tiers. */
static void zone_slots(const struct hashed *h, uint32_t *zslots, uint64_t (*zlive)[TIERS])
{
	for (size_t k = 0; k < h->zones.n; k++) {
		const struct zone_hash *zh = &h->zones.z[k];

		for (int t = 0; t < TIERS; t++) {
			const struct tier_table *tt = &zh->tiers.t[t];

			for (uint32_t s = 0; s < tt->m.size; s++)
				if (tt->m.table[s] != MAGLEV_NONE)
					zslots[zh->member[tt->backend[tt->m.table[s]]]]++;
		}
		for (size_t j = 0; j < zh->n; j++) {
			size_t i = zh->member[j];

			if (!h->down[i])
				zlive[k][zh->tiers.tier[j]] += h->pool->backends[i].weight;
		}
	}
}

/* Backend i's share of its zone's table (of zone_table_size slots). */
static double zone_share(const struct hashed *h, const uint32_t *zslots, size_t i)
{
	unsigned zone = h->pool->backends[i].zone;

	return zone < h->zones.n ? (double)zslots[i] / h->pool->zone_table_size : 0.0;
}

/* Backend i's share of its zone's table against its weight share there. */
static double zone_ratio(const struct hashed *h, const uint32_t *zslots, uint64_t (*zlive)[TIERS],
			 size_t i)
{
	const struct pool_backend *b = &h->pool->backends[i];
	uint64_t lw;

	if (b->zone >= h->zones.n || h->down[i])
		return 0.0;
	lw = zlive[b->zone][b->backup ? TIER_BACKUP : TIER_PRIMARY];
	return lw ? zone_share(h, zslots, i) / ((double)b->weight / lw) : 0.0;
}

static int stats_available(unsigned b, const void *ctx)
{
	const struct hashed *h = ctx;

	return !h->down[b];
}

/* Per zone: its weight, what of it is available, and the share of its
 * clients it keeps (the rest spill); the peak-to-mean and size of its
 * table. */
static void zone_summary(const struct hashed *h, const uint32_t *zslots,
			 uint64_t (*zlive)[TIERS])
{
	const struct pool *p = h->pool;

	printf(", \"locality\": \"%s\", \"zones\": [", locality_name(p->locality));
	for (size_t k = 0; k < h->zones.n; k++) {
		const struct zone_hash *zh = &h->zones.z[k];
		uint64_t avail = zone_available(p, &h->zones, (unsigned)k, stats_available, h);
		double keeps = 0.0, peak = 0.0;

		if (avail && (avail >= zh->weight || p->locality == LOCALITY_STRICT))
			keeps = 1.0; /* strict keeps every client while it has a backend */
		else if (zh->weight)
			keeps = (double)avail / zh->weight * p->locality_overprovision / 100;
		if (keeps > 1.0)
			keeps = 1.0;
		for (size_t j = 0; j < zh->n; j++) {
			size_t i = zh->member[j];
			uint64_t lw = zlive[k][zh->tiers.tier[j]];
			double ws = h->down[i] || !lw ? 0.0 : (double)p->backends[i].weight / lw;
			double r = ws > 0 ? (double)zslots[i] / p->zone_table_size / ws : 0.0;

			if (r > peak)
				peak = r;
		}
		printf("%s\n  {\"name\": ", k ? "," : "");
		json_string(stdout, p->zones[k].name);
		printf(", \"backends\": %zu, \"weight\": %llu, \"available_weight\": %llu, "
		       "\"keeps\": %.4f, \"peak_to_mean\": %.4f, \"table_size\": %u}",
		       zh->n, (unsigned long long)zh->weight, (unsigned long long)avail, keeps,
		       peak, p->zone_table_size);
	}
	printf("\n]");
}

int run_stats(const struct options *opt)
{
	struct hashed h;
	char err[ERR_LEN];
	uint32_t *slots, *zslots;
	uint64_t live_weight[TIERS] = {0}, (*zlive)[TIERS];
	double peak = 0.0;

	if (hashed_load(&h, opt->pool_path, opt->down_names, opt->ndown, err) < 0) {
		fprintf(stderr, "tcphash: %s\n", err);
		return 2;
	}
	slots = calloc(h.pool->nbackends + 1, sizeof(*slots));
	zslots = calloc(h.pool->nbackends + 1, sizeof(*zslots));
	zlive = calloc(h.zones.n + 1, sizeof(*zlive));
	if (slots == NULL || zslots == NULL || zlive == NULL) {
		fprintf(stderr, "tcphash: out of memory\n");
		free(slots);
		free(zslots);
		free(zlive);
		hashed_free(&h);
		return 2;
	}
	zone_slots(&h, zslots, zlive);
	for (int k = 0; k < TIERS; k++) {
		const struct tier_table *tt = &h.tiers.t[k];

		for (uint32_t s = 0; s < tt->m.size; s++)
			if (tt->m.table[s] != MAGLEV_NONE)
				slots[tt->backend[tt->m.table[s]]]++;
	}
	for (size_t i = 0; i < h.pool->nbackends; i++)
		if (!h.down[i])
			live_weight[h.tiers.tier[i]] += h.pool->backends[i].weight;

	if (opt->json)
		printf("{\"table_size\": %u, \"backends\": [", h.pool->table_size);
	for (size_t i = 0; i < h.pool->nbackends; i++) {
		const struct pool_backend *b = &h.pool->backends[i];
		uint64_t lw = live_weight[h.tiers.tier[i]];
		double share = (double)slots[i] / h.pool->table_size;
		double wshare = h.down[i] || !lw ? 0.0 : (double)b->weight / lw;
		double ratio = wshare > 0 ? share / wshare : 0.0;
		const char *state = h.down[i] && b->state == BACKEND_UP ? "down"
								       : backend_state_name(b->state);

		if (ratio > peak)
			peak = ratio;
		if (opt->json) {
			printf("%s\n  {\"name\": ", i ? "," : "");
			json_string(stdout, b->name);
			printf(", \"weight\": %u, \"state\": \"%s\", \"slots\": %u, \"share\": %.6f, "
			       "\"weight_share\": %.6f, \"ratio\": %.4f",
			       b->weight, state, slots[i], share, wshare, ratio);
			if (hashed_has_backup(&h))
				printf(", \"tier\": \"%s\"", b->backup ? "backup" : "primary");
			if (h.zones.n)
				printf(
				    ", \"zone\": %s%s%s, \"zone_slots\": %u, \"zone_share\": %.6f, "
				    "\"zone_ratio\": %.4f",
				    b->zone < h.zones.n ? "\"" : "",
				    b->zone < h.zones.n ? b->zone_name : "null",
				    b->zone < h.zones.n ? "\"" : "", zslots[i],
				    zone_share(&h, zslots, i), zone_ratio(&h, zslots, zlive, i));
			putchar('}');
		} else {
			printf("%s\t%u\t%s\t%u\t%.6f\t%.6f\t%.4f", b->name, b->weight, state,
			       slots[i], share, wshare, ratio);
			if (h.zones.n) /* with locality: the zone's table too */
				printf("\t%s\t%u\t%.6f\t%.4f",
				       b->zone < h.zones.n ? b->zone_name : "-", zslots[i],
				       zone_share(&h, zslots, i), zone_ratio(&h, zslots, zlive, i));
			putchar('\n');
		}
	}
	if (opt->json) {
		printf("\n], \"peak_to_mean\": %.4f, \"digest\": \"%016llx\"", peak,
		       (unsigned long long)table_digest(&h));
		if (h.zones.n)
			zone_summary(&h, zslots, zlive);
		printf("}\n");
	}

	free(slots);
	free(zslots);
	free(zlive);
	hashed_free(&h);
	return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 2;
}
