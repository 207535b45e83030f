/* The server side of a control socket (ctlclient.h is the client side): a
 * Unix stream socket on a libev loop where each connection carries ONE
 * request line and gets one answer, then the close, so `socat` works as
 * well as the tools. The module owns the socket file (made mode 0600, a
 * stale one replaced, a live one refused, at exit unlinked only while it is
 * still ours), the clients (a few at a time, the rest wait in the backlog),
 * the framing and the deadlines. The tool owns the commands: it gets each
 * request line and answers now or later. Silent, like all of common/: the
 * tool logs. */
#ifndef TCPDIST_CTLSERVER_H
#define TCPDIST_CTLSERVER_H

#include <ev.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "err.h"

/* The longest socket path a sockaddr_un holds. */
#define CTLSERVER_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

struct ctlserver;
struct ctlconn; /* one client connection */

struct ctlserver_config {
	int clients_max;     /* served at once; the rest wait in the backlog */
	size_t request_max;  /* bytes of a request line, its newline included */
	double request_time; /* seconds from accept to the request line; a later
			      * answer must come within it too */
	double answer_time;  /* seconds to send the answer */
	double accept_rest;  /* seconds without accepting when out of descriptors */
	/* A request line, its line end cut (never a NUL in it). The tool
	 * answers (ctlconn_answer, ctlconn_error), closes, or says the answer
	 * comes later (ctlconn_later). line lives as long as c. */
	void (*request)(struct ctlconn *c, char *line, void *ctx);
	/* accept(2) paused for want of descriptors (error is its errno): at
	 * most once a second, for the tool to say so. */
	void (*paused)(int error, void *ctx);
	void *ctx;
};

enum ctlserver_open_result {
	CTLSERVER_OPENED,        /* listening: the path was free */
	CTLSERVER_REPLACED,      /* listening, in place of a stale socket nobody answered at */
	CTLSERVER_PATH_TOO_LONG, /* longer than CTLSERVER_PATH_MAX */
	CTLSERVER_NOT_A_SOCKET,  /* something else is at the path */
	CTLSERVER_IN_USE,        /* a live socket: somebody answers there */
	CTLSERVER_STALE_STUCK,   /* the stale socket could not be removed (errno) */
	CTLSERVER_NO_SOCKET,     /* socket(2) failed (errno) */
	CTLSERVER_FAILED         /* lstat, unlink, bind, listen or memory failed (errno) */
};

/* Listens at path on loop. replace: take the path without asking who is
 * there (a takeover's successor). NULL, with *result saying why (and errno
 * set), when it cannot; the tool words the message. */
struct ctlserver *ctlserver_open(struct ev_loop *loop, const char *path, int replace,
				 const struct ctlserver_config *cfg,
				 enum ctlserver_open_result *result);

/* Closes every connection (a later answer's gone hook is called), stops
 * listening and unlinks the socket file if it is still the one this server
 * made: a successor may have replaced it. NULL is fine. */
void ctlserver_close(struct ctlserver *s);

const char *ctlserver_path(const struct ctlserver *s);

/* Sends text (malloc'd, taken over; NULL for out of memory: then closes)
 * as the whole answer, then closes. */
void ctlconn_answer(struct ctlconn *c, char *text, size_t len);

/* Answers "error: MESSAGE\n". */
void ctlconn_error(struct ctlconn *c, const char *fmt, ...) PRINTF_LIKE(2, 3);

/* The answer comes later. If the connection closes first (its deadline,
 * the server's close, or ctlconn_close), gone(arg) is called: whatever holds
 * c must forget it then. Answering ends this. */
void ctlconn_later(struct ctlconn *c, void (*gone)(void *arg), void *arg);

/* A dialogue beyond the answer (after the tool wrote its own bytes to
 * ctlconn_fd): reads one more line within seconds. The connection is closed
 * first, then reply(line, arg) runs, with NULL when the time ran out; when
 * the client hangs up, sends more than a request or a NUL, or the server
 * closes, reply is not called. */
void ctlconn_expect(struct ctlconn *c, double seconds, void (*reply)(const char *line, void *arg),
		    void *arg);

/* The connected socket, for bytes the answer does not carry (SCM_RIGHTS). */
int ctlconn_fd(const struct ctlconn *c);

void ctlconn_close(struct ctlconn *c);

/* The framing, for the tests: after n more bytes landed at buf + *len (n at
 * most max - *len; buf has room for max + 1), whether a line is complete. CTLSERVER_LINE leaves
 * the line NUL-terminated in buf, its line end cut. */
enum ctlserver_frame { CTLSERVER_MORE, CTLSERVER_LINE, CTLSERVER_NUL, CTLSERVER_TOO_LONG };
enum ctlserver_frame ctlserver_frame(char *buf, size_t *len, size_t n, size_t max);

#endif
