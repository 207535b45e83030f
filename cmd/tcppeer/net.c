/* UDP: one socket on the bind address, the send path memberlist uses
 * (piggybacked broadcasts in a compound, CRC when the receiver knows it,
 * then encryption with the primary key) and the intake that checks --allow,
 * decrypts, and unwraps CRC, compound and compress with bounded nesting. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "lzw.h"
#include "tcppeer.h"

static void udp_read_cb(struct ev_loop *loop, ev_io *w, int revents);

int net_sockaddr(const struct ipbytes *ip, uint16_t port, struct sockaddr_storage *ss,
		 socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (ip->len == 4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, ip->b, 4);
		*len = sizeof(*sin);
		return 0;
	}
	if (ip->len == 16) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		/* IPv4-mapped addresses go out as IPv4 when our socket is IPv4. */
		if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)ip->b)) {
			struct ipbytes v4 = {.len = 4};

			memcpy(v4.b, ip->b + 12, 4);
			return net_sockaddr(&v4, port, ss, len);
		}
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, ip->b, 16);
		*len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

int net_open(struct peer *p, char *err)
{
	const struct sockaddr *sa = (const struct sockaddr *)&p->cfg.bind.ss;
	char text[ADDR_TEXT_LEN];
	int one = 1, fam = sa->sa_family;

	addr_format(sa, text, sizeof(text));
	p->udp_fd = socket(fam, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->udp_fd < 0)
		return err_set(err, "udp socket: %s", strerror(errno));
	if (bind(p->udp_fd, sa, p->cfg.bind.len) < 0)
		return err_set(err, "bind udp %s: %s", text, strerror(errno));
	/* memberlist asks for 2 MB: bursts (and floods) overflow less. */
	{
		int rcvbuf = 2 * 1024 * 1024;

		setsockopt(p->udp_fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	}
	p->tcp_fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->tcp_fd < 0)
		return err_set(err, "tcp socket: %s", strerror(errno));
	setsockopt(p->tcp_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(p->tcp_fd, sa, p->cfg.bind.len) < 0)
		return err_set(err, "bind tcp %s: %s", text, strerror(errno));
	if (listen(p->tcp_fd, 128) < 0)
		return err_set(err, "listen %s: %s", text, strerror(errno));
	ev_io_init(&p->udp_w, udp_read_cb, p->udp_fd, EV_READ);
	p->udp_w.data = p;
	ev_io_start(p->loop, &p->udp_w);
	ev_io_init(&p->tcp_w, stream_accept_cb, p->tcp_fd, EV_READ);
	p->tcp_w.data = p;
	ev_io_start(p->loop, &p->tcp_w);
	accept_pause_init(&p->tcp_pause, &p->tcp_w, 0.1);
	return 0;
}

void net_close(struct peer *p)
{
	if (p->udp_fd >= 0) {
		ev_io_stop(p->loop, &p->udp_w);
		close(p->udp_fd);
		p->udp_fd = -1;
	}
	if (p->tcp_fd >= 0) {
		ev_io_stop(p->loop, &p->tcp_w);
		accept_pause_stop(p->loop, &p->tcp_pause);
		close(p->tcp_fd);
		p->tcp_fd = -1;
	}
}

void net_sendto(struct peer *p, const struct sockaddr *sa, socklen_t salen, const uint8_t *msg,
		size_t len, int crc)
{
	struct iovec iov[2];
	struct msghdr mh;
	uint8_t hdr[5];
	static uint8_t plain[PACKET_MAX], sealed[PACKET_MAX + 64];

	if (p->udp_fd < 0)
		return;
	if (keyring_ring(p) != NULL) {
		size_t plen = len + (crc ? 5 : 0);

		if (plen > sizeof(plain))
			return;
		if (crc)
			wire_crc_header(plain, msg, len);
		memcpy(plain + (crc ? 5 : 0), msg, len);
		if (keyring_seal(keyring_ring(p), plain, plen, NULL, 0, sealed) < 0) {
			log_warn("encryption failed: packet not sent");
			return;
		}
		msg = sealed;
		len = keyring_sealed_len(plen);
		crc = 0;
	}
	memset(&mh, 0, sizeof(mh));
	mh.msg_name = (void *)sa;
	mh.msg_namelen = salen;
	mh.msg_iov = iov;
	if (crc) {
		wire_crc_header(hdr, msg, len);
		iov[0].iov_base = hdr;
		iov[0].iov_len = sizeof(hdr);
		iov[1].iov_base = (void *)msg;
		iov[1].iov_len = len;
		mh.msg_iovlen = 2;
	} else {
		iov[0].iov_base = (void *)msg;
		iov[0].iov_len = len;
		mh.msg_iovlen = 1;
	}
	if (sendmsg(p->udp_fd, &mh, MSG_DONTWAIT) < 0)
		log_debug("udp send: %s", strerror(errno));
	else
		p->stats.packets_out++;
}

/* What one packet may carry before CRC and encryption, as memberlist counts. */
size_t net_send_max(const struct peer *p)
{
	return UDP_SEND_MAX - (keyring_ring(p) ? keyring_sealed_len(0) : 0);
}

/* One message plus whatever broadcasts fit beside it, as memberlist's sendMsg. */
void net_send_msg(struct peer *p, const struct sockaddr *sa, socklen_t salen, const uint8_t *msg,
		  size_t len, const struct node *to)
{
	const uint8_t *parts[COMPOUND_MAX];
	size_t lens[COMPOUND_MAX], n, avail, off = 0;
	int crc = to != NULL && to->vsn[1] >= 5;
	struct wbuf store, w;

	avail = len + 2 < net_send_max(p) ? net_send_max(p) - len - 2 : 0;
	wbuf_init(&store, UDP_SEND_MAX);
	n = avail > 0 ? gossip_take(p, 2, avail, &store, lens + 1, COMPOUND_MAX - 1) : 0;
	if (n == 0) {
		net_sendto(p, sa, salen, msg, len, crc);
		wbuf_free(&store);
		return;
	}
	parts[0] = msg;
	lens[0] = len;
	for (size_t i = 1; i <= n; i++) {
		parts[i] = store.p + off;
		off += lens[i];
	}
	wbuf_init(&w, PACKET_MAX);
	wire_make_compound(&w, parts, lens, n + 1);
	if (!w.overflow)
		net_sendto(p, sa, salen, w.p, w.len, crc);
	wbuf_free(&w);
	wbuf_free(&store);
}

void net_send_node(struct peer *p, const struct node *n, const uint8_t *msg, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	if (net_sockaddr(&n->addr, n->port, &ss, &sl) == 0)
		net_send_msg(p, (struct sockaddr *)&ss, sl, msg, len, n);
}

static void bad_msg(struct peer *p, const char *what, const struct sockaddr *from)
{
	char text[ADDR_TEXT_LEN];

	p->stats.msgs_bad++;
	log_debug("dropped malformed %s from %s", what, addr_format(from, text, sizeof(text)));
}

static void handle_command(struct peer *p, const uint8_t *buf, size_t len,
			   const struct sockaddr *from, socklen_t fromlen, int depth)
{
	struct mp_reader r;
	uint8_t type;

	if (len < 1) {
		bad_msg(p, "empty message", from);
		return;
	}
	type = buf[0];
	mp_reader_init(&r, buf + 1, len - 1);
	p->stats.msgs_in++;
	switch (type) {
	case MSG_COMPOUND: {
		const uint8_t *parts[COMPOUND_MAX];
		size_t lens[COMPOUND_MAX];
		int n;

		if (depth >= NEST_MAX) {
			bad_msg(p, "nested compound", from);
			return;
		}
		n = wire_split_compound(buf + 1, len - 1, parts, lens);
		if (n < 0) {
			bad_msg(p, "compound", from);
			return;
		}
		for (int i = 0; i < n; i++)
			handle_command(p, parts[i], lens[i], from, fromlen, depth + 1);
		return;
	}
	case MSG_COMPRESS: {
		struct msg_compress c;
		struct wbuf out;

		if (depth >= NEST_MAX) {
			bad_msg(p, "nested compress", from);
			return;
		}
		if (wire_decode(&DESC_COMPRESS, &r, &c) < 0 || c.algo != 0) {
			bad_msg(p, "compress", from);
			return;
		}
		wbuf_init(&out, PACKET_DECOMPRESS_MAX);
		if (lzw_decode(c.buf, c.buflen, &out) < 0) {
			p->stats.decompress_failed++;
			bad_msg(p, "compressed payload", from);
		} else {
			handle_command(p, out.p, out.len, from, fromlen, depth + 1);
		}
		wbuf_free(&out);
		return;
	}
	case MSG_PING: {
		struct msg_ping m;

		if (wire_decode(&DESC_PING, &r, &m) < 0)
			bad_msg(p, "ping", from);
		else if (guard_rate_ok(p, LIMIT_PROBE, from))
			probe_handle_ping(p, &m, from, fromlen);
		return;
	}
	case MSG_INDIRECT_PING: {
		struct msg_indirect m;

		if (wire_decode(&DESC_INDIRECT, &r, &m) < 0)
			bad_msg(p, "indirect ping", from);
		else if (guard_rate_ok(p, LIMIT_PROBE, from))
			probe_handle_indirect(p, &m, from, fromlen);
		return;
	}
	case MSG_ACK:
	case MSG_NACK: {
		struct msg_seq m;

		if (wire_decode(type == MSG_ACK ? &DESC_ACK : &DESC_NACK, &r, &m) < 0)
			bad_msg(p, type == MSG_ACK ? "ack" : "nack", from);
		else if (type == MSG_ACK)
			probe_handle_ack(p, &m);
		else
			probe_handle_nack(p, m.seq);
		return;
	}
	case MSG_SUSPECT:
	case MSG_DEAD: {
		const struct msg_desc *d = type == MSG_DEAD ? &DESC_DEAD : &DESC_SUSPECT;
		struct msg_accuse m;

		if (wire_decode(d, &r, &m) < 0 || wire_validate(d, &m) < 0)
			bad_msg(p, d->name, from);
		else if (type == MSG_DEAD)
			members_dead(p, &m);
		else
			members_suspect(p, &m);
		return;
	}
	case MSG_ALIVE: {
		struct msg_alive m;

		/* Only an alive we could have written ourselves is taken, and so
		 * passed on: a short Vsn makes memberlist panic. */
		if (wire_decode(&DESC_ALIVE, &r, &m) < 0 || wire_validate(&DESC_ALIVE, &m) < 0)
			bad_msg(p, "alive", from);
		else
			members_alive(p, &m, 0);
		return;
	}
	case MSG_USER:
		serf_handle_user(p, buf + 1, len - 1);
		return;
	default:
		p->stats.packets_unsupported++;
		bad_msg(p, "message of unknown type", from);
	}
}

void net_handle_packet(struct peer *p, const uint8_t *buf, size_t len, const struct sockaddr *from,
		       socklen_t fromlen)
{
	static uint8_t plain[PACKET_MAX];
	char text[ADDR_TEXT_LEN];

	p->stats.packets_in++;
	if (!guard_allowed(p, from)) {
		p->stats.packets_denied++;
		return;
	}
	if (len == 0)
		goto bad;
	if (keyring_ring(p) != NULL) {
		/* With a keyring, what no key opens (plaintext included) is dropped. */
		if (len > sizeof(plain) ||
		    keyring_open(keyring_ring(p), buf, len, NULL, 0, plain, &len) < 0) {
			p->stats.packets_undecryptable++;
			log_debug("dropped a packet no key decrypts from %s",
				  addr_format(from, text, sizeof(text)));
			return;
		}
		buf = plain;
		if (len == 0)
			goto bad;
	}
	if (buf[0] == MSG_LABEL || buf[0] == MSG_ENCRYPT) {
		/* No label and no keyring are configured: such packets are not for us. */
		p->stats.packets_unsupported++;
		log_debug("dropped %s packet from %s", buf[0] == MSG_LABEL ? "labelled" : "encrypted",
			  addr_format(from, text, sizeof(text)));
		return;
	}
	if (buf[0] == MSG_HASCRC) {
		uint8_t hdr[5];

		if (len < 5)
			goto bad;
		wire_crc_header(hdr, buf + 5, len - 5);
		if (memcmp(hdr + 1, buf + 1, 4) != 0) {
			p->stats.packets_crc++;
			log_debug("dropped packet with a bad checksum from %s",
				  addr_format(from, text, sizeof(text)));
			return;
		}
		buf += 5;
		len -= 5;
	}
	handle_command(p, buf, len, from, fromlen, 0);
	return;
bad:
	p->stats.packets_bad++;
	log_debug("dropped malformed packet from %s", addr_format(from, text, sizeof(text)));
}

static void udp_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	static uint8_t buf[PACKET_MAX];
	struct peer *p = w->data;
	struct sockaddr_storage from;
	socklen_t fromlen;
	ssize_t n;

	(void)loop;
	(void)revents;
	/* A bounded batch per wakeup keeps timers and streams served under a flood. */
	for (int i = 0; i < 64; i++) {
		fromlen = sizeof(from);
		n = recvfrom(p->udp_fd, buf, sizeof(buf), MSG_TRUNC, (struct sockaddr *)&from,
			     &fromlen);
		if (n < 0)
			return;
		if ((size_t)n > sizeof(buf)) {
			p->stats.packets_in++;
			p->stats.packets_bad++;
			log_debug("dropped oversized packet (%zd bytes)", n);
			continue;
		}
		net_handle_packet(p, buf, (size_t)n, (struct sockaddr *)&from, fromlen);
	}
}
