/* The control socket: a Unix stream socket where `tcpdist status`,
 * `sessions`, `kill` and a new binary's `--takeover` ask the running process.
 * One request line per connection, the answer, then the close, so `socat`
 * works as well as the tools (the protocol is in tcpdist(1), CONTROL SOCKET).
 * It runs on the main loop like the metrics server: a few clients at a time,
 * a short deadline for the request line, a longer one for the answer.
 * Questions about connections go to the workers as surveys (survey.c) and
 * are answered when every worker has replied. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "acceptpause.h"
#include "escape.h"
#include "log.h"
#include "num.h"
#include "out.h"
#include "tcpdist.h"

#define CONTROL_CLIENTS_MAX 8     /* the descriptors kept back for it (fdbudget.c) */
#define CONTROL_REQUEST_MAX 1024
#define CONTROL_REQUEST_TIME 2.0  /* seconds from accept to the request line */
#define CONTROL_ANSWER_TIME 10.0  /* seconds to send the answer */
#define CONTROL_TAKEOVER_TIME 60.0 /* for the new process to start and say ok */
#define SESSIONS_LIMIT_DEFAULT 1000
#define SESSIONS_LIMIT_MAX 1000000

struct control {
	struct proc *p;
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev; /* of the socket file we made: unlinked at exit only if */
	ino_t ino; /* still ours (a new process may have replaced it) */
	ev_io io;
	struct accept_pause pause;
	struct cclient *clients;
	int nclients;
};

/* One control connection. */
struct cclient {
	ev_io io;
	ev_timer deadline;
	struct control *ctl;
	struct cclient *prev, *next;
	char req[CONTROL_REQUEST_MAX + 1];
	size_t reqlen;
	char *out;      /* the answer, from open_memstream */
	size_t outlen, outoff;
	struct survey *waiting; /* a survey whose answer this client waits for */
	int json;
	int takeover;   /* its listening sockets were sent: waiting for "ok" */
};

/* What a survey carries back to its client. */
struct job {
	struct cclient *client; /* NULL once the client is gone */
	struct session_query *q;
	int kill;
	int *fds; /* takeover: the listening sockets the workers lent */
	size_t nfds, capfds;
	pthread_mutex_t lock;
};

static void client_close(struct cclient *c);

/* --- answering ------------------------------------------------------------ */

static void client_write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct cclient *c = container_of(io, struct cclient, io);

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
	client_close(c);
}

/* Sends text (taken over) as the whole answer, then closes. */
static void client_answer(struct cclient *c, char *text, size_t len)
{
	struct ev_loop *loop = c->ctl->p->loop;

	free(c->out);
	c->out = text;
	c->outlen = len;
	c->outoff = 0;
	ev_io_stop(loop, &c->io);
	ev_io_init(&c->io, client_write_cb, c->io.fd, EV_WRITE);
	ev_io_start(loop, &c->io);
	ev_timer_stop(loop, &c->deadline);
	ev_timer_set(&c->deadline, CONTROL_ANSWER_TIME, 0.0);
	ev_timer_start(loop, &c->deadline);
}

static void PRINTF_LIKE(2, 3) client_error(struct cclient *c, const char *fmt, ...)
{
	char msg[ERR_LEN], *text;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (asprintf(&text, "error: %s\n", msg) < 0) {
		client_close(c);
		return;
	}
	client_answer(c, text, strlen(text));
}

/* An output layer over a memory stream: the answer is built, then sent. */
struct answer {
	FILE *f;
	char *buf;
	size_t len;
	struct out o;
};

static int answer_begin(struct answer *a, enum out_format format, int array)
{
	a->buf = NULL;
	a->len = 0;
	a->f = open_memstream(&a->buf, &a->len);
	if (a->f == NULL)
		return -1;
	out_init(&a->o, a->f, format, array);
	return 0;
}

static void answer_send(struct cclient *c, struct answer *a)
{
	if (fclose(a->f) != 0) {
		free(a->buf);
		client_error(c, "out of memory");
		return;
	}
	client_answer(c, a->buf, a->len);
}

/* --- status --------------------------------------------------------------- */

static void status_backend(struct out *o, const struct farm *f, size_t i)
{
	const struct farm_backend *b = &f->b[i];
	struct upstream *u = b->up;
	char reason[sizeof(u->reason)];
	int down = atomic_load_explicit(&u->down, memory_order_relaxed);

	upstream_reason(u, reason, sizeof(reason));
	out_record_begin(o);
	if (o->format == OUT_ROWS)
		out_str(o, "type", "backend");
	out_str(o, "name", u->name);
	out_str(o, "address", u->addr_text);
	out_str(o, "state", backend_state_name(b->state));
	out_str(o, "health", down ? "down" : "up");
	out_str(o, "reason", reason[0] ? reason : "-");
	out_uint(o, "weight", b->weight);
	out_str(o, "tier", b->backup ? "backup" : "primary");
	out_str(o, "zone", f->pool->backends[i].zone_name[0] ? f->pool->backends[i].zone_name : "-");
	out_uint(o, "active", atomic_load_explicit(&u->active, memory_order_relaxed));
	out_uint(o, "total", atomic_load_explicit(&u->total, memory_order_relaxed));
	out_uint(o, "bytes_in", atomic_load_explicit(&u->bytes_in, memory_order_relaxed));
	out_uint(o, "bytes_out", atomic_load_explicit(&u->bytes_out, memory_order_relaxed));
	out_fixed(o, "changed",
		  (double)atomic_load_explicit(&u->changed_ms, memory_order_relaxed) / 1000.0, 3);
	out_record_end(o);
}

static void status_pool(struct out *o, struct proc *p)
{
	char digest[17];

	snprintf(digest, sizeof(digest), "%016llx", (unsigned long long)p->pool_digest);
	out_record_begin(o);
	if (o->format == OUT_ROWS)
		out_str(o, "type", "pool");
	out_str(o, "file", p->opt->pool_path);
	out_fixed(o, "loaded", p->last_reload, 3);
	out_str(o, "digest", digest);
	out_bool(o, "file_differs", loader_file_differs(p));
	out_str(o, "last_error", p->reload_error[0] ? p->reload_error : "-");
	out_uint(o, "backends", p->farm->n);
	out_uint(o, "available", farm_count_available(p->farm));
	out_uint(o, "connections", proc_connections(p));
	out_bool(o, "backup_in_use", farm_backup_in_use(p->farm));
	out_record_end(o);
}

/* One backend, KEY<TAB>VALUE lines (or a JSON object): what tcppool drain
 * --wait polls. */
static void control_backend(struct cclient *c, const char *name)
{
	const struct farm *f = c->ctl->p->farm;
	const struct farm_backend *b = farm_find(f, name);
	struct answer a;

	if (b == NULL) {
		char clip[TEXT_CLIP_LEN];

		client_error(c, "no backend '%s' in the pool in force", text_clip(clip, name));
		return;
	}
	if (answer_begin(&a, c->json ? OUT_JSON : OUT_PAIRS, 0) < 0) {
		client_error(c, "out of memory");
		return;
	}
	status_backend(&a.o, f, (size_t)(b - f->b));
	out_end(&a.o);
	answer_send(c, &a);
}

/* Text: a pool row, then a row per backend, the first column naming the
 * kind. JSON: {"pool": {...}, "backends": [...]}. */
static void control_status(struct cclient *c)
{
	struct proc *p = c->ctl->p;
	const struct farm *f = p->farm;
	struct answer a;

	if (answer_begin(&a, c->json ? OUT_JSON : OUT_ROWS, 0) < 0) {
		client_error(c, "out of memory");
		return;
	}
	if (c->json)
		fputs("{\"pool\": ", a.f);
	status_pool(&a.o, p);
	if (c->json) {
		fputs(", \"backends\": ", a.f);
		out_init(&a.o, a.f, OUT_JSON, 1);
	}
	for (size_t i = 0; i < f->n; i++)
		status_backend(&a.o, f, i);
	if (c->json) {
		out_end(&a.o);
		fputs("}\n", a.f);
	}
	answer_send(c, &a);
}

/* --- sessions and kill ------------------------------------------------------ */

static void job_free(struct job *j)
{
	if (j == NULL)
		return;
	session_query_free(j->q);
	for (size_t i = 0; i < j->nfds; i++)
		close(j->fds[i]);
	free(j->fds);
	pthread_mutex_destroy(&j->lock);
	free(j);
}

static struct job *job_new(struct cclient *c)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	j->client = c;
	pthread_mutex_init(&j->lock, NULL);
	return j;
}

static void sessions_render(struct cclient *c, const struct session_query *q)
{
	struct answer a;
	size_t total = 0, shown = 0;

	if (answer_begin(&a, c->json ? OUT_JSON : OUT_ROWS, 0) < 0) {
		client_error(c, "out of memory");
		return;
	}
	for (int k = 0; k < q->nworkers; k++)
		total += q->per[k].total;
	if (c->json) {
		fputs("{\"sessions\": ", a.f);
		out_init(&a.o, a.f, OUT_JSON, 1);
	}
	for (int k = 0; k < q->nworkers; k++) {
		for (size_t i = 0; i < q->per[k].n && shown < q->limit; i++, shown++) {
			const struct session_row *r = &q->per[k].rows[i];

			out_record_begin(&a.o);
			out_str(&a.o, "client", r->client);
			out_str(&a.o, "backend", r->backend);
			out_str(&a.o, "listener", r->listener);
			out_fixed(&a.o, "age", r->age, 3);
			out_uint(&a.o, "bytes_in", r->in);
			out_uint(&a.o, "bytes_out", r->out);
			out_str(&a.o, "phase", r->connected ? "relaying" : "connecting");
			out_record_end(&a.o);
		}
	}
	if (c->json) {
		out_end(&a.o);
		fprintf(a.f, ", \"total\": %zu, \"shown\": %zu}\n", total, shown);
	} else if (shown < total) {
		fprintf(a.f, "# %zu of %zu sessions shown\n", shown, total);
	}
	answer_send(c, &a);
}

static void sessions_done(struct survey *s)
{
	struct job *j = s->ctx;
	struct cclient *c = j->client;

	if (c) {
		c->waiting = NULL;
		if (j->kill) {
			size_t killed = 0;
			char *text;

			for (int k = 0; k < j->q->nworkers; k++)
				killed += j->q->per[k].total;
			if (killed)
				log_info("control: %zu session%s reset", killed, killed == 1 ? "" : "s");
			if (asprintf(&text, "%zu\n", killed) < 0)
				client_close(c);
			else
				client_answer(c, text, strlen(text));
		} else {
			sessions_render(c, j->q);
		}
	}
	job_free(j);
	survey_free(s);
}

static void sessions_session_ask(struct worker *w, struct survey *s)
{
	struct job *j = s->ctx;

	s->ctx = j->q;
	if (j->kill)
		sessions_kill(w, s);
	else
		sessions_ask(w, s);
	s->ctx = j;
}

/* Starts the survey for sessions or kill; the answer comes in sessions_done. */
static void sessions_start(struct cclient *c, struct job *j)
{
	struct survey *s;

	j->q->nworkers = c->ctl->p->nworkers;
	s = survey_new(c->ctl->p, sessions_session_ask, sessions_done, j);
	if (s == NULL) {
		job_free(j);
		client_error(c, "out of memory");
		return;
	}
	c->waiting = s;
	ev_io_stop(c->ctl->p->loop, &c->io); /* nothing more to read */
	survey_start(s);
}

/* NAME=VALUE arguments of a request. */
static const char *arg_value(char *const *args, int nargs, const char *name)
{
	size_t len = strlen(name);

	for (int i = 0; i < nargs; i++)
		if (strncmp(args[i], name, len) == 0 && args[i][len] == '=')
			return args[i] + len + 1;
	return NULL;
}

static int args_known(struct cclient *c, char *const *args, int nargs, const char *const *known)
{
	for (int i = 0; i < nargs; i++) {
		int ok = strcmp(args[i], "json") == 0;

		for (int k = 0; known[k] && !ok; k++)
			ok = strncmp(args[i], known[k], strlen(known[k])) == 0 &&
			     args[i][strlen(known[k])] == '=';
		if (!ok) {
			char clip[TEXT_CLIP_LEN];

			client_error(c, "unknown argument '%s'", text_clip(clip, args[i]));
			return 0;
		}
	}
	return 1;
}

static int query_client(struct cclient *c, struct session_query *q, const char *text)
{
	struct addr a;
	char err[ERR_LEN];
	int has_port;

	if (addr_parse_client(text, &a, &has_port, err) < 0) {
		client_error(c, "client: %s", err);
		return -1;
	}
	q->by_client = 1;
	q->client_has_port = has_port;
	session_ip_key((const struct sockaddr *)&a.ss, q->client_ip, &q->client_port);
	return 0;
}

static void control_sessions(struct cclient *c, char *const *args, int nargs, int kill)
{
	static const char *const known_sessions[] = {"limit", "backend", NULL};
	static const char *const known_kill[] = {"backend", "client", NULL};
	const char *backend = arg_value(args, nargs, "backend");
	const char *client = arg_value(args, nargs, "client");
	const char *limit = arg_value(args, nargs, "limit");
	struct job *j;
	char err[ERR_LEN];
	long long n = SESSIONS_LIMIT_DEFAULT;

	if (!args_known(c, args, nargs, kill ? known_kill : known_sessions))
		return;
	if (kill && (backend == NULL) == (client == NULL)) {
		client_error(c, "kill needs backend=NAME or client=ADDR");
		return;
	}
	if (limit && num_parse(limit, 1, SESSIONS_LIMIT_MAX, &n, err) < 0) {
		client_error(c, "limit: %s", err);
		return;
	}
	if (backend && !pool_name_valid(backend)) {
		char clip[TEXT_CLIP_LEN];

		client_error(c, "backend: '%s' is not a backend name", text_clip(clip, backend));
		return;
	}
	if ((j = job_new(c)) == NULL || (j->q = session_query_new(c->ctl->p->nworkers)) == NULL) {
		job_free(j);
		client_error(c, "out of memory");
		return;
	}
	j->kill = kill;
	j->q->limit = (size_t)n;
	if (backend)
		snprintf(j->q->backend, sizeof(j->q->backend), "%s", backend);
	if (client && query_client(c, j->q, client) < 0) {
		job_free(j);
		return;
	}
	sessions_start(c, j);
}

/* --- takeover ---------------------------------------------------------------- */

/* On a worker: a duplicate of each socket it listens on, for the new process. */
static void takeover_ask(struct worker *w, struct survey *s)
{
	struct job *j = s->ctx;

	pthread_mutex_lock(&j->lock);
	for (struct listener *l = w->listeners; l; l = l->next) {
		int fd;

		if (l->draining)
			continue;
		if (j->nfds == j->capfds) {
			size_t cap = j->capfds ? j->capfds * 2 : 16;
			int *fds = realloc(j->fds, cap * sizeof(*fds));

			if (fds == NULL)
				break;
			j->fds = fds;
			j->capfds = cap;
		}
		if ((fd = fcntl(l->fd, F_DUPFD_CLOEXEC, 0)) >= 0)
			j->fds[j->nfds++] = fd;
	}
	pthread_mutex_unlock(&j->lock);
}

static void takeover_done(struct survey *s)
{
	struct job *j = s->ctx;
	struct cclient *c = j->client;

	if (c) {
		c->waiting = NULL;
		if (takeover_send(c->io.fd, j->fds, j->nfds) < 0) {
			log_warn("control: takeover: cannot send the listening sockets: %s",
				 strerror(errno));
			client_close(c);
		} else {
			/* Ours stay open and accepting until the new process says
			 * it runs: if it fails, nothing is lost. */
			log_info("control: takeover: %zu listening socket%s handed over; waiting for the new process",
				 j->nfds, j->nfds == 1 ? "" : "s");
			c->takeover = 1;
			ev_io_start(c->ctl->p->loop, &c->io);
			ev_timer_stop(c->ctl->p->loop, &c->deadline);
			ev_timer_set(&c->deadline, CONTROL_TAKEOVER_TIME, 0.0);
			ev_timer_start(c->ctl->p->loop, &c->deadline);
		}
	}
	job_free(j);
	survey_free(s);
}

static void control_takeover(struct cclient *c)
{
	struct job *j = job_new(c);
	struct survey *s = j ? survey_new(c->ctl->p, takeover_ask, takeover_done, j) : NULL;

	if (s == NULL) {
		job_free(j);
		client_error(c, "out of memory");
		return;
	}
	c->waiting = s;
	ev_io_stop(c->ctl->p->loop, &c->io);
	survey_start(s);
}

/* The new process runs: this one stops as on SIGTERM. */
static void takeover_finished(struct cclient *c)
{
	struct proc *p = c->ctl->p;

	log_info("control: takeover: the new process runs; stopping");
	client_close(c);
	proc_stop(p);
}

/* --- requests ---------------------------------------------------------------- */

static const char help_text[] =
	"status [json]\n"
	"backend NAME [json]\n"
	"sessions [json] [limit=N] [backend=NAME]\n"
	"kill backend=NAME | client=ADDR\n"
	"takeover\n"
	"help\n";

static void control_request(struct cclient *c)
{
	char *args[8], *save = NULL, *word;
	int nargs = 0;
	const char *cmd;

	c->req[strcspn(c->req, "\r\n")] = '\0';
	cmd = strtok_r(c->req, " \t", &save);
	while ((word = strtok_r(NULL, " \t", &save)) != NULL) {
		if (nargs == (int)(sizeof(args) / sizeof(args[0]))) {
			client_error(c, "too many arguments");
			return;
		}
		args[nargs++] = word;
		c->json |= strcmp(word, "json") == 0;
	}
	if (cmd == NULL) {
		client_error(c, "empty request (try help)");
	} else if (strcmp(cmd, "status") == 0) {
		static const char *const none[] = {NULL};

		if (args_known(c, args, nargs, none))
			control_status(c);
	} else if (strcmp(cmd, "backend") == 0) {
		if (nargs == 1 || (nargs == 2 && c->json && strcmp(args[1], "json") == 0))
			control_backend(c, args[0]);
		else
			client_error(c, "backend NAME [json]");
	} else if (strcmp(cmd, "sessions") == 0) {
		control_sessions(c, args, nargs, 0);
	} else if (strcmp(cmd, "kill") == 0) {
		control_sessions(c, args, nargs, 1);
	} else if (strcmp(cmd, "takeover") == 0 && nargs == 0) {
		control_takeover(c);
	} else if (strcmp(cmd, "help") == 0) {
		char *text = strdup(help_text);

		if (text)
			client_answer(c, text, strlen(text));
		else
			client_close(c);
	} else {
		char clip[TEXT_CLIP_LEN];

		client_error(c, "unknown request '%s' (try help)", text_clip(clip, cmd));
	}
}

static void client_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct cclient *c = container_of(io, struct cclient, io);
	ssize_t n;

	(void)loop;
	(void)revents;
	n = recv(io->fd, c->req + c->reqlen, CONTROL_REQUEST_MAX - c->reqlen, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_close(c);
		return;
	}
	if (c->takeover) {
		/* The new process's word: "ok" once it accepts. */
		if ((size_t)n >= 2 && memcmp(c->req + c->reqlen, "ok", 2) == 0)
			takeover_finished(c);
		else
			client_close(c);
		return;
	}
	if (memchr(c->req + c->reqlen, '\0', (size_t)n) != NULL) {
		client_error(c, "a NUL byte in the request");
		return;
	}
	c->reqlen += (size_t)n;
	c->req[c->reqlen] = '\0';
	if (strchr(c->req, '\n'))
		control_request(c);
	else if (c->reqlen == CONTROL_REQUEST_MAX)
		client_error(c, "request longer than %d bytes", CONTROL_REQUEST_MAX);
}

static void client_deadline_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct cclient *c = container_of(t, struct cclient, deadline);

	(void)loop;
	(void)revents;
	if (c->out == NULL && c->waiting == NULL && !c->takeover) {
		client_error(c, "no request line within %.0f s", CONTROL_REQUEST_TIME);
		return;
	}
	if (c->takeover)
		log_warn("control: takeover: the new process did not say it runs; serving on");
	client_close(c);
}

static void client_close(struct cclient *c)
{
	struct control *ctl = c->ctl;
	struct ev_loop *loop = ctl->p->loop;

	if (c->waiting)
		((struct job *)c->waiting->ctx)->client = NULL; /* done frees it */
	ev_io_stop(loop, &c->io);
	ev_timer_stop(loop, &c->deadline);
	close(c->io.fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		ctl->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ctl->nclients--;
	free(c->out);
	free(c);
	if (ctl->fd >= 0 && !ev_is_active(&ctl->io) && !ev_is_active(&ctl->pause.timer))
		ev_io_start(loop, &ctl->io); /* below the limit again */
}

static void control_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct control *ctl = container_of(io, struct control, io);

	(void)revents;
	while (ctl->nclients < CONTROL_CLIENTS_MAX) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct cclient *c;

		if (fd < 0) {
			int error = errno;

			if (accept_pause(loop, &ctl->pause, error) == ACCEPT_PAUSED)
				log_err("control: %s: pausing accept", accept_pause_reason(error));
			return;
		}
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			close(fd);
			return;
		}
		c->ctl = ctl;
		ev_io_init(&c->io, client_read_cb, fd, EV_READ);
		ev_io_start(loop, &c->io);
		ev_timer_init(&c->deadline, client_deadline_cb, CONTROL_REQUEST_TIME, 0.0);
		ev_timer_start(loop, &c->deadline);
		c->next = ctl->clients;
		if (ctl->clients)
			ctl->clients->prev = c;
		ctl->clients = c;
		ctl->nclients++;
	}
	ev_io_stop(loop, io); /* the rest wait in the backlog */
}

/* --- the socket ------------------------------------------------------------- */

/* A socket file at path: replaced when stale (nobody answers), refused when
 * a running tcpdist answers there or when it is not a socket. */
static int control_path_free(const char *path, char *err)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : err_set(err, "control %s: %s", path, strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return err_set(err, "control %s: exists and is not a socket", path);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return err_set(err, "control: socket: %s", strerror(errno));
	rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	close(fd);
	if (rc == 0)
		return err_set(err, "control %s: a running tcpdist answers there "
				    "(to replace it, start the new one with --takeover)", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return err_set(err, "control %s: cannot remove the stale socket: %s", path,
			       strerror(errno));
	log_info("control %s: replaced a stale socket", path);
	return 0;
}

int control_open(struct proc *p, const char *path, int replace, char *err)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct control *ctl;
	struct stat st;
	mode_t old;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path))
		return err_set(err, "control %s: path longer than %zu bytes", path,
			       sizeof(sun.sun_path) - 1);
	if (replace) {
		if (unlink(path) < 0 && errno != ENOENT)
			return err_set(err, "control %s: %s", path, strerror(errno));
	} else if (control_path_free(path, err) < 0) {
		return -1;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return err_set(err, "control: socket: %s", strerror(errno));
	old = umask(0177); /* mode 0600 from the start: no window where others connect */
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		umask(old);
		err_set(err, "control %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	umask(old);
	if (listen(fd, 16) < 0 || stat(path, &st) < 0 || (ctl = calloc(1, sizeof(*ctl))) == NULL) {
		err_set(err, "control %s: %s", path, strerror(errno));
		unlink(path);
		close(fd);
		return -1;
	}
	ctl->p = p;
	ctl->fd = fd;
	ctl->dev = st.st_dev;
	ctl->ino = st.st_ino;
	snprintf(ctl->path, sizeof(ctl->path), "%s", path);
	ev_io_init(&ctl->io, control_accept_cb, fd, EV_READ);
	ev_io_start(p->loop, &ctl->io);
	accept_pause_init(&ctl->pause, &ctl->io, 1.0);
	p->control = ctl;
	log_info("control socket %s", path);
	return 0;
}

void control_close(struct proc *p)
{
	struct control *ctl = p->control;
	struct stat st;

	if (ctl == NULL)
		return;
	while (ctl->clients)
		client_close(ctl->clients);
	ev_io_stop(p->loop, &ctl->io);
	accept_pause_stop(p->loop, &ctl->pause);
	close(ctl->fd);
	ctl->fd = -1;
	/* Only our own file: after a takeover the path is the new process's. */
	if (stat(ctl->path, &st) == 0 && st.st_dev == ctl->dev && st.st_ino == ctl->ino)
		unlink(ctl->path);
	free(ctl);
	p->control = NULL;
}

const char *control_path(const struct proc *p)
{
	return p->control ? p->control->path : NULL;
}
