/* The pool file: model and loader (see man/tcpdist.pool.5). */
#ifndef TCPDIST_POOL_H
#define TCPDIST_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "checkspec.h"
#include "cidr.h"
#include "err.h"
#include "hash.h"
#include "maglev.h"
#include "proxy.h"

#define POOL_NAME_MAX 63        /* backend name: [A-Za-z0-9._-], 1..63 bytes */
#define POOL_LINE_MAX 198       /* longest accepted line, without its newline */
#define POOL_FILE_MAX (16u << 20)
#define POOL_BACKENDS_MAX 10000
#define POOL_LISTEN_MAX 64
#define POOL_WEIGHT_MAX 256
#define POOL_MAX_CONNS_MAX 10000000
#define POOL_RETRIES_MAX 32
#define POOL_CONTROL_MAX 107 /* a Unix socket's path */
#define POOL_CLIENT_RATE_MAX 1000000 /* client_rate and its burst */
#define POOL_ZONES_MAX 64             /* zones, from [zone NAME] and backends' zone keys */
#define POOL_ZONE_NONE 0xffffu        /* a backend's or client's zone: none */
#define POOL_ZONE_TABLE_SIZE_DEFAULT 65521u /* why: tcpdist.pool(5), ZONES */

/* The SipHash reference key 00 01 .. 0f, documented in tcpdist.pool(5). */
#define POOL_HASH_SEED_DEFAULT "000102030405060708090a0b0c0d0e0f"

enum balance { BALANCE_HASH, BALANCE_ROUNDROBIN, BALANCE_LEASTCONN, BALANCE_RANDOM };
enum hash_key { HASH_KEY_IP, HASH_KEY_IP_PORT };
enum backend_state { BACKEND_UP, BACKEND_DRAIN, BACKEND_DOWN };
enum locality { LOCALITY_OFF, LOCALITY_PREFER, LOCALITY_STRICT };
enum { POOL_ALLOW = 0, POOL_DENY = 1 }; /* tags of pool->access: deny wins a tie */

struct pool_listen {
	struct addr addr;
	char text[ADDR_TEXT_LEN * 4]; /* as written, for messages */
	int line;
};

struct pool_backend {
	char name[POOL_NAME_MAX + 1];
	struct addr addr;
	char addr_text[ADDR_TEXT_LEN * 4]; /* as written */
	unsigned weight;
	enum backend_state state;
	unsigned max_conns; /* 0 = unlimited */
	int line;           /* line of the [backend NAME] header */
	int addr_line;      /* line of its address key, 0 if it has none */
	int backup;         /* takes new connections only while no other backend can */
	struct check_spec check; /* its own keys, the pool's for the rest */
	enum proxy_version proxy_protocol; /* its own, or else the pool's */
	int proxy_protocol_line;           /* 0: the pool's */
	char zone_name[POOL_NAME_MAX + 1]; /* its zone key, "" for none */
	unsigned zone;                     /* index in pool->zones, or POOL_ZONE_NONE */
};

/* A zone: a [zone NAME] section, or only named by backends (line 0). */
struct pool_zone {
	char name[POOL_NAME_MAX + 1];
	int line;
};

struct pool {
	struct pool_listen *listen;
	size_t nlisten;
	enum balance balance;
	enum hash_key hash_key;
	uint64_t connect_timeout_ms;
	uint64_t idle_timeout_ms; /* 0 = never */
	unsigned retries;
	uint64_t check_interval_ms; /* 0 = no active checks */
	unsigned check_rise;
	unsigned check_fall;
	unsigned max_conns; /* 0 = unlimited */
	uint64_t resolve_interval_ms; /* host names looked up again; 0 = never */
	char control[POOL_CONTROL_MAX + 1]; /* the control socket's path, "" for none */
	char instance[POOL_NAME_MAX + 1];   /* the metrics' instance label, "" for none */
	uint8_t hash_seed[HASH_SEED_LEN];
	uint32_t table_size; /* Maglev slots, a prime */
	struct check_spec check; /* the backends' defaults */
	/* The client's identity (tcpdist.pool(5), CLIENTS). */
	enum proxy_version proxy_protocol;   /* the backends' default */
	struct cidr_table accept_proxy_from; /* empty: clients send no PROXY header */
	uint64_t accept_proxy_timeout_ms;
	struct cidr_table access; /* allow (tag POOL_ALLOW) and deny (POOL_DENY) networks */
	size_t nallow;            /* with any allow, a client no entry matches is refused */
	unsigned client_max_conns;          /* per client; 0 = unlimited */
	unsigned client_rate, client_burst; /* new connections a second; 0 = unlimited */
	unsigned client_prefix6;            /* IPv6 clients are counted by this prefix */
	/* Locality (tcpdist.pool(5), ZONES): zones sorted by name, so their
	 * indexes do not depend on the order of sections. */
	enum locality locality;
	unsigned locality_overprovision; /* in hundredths: 140 is 1.4 */
	uint32_t zone_table_size;	 /* slots of each zone's Maglev tables, a prime */
	struct pool_zone *zones;
	size_t nzones;
	struct cidr_table zone_clients; /* tag: the zone's index */
	struct pool_backend *backends;
	size_t nbackends;
};

/* One problem found while loading: "FILE:LINE: KEY: reason" is how tools print it. */
typedef void (*pool_problem_fn)(void *ctx, const char *path, int line, const char *msg);

/* Loads and validates a pool file. Returns NULL on error with the first
 * problem in err as "FILE:LINE: key: reason" (or "FILE: reason"). */
struct pool *pool_load(const char *path, char *err);

/* A whole pool file (at most POOL_FILE_MAX bytes, NUL-terminated) into a
 * malloc'd buffer; on failure why gets the reason without the path. */
char *pool_read(const char *path, size_t *len, char *why);

/* Same input, but from memory (path is used only in messages). */
struct pool *pool_parse(const char *path, const char *data, size_t len, char *err);

/* pool_parse() with host names checked for their form only, never looked up,
 * for a verdict on an event loop that must not wait on DNS. Their backends
 * and listen entries have no address (AF_UNSPEC): the result is for its
 * verdict, not for use. */
struct pool *pool_parse_unresolved(const char *path, const char *data, size_t len, char *err);

/* Reports every problem, not only the first, through fn; returns the count
 * (0 means the file is valid). */
int pool_check(const char *path, pool_problem_fn fn, void *ctx);

void pool_free(struct pool *pool);

/* 32 hexadecimal digits into 16 bytes; -1 if malformed. */
int hash_seed_parse(const char *hex, uint8_t seed[HASH_SEED_LEN]);

/* A backend NAME: 1-63 of A-Z a-z 0-9 . _ - */
int pool_name_valid(const char *s);

/* Backend by name, or NULL. */
const struct pool_backend *pool_find_backend(const struct pool *pool, const char *name);

const char *balance_name(enum balance b);
const char *hash_key_name(enum hash_key k);
const char *backend_state_name(enum backend_state s);
const char *proxy_protocol_name(enum proxy_version v); /* off, v1, v2 */
const char *locality_name(enum locality l);           /* off, prefer, strict */
/* The zone of a client address (longest prefix of the zones' clients), or
 * POOL_ZONE_NONE; the zone named name, or POOL_ZONE_NONE. */
unsigned pool_client_zone(const struct pool *pool, const struct sockaddr *sa);
unsigned pool_find_zone(const struct pool *pool, const char *name);
/* client_rate as written: "N/s" or "N/s:BURST", "0" for none. */
void client_rate_format(unsigned rate, unsigned burst, char *buf, size_t len);

#endif
