/* Applying a load on the main loop (loader.c made it on its thread): open
 * new listeners, carry health over, publish the farm to the workers, and say
 * what changed. A pool that fails anywhere ("reload failed, keeping the last
 * good pool") leaves the one in force untouched; backends are matched by
 * name, so what did not change keeps its health, counters and connections. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "sdnotify.h"
#include "tcpdist.h"

#define NAMES_LISTED 8 /* backends named per kind in the reload line */

/* --- what changed, for the log ------------------------------------------ */

struct name_list {
	char text[NAMES_LISTED * (POOL_NAME_MAX + 2) + 32];
	size_t n;
};

static void name_list_add(struct name_list *l, const char *name)
{
	size_t len = strlen(l->text);

	if (l->n++ < NAMES_LISTED)
		snprintf(l->text + len, sizeof(l->text) - len, "%s%s", l->n > 1 ? ", " : "", name);
}

static void name_list_print(const struct name_list *l, const char *what, char *out, size_t cap)
{
	size_t len = strlen(out);

	if (l->n == 0)
		return;
	snprintf(out + len, cap - len, "%s%s %s", len ? "; " : "", what, l->text);
	len = strlen(out);
	if (l->n > NAMES_LISTED)
		snprintf(out + len, cap - len, " and %zu more", l->n - NAMES_LISTED);
}

static int networks_differ(const struct cidr_table *a, const struct cidr_table *b)
{
	if (a->n != b->n)
		return 1;
	for (size_t i = 0; i < a->n; i++)
		if (memcmp(&a->e[i].net, &b->e[i].net, sizeof(a->e[i].net)) != 0 ||
		    a->e[i].tag != b->e[i].tag)
			return 1;
	return 0;
}

/* The keys of the client's identity (tcpdist.pool(5), CLIENTS). */
static int pool_clients_differ(const struct pool *a, const struct pool *b)
{
	return a->proxy_protocol != b->proxy_protocol ||
	       networks_differ(&a->accept_proxy_from, &b->accept_proxy_from) ||
	       a->accept_proxy_timeout_ms != b->accept_proxy_timeout_ms ||
	       networks_differ(&a->access, &b->access) ||
	       a->client_max_conns != b->client_max_conns || a->client_rate != b->client_rate ||
	       a->client_burst != b->client_burst || a->client_prefix6 != b->client_prefix6;
}

/* The keys of locality (tcpdist.pool(5), ZONES); zones are indexed by name,
 * so equal pools have equal indexes. */
static int pool_zones_differ(const struct pool *a, const struct pool *b)
{
	if (a->locality != b->locality || a->locality_overprovision != b->locality_overprovision ||
	    a->zone_table_size != b->zone_table_size || a->nzones != b->nzones)
		return 1;
	for (size_t k = 0; k < a->nzones; k++)
		if (strcmp(a->zones[k].name, b->zones[k].name) != 0)
			return 1;
	return networks_differ(&a->zone_clients, &b->zone_clients);
}

static int pool_settings_differ(const struct pool *a, const struct pool *b)
{
	if (a->nlisten != b->nlisten)
		return 1;
	for (size_t i = 0; i < a->nlisten; i++)
		if (!addr_equal(&a->listen[i].addr, &b->listen[i].addr))
			return 1;
	return pool_clients_differ(a, b) || pool_zones_differ(a, b) || a->balance != b->balance ||
	       a->hash_key != b->hash_key || a->connect_timeout_ms != b->connect_timeout_ms ||
	       a->idle_timeout_ms != b->idle_timeout_ms || a->retries != b->retries ||
	       a->check_interval_ms != b->check_interval_ms || a->check_rise != b->check_rise ||
	       a->check_fall != b->check_fall || a->max_conns != b->max_conns ||
	       memcmp(a->hash_seed, b->hash_seed, sizeof(a->hash_seed)) != 0 ||
	       a->table_size != b->table_size || a->resolve_interval_ms != b->resolve_interval_ms ||
	       !check_spec_equal(&a->check, &b->check);
}

static void reload_describe(const struct farm *old, const struct farm *new, char *out,
			    size_t cap)
{
	struct name_list added = {{0}, 0}, removed = {{0}, 0}, changed = {{0}, 0};

	out[0] = '\0';
	for (size_t i = 0; i < new->n; i++) {
		const struct farm_backend *b = &new->b[i], *o = farm_find(old, b->up->name);

		if (o == NULL)
			name_list_add(&added, b->up->name);
		else if (o->up != b->up || o->weight != b->weight || o->state != b->state ||
			 o->max_conns != b->max_conns || o->proxy != b->proxy)
			name_list_add(&changed, b->up->name);
		else if (o->backup != b->backup ||
			 !check_spec_equal(&old->pool->backends[o - old->b].check,
					   &new->pool->backends[i].check) ||
			 strcmp(old->pool->backends[o - old->b].zone_name,
				new->pool->backends[i].zone_name) != 0)
			name_list_add(&changed, b->up->name);
	}
	for (size_t i = 0; i < old->n; i++)
		if (farm_find(new, old->b[i].up->name) == NULL)
			name_list_add(&removed, old->b[i].up->name);
	name_list_print(&added, "added", out, cap);
	name_list_print(&removed, "removed", out, cap);
	name_list_print(&changed, "changed", out, cap);
	if (pool_settings_differ(old->pool, new->pool)) {
		size_t len = strlen(out);

		snprintf(out + len, cap - len, "%spool settings changed", len ? "; " : "");
	}
	if (out[0] == '\0')
		snprintf(out, cap, "no changes");
}

/* A backend whose state or weight the file changed has its change time
 * stamped, as a health change stamps it (tcpdist status). */
static void upstreams_note_changes(const struct farm *prev, const struct farm *next)
{
	for (size_t i = 0; i < next->n; i++) {
		const struct farm_backend *b = &next->b[i], *o = farm_find(prev, b->up->name);

		if (o && o->up == b->up && (o->state != b->state || o->weight != b->weight))
			upstream_changed(b->up);
	}
}

/* --- applying ------------------------------------------------------------- */

static void reload_failed(struct proc *p, const char *why)
{
	p->reload_failures++;
	snprintf(p->reload_error, sizeof(p->reload_error), "%s", why);
	log_err("reload failed, keeping the last good pool: %s", why);
}

/* Names looked up again on a timer that no longer answer keep the addresses
 * in force: said once per distinct failure, not at every interval. */
static void resolve_failed(struct proc *p, const char *why)
{
	if (strcmp(p->resolve_error, why) == 0)
		return;
	snprintf(p->resolve_error, sizeof(p->resolve_error), "%s", why);
	log_warn("names looked up again: %s: keeping the addresses in force", why);
}

/* Another control socket path in the file: the old one goes, the new one
 * comes (--control holds it fixed). */
static void control_follow(struct proc *p, const struct pool *pool)
{
	const char *now = control_path(p);
	char err[ERR_LEN * 2];

	if (p->opt->control || strcmp(now ? now : "", pool->control) == 0)
		return;
	control_close(p);
	if (pool->control[0] && control_open(p, pool->control, 0, err) < 0)
		log_err("%s", err);
}

static void reload_apply_result(struct proc *p, struct load_result *res);

void reload_apply(struct proc *p, struct load_result *res)
{
	reload_apply_result(p, res);
	if (res->why & LOAD_FORCE)
		sd_notify_send("READY=1"); /* the end of the SIGHUP's RELOADING=1 */
	proc_notify_status(p);
}

static void reload_apply_result(struct proc *p, struct load_result *res)
{
	const struct options *opt = p->opt;
	struct farm *next = res->farm, *prev = p->farm;
	char changes[1024];
	struct timespec now;

	switch (res->outcome) {
	case LOAD_GONE:
		log_warn("pool %s is gone: keeping the last good pool until it is back",
			 opt->pool_path);
		return;
	case LOAD_FAILED:
		if (res->why == LOAD_RESOLVE)
			resolve_failed(p, res->err);
		else
			reload_failed(p, res->err);
		return;
	case LOAD_READY:
		break;
	}
	if (opt->nlisten == 0 &&
	    listeners_update(p, next->pool->listen, next->pool->nlisten, res->err) < 0) {
		reload_failed(p, res->err);
		return;
	}
	p->resolve_error[0] = '\0';
	p->reload_error[0] = '\0';
	p->pool_digest = res->digest;
	reload_describe(prev, next, changes, sizeof(changes));
	health_sync(p, next, prev);
	res->farm = NULL; /* the workers' now */
	upstreams_note_changes(prev, next);
	proc_publish(p, next);
	control_follow(p, next->pool);
	if (res->why == LOAD_RESOLVE) {
		log_info("pool %s: names looked up again (%s)", opt->pool_path, changes);
	} else {
		p->reloads++;
		clock_gettime(CLOCK_REALTIME, &now);
		p->last_reload = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
		log_info("pool %s reloaded: %zu backend%s, balance %s (%s)", opt->pool_path,
			 next->n, next->n == 1 ? "" : "s", balance_name(next->pool->balance),
			 changes);
	}
	health_availability(p);
}
