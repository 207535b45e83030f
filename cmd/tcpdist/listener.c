/* Listening sockets: one per address per worker, joined with SO_REUSEPORT
 * so the kernel spreads new connections over the worker threads. The main
 * thread opens and tracks them (listen_entry); each worker watches its own
 * (listener), told of changes through its queue of listener_ops.
 *
 * Closing a listening socket resets every client in its backlog, and the
 * kernel completes handshakes into it until the close. So a removed one is
 * drained first: a socket filter drops new SYNs (their clients send them
 * again a second later and reach the remaining sockets, or a refusal); the
 * handshakes already under way, which sock_diag lists, may complete for up
 * to LISTENER_DRAIN_MAX; then a second filter drops everything, the backlog
 * is accepted, and only then is the socket closed. A draining listener is
 * accepted from even at max_conns, but not past the descriptor budget: it
 * waits for descriptors instead, its clients in its backlog. */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/filter.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "tcpdist.h"

#define LISTENER_DRAIN_FIRST 0.001 /* seconds before the first look at handshakes under way */
#define LISTENER_DRAIN_POLL 0.01   /* between the next ones */
#define LISTENER_DRAIN_MAX 0.5     /* at most: under the 1 s before a dropped SYN comes again */
#define LISTENER_DRAIN_RETRY 0.1   /* the last accepts, while out of descriptors */
#define DIAG_NEW_SYN_RECV 12       /* the kernel's TCP_NEW_SYN_RECV: a handshake under way */

enum { DRAIN_NONE, DRAIN_SYNS, DRAIN_ALL }; /* struct listener's draining */
enum { ACCEPT_EMPTY, ACCEPT_MORE, ACCEPT_STOPPED };

static void listener_accept_cb(struct ev_loop *loop, ev_io *io, int revents);
static void listener_drain_start(struct worker *w, struct listener *l);

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

/* Listening sockets count against the workers' descriptor budget. */
static void listen_fd_close(struct fd_budget *fdb, int fd)
{
	close(fd);
	fd_other_add(fdb, -1);
}

/* One socket per worker for address a, in fds[]; text gets the address
 * actually bound (the kernel's choice for port 0). With our own listener
 * already on the port (a reload that moves 127.0.0.1:P to 0.0.0.0:P), the
 * probe meets that one: the SO_REUSEPORT binds, which our sockets allow,
 * decide then. */
static int listen_open_all(struct fd_budget *fdb, const struct pool_listen *l, int v6only,
			   int port_is_ours, int nworkers, int *fds, char *text, char *err)
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
		fd_other_add(fdb, 1);
		if (listen(fds[k], SOMAXCONN) < 0) {
			snprintf(e, sizeof(e), "%s", strerror(errno));
			listen_fd_close(fdb, fds[k]);
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
			listen_fd_close(fdb, fds[k]);
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

/* Whether one of our listeners, old, just opened or still draining, has port. */
static int listen_port_ours(struct proc *p, struct listen_entry *const *fresh, size_t nfresh,
			    uint16_t port)
{
	int ours = 0;

	for (const struct listen_entry *e = p->listens; e; e = e->next)
		ours |= addr_port(&e->addr) == port;
	for (size_t i = 0; i < nfresh; i++)
		ours |= addr_port(&fresh[i]->addr) == port;
	pthread_mutex_lock(&p->lock);
	for (const struct listen_entry *e = p->closing; e; e = e->next)
		ours |= e->sockets > 0 && addr_port(&e->addr) == port;
	pthread_mutex_unlock(&p->lock);
	return ours;
}

/* Removed entries whose sockets are all closed. */
static void listen_closing_reap(struct proc *p, int all)
{
	pthread_mutex_lock(&p->lock);
	for (struct listen_entry **pe = &p->closing; *pe;) {
		struct listen_entry *e = *pe;

		if (e->sockets > 0 && !all) {
			pe = &e->next;
			continue;
		}
		*pe = e->next;
		free(e);
	}
	pthread_mutex_unlock(&p->lock);
}

/* On a worker: its socket of entry id is closed. */
static void listen_socket_closed(struct proc *p, uint64_t id)
{
	pthread_mutex_lock(&p->lock);
	for (struct listen_entry *e = p->closing; e; e = e->next)
		if (e->id == id)
			e->sockets--;
	pthread_mutex_unlock(&p->lock);
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
	/* The first call comes before the workers run: count what is open. */
	if (p->fds.nofile == 0)
		fd_budget_init(&p->fds, p->nworkers);
	listen_closing_reap(p, 0);
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
		if (listen_open_all(&p->fds, &addrs[i], v6only,
				    listen_port_ours(p, fresh, nfresh, addr_port(&addrs[i].addr)),
				    p->nworkers, fds[nfresh], fresh[nfresh]->text, err) < 0) {
			free(fresh[nfresh]);
			free(fds[nfresh]);
			goto out;
		}
		fresh[nfresh]->addr = addrs[i].addr;
		fresh[nfresh]->v6only = v6only;
		fresh[nfresh]->nsockets = p->nworkers;
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
	pthread_mutex_lock(&p->lock);
	for (struct listen_entry **pe = &p->listens; *pe;) {
		struct listen_entry *e = *pe;

		if (listen_wanted(e, addrs, n)) {
			pe = &e->next;
			continue;
		}
		log_info("no longer listening on %s", e->text);
		*pe = e->next;
		e->sockets = e->nsockets; /* until each worker has drained its own */
		e->next = p->closing;
		p->closing = e;
	}
	pthread_mutex_unlock(&p->lock);
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
			listen_fd_close(&p->fds, fds[i][k]);
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

/* An inherited socket's address and family mode; -1 unless it is a
 * listening TCP socket. */
static int inherited_addr(int fd, struct addr *a, int *v6only)
{
	int type = 0, listening = 0;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM)
		return -1;
	len = sizeof(listening);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening)
		return -1;
	a->len = sizeof(a->ss);
	if (getsockname(fd, (struct sockaddr *)&a->ss, &a->len) < 0 ||
	    (a->ss.ss_family != AF_INET && a->ss.ss_family != AF_INET6))
		return -1;
	*v6only = 0;
	len = sizeof(*v6only);
	if (a->ss.ss_family == AF_INET6)
		getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only, &len);
	return 0;
}

int listeners_adopt(struct proc *p, const int *fds, size_t n, int shared, char *err)
{
	int nworkers = p->nworkers;
	char *taken = calloc(n ? n : 1, 1);

	if (taken == NULL)
		return err_set(err, "out of memory");
	if (p->fds.nofile == 0)
		fd_budget_init(&p->fds, p->nworkers);
	for (size_t i = 0; i < n; i++) {
		struct listen_entry *e;
		struct addr a, b;
		int v6only, v6b, m = 0, *group;

		if (taken[i])
			continue;
		if (inherited_addr(fds[i], &a, &v6only) < 0) {
			log_warn("inherited descriptor %d is not a listening TCP socket: closed", fds[i]);
			close(fds[i]);
			continue;
		}
		/* Every inherited socket of this address, as one entry. */
		if ((group = calloc(n, sizeof(*group))) == NULL ||
		    (e = calloc(1, sizeof(*e))) == NULL) {
			free(group);
			free(taken);
			return err_set(err, "out of memory");
		}
		for (size_t j = i; j < n; j++) {
			if (taken[j] || (j > i && (inherited_addr(fds[j], &b, &v6b) < 0 ||
						   !addr_equal(&a, &b) || v6b != v6only)))
				continue;
			taken[j] = 1;
			group[m++] = fds[j];
		}
		e->addr = a;
		e->v6only = v6only;
		e->shared = shared;
		e->id = ++p->next_listen_id;
		e->nsockets = m > nworkers ? m : nworkers;
		addr_format((const struct sockaddr *)&a.ss, e->text, sizeof(e->text));
		/* Each worker gets at least one: a copy of a shared socket when
		 * fewer came than there are workers. */
		for (int k = 0; k < e->nsockets; k++) {
			struct listener_op *op = calloc(1, sizeof(*op));
			int fd = k < m ? group[k] : fcntl(group[k % m], F_DUPFD_CLOEXEC, 0);

			if (op == NULL || fd < 0) {
				free(op);
				if (fd >= 0 && k >= m)
					close(fd);
				e->nsockets = k; /* the workers left without one still accept elsewhere */
				break;
			}
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
			fcntl(fd, F_SETFD, FD_CLOEXEC);
			fd_other_add(&p->fds, k < m ? 0 : 1);
			op->id = e->id;
			op->fd = fd;
			op->shared = shared;
			memcpy(op->text, e->text, sizeof(op->text));
			pthread_mutex_lock(&p->lock);
			op->next = p->workers[k % nworkers].ops;
			p->workers[k % nworkers].ops = op;
			pthread_mutex_unlock(&p->lock);
		}
		free(group);
		e->next = p->listens;
		p->listens = e;
		log_info("listening on %s (%d socket%s %s)", e->text, m, m == 1 ? "" : "s",
			 shared ? "from systemd" : "taken over");
	}
	free(taken);
	return 0;
}

void listen_entries_free(struct proc *p)
{
	while (p->listens) {
		struct listen_entry *e = p->listens;

		p->listens = e->next;
		free(e);
	}
	listen_closing_reap(p, 1);
}

/* --- on the worker's thread ------------------------------------------------ */

/* A SYN without ACK: dropped. Anything else, the ACKs that complete
 * handshakes under way included, passes whole. The offsets are the TCP
 * header's: a TCP socket's filter sees the segment from there. */
static struct sock_filter filter_syns[] = {
	BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13), /* the flags */
	BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 1),
	BPF_STMT(BPF_RET | BPF_K, 0),
	BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
};
static struct sock_filter filter_all[] = {
	BPF_STMT(BPF_RET | BPF_K, 0),
};

static int listener_filter(const struct listener *l, struct sock_filter *code, size_t len)
{
	struct sock_fprog prog = {(unsigned short)len, code};

	return setsockopt(l->fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
}

/* Which listeners the worker watches: all while it accepts; at max_conns
 * only those draining; none while out of descriptors or stopping. */
void listeners_watch(struct worker *w)
{
	int paused = atomic_load_explicit(&w->paused, memory_order_relaxed);
	int stopping = atomic_load_explicit(&w->stopping, memory_order_relaxed);

	for (struct listener *l = w->listeners; l; l = l->next) {
		if (!stopping && !(paused & PAUSE_FDS) && (l->draining || !(paused & PAUSE_LIMIT)))
			ev_io_start(w->loop, &l->io);
		else
			ev_io_stop(w->loop, &l->io);
	}
}

static void listener_free(struct listener *l)
{
	struct worker *w = l->worker;

	for (struct listener **pl = &w->listeners; *pl; pl = &(*pl)->next) {
		if (*pl == l) {
			*pl = l->next;
			break;
		}
	}
	ev_io_stop(w->loop, &l->io);
	ev_timer_stop(w->loop, &l->drain);
	listen_fd_close(&w->proc->fds, l->fd);
	listen_socket_closed(w->proc, l->id);
	free(l);
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

/* Takes clients from l's backlog: ACCEPT_EMPTY when there are none left. */
static int listener_accept(struct listener *l)
{
	struct worker *w = l->worker;
	struct fd_budget *fdb = &w->proc->fds;
	int stop = l->draining ? PAUSE_FDS : PAUSE_FDS | PAUSE_LIMIT;
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, error, none = 0;

	for (int i = 0; i < ACCEPT_BATCH; i++) {
		/* A draining backlog goes past max_conns: the close would reset it. */
		if (!l->draining && accept_limit(w))
			return ACCEPT_STOPPED;
		/* The backend's socket is counted now, so it cannot be missing later. */
		if (fd_take(fdb, CONN_FDS) < 0) {
			worker_out_of_fds(w, l->text);
			return ACCEPT_STOPPED;
		}
		len = sizeof(ss);
		fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			if (l->draining) /* inherited from the listener */
				setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &none, sizeof(none));
			conn_accepted(w, fd, (struct sockaddr *)&ss, len,
				      l->has_local ? &l->local : NULL);
			if (atomic_load_explicit(&w->paused, memory_order_relaxed) & stop)
				return ACCEPT_STOPPED;
			continue;
		}
		error = errno;
		fd_give(fdb, CONN_FDS);
		switch (error) {
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
			return ACCEPT_STOPPED;
		case EAGAIN:
			return ACCEPT_EMPTY;
		default:
			log_warn("accept on %s: %s", l->text, strerror(error));
			return ACCEPT_STOPPED;
		}
	}
	return ACCEPT_MORE;
}

static void listener_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct listener *l = container_of(io, struct listener, io);

	(void)loop;
	(void)revents;
	if (listener_accept(l) == ACCEPT_EMPTY && l->draining == DRAIN_ALL)
		listener_free(l);
}

/* Counts the handshakes under way to l's address (SYN answered, last ACK
 * not in yet), through sock_diag: -1 if they cannot be counted. Those of
 * our other sockets with the same port count too, unless l's address is a
 * particular IPv4 one: the answer may be too high, never too low. */
static int listener_handshakes(const struct listener *l)
{
	struct fd_budget *fdb = &l->worker->proc->fds;
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	uint32_t v4 = 0;
	char buf[8192];
	int fd, n = -1, done = 0;
	ssize_t len;

	if (getsockname(l->fd, (struct sockaddr *)&ss, &sslen) < 0 || fd_take(fdb, 1) < 0)
		return -1;
	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		goto out;
	memset(&req, 0, sizeof(req));
	req.nlh.nlmsg_len = sizeof(req);
	req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.r.sdiag_family = ss.ss_family;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = 1u << DIAG_NEW_SYN_RECV;
	if (ss.ss_family == AF_INET) {
		req.r.id.idiag_sport = ((struct sockaddr_in *)&ss)->sin_port;
		v4 = ((struct sockaddr_in *)&ss)->sin_addr.s_addr;
	} else {
		req.r.id.idiag_sport = ((struct sockaddr_in6 *)&ss)->sin6_port;
	}
	if (send(fd, &req, sizeof(req), 0) < 0)
		goto out;
	n = 0;
	while (!done && (len = recv(fd, buf, sizeof(buf), 0)) > 0) {
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len);
		     h = NLMSG_NEXT(h, len)) {
			const struct inet_diag_msg *m = NLMSG_DATA(h);

			if (h->nlmsg_type == NLMSG_ERROR) {
				n = -1;
				done = 1;
			}
			if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
				done = 1;
				break;
			}
			if (m->id.idiag_sport == req.r.id.idiag_sport &&
			    (v4 == INADDR_ANY || m->id.idiag_src[0] == v4))
				n++;
		}
	}
	if (!done)
		n = -1;
out:
	if (fd >= 0)
		close(fd);
	fd_give(fdb, 1);
	return n;
}

/* Polls the handshakes under way; when none is left, or their time is up,
 * nothing more gets in, and once the backlog is accepted the socket closes.
 * Out of descriptors, the timer repeats until then. */
static void listener_drain_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct listener *l = container_of(t, struct listener, drain);

	(void)revents;
	if (l->draining == DRAIN_SYNS) {
		if (ev_now(loop) < l->drain_end && listener_handshakes(l) != 0)
			return;
		listener_filter(l, filter_all, sizeof(filter_all) / sizeof(filter_all[0]));
		l->draining = DRAIN_ALL;
		t->repeat = LISTENER_DRAIN_RETRY;
		ev_timer_again(loop, t);
	}
	if (!(atomic_load_explicit(&l->worker->paused, memory_order_relaxed) & PAUSE_FDS) &&
	    listener_accept(l) == ACCEPT_EMPTY)
		listener_free(l);
}

/* A listener on one address (not 0.0.0.0 or ::) knows where its clients
 * connected to: the PROXY headers sent to backends need no getsockname. */
static void listener_local(struct listener *l)
{
	socklen_t len = sizeof(l->local);

	if (getsockname(l->fd, &l->local.sa, &len) < 0)
		return;
	if (l->local.sa.sa_family == AF_INET)
		l->has_local = l->local.in.sin_addr.s_addr != htonl(INADDR_ANY);
	else if (l->local.sa.sa_family == AF_INET6)
		l->has_local = !IN6_IS_ADDR_UNSPECIFIED(&l->local.in6.sin6_addr);
}

static void listener_add(struct worker *w, const struct listener_op *op)
{
	struct listener *l = calloc(1, sizeof(*l));

	if (l == NULL || atomic_load(&w->stopping)) {
		if (l == NULL)
			log_err("out of memory: cannot listen on %s", op->text);
		listen_fd_close(&w->proc->fds, op->fd);
		free(l);
		return;
	}
	l->worker = w;
	l->id = op->id;
	l->fd = op->fd;
	l->shared = op->shared;
	memcpy(l->text, op->text, sizeof(l->text));
	listener_local(l);
	ev_io_init(&l->io, listener_accept_cb, l->fd, EV_READ);
	ev_init(&l->drain, listener_drain_cb);
	l->next = w->listeners;
	w->listeners = l;
	listeners_watch(w);
}

/* Drains the listeners of entry id (see the top of this file): one per
 * worker, or several when more sockets were inherited than there are workers. */
static void listener_remove(struct worker *w, uint64_t id)
{
	struct listener *l = w->listeners;
	int found = 0;

	while (l) {
		struct listener *next = l->next;

		if (l->id == id && !l->draining) {
			found = 1;
			listener_drain_start(w, l);
		}
		l = next;
	}
	if (!found) /* never taken over, or closed by a stop */
		listen_socket_closed(w->proc, id);
}

static void listener_drain_start(struct worker *w, struct listener *l)
{
	if (l->shared) {
		/* systemd keeps the socket and its backlog for the next process. */
		listener_free(l);
		return;
	}
	if (listener_filter(l, filter_syns, sizeof(filter_syns) / sizeof(filter_syns[0])) < 0)
		log_warn("%s: new clients may still arrive while its backlog is drained: %s",
			 l->text, strerror(errno));
	l->draining = DRAIN_SYNS;
	l->drain_end = ev_now(w->loop) + LISTENER_DRAIN_MAX;
	/* Not at once: a SYN that passed just before the filter may be
	 * making its request socket on another CPU still. */
	ev_timer_set(&l->drain, LISTENER_DRAIN_FIRST, LISTENER_DRAIN_POLL);
	ev_timer_start(w->loop, &l->drain);
	listeners_watch(w);
}

/* Takes over new sockets, drains removed ones. */
void listeners_apply(struct worker *w, struct listener_op *ops)
{
	while (ops) {
		struct listener_op *op = ops;

		ops = op->next;
		if (op->fd >= 0)
			listener_add(w, op);
		else
			listener_remove(w, op->id);
		free(op);
	}
}

/* Stopping: every socket closes now, draining or not. */
void listeners_close(struct worker *w)
{
	while (w->listeners)
		listener_free(w->listeners);
}

/* --- loops ------------------------------------------------------------------ */

/* The IPv4 address of a, if it is one (IPv4-mapped IPv6 included). */
static int addr_v4(const struct addr *a, struct in_addr *v4)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;

	if (a->ss.ss_family == AF_INET) {
		*v4 = ((const struct sockaddr_in *)&a->ss)->sin_addr;
		return 1;
	}
	if (!IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return 0;
	memcpy(&v4->s_addr, &s6->sin6_addr.s6_addr[12], 4);
	return 1;
}

/* Whether a connect to a stays on this host: loopback, 0.0.0.0 and :: (the
 * kernel takes them for loopback), or an address of one of its interfaces. */
static int addr_is_own(const struct addr *a, struct ifaddrs **ifs, int *looked)
{
	const struct in6_addr *v6 = &((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
	struct in_addr v4;
	int is_v4 = addr_v4(a, &v4);

	if (is_v4 ? (ntohl(v4.s_addr) >> 24 == 127 || v4.s_addr == INADDR_ANY)
		  : (IN6_IS_ADDR_LOOPBACK(v6) || IN6_IS_ADDR_UNSPECIFIED(v6)))
		return 1;
	if (!*looked) {
		*looked = 1;
		if (getifaddrs(ifs) < 0)
			*ifs = NULL;
	}
	for (const struct ifaddrs *i = *ifs; i; i = i->ifa_next) {
		if (i->ifa_addr == NULL)
			continue;
		if (is_v4 && i->ifa_addr->sa_family == AF_INET &&
		    ((const struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == v4.s_addr)
			return 1;
		if (!is_v4 && i->ifa_addr->sa_family == AF_INET6 &&
		    IN6_ARE_ADDR_EQUAL(&((const struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, v6))
			return 1;
	}
	return 0;
}

static int addr_is_any(const struct addr *a)
{
	struct in_addr v4;

	if (addr_v4(a, &v4))
		return v4.s_addr == INADDR_ANY;
	return addr_is_any6(a);
}

/* Whether the listener takes connections made to a backend's address b. */
static int listen_reaches(const struct pool *pool, const struct pool_listen *l,
			  const struct addr *b, struct ifaddrs **ifs, int *looked)
{
	struct in_addr v4;
	int b_is_v4 = addr_v4(b, &v4);

	if (addr_port(&l->addr) == 0 || addr_port(&l->addr) != addr_port(b))
		return 0;
	if (addr_equal(&l->addr, b))
		return 1;
	/* 0.0.0.0 and :: as a backend mean loopback, which 127.0.0.1 and ::1 take. */
	if (addr_is_any(b) && !addr_is_any(&l->addr)) {
		struct addr lo = *b;

		if (b->ss.ss_family == AF_INET)
			((struct sockaddr_in *)&lo.ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		else
			((struct sockaddr_in6 *)&lo.ss)->sin6_addr = in6addr_loopback;
		return addr_equal(&l->addr, &lo);
	}
	if (!addr_is_any(&l->addr))
		return 0;
	/* A wildcard: every address of this host in its family, and IPv4 too
	 * for a dual-stack [::]. */
	if (l->addr.ss.ss_family == AF_INET ? !b_is_v4
					     : b_is_v4 && listen_v6only(&l->addr, pool->listen,
									pool->nlisten))
		return 0;
	return addr_is_own(b, ifs, looked);
}

/* The listener that connections to backend b would reach, or NULL. */
static const struct pool_listen *backend_listener(const struct pool *pool,
						  const struct pool_backend *b,
						  struct ifaddrs **ifs, int *looked)
{
	/* A host name not looked up yet has no address to compare. */
	if (b->addr.ss.ss_family != AF_INET && b->addr.ss.ss_family != AF_INET6)
		return NULL;
	for (size_t j = 0; j < pool->nlisten; j++) {
		const struct pool_listen *l = &pool->listen[j];

		if ((l->addr.ss.ss_family == AF_INET || l->addr.ss.ss_family == AF_INET6) &&
		    listen_reaches(pool, l, &b->addr, ifs, looked))
			return l;
	}
	return NULL;
}

int listen_loop_check(const struct pool *pool, char *err)
{
	const struct pool_listen *l = NULL;
	struct ifaddrs *ifs = NULL;
	int looked = 0;
	size_t i;

	for (i = 0; i < pool->nbackends && l == NULL; i++)
		l = backend_listener(pool, &pool->backends[i], &ifs, &looked);
	if (ifs)
		freeifaddrs(ifs);
	if (l == NULL)
		return 0;
	return err_set(err, "backend %s: address %s is tcpdist's own listener %s (a loop)",
		       pool->backends[i - 1].name, pool->backends[i - 1].addr_text, l->text);
}
