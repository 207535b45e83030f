/* Resting a listener that is out of descriptors (see acceptpause.h). */
#include <errno.h>
#include <string.h>

#include "acceptpause.h"

static void resume_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct accept_pause *ap = t->data;

	(void)revents;
	ev_io_start(loop, ap->listener);
}

void accept_pause_init(struct accept_pause *ap, ev_io *listener, ev_tstamp rest)
{
	ap->listener = listener;
	ap->rest = rest;
	ap->logged = -1e9;
	ev_timer_init(&ap->timer, resume_cb, rest, 0.0);
	ap->timer.data = ap;
}

enum accept_pause_result accept_pause(struct ev_loop *loop, struct accept_pause *ap, int error)
{
	if (error != EMFILE && error != ENFILE && error != ENOBUFS && error != ENOMEM)
		return ACCEPT_NOT_PAUSED;
	ev_io_stop(loop, ap->listener);
	/* A one-shot timer restarted without a set would fire at once. */
	ev_timer_stop(loop, &ap->timer);
	ev_timer_set(&ap->timer, ap->rest, 0.0);
	ev_timer_start(loop, &ap->timer);
	if (ev_now(loop) - ap->logged < 1.0)
		return ACCEPT_PAUSED_AGAIN;
	ap->logged = ev_now(loop);
	return ACCEPT_PAUSED;
}

const char *accept_pause_reason(int error)
{
	return error == EMFILE || error == ENFILE ? "out of file descriptors" : strerror(error);
}

void accept_pause_stop(struct ev_loop *loop, struct accept_pause *ap)
{
	ev_timer_stop(loop, &ap->timer);
}
