#include <stdlib.h>
#include <string.h>

#include "mp.h"

void mp_reader_init(struct mp_reader *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->st = MP_OK;
	r->need = 0;
}

static int mp_short(struct mp_reader *r, size_t want)
{
	if (r->st == MP_OK) {
		r->st = MP_SHORT;
		r->need = r->off + want;
	}
	return -1;
}

static int mp_bad(struct mp_reader *r)
{
	if (r->st == MP_OK)
		r->st = MP_BAD;
	return -1;
}

/* Big-endian unsigned of n bytes at the cursor, consumed. */
static int mp_be(struct mp_reader *r, unsigned n, uint64_t *v)
{
	uint64_t x = 0;

	if (r->st != MP_OK)
		return -1;
	if (r->len - r->off < n)
		return mp_short(r, n);
	for (unsigned i = 0; i < n; i++)
		x = x << 8 | r->p[r->off + i];
	r->off += n;
	*v = x;
	return 0;
}

static int mp_byte(struct mp_reader *r, uint8_t *b)
{
	uint64_t v;

	if (mp_be(r, 1, &v) < 0)
		return -1;
	*b = (uint8_t)v;
	return 0;
}

int mp_read_map(struct mp_reader *r, uint32_t *n)
{
	uint8_t b;
	uint64_t v;

	if (mp_byte(r, &b) < 0)
		return -1;
	if ((b & 0xf0) == 0x80) {
		*n = b & 0x0f;
		return 0;
	}
	if (b != 0xde && b != 0xdf) {
		r->off--;
		return mp_bad(r);
	}
	if (mp_be(r, b == 0xde ? 2 : 4, &v) < 0)
		return -1;
	/* Each entry takes at least two bytes: a count beyond that is a lie. */
	if (v > (r->len - r->off) / 2)
		return mp_short(r, 2 * v);
	*n = (uint32_t)v;
	return 0;
}

int mp_read_array(struct mp_reader *r, uint32_t *n)
{
	uint8_t b;
	uint64_t v;

	if (mp_byte(r, &b) < 0)
		return -1;
	if ((b & 0xf0) == 0x90) {
		*n = b & 0x0f;
		return 0;
	}
	if (b == 0xc0) { /* a nil slice */
		*n = 0;
		return 0;
	}
	if (b != 0xdc && b != 0xdd) {
		r->off--;
		return mp_bad(r);
	}
	if (mp_be(r, b == 0xdc ? 2 : 4, &v) < 0)
		return -1;
	if (v > r->len - r->off)
		return mp_short(r, v);
	*n = (uint32_t)v;
	return 0;
}

int mp_read_raw(struct mp_reader *r, const uint8_t **p, uint32_t *len)
{
	uint8_t b;
	uint64_t v;
	unsigned lenbytes = 0;

	if (mp_byte(r, &b) < 0)
		return -1;
	if ((b & 0xe0) == 0xa0) {
		v = b & 0x1f;
	} else if (b == 0xc0) {
		v = 0;
	} else {
		switch (b) {
		case 0xd9: case 0xc4: lenbytes = 1; break;
		case 0xda: case 0xc5: lenbytes = 2; break;
		case 0xdb: case 0xc6: lenbytes = 4; break;
		default:
			r->off--;
			return mp_bad(r);
		}
		if (mp_be(r, lenbytes, &v) < 0)
			return -1;
	}
	if (v > r->len - r->off)
		return mp_short(r, v);
	*p = r->p + r->off;
	*len = (uint32_t)v;
	r->off += v;
	return 0;
}

int mp_read_uint(struct mp_reader *r, uint64_t max, uint64_t *v)
{
	uint8_t b;
	uint64_t x;

	if (mp_byte(r, &b) < 0)
		return -1;
	if (b < 0x80) {
		x = b;
	} else if (b >= 0xcc && b <= 0xcf) { /* uint 8..64 */
		if (mp_be(r, 1u << (b - 0xcc), &x) < 0)
			return -1;
	} else if (b >= 0xd0 && b <= 0xd3) { /* int 8..64: only non-negative values */
		unsigned n = 1u << (b - 0xd0);

		if (mp_be(r, n, &x) < 0)
			return -1;
		if (x >> (8 * n - 1))
			return mp_bad(r);
	} else if (b == 0xc0) {
		x = 0;
	} else {
		r->off--;
		return mp_bad(r);
	}
	if (x > max)
		return mp_bad(r);
	*v = x;
	return 0;
}

int mp_read_bool(struct mp_reader *r, int *v)
{
	uint8_t b;

	if (mp_byte(r, &b) < 0)
		return -1;
	if (b != 0xc2 && b != 0xc3 && b != 0xc0 && b != 0x00 && b != 0x01) {
		r->off--;
		return mp_bad(r);
	}
	*v = b == 0xc3 || b == 0x01;
	return 0;
}

int mp_read_int(struct mp_reader *r, int64_t *v)
{
	uint8_t b;
	uint64_t x;

	if (mp_byte(r, &b) < 0)
		return -1;
	if (b < 0x80) {
		*v = b;
		return 0;
	}
	if (b >= 0xe0) {
		*v = (int8_t)b;
		return 0;
	}
	if (b == 0xc0) {
		*v = 0;
		return 0;
	}
	if (b >= 0xcc && b <= 0xcf) {
		if (mp_be(r, 1u << (b - 0xcc), &x) < 0)
			return -1;
		if (x > INT64_MAX)
			return mp_bad(r);
		*v = (int64_t)x;
		return 0;
	}
	if (b >= 0xd0 && b <= 0xd3) {
		unsigned n = 1u << (b - 0xd0);

		if (mp_be(r, n, &x) < 0)
			return -1;
		if (n == 1)
			*v = (int8_t)x;
		else if (n == 2)
			*v = (int16_t)x;
		else if (n == 4)
			*v = (int32_t)x;
		else
			*v = (int64_t)x;
		return 0;
	}
	r->off--;
	return mp_bad(r);
}

/* Skips one value; nested containers are followed up to MP_DEPTH_MAX levels
 * with a counter of pending values, not recursion. */
int mp_skip(struct mp_reader *r)
{
	uint64_t pending = 1;
	uint64_t stack[MP_DEPTH_MAX];
	unsigned depth = 0;
	uint8_t b;

	while (pending > 0 || depth > 0) {
		if (pending == 0) {
			pending = stack[--depth];
			continue;
		}
		pending--;
		if (mp_byte(r, &b) < 0)
			return -1;
		uint64_t body = 0, items = 0;
		int container = 0;

		if (b < 0x80 || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
			body = 0;
		} else if ((b & 0xf0) == 0x80) {
			items = 2u * (b & 0x0f), container = 1;
		} else if ((b & 0xf0) == 0x90) {
			items = b & 0x0f, container = 1;
		} else if ((b & 0xe0) == 0xa0) {
			body = b & 0x1f;
		} else {
			switch (b) {
			case 0xc4: case 0xd9: if (mp_be(r, 1, &body) < 0) return -1; break;
			case 0xc5: case 0xda: if (mp_be(r, 2, &body) < 0) return -1; break;
			case 0xc6: case 0xdb: if (mp_be(r, 4, &body) < 0) return -1; break;
			case 0xc7: if (mp_be(r, 1, &body) < 0) return -1; body++; break;
			case 0xc8: if (mp_be(r, 2, &body) < 0) return -1; body++; break;
			case 0xc9: if (mp_be(r, 4, &body) < 0) return -1; body++; break;
			case 0xca: body = 4; break;
			case 0xcb: body = 8; break;
			case 0xcc: case 0xd0: body = 1; break;
			case 0xcd: case 0xd1: body = 2; break;
			case 0xce: case 0xd2: body = 4; break;
			case 0xcf: case 0xd3: body = 8; break;
			case 0xd4: body = 2; break;
			case 0xd5: body = 3; break;
			case 0xd6: body = 5; break;
			case 0xd7: body = 9; break;
			case 0xd8: body = 17; break;
			case 0xdc: if (mp_be(r, 2, &items) < 0) return -1; container = 1; break;
			case 0xdd: if (mp_be(r, 4, &items) < 0) return -1; container = 1; break;
			case 0xde: if (mp_be(r, 2, &items) < 0) return -1; items *= 2; container = 1; break;
			case 0xdf: if (mp_be(r, 4, &items) < 0) return -1; items *= 2; container = 1; break;
			default: /* 0xc1: never used */
				r->off--;
				return mp_bad(r);
			}
		}
		if (container) {
			if (items > r->len - r->off)
				return mp_short(r, items);
			if (items == 0)
				continue;
			if (depth == MP_DEPTH_MAX)
				return mp_bad(r);
			stack[depth++] = pending;
			pending = items;
			continue;
		}
		if (body > r->len - r->off)
			return mp_short(r, body);
		r->off += body;
	}
	return 0;
}

int mp_key_is(const uint8_t *key, uint32_t keylen, const char *name)
{
	size_t n = strlen(name);

	return keylen == n && memcmp(key, name, n) == 0;
}

/* msgpack-c's write callback: append to the bounded buffer. */
static int wbuf_write(void *data, const char *buf, size_t len)
{
	return wbuf_put(data, buf, len);
}

void wbuf_init(struct wbuf *w, size_t max)
{
	memset(w, 0, sizeof(*w));
	w->max = max;
	msgpack_packer_init(&w->pk, w, wbuf_write);
}

void wbuf_free(struct wbuf *w)
{
	free(w->p);
	w->p = NULL;
	w->len = w->cap = 0;
}

void wbuf_reset(struct wbuf *w)
{
	w->len = 0;
	w->overflow = 0;
}

int wbuf_put(struct wbuf *w, const void *p, size_t len)
{
	if (w->overflow || len > w->max - w->len) {
		w->overflow = 1;
		return -1;
	}
	if (w->len + len > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		uint8_t *np;

		while (cap < w->len + len)
			cap *= 2;
		if (cap > w->max)
			cap = w->max;
		np = realloc(w->p, cap);
		if (np == NULL) {
			w->overflow = 1;
			return -1;
		}
		w->p = np;
		w->cap = cap;
	}
	if (len > 0)
		memcpy(w->p + w->len, p, len);
	w->len += len;
	return 0;
}

int wbuf_byte(struct wbuf *w, uint8_t b)
{
	return wbuf_put(w, &b, 1);
}

void mp_put_raw(struct wbuf *w, const void *p, size_t len)
{
	msgpack_pack_v4raw(&w->pk, len);
	msgpack_pack_v4raw_body(&w->pk, p, len);
}

void mp_put_str(struct wbuf *w, const char *s)
{
	mp_put_raw(w, s, strlen(s));
}

void mp_put_uint(struct wbuf *w, uint64_t v)
{
	msgpack_pack_uint64(&w->pk, v);
}

void mp_put_int(struct wbuf *w, int64_t v)
{
	msgpack_pack_int64(&w->pk, v);
}

void mp_put_double(struct wbuf *w, double v)
{
	msgpack_pack_double(&w->pk, v);
}

void mp_put_nil(struct wbuf *w)
{
	msgpack_pack_nil(&w->pk);
}

void mp_put_bool(struct wbuf *w, int v)
{
	if (v)
		msgpack_pack_true(&w->pk);
	else
		msgpack_pack_false(&w->pk);
}

void mp_put_map(struct wbuf *w, uint32_t n)
{
	msgpack_pack_map(&w->pk, n);
}

void mp_put_array(struct wbuf *w, uint32_t n)
{
	msgpack_pack_array(&w->pk, n);
}
