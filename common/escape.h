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

/* Cuts s, a NUL-terminated string, to at most max bytes without splitting a
 * UTF-8 character. */
void utf8_cut(char *s, size_t max);

/* Drops the incomplete UTF-8 character at the end of s, as left by a cut
 * such as snprintf's. */
void utf8_drop_partial(char *s);

/* User text short enough to quote in a message: at most TEXT_CLIP_MAX bytes
 * of in, cut between UTF-8 characters, followed by "..." when it was longer.
 * Returns out. */
#define TEXT_CLIP_MAX 48
#define TEXT_CLIP_LEN (TEXT_CLIP_MAX + 4)
const char *text_clip(char out[TEXT_CLIP_LEN], const char *in);

/* The length of the valid UTF-8 character at s (1 to 4), or 0 when the
 * bytes there are not one (a stray continuation, an overlong form, a
 * surrogate, beyond U+10FFFF, or cut short by the NUL). */
size_t utf8_char_len(const unsigned char *s);

#endif
