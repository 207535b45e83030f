#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "wire.h"

/* A name into a C string: NUL bytes and overlong names are refused. */
static int read_name(struct mp_reader *r, char out[PEER_NAME_MAX + 1])
{
	const uint8_t *p;
	uint32_t n;

	if (mp_read_raw(r, &p, &n) < 0)
		return -1;
	if (n > PEER_NAME_MAX || memchr(p, '\0', n) != NULL) {
		r->st = MP_BAD;
		return -1;
	}
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

static int read_ip(struct mp_reader *r, struct ipbytes *ip)
{
	const uint8_t *p;
	uint32_t n;

	if (mp_read_raw(r, &p, &n) < 0)
		return -1;
	if (n != 0 && n != 4 && n != 16) {
		r->st = MP_BAD;
		return -1;
	}
	memcpy(ip->b, p, n);
	ip->len = (uint8_t)n;
	return 0;
}

static int read_u32(struct mp_reader *r, uint32_t *v)
{
	uint64_t x;

	if (mp_read_uint(r, UINT32_MAX, &x) < 0)
		return -1;
	*v = (uint32_t)x;
	return 0;
}

static int read_u16(struct mp_reader *r, uint16_t *v)
{
	uint64_t x;

	if (mp_read_uint(r, UINT16_MAX, &x) < 0)
		return -1;
	*v = (uint16_t)x;
	return 0;
}

/* Vsn is a []uint8, which Go writes as raw bytes; an array is read too. */
static int read_vsn(struct mp_reader *r, uint8_t vsn[6], uint8_t *len)
{
	const uint8_t *p;
	uint32_t n;
	uint64_t v;

	if (r->off < r->len && ((r->p[r->off] & 0xf0) == 0x90 || r->p[r->off] == 0xdc)) {
		if (mp_read_array(r, &n) < 0)
			return -1;
		*len = 0;
		for (uint32_t i = 0; i < n; i++) {
			if (mp_read_uint(r, 255, &v) < 0)
				return -1;
			if (i < 6)
				vsn[(*len)++] = (uint8_t)v;
		}
		return 0;
	}
	if (mp_read_raw(r, &p, &n) < 0)
		return -1;
	*len = (uint8_t)(n < 6 ? n : 6);
	memcpy(vsn, p, *len);
	return 0;
}

/* Each decoder walks the map and picks the fields it knows; unknown keys are
 * skipped, so newer peers' additions do not break us. */
#define MAP_LOOP(r)                                                                                \
	uint32_t nkeys_;                                                                           \
	const uint8_t *key;                                                                        \
	uint32_t keylen;                                                                           \
	if (mp_read_map(r, &nkeys_) < 0)                                                           \
		return -1;                                                                         \
	for (uint32_t k_ = 0; k_ < nkeys_; k_++)                                                   \
		if (mp_read_raw(r, &key, &keylen) < 0)                                             \
			return -1;                                                                 \
		else

int wire_decode_ping(struct mp_reader *r, struct msg_ping *m)
{
	memset(m, 0, sizeof(*m));
	MAP_LOOP(r)
	{
		int rc;

		if (mp_key_is(key, keylen, "SeqNo"))
			rc = read_u32(r, &m->seq);
		else if (mp_key_is(key, keylen, "Node"))
			rc = read_name(r, m->node);
		else if (mp_key_is(key, keylen, "SourceAddr"))
			rc = read_ip(r, &m->src);
		else if (mp_key_is(key, keylen, "SourcePort"))
			rc = read_u16(r, &m->src_port);
		else if (mp_key_is(key, keylen, "SourceNode"))
			rc = read_name(r, m->src_node);
		else
			rc = mp_skip(r);
		if (rc < 0)
			return -1;
	}
	return 0;
}

int wire_decode_indirect(struct mp_reader *r, struct msg_indirect *m)
{
	memset(m, 0, sizeof(*m));
	MAP_LOOP(r)
	{
		int rc;

		if (mp_key_is(key, keylen, "SeqNo"))
			rc = read_u32(r, &m->seq);
		else if (mp_key_is(key, keylen, "Target"))
			rc = read_ip(r, &m->target);
		else if (mp_key_is(key, keylen, "Port"))
			rc = read_u16(r, &m->port);
		else if (mp_key_is(key, keylen, "Node"))
			rc = read_name(r, m->node);
		else if (mp_key_is(key, keylen, "Nack"))
			rc = mp_read_bool(r, &m->nack);
		else if (mp_key_is(key, keylen, "SourceAddr"))
			rc = read_ip(r, &m->src);
		else if (mp_key_is(key, keylen, "SourcePort"))
			rc = read_u16(r, &m->src_port);
		else if (mp_key_is(key, keylen, "SourceNode"))
			rc = read_name(r, m->src_node);
		else
			rc = mp_skip(r);
		if (rc < 0)
			return -1;
	}
	return 0;
}

int wire_decode_seq(struct mp_reader *r, uint32_t *seq)
{
	*seq = 0;
	MAP_LOOP(r)
	{
		if ((mp_key_is(key, keylen, "SeqNo") ? read_u32(r, seq) : mp_skip(r)) < 0)
			return -1;
	}
	return 0;
}

int wire_decode_accuse(struct mp_reader *r, struct msg_accuse *m)
{
	memset(m, 0, sizeof(*m));
	MAP_LOOP(r)
	{
		int rc;

		if (mp_key_is(key, keylen, "Incarnation"))
			rc = read_u32(r, &m->inc);
		else if (mp_key_is(key, keylen, "Node"))
			rc = read_name(r, m->node);
		else if (mp_key_is(key, keylen, "From"))
			rc = read_name(r, m->from);
		else
			rc = mp_skip(r);
		if (rc < 0)
			return -1;
	}
	return 0;
}

int wire_decode_alive(struct mp_reader *r, struct msg_alive *m, int pushpull)
{
	memset(m, 0, sizeof(*m));
	MAP_LOOP(r)
	{
		const uint8_t *p;
		uint32_t n;
		uint64_t v;
		int rc;

		if (mp_key_is(key, keylen, "Incarnation")) {
			rc = read_u32(r, &m->inc);
		} else if (mp_key_is(key, keylen, pushpull ? "Name" : "Node")) {
			rc = read_name(r, m->node);
		} else if (mp_key_is(key, keylen, "Addr")) {
			rc = read_ip(r, &m->addr);
		} else if (mp_key_is(key, keylen, "Port")) {
			rc = read_u16(r, &m->port);
		} else if (mp_key_is(key, keylen, "Meta")) {
			rc = mp_read_raw(r, &p, &n);
			if (rc == 0 && n > META_MAX) {
				r->st = MP_BAD;
				return -1;
			}
			if (rc == 0) {
				memcpy(m->meta, p, n);
				m->metalen = (uint16_t)n;
			}
		} else if (mp_key_is(key, keylen, "Vsn")) {
			rc = read_vsn(r, m->vsn, &m->vsnlen);
		} else if (pushpull && mp_key_is(key, keylen, "State")) {
			rc = mp_read_uint(r, STATE_LEFT, &v);
			m->state = (uint8_t)v;
		} else {
			rc = mp_skip(r);
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}

int wire_decode_pp_header(struct mp_reader *r, uint32_t max_nodes, uint32_t max_user,
			  struct msg_pp_header *h)
{
	memset(h, 0, sizeof(*h));
	MAP_LOOP(r)
	{
		uint64_t v;
		int rc;

		if (mp_key_is(key, keylen, "Nodes")) {
			rc = mp_read_uint(r, max_nodes, &v);
			h->nodes = (uint32_t)v;
		} else if (mp_key_is(key, keylen, "UserStateLen")) {
			rc = mp_read_uint(r, max_user, &v);
			h->user_len = (uint32_t)v;
		} else if (mp_key_is(key, keylen, "Join")) {
			rc = mp_read_bool(r, &h->join);
		} else {
			rc = mp_skip(r);
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}

int wire_decode_compress(struct mp_reader *r, const uint8_t **buf, uint32_t *len)
{
	uint64_t algo = 0;
	int have_buf = 0;

	MAP_LOOP(r)
	{
		int rc;

		if (mp_key_is(key, keylen, "Algo")) {
			rc = mp_read_uint(r, 255, &algo);
		} else if (mp_key_is(key, keylen, "Buf")) {
			rc = mp_read_raw(r, buf, len);
			have_buf = 1;
		} else {
			rc = mp_skip(r);
		}
		if (rc < 0)
			return -1;
	}
	if (algo != 0 || !have_buf) { /* 0 is LZW, the only algorithm */
		r->st = MP_BAD;
		return -1;
	}
	return 0;
}

int wire_decode_user_header(struct mp_reader *r, uint32_t max, uint32_t *len)
{
	uint64_t v = 0;

	MAP_LOOP(r)
	{
		if ((mp_key_is(key, keylen, "UserMsgLen") ? mp_read_uint(r, max, &v) : mp_skip(r)) < 0)
			return -1;
	}
	*len = (uint32_t)v;
	return 0;
}

int wire_decode_err(struct mp_reader *r, char *msg, size_t msglen)
{
	snprintf(msg, msglen, "unknown");
	MAP_LOOP(r)
	{
		const uint8_t *p;
		uint32_t n;

		if (mp_key_is(key, keylen, "Error")) {
			if (mp_read_raw(r, &p, &n) < 0)
				return -1;
			snprintf(msg, msglen, "%.*s", (int)(n < 200 ? n : 200), (const char *)p);
		} else if (mp_skip(r) < 0) {
			return -1;
		}
	}
	return 0;
}

static void put_ip(struct wbuf *w, const struct ipbytes *ip)
{
	mp_put_raw(w, ip->b, ip->len);
}

void wire_encode_ping(struct wbuf *w, const struct msg_ping *m)
{
	wbuf_byte(w, MSG_PING);
	mp_put_map(w, 5);
	mp_put_str(w, "SeqNo");
	mp_put_uint(w, m->seq);
	mp_put_str(w, "Node");
	mp_put_str(w, m->node);
	mp_put_str(w, "SourceAddr");
	put_ip(w, &m->src);
	mp_put_str(w, "SourcePort");
	mp_put_uint(w, m->src_port);
	mp_put_str(w, "SourceNode");
	mp_put_str(w, m->src_node);
}

void wire_encode_indirect(struct wbuf *w, const struct msg_indirect *m)
{
	wbuf_byte(w, MSG_INDIRECT_PING);
	mp_put_map(w, 8);
	mp_put_str(w, "SeqNo");
	mp_put_uint(w, m->seq);
	mp_put_str(w, "Target");
	put_ip(w, &m->target);
	mp_put_str(w, "Port");
	mp_put_uint(w, m->port);
	mp_put_str(w, "Node");
	mp_put_str(w, m->node);
	mp_put_str(w, "Nack");
	mp_put_bool(w, m->nack);
	mp_put_str(w, "SourceAddr");
	put_ip(w, &m->src);
	mp_put_str(w, "SourcePort");
	mp_put_uint(w, m->src_port);
	mp_put_str(w, "SourceNode");
	mp_put_str(w, m->src_node);
}

void wire_encode_ack(struct wbuf *w, uint32_t seq)
{
	wbuf_byte(w, MSG_ACK);
	mp_put_map(w, 2);
	mp_put_str(w, "SeqNo");
	mp_put_uint(w, seq);
	mp_put_str(w, "Payload");
	mp_put_raw(w, "", 0);
}

void wire_encode_nack(struct wbuf *w, uint32_t seq)
{
	wbuf_byte(w, MSG_NACK);
	mp_put_map(w, 1);
	mp_put_str(w, "SeqNo");
	mp_put_uint(w, seq);
}

void wire_encode_accuse(struct wbuf *w, enum msg_type type, const struct msg_accuse *m)
{
	wbuf_byte(w, (uint8_t)type);
	mp_put_map(w, 3);
	mp_put_str(w, "Incarnation");
	mp_put_uint(w, m->inc);
	mp_put_str(w, "Node");
	mp_put_str(w, m->node);
	mp_put_str(w, "From");
	mp_put_str(w, m->from);
}

static void put_alive_fields(struct wbuf *w, const struct msg_alive *m, const char *namekey)
{
	mp_put_str(w, namekey);
	mp_put_str(w, m->node);
	mp_put_str(w, "Addr");
	put_ip(w, &m->addr);
	mp_put_str(w, "Port");
	mp_put_uint(w, m->port);
	mp_put_str(w, "Meta");
	mp_put_raw(w, m->meta, m->metalen);
}

void wire_encode_alive(struct wbuf *w, const struct msg_alive *m)
{
	wbuf_byte(w, MSG_ALIVE);
	mp_put_map(w, 6);
	mp_put_str(w, "Incarnation");
	mp_put_uint(w, m->inc);
	put_alive_fields(w, m, "Node");
	mp_put_str(w, "Vsn");
	mp_put_raw(w, m->vsn, m->vsnlen);
}

void wire_encode_pp_header(struct wbuf *w, const struct msg_pp_header *h)
{
	mp_put_map(w, 3);
	mp_put_str(w, "Nodes");
	mp_put_uint(w, h->nodes);
	mp_put_str(w, "UserStateLen");
	mp_put_uint(w, h->user_len);
	mp_put_str(w, "Join");
	mp_put_bool(w, h->join);
}

void wire_encode_node_state(struct wbuf *w, const struct msg_alive *m)
{
	mp_put_map(w, 7);
	put_alive_fields(w, m, "Name");
	mp_put_str(w, "Incarnation");
	mp_put_uint(w, m->inc);
	mp_put_str(w, "State");
	mp_put_uint(w, m->state);
	mp_put_str(w, "Vsn");
	mp_put_raw(w, m->vsn, m->vsnlen);
}

int wire_split_compound(const uint8_t *p, size_t len, const uint8_t **parts, size_t *lens)
{
	size_t n, off, i;

	if (len < 1)
		return -1;
	n = p[0];
	if (len < 1 + 2 * n)
		return -1;
	off = 1 + 2 * n;
	for (i = 0; i < n; i++) {
		size_t l = (size_t)p[1 + 2 * i] << 8 | p[2 + 2 * i];

		if (len - off < l)
			break; /* truncated: keep what came whole */
		parts[i] = p + off;
		lens[i] = l;
		off += l;
	}
	return (int)i;
}

void wire_make_compound(struct wbuf *w, const uint8_t *const *parts, const size_t *lens, size_t n)
{
	wbuf_byte(w, MSG_COMPOUND);
	wbuf_byte(w, (uint8_t)n);
	for (size_t i = 0; i < n; i++) {
		wbuf_byte(w, (uint8_t)(lens[i] >> 8));
		wbuf_byte(w, (uint8_t)lens[i]);
	}
	for (size_t i = 0; i < n; i++)
		wbuf_put(w, parts[i], lens[i]);
}

void wire_crc_header(uint8_t hdr[5], const uint8_t *msg, size_t len)
{
	uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), msg, (uInt)len);

	hdr[0] = MSG_HASCRC;
	hdr[1] = (uint8_t)(crc >> 24);
	hdr[2] = (uint8_t)(crc >> 16);
	hdr[3] = (uint8_t)(crc >> 8);
	hdr[4] = (uint8_t)crc;
}
