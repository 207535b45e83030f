/* Joining through the seeds by push-pull, retried with backoff (1 s to 30 s)
 * until a seed answers. Being joined by another node is not joining: that
 * node may be as cut off as we are, and the seed never hears of either of
 * us. Later, whenever no other member is alive, the seeds and the lost
 * members are tried again the same way; failed members are also tried every
 * reconnect interval (reconnect.c), however many others are alive. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tcppeer.h"

#define JOIN_BACKOFF_MAX 30.0
#define JOIN_CHECK 1.0 /* how often a joined node checks that it is not alone */
#define JOIN_CANDIDATES (SEEDS_MAX + 16)

/* The module's state: the addresses of this round, the one being tried,
 * the backoff, and whether a seed ever answered. */
struct join {
	struct peer *peer;
	ev_timer timer;
	struct sockaddr_storage cand[JOIN_CANDIDATES];
	socklen_t cand_len[JOIN_CANDIDATES];
	int ncand, next, busy, joined;
	double backoff;
};

static void join_tick(struct ev_loop *loop, ev_timer *w, int revents);

static void join_schedule(struct join *j, double after)
{
	ev_timer_stop(j->peer->loop, &j->timer);
	ev_timer_set(&j->timer, after, 0);
	ev_timer_start(j->peer->loop, &j->timer);
}

int join_open(struct peer *p, char *err)
{
	struct join *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return err_set(err, "out of memory");
	j->peer = p;
	j->backoff = 1.0;
	ev_timer_init(&j->timer, join_tick, 0.0, 0.0);
	j->timer.data = j;
	ev_timer_start(p->loop, &j->timer);
	p->join = j;
	return 0;
}

int join_done(const struct peer *p)
{
	return p->join != NULL && p->join->joined;
}

void join_close(struct peer *p)
{
	if (p->join == NULL)
		return;
	ev_timer_stop(p->loop, &p->join->timer);
	free(p->join);
	p->join = NULL;
}

static void join_try_next(struct join *j)
{
	struct peer *p = j->peer;

	while (j->next < j->ncand) {
		int i = j->next++;

		if (stream_pushpull(p, (struct sockaddr *)&j->cand[i], j->cand_len[i], PP_JOIN) == 0) {
			j->busy = 1;
			return;
		}
	}
	if (!j->joined)
		log_info("no seed answered; retrying in %.0fs", j->backoff);
	join_schedule(j, j->backoff);
	j->backoff *= 2;
	if (j->backoff > JOIN_BACKOFF_MAX)
		j->backoff = JOIN_BACKOFF_MAX;
}

static void join_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct join *j = w->data;
	struct peer *p = j->peer;

	(void)loop;
	(void)revents;
	if (leave_started(p) || j->busy)
		return;
	if (j->joined && members_alive_others(p) > 0) {
		j->backoff = 1.0;
		join_schedule(j, JOIN_CHECK);
		return;
	}
	j->ncand = 0;
	for (int i = 0; i < p->cfg.nseeds; i++) {
		memcpy(&j->cand[j->ncand], &p->cfg.seeds[i].ss, p->cfg.seeds[i].len);
		j->cand_len[j->ncand++] = p->cfg.seeds[i].len;
	}
	/* Until a seed answered, only seeds count. */
	for (size_t i = 0; j->joined && i < p->nnodes && j->ncand < JOIN_CANDIDATES; i++) {
		struct node *n = p->nodes[i];

		if (strcmp(n->name, p->cfg.name) == 0)
			continue;
		if (net_sockaddr(&n->addr, n->port, &j->cand[j->ncand], &j->cand_len[j->ncand]) == 0)
			j->ncand++;
	}
	if (j->ncand == 0) {
		j->joined = 1; /* no seed: the first node */
		join_schedule(j, JOIN_CHECK);
		return;
	}
	j->next = 0;
	join_try_next(j);
}

void join_result(struct peer *p, int ok)
{
	struct join *j = p->join;
	char text[ADDR_TEXT_LEN];

	if (j == NULL)
		return;
	j->busy = 0;
	if (leave_started(p))
		return;
	if (ok) {
		if (!j->joined)
			log_info("joined the cluster through %s",
				 addr_format((struct sockaddr *)&j->cand[j->next - 1], text,
					     sizeof(text)));
		j->joined = 1;
		j->backoff = 1.0;
		join_schedule(j, JOIN_CHECK);
		return;
	}
	join_try_next(j);
}
