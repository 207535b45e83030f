/* tcppeer: gossip membership, wire-compatible with serf, feeding the pool file. */
#include <getopt.h>
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
#include "num.h"
#include "tcppeer.h"

static const char usage_text[] =
	"usage: tcppeer -n NAME -b ADDR:PORT [-a ADDR:PORT] [-j SEED]... [-t KEY=VALUE]...\n"
	"               [--pool FILE --service-tag TAG [--zone-tag TAG]] [--keyring FILE]\n"
	"               [--allow CIDR]...\n"
	"               [--control PATH] [--snapshot FILE]\n"
	"       tcppeer members [--control PATH] [--json]\n"
	"       tcppeer event [--control PATH] NAME [PAYLOAD]\n"
	"       tcppeer force-leave [--control PATH] NAME\n"
	"       tcppeer rtt [--control PATH] NODE [NODE]\n";

static const char help_text[] =
	"\n"
	"Keep cluster membership by gossip (memberlist's SWIM with Lifeguard, as serf\n"
	"speaks it) and print one line per change on stdout:\n"
	"  member-join|member-update|member-leave|member-failed NAME ADDR:PORT key=value...\n"
	"  user-event NAME PAYLOAD\n"
	"\n"
	"  -n NAME            this node's name, unique in the cluster\n"
	"  -b ADDR:PORT       bind UDP and TCP here\n"
	"  -a ADDR:PORT       address other members reach us at (default: -b)\n"
	"  -j SEED            ADDR:PORT of a member to join through; may be repeated\n"
	"  -t KEY=VALUE       a tag, shown by serf members; may be repeated\n"
	"      --pool FILE    keep a [backend NAME] section in FILE for every alive\n"
	"      --service-tag TAG\n"
	"                     member whose tag TAG is HOST:PORT\n"
	"      --zone-tag TAG its zone key from the member's tag TAG (none without it)\n"
	"      --keyring FILE encrypt with AES-GCM as serf -encrypt: base64 keys, one\n"
	"                     per line, the first sends; SIGHUP re-reads the file\n"
	"      --allow CIDR   accept packets and streams only from these networks;\n"
	"                     may be repeated\n"
	"      --snapshot FILE keep members and clocks in FILE, as serf -snapshot: a\n"
	"                     restart rejoins the members it knew\n"
	"      --control PATH control socket (default: $XDG_RUNTIME_DIR/tcppeer.sock,\n"
	"                     else /tmp/tcppeer-UID.sock)\n"
	"  -v                 log debug messages (dropped packets and more)\n"
	"  -h, --help         show this help\n"
	"      --version      show the version\n"
	"\n"
	"Timings (memberlist's LAN profile by default; durations take ms, s, m, h):\n"
	"      --probe-interval D (1s)     --probe-timeout D (500ms)\n"
	"      --gossip-interval D (200ms) --gossip-nodes N (3)\n"
	"      --indirect-checks N (3)     --retransmit-mult N (4)\n"
	"      --suspicion-mult N (4)      --suspicion-max-mult N (6)\n"
	"      --pushpull-interval D (30s) --gossip-to-dead D (30s)\n"
	"      --tcp-timeout D (10s)       --leave-timeout D (3s)\n"
	"      --pool-delay D (150ms)\n"
	"      --reconnect-interval D (30s) how often a failed member is tried again\n"
	"      --reconnect-timeout D (24h)  how long a failed member is kept and tried\n"
	"      --tombstone-timeout D (24h)  how long a left member is kept\n"
	"\n"
	"  tcppeer members    list a running node's members: NAME, ADDR:PORT, STATUS\n"
	"                     (alive, suspect, failed, left) and TAGS, tab-separated\n"
	"      --json         the same as JSON, with the node's counters\n"
	"  tcppeer event NAME [PAYLOAD]\n"
	"                     send a serf user event to the cluster through the node\n"
	"  tcppeer force-leave NAME\n"
	"                     mark a failed member left everywhere, as serf force-leave\n"
	"  tcppeer rtt NODE [NODE]\n"
	"                     the round trip estimated from network coordinates, as\n"
	"                     serf rtt (one node: from the node at the control socket)\n";

#define REAP_INTERVAL 1.0 /* how often failed and left members are checked for their timeouts */

static void usage(void)
{
	fputs(usage_text, stderr);
	exit(2);
}

static int run_members(int argc, char **argv)
{
	enum { OPT_CONTROL = 256, OPT_JSON };
	static const struct option longopts[] = {
		{"control", required_argument, NULL, OPT_CONTROL},
		{"json", no_argument, NULL, OPT_JSON},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char defpath[256];
	const char *path = NULL;
	int ch, json = 0, rc;

	argv[0] = (char *)"tcppeer: members"; /* for getopt's messages */
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_CONTROL:
			path = optarg;
			break;
		case OPT_JSON:
			json = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return close_stdout() == 0 ? 0 : 2;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	rc = control_members(path ? path : control_default_path(defpath, sizeof(defpath)), json);
	if (close_stdout() != 0) {
		perror("tcppeer: stdout");
		rc = 2;
	}
	return rc;
}

static int run_event(int argc, char **argv)
{
	enum { OPT_CONTROL = 256 };
	static const struct option longopts[] = {
		{"control", required_argument, NULL, OPT_CONTROL},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char defpath[256];
	const char *path = NULL;
	int ch;

	argv[0] = (char *)"tcppeer: event"; /* for getopt's messages */
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_CONTROL:
			path = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return close_stdout() == 0 ? 0 : 2;
		default:
			usage();
		}
	}
	if (argc - optind < 1 || argc - optind > 2)
		usage();
	return control_event(path ? path : control_default_path(defpath, sizeof(defpath)),
			     argv[optind], optind + 1 < argc ? argv[optind + 1] : "");
}

#define DAY_MS (24ull * 3600 * 1000)

static void opt_duration_max(const char *name, const char *arg, uint64_t max_ms, double *out)
{
	char err[ERR_LEN];
	uint64_t ms;

	if (duration_parse(arg, 1, max_ms, &ms, err) < 0) {
		fprintf(stderr, "tcppeer: --%s: %s\n", name, err);
		exit(2);
	}
	*out = (double)ms / 1000.0;
}

/* force-leave NAME and rtt NODE [NODE]: the control socket and 1 or 2 names. */
static int run_names(int argc, char **argv, int max)
{
	enum { OPT_CONTROL = 256 };
	static const struct option longopts[] = {
		{"control", required_argument, NULL, OPT_CONTROL},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char defpath[256];
	const char *path = NULL;
	int ch;

	argv[0] = (char *)(max == 1 ? "tcppeer: force-leave" : "tcppeer: rtt"); /* for getopt */
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_CONTROL:
			path = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return close_stdout() == 0 ? 0 : 2;
		default:
			usage();
		}
	}
	if (argc - optind < 1 || argc - optind > max)
		usage();
	if (path == NULL)
		path = control_default_path(defpath, sizeof(defpath));
	if (max == 1)
		return control_force_leave(path, argv[optind]);
	return control_rtt(path, argv[optind], optind + 1 < argc ? argv[optind + 1] : NULL);
}

static void opt_duration(const char *name, const char *arg, double *out)
{
	opt_duration_max(name, arg, DAY_MS, out);
}

static int opt_int(const char *name, const char *arg, long long min, long long max)
{
	char err[ERR_LEN];
	long long v;

	if (num_parse(arg, min, max, &v, err) < 0) {
		fprintf(stderr, "tcppeer: %s: %s\n", name, err);
		exit(2);
	}
	return (int)v;
}

static void opt_addr(const char *name, const char *arg, struct addr *out)
{
	char err[ERR_LEN];

	if (addr_parse(arg, 0, out, err) < 0) {
		fprintf(stderr, "tcppeer: %s: %s\n", name, err);
		exit(2);
	}
}

static void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->probe_interval = 1.0;
	c->probe_timeout = 0.5;
	c->gossip_interval = 0.2;
	c->gossip_nodes = 3;
	c->indirect_checks = 3;
	c->retransmit_mult = 4;
	c->suspicion_mult = 4;
	c->suspicion_max_mult = 6;
	c->pushpull_interval = 30.0;
	c->gossip_to_dead = 30.0;
	c->tcp_timeout = 10.0;
	c->leave_timeout = 3.0;
	c->pool_delay = 0.15;
	c->reconnect_interval = 30.0;       /* serf's ReconnectInterval */
	c->reconnect_timeout = 24 * 3600.0; /* serf's ReconnectTimeout */
	c->tombstone_timeout = 24 * 3600.0; /* serf's TombstoneTimeout */
	c->awareness_max = 8;
}

static void parse_tag(struct config *c, char *arg)
{
	char *eq = strchr(arg, '=');

	if (eq == NULL || eq == arg) {
		fprintf(stderr, "tcppeer: -t: '%s' is not KEY=VALUE\n", arg);
		exit(2);
	}
	*eq = '\0';
	for (int i = 0; i < c->ntags; i++)
		if (strcmp(c->tag_key[i], arg) == 0) {
			fprintf(stderr, "tcppeer: -t: tag '%s' given twice\n", arg);
			exit(2);
		}
	if (c->ntags == TAGS_MAX) {
		fprintf(stderr, "tcppeer: -t: more than %d tags\n", TAGS_MAX);
		exit(2);
	}
	c->tag_key[c->ntags] = arg;
	c->tag_val[c->ntags++] = eq + 1;
}

static void parse_options(struct config *c, int argc, char **argv)
{
	enum {
		OPT_VERSION = 256, OPT_POOL, OPT_SERVICE_TAG, OPT_CONTROL, OPT_PROBE_INTERVAL,
		OPT_PROBE_TIMEOUT, OPT_GOSSIP_INTERVAL, OPT_GOSSIP_NODES, OPT_INDIRECT,
		OPT_RETRANSMIT, OPT_SUSPICION, OPT_SUSPICION_MAX, OPT_PUSHPULL, OPT_TO_DEAD,
		OPT_TCP_TIMEOUT, OPT_LEAVE_TIMEOUT, OPT_POOL_DELAY, OPT_KEYRING, OPT_ALLOW,
		OPT_RECONNECT_INTERVAL, OPT_RECONNECT_TIMEOUT, OPT_TOMBSTONE_TIMEOUT, OPT_SNAPSHOT,
		OPT_ZONE_TAG,
	};
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, OPT_VERSION},
		{"pool", required_argument, NULL, OPT_POOL},
		{"service-tag", required_argument, NULL, OPT_SERVICE_TAG},
		{"zone-tag", required_argument, NULL, OPT_ZONE_TAG},
		{"control", required_argument, NULL, OPT_CONTROL},
		{"keyring", required_argument, NULL, OPT_KEYRING},
		{"snapshot", required_argument, NULL, OPT_SNAPSHOT},
		{"allow", required_argument, NULL, OPT_ALLOW},
		{"probe-interval", required_argument, NULL, OPT_PROBE_INTERVAL},
		{"probe-timeout", required_argument, NULL, OPT_PROBE_TIMEOUT},
		{"gossip-interval", required_argument, NULL, OPT_GOSSIP_INTERVAL},
		{"gossip-nodes", required_argument, NULL, OPT_GOSSIP_NODES},
		{"indirect-checks", required_argument, NULL, OPT_INDIRECT},
		{"retransmit-mult", required_argument, NULL, OPT_RETRANSMIT},
		{"suspicion-mult", required_argument, NULL, OPT_SUSPICION},
		{"suspicion-max-mult", required_argument, NULL, OPT_SUSPICION_MAX},
		{"pushpull-interval", required_argument, NULL, OPT_PUSHPULL},
		{"gossip-to-dead", required_argument, NULL, OPT_TO_DEAD},
		{"tcp-timeout", required_argument, NULL, OPT_TCP_TIMEOUT},
		{"leave-timeout", required_argument, NULL, OPT_LEAVE_TIMEOUT},
		{"pool-delay", required_argument, NULL, OPT_POOL_DELAY},
		{"reconnect-interval", required_argument, NULL, OPT_RECONNECT_INTERVAL},
		{"reconnect-timeout", required_argument, NULL, OPT_RECONNECT_TIMEOUT},
		{"tombstone-timeout", required_argument, NULL, OPT_TOMBSTONE_TIMEOUT},
		{NULL, 0, NULL, 0},
	};
	int ch, have_bind = 0, verbose = 0;

	/* getopt names argv[0] in its messages: the tool, not the path that ran it. */
	argv[0] = (char *)"tcppeer";
	while ((ch = getopt_long(argc, argv, "a:b:hj:n:t:v", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			opt_addr("-a", optarg, &c->advertise);
			c->have_advertise = 1;
			break;
		case 'b':
			opt_addr("-b", optarg, &c->bind);
			have_bind = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			fputs(help_text, stdout);
			exit(close_stdout() == 0 ? 0 : 2);
		case 'j':
			if (c->nseeds == SEEDS_MAX) {
				fprintf(stderr, "tcppeer: -j: more than %d seeds\n", SEEDS_MAX);
				exit(2);
			}
			opt_addr("-j", optarg, &c->seeds[c->nseeds++]);
			break;
		case 'n':
			c->name = optarg;
			break;
		case 't':
			parse_tag(c, optarg);
			break;
		case 'v':
			verbose = 1;
			break;
		case OPT_VERSION:
			printf("tcppeer %s\n", TCPDIST_VERSION);
			exit(close_stdout() == 0 ? 0 : 2);
		case OPT_POOL:
			c->pool_path = optarg;
			break;
		case OPT_SERVICE_TAG:
			c->service_tag = optarg;
			break;
		case OPT_ZONE_TAG:
			c->zone_tag = optarg;
			break;
		case OPT_CONTROL:
			c->control_path = optarg;
			break;
		case OPT_KEYRING:
			c->keyring_path = optarg;
			break;
		case OPT_SNAPSHOT:
			c->snapshot_path = optarg;
			break;
		case OPT_ALLOW: {
			char err[ERR_LEN];

			if (c->nallow == ALLOW_MAX) {
				fprintf(stderr, "tcppeer: --allow: more than %d networks\n", ALLOW_MAX);
				exit(2);
			}
			if (allow_net_parse(optarg, &c->allow[c->nallow++], err) < 0) {
				fprintf(stderr, "tcppeer: --allow: %s\n", err);
				exit(2);
			}
			break;
		}
		case OPT_PROBE_INTERVAL:
			opt_duration("probe-interval", optarg, &c->probe_interval);
			break;
		case OPT_PROBE_TIMEOUT:
			opt_duration("probe-timeout", optarg, &c->probe_timeout);
			break;
		case OPT_GOSSIP_INTERVAL:
			opt_duration("gossip-interval", optarg, &c->gossip_interval);
			break;
		case OPT_GOSSIP_NODES:
			c->gossip_nodes = opt_int("--gossip-nodes", optarg, 1, 64);
			break;
		case OPT_INDIRECT:
			c->indirect_checks = opt_int("--indirect-checks", optarg, 0, 16);
			break;
		case OPT_RETRANSMIT:
			c->retransmit_mult = opt_int("--retransmit-mult", optarg, 1, 100);
			break;
		case OPT_SUSPICION:
			c->suspicion_mult = opt_int("--suspicion-mult", optarg, 1, SUSPICION_MULT_MAX);
			break;
		case OPT_SUSPICION_MAX:
			c->suspicion_max_mult = opt_int("--suspicion-max-mult", optarg, 1, 100);
			break;
		case OPT_PUSHPULL:
			opt_duration("pushpull-interval", optarg, &c->pushpull_interval);
			break;
		case OPT_TO_DEAD:
			opt_duration("gossip-to-dead", optarg, &c->gossip_to_dead);
			break;
		case OPT_TCP_TIMEOUT:
			opt_duration("tcp-timeout", optarg, &c->tcp_timeout);
			break;
		case OPT_LEAVE_TIMEOUT:
			opt_duration("leave-timeout", optarg, &c->leave_timeout);
			break;
		case OPT_POOL_DELAY:
			opt_duration("pool-delay", optarg, &c->pool_delay);
			break;
		case OPT_RECONNECT_INTERVAL:
			opt_duration("reconnect-interval", optarg, &c->reconnect_interval);
			break;
		case OPT_RECONNECT_TIMEOUT:
			opt_duration_max("reconnect-timeout", optarg, 3650 * DAY_MS,
					 &c->reconnect_timeout);
			break;
		case OPT_TOMBSTONE_TIMEOUT:
			opt_duration_max("tombstone-timeout", optarg, 3650 * DAY_MS,
					 &c->tombstone_timeout);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || c->name == NULL || !have_bind)
		usage();
	if ((c->pool_path == NULL) != (c->service_tag == NULL)) {
		fputs("tcppeer: --pool and --service-tag go together\n", stderr);
		exit(2);
	}
	if (c->zone_tag != NULL && c->pool_path == NULL) {
		fputs("tcppeer: --zone-tag needs --pool and --service-tag\n", stderr);
		exit(2);
	}
	if (*c->name == '\0' || strlen(c->name) > PEER_NAME_MAX ||
	    strpbrk(c->name, " \t\r\n\\") != NULL) {
		fprintf(stderr, "tcppeer: -n: '%.64s' is not a usable name (1-%d characters, no blanks)\n",
			c->name, PEER_NAME_MAX);
		exit(2);
	}
	if (c->probe_timeout >= c->probe_interval) {
		fputs("tcppeer: --probe-timeout must be shorter than --probe-interval\n", stderr);
		exit(2);
	}
	log_init("tcppeer", 0, verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
}

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

	if (argc > 1 && strcmp(argv[1], "members") == 0)
		return run_members(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "event") == 0)
		return run_event(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "force-leave") == 0)
		return run_names(argc - 1, argv + 1, 1);
	if (argc > 1 && strcmp(argv[1], "rtt") == 0)
		return run_names(argc - 1, argv + 1, 2);
	config_defaults(&p->cfg);
	parse_options(&p->cfg, argc, argv);
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
