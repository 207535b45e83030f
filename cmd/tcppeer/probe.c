/* Failure detection as memberlist's probeNode: a direct ping; after the probe
 * timeout, indirect pings through a few members (with nacks, so our own
 * health can be judged) and a TCP ping; no answer by the end of the scaled
 * probe interval makes the node suspect. Also answers others' probes. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tcppeer.h"

static void probe_next(struct peer *p);

/* An indirect ping we relay: where its ack or nack goes. */
struct ack_handler {
	ev_timer timer;
	struct peer *peer;
	struct ack_handler *next;
	uint32_t seq;
	uint32_t orig_seq;
	struct sockaddr_storage to;
	socklen_t tolen;
	int want_nack;
};

/* The module's state: the probe under way (its fields up to timeout are
 * cleared for each probe), the last sequence number we sent, and the ack
 * handlers of the indirect pings we relay. */
struct probes {
	int active, pending_tick, tcp_ok, nacks, expected_nacks, grace;
	uint32_t seq;
	char node[PEER_NAME_MAX + 1];
	double sent;
	ev_timer timeout, deadline;
	uint32_t next_seq;
	struct ack_handler *acks;
	size_t nack_handlers;
};

static void probe_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void probe_deadline_cb(struct ev_loop *loop, ev_timer *w, int revents);

static struct probes *probes(struct peer *p)
{
	struct probes *pr = p->probes;

	if (pr == NULL && (pr = calloc(1, sizeof(*pr))) != NULL) {
		ev_timer_init(&pr->timeout, probe_timeout_cb, 0, 0);
		ev_timer_init(&pr->deadline, probe_deadline_cb, 0, 0);
		pr->timeout.data = pr->deadline.data = p;
		p->probes = pr;
	}
	return pr;
}

static void self_ping(struct peer *p, struct msg_ping *m, uint32_t seq, const char *target)
{
	memset(m, 0, sizeof(*m));
	m->seq = seq;
	snprintf(m->node, sizeof(m->node), "%s", target);
	m->src = p->self_ip;
	m->src_port = p->self_port;
	snprintf(m->src_node, sizeof(m->src_node), "%s", p->cfg.name);
}

static void probe_end(struct peer *p, int delta)
{
	struct probes *pr = p->probes;

	ev_timer_stop(p->loop, &pr->timeout);
	ev_timer_stop(p->loop, &pr->deadline);
	pr->active = 0;
	members_awareness(p, delta);
	if (pr->pending_tick && !leave_started(p)) {
		pr->pending_tick = 0;
		probe_next(p);
	}
}

static int indirect_exclude(struct peer *p, const struct node *n, const void *ctx)
{
	return strcmp(n->name, p->cfg.name) == 0 || strcmp(n->name, ctx) == 0 ||
	       n->state != STATE_ALIVE;
}

static void probe_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct peer *p = w->data;
	struct probes *pr = p->probes;
	struct node *n = members_find(p, pr->node), *helpers[16];
	struct msg_indirect ind;
	struct wbuf buf;
	double left;
	int k;

	(void)loop;
	(void)revents;
	if (n == NULL) {
		probe_end(p, 0);
		return;
	}
	log_debug("no ack from '%s' within the probe timeout", n->name);
	memset(&ind, 0, sizeof(ind));
	ind.seq = pr->seq;
	ind.target = n->addr;
	ind.port = n->port;
	memcpy(ind.node, n->name, sizeof(ind.node));
	ind.src = p->self_ip;
	ind.src_port = p->self_port;
	snprintf(ind.src_node, sizeof(ind.src_node), "%s", p->cfg.name);
	k = members_random(p, p->cfg.indirect_checks < 16 ? p->cfg.indirect_checks : 16,
			   indirect_exclude, n->name, helpers);
	wbuf_init(&buf, UDP_SEND_MAX);
	for (int i = 0; i < k; i++) {
		ind.nack = helpers[i]->vsn[1] >= 4;
		pr->expected_nacks += ind.nack;
		wbuf_reset(&buf);
		wire_encode_indirect(&buf, &ind);
		if (!buf.overflow)
			net_send_node(p, helpers[i], buf.p, buf.len);
	}
	wbuf_free(&buf);
	left = pr->sent + p->cfg.probe_interval * (p->awareness + 1) - peer_now(p);
	if (left < 0.001)
		left = 0.001;
	if (n->vsn[1] >= 3)
		stream_ping(p, n, pr->seq, left);
	ev_timer_set(&pr->deadline, left, 0);
	ev_timer_start(p->loop, &pr->deadline);
}

static void probe_deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct peer *p = w->data;
	struct probes *pr = p->probes;
	struct node *n = members_find(p, pr->node);
	struct msg_accuse s;
	int delta = 0;

	(void)loop;
	(void)revents;
	/* Helpers nack at their own probe timeout, which ends just after our
	 * deadline: a short grace keeps on-time nacks from counting as missed. */
	if (!pr->grace && !pr->tcp_ok && pr->nacks < pr->expected_nacks) {
		pr->grace = 1;
		ev_timer_set(&pr->deadline, p->cfg.probe_timeout / 5, 0);
		ev_timer_start(p->loop, &pr->deadline);
		return;
	}
	if (pr->tcp_ok) {
		log_warn("'%s' answered over TCP but not over UDP: is UDP blocked?", pr->node);
		probe_end(p, -1);
		return;
	}
	if (pr->expected_nacks > 0) {
		if (pr->nacks < pr->expected_nacks)
			delta = pr->expected_nacks - pr->nacks;
	} else {
		delta = 1;
	}
	if (n != NULL) {
		log_debug("suspect '%s' has failed: no acks received", n->name);
		memset(&s, 0, sizeof(s));
		s.inc = n->inc;
		memcpy(s.node, n->name, sizeof(s.node));
		snprintf(s.from, sizeof(s.from), "%s", p->cfg.name);
		members_suspect(p, &s);
	}
	probe_end(p, delta);
}

static void probe_node(struct peer *p, struct node *n)
{
	struct probes *pr = p->probes;
	struct msg_ping ping;
	struct wbuf buf;

	memset(pr, 0, offsetof(struct probes, timeout));
	pr->active = 1;
	pr->seq = ++pr->next_seq;
	memcpy(pr->node, n->name, sizeof(pr->node));
	pr->sent = peer_now(p);
	self_ping(p, &ping, pr->seq, n->name);
	wbuf_init(&buf, UDP_SEND_MAX);
	wire_encode_ping(&buf, &ping);
	if (n->state == STATE_ALIVE) {
		net_send_node(p, n, buf.p, buf.len);
	} else {
		/* A suspect hears that it is suspected, so it can refute at once. */
		struct msg_accuse s;
		struct wbuf sus, pkt;
		const uint8_t *parts[2];
		size_t lens[2];
		struct sockaddr_storage ss;
		socklen_t sl;

		memset(&s, 0, sizeof(s));
		s.inc = n->inc;
		memcpy(s.node, n->name, sizeof(s.node));
		snprintf(s.from, sizeof(s.from), "%s", p->cfg.name);
		wbuf_init(&sus, UDP_SEND_MAX);
		wire_encode_accuse(&sus, MSG_SUSPECT, &s);
		wbuf_init(&pkt, UDP_SEND_MAX);
		parts[0] = buf.p, lens[0] = buf.len;
		parts[1] = sus.p, lens[1] = sus.len;
		wire_make_compound(&pkt, parts, lens, 2);
		if (!pkt.overflow && net_sockaddr(&n->addr, n->port, &ss, &sl) == 0)
			net_sendto(p, (struct sockaddr *)&ss, sl, pkt.p, pkt.len, n->vsn[1] >= 5);
		wbuf_free(&sus);
		wbuf_free(&pkt);
	}
	wbuf_free(&buf);
	ev_timer_set(&pr->timeout, p->cfg.probe_timeout, 0);
	ev_timer_start(p->loop, &pr->timeout);
}

/* memberlist's probe(): walk the shuffled table, skipping ourselves and the
 * dead; at the end of a round forget the long dead and reshuffle. */
static void probe_next(struct peer *p)
{
	size_t checked = 0;

	while (checked < p->nnodes) {
		struct node *n;

		if (p->probe_index >= p->nnodes) {
			members_shuffle(p);
			p->probe_index = 0;
			checked++;
			continue;
		}
		n = p->nodes[p->probe_index++];
		if (strcmp(n->name, p->cfg.name) == 0 || n->state == STATE_DEAD ||
		    n->state == STATE_LEFT) {
			checked++;
			continue;
		}
		probe_node(p, n);
		return;
	}
}

void probe_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct peer *p = w->data;
	struct probes *pr = probes(p);

	(void)loop;
	(void)revents;
	if (leave_started(p) || pr == NULL)
		return;
	if (pr->active) {
		pr->pending_tick = 1;
		return;
	}
	probe_next(p);
}

static void ack_remove(struct peer *p, struct ack_handler *h)
{
	struct probes *pr = p->probes;

	for (struct ack_handler **pp = &pr->acks; *pp; pp = &(*pp)->next)
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	ev_timer_stop(p->loop, &h->timer);
	pr->nack_handlers--;
	free(h);
}

void probe_handle_ack(struct peer *p, const struct msg_seq *ack)
{
	struct probes *pr = p->probes;
	uint32_t seq = ack->seq;
	struct wbuf buf;

	if (pr == NULL)
		return;
	if (pr->active && seq == pr->seq) {
		double rtt = peer_now(p) - pr->sent;

		/* memberlist tells its ping delegate only of a direct probe
		 * answered within the probe timeout. */
		if (rtt <= p->cfg.probe_timeout && !ev_is_active(&pr->deadline))
			coord_from_ack(p, pr->node, ack->payload, ack->payloadlen, rtt);
		probe_end(p, -1);
		return;
	}
	for (struct ack_handler *h = pr->acks; h; h = h->next) {
		if (h->seq != seq)
			continue;
		/* An indirect ping we relayed was answered: pass the ack back. */
		wbuf_init(&buf, UDP_SEND_MAX);
		wire_encode_ack(&buf, h->orig_seq, NULL, 0);
		net_send_msg(p, (struct sockaddr *)&h->to, h->tolen, buf.p, buf.len, NULL);
		wbuf_free(&buf);
		ack_remove(p, h);
		return;
	}
}

void probe_handle_nack(struct peer *p, uint32_t seq)
{
	struct probes *pr = p->probes;

	if (pr != NULL && pr->active && seq == pr->seq)
		pr->nacks++;
}

static void ack_expired(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ack_handler *h = (struct ack_handler *)w;
	struct peer *p = h->peer;
	struct wbuf buf;

	(void)loop;
	(void)revents;
	if (h->want_nack) {
		wbuf_init(&buf, UDP_SEND_MAX);
		wire_encode_nack(&buf, h->orig_seq);
		net_send_msg(p, (struct sockaddr *)&h->to, h->tolen, buf.p, buf.len, NULL);
		wbuf_free(&buf);
	}
	ack_remove(p, h);
}

/* Where a reply goes: the source the message names, else the packet's sender. */
static void reply_addr(const struct ipbytes *ip, uint16_t port, const struct sockaddr *from,
		       socklen_t fromlen, struct sockaddr_storage *to, socklen_t *tolen)
{
	if (ip->len > 0 && port > 0 && net_sockaddr(ip, port, to, tolen) == 0)
		return;
	memcpy(to, from, fromlen);
	*tolen = fromlen;
}

void probe_handle_ping(struct peer *p, const struct msg_ping *m, const struct sockaddr *from,
		       socklen_t fromlen)
{
	struct sockaddr_storage to;
	socklen_t tolen;
	struct wbuf buf, payload;

	if (m->node[0] != '\0' && strcmp(m->node, p->cfg.name) != 0) {
		log_debug("ping for another node ('%s')", m->node);
		return;
	}
	reply_addr(&m->src, m->src_port, from, fromlen, &to, &tolen);
	wbuf_init(&payload, ACK_PAYLOAD_MAX);
	coord_ack_payload(p, &payload);
	wbuf_init(&buf, UDP_SEND_MAX);
	wire_encode_ack(&buf, m->seq, payload.overflow ? NULL : payload.p,
			payload.overflow ? 0 : payload.len);
	wbuf_free(&payload);
	net_send_msg(p, (struct sockaddr *)&to, tolen, buf.p, buf.len,
		     m->src_node[0] ? members_find(p, m->src_node) : NULL);
	wbuf_free(&buf);
}

void probe_handle_indirect(struct peer *p, const struct msg_indirect *m,
			   const struct sockaddr *from, socklen_t fromlen)
{
	struct ack_handler *h;
	struct sockaddr_storage target;
	socklen_t targetlen;
	struct msg_ping ping;
	struct wbuf buf;
	struct probes *pr = probes(p);

	if (pr == NULL)
		return;
	if (pr->nack_handlers >= ACK_HANDLERS_MAX) {
		p->stats.acks_dropped++;
		return;
	}
	if (net_sockaddr(&m->target, m->port ? m->port : p->self_port, &target, &targetlen) < 0)
		return;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return;
	h->peer = p;
	h->seq = ++pr->next_seq;
	h->orig_seq = m->seq;
	h->want_nack = m->nack;
	reply_addr(&m->src, m->src_port, from, fromlen, &h->to, &h->tolen);
	ev_timer_init(&h->timer, ack_expired, p->cfg.probe_timeout, 0);
	ev_timer_start(p->loop, &h->timer);
	h->next = pr->acks;
	pr->acks = h;
	pr->nack_handlers++;
	self_ping(p, &ping, h->seq, m->node);
	wbuf_init(&buf, UDP_SEND_MAX);
	wire_encode_ping(&buf, &ping);
	net_send_msg(p, (struct sockaddr *)&target, targetlen, buf.p, buf.len,
		     members_find(p, m->node));
	wbuf_free(&buf);
}

void probe_tcp_result(struct peer *p, uint32_t seq, int ok)
{
	struct probes *pr = p->probes;

	if (pr != NULL && pr->active && seq == pr->seq && ok)
		pr->tcp_ok = 1;
}

void probe_stop(struct peer *p)
{
	struct probes *pr = p->probes;

	if (pr == NULL)
		return;
	ev_timer_stop(p->loop, &pr->timeout);
	ev_timer_stop(p->loop, &pr->deadline);
	pr->active = 0;
}

void probes_free(struct peer *p)
{
	struct probes *pr = p->probes;

	if (pr == NULL)
		return;
	while (pr->acks)
		ack_remove(p, pr->acks);
	probe_stop(p);
	free(pr);
	p->probes = NULL;
}
