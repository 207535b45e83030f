/* Joining through the seeds by push-pull, retried with backoff (1 s to 30 s)
 * until a seed answers. Being joined by another node is not joining: that
 * node may be as cut off as we are, and the seed never hears of either of
 * us. Later, whenever no other member is alive, the seeds and the lost
 * members are tried again the same way; failed members are also tried every
 * reconnect interval (reconnect.c), however many others are alive. */
#include <string.h>

#include "log.h"
#include "tcppeer.h"

#define JOIN_BACKOFF_MAX 30.0
#define JOIN_CHECK 1.0 /* how often a joined node checks that it is not alone */

static void join_schedule(struct peer *p, double after)
{
	ev_timer_stop(p->loop, &p->join_t);
	ev_timer_set(&p->join_t, after, 0);
	ev_timer_start(p->loop, &p->join_t);
}

static void join_try_next(struct peer *p)
{
	while (p->join_next < p->join_ncand) {
		int i = p->join_next++;

		if (stream_pushpull(p, (struct sockaddr *)&p->join_cand[i], p->join_cand_len[i],
				    PP_JOIN) == 0) {
			p->join_busy = 1;
			return;
		}
	}
	if (!p->joined)
		log_info("no seed answered; retrying in %.0fs", p->join_backoff);
	join_schedule(p, p->join_backoff);
	p->join_backoff *= 2;
	if (p->join_backoff > JOIN_BACKOFF_MAX)
		p->join_backoff = JOIN_BACKOFF_MAX;
}

void join_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct peer *p = w->data;

	(void)loop;
	(void)revents;
	if (p->leaving || p->join_busy)
		return;
	if (p->joined && members_alive_others(p) > 0) {
		p->join_backoff = 1.0;
		join_schedule(p, JOIN_CHECK);
		return;
	}
	p->join_ncand = 0;
	for (int i = 0; i < p->cfg.nseeds; i++) {
		memcpy(&p->join_cand[p->join_ncand], &p->cfg.seeds[i].ss, p->cfg.seeds[i].len);
		p->join_cand_len[p->join_ncand++] = p->cfg.seeds[i].len;
	}
	/* Until a seed answered, only seeds count. */
	for (size_t i = 0; p->joined && i < p->nnodes && p->join_ncand < SEEDS_MAX + 16; i++) {
		struct node *n = p->nodes[i];

		if (strcmp(n->name, p->cfg.name) == 0)
			continue;
		if (net_sockaddr(&n->addr, n->port, &p->join_cand[p->join_ncand],
				 &p->join_cand_len[p->join_ncand]) == 0)
			p->join_ncand++;
	}
	if (p->join_ncand == 0) {
		p->joined = 1; /* no seed: the first node */
		join_schedule(p, JOIN_CHECK);
		return;
	}
	p->join_next = 0;
	join_try_next(p);
}

void join_result(struct peer *p, int ok)
{
	char text[ADDR_TEXT_LEN];

	p->join_busy = 0;
	if (p->leaving)
		return;
	if (ok) {
		if (!p->joined)
			log_info("joined the cluster through %s",
				 addr_format((struct sockaddr *)&p->join_cand[p->join_next - 1], text,
					     sizeof(text)));
		p->joined = 1;
		p->join_backoff = 1.0;
		join_schedule(p, JOIN_CHECK);
		return;
	}
	join_try_next(p);
}
