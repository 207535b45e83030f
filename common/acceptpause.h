/* A listener whose accept(2) fails for want of descriptors or memory stays
 * readable: the connection is still queued, and a level-triggered loop would
 * call accept again at once, for ever, at 100% CPU. accept_pause stops
 * watching the listener for a moment instead; the queued clients wait in the
 * kernel's backlog. Silent, like all of common/: the caller logs. */
#ifndef TCPDIST_ACCEPTPAUSE_H
#define TCPDIST_ACCEPTPAUSE_H

#include <ev.h>

struct accept_pause {
	ev_io *listener;
	ev_timer timer;
	ev_tstamp rest;   /* seconds without accepting */
	ev_tstamp logged; /* when the caller last said so */
};

enum accept_pause_result {
	ACCEPT_NOT_PAUSED, /* not a shortage: the caller handles the error */
	ACCEPT_PAUSED,     /* paused: say so */
	ACCEPT_PAUSED_AGAIN /* paused, and said so less than a second ago */
};

void accept_pause_init(struct accept_pause *ap, ev_io *listener, ev_tstamp rest);

/* After accept(2) failed with error: pauses the listener when the error is a
 * shortage (EMFILE, ENFILE, ENOBUFS, ENOMEM). */
enum accept_pause_result accept_pause(struct ev_loop *loop, struct accept_pause *ap, int error);

/* For the message: "out of file descriptors" or the error's own words. */
const char *accept_pause_reason(int error);

/* Stops the pause timer (when the listener closes for good). */
void accept_pause_stop(struct ev_loop *loop, struct accept_pause *ap);

#endif
