/* LZW decoding as Go's compress/lzw writes it for memberlist: LSB bit order,
 * 8-bit literals, codes of 9 to 12 bits, clear 256, end 257. */
#ifndef TCPPEER_LZW_H
#define TCPPEER_LZW_H

#include <stddef.h>
#include <stdint.h>

#include "mp.h"

/* Appends the decoded bytes to out (whose cap is the output limit). Returns
 * 0, or -1 on a malformed or truncated stream or when the output would pass
 * the limit. */
int lzw_decode(const uint8_t *in, size_t len, struct wbuf *out);

#endif
