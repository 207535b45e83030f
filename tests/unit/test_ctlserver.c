/* ctlserver: one request line framed from any split of the bytes; the
 * socket file made 0600, a live one refused, a stale one replaced, and at
 * close unlinked only while it is still ours; answers now, later, and a
 * later one whose client went first. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctlserver.h"
#include "unit.h"

/* --- framing ---------------------------------------------------------------- */

static enum ctlserver_frame feed(char *buf, size_t *len, const char *bytes, size_t max)
{
	size_t n = strlen(bytes);

	memcpy(buf + *len, bytes, n);
	return ctlserver_frame(buf, len, n, max);
}

TEST(a_line_in_pieces_is_framed_and_its_end_cut)
{
	char buf[17];
	size_t len = 0;

	CHECK_EQ_INT(feed(buf, &len, "sta", 16), CTLSERVER_MORE);
	CHECK_EQ_INT(feed(buf, &len, "tus json", 16), CTLSERVER_MORE);
	CHECK_EQ_INT(feed(buf, &len, "\r\nre", 16), CTLSERVER_LINE); /* what follows is ignored */
	CHECK_STR(buf, "status json");
	len = 0;
	CHECK_EQ_INT(feed(buf, &len, "\n", 16), CTLSERVER_LINE);
	CHECK_STR(buf, "");
}

TEST(a_nul_or_a_line_over_the_bound_is_refused)
{
	char buf[9];
	size_t len = 0;

	memcpy(buf, "ab\0c\n", 5);
	CHECK_EQ_INT(ctlserver_frame(buf, &len, 5, 8), CTLSERVER_NUL);
	len = 0;
	CHECK_EQ_INT(feed(buf, &len, "1234", 8), CTLSERVER_MORE);
	CHECK_EQ_INT(feed(buf, &len, "5678", 8), CTLSERVER_TOO_LONG);
	len = 0;
	CHECK_EQ_INT(feed(buf, &len, "1234567\n", 8),
		     CTLSERVER_LINE); /* the bound, newline included */
	CHECK_STR(buf, "1234567");
}

/* --- the socket file ---------------------------------------------------------- */

static void ignore_request(struct ctlconn *c, char *line, void *ctx)
{
	(void)line;
	(void)ctx;
	ctlconn_close(c);
}

static const struct ctlserver_config quiet = {
    .clients_max = 2,
    .request_max = 64,
    .request_time = 2.0,
    .answer_time = 2.0,
    .accept_rest = 0.1,
    .request = ignore_request,
};

static void sock_path(char *buf, size_t len, const char *dir, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

TEST(made_0600_a_live_one_refused_a_stale_one_replaced)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	const char *dir = unit_tmpdir();
	enum ctlserver_open_result r;
	struct ctlserver *s, *t;
	char path[256], file[256], longpath[CTLSERVER_PATH_MAX + 16];
	struct stat st;

	sock_path(path, sizeof(path), dir, "ctl.sock");
	REQUIRE((s = ctlserver_open(loop, path, 0, &quiet, &r)) != NULL);
	CHECK_EQ_INT(r, CTLSERVER_OPENED);
	CHECK_STR(ctlserver_path(s), path);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(ctlserver_open(loop, path, 0, &quiet, &r) == NULL);
	CHECK_EQ_INT(r, CTLSERVER_IN_USE);
	/* A takeover's successor takes the path without asking. */
	REQUIRE((t = ctlserver_open(loop, path, 1, &quiet, &r)) != NULL);
	CHECK_EQ_INT(r, CTLSERVER_OPENED);
	ctlserver_close(s); /* not its file any more */
	CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode));
	ctlserver_close(t);
	CHECK(stat(path, &st) < 0 && errno == ENOENT);

	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	CHECK(ctlserver_open(loop, longpath, 0, &quiet, &r) == NULL);
	CHECK_EQ_INT(r, CTLSERVER_PATH_TOO_LONG);
	sock_path(file, sizeof(file), dir, "plain");
	fclose(fopen(file, "w"));
	CHECK(ctlserver_open(loop, file, 0, &quiet, &r) == NULL);
	CHECK_EQ_INT(r, CTLSERVER_NOT_A_SOCKET);
	unlink(file);
	ev_loop_destroy(loop);
}

TEST(a_successor_at_the_path_keeps_its_socket)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	const char *dir = unit_tmpdir();
	enum ctlserver_open_result r;
	struct ctlserver *s, *t;
	char path[256];
	struct stat st;

	sock_path(path, sizeof(path), dir, "ctl.sock");
	REQUIRE((s = ctlserver_open(loop, path, 0, &quiet, &r)) != NULL);
	unlink(path); /* removed under it; another server comes */
	REQUIRE((t = ctlserver_open(loop, path, 0, &quiet, &r)) != NULL);
	CHECK_EQ_INT(r, CTLSERVER_OPENED);
	ctlserver_close(s);
	CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode));
	ctlserver_close(t);
	CHECK(stat(path, &st) < 0);
	ev_loop_destroy(loop);
}

/* A socket file nobody listens at any more, as a crash leaves it. */
static void stale_socket(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	if (strlen(path) >= sizeof(sun.sun_path))
		exit(2);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		perror(path);
		exit(2);
	}
	close(fd);
}

TEST(a_stale_socket_is_replaced)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	const char *dir = unit_tmpdir();
	enum ctlserver_open_result r;
	struct ctlserver *s;
	char path[256];

	sock_path(path, sizeof(path), dir, "ctl.sock");
	stale_socket(path);
	REQUIRE((s = ctlserver_open(loop, path, 0, &quiet, &r)) != NULL);
	CHECK_EQ_INT(r, CTLSERVER_REPLACED);
	ctlserver_close(s);
	ev_loop_destroy(loop);
}

/* --- answers -------------------------------------------------------------------- */

struct served {
	char line[64];
	struct ctlconn *held; /* a later answer's connection, NULL once gone */
	int gone;
};

static void held_gone(void *arg)
{
	struct served *sv = arg;

	sv->held = NULL;
	sv->gone++;
}

/* "now" is answered at once, anything else later. */
static void record_request(struct ctlconn *c, char *line, void *ctx)
{
	struct served *sv = ctx;

	snprintf(sv->line, sizeof(sv->line), "%s", line);
	if (strcmp(line, "now") == 0) {
		ctlconn_answer(c, strdup("answered now\n"), 13);
		return;
	}
	sv->held = c;
	ctlconn_later(c, held_gone, sv);
}

static int client_connect(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (strlen(path) >= sizeof(sun.sun_path))
		exit(2);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Turns the loop until fd has the whole answer (the server closed). */
static void read_answer(struct ev_loop *loop, int fd, char *buf, size_t len)
{
	struct timespec pause = {0, 1000000};
	size_t got = 0;

	for (int i = 0; i < 2000; i++) {
		ssize_t n;

		ev_run(loop, EVRUN_NOWAIT);
		n = recv(fd, buf + got, len - 1 - got, MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n > 0)
			got += (size_t)n;
		nanosleep(&pause, NULL);
	}
	buf[got] = '\0';
}

static void turn(struct ev_loop *loop, int times)
{
	struct timespec pause = {0, 1000000};

	while (times-- > 0) {
		ev_run(loop, EVRUN_NOWAIT);
		nanosleep(&pause, NULL);
	}
}

/* A server at a new path whose requests go to record_request. */
static struct ctlserver *serve(struct ev_loop *loop, struct served *sv, char *path, size_t len)
{
	struct ctlserver_config cfg = quiet;
	enum ctlserver_open_result r;

	cfg.request = record_request;
	cfg.ctx = sv;
	sock_path(path, len, unit_tmpdir(), "ctl.sock");
	return ctlserver_open(loop, path, 0, &cfg, &r);
}

TEST(answers_now_later_and_after_the_client_went)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct served sv = {{0}, NULL, 0};
	struct ctlserver *s;
	char path[256], answer[256];
	int fd;

	REQUIRE((s = serve(loop, &sv, path, sizeof(path))) != NULL);

	REQUIRE((fd = client_connect(path)) >= 0);
	CHECK(send(fd, "no", 2, 0) == 2 && send(fd, "w\r\n", 3, 0) == 3);
	read_answer(loop, fd, answer, sizeof(answer));
	close(fd);
	CHECK_STR(sv.line, "now");
	CHECK_STR(answer, "answered now\n");

	REQUIRE((fd = client_connect(path)) >= 0);
	CHECK(send(fd, "later\n", 6, 0) == 6);
	turn(loop, 50);
	CHECK_STR(sv.line, "later");
	REQUIRE(sv.held != NULL);
	ctlconn_error(sv.held, "%s", "came later");
	sv.held = NULL;
	read_answer(loop, fd, answer, sizeof(answer));
	close(fd);
	CHECK_STR(answer, "error: came later\n");
	CHECK_EQ_INT(sv.gone, 0);

	/* The client of a later answer waits while the server closes: the
	 * holder hears of it and answers nobody. */
	REQUIRE((fd = client_connect(path)) >= 0);
	CHECK(send(fd, "slow\n", 5, 0) == 5);
	turn(loop, 50);
	CHECK(sv.held != NULL);
	ctlserver_close(s);
	CHECK_EQ_INT(sv.gone, 1);
	CHECK(sv.held == NULL);
	read_answer(loop, fd, answer, sizeof(answer));
	CHECK_STR(answer, "");
	close(fd);
	ev_loop_destroy(loop);
}

TEST(a_nul_or_an_overlong_request_is_answered_with_an_error)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct served sv = {{0}, NULL, 0};
	struct ctlserver *s;
	char path[256], answer[256], big[80];
	int fd;

	REQUIRE((s = serve(loop, &sv, path, sizeof(path))) != NULL);
	REQUIRE((fd = client_connect(path)) >= 0);
	CHECK(send(fd, "a\0b\n", 4, 0) == 4);
	read_answer(loop, fd, answer, sizeof(answer));
	close(fd);
	CHECK_STR(answer, "error: a NUL byte in the request\n");
	memset(big, 'x', sizeof(big));
	REQUIRE((fd = client_connect(path)) >= 0);
	CHECK(send(fd, big, sizeof(big), 0) == (ssize_t)sizeof(big));
	read_answer(loop, fd, answer, sizeof(answer));
	close(fd);
	CHECK_STR(answer, "error: request longer than 64 bytes\n");
	CHECK_STR(sv.line, "");
	ctlserver_close(s);
	ev_loop_destroy(loop);
}

UNIT_MAIN(T(a_line_in_pieces_is_framed_and_its_end_cut),
	  T(a_nul_or_a_line_over_the_bound_is_refused),
	  T(made_0600_a_live_one_refused_a_stale_one_replaced),
	  T(a_successor_at_the_path_keeps_its_socket), T(a_stale_socket_is_replaced),
	  T(answers_now_later_and_after_the_client_went),
	  T(a_nul_or_an_overlong_request_is_answered_with_an_error))
