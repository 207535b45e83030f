/* The broadcast queue (memberlist's TransmitLimitedQueue): fewest transmits
 * first, newest first among equals, each message sent at most the retransmit
 * limit times, a newer message about a node replacing the older one. The
 * gossip timer sends what is queued to a few random members. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tcppeer.h"

struct bcast {
	char key[PEER_NAME_MAX + 1]; /* a newer message for the same node replaces it; "" never */
	uint8_t *msg;
	size_t len;
	unsigned transmits;
	uint64_t id;
	int is_leave; /* our own dead(self): its last transmit ends a clean stop */
};

/* The module's state: the queue (BCAST_MAX entries, allocated at the first
 * message) and the id of the last message queued. */
struct gossip {
	struct bcast **bq;
	size_t nbq;
	uint64_t bq_id;
};

static struct gossip *gossip(struct peer *p)
{
	if (p->gossip == NULL)
		p->gossip = calloc(1, sizeof(*p->gossip));
	return p->gossip;
}

size_t gossip_queued(const struct peer *p)
{
	return p->gossip != NULL ? p->gossip->nbq : 0;
}

int gossip_retransmit_limit(struct peer *p)
{
	return p->cfg.retransmit_mult * (int)ceil(log10((double)p->nnodes + 1.0));
}

static void bcast_remove(struct gossip *g, size_t i)
{
	free(g->bq[i]->msg);
	free(g->bq[i]);
	g->bq[i] = g->bq[--g->nbq];
}

void gossip_queue(struct peer *p, const char *key, const uint8_t *msg, size_t len, int is_leave)
{
	struct gossip *g = gossip(p);
	struct bcast *b;

	if (g == NULL)
		return;
	for (size_t i = 0; key[0] != '\0' && i < g->nbq;) {
		if (strcmp(g->bq[i]->key, key) == 0)
			bcast_remove(g, i);
		else
			i++;
	}
	if (g->bq == NULL) {
		g->bq = calloc(BCAST_MAX, sizeof(*g->bq));
		if (g->bq == NULL)
			return;
	}
	if (g->nbq == BCAST_MAX) {
		/* Full: the message sent most often has done the most good already. */
		size_t worst = 0;

		for (size_t i = 1; i < g->nbq; i++)
			if (g->bq[i]->transmits > g->bq[worst]->transmits ||
			    (g->bq[i]->transmits == g->bq[worst]->transmits &&
			     g->bq[i]->id < g->bq[worst]->id))
				worst = i;
		bcast_remove(g, worst);
		p->stats.queue_dropped++;
	}
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return;
	b->msg = malloc(len);
	if (b->msg == NULL) {
		free(b);
		return;
	}
	memcpy(b->msg, msg, len);
	b->len = len;
	snprintf(b->key, sizeof(b->key), "%s", key);
	b->id = ++g->bq_id;
	b->is_leave = is_leave;
	g->bq[g->nbq++] = b;
}

size_t gossip_take(struct peer *p, size_t overhead, size_t limit, struct wbuf *store, size_t *lens,
		   size_t max)
{
	unsigned tlimit = (unsigned)gossip_retransmit_limit(p);
	struct gossip *g = p->gossip;
	size_t used = 0, n = 0;
	char *taken;

	if (g == NULL || g->nbq == 0 || max == 0)
		return 0;
	taken = calloc(g->nbq, 1);
	if (taken == NULL)
		return 0;
	while (n < max && used + overhead < limit) {
		size_t free_bytes = limit - used - overhead, best = SIZE_MAX;

		for (size_t i = 0; i < g->nbq; i++) {
			struct bcast *b = g->bq[i];

			if (taken[i] || b->len > free_bytes)
				continue;
			if (best == SIZE_MAX || b->transmits < g->bq[best]->transmits ||
			    (b->transmits == g->bq[best]->transmits && b->id > g->bq[best]->id))
				best = i;
		}
		if (best == SIZE_MAX)
			break;
		if (wbuf_put(store, g->bq[best]->msg, g->bq[best]->len) < 0)
			break;
		taken[best] = 1;
		lens[n++] = g->bq[best]->len;
		used += overhead + g->bq[best]->len;
	}
	/* Count the transmits; retire what reached the limit (walk backwards,
	 * as removal moves the last entry into the hole). */
	for (size_t i = g->nbq; i-- > 0;) {
		if (!taken[i])
			continue;
		if (++g->bq[i]->transmits >= tlimit)
			bcast_remove(g, i);
	}
	free(taken);
	return n;
}

int gossip_leave_pending(struct peer *p)
{
	struct gossip *g = p->gossip;

	for (size_t i = 0; g != NULL && i < g->nbq; i++)
		if (g->bq[i]->is_leave)
			return 1;
	return 0;
}

static int gossip_exclude(struct peer *p, const struct node *n, const void *ctx)
{
	(void)ctx;
	if (strcmp(n->name, p->cfg.name) == 0)
		return 1;
	if (n->state == STATE_ALIVE || n->state == STATE_SUSPECT)
		return 0;
	if (n->state == STATE_DEAD)
		return peer_now(p) - n->state_change > p->cfg.gossip_to_dead;
	return 1;
}

void gossip_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct peer *p = w->data;
	struct node *targets[64];
	int k = p->cfg.gossip_nodes < 64 ? p->cfg.gossip_nodes : 64, got;

	(void)loop;
	(void)revents;
	if (gossip_queued(p) == 0)
		return;
	got = members_random(p, k, gossip_exclude, NULL, targets);
	for (int i = 0; i < got; i++) {
		struct wbuf store, pkt;
		size_t lens[COMPOUND_MAX], n, off = 0;
		const uint8_t *parts[COMPOUND_MAX];
		struct sockaddr_storage ss;
		socklen_t sl;

		if (net_sockaddr(&targets[i]->addr, targets[i]->port, &ss, &sl) < 0)
			continue;
		wbuf_init(&store, UDP_SEND_MAX);
		n = gossip_take(p, 2, net_send_max(p) - 2, &store, lens, COMPOUND_MAX);
		if (n == 0) {
			wbuf_free(&store);
			return;
		}
		for (size_t j = 0; j < n; j++) {
			parts[j] = store.p + off;
			off += lens[j];
		}
		if (n == 1) {
			net_sendto(p, (struct sockaddr *)&ss, sl, parts[0], lens[0],
				   targets[i]->vsn[1] >= 5);
		} else {
			wbuf_init(&pkt, PACKET_MAX);
			wire_make_compound(&pkt, parts, lens, n);
			if (!pkt.overflow)
				net_sendto(p, (struct sockaddr *)&ss, sl, pkt.p, pkt.len,
					   targets[i]->vsn[1] >= 5);
			wbuf_free(&pkt);
		}
		wbuf_free(&store);
	}
}

void gossip_free(struct peer *p)
{
	struct gossip *g = p->gossip;

	if (g == NULL)
		return;
	while (g->nbq > 0)
		bcast_remove(g, 0);
	free(g->bq);
	free(g);
	p->gossip = NULL;
}
