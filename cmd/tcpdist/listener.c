/* Listening sockets: one per address per worker, joined with SO_REUSEPORT
 * so the kernel spreads new connections over the worker threads. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "tcpdist.h"

static int listen_socket(const struct addr *a, int reuseport, char *err)
{
	int fd, one = 1;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(err, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	/* Accepted sockets inherit it: one setsockopt per listener, not per client. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* So 0.0.0.0:P and [::]:P can both be listed. */
	if (a->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
		err_set(err, "%s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* SO_REUSEPORT would let a second tcpdist silently share our port; a plain
 * bind first turns that mistake into "address already in use". */
static int listen_probe(const struct addr *a, char *err)
{
	int fd = listen_socket(a, 0, err);

	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static uint16_t addr_port(const struct addr *a)
{
	return ntohs(a->ss.ss_family == AF_INET ? ((const struct sockaddr_in *)&a->ss)->sin_port
						: ((const struct sockaddr_in6 *)&a->ss)->sin6_port);
}

int listeners_open(struct worker *workers, int nworkers, struct pool_listen *addrs, size_t n,
		   char *err)
{
	char e[ERR_LEN];

	for (int k = 0; k < nworkers; k++) {
		workers[k].listeners = calloc(n, sizeof(struct listener));
		if (workers[k].listeners == NULL)
			return err_set(err, "out of memory");
		workers[k].nlisteners = n;
		for (size_t i = 0; i < n; i++)
			workers[k].listeners[i].fd = -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct addr a = addrs[i].addr;

		if (addr_port(&a) != 0 && listen_probe(&a, e) < 0)
			return err_set(err, "listen %s: %s", addrs[i].text, e);
		for (int k = 0; k < nworkers; k++) {
			struct listener *l = &workers[k].listeners[i];

			l->fd = listen_socket(&a, 1, e);
			if (l->fd < 0)
				return err_set(err, "listen %s: %s", addrs[i].text, e);
			if (listen(l->fd, SOMAXCONN) < 0)
				return err_set(err, "listen %s: %s", addrs[i].text, strerror(errno));
			if (addr_port(&a) == 0) {
				/* Port 0: the kernel chose; the other workers join it. */
				a.len = sizeof(a.ss);
				getsockname(l->fd, (struct sockaddr *)&a.ss, &a.len);
			}
			l->worker = &workers[k];
			addr_format((const struct sockaddr *)&a.ss, l->text, sizeof(l->text));
			ev_io_init(&l->io, listener_accept_cb, l->fd, EV_READ);
		}
		log_info("listening on %s", workers[0].listeners[i].text);
	}
	return 0;
}

void listeners_close(struct worker *w)
{
	for (size_t i = 0; i < w->nlisteners; i++) {
		struct listener *l = &w->listeners[i];

		if (l->fd < 0)
			continue;
		if (l->worker != NULL)
			ev_io_stop(w->loop, &l->io);
		close(l->fd);
		l->fd = -1;
	}
}

/* Out of file descriptors: accept with the spare one and close at once, so
 * the client gets a quick close instead of waiting in the backlog while the
 * loop spins on a readable listener. */
static void accept_emfile(struct worker *w, struct listener *l)
{
	int fd;

	if (w->spare_fd >= 0) {
		close(w->spare_fd);
		w->spare_fd = -1;
	}
	fd = accept(l->fd, NULL, NULL);
	if (fd >= 0)
		close(fd);
	w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (ev_now(w->loop) - w->emfile_logged >= 1.0) {
		w->emfile_logged = ev_now(w->loop);
		log_warn("out of file descriptors: dropping new connections on %s", l->text);
	}
}

void listener_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct listener *l = container_of(io, struct listener, io);
	struct worker *w = l->worker;
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	(void)loop;
	(void)revents;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		len = sizeof(ss);
		fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			conn_accepted(w, fd, (struct sockaddr *)&ss, len);
			continue;
		}
		switch (errno) {
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
			continue;
		case EMFILE:
		case ENFILE:
			accept_emfile(w, l);
			return;
		case EAGAIN:
			return;
		default:
			log_warn("accept on %s: %s", l->text, strerror(errno));
			return;
		}
	}
}
