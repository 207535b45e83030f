/* Who may connect, decided once the client is known (its PROXY header read,
 * if the pool asks for one), before a backend is chosen: the pool's allow
 * and deny networks, then its per-client limits. A client turned away is
 * reset at once, counted by reason, and logged at most once a second per
 * reason (a flood must not flood the log), with how many were not. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "log.h"
#include "tcpdist.h"

#define REFUSE_LOG_EVERY_MS 1000

static const enum conn_end refuse_end[REFUSE_REASONS] = {
	[REFUSE_PROXY_UNTRUSTED] = END_PROXY,     [REFUSE_PROXY_TIMEOUT] = END_PROXY,
	[REFUSE_PROXY_INVALID] = END_PROXY,       [REFUSE_DENIED] = END_DENIED,
	[REFUSE_CLIENT_MAX_CONNS] = END_CLIENT_LIMIT, [REFUSE_CLIENT_RATE] = END_CLIENT_LIMIT,
};

static long long refuse_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether this refusal gets a line; *quiet: those since the last one. */
static int refuse_log_due(struct refusals *r, enum refuse_reason why,
			  unsigned long long *quiet)
{
	long long now = refuse_clock_ms(), last = atomic_load(&r->logged_ms[why]);

	if ((last != 0 && now - last < REFUSE_LOG_EVERY_MS) ||
	    !atomic_compare_exchange_strong(&r->logged_ms[why], &last, now)) {
		atomic_fetch_add_explicit(&r->quiet[why], 1, memory_order_relaxed);
		return 0;
	}
	*quiet = atomic_exchange(&r->quiet[why], 0);
	return 1;
}

void conn_refuse(struct conn *c, enum refuse_reason why, const char *fmt, ...)
{
	unsigned long long quiet;

	stat_add(&c->w->stats.refused[why], 1);
	if (refuse_log_due(&c->w->proc->refusals, why, &quiet)) {
		char ct[ADDR_TEXT_LEN], msg[ERR_LEN], more[64] = "";
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		if (quiet)
			snprintf(more, sizeof(more), " (and %llu more like it since the last line)",
				 quiet);
		log_warn("client %s: %s%s", conn_client_text(c, ct, sizeof(ct)), msg, more);
	}
	conn_close(c, 1, refuse_end[why]);
}

int conn_admit(struct conn *c)
{
	const struct pool *p = c->farm->pool;
	char rate[32];
	uint32_t slot;

	if (p->access.n) {
		const struct cidr_entry *e = cidr_table_match(&p->access, &c->client.sa);

		if (e ? e->tag == POOL_DENY : p->nallow > 0) {
			char net[CIDR_TEXT_LEN];

			if (e == NULL) {
				conn_refuse(c, REFUSE_DENIED, "refused: in no allow network");
				return -1;
			}
			cidr_format(&e->net, net, sizeof(net));
			conn_refuse(c, REFUSE_DENIED, "refused: deny %s", net);
			return -1;
		}
	}
	if (c->farm->clients == NULL || (p->client_max_conns == 0 && p->client_rate == 0))
		return 0;
	switch (clients_take(c->farm->clients, &c->client.sa, p, &slot)) {
	case CLIENT_OK:
		c->clients = c->farm->clients;
		clients_ref(c->clients);
		c->client_slot = slot;
		return 0;
	case CLIENT_UNCOUNTED:
		return 0;
	case CLIENT_MAX_CONNS:
		conn_refuse(c, REFUSE_CLIENT_MAX_CONNS, "refused: client_max_conns %u reached",
			    p->client_max_conns);
		return -1;
	case CLIENT_RATE:
		client_rate_format(p->client_rate, p->client_burst, rate, sizeof(rate));
		conn_refuse(c, REFUSE_CLIENT_RATE, "refused: client_rate %s exceeded", rate);
		return -1;
	}
	return 0;
}

/* At its close: the client has one connection fewer. */
void conn_unadmit(struct conn *c)
{
	if (c->clients == NULL)
		return;
	clients_release(c->clients, c->client_slot);
	clients_unref(c->clients);
	c->clients = NULL;
}
