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

int gossip_retransmit_limit(struct peer *p)
{
	return p->cfg.retransmit_mult * (int)ceil(log10((double)p->nnodes + 1.0));
}

static void bcast_remove(struct peer *p, size_t i)
{
	free(p->bq[i]->msg);
	free(p->bq[i]);
	p->bq[i] = p->bq[--p->nbq];
}

void gossip_queue(struct peer *p, const char *key, const uint8_t *msg, size_t len, int is_leave)
{
	struct bcast *b;

	for (size_t i = 0; key[0] != '\0' && i < p->nbq;) {
		if (strcmp(p->bq[i]->key, key) == 0)
			bcast_remove(p, i);
		else
			i++;
	}
	if (p->bq == NULL) {
		p->bq = calloc(BCAST_MAX, sizeof(*p->bq));
		if (p->bq == NULL)
			return;
	}
	if (p->nbq == BCAST_MAX) {
		/* Full: the message sent most often has done the most good already. */
		size_t worst = 0;

		for (size_t i = 1; i < p->nbq; i++)
			if (p->bq[i]->transmits > p->bq[worst]->transmits ||
			    (p->bq[i]->transmits == p->bq[worst]->transmits &&
			     p->bq[i]->id < p->bq[worst]->id))
				worst = i;
		bcast_remove(p, worst);
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
	b->id = ++p->bq_id;
	b->is_leave = is_leave;
	p->bq[p->nbq++] = b;
}

size_t gossip_take(struct peer *p, size_t overhead, size_t limit, struct wbuf *store, size_t *lens,
		   size_t max)
{
	unsigned tlimit = (unsigned)gossip_retransmit_limit(p);
	size_t used = 0, n = 0;
	char *taken;

	if (p->nbq == 0 || max == 0)
		return 0;
	taken = calloc(p->nbq, 1);
	if (taken == NULL)
		return 0;
	while (n < max && used + overhead < limit) {
		size_t free_bytes = limit - used - overhead, best = SIZE_MAX;

		for (size_t i = 0; i < p->nbq; i++) {
			struct bcast *b = p->bq[i];

			if (taken[i] || b->len > free_bytes)
				continue;
			if (best == SIZE_MAX || b->transmits < p->bq[best]->transmits ||
			    (b->transmits == p->bq[best]->transmits && b->id > p->bq[best]->id))
				best = i;
		}
		if (best == SIZE_MAX)
			break;
		if (wbuf_put(store, p->bq[best]->msg, p->bq[best]->len) < 0)
			break;
		taken[best] = 1;
		lens[n++] = p->bq[best]->len;
		used += overhead + p->bq[best]->len;
	}
	/* Count the transmits; retire what reached the limit (walk backwards,
	 * as removal moves the last entry into the hole). */
	for (size_t i = p->nbq; i-- > 0;) {
		if (!taken[i])
			continue;
		if (++p->bq[i]->transmits >= tlimit)
			bcast_remove(p, i);
	}
	free(taken);
	return n;
}

int gossip_leave_pending(struct peer *p)
{
	for (size_t i = 0; i < p->nbq; i++)
		if (p->bq[i]->is_leave)
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
	if (p->nbq == 0)
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
	while (p->nbq > 0)
		bcast_remove(p, 0);
	free(p->bq);
	p->bq = NULL;
}
