/* TCP streams: push-pull state exchange (join and anti-entropy), the
 * fallback ping, and user messages. Every stream has a deadline and a size
 * limit; inbound streams are limited in number, as memberlist does, and in
 * rate per source address. The inbound slots are shared: a stream must
 * bring its whole first message within a short deadline, and once every
 * slot is taken a source holds no more than a quarter of them: a newcomer
 * under its share takes the slot of the oldest unfinished stream of the
 * source holding the most, and one at its share the slot of its own oldest
 * stream that has sent nothing yet. So idle or slow connections cannot
 * keep the node from being joined, yet a burst of joins from one host may
 * use every free slot. With a keyring, every stream is one encrypted frame
 * each way. */
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "streamdec.h"
#include "tcppeer.h"

enum stream_kind { K_IN, K_PUSHPULL, K_PING };

struct stream {
	ev_io io;
	ev_timer timer;
	struct peer *peer;
	struct stream *next;
	int fd;
	enum stream_kind kind;
	enum pushpull_why why; /* K_PUSHPULL */
	int connected, done_reading, sealed;
	struct sockaddr_storage to; /* K_PUSHPULL: where we connected */
	socklen_t tolen;
	struct ipbytes src; /* K_IN: the source address */
	double opened;
	uint32_t ping_seq;
	struct wbuf in, out, plain;
	size_t out_off;
	struct streamdec dec;
	char who[ADDR_TEXT_LEN];
};

static void stream_io_cb(struct ev_loop *loop, ev_io *w, int revents);

/* The module's state: the open streams, how many each way, and the
 * anti-entropy push-pull's (under way; its catch-up interval after start,
 * doubling up to the push-pull interval). */
struct streams {
	struct stream *list;
	int nin, nout;
	int pushpull_busy;
	double pushpull_ramp;
};

static struct streams *streams(struct peer *p)
{
	if (p->streams == NULL)
		p->streams = calloc(1, sizeof(*p->streams));
	return p->streams;
}

int streams_outbound(const struct peer *p)
{
	return p->streams != NULL ? p->streams->nout : 0;
}

double pushpull_first(struct peer *p)
{
	struct streams *st = streams(p);
	double ramp = PUSHPULL_CATCHUP < p->cfg.pushpull_interval ? PUSHPULL_CATCHUP : 0;

	if (st != NULL)
		st->pushpull_ramp = ramp;
	return ramp > 0 ? ramp * (0.5 + (random() % 1000) / 1000.0)
			: p->cfg.pushpull_interval * (random() % 1000) / 1000.0 + 0.001;
}

static void stream_close(struct stream *s, int ok)
{
	struct peer *p = s->peer;

	for (struct stream **pp = &p->streams->list; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	ev_io_stop(p->loop, &s->io);
	ev_timer_stop(p->loop, &s->timer);
	close(s->fd);
	if (s->kind == K_IN)
		p->streams->nin--;
	else
		p->streams->nout--;
	if (s->kind == K_PUSHPULL) {
		if (s->why == PP_JOIN)
			join_result(p, ok);
		else if (s->why == PP_SYNC)
			p->streams->pushpull_busy = 0;
		if (ok)
			p->stats.pushpull_ok++;
		else
			p->stats.pushpull_failed++;
	}
	if (s->kind == K_PING)
		probe_tcp_result(p, s->ping_seq, ok);
	wbuf_free(&s->in);
	wbuf_free(&s->out);
	wbuf_free(&s->plain);
	streamdec_free(&s->dec);
	free(s);
}

static void stream_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct stream *s = w->data;

	(void)loop;
	(void)revents;
	log_debug("stream with %s timed out", s->who);
	stream_close(s, 0);
}

static struct stream *stream_new(struct peer *p, int fd, enum stream_kind kind, double timeout)
{
	struct stream *s = streams(p) != NULL ? calloc(1, sizeof(*s)) : NULL;

	if (s == NULL) {
		close(fd);
		return NULL;
	}
	s->peer = p;
	s->fd = fd;
	s->kind = kind;
	wbuf_init(&s->in, STREAM_MAX);
	wbuf_init(&s->out, STREAM_MAX);
	wbuf_init(&s->plain, STREAM_MAX);
	streamdec_init(&s->dec);
	ev_io_init(&s->io, stream_io_cb, fd, kind == K_IN ? EV_READ : EV_WRITE);
	s->io.data = s;
	ev_io_start(p->loop, &s->io);
	ev_timer_init(&s->timer, stream_timeout_cb, timeout, 0);
	s->timer.data = s;
	ev_timer_start(p->loop, &s->timer);
	s->opened = peer_now(p);
	s->next = p->streams->list;
	p->streams->list = s;
	if (kind == K_IN)
		p->streams->nin++;
	else
		p->streams->nout++;
	return s;
}

/* Our push-pull: header, every node memberlist would still hold (the
 * failed and left ones for the gossip-to-the-dead time), serf's state. */
static void local_state(struct peer *p, struct wbuf *w, int join)
{
	struct msg_pp_header h;
	struct wbuf user;
	struct msg_alive a;

	wbuf_init(&user, 4u << 20); /* recent events: up to 64 x 32 x 512 bytes */
	serf_local_state(p, &user);
	h.nodes = 0;
	for (size_t i = 0; i < p->nnodes; i++)
		h.nodes += !members_forgotten(p, p->nodes[i]);
	h.user_len = user.overflow ? 0 : (uint32_t)user.len;
	h.join = join;
	wbuf_byte(w, MSG_PUSHPULL);
	wire_encode_pp_header(w, &h);
	for (size_t i = 0; i < p->nnodes; i++) {
		if (members_forgotten(p, p->nodes[i]))
			continue;
		members_fill_state(p->nodes[i], &a);
		wire_encode_node_state(w, &a);
	}
	if (h.user_len)
		wbuf_put(w, user.p, user.len);
	wbuf_free(&user);
}

static void stream_want_write(struct stream *s)
{
	ev_io_stop(s->peer->loop, &s->io);
	ev_io_set(&s->io, s->fd, EV_WRITE);
	ev_io_start(s->peer->loop, &s->io);
}

static void refute_to(struct peer *p, const struct sockaddr *sa, socklen_t salen)
{
	struct node *self = members_find(p, p->cfg.name);
	struct msg_alive a;
	struct wbuf w;

	if (self == NULL)
		return;
	members_fill_state(self, &a);
	wbuf_init(&w, UDP_SEND_MAX);
	wire_encode_alive(&w, &a);
	if (!w.overflow)
		net_sendto(p, sa, salen, w.p, w.len, 0);
	wbuf_free(&w);
}

/* A whole message arrived: act on it. Returns 1 to keep the stream for a
 * reply we write, 0 to close it (ok), -1 to close it (failed). */
static int stream_message(struct stream *s)
{
	struct peer *p = s->peer;
	struct streamdec *d = &s->dec;
	const uint8_t *user = streamdec_user(d, keyring_ring(p) ? s->plain.p : s->in.p);

	switch (s->kind) {
	case K_IN:
		if (d->type == MSG_PUSHPULL) {
			/* Merged before we answer (memberlist answers first): if
			 * the other side thought us dead, our answer already
			 * carries the refutation, so a partition heals in one
			 * exchange rather than waiting for gossip that neither
			 * side sends to members it thinks dead. */
			members_merge(p, d->nodes, d->nnodes);
			if (d->user_len)
				serf_merge_state(p, user, d->user_len, 0);
			local_state(p, &s->out, d->hdr.join);
			if (d->hdr.join)
				log_debug("push-pull join from %s (%u nodes)", s->who, d->nnodes);
			return s->out.overflow ? -1 : 1;
		}
		if (d->type == MSG_PING) {
			if (d->ping.node[0] != '\0' && strcmp(d->ping.node, p->cfg.name) != 0)
				return -1;
			wire_encode_ack(&s->out, d->ping.seq, NULL, 0);
			return 1;
		}
		if (d->type == MSG_USER) {
			serf_handle_user(p, user, d->user_len);
			return 0;
		}
		d->why = "unexpected message type";
		return -1;
	case K_PUSHPULL:
		if (d->type == MSG_ERR) {
			log_warn("push-pull with %s: remote error: %s", s->who, d->errmsg);
			return -1;
		}
		if (d->type != MSG_PUSHPULL) {
			d->why = "answer is not a push-pull";
			return -1;
		}
	{
		uint32_t inc = p->incarnation;

		members_merge(p, d->nodes, d->nnodes);
		if (d->user_len)
			serf_merge_state(p, user, d->user_len, s->why == PP_JOIN);
		/* It thought us dead or suspect: tell it first, straight away. */
		if (p->incarnation != inc)
			refute_to(p, (struct sockaddr *)&s->to, s->tolen);
		return 0;
	}
	case K_PING:
		return d->type == MSG_ACK && d->ack.seq == s->ping_seq ? 0 : -1;
	}
	return -1;
}

static void stream_read(struct stream *s)
{
	struct peer *p = s->peer;
	uint8_t buf[65536];
	ssize_t n;
	int rc;

	for (;;) {
		n = read(s->fd, buf, sizeof(buf));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			log_debug("stream from %s ended early", s->who);
			if (s->kind == K_IN && s->in.len > 0)
				p->stats.streams_bad++;
			stream_close(s, 0);
			return;
		}
		if (wbuf_put(&s->in, buf, (size_t)n) < 0) {
			p->stats.streams_bad++;
			log_debug("stream from %s over its size limit", s->who);
			stream_close(s, 0);
			return;
		}
		if (keyring_ring(p) != NULL) {
			rc = keyring_stream_open(keyring_ring(p), s->in.p, s->in.len, &s->plain,
						 &s->dec.why);
			if (rc < 0) {
				if (s->in.p[0] != MSG_ENCRYPT)
					p->stats.streams_unencrypted++;
				else
					p->stats.streams_undecryptable++;
				log_debug("stream with %s dropped: %s", s->who, s->dec.why);
				stream_close(s, 0);
				return;
			}
			if (rc == 0)
				continue;
			rc = streamdec_feed(&s->dec, s->plain.p, s->plain.len, MEMBERS_MAX);
			if (rc == 0) {
				s->dec.why = "truncated encrypted message";
				rc = -1;
			}
		} else {
			rc = streamdec_feed(&s->dec, s->in.p, s->in.len, MEMBERS_MAX);
			if (rc == 0)
				continue;
		}
		if (rc > 0)
			rc = stream_message(s);
		else
			p->stats.streams_bad++;
		if (rc < 0) {
			log_debug("stream with %s dropped: %s", s->who,
				  s->dec.why ? s->dec.why : "refused");
			stream_close(s, 0);
		} else if (rc == 0) {
			stream_close(s, 1);
		} else {
			s->done_reading = 1;
			if (s->kind == K_IN) { /* the first message is in: the reply has the full deadline */
				ev_timer_stop(p->loop, &s->timer);
				ev_timer_set(&s->timer, p->cfg.tcp_timeout, 0);
				ev_timer_start(p->loop, &s->timer);
			}
			stream_want_write(s);
		}
		return;
	}
}

static void stream_write(struct stream *s)
{
	ssize_t n;

	if (!s->connected) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		if (soerr != 0) {
			log_debug("connect to %s: %s", s->who, strerror(soerr));
			stream_close(s, 0);
			return;
		}
		s->connected = 1;
	}
	if (!s->sealed && keyring_ring(s->peer) != NULL) {
		struct wbuf sealed;

		wbuf_init(&sealed, STREAM_MAX);
		if (keyring_stream_seal(keyring_ring(s->peer), s->out.p, s->out.len, &sealed) < 0) {
			wbuf_free(&sealed);
			log_warn("stream to %s: encryption failed", s->who);
			stream_close(s, 0);
			return;
		}
		wbuf_reset(&s->out);
		wbuf_put(&s->out, sealed.p, sealed.len);
		wbuf_free(&sealed);
	}
	s->sealed = 1;
	while (s->out_off < s->out.len) {
		n = write(s->fd, s->out.p + s->out_off, s->out.len - s->out_off);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			log_debug("write to %s: %s", s->who, strerror(errno));
			stream_close(s, 0);
			return;
		}
		s->out_off += (size_t)n;
	}
	if (s->done_reading) { /* our reply is out: done */
		stream_close(s, 1);
		return;
	}
	ev_io_stop(s->peer->loop, &s->io);
	ev_io_set(&s->io, s->fd, EV_READ);
	ev_io_start(s->peer->loop, &s->io);
}

static void stream_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct stream *s = w->data;

	(void)loop;
	if (revents & EV_WRITE)
		stream_write(s);
	else if (revents & EV_READ)
		stream_read(s);
}

static int same_ip(const struct ipbytes *a, const struct ipbytes *b)
{
	return a->len == b->len && memcmp(a->b, b->b, a->len) == 0;
}

/* The oldest inbound stream of src (any source when NULL) that has not sent
 * a byte, or NULL. */
static struct stream *oldest_idle(struct peer *p, const struct ipbytes *src)
{
	struct stream *best = NULL;

	for (struct stream *s = p->streams->list; s != NULL; s = s->next)
		if (s->kind == K_IN && s->in.len == 0 && (src == NULL || same_ip(&s->src, src)) &&
		    (best == NULL || s->opened < best->opened))
			best = s;
	return best;
}

static int streams_from(struct peer *p, const struct ipbytes *src)
{
	int n = 0;

	for (struct stream *s = p->streams->list; s != NULL; s = s->next)
		n += s->kind == K_IN && same_ip(&s->src, src);
	return n;
}

/* The oldest inbound stream of the source holding the most that has not
 * brought its first message yet, if that source holds more than its share
 * (or than src would then): the slot a newcomer may take. */
static struct stream *evictable(struct peer *p, const struct ipbytes *src)
{
	struct stream *victim = NULL;
	int most = 0, mine = streams_from(p, src);

	for (struct stream *s = p->streams->list; s != NULL; s = s->next) {
		int n;

		if (s->kind != K_IN || s->done_reading)
			continue;
		n = streams_from(p, &s->src);
		if (n > most || (n == most && victim != NULL && s->opened < victim->opened)) {
			most = n;
			victim = s;
		}
	}
	return victim != NULL && most > STREAMS_IN_SHARE && most > mine + 1 ? victim : NULL;
}

/* A slot for a stream from src: 1, freeing one if need be, or 0. Free
 * slots go to anyone (a burst of joins from one host uses them all); when
 * none is free, a source under its share takes one from the source holding
 * the most, and a source at its share takes the one of its own oldest
 * stream that has sent nothing yet. */
static int stream_slot(struct peer *p, const struct ipbytes *src)
{
	struct stream *victim;

	if (streams(p) == NULL)
		return 0;
	if (p->streams->nin < STREAMS_IN_MAX)
		return 1;
	if (streams_from(p, src) < STREAMS_IN_SHARE)
		victim = evictable(p, src);
	else
		victim = oldest_idle(p, src);
	if (victim == NULL)
		return 0;
	log_debug("stream slots: closing a stream from %s for a new one", victim->who);
	p->stats.streams_evicted++;
	stream_close(victim, 0);
	return 1;
}

void stream_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct peer *p = w->data;
	struct sockaddr_storage ss;
	struct ipbytes src;
	socklen_t sl;
	struct stream *s;
	double first;
	int fd;

	(void)revents;
	first = STREAM_FIRST_MSG < p->cfg.tcp_timeout ? STREAM_FIRST_MSG : p->cfg.tcp_timeout;
	for (int i = 0; i < 16; i++) {
		sl = sizeof(ss);
		fd = accept4(p->tcp_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			int error = errno;

			if (accept_pause(loop, &p->tcp_pause, error) == ACCEPT_PAUSED)
				log_warn("accept: %s: pausing accept", accept_pause_reason(error));
			return;
		}
		p->stats.streams_in++;
		if (!guard_allowed(p, (struct sockaddr *)&ss)) {
			p->stats.streams_denied++;
			close(fd);
			continue;
		}
		if (!guard_rate_ok(p, LIMIT_STREAM, (struct sockaddr *)&ss)) {
			log_debug("stream rate over its limit: refused one");
			close(fd);
			continue;
		}
		guard_source(p, (struct sockaddr *)&ss, &src);
		if (!stream_slot(p, &src)) {
			p->stats.streams_rejected++;
			log_debug("too many streams: refused one");
			close(fd);
			continue;
		}
		s = stream_new(p, fd, K_IN, first);
		if (s != NULL) {
			s->src = src;
			addr_format((struct sockaddr *)&ss, s->who, sizeof(s->who));
		}
	}
}

static struct stream *stream_connect(struct peer *p, const struct sockaddr *sa, socklen_t salen,
				     enum stream_kind kind, double timeout)
{
	struct stream *s;
	int fd;

	if (streams(p) == NULL || p->streams->nout >= STREAMS_OUT_MAX)
		return NULL;
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	/* From our bound address, as our UDP goes: the far side's --allow and
	 * rate limits see the address we are known by. */
	if (sa->sa_family == p->cfg.bind.ss.ss_family) {
		struct sockaddr_storage src = p->cfg.bind.ss;

		if (src.ss_family == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&src;

			sin->sin_port = 0;
			if (sin->sin_addr.s_addr != htonl(INADDR_ANY))
				bind(fd, (struct sockaddr *)&src, sizeof(*sin));
		} else if (src.ss_family == AF_INET6) {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&src;

			sin6->sin6_port = 0;
			if (!IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))
				bind(fd, (struct sockaddr *)&src, sizeof(*sin6));
		}
	}
	if (connect(fd, sa, salen) < 0 && errno != EINPROGRESS) {
		close(fd);
		return NULL;
	}
	s = stream_new(p, fd, kind, timeout);
	if (s == NULL)
		return NULL;
	p->stats.streams_out++;
	addr_format(sa, s->who, sizeof(s->who));
	return s;
}

int stream_pushpull(struct peer *p, const struct sockaddr *sa, socklen_t salen,
		    enum pushpull_why why)
{
	struct stream *s = stream_connect(p, sa, salen, K_PUSHPULL, p->cfg.tcp_timeout);

	if (s == NULL)
		return -1;
	s->why = why;
	memcpy(&s->to, sa, salen);
	s->tolen = salen;
	/* memberlist's Join sets the header's Join; so does serf's reconnect. */
	local_state(p, &s->out, why != PP_SYNC);
	if (why == PP_SYNC)
		p->streams->pushpull_busy = 1;
	return 0;
}

int stream_ping(struct peer *p, const struct node *n, uint32_t seq, double deadline)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct msg_ping ping;
	struct stream *s;

	if (net_sockaddr(&n->addr, n->port, &ss, &sl) < 0)
		return -1;
	s = stream_connect(p, (struct sockaddr *)&ss, sl, K_PING, deadline);
	if (s == NULL)
		return -1;
	s->ping_seq = seq;
	memset(&ping, 0, sizeof(ping));
	ping.seq = seq;
	memcpy(ping.node, n->name, sizeof(ping.node));
	ping.src = p->self_ip;
	ping.src_port = p->self_port;
	snprintf(ping.src_node, sizeof(ping.src_node), "%s", p->cfg.name);
	wire_encode_ping(&s->out, &ping);
	return 0;
}

void streams_free(struct peer *p)
{
	while (p->streams != NULL && p->streams->list != NULL) {
		struct stream *s = p->streams->list;

		/* Closing a join stream would start the next attempt: forget it first. */
		s->kind = s->kind == K_IN ? K_IN : K_PING;
		s->ping_seq = 0;
		stream_close(s, 0);
	}
	free(p->streams);
	p->streams = NULL;
}

static int pushpull_exclude(struct peer *p, const struct node *n, const void *ctx)
{
	(void)ctx;
	return strcmp(n->name, p->cfg.name) == 0 || n->state != STATE_ALIVE;
}

/* Anti-entropy with one random member; the interval grows past 32 nodes.
 * Just after start it runs at 1 s, 2 s, 4 s... until it reaches the
 * interval: a member that joins while others are still joining gets its
 * seed's view, and the rumours of members its seed had not heard of yet may
 * be spent before it arrives; without the catch-up it would miss them until
 * the first regular exchange, 30 s on. */
void pushpull_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct peer *p = w->data;
	struct node *n;
	struct sockaddr_storage ss;
	socklen_t sl;
	double mult = 1.0, interval;

	(void)revents;
	if (streams(p) == NULL)
		return;
	if (p->nnodes > 32)
		mult = ceil(log2((double)p->nnodes) - log2(32.0)) + 1.0;
	interval = p->cfg.pushpull_interval * mult;
	if (p->streams->pushpull_ramp > 0 && p->streams->pushpull_ramp * 2 < interval) {
		p->streams->pushpull_ramp *= 2;
		interval = p->streams->pushpull_ramp * (0.75 + (random() % 500) / 1000.0);
	} else {
		p->streams->pushpull_ramp = 0;
	}
	w->repeat = interval;
	ev_timer_again(loop, w);
	if (leave_started(p) || p->streams->pushpull_busy)
		return;
	if (members_random(p, 1, pushpull_exclude, NULL, &n) == 1 &&
	    net_sockaddr(&n->addr, n->port, &ss, &sl) == 0)
		stream_pushpull(p, (struct sockaddr *)&ss, sl, PP_SYNC);
}
