/* The local control socket (a unix stream socket) and its clients, `tcppeer
 * members`, `tcppeer event` and `tcppeer force-leave`. A client sends one
 * request line ("members", "members json", "event NAME PAYLOAD" with both
 * in hex, "force-leave NAME" in hex, "rtt A [B]" in hex) and reads the
 * answer until the node
 * closes the connection; an event or a force-leave is answered "ok" (a
 * force-leave of a name the node does not know: "ok unknown") or "error:
 * WHY". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "tcppeer.h"

#define REQUEST_MAX (16 + 4 * EVENT_SIZE_MAX)
#define CONTROL_TIMEOUT 5.0

struct control_client {
	ev_io io;
	ev_timer timer;
	struct control *ctl;
	struct control_client *next;
	int fd;
	char req[REQUEST_MAX];
	size_t reqlen;
	char *reply;
	size_t replylen, replyoff;
};

struct control {
	struct peer *peer;
	int fd;
	ev_io io;
	struct accept_pause pause; /* out of descriptors: the listener rests */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct control_client *clients;
	int nclients;
};

const char *control_default_path(char *buf, size_t len)
{
	const char *dir = getenv("XDG_RUNTIME_DIR");

	if (dir != NULL && *dir == '/')
		snprintf(buf, len, "%s/tcppeer.sock", dir);
	else
		snprintf(buf, len, "/tmp/tcppeer-%u.sock", (unsigned)getuid());
	return buf;
}

static int unix_addr(const char *path, struct sockaddr_un *sun, char *err)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return err_set(err, "control socket path '%s' is too long", path);
	memcpy(sun->sun_path, path, strlen(path) + 1);
	return 0;
}

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

static void client_close(struct control_client *cl)
{
	struct control *ctl = cl->ctl;

	for (struct control_client **pp = &ctl->clients; *pp; pp = &(*pp)->next)
		if (*pp == cl) {
			*pp = cl->next;
			break;
		}
	ev_io_stop(ctl->peer->loop, &cl->io);
	ev_timer_stop(ctl->peer->loop, &cl->timer);
	close(cl->fd);
	free(cl->reply);
	free(cl);
	ctl->nclients--;
}

static void client_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	client_close(w->data);
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

static void client_answer(struct control_client *cl)
{
	struct peer *p = cl->ctl->peer;
	FILE *f;

	cl->req[cl->reqlen] = '\0';
	cl->req[strcspn(cl->req, "\r\n")] = '\0';
	f = open_memstream(&cl->reply, &cl->replylen);
	if (f == NULL) {
		client_close(cl);
		return;
	}
	if (strcmp(cl->req, "members") == 0 || strcmp(cl->req, "members json") == 0)
		write_members(p, f, strcmp(cl->req, "members json") == 0);
	else if (strncmp(cl->req, "event ", 6) == 0)
		answer_event(p, cl->req + 6, f);
	else if (strncmp(cl->req, "force-leave ", 12) == 0)
		answer_force_leave(p, cl->req + 12, f);
	else if (strncmp(cl->req, "rtt ", 4) == 0)
		answer_rtt(p, cl->req + 4, f);
	else
		fprintf(f, "error: unknown request\n");
	fclose(f);
	ev_io_stop(p->loop, &cl->io);
	ev_io_set(&cl->io, cl->fd, EV_WRITE);
	ev_io_start(p->loop, &cl->io);
}

static void client_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct control_client *cl = w->data;
	ssize_t n;

	(void)loop;
	if (revents & EV_READ) {
		n = read(cl->fd, cl->req + cl->reqlen, sizeof(cl->req) - 1 - cl->reqlen);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			client_close(cl);
			return;
		}
		cl->reqlen += (size_t)n;
		if (memchr(cl->req, '\n', cl->reqlen) || cl->reqlen == sizeof(cl->req) - 1)
			client_answer(cl);
		return;
	}
	while (cl->replyoff < cl->replylen) {
		n = write(cl->fd, cl->reply + cl->replyoff, cl->replylen - cl->replyoff);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0)
			break;
		cl->replyoff += (size_t)n;
	}
	client_close(cl);
}

static void control_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct control *ctl = w->data;
	struct control_client *cl;
	int fd;

	(void)revents;
	fd = accept4(ctl->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		int error = errno;

		if (accept_pause(loop, &ctl->pause, error) == ACCEPT_PAUSED)
			log_warn("control: %s: pausing accept", accept_pause_reason(error));
		return;
	}
	if (ctl->nclients >= CONTROL_CLIENTS_MAX || (cl = calloc(1, sizeof(*cl))) == NULL) {
		close(fd);
		return;
	}
	cl->ctl = ctl;
	cl->fd = fd;
	ev_io_init(&cl->io, client_io_cb, fd, EV_READ);
	cl->io.data = cl;
	ev_io_start(loop, &cl->io);
	ev_timer_init(&cl->timer, client_timeout_cb, CONTROL_TIMEOUT, 0);
	cl->timer.data = cl;
	ev_timer_start(loop, &cl->timer);
	cl->next = ctl->clients;
	ctl->clients = cl;
	ctl->nclients++;
}

int control_open(struct peer *p, const char *path, char *err)
{
	struct sockaddr_un sun;
	struct control *ctl;
	struct stat st;
	int fd, probe;

	if (unix_addr(path, &sun, err) < 0)
		return -1;
	/* A socket file left by a node that died is replaced; a live one is not. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return err_set(err, "control socket '%s' exists and is not a socket", path);
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			close(probe);
			return err_set(err, "control socket '%s' is in use by a running node", path);
		}
		if (probe >= 0)
			close(probe);
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(err, "control socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, 16) < 0) {
		err_set(err, "control socket '%s': %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	chmod(path, 0600);
	ctl = calloc(1, sizeof(*ctl));
	if (ctl == NULL) {
		close(fd);
		unlink(path);
		return err_set(err, "out of memory");
	}
	ctl->peer = p;
	ctl->fd = fd;
	snprintf(ctl->path, sizeof(ctl->path), "%s", path);
	ev_io_init(&ctl->io, control_accept_cb, fd, EV_READ);
	ctl->io.data = ctl;
	ev_io_start(p->loop, &ctl->io);
	accept_pause_init(&ctl->pause, &ctl->io, 0.1);
	p->control = ctl;
	return 0;
}

void control_close(struct peer *p)
{
	struct control *ctl = p->control;

	if (ctl == NULL)
		return;
	while (ctl->clients)
		client_close(ctl->clients);
	ev_io_stop(p->loop, &ctl->io);
	accept_pause_stop(p->loop, &ctl->pause);
	close(ctl->fd);
	unlink(ctl->path);
	free(ctl);
	p->control = NULL;
}

/* The client side: sends req, copies the answer to out (or into buf when
 * out is NULL); returns 0, or 2 after a diagnostic. */
static int control_request(const char *path, const char *req, FILE *out, char *buf, size_t buflen)
{
	struct sockaddr_un sun;
	struct timeval tv = {.tv_sec = 10};
	char err[ERR_LEN], chunk[65536];
	size_t got = 0;
	ssize_t n;
	int fd;

	if (unix_addr(path, &sun, err) < 0) {
		fprintf(stderr, "tcppeer: %s\n", err);
		return 2;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "tcppeer: cannot reach a node at '%s': %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 2;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		fprintf(stderr, "tcppeer: '%s': %s\n", path, strerror(errno));
		close(fd);
		return 2;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		if (out != NULL) {
			if (fwrite(chunk, 1, (size_t)n, out) != (size_t)n)
				break;
		} else {
			size_t take = (size_t)n < buflen - 1 - got ? (size_t)n : buflen - 1 - got;

			memcpy(buf + got, chunk, take);
			got += take;
		}
	}
	close(fd);
	if (buf != NULL)
		buf[got] = '\0';
	if (n < 0) {
		fprintf(stderr, "tcppeer: '%s': %s\n", path, strerror(errno));
		return 2;
	}
	return 0;
}

int control_members(const char *path, int json)
{
	return control_request(path, json ? "members json\n" : "members\n", stdout, NULL, 0);
}

static void hex_append(char *out, const char *s)
{
	out += strlen(out);
	for (; *s; s++)
		out += sprintf(out, "%02x", (unsigned char)*s);
}

int control_event(const char *path, const char *name, const char *payload)
{
	char req[REQUEST_MAX + 1], answer[ERR_LEN + 16];
	int rc;

	if (*name == '\0') {
		fputs("tcppeer: event: the name is empty\n", stderr);
		return 2;
	}
	if (strlen(name) + strlen(payload) > EVENT_SIZE_MAX) {
		fprintf(stderr, "tcppeer: event: name and payload take %zu bytes, over serf's limit of %d\n",
			strlen(name) + strlen(payload), EVENT_SIZE_MAX);
		return 2;
	}
	snprintf(req, sizeof(req), "event ");
	hex_append(req, name);
	strcat(req, " ");
	hex_append(req, payload);
	strcat(req, "\n");
	rc = control_request(path, req, NULL, answer, sizeof(answer));
	if (rc != 0)
		return rc;
	answer[strcspn(answer, "\n")] = '\0';
	if (strcmp(answer, "ok") == 0)
		return 0;
	fprintf(stderr, "tcppeer: event: %s\n",
		strncmp(answer, "error: ", 7) == 0 ? answer + 7 : "no answer from the node");
	return 2;
}

int control_force_leave(const char *path, const char *name)
{
	char req[32 + 2 * PEER_NAME_MAX], answer[ERR_LEN + 16];
	int rc;

	if (*name == '\0' || strlen(name) > PEER_NAME_MAX) {
		fprintf(stderr, "tcppeer: force-leave: '%.64s' is not a member name\n", name);
		return 2;
	}
	snprintf(req, sizeof(req), "force-leave ");
	hex_append(req, name);
	strcat(req, "\n");
	rc = control_request(path, req, NULL, answer, sizeof(answer));
	if (rc != 0)
		return rc;
	answer[strcspn(answer, "\n")] = '\0';
	if (strcmp(answer, "ok") == 0)
		return 0;
	if (strcmp(answer, "ok unknown") == 0) {
		/* serf sends the intent anyway: a member may learn of it later. */
		fprintf(stderr, "tcppeer: force-leave: '%s' is not a member this node knows; "
				"the leave intent was sent anyway\n", name);
		return 0;
	}
	fprintf(stderr, "tcppeer: force-leave: %s\n",
		strncmp(answer, "error: ", 7) == 0 ? answer + 7 : "no answer from the node");
	return 2;
}

int control_rtt(const char *path, const char *a, const char *b)
{
	char req[32 + 4 * PEER_NAME_MAX], answer[ERR_LEN + 4 * PEER_NAME_MAX];
	int rc;

	if (*a == '\0' || strlen(a) > PEER_NAME_MAX || (b != NULL && (*b == '\0' ||
								 strlen(b) > PEER_NAME_MAX))) {
		fputs("tcppeer: rtt: a node name is empty or too long\n", stderr);
		return 2;
	}
	snprintf(req, sizeof(req), "rtt ");
	hex_append(req, a);
	if (b != NULL) {
		strcat(req, " ");
		hex_append(req, b);
	}
	strcat(req, "\n");
	rc = control_request(path, req, NULL, answer, sizeof(answer));
	if (rc != 0)
		return rc;
	answer[strcspn(answer, "\n")] = '\0';
	if (strncmp(answer, "ok ", 3) == 0) {
		puts(answer + 3);
		return 0;
	}
	fprintf(stderr, "tcppeer: rtt: %s\n",
		strncmp(answer, "error: ", 7) == 0 ? answer + 7 : "no answer from the node");
	return strncmp(answer, "error: could not find", 21) == 0 ? 1 : 2;
}
