/* Decoding one message from a memberlist TCP stream. The stream has no outer
 * length, so the decoder is fed the whole buffer received so far and resumes
 * after the last complete value: each byte is parsed a bounded number of
 * times however the peer slices its writes. */
#ifndef TCPPEER_STREAMDEC_H
#define TCPPEER_STREAMDEC_H

#include <stddef.h>
#include <stdint.h>

#include "mp.h"
#include "wire.h"

struct streamdec {
	uint8_t type;        /* the message type, after any compress wrapper */
	size_t need;         /* feed again only once this many bytes are buffered */
	size_t consumed;     /* in the plain message: what is decoded already */
	int compressed;
	struct wbuf plain;   /* the decompressed message, when it came compressed */
	int have_header;
	struct msg_pp_header hdr;
	struct msg_alive *nodes;
	uint32_t nnodes, nodes_cap;
	size_t user_off;     /* push-pull user state or user message: offset and length */
	uint32_t user_len;
	struct msg_ping ping;
	struct msg_seq ack;  /* an ack; its payload points into the buffer fed */
	char errmsg[256];
	const char *why;     /* what was wrong, for the log */
};

void streamdec_init(struct streamdec *d);
void streamdec_free(struct streamdec *d);
/* 1: a whole message is decoded; 0: more bytes are needed; -1: malformed,
 * over a limit or not for us (encrypted, labelled). */
int streamdec_feed(struct streamdec *d, const uint8_t *buf, size_t len, uint32_t max_nodes);
/* The user bytes of a decoded push-pull or user message. */
const uint8_t *streamdec_user(const struct streamdec *d, const uint8_t *buf);

#endif
