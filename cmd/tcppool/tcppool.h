/* tcppool internals. */
#ifndef TCPDIST_TCPPOOL_H
#define TCPDIST_TCPPOOL_H

#include <stdio.h>

#include "pool.h"

/* One command's arguments, after the options. */
struct command {
	const char *pool_path;
	char **argv; /* operands, without the command name */
	int argc;
	int json;
};

/* One print call, two formats (see out.c). */
enum out_format { OUT_ROWS, OUT_PAIRS, OUT_JSON };

struct out {
	FILE *f;
	enum out_format format;
	int array;   /* the records make a JSON array */
	int records; /* begun so far */
	int fields;  /* in the current record */
	int listed;  /* values in the current out_list */
};

/* With array, JSON output is an array of the records, else one record. */
void out_init(struct out *o, FILE *f, enum out_format format, int array);
void out_record_begin(struct out *o);
void out_str(struct out *o, const char *key, const char *value);
void out_uint(struct out *o, const char *key, unsigned long long value);
/* A field with several values: out_list_begin, out_list_str..., out_list_end. */
void out_list_begin(struct out *o, const char *key);
void out_list_str(struct out *o, const char *key, const char *value);
void out_list_end(struct out *o);
void out_record_end(struct out *o);
/* Ends the output (the closing bracket of a JSON array). */
void out_end(struct out *o);

int run_init(const struct command *c);
int run_add(const struct command *c);
int run_rm(const struct command *c);
int run_set(const struct command *c);
int run_state(const struct command *c, enum backend_state state);
int run_list(const struct command *c);
int run_show(const struct command *c);
int run_check(const struct command *c);

#endif
