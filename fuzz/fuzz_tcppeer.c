/* libFuzzer harness for tcppeer's decoders (make fuzz). The first byte picks
 * the target; the rest is the input:
 *   0: a UDP packet, through the whole intake of a live node (CRC, compound,
 *      compress, every message type, the member state machine behind them);
 *   1: a TCP stream, decoded whole and again fed in slices, as reads arrive;
 *   2: LZW data alone;
 *   3: a serf Meta (tags) and a serf push-pull state;
 *   4: a UDP packet encrypted with the node's key, then the same bytes as
 *      they are (what no key opens), through the intake of a keyed node;
 *   5: a TCP stream sealed in an encrypted frame, then the bytes as a frame
 *      of their own, through the decryption and the stream decoder;
 *   6: a serf user event (the serf message after its type byte), delivered
 *      and deduplicated, and a user event sent with a fuzzed name;
 *   7: a keyring file;
 *   8: a serf query (the serf message after its type byte), decoded, then
 *      handled by a keyed node (key queries change a copy of its keyring;
 *      no file is written) and by an unkeyed one, and the same bytes as a
 *      relay message;
 *   9: one message of every kind tcppeer reads (the second byte picks the
 *      kind from WIRE_KINDS): decoded, written again and decoded again,
 *      which must give the same message; one that passes its checks must
 *      still pass them once written and read back. What tcppeer passes on
 *      is made this way, so this is the proof that it passes on only what
 *      it read.
 * Nothing is sent: the node has no sockets. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include "lzw.h"
#include "streamdec.h"
#include "tcppeer.h"

static struct peer peer;
/* Two 16-byte keys: the second one opens what the first seals, and back. */
static struct keyring ring;
static const char ring_text[] = "3dvmMbEtQRhRsrJ8MyW5Ig==\n# old\nvzQ2CmH54PHW5Cg0lOvjKA==\n";

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct peer *p = &peer;

	(void)argc;
	(void)argv;
	if (freopen("/dev/null", "w", stdout) == NULL) /* event lines */
		return 0;
	p->loop = ev_default_loop(0);
	p->udp_fd = p->tcp_fd = -1;
	p->cfg.name = "fuzz";
	p->cfg.probe_interval = 1.0;
	p->cfg.probe_timeout = 0.5;
	p->cfg.gossip_interval = 0.2;
	p->cfg.gossip_nodes = 3;
	p->cfg.indirect_checks = 3;
	p->cfg.retransmit_mult = 4;
	p->cfg.suspicion_mult = 4;
	p->cfg.suspicion_max_mult = 6;
	p->cfg.pushpull_interval = 30.0;
	p->cfg.gossip_to_dead = 30.0;
	p->cfg.tcp_timeout = 10.0;
	p->cfg.awareness_max = 8;
	p->self_ip.len = 4;
	p->self_ip.b[0] = 127;
	p->self_ip.b[3] = 1;
	p->self_port = 7946;
	members_self_alive(p);
	if (keyring_parse(ring_text, sizeof(ring_text) - 1, &ring, NULL) < 0)
		abort();
	return 0;
}

static void fuzz_encrypted_packet(const uint8_t *data, size_t size, const struct sockaddr *from,
				  socklen_t fromlen)
{
	static uint8_t sealed[PACKET_MAX + 64];

	keyring_set(&peer, &ring);
	if (size <= PACKET_MAX - keyring_sealed_len(0) &&
	    keyring_seal(&ring, data, size, NULL, 0, sealed) == 0)
		net_handle_packet(&peer, sealed, keyring_sealed_len(size), from, fromlen);
	if (size <= PACKET_MAX)
		net_handle_packet(&peer, data, size, from, fromlen);
	keyring_set(&peer, NULL);
}

static void fuzz_encrypted_stream(const uint8_t *data, size_t size)
{
	struct wbuf framed, plain;
	struct streamdec d;
	const char *why = NULL;

	wbuf_init(&framed, STREAM_MAX);
	wbuf_init(&plain, STREAM_MAX);
	if (keyring_stream_seal(&ring, data, size, &framed) == 0 &&
	    keyring_stream_open(&ring, framed.p, framed.len, &plain, &why) == 1) {
		if (plain.len != size || (size > 0 && memcmp(plain.p, data, size) != 0))
			abort();
		streamdec_init(&d);
		streamdec_feed(&d, plain.p, plain.len, MEMBERS_MAX);
		streamdec_free(&d);
	}
	keyring_stream_open(&ring, data, size, &plain, &why);
	wbuf_free(&plain);
	wbuf_free(&framed);
}

static void fuzz_user_event(const uint8_t *data, size_t size)
{
	uint8_t msg[4096];
	char err[ERR_LEN];

	if (size + 1 > sizeof(msg))
		return;
	msg[0] = 3; /* serf's messageUserEventType */
	memcpy(msg + 1, data, size);
	serf_handle_user(&peer, msg, size + 1);
	serf_user_event(&peer, data, size < 64 ? size : 64, data, size > 64 ? size - 64 : 0, err);
	/* The broadcast queue is not drained here (no gossip timer): keep it small. */
	if (gossip_queued(&peer) > 256)
		gossip_free(&peer);
}

static void fuzz_query(const uint8_t *data, size_t size)
{
	static uint8_t msg[QUERY_SIZE_MAX + 2];
	struct msg_query q;

	query_decode(data, size, &q);
	if (size + 1 > sizeof(msg))
		return;
	memcpy(msg + 1, data, size);
	msg[0] = 4; /* serf's messageQueryType */
	keyring_set(&peer, &ring); /* key queries change the node's copy */
	serf_handle_user(&peer, msg, size + 1);
	keyring_set(&peer, NULL);
	/* Again, as a new query: the same ID at the next LTime is not a repeat. */
	query_forget(&peer);
	serf_handle_user(&peer, msg, size + 1);
	msg[0] = 9; /* messageRelayType */
	serf_handle_user(&peer, msg, size + 1);
	if (gossip_queued(&peer) > 256)
		gossip_free(&peer);
}

static void fuzz_stream(const uint8_t *data, size_t size)
{
	struct streamdec d;
	size_t off = 0, step = 1;
	int rc;

	streamdec_init(&d);
	rc = streamdec_feed(&d, data, size, MEMBERS_MAX);
	if (rc > 0 && d.type == MSG_PUSHPULL) {
		members_merge(&peer, d.nodes, d.nnodes);
		if (d.user_len)
			serf_merge_state(&peer, streamdec_user(&d, data), d.user_len, 0);
	}
	streamdec_free(&d);

	/* The same bytes arriving in growing slices must give the same answer. */
	streamdec_init(&d);
	do {
		off = off + step > size ? size : off + step;
		step = step * 2 + 1;
		rc = streamdec_feed(&d, data, off, MEMBERS_MAX);
	} while (rc == 0 && off < size);
	streamdec_free(&d);
}

/* Decode, encode, decode: the same message; checked, the same again. */
static void fuzz_roundtrip(const uint8_t *data, size_t size)
{
	static union {
		max_align_t align;
		uint8_t b[8192];
	} first_u, second_u;
	void *first = first_u.b, *second = second_u.b;
	const struct msg_desc *d;
	struct mp_reader r;
	struct wbuf w;
	int pass;

	if (size < 1)
		return;
	d = WIRE_KINDS[data[0] % WIRE_NKINDS];
	if (d->size > sizeof(first_u.b))
		abort();
	mp_reader_init(&r, data + 1, size - 1);
	if (wire_decode(d, &r, first) < 0)
		return;
	for (pass = 0; pass < 2; pass++) {
		wbuf_init(&w, STREAM_MAX);
		wire_encode(d, &w, first);
		if (w.overflow)
			abort();
		mp_reader_init(&r, w.p + (d->type >= 0), w.len - (d->type >= 0));
		if (d->type >= 0 && w.p[0] != d->type)
			abort();
		if (wire_decode(d, &r, second) < 0 || r.off != r.len)
			abort();
		if (!wire_equal(d, first, second))
			abort();
		if (pass == 1 && wire_validate(d, second) < 0)
			abort(); /* checked once, written, read back: must pass again */
		wbuf_free(&w);
		if (pass == 0 && wire_validate(d, first) < 0)
			return;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in from = {.sin_family = AF_INET, .sin_port = htons(7947)};
	struct wbuf out;
	static char keys[TAGS_MAX][128], vals[TAGS_MAX][256];

	if (size < 1)
		return 0;
	from.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	switch (data[0] % 10) {
	case 0:
		if (size - 1 <= PACKET_MAX)
			net_handle_packet(&peer, data + 1, size - 1, (struct sockaddr *)&from,
					  sizeof(from));
		/* Keep the table from growing across runs past what one run can hold. */
		if (peer.nnodes > 512) {
			members_free(&peer);
			gossip_free(&peer);
			members_self_alive(&peer);
		}
		break;
	case 1:
		fuzz_stream(data + 1, size - 1);
		break;
	case 2:
		wbuf_init(&out, PACKET_DECOMPRESS_MAX);
		lzw_decode(data + 1, size - 1, &out);
		wbuf_free(&out);
		break;
	case 3:
		tags_decode(data + 1, size - 1, keys, vals, TAGS_MAX);
		serf_merge_state(&peer, data + 1, size - 1, 1);
		break;
	case 4:
		fuzz_encrypted_packet(data + 1, size - 1, (struct sockaddr *)&from, sizeof(from));
		break;
	case 5:
		fuzz_encrypted_stream(data + 1, size - 1);
		break;
	case 6:
		fuzz_user_event(data + 1, size - 1);
		break;
	case 7: {
		struct keyring kr;

		keyring_parse((const char *)data + 1, size - 1, &kr, NULL);
		break;
	}
	case 8:
		fuzz_query(data + 1, size - 1);
		break;
	case 9:
		fuzz_roundtrip(data + 1, size - 1);
		break;
	}
	return 0;
}
