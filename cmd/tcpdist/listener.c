/* Listening sockets: one per address per worker, joined with SO_REUSEPORT
 * so the kernel spreads new connections over the worker threads. The main
 * thread opens and tracks them (listen_entry); each worker watches its own
 * (listener), told of changes through its queue of listener_ops. */
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

static void listener_accept_cb(struct ev_loop *loop, ev_io *io, int revents);

static int listen_socket(const struct addr *a, int reuseport, int v6only, char *err)
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
	if (a->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
		int error = errno;

		err_set(err, "%s", strerror(error));
		close(fd);
		errno = error;
		return -1;
	}
	return fd;
}

/* SO_REUSEPORT would let a second tcpdist silently share our port; a plain
 * bind first turns that mistake into "address already in use". */
static int listen_probe(const struct addr *a, int v6only, char *err)
{
	int fd = listen_socket(a, 0, v6only, err);

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

static int addr_is_any6(const struct addr *a)
{
	return a->ss.ss_family == AF_INET6 &&
	       IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
}

/* [::]:P takes IPv4 clients too (dual stack), unless an IPv4 address with
 * port P is listed beside it: then each family has its own socket. Other
 * IPv6 addresses are IPv6 only. */
static int listen_v6only(const struct addr *a, const struct pool_listen *addrs, size_t n)
{
	if (a->ss.ss_family != AF_INET6)
		return 0;
	if (!addr_is_any6(a) || addr_port(a) == 0)
		return !addr_is_any6(a);
	for (size_t i = 0; i < n; i++)
		if (addrs[i].addr.ss.ss_family == AF_INET && addr_port(&addrs[i].addr) == addr_port(a))
			return 1;
	return 0;
}

/* One socket per worker for address a, in fds[]; text gets the address
 * actually bound (the kernel's choice for port 0). With our own listener
 * already on the port (a reload that moves 127.0.0.1:P to 0.0.0.0:P), the
 * probe meets that one: the SO_REUSEPORT binds, which our sockets allow,
 * decide then. */
static int listen_open_all(const struct pool_listen *l, int v6only, int port_is_ours,
			   int nworkers, int *fds, char *text, char *err)
{
	struct addr a = l->addr;
	char e[ERR_LEN];
	int k;

	if (addr_port(&a) != 0 && listen_probe(&a, v6only, e) < 0 &&
	    !(errno == EADDRINUSE && port_is_ours))
		return err_set(err, "listen %s: %s", l->text, e);
	for (k = 0; k < nworkers; k++) {
		fds[k] = listen_socket(&a, 1, v6only, e);
		if (fds[k] < 0)
			break;
		if (listen(fds[k], SOMAXCONN) < 0) {
			snprintf(e, sizeof(e), "%s", strerror(errno));
			close(fds[k]);
			break;
		}
		if (addr_port(&a) == 0) {
			/* Port 0: the kernel chose; the other workers join it. */
			a.len = sizeof(a.ss);
			getsockname(fds[k], (struct sockaddr *)&a.ss, &a.len);
		}
	}
	if (k < nworkers) {
		while (k-- > 0)
			close(fds[k]);
		return err_set(err, "listen %s: %s", l->text, e);
	}
	addr_format((const struct sockaddr *)&a.ss, text, ADDR_TEXT_LEN);
	return 0;
}

static int listen_wanted(const struct listen_entry *e, const struct pool_listen *addrs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (addr_equal(&e->addr, &addrs[i].addr) &&
		    e->v6only == listen_v6only(&addrs[i].addr, addrs, n))
			return 1;
	return 0;
}

static const struct listen_entry *listen_find(const struct proc *p, const struct addr *a,
					      int v6only)
{
	for (const struct listen_entry *e = p->listens; e; e = e->next)
		if (addr_equal(&e->addr, a) && e->v6only == v6only)
			return e;
	return NULL;
}

/* Whether one of our listeners, old or just opened, has port. */
static int listen_port_ours(const struct proc *p, struct listen_entry *const *fresh,
			    size_t nfresh, uint16_t port)
{
	for (const struct listen_entry *e = p->listens; e; e = e->next)
		if (addr_port(&e->addr) == port)
			return 1;
	for (size_t i = 0; i < nfresh; i++)
		if (addr_port(&fresh[i]->addr) == port)
			return 1;
	return 0;
}

static void ops_free(struct listener_op *op)
{
	while (op) {
		struct listener_op *next = op->next;

		free(op);
		op = next;
	}
}

/* The ops one worker needs: its socket of each fresh address, then the
 * closing of every address no longer wanted. */
static int ops_build(const struct proc *p, int k, struct listen_entry **fresh, int **fds,
		     size_t nfresh, const struct pool_listen *addrs, size_t n,
		     struct listener_op **out)
{
	struct listener_op *ops = NULL, **tail = &ops, *op;

	for (size_t i = 0; i < nfresh; i++) {
		if ((op = calloc(1, sizeof(*op))) == NULL)
			goto oom;
		op->id = fresh[i]->id;
		op->fd = fds[i][k];
		memcpy(op->text, fresh[i]->text, sizeof(op->text));
		*tail = op, tail = &op->next;
	}
	for (const struct listen_entry *e = p->listens; e; e = e->next) {
		if (listen_wanted(e, addrs, n))
			continue;
		if ((op = calloc(1, sizeof(*op))) == NULL)
			goto oom;
		op->id = e->id;
		op->fd = -1;
		*tail = op, tail = &op->next;
	}
	*out = ops;
	return 0;
oom:
	ops_free(ops);
	return -1;
}

/* Opens what is new first, so a failure changes nothing; then hands each
 * worker its new sockets and the closing of removed addresses. */
int listeners_update(struct proc *p, const struct pool_listen *addrs, size_t n, char *err)
{
	size_t cap = n ? n : 1, nfresh = 0;
	struct listen_entry **fresh = calloc(cap, sizeof(*fresh));
	int **fds = calloc(cap, sizeof(*fds));
	struct listener_op **wops = calloc((size_t)p->nworkers, sizeof(*wops));
	int rc = -1;

	if (fresh == NULL || fds == NULL || wops == NULL) {
		err_set(err, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		int dup = 0, v6only = listen_v6only(&addrs[i].addr, addrs, n);

		for (size_t j = 0; j < i; j++)
			dup |= addr_equal(&addrs[j].addr, &addrs[i].addr);
		if (dup || listen_find(p, &addrs[i].addr, v6only))
			continue;
		fresh[nfresh] = calloc(1, sizeof(**fresh));
		fds[nfresh] = calloc((size_t)p->nworkers, sizeof(int));
		if (fresh[nfresh] == NULL || fds[nfresh] == NULL) {
			free(fresh[nfresh]);
			free(fds[nfresh]);
			err_set(err, "out of memory");
			goto out;
		}
		if (listen_open_all(&addrs[i], v6only,
				    listen_port_ours(p, fresh, nfresh, addr_port(&addrs[i].addr)),
				    p->nworkers, fds[nfresh], fresh[nfresh]->text, err) < 0) {
			free(fresh[nfresh]);
			free(fds[nfresh]);
			goto out;
		}
		fresh[nfresh]->addr = addrs[i].addr;
		fresh[nfresh]->v6only = v6only;
		fresh[nfresh]->id = ++p->next_listen_id;
		nfresh++;
	}
	for (int k = 0; k < p->nworkers; k++) {
		if (ops_build(p, k, fresh, fds, nfresh, addrs, n, &wops[k]) < 0) {
			err_set(err, "out of memory");
			goto out;
		}
	}

	/* Commit: nothing below can fail. */
	for (struct listen_entry **pe = &p->listens; *pe;) {
		struct listen_entry *e = *pe;

		if (listen_wanted(e, addrs, n)) {
			pe = &e->next;
			continue;
		}
		log_info("no longer listening on %s", e->text);
		*pe = e->next;
		free(e);
	}
	for (size_t i = 0; i < nfresh; i++) {
		fresh[i]->next = p->listens;
		p->listens = fresh[i];
		log_info("listening on %s", fresh[i]->text);
		free(fds[i]);
	}
	nfresh = 0;
	pthread_mutex_lock(&p->lock);
	for (int k = 0; k < p->nworkers; k++) {
		struct listener_op **tail = &p->workers[k].ops;

		while (*tail)
			tail = &(*tail)->next;
		*tail = wops[k];
		wops[k] = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	for (int k = 0; k < p->nworkers; k++)
		ev_async_send(p->workers[k].loop, &p->workers[k].reconfig);
	rc = 0;
out:
	for (size_t i = 0; i < nfresh; i++) {
		for (int k = 0; k < p->nworkers; k++)
			close(fds[i][k]);
		free(fds[i]);
		free(fresh[i]);
	}
	for (int k = 0; wops && k < p->nworkers; k++)
		ops_free(wops[k]);
	free(wops);
	free(fresh);
	free(fds);
	return rc;
}

void listen_entries_free(struct proc *p)
{
	while (p->listens) {
		struct listen_entry *e = p->listens;

		p->listens = e->next;
		free(e);
	}
}

static int worker_watching(const struct worker *w)
{
	return !atomic_load_explicit(&w->stopping, memory_order_relaxed) &&
	       !atomic_load_explicit(&w->paused, memory_order_relaxed);
}

/* On the worker's thread: takes over new sockets, closes removed ones. */
void listeners_apply(struct worker *w, struct listener_op *ops)
{
	while (ops) {
		struct listener_op *op = ops;

		ops = op->next;
		if (op->fd >= 0) {
			struct listener *l = calloc(1, sizeof(*l));

			if (l == NULL || atomic_load(&w->stopping)) {
				if (l == NULL)
					log_err("out of memory: cannot listen on %s", op->text);
				close(op->fd);
				free(l);
			} else {
				l->worker = w;
				l->id = op->id;
				l->fd = op->fd;
				memcpy(l->text, op->text, sizeof(l->text));
				ev_io_init(&l->io, listener_accept_cb, l->fd, EV_READ);
				l->next = w->listeners;
				w->listeners = l;
				if (worker_watching(w))
					ev_io_start(w->loop, &l->io);
			}
		} else {
			for (struct listener **pl = &w->listeners; *pl; pl = &(*pl)->next) {
				struct listener *l = *pl;

				if (l->id != op->id)
					continue;
				/* Clients already in its backlog would be reset by
				 * the close: take them first. */
				if (worker_watching(w))
					listener_accept_cb(w->loop, &l->io, EV_READ);
				ev_io_stop(w->loop, &l->io);
				close(l->fd);
				*pl = l->next;
				free(l);
				break;
			}
		}
		free(op);
	}
}

void listeners_watch(struct worker *w, int on)
{
	for (struct listener *l = w->listeners; l; l = l->next) {
		if (on)
			ev_io_start(w->loop, &l->io);
		else
			ev_io_stop(w->loop, &l->io);
	}
}

void listeners_close(struct worker *w)
{
	while (w->listeners) {
		struct listener *l = w->listeners;

		ev_io_stop(w->loop, &l->io);
		close(l->fd);
		w->listeners = l->next;
		free(l);
	}
}

/* The pool's max_conns reached: stop accepting until a connection ends.
 * Returns 1 if paused. */
static int accept_limit(struct worker *w)
{
	unsigned max = w->farm->pool->max_conns;
	struct proc *p = w->proc;

	if (max == 0 || proc_connections(p) < max)
		return 0;
	worker_pause(w, PAUSE_LIMIT);
	atomic_fetch_add(&p->paused_for_limit, 1);
	/* A connection may have ended before the counter said we wait. */
	if (proc_connections(p) < max) {
		worker_unpause(w, PAUSE_LIMIT);
		return 0;
	}
	return 1;
}

static void listener_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct listener *l = container_of(io, struct listener, io);
	struct worker *w = l->worker;
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	(void)loop;
	(void)revents;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		if (accept_limit(w))
			return;
		len = sizeof(ss);
		fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			conn_accepted(w, fd, (struct sockaddr *)&ss, len);
			if (atomic_load_explicit(&w->paused, memory_order_relaxed))
				return;
			continue;
		}
		switch (errno) {
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
			continue;
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			/* Leave clients in the kernel's backlog rather than
			 * spin on a readable listener; a connection closing,
			 * or a short timer, starts accepting again. */
			worker_out_of_fds(w, l->text);
			return;
		case EAGAIN:
			return;
		default:
			log_warn("accept on %s: %s", l->text, strerror(errno));
			return;
		}
	}
}
