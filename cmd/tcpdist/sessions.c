/* Live connections as the control socket shows them (tcpdist sessions) and
 * resets them (tcpdist kill). Each worker walks its own list when surveyed
 * (survey.c) and writes into its own slot of the query; the main thread
 * reads the slots once every worker has answered. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tcpdist.h"

struct session_query *session_query_new(int nworkers)
{
	struct session_query *q = calloc(1, sizeof(*q));

	if (q && (q->per = calloc((size_t)nworkers, sizeof(*q->per))) == NULL) {
		free(q);
		return NULL;
	}
	if (q)
		q->nworkers = nworkers;
	return q;
}

void session_query_free(struct session_query *q)
{
	if (q == NULL)
		return;
	for (int k = 0; k < q->nworkers; k++)
		free(q->per[k].rows);
	free(q->per);
	free(q);
}

/* An address as 16 bytes (IPv4 as IPv4-mapped IPv6) and its port, so that
 * 10.0.0.1 matches a client that an IPv6 listener saw as ::ffff:10.0.0.1. */
void session_ip_key(const struct sockaddr *sa, uint8_t ip[16], uint16_t *port)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		memcpy(ip, mapped, sizeof(mapped));
		memcpy(ip + 12, &in->sin_addr, 4);
		*port = ntohs(in->sin_port);
	} else {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		memcpy(ip, &in6->sin6_addr, 16);
		*port = ntohs(in6->sin6_port);
	}
}

static int client_matches(const struct session_query *q, const struct conn *c)
{
	uint8_t ip[16];
	uint16_t port;

	session_ip_key(&c->client.sa, ip, &port);
	return memcmp(ip, q->client_ip, sizeof(ip)) == 0 &&
	       (!q->client_has_port || port == q->client_port);
}

static int session_matches(const struct session_query *q, const struct conn *c)
{
	if (q->backend[0] && (c->up == NULL || strcmp(c->up->name, q->backend) != 0))
		return 0;
	if (q->by_client && !client_matches(q, c))
		return 0;
	return 1;
}

static void session_row_fill(struct session_row *r, const struct conn *c, ev_tstamp now)
{
	struct sockaddr_storage local;
	socklen_t len = sizeof(local);

	conn_client_text(c, r->client, sizeof(r->client));
	snprintf(r->backend, sizeof(r->backend), "%s", c->up ? c->up->name : "-");
	/* The listener is the client socket's own address: no memory per
	 * connection for something only this listing asks. */
	if (getsockname(c->cio.fd, (struct sockaddr *)&local, &len) == 0)
		addr_format((const struct sockaddr *)&local, r->listener, sizeof(r->listener));
	else
		snprintf(r->listener, sizeof(r->listener), "-");
	r->age = now - c->started;
	if (r->age < 0)
		r->age = 0;
	r->in = c->c2b.bytes;
	r->out = c->b2c.bytes;
	r->connected = c->connected;
}

/* On a worker: its matching connections, up to the query's limit. */
void sessions_ask(struct worker *w, struct survey *s)
{
	struct session_query *q = s->ctx;
	struct session_rows *mine = &q->per[w->id];
	ev_tstamp now = ev_now(w->loop);

	for (const struct conn *c = w->conns; c; c = c->next) {
		if (!session_matches(q, c))
			continue;
		mine->total++;
		if (mine->n >= q->limit)
			continue;
		if (mine->n == mine->cap) {
			size_t cap = mine->cap ? mine->cap * 2 : 16;
			struct session_row *rows;

			if (cap > q->limit)
				cap = q->limit;
			rows = realloc(mine->rows, cap * sizeof(*rows));
			if (rows == NULL) {
				mine->truncated_by_memory = 1;
				continue;
			}
			mine->rows = rows;
			mine->cap = cap;
		}
		session_row_fill(&mine->rows[mine->n++], c, now);
	}
}

/* On a worker: resets its matching connections. */
void sessions_kill(struct worker *w, struct survey *s)
{
	struct session_query *q = s->ctx;
	struct conn *c = w->conns;

	while (c) {
		struct conn *next = c->next;

		if (session_matches(q, c)) {
			q->per[w->id].total++;
			conn_close(c, 1, END_KILLED);
		}
		c = next;
	}
}
