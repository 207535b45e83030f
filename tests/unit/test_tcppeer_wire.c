/* tcppeer's message tables: every kind written and read back is the same
 * message; what memberlist or serf could not take is refused. */
#include <math.h>

#include "unit.h"
#include "wire.h"

/* Encodes m of kind d, decodes the result into out; 0 when it read back whole. */
static int roundtrip(const struct msg_desc *d, const void *m, void *out, struct wbuf *w)
{
	struct mp_reader r;
	size_t skip;

	wbuf_init(w, STREAM_MAX);
	wire_encode(d, w, m);
	if (w->overflow)
		return -1;
	skip = d->type >= 0 ? 1 : 0;
	if (skip && w->p[0] != d->type)
		return -1;
	mp_reader_init(&r, w->p + skip, w->len - skip);
	if (wire_decode(d, &r, out) < 0 || r.off != r.len)
		return -1;
	return 0;
}

static const uint8_t VSN_OK[6] = {1, 5, 2, 2, 5, 4};

static void sample_alive(struct msg_alive *a)
{
	memset(a, 0, sizeof(*a));
	a->inc = 7;
	snprintf(a->node, sizeof(a->node), "web-1");
	a->addr.len = 4;
	a->addr.b[0] = 10, a->addr.b[3] = 9;
	a->port = 7946;
	memcpy(a->meta, "\xff\x81\xa4role\xa3web", 11);
	a->metalen = 11;
	memcpy(a->vsn, VSN_OK, 6);
	a->vsnlen = 6;
	a->state = STATE_SUSPECT;
}

TEST(every_kind_round_trips)
{
	static union {
		max_align_t align;
		uint8_t b[8192];
	} in, out;
	uint8_t filters[64];
	struct wbuf fw;

	/* A node filter and a tag filter, as serf writes them. */
	wbuf_init(&fw, sizeof(filters));
	mp_put_array(&fw, 2);
	mp_put_raw(&fw, "\x00\x91\xa1" "a", 4);
	mp_put_raw(&fw, "\x01\x82\xa3Tag\xa4role\xa4" "Expr\xa2^w", 19);
	REQUIRE(!fw.overflow);
	memcpy(filters, fw.p, fw.len);

	for (size_t k = 0; k < WIRE_NKINDS; k++) {
		const struct msg_desc *d = WIRE_KINDS[k];
		struct wbuf w;

		REQUIRE(d->size <= sizeof(in.b));
		memset(in.b, 0, sizeof(in.b));
		/* Fill each field with something other than its zero value. */
		for (size_t i = 0; i < d->nfields; i++) {
			const struct field *f = &d->fields[i];
			uint8_t *at = in.b + f->off;

			switch (f->type) {
			case FT_U8: *at = 200; break;
			case FT_U16: *(uint16_t *)at = 65000; break;
			case FT_U32: *(uint32_t *)at = 4000000000u; break;
			case FT_U64: *(uint64_t *)at = UINT64_MAX - 1; break;
			case FT_I64: *(int64_t *)at = -15000000000LL; break;
			case FT_BOOL: *(int *)at = 1; break;
			case FT_NAME: case FT_STR64: strcpy((char *)at, "name\xc3\xa9"); break;
			case FT_IP: ((struct ipbytes *)at)->len = 16; ((struct ipbytes *)at)->b[15] = 1; break;
			case FT_BUF: memcpy(at, "\xff\x80", 2); *(uint16_t *)(in.b + f->len_off) = 2; break;
			case FT_REF:
				*(const uint8_t **)at = (const uint8_t *)"bytes";
				*(uint32_t *)(in.b + f->len_off) = 5;
				break;
			case FT_VSN: memcpy(at, VSN_OK, 6); in.b[f->len_off] = 6; break;
			case FT_F64: *(double *)at = -0.125; break;
			case FT_F64VEC:
				for (int j = 0; j < COORD_DIM_MAX; j++)
					((double *)at)[j] = j * 1e-4;
				in.b[f->len_off] = COORD_DIM_MAX;
				break;
			case FT_STRUCT: break;
			case FT_FILTERS:
				*(const uint8_t **)at = filters;
				*(uint32_t *)(in.b + f->len_off) = (uint32_t)fw.len;
				break;
			}
		}
		if (!CHECK(roundtrip(d, in.b, out.b, &w) == 0))
			unit_diag(__FILE__, __LINE__, "kind %s", d->name);
		else if (!CHECK(wire_equal(d, in.b, out.b)))
			unit_diag(__FILE__, __LINE__, "kind %s differs after a round trip", d->name);
		wbuf_free(&w);
	}
	wbuf_free(&fw);
}

TEST(alive_needs_six_sane_version_bytes)
{
	struct msg_alive a, b;
	struct wbuf w;

	sample_alive(&a);
	CHECK_EQ_INT(wire_validate(&DESC_ALIVE, &a), 0);
	CHECK_EQ_INT(wire_validate(&DESC_NODE_STATE, &a), 0);
	/* What memberlist indexes blindly: anything but six bytes is refused. */
	for (uint8_t n = 0; n <= 8; n++) {
		sample_alive(&a);
		a.vsnlen = n;
		REQUIRE(roundtrip(&DESC_ALIVE, &a, &b, &w) == 0);
		/* Written, a Vsn is cut to six bytes; as received, more are refused. */
		CHECK_EQ_INT(wire_validate(&DESC_ALIVE, n <= 6 ? &b : &a), n == 6 ? 0 : -1);
		wbuf_free(&w);
	}
	/* Ranges that would make memberlist refuse push-pulls cluster-wide. */
	static const uint8_t bad[][6] = {
		{0, 5, 2, 2, 5, 4}, {3, 5, 4, 2, 5, 4}, {1, 1, 1, 2, 5, 4}, {1, 5, 6, 2, 5, 4},
		{1, 5, 2, 5, 5, 5}, {1, 5, 2, 2, 3, 3}, {1, 5, 2, 0, 0, 0}, {2, 1, 2, 2, 5, 4},
		{1, 5, 2, 2, 5, 9},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sample_alive(&a);
		memcpy(a.vsn, bad[i], 6);
		CHECK_EQ_INT(wire_validate(&DESC_ALIVE, &a), -1);
	}
	static const uint8_t good[][6] = {{1, 5, 2, 2, 5, 2}, {2, 2, 2, 4, 4, 4}, {1, 3, 3, 2, 5, 5}};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		sample_alive(&a);
		memcpy(a.vsn, good[i], 6);
		CHECK_EQ_INT(wire_validate(&DESC_ALIVE, &a), 0);
	}
	sample_alive(&a);
	a.addr.len = 0;
	CHECK_EQ_INT(wire_validate(&DESC_ALIVE, &a), -1);
	sample_alive(&a);
	a.node[0] = '\0';
	CHECK_EQ_INT(wire_validate(&DESC_ALIVE, &a), -1);
	sample_alive(&a);
	a.state = 4;
	CHECK_EQ_INT(wire_validate(&DESC_NODE_STATE, &a), -1);
}

TEST(an_alive_with_a_short_vsn_decodes_but_does_not_validate)
{
	/* The forged packet of the issue, after its type byte. */
	static const char pkt[] = "\x86\xabIncarnation\x01\xa4Node\xa4" "evil\xa4" "Addr\xc4\x04\x7f\x00\x03\x01"
				  "\xa4Port\x01\xa4Meta\xc4\x00\xa3Vsn\xc4\x01\x01";
	struct mp_reader r;
	struct msg_alive a;

	mp_reader_init(&r, pkt, sizeof(pkt) - 1);
	REQUIRE(wire_decode(&DESC_ALIVE, &r, &a) == 0);
	CHECK_EQ_INT(a.vsnlen, 1);
	CHECK_EQ_INT(wire_validate(&DESC_ALIVE, &a), -1);
}

TEST(tags_are_checked_and_written_as_go_msgpack_writes_them)
{
	uint8_t out[META_MAX];
	uint16_t len;

	/* str8 and bin on the way in, the raw family on the way out. */
	CHECK_EQ_INT(wire_tags_normalize((const uint8_t *)"\xff\x81\xd9\x04role\xc4\x03web", 13, out,
					 &len),
		     0);
	CHECK_EQ_INT(len, 11);
	CHECK(memcmp(out, "\xff\x81\xa4role\xa3web", 11) == 0);
	/* serf's old single role tag: any bytes not starting with 0xFF. */
	CHECK_EQ_INT(wire_tags_normalize((const uint8_t *)"db", 2, out, &len), 0);
	CHECK_EQ_INT(len, 2);
	CHECK_EQ_INT(wire_tags_normalize((const uint8_t *)"", 0, out, &len), 0);
	/* Not a map of strings, cut short, or with bytes after it. */
	CHECK_EQ_INT(wire_tags_normalize((const uint8_t *)"\xff\x81\xa4role\x05", 8, out, &len), -1);
	CHECK_EQ_INT(wire_tags_normalize((const uint8_t *)"\xff\x82\xa4role\xa3web", 11, out, &len),
		     -1);
	CHECK_EQ_INT(wire_tags_normalize((const uint8_t *)"\xff\x81\xa4role\xa3webX", 12, out, &len),
		     -1);
	CHECK_EQ_INT(wire_tags_normalize((const uint8_t *)"\xff\x91\xa1x", 4, out, &len), -1);
}

TEST(user_events_serf_cannot_decode_are_refused)
{
	struct mp_reader r;
	struct msg_event e;
	static const char cc_string[] = "\x84\xa5LTime\x01\xa4Name\xa3" "bad\xa7Payload\xa1x\xa2" "CC\xa3yes";
	static const char cc_int[] = "\x84\xa5LTime\x01\xa4Name\xa3" "bad\xa7Payload\xa1x\xa2" "CC\x01";
	static const char ltime_neg[] = "\x82\xa5LTime\xff\xa4Name\xa3" "bad";
	static const char name_int[] = "\x82\xa5LTime\x01\xa4Name\x05";
	static const char no_name[] = "\x81\xa5LTime\x01";
	static const char unknown_key[] = "\x83\xa5LTime\x01\xa4Name\xa2ok\xa3New\x92\x01\xc0";

	mp_reader_init(&r, cc_string, sizeof(cc_string) - 1);
	CHECK_EQ_INT(wire_decode(&DESC_EVENT, &r, &e), -1);
	/* go-msgpack reads 0 and 1 as a bool: so do we, and write a bool. */
	mp_reader_init(&r, cc_int, sizeof(cc_int) - 1);
	CHECK_EQ_INT(wire_decode(&DESC_EVENT, &r, &e), 0);
	CHECK_EQ_INT(e.cc, 1);
	mp_reader_init(&r, ltime_neg, sizeof(ltime_neg) - 1);
	CHECK_EQ_INT(wire_decode(&DESC_EVENT, &r, &e), -1);
	mp_reader_init(&r, name_int, sizeof(name_int) - 1);
	CHECK_EQ_INT(wire_decode(&DESC_EVENT, &r, &e), -1);
	mp_reader_init(&r, no_name, sizeof(no_name) - 1);
	REQUIRE(wire_decode(&DESC_EVENT, &r, &e) == 0);
	CHECK_EQ_INT(wire_validate(&DESC_EVENT, &e), -1);
	/* Keys a newer serf adds are skipped, and not passed on. */
	mp_reader_init(&r, unknown_key, sizeof(unknown_key) - 1);
	REQUIRE(wire_decode(&DESC_EVENT, &r, &e) == 0);
	CHECK_EQ_INT(wire_validate(&DESC_EVENT, &e), 0);
	{
		struct wbuf w;

		wbuf_init(&w, 512);
		wire_encode(&DESC_EVENT, &w, &e);
		CHECK(memmem(w.p, w.len, "New", 3) == NULL);
		CHECK(memmem(w.p, w.len, "\xa2" "CC\xc2", 4) != NULL);
		wbuf_free(&w);
	}
}

TEST(query_filters_are_checked_and_written_again)
{
	struct mp_reader r;
	struct msg_query q;
	/* Filters holding a filter of unknown type 7. */
	static const char bad_filter[] = "\x84\xa4Name\xa1q\xa4" "Addr\xc4\x04\x7f\x00\x00\x01\xa4Port\x01"
					 "\xa7" "Filters\x91\xa2\x07\x90";
	static const char nil_filters[] = "\x84\xa4Name\xa1q\xa4" "Addr\xc4\x04\x7f\x00\x00\x01\xa4Port\x01"
					  "\xa7" "Filters\xc0";

	mp_reader_init(&r, bad_filter, sizeof(bad_filter) - 1);
	CHECK_EQ_INT(wire_decode(&DESC_QUERY, &r, &q), -1);
	mp_reader_init(&r, nil_filters, sizeof(nil_filters) - 1);
	REQUIRE(wire_decode(&DESC_QUERY, &r, &q) == 0);
	CHECK_EQ_INT(wire_validate(&DESC_QUERY, &q), 0);
	/* Nowhere to answer: not taken. */
	q.port = 0;
	CHECK_EQ_INT(wire_validate(&DESC_QUERY, &q), -1);
}

TEST(coordinates_must_be_finite_and_eight_wide)
{
	struct msg_coord c;

	memset(&c, 0, sizeof(c));
	c.dim = COORD_DIM_MAX;
	c.error = 1.5;
	CHECK_EQ_INT(wire_validate(&DESC_COORD, &c), 0);
	c.vec[3] = NAN;
	CHECK_EQ_INT(wire_validate(&DESC_COORD, &c), -1);
	c.vec[3] = 0;
	c.height = INFINITY;
	CHECK_EQ_INT(wire_validate(&DESC_COORD, &c), -1);
	c.height = 0;
	c.dim = 3;
	CHECK_EQ_INT(wire_validate(&DESC_COORD, &c), -1);
}

UNIT_MAIN(T(every_kind_round_trips), T(alive_needs_six_sane_version_bytes),
	  T(an_alive_with_a_short_vsn_decodes_but_does_not_validate),
	  T(tags_are_checked_and_written_as_go_msgpack_writes_them),
	  T(user_events_serf_cannot_decode_are_refused), T(query_filters_are_checked_and_written_again),
	  T(coordinates_must_be_finite_and_eight_wide))
