/* The client side of the control socket (control.c is the node's side):
 * `tcppeer members`, `tcppeer event`, `tcppeer force-leave` and `tcppeer
 * rtt` send one request line (names and payloads in hex) and read the
 * answer until the node closes the connection. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "tcppeer.h"

const char *control_default_path(char *buf, size_t len)
{
	const char *dir = getenv("XDG_RUNTIME_DIR");

	if (dir != NULL && *dir == '/')
		snprintf(buf, len, "%s/tcppeer.sock", dir);
	else
		snprintf(buf, len, "/tmp/tcppeer-%u.sock", (unsigned)getuid());
	return buf;
}

static int unix_addr(const char *path, struct sockaddr_un *sun, char *err)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return err_set(err, "control socket path '%s' is too long", path);
	memcpy(sun->sun_path, path, strlen(path) + 1);
	return 0;
}

/* The client side: sends req, copies the answer to out (or into buf when
 * out is NULL); returns 0, or 2 after a diagnostic. */
static int control_request(const char *path, const char *req, FILE *out, char *buf, size_t buflen)
{
	struct sockaddr_un sun;
	struct timeval tv = {.tv_sec = 10};
	char err[ERR_LEN], chunk[65536];
	size_t got = 0;
	ssize_t n;
	int fd;

	if (unix_addr(path, &sun, err) < 0) {
		fprintf(stderr, "tcppeer: %s\n", err);
		return 2;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "tcppeer: cannot reach a node at '%s': %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 2;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		fprintf(stderr, "tcppeer: '%s': %s\n", path, strerror(errno));
		close(fd);
		return 2;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		if (out != NULL) {
			if (fwrite(chunk, 1, (size_t)n, out) != (size_t)n)
				break;
		} else {
			size_t take = (size_t)n < buflen - 1 - got ? (size_t)n : buflen - 1 - got;

			memcpy(buf + got, chunk, take);
			got += take;
		}
	}
	close(fd);
	if (buf != NULL)
		buf[got] = '\0';
	if (n < 0) {
		fprintf(stderr, "tcppeer: '%s': %s\n", path, strerror(errno));
		return 2;
	}
	return 0;
}

int control_members(const char *path, int json)
{
	return control_request(path, json ? "members json\n" : "members\n", stdout, NULL, 0);
}

/* Appends " ARG" to a request, ARG in hex (names and payloads may hold
 * blanks); the caller sized req for it. */
static void request_arg(char *req, const char *arg)
{
	char *out = req + strlen(req);

	*out++ = ' ';
	*out = '\0';
	for (; *arg; arg++)
		out += sprintf(out, "%02x", (unsigned char)*arg);
}

/* Sends req, a whole line, and reads the node's one-line answer into
 * answer, its line end cut: 0, or 2 after a diagnostic. */
static int control_line(const char *path, const char *req, char *answer, size_t len)
{
	int rc = control_request(path, req, NULL, answer, len);

	if (rc == 0)
		answer[strcspn(answer, "\n")] = '\0';
	return rc;
}

/* The node did not say ok: its "error: ..." or its silence, for what. */
static int control_refused(const char *what, const char *answer)
{
	fprintf(stderr, "tcppeer: %s: %s\n", what,
		strncmp(answer, "error: ", 7) == 0 ? answer + 7 : "no answer from the node");
	return 2;
}

int control_event(const char *path, const char *name, const char *payload)
{
	char req[CONTROL_REQUEST_MAX + 1], answer[ERR_LEN + 16];
	int rc;

	if (*name == '\0') {
		fputs("tcppeer: event: the name is empty\n", stderr);
		return 2;
	}
	if (strlen(name) + strlen(payload) > EVENT_SIZE_MAX) {
		fprintf(stderr, "tcppeer: event: name and payload take %zu bytes, over serf's limit of %d\n",
			strlen(name) + strlen(payload), EVENT_SIZE_MAX);
		return 2;
	}
	snprintf(req, sizeof(req), "event");
	request_arg(req, name);
	request_arg(req, payload);
	strcat(req, "\n");
	if ((rc = control_line(path, req, answer, sizeof(answer))) != 0)
		return rc;
	return strcmp(answer, "ok") == 0 ? 0 : control_refused("event", answer);
}

int control_force_leave(const char *path, const char *name)
{
	char req[32 + 2 * PEER_NAME_MAX], answer[ERR_LEN + 16];
	int rc;

	if (*name == '\0' || strlen(name) > PEER_NAME_MAX) {
		fprintf(stderr, "tcppeer: force-leave: '%.64s' is not a member name\n", name);
		return 2;
	}
	snprintf(req, sizeof(req), "force-leave");
	request_arg(req, name);
	strcat(req, "\n");
	if ((rc = control_line(path, req, answer, sizeof(answer))) != 0)
		return rc;
	if (strcmp(answer, "ok") == 0)
		return 0;
	if (strcmp(answer, "ok unknown") == 0) {
		/* serf sends the intent anyway: a member may learn of it later. */
		fprintf(stderr, "tcppeer: force-leave: '%s' is not a member this node knows; "
				"the leave intent was sent anyway\n", name);
		return 0;
	}
	return control_refused("force-leave", answer);
}

int control_rtt(const char *path, const char *a, const char *b)
{
	char req[32 + 4 * PEER_NAME_MAX], answer[ERR_LEN + 4 * PEER_NAME_MAX];
	int rc;

	if (*a == '\0' || strlen(a) > PEER_NAME_MAX || (b != NULL && (*b == '\0' ||
								 strlen(b) > PEER_NAME_MAX))) {
		fputs("tcppeer: rtt: a node name is empty or too long\n", stderr);
		return 2;
	}
	snprintf(req, sizeof(req), "rtt");
	request_arg(req, a);
	if (b != NULL)
		request_arg(req, b);
	strcat(req, "\n");
	if ((rc = control_line(path, req, answer, sizeof(answer))) != 0)
		return rc;
	if (strncmp(answer, "ok ", 3) == 0) {
		puts(answer + 3);
		return 0;
	}
	control_refused("rtt", answer);
	/* serf rtt's status for a node without coordinates */
	return strncmp(answer, "error: could not find", 21) == 0 ? 1 : 2;
}
