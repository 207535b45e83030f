#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lzw.h"
#include "streamdec.h"

void streamdec_init(struct streamdec *d)
{
	memset(d, 0, sizeof(*d));
	wbuf_init(&d->plain, DECOMPRESS_MAX);
}

void streamdec_free(struct streamdec *d)
{
	wbuf_free(&d->plain);
	free(d->nodes);
	d->nodes = NULL;
}

static int fail(struct streamdec *d, const char *why)
{
	d->why = why;
	return -1;
}

/* A value ran short: wait for more, unless it is already longer than such a
 * value may be. */
static int short_value(struct streamdec *d, const struct mp_reader *r, size_t base, size_t max)
{
	if (r->st != MP_SHORT)
		return fail(d, "malformed message");
	if (r->len > max || r->need > max)
		return fail(d, "value over its size limit");
	d->need = base + r->need;
	return 0;
}

static int parse_plain(struct streamdec *d, const uint8_t *p, size_t len, uint32_t max_nodes)
{
	struct mp_reader r;

	if (d->consumed == 0) {
		d->type = p[0];
		d->consumed = 1;
	}
	switch (d->type) {
	case MSG_PUSHPULL:
		if (!d->have_header) {
			mp_reader_init(&r, p + d->consumed, len - d->consumed);
			if (wire_decode(&DESC_PP_HEADER, &r, &d->hdr) < 0)
				return short_value(d, &r, d->consumed, 256);
			if (d->hdr.nodes > max_nodes || d->hdr.user_len > STREAM_MAX)
				return fail(d, "push-pull over its limits");
			d->consumed += r.off;
			d->have_header = 1;
		}
		while (d->nnodes < d->hdr.nodes) {
			size_t avail = len - d->consumed;

			mp_reader_init(&r, p + d->consumed, avail);
			if (d->nnodes == d->nodes_cap) {
				uint32_t cap = d->nodes_cap ? 2 * d->nodes_cap : 16;
				struct msg_alive *nn;

				if (cap > d->hdr.nodes)
					cap = d->hdr.nodes;
				nn = realloc(d->nodes, cap * sizeof(*nn));
				if (nn == NULL)
					return fail(d, "out of memory");
				d->nodes = nn;
				d->nodes_cap = cap;
			}
			if (wire_decode_alive(&r, &d->nodes[d->nnodes], 1) < 0)
				return short_value(d, &r, d->consumed, NODE_STATE_MAX);
			d->consumed += r.off;
			d->nnodes++;
		}
		if (len - d->consumed < d->hdr.user_len) {
			d->need = d->consumed + d->hdr.user_len;
			return 0;
		}
		d->user_off = d->consumed;
		d->user_len = d->hdr.user_len;
		d->consumed += d->hdr.user_len;
		return 1;
	case MSG_PING:
		mp_reader_init(&r, p + 1, len - 1);
		if (wire_decode_ping(&r, &d->ping) < 0)
			return short_value(d, &r, 1, 2048);
		return 1;
	case MSG_ACK:
		mp_reader_init(&r, p + 1, len - 1);
		if (wire_decode(&DESC_ACK, &r, &d->ack) < 0)
			return short_value(d, &r, 1, 2048);
		return 1;
	case MSG_ERR:
		mp_reader_init(&r, p + 1, len - 1);
	{
		struct msg_err e;

		if (wire_decode(&DESC_ERR, &r, &e) < 0)
			return short_value(d, &r, 1, 2048);
		snprintf(d->errmsg, sizeof(d->errmsg), "%.*s", (int)(e.textlen < 200 ? e.textlen : 200),
			 (const char *)e.text);
		return 1;
	}
	case MSG_USER:
		if (!d->have_header) {
			mp_reader_init(&r, p + 1, len - 1);
			struct msg_user_header h;

			if (wire_decode(&DESC_USER_HEADER, &r, &h) < 0)
				return short_value(d, &r, 1, 256);
			if (h.len > STREAM_MAX)
				return fail(d, "user message over its size limit");
			d->user_len = h.len;
			d->consumed = 1 + r.off;
			d->have_header = 1;
		}
		if (len - d->consumed < d->user_len) {
			d->need = d->consumed + d->user_len;
			return 0;
		}
		d->user_off = d->consumed;
		return 1;
	default:
		return fail(d, "unexpected message type");
	}
}

int streamdec_feed(struct streamdec *d, const uint8_t *buf, size_t len, uint32_t max_nodes)
{
	struct mp_reader r;
	struct msg_compress c;
	int rc;

	if (len == 0 || len < d->need)
		return 0;
	if (len > STREAM_MAX)
		return fail(d, "stream over its size limit");
	if (buf[0] == MSG_ENCRYPT)
		return fail(d, "encrypted stream, and no keyring");
	if (buf[0] == MSG_LABEL)
		return fail(d, "labelled stream");
	if (buf[0] != MSG_COMPRESS) {
		rc = parse_plain(d, buf, len, max_nodes);
		/* What is still missing would pass the limit: no use waiting for it. */
		return rc == 0 && d->need > STREAM_MAX ? fail(d, "stream over its size limit") : rc;
	}

	mp_reader_init(&r, buf + 1, len - 1);
	if (wire_decode(&DESC_COMPRESS, &r, &c) < 0)
		return short_value(d, &r, 1, STREAM_MAX);
	if (c.algo != 0) /* 0 is LZW, the only algorithm */
		return fail(d, "unknown compression");
	d->compressed = 1;
	if (lzw_decode(c.buf, c.buflen, &d->plain) < 0)
		return fail(d, "bad compressed data");
	if (d->plain.len == 0 || d->plain.p[0] == MSG_COMPRESS)
		return fail(d, "bad compressed message");
	d->need = 0;
	rc = parse_plain(d, d->plain.p, d->plain.len, max_nodes);
	return rc == 0 ? fail(d, "truncated compressed message") : rc;
}

const uint8_t *streamdec_user(const struct streamdec *d, const uint8_t *buf)
{
	return (d->compressed ? d->plain.p : buf) + d->user_off;
}
