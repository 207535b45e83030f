/* A pool file and its table, built exactly as tcpdist builds it. */
#include <stdlib.h>
#include <string.h>

#include "tcphash.h"

int hashed_load(struct hashed *h, const char *path, const char *const *down, size_t ndown,
		char *err)
{
	const char **names = NULL;
	unsigned *weights = NULL;
	struct pool *p;
	int rc = -1;

	memset(h, 0, sizeof(*h));
	h->path = path;
	p = h->pool = pool_load(path, err);
	if (p == NULL)
		return -1;
	if (p->balance != BALANCE_HASH) {
		err_set(err, "%s: balance is %s: clients have no fixed backend (tcphash answers for "
			     "balance = hash)", path, balance_name(p->balance));
		goto out;
	}
	names = calloc(p->nbackends + 1, sizeof(*names));
	weights = calloc(p->nbackends + 1, sizeof(*weights));
	h->down = calloc(p->nbackends + 1, 1);
	if (names == NULL || weights == NULL || h->down == NULL) {
		err_set(err, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < p->nbackends; i++) {
		names[i] = p->backends[i].name;
		weights[i] = p->backends[i].weight;
		h->down[i] = p->backends[i].state != BACKEND_UP;
	}
	for (size_t i = 0; i < ndown; i++) {
		const struct pool_backend *b = pool_find_backend(p, down[i]);

		if (b == NULL) {
			err_set(err, "--down: no backend named '%s' in %s", down[i], path);
			goto out;
		}
		h->down[b - p->backends] = 1;
	}
	if (maglev_build(&h->table, names, weights, p->nbackends, p->table_size, err) < 0)
		goto out;
	maglev_set_down(&h->table, h->down);
	rc = 0;
out:
	free(names);
	free(weights);
	if (rc < 0)
		hashed_free(h);
	return rc;
}

void hashed_free(struct hashed *h)
{
	pool_free(h->pool);
	maglev_free(&h->table);
	free(h->down);
	memset(h, 0, sizeof(*h));
}

unsigned hashed_lookup(const struct hashed *h, uint64_t hash)
{
	return maglev_lookup(&h->table, hash);
}
