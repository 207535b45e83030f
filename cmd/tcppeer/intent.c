/* serf's join and leave intents about members, ours and others'. Each
 * member has a status Lamport time; an intent newer than it moves the
 * member: a leave makes an alive member "leaving" (so that its death is a
 * leave, not a failure) and a failed one left at once (serf force-leave),
 * a join undoes "leaving". What is new is passed on, written again from
 * its table. An intent about a member we do not know yet is kept a while
 * (serf's recent intents, 5 minutes) and applied when the member shows up.
 * A leave intent about us while we stay is answered with a newer join. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tcppeer.h"

#define RECENT_MAX 256         /* intents about members not known yet */
#define RECENT_TIMEOUT 300.0   /* serf's RecentIntentTimeout */

struct recent_intent {
	char node[PEER_NAME_MAX + 1];
	int leave; /* else join */
	uint64_t ltime;
	double seen;
};

struct intents {
	struct recent_intent *recent; /* grows up to RECENT_MAX */
	int n, cap;
};

static struct intents *table(struct peer *p)
{
	if (p->intents == NULL)
		p->intents = calloc(1, sizeof(*p->intents));
	return p->intents;
}

/* serf's upsertIntent: 1 when the intent is newer than what we hold. */
static int recent_upsert(struct peer *p, const char *node, int leave, uint64_t ltime)
{
	struct intents *t = table(p);
	double now = peer_now(p);
	int slot = -1, oldest = 0;

	if (t == NULL)
		return 0;
	for (int i = 0; i < t->n; i++) {
		if (now - t->recent[i].seen > RECENT_TIMEOUT) {
			if (slot < 0)
				slot = i;
			continue;
		}
		if (strcmp(t->recent[i].node, node) == 0) {
			if (ltime <= t->recent[i].ltime)
				return 0;
			slot = i;
			break;
		}
		if (t->recent[i].seen < t->recent[oldest].seen)
			oldest = i;
	}
	if (slot < 0 && t->n == t->cap && t->cap < RECENT_MAX) {
		int cap = t->cap ? 2 * t->cap : 8;
		struct recent_intent *r = realloc(t->recent, (size_t)cap * sizeof(*r));

		if (r != NULL) {
			t->recent = r;
			t->cap = cap;
		}
	}
	if (t->cap == 0)
		return 0;
	if (slot < 0)
		slot = t->n < t->cap ? t->n++ : oldest;
	snprintf(t->recent[slot].node, sizeof(t->recent[slot].node), "%s", node);
	t->recent[slot].leave = leave;
	t->recent[slot].ltime = ltime;
	t->recent[slot].seen = now;
	return 1;
}

void intent_new_member(struct peer *p, struct node *n)
{
	struct intents *t = p->intents;

	if (t == NULL)
		return;
	for (int i = 0; i < t->n; i++) {
		struct recent_intent *r = &t->recent[i];

		if (strcmp(r->node, n->name) != 0 || peer_now(p) - r->seen > RECENT_TIMEOUT)
			continue;
		n->status_ltime = r->ltime;
		n->leaving = r->leave;
		r->node[0] = '\0';
		return;
	}
}

static void rebroadcast(struct peer *p, const struct msg_desc *d, const struct msg_intent *in)
{
	struct wbuf w;

	wbuf_init(&w, UDP_SEND_MAX);
	wbuf_byte(&w, MSG_USER);
	wire_encode(d, &w, in);
	if (!w.overflow)
		gossip_queue(p, "", w.p, w.len, 0);
	wbuf_free(&w);
}

int intent_leave(struct peer *p, const struct msg_intent *in)
{
	struct node *n;

	serf_witness(p, in->ltime);
	n = members_find(p, in->node);
	if (n == NULL)
		return recent_upsert(p, in->node, 1, in->ltime);
	if (in->ltime <= n->status_ltime)
		return 0;
	if (strcmp(n->name, p->cfg.name) == 0 && !leave_started(p)) {
		log_debug("refuting an older leave intent");
		serf_join_intent(p);
		return 0;
	}
	n->status_ltime = in->ltime;
	switch (n->state) {
	case STATE_ALIVE:
	case STATE_SUSPECT:
		n->leaving = 1;
		break;
	case STATE_DEAD:
		log_info("'%s' left (forced)", n->name);
		members_set_left(p, n);
		break;
	case STATE_LEFT:
		break;
	}
	if (in->prune && n->state == STATE_LEFT)
		members_erase(p, n);
	return 1;
}

int intent_join(struct peer *p, const struct msg_intent *in)
{
	struct node *n;

	serf_witness(p, in->ltime);
	n = members_find(p, in->node);
	if (n == NULL)
		return recent_upsert(p, in->node, 0, in->ltime);
	if (in->ltime <= n->status_ltime)
		return 0;
	n->status_ltime = in->ltime;
	n->leaving = 0;
	return 1;
}

void intent_handle(struct peer *p, const struct msg_intent *in, int leave)
{
	if (leave ? intent_leave(p, in) : intent_join(p, in))
		rebroadcast(p, leave ? &DESC_LEAVE : &DESC_JOIN, in);
}

int intent_force_leave(struct peer *p, const char *name, int prune, char *err)
{
	struct msg_intent in;

	if (*name == '\0' || strlen(name) > PEER_NAME_MAX)
		return err_set(err, "'%.64s' is not a member name", name);
	if (strcmp(name, p->cfg.name) == 0)
		return err_set(err, "'%s' is this node: stop it instead", name);
	memset(&in, 0, sizeof(in));
	in.ltime = p->ltime++; /* serf: the clock's time, then it moves on */
	snprintf(in.node, sizeof(in.node), "%s", name);
	in.prune = prune;
	intent_leave(p, &in);
	if (members_alive_others(p) > 0)
		rebroadcast(p, &DESC_LEAVE, &in);
	return 0;
}

void intents_free(struct peer *p)
{
	if (p->intents != NULL)
		free(p->intents->recent);
	free(p->intents);
	p->intents = NULL;
}
