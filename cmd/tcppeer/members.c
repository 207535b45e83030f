/* The node table and memberlist's state machine (state.go): alive, suspect,
 * dead and left, incarnation numbers, refutation, and Lifeguard's suspicion
 * timers that shrink with independent confirmations. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tcppeer.h"

const char *members_status_name(enum node_state_type s)
{
	switch (s) {
	case STATE_ALIVE:
		return "alive";
	case STATE_SUSPECT:
		return "suspect";
	case STATE_DEAD:
		return "failed";
	default:
		return "left";
	}
}

void members_watch(struct peer *p, member_watch_fn fn, void *ctx)
{
	if (p->nwatchers < WATCHERS_MAX) {
		p->watchers[p->nwatchers].fn = fn;
		p->watchers[p->nwatchers].ctx = ctx;
		p->nwatchers++;
	}
}

static void members_changed(struct peer *p, const char *event, const struct node *n)
{
	for (int i = 0; i < p->nwatchers; i++)
		p->watchers[i].fn(p->watchers[i].ctx, event, n);
}

struct node *members_find(struct peer *p, const char *name)
{
	for (size_t i = 0; i < p->nnodes; i++)
		if (strcmp(p->nodes[i]->name, name) == 0)
			return p->nodes[i];
	return NULL;
}

void members_awareness(struct peer *p, int delta)
{
	p->awareness += delta;
	if (p->awareness < 0)
		p->awareness = 0;
	if (p->awareness > p->cfg.awareness_max - 1)
		p->awareness = p->cfg.awareness_max - 1;
}

static void suspicion_free(struct peer *p, struct node *n)
{
	if (n->susp == NULL)
		return;
	ev_timer_stop(p->loop, &n->susp->timer);
	free(n->susp);
	n->susp = NULL;
}

void members_fill_state(const struct node *n, struct msg_alive *a)
{
	memset(a, 0, sizeof(*a));
	a->inc = n->inc;
	memcpy(a->node, n->name, sizeof(a->node));
	a->addr = n->addr;
	a->port = n->port;
	memcpy(a->meta, n->meta, n->metalen);
	a->metalen = n->metalen;
	memcpy(a->vsn, n->vsn, 6);
	a->vsnlen = 6;
	a->state = (uint8_t)n->state;
}

static void broadcast_alive(struct peer *p, const struct msg_alive *a)
{
	struct wbuf w;

	wbuf_init(&w, UDP_SEND_MAX);
	wire_encode_alive(&w, a);
	if (!w.overflow)
		gossip_queue(p, a->node, w.p, w.len, 0);
	wbuf_free(&w);
}

static void broadcast_accuse(struct peer *p, enum msg_type type, const struct msg_accuse *m,
			     int is_leave)
{
	struct wbuf w;

	wbuf_init(&w, UDP_SEND_MAX);
	wire_encode_accuse(&w, type, m);
	if (!w.overflow)
		gossip_queue(p, m->node, w.p, w.len, is_leave);
	wbuf_free(&w);
}

void members_refute(struct peer *p, struct node *self, uint32_t accused)
{
	struct msg_alive a;
	uint32_t inc = ++p->incarnation;

	if (accused >= inc)
		inc = p->incarnation = accused + 1;
	self->inc = inc;
	members_awareness(p, 1);
	p->stats.refuted++;
	members_fill_state(self, &a);
	broadcast_alive(p, &a);
}

static struct node *node_add(struct peer *p, const struct msg_alive *a)
{
	struct node *n;
	size_t off;

	if (p->nnodes >= MEMBERS_MAX) {
		p->stats.members_dropped++;
		log_debug("member table full: '%s' ignored", a->node);
		return NULL;
	}
	if (p->nnodes == p->nodes_cap) {
		size_t cap = p->nodes_cap ? 2 * p->nodes_cap : 16;
		struct node **nn = realloc(p->nodes, cap * sizeof(*nn));

		if (nn == NULL)
			return NULL;
		p->nodes = nn;
		p->nodes_cap = cap;
	}
	n = calloc(1, sizeof(*n));
	if (n == NULL)
		return NULL;
	memcpy(n->name, a->node, sizeof(n->name));
	n->addr = a->addr;
	n->port = a->port;
	memcpy(n->meta, a->meta, a->metalen);
	n->metalen = a->metalen;
	memcpy(n->vsn, a->vsn, 6);
	n->state = STATE_DEAD; /* becomes alive below, which is a join */
	intent_new_member(p, n);
	/* A random place, so probing order differs between members. */
	off = p->nnodes ? (size_t)random() % (p->nnodes + 1) : 0;
	p->nodes[p->nnodes] = p->nodes[off];
	p->nodes[off] = n;
	p->nnodes++;
	return n;
}

/* A failed or left member that memberlist would have forgotten by now (it
 * drops them after the gossip-to-the-dead time; we keep them, as serf does,
 * for the reconnect and tombstone timeouts): any alive for it is news. */
int members_forgotten(struct peer *p, const struct node *n)
{
	return (n->state == STATE_DEAD || n->state == STATE_LEFT) &&
	       peer_now(p) - n->state_change > p->cfg.gossip_to_dead;
}

void members_alive(struct peer *p, const struct msg_alive *a, int bootstrap)
{
	struct node *n;
	int is_local, updates = 0, fresh = 0;
	enum node_state_type old_state;
	uint8_t old_meta[META_MAX];
	uint16_t old_metalen;

	if (a->node[0] == '\0' || a->addr.len == 0)
		return;
	is_local = strcmp(a->node, p->cfg.name) == 0;
	if (leave_started(p) && is_local)
		return;
	if (a->vsnlen != 6 || !wire_vsn_ok(a->vsn)) {
		log_debug("ignoring alive for '%s': bad protocol versions", a->node);
		return;
	}
	n = members_find(p, a->node);
	if (n == NULL) {
		n = node_add(p, a);
		if (n == NULL)
			return;
		fresh = 1;
	} else if (n->addr.len != a->addr.len || memcmp(n->addr.b, a->addr.b, a->addr.len) != 0 ||
		   n->port != a->port) {
		/* A left node's name is free at once; a failed one's after the dead time. */
		if (n->state == STATE_LEFT || members_forgotten(p, n)) {
			updates = 1;
		} else {
			char mine[ADDR_TEXT_LEN];

			log_debug("conflicting address for '%s' (known as %s)", n->name,
				  node_addr_text(n, mine, sizeof(mine)));
			return;
		}
	}
	if (!fresh && !is_local && members_forgotten(p, n))
		updates = 1;
	if (a->inc <= n->inc && !is_local && !updates && !fresh)
		return;
	if (a->inc < n->inc && is_local)
		return;
	suspicion_free(p, n);
	old_state = n->state;
	old_metalen = n->metalen;
	memcpy(old_meta, n->meta, n->metalen);

	if (!bootstrap && is_local) {
		if (a->inc == n->inc && a->metalen == n->metalen &&
		    memcmp(a->meta, n->meta, n->metalen) == 0 && a->vsnlen == 6 &&
		    memcmp(a->vsn, n->vsn, 6) == 0)
			return;
		members_refute(p, n, a->inc);
		log_debug("refuting an alive message for ourselves");
	} else {
		broadcast_alive(p, a);
		memcpy(n->vsn, a->vsn, 6);
		n->inc = a->inc;
		memcpy(n->meta, a->meta, a->metalen);
		n->metalen = a->metalen;
		n->addr = a->addr;
		n->port = a->port;
		if (n->state != STATE_ALIVE) {
			if (!fresh) /* back: serf's handleNodeJoin; a newcomer keeps its intent */
				n->leaving = 0;
			n->state = STATE_ALIVE;
			n->state_change = peer_now(p);
		}
	}
	if (old_state == STATE_DEAD || old_state == STATE_LEFT)
		members_changed(p, "member-join", n);
	else if (old_metalen != n->metalen || memcmp(old_meta, n->meta, n->metalen) != 0)
		members_changed(p, "member-update", n);
}

/* remainingSuspicionTime: from max down to min as confirmations come in. */
static double suspicion_remaining(const struct suspicion *s, double elapsed)
{
	double frac = log(s->n + 1.0) / log(s->k + 1.0);
	double raw = s->max - frac * (s->max - s->min);
	double timeout = floor(1000.0 * raw) / 1000.0;

	if (timeout < s->min)
		timeout = s->min;
	return timeout - elapsed;
}

static void suspicion_expired(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct suspicion *s = (struct suspicion *)w;
	struct peer *p = s->peer;
	struct node *n = members_find(p, s->node);
	struct msg_accuse d;

	(void)loop;
	(void)revents;
	if (n == NULL || n->state != STATE_SUSPECT || n->state_change != s->change_time)
		return;
	log_info("marking '%s' as failed: suspect timeout (%d peer confirmations)", n->name, s->n);
	memset(&d, 0, sizeof(d));
	d.inc = n->inc;
	memcpy(d.node, n->name, sizeof(d.node));
	snprintf(d.from, sizeof(d.from), "%s", p->cfg.name);
	members_dead(p, &d); /* frees s */
}

/* Lifeguard: a confirmation from a new accuser shortens the timer. */
static int suspicion_confirm(struct peer *p, struct suspicion *s, const char *from)
{
	double elapsed, remaining;

	if (s->n >= s->k)
		return 0;
	for (int i = 0; i < s->nconfirm; i++)
		if (strcmp(s->confirm[i], from) == 0)
			return 0;
	if (s->nconfirm < SUSPICION_MULT_MAX)
		snprintf(s->confirm[s->nconfirm++], PEER_NAME_MAX + 1, "%s", from);
	s->n++;
	elapsed = peer_now(p) - s->start;
	remaining = suspicion_remaining(s, elapsed);
	ev_timer_stop(p->loop, &s->timer);
	ev_timer_set(&s->timer, remaining > 0 ? remaining : 0, 0);
	ev_timer_start(p->loop, &s->timer);
	return 1;
}

void members_suspect(struct peer *p, const struct msg_accuse *s)
{
	struct node *n = members_find(p, s->node);
	struct suspicion *su;
	double scale, min;
	size_t est;
	int k;

	if (n == NULL || s->inc < n->inc)
		return;
	if (n->susp != NULL) {
		if (suspicion_confirm(p, n->susp, s->from))
			broadcast_accuse(p, MSG_SUSPECT, s, 0);
		return;
	}
	if (n->state != STATE_ALIVE)
		return;
	if (strcmp(n->name, p->cfg.name) == 0) {
		log_debug("refuting a suspect message from '%s'", s->from);
		members_refute(p, n, s->inc);
		return;
	}
	broadcast_accuse(p, MSG_SUSPECT, s, 0);
	p->stats.suspected++;
	n->inc = s->inc;
	n->state = STATE_SUSPECT;
	n->state_change = peer_now(p);

	est = p->nnodes;
	k = p->cfg.suspicion_mult - 2;
	if ((int)est - 2 < k)
		k = 0;
	scale = log10(est > 1 ? (double)est : 1.0);
	if (scale < 1.0)
		scale = 1.0;
	/* suspicionTimeout works in whole milliseconds of the scale. */
	min = p->cfg.suspicion_mult * floor(scale * 1000.0) / 1000.0 * p->cfg.probe_interval;
	su = calloc(1, sizeof(*su));
	if (su == NULL)
		return;
	su->peer = p;
	memcpy(su->node, n->name, sizeof(su->node));
	su->k = k;
	su->min = min;
	su->max = p->cfg.suspicion_max_mult * min;
	su->start = su->change_time = n->state_change;
	snprintf(su->confirm[su->nconfirm++], PEER_NAME_MAX + 1, "%s", s->from);
	ev_timer_init(&su->timer, suspicion_expired, k < 1 ? su->min : su->max, 0);
	ev_timer_start(p->loop, &su->timer);
	n->susp = su;
	log_debug("suspecting '%s' (from '%s')", n->name, s->from);
}

void members_dead(struct peer *p, const struct msg_accuse *d)
{
	struct node *n = members_find(p, d->node);

	if (n == NULL || d->inc < n->inc)
		return;
	suspicion_free(p, n);
	if (n->state == STATE_DEAD || n->state == STATE_LEFT)
		return;
	if (strcmp(n->name, p->cfg.name) == 0) {
		if (!leave_started(p)) {
			log_debug("refuting a dead message from '%s'", d->from);
			members_refute(p, n, d->inc);
			return;
		}
		broadcast_accuse(p, MSG_DEAD, d, 1);
	} else {
		broadcast_accuse(p, MSG_DEAD, d, 0);
	}
	n->inc = d->inc;
	/* Its own dead message, or a death after its leave intent, is a leave. */
	n->state = strcmp(d->node, d->from) == 0 || n->leaving ? STATE_LEFT : STATE_DEAD;
	n->state_change = peer_now(p);
	if (n->state == STATE_DEAD)
		p->stats.failed++;
	members_changed(p, n->state == STATE_LEFT ? "member-leave" : "member-failed", n);
}

void members_merge(struct peer *p, struct msg_alive *states, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		struct msg_alive *r = &states[i];
		struct msg_accuse m;

		/* One entry we would not have sent is left out, not the whole state. */
		if (wire_validate(&DESC_NODE_STATE, r) < 0) {
			p->stats.msgs_bad++;
			log_debug("push-pull: left out the state of '%s': not valid", r->node);
			continue;
		}
		memset(&m, 0, sizeof(m));
		m.inc = r->inc;
		memcpy(m.node, r->node, sizeof(m.node));
		switch (r->state) {
		case STATE_ALIVE:
			members_alive(p, r, 0);
			break;
		case STATE_LEFT:
			memcpy(m.from, r->node, sizeof(m.from));
			members_dead(p, &m);
			break;
		default: /* dead or suspect: we only suspect, and probe for ourselves */
			snprintf(m.from, sizeof(m.from), "%s", p->cfg.name);
			members_suspect(p, &m);
		}
	}
}

void members_self_alive(struct peer *p)
{
	struct msg_alive a;
	static const uint8_t vsn[6] = VSN_INIT;

	memset(&a, 0, sizeof(a));
	a.inc = ++p->incarnation;
	snprintf(a.node, sizeof(a.node), "%s", p->cfg.name);
	a.addr = p->self_ip;
	a.port = p->self_port;
	memcpy(a.meta, p->meta, p->metalen);
	a.metalen = p->metalen;
	memcpy(a.vsn, vsn, 6);
	a.vsnlen = 6;
	members_alive(p, &a, 1);
}

void members_set_left(struct peer *p, struct node *n)
{
	if (n->state == STATE_LEFT)
		return;
	n->state = STATE_LEFT;
	members_changed(p, "member-leave", n);
}

void members_erase(struct peer *p, struct node *n)
{
	for (size_t i = 0; i < p->nnodes; i++) {
		if (p->nodes[i] != n)
			continue;
		log_info("forgetting '%s' (pruned)", n->name);
		coord_forget(p, n->name);
		suspicion_free(p, n);
		free(n);
		p->nodes[i] = p->nodes[--p->nnodes];
		if (p->probe_index > p->nnodes)
			p->probe_index = p->nnodes;
		return;
	}
}

size_t members_alive_others(struct peer *p)
{
	size_t n = 0;

	for (size_t i = 0; i < p->nnodes; i++)
		if (p->nodes[i]->state != STATE_DEAD && p->nodes[i]->state != STATE_LEFT &&
		    strcmp(p->nodes[i]->name, p->cfg.name) != 0)
			n++;
	return n;
}

/* serf's reap: failed members are kept for the reconnect timeout (and
 * tried again meanwhile), left ones for the tombstone timeout; then they
 * are forgotten. */
void members_reap(struct peer *p)
{
	double now = peer_now(p);
	size_t j = 0;

	for (size_t i = 0; i < p->nnodes; i++) {
		struct node *n = p->nodes[i];
		double keep = n->state == STATE_DEAD   ? p->cfg.reconnect_timeout
			      : n->state == STATE_LEFT ? p->cfg.tombstone_timeout
						       : -1;

		if (keep >= 0 && now - n->state_change > keep) {
			log_info("forgetting '%s': %s for %.0fs", n->name, members_status_name(n->state),
				 now - n->state_change);
			coord_forget(p, n->name);
			suspicion_free(p, n);
			free(n);
			continue;
		}
		p->nodes[j++] = n;
	}
	if (p->probe_index > j)
		p->probe_index = j;
	p->nnodes = j;
}

size_t members_count(struct peer *p, enum node_state_type state)
{
	size_t n = 0;

	for (size_t i = 0; i < p->nnodes; i++)
		n += p->nodes[i]->state == state && strcmp(p->nodes[i]->name, p->cfg.name) != 0;
	return n;
}

void members_shuffle(struct peer *p)
{
	for (size_t i = p->nnodes; i > 1; i--) {
		size_t j = (size_t)random() % i;
		struct node *t = p->nodes[i - 1];

		p->nodes[i - 1] = p->nodes[j];
		p->nodes[j] = t;
	}
}

/* Adds c to out[0..*got) unless exclude() rejects it or it is there already. */
static void pick_add(struct peer *p, struct node *c,
		    int (*exclude)(struct peer *, const struct node *, const void *), const void *ctx,
		    struct node **out, int *got)
{
	if (exclude(p, c, ctx))
		return;
	for (int j = 0; j < *got; j++)
		if (out[j] == c)
			return;
	out[(*got)++] = c;
}

/* kRandomNodes: up to k distinct members that exclude() does not reject. */
int members_random(struct peer *p, int k, int (*exclude)(struct peer *, const struct node *, const void *),
		   const void *ctx, struct node **out)
{
	size_t n = p->nnodes, tries;
	int got = 0;

	for (tries = 0; tries < 3 * n && got < k; tries++)
		pick_add(p, p->nodes[(size_t)random() % n], exclude, ctx, out, &got);
	/* Small tables: a final ordered sweep finds any the dice missed. */
	for (size_t i = 0; i < n && got < k && n < (size_t)k * 3 + 8; i++)
		pick_add(p, p->nodes[i], exclude, ctx, out, &got);
	return got;
}

void members_free(struct peer *p)
{
	for (size_t i = 0; i < p->nnodes; i++) {
		suspicion_free(p, p->nodes[i]);
		free(p->nodes[i]);
	}
	free(p->nodes);
	p->nodes = NULL;
	p->nnodes = p->nodes_cap = 0;
}
