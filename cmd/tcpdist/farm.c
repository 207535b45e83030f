/* The running set of backends and the choice of one for a connection. */
#include <stdlib.h>
#include <string.h>

#include "tcpdist.h"

struct farm *farm_create(struct pool *pool, char *err)
{
	struct farm *f = calloc(1, sizeof(*f));

	if (f == NULL || (pool->nbackends &&
			  !(f->up = calloc(pool->nbackends, sizeof(*f->up))))) {
		free(f);
		return err_set(err, "out of memory"), NULL;
	}
	f->pool = pool;
	f->n = pool->nbackends;
	for (size_t i = 0; i < f->n; i++) {
		const struct pool_backend *b = &pool->backends[i];
		struct upstream *u = &f->up[i];

		memcpy(u->name, b->name, sizeof(u->name));
		u->addr = b->addr;
		addr_format((const struct sockaddr *)&b->addr.ss, u->addr_text,
			    sizeof(u->addr_text));
		u->weight = b->weight;
		u->state = b->state;
		u->max_conns = b->max_conns;
		atomic_init(&u->active, 0);
		atomic_init(&u->total, 0);
	}
	return f;
}

void farm_destroy(struct farm *farm)
{
	if (farm == NULL)
		return;
	pool_free(farm->pool);
	free(farm->up);
	free(farm);
}

/* Up, weighted, below its connection limit, and not tried already. Drain
 * and weight 0 keep established connections but take no new ones; a down
 * backend is not even a retry target. */
static int eligible(const struct upstream *u, const uint32_t *tried, size_t ntried, size_t i)
{
	if (u->state != BACKEND_UP || u->weight == 0)
		return 0;
	if (u->max_conns && atomic_load_explicit(&u->active, memory_order_relaxed) >= u->max_conns)
		return 0;
	for (size_t k = 0; k < ntried; k++)
		if (tried[k] == i)
			return 0;
	return 1;
}

int farm_pick(struct worker *w, const uint32_t *tried, size_t ntried)
{
	struct farm *f = w->farm;
	struct balance_candidate *c = w->cand;

	for (size_t i = 0; i < f->n; i++) {
		c[i].weight = f->up[i].weight;
		c[i].active = atomic_load_explicit(&f->up[i].active, memory_order_relaxed);
		c[i].eligible = eligible(&f->up[i], tried, ntried, i);
	}
	switch (f->pool->balance) {
	case BALANCE_LEASTCONN:
		return balance_leastconn(c, f->n, &w->lc_cursor);
	case BALANCE_RANDOM:
		return balance_random(c, f->n, &w->rng);
	case BALANCE_ROUNDROBIN:
	case BALANCE_HASH:
		break;
	}
	return balance_roundrobin(c, f->n, w->rr_current);
}
