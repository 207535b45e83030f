/* The node's side of the local control socket: the requests of `tcppeer
 * members`, `event`, `force-leave` and `rtt` (their client is ctl.c). A
 * client sends one request line ("members", "members json", "event NAME
 * PAYLOAD" with both in hex, "force-leave NAME" in hex, "rtt A [B]" in hex)
 * and reads the answer until the node closes the connection; an event or a
 * force-leave is answered "ok" (a force-leave of a name the node does not
 * know: "ok unknown") or "error: WHY". The socket, its clients, the framing
 * and the deadlines are common/ctlserver.c's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctlserver.h"
#include "json.h"
#include "log.h"
#include "tcppeer.h"

#define CONTROL_TIME 5.0        /* seconds for the request line, and again for the answer */
#define CONTROL_ACCEPT_REST 0.1 /* seconds without accepting when out of descriptors */

static int node_cmp(const void *a, const void *b)
{
	return strcmp((*(struct node *const *)a)->name, (*(struct node *const *)b)->name);
}

static void json_stat(FILE *f, const char *name, uint64_t v, int last)
{
	fprintf(f, "\"%s\":%llu%s", name, (unsigned long long)v, last ? "" : ",");
}

static void write_members(struct peer *p, FILE *f, int json)
{
	static char keys[TAGS_MAX][128], vals[TAGS_MAX][256];
	struct node **sorted = malloc((p->nnodes ? p->nnodes : 1) * sizeof(*sorted));
	const struct counters *c = &p->stats;
	char addr[ADDR_TEXT_LEN], esc[4 * 256 + 1];

	if (sorted == NULL)
		return;
	memcpy(sorted, p->nodes, p->nnodes * sizeof(*sorted));
	qsort(sorted, p->nnodes, sizeof(*sorted), node_cmp);
	if (json)
		fputs("{\"members\":[", f);
	for (size_t i = 0; i < p->nnodes; i++) {
		struct node *n = sorted[i];
		int nt = tags_decode(n->meta, n->metalen, keys, vals, TAGS_MAX);

		node_addr_text(n, addr, sizeof(addr));
		if (json) {
			fputs(i ? ",{\"name\":" : "{\"name\":", f);
			json_string(f, n->name);
			fprintf(f, ",\"addr\":\"%s\",\"status\":\"%s\",\"incarnation\":%u,\"tags\":{",
				addr, members_status_name(n->state), n->inc);
			for (int t = 0; t < nt; t++) {
				if (t)
					putc(',', f);
				json_string(f, keys[t]);
				putc(':', f);
				json_string(f, vals[t]);
			}
			fputs("}}", f);
			continue;
		}
		format_escaped(esc, sizeof(esc), n->name, "");
		fprintf(f, "%s\t%s\t%s\t", esc, addr, members_status_name(n->state));
		for (int t = 0; t < nt; t++) {
			format_escaped(esc, sizeof(esc), keys[t], "=,");
			fprintf(f, "%s%s=", t ? "," : "", esc);
			format_escaped(esc, sizeof(esc), vals[t], ",");
			fputs(esc, f);
		}
		putc('\n', f);
	}
	free(sorted);
	if (!json)
		return;
	fputs("],\"stats\":{", f);
	json_stat(f, "packets_in", c->packets_in, 0);
	json_stat(f, "packets_out", c->packets_out, 0);
	json_stat(f, "packets_bad", c->packets_bad, 0);
	json_stat(f, "packets_bad_checksum", c->packets_crc, 0);
	json_stat(f, "packets_unsupported", c->packets_unsupported, 0);
	json_stat(f, "messages_in", c->msgs_in, 0);
	json_stat(f, "messages_bad", c->msgs_bad, 0);
	json_stat(f, "decompress_failed", c->decompress_failed, 0);
	json_stat(f, "streams_in", c->streams_in, 0);
	json_stat(f, "streams_out", c->streams_out, 0);
	json_stat(f, "streams_bad", c->streams_bad, 0);
	json_stat(f, "streams_rejected", c->streams_rejected, 0);
	json_stat(f, "streams_evicted", c->streams_evicted, 0);
	json_stat(f, "pushpull_ok", c->pushpull_ok, 0);
	json_stat(f, "pushpull_failed", c->pushpull_failed, 0);
	json_stat(f, "members_dropped", c->members_dropped, 0);
	json_stat(f, "queue_dropped", c->queue_dropped, 0);
	json_stat(f, "acks_dropped", c->acks_dropped, 0);
	json_stat(f, "suspected", c->suspected, 0);
	json_stat(f, "failed", c->failed, 0);
	json_stat(f, "refuted", c->refuted, 0);
	json_stat(f, "packets_undecryptable", c->packets_undecryptable, 0);
	json_stat(f, "streams_unencrypted", c->streams_unencrypted, 0);
	json_stat(f, "streams_undecryptable", c->streams_undecryptable, 0);
	json_stat(f, "packets_denied", c->packets_denied, 0);
	json_stat(f, "streams_denied", c->streams_denied, 0);
	json_stat(f, "rate_limited", c->rate_limited, 0);
	json_stat(f, "events_in", c->events_in, 0);
	json_stat(f, "events_sent", c->events_sent, 0);
	json_stat(f, "events_duplicate", c->events_dup, 0);
	json_stat(f, "events_old", c->events_old, 0);
	json_stat(f, "event_ltime", serf_event_clock(p), 0);
	json_stat(f, "queries_in", c->queries_in, 0);
	json_stat(f, "queries_duplicate", c->queries_dup, 0);
	json_stat(f, "queries_old", c->queries_old, 0);
	json_stat(f, "queries_dropped", c->queries_dropped, 0);
	json_stat(f, "queries_filtered", c->queries_filtered, 0);
	json_stat(f, "query_acks", c->query_acks, 0);
	json_stat(f, "query_responses", c->query_responses, 0);
	json_stat(f, "query_relayed", c->query_relayed, 0);
	json_stat(f, "key_changes", c->key_changes, 0);
	json_stat(f, "query_ltime", query_clock(p), 0);
	json_stat(f, "incarnation", p->incarnation, 0);
	json_stat(f, "health_score", (uint64_t)p->awareness, 1);
	fputs("}}\n", f);
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Lowercase hex up to the next blank or the end; the byte count, or -1. */
static int hex_decode(const char **s, uint8_t *out, size_t max)
{
	size_t n = 0;

	while (**s && **s != ' ') {
		int hi = hex_value((*s)[0]), lo = hi < 0 ? -1 : hex_value((*s)[1]);

		if (lo < 0 || n == max)
			return -1;
		out[n++] = (uint8_t)(hi << 4 | lo);
		*s += 2;
	}
	return (int)n;
}

static void answer_event(struct peer *p, const char *args, FILE *f)
{
	uint8_t name[EVENT_SIZE_MAX], payload[EVENT_SIZE_MAX];
	char err[ERR_LEN];
	int nl, pl = 0;

	nl = hex_decode(&args, name, sizeof(name));
	if (nl >= 0 && *args == ' ') {
		args++;
		pl = hex_decode(&args, payload, sizeof(payload));
	}
	if (nl < 0 || pl < 0 || *args != '\0') {
		fprintf(f, "error: malformed event request\n");
		return;
	}
	if (leave_started(p)) {
		fprintf(f, "error: the node is leaving\n");
		return;
	}
	if (serf_user_event(p, name, (size_t)nl, payload, (size_t)pl, err) < 0)
		fprintf(f, "error: %s\n", err);
	else
		fprintf(f, "ok\n");
}

static void answer_force_leave(struct peer *p, const char *args, FILE *f)
{
	uint8_t name[PEER_NAME_MAX + 1];
	char err[ERR_LEN];
	int known, n = hex_decode(&args, name, PEER_NAME_MAX);

	if (n <= 0 || *args != '\0' || memchr(name, 0, (size_t)n) != NULL) {
		fprintf(f, "error: malformed force-leave request\n");
		return;
	}
	name[n] = '\0';
	known = members_find(p, (const char *)name) != NULL;
	if (intent_force_leave(p, (const char *)name, 0, err) < 0)
		fprintf(f, "error: %s\n", err);
	else
		fprintf(f, known ? "ok\n" : "ok unknown\n");
}

/* "rtt A [B]": serf's rtt command, from this node's cache of coordinates. */
static void answer_rtt(struct peer *p, const char *args, FILE *f)
{
	uint8_t names[2][PEER_NAME_MAX + 1];
	struct msg_coord c[2];
	int n[2] = {0, 0}, count = 1;

	n[0] = hex_decode(&args, names[0], PEER_NAME_MAX);
	if (n[0] > 0 && *args == ' ') {
		args++;
		n[1] = hex_decode(&args, names[1], PEER_NAME_MAX);
		count = 2;
	}
	if (n[0] <= 0 || (count == 2 && n[1] <= 0) || *args != '\0') {
		fprintf(f, "error: malformed rtt request\n");
		return;
	}
	names[0][n[0]] = '\0';
	if (count == 1)
		snprintf((char *)names[1], sizeof(names[1]), "%s", p->cfg.name);
	else
		names[1][n[1]] = '\0';
	for (int i = 0; i < 2; i++) {
		if (memchr(names[i], 0, strlen((char *)names[i])) != NULL ||
		    coord_of(p, (const char *)names[i], &c[i]) < 0) {
			char esc[4 * PEER_NAME_MAX + 1];

			format_escaped(esc, sizeof(esc), (const char *)names[i], "");
			fprintf(f, "error: could not find a coordinate for node '%s'\n", esc);
			return;
		}
	}
	{
		char a[4 * PEER_NAME_MAX + 1], b[4 * PEER_NAME_MAX + 1];

		format_escaped(a, sizeof(a), (const char *)names[count == 1 ? 1 : 0], "");
		format_escaped(b, sizeof(b), (const char *)names[count == 1 ? 0 : 1], "");
		fprintf(f, "ok Estimated %s <-> %s rtt: %.3f ms\n", a, b,
			coord_distance(&c[0], &c[1]) * 1000.0);
	}
}

static void control_request(struct ctlconn *conn, char *line, void *ctx)
{
	struct peer *p = ctx;
	char *reply = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&reply, &len);

	if (f == NULL) {
		ctlconn_close(conn);
		return;
	}
	if (strcmp(line, "members") == 0 || strcmp(line, "members json") == 0)
		write_members(p, f, strcmp(line, "members json") == 0);
	else if (strncmp(line, "event ", 6) == 0)
		answer_event(p, line + 6, f);
	else if (strncmp(line, "force-leave ", 12) == 0)
		answer_force_leave(p, line + 12, f);
	else if (strncmp(line, "rtt ", 4) == 0)
		answer_rtt(p, line + 4, f);
	else
		fprintf(f, "error: unknown request\n");
	if (fclose(f) != 0) {
		free(reply);
		reply = NULL;
	}
	ctlconn_answer(conn, reply, len);
}

static void control_paused(int error, void *ctx)
{
	(void)ctx;
	log_warn("control: %s: pausing accept", accept_pause_reason(error));
}

static int control_open_failed(const char *path, enum ctlserver_open_result result, char *err)
{
	const char *why = strerror(errno);

	switch (result) {
	case CTLSERVER_PATH_TOO_LONG:
		return err_set(err, "control socket path '%s' is too long", path);
	case CTLSERVER_NOT_A_SOCKET:
		return err_set(err, "control socket '%s' exists and is not a socket", path);
	case CTLSERVER_IN_USE:
		return err_set(err, "control socket '%s' is in use by a running node", path);
	case CTLSERVER_NO_SOCKET:
		return err_set(err, "control socket: %s", why);
	default:
		return err_set(err, "control socket '%s': %s", path, why);
	}
}

/* A socket file left by a node that died is replaced; a live one is not. */
int control_open(struct peer *p, const char *path, char *err)
{
	const struct ctlserver_config cfg = {
		.clients_max = CONTROL_CLIENTS_MAX,
		.request_max = CONTROL_REQUEST_MAX,
		.request_time = CONTROL_TIME,
		.answer_time = CONTROL_TIME,
		.accept_rest = CONTROL_ACCEPT_REST,
		.request = control_request,
		.paused = control_paused,
		.ctx = p,
	};
	enum ctlserver_open_result result;

	p->control = ctlserver_open(p->loop, path, 0, &cfg, &result);
	return p->control ? 0 : control_open_failed(path, result, err);
}

/* The socket file goes only while it is ours: a node started after this
 * one at the same path keeps its socket. */
void control_close(struct peer *p)
{
	ctlserver_close(p->control);
	p->control = NULL;
}
