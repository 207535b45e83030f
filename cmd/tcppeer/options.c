/* tcppeer's command line. Most node options only set one field of struct
 * config, so they are rows of one table (name, kind, field, default,
 * bounds) that a single function applies; the switch keeps the options
 * with logic of their own. The control subcommands share one option loop. */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "closeout.h"
#include "log.h"
#include "num.h"
#include "options.h"

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

static void usage(void)
{
	fputs(usage_text, stderr);
	exit(2);
}

/* -h: the usage (and for the node, the help) on stdout. */
static void help(const char *more)
{
	fputs(usage_text, stdout);
	fputs(more, stdout);
	exit(close_stdout() == 0 ? 0 : 2);
}

/* ------------------------------------------------------------------------ */
/* The options that set one field of struct config */

enum field_kind {
	FIELD_TEXT,     /* a path or a tag name, kept as given */
	FIELD_DURATION, /* ms, s, m or h; kept in seconds */
	FIELD_INT,
};

struct field_option {
	const char *name; /* the long option, without its dashes */
	enum field_kind kind;
	size_t offset;           /* of the field in struct config */
	long long def, min, max; /* a duration's in milliseconds */
};

#define DAY_MS (24ll * 3600 * 1000)

#define TEXT(name, field) {name, FIELD_TEXT, offsetof(struct config, field), 0, 0, 0}
#define DURATION(name, field, def_ms, max_ms)                                                      \
	{name, FIELD_DURATION, offsetof(struct config, field), def_ms, 1, max_ms}
#define INT(name, field, def, min, max) {name, FIELD_INT, offsetof(struct config, field), def, min, max}

/* In the order getopt lists them when an abbreviation is ambiguous. */
static const struct field_option field_options[] = {
	TEXT("pool", pool_path),
	TEXT("service-tag", service_tag),
	TEXT("zone-tag", zone_tag),
	TEXT("control", control_path),
	TEXT("keyring", keyring_path),
	TEXT("snapshot", snapshot_path),
	/* memberlist's LAN profile */
	DURATION("probe-interval", probe_interval, 1000, DAY_MS),
	DURATION("probe-timeout", probe_timeout, 500, DAY_MS),
	DURATION("gossip-interval", gossip_interval, 200, DAY_MS),
	INT("gossip-nodes", gossip_nodes, 3, 1, 64),
	INT("indirect-checks", indirect_checks, 3, 0, 16),
	INT("retransmit-mult", retransmit_mult, 4, 1, 100),
	INT("suspicion-mult", suspicion_mult, 4, 1, SUSPICION_MULT_MAX),
	INT("suspicion-max-mult", suspicion_max_mult, 6, 1, 100),
	DURATION("pushpull-interval", pushpull_interval, 30000, DAY_MS),
	DURATION("gossip-to-dead", gossip_to_dead, 30000, DAY_MS),
	DURATION("tcp-timeout", tcp_timeout, 10000, DAY_MS),
	DURATION("leave-timeout", leave_timeout, 3000, DAY_MS),
	DURATION("pool-delay", pool_delay, 150, DAY_MS),
	/* serf's ReconnectInterval, ReconnectTimeout and TombstoneTimeout */
	DURATION("reconnect-interval", reconnect_interval, 30000, DAY_MS),
	DURATION("reconnect-timeout", reconnect_timeout, DAY_MS, 3650 * DAY_MS),
	DURATION("tombstone-timeout", tombstone_timeout, DAY_MS, 3650 * DAY_MS),
};

#define NFIELD_OPTIONS (sizeof(field_options) / sizeof(field_options[0]))

/* Sets f's field of c to its default (arg NULL) or to arg. */
static void field_set(const struct field_option *f, struct config *c, const char *arg)
{
	void *field = (char *)c + f->offset;
	char err[ERR_LEN];
	uint64_t ms = (uint64_t)f->def;
	long long v = f->def;

	switch (f->kind) {
	case FIELD_TEXT:
		*(const char **)field = arg;
		return;
	case FIELD_DURATION:
		if (arg != NULL && duration_parse(arg, (uint64_t)f->min, (uint64_t)f->max, &ms, err) < 0)
			break;
		*(double *)field = (double)ms / 1000.0;
		return;
	case FIELD_INT:
		if (arg != NULL && num_parse(arg, f->min, f->max, &v, err) < 0)
			break;
		*(int *)field = (int)v;
		return;
	}
	fprintf(stderr, "tcppeer: --%s: %s\n", f->name, err);
	exit(2);
}

static void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < NFIELD_OPTIONS; i++)
		if (field_options[i].kind != FIELD_TEXT)
			field_set(&field_options[i], c, NULL);
	c->awareness_max = 8;
}

/* ------------------------------------------------------------------------ */
/* The node's options */

static void opt_addr(const char *name, const char *arg, struct addr *out)
{
	char err[ERR_LEN];

	if (addr_parse(arg, 0, out, err) < 0) {
		fprintf(stderr, "tcppeer: %s: %s\n", name, err);
		exit(2);
	}
}

static void opt_tag(struct config *c, char *arg)
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

static void opt_allow(struct config *c, const char *arg)
{
	char err[ERR_LEN];

	if (c->nallow == ALLOW_MAX) {
		fprintf(stderr, "tcppeer: --allow: more than %d networks\n", ALLOW_MAX);
		exit(2);
	}
	if (allow_net_parse(arg, &c->allow[c->nallow++], err) < 0) {
		fprintf(stderr, "tcppeer: --allow: %s\n", err);
		exit(2);
	}
}

/* Option conflicts, in one place. */
static void config_check(const struct config *c)
{
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
}

void options_parse(struct config *c, int argc, char **argv)
{
	enum { OPT_VERSION = 256, OPT_ALLOW, OPT_FIELD }; /* OPT_FIELD + i: field_options[i] */
	enum { OWN_OPTIONS = 3 }; /* help, version, allow */
	/* The options of their own, then one per field option, then zeros. */
	struct option longopts[OWN_OPTIONS + NFIELD_OPTIONS + 1] = {
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, OPT_VERSION},
		{"allow", required_argument, NULL, OPT_ALLOW},
	};
	int ch, have_bind = 0, verbose = 0;

	for (size_t i = 0; i < NFIELD_OPTIONS; i++)
		longopts[OWN_OPTIONS + i] = (struct option){field_options[i].name, required_argument, NULL,
						  OPT_FIELD + (int)i};
	config_defaults(c);
	/* getopt names argv[0] in its messages: the tool, not the path that ran it. */
	argv[0] = (char *)"tcppeer";
	while ((ch = getopt_long(argc, argv, "a:b:hj:n:t:v", longopts, NULL)) != -1) {
		if (ch >= OPT_FIELD) {
			field_set(&field_options[ch - OPT_FIELD], c, optarg);
			continue;
		}
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
			help(help_text);
			break;
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
			opt_tag(c, optarg);
			break;
		case 'v':
			verbose = 1;
			break;
		case OPT_VERSION:
			printf("tcppeer %s\n", TCPDIST_VERSION);
			exit(close_stdout() == 0 ? 0 : 2);
		case OPT_ALLOW:
			opt_allow(c, optarg);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || c->name == NULL || !have_bind)
		usage();
	config_check(c);
	log_init("tcppeer", 0, verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
}

/* ------------------------------------------------------------------------ */
/* The control subcommands' options */

void options_subcommand(const struct subcommand *s, int argc, char **argv,
			struct subcommand_line *l)
{
	enum { OPT_CONTROL = 256, OPT_JSON };
	struct option longopts[] = {
		{"control", required_argument, NULL, OPT_CONTROL},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}, /* --json, where the subcommand takes it */
		{NULL, 0, NULL, 0},
	};
	int ch;

	if (s->takes_json)
		longopts[2] = (struct option){"json", no_argument, NULL, OPT_JSON};
	memset(l, 0, sizeof(*l));
	snprintf(l->prog, sizeof(l->prog), "tcppeer: %s", s->name);
	argv[0] = l->prog; /* for getopt's messages */
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_CONTROL:
			l->control = optarg;
			break;
		case OPT_JSON:
			l->json = 1;
			break;
		case 'h':
			help("");
			break;
		default:
			usage();
		}
	}
	if (argc - optind < s->min_args || argc - optind > s->max_args)
		usage();
	l->args = argv + optind;
	l->nargs = argc - optind;
	if (l->control == NULL)
		l->control = control_default_path(l->buf, sizeof(l->buf));
}
