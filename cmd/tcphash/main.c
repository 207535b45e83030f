/* tcphash: which backend a client maps to, and what moves if the pool changes. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "closeout.h"
#include "num.h"
#include "tcphash.h"

static const char usage_text[] =
	"usage: tcphash [-f POOL] [-n K] [--down NAME]... [--zone NAME] [--json] [CLIENT...]\n"
	"       tcphash --diff OLD NEW [--json]\n"
	"       tcphash --diff POOL (--without NAME | --set NAME.KEY=VALUE)... [--json]\n"
	"       tcphash --stats [-f POOL] [--down NAME]... [--json]\n";

static const char help_text[] =
	"\n"
	"Answer, offline and with tcpdist's own code, which backend of a balance = hash\n"
	"pool each client maps to. Clients are IP or IP:PORT (IPv6 as [ADDR]:PORT), from\n"
	"the arguments or one per line on stdin. Output: CLIENT<TAB>NAME<TAB>ADDRESS,\n"
	"then <TAB>ZONE<TAB>any|local|spill when the pool has zones.\n"
	"\n"
	"  -f POOL          pool file (default: $TCPDIST_POOL)\n"
	"  -n K             print the first K backends of each client's preference\n"
	"                   order, one line each (1-32)\n"
	"      --down NAME  answer as if backend NAME were down; may be repeated\n"
	"      --diff OLD NEW\n"
	"                   share of clients that move from pool OLD to pool NEW\n"
	"      --without NAME, --set NAME.KEY=VALUE\n"
	"                   with --diff POOL: against POOL without backend NAME, or\n"
	"                   with KEY set (NAME pool for [pool]; KEY= removes it);\n"
	"                   may be repeated; no file is written\n"
	"      --stats      each backend's share of the table against its weight\n"
	"      --zone NAME  answer as if every client were in zone NAME\n"
	"      --json       JSON output\n"
	"  -h, --help       show this help\n"
	"      --version    show the version\n";

static void usage(void)
{
	fputs(usage_text, stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	enum { OPT_VERSION = 256, OPT_DOWN, OPT_DIFF, OPT_STATS, OPT_JSON, OPT_ZONE, OPT_WITHOUT,
	       OPT_SET };
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, OPT_VERSION},
		{"down", required_argument, NULL, OPT_DOWN},
		{"diff", no_argument, NULL, OPT_DIFF},
		{"stats", no_argument, NULL, OPT_STATS},
		{"json", no_argument, NULL, OPT_JSON},
		{"zone", required_argument, NULL, OPT_ZONE},
		{"without", required_argument, NULL, OPT_WITHOUT},
		{"set", required_argument, NULL, OPT_SET},
		{NULL, 0, NULL, 0},
	};
	static struct options opt;
	char err[ERR_LEN];
	int ch, diff = 0, stats = 0, rc;
	long long k;

	/* getopt names argv[0] in its messages: the tool, not the path that ran it. */
	argv[0] = (char *)"tcphash";
	memset(&opt, 0, sizeof(opt));
	while ((ch = getopt_long(argc, argv, "f:hn:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			opt.pool_path = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			fputs(help_text, stdout);
			return close_stdout() == 0 ? 0 : 2;
		case 'n':
			if (num_parse(optarg, 1, 32, &k, err) < 0) {
				fprintf(stderr, "tcphash: -n: %s\n", err);
				return 2;
			}
			opt.preference = (unsigned)k;
			break;
		case OPT_VERSION:
			printf("tcphash %s\n", TCPDIST_VERSION);
			return close_stdout() == 0 ? 0 : 2;
		case OPT_DOWN:
			if (opt.ndown == POOL_BACKENDS_MAX) {
				fputs("tcphash: --down: too many backends\n", stderr);
				return 2;
			}
			opt.down_names[opt.ndown++] = optarg;
			break;
		case OPT_DIFF:
			diff = 1;
			break;
		case OPT_STATS:
			stats = 1;
			break;
		case OPT_JSON:
			opt.json = 1;
			break;
		case OPT_ZONE:
			opt.zone = optarg;
			break;
		case OPT_WITHOUT:
		case OPT_SET:
			if (opt.nchanges == CHANGES_MAX) {
				fprintf(stderr, "tcphash: at most %d --without and --set\n", CHANGES_MAX);
				return 2;
			}
			opt.changes[opt.nchanges].without = ch == OPT_WITHOUT;
			opt.changes[opt.nchanges++].arg = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;

	if (diff + stats > 1 || (diff && (opt.pool_path || opt.preference || opt.ndown)) ||
	    (stats && (opt.preference || argc > 0 || opt.zone)) ||
	    (diff && argc != (opt.nchanges ? 1 : 2)) || (opt.nchanges && !diff) ||
	    (diff && opt.zone))
		usage();
	if (diff) {
		rc = run_diff(&opt, argv[0], opt.nchanges ? NULL : argv[1]);
	} else {
		if (opt.pool_path == NULL)
			opt.pool_path = getenv("TCPDIST_POOL");
		if (opt.pool_path == NULL || *opt.pool_path == '\0') {
			fputs("tcphash: no pool file: give -f POOL or set TCPDIST_POOL\n", stderr);
			return 2;
		}
		rc = stats ? run_stats(&opt) : run_lookup(&opt, argv, argc);
	}
	if (close_stdout() != 0 && rc == 0)
		rc = 2;
	return rc;
}
