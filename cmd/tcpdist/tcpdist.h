/* tcpdist internals shared by its source files.
 *
 * Threads, and what each runs:
 * - the main thread (main.c's loop): signals and the drain, the pool file's
 *   watch (watch.c), applying loads (reload.c, listeners_update), active
 *   health checks (health.c) and the metrics server (metrics.c). Nothing on
 *   it waits: no DNS, no table build, no file read that can hang.
 * - the loader thread (loader.c, resolve.c): reads and parses the pool file,
 *   looks up its host names with a deadline and builds the farm, then hands
 *   the result to the main loop. One load at a time.
 * - the workers (worker.c, listener.c's accept side, conn.c, relay.c,
 *   farm.c's pick, proxyconn.c, admit.c): one libev loop each, their own
 *   listeners and connections; they read farms and upstreams, which are
 *   immutable or atomic, and talk to the main thread through ev_async and
 *   proc->lock. The client table (clients.c) they share under its own locks.
 * The process state lives in struct proc; each module keeps its own behind a
 * pointer there (loader, watch, metrics), none in file-static variables. */
#ifndef TCPDIST_TCPDIST_H
#define TCPDIST_TCPDIST_H

#include <ev.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "balance.h"
#include "checkproto.h"
#include "maglev.h"
#include "pool.h"
#include "tier.h"
#include "zone.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* Relay tuning. A direction starts copying through the worker's scratch
 * buffer and switches to splice(2) once a single read fills SPLICE_AFTER
 * bytes: small request/response traffic is cheaper to copy, bulk to splice. */
#define RELAY_SCRATCH (64 * 1024)
#define RELAY_SPLICE_AFTER (32 * 1024)
#define RELAY_PIPE_SIZE (64 * 1024)
#define RELAY_ROUNDS 8 /* reads per direction per event, for fairness */
#define CACHE_MAX 64   /* idle pipes and buffers a worker keeps */
#define ACCEPT_BATCH 64

struct options {
	const char *pool_path;
	const char *listen[POOL_LISTEN_MAX]; /* -l, overrides the pool's listen lines */
	size_t nlisten;
	const char *metrics;                 /* --metrics ADDR, or NULL */
	const char *control;                 /* --control PATH, or NULL: the pool's */
	int takeover;                        /* --takeover: the running tcpdist's sockets */
	int threads;
	int check_only;
	int verbose;
	int log_connections;
	int use_syslog;
	int log_format;                      /* enum log_format */
	int splice;
	uint64_t drain_timeout_ms;
};

/* Why a client was refused, for the metrics. */
enum fail_reason {
	FAIL_NO_BACKEND, FAIL_CONNECT, FAIL_RESOURCES, FAIL_FULL,
	FAIL_ZONE, /* locality = strict: the client's zone has no available backend */
	FAIL_REASONS
};
/* Why a backend connect failed. */
enum connect_error { CONNECT_REFUSED, CONNECT_TIMEOUT, CONNECT_OTHER, CONNECT_ERRORS };
/* Why a client was turned away before a backend was chosen (admit.c). */
enum refuse_reason {
	REFUSE_PROXY_UNTRUSTED, REFUSE_PROXY_TIMEOUT, REFUSE_PROXY_INVALID,
	REFUSE_DENIED, REFUSE_CLIENT_MAX_CONNS, REFUSE_CLIENT_RATE, REFUSE_REASONS,
};

/* Health checks of one backend: the main thread's alone. */
struct check {
	ev_timer timer;
	ev_io io;
	int fd;
	unsigned rises;         /* successes in a row while down */
	unsigned falls;         /* failures in a row (client connects do not reset them) */
	uint64_t interval_ms;   /* 0: not running */
	unsigned sync_gen;      /* marks the backends of the newest farm */
	struct proc *proc;      /* whose loop runs the check */
	const struct pool_backend *cfg; /* its settings in the farm in force */
	struct check_run *run;  /* the check under way, NULL between checks */
	ev_tstamp started;      /* when the check under way, or the last, began */
	double last_duration;   /* seconds the last check took */
	enum check_result last_result;
	char last_reason[CHECK_REASON_LEN]; /* why the last check failed, "" if it passed */
	unsigned long long cut_for; /* on_down = shutdown: the went_down its connections were reset for */
};

/* Histogram buckets (exposition.c): their upper bounds in seconds, and the
 * bucket a value falls in (n for +Inf). */
#define CONNECT_BUCKETS 12
#define DURATION_BUCKETS 12
extern const double connect_bounds[CONNECT_BUCKETS];
extern const double duration_bounds[DURATION_BUCKETS];
unsigned hist_bucket(const double *bounds, unsigned n, double v);

/* A backend as the running proxy knows it: its identity (name and address)
 * and its live state. It outlives reloads that keep both, so health and
 * counters carry over; farms and connections hold references. */
struct upstream {
	char name[POOL_NAME_MAX + 1];
	struct addr addr;
	char addr_text[ADDR_TEXT_LEN];
	atomic_uint refs;
	atomic_uint active;         /* connections being opened or relayed */
	atomic_ullong total;        /* connections relayed */
	atomic_ullong connect_errors[CONNECT_ERRORS];
	atomic_int down;            /* failing health checks */
	atomic_uint fails;          /* failures in a row, passive and active */
	atomic_ullong went_down, came_up;
	atomic_ullong ramp_from;    /* slowstart: monotonic ms it came up at, 0 if at full weight */
	atomic_ullong bytes_in, bytes_out; /* relayed to and from it */
	atomic_ullong connect_hist[CONNECT_BUCKETS + 1]; /* its connect times (exposition.c) */
	atomic_ullong connect_us;                        /* their sum */
	atomic_ullong changed_ms;  /* Unix time of its last change of health or state */
	pthread_mutex_t reason_lock;
	char reason[160];          /* why it is down, or the last check's result */
	struct check check;
};

struct upstream *upstream_create(const struct pool_backend *b);
void upstream_ref(struct upstream *u);
void upstream_unref(struct upstream *u);
/* The health reason, set by whoever changes the health (any thread). */
void upstream_set_reason(struct upstream *u, const char *reason);
void upstream_reason(struct upstream *u, char *out, size_t len);
void upstream_changed(struct upstream *u); /* stamps changed_ms with now */

/* A backend's place in one configuration. */
struct farm_backend {
	struct upstream *up;
	unsigned weight;
	enum backend_state state;
	unsigned max_conns;
	uint8_t backup;
	uint64_t slowstart_ms;
	enum proxy_version proxy; /* the PROXY header it is sent, or PROXY_OFF */
};

/* One configuration, immutable once published: the pool, its backends and,
 * for balance = hash, the tables (primaries', backups') tcphash computes.
 * Workers, connecting clients and running checks hold references; the last
 * one frees it. */
struct farm {
	atomic_uint refs;
	struct pool *pool;
	struct farm_backend *b;
	size_t n;
	uint32_t *by_name; /* indexes of b in name order, for farm_find */
	struct tiers tiers;
	struct zone_set zones; /* locality: a table per zone (zone.h), beside the global ones */
	int has_backup;    /* some backend has backup = yes */
	int has_slowstart; /* some backend has a slowstart */
	struct clients *clients; /* client_max_conns and client_rate's, or NULL (clients.c) */
};

/* Builds a farm from pool (taken over on success), reusing prev's upstreams
 * whose name and address are unchanged. */
struct farm *farm_create(struct pool *pool, const struct farm *prev, char *err);
void farm_ref(struct farm *f);
void farm_unref(struct farm *f);
/* The backend named name, or NULL (f may be NULL). */
const struct farm_backend *farm_find(const struct farm *f, const char *name);
/* Whether backend i can take a new connection (health included). */
int farm_available(const struct farm *f, size_t i);
size_t farm_count_available(const struct farm *f);
int farm_zone_available(const struct farm *f, unsigned zone); /* some backend of zone is */
/* Whether no primary is available and the backups take the clients. */
int farm_backup_in_use(const struct farm *f);
/* slowstart: the share of its weight backend i has at now_ms, in
 * 1/RAMP_FULL; RAMP_FULL once its slow start is over. */
#define RAMP_FULL 1024u
#define RAMP_MIN 16u /* where a slow start begins: 1/64 */
unsigned farm_ramp(const struct farm *f, size_t i, uint64_t now_ms);
uint64_t monotonic_ms(void);

struct listener {
	ev_io io;
	struct worker *worker;
	struct listener *next;
	uint64_t id;
	int fd;
	int draining;   /* removed: its backlog is being accepted (listener.c) */
	int shared;     /* held by systemd as well: closed without draining */
	ev_timer drain; /* the handshakes under way when it was removed */
	ev_tstamp drain_end; /* when those no longer hold the close back */
	char text[ADDR_TEXT_LEN];
	union proxy_addr local; /* its address, when not a wildcard (has_local) */
	int has_local;          /* so PROXY headers need no getsockname per client */
};

/* A change to a worker's listeners, queued by the main thread. */
struct listener_op {
	struct listener_op *next;
	uint64_t id;
	int fd; /* -1: close listener id */
	int shared; /* held by systemd as well (see listen_entry) */
	char text[ADDR_TEXT_LEN];
};

/* Counters a worker alone writes; others read them relaxed. */
struct worker_stats {
	atomic_ullong duration_hist[DURATION_BUCKETS + 1]; /* relayed sessions' lengths */
	atomic_ullong duration_ms;                         /* their sum */
	atomic_ullong retries; /* connects that failed and went on to another backend */
	atomic_ullong accepted;
	atomic_ullong failed[FAIL_REASONS];
	atomic_ullong bytes_in;  /* client to backend */
	atomic_ullong bytes_out; /* backend to client */
	atomic_ullong refused[REFUSE_REASONS];
	atomic_ullong proxy_headers[3]; /* PROXY headers received, by version (1, 2) */
};

static inline void stat_add(atomic_ullong *s, unsigned long long n)
{
	atomic_store_explicit(s, atomic_load_explicit(s, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

enum { PAUSE_FDS = 1, PAUSE_LIMIT = 2 }; /* why a worker stopped accepting */

/* Per-thread state: one libev loop, its listeners and its connections. */
struct worker {
	int id;
	pthread_t thread;
	struct ev_loop *loop;
	struct proc *proc;
	const struct options *opt;
	struct farm *farm; /* the newest configuration this thread has taken */
	struct listener *listeners;
	struct listener_op *ops; /* under proc->lock */
	ev_async stop;  /* stop accepting, finish connections */
	ev_async force; /* close everything now */
	ev_async reconfig; /* a new farm or listener changes are waiting */
	ev_async resume;   /* descriptors given back, or the pool below max_conns */
	ev_timer fd_retry; /* out of descriptors: try accepting again */
	ev_async survey;   /* questions from the main thread are waiting */
	struct survey_node *surveys; /* under proc->lock */
	atomic_int stopping;
	atomic_int paused; /* PAUSE_ bits */
	atomic_size_t nconns;
	struct conn *conns; /* all open connections, for a forced close */
	ev_tstamp emfile_logged;
	struct worker_stats stats;

	/* Selection state owned by this thread, sized for farm. */
	struct balance_candidate *cand;
	int64_t *rr_current;
	size_t lc_cursor;
	uint64_t rng;

	/* Relay resources: shared scratch plus small caches so idle
	 * connections hold neither pipes nor buffers. */
	char *scratch;
	char *buf_cache[CACHE_MAX];
	int nbuf_cache;
	int pipe_cache[CACHE_MAX][2];
	int npipe_cache;
	void (*on_exit)(struct worker *w);
};

/* A listen address as the main thread tracks it. */
struct listen_entry {
	struct listen_entry *next;
	uint64_t id;
	struct addr addr;    /* as configured (port 0 stays 0) */
	int v6only;          /* [::]:P beside an IPv4 address with port P */
	int sockets;         /* removed: how many are still open, under proc->lock */
	int nsockets;        /* its sockets over all workers (more when inherited) */
	int shared;          /* systemd holds its socket too: closing resets no one */
	char text[ADDR_TEXT_LEN];
};

/* fdbudget.c: the descriptors worker threads may hold for connections. */
struct fd_budget {
	atomic_long held;   /* clients, backends, relay pipes */
	atomic_long other;  /* the rest of the process: stdio, loops, listeners */
	atomic_int waiting; /* workers paused until some are given back */
	long nofile;        /* soft RLIMIT_NOFILE; 0: no budget yet */
	long reserve;       /* never taken by the workers */
};

#define CONN_FDS 2 /* a client's socket and its backend's */

void fd_budget_init(struct fd_budget *b, int nworkers);
int fd_take(struct fd_budget *b, long n); /* -1: past the budget */
void fd_give(struct fd_budget *b, long n);
long fd_room(const struct fd_budget *b);
void fd_other_add(struct fd_budget *b, long n);

/* admit.c: refused clients are logged at most once a second per reason. */
struct refusals {
	atomic_llong logged_ms[REFUSE_REASONS]; /* when the last line was, monotonic */
	atomic_ullong quiet[REFUSE_REASONS];    /* refused since without a line */
};

/* The process: what the main thread owns and the workers share. */
struct proc {
	const struct options *opt;
	struct worker *workers;
	int nworkers;
	pthread_mutex_t lock; /* guards farm and every worker's ops */
	struct farm *farm;    /* the configuration in force */
	struct listen_entry *listens;
	struct listen_entry *closing; /* removed, some sockets still draining */
	uint64_t next_listen_id;
	struct fd_budget fds;
	struct ev_loop *loop; /* the main thread's */
	ev_async health_changed;
	ev_async survey_done;          /* every worker answered a survey */
	struct survey *surveys_done;   /* under lock */
	struct ctlserver *control;     /* the control socket (control.c), or NULL */
	size_t available;     /* backends able to take connections, last seen */
	int backup_in_use;    /* the backups take new connections, last seen */
	atomic_int paused_for_limit;
	struct run *run;               /* main.c's: signals and the drain */
	struct loader *loader;         /* loads run off the main loop */
	struct watch *watch;           /* the pool file's inotify watch */
	atomic_uint file_gen;          /* bumped by each change to the pool file (watch.c) */
	uint64_t rng;                  /* the main thread's random numbers (check jitter) */
	unsigned health_gen;           /* marks the backends of the newest farm */
	unsigned checks_running;       /* health checks holding a socket */
	/* reloads */
	unsigned long long reloads, reload_failures;
	double last_reload; /* Unix time of the last successful load */
	double started_at;  /* Unix time the process started */
	char resolve_error[ERR_LEN * 2]; /* the last failure of names looked up again */
	char reload_error[ERR_LEN * 2];  /* why the last reload failed, "" after a success */
	uint64_t pool_digest;            /* of the bytes of the pool in force */
	struct metrics_server *metrics; /* --metrics, or NULL: metrics.c's */
	struct refusals refusals;       /* admit.c's log of refused clients */
	struct zone_stats *_Atomic zone_stats; /* zonestats.c's, made on first use */
};

int worker_init(struct worker *w, int id, struct proc *proc, struct farm *farm);
int worker_start(struct worker *w);
void worker_destroy(struct worker *w);
void worker_pause(struct worker *w, int why);
void worker_unpause(struct worker *w, int why);
void worker_out_of_fds(struct worker *w, const char *listener);
size_t proc_connections(const struct proc *p);
/* Hands the newest farm to every worker. */
void proc_publish(struct proc *p, struct farm *f);

/* listener.c */
int listeners_update(struct proc *p, const struct pool_listen *addrs, size_t n, char *err);
/* Before the first listeners_update: sockets handed over by a previous
 * tcpdist (--takeover) or by systemd (shared), taken as if we had opened
 * them; the update then keeps those the pool lists and drains the rest. */
int listeners_adopt(struct proc *p, const int *fds, size_t n, int shared, char *err);
void listeners_apply(struct worker *w, struct listener_op *ops);
void listeners_close(struct worker *w);
void listeners_watch(struct worker *w); /* after the worker's pause changed */
void listen_entries_free(struct proc *p);
/* -1 if a backend's address is one of pool's listeners: a loop. */
int listen_loop_check(const struct pool *pool, char *err);

/* survey.c: a question every worker answers on its own thread (nothing else
 * may walk its connections); done runs on the main loop once all have. */
struct survey;
typedef void (*survey_ask_fn)(struct worker *w, struct survey *s);
typedef void (*survey_done_fn)(struct survey *s);
struct survey {
	struct proc *p;
	survey_ask_fn ask;
	survey_done_fn done;
	void *ctx;
	atomic_int left;           /* workers yet to answer */
	struct survey_node *nodes; /* one per worker, for its queue */
	struct survey *next_done;
};
struct survey *survey_new(struct proc *p, survey_ask_fn ask, survey_done_fn done, void *ctx);
void survey_start(struct survey *s);
void survey_free(struct survey *s);
void survey_proc_init(struct proc *p);
void survey_worker_init(struct worker *w);
void survey_answer(struct worker *w); /* on the worker, also as its loop ends */
void survey_finish(struct proc *p);   /* main loop: the done callbacks */

/* farm.c: pick a backend for a connection, skipping the ones in tried[];
 * zone is the client's (POOL_ZONE_NONE: none), *where how it was picked. */
int farm_pick(struct worker *w, const struct farm *f, uint64_t client_hash, unsigned zone,
	      const uint32_t *tried, size_t ntried, enum zone_where *where);

/* health.c: passive results from workers, active checks on the main loop. */
void health_connect_ok(struct upstream *u);
void health_connect_failed(struct proc *p, const struct farm *f, struct upstream *u, int error);
void health_sync(struct proc *p, struct farm *next, struct farm *prev);
void health_stop_all(struct farm *f);
void health_availability(struct proc *p);
/* Main thread, when a worker marked a backend down: re-checks what is available
 * (and with checks off, takes it up again). */
void health_changed(struct proc *p);

/* loader.c: a load (read, parse, look up names, build the farm) runs on the
 * loader thread; its result is applied on the main loop (reload.c). */
enum { LOAD_FILE = 1, LOAD_FORCE = 2, LOAD_RESOLVE = 4 }; /* why a load runs */
enum load_outcome { LOAD_READY, LOAD_FAILED, LOAD_GONE };
struct load_result {
	enum load_outcome outcome;
	int why;               /* LOAD_ bits */
	struct farm *farm;     /* LOAD_READY */
	uint64_t digest;       /* LOAD_READY: of the file's bytes */
	unsigned file_gen;     /* proc->file_gen when the load began */
	char err[ERR_LEN * 2]; /* LOAD_FAILED */
};
int loader_init(struct proc *p, char *err);
/* At the start and for -n, on the caller's thread (names looked up too). */
struct pool *config_load(struct proc *p, char *err);
int loader_start(struct proc *p, char *err);
void loader_request(struct proc *p, int why);
/* The pool in force changed: (re)arms or stops resolve_interval's timer. */
void loader_names_changed(struct proc *p);
void loader_close(struct proc *p);
void load_result_free(struct load_result *r);
/* Whether the bytes last read from the file differ from the pool in force. */
int loader_file_differs(struct proc *p);

/* resolve.c: the pool's host names, looked up with a deadline (loader thread). */
struct resolver *resolver_new(void);
int resolver_free(struct resolver *r); /* -1: lookups glibc still owns keep it */
int pool_has_names(const struct pool *pool);
int resolve_pool(struct resolver *r, struct pool *pool, const char *path, uint64_t timeout_ms,
		 const atomic_int *quit, char *err);

/* reload.c: applies a load's result (main thread). */
void reload_apply(struct proc *p, struct load_result *res);

/* watch.c: inotify on the pool's directory asks for loads (main thread). */
int watch_init(struct proc *p, char *err);
void watch_reload(struct proc *p, int force);
/* A writer created the pool file and has not closed it yet. */
int watch_writing(const struct proc *p);
void watch_close(struct proc *p);

/* control.c: the control socket (main thread). */
int control_open(struct proc *p, const char *path, int replace, char *err);
void control_close(struct proc *p);
const char *control_path(const struct proc *p);

/* takeover.c: listening sockets from a previous tcpdist or from systemd. */
struct inherited {
	int *fds;
	size_t n;
	int sock; /* --takeover: the old process's control connection, or -1 */
};
int takeover_send(int sock, const int *fds, size_t n);
int takeover_receive(const char *path, struct inherited *in, char *err);
void takeover_ok(struct inherited *in);
int systemd_listen_fds(struct inherited *in, char *err);
void inherited_free(struct inherited *in);

/* main.c: stops as on SIGTERM (a takeover's end). */
void proc_stop(struct proc *p);
/* Tells systemd how things stand (STATUS=), when it listens. */
void proc_notify_status(struct proc *p);

/* ctl.c: tcpdist status | sessions | kill. */
int ctl_main(int argc, char **argv);

/* exposition.c: the metrics as Prometheus text; metrics.c serves them. */
struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
};
void sb_printf(struct sbuf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
void metrics_render(const struct proc *p, struct sbuf *b);

/* zonestats.c: locality's counters, by client zone and backend zone
 * names ("-": none); kind is an enum zone_where or ZONE_STATS_REFUSED. */
#define ZONE_STATS_REFUSED ZONE_WHERES
#define ZONE_STATS_KINDS (ZONE_WHERES + 1)
struct zone_pair;
const struct zone_pair *zone_stats_pair(struct proc *p, const char *czone, const char *bzone);
void zone_stats_count(const struct zone_pair *pair, int kind);
/* The client's zone (backend 0) or its backend's (1); "-" for NULL. */
const char *zone_pair_name(const struct zone_pair *pair, int backend);
void zone_stats_render(const struct proc *p, struct sbuf *b);
void zone_stats_free(struct proc *p);

/* metrics.c: the server lives in p->metrics; closing twice is harmless. */
int metrics_init(struct proc *p, const char *addr, char *err);
void metrics_close(struct proc *p);

/* One direction of a relay. */
struct half {
	int pipe[2];        /* -1 when none is held */
	uint32_t pipe_bytes;
	char *buf;          /* pending copy data, NULL when none */
	uint32_t buf_off;
	uint32_t buf_len;
	uint8_t splice;     /* copy, splice, or splice found impossible */
	uint8_t eof;        /* its source sent FIN */
	uint8_t eof_first;  /* before the other direction's */
	uint8_t shut;       /* FIN passed on to its destination */
	uint8_t blocked;    /* destination is full: wait for it to be writable */
	uint8_t drained;    /* its source was just read empty: wait for epoll (relay_fill) */
	uint8_t held;       /* a PROXY header waits for the client's first bytes (relay_fill) */
	uint64_t bytes;
};

struct attempts; /* connect failures, kept only while connecting */

/* How a connection ended, for --log-connections. */
enum conn_end {
	END_CLIENT_CLOSE, END_BACKEND_CLOSE, END_CLIENT_RESET, END_BACKEND_RESET,
	END_IDLE, END_NO_BACKEND, END_SHUTDOWN, END_ERROR, END_KILLED,
	END_PROXY, END_DENIED, END_CLIENT_LIMIT,
};

struct conn {
	ev_io cio; /* client socket */
	ev_io bio; /* backend socket */
	ev_timer timer; /* connect timeout, then idle timeout */
	struct worker *w;
	struct farm *farm;   /* held while connecting: tried[] indexes it */
	struct upstream *up; /* held from the pick to the close */
	struct attempts *attempts;
	struct half c2b, b2c;
	ev_tstamp started, last_active;
	uint64_t idle_ms;
	uint64_t hash; /* of the client, for balance = hash */
	uint32_t picked; /* index of up in farm */
	float connect_secs; /* its backend's handshake, for the connection log */
	struct conn *prev, *next;
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} client; /* from its PROXY header, if it sent one: what everything reads */
	union proxy_addr dst; /* where it connected to (has_dst): that header's, or its listener's */
	struct proxy_wait *pp; /* its PROXY header, while it comes in pieces */
	struct clients *clients; /* held while counted there: client_slot */
	uint32_t client_slot;
	uint8_t connected;
	uint8_t has_dst;
	uint8_t retries;      /* backends tried before the one that took it */
	uint8_t where;        /* enum zone_where: how its backend was picked */
	uint16_t zone;        /* the client's zone in farm->pool, or POOL_ZONE_NONE */
	uint8_t zoned;        /* its pool has zones: the log names them */
	uint8_t tier;         /* for the log, in pools with backups: 1 primary, 2 backup, 3 none; else 0 */
	float connect_at;     /* while connecting: when this attempt began, after started */
	const struct zone_pair *zones; /* the client's and its backend's zones, for the log */
};

/* local: the listener's own address, NULL for a wildcard. */
void conn_accepted(struct worker *w, int fd, const struct sockaddr *sa, socklen_t len,
		   const union proxy_addr *local);
void conn_close(struct conn *c, int reset, enum conn_end end);
void conn_close_all(struct worker *w);
const char *conn_client_text(const struct conn *c, char *buf, size_t len);
const char *connect_error_text(int error);

/* sessions.c: live connections for the control socket (survey questions). */
struct session_row {
	char client[ADDR_TEXT_LEN];
	char backend[POOL_NAME_MAX + 1];
	char listener[ADDR_TEXT_LEN];
	double age;
	uint64_t in, out;
	int connected;
};
struct session_rows {
	struct session_row *rows;
	size_t n, cap;
	size_t total; /* matching, listed or not (killed, for a kill) */
	int truncated_by_memory;
};
struct session_query {
	char backend[POOL_NAME_MAX + 1]; /* "" for any */
	int by_client, client_has_port;
	uint8_t client_ip[16];
	uint16_t client_port;
	size_t limit;
	int nworkers;
	struct session_rows *per; /* one per worker */
};
struct session_query *session_query_new(int nworkers);
void session_query_free(struct session_query *q);
void session_ip_key(const struct sockaddr *sa, uint8_t ip[16], uint16_t *port);
void sessions_ask(struct worker *w, struct survey *s);
void sessions_kill(struct worker *w, struct survey *s);

/* admit.c: who may connect. After the client is known (its PROXY header
 * read, if any): allow/deny, then client_max_conns and client_rate. */
int conn_admit(struct conn *c); /* 0, or -1: refused and closed */
void conn_unadmit(struct conn *c); /* at its close */
void conn_refuse(struct conn *c, enum refuse_reason r, const char *fmt, ...) PRINTF_LIKE(3, 4);
void conn_identified(struct conn *c); /* conn.c: admits it and connects */

/* proxyconn.c: the PROXY protocol on client connections. */
void proxy_accept(struct conn *c); /* waits for the client's header */
/* Connected to a backend that takes header v (or PROXY_OFF): the header,
 * then the client's bytes read with its own, go first. -1: it failed, and
 * the connection is closed. */
int proxy_connected(struct conn *c, enum proxy_version v);
/* A health check's first bytes to a backend that takes header v. */
int proxy_check_hello(int fd, enum proxy_version v);

/* clients.c: the bounded table of clients, shared by the workers. */
enum client_verdict { CLIENT_OK, CLIENT_UNCOUNTED, CLIENT_MAX_CONNS, CLIENT_RATE };
struct clients_stats {
	unsigned long size, used;
	unsigned long long evicted, full;
};
/* *out: prev's table (a reference) if any, else a new one if pool has limits. */
int clients_carry(struct clients **out, struct clients *prev, const struct pool *pool, char *err);
void clients_ref(struct clients *t);
void clients_unref(struct clients *t);
enum client_verdict clients_take(struct clients *t, const struct sockaddr *sa,
				 const struct pool *pool, uint32_t *slot);
void clients_release(struct clients *t, uint32_t slot);
void clients_stats(const struct clients *t, struct clients_stats *s);

/* relay.c */
void relay_start(struct conn *c);
/* Bytes to send the backend before any read from the client: at the front
 * (the PROXY header) or after what is held already (the client's own). */
int relay_queue(struct conn *c, const void *data, size_t len, int front);
/* n bytes read from h's source: counted for the connection, the worker and
 * the backend. */
void relay_count(struct conn *c, struct half *h, size_t n);
void relay_release(struct worker *w, struct half *h);
void relay_cache_free(struct worker *w);
void relay_pipes_drop(struct worker *w); /* idle pipes given back to the budget */

#endif
