/* Backends' live identities: shared by configurations and connections, so
 * a reload that keeps a backend's name and address keeps its health and
 * counters, and a removed backend lives on until its last connection ends. */
#include <stdlib.h>
#include <string.h>

#include "tcpdist.h"

struct upstream *upstream_create(const struct pool_backend *b)
{
	struct upstream *u = calloc(1, sizeof(*u));

	if (u == NULL)
		return NULL;
	memcpy(u->name, b->name, sizeof(u->name));
	u->addr = b->addr;
	addr_format((const struct sockaddr *)&b->addr.ss, u->addr_text, sizeof(u->addr_text));
	atomic_init(&u->refs, 1);
	u->check.fd = -1;
	return u;
}

void upstream_ref(struct upstream *u)
{
	atomic_fetch_add_explicit(&u->refs, 1, memory_order_relaxed);
}

/* The main thread stops a backend's checks before its farm lets it go
 * (health_sync), so whoever drops the last reference only frees memory. */
void upstream_unref(struct upstream *u)
{
	if (atomic_fetch_sub_explicit(&u->refs, 1, memory_order_acq_rel) == 1)
		free(u);
}
