/* Backends' live identities: shared by configurations and connections, so
 * a reload that keeps a backend's name and address keeps its health and
 * counters, and a removed backend lives on until its last connection ends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
	pthread_mutex_init(&u->reason_lock, NULL);
	u->check.fd = -1;
	upstream_changed(u);
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
	if (atomic_fetch_sub_explicit(&u->refs, 1, memory_order_acq_rel) == 1) {
		pthread_mutex_destroy(&u->reason_lock);
		free(u);
	}
}

void upstream_set_reason(struct upstream *u, const char *reason)
{
	pthread_mutex_lock(&u->reason_lock);
	snprintf(u->reason, sizeof(u->reason), "%s", reason);
	pthread_mutex_unlock(&u->reason_lock);
}

void upstream_reason(struct upstream *u, char *out, size_t len)
{
	pthread_mutex_lock(&u->reason_lock);
	snprintf(out, len, "%s", u->reason);
	pthread_mutex_unlock(&u->reason_lock);
}

void upstream_changed(struct upstream *u)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	atomic_store_explicit(&u->changed_ms,
			      (unsigned long long)now.tv_sec * 1000 +
				      (unsigned long long)now.tv_nsec / 1000000,
			      memory_order_relaxed);
}
