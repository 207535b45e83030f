/* tcppool init, add, rm, set, drain, up and down: every change goes through
 * pool_edit() (or pool_create() for init), which validates the whole file
 * with the loader and replaces it atomically under the pool's lock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pooledit.h"
#include "tcppool.h"

/* What the callbacks below need; err messages name the file. */
struct edit {
	const struct command *c;
	const char *name; /* backend, or NULL for [pool] */
	char **settings;  /* KEY=VALUE operands */
	int nsettings;
	const char *state; /* drain, up, down */
};

/* check_send and check_expect are the steps of one check, in order: the
 * first of them among the operands removes the section's steps, and each
 * is a new line after the section's last key. */
static int is_step_key(const char *key)
{
	return strcmp(key, "check_send") == 0 || strcmp(key, "check_expect") == 0;
}

/* Applies KEY=VALUE operands to a section; KEY= removes the key, which
 * brings back its default. */
static int apply_settings(struct pool_doc *doc, const struct edit *e, char *err)
{
	char key[64];
	int steps = 0;

	for (int i = 0; i < e->nsettings; i++) {
		const char *s = e->settings[i], *eq = strchr(s, '=');
		size_t n = eq ? (size_t)(eq - s) : 0;

		if (eq == NULL || n == 0)
			return err_set(err, "'%s': expected KEY=VALUE", s);
		if (n >= sizeof(key))
			return err_set(err, "'%.*s': unknown key", (int)n, s);
		memcpy(key, s, n);
		key[n] = '\0';
		if (is_step_key(key) && !steps++ &&
		    (pool_doc_unset(doc, e->name, "check_send", err) < 0 ||
		     pool_doc_unset(doc, e->name, "check_expect", err) < 0))
			return -1;
		if (is_step_key(key) && eq[1] != '\0') {
			if (pool_doc_append(doc, e->name, key, eq + 1, err) < 0)
				return -1;
		} else if (eq[1] == '\0') {
			if (pool_doc_unset(doc, e->name, key, err) < 0)
				return -1;
		} else if (pool_doc_set(doc, e->name, key, eq + 1, err) < 0) {
			return -1;
		}
	}
	return 0;
}

/* Writes the outcome of pool_edit(): 0 done or nothing to do, else 2. */
static int edit_run(struct edit *e, pool_edit_fn fn)
{
	char err[ERR_LEN];

	if (pool_edit(e->c->pool_path, 0, fn, e, err) < 0) {
		fprintf(stderr, "tcppool: %s\n", err);
		return 2;
	}
	return 0;
}

static int backend_needed(struct pool_doc *doc, const struct edit *e, char *err)
{
	if (pool_doc_has_backend(doc, e->name))
		return 0;
	return err_set(err, "%s: no backend named '%s'", e->c->pool_path, e->name);
}

static int add_edit(struct pool_doc *doc, void *ctx, char *err)
{
	const struct edit *e = ctx;

	if (pool_doc_has_backend(doc, e->name))
		return err_set(err, "%s: backend '%s' already exists", e->c->pool_path, e->name);
	if (pool_doc_add_backend(doc, e->name, NULL, err) < 0 ||
	    pool_doc_set(doc, e->name, "address", e->c->argv[1], err) < 0)
		return -1;
	return apply_settings(doc, e, err);
}

int run_add(const struct command *c)
{
	struct edit e = {c, c->argv[0], c->argv + 2, c->argc - 2, NULL};

	return edit_run(&e, add_edit);
}

static int rm_edit(struct pool_doc *doc, void *ctx, char *err)
{
	const struct edit *e = ctx;

	if (backend_needed(doc, e, err) < 0)
		return -1;
	return pool_doc_remove_backend(doc, e->name, err);
}

int run_rm(const struct command *c)
{
	struct edit e = {c, c->argv[0], NULL, 0, NULL};

	return edit_run(&e, rm_edit);
}

static int set_edit(struct pool_doc *doc, void *ctx, char *err)
{
	const struct edit *e = ctx;

	if (e->name != NULL && backend_needed(doc, e, err) < 0)
		return -1;
	return apply_settings(doc, e, err);
}

int run_set(const struct command *c)
{
	/* "pool" names the [pool] section, as in show. */
	struct edit e = {c, strcmp(c->argv[0], "pool") == 0 ? NULL : c->argv[0], c->argv + 1,
			 c->argc - 1, NULL};

	return edit_run(&e, set_edit);
}

static int state_edit(struct pool_doc *doc, void *ctx, char *err)
{
	const struct edit *e = ctx;
	char now[16];

	if (backend_needed(doc, e, err) < 0)
		return -1;
	/* Without a state line the backend is up: "up" has nothing to write. */
	if (pool_doc_get(doc, e->name, "state", now, sizeof(now)) == 0 &&
	    strcmp(e->state, "up") == 0)
		return POOL_EDIT_UNCHANGED;
	return pool_doc_set(doc, e->name, "state", e->state, err);
}

int run_state(const struct command *c, enum backend_state state)
{
	struct edit e = {c, c->argv[0], NULL, 0, backend_state_name(state)};

	return edit_run(&e, state_edit);
}

/* What init writes: every [pool] key at its default, with a word on each,
 * so that the file documents itself. */
static const char init_template[] =
	"; A tcpdist pool, made by tcppool init. Format: tcpdist.pool(5).\n"
	"; Edit it with tcppool(1); check it with tcppool check.\n"
	"\n"
	"[pool]\n"
	"listen = 0.0.0.0:8080      ; repeatable; also [IPv6]:port, host:port\n"
	"balance = hash             ; hash | roundrobin | leastconn | random\n"
	"hash_key = ip              ; ip | ip_port (what balance = hash reads)\n"
	"connect_timeout = 3s       ; then the next backend is tried\n"
	"idle_timeout = 1h          ; silent both ways this long: close; 0 = never\n"
	"retries = 2                ; further backends tried after a failed connect\n"
	"check_interval = 2s        ; active TCP health checks; 0 = off\n"
	"check_rise = 2             ; checks passed in a row to come back up\n"
	"check_fall = 3             ; checks failed in a row to go down\n"
	"max_conns = 0              ; client connections at once; 0 = no limit\n";

int run_init(const struct command *c)
{
	struct edit e = {c, NULL, c->argv, c->argc, NULL};
	struct pool_doc *doc = NULL;
	char err[ERR_LEN], *data = NULL;
	size_t len;
	int rc = 2;

	/* The template names no file: any name a file system takes must do. */
	if ((doc = pool_doc_parse(init_template, sizeof(init_template) - 1, err)) == NULL ||
	    apply_settings(doc, &e, err) < 0 || (data = pool_doc_render(doc, &len, err)) == NULL ||
	    pool_create(c->pool_path, data, len, err) < 0)
		fprintf(stderr, "tcppool: %s\n", err);
	else
		rc = 0;
	free(data);
	pool_doc_free(doc);
	return rc;
}
