/* serf's reconnect and reap. A failed member is kept for the reconnect
 * timeout, and every reconnect interval a push-pull is tried with a random
 * one, however many members are alive: a partition heals once the link is
 * back, instead of leaving two clusters that each think the other dead. As
 * serf does, each node tries with probability failed / alive, so the cluster
 * as a whole tries each failed member about once an interval. The reaper
 * forgets failed members after the reconnect timeout and left ones after the
 * tombstone timeout. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tcppeer.h"

static int failed_only(struct peer *p, const struct node *n, const void *ctx)
{
	(void)ctx;
	return n->state != STATE_DEAD || strcmp(n->name, p->cfg.name) == 0;
}

void reconnect_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct peer *p = w->data;
	size_t failed, left, alive;
	struct node *n;
	struct sockaddr_storage ss;
	socklen_t sl;
	char addr[ADDR_TEXT_LEN];

	(void)loop;
	(void)revents;
	if (leave_started(p))
		return;
	failed = members_count(p, STATE_DEAD);
	if (failed == 0)
		return;
	left = members_count(p, STATE_LEFT);
	alive = p->nnodes - failed - left; /* ourselves included, as serf counts */
	if (alive == 0)
		alive = 1;
	if ((double)random() / RAND_MAX > (double)failed / (double)alive) {
		log_debug("forgoing reconnect for random throttling");
		return;
	}
	if (members_random(p, 1, failed_only, NULL, &n) != 1 ||
	    net_sockaddr(&n->addr, n->port, &ss, &sl) < 0)
		return;
	log_info("attempting reconnect to '%s' %s", n->name, node_addr_text(n, addr, sizeof(addr)));
	stream_pushpull(p, (struct sockaddr *)&ss, sl, PP_RECONNECT);
}

void reap_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	members_reap(w->data);
}
