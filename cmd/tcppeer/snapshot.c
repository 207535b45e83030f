/* serf's -snapshot: the alive members and the three Lamport clocks kept in
 * a file, so a node restarted with only --snapshot rejoins the members it
 * knew and neither prints old events again nor takes old queries. serf
 * appends to a log and compacts it; we rewrite the whole file (it holds at
 * most MEMBERS_MAX lines) through common file_replace(), at most twice a
 * second and only when something changed, so a reader never sees half of
 * it. The lines are serf's:
 *	clock: N
 *	event-clock: N
 *	query-clock: N
 *	alive: NAME ADDR:PORT       (NAME escaped as event lines are)
 *	leave                       (after a clean leave: do not rejoin)
 * A file that ends with "leave" gives no members to rejoin, as in serf. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "pooledit.h"
#include "tcppeer.h"

#define SNAPSHOT_INTERVAL 0.5          /* serf's clock update interval */
#define SNAPSHOT_READ_MAX (16u << 20)  /* a file larger than this is not read */

struct snapshot {
	struct peer *peer;
	const char *path;
	ev_timer timer;
	int dirty, left, failing;
	uint64_t clock, event_clock, query_clock; /* as last written */
};

static void snapshot_write(struct snapshot *sn)
{
	struct peer *p = sn->peer;
	char name[4 * PEER_NAME_MAX + 1], addr[ADDR_TEXT_LEN], err[ERR_LEN];
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return;
	fprintf(f, "# tcppeer snapshot of %s: members and clocks\n", p->cfg.name);
	fprintf(f, "clock: %llu\nevent-clock: %llu\nquery-clock: %llu\n",
		(unsigned long long)p->ltime, (unsigned long long)serf_event_clock(p),
		(unsigned long long)query_clock(p));
	for (size_t i = 0; i < p->nnodes; i++) {
		const struct node *n = p->nodes[i];

		if (n->state != STATE_ALIVE && n->state != STATE_SUSPECT)
			continue;
		if (strcmp(n->name, p->cfg.name) == 0)
			continue;
		format_escaped(name, sizeof(name), n->name, "");
		fprintf(f, "alive: %s %s\n", name, node_addr_text(n, addr, sizeof(addr)));
	}
	if (sn->left)
		fputs("leave\n", f);
	if (fclose(f) != 0) {
		free(buf);
		return;
	}
	if (file_replace(sn->path, buf, len, 0600, err) < 0) {
		if (!sn->failing)
			log_err("snapshot: %s", err);
		sn->failing = 1;
	} else {
		if (sn->failing)
			log_info("snapshot %s: written again", sn->path);
		sn->failing = 0;
		sn->dirty = 0;
		sn->clock = p->ltime;
		sn->event_clock = serf_event_clock(p);
		sn->query_clock = query_clock(p);
	}
	free(buf);
}

static void snapshot_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct snapshot *sn = w->data;
	struct peer *p = sn->peer;

	(void)loop;
	(void)revents;
	if (sn->dirty || sn->clock != p->ltime || sn->event_clock != serf_event_clock(p) ||
	    sn->query_clock != query_clock(p))
		snapshot_write(sn);
}

static void snapshot_member(void *ctx, const char *event, const struct node *n)
{
	struct snapshot *sn = ctx;

	(void)event;
	(void)n;
	sn->dirty = 1;
}

/* A member's address from an "alive:" line, as a join candidate. */
static void add_candidate(struct peer *p, const char *line)
{
	const char *sp = strrchr(line, ' ');
	struct addr a;
	char err[ERR_LEN];

	if (sp == NULL || addr_parse(sp + 1, 0, &a, err) < 0)
		return;
	for (int i = 0; i < p->cfg.nseeds; i++)
		if (addr_equal(&p->cfg.seeds[i], &a))
			return;
	if (addr_equal(&p->cfg.bind, &a) || (p->cfg.have_advertise && addr_equal(&p->cfg.advertise, &a)))
		return;
	if (p->cfg.nseeds < SEEDS_MAX)
		p->cfg.seeds[p->cfg.nseeds++] = a;
}

static uint64_t clock_value(const char *s)
{
	return strtoull(s, NULL, 10);
}

/* Reads what a previous run left: clocks witnessed, members to rejoin. */
static int snapshot_read(struct snapshot *sn, char *err)
{
	struct peer *p = sn->peer;
	struct stat st;
	char *buf, *line, *next;
	uint64_t clock = 0, event_clock = 0, query_clock = 0;
	int fd, left = 0, members = 0, seeds = p->cfg.nseeds;
	ssize_t got;

	fd = open(sn->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT ? 0 : err_set(err, "snapshot '%s': %s", sn->path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > SNAPSHOT_READ_MAX) {
		close(fd);
		return err_set(err, "snapshot '%s': not a regular file of at most 16 MiB", sn->path);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return err_set(err, "out of memory");
	}
	got = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (got < 0) {
		free(buf);
		return err_set(err, "snapshot '%s': %s", sn->path, strerror(errno));
	}
	buf[got] = '\0';
	/* First the clocks and the leave mark, wherever they are; then the
	 * members, unless the last run left cleanly. */
	for (int pass = 0; pass < 2; pass++) {
		for (line = buf; *line != '\0'; line = next) {
			char *nl = strchr(line, '\n');

			next = nl != NULL ? nl + 1 : line + strlen(line);
			if (nl != NULL)
				*nl = '\0';
			if (pass == 1) {
				if (!left && strncmp(line, "alive: ", 7) == 0)
					add_candidate(p, line + 7);
			} else if (strncmp(line, "clock: ", 7) == 0) {
				clock = clock_value(line + 7);
			} else if (strncmp(line, "event-clock: ", 13) == 0) {
				event_clock = clock_value(line + 13);
			} else if (strncmp(line, "query-clock: ", 13) == 0) {
				query_clock = clock_value(line + 13);
			} else if (strcmp(line, "leave") == 0) {
				left = 1;
			} else if (strncmp(line, "alive: ", 7) == 0) {
				members++;
			}
			if (nl != NULL)
				*nl = '\n';
		}
	}
	free(buf);
	/* serf: the clocks go on from where they were; events and queries
	 * up to them were seen by the previous run. */
	serf_witness(p, clock);
	if (event_clock > 0)
		serf_events_ignore_before(p, event_clock);
	if (query_clock > 0)
		query_ignore_before(p, query_clock);
	log_info("snapshot %s: %d members%s, %d to rejoin", sn->path, members,
		 left ? " (left cleanly: not rejoining)" : "", p->cfg.nseeds - seeds);
	return 0;
}

int snapshot_open(struct peer *p, char *err)
{
	struct snapshot *sn;

	if (p->cfg.snapshot_path == NULL)
		return 0;
	sn = calloc(1, sizeof(*sn));
	if (sn == NULL)
		return err_set(err, "out of memory");
	sn->peer = p;
	sn->path = p->cfg.snapshot_path;
	if (snapshot_read(sn, err) < 0) {
		free(sn);
		return -1;
	}
	sn->dirty = 1;
	ev_timer_init(&sn->timer, snapshot_tick, SNAPSHOT_INTERVAL, SNAPSHOT_INTERVAL);
	sn->timer.data = sn;
	ev_timer_start(p->loop, &sn->timer);
	members_watch(p, snapshot_member, sn);
	p->snapshot = sn;
	return 0;
}

void snapshot_leave(struct peer *p)
{
	if (p->snapshot == NULL)
		return;
	p->snapshot->left = 1;
	snapshot_write(p->snapshot);
}

void snapshot_close(struct peer *p)
{
	struct snapshot *sn = p->snapshot;

	if (sn == NULL)
		return;
	ev_timer_stop(p->loop, &sn->timer);
	snapshot_tick(p->loop, &sn->timer, 0);
	free(sn);
	p->snapshot = NULL;
}
