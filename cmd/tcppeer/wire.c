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

#define F(st, key, type, member) {key, type, offsetof(st, member), 0, 0, NULL, 0}
#define FL(st, key, type, member, lenmember, max)                                                  \
	{key, type, offsetof(st, member), offsetof(st, lenmember), max, NULL, 0}
#define FS(st, key, member, desc) {key, FT_STRUCT, offsetof(st, member), 0, 0, &desc, 0}
#define FLIST(st, key, member, elem, max, flags)                                                   \
	{key, FT_LIST, offsetof(st, member), 0, max, &elem, flags}
#define DESC(var, label, typebyte, st, table, check)                                               \
	const struct msg_desc var = {label, typebyte, table, sizeof(table) / sizeof(table[0]),     \
				     sizeof(st), check, FORM_MAP, NULL, 0, 0}
/* A kind written otherwise than as a map (see enum desc_form). */
#define DESC_FORM(var, label, typebyte, st, table, form_)                                          \
	const struct msg_desc var = {label, typebyte, table, sizeof(table) / sizeof(table[0]),     \
				     sizeof(st), NULL, form_, NULL, 0, 0}

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

/* A string of a list ([]string, or [][]byte). */
static const struct field string_fields[] = {
	FL(struct msg_string, "", FT_REF, p, len, 65536),
};
static DESC_FORM(DESC_STRING, "string", -1, struct msg_string, string_fields, FORM_VALUE);

/* serf's query filters: [][]byte, each a filter type byte then msgpack:
 * 0, a node filter ([]string), or 1, a tag filter ({Tag, Expr}). */
static const struct field filter_node_fields[] = {
	FLIST(struct msg_filter, "", nodes, DESC_STRING, 65536, 0),
};
static DESC_FORM(DESC_FILTER_NODE, "node filter", -1, struct msg_filter, filter_node_fields,
		 FORM_VALUE);

static const struct field filter_tag_fields[] = {
	FL(struct msg_filter, "Tag", FT_REF, tag, taglen, 65536),
	FL(struct msg_filter, "Expr", FT_REF, expr, exprlen, 65536),
};
static DESC(DESC_FILTER_TAG, "tag filter", -1, struct msg_filter, filter_tag_fields, NULL);

static const struct msg_desc *const filter_variants[] = {
	[FILTER_NODE] = &DESC_FILTER_NODE,
	[FILTER_TAG] = &DESC_FILTER_TAG,
};
const struct msg_desc DESC_FILTER = {
	"query filter", -1, NULL, 0, sizeof(struct msg_filter), NULL, FORM_TAGGED, filter_variants,
	sizeof(filter_variants) / sizeof(filter_variants[0]), offsetof(struct msg_filter, type)};

static const struct field query_fields[] = {
	F(struct msg_query, "LTime", FT_U64, ltime),
	F(struct msg_query, "ID", FT_U32, id),
	F(struct msg_query, "Addr", FT_IP, addr),
	F(struct msg_query, "Port", FT_U16, port),
	F(struct msg_query, "SourceNode", FT_NAME, source),
	FLIST(struct msg_query, "Filters", filters, DESC_FILTER, 65536, WF_NIL),
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

/* serf tags: 0xFF, then a map of string to string. */
static const struct field tag_fields[] = {
	FL(struct msg_tag, "", FT_REF, key, keylen, META_MAX),
	FL(struct msg_tag, "", FT_REF, val, vallen, META_MAX),
};
static DESC_FORM(DESC_TAG, "tag", -1, struct msg_tag, tag_fields, FORM_PAIR);

static const struct field tags_fields[] = {
	FLIST(struct msg_tags, "", tags, DESC_TAG, META_MAX, 0),
};
DESC_FORM(DESC_TAGS, "tags", 0xff, struct msg_tags, tags_fields, FORM_VALUE);

/* serf's push-pull user state (messagePushPull). */
#define SERF_STATE_NAMES_MAX ((uint32_t)10000 * (PEER_NAME_MAX + 16)) /* MEMBERS_MAX names */

static const struct field status_ltime_fields[] = {
	FL(struct msg_status_ltime, "", FT_REF, name, namelen, 65536),
	F(struct msg_status_ltime, "", FT_U64, ltime),
};
static DESC_FORM(DESC_STATUS_LTIME, "status time", -1, struct msg_status_ltime,
		 status_ltime_fields, FORM_PAIR);

static const struct field event_slot_fields[] = {
	F(struct msg_event_slot, "LTime", FT_U64, ltime),
	FLIST(struct msg_event_slot, "Events", events, DESC_PP_EVENT, STREAM_MAX, 0),
};
static DESC(DESC_EVENT_SLOT, "push-pull user events", -1, struct msg_event_slot,
	    event_slot_fields, NULL);

static const struct field serf_state_fields[] = {
	F(struct msg_serf_state, "LTime", FT_U64, ltime),
	FLIST(struct msg_serf_state, "StatusLTimes", status_ltimes, DESC_STATUS_LTIME,
	      SERF_STATE_NAMES_MAX, WF_NIL),
	FLIST(struct msg_serf_state, "LeftMembers", left, DESC_STRING, SERF_STATE_NAMES_MAX, 0),
	F(struct msg_serf_state, "EventLTime", FT_U64, event_ltime),
	FLIST(struct msg_serf_state, "Events", events, DESC_EVENT_SLOT, STREAM_MAX, 0),
	F(struct msg_serf_state, "QueryLTime", FT_U64, query_ltime),
};
DESC(DESC_SERF_STATE, "serf push-pull state", 2, struct msg_serf_state, serf_state_fields, NULL);

/* serf's Member, the answer to _serf_conflict. */
static const struct field member_fields[] = {
	F(struct msg_member, "Name", FT_NAME, name),
	F(struct msg_member, "Addr", FT_IP, addr),
	F(struct msg_member, "Port", FT_U16, port),
	FLIST(struct msg_member, "Tags", tags, DESC_TAG, 65536, WF_NIL),
	F(struct msg_member, "Status", FT_U8, status),
	F(struct msg_member, "ProtocolMin", FT_U8, vsn[0]),
	F(struct msg_member, "ProtocolMax", FT_U8, vsn[1]),
	F(struct msg_member, "ProtocolCur", FT_U8, vsn[2]),
	F(struct msg_member, "DelegateMin", FT_U8, vsn[3]),
	F(struct msg_member, "DelegateMax", FT_U8, vsn[4]),
	F(struct msg_member, "DelegateCur", FT_U8, vsn[5]),
};
DESC(DESC_MEMBER, "conflict response", 6, struct msg_member, member_fields, NULL);

/* serf's keyRequest and nodeKeyResponse. */
static const struct field key_request_fields[] = {
	FL(struct msg_key_request, "Key", FT_REF, key, keylen, 65536),
};
DESC(DESC_KEY_REQUEST, "key request", 7, struct msg_key_request, key_request_fields, NULL);

static const struct field key_response_fields[] = {
	F(struct msg_key_response, "Result", FT_BOOL, result),
	FL(struct msg_key_response, "Message", FT_REF, message, messagelen, 65536),
	FLIST(struct msg_key_response, "Keys", keys, DESC_STRING, 65536, 0),
	FL(struct msg_key_response, "PrimaryKey", FT_REF, primary, primarylen, 65536),
};
DESC(DESC_KEY_RESPONSE, "key response", 8, struct msg_key_response, key_response_fields, NULL);

const struct msg_desc *const WIRE_KINDS[] = {
	&DESC_PING,	   &DESC_INDIRECT, &DESC_ACK,	  &DESC_NACK,	    &DESC_SUSPECT,
	&DESC_DEAD,	   &DESC_ALIVE,	   &DESC_PP_HEADER, &DESC_NODE_STATE, &DESC_COMPRESS,
	&DESC_USER_HEADER, &DESC_ERR,	   &DESC_JOIN,	  &DESC_LEAVE,	    &DESC_EVENT,
	&DESC_PP_EVENT,	   &DESC_QUERY,	   &DESC_RESPONSE, &DESC_RELAY,	    &DESC_COORD,
	&DESC_TAGS,	   &DESC_SERF_STATE, &DESC_MEMBER, &DESC_KEY_REQUEST, &DESC_KEY_RESPONSE,
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

typedef const uint8_t *cbytes;
#define AT(msg, off, type) ((type *)((char *)(msg) + (off)))
#define CAT(msg, off, type) ((const type *)((const char *)(msg) + (off)))

/* Room for one element of a list. */
union elem_buf {
	max_align_t align;
	uint8_t b[WIRE_ELEM_MAX];
};

/* A message before decoding: zero, byte fields empty (not NULL), lists
 * knowing their element kind. */
static void msg_init(const struct msg_desc *d, void *msg)
{
	memset(msg, 0, d->size);
	for (size_t i = 0; i < d->nfields; i++) {
		const struct field *f = &d->fields[i];

		if (f->type == FT_REF)
			*AT(msg, f->off, const uint8_t *) = (const uint8_t *)"";
		else if (f->type == FT_LIST)
			AT(msg, f->off, struct wire_list)->elem = f->sub;
	}
}

static int is_nil(const struct mp_reader *r)
{
	return r->off < r->len && r->p[r->off] == 0xc0;
}

/* One element of a list; a nil one (Go's nil pointer) is the zero message. */
static int read_elem(const struct msg_desc *d, struct mp_reader *r, void *out)
{
	if (d->size > WIRE_ELEM_MAX)
		return bad(r);
	if (d->form == FORM_MAP && is_nil(r)) {
		r->off++;
		msg_init(d, out);
		return 0;
	}
	return wire_decode(d, r, out);
}

/* A list's header: its element count; nil (when taken) as none. */
static int read_list_header(const struct msg_desc *elem, unsigned flags, struct mp_reader *r,
			    uint32_t *n)
{
	if (elem->form != FORM_PAIR)
		return mp_read_array(r, n); /* takes nil */
	if ((flags & WF_NIL) && is_nil(r)) {
		r->off++;
		*n = 0;
		return 0;
	}
	return mp_read_map(r, n);
}

static int read_list(const struct field *f, struct mp_reader *r, struct wire_list *l)
{
	union elem_buf tmp;
	size_t off = r->off;
	uint32_t n;

	if (read_list_header(f->sub, f->flags, r, &n) < 0)
		return -1;
	for (uint32_t i = 0; i < n; i++)
		if (read_elem(f->sub, r, tmp.b) < 0)
			return -1;
	if (r->off - off > f->max)
		return bad(r);
	memset(l, 0, sizeof(*l));
	l->elem = f->sub;
	l->raw = r->p + off;
	l->rawlen = (uint32_t)(r->off - off);
	l->n = n;
	return 0;
}

void wire_iter_init(struct wire_iter *it, const struct wire_list *l)
{
	uint32_t n = 0;

	it->l = l;
	it->i = 0;
	it->left = 0;
	mp_reader_init(&it->r, l->raw != NULL ? l->raw : (const uint8_t *)"", l->raw ? l->rawlen : 0);
	if (l->item != NULL)
		it->left = l->n;
	else if (l->raw != NULL && l->rawlen > 0 &&
		 read_list_header(l->elem, WF_NIL, &it->r, &n) == 0)
		it->left = n;
}

int wire_iter_next(struct wire_iter *it, void *elem)
{
	const struct wire_list *l = it->l;

	if (it->left == 0)
		return 0;
	it->left--;
	if (l->item != NULL) {
		msg_init(l->elem, elem);
		l->item(l->ctx, it->i++, elem);
		return 1;
	}
	it->i++;
	return read_elem(l->elem, &it->r, elem) < 0 ? -1 : 1;
}

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
	case FT_LIST:
		return read_list(f, r, AT(msg, f->off, struct wire_list));
	}
	return bad(r);
}

/* [tag byte][the variant's encoding], as one byte string. */
static int read_tagged(const struct msg_desc *d, struct mp_reader *r, void *msg)
{
	struct mp_reader sub;
	const uint8_t *p;
	uint32_t n;

	if (mp_read_raw(r, &p, &n) < 0)
		return -1;
	if (n < 1 || p[0] >= d->nvariants || d->variants[p[0]] == NULL)
		return bad(r);
	mp_reader_init(&sub, p + 1, n - 1);
	if (wire_decode(d->variants[p[0]], &sub, msg) < 0 || sub.off != sub.len)
		return bad(r);
	*AT(msg, d->tag_off, uint8_t) = p[0];
	return 0;
}

int wire_decode(const struct msg_desc *d, struct mp_reader *r, void *msg)
{
	uint32_t nkeys, keylen;
	const uint8_t *key;

	msg_init(d, msg);
	switch (d->form) {
	case FORM_MAP:
		break;
	case FORM_VALUE:
		return read_field(&d->fields[0], r, msg);
	case FORM_PAIR:
		if (read_field(&d->fields[0], r, msg) < 0)
			return -1;
		return read_field(&d->fields[1], r, msg);
	case FORM_TAGGED:
		return read_tagged(d, r, msg);
	}
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

static void write_list(const struct field *f, struct wbuf *w, const struct wire_list *l);

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
	case FT_LIST:
		write_list(f, w, CAT(msg, f->off, struct wire_list));
		return;
	}
}

/* A list ours (item) or as decoded, element by element; with WF_NIL one
 * that came as nil or was never filled is written nil, as Go writes a nil slice. */
static void write_list(const struct field *f, struct wbuf *w, const struct wire_list *l)
{
	union elem_buf tmp;
	struct wire_iter it;
	uint32_t n;

	if (f->sub->size > WIRE_ELEM_MAX) {
		w->overflow = 1;
		return;
	}
	if ((f->flags & WF_NIL) && l->item == NULL &&
	    (l->raw == NULL || l->rawlen == 0 || l->raw[0] == 0xc0)) {
		mp_put_nil(w);
		return;
	}
	n = l->item != NULL || l->raw != NULL ? l->n : 0;
	if (f->sub->form == FORM_PAIR)
		mp_put_map(w, n);
	else
		mp_put_array(w, n);
	if (n == 0)
		return;
	{
		struct wire_list with_elem = *l;

		with_elem.elem = f->sub;
		wire_iter_init(&it, &with_elem);
		while (wire_iter_next(&it, tmp.b) == 1)
			wire_encode(f->sub, w, tmp.b);
	}
}

void wire_encode(const struct msg_desc *d, struct wbuf *w, const void *msg)
{
	if (d->type >= 0)
		wbuf_byte(w, (uint8_t)d->type);
	switch (d->form) {
	case FORM_MAP:
		break;
	case FORM_VALUE:
		write_field(&d->fields[0], w, msg);
		return;
	case FORM_PAIR:
		write_field(&d->fields[0], w, msg);
		write_field(&d->fields[1], w, msg);
		return;
	case FORM_TAGGED: {
		uint8_t tag = *CAT(msg, d->tag_off, uint8_t);
		struct wbuf v;

		if (tag >= d->nvariants || d->variants[tag] == NULL) {
			w->overflow = 1;
			return;
		}
		wbuf_init(&v, w->max);
		wbuf_byte(&v, tag);
		wire_encode(d->variants[tag], &v, msg);
		if (v.overflow)
			w->overflow = 1;
		else
			mp_put_raw(w, v.p, v.len);
		wbuf_free(&v);
		return;
	}
	}
	mp_put_map(w, (uint32_t)d->nfields);
	for (size_t i = 0; i < d->nfields; i++) {
		mp_put_str(w, d->fields[i].key);
		write_field(&d->fields[i], w, msg);
	}
}

/* Two lists the same once written as we write them. */
static int lists_equal(const struct field *f, const struct wire_list *a, const struct wire_list *b)
{
	struct wbuf x, y;
	int same;

	wbuf_init(&x, STREAM_MAX);
	wbuf_init(&y, STREAM_MAX);
	write_list(f, &x, a);
	write_list(f, &y, b);
	same = !x.overflow && !y.overflow && x.len == y.len && memcmp(x.p, y.p, x.len) == 0;
	wbuf_free(&x);
	wbuf_free(&y);
	return same;
}

int wire_equal(const struct msg_desc *d, const void *a, const void *b)
{
	if (d->form == FORM_TAGGED) {
		uint8_t tag = *CAT(a, d->tag_off, uint8_t);

		return tag == *CAT(b, d->tag_off, uint8_t) && tag < d->nvariants &&
		       d->variants[tag] != NULL && wire_equal(d->variants[tag], a, b);
	}
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
		case FT_LIST:
			if (!lists_equal(f, CAT(a, f->off, struct wire_list),
					 CAT(b, f->off, struct wire_list)))
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
	struct msg_tags t;
	struct wbuf w;
	int rc = -1;

	if (len > META_MAX)
		return -1;
	if (len == 0 || meta[0] != DESC_TAGS.type) { /* the old single role tag: any bytes */
		memmove(out, meta, len);
		*outlen = (uint16_t)len;
		return 0;
	}
	mp_reader_init(&r, meta + 1, len - 1);
	if (wire_decode(&DESC_TAGS, &r, &t) < 0 || r.off != r.len)
		return -1;
	wbuf_init(&w, META_MAX);
	wire_encode(&DESC_TAGS, &w, &t);
	if (!w.overflow) {
		memmove(out, w.p, w.len);
		*outlen = (uint16_t)w.len;
		rc = 0;
	}
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
