/* Text from outside (the network, files, standard input) quoted in a
 * message: control bytes become \xNN, so that one message stays one line
 * and cannot drive a terminal. Other bytes, UTF-8 included, pass as they are. */
#ifndef TCPDIST_ESCAPE_H
#define TCPDIST_ESCAPE_H

#include <stddef.h>

/* 1 for the bytes escape_controls() rewrites. */
int is_control_byte(unsigned char c);

/* Copies in to out (outlen bytes, at least 1), control bytes as \xNN, as
 * much as fits without cutting an escape in two; always NUL-terminated.
 * Returns the length written; *rest, when not NULL, gets the first byte of
 * in that did not fit (pointing at its NUL when all did). */
size_t escape_controls(char *out, size_t outlen, const char *in, const char **rest);

#endif
