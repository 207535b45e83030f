/* libFuzzer harness for tcppeer's decoders (make fuzz). The first byte picks
 * the target; the rest is the input:
 *   0: a UDP packet, through the whole intake of a live node (CRC, compound,
 *      compress, every message type, the member state machine behind them);
 *   1: a TCP stream, decoded whole and again fed in slices, as reads arrive;
 *   2: LZW data alone;
 *   3: a serf Meta (tags) and a serf push-pull state.
 * Nothing is sent: the node has no sockets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include "lzw.h"
#include "streamdec.h"
#include "tcppeer.h"

static struct peer peer;

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
	return 0;
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in from = {.sin_family = AF_INET, .sin_port = htons(7947)};
	struct wbuf out;
	static char keys[TAGS_MAX][128], vals[TAGS_MAX][256];

	if (size < 1)
		return 0;
	from.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	switch (data[0] % 4) {
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
	}
	return 0;
}
