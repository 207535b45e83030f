/* The running set of backends and the choice of one for a connection. */
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "tcpdist.h"

/* The configured table, then drained and down backends' slots refilled. */
static int farm_build_table(struct farm *f, char *err)
{
	const char **names = calloc(f->n ? f->n : 1, sizeof(*names));
	unsigned *weights = calloc(f->n ? f->n : 1, sizeof(*weights));
	uint8_t *down = calloc(f->n ? f->n : 1, 1);
	int rc = -1;

	if (names == NULL || weights == NULL || down == NULL) {
		err_set(err, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < f->n; i++) {
		names[i] = f->up[i].name;
		weights[i] = f->up[i].weight;
		down[i] = f->up[i].state != BACKEND_UP;
	}
	if (maglev_build(&f->maglev, names, weights, f->n, f->pool->table_size, err) < 0)
		goto out;
	maglev_set_down(&f->maglev, down);
	rc = 0;
out:
	free(names);
	free(weights);
	free(down);
	return rc;
}

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
	if (pool->balance == BALANCE_HASH && farm_build_table(f, err) < 0) {
		f->pool = NULL; /* still the caller's */
		farm_destroy(f);
		return NULL;
	}
	return f;
}

void farm_destroy(struct farm *farm)
{
	if (farm == NULL)
		return;
	pool_free(farm->pool);
	maglev_free(&farm->maglev);
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

struct pick_ctx {
	struct farm *farm;
	const uint32_t *tried;
	size_t ntried;
};

static int pick_accept(unsigned b, void *ctx)
{
	struct pick_ctx *p = ctx;

	return eligible(&p->farm->up[b], p->tried, p->ntried, b);
}

/* The client's own backend if it can take the connection, else the first
 * that can in the client's preference order: what tcphash -n prints. */
static int farm_pick_hash(struct farm *f, uint64_t hash, const uint32_t *tried, size_t ntried)
{
	struct pick_ctx ctx = {f, tried, ntried};
	unsigned b = maglev_lookup(&f->maglev, hash);

	if (b != MAGLEV_NONE && eligible(&f->up[b], tried, ntried, b))
		return (int)b;
	b = maglev_first(&f->maglev, hash, pick_accept, &ctx);
	return b == MAGLEV_NONE ? -1 : (int)b;
}

int farm_pick(struct worker *w, uint64_t client_hash, const uint32_t *tried, size_t ntried)
{
	struct farm *f = w->farm;
	struct balance_candidate *c = w->cand;

	if (f->pool->balance == BALANCE_HASH)
		return farm_pick_hash(f, client_hash, tried, ntried);

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
	case BALANCE_HASH: /* handled above */
		break;
	}
	return balance_roundrobin(c, f->n, w->rr_current);
}
