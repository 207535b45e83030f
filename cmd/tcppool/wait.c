/* tcppool drain --wait: once the file says drain, asks the running tcpdist
 * (the pool's control socket) until it has taken the drain and has no
 * connection left to the backend, or until the timeout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctlclient.h"
#include "num.h"
#include "tcppool.h"

#define WAIT_POLL_MS 100
#define WAIT_ASK_MS 5000 /* for one answer */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The value of KEY in "KEY<TAB>VALUE" lines, or NULL. */
static const char *pair(const char *text, const char *key, char *out, size_t len)
{
	size_t klen = strlen(key);

	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');

		if (strncmp(line, key, klen) == 0 && line[klen] == '\t') {
			size_t vlen = nl ? (size_t)(nl - line - klen - 1) : strlen(line + klen + 1);

			snprintf(out, len, "%.*s", (int)vlen, line + klen + 1);
			return out;
		}
		line = nl ? nl + 1 : NULL;
	}
	return NULL;
}

int drain_wait(const struct command *c, const char *name)
{
	char path[POOL_CONTROL_MAX + 1], err[ERR_LEN * 2], request[128], state[32], active[32],
		tmo[32];
	long long deadline = c->wait_ms ? now_ms() + (long long)c->wait_ms : 0;
	const char *last = "no answer yet";

	if (control_path_of_pool(c->pool_path, path, sizeof(path), err) < 0) {
		fprintf(stderr, "tcppool: drain --wait: %s\n", err);
		return 2;
	}
	snprintf(request, sizeof(request), "backend %s", name);
	for (;;) {
		char *answer;
		size_t len;

		if (control_call(path, request, WAIT_ASK_MS, &answer, &len, err) < 0) {
			fprintf(stderr, "tcppool: drain --wait: %s\n", err);
			return 2;
		}
		/* Until tcpdist has loaded the change, it may not know NAME yet
		 * or still show it up: wait for both. */
		if (pair(answer, "state", state, sizeof(state)) &&
		    pair(answer, "active", active, sizeof(active))) {
			if (strcmp(state, "up") != 0 && strcmp(active, "0") == 0) {
				free(answer);
				return 0;
			}
			last = strcmp(state, "up") == 0 ? "tcpdist has not loaded the drain yet"
							: "connections remain";
		} else if (strncmp(answer, "error: ", 7) == 0) {
			last = "tcpdist does not know the backend yet";
		}
		free(answer);
		if (deadline && now_ms() >= deadline) {
			duration_format(c->wait_ms, tmo, sizeof(tmo));
			if (strcmp(last, "connections remain") == 0)
				fprintf(stderr, "tcppool: drain --wait: %s still has %s connection%s after %s\n",
					name, active, strcmp(active, "1") == 0 ? "" : "s", tmo);
			else
				fprintf(stderr, "tcppool: drain --wait: %s after %s\n", last, tmo);
			return 1;
		}
		struct timespec ts = {0, WAIT_POLL_MS * 1000000L};

		nanosleep(&ts, NULL);
	}
}
