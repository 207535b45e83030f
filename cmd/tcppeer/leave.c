/* A clean stop, as serf does it: first serf's leave intent, so serf agents
 * mark us "leaving", then memberlist's dead message about ourselves with
 * From == our name, which they read as "left" rather than "failed". Both are
 * sent straight to every alive member and gossiped; we exit once the dead
 * message has been sent its retransmit limit, or at the leave timeout. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tcppeer.h"

#define LEAVE_DIRECT_MAX 128 /* members told directly; gossip reaches the rest */
#define LEAVE_INTENT_HEAD 0.1 /* the intent's head start over the dead message */

/* The module's state: the signals that start a clean stop, and the stop
 * under way (its timer, and when it gives up waiting). */
struct leave {
	ev_signal sigint_w, sigterm_w;
	ev_timer t;
	double deadline;
	int started;
};

int leave_started(const struct peer *p)
{
	return p->leave != NULL && p->leave->started;
}

static void send_to_alive(struct peer *p, const uint8_t *msg, size_t len)
{
	int sent = 0;

	for (size_t i = 0; i < p->nnodes && sent < LEAVE_DIRECT_MAX; i++) {
		struct node *n = p->nodes[i];
		struct sockaddr_storage ss;
		socklen_t sl;

		if (n->state != STATE_ALIVE || strcmp(n->name, p->cfg.name) == 0)
			continue;
		if (net_sockaddr(&n->addr, n->port, &ss, &sl) == 0) {
			net_sendto(p, (struct sockaddr *)&ss, sl, msg, len, n->vsn[1] >= 5);
			sent++;
		}
	}
}

static void leave_wait_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct peer *p = w->data;

	(void)revents;
	if (gossip_leave_pending(p) && peer_now(p) < p->leave->deadline) {
		ev_timer_set(w, p->cfg.gossip_interval, 0);
		ev_timer_start(loop, w);
		return;
	}
	ev_break(loop, EVBREAK_ALL);
}

static void leave_dead_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct peer *p = w->data;
	struct node *self = members_find(p, p->cfg.name);
	struct msg_accuse d;
	struct wbuf buf;

	(void)revents;
	if (self == NULL) {
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	memset(&d, 0, sizeof(d));
	d.inc = self->inc;
	memcpy(d.node, self->name, sizeof(d.node));
	memcpy(d.from, self->name, sizeof(d.from));
	wbuf_init(&buf, UDP_SEND_MAX);
	wire_encode_accuse(&buf, MSG_DEAD, &d);
	send_to_alive(p, buf.p, buf.len);
	wbuf_free(&buf);
	members_dead(p, &d); /* queues it for gossip */
	ev_set_cb(w, leave_wait_cb);
	ev_timer_set(w, p->cfg.gossip_interval, 0);
	ev_timer_start(loop, w);
}

void leave_start(struct peer *p)
{
	struct leave *l = p->leave;
	uint8_t intent[UDP_SEND_MAX];
	size_t len;

	if (l == NULL) {
		ev_break(p->loop, EVBREAK_ALL);
		return;
	}
	l->started = 1;
	probe_stop(p);
	snapshot_leave(p);
	l->deadline = peer_now(p) + p->cfg.leave_timeout;
	log_info("leaving the cluster");
	if (members_alive_others(p) == 0) {
		ev_break(p->loop, EVBREAK_ALL);
		return;
	}
	serf_leave_intent(p, intent, &len, sizeof(intent));
	if (len > 0)
		send_to_alive(p, intent, len);
	ev_timer_init(&l->t, leave_dead_cb, LEAVE_INTENT_HEAD, 0);
	l->t.data = p;
	ev_timer_start(p->loop, &l->t);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct peer *p = w->data;

	(void)revents;
	if (leave_started(p)) {
		log_info("second signal: exiting now");
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	leave_start(p);
}

int leave_open(struct peer *p, char *err)
{
	struct leave *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return err_set(err, "out of memory");
	ev_init(&l->t, leave_dead_cb);
	ev_signal_init(&l->sigint_w, signal_cb, SIGINT);
	ev_signal_init(&l->sigterm_w, signal_cb, SIGTERM);
	l->sigint_w.data = l->sigterm_w.data = p;
	ev_signal_start(p->loop, &l->sigint_w);
	ev_signal_start(p->loop, &l->sigterm_w);
	p->leave = l;
	return 0;
}

void leave_close(struct peer *p)
{
	struct leave *l = p->leave;

	if (l == NULL)
		return;
	ev_timer_stop(p->loop, &l->t);
	ev_signal_stop(p->loop, &l->sigint_w);
	ev_signal_stop(p->loop, &l->sigterm_w);
	free(l);
	p->leave = NULL;
}
