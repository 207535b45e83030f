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

/* Decoders: 0 on success; -1 with r->st saying short (MP_SHORT) or bad. */
int wire_decode_ping(struct mp_reader *r, struct msg_ping *m);
int wire_decode_indirect(struct mp_reader *r, struct msg_indirect *m);
int wire_decode_seq(struct mp_reader *r, uint32_t *seq); /* ack and nack */
int wire_decode_accuse(struct mp_reader *r, struct msg_accuse *m);
int wire_decode_alive(struct mp_reader *r, struct msg_alive *m, int pushpull);
int wire_decode_pp_header(struct mp_reader *r, uint32_t max_nodes, uint32_t max_user,
			  struct msg_pp_header *h);
int wire_decode_compress(struct mp_reader *r, const uint8_t **buf, uint32_t *len);
int wire_decode_user_header(struct mp_reader *r, uint32_t max, uint32_t *len);
int wire_decode_err(struct mp_reader *r, char *msg, size_t msglen);

/* Encoders append the type byte and the map to w. */
void wire_encode_ping(struct wbuf *w, const struct msg_ping *m);
void wire_encode_indirect(struct wbuf *w, const struct msg_indirect *m);
void wire_encode_ack(struct wbuf *w, uint32_t seq);
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
