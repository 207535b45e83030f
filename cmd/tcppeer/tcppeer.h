/* tcppeer: a memberlist (SWIM + Lifeguard) member that serf agents accept. */
#ifndef TCPPEER_H
#define TCPPEER_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "acceptpause.h"
#include "addr.h"
#include "err.h"
#include "mp.h"
#include "wire.h"

#define MEMBERS_MAX 10000      /* further names are dropped and counted */
#define TAGS_MAX 64
#define SEEDS_MAX 64
#define BCAST_MAX 4096         /* broadcast queue entries */
#define ACK_HANDLERS_MAX 4096
#define STREAMS_IN_MAX 16      /* concurrent inbound streams (push-pull, ping, user) */
#define STREAMS_IN_SHARE 4     /* of which one source address may hold */
#define STREAM_FIRST_MSG 2.0   /* s for an inbound stream's first message (at most --tcp-timeout) */
#define STREAMS_OUT_MAX 16
#define PUSHPULL_CATCHUP 1.0   /* first anti-entropy after start, s; doubles up to the interval */
#define SUSPICION_MULT_MAX 10
#define CONTROL_CLIENTS_MAX 8
#define KEYRING_MAX 32         /* keys in a keyring file */
#define ALLOW_MAX 64           /* --allow networks */
#define WATCHERS_MAX 4         /* modules told of membership changes */
#define EVENT_BUFFER 64        /* serf's EventBuffer: recent user events, by LTime */
#define EVENT_SIZE_MAX 512     /* serf's UserEventSizeLimit: name + payload, and encoded */
#define CONTROL_REQUEST_MAX (16 + 4 * EVENT_SIZE_MAX) /* a control request line, an event's in hex */
#define LIMITER_SLOTS 1024     /* sources whose request rates are tracked */
#define QUERY_BUFFER 512       /* serf's QueryBuffer: recent query IDs, by LTime */
#define QUERY_IDS_PER_LTIME 16 /* query IDs kept for one LTime; more are dropped */
#define QUERY_SIZE_MAX 1024    /* serf's QuerySizeLimit: an encoded query */
#define QUERY_RESPONSE_MAX 1024 /* serf's QueryResponseSizeLimit: an encoded response */

/* Protocol and delegate versions we speak: memberlist 1..5 at 2, serf 2..5 at 4. */
#define VSN_INIT {1, 5, 2, 2, 5, 4}

struct keyring {
	uint8_t key[KEYRING_MAX][32];
	uint8_t len[KEYRING_MAX];
	int n; /* key[0] is the primary: it sends */
};

/* An --allow network: addresses whose first bits of b (4 or 16 bytes) match. */
struct allow_net {
	uint8_t b[16];
	uint8_t len, bits;
};

struct config {
	const char *name;
	struct addr bind, advertise;
	int have_advertise;
	struct addr seeds[SEEDS_MAX];
	int nseeds;
	const char *tag_key[TAGS_MAX], *tag_val[TAGS_MAX];
	int ntags;
	const char *pool_path, *service_tag, *control_path, *keyring_path, *snapshot_path;
	const char *zone_tag; /* --zone-tag: the tag that names a backend's zone, or NULL */
	struct allow_net allow[ALLOW_MAX];
	int nallow;
	/* Timings in seconds (memberlist's LAN profile by default). */
	double probe_interval, probe_timeout, gossip_interval, pushpull_interval;
	double gossip_to_dead, tcp_timeout, leave_timeout, pool_delay;
	double reconnect_interval, reconnect_timeout, tombstone_timeout;
	int gossip_nodes, indirect_checks, retransmit_mult, suspicion_mult, suspicion_max_mult;
	int awareness_max;
};

struct suspicion {
	ev_timer timer;
	struct peer *peer;
	char node[PEER_NAME_MAX + 1];
	int k, n;
	double min, max, start, change_time;
	int nconfirm;
	char confirm[SUSPICION_MULT_MAX][PEER_NAME_MAX + 1];
};

struct node {
	char name[PEER_NAME_MAX + 1];
	struct ipbytes addr;
	uint16_t port;
	uint8_t meta[META_MAX];
	uint16_t metalen;
	uint8_t vsn[6];
	uint32_t inc;
	enum node_state_type state;
	double state_change;
	struct suspicion *susp;
	/* serf's view: the Lamport time of its last join or leave intent,
	 * and whether it said it is leaving (its death is then a leave). */
	uint64_t status_ltime;
	int leaving;
};

struct counters {
	uint64_t packets_in, packets_out, packets_bad, packets_crc, packets_unsupported;
	uint64_t msgs_in, msgs_bad;
	uint64_t streams_in, streams_out, streams_bad, streams_rejected, streams_evicted;
	uint64_t decompress_failed;
	uint64_t members_dropped, queue_dropped, acks_dropped, pushpull_ok, pushpull_failed;
	uint64_t suspected, failed, refuted;
	uint64_t packets_undecryptable, streams_unencrypted, streams_undecryptable;
	uint64_t packets_denied, streams_denied, rate_limited;
	uint64_t events_in, events_dup, events_old, events_sent;
	uint64_t queries_in, queries_dup, queries_old, queries_dropped, queries_filtered;
	uint64_t query_acks, query_responses, query_relayed, key_changes;
};


struct peer;
struct node;
/* Told of each membership change: event is "member-join", "member-update",
 * "member-leave" or "member-failed". */
typedef void (*member_watch_fn)(void *ctx, const char *event, const struct node *n);

struct streams;
struct ctlserver;
struct poolsync;
struct intents;
struct snapshot;
struct coords;
struct join;
struct queries;
struct serf_events;
struct gossip;
struct keyring_state;
struct leave;
struct probes;
struct guard;

struct peer {
	struct ev_loop *loop;
	struct config cfg;
	int udp_fd, tcp_fd;
	ev_io udp_w, tcp_w;
	struct accept_pause tcp_pause; /* out of descriptors: the stream listener rests */
	struct ipbytes self_ip;
	uint16_t self_port;
	uint8_t meta[META_MAX];
	uint16_t metalen;
	uint32_t incarnation;
	int awareness;

	struct node **nodes;
	size_t nnodes, nodes_cap, probe_index;

	struct gossip *gossip; /* gossip.c: the broadcast queue */

	struct probes *probes; /* probe.c: the probe under way, relayed pings' ack handlers */

	struct streams *streams; /* pushpull.c: open streams, the anti-entropy push-pull's state */

	ev_timer probe_t, gossip_t, pushpull_t, reconnect_t, reap_t;
	struct join *join; /* join.c */

	/* serf's Lamport clock and our last join/leave intent times. */
	uint64_t ltime, join_ltime;
	struct serf_events *events; /* serf.c: serf's event clock and recent events */
	struct queries *queries; /* query.c: serf's query clock and recent query IDs */

	struct keyring_state *keys; /* keyring.c: the keys in use */
	struct guard *guard; /* guard.c: per-source rate limits */

	struct leave *leave; /* leave.c: the clean stop */

	struct ctlserver *control; /* control.c: the control socket */
	struct poolsync *poolsync;
	struct intents *intents;
	struct snapshot *snapshot;
	struct coords *coords;
	struct {
		member_watch_fn fn;
		void *ctx;
	} watchers[WATCHERS_MAX];
	int nwatchers;
	struct counters stats;
};

/* keyring.c: memberlist's AES-GCM encryption. */
int keyring_parse(const char *text, size_t len, struct keyring *kr, char *err);
int keyring_load(const char *path, struct keyring *kr, char *err);
size_t keyring_sealed_len(size_t plainlen);
int keyring_seal(const struct keyring *kr, const uint8_t *msg, size_t len, const uint8_t *aad,
		 size_t aadlen, uint8_t *out);
int keyring_open(const struct keyring *kr, const uint8_t *in, size_t len, const uint8_t *aad,
		 size_t aadlen, uint8_t *out, size_t *outlen);
/* Appends [10][u32 length][sealed msg] to out. */
int keyring_stream_seal(const struct keyring *kr, const uint8_t *msg, size_t len, struct wbuf *out);
/* 1: the stream's sealed message is in plain; 0: more bytes needed; -1: refused (why says). */
int keyring_stream_open(const struct keyring *kr, const uint8_t *buf, size_t len,
			struct wbuf *plain, const char **why);

/* Writes the ring to path (one base64 key a line, the primary first) by
 * common file_replace(), as tcppool replaces a pool, keeping its mode. */
int keyring_save(const char *path, const struct keyring *kr, char *err);
/* memberlist's Keyring AddKey, UseKey and RemoveKey; 0 or -1 with err. */
int keyring_add(struct keyring *kr, const uint8_t *key, size_t len, char *err);
int keyring_use(struct keyring *kr, const uint8_t *key, size_t len, char *err);
int keyring_remove(struct keyring *kr, const uint8_t *key, size_t len, char *err);
/* Base64 of key i into out (at least 45 bytes). */
void keyring_key_text(const struct keyring *kr, int i, char *out);

/* The node's keys (state of its own). Loads --keyring if given and reloads
 * it on SIGHUP; 0, or -1 with err. */
int keyring_start(struct peer *p, char *err);
/* The ring in use; NULL: no encryption. */
const struct keyring *keyring_ring(const struct peer *p);
/* memberlist's AddKey, UseKey and RemoveKey on the ring in use, then the
 * --keyring file rewritten (the change undone if it cannot be): 1 when the
 * ring changed, 0 when not, -1 with err. */
enum key_change { KEY_INSTALL, KEY_USE, KEY_REMOVE };
int keyring_change(struct peer *p, enum key_change op, const uint8_t *key, size_t len, char *err);
/* A copy of kr becomes the ring in use (NULL: none), without SIGHUP; 0 or -1. */
int keyring_set(struct peer *p, const struct keyring *kr);
void keyring_stop(struct peer *p);

/* guard.c: --allow networks and per-source rate limits. */
enum limit_kind { LIMIT_PROBE = 1, LIMIT_STREAM = 2 };
int allow_net_parse(const char *s, struct allow_net *c, char *err);
int guard_allowed(const struct peer *p, const struct sockaddr *sa);
int guard_rate_ok(struct peer *p, enum limit_kind kind, const struct sockaddr *sa);
/* The source address as 4 bytes (IPv4, IPv4-mapped) or 16. */
void guard_source(const struct peer *p, const struct sockaddr *sa, struct ipbytes *ip);
void guard_free(struct peer *p);

/* clock.c */
double peer_now(struct peer *p);

/* net.c: UDP send path (piggyback, compound, CRC) and packet intake. */
int net_open(struct peer *p, char *err);
void net_close(struct peer *p);
void net_sendto(struct peer *p, const struct sockaddr *sa, socklen_t salen, const uint8_t *msg,
		size_t len, int crc);
void net_send_msg(struct peer *p, const struct sockaddr *sa, socklen_t salen, const uint8_t *msg,
		  size_t len, const struct node *to);
size_t net_send_max(const struct peer *p);
void net_send_node(struct peer *p, const struct node *n, const uint8_t *msg, size_t len);
void net_handle_packet(struct peer *p, const uint8_t *buf, size_t len, const struct sockaddr *from,
		       socklen_t fromlen);
int net_sockaddr(const struct ipbytes *ip, uint16_t port, struct sockaddr_storage *ss,
		 socklen_t *len);

/* members.c: the node table and its state machine. */
struct node *members_find(struct peer *p, const char *name);
void members_alive(struct peer *p, const struct msg_alive *a, int bootstrap);
void members_suspect(struct peer *p, const struct msg_accuse *s);
void members_dead(struct peer *p, const struct msg_accuse *d);
void members_merge(struct peer *p, struct msg_alive *states, size_t n);
void members_self_alive(struct peer *p);
void members_refute(struct peer *p, struct node *self, uint32_t accused);
void members_fill_state(const struct node *n, struct msg_alive *a);
size_t members_alive_others(struct peer *p);
void members_reap(struct peer *p);
int members_forgotten(struct peer *p, const struct node *n);
/* Members other than us in that state. */
size_t members_count(struct peer *p, enum node_state_type state);
void members_shuffle(struct peer *p);
void members_free(struct peer *p);
int members_random(struct peer *p, int k, int (*exclude)(struct peer *, const struct node *, const void *),
		   const void *ctx, struct node **out);
const char *members_status_name(enum node_state_type s);
/* A failed member that serf says has left (force-leave): member-leave. */
void members_set_left(struct peer *p, struct node *n);
/* Forgets a member at once (serf's prune). */
void members_erase(struct peer *p, struct node *n);
void members_awareness(struct peer *p, int delta);
/* Subscribes fn to membership changes, in the order of subscription. */
void members_watch(struct peer *p, member_watch_fn fn, void *ctx);

/* events.c: event lines on stdout. */
/* A member_watch_fn (ctx unused): the event line. */
void events_member(void *ctx, const char *event, const struct node *n);
void events_user(const uint8_t *name, size_t namelen, const uint8_t *payload, size_t payloadlen);
int tags_decode(const uint8_t *meta, size_t len, char keys[][128], char vals[][256], int max);
void format_escaped(char *out, size_t outlen, const char *s, const char *also);
const char *node_addr_text(const struct node *n, char *buf, size_t len);

/* gossip.c: the broadcast queue and the gossip timer. */
void gossip_queue(struct peer *p, const char *key, const uint8_t *msg, size_t len, int is_leave);
/* Appends up to max queued messages that fit in limit bytes (each costing
 * overhead more) to store, their lengths in lens; returns how many. */
size_t gossip_take(struct peer *p, size_t overhead, size_t limit, struct wbuf *store, size_t *lens,
		   size_t max);
int gossip_retransmit_limit(struct peer *p);
void gossip_tick(struct ev_loop *loop, ev_timer *w, int revents);
void gossip_free(struct peer *p);
int gossip_leave_pending(struct peer *p);
/* Messages in the queue. */
size_t gossip_queued(const struct peer *p);

/* probe.c: failure detection. */
void probe_tick(struct ev_loop *loop, ev_timer *w, int revents);
void probe_handle_ack(struct peer *p, const struct msg_seq *ack);
void probe_handle_nack(struct peer *p, uint32_t seq);
void probe_handle_ping(struct peer *p, const struct msg_ping *m, const struct sockaddr *from,
		       socklen_t fromlen);
void probe_handle_indirect(struct peer *p, const struct msg_indirect *m,
			   const struct sockaddr *from, socklen_t fromlen);
void probe_tcp_result(struct peer *p, uint32_t seq, int ok);
void probe_stop(struct peer *p);
/* Frees the module's state: the probe under way and the ack handlers. */
void probes_free(struct peer *p);

/* pushpull.c: TCP streams (push-pull, fallback ping, user messages). */
void stream_accept_cb(struct ev_loop *loop, ev_io *w, int revents);
enum pushpull_why { PP_SYNC, PP_JOIN, PP_RECONNECT };
int stream_pushpull(struct peer *p, const struct sockaddr *sa, socklen_t salen,
		    enum pushpull_why why);
int stream_ping(struct peer *p, const struct node *n, uint32_t seq, double deadline);
void streams_free(struct peer *p);
/* Outbound streams open. */
int streams_outbound(const struct peer *p);
/* Starts the catch-up after start; the delay until the first push-pull. */
double pushpull_first(struct peer *p);
void pushpull_tick(struct ev_loop *loop, ev_timer *w, int revents);

/* join.c: joining through the seeds (state of its own). */
int join_open(struct peer *p, char *err); /* starts trying at once */
/* A join push-pull ended (ok: it was answered). */
void join_result(struct peer *p, int ok);
/* A seed answered (or there is none): the node has joined. */
int join_done(const struct peer *p);
void join_close(struct peer *p);

/* reconnect.c: failed members tried again, and the reaper. */
void reconnect_tick(struct ev_loop *loop, ev_timer *w, int revents);
void reap_tick(struct ev_loop *loop, ev_timer *w, int revents);

/* serf.c: tags, intents and serf's user state. */
int serf_encode_tags(struct peer *p, char *err);
void serf_handle_user(struct peer *p, const uint8_t *msg, size_t len);
void serf_join_intent(struct peer *p);
void serf_leave_intent(struct peer *p, uint8_t *out, size_t *outlen, size_t max);
void serf_local_state(struct peer *p, struct wbuf *w);
void serf_merge_state(struct peer *p, const uint8_t *buf, size_t len, int join);
void serf_witness(struct peer *p, uint64_t ltime);
/* Sends a user event to the cluster (and delivers it here); 0 or -1 with err. */
int serf_user_event(struct peer *p, const uint8_t *name, size_t namelen, const uint8_t *payload,
		    size_t payloadlen, char *err);
void serf_events_free(struct peer *p);
/* serf's event clock: the next event time. */
uint64_t serf_event_clock(struct peer *p);
/* Events older than ltime are not delivered (a join, a restart from a snapshot). */
void serf_events_ignore_before(struct peer *p, uint64_t ltime);

/* query.c: serf queries (dedup, filters, rebroadcast, acks, internal queries). */
/* Decodes and checks messageQuery (the serf message after its type byte); 0 or -1. */
int query_decode(const uint8_t *buf, size_t len, struct msg_query *q);
/* A serf query message (type byte included): taken once, passed on as we
 * write it unless it says not to, answered when its filters select us. */
void query_handle(struct peer *p, const uint8_t *msg, size_t len);
/* A serf relay message (type byte included): a response passed on to its asker. */
void query_relay(struct peer *p, const uint8_t *msg, size_t len);
void query_witness(struct peer *p, uint64_t ltime);
/* serf's query clock: the next query time. */
uint64_t query_clock(struct peer *p);
/* Queries older than ltime are not taken (a join, a restart from a snapshot). */
void query_ignore_before(struct peer *p, uint64_t ltime);
/* Forgets the queries seen and the lower bound (the fuzzer's fresh start). */
void query_forget(struct peer *p);
void queries_free(struct peer *p);

/* control.c: the unix control socket, the node's side. */
int control_open(struct peer *p, const char *path, char *err);
void control_close(struct peer *p);

/* ctl.c: the control socket's client side. */
int control_members(const char *path, int json);
int control_event(const char *path, const char *name, const char *payload);
int control_force_leave(const char *path, const char *name);
int control_rtt(const char *path, const char *a, const char *b);
const char *control_default_path(char *buf, size_t len);

/* resolve.c: host names of service tags, looked up off the event loop. */
struct resolver;
enum name_state { NAME_PENDING, NAME_OK, NAME_FAILED };
struct resolver *resolver_new(struct peer *p);
/* Where the lookup of host stands, starting one when there is no answer or
 * the last is old; each answer that comes later calls poolsync_changed().
 * For NAME_FAILED, *why says why. */
enum name_state resolver_check(struct resolver *r, const char *host, const char **why);
void resolver_free(struct resolver *r);

/* poolsync.c: alive members with the service tag as pool backends. */
int poolsync_open(struct peer *p, char *err);
/* Something the pool is made from changed (a host name resolved): write soon. */
void poolsync_changed(struct peer *p);
void poolsync_close(struct peer *p);

/* intent.c: serf's join and leave intents about members. */
/* Applies an intent; 1 when it was news (to be passed on). */
int intent_leave(struct peer *p, const struct msg_intent *in);
int intent_join(struct peer *p, const struct msg_intent *in);
/* Applies an intent received by gossip and passes it on if it was news. */
void intent_handle(struct peer *p, const struct msg_intent *in, int leave);
/* A member just added: an intent about it that came first applies now. */
void intent_new_member(struct peer *p, struct node *n);
/* serf force-leave NAME from this node: 0, or -1 with err. */
int intent_force_leave(struct peer *p, const char *name, int prune, char *err);
void intents_free(struct peer *p);

/* coord.c: serf's network coordinates (Vivaldi). */
/* Our coordinate as serf's ping delegate puts it in an ack: [1][Coordinate]. */
void coord_ack_payload(struct peer *p, struct wbuf *w);
/* The payload of an ack to our direct probe of node, which took rtt seconds. */
void coord_from_ack(struct peer *p, const char *node, const uint8_t *payload, size_t len,
		    double rtt);
/* serf's Client.Update; 0, or -1 when the coordinate or rtt is refused. */
int coord_update(struct peer *p, const char *node, const struct msg_coord *other, double rtt);
/* Our coordinate (node is us) or the last one node sent; 0, or -1 if none. */
int coord_of(struct peer *p, const char *node, struct msg_coord *out);
/* The estimated round trip between two coordinates, in seconds. */
double coord_distance(const struct msg_coord *a, const struct msg_coord *b);
void coord_forget(struct peer *p, const char *node);
void coords_free(struct peer *p);

/* snapshot.c: serf's -snapshot: members and clocks kept in a file. */
/* Reads the file (its members become join candidates, its clocks are
 * witnessed) and starts keeping it; 0, or -1 with err. */
int snapshot_open(struct peer *p, char *err);
/* A clean leave: written once more, saying so, so a restart does not rejoin. */
void snapshot_leave(struct peer *p);
void snapshot_close(struct peer *p);

/* leave.c: the clean stop. */
/* SIGINT and SIGTERM start a clean stop (a second one exits at once); 0, or -1 with err. */
int leave_open(struct peer *p, char *err);
void leave_start(struct peer *p);
/* A clean stop is under way. */
int leave_started(const struct peer *p);
void leave_close(struct peer *p);

#endif
