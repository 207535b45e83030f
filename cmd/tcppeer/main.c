/* tcppeer: gossip membership, wire-compatible with serf, feeding the pool file. */
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "closeout.h"
#include "log.h"
#include "options.h"

#define REAP_INTERVAL 1.0 /* how often failed and left members are checked for their timeouts */

static int run_members(const struct subcommand_line *l)
{
	int rc = control_members(l->control, l->json);

	if (close_stdout() != 0) {
		perror("tcppeer: stdout");
		rc = 2;
	}
	return rc;
}

static int run_event(const struct subcommand_line *l)
{
	return control_event(l->control, l->args[0], l->nargs > 1 ? l->args[1] : "");
}

static int run_force_leave(const struct subcommand_line *l)
{
	return control_force_leave(l->control, l->args[0]);
}

static int run_rtt(const struct subcommand_line *l)
{
	return control_rtt(l->control, l->args[0], l->nargs > 1 ? l->args[1] : NULL);
}

static const struct subcommand subcommands[] = {
	{"members", 0, 0, 1, run_members},
	{"event", 1, 2, 0, run_event},
	{"force-leave", 1, 1, 0, run_force_leave},
	{"rtt", 1, 2, 0, run_rtt},
};

/* The address we advertise: -a, else -b, else (bound to the wildcard) the
 * first IPv4 address of an interface that is up and not loopback. */
static int advertise_ip(struct peer *p, char *err)
{
	const struct addr *a = p->cfg.have_advertise ? &p->cfg.advertise : &p->cfg.bind;
	const struct sockaddr *sa = (const struct sockaddr *)&a->ss;
	struct ifaddrs *ifs, *i;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		p->self_port = ntohs(sin->sin_port);
		if (sin->sin_addr.s_addr != htonl(INADDR_ANY)) {
			memcpy(p->self_ip.b, &sin->sin_addr, 4);
			p->self_ip.len = 4;
			return 0;
		}
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		p->self_port = ntohs(sin6->sin6_port);
		if (!IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr)) {
			memcpy(p->self_ip.b, &sin6->sin6_addr, 16);
			p->self_ip.len = 16;
			return 0;
		}
	}
	if (getifaddrs(&ifs) < 0)
		return err_set(err, "bound to every address: give -a ADDR:PORT");
	for (i = ifs; i != NULL; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET)
			continue;
		if (!(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK))
			continue;
		memcpy(p->self_ip.b, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
		p->self_ip.len = 4;
		break;
	}
	freeifaddrs(ifs);
	if (p->self_ip.len == 0)
		return err_set(err, "bound to every address and no interface to advertise: give -a");
	return 0;
}

static void timer_start(struct peer *p, ev_timer *t, void (*cb)(struct ev_loop *, ev_timer *, int),
			double first, double repeat)
{
	ev_timer_init(t, cb, first, repeat);
	t->data = p;
	ev_timer_start(p->loop, t);
}

static void peer_free(struct peer *p)
{
	ev_timer_stop(p->loop, &p->probe_t);
	ev_timer_stop(p->loop, &p->gossip_t);
	ev_timer_stop(p->loop, &p->pushpull_t);
	join_close(p);
	ev_timer_stop(p->loop, &p->reconnect_t);
	ev_timer_stop(p->loop, &p->reap_t);
	leave_close(p);
	probe_stop(p);
	streams_free(p);
	probes_free(p);
	poolsync_close(p);
	snapshot_close(p);
	control_close(p);
	net_close(p);
	gossip_free(p);
	members_free(p);
	serf_events_free(p);
	intents_free(p);
	coords_free(p);
	queries_free(p);
	guard_free(p);
	keyring_stop(p);
}

int main(int argc, char **argv)
{
	static struct peer peer;
	struct peer *p = &peer;
	char err[ERR_LEN], defpath[256];
	struct timespec ts;

	for (size_t i = 0; argc > 1 && i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (strcmp(argv[1], subcommands[i].name) == 0) {
			struct subcommand_line l;

			options_subcommand(&subcommands[i], argc - 1, argv + 1, &l);
			return subcommands[i].run(&l);
		}
	options_parse(&p->cfg, argc, argv);
	signal(SIGPIPE, SIG_IGN);
	clock_gettime(CLOCK_REALTIME, &ts);
	srandom((unsigned)(ts.tv_nsec ^ ts.tv_sec ^ getpid()));

	p->loop = ev_default_loop(EVFLAG_AUTO);
	p->udp_fd = p->tcp_fd = -1;
	members_watch(p, events_member, NULL); /* the event lines come first */
	if (keyring_start(p, err) < 0 || advertise_ip(p, err) < 0 ||
	    serf_encode_tags(p, err) < 0 || net_open(p, err) < 0 ||
	    control_open(p, p->cfg.control_path ? p->cfg.control_path
						 : control_default_path(defpath, sizeof(defpath)),
			 err) < 0 ||
	    poolsync_open(p, err) < 0 || snapshot_open(p, err) < 0) {
		fprintf(stderr, "tcppeer: %s\n", err);
		peer_free(p);
		ev_loop_destroy(p->loop);
		return 2;
	}
	members_self_alive(p);
	serf_join_intent(p);
	/* Random first ticks, so members started together do not probe in step. */
	timer_start(p, &p->probe_t, probe_tick,
		    p->cfg.probe_interval * (random() % 1000) / 1000.0 + 0.001, p->cfg.probe_interval);
	timer_start(p, &p->gossip_t, gossip_tick, p->cfg.gossip_interval, p->cfg.gossip_interval);
	timer_start(p, &p->pushpull_t, pushpull_tick, pushpull_first(p), p->cfg.pushpull_interval);
	if (join_open(p, err) < 0) {
		fprintf(stderr, "tcppeer: %s\n", err);
		peer_free(p);
		ev_loop_destroy(p->loop);
		return 2;
	}
	timer_start(p, &p->reconnect_t, reconnect_tick,
		    p->cfg.reconnect_interval * (random() % 1000) / 1000.0 + 0.001,
		    p->cfg.reconnect_interval);
	timer_start(p, &p->reap_t, reap_tick, REAP_INTERVAL, REAP_INTERVAL);
	if (leave_open(p, err) < 0) {
		fprintf(stderr, "tcppeer: %s\n", err);
		peer_free(p);
		ev_loop_destroy(p->loop);
		return 2;
	}
	log_info("%s listening on %s", p->cfg.name,
		 addr_format((struct sockaddr *)&p->cfg.bind.ss, defpath, sizeof(defpath)));

	ev_run(p->loop, 0);

	peer_free(p);
	ev_loop_destroy(p->loop);
	/* Event lines that could not be written make the exit status say so. */
	return close_stdout() == 0 ? 0 : 2;
}
