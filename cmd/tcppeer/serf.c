/* What serf adds on top of memberlist: tags in Meta (0xFF then a msgpack
 * map), join and leave intents carried in memberlist user messages, serf's
 * Lamport clocks, its push-pull user state, and user events. A user event is
 * delivered once: serf's event clock and its buffer of recent events (64
 * LTimes, each with the events seen at that time) tell a repeat from a new
 * one, and events older than the buffer are dropped, as serf does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tcppeer.h"

enum serf_type {
	SERF_LEAVE = 0,
	SERF_JOIN = 1,
	SERF_PUSHPULL = 2,
	SERF_USER_EVENT = 3,
	SERF_QUERY = 4,
	SERF_RELAY = 9,
};

#define EVENTS_PER_LTIME 32 /* distinct events kept for one LTime; more are dropped */

static void tag_item(void *ctx, uint32_t i, void *elem)
{
	const struct config *cfg = ctx;
	struct msg_tag *t = elem;

	t->key = (const uint8_t *)cfg->tag_key[i];
	t->keylen = (uint32_t)strlen(cfg->tag_key[i]);
	t->val = (const uint8_t *)cfg->tag_val[i];
	t->vallen = (uint32_t)strlen(cfg->tag_val[i]);
}

int serf_encode_tags(struct peer *p, char *err)
{
	struct msg_tags t = {.tags = {.n = (uint32_t)p->cfg.ntags, .item = tag_item, .ctx = &p->cfg}};
	struct wbuf w;

	wbuf_init(&w, META_MAX);
	wire_encode(&DESC_TAGS, &w, &t);
	if (w.overflow) {
		wbuf_free(&w);
		return err_set(err, "tags take more than %d bytes", META_MAX);
	}
	memcpy(p->meta, w.p, w.len);
	p->metalen = (uint16_t)w.len;
	wbuf_free(&w);
	return 0;
}

void serf_witness(struct peer *p, uint64_t ltime)
{
	if (ltime >= p->ltime)
		p->ltime = ltime + 1;
}

/* A serf message (type byte first) decoded by its table and checked; 0 or -1. */
static int serf_decode(const struct msg_desc *d, const uint8_t *msg, size_t len, void *out)
{
	struct mp_reader r;

	if (len < 1)
		return -1;
	mp_reader_init(&r, msg + 1, len - 1);
	if (wire_decode(d, &r, out) < 0)
		return -1;
	return wire_validate(d, out);
}

/* One LTime's user events in serf's recent-event buffer. */
struct user_event {
	uint8_t name[EVENT_SIZE_MAX], payload[EVENT_SIZE_MAX];
	uint16_t namelen, payloadlen;
};

struct event_slot {
	uint64_t ltime;
	int used, n, cap;
	struct user_event *ev;
};

/* The user events' state: serf's event clock, the oldest event time we
 * deliver, and the events of the last EVENT_BUFFER clock values. */
struct serf_events {
	uint64_t ltime, min;
	struct event_slot slot[EVENT_BUFFER];
};

static struct serf_events *events(struct peer *p)
{
	if (p->events == NULL)
		p->events = calloc(1, sizeof(*p->events));
	return p->events;
}

static void event_witness(struct peer *p, uint64_t ltime)
{
	struct serf_events *es = events(p);

	if (es != NULL && ltime >= es->ltime)
		es->ltime = ltime + 1;
}

uint64_t serf_event_clock(struct peer *p)
{
	struct serf_events *es = events(p);

	return es != NULL ? es->ltime : 0;
}

void serf_events_ignore_before(struct peer *p, uint64_t ltime)
{
	struct serf_events *es = events(p);

	if (es == NULL)
		return;
	if (es->min < ltime)
		es->min = ltime;
	if (es->ltime < ltime)
		es->ltime = ltime;
}

/* serf's handleUserEvent: 1 when the event is new (delivered, to be passed
 * on), 0 when it is a repeat or too old. */
static int event_accept(struct peer *p, const struct msg_event *e)
{
	struct serf_events *es = events(p);
	struct event_slot *slot;
	struct user_event *ue;

	if (es == NULL)
		return 0;
	event_witness(p, e->ltime);
	if (e->ltime < es->min) {
		p->stats.events_old++;
		return 0;
	}
	if (es->ltime > EVENT_BUFFER && e->ltime < es->ltime - EVENT_BUFFER) {
		p->stats.events_old++;
		log_debug("dropped an event from LTime %llu, the clock is at %llu",
			  (unsigned long long)e->ltime, (unsigned long long)es->ltime);
		return 0;
	}
	slot = &es->slot[e->ltime % EVENT_BUFFER];
	if (slot->used && slot->ltime == e->ltime) {
		for (int i = 0; i < slot->n; i++) {
			ue = &slot->ev[i];
			if (ue->namelen == e->namelen && ue->payloadlen == e->payloadlen &&
			    memcmp(ue->name, e->name, e->namelen) == 0 &&
			    memcmp(ue->payload, e->payload, e->payloadlen) == 0) {
				p->stats.events_dup++;
				return 0;
			}
		}
	} else {
		slot->used = 1;
		slot->ltime = e->ltime;
		slot->n = 0;
	}
	if (slot->n == EVENTS_PER_LTIME) {
		/* Not recorded, so not delivered: a later copy must not be a second delivery. */
		p->stats.queue_dropped++;
		return 0;
	}
	if (slot->n == slot->cap) {
		int cap = slot->cap ? 2 * slot->cap : 2;
		struct user_event *n = realloc(slot->ev, (size_t)cap * sizeof(*n));

		if (n == NULL)
			return 0;
		slot->ev = n;
		slot->cap = cap;
	}
	ue = &slot->ev[slot->n++];
	memcpy(ue->name, e->name, e->namelen);
	ue->namelen = (uint16_t)e->namelen;
	if (e->payloadlen)
		memcpy(ue->payload, e->payload, e->payloadlen);
	ue->payloadlen = (uint16_t)e->payloadlen;
	p->stats.events_in++;
	events_user(e->name, e->namelen, e->payload, e->payloadlen);
	return 1;
}

/* A serf message passed on by gossip: written from its table, never the
 * bytes we were sent. */
static void serf_broadcast(struct peer *p, const struct msg_desc *d, const void *msg)
{
	struct wbuf w;

	wbuf_init(&w, UDP_SEND_MAX);
	wbuf_byte(&w, MSG_USER);
	wire_encode(d, &w, msg);
	if (!w.overflow)
		gossip_queue(p, "", w.p, w.len, 0);
	wbuf_free(&w);
}

int serf_user_event(struct peer *p, const uint8_t *name, size_t namelen, const uint8_t *payload,
		    size_t payloadlen, char *err)
{
	struct msg_event e;
	struct wbuf w;

	if (namelen == 0)
		return err_set(err, "an event needs a name");
	if (namelen + payloadlen > EVENT_SIZE_MAX)
		return err_set(err, "event name and payload take %zu bytes, over serf's limit of %d",
			       namelen + payloadlen, EVENT_SIZE_MAX);
	memset(&e, 0, sizeof(e));
	e.ltime = serf_event_clock(p);
	e.name = name;
	e.namelen = (uint32_t)namelen;
	e.payload = payload;
	e.payloadlen = (uint32_t)payloadlen;
	wbuf_init(&w, EVENT_SIZE_MAX);
	wire_encode(&DESC_EVENT, &w, &e);
	if (w.overflow) {
		wbuf_free(&w);
		return err_set(err, "encoded event over serf's limit of %d bytes", EVENT_SIZE_MAX);
	}
	wbuf_free(&w);
	event_witness(p, e.ltime);
	event_accept(p, &e);
	serf_broadcast(p, &DESC_EVENT, &e);
	p->stats.events_sent++;
	return 0;
}

void serf_events_free(struct peer *p)
{
	if (p->events == NULL)
		return;
	for (int i = 0; i < EVENT_BUFFER; i++)
		free(p->events->slot[i].ev);
	free(p->events);
	p->events = NULL;
}

void serf_handle_user(struct peer *p, const uint8_t *msg, size_t len)
{
	struct msg_intent in;

	if (len < 1)
		return;
	if (msg[0] == SERF_USER_EVENT) {
		struct msg_event e;

		/* What serf could not decode is neither printed nor passed on. */
		if (serf_decode(&DESC_EVENT, msg, len, &e) < 0) {
			p->stats.msgs_bad++;
			log_debug("dropped a malformed user event");
			return;
		}
		if (event_accept(p, &e))
			serf_broadcast(p, &DESC_EVENT, &e);
		return;
	}
	if (msg[0] == SERF_QUERY) {
		query_handle(p, msg, len);
		return;
	}
	if (msg[0] == SERF_RELAY) {
		query_relay(p, msg, len);
		return;
	}
	if (msg[0] != SERF_LEAVE && msg[0] != SERF_JOIN)
		return; /* responses to queries we never sent, and the unknown */
	if (serf_decode(msg[0] == SERF_LEAVE ? &DESC_LEAVE : &DESC_JOIN, msg, len, &in) < 0) {
		p->stats.msgs_bad++;
		log_debug("dropped a malformed serf intent");
		return;
	}
	intent_handle(p, &in, msg[0] == SERF_LEAVE);
}

static void encode_intent(struct peer *p, struct wbuf *w, enum serf_type type, uint64_t ltime)
{
	struct msg_intent in;

	memset(&in, 0, sizeof(in));
	in.ltime = ltime;
	snprintf(in.node, sizeof(in.node), "%s", p->cfg.name);
	wbuf_byte(w, MSG_USER);
	wire_encode(type == SERF_LEAVE ? &DESC_LEAVE : &DESC_JOIN, w, &in);
}

void serf_join_intent(struct peer *p)
{
	struct node *self = members_find(p, p->cfg.name);
	struct wbuf w;

	p->join_ltime = ++p->ltime;
	if (self != NULL)
		self->status_ltime = p->join_ltime;
	wbuf_init(&w, UDP_SEND_MAX);
	encode_intent(p, &w, SERF_JOIN, p->join_ltime);
	if (!w.overflow)
		gossip_queue(p, "", w.p, w.len, 0);
	wbuf_free(&w);
}

void serf_leave_intent(struct peer *p, uint8_t *out, size_t *outlen, size_t max)
{
	struct wbuf w;

	wbuf_init(&w, max);
	encode_intent(p, &w, SERF_LEAVE, ++p->ltime);
	*outlen = 0;
	if (!w.overflow) {
		gossip_queue(p, "", w.p, w.len, 0);
		memcpy(out, w.p, w.len);
		*outlen = w.len;
	}
	wbuf_free(&w);
}

/* messagePushPull with our clocks, every member's status time, the members
 * that left and our recent events, each list filled as it is written. */
struct state_lists {
	struct peer *p;
	size_t next_left; /* where the next left member is looked for */
	int next_slot;
};

static void status_item(void *ctx, uint32_t i, void *elem)
{
	struct state_lists *sl = ctx;
	struct msg_status_ltime *st = elem;
	const struct node *n = sl->p->nodes[i];

	st->name = (const uint8_t *)n->name;
	st->namelen = (uint32_t)strlen(n->name);
	st->ltime = n->status_ltime;
}

static int left_other(const struct peer *p, const struct node *n)
{
	return n->state == STATE_LEFT && strcmp(n->name, p->cfg.name) != 0;
}

static void left_item(void *ctx, uint32_t i, void *elem)
{
	struct state_lists *sl = ctx;
	struct msg_string *s = elem;
	const struct node *n;

	(void)i;
	while (!left_other(sl->p, sl->p->nodes[sl->next_left]))
		sl->next_left++;
	n = sl->p->nodes[sl->next_left++];
	s->p = (const uint8_t *)n->name;
	s->len = (uint32_t)strlen(n->name);
}

static void event_item(void *ctx, uint32_t i, void *elem)
{
	const struct event_slot *slot = ctx;
	struct msg_event *e = elem;

	e->name = slot->ev[i].name;
	e->namelen = slot->ev[i].namelen;
	e->payload = slot->ev[i].payload;
	e->payloadlen = slot->ev[i].payloadlen;
}

static int slot_full(const struct event_slot *slot)
{
	return slot->used && slot->n > 0;
}

static void slot_item(void *ctx, uint32_t i, void *elem)
{
	struct state_lists *sl = ctx;
	struct event_slot *slot;
	struct msg_event_slot *es = elem;

	(void)i;
	while (!slot_full(&sl->p->events->slot[sl->next_slot]))
		sl->next_slot++;
	slot = &sl->p->events->slot[sl->next_slot++];
	es->ltime = slot->ltime;
	es->events.n = (uint32_t)slot->n;
	es->events.item = event_item;
	es->events.ctx = slot;
}

void serf_local_state(struct peer *p, struct wbuf *w)
{
	struct serf_events *es = events(p);
	struct state_lists sl = {.p = p};
	struct msg_serf_state m;
	uint32_t nleft = 0, nslots = 0;

	for (size_t i = 0; i < p->nnodes; i++)
		nleft += left_other(p, p->nodes[i]);
	for (int i = 0; es != NULL && i < EVENT_BUFFER; i++)
		nslots += slot_full(&es->slot[i]);
	memset(&m, 0, sizeof(m));
	m.ltime = p->ltime;
	m.status_ltimes = (struct wire_list){.n = (uint32_t)p->nnodes, .item = status_item, .ctx = &sl};
	m.left = (struct wire_list){.n = nleft, .item = left_item, .ctx = &sl};
	m.event_ltime = serf_event_clock(p);
	m.events = (struct wire_list){.n = nslots, .item = slot_item, .ctx = &sl};
	m.query_ltime = query_clock(p);
	wire_encode(&DESC_SERF_STATE, w, &m);
}

/* One clock of a push-pull, witnessed as v - 1 as serf does. */
static void clock_merge(struct peer *p, uint64_t v, void (*witness)(struct peer *, uint64_t))
{
	if (v > 0)
		witness(p, v - 1);
}

/* A name of the state, as an intent about it; 0, or -1 when no member could bear it. */
static int intent_about(const uint8_t *name, uint32_t len, uint64_t ltime, struct msg_intent *in)
{
	if (len == 0 || len > PEER_NAME_MAX || memchr(name, 0, len))
		return -1;
	memset(in, 0, sizeof(*in));
	memcpy(in->node, name, len);
	in->ltime = ltime;
	return 0;
}

static int is_left(const struct msg_serf_state *m, const uint8_t *name, uint32_t len)
{
	struct wire_iter it;
	struct msg_string s;

	wire_iter_init(&it, &m->left);
	while (wire_iter_next(&it, &s) == 1)
		if (s.len == len && memcmp(s.p, name, len) == 0)
			return 1;
	return 0;
}

/* The status times and left members of a push-pull, as serf's
 * MergeRemoteState takes them: each left member as a leave intent one past
 * its status time, every other member as a join intent at its time. */
static void merge_statuses(struct peer *p, const struct msg_serf_state *m)
{
	struct wire_iter lit, tit;
	struct msg_string left;
	struct msg_status_ltime st;
	struct msg_intent in;
	uint32_t nleft = 0;

	/* Left members first, as serf does, so their times do not move in the
	 * wrong order. Each is looked up in the status times: a bound on how
	 * many keeps a hostile state from costing left x members steps. */
	wire_iter_init(&lit, &m->left);
	while (nleft < 1024 && wire_iter_next(&lit, &left) == 1) {
		uint64_t ltime = 0;

		nleft++;
		wire_iter_init(&tit, &m->status_ltimes);
		while (wire_iter_next(&tit, &st) == 1)
			if (st.namelen == left.len && memcmp(st.name, left.p, left.len) == 0)
				ltime = st.ltime;
		if (intent_about(left.p, left.len, ltime + 1, &in) == 0)
			intent_leave(p, &in);
	}
	wire_iter_init(&tit, &m->status_ltimes);
	while (wire_iter_next(&tit, &st) == 1)
		if ((nleft == 0 || !is_left(m, st.name, st.namelen)) &&
		    intent_about(st.name, st.namelen, st.ltime, &in) == 0)
			intent_join(p, &in);
}

/* The clocks: our next intent must be newer than any status time the
 * cluster holds; and the recent events, which anti-entropy delivers to a
 * member that missed their gossip. A join of ours ignores older events and
 * queries. Taken in serf's field order, once the whole state decoded. */
void serf_merge_state(struct peer *p, const uint8_t *buf, size_t len, int join)
{
	struct mp_reader r;
	struct msg_serf_state m;
	struct wire_iter sit, eit;
	struct msg_event_slot slot;
	struct msg_event e;

	if (len < 1 || buf[0] != DESC_SERF_STATE.type)
		return;
	mp_reader_init(&r, buf + 1, len - 1);
	if (wire_decode(&DESC_SERF_STATE, &r, &m) < 0) {
		p->stats.msgs_bad++;
		log_debug("dropped malformed serf push-pull state");
		return;
	}
	clock_merge(p, m.ltime, serf_witness);
	clock_merge(p, m.event_ltime, event_witness);
	if (join && m.event_ltime > 0)
		serf_events_ignore_before(p, m.event_ltime);
	wire_iter_init(&sit, &m.events);
	while (wire_iter_next(&sit, &slot) == 1) {
		wire_iter_init(&eit, &slot.events);
		while (wire_iter_next(&eit, &e) == 1) {
			if (wire_validate(&DESC_PP_EVENT, &e) < 0)
				continue;
			e.ltime = slot.ltime;
			event_accept(p, &e);
		}
	}
	clock_merge(p, m.query_ltime, query_witness);
	if (join && m.query_ltime > 0)
		query_ignore_before(p, m.query_ltime);
	merge_statuses(p, &m);
}
