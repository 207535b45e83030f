/* Host names in members' service tags, looked up off the event loop with
 * getaddrinfo_a(3): a slow or dead DNS server must not stall gossip, or the
 * node would miss its own probes and be declared failed. An answer is kept
 * for RESOLVE_TTL and looked up again in the background when the pool writer
 * asks after that; a failure is asked again after RESOLVE_RETRY. While
 * lookups run, a timer polls them and tells the pool writer of each answer. */
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "tcppeer.h"

#define RESOLVE_TTL 60.0
#define RESOLVE_RETRY 10.0
#define RESOLVE_POLL 0.02
#define RESOLVE_NAMES_MAX 1024 /* bounds memory against a flood of tagged members */

struct name {
	struct name *next;
	char host[256];
	enum name_state state;
	int error;      /* the EAI_* code of a failure */
	int busy;       /* a lookup is running: req belongs to glibc */
	double done_at; /* when the last answer came */
	double used_at; /* when the pool writer last asked */
	struct addrinfo hints;
	struct gaicb req;
};

struct resolver {
	struct peer *peer;
	struct name *names;
	size_t count;
	ev_timer poll;
};

static int lookup_start(struct name *n)
{
	struct gaicb *list[1] = {&n->req};

	memset(&n->hints, 0, sizeof(n->hints));
	n->hints.ai_family = AF_UNSPEC;
	n->hints.ai_socktype = SOCK_STREAM;
	n->hints.ai_flags = AI_ADDRCONFIG; /* as tcpdist's loader asks */
	memset(&n->req, 0, sizeof(n->req));
	n->req.ar_name = n->host;
	n->req.ar_request = &n->hints;
	if (getaddrinfo_a(GAI_NOWAIT, list, 1, NULL) != 0)
		return -1;
	n->busy = 1;
	return 0;
}

/* Takes the answers that came; tells the pool writer when any did. */
static void resolver_poll_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct resolver *r = t->data;
	int answered = 0, running = 0;

	(void)loop;
	(void)revents;
	for (struct name *n = r->names; n != NULL; n = n->next) {
		int rc;

		if (!n->busy)
			continue;
		rc = gai_error(&n->req);
		if (rc == EAI_INPROGRESS) {
			running = 1;
			continue;
		}
		n->busy = 0;
		n->state = rc == 0 ? NAME_OK : NAME_FAILED;
		n->error = rc;
		n->done_at = peer_now(r->peer);
		if (rc == 0)
			freeaddrinfo(n->req.ar_result);
		answered = 1;
	}
	if (!running)
		ev_timer_stop(r->peer->loop, &r->poll);
	if (answered)
		poolsync_changed(r->peer);
}

struct resolver *resolver_new(struct peer *p)
{
	struct resolver *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->peer = p;
	ev_timer_init(&r->poll, resolver_poll_cb, RESOLVE_POLL, RESOLVE_POLL);
	r->poll.data = r;
	return r;
}

/* Makes room for one more name by dropping the one asked for longest ago. */
static int resolver_evict(struct resolver *r)
{
	struct name **victim = NULL;

	for (struct name **pp = &r->names; *pp != NULL; pp = &(*pp)->next)
		if (!(*pp)->busy && (victim == NULL || (*pp)->used_at < (*victim)->used_at))
			victim = pp;
	if (victim == NULL)
		return -1;
	{
		struct name *n = *victim;

		*victim = n->next;
		free(n);
		r->count--;
	}
	return 0;
}

enum name_state resolver_check(struct resolver *r, const char *host, const char **why)
{
	double now = peer_now(r->peer);
	struct name *n;

	*why = NULL;
	if (strlen(host) >= sizeof(n->host)) {
		*why = "host name too long";
		return NAME_FAILED;
	}
	for (n = r->names; n != NULL; n = n->next)
		if (strcmp(n->host, host) == 0)
			break;
	if (n == NULL) {
		if (r->count >= RESOLVE_NAMES_MAX && resolver_evict(r) < 0) {
			*why = "too many host names being looked up";
			return NAME_FAILED;
		}
		if ((n = calloc(1, sizeof(*n))) == NULL) {
			*why = "out of memory";
			return NAME_FAILED;
		}
		memcpy(n->host, host, strlen(host) + 1);
		n->state = NAME_PENDING;
		n->next = r->names;
		r->names = n;
		r->count++;
	}
	n->used_at = now;
	if (!n->busy && (n->state == NAME_PENDING ||
			 now - n->done_at >= (n->state == NAME_OK ? RESOLVE_TTL : RESOLVE_RETRY))) {
		if (lookup_start(n) == 0) {
			if (!ev_is_active(&r->poll))
				ev_timer_start(r->peer->loop, &r->poll);
		} else if (n->state == NAME_PENDING) {
			n->state = NAME_FAILED;
			n->error = EAI_AGAIN;
			n->done_at = now;
		}
	}
	if (n->state == NAME_FAILED)
		*why = n->error == EAI_SYSTEM ? "system error" : gai_strerror(n->error);
	return n->state;
}

void resolver_free(struct resolver *r)
{
	if (r == NULL)
		return;
	ev_timer_stop(r->peer->loop, &r->poll);
	while (r->names != NULL) {
		struct name *n = r->names;

		r->names = n->next;
		/* A lookup glibc cannot cancel still writes into n when it ends:
		 * waiting for a dead DNS server would hold up the exit, so n is
		 * left to it (this happens only as the process stops). */
		if (n->busy && gai_cancel(&n->req) == EAI_NOTCANCELED)
			continue;
		if (n->busy && gai_error(&n->req) == 0)
			freeaddrinfo(n->req.ar_result);
		free(n);
	}
	free(r);
}
