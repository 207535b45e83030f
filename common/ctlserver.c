#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acceptpause.h"
#include "ctlserver.h"

#define CTLSERVER_BACKLOG 16

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

struct ctlserver {
	struct ev_loop *loop;
	struct ctlserver_config cfg;
	int fd;
	char path[CTLSERVER_PATH_MAX + 1];
	dev_t dev; /* of the socket file we made: unlinked at exit only if */
	ino_t ino; /* still ours (a successor may have replaced it) */
	ev_io io;
	struct accept_pause pause;
	struct ctlconn *conns;
	int nconns;
};

enum ctlconn_state {
	CONN_READING,   /* the request line */
	CONN_LATER,     /* the tool has it; the answer comes later */
	CONN_ANSWERING, /* sending the answer */
	CONN_EXPECTING  /* one more line, for the tool's dialogue */
};

struct ctlconn {
	ev_io io;
	ev_timer deadline;
	struct ctlserver *server;
	struct ctlconn *prev, *next;
	enum ctlconn_state state;
	void (*gone)(void *arg);
	void (*reply)(const char *line, void *arg);
	void *arg; /* gone's or reply's */
	char *out;
	size_t outlen, outoff;
	size_t reqlen;
	char req[]; /* request_max + 1 */
};

enum ctlserver_frame ctlserver_frame(char *buf, size_t *len, size_t n, size_t max)
{
	if (memchr(buf + *len, '\0', n) != NULL)
		return CTLSERVER_NUL;
	*len += n;
	buf[*len] = '\0';
	if (strchr(buf, '\n')) {
		buf[strcspn(buf, "\r\n")] = '\0';
		return CTLSERVER_LINE;
	}
	return *len >= max ? CTLSERVER_TOO_LONG : CTLSERVER_MORE;
}

/* --- a connection ------------------------------------------------------------ */

static void deadline_set(struct ctlconn *c, double seconds)
{
	ev_timer_stop(c->server->loop, &c->deadline);
	ev_timer_set(&c->deadline, seconds, 0.0);
	ev_timer_start(c->server->loop, &c->deadline);
}

/* Everything of closing but the free: a reply may still read c->req. */
static void conn_detach(struct ctlconn *c)
{
	struct ctlserver *s = c->server;

	ev_io_stop(s->loop, &c->io);
	ev_timer_stop(s->loop, &c->deadline);
	close(c->io.fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	free(c->out);
	c->out = NULL;
	if (s->fd >= 0 && !ev_is_active(&s->io) && !ev_is_active(&s->pause.timer))
		ev_io_start(s->loop, &s->io); /* below the limit again */
}

void ctlconn_close(struct ctlconn *c)
{
	void (*gone)(void *) = c->state == CONN_LATER ? c->gone : NULL;
	void *arg = c->arg;

	conn_detach(c);
	free(c);
	if (gone)
		gone(arg);
}

int ctlconn_fd(const struct ctlconn *c)
{
	return c->io.fd;
}

static void conn_write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct ctlconn *c = container_of(io, struct ctlconn, io);

	(void)loop;
	(void)revents;
	while (c->outoff < c->outlen) {
		ssize_t n = send(io->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			break;
		}
		c->outoff += (size_t)n;
	}
	ctlconn_close(c);
}

void ctlconn_answer(struct ctlconn *c, char *text, size_t len)
{
	struct ev_loop *loop = c->server->loop;

	c->state = CONN_ANSWERING; /* a later answer has come: no gone hook */
	if (text == NULL) {
		ctlconn_close(c);
		return;
	}
	free(c->out);
	c->out = text;
	c->outlen = len;
	c->outoff = 0;
	ev_io_stop(loop, &c->io);
	ev_io_init(&c->io, conn_write_cb, c->io.fd, EV_WRITE);
	ev_io_start(loop, &c->io);
	deadline_set(c, c->server->cfg.answer_time);
}

void ctlconn_error(struct ctlconn *c, const char *fmt, ...)
{
	char msg[ERR_LEN], *text;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (asprintf(&text, "error: %s\n", msg) < 0)
		text = NULL;
	ctlconn_answer(c, text, text ? strlen(text) : 0);
}

void ctlconn_later(struct ctlconn *c, void (*gone)(void *arg), void *arg)
{
	c->state = CONN_LATER;
	c->gone = gone;
	c->arg = arg;
}

static void conn_read_cb(struct ev_loop *loop, ev_io *io, int revents);

void ctlconn_expect(struct ctlconn *c, double seconds, void (*reply)(const char *line, void *arg),
		    void *arg)
{
	struct ev_loop *loop = c->server->loop;

	c->state = CONN_EXPECTING;
	c->reply = reply;
	c->arg = arg;
	c->reqlen = 0;
	ev_io_stop(loop, &c->io);
	ev_io_init(&c->io, conn_read_cb, c->io.fd, EV_READ);
	ev_io_start(loop, &c->io);
	deadline_set(c, seconds);
}

/* The dialogue's line (or NULL: no line in time), after the close. */
static void conn_replied(struct ctlconn *c, const char *line)
{
	void (*reply)(const char *, void *) = c->reply;
	void *arg = c->arg;

	conn_detach(c);
	reply(line, arg); /* may close the server itself */
	free(c);
}

static void conn_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct ctlconn *c = container_of(io, struct ctlconn, io);
	size_t max = c->server->cfg.request_max;
	enum ctlserver_frame got;
	ssize_t n;

	(void)revents;
	n = recv(io->fd, c->req + c->reqlen, max - c->reqlen, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		ctlconn_close(c);
		return;
	}
	got = ctlserver_frame(c->req, &c->reqlen, (size_t)n, max);
	if (c->state == CONN_EXPECTING) {
		if (got == CTLSERVER_LINE)
			conn_replied(c, c->req);
		else if (got != CTLSERVER_MORE)
			ctlconn_close(c);
		return;
	}
	switch (got) {
	case CTLSERVER_MORE:
		break;
	case CTLSERVER_NUL:
		ctlconn_error(c, "a NUL byte in the request");
		break;
	case CTLSERVER_TOO_LONG:
		ctlconn_error(c, "request longer than %zu bytes", max);
		break;
	case CTLSERVER_LINE:
		ev_io_stop(loop, io);  /* one request a connection: nothing more to read */
		c->state = CONN_LATER; /* until the tool answers, which may be now */
		c->gone = NULL;
		c->server->cfg.request(c, c->req, c->server->cfg.ctx);
		break;
	}
}

static void conn_deadline_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct ctlconn *c = container_of(t, struct ctlconn, deadline);

	(void)loop;
	(void)revents;
	if (c->state == CONN_READING)
		ctlconn_error(c, "no request line within %.0f s", c->server->cfg.request_time);
	else if (c->state == CONN_EXPECTING)
		conn_replied(c, NULL);
	else
		ctlconn_close(c);
}

/* --- the server -------------------------------------------------------------- */

static void server_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct ctlserver *s = container_of(io, struct ctlserver, io);

	(void)revents;
	while (s->nconns < s->cfg.clients_max) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct ctlconn *c;

		if (fd < 0) {
			int error = errno;

			if (accept_pause(loop, &s->pause, error) == ACCEPT_PAUSED && s->cfg.paused)
				s->cfg.paused(error, s->cfg.ctx);
			return;
		}
		if ((c = calloc(1, sizeof(*c) + s->cfg.request_max + 1)) == NULL) {
			close(fd);
			return;
		}
		c->server = s;
		ev_io_init(&c->io, conn_read_cb, fd, EV_READ);
		ev_io_start(loop, &c->io);
		ev_timer_init(&c->deadline, conn_deadline_cb, s->cfg.request_time, 0.0);
		ev_timer_start(loop, &c->deadline);
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
	}
	ev_io_stop(loop, io); /* the rest wait in the backlog */
}

/* The path free for a new socket: a stale one (nobody answers) removed. */
static enum ctlserver_open_result path_claim(const char *path, const struct sockaddr_un *sun)
{
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? CTLSERVER_OPENED : CTLSERVER_FAILED;
	if (!S_ISSOCK(st.st_mode))
		return CTLSERVER_NOT_A_SOCKET;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return CTLSERVER_NO_SOCKET;
	rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	close(fd);
	if (rc == 0)
		return CTLSERVER_IN_USE;
	if (unlink(path) < 0 && errno != ENOENT)
		return CTLSERVER_STALE_STUCK;
	return CTLSERVER_REPLACED;
}

/* A listening socket at path, mode 0600 from the start: no window where
 * others connect. */
static int path_listen(const char *path, const struct sockaddr_un *sun, struct stat *st,
		       enum ctlserver_open_result *result)
{
	mode_t old;
	int fd, rc, error;

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
		*result = CTLSERVER_NO_SOCKET;
		return -1;
	}
	old = umask(0177);
	rc = bind(fd, (const struct sockaddr *)sun, sizeof(*sun));
	error = errno;
	umask(old);
	if (rc < 0) {
		close(fd);
		errno = error;
		*result = CTLSERVER_FAILED;
		return -1;
	}
	if (listen(fd, CTLSERVER_BACKLOG) < 0 || stat(path, st) < 0) {
		error = errno;
		unlink(path);
		close(fd);
		errno = error;
		*result = CTLSERVER_FAILED;
		return -1;
	}
	return fd;
}

struct ctlserver *ctlserver_open(struct ev_loop *loop, const char *path, int replace,
				 const struct ctlserver_config *cfg,
				 enum ctlserver_open_result *result)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct ctlserver *s;
	struct stat st;
	int fd, error;

	if (strlen(path) > CTLSERVER_PATH_MAX) {
		*result = CTLSERVER_PATH_TOO_LONG;
		return NULL;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (replace) {
		*result = unlink(path) < 0 && errno != ENOENT ? CTLSERVER_FAILED : CTLSERVER_OPENED;
	} else {
		*result = path_claim(path, &sun);
	}
	if (*result != CTLSERVER_OPENED && *result != CTLSERVER_REPLACED)
		return NULL;
	if ((fd = path_listen(path, &sun, &st, result)) < 0)
		return NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		error = errno;
		unlink(path);
		close(fd);
		errno = error;
		*result = CTLSERVER_FAILED;
		return NULL;
	}
	s->loop = loop;
	s->cfg = *cfg;
	s->fd = fd;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	snprintf(s->path, sizeof(s->path), "%s", path);
	ev_io_init(&s->io, server_accept_cb, fd, EV_READ);
	ev_io_start(loop, &s->io);
	accept_pause_init(&s->pause, &s->io, cfg->accept_rest);
	return s;
}

void ctlserver_close(struct ctlserver *s)
{
	struct stat st;

	if (s == NULL)
		return;
	ev_io_stop(s->loop, &s->io);
	accept_pause_stop(s->loop, &s->pause);
	close(s->fd);
	s->fd = -1; /* closing a connection must not start accepting again */
	while (s->conns)
		ctlconn_close(s->conns);
	if (stat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
	free(s);
}

const char *ctlserver_path(const struct ctlserver *s)
{
	return s ? s->path : NULL;
}
