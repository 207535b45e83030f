#include <stdlib.h>

#include "lzw.h"

#define LZW_MAX_WIDTH 12
#define LZW_TABLE (1u << LZW_MAX_WIDTH)
#define LZW_CLEAR 256u
#define LZW_EOF 257u
#define LZW_INVALID 0xffffu

struct lzw_state {
	uint16_t prefix[LZW_TABLE];
	uint8_t suffix[LZW_TABLE];
	uint8_t expand[LZW_TABLE]; /* one code's expansion, written back to front */
};

int lzw_decode(const uint8_t *in, size_t len, struct wbuf *out)
{
	struct lzw_state *s;
	uint32_t bits = 0;
	unsigned nbits = 0, width = 9, hi = LZW_EOF, overflow = 1u << 9;
	unsigned last = LZW_INVALID;
	size_t pos = 0;
	int rc = -1;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -1;
	for (;;) {
		unsigned code, c, i;

		while (nbits < width) {
			if (pos == len)
				goto out; /* no end code: truncated */
			bits |= (uint32_t)in[pos++] << nbits;
			nbits += 8;
		}
		code = bits & ((1u << width) - 1);
		bits >>= width;
		nbits -= width;

		if (code < LZW_CLEAR) {
			if (wbuf_byte(out, (uint8_t)code) < 0)
				goto out;
			if (last != LZW_INVALID) {
				s->suffix[hi] = (uint8_t)code;
				s->prefix[hi] = (uint16_t)last;
			}
		} else if (code == LZW_CLEAR) {
			width = 9;
			hi = LZW_EOF;
			overflow = 1u << width;
			last = LZW_INVALID;
			continue;
		} else if (code == LZW_EOF) {
			rc = 0;
			goto out;
		} else if (code <= hi) {
			i = LZW_TABLE;
			c = code;
			if (code == hi && last != LZW_INVALID) {
				/* Not yet defined: the last expansion plus its own first byte. */
				c = last;
				while (c >= LZW_CLEAR)
					c = s->prefix[c];
				s->expand[--i] = (uint8_t)c;
				c = last;
			}
			/* A chain is at most one step per table entry, so i stays > 0. */
			while (c >= LZW_CLEAR) {
				if (i == 0)
					goto out;
				s->expand[--i] = s->suffix[c];
				c = s->prefix[c];
			}
			if (i == 0)
				goto out;
			s->expand[--i] = (uint8_t)c;
			if (wbuf_put(out, s->expand + i, LZW_TABLE - i) < 0)
				goto out;
			if (last != LZW_INVALID) {
				s->suffix[hi] = (uint8_t)c;
				s->prefix[hi] = (uint16_t)last;
			}
		} else {
			goto out; /* a code beyond the table */
		}
		last = code;
		hi++;
		if (hi >= overflow) {
			if (width == LZW_MAX_WIDTH) {
				/* Table full: no new entries until the next clear. */
				last = LZW_INVALID;
				hi--;
			} else {
				width++;
				overflow = 1u << width;
			}
		}
	}
out:
	free(s);
	return rc;
}
