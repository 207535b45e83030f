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

#define TAG_MAGIC 0xff

int serf_encode_tags(struct peer *p, char *err)
{
	struct wbuf w;

	wbuf_init(&w, META_MAX);
	wbuf_byte(&w, TAG_MAGIC);
	mp_put_map(&w, (uint32_t)p->cfg.ntags);
	for (int i = 0; i < p->cfg.ntags; i++) {
		mp_put_str(&w, p->cfg.tag_key[i]);
		mp_put_str(&w, p->cfg.tag_val[i]);
	}
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

/* messagePushPull with our clocks, our own status time and recent events. */
void serf_local_state(struct peer *p, struct wbuf *w)
{
	uint32_t nslots = 0;

	struct serf_events *es = events(p);

	for (int i = 0; es != NULL && i < EVENT_BUFFER; i++)
		nslots += es->slot[i].used && es->slot[i].n > 0;
	wbuf_byte(w, SERF_PUSHPULL);
	mp_put_map(w, 6);
	mp_put_str(w, "LTime");
	mp_put_uint(w, p->ltime);
	/* Every member's status time, and the members that left. */
	mp_put_str(w, "StatusLTimes");
	mp_put_map(w, (uint32_t)p->nnodes);
	for (size_t i = 0; i < p->nnodes; i++) {
		mp_put_str(w, p->nodes[i]->name);
		mp_put_uint(w, p->nodes[i]->status_ltime);
	}
	mp_put_str(w, "LeftMembers");
	mp_put_array(w, (uint32_t)members_count(p, STATE_LEFT));
	for (size_t i = 0; i < p->nnodes; i++)
		if (p->nodes[i]->state == STATE_LEFT && strcmp(p->nodes[i]->name, p->cfg.name) != 0)
			mp_put_str(w, p->nodes[i]->name);
	mp_put_str(w, "EventLTime");
	mp_put_uint(w, serf_event_clock(p));
	mp_put_str(w, "Events");
	mp_put_array(w, nslots);
	for (int i = 0; es != NULL && i < EVENT_BUFFER; i++) {
		const struct event_slot *slot = &es->slot[i];

		if (!slot->used || slot->n == 0)
			continue;
		mp_put_map(w, 2);
		mp_put_str(w, "LTime");
		mp_put_uint(w, slot->ltime);
		mp_put_str(w, "Events");
		mp_put_array(w, (uint32_t)slot->n);
		for (int j = 0; j < slot->n; j++) {
			struct msg_event e = {.name = slot->ev[j].name,
					      .namelen = slot->ev[j].namelen,
					      .payload = slot->ev[j].payload,
					      .payloadlen = slot->ev[j].payloadlen};

			wire_encode(&DESC_PP_EVENT, w, &e);
		}
	}
	mp_put_str(w, "QueryLTime");
	mp_put_uint(w, query_clock(p));
}

/* userEvents {LTime, Events: [userEvent...]}, or nil for an empty slot. */
static int merge_event_slot(struct peer *p, struct mp_reader *r)
{
	uint32_t nkeys, keylen, n;
	const uint8_t *key;
	uint64_t ltime = 0;
	size_t events_off = 0, have_events = 0;
	struct mp_reader er;

	if (r->off < r->len && r->p[r->off] == 0xc0)
		return mp_skip(r);
	if (mp_read_map(r, &nkeys) < 0)
		return -1;
	for (uint32_t i = 0; i < nkeys; i++) {
		if (mp_read_raw(r, &key, &keylen) < 0)
			return -1;
		if (mp_key_is(key, keylen, "LTime")) {
			if (mp_read_uint(r, UINT64_MAX, &ltime) < 0)
				return -1;
		} else {
			if (mp_key_is(key, keylen, "Events")) {
				events_off = r->off;
				have_events = 1;
			}
			if (mp_skip(r) < 0)
				return -1;
		}
	}
	if (!have_events)
		return 0;
	/* The events come after LTime is known, whatever the key order. */
	mp_reader_init(&er, r->p + events_off, r->off - events_off);
	if (er.p[0] == 0xc0)
		return 0;
	if (mp_read_array(&er, &n) < 0)
		return -1;
	for (uint32_t j = 0; j < n; j++) {
		struct msg_event e;

		if (wire_decode(&DESC_PP_EVENT, &er, &e) < 0)
			return -1;
		if (wire_validate(&DESC_PP_EVENT, &e) < 0)
			continue;
		e.ltime = ltime;
		event_accept(p, &e);
	}
	return 0;
}

/* One clock of a push-pull, witnessed as v - 1 as serf does. On our join,
 * min (when given) rises to v: what is older came before us. */
static int clock_merge(struct peer *p, struct mp_reader *r,
		       void (*witness)(struct peer *, uint64_t), uint64_t *min)
{
	uint64_t v;

	if (mp_read_uint(r, UINT64_MAX, &v) < 0)
		return -1;
	if (v > 0)
		witness(p, v - 1);
	if (min != NULL && v > *min)
		*min = v;
	return 0;
}

/* The clocks: our next intent must be newer than any status time the
 * cluster holds; and the recent events, which anti-entropy delivers to a
 * member that missed their gossip. A join of ours ignores older events. */
/* The status times and left members of a push-pull, as serf's
 * MergeRemoteState takes them: each left member as a leave intent one past
 * its status time, every other member as a join intent at its time. */
static int merge_statuses(struct peer *p, const uint8_t *times, size_t timeslen,
			  const uint8_t *left, size_t leftlen)
{
	struct mp_reader r, lr;
	struct msg_intent in;
	uint32_t n, nleft = 0;
	const uint8_t *name;
	uint32_t namelen;
	uint64_t v;

	if (leftlen > 0) {
		mp_reader_init(&lr, left, leftlen);
		if (mp_read_array(&lr, &nleft) < 0)
			return -1;
	}
	/* Left members first, as serf does, so their times do not move in the
	 * wrong order. Each is looked up in the status times: a bound on how
	 * many keeps a hostile state from costing left x members steps. */
	if (nleft > 1024)
		nleft = 1024;
	for (uint32_t i = 0; i < nleft; i++) {
		if (mp_read_raw(&lr, &name, &namelen) < 0)
			return -1;
		if (namelen == 0 || namelen > PEER_NAME_MAX || memchr(name, 0, namelen))
			continue;
		memset(&in, 0, sizeof(in));
		memcpy(in.node, name, namelen);
		if (timeslen > 0) {
			mp_reader_init(&r, times, timeslen);
			if (mp_read_map(&r, &n) < 0)
				return -1;
			for (uint32_t j = 0; j < n; j++) {
				const uint8_t *k;
				uint32_t kl;

				if (mp_read_raw(&r, &k, &kl) < 0 || mp_read_uint(&r, UINT64_MAX, &v) < 0)
					return -1;
				if (kl == namelen && memcmp(k, name, kl) == 0)
					in.ltime = v;
			}
		}
		in.ltime++;
		intent_leave(p, &in);
	}
	if (timeslen == 0)
		return 0;
	mp_reader_init(&r, times, timeslen);
	if (mp_read_map(&r, &n) < 0)
		return -1;
	for (uint32_t j = 0; j < n; j++) {
		int is_left = 0;

		if (mp_read_raw(&r, &name, &namelen) < 0 || mp_read_uint(&r, UINT64_MAX, &v) < 0)
			return -1;
		if (namelen == 0 || namelen > PEER_NAME_MAX || memchr(name, 0, namelen))
			continue;
		if (nleft > 0) {
			const uint8_t *ln;
			uint32_t ll, c;

			mp_reader_init(&lr, left, leftlen);
			mp_read_array(&lr, &c);
			for (uint32_t i = 0; i < c && !is_left; i++)
				if (mp_read_raw(&lr, &ln, &ll) == 0 && ll == namelen &&
				    memcmp(ln, name, ll) == 0)
					is_left = 1;
		}
		if (is_left)
			continue;
		memset(&in, 0, sizeof(in));
		memcpy(in.node, name, namelen);
		in.ltime = v;
		intent_join(p, &in);
	}
	return 0;
}

void serf_merge_state(struct peer *p, const uint8_t *buf, size_t len, int join)
{
	struct mp_reader r;
	uint32_t nkeys, keylen, n;
	const uint8_t *key, *times = NULL, *left = NULL;
	size_t timeslen = 0, leftlen = 0;

	if (len < 1 || buf[0] != SERF_PUSHPULL)
		return;
	mp_reader_init(&r, buf + 1, len - 1);
	if (mp_read_map(&r, &nkeys) < 0)
		goto bad;
	for (uint32_t i = 0; i < nkeys; i++) {
		if (mp_read_raw(&r, &key, &keylen) < 0)
			goto bad;
		if (mp_key_is(key, keylen, "LTime")) {
			if (clock_merge(p, &r, serf_witness, NULL) < 0)
				goto bad;
		} else if (mp_key_is(key, keylen, "EventLTime")) {
			uint64_t min = 0;

			if (clock_merge(p, &r, event_witness, join ? &min : NULL) < 0)
				goto bad;
			if (min > 0)
				serf_events_ignore_before(p, min);
		} else if (mp_key_is(key, keylen, "QueryLTime")) {
			uint64_t min = 0;

			if (clock_merge(p, &r, query_witness, join ? &min : NULL) < 0)
				goto bad;
			if (min > 0)
				query_ignore_before(p, min);
		} else if (mp_key_is(key, keylen, "Events")) {
			if (r.off < r.len && r.p[r.off] == 0xc0) {
				mp_skip(&r);
				continue;
			}
			if (mp_read_array(&r, &n) < 0)
				goto bad;
			for (uint32_t j = 0; j < n; j++)
				if (merge_event_slot(p, &r) < 0)
					goto bad;
		} else if (mp_key_is(key, keylen, "StatusLTimes") ||
			   mp_key_is(key, keylen, "LeftMembers")) {
			size_t off = r.off;
			int is_times = mp_key_is(key, keylen, "StatusLTimes");

			if (mp_skip(&r) < 0)
				goto bad;
			if (r.p[off] == 0xc0) /* nil */
				continue;
			if (r.off - off > (size_t)MEMBERS_MAX * (PEER_NAME_MAX + 16))
				goto bad;
			if (is_times) {
				times = r.p + off;
				timeslen = r.off - off;
			} else {
				left = r.p + off;
				leftlen = r.off - off;
			}
		} else if (mp_skip(&r) < 0) {
			goto bad;
		}
	}
	if (merge_statuses(p, times, timeslen, left, leftlen) < 0)
		goto bad;
	return;
bad:
	p->stats.msgs_bad++;
	log_debug("dropped malformed serf push-pull state");
}
