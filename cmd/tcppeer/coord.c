/* Network coordinates as serf's coordinate package computes them (Vivaldi
 * with height, an adjustment window and gravity; the same defaults), so
 * that `serf rtt` and `tcppeer rtt` estimate round trips between any two
 * members. Our coordinate rides in our ping acks as serf's ping delegate
 * puts it there (a version byte, 1, then the msgpack Coordinate); the one in
 * a serf agent's or another node's ack, with the round trip of a direct
 * probe answered within the probe timeout, moves ours and is kept as that
 * member's. The module keeps its own state: our coordinate, the adjustment
 * samples, and per member the latency filter and the last coordinate. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tcppeer.h"

/* serf's coordinate.DefaultConfig(). */
#define DIM COORD_DIM_MAX
#define VIVALDI_ERROR_MAX 1.5
#define VIVALDI_CE 0.25
#define VIVALDI_CC 0.25
#define ADJUSTMENT_WINDOW 20
#define HEIGHT_MIN 10.0e-6
#define LATENCY_FILTER 3
#define GRAVITY_RHO 150.0
#define ZERO_THRESHOLD 1.0e-6
#define RTT_MAX 10.0 /* serf's maxRTT */
#define PING_VERSION 1

struct coord_peer {
	char name[PEER_NAME_MAX + 1];
	double samples[LATENCY_FILTER];
	int nsamples;
	struct msg_coord coord;
	int have;
};

struct coords {
	struct msg_coord self, origin;
	double adjustment[ADJUSTMENT_WINDOW];
	unsigned adj_index;
	struct coord_peer *peers;
	size_t npeers, cap;
	uint64_t updates, rejected, resets;
};

static void coord_new(struct msg_coord *c)
{
	memset(c, 0, sizeof(*c));
	c->dim = DIM;
	c->error = VIVALDI_ERROR_MAX;
	c->height = HEIGHT_MIN;
}

static struct coords *coords(struct peer *p)
{
	if (p->coords == NULL) {
		p->coords = calloc(1, sizeof(*p->coords));
		if (p->coords != NULL) {
			coord_new(&p->coords->self);
			coord_new(&p->coords->origin);
		}
	}
	return p->coords;
}

static double magnitude_diff(const struct msg_coord *a, const struct msg_coord *b)
{
	double sum = 0;

	for (int i = 0; i < DIM; i++)
		sum += (a->vec[i] - b->vec[i]) * (a->vec[i] - b->vec[i]);
	return sqrt(sum);
}

static double raw_distance(const struct msg_coord *a, const struct msg_coord *b)
{
	return magnitude_diff(a, b) + a->height + b->height;
}

double coord_distance(const struct msg_coord *a, const struct msg_coord *b)
{
	double dist = raw_distance(a, b), adjusted = dist + a->adjustment + b->adjustment;

	return adjusted > 0.0 ? adjusted : dist;
}

/* ApplyForce: c moved by force along the unit vector from other to c. */
static void apply_force(struct msg_coord *c, double force, const struct msg_coord *other)
{
	double unit[DIM], mag = magnitude_diff(c, other);

	if (mag > ZERO_THRESHOLD) {
		for (int i = 0; i < DIM; i++)
			unit[i] = (c->vec[i] - other->vec[i]) / mag;
	} else {
		/* On top of each other: a random direction, as serf picks one. */
		double m = 0;

		for (int i = 0; i < DIM; i++) {
			unit[i] = (double)random() / RAND_MAX - 0.5;
			m += unit[i] * unit[i];
		}
		m = sqrt(m);
		for (int i = 0; i < DIM; i++)
			unit[i] = m > ZERO_THRESHOLD ? unit[i] / m : (i == 0);
		mag = 0.0;
	}
	for (int i = 0; i < DIM; i++)
		c->vec[i] += unit[i] * force;
	if (mag > ZERO_THRESHOLD) {
		c->height = (c->height + other->height) * force / mag + c->height;
		if (c->height < HEIGHT_MIN)
			c->height = HEIGHT_MIN;
	}
}

static int coord_valid(const struct msg_coord *c)
{
	return wire_validate(&DESC_COORD, (void *)c) == 0;
}

static struct coord_peer *peer_entry(struct coords *cs, const char *name, int create)
{
	for (size_t i = 0; i < cs->npeers; i++)
		if (strcmp(cs->peers[i].name, name) == 0)
			return &cs->peers[i];
	if (!create || cs->npeers >= MEMBERS_MAX)
		return NULL;
	if (cs->npeers == cs->cap) {
		size_t cap = cs->cap ? 2 * cs->cap : 16;
		struct coord_peer *np = realloc(cs->peers, cap * sizeof(*np));

		if (np == NULL)
			return NULL;
		cs->peers = np;
		cs->cap = cap;
	}
	memset(&cs->peers[cs->npeers], 0, sizeof(cs->peers[0]));
	snprintf(cs->peers[cs->npeers].name, PEER_NAME_MAX + 1, "%s", name);
	return &cs->peers[cs->npeers++];
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* latencyFilter: the median of the last three round trips to that member. */
static double latency_filter(struct coord_peer *e, double rtt)
{
	double sorted[LATENCY_FILTER];

	if (e->nsamples == LATENCY_FILTER) {
		memmove(e->samples, e->samples + 1, (LATENCY_FILTER - 1) * sizeof(double));
		e->nsamples--;
	}
	e->samples[e->nsamples++] = rtt;
	memcpy(sorted, e->samples, (size_t)e->nsamples * sizeof(double));
	qsort(sorted, (size_t)e->nsamples, sizeof(double), dbl_cmp);
	return sorted[e->nsamples / 2];
}

static void update_vivaldi(struct msg_coord *c, const struct msg_coord *other, double rtt)
{
	double dist = coord_distance(c, other), wrongness, total, weight, delta;

	if (rtt < ZERO_THRESHOLD)
		rtt = ZERO_THRESHOLD;
	wrongness = fabs(dist - rtt) / rtt;
	total = c->error + other->error;
	if (total < ZERO_THRESHOLD)
		total = ZERO_THRESHOLD;
	weight = c->error / total;
	c->error = VIVALDI_CE * weight * wrongness + c->error * (1.0 - VIVALDI_CE * weight);
	if (c->error > VIVALDI_ERROR_MAX)
		c->error = VIVALDI_ERROR_MAX;
	delta = VIVALDI_CC * weight;
	apply_force(c, delta * (rtt - dist), other);
}

static void update_adjustment(struct coords *cs, const struct msg_coord *other, double rtt)
{
	double sum = 0;

	cs->adjustment[cs->adj_index] = rtt - raw_distance(&cs->self, other);
	cs->adj_index = (cs->adj_index + 1) % ADJUSTMENT_WINDOW;
	for (int i = 0; i < ADJUSTMENT_WINDOW; i++)
		sum += cs->adjustment[i];
	cs->self.adjustment = sum / (2.0 * ADJUSTMENT_WINDOW);
}

static void update_gravity(struct coords *cs)
{
	double dist = coord_distance(&cs->origin, &cs->self);

	apply_force(&cs->self, -1.0 * pow(dist / GRAVITY_RHO, 2.0), &cs->origin);
}

int coord_update(struct peer *p, const char *node, const struct msg_coord *other, double rtt)
{
	struct coords *cs = coords(p);
	struct coord_peer *e;
	double filtered;

	if (cs == NULL)
		return -1;
	if (!coord_valid(other) || rtt < 0 || rtt > RTT_MAX) {
		cs->rejected++;
		return -1;
	}
	e = peer_entry(cs, node, 1);
	if (e == NULL)
		return -1;
	filtered = latency_filter(e, rtt);
	update_vivaldi(&cs->self, other, filtered);
	update_adjustment(cs, other, filtered);
	update_gravity(cs);
	if (!coord_valid(&cs->self)) {
		cs->resets++;
		coord_new(&cs->self);
	}
	e->coord = *other;
	e->have = 1;
	cs->updates++;
	return 0;
}

void coord_ack_payload(struct peer *p, struct wbuf *w)
{
	struct coords *cs = coords(p);

	if (cs == NULL)
		return;
	wbuf_byte(w, PING_VERSION);
	wire_encode(&DESC_COORD, w, &cs->self);
}

void coord_from_ack(struct peer *p, const char *node, const uint8_t *payload, size_t len,
		    double rtt)
{
	struct mp_reader r;
	struct msg_coord c;

	if (len == 0)
		return; /* an old memberlist, or a relayed ack */
	if (payload[0] != PING_VERSION) {
		log_debug("ack from '%s': unsupported ping version %u", node, payload[0]);
		return;
	}
	mp_reader_init(&r, payload + 1, len - 1);
	if (wire_decode(&DESC_COORD, &r, &c) < 0 || coord_update(p, node, &c, rtt) < 0)
		log_debug("ack from '%s': coordinate refused", node);
}

int coord_of(struct peer *p, const char *node, struct msg_coord *out)
{
	struct coords *cs = coords(p);
	struct coord_peer *e;

	if (cs == NULL)
		return -1;
	if (strcmp(node, p->cfg.name) == 0) {
		*out = cs->self;
		return 0;
	}
	e = peer_entry(cs, node, 0);
	if (e == NULL || !e->have)
		return -1;
	*out = e->coord;
	return 0;
}

void coord_forget(struct peer *p, const char *node)
{
	struct coords *cs = p->coords;

	for (size_t i = 0; cs != NULL && i < cs->npeers; i++)
		if (strcmp(cs->peers[i].name, node) == 0) {
			cs->peers[i] = cs->peers[--cs->npeers];
			return;
		}
}

void coords_free(struct peer *p)
{
	if (p->coords != NULL)
		free(p->coords->peers);
	free(p->coords);
	p->coords = NULL;
}
