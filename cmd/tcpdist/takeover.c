/* Listening sockets handed from one tcpdist to the next, as HAProxy's -x:
 * the new process asks the running one over its control socket ("takeover"),
 * receives every listening socket with SCM_RIGHTS and accepts on the very
 * same sockets, so no backlog is lost and no client is refused. Only once
 * it accepts does it say "ok", and the old process stops as on SIGTERM; if
 * the new one fails before, the old one serves on.
 *
 * The answer: lines "fds N" each carrying N descriptors, then "end", or a
 * line "error: ...". systemd's socket activation (LISTEN_FDS) hands sockets
 * over the same way at start; those stay systemd's across restarts. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "tcpdist.h"

#define TAKEOVER_FDS_PER_MESSAGE 250 /* under the kernel's SCM_MAX_FD of 253 */
#define TAKEOVER_WAIT 10             /* seconds the new process waits for the answer */
#define SD_LISTEN_FDS_START 3

/* Old process, main loop: the descriptors in messages of at most 250. The
 * socket's buffer holds these few small messages: MSG_DONTWAIT never waits,
 * and a full buffer fails the takeover rather than the loop. */
int takeover_send(int sock, const int *fds, size_t n)
{
	size_t sent = 0;

	do {
		size_t k = n - sent < TAKEOVER_FDS_PER_MESSAGE ? n - sent : TAKEOVER_FDS_PER_MESSAGE;
		char line[32];
		union {
			char buf[CMSG_SPACE(TAKEOVER_FDS_PER_MESSAGE * sizeof(int))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov;
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

		iov.iov_base = line;
		iov.iov_len = (size_t)snprintf(line, sizeof(line), "fds %zu\n", k);
		if (k > 0) {
			struct cmsghdr *c;

			memset(&ctl, 0, sizeof(ctl));
			msg.msg_control = ctl.buf;
			msg.msg_controllen = CMSG_SPACE(k * sizeof(int));
			c = CMSG_FIRSTHDR(&msg);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(k * sizeof(int));
			memcpy(CMSG_DATA(c), fds + sent, k * sizeof(int));
		}
		if (sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)iov.iov_len)
			return -1;
		sent += k;
	} while (sent < n);
	return send(sock, "end\n", 4, MSG_DONTWAIT | MSG_NOSIGNAL) == 4 ? 0 : -1;
}

static int fds_add(struct inherited *in, const int *fds, size_t k)
{
	int *all = realloc(in->fds, (in->n + k) * sizeof(*all));

	if (all == NULL)
		return -1;
	memcpy(all + in->n, fds, k * sizeof(*fds));
	in->fds = all;
	in->n += k;
	return 0;
}

void inherited_free(struct inherited *in)
{
	for (size_t i = 0; i < in->n; i++)
		if (in->fds[i] >= 0)
			close(in->fds[i]);
	free(in->fds);
	in->fds = NULL;
	in->n = 0;
	if (in->sock >= 0)
		close(in->sock);
	in->sock = -1;
}

/* New process, at start: asks the tcpdist at path for its sockets. Leaves
 * in->sock open for takeover_ok(). */
int takeover_receive(const char *path, struct inherited *in, char *err)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct timeval tv = {TAKEOVER_WAIT, 0};
	char text[4096];
	size_t textlen = 0, announced = 0;
	int sock;

	in->sock = -1;
	if (strlen(path) >= sizeof(sun.sun_path))
		return err_set(err, "--takeover: control path too long");
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return err_set(err, "--takeover: socket: %s", strerror(errno));
	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	in->sock = sock;
	if (connect(sock, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		err_set(err, "--takeover: no tcpdist answers at %s: %s", path, strerror(errno));
		goto fail;
	}
	if (send(sock, "takeover\n", 9, MSG_NOSIGNAL) != 9) {
		err_set(err, "--takeover: %s: %s", path, strerror(errno));
		goto fail;
	}
	for (;;) {
		union {
			char buf[CMSG_SPACE(TAKEOVER_FDS_PER_MESSAGE * sizeof(int))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = {text + textlen, sizeof(text) - 1 - textlen};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
				     .msg_controllen = sizeof(ctl.buf)};
		ssize_t got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
		char *nl;

		if (got <= 0) {
			err_set(err, "--takeover: %s: %s", path,
				got == 0 ? "closed before the end" : strerror(errno));
			goto fail;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
			    fds_add(in, (const int *)CMSG_DATA(c),
				    (c->cmsg_len - CMSG_LEN(0)) / sizeof(int)) < 0) {
				err_set(err, "--takeover: out of memory");
				goto fail;
			}
		if (msg.msg_flags & MSG_CTRUNC) {
			err_set(err, "--takeover: descriptors lost in transit (out of descriptors?)");
			goto fail;
		}
		textlen += (size_t)got;
		text[textlen] = '\0';
		while ((nl = strchr(text, '\n')) != NULL) {
			size_t k;

			*nl = '\0';
			if (strncmp(text, "error: ", 7) == 0) {
				err_set(err, "--takeover: %s: %.200s", path, text + 7);
				goto fail;
			}
			if (strcmp(text, "end") == 0) {
				if (announced != in->n) {
					err_set(err, "--takeover: %zu sockets announced, %zu came",
						announced, in->n);
					goto fail;
				}
				return 0;
			}
			if (sscanf(text, "fds %zu", &k) != 1) {
				err_set(err, "--takeover: unexpected answer '%.64s'", text);
				goto fail;
			}
			announced += k;
			textlen -= (size_t)(nl + 1 - text);
			memmove(text, nl + 1, textlen + 1);
		}
		if (textlen == sizeof(text) - 1) {
			err_set(err, "--takeover: answer too long");
			goto fail;
		}
	}
fail:
	inherited_free(in);
	return -1;
}

/* New process, accepting: the old one may stop now. */
void takeover_ok(struct inherited *in)
{
	if (in->sock < 0)
		return;
	if (send(in->sock, "ok\n", 3, MSG_NOSIGNAL) != 3)
		log_warn("--takeover: cannot tell the old process to stop: %s", strerror(errno));
	close(in->sock);
	in->sock = -1;
}

/* systemd's socket activation: LISTEN_PID is ours, LISTEN_FDS sockets from
 * descriptor 3. The variables are cleared so no child sees them. */
int systemd_listen_fds(struct inherited *in, char *err)
{
	const char *pid = getenv("LISTEN_PID"), *count = getenv("LISTEN_FDS");
	char *end;
	long n;

	in->sock = -1;
	if (pid == NULL || count == NULL)
		return 0;
	if (strtol(pid, &end, 10) != (long)getpid() || *end != '\0')
		return 0; /* meant for another process */
	n = strtol(count, &end, 10);
	if (*end != '\0' || n < 0 || n > 4096)
		return err_set(err, "LISTEN_FDS: '%.32s' is not a count", count);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	for (long i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + (int)i;

		if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || fds_add(in, &fd, 1) < 0)
			return err_set(err, "LISTEN_FDS: descriptor %d: %s", fd, strerror(errno));
	}
	return 0;
}
