/* tcppeer's command line: the node's options, and the options its control
 * subcommands (members, event, force-leave, rtt) share. */
#ifndef TCPPEER_OPTIONS_H
#define TCPPEER_OPTIONS_H

#include "tcppeer.h"

/* Fills c from the node's command line; prints usage and exits 2 on a bad one. */
void options_parse(struct config *c, int argc, char **argv);

struct subcommand_line;

/* A client of the control socket: `tcppeer NAME [--control PATH] ARGS`. */
struct subcommand {
	const char *name;
	int min_args, max_args;
	int takes_json; /* whether --json is one of its options */
	int (*run)(const struct subcommand_line *l);
};

/* A subcommand's command line, as options_subcommand() leaves it. */
struct subcommand_line {
	const char *control; /* --control, else the default path in buf */
	int json;
	char **args;
	int nargs;
	char buf[256];
	char prog[64]; /* argv[0] for getopt's messages: "tcppeer: NAME" */
};

/* Parses argv (argv[0] is the subcommand's name) into l; prints usage and
 * exits 2 on a bad line, prints it and exits 0 on -h. */
void options_subcommand(const struct subcommand *s, int argc, char **argv,
			struct subcommand_line *l);

#endif
