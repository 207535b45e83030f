/* The message tables and the one decoder and encoder that read them. A kind
 * is a Go struct of memberlist or serf: go-msgpack writes it as a map keyed
 * by field name, in field order, strings and byte slices as the legacy raw
 * family. See PROTOCOL-NOTES.md and wire.h. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "wire.h"

/* ------------------------------------------------------------------------ */
/* The tables */

#define F(st, key, type, member) {key, type, offsetof(st, member), 0, 0, NULL}
#define FL(st, key, type, member, lenmember, max)                                                  \
	{key, type, offsetof(st, member), offsetof(st, lenmember), max, NULL}
#define FS(st, key, member, desc) {key, FT_STRUCT, offsetof(st, member), 0, 0, &desc}
#define DESC(var, label, typebyte, st, table, check)                                               \
	const struct msg_desc var = {label, typebyte, table, sizeof(table) / sizeof(table[0]),     \
				     sizeof(st), check}

static int valid_accuse(void *msg);
static int valid_alive(void *msg);
static int valid_node_state(void *msg);
static int valid_intent(void *msg);
static int valid_event(void *msg);
static int valid_pp_event(void *msg);
static int valid_query(void *msg);
static int valid_response(void *msg);
static int valid_relay(void *msg);
static int valid_coord(void *msg);

static const struct field ping_fields[] = {
	F(struct msg_ping, "SeqNo", FT_U32, seq),
	F(struct msg_ping, "Node", FT_NAME, node),
	F(struct msg_ping, "SourceAddr", FT_IP, src),
	F(struct msg_ping, "SourcePort", FT_U16, src_port),
	F(struct msg_ping, "SourceNode", FT_NAME, src_node),
};
DESC(DESC_PING, "ping", MSG_PING, struct msg_ping, ping_fields, NULL);

static const struct field indirect_fields[] = {
	F(struct msg_indirect, "SeqNo", FT_U32, seq),
	F(struct msg_indirect, "Target", FT_IP, target),
	F(struct msg_indirect, "Port", FT_U16, port),
	F(struct msg_indirect, "Node", FT_NAME, node),
	F(struct msg_indirect, "Nack", FT_BOOL, nack),
	F(struct msg_indirect, "SourceAddr", FT_IP, src),
	F(struct msg_indirect, "SourcePort", FT_U16, src_port),
	F(struct msg_indirect, "SourceNode", FT_NAME, src_node),
};
DESC(DESC_INDIRECT, "indirect ping", MSG_INDIRECT_PING, struct msg_indirect, indirect_fields, NULL);

static const struct field ack_fields[] = {
	F(struct msg_seq, "SeqNo", FT_U32, seq),
	FL(struct msg_seq, "Payload", FT_REF, payload, payloadlen, ACK_PAYLOAD_MAX),
};
DESC(DESC_ACK, "ack", MSG_ACK, struct msg_seq, ack_fields, NULL);

static const struct field nack_fields[] = {
	F(struct msg_seq, "SeqNo", FT_U32, seq),
};
DESC(DESC_NACK, "nack", MSG_NACK, struct msg_seq, nack_fields, NULL);

static const struct field accuse_fields[] = {
	F(struct msg_accuse, "Incarnation", FT_U32, inc),
	F(struct msg_accuse, "Node", FT_NAME, node),
	F(struct msg_accuse, "From", FT_NAME, from),
};
DESC(DESC_SUSPECT, "suspect", MSG_SUSPECT, struct msg_accuse, accuse_fields, valid_accuse);
DESC(DESC_DEAD, "dead", MSG_DEAD, struct msg_accuse, accuse_fields, valid_accuse);

static const struct field alive_fields[] = {
	F(struct msg_alive, "Incarnation", FT_U32, inc),
	F(struct msg_alive, "Node", FT_NAME, node),
	F(struct msg_alive, "Addr", FT_IP, addr),
	F(struct msg_alive, "Port", FT_U16, port),
	FL(struct msg_alive, "Meta", FT_BUF, meta, metalen, META_MAX),
	FL(struct msg_alive, "Vsn", FT_VSN, vsn, vsnlen, 6),
};
DESC(DESC_ALIVE, "alive", MSG_ALIVE, struct msg_alive, alive_fields, valid_alive);

static const struct field pp_header_fields[] = {
	F(struct msg_pp_header, "Nodes", FT_U32, nodes),
	F(struct msg_pp_header, "UserStateLen", FT_U32, user_len),
	F(struct msg_pp_header, "Join", FT_BOOL, join),
};
DESC(DESC_PP_HEADER, "push-pull header", -1, struct msg_pp_header, pp_header_fields, NULL);

static const struct field node_state_fields[] = {
	F(struct msg_alive, "Name", FT_NAME, node),
	F(struct msg_alive, "Addr", FT_IP, addr),
	F(struct msg_alive, "Port", FT_U16, port),
	FL(struct msg_alive, "Meta", FT_BUF, meta, metalen, META_MAX),
	F(struct msg_alive, "Incarnation", FT_U32, inc),
	F(struct msg_alive, "State", FT_U8, state),
	FL(struct msg_alive, "Vsn", FT_VSN, vsn, vsnlen, 6),
};
DESC(DESC_NODE_STATE, "push-pull node state", -1, struct msg_alive, node_state_fields,
     valid_node_state);

static const struct field compress_fields[] = {
	F(struct msg_compress, "Algo", FT_U8, algo),
	FL(struct msg_compress, "Buf", FT_REF, buf, buflen, DECOMPRESS_MAX),
};
DESC(DESC_COMPRESS, "compress", MSG_COMPRESS, struct msg_compress, compress_fields, NULL);

static const struct field user_header_fields[] = {
	F(struct msg_user_header, "UserMsgLen", FT_U32, len),
};
DESC(DESC_USER_HEADER, "user message header", -1, struct msg_user_header, user_header_fields,
     NULL);

static const struct field err_fields[] = {
	FL(struct msg_err, "Error", FT_REF, text, textlen, 65536),
};
DESC(DESC_ERR, "error", MSG_ERR, struct msg_err, err_fields, NULL);

/* serf's messages; the type byte is serf's, inside a memberlist user message. */
static const struct field join_fields[] = {
	F(struct msg_intent, "LTime", FT_U64, ltime),
	F(struct msg_intent, "Node", FT_NAME, node),
};
DESC(DESC_JOIN, "join intent", 1, struct msg_intent, join_fields, valid_intent);

static const struct field leave_fields[] = {
	F(struct msg_intent, "LTime", FT_U64, ltime),
	F(struct msg_intent, "Node", FT_NAME, node),
	F(struct msg_intent, "Prune", FT_BOOL, prune),
};
DESC(DESC_LEAVE, "leave intent", 0, struct msg_intent, leave_fields, valid_intent);

#define EVENT_FIELD_MAX 65536 /* a name or payload as decoded; serf's 512 is checked after */

static const struct field event_fields[] = {
	F(struct msg_event, "LTime", FT_U64, ltime),
	FL(struct msg_event, "Name", FT_REF, name, namelen, EVENT_FIELD_MAX),
	FL(struct msg_event, "Payload", FT_REF, payload, payloadlen, EVENT_FIELD_MAX),
	F(struct msg_event, "CC", FT_BOOL, cc),
};
DESC(DESC_EVENT, "user event", 3, struct msg_event, event_fields, valid_event);

static const struct field pp_event_fields[] = {
	FL(struct msg_event, "Name", FT_REF, name, namelen, EVENT_FIELD_MAX),
	FL(struct msg_event, "Payload", FT_REF, payload, payloadlen, EVENT_FIELD_MAX),
};
DESC(DESC_PP_EVENT, "push-pull user event", -1, struct msg_event, pp_event_fields,
     valid_pp_event);

static const struct field query_fields[] = {
	F(struct msg_query, "LTime", FT_U64, ltime),
	F(struct msg_query, "ID", FT_U32, id),
	F(struct msg_query, "Addr", FT_IP, addr),
	F(struct msg_query, "Port", FT_U16, port),
	F(struct msg_query, "SourceNode", FT_NAME, source),
	FL(struct msg_query, "Filters", FT_FILTERS, filters, filterslen, 65536),
	F(struct msg_query, "Flags", FT_U32, flags),
	F(struct msg_query, "RelayFactor", FT_U8, relay_factor),
	F(struct msg_query, "Timeout", FT_I64, timeout),
	FL(struct msg_query, "Name", FT_REF, name, namelen, 65536),
	FL(struct msg_query, "Payload", FT_REF, payload, payloadlen, 65536),
};
DESC(DESC_QUERY, "query", 4, struct msg_query, query_fields, valid_query);

static const struct field response_fields[] = {
	F(struct msg_response, "LTime", FT_U64, ltime),
	F(struct msg_response, "ID", FT_U32, id),
	F(struct msg_response, "From", FT_NAME, from),
	F(struct msg_response, "Flags", FT_U32, flags),
	FL(struct msg_response, "Payload", FT_REF, payload, payloadlen, 65536),
};
DESC(DESC_RESPONSE, "query response", 5, struct msg_response, response_fields, valid_response);

static const struct field udpaddr_fields[] = {
	F(struct msg_udpaddr, "IP", FT_IP, ip),
	F(struct msg_udpaddr, "Port", FT_U16, port),
	F(struct msg_udpaddr, "Zone", FT_STR64, zone),
};
static DESC(DESC_UDPADDR, "address", -1, struct msg_udpaddr, udpaddr_fields, NULL);

static const struct field relay_fields[] = {
	FS(struct msg_relay, "DestAddr", dest, DESC_UDPADDR),
	F(struct msg_relay, "DestName", FT_NAME, dest_name),
};
DESC(DESC_RELAY, "relay header", 9, struct msg_relay, relay_fields, valid_relay);

static const struct field coord_fields[] = {
	FL(struct msg_coord, "Vec", FT_F64VEC, vec, dim, COORD_DIM_MAX),
	F(struct msg_coord, "Error", FT_F64, error),
	F(struct msg_coord, "Adjustment", FT_F64, adjustment),
	F(struct msg_coord, "Height", FT_F64, height),
};
DESC(DESC_COORD, "coordinate", -1, struct msg_coord, coord_fields, valid_coord);

const struct msg_desc *const WIRE_KINDS[] = {
	&DESC_PING,	   &DESC_INDIRECT, &DESC_ACK,	  &DESC_NACK,	    &DESC_SUSPECT,
	&DESC_DEAD,	   &DESC_ALIVE,	   &DESC_PP_HEADER, &DESC_NODE_STATE, &DESC_COMPRESS,
	&DESC_USER_HEADER, &DESC_ERR,	   &DESC_JOIN,	  &DESC_LEAVE,	    &DESC_EVENT,
	&DESC_PP_EVENT,	   &DESC_QUERY,	   &DESC_RESPONSE, &DESC_RELAY,	    &DESC_COORD,
};
const size_t WIRE_NKINDS = sizeof(WIRE_KINDS) / sizeof(WIRE_KINDS[0]);

/* ------------------------------------------------------------------------ */
/* Reading one field */

static int bad(struct mp_reader *r)
{
	if (r->st == MP_OK)
		r->st = MP_BAD;
	return -1;
}

static int read_text(struct mp_reader *r, char *out, size_t max)
{
	const uint8_t *p;
	uint32_t n;

	if (mp_read_raw(r, &p, &n) < 0)
		return -1;
	if (n > max || memchr(p, '\0', n) != NULL)
		return bad(r);
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

/* Vsn is a []uint8, which Go writes as raw bytes; an array is read too. */
static int read_vsn(struct mp_reader *r, uint8_t vsn[6], uint8_t *len)
{
	const uint8_t *p;
	uint32_t n;
	uint64_t v;

	if (r->off < r->len && ((r->p[r->off] & 0xf0) == 0x90 || r->p[r->off] == 0xdc ||
				r->p[r->off] == 0xdd)) {
		if (mp_read_array(r, &n) < 0)
			return -1;
		for (uint32_t i = 0; i < n; i++) {
			if (mp_read_uint(r, 255, &v) < 0)
				return -1;
			if (i < 6)
				vsn[i] = (uint8_t)v;
		}
	} else {
		if (mp_read_raw(r, &p, &n) < 0)
			return -1;
		memcpy(vsn, p, n < 6 ? n : 6);
	}
	*len = (uint8_t)(n < 255 ? n : 255);
	return 0;
}

/* A float64 as go-msgpack takes one: float32, float64, an integer or nil. */
static int read_f64(struct mp_reader *r, double *out)
{
	uint8_t b;
	uint64_t v;

	if (r->st != MP_OK)
		return -1;
	if (r->off >= r->len) {
		r->st = MP_SHORT;
		r->need = r->off + 1;
		return -1;
	}
	b = r->p[r->off];
	if (b == 0xca || b == 0xcb) {
		size_t n = b == 0xca ? 4 : 8;

		if (r->len - r->off - 1 < n) {
			r->st = MP_SHORT;
			r->need = r->off + 1 + n;
			return -1;
		}
		v = 0;
		for (size_t i = 0; i < n; i++)
			v = v << 8 | r->p[r->off + 1 + i];
		r->off += 1 + n;
		if (n == 4) {
			uint32_t u = (uint32_t)v;
			float f;

			memcpy(&f, &u, 4);
			*out = f;
		} else {
			memcpy(out, &v, 8);
		}
		return 0;
	}
	if (b >= 0xe0 || (b >= 0xd0 && b <= 0xd3)) {
		int64_t i;

		if (mp_read_int(r, &i) < 0)
			return -1;
		*out = (double)i;
		return 0;
	}
	if (mp_read_uint(r, UINT64_MAX, &v) < 0)
		return -1;
	*out = (double)v;
	return 0;
}

/* serf's query filters: an array of byte strings, each a filter type then
 * msgpack: 0, a node filter ([]string), or 1, a tag filter ({Tag, Expr}). */
struct filter_tag {
	const uint8_t *tag, *expr;
	uint32_t taglen, exprlen;
};

static const struct field filter_tag_fields[] = {
	FL(struct filter_tag, "Tag", FT_REF, tag, taglen, 65536),
	FL(struct filter_tag, "Expr", FT_REF, expr, exprlen, 65536),
};
static DESC(DESC_FILTER_TAG, "tag filter", -1, struct filter_tag, filter_tag_fields, NULL);

/* Walks a filter list; with w, writes it again as we would. 0, or -1. */
static int filters_walk(const uint8_t *p, size_t len, struct wbuf *w)
{
	struct mp_reader r, fr;
	const uint8_t *f, *s;
	uint32_t n, flen, k, slen;

	mp_reader_init(&r, p, len);
	if (mp_read_array(&r, &n) < 0)
		return -1;
	if (w != NULL)
		mp_put_array(w, n);
	for (uint32_t i = 0; i < n; i++) {
		struct wbuf one;

		if (mp_read_raw(&r, &f, &flen) < 0 || flen < 1)
			return -1;
		mp_reader_init(&fr, f + 1, flen - 1);
		wbuf_init(&one, 65536);
		wbuf_byte(&one, f[0]);
		if (f[0] == 0) {
			if (mp_read_array(&fr, &k) < 0)
				goto bad;
			mp_put_array(&one, k);
			for (uint32_t j = 0; j < k; j++) {
				if (mp_read_raw(&fr, &s, &slen) < 0)
					goto bad;
				mp_put_raw(&one, s, slen);
			}
		} else if (f[0] == 1) {
			struct filter_tag t;

			if (wire_decode(&DESC_FILTER_TAG, &fr, &t) < 0)
				goto bad;
			wire_encode(&DESC_FILTER_TAG, &one, &t);
		} else {
			goto bad;
		}
		if (fr.off != fr.len || one.overflow)
			goto bad;
		if (w != NULL)
			mp_put_raw(w, one.p, one.len);
		wbuf_free(&one);
		continue;
bad:
		wbuf_free(&one);
		return -1;
	}
	return r.off == len ? 0 : -1;
}

typedef const uint8_t *cbytes;
#define AT(msg, off, type) ((type *)((char *)(msg) + (off)))
#define CAT(msg, off, type) ((const type *)((const char *)(msg) + (off)))

static int read_field(const struct field *f, struct mp_reader *r, void *msg)
{
	static const uint64_t umax[] = {[FT_U8] = UINT8_MAX, [FT_U16] = UINT16_MAX,
					[FT_U32] = UINT32_MAX, [FT_U64] = UINT64_MAX};
	const uint8_t *p;
	uint32_t n;
	uint64_t v;

	switch (f->type) {
	case FT_U8:
	case FT_U16:
	case FT_U32:
	case FT_U64:
		if (mp_read_uint(r, umax[f->type], &v) < 0)
			return -1;
		if (f->type == FT_U8)
			*AT(msg, f->off, uint8_t) = (uint8_t)v;
		else if (f->type == FT_U16)
			*AT(msg, f->off, uint16_t) = (uint16_t)v;
		else if (f->type == FT_U32)
			*AT(msg, f->off, uint32_t) = (uint32_t)v;
		else
			*AT(msg, f->off, uint64_t) = v;
		return 0;
	case FT_I64:
		return mp_read_int(r, AT(msg, f->off, int64_t));
	case FT_BOOL:
		return mp_read_bool(r, AT(msg, f->off, int));
	case FT_NAME:
		return read_text(r, AT(msg, f->off, char), PEER_NAME_MAX);
	case FT_STR64:
		return read_text(r, AT(msg, f->off, char), 63);
	case FT_IP: {
		struct ipbytes *ip = AT(msg, f->off, struct ipbytes);

		if (mp_read_raw(r, &p, &n) < 0)
			return -1;
		if (n != 0 && n != 4 && n != 16)
			return bad(r);
		memcpy(ip->b, p, n);
		ip->len = (uint8_t)n;
		return 0;
	}
	case FT_BUF:
		if (mp_read_raw(r, &p, &n) < 0)
			return -1;
		if (n > f->max)
			return bad(r);
		memcpy(AT(msg, f->off, uint8_t), p, n);
		*AT(msg, f->len_off, uint16_t) = (uint16_t)n;
		return 0;
	case FT_REF:
		if (mp_read_raw(r, &p, &n) < 0)
			return -1;
		if (n > f->max)
			return bad(r);
		*AT(msg, f->off, const uint8_t *) = p;
		*AT(msg, f->len_off, uint32_t) = n;
		return 0;
	case FT_VSN:
		return read_vsn(r, AT(msg, f->off, uint8_t), AT(msg, f->len_off, uint8_t));
	case FT_F64:
		return read_f64(r, AT(msg, f->off, double));
	case FT_F64VEC: {
		double *vec = AT(msg, f->off, double);

		if (mp_read_array(r, &n) < 0)
			return -1;
		if (n > f->max)
			return bad(r);
		for (uint32_t i = 0; i < n; i++)
			if (read_f64(r, &vec[i]) < 0)
				return -1;
		*AT(msg, f->len_off, uint8_t) = (uint8_t)n;
		return 0;
	}
	case FT_STRUCT:
		return wire_decode(f->sub, r, AT(msg, f->off, void));
	case FT_FILTERS: {
		size_t off = r->off;

		if (mp_skip(r) < 0)
			return -1;
		if (r->off - off > f->max || filters_walk(r->p + off, r->off - off, NULL) < 0)
			return bad(r);
		*AT(msg, f->off, const uint8_t *) = r->p + off;
		*AT(msg, f->len_off, uint32_t) = (uint32_t)(r->off - off);
		return 0;
	}
	}
	return bad(r);
}

int wire_decode(const struct msg_desc *d, struct mp_reader *r, void *msg)
{
	uint32_t nkeys, keylen;
	const uint8_t *key;

	memset(msg, 0, d->size);
	for (size_t i = 0; i < d->nfields; i++) /* absent byte fields are empty, not NULL */
		if (d->fields[i].type == FT_REF || d->fields[i].type == FT_FILTERS)
			*AT(msg, d->fields[i].off, const uint8_t *) = (const uint8_t *)"";
	if (mp_read_map(r, &nkeys) < 0)
		return -1;
	for (uint32_t k = 0; k < nkeys; k++) {
		const struct field *f = NULL;

		if (mp_read_raw(r, &key, &keylen) < 0)
			return -1;
		for (size_t i = 0; i < d->nfields && f == NULL; i++)
			if (mp_key_is(key, keylen, d->fields[i].key))
				f = &d->fields[i];
		if ((f != NULL ? read_field(f, r, msg) : mp_skip(r)) < 0)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Writing */

static void write_field(const struct field *f, struct wbuf *w, const void *msg)
{
	switch (f->type) {
	case FT_U8:
		mp_put_uint(w, *CAT(msg, f->off, uint8_t));
		return;
	case FT_U16:
		mp_put_uint(w, *CAT(msg, f->off, uint16_t));
		return;
	case FT_U32:
		mp_put_uint(w, *CAT(msg, f->off, uint32_t));
		return;
	case FT_U64:
		mp_put_uint(w, *CAT(msg, f->off, uint64_t));
		return;
	case FT_I64:
		mp_put_int(w, *CAT(msg, f->off, int64_t));
		return;
	case FT_BOOL:
		mp_put_bool(w, *CAT(msg, f->off, int));
		return;
	case FT_NAME:
	case FT_STR64:
		mp_put_str(w, CAT(msg, f->off, char));
		return;
	case FT_IP: {
		const struct ipbytes *ip = CAT(msg, f->off, struct ipbytes);

		mp_put_raw(w, ip->b, ip->len);
		return;
	}
	case FT_BUF:
		mp_put_raw(w, CAT(msg, f->off, uint8_t), *CAT(msg, f->len_off, uint16_t));
		return;
	case FT_REF:
		mp_put_raw(w, *CAT(msg, f->off, cbytes), *CAT(msg, f->len_off, uint32_t));
		return;
	case FT_VSN: {
		uint8_t n = *CAT(msg, f->len_off, uint8_t);

		mp_put_raw(w, CAT(msg, f->off, uint8_t), n < 6 ? n : 6);
		return;
	}
	case FT_F64:
		mp_put_double(w, *CAT(msg, f->off, double));
		return;
	case FT_F64VEC: {
		const double *vec = CAT(msg, f->off, double);
		uint8_t n = *CAT(msg, f->len_off, uint8_t);

		mp_put_array(w, n);
		for (uint8_t i = 0; i < n; i++)
			mp_put_double(w, vec[i]);
		return;
	}
	case FT_STRUCT:
		wire_encode(f->sub, w, CAT(msg, f->off, void));
		return;
	case FT_FILTERS: {
		uint32_t len = *CAT(msg, f->len_off, uint32_t);
		struct wbuf tmp;

		wbuf_init(&tmp, 65536);
		if (len > 0 && filters_walk(*CAT(msg, f->off, cbytes), len, &tmp) == 0 &&
		    !tmp.overflow)
			wbuf_put(w, tmp.p, tmp.len);
		else
			mp_put_nil(w); /* Go's nil slice */
		wbuf_free(&tmp);
		return;
	}
	}
}

void wire_encode(const struct msg_desc *d, struct wbuf *w, const void *msg)
{
	if (d->type >= 0)
		wbuf_byte(w, (uint8_t)d->type);
	mp_put_map(w, (uint32_t)d->nfields);
	for (size_t i = 0; i < d->nfields; i++) {
		mp_put_str(w, d->fields[i].key);
		write_field(&d->fields[i], w, msg);
	}
}

/* Two filter lists the same once written as we write them (nil and empty alike). */
static int filters_equal(const uint8_t *a, uint32_t alen, const uint8_t *b, uint32_t blen)
{
	struct wbuf x, y;
	int same;

	wbuf_init(&x, 65536);
	wbuf_init(&y, 65536);
	if (alen > 0)
		filters_walk(a, alen, &x);
	if (blen > 0)
		filters_walk(b, blen, &y);
	if (x.len == 0)
		mp_put_array(&x, 0);
	if (y.len == 0)
		mp_put_array(&y, 0);
	same = x.len == y.len && memcmp(x.p, y.p, x.len) == 0;
	wbuf_free(&x);
	wbuf_free(&y);
	return same;
}

int wire_equal(const struct msg_desc *d, const void *a, const void *b)
{
	for (size_t i = 0; i < d->nfields; i++) {
		const struct field *f = &d->fields[i];
		size_t n;

		switch (f->type) {
		case FT_U8:
			n = 1;
			break;
		case FT_U16:
			n = 2;
			break;
		case FT_U32:
			n = 4;
			break;
		case FT_U64:
		case FT_I64:
			n = 8;
			break;
		case FT_BOOL:
			if (!*CAT(a, f->off, int) != !*CAT(b, f->off, int))
				return 0;
			continue;
		case FT_NAME:
		case FT_STR64:
			if (strcmp(CAT(a, f->off, char), CAT(b, f->off, char)) != 0)
				return 0;
			continue;
		case FT_IP: {
			const struct ipbytes *x = CAT(a, f->off, struct ipbytes),
					     *y = CAT(b, f->off, struct ipbytes);

			if (x->len != y->len || memcmp(x->b, y->b, x->len) != 0)
				return 0;
			continue;
		}
		case FT_BUF:
			n = *CAT(a, f->len_off, uint16_t);
			if (n != *CAT(b, f->len_off, uint16_t) ||
			    memcmp(CAT(a, f->off, uint8_t), CAT(b, f->off, uint8_t), n) != 0)
				return 0;
			continue;
		case FT_FILTERS:
			if (!filters_equal(*CAT(a, f->off, cbytes), *CAT(a, f->len_off, uint32_t),
					   *CAT(b, f->off, cbytes), *CAT(b, f->len_off, uint32_t)))
				return 0;
			continue;
		case FT_REF:
			n = *CAT(a, f->len_off, uint32_t);
			if (n != *CAT(b, f->len_off, uint32_t) ||
			    (n > 0 && memcmp(*CAT(a, f->off, cbytes),
					     *CAT(b, f->off, cbytes), n) != 0))
				return 0;
			continue;
		case FT_VSN:
			n = *CAT(a, f->len_off, uint8_t);
			if (n > 6)
				n = 6;
			if (n != *CAT(b, f->len_off, uint8_t) ||
			    memcmp(CAT(a, f->off, uint8_t), CAT(b, f->off, uint8_t), n) != 0)
				return 0;
			continue;
		case FT_F64:
			n = 8;
			break;
		case FT_F64VEC:
			n = *CAT(a, f->len_off, uint8_t);
			if (n != *CAT(b, f->len_off, uint8_t) ||
			    memcmp(CAT(a, f->off, double), CAT(b, f->off, double), n * 8) != 0)
				return 0;
			continue;
		case FT_STRUCT:
			if (!wire_equal(f->sub, CAT(a, f->off, void), CAT(b, f->off, void)))
				return 0;
			continue;
		default:
			return 0;
		}
		if (memcmp(CAT(a, f->off, char), CAT(b, f->off, char), n) != 0)
			return 0;
	}
	return 1;
}

/* ------------------------------------------------------------------------ */
/* What each kind must hold */

int wire_validate(const struct msg_desc *d, void *msg)
{
	return d->validate == NULL ? 0 : d->validate(msg);
}

int wire_vsn_ok(const uint8_t v[6])
{
	/* memberlist's own check, then the ranges: a member whose current
	 * version we do not speak, or that does not speak ours, makes
	 * memberlist refuse push-pulls with the whole cluster. */
	return v[0] >= 1 && v[0] <= v[2] && v[2] <= v[1] && v[3] <= v[5] && v[5] <= v[4] &&
	       v[0] <= VSN_PCUR && VSN_PCUR <= v[1] && v[2] >= VSN_PMIN && v[2] <= VSN_PMAX &&
	       v[3] <= VSN_DCUR && VSN_DCUR <= v[4] && v[5] >= VSN_DMIN && v[5] <= VSN_DMAX;
}

int wire_tags_normalize(const uint8_t *meta, size_t len, uint8_t *out, uint16_t *outlen)
{
	struct mp_reader r;
	struct wbuf w;
	const uint8_t *k, *v;
	uint32_t n, kl, vl;
	int rc = -1;

	if (len > META_MAX)
		return -1;
	if (len == 0 || meta[0] != 0xff) { /* the old single role tag: any bytes */
		memmove(out, meta, len);
		*outlen = (uint16_t)len;
		return 0;
	}
	mp_reader_init(&r, meta + 1, len - 1);
	wbuf_init(&w, META_MAX);
	wbuf_byte(&w, 0xff);
	if (mp_read_map(&r, &n) < 0)
		goto out;
	mp_put_map(&w, n);
	for (uint32_t i = 0; i < n; i++) {
		if (mp_read_raw(&r, &k, &kl) < 0 || mp_read_raw(&r, &v, &vl) < 0)
			goto out;
		mp_put_raw(&w, k, kl);
		mp_put_raw(&w, v, vl);
	}
	if (r.off != r.len || w.overflow)
		goto out;
	memcpy(out, w.p, w.len);
	*outlen = (uint16_t)w.len;
	rc = 0;
out:
	wbuf_free(&w);
	return rc;
}

static int valid_accuse(void *msg)
{
	const struct msg_accuse *m = msg;

	return m->node[0] != '\0' ? 0 : -1;
}

static int alive_common(struct msg_alive *m)
{
	if (m->node[0] == '\0' || (m->addr.len != 4 && m->addr.len != 16))
		return -1;
	if (m->vsnlen != 6 || !wire_vsn_ok(m->vsn))
		return -1;
	return wire_tags_normalize(m->meta, m->metalen, m->meta, &m->metalen);
}

static int valid_alive(void *msg)
{
	return alive_common(msg);
}

static int valid_node_state(void *msg)
{
	struct msg_alive *m = msg;

	return m->state <= STATE_LEFT ? alive_common(m) : -1;
}

static int valid_intent(void *msg)
{
	const struct msg_intent *m = msg;

	return m->node[0] != '\0' ? 0 : -1;
}

/* serf's UserEventSizeLimit is on name and payload together; its decoder
 * takes any size, but we pass on only what serf would send. */
static int valid_pp_event(void *msg)
{
	const struct msg_event *m = msg;

	return m->namelen > 0 && m->namelen + m->payloadlen <= 512 ? 0 : -1;
}

static int valid_event(void *msg)
{
	return valid_pp_event(msg);
}

static int valid_query(void *msg)
{
	const struct msg_query *m = msg;

	/* An answer needs somewhere to go. */
	if (m->namelen == 0 || (m->addr.len != 4 && m->addr.len != 16) || m->port == 0)
		return -1;
	return 0;
}

static int valid_response(void *msg)
{
	const struct msg_response *m = msg;

	return m->from[0] != '\0' ? 0 : -1;
}

static int valid_relay(void *msg)
{
	const struct msg_relay *m = msg;

	return (m->dest.ip.len == 4 || m->dest.ip.len == 16) && m->dest.port != 0 &&
			       m->dest_name[0] != '\0'
		       ? 0
		       : -1;
}

/* serf's coordinate Client refuses NaN and infinities, and other dimensions. */
static int valid_coord(void *msg)
{
	const struct msg_coord *c = msg;

	if (c->dim != COORD_DIM_MAX)
		return -1;
	for (int i = 0; i < c->dim; i++)
		if (!isfinite(c->vec[i]))
			return -1;
	return isfinite(c->error) && isfinite(c->adjustment) && isfinite(c->height) ? 0 : -1;
}

/* ------------------------------------------------------------------------ */
/* The old entry points */

int wire_decode_ping(struct mp_reader *r, struct msg_ping *m)
{
	return wire_decode(&DESC_PING, r, m);
}

int wire_decode_indirect(struct mp_reader *r, struct msg_indirect *m)
{
	return wire_decode(&DESC_INDIRECT, r, m);
}

int wire_decode_accuse(struct mp_reader *r, struct msg_accuse *m)
{
	return wire_decode(&DESC_SUSPECT, r, m);
}

int wire_decode_alive(struct mp_reader *r, struct msg_alive *m, int pushpull)
{
	return wire_decode(pushpull ? &DESC_NODE_STATE : &DESC_ALIVE, r, m);
}

void wire_encode_ping(struct wbuf *w, const struct msg_ping *m)
{
	wire_encode(&DESC_PING, w, m);
}

void wire_encode_indirect(struct wbuf *w, const struct msg_indirect *m)
{
	wire_encode(&DESC_INDIRECT, w, m);
}

void wire_encode_ack(struct wbuf *w, uint32_t seq, const uint8_t *payload, size_t len)
{
	struct msg_seq m = {.seq = seq, .payload = payload, .payloadlen = (uint32_t)len};

	if (m.payload == NULL)
		m.payload = (const uint8_t *)"";
	wire_encode(&DESC_ACK, w, &m);
}

void wire_encode_nack(struct wbuf *w, uint32_t seq)
{
	struct msg_seq m = {.seq = seq};

	wire_encode(&DESC_NACK, w, &m);
}

void wire_encode_accuse(struct wbuf *w, enum msg_type type, const struct msg_accuse *m)
{
	wire_encode(type == MSG_DEAD ? &DESC_DEAD : &DESC_SUSPECT, w, m);
}

void wire_encode_alive(struct wbuf *w, const struct msg_alive *m)
{
	wire_encode(&DESC_ALIVE, w, m);
}

void wire_encode_pp_header(struct wbuf *w, const struct msg_pp_header *h)
{
	wire_encode(&DESC_PP_HEADER, w, h);
}

void wire_encode_node_state(struct wbuf *w, const struct msg_alive *m)
{
	wire_encode(&DESC_NODE_STATE, w, m);
}

/* ------------------------------------------------------------------------ */
/* Framing */

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
