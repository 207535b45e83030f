/* msgpack as go-msgpack speaks it. Reading is a bounded cursor over a buffer
 * of our own: msgpack-c's unpacker allocates what an array or map header
 * declares before it sees the data, which a hostile 5-byte packet turns into
 * a huge allocation. Writing goes through msgpack-c into a bounded buffer. */
#ifndef TCPPEER_MP_H
#define TCPPEER_MP_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

/* Deepest nesting mp_skip follows: memberlist's values are two levels deep. */
#define MP_DEPTH_MAX 16

enum mp_status { MP_OK = 0, MP_SHORT = 1, MP_BAD = 2 };

struct mp_reader {
	const uint8_t *p;
	size_t len, off;
	enum mp_status st; /* first problem met; later reads fail at once */
	size_t need;       /* on MP_SHORT: total input length that would have sufficed at least */
};

void mp_reader_init(struct mp_reader *r, const void *p, size_t len);
/* Each returns 0, or -1 and sets r->st. Strings: every str and bin family,
 * and nil as the empty string (Go writes a nil []byte as nil). */
int mp_read_map(struct mp_reader *r, uint32_t *n);
int mp_read_array(struct mp_reader *r, uint32_t *n);
int mp_read_raw(struct mp_reader *r, const uint8_t **p, uint32_t *len);
int mp_read_uint(struct mp_reader *r, uint64_t max, uint64_t *v);
/* A signed integer of any family (int64 range), or nil as 0. */
int mp_read_int(struct mp_reader *r, int64_t *v);
/* A bool as go-msgpack takes one: true, false, nil, or the integers 0 and 1. */
int mp_read_bool(struct mp_reader *r, int *v);
int mp_skip(struct mp_reader *r);
/* Reads a map key and tells whether it equals name. */
int mp_key_is(const uint8_t *key, uint32_t keylen, const char *name);

/* A growing output buffer with a hard cap; writing past it fails. */
struct wbuf {
	uint8_t *p;
	size_t len, cap, max;
	int overflow;
	msgpack_packer pk;
};

void wbuf_init(struct wbuf *w, size_t max);
void wbuf_free(struct wbuf *w);
void wbuf_reset(struct wbuf *w);
int wbuf_put(struct wbuf *w, const void *p, size_t len);
int wbuf_byte(struct wbuf *w, uint8_t b);

/* go-msgpack writes strings and byte slices as the legacy raw family. */
void mp_put_raw(struct wbuf *w, const void *p, size_t len);
void mp_put_str(struct wbuf *w, const char *s);
void mp_put_uint(struct wbuf *w, uint64_t v);
void mp_put_int(struct wbuf *w, int64_t v);
void mp_put_double(struct wbuf *w, double v);
void mp_put_nil(struct wbuf *w);
void mp_put_bool(struct wbuf *w, int v);
void mp_put_map(struct wbuf *w, uint32_t n);
void mp_put_array(struct wbuf *w, uint32_t n);

#endif
