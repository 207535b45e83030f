/* tcppool internals. */
#ifndef TCPDIST_TCPPOOL_H
#define TCPDIST_TCPPOOL_H

#include <stdint.h>
#include <stdio.h>

#include "out.h"
#include "pool.h"

/* One command's arguments, after the options. */
struct command {
	const char *pool_path;
	char **argv; /* operands, without the command name */
	int argc;
	int json;
	int wait;            /* drain --wait */
	uint64_t wait_ms;    /* its TIMEOUT; 0 = as long as it takes */
};

int run_init(const struct command *c);
int run_add(const struct command *c);
int run_rm(const struct command *c);
int run_set(const struct command *c);
int run_state(const struct command *c, enum backend_state state);
/* drain --wait: until the running tcpdist has no connection to the backend. */
int drain_wait(const struct command *c, const char *name);
int run_list(const struct command *c);
int run_show(const struct command *c);
int run_check(const struct command *c);

#endif
