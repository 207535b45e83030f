/* tcppool: safe, scriptable editing of the pool file. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "closeout.h"
#include "num.h"
#include "tcppool.h"

static const char usage_text[] = "usage: tcppool [-f POOL] init [KEY=VALUE...]\n"
				 "       tcppool [-f POOL] list [--json]\n"
				 "       tcppool [-f POOL] show [--json] NAME\n"
				 "       tcppool [-f POOL] add NAME ADDRESS [KEY=VALUE...]\n"
				 "       tcppool [-f POOL] rm NAME\n"
				 "       tcppool [-f POOL] set NAME KEY=VALUE...\n"
				 "       tcppool [-f POOL] drain [--wait[=TIMEOUT]] NAME\n"
				 "       tcppool [-f POOL] up NAME\n"
				 "       tcppool [-f POOL] down NAME\n"
				 "       tcppool [-f POOL] check [--json]\n";

static const char help_text[] =
	"\n"
	"Edit a tcpdist pool file safely: comments and layout are kept, the whole\n"
	"result is checked with tcpdist's own loader before it is written, and the\n"
	"file is replaced atomically under a lock. NAME \"pool\" means the [pool]\n"
	"section in show and set; KEY= (no value) removes a key.\n"
	"\n"
	"  init             create the pool file with a commented [pool] section\n"
	"  list             NAME<TAB>ADDRESS<TAB>WEIGHT<TAB>STATE for each backend\n"
	"  show NAME        every setting of a backend (or of pool), KEY<TAB>VALUE\n"
	"  add NAME ADDRESS add a backend\n"
	"  rm NAME          remove a backend with the comments above it\n"
	"  set NAME KEY=VALUE...\n"
	"                   change settings of a backend or of pool\n"
	"  drain, up, down NAME\n"
	"                   set a backend's state; drain --wait[=TIMEOUT] then waits\n"
	"                   until the running tcpdist has no connection to it\n"
	"  check            list every problem of the pool file; exit 1 if any\n"
	"\n"
	"  -f POOL          pool file (default: $TCPDIST_POOL)\n"
	"      --json       JSON output (list, show, check)\n"
	"  -h, --help       show this help\n"
	"      --version    show the version\n";

static void usage(void)
{
	fputs(usage_text, stderr);
	exit(2);
}

/* The commands: their operand counts (max -1: no limit) and --json. */
static const struct command_spec {
	const char *name;
	int min, max;
	int json;
} commands[] = {
    {"add", 2, -1, 0},	{"check", 0, 0, 1}, {"down", 1, 1, 0}, {"drain", 1, 1, 0},
    {"init", 0, -1, 0}, {"list", 0, 0, 1},  {"rm", 1, 1, 0},   {"set", 2, -1, 0},
    {"show", 1, 1, 1},	{"up", 1, 1, 0},
};

static const struct command_spec *command_find(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* The command's own options, anywhere after it: --json where it prints;
 * "--" ends them, for operands that start with '-' (backend names may). */
static void command_options(const struct command_spec *spec, struct command *c, int argc,
			    char **argv)
{
	enum { OPT_JSON = 256, OPT_WAIT };
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, OPT_JSON},
	    {"wait", optional_argument, NULL, OPT_WAIT},
	    {NULL, 0, NULL, 0},
	};
	char err[ERR_LEN];
	int ch;

	optind = 0; /* glibc: start afresh, on argv[1] of the command's own argv */
	opterr = 0; /* getopt would name the command as the program */
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch == OPT_WAIT && strcmp(spec->name, "drain") == 0) {
			c->wait = 1;
			if (optarg &&
			    duration_parse(optarg, 1, 7ull * 86400000, &c->wait_ms, err) < 0) {
				fprintf(stderr, "tcppool: drain: --wait: %s\n", err);
				exit(2);
			}
			continue;
		}
		if (ch != OPT_JSON || !spec->json) {
			fprintf(stderr, "tcppool: %s: unknown option '%s'\n", spec->name,
				argv[optind - 1]);
			usage();
		}
		c->json = 1;
	}
	c->argv = argv + optind;
	c->argc = argc - optind;
	if (c->argc < spec->min || (spec->max >= 0 && c->argc > spec->max))
		usage();
}

static int command_run(const char *name, const struct command *c)
{
	int rc;

	switch (name[0]) {
	case 'a':
		return run_add(c);
	case 'c':
		return run_check(c);
	case 'd':
		if (name[1] == 'o')
			return run_state(c, BACKEND_DOWN);
		rc = run_state(c, BACKEND_DRAIN);
		return rc == 0 && c->wait ? drain_wait(c, c->argv[0]) : rc;
	case 'i':
		return run_init(c);
	case 'l':
		return run_list(c);
	case 'r':
		return run_rm(c);
	case 's':
		return name[1] == 'e' ? run_set(c) : run_show(c);
	default:
		return run_state(c, BACKEND_UP);
	}
}

int main(int argc, char **argv)
{
	enum { OPT_VERSION = 256 };
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, OPT_VERSION},
	    {NULL, 0, NULL, 0},
	};
	const struct command_spec *spec;
	struct command c;
	int ch, rc;

	/* getopt names argv[0] in its messages: the tool, not the path that ran it. */
	argv[0] = (char *)"tcppool";
	memset(&c, 0, sizeof(c));
	/* "+": options end at the command, whose own options come after it. */
	while ((ch = getopt_long(argc, argv, "+f:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			c.pool_path = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			fputs(help_text, stdout);
			return close_stdout() == 0 ? 0 : 2;
		case OPT_VERSION:
			printf("tcppool %s\n", TCPDIST_VERSION);
			return close_stdout() == 0 ? 0 : 2;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;

	if (argc < 1 || (spec = command_find(argv[0])) == NULL)
		usage();
	command_options(spec, &c, argc, argv);
	if (c.pool_path == NULL)
		c.pool_path = getenv("TCPDIST_POOL");
	if (c.pool_path == NULL || *c.pool_path == '\0') {
		fputs("tcppool: no pool file: give -f POOL or set TCPDIST_POOL\n", stderr);
		return 2;
	}
	rc = command_run(spec->name, &c);
	if (close_stdout() != 0) { /* what it said is lost: that outranks its verdict */
		perror("tcppool: stdout");
		rc = 2;
	}
	return rc;
}
