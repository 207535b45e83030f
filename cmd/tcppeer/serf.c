/* What serf adds on top of memberlist, as far as membership needs it: tags in
 * Meta (0xFF then a msgpack map), join and leave intents carried in memberlist
 * user messages, serf's Lamport clock, and its push-pull user state. */
#include <string.h>

#include "log.h"
#include "tcppeer.h"

enum serf_type { SERF_LEAVE = 0, SERF_JOIN = 1, SERF_PUSHPULL = 2 };

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

/* messageLeave and messageJoin: {LTime, Node[, Prune]}. */
static int decode_intent(struct mp_reader *r, uint64_t *ltime, char node[PEER_NAME_MAX + 1])
{
	uint32_t nkeys, keylen, nlen;
	const uint8_t *key, *name;

	*ltime = 0;
	node[0] = '\0';
	if (mp_read_map(r, &nkeys) < 0)
		return -1;
	for (uint32_t i = 0; i < nkeys; i++) {
		int rc;

		if (mp_read_raw(r, &key, &keylen) < 0)
			return -1;
		if (mp_key_is(key, keylen, "LTime")) {
			rc = mp_read_uint(r, UINT64_MAX, ltime);
		} else if (mp_key_is(key, keylen, "Node")) {
			rc = mp_read_raw(r, &name, &nlen);
			if (rc == 0 && (nlen > PEER_NAME_MAX || memchr(name, 0, nlen)))
				return -1;
			if (rc == 0) {
				memcpy(node, name, nlen);
				node[nlen] = '\0';
			}
		} else {
			rc = mp_skip(r);
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}

void serf_handle_user(struct peer *p, const uint8_t *msg, size_t len)
{
	struct mp_reader r;
	char node[PEER_NAME_MAX + 1];
	uint64_t ltime;

	if (len < 1)
		return;
	if (msg[0] != SERF_LEAVE && msg[0] != SERF_JOIN)
		return; /* events, queries, key and relay messages: not ours to answer */
	mp_reader_init(&r, msg + 1, len - 1);
	if (decode_intent(&r, &ltime, node) < 0) {
		p->stats.msgs_bad++;
		log_debug("dropped a malformed serf intent");
		return;
	}
	serf_witness(p, ltime);
	/* A stale leave intent about us, while we stay: say we are here. */
	if (msg[0] == SERF_LEAVE && strcmp(node, p->cfg.name) == 0 && !p->leaving &&
	    ltime > p->join_ltime)
		serf_join_intent(p);
}

static void encode_intent(struct peer *p, struct wbuf *w, enum serf_type type, uint64_t ltime)
{
	wbuf_byte(w, MSG_USER);
	wbuf_byte(w, (uint8_t)type);
	mp_put_map(w, type == SERF_LEAVE ? 3 : 2);
	mp_put_str(w, "LTime");
	mp_put_uint(w, ltime);
	mp_put_str(w, "Node");
	mp_put_str(w, p->cfg.name);
	if (type == SERF_LEAVE) {
		mp_put_str(w, "Prune");
		mp_put_bool(w, 0);
	}
}

void serf_join_intent(struct peer *p)
{
	struct wbuf w;

	p->join_ltime = ++p->ltime;
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

/* messagePushPull with our clock and our own status time; no events. */
void serf_local_state(struct peer *p, struct wbuf *w)
{
	wbuf_byte(w, SERF_PUSHPULL);
	mp_put_map(w, 6);
	mp_put_str(w, "LTime");
	mp_put_uint(w, p->ltime);
	mp_put_str(w, "StatusLTimes");
	mp_put_map(w, 1);
	mp_put_str(w, p->cfg.name);
	mp_put_uint(w, p->join_ltime);
	mp_put_str(w, "LeftMembers");
	mp_put_array(w, 0);
	mp_put_str(w, "EventLTime");
	mp_put_uint(w, 0);
	mp_put_str(w, "Events");
	mp_put_array(w, 0);
	mp_put_str(w, "QueryLTime");
	mp_put_uint(w, 0);
}

/* Only the clocks matter to us: our next intent must be newer than any
 * status time the cluster holds. */
void serf_merge_state(struct peer *p, const uint8_t *buf, size_t len)
{
	struct mp_reader r;
	uint32_t nkeys, keylen, n;
	const uint8_t *key;
	uint64_t v;

	if (len < 1 || buf[0] != SERF_PUSHPULL)
		return;
	mp_reader_init(&r, buf + 1, len - 1);
	if (mp_read_map(&r, &nkeys) < 0)
		goto bad;
	for (uint32_t i = 0; i < nkeys; i++) {
		if (mp_read_raw(&r, &key, &keylen) < 0)
			goto bad;
		if (mp_key_is(key, keylen, "LTime")) {
			if (mp_read_uint(&r, UINT64_MAX, &v) < 0)
				goto bad;
			if (v > 0)
				serf_witness(p, v - 1);
		} else if (mp_key_is(key, keylen, "StatusLTimes")) {
			if (mp_read_map(&r, &n) < 0)
				goto bad;
			for (uint32_t j = 0; j < n; j++) {
				if (mp_skip(&r) < 0 || mp_read_uint(&r, UINT64_MAX, &v) < 0)
					goto bad;
				serf_witness(p, v);
			}
		} else if (mp_skip(&r) < 0) {
			goto bad;
		}
	}
	return;
bad:
	p->stats.msgs_bad++;
	log_debug("dropped malformed serf push-pull state");
}
