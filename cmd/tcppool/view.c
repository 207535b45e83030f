/* tcppool list, show and check: reading the pool, never writing it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "num.h"
#include "tcppool.h"

static struct pool *load(const char *path)
{
	char err[ERR_LEN];
	struct pool *p = pool_load(path, err);

	if (p == NULL)
		fprintf(stderr, "tcppool: %s\n", err);
	return p;
}

int run_list(const struct command *c)
{
	struct pool *p = load(c->pool_path);
	struct out o;

	if (p == NULL)
		return 2;
	out_init(&o, stdout, c->json ? OUT_JSON : OUT_ROWS, 1);
	for (size_t i = 0; i < p->nbackends; i++) {
		const struct pool_backend *b = &p->backends[i];

		out_record_begin(&o);
		out_str(&o, "name", b->name);
		out_str(&o, "address", b->addr_text);
		out_uint(&o, "weight", b->weight);
		out_str(&o, "state", backend_state_name(b->state));
		out_record_end(&o);
	}
	out_end(&o);
	pool_free(p);
	return 0;
}

static void show_duration(struct out *o, const char *key, uint64_t ms)
{
	char buf[32];

	duration_format(ms, buf, sizeof(buf));
	out_str(o, key, buf);
}

/* The check keys in force, defaults included: check_steps lists the
 * check_send and check_expect lines as "send TEXT" and "expect TEXT", TEXT
 * with its escapes as it would be written. */
static void show_check(struct out *o, const struct check_spec *s, const struct pool *p)
{
	char buf[CHECK_TEXT_MAX * 4 + 16], text[CHECK_TEXT_MAX * 4 + 8];

	out_str(o, "check", check_kind_name(s->kind));
	out_list_begin(o, "check_steps");
	for (size_t i = 0; s->steps && i < s->steps->n; i++) {
		const struct check_step *st = &s->steps->step[i];

		check_text_encode(text, sizeof(text), st->text, st->len, st->len);
		snprintf(buf, sizeof(buf), "%s %s%s", st->kind == STEP_SEND ? "send" : "expect",
			 st->kind == STEP_EXPECT_RE ? "~" : "", text);
		out_list_str(o, "check_steps", buf);
	}
	out_list_end(o);
	snprintf(buf, sizeof(buf), "%s %s", s->http_method ? s->http_method : "GET",
		 s->http_path ? s->http_path : "/");
	out_str(o, "check_http", buf);
	check_status_format(s, buf, sizeof(buf));
	out_str(o, "check_expect_status", buf);
	out_uint(o, "check_port", s->port);
	show_duration(o, "check_timeout",
		      check_spec_timeout(s, p->connect_timeout_ms, p->check_interval_ms));
	out_str(o, "on_down", check_on_down_name(s->on_down));
	show_duration(o, "slowstart", s->slowstart_ms);
}

/* The networks of t with tag (any with -1), in the order they are matched. */
static void show_networks(struct out *o, const char *key, const struct cidr_table *t, int tag)
{
	char net[CIDR_TEXT_LEN];

	out_list_begin(o, key);
	for (size_t i = 0; i < t->n; i++) {
		if (tag >= 0 && t->e[i].tag != tag)
			continue;
		cidr_format(&t->e[i].net, net, sizeof(net));
		out_list_str(o, key, net);
	}
	out_list_end(o);
}

/* The keys of the client's identity (tcpdist.pool(5), CLIENTS). */
static void show_clients(struct out *o, const struct pool *p)
{
	char rate[32];

	out_str(o, "proxy_protocol", proxy_protocol_name(p->proxy_protocol));
	show_networks(o, "accept_proxy_from", &p->accept_proxy_from, -1);
	show_duration(o, "accept_proxy_timeout", p->accept_proxy_timeout_ms);
	show_networks(o, "allow", &p->access, POOL_ALLOW);
	show_networks(o, "deny", &p->access, POOL_DENY);
	out_uint(o, "client_max_conns", p->client_max_conns);
	client_rate_format(p->client_rate, p->client_burst, rate, sizeof(rate));
	out_str(o, "client_rate", rate);
	out_uint(o, "client_prefix6", p->client_prefix6);
}

/* Every setting of [pool], defaults included. */
static void show_pool(struct out *o, const struct pool *p)
{
	char seed[2 * HASH_SEED_LEN + 1];

	for (int i = 0; i < HASH_SEED_LEN; i++)
		snprintf(seed + 2 * i, 3, "%02x", p->hash_seed[i]);
	out_record_begin(o);
	out_list_begin(o, "listen");
	for (size_t i = 0; i < p->nlisten; i++)
		out_list_str(o, "listen", p->listen[i].text);
	out_list_end(o);
	out_str(o, "balance", balance_name(p->balance));
	out_str(o, "hash_key", hash_key_name(p->hash_key));
	show_duration(o, "connect_timeout", p->connect_timeout_ms);
	show_duration(o, "idle_timeout", p->idle_timeout_ms);
	out_uint(o, "retries", p->retries);
	show_duration(o, "check_interval", p->check_interval_ms);
	out_uint(o, "check_rise", p->check_rise);
	out_uint(o, "check_fall", p->check_fall);
	out_uint(o, "max_conns", p->max_conns);
	show_duration(o, "resolve_interval", p->resolve_interval_ms);
	out_str(o, "control", p->control[0] ? p->control : "-");
	out_str(o, "instance", p->instance[0] ? p->instance : "-");
	out_str(o, "hash_seed", seed);
	out_uint(o, "table_size", p->table_size);
	out_uint(o, "zone_table_size", p->zone_table_size);
	show_clients(o, p);
	show_check(o, &p->check, p);
	out_uint(o, "backends", p->nbackends);
	out_record_end(o);
}

int run_show(const struct command *c)
{
	const struct pool_backend *b;
	struct pool *p;
	struct out o;
	const char *name = c->argv[0];

	if ((p = load(c->pool_path)) == NULL)
		return 2;
	out_init(&o, stdout, c->json ? OUT_JSON : OUT_PAIRS, 0);
	if (strcmp(name, "pool") == 0) {
		show_pool(&o, p);
	} else if ((b = pool_find_backend(p, name)) != NULL) {
		out_record_begin(&o);
		out_str(&o, "name", b->name);
		out_str(&o, "address", b->addr_text);
		out_uint(&o, "weight", b->weight);
		out_str(&o, "state", backend_state_name(b->state));
		out_uint(&o, "max_conns", b->max_conns);
		out_str(&o, "proxy_protocol", proxy_protocol_name(b->proxy_protocol));
		out_str(&o, "backup", b->backup ? "yes" : "no");
		show_check(&o, &b->check, p);
		out_record_end(&o);
	} else {
		fprintf(stderr, "tcppool: %s: no backend named '%s'\n", c->pool_path, name);
		pool_free(p);
		return 1;
	}
	out_end(&o);
	pool_free(p);
	return 0;
}

struct check {
	struct out o;
	int json;
};

static void check_problem(void *ctx, const char *path, int line, const char *msg)
{
	struct check *ck = ctx;

	if (ck->json) {
		out_record_begin(&ck->o);
		out_str(&ck->o, "file", path);
		out_uint(&ck->o, "line", (unsigned)(line > 0 ? line : 0));
		out_str(&ck->o, "message", msg);
		out_record_end(&ck->o);
	} else if (line > 0) {
		printf("%s:%d: %s\n", path, line, msg);
	} else {
		printf("%s: %s\n", path, msg);
	}
}

int run_check(const struct command *c)
{
	struct check ck;
	struct stat st;
	int fd, n;

	/* A file that cannot be read is an error, not a problem of the pool. */
	if ((fd = open(c->pool_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "tcppool: %s: %s\n", c->pool_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 2;
	}
	close(fd);
	if (!S_ISREG(st.st_mode)) {
		fprintf(stderr, "tcppool: %s: not a regular file\n", c->pool_path);
		return 2;
	}
	ck.json = c->json;
	if (ck.json)
		out_init(&ck.o, stdout, OUT_JSON, 1);
	n = pool_check(c->pool_path, check_problem, &ck);
	if (ck.json)
		out_end(&ck.o);
	else if (n == 0)
		puts("configuration OK");
	return n == 0 ? 0 : 1;
}
