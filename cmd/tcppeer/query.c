/* serf queries. A query reaches every member by gossip; each member takes
 * it once (serf's query Lamport clock and its buffer of recent query IDs,
 * 512 LTimes), passes it on unless it says not to, and, when its filters
 * (node names, tag regular expressions) select this node, sends the ack the
 * query asks for straight to the asker. serf's internal queries get the
 * answers a serf agent gives: _serf_ping only the ack, _serf_conflict our
 * view of the named member, and the key queries a keyResponse after changing
 * the keyring as memberlist's keyring does and rewriting the --keyring file.
 * Other queries are not answered: a serf agent answers them only from an
 * event handler, and tcppeer runs none. Queries and responses over serf's
 * 1024-byte limits are dropped. */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tcppeer.h"

enum {
	SERF_QUERY = 4,
	SERF_QUERY_RESPONSE = 5,
	SERF_RELAY = 9,
};

#define QUERY_FLAG_ACK 1u
#define QUERY_FLAG_NO_BROADCAST 2u
#define INTERNAL_PREFIX "_serf_"
#define REGEX_MAX 512 /* a tag filter's expression */

/* serf's Member status values. */
enum { MEMBER_ALIVE = 1, MEMBER_LEFT = 3, MEMBER_FAILED = 4 };

int query_decode(const uint8_t *buf, size_t len, struct msg_query *q)
{
	struct mp_reader r;

	mp_reader_init(&r, buf, len);
	if (wire_decode(&DESC_QUERY, &r, q) < 0)
		return -1;
	return wire_validate(&DESC_QUERY, q);
}

/* One LTime's query IDs in serf's recent-query buffer. */
struct query_slot {
	uint64_t ltime;
	int used, n;
	uint32_t id[QUERY_IDS_PER_LTIME];
};

/* The module's state: serf's query clock, the oldest query time we take,
 * and the recent query IDs. */
struct queries {
	uint64_t ltime, min;
	struct query_slot slot[QUERY_BUFFER];
};

static struct queries *queries(struct peer *p)
{
	if (p->queries == NULL)
		p->queries = calloc(1, sizeof(*p->queries));
	return p->queries;
}

void query_witness(struct peer *p, uint64_t ltime)
{
	struct queries *qs = queries(p);

	if (qs != NULL && ltime >= qs->ltime)
		qs->ltime = ltime + 1;
}

uint64_t query_clock(struct peer *p)
{
	struct queries *qs = queries(p);

	return qs != NULL ? qs->ltime : 0;
}

void query_ignore_before(struct peer *p, uint64_t ltime)
{
	struct queries *qs = queries(p);

	if (qs == NULL)
		return;
	if (qs->min < ltime)
		qs->min = ltime;
	if (qs->ltime < ltime)
		qs->ltime = ltime;
}

void query_forget(struct peer *p)
{
	struct queries *qs = queries(p);

	if (qs != NULL) {
		memset(qs->slot, 0, sizeof(qs->slot));
		qs->min = 0;
	}
}

void queries_free(struct peer *p)
{
	free(p->queries);
	p->queries = NULL;
}

/* serf's handleQuery bookkeeping: 1 for a query seen for the first time. */
static int query_accept(struct peer *p, const struct msg_query *q)
{
	struct queries *qs = queries(p);
	struct query_slot *slot;

	if (qs == NULL)
		return 0;
	query_witness(p, q->ltime);
	if (q->ltime < qs->min || (qs->ltime > QUERY_BUFFER && q->ltime < qs->ltime - QUERY_BUFFER)) {
		p->stats.queries_old++;
		return 0;
	}
	slot = &qs->slot[q->ltime % QUERY_BUFFER];
	if (slot->used && slot->ltime == q->ltime) {
		for (int i = 0; i < slot->n; i++)
			if (slot->id[i] == q->id) {
				p->stats.queries_dup++;
				return 0;
			}
	} else {
		slot->used = 1;
		slot->ltime = q->ltime;
		slot->n = 0;
	}
	if (slot->n == QUERY_IDS_PER_LTIME) {
		/* Not recorded, so not taken: a later copy must not be a second answer. */
		p->stats.queries_dropped++;
		return 0;
	}
	slot->id[slot->n++] = q->id;
	p->stats.queries_in++;
	return 1;
}

static const char *tag_value(const struct peer *p, const uint8_t *tag, uint32_t len)
{
	for (int i = 0; i < p->cfg.ntags; i++)
		if (strlen(p->cfg.tag_key[i]) == len && memcmp(p->cfg.tag_key[i], tag, len) == 0)
			return p->cfg.tag_val[i];
	return "";
}

/* filterTag {Tag, Expr}: Expr, a POSIX extended regular expression here (Go's
 * RE2 syntax in serf; the two agree on the common subset), must match
 * somewhere in the tag's value, a missing tag being the empty string. */
static int filter_tag_ok(const struct peer *p, const struct msg_filter *f)
{
	char pattern[REGEX_MAX + 1];
	regex_t re;
	int ok;

	if (f->exprlen > REGEX_MAX || memchr(f->expr, 0, f->exprlen))
		return 0;
	memcpy(pattern, f->expr, f->exprlen);
	pattern[f->exprlen] = '\0';
	if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0) {
		log_debug("query tag filter: not a regular expression: %s", pattern);
		return 0;
	}
	ok = regexec(&re, tag_value(p, f->tag, f->taglen), 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

static int filter_node_ok(const struct peer *p, const struct msg_filter *f)
{
	struct wire_iter it;
	struct msg_string name;
	int rc;

	wire_iter_init(&it, &f->nodes);
	while ((rc = wire_iter_next(&it, &name)) == 1)
		if (strlen(p->cfg.name) == name.len && memcmp(p->cfg.name, name.p, name.len) == 0)
			return 1;
	return 0;
}

/* serf's shouldProcessQuery: every filter must select us (the list was
 * checked when the query was decoded). */
static int filters_select_us(const struct peer *p, const struct msg_query *q)
{
	struct wire_iter it;
	struct msg_filter f;
	int rc;

	wire_iter_init(&it, &q->filters);
	while ((rc = wire_iter_next(&it, &f)) == 1)
		if (!(f.type == FILTER_NODE ? filter_node_ok(p, &f) : filter_tag_ok(p, &f)))
			return 0;
	return rc == 0;
}

static void encode_response(struct wbuf *w, const struct peer *p, const struct msg_query *q,
			    uint32_t flags, const uint8_t *payload, size_t payloadlen)
{
	struct msg_response m;

	memset(&m, 0, sizeof(m));
	m.ltime = q->ltime;
	m.id = q->id;
	snprintf(m.from, sizeof(m.from), "%s", p->cfg.name);
	m.flags = flags;
	m.payload = payload;
	m.payloadlen = (uint32_t)payloadlen;
	wire_encode(&DESC_RESPONSE, w, &m);
}

static struct node *source_node(struct peer *p, const struct msg_query *q)
{
	return members_find(p, q->source);
}

static int relay_exclude(struct peer *p, const struct node *n, const void *ctx)
{
	(void)ctx;
	return n->state != STATE_ALIVE || n->vsn[1] < 5 || strcmp(n->name, p->cfg.name) == 0;
}

/* serf's relayResponse: copies through relay_factor other members, for
 * askers whose direct path loses packets. */
static void relay_response(struct peer *p, const struct msg_query *q, const uint8_t *resp,
			   size_t len)
{
	struct node *via[UINT8_MAX];
	struct msg_relay h;
	struct wbuf w;
	int n;

	if (q->relay_factor == 0 || members_alive_others(p) < q->relay_factor)
		return;
	memset(&h, 0, sizeof(h));
	h.dest.ip = q->addr;
	h.dest.port = q->port;
	snprintf(h.dest_name, sizeof(h.dest_name), "%s", q->source);
	wbuf_init(&w, 1 + QUERY_RESPONSE_MAX);
	wbuf_byte(&w, MSG_USER);
	wire_encode(&DESC_RELAY, &w, &h);
	wbuf_put(&w, resp, len);
	if (w.overflow) {
		p->stats.queries_dropped++;
		wbuf_free(&w);
		return;
	}
	n = members_random(p, q->relay_factor, relay_exclude, NULL, via);
	for (int i = 0; i < n; i++)
		net_send_node(p, via[i], w.p, w.len);
	wbuf_free(&w);
}

/* Sends a response (an ack when flags say so) to the asker, as a memberlist
 * user message in a UDP packet, and through relays when it asks for them. */
static void respond(struct peer *p, const struct msg_query *q, uint32_t flags,
		    const uint8_t *payload, size_t payloadlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct wbuf w;

	if (net_sockaddr(&q->addr, q->port, &ss, &sl) < 0) {
		p->stats.msgs_bad++;
		return;
	}
	wbuf_init(&w, 1 + QUERY_RESPONSE_MAX);
	wbuf_byte(&w, MSG_USER);
	encode_response(&w, p, q, flags, payload, payloadlen);
	if (w.overflow) {
		log_warn("query response over serf's limit of %d bytes: not sent",
			 QUERY_RESPONSE_MAX);
		p->stats.queries_dropped++;
		wbuf_free(&w);
		return;
	}
	net_send_msg(p, (struct sockaddr *)&ss, sl, w.p, w.len, source_node(p, q));
	relay_response(p, q, w.p + 1, w.len - 1);
	if (flags & QUERY_FLAG_ACK)
		p->stats.query_acks++;
	else
		p->stats.query_responses++;
	wbuf_free(&w);
}

/* Tags of a conflict answer, as tags_decode() gives them. */
struct tag_list {
	char keys[TAGS_MAX][128], vals[TAGS_MAX][256];
};

static void tag_item(void *ctx, uint32_t i, void *elem)
{
	const struct tag_list *t = ctx;
	struct msg_tag *tag = elem;

	tag->key = (const uint8_t *)t->keys[i];
	tag->keylen = (uint32_t)strlen(t->keys[i]);
	tag->val = (const uint8_t *)t->vals[i];
	tag->vallen = (uint32_t)strlen(t->vals[i]);
}

/* The answer to _serf_conflict: serf's Member for the named node, or nil. */
static void answer_conflict(struct peer *p, const struct msg_query *q)
{
	char name[PEER_NAME_MAX + 1];
	struct tag_list tags;
	const struct node *n;
	struct msg_member m;
	struct wbuf w;

	if (q->payloadlen > PEER_NAME_MAX || memchr(q->payload, 0, q->payloadlen))
		return;
	if (q->payloadlen)
		memcpy(name, q->payload, q->payloadlen);
	name[q->payloadlen] = '\0';
	if (strcmp(name, p->cfg.name) == 0)
		return; /* serf does not answer about itself */
	n = members_find(p, name);
	wbuf_init(&w, QUERY_RESPONSE_MAX);
	if (n == NULL) {
		wbuf_byte(&w, (uint8_t)DESC_MEMBER.type);
		mp_put_nil(&w); /* a nil *Member */
	} else {
		memset(&m, 0, sizeof(m));
		snprintf(m.name, sizeof(m.name), "%s", n->name);
		m.addr = n->addr;
		m.port = n->port;
		m.tags.n = (uint32_t)tags_decode(n->meta, n->metalen, tags.keys, tags.vals, TAGS_MAX);
		m.tags.item = tag_item;
		m.tags.ctx = &tags;
		m.status = n->state == STATE_LEFT ? MEMBER_LEFT
			   : n->state == STATE_DEAD ? MEMBER_FAILED
						    : MEMBER_ALIVE;
		memcpy(m.vsn, n->vsn, 6);
		wire_encode(&DESC_MEMBER, &w, &m);
	}
	if (!w.overflow)
		respond(p, q, 0, w.p, w.len);
	else
		p->stats.queries_dropped++;
	wbuf_free(&w);
}

struct key_list {
	char text[KEYRING_MAX][48];
};

static void key_item(void *ctx, uint32_t i, void *elem)
{
	const struct key_list *k = ctx;
	struct msg_string *s = elem;

	s->p = (const uint8_t *)k->text[i];
	s->len = (uint32_t)strlen(k->text[i]);
}

/* nodeKeyResponse {Result, Message, Keys, PrimaryKey}; list-keys gives the
 * keys, cut to fit serf's response limit as serf cuts them. */
static void answer_key(struct peer *p, const struct msg_query *q, int ok, const char *message,
		       int list)
{
	struct key_list keys;
	char msg[ERR_LEN + 64];
	const struct keyring *kr = keyring_ring(p);
	int nkeys = list && ok && kr != NULL ? kr->n : 0;

	snprintf(msg, sizeof(msg), "%s", message);
	for (int i = 0; i < nkeys; i++)
		keyring_key_text(kr, i, keys.text[i]);
	for (int shown = nkeys; shown >= 0; shown--) {
		struct msg_key_response m;
		struct wbuf w, probe;

		memset(&m, 0, sizeof(m));
		m.result = ok;
		m.message = (const uint8_t *)msg;
		m.messagelen = (uint32_t)strlen(msg);
		m.keys.n = (uint32_t)shown;
		m.keys.item = key_item;
		m.keys.ctx = &keys;
		m.primary = (const uint8_t *)(nkeys ? keys.text[0] : "");
		m.primarylen = (uint32_t)strlen((const char *)m.primary);
		wbuf_init(&w, QUERY_RESPONSE_MAX);
		wire_encode(&DESC_KEY_RESPONSE, &w, &m);
		/* The whole response must fit, not just its payload. */
		wbuf_init(&probe, QUERY_RESPONSE_MAX);
		if (!w.overflow)
			encode_response(&probe, p, q, 0, w.p, w.len);
		if (!w.overflow && !probe.overflow) {
			respond(p, q, 0, w.p, w.len);
			wbuf_free(&probe);
			wbuf_free(&w);
			break;
		}
		wbuf_free(&probe);
		wbuf_free(&w);
		snprintf(msg, sizeof(msg), "truncated key list response, showing first %d of %d keys",
			 shown - 1 < 0 ? 0 : shown - 1, nkeys);
		if (shown == 0)
			p->stats.queries_dropped++;
	}
	memset(&keys, 0, sizeof(keys));
}

/* keyRequest {Key}, after its type byte. */
static int decode_key_request(const struct msg_query *q, struct msg_key_request *k)
{
	struct mp_reader r;

	if (q->payloadlen < 1 || q->payload[0] != DESC_KEY_REQUEST.type)
		return -1;
	mp_reader_init(&r, q->payload + 1, q->payloadlen - 1);
	return wire_decode(&DESC_KEY_REQUEST, &r, k);
}

#define KEY_LIST (-1) /* beside enum key_change: list-keys */

/* serf's handleInstallKey, handleUseKey, handleRemoveKey, handleListKeys.
 * A change that cannot be written to the --keyring file is undone and
 * reported as a failure, so the running keys stay what the file says. */
static void answer_key_query(struct peer *p, const struct msg_query *q, int op)
{
	static const char *const verb[] = {"install", "use", "remove"};
	char err[ERR_LEN] = "";
	struct msg_key_request k;
	int rc;

	if (op == KEY_LIST) {
		if (keyring_ring(p) == NULL)
			answer_key(p, q, 0, "Keyring is empty (encryption not enabled)", 1);
		else
			answer_key(p, q, 1, "", 1);
		return;
	}
	if (decode_key_request(q, &k) < 0) {
		p->stats.msgs_bad++;
		answer_key(p, q, 0, "Failed to decode key request", 0);
		return;
	}
	if (keyring_ring(p) == NULL) {
		answer_key(p, q, 0, "No keyring to modify (encryption not enabled)", 0);
		return;
	}
	rc = keyring_change(p, (enum key_change)op, k.key, k.keylen, err);
	if (rc == 1) {
		p->stats.key_changes++;
		log_info("%s-key query: keyring now has %d key%s", verb[op], keyring_ring(p)->n,
			 keyring_ring(p)->n == 1 ? "" : "s");
	} else if (rc < 0) {
		log_warn("%s-key query failed: %s", verb[op], err);
	}
	answer_key(p, q, rc >= 0, rc >= 0 ? "" : err, 0);
}

static void answer_internal(struct peer *p, const struct msg_query *q)
{
	static const struct {
		const char *name;
		int op; /* -3 ping, -2 conflict, KEY_LIST, else enum key_change */
	} known[] = {
		{"ping", -3},	      {"conflict", -2},	       {"install-key", KEY_INSTALL},
		{"use-key", KEY_USE}, {"remove-key", KEY_REMOVE}, {"list-keys", KEY_LIST},
	};
	const uint8_t *name = q->name + strlen(INTERNAL_PREFIX);
	size_t len = q->namelen - strlen(INTERNAL_PREFIX);

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (strlen(known[i].name) != len || memcmp(known[i].name, name, len) != 0)
			continue;
		if (known[i].op == -2)
			answer_conflict(p, q);
		else if (known[i].op >= KEY_LIST)
			answer_key_query(p, q, known[i].op);
		return;
	}
	log_debug("unhandled internal query '%.*s'", (int)len, (const char *)name);
}

/* The query as we pass it on: written again from what we decoded. */
static void query_rebroadcast(struct peer *p, const struct msg_query *q)
{
	struct wbuf w;

	wbuf_init(&w, 1 + QUERY_SIZE_MAX);
	wbuf_byte(&w, MSG_USER);
	wire_encode(&DESC_QUERY, &w, q);
	if (!w.overflow)
		gossip_queue(p, "", w.p, w.len, 0);
	else
		p->stats.queries_dropped++;
	wbuf_free(&w);
}

void query_handle(struct peer *p, const uint8_t *msg, size_t len)
{
	struct msg_query q;

	if (len > QUERY_SIZE_MAX) {
		p->stats.queries_dropped++;
		log_debug("dropped a query of %zu bytes, over serf's limit of %d", len,
			  QUERY_SIZE_MAX);
		return;
	}
	if (len < 1 || query_decode(msg + 1, len - 1, &q) < 0) {
		p->stats.msgs_bad++;
		log_debug("dropped a malformed query");
		return;
	}
	if (!query_accept(p, &q))
		return;
	if (!(q.flags & QUERY_FLAG_NO_BROADCAST))
		query_rebroadcast(p, &q);
	if (!filters_select_us(p, &q)) {
		p->stats.queries_filtered++;
		return;
	}
	if (q.flags & QUERY_FLAG_ACK)
		respond(p, &q, QUERY_FLAG_ACK, (const uint8_t *)"", 0);
	if (q.namelen >= strlen(INTERNAL_PREFIX) &&
	    memcmp(q.name, INTERNAL_PREFIX, strlen(INTERNAL_PREFIX)) == 0)
		answer_internal(p, &q);
}

/* relayHeader {DestAddr {IP, Port, Zone}, DestName} then a query response,
 * which we send on to DestAddr as serf does; only to a member we know by
 * that name and address, and only a response, written again from what we
 * decoded, so a stranger cannot make us send anything else anywhere. */
void query_relay(struct peer *p, const uint8_t *msg, size_t len)
{
	struct mp_reader r;
	struct msg_relay h;
	struct msg_response resp;
	const struct ipbytes *ip;
	struct node *to;
	struct wbuf w;

	if (len > 1 + QUERY_RESPONSE_MAX + 512) {
		p->stats.queries_dropped++;
		return;
	}
	mp_reader_init(&r, msg + 1, len - 1);
	if (wire_decode(&DESC_RELAY, &r, &h) < 0 || wire_validate(&DESC_RELAY, &h) < 0 ||
	    r.off >= r.len || r.p[r.off] != SERF_QUERY_RESPONSE)
		goto bad;
	r.off++;
	if (wire_decode(&DESC_RESPONSE, &r, &resp) < 0 || wire_validate(&DESC_RESPONSE, &resp) < 0)
		goto bad;
	to = members_find(p, h.dest_name);
	ip = &h.dest.ip;
	if (to == NULL || to->port != h.dest.port ||
	    !((ip->len == to->addr.len && memcmp(ip->b, to->addr.b, ip->len) == 0) ||
	      (ip->len == 16 && to->addr.len == 4 && memcmp(ip->b + 12, to->addr.b, 4) == 0 &&
	       memcmp(ip->b, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0))) {
		p->stats.queries_dropped++;
		log_debug("relay for %s: not a member at that address", h.dest_name);
		return;
	}
	wbuf_init(&w, 1 + QUERY_RESPONSE_MAX);
	wbuf_byte(&w, MSG_USER);
	wire_encode(&DESC_RESPONSE, &w, &resp);
	if (!w.overflow) {
		net_send_node(p, to, w.p, w.len);
		p->stats.query_relayed++;
	} else {
		p->stats.queries_dropped++;
	}
	wbuf_free(&w);
	return;
bad:
	p->stats.msgs_bad++;
	log_debug("dropped a malformed relay message");
}
