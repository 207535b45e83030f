/* tcphash --stats: each backend's share of the table against its weight
 * share. Backups (backup = yes) have a table of their own, and their shares
 * are of that one. */
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

int run_stats(const struct options *opt)
{
	struct hashed h;
	char err[ERR_LEN];
	uint32_t *slots;
	uint64_t live_weight[TIERS] = {0};
	double peak = 0.0;

	if (hashed_load(&h, opt->pool_path, opt->down_names, opt->ndown, err) < 0) {
		fprintf(stderr, "tcphash: %s\n", err);
		return 2;
	}
	slots = calloc(h.pool->nbackends + 1, sizeof(*slots));
	if (slots == NULL) {
		fprintf(stderr, "tcphash: out of memory\n");
		hashed_free(&h);
		return 2;
	}
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
			putchar('}');
		} else {
			printf("%s\t%u\t%s\t%u\t%.6f\t%.6f\t%.4f\n", b->name, b->weight, state,
			       slots[i], share, wshare, ratio);
		}
	}
	if (opt->json)
		printf("\n], \"peak_to_mean\": %.4f, \"digest\": \"%016llx\"}\n", peak,
		       (unsigned long long)table_digest(&h));

	free(slots);
	hashed_free(&h);
	return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 2;
}
