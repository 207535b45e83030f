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

#define FILL_DEPTH 3 /* list levels the round trip fills */

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

static void fill(const struct msg_desc *d, void *msg, uint32_t variant, int depth);

/* A list of two elements, each filled as fill() fills a message. */
struct fill_ctx {
	const struct msg_desc *d;
	int depth;
};

static void fill_item(void *ctx, uint32_t i, void *elem)
{
	const struct fill_ctx *c = ctx;

	fill(c->d, elem, i, c->depth);
}

/* Fills each field of a message of kind d with something other than its
 * zero value; lists get two elements (the variants of a tagged kind in
 * turn), three levels down at most. */
static void fill(const struct msg_desc *d, void *msg, uint32_t variant, int depth)
{
	static struct fill_ctx ctx[FILL_DEPTH][16];
	uint8_t *b = msg;

	if (d->form == FORM_TAGGED) {
		uint8_t tag = (uint8_t)(variant % d->nvariants);

		fill(d->variants[tag], msg, 0, depth);
		b[d->tag_off] = tag;
		return;
	}
	for (size_t i = 0; i < d->nfields; i++) {
		const struct field *f = &d->fields[i];
		uint8_t *at = b + f->off;

		switch (f->type) {
		case FT_U8: *at = 200; break;
		case FT_U16: *(uint16_t *)at = 65000; break;
		case FT_U32: *(uint32_t *)at = 4000000000u; break;
		case FT_U64: *(uint64_t *)at = UINT64_MAX - 1 - variant; break;
		case FT_I64: *(int64_t *)at = -15000000000LL; break;
		case FT_BOOL: *(int *)at = 1; break;
		case FT_NAME: case FT_STR64: strcpy((char *)at, "name\xc3\xa9"); break;
		case FT_IP: ((struct ipbytes *)at)->len = 16; ((struct ipbytes *)at)->b[15] = 1; break;
		case FT_BUF: memcpy(at, "\xff\x80", 2); *(uint16_t *)(b + f->len_off) = 2; break;
		case FT_REF:
			*(const uint8_t **)at = (const uint8_t *)(variant ? "other" : "bytes");
			*(uint32_t *)(b + f->len_off) = 5;
			break;
		case FT_VSN: memcpy(at, VSN_OK, 6); b[f->len_off] = 6; break;
		case FT_F64: *(double *)at = -0.125; break;
		case FT_F64VEC:
			for (int j = 0; j < COORD_DIM_MAX; j++)
				((double *)at)[j] = j * 1e-4;
			b[f->len_off] = COORD_DIM_MAX;
			break;
		case FT_STRUCT: fill(f->sub, at, variant, depth); break;
		case FT_LIST: {
			struct wire_list *l = (struct wire_list *)at;
			struct fill_ctx *c = &ctx[depth][i];

			if (depth >= FILL_DEPTH)
				break;
			c->d = f->sub;
			c->depth = depth + 1;
			l->n = 2;
			l->item = fill_item;
			l->ctx = c;
			break;
		}
		}
	}
}

TEST(every_kind_round_trips)
{
	static union {
		max_align_t align;
		uint8_t b[8192];
	} in, out;

	for (size_t k = 0; k < WIRE_NKINDS; k++) {
		const struct msg_desc *d = WIRE_KINDS[k];
		struct wbuf w;

		REQUIRE(d->size <= sizeof(in.b));
		memset(in.b, 0, sizeof(in.b));
		fill(d, in.b, 0, 0);
		if (!CHECK(roundtrip(d, in.b, out.b, &w) == 0))
			unit_diag(__FILE__, __LINE__, "kind %s", d->name);
		else if (!CHECK(wire_equal(d, in.b, out.b)))
			unit_diag(__FILE__, __LINE__, "kind %s differs after a round trip", d->name);
		wbuf_free(&w);
	}
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

/* Decodes a literal of kind d (after its type byte); 0 when read whole. */
static int decode_lit(const struct msg_desc *d, const char *lit, size_t len, void *out)
{
	struct mp_reader r;

	mp_reader_init(&r, lit, len);
	return wire_decode(d, &r, out) == 0 && r.off == r.len ? 0 : -1;
}

#define LIT(s) s, sizeof(s) - 1

/* Encodes m and compares with what serf writes (type byte included). */
static int writes(const struct msg_desc *d, const void *m, const char *lit, size_t len)
{
	struct wbuf w;
	int same;

	wbuf_init(&w, 65536);
	wire_encode(d, &w, m);
	same = !w.overflow && w.len == len && memcmp(w.p, lit, len) == 0;
	wbuf_free(&w);
	return same;
}

TEST(serf_push_pull_state_reads_as_serf_writes_it)
{
	/* messagePushPull after its type byte, a nil event slot among them. */
	static const char st[] = "\x86\xa5LTime\x05\xacStatusLTimes\x82\xa1" "a\x03\xa1" "b\x04"
				 "\xabLeftMembers\x91\xa1" "b\xaa" "EventLTime\x07\xa6" "Events\x92\xc0"
				 "\x82\xa5LTime\x06\xa6" "Events\x91\x82\xa4Name\xa2" "ev\xa7Payload\xa1x"
				 "\xaaQueryLTime\x02";
	struct msg_serf_state m, back;
	struct msg_status_ltime t;
	struct msg_string left;
	struct msg_event_slot slot;
	struct msg_event e;
	struct wire_iter it, eit;
	struct wbuf w;

	REQUIRE(decode_lit(&DESC_SERF_STATE, LIT(st), &m) == 0);
	CHECK(m.ltime == 5 && m.event_ltime == 7 && m.query_ltime == 2);
	CHECK_EQ_INT(m.status_ltimes.n, 2);
	wire_iter_init(&it, &m.status_ltimes);
	REQUIRE(wire_iter_next(&it, &t) == 1);
	CHECK(t.namelen == 1 && t.name[0] == 'a' && t.ltime == 3);
	REQUIRE(wire_iter_next(&it, &t) == 1);
	CHECK(t.namelen == 1 && t.name[0] == 'b' && t.ltime == 4);
	CHECK_EQ_INT(wire_iter_next(&it, &t), 0);
	wire_iter_init(&it, &m.left);
	REQUIRE(wire_iter_next(&it, &left) == 1);
	CHECK(left.len == 1 && left.p[0] == 'b');
	CHECK_EQ_INT(wire_iter_next(&it, &left), 0);
	wire_iter_init(&it, &m.events);
	REQUIRE(wire_iter_next(&it, &slot) == 1); /* nil: the zero slot */
	CHECK(slot.ltime == 0 && slot.events.n == 0);
	REQUIRE(wire_iter_next(&it, &slot) == 1);
	CHECK(slot.ltime == 6);
	wire_iter_init(&eit, &slot.events);
	REQUIRE(wire_iter_next(&eit, &e) == 1);
	CHECK(e.namelen == 2 && memcmp(e.name, "ev", 2) == 0 && e.payloadlen == 1);
	CHECK_EQ_INT(wire_validate(&DESC_PP_EVENT, &e), 0);
	CHECK_EQ_INT(wire_iter_next(&it, &slot), 0);
	/* Written again and read back: the same state. */
	REQUIRE(roundtrip(&DESC_SERF_STATE, &m, &back, &w) == 0);
	CHECK(wire_equal(&DESC_SERF_STATE, &m, &back));
	wbuf_free(&w);
	/* nil maps and lists are empty; a name that is no string, or a time
	 * that is no unsigned integer, makes the whole state malformed. */
	CHECK_EQ_INT(decode_lit(&DESC_SERF_STATE, LIT("\x83\xacStatusLTimes\xc0\xab" "LeftMembers\xc0"
						       "\xa6" "Events\xc0"), &m), 0);
	CHECK(m.status_ltimes.n == 0 && m.left.n == 0 && m.events.n == 0);
	CHECK_EQ_INT(decode_lit(&DESC_SERF_STATE, LIT("\x81\xacStatusLTimes\x81\xa1" "a\xff"), &m), -1);
	CHECK_EQ_INT(decode_lit(&DESC_SERF_STATE, LIT("\x81\xacStatusLTimes\x81\x01\x01"), &m), -1);
	CHECK_EQ_INT(decode_lit(&DESC_SERF_STATE, LIT("\x81\xab" "LeftMembers\x91\x01"), &m), -1);
	CHECK_EQ_INT(decode_lit(&DESC_SERF_STATE, LIT("\x81\xa6" "Events\x91\x81\xa6" "Events\x91\x05"),
				&m), -1);
}

static void two_tags(void *ctx, uint32_t i, void *elem)
{
	struct msg_tag *t = elem;

	(void)ctx;
	t->key = (const uint8_t *)(i ? "dc" : "role");
	t->keylen = i ? 2 : 4;
	t->val = (const uint8_t *)(i ? "x" : "web");
	t->vallen = i ? 1 : 3;
}

TEST(tags_and_conflict_answers_are_written_as_serf_writes_them)
{
	struct msg_tags tags = {.tags = {.n = 2, .item = two_tags}};
	struct msg_member m, back;
	struct msg_tag t;
	struct wire_iter it;
	struct wbuf w;

	CHECK(writes(&DESC_TAGS, &tags, LIT("\xff\x82\xa4role\xa3web\xa2" "dc\xa1x")));
	memset(&m, 0, sizeof(m));
	snprintf(m.name, sizeof(m.name), "n1");
	m.addr.len = 4;
	m.addr.b[0] = 127, m.addr.b[3] = 1;
	m.port = 7946;
	m.tags = tags.tags;
	m.status = 1;
	memcpy(m.vsn, VSN_OK, 6);
	CHECK(writes(&DESC_MEMBER, &m,
		     LIT("\x06\x8b\xa4Name\xa2n1\xa4" "Addr\xa4\x7f\x00\x00\x01\xa4Port\xcd\x1f\x0a"
			 "\xa4Tags\x82\xa4role\xa3web\xa2" "dc\xa1x\xa6Status\x01"
			 "\xabProtocolMin\x01\xabProtocolMax\x05\xabProtocolCur\x02"
			 "\xab" "DelegateMin\x02\xab" "DelegateMax\x05\xab" "DelegateCur\x04")));
	REQUIRE(roundtrip(&DESC_MEMBER, &m, &back, &w) == 0);
	CHECK(wire_equal(&DESC_MEMBER, &m, &back));
	wire_iter_init(&it, &back.tags);
	REQUIRE(wire_iter_next(&it, &t) == 1);
	CHECK(t.keylen == 4 && memcmp(t.key, "role", 4) == 0 && t.vallen == 3);
	REQUIRE(wire_iter_next(&it, &t) == 1);
	CHECK(t.keylen == 2 && memcmp(t.val, "x", 1) == 0);
	CHECK_EQ_INT(wire_iter_next(&it, &t), 0);
	wbuf_free(&w);
	/* A member without tags (nil) is taken; tags that are no map are not. */
	CHECK_EQ_INT(decode_lit(&DESC_MEMBER, LIT("\x82\xa4Name\xa2n1\xa4Tags\xc0"), &m), 0);
	CHECK_EQ_INT(decode_lit(&DESC_MEMBER, LIT("\x81\xa4Tags\x91\xa1x"), &m), -1);
}

static void one_key(void *ctx, uint32_t i, void *elem)
{
	struct msg_string *s = elem;

	(void)ctx, (void)i;
	s->p = (const uint8_t *)"k1==";
	s->len = 4;
}

TEST(key_requests_and_responses_are_serf_s)
{
	struct msg_key_response r = {.result = 1, .message = (const uint8_t *)"", .keys = {.n = 1,
		.item = one_key}, .primary = (const uint8_t *)"k1==", .primarylen = 4};
	struct msg_key_response back;
	struct msg_key_request k;
	struct msg_string key;
	struct wire_iter it;
	struct wbuf w;

	CHECK(writes(&DESC_KEY_RESPONSE, &r,
		     LIT("\x08\x84\xa6Result\xc3\xa7Message\xa0\xa4Keys\x91\xa4k1==\xaaPrimaryKey\xa4k1==")));
	REQUIRE(roundtrip(&DESC_KEY_RESPONSE, &r, &back, &w) == 0);
	CHECK(wire_equal(&DESC_KEY_RESPONSE, &r, &back));
	wire_iter_init(&it, &back.keys);
	REQUIRE(wire_iter_next(&it, &key) == 1);
	CHECK(key.len == 4 && memcmp(key.p, "k1==", 4) == 0);
	wbuf_free(&w);
	/* keyRequest {Key []byte}: Go writes the bytes as raw. */
	REQUIRE(decode_lit(&DESC_KEY_REQUEST, LIT("\x81\xa3Key\xa4\x01\x02\x03\x04"), &k) == 0);
	CHECK(k.keylen == 4 && k.key[3] == 4);
	CHECK_EQ_INT(decode_lit(&DESC_KEY_REQUEST, LIT("\x81\xa3Key\x05"), &k), -1);
	CHECK_EQ_INT(decode_lit(&DESC_KEY_RESPONSE, LIT("\x81\xa4Keys\x91\x05"), &back), -1);
}

TEST(query_filters_read_as_node_and_tag_filters)
{
	static const char q_lit[] = "\x84\xa4Name\xa1q\xa4" "Addr\xc4\x04\x7f\x00\x00\x01\xa4Port\x01"
				    "\xa7" "Filters\x92\xa4\x00\x91\xa1" "a\xb3\x01\x82\xa3Tag\xa4role\xa4"
				    "Expr\xa2^w";
	struct msg_query q, back;
	struct msg_filter f;
	struct msg_string node;
	struct wire_iter it, nit;
	struct wbuf w;

	REQUIRE(decode_lit(&DESC_QUERY, LIT(q_lit), &q) == 0);
	wire_iter_init(&it, &q.filters);
	REQUIRE(wire_iter_next(&it, &f) == 1);
	CHECK_EQ_INT(f.type, FILTER_NODE);
	wire_iter_init(&nit, &f.nodes);
	REQUIRE(wire_iter_next(&nit, &node) == 1);
	CHECK(node.len == 1 && node.p[0] == 'a');
	REQUIRE(wire_iter_next(&it, &f) == 1);
	CHECK_EQ_INT(f.type, FILTER_TAG);
	CHECK(f.taglen == 4 && memcmp(f.tag, "role", 4) == 0 && f.exprlen == 2);
	CHECK_EQ_INT(wire_iter_next(&it, &f), 0);
	REQUIRE(roundtrip(&DESC_QUERY, &q, &back, &w) == 0);
	CHECK(wire_equal(&DESC_QUERY, &q, &back));
	/* Written as serf wrote them. */
	CHECK(memmem(w.p, w.len, "\xa7" "Filters\x92\xa4\x00\x91\xa1" "a\xb3\x01\x82", 17) != NULL);
	wbuf_free(&w);
	/* nil stays nil, none at all is nil, an empty list stays empty. */
	REQUIRE(decode_lit(&DESC_QUERY, LIT("\x81\xa7" "Filters\xc0"), &q) == 0);
	{
		static const char *const lits[][2] = {
			{"\x81\xa7" "Filters\xc0", "\xa7" "Filters\xc0"},
			{"\x81\xa4Name\xa1q", "\xa7" "Filters\xc0"},
			{"\x81\xa7" "Filters\x90", "\xa7" "Filters\x90"},
		};
		for (size_t i = 0; i < 3; i++) {
			REQUIRE(decode_lit(&DESC_QUERY, lits[i][0], strlen(lits[i][0]), &q) == 0);
			wbuf_init(&w, 4096);
			wire_encode(&DESC_QUERY, &w, &q);
			CHECK(memmem(w.p, w.len, lits[i][1], strlen(lits[i][1])) != NULL);
			wbuf_free(&w);
		}
	}
	/* Bytes after a filter's value, or a node filter that is no list of strings. */
	CHECK_EQ_INT(decode_lit(&DESC_QUERY, LIT("\x81\xa7" "Filters\x91\xa3\x00\x90\x90"), &q), -1);
	CHECK_EQ_INT(decode_lit(&DESC_QUERY, LIT("\x81\xa7" "Filters\x91\xa2\x00\x05"), &q), -1);
	CHECK_EQ_INT(decode_lit(&DESC_QUERY, LIT("\x81\xa7" "Filters\x91\xa0"), &q), -1);
}

UNIT_MAIN(T(every_kind_round_trips), T(alive_needs_six_sane_version_bytes),
	  T(an_alive_with_a_short_vsn_decodes_but_does_not_validate),
	  T(tags_are_checked_and_written_as_go_msgpack_writes_them),
	  T(user_events_serf_cannot_decode_are_refused), T(query_filters_are_checked_and_written_again),
	  T(coordinates_must_be_finite_and_eight_wide),
	  T(serf_push_pull_state_reads_as_serf_writes_it),
	  T(tags_and_conflict_answers_are_written_as_serf_writes_them),
	  T(key_requests_and_responses_are_serf_s), T(query_filters_read_as_node_and_tag_filters))
