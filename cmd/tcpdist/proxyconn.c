/* The PROXY protocol on a client's connection, both ways.
 *
 * In: with accept_proxy_from set, a client must come from one of those
 * networks and start with a valid header within accept_proxy_timeout. The
 * header usually comes with the handshake, so it is read at once into the
 * worker's scratch buffer, at most PROXY_HEADER_MAX bytes: what follows the
 * header in that read is the client's own data, held for the backend. Only
 * a header that comes in pieces gets a buffer of its own until it is whole.
 * proxy_parse() refuses a bad one at its first wrong byte, so nothing waits
 * for the timeout but a silent or slow client. The connection counts as
 * open all along (max_conns, descriptors) like any client.
 *
 * Out: a backend with proxy_protocol = v1 or v2 is sent a header with the
 * client's addresses (the ones from its own header, if it sent one) before
 * any of its bytes, on whichever backend the connection ends up with. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "num.h"
#include "tcpdist.h"

struct proxy_wait {
	size_t have;
	uint8_t buf[PROXY_HEADER_MAX];
};

static void proxy_done(struct conn *c, const struct proxy_info *info, const uint8_t *b,
		       size_t hlen, size_t len)
{
	struct worker *w = c->w;

	ev_io_stop(w->loop, &c->cio);
	ev_timer_stop(w->loop, &c->timer);
	stat_add(&w->stats.proxy_headers[info->version], 1);
	if (!info->local) {
		memcpy(&c->client, &info->src, sizeof(info->src));
		c->dst = info->dst;
		c->has_dst = 1;
	}
	/* The client's first bytes, read with the header: the backend's. */
	if (len > hlen) {
		if (relay_queue(c, b + hlen, len - hlen, 0) < 0) {
			stat_add(&w->stats.failed[FAIL_RESOURCES], 1);
			conn_close(c, 1, END_ERROR);
			return;
		}
	}
	free(c->pp);
	c->pp = NULL;
	conn_identified(c);
}

static void proxy_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct conn *c = container_of(io, struct conn, cio);
	struct proxy_info info;
	char why[ERR_LEN];
	uint8_t *b = c->pp ? c->pp->buf : (uint8_t *)c->w->scratch;
	size_t have = c->pp ? c->pp->have : 0;
	ssize_t n;
	int hlen;

	(void)loop;
	(void)revents;
	n = recv(io->fd, b + have, PROXY_HEADER_MAX - have, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_refuse(c, REFUSE_PROXY_INVALID, "closed before a whole PROXY header (%zu bytes)",
			    have);
		return;
	}
	have += (size_t)n;
	hlen = proxy_parse(b, have, &info, why);
	if (hlen > 0) {
		proxy_done(c, &info, b, (size_t)hlen, have);
		return;
	}
	if (hlen < 0 || have == PROXY_HEADER_MAX) {
		conn_refuse(c, REFUSE_PROXY_INVALID, "invalid PROXY header: %s",
			    hlen < 0 ? why : "too long");
		return;
	}
	if (c->pp == NULL) {
		if ((c->pp = malloc(sizeof(*c->pp))) == NULL) {
			stat_add(&c->w->stats.failed[FAIL_RESOURCES], 1);
			conn_close(c, 1, END_ERROR);
			return;
		}
		memcpy(c->pp->buf, b, have);
	}
	c->pp->have = have;
}

static void proxy_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct conn *c = container_of(t, struct conn, timer);
	char d[32];

	(void)loop;
	(void)revents;
	duration_format(c->farm->pool->accept_proxy_timeout_ms, d, sizeof(d));
	conn_refuse(c, REFUSE_PROXY_TIMEOUT, "no whole PROXY header within %s (%zu bytes)", d,
		    c->pp ? c->pp->have : 0);
}

void proxy_accept(struct conn *c)
{
	const struct pool *p = c->farm->pool;
	struct ev_loop *loop = c->w->loop;

	if (cidr_table_match(&p->accept_proxy_from, &c->client.sa) == NULL) {
		conn_refuse(c, REFUSE_PROXY_UNTRUSTED, "not in accept_proxy_from");
		return;
	}
	ev_io_init(&c->cio, proxy_read_cb, c->cio.fd, EV_READ);
	ev_timer_init(&c->timer, proxy_timeout_cb, (ev_tstamp)p->accept_proxy_timeout_ms / 1000.0,
		      0.0);
	ev_io_start(loop, &c->cio);
	ev_timer_start(loop, &c->timer);
	/* It usually came with the handshake. */
	proxy_read_cb(loop, &c->cio, EV_READ);
}

int proxy_connected(struct conn *c, enum proxy_version v)
{
	struct half *h = &c->c2b;
	uint8_t hdr[PROXY_OUT_MAX];
	union proxy_addr dst;
	socklen_t len = sizeof(dst);
	size_t held = h->buf ? h->buf_len : 0;

	if (held) /* the client's bytes read with its own header: relayed */
		relay_count(c, h, held);
	if (v == PROXY_OFF)
		return 0;
	if (!c->has_dst) {
		if (getsockname(c->cio.fd, &dst.sa, &len) < 0)
			goto fail;
		c->dst = dst;
		c->has_dst = 1;
	}
	if (relay_queue(c, hdr, proxy_write(v, &c->client.sa, &c->dst.sa, hdr), 1) < 0)
		goto fail;
	/* The client's first bytes go in the header's segment: alone, a header
	 * is a packet of its own, and the backend's kernel and ours work for
	 * two. The header waits for them, but no longer than 1 ms
	 * (relay_start). */
	h->held = held == 0;
	return 0;
fail:
	stat_add(&c->w->stats.failed[FAIL_RESOURCES], 1);
	conn_close(c, 1, END_ERROR);
	return -1;
}

/* A health check of a backend that takes PROXY headers starts with one, so
 * that the backend logs no broken header: v2 LOCAL, or the v1 line
 * "PROXY UNKNOWN". It fits any socket buffer right after the connect. */
int proxy_check_hello(int fd, enum proxy_version v)
{
	uint8_t hdr[PROXY_OUT_MAX];
	size_t n;

	if (v == PROXY_OFF)
		return 0;
	n = proxy_write(v, NULL, NULL, hdr);
	return send(fd, hdr, n, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)n ? 0 : -1;
}
