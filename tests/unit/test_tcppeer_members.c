/* tcppeer's membership state machine: alive, suspect, dead and left;
 * incarnations and refutation; suspicion, reconnect and reap timers; serf's
 * intents on top. A node without sockets: what it would send is looked at
 * in its broadcast queue, what it would print through a membership watcher. */
#include <ev.h>

#include "tcppeer.h"
#include "unit.h"

static struct peer peer;
static char events[4096];

static void record(void *ctx, const char *event, const struct node *n)
{
	size_t len = strlen(events);

	(void)ctx;
	snprintf(events + len, sizeof(events) - len, "%s %s;", event, n->name);
}

static struct peer *fresh(void)
{
	struct peer *p = &peer;

	members_free(p);
	gossip_free(p);
	intents_free(p);
	streams_free(p);
	queries_free(p);
	serf_events_free(p);
	probes_free(p);
	guard_free(p);
	memset(p, 0, sizeof(*p));
	events[0] = '\0';
	p->loop = ev_default_loop(0);
	p->udp_fd = p->tcp_fd = -1;
	p->cfg.name = "self";
	p->cfg.probe_interval = 0.01; /* suspicions of 40 ms */
	p->cfg.probe_timeout = 0.005;
	p->cfg.gossip_interval = 0.2;
	p->cfg.gossip_nodes = 3;
	p->cfg.retransmit_mult = 4;
	p->cfg.suspicion_mult = 4;
	p->cfg.suspicion_max_mult = 6;
	p->cfg.gossip_to_dead = 30.0;
	p->cfg.tcp_timeout = 1.0;
	p->cfg.reconnect_interval = 30.0;
	p->cfg.reconnect_timeout = 3600.0;
	p->cfg.tombstone_timeout = 60.0;
	p->cfg.awareness_max = 8;
	p->self_ip.len = 4;
	p->self_ip.b[0] = 127, p->self_ip.b[3] = 1;
	p->self_port = 7946;
	members_watch(p, record, NULL);
	members_self_alive(p);
	events[0] = '\0';
	return p;
}

static void alive_of(struct msg_alive *a, const char *name, uint32_t inc, const char *role)
{
	static const uint8_t vsn[6] = VSN_INIT;

	memset(a, 0, sizeof(*a));
	a->inc = inc;
	snprintf(a->node, sizeof(a->node), "%s", name);
	a->addr.len = 4;
	a->addr.b[0] = 127, a->addr.b[2] = 9, a->addr.b[3] = 1;
	a->port = 1; /* nobody there */
	a->meta[0] = 0xff;
	a->meta[1] = 0x81;
	a->meta[2] = 0xa4;
	memcpy(a->meta + 3, "role", 4);
	a->meta[7] = (uint8_t)(0xa0 | strlen(role));
	memcpy(a->meta + 8, role, strlen(role));
	a->metalen = (uint16_t)(8 + strlen(role));
	memcpy(a->vsn, vsn, 6);
	a->vsnlen = 6;
}

static void accuse(struct msg_accuse *m, const char *node, uint32_t inc, const char *from)
{
	memset(m, 0, sizeof(*m));
	m->inc = inc;
	snprintf(m->node, sizeof(m->node), "%s", node);
	snprintf(m->from, sizeof(m->from), "%s", from);
}

static enum node_state_type state_of(const char *name)
{
	struct node *n = members_find(&peer, name);

	return n ? n->state : (enum node_state_type)-1;
}

TEST(alive_joins_and_a_newer_incarnation_updates)
{
	struct peer *p = fresh();
	struct msg_alive a;

	alive_of(&a, "web1", 1, "web");
	members_alive(p, &a, 0);
	CHECK_EQ_INT(state_of("web1"), STATE_ALIVE);
	CHECK_STR(events, "member-join web1;");
	CHECK(gossip_queued(p) >= 1); /* passed on */
	/* The same incarnation with other tags is old news. */
	alive_of(&a, "web1", 1, "db");
	members_alive(p, &a, 0);
	CHECK_STR(events, "member-join web1;");
	alive_of(&a, "web1", 2, "db");
	members_alive(p, &a, 0);
	CHECK_STR(events, "member-join web1;member-update web1;");
	CHECK_EQ_INT(members_find(p, "web1")->inc, 2);
}

TEST(suspicion_times_out_into_failed)
{
	struct peer *p = fresh();
	struct msg_alive a;
	struct msg_accuse s;

	alive_of(&a, "web1", 3, "web");
	members_alive(p, &a, 0);
	/* An older accusation is ignored. */
	accuse(&s, "web1", 2, "other");
	members_suspect(p, &s);
	CHECK_EQ_INT(state_of("web1"), STATE_ALIVE);
	accuse(&s, "web1", 3, "other");
	members_suspect(p, &s);
	CHECK_EQ_INT(state_of("web1"), STATE_SUSPECT);
	/* 4 x 10 ms at the least, 6 times that without confirmations. */
	for (int i = 0; i < 200 && state_of("web1") == STATE_SUSPECT; i++)
		ev_run(p->loop, EVRUN_ONCE);
	CHECK_EQ_INT(state_of("web1"), STATE_DEAD);
	CHECK_CONTAINS(events, "member-failed web1;");
	CHECK_STR(members_status_name(STATE_DEAD), "failed");
}

TEST(an_alive_refutes_a_suspicion)
{
	struct peer *p = fresh();
	struct msg_alive a;
	struct msg_accuse s;

	alive_of(&a, "web1", 3, "web");
	members_alive(p, &a, 0);
	accuse(&s, "web1", 3, "other");
	members_suspect(p, &s);
	alive_of(&a, "web1", 4, "web");
	members_alive(p, &a, 0);
	CHECK_EQ_INT(state_of("web1"), STATE_ALIVE);
	CHECK(members_find(p, "web1")->susp == NULL);
}

TEST(we_refute_suspect_and_dead_about_ourselves)
{
	struct peer *p = fresh();
	struct msg_accuse s;
	uint32_t before = p->incarnation;

	accuse(&s, "self", 7, "other");
	members_suspect(p, &s);
	CHECK_EQ_INT(state_of("self"), STATE_ALIVE);
	CHECK_EQ_INT(p->incarnation, 8); /* above the accusation */
	CHECK(p->incarnation > before);
	CHECK_EQ_INT(p->stats.refuted, 1);
	accuse(&s, "self", 8, "other");
	members_dead(p, &s);
	CHECK_EQ_INT(state_of("self"), STATE_ALIVE);
	CHECK_EQ_INT(p->incarnation, 9);
	CHECK(gossip_queued(p) >= 1);
}

TEST(dead_from_itself_is_left)
{
	struct peer *p = fresh();
	struct msg_alive a;
	struct msg_accuse d;

	alive_of(&a, "web1", 1, "web");
	members_alive(p, &a, 0);
	alive_of(&a, "web2", 1, "web");
	members_alive(p, &a, 0);
	accuse(&d, "web1", 1, "web1");
	members_dead(p, &d);
	accuse(&d, "web2", 1, "self");
	members_dead(p, &d);
	CHECK_EQ_INT(state_of("web1"), STATE_LEFT);
	CHECK_EQ_INT(state_of("web2"), STATE_DEAD);
	CHECK_CONTAINS(events, "member-leave web1;member-failed web2;");
}

TEST(a_failed_member_comes_back_only_newer_until_memberlist_would_forget_it)
{
	struct peer *p = fresh();
	struct msg_alive a;
	struct msg_accuse d;

	alive_of(&a, "web1", 5, "web");
	members_alive(p, &a, 0);
	accuse(&d, "web1", 5, "self");
	members_dead(p, &d);
	/* A restart says incarnation 1: stale while the death is recent... */
	alive_of(&a, "web1", 1, "web");
	members_alive(p, &a, 0);
	CHECK_EQ_INT(state_of("web1"), STATE_DEAD);
	/* ...news once memberlist would have forgotten the dead member. */
	members_find(p, "web1")->state_change -= 31.0;
	members_alive(p, &a, 0);
	CHECK_EQ_INT(state_of("web1"), STATE_ALIVE);
	CHECK_CONTAINS(events, "member-failed web1;member-join web1;");
}

TEST(reap_keeps_failed_for_the_reconnect_timeout_and_left_for_the_tombstone_timeout)
{
	struct peer *p = fresh();
	struct msg_alive a;
	struct msg_accuse d;

	alive_of(&a, "failed1", 1, "x");
	members_alive(p, &a, 0);
	alive_of(&a, "left1", 1, "x");
	members_alive(p, &a, 0);
	accuse(&d, "failed1", 1, "self");
	members_dead(p, &d);
	accuse(&d, "left1", 1, "left1");
	members_dead(p, &d);
	/* Past the gossip-to-the-dead time: memberlist would forget; we keep. */
	members_find(p, "failed1")->state_change -= 100.0;
	members_find(p, "left1")->state_change -= 59.0;
	members_reap(p);
	CHECK_EQ_INT(state_of("failed1"), STATE_DEAD);
	CHECK_EQ_INT(state_of("left1"), STATE_LEFT);
	CHECK_EQ_INT(members_count(p, STATE_DEAD), 1);
	members_find(p, "left1")->state_change -= 2.0;
	members_reap(p);
	CHECK(members_find(p, "left1") == NULL);
	CHECK_EQ_INT(state_of("failed1"), STATE_DEAD);
	members_find(p, "failed1")->state_change -= 3600.0;
	members_reap(p);
	CHECK(members_find(p, "failed1") == NULL);
	CHECK(members_find(p, "self") != NULL);
}

TEST(reconnect_tries_a_failed_member_however_many_are_alive)
{
	struct peer *p = fresh();
	struct msg_alive a;
	struct msg_accuse d;
	ev_timer t;

	alive_of(&a, "up1", 1, "x");
	members_alive(p, &a, 0);
	alive_of(&a, "down1", 1, "x");
	members_alive(p, &a, 0);
	accuse(&d, "down1", 1, "self");
	members_dead(p, &d);
	p->cfg.bind.ss.ss_family = AF_INET;
	t.data = p;
	/* 1 failed, 2 alive (us included): tried about every other interval. */
	for (int i = 0; i < 64 && streams_outbound(p) == 0; i++)
		reconnect_tick(p->loop, &t, 0);
	CHECK_EQ_INT(streams_outbound(p), 1);
	CHECK_EQ_INT(p->stats.streams_out, 1);
	streams_free(p);
}

TEST(leave_intents_make_a_failed_member_left_and_an_alive_one_leaving)
{
	struct peer *p = fresh();
	struct msg_alive a;
	struct msg_accuse d;
	struct msg_intent in;

	alive_of(&a, "gone", 1, "x");
	members_alive(p, &a, 0);
	accuse(&d, "gone", 1, "self");
	members_dead(p, &d);
	memset(&in, 0, sizeof(in));
	snprintf(in.node, sizeof(in.node), "gone");
	in.ltime = 5;
	CHECK_EQ_INT(intent_leave(p, &in), 1);
	CHECK_EQ_INT(state_of("gone"), STATE_LEFT);
	CHECK_CONTAINS(events, "member-failed gone;member-leave gone;");
	CHECK_EQ_INT(intent_leave(p, &in), 0); /* not newer: not passed on again */
	CHECK(p->ltime > 5);                   /* witnessed */

	alive_of(&a, "going", 1, "x");
	members_alive(p, &a, 0);
	in.ltime = 6;
	snprintf(in.node, sizeof(in.node), "going");
	CHECK_EQ_INT(intent_leave(p, &in), 1);
	CHECK_EQ_INT(state_of("going"), STATE_ALIVE);
	CHECK(members_find(p, "going")->leaving);
	/* A newer join undoes it; an older one does nothing. */
	in.ltime = 6;
	CHECK_EQ_INT(intent_join(p, &in), 0);
	in.ltime = 7;
	CHECK_EQ_INT(intent_join(p, &in), 1);
	CHECK(!members_find(p, "going")->leaving);
	in.ltime = 8;
	intent_leave(p, &in);
	/* Its death after its leave intent is a leave. */
	accuse(&d, "going", 1, "self");
	members_dead(p, &d);
	CHECK_EQ_INT(state_of("going"), STATE_LEFT);
}

TEST(an_intent_about_an_unknown_member_waits_for_it)
{
	struct peer *p = fresh();
	struct msg_alive a;
	struct msg_intent in;

	memset(&in, 0, sizeof(in));
	snprintf(in.node, sizeof(in.node), "later");
	in.ltime = 9;
	CHECK_EQ_INT(intent_leave(p, &in), 1);
	CHECK_EQ_INT(intent_leave(p, &in), 0);
	alive_of(&a, "later", 1, "x");
	members_alive(p, &a, 0);
	CHECK(members_find(p, "later")->leaving);
	CHECK_EQ_INT(members_find(p, "later")->status_ltime, 9);
}

TEST(a_leave_intent_about_us_is_answered_with_a_newer_join)
{
	struct peer *p = fresh();
	struct msg_intent in;
	uint64_t before;

	serf_join_intent(p);
	before = p->join_ltime;
	memset(&in, 0, sizeof(in));
	snprintf(in.node, sizeof(in.node), "self");
	in.ltime = before + 3;
	CHECK_EQ_INT(intent_leave(p, &in), 0);
	CHECK(p->join_ltime > in.ltime);
	CHECK_EQ_INT(state_of("self"), STATE_ALIVE);
}

TEST(force_leave_refuses_our_own_name)
{
	struct peer *p = fresh();
	char err[ERR_LEN];

	CHECK_EQ_INT(intent_force_leave(p, "self", 0, err), -1);
	CHECK_CONTAINS(err, "this node");
	CHECK_EQ_INT(intent_force_leave(p, "nobody", 0, err), 0);
}

TEST(coordinates_converge_on_a_steady_round_trip)
{
	struct peer *p = fresh();
	struct msg_coord other, mine;

	memset(&other, 0, sizeof(other));
	other.dim = COORD_DIM_MAX;
	other.error = 1.5;
	other.height = 10e-6;
	other.vec[0] = 0.001;
	/* serf's client, fed 10 ms round trips to a still node, estimates 10 ms. */
	for (int i = 0; i < 500; i++)
		REQUIRE(coord_update(p, "other", &other, 0.010) == 0);
	REQUIRE(coord_of(p, "self", &mine) == 0);
	CHECK(coord_distance(&mine, &other) > 0.008 && coord_distance(&mine, &other) < 0.012);
	CHECK(mine.error < 1.5);
	/* Refused as serf refuses them. */
	CHECK_EQ_INT(coord_update(p, "other", &other, 11.0), -1);
	other.vec[2] = 1.0 / 0.0;
	CHECK_EQ_INT(coord_update(p, "other", &other, 0.01), -1);
	coords_free(p);
}

UNIT_MAIN(T(alive_joins_and_a_newer_incarnation_updates), T(suspicion_times_out_into_failed),
	  T(an_alive_refutes_a_suspicion), T(we_refute_suspect_and_dead_about_ourselves),
	  T(dead_from_itself_is_left),
	  T(a_failed_member_comes_back_only_newer_until_memberlist_would_forget_it),
	  T(reap_keeps_failed_for_the_reconnect_timeout_and_left_for_the_tombstone_timeout),
	  T(reconnect_tries_a_failed_member_however_many_are_alive),
	  T(leave_intents_make_a_failed_member_left_and_an_alive_one_leaving),
	  T(an_intent_about_an_unknown_member_waits_for_it),
	  T(a_leave_intent_about_us_is_answered_with_a_newer_join),
	  T(force_leave_refuses_our_own_name), T(coordinates_converge_on_a_steady_round_trip))
