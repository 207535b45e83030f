/* memberlist messages: the structs of hashicorp/memberlist's net.go, encoded
 * as msgpack maps keyed by the Go field names. See PROTOCOL-NOTES.md. */
#ifndef TCPPEER_WIRE_H
#define TCPPEER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "mp.h"

#define PEER_NAME_MAX 255   /* node names longer than this are refused */
#define META_MAX 512        /* memberlist's MetaMaxSize */
#define PACKET_MAX 65536    /* largest UDP packet read */
#define UDP_SEND_MAX 1400   /* memberlist's UDPBufferSize: what we send in one packet */
#define COMPOUND_MAX 255
#define STREAM_MAX (8u << 20)    /* bytes buffered from one TCP stream */
#define DECOMPRESS_MAX (16u << 20) /* a decompressed stream message */
#define PACKET_DECOMPRESS_MAX (PACKET_MAX * 2)
#define NODE_STATE_MAX 8192      /* one encoded node state in a push-pull */
#define NEST_MAX 4          /* compound/compress wrappers followed inside one packet */

enum msg_type {
	MSG_PING = 0,
	MSG_INDIRECT_PING = 1,
	MSG_ACK = 2,
	MSG_SUSPECT = 3,
	MSG_ALIVE = 4,
	MSG_DEAD = 5,
	MSG_PUSHPULL = 6,
	MSG_COMPOUND = 7,
	MSG_USER = 8,
	MSG_COMPRESS = 9,
	MSG_ENCRYPT = 10,
	MSG_NACK = 11,
	MSG_HASCRC = 12,
	MSG_ERR = 13,
	MSG_LABEL = 244,
};

enum node_state_type { STATE_ALIVE = 0, STATE_SUSPECT = 1, STATE_DEAD = 2, STATE_LEFT = 3 };

/* An IP address as memberlist carries it: 4 or 16 bytes (0: absent). */
struct ipbytes {
	uint8_t b[16];
	uint8_t len;
};

struct msg_desc;

/* A list (or map) of a nested kind. Decoded, it is the msgpack as it came,
 * every element already checked against elem: read it with wire_iter. To
 * write one from our own state, set n, item and ctx instead: item fills
 * element i (asked for in order, once each, in a zeroed element). */
struct wire_list {
	const struct msg_desc *elem;
	const uint8_t *raw;
	uint32_t rawlen, n;
	void (*item)(void *ctx, uint32_t i, void *elem);
	void *ctx;
};

/* A string or byte slice of a list: []string, []byte. */
struct msg_string {
	const uint8_t *p;
	uint32_t len;
};

struct msg_ping {
	uint32_t seq;
	char node[PEER_NAME_MAX + 1];
	struct ipbytes src;
	uint16_t src_port;
	char src_node[PEER_NAME_MAX + 1];
};

struct msg_indirect {
	uint32_t seq;
	struct ipbytes target;
	uint16_t port;
	char node[PEER_NAME_MAX + 1];
	int nack;
	struct ipbytes src;
	uint16_t src_port;
	char src_node[PEER_NAME_MAX + 1];
};

/* suspect and dead share their fields. */
struct msg_accuse {
	uint32_t inc;
	char node[PEER_NAME_MAX + 1];
	char from[PEER_NAME_MAX + 1];
};

/* alive, and a push-pull node state (which adds State). */
struct msg_alive {
	uint32_t inc;
	char node[PEER_NAME_MAX + 1];
	struct ipbytes addr;
	uint16_t port;
	uint8_t meta[META_MAX];
	uint16_t metalen;
	uint8_t vsn[6];
	uint8_t vsnlen;
	uint8_t state; /* push-pull only */
};

struct msg_pp_header {
	uint32_t nodes;
	uint32_t user_len;
	int join;
};

/* An ack's Payload, our ping-reply coordinate or serf's: up to this much. */
#define ACK_PAYLOAD_MAX 1024
#define COORD_DIM_MAX 8 /* serf's coordinate Dimensionality */

struct msg_seq { /* ack (with Payload) and nack */
	uint32_t seq;
	const uint8_t *payload;
	uint32_t payloadlen;
};

struct msg_user_header {
	uint32_t len;
};

struct msg_compress {
	uint8_t algo;
	const uint8_t *buf;
	uint32_t buflen;
};

struct msg_err {
	const uint8_t *text;
	uint32_t textlen;
};

/* serf's messageJoin and messageLeave (Prune: leave only). */
struct msg_intent {
	uint64_t ltime;
	char node[PEER_NAME_MAX + 1];
	int prune;
};

/* serf's messageUserEvent; in a push-pull's event list only Name and Payload. */
struct msg_event {
	uint64_t ltime;
	const uint8_t *name, *payload;
	uint32_t namelen, payloadlen;
	int cc;
};

/* serf's messageQuery; its filters are a list of struct msg_filter. */
struct msg_query {
	uint64_t ltime;
	uint32_t id;
	struct ipbytes addr;
	uint16_t port;
	char source[PEER_NAME_MAX + 1];
	struct wire_list filters;
	uint32_t flags;
	uint8_t relay_factor;
	int64_t timeout; /* Go's time.Duration, nanoseconds */
	const uint8_t *name, *payload;
	uint32_t namelen, payloadlen;
};

/* serf's messageQueryResponse. */
struct msg_response {
	uint64_t ltime;
	uint32_t id;
	char from[PEER_NAME_MAX + 1];
	uint32_t flags;
	const uint8_t *payload;
	uint32_t payloadlen;
};

/* Go's net.UDPAddr, as serf's relay header carries it. */
struct msg_udpaddr {
	struct ipbytes ip;
	uint16_t port;
	char zone[64];
};

/* serf's relayHeader; the response it carries follows it. */
struct msg_relay {
	struct msg_udpaddr dest;
	char dest_name[PEER_NAME_MAX + 1];
};

/* serf's coordinate.Coordinate, as its ping delegate puts it in acks. */
struct msg_coord {
	double vec[COORD_DIM_MAX];
	uint8_t dim;
	double error, adjustment, height;
};

/* serf's query filters: the filter type byte, then a node filter
 * ([]string) or a tag filter ({Tag, Expr}). */
enum { FILTER_NODE = 0, FILTER_TAG = 1 };
struct msg_filter {
	uint8_t type;
	struct wire_list nodes; /* of struct msg_string */
	const uint8_t *tag, *expr;
	uint32_t taglen, exprlen;
};

/* serf tags in Meta: 0xFF, then a map of string to string. */
struct msg_tag {
	const uint8_t *key, *val;
	uint32_t keylen, vallen;
};

struct msg_tags {
	struct wire_list tags; /* of struct msg_tag */
};

/* serf's messagePushPull, its user state in a push-pull. */
struct msg_status_ltime {
	const uint8_t *name;
	uint32_t namelen;
	uint64_t ltime;
};

struct msg_event_slot { /* serf's userEvents: one LTime's events */
	uint64_t ltime;
	struct wire_list events; /* of struct msg_event, Name and Payload */
};

struct msg_serf_state {
	uint64_t ltime;
	struct wire_list status_ltimes; /* map of struct msg_status_ltime */
	struct wire_list left;          /* of struct msg_string */
	uint64_t event_ltime;
	struct wire_list events;        /* of struct msg_event_slot */
	uint64_t query_ltime;
};

/* serf's Member, the answer to a _serf_conflict query. */
struct msg_member {
	char name[PEER_NAME_MAX + 1];
	struct ipbytes addr;
	uint16_t port;
	struct wire_list tags; /* map of struct msg_tag */
	uint8_t status;
	uint8_t vsn[6]; /* ProtocolMin, Max, Cur, DelegateMin, Max, Cur */
};

/* serf's keyRequest and nodeKeyResponse. */
struct msg_key_request {
	const uint8_t *key;
	uint32_t keylen;
};

struct msg_key_response {
	int result;
	const uint8_t *message, *primary;
	uint32_t messagelen, primarylen;
	struct wire_list keys; /* of struct msg_string */
};

/* Every message kind is described once, as a table of its fields (the Go
 * field name, a type, and where the value lives in the C struct); one
 * decoder and one encoder read the tables. Decoding is syntax only: types
 * and sizes as go-msgpack would take them into the Go struct, unknown keys
 * skipped. wire_validate() adds what a kind must hold to be acted on and
 * passed on (an alive's six version bytes, its tags...), and puts fields in
 * the form we write. Whatever tcppeer passes on to others is a message it
 * decoded, validated and encodes again from these tables. */
enum field_type {
	FT_U8 = 1, FT_U16, FT_U32, FT_U64, /* unsigned, range checked */
	FT_I64,                            /* signed */
	FT_BOOL,
	FT_NAME,   /* char[PEER_NAME_MAX + 1]: no NUL byte */
	FT_STR64,  /* char[64]: no NUL byte */
	FT_IP,     /* struct ipbytes: 0, 4 or 16 bytes */
	FT_BUF,    /* bytes copied to uint8_t[max], uint16_t length at len_off */
	FT_REF,    /* bytes left in the input: const uint8_t *, uint32_t length at len_off */
	FT_VSN,    /* uint8_t[6], the length seen (up to 255) as uint8_t at len_off */
	FT_F64,    /* double */
	FT_F64VEC, /* double[max], the count as uint8_t at len_off */
	FT_STRUCT, /* a nested kind described by sub */
	FT_LIST,   /* struct wire_list of sub: a map when sub is FORM_PAIR, else an array;
		    * max bounds its encoded size */
};

/* Field flags. */
#define WF_NIL 1u /* a list: nil when it came as nil or is ours and empty (Go's nil slice);
		   * a map: nil is taken as empty */

struct field {
	const char *key;
	enum field_type type;
	size_t off, len_off;
	uint32_t max;
	const struct msg_desc *sub;
	unsigned flags;
};

/* How a kind is written: a map keyed by field name (Go structs), its one
 * field alone, its two fields as a key and value of a map (FT_LIST
 * elements), or a byte string holding a tag byte then the variant the tag
 * selects (serf's query filters). */
enum desc_form { FORM_MAP = 0, FORM_VALUE, FORM_PAIR, FORM_TAGGED };

struct msg_desc {
	const char *name;
	int type; /* the type byte written before the map, or -1 */
	const struct field *fields;
	size_t nfields, size;
	/* What the kind must hold beyond its syntax; NULL: nothing. */
	int (*validate)(void *msg);
	enum desc_form form;
	/* FORM_TAGGED: the tag byte is at tag_off (uint8_t), variants[tag]
	 * describes the rest; all variants share the C struct. */
	const struct msg_desc *const *variants;
	size_t nvariants, tag_off;
};

extern const struct msg_desc DESC_PING, DESC_INDIRECT, DESC_ACK, DESC_NACK, DESC_SUSPECT,
	DESC_DEAD, DESC_ALIVE, DESC_PP_HEADER, DESC_NODE_STATE, DESC_COMPRESS, DESC_USER_HEADER,
	DESC_ERR, DESC_JOIN, DESC_LEAVE, DESC_EVENT, DESC_PP_EVENT, DESC_QUERY, DESC_RESPONSE,
	DESC_RELAY, DESC_COORD, DESC_FILTER, DESC_TAGS, DESC_SERF_STATE, DESC_MEMBER,
	DESC_KEY_REQUEST, DESC_KEY_RESPONSE;
/* Every table above, for tests that go over all kinds. */
extern const struct msg_desc *const WIRE_KINDS[];
extern const size_t WIRE_NKINDS;

/* 0, or -1 with r->st saying short (MP_SHORT) or malformed. msg is zeroed first. */
int wire_decode(const struct msg_desc *d, struct mp_reader *r, void *msg);
/* Appends the type byte (when the kind has one) and the map. */
void wire_encode(const struct msg_desc *d, struct wbuf *w, const void *msg);
/* 0 when msg may be acted on and passed on, else -1. */
int wire_validate(const struct msg_desc *d, void *msg);
/* 1 when a and b hold the same message (byte fields compared by content). */
int wire_equal(const struct msg_desc *d, const void *a, const void *b);

/* The largest element an FT_LIST may have (struct size). */
#define WIRE_ELEM_MAX 1024

/* Reads a list's elements in order. */
struct wire_iter {
	const struct wire_list *l;
	struct mp_reader r;
	uint32_t i, left;
};
void wire_iter_init(struct wire_iter *it, const struct wire_list *l);
/* 1 with the next element in elem (of l->elem's size), 0 at the end, -1 if malformed. */
int wire_iter_next(struct wire_iter *it, void *elem);

/* serf tags in Meta: 0xFF and a map of string to string, or (serf's old
 * form) any bytes not starting with 0xFF, the value of a "role" tag. Checks
 * meta and writes it in go-msgpack's form to out (META_MAX bytes); -1 when
 * serf could not decode it. */
int wire_tags_normalize(const uint8_t *meta, size_t len, uint8_t *out, uint16_t *outlen);

/* The versions we speak and accept: memberlist's protocol 1..5 at 2 and
 * serf's delegate protocol 2..5 at 4 (see PROTOCOL-NOTES.md). */
#define VSN_PMIN 1
#define VSN_PMAX 5
#define VSN_PCUR 2
#define VSN_DMIN 2
#define VSN_DMAX 5
#define VSN_DCUR 4
int wire_vsn_ok(const uint8_t vsn[6]);

/* The old entry points, thin wrappers over the tables. */
int wire_decode_ping(struct mp_reader *r, struct msg_ping *m);
int wire_decode_indirect(struct mp_reader *r, struct msg_indirect *m);
int wire_decode_accuse(struct mp_reader *r, struct msg_accuse *m);
int wire_decode_alive(struct mp_reader *r, struct msg_alive *m, int pushpull);
void wire_encode_ping(struct wbuf *w, const struct msg_ping *m);
void wire_encode_indirect(struct wbuf *w, const struct msg_indirect *m);
void wire_encode_ack(struct wbuf *w, uint32_t seq, const uint8_t *payload, size_t len);
void wire_encode_nack(struct wbuf *w, uint32_t seq);
void wire_encode_accuse(struct wbuf *w, enum msg_type type, const struct msg_accuse *m);
void wire_encode_alive(struct wbuf *w, const struct msg_alive *m);
void wire_encode_pp_header(struct wbuf *w, const struct msg_pp_header *h);
void wire_encode_node_state(struct wbuf *w, const struct msg_alive *m);

/* Splits a compound body (after the type byte) into at most COMPOUND_MAX
 * parts; trailing parts that are cut off are dropped, as memberlist does.
 * Returns the part count or -1 when the header itself is malformed. */
int wire_split_compound(const uint8_t *p, size_t len, const uint8_t **parts, size_t *lens);

/* Builds a compound message of n parts (each < 64 KiB) into w. */
void wire_make_compound(struct wbuf *w, const uint8_t *const *parts, const size_t *lens, size_t n);

/* Prepends nothing: appends the CRC header (12, crc32 big-endian) for msg. */
void wire_crc_header(uint8_t hdr[5], const uint8_t *msg, size_t len);

#endif
