#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctlclient.h"
#include "err.h"
#include "pool.h"

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until deadline; 0 on time out. */
static int wait_fd(int fd, short events, long long deadline)
{
	struct pollfd pfd = {fd, events, 0};
	long long left = deadline - now_ms();
	int rc;

	if (left <= 0)
		return 0;
	do
		rc = poll(&pfd, 1, (int)left);
	while (rc < 0 && errno == EINTR);
	return rc;
}

int control_call(const char *path, const char *request, int timeout_ms, char **answer,
		 size_t *len, char *err)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	long long deadline = now_ms() + timeout_ms;
	size_t cap = 4096, got = 0, reqlen = strlen(request), off = 0;
	char *buf = NULL, *line = NULL;
	int fd = -1;

	if (strlen(path) >= sizeof(sun.sun_path))
		return err_set(err, "%s: path too long for a socket", path);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
		return err_set(err, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		err_set(err, "no tcpdist answers at %s: %s", path, strerror(errno));
		goto fail;
	}
	if ((line = malloc(reqlen + 2)) == NULL || (buf = malloc(cap)) == NULL) {
		err_set(err, "out of memory");
		goto fail;
	}
	memcpy(line, request, reqlen);
	memcpy(line + reqlen, "\n", 2);
	while (off < reqlen + 1) {
		ssize_t n = send(fd, line + off, reqlen + 1 - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN && wait_fd(fd, POLLOUT, deadline) > 0)
			continue;
		if (n < 0) {
			err_set(err, "%s: %s", path, errno == EAGAIN ? "timed out" : strerror(errno));
			goto fail;
		}
		off += (size_t)n;
	}
	for (;;) {
		ssize_t n;

		if (got + 1 == cap) {
			char *more;

			if (cap >= CONTROL_ANSWER_MAX) {
				err_set(err, "%s: answer longer than %u bytes", path, CONTROL_ANSWER_MAX);
				goto fail;
			}
			if ((more = realloc(buf, cap * 2)) == NULL) {
				err_set(err, "out of memory");
				goto fail;
			}
			buf = more;
			cap *= 2;
		}
		n = recv(fd, buf + got, cap - 1 - got, 0);
		if (n == 0)
			break;
		if (n < 0 && errno == EAGAIN && wait_fd(fd, POLLIN, deadline) > 0)
			continue;
		if (n < 0) {
			err_set(err, "%s: %s", path, errno == EAGAIN ? "no answer in time" : strerror(errno));
			goto fail;
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	close(fd);
	free(line);
	*answer = buf;
	*len = got;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	free(line);
	free(buf);
	return -1;
}

int control_path_of_pool(const char *pool_path, char *path, size_t pathlen, char *err)
{
	char why[ERR_LEN];
	size_t len;
	char *data = pool_read(pool_path, &len, why);
	struct pool *pool;

	if (data == NULL)
		return err_set(err, "%s: %s", pool_path, why);
	pool = pool_parse_unresolved(pool_path, data, len, err);
	free(data);
	if (pool == NULL)
		return -1;
	if (pool->control[0] == '\0') {
		pool_free(pool);
		return err_set(err, "%s: no control socket (set 'control = PATH' in [pool] or give --control PATH)",
			       pool_path);
	}
	snprintf(path, pathlen, "%s", pool->control);
	pool_free(pool);
	return 0;
}
