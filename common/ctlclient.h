/* Asking a running tcpdist over its control socket (tcpdist(1), CONTROL
 * SOCKET): one request line, the whole answer until the close. */
#ifndef TCPDIST_CTLCLIENT_H
#define TCPDIST_CTLCLIENT_H

#include <stddef.h>

#define CONTROL_ANSWER_MAX (64u << 20) /* a sessions listing of a busy proxy fits */

/* Sends request (a line without its newline) to the socket at path and
 * returns the answer, NUL-terminated, in *answer (malloc'd), its length in
 * *len. -1 with err when nobody answers or the exchange fails within
 * timeout_ms; an "error: ..." answer is returned as any other. */
int control_call(const char *path, const char *request, int timeout_ms, char **answer,
		 size_t *len, char *err);

/* The socket of the pool file at pool_path: its [pool] control key, without
 * looking any name up. -1 with err when the file cannot be read or has none. */
int control_path_of_pool(const char *pool_path, char *path, size_t pathlen, char *err);

#endif
