/* tcpdist status | sessions | kill: ask the running tcpdist over its control
 * socket and print the answer (TSV or --json, stable contracts documented in
 * tcpdist(1)). The socket comes from --control, or from the pool's control
 * key (-f POOL or $TCPDIST_POOL). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "closeout.h"
#include "ctlclient.h"
#include "num.h"
#include "pool.h"
#include "tcpdist.h"

#define CTL_TIMEOUT_MS 10000

static const char ctl_usage[] =
	"usage: tcpdist status   [-f POOL | --control PATH] [--json]\n"
	"       tcpdist sessions [-f POOL | --control PATH] [--backend NAME] [--limit N] [--json]\n"
	"       tcpdist kill     [-f POOL | --control PATH] (--backend NAME | --client ADDR)\n";

static void usage(void)
{
	fputs(ctl_usage, stderr);
	exit(2);
}

/* Prints the answer: data to stdout, "# ..." notes to stderr. */
static int print_answer(const char *answer)
{
	for (const char *line = answer; *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);

		if (len > 2 && line[0] == '#' && line[1] == ' ')
			fprintf(stderr, "tcpdist: %.*s\n", (int)len - 2, line + 2);
		else
			fwrite(line, 1, len + (nl != NULL), stdout);
		line += len + (nl != NULL);
	}
	return close_stdout() == 0 ? 0 : 2;
}

int ctl_main(int argc, char **argv)
{
	enum { OPT_CONTROL = 256, OPT_JSON, OPT_BACKEND, OPT_CLIENT, OPT_LIMIT };
	static const struct option longopts[] = {
		{"control", required_argument, NULL, OPT_CONTROL},
		{"json", no_argument, NULL, OPT_JSON},
		{"backend", required_argument, NULL, OPT_BACKEND},
		{"client", required_argument, NULL, OPT_CLIENT},
		{"limit", required_argument, NULL, OPT_LIMIT},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *cmd = argv[0], *pool = NULL, *control = NULL, *backend = NULL, *client = NULL;
	char path[POOL_CONTROL_MAX + 1], request[512], err[ERR_LEN * 2], *answer;
	long long limit = 0;
	size_t len;
	int json = 0, ch, rc;

	argv[0] = (char *)"tcpdist";
	while ((ch = getopt_long(argc, argv, "f:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			pool = optarg;
			break;
		case 'h':
			fputs(ctl_usage, stdout);
			exit(close_stdout() == 0 ? 0 : 2);
		case OPT_CONTROL:
			control = optarg;
			break;
		case OPT_JSON:
			json = 1;
			break;
		case OPT_BACKEND:
			backend = optarg;
			break;
		case OPT_CLIENT:
			client = optarg;
			break;
		case OPT_LIMIT:
			if (num_parse(optarg, 1, 1000000, &limit, err) < 0) {
				fprintf(stderr, "tcpdist: --limit: %s\n", err);
				exit(2);
			}
			break;
		default:
			usage();
		}
	}
	if (optind != argc || (pool && control))
		usage();
	if ((strcmp(cmd, "status") == 0 && (backend || client || limit)) ||
	    (strcmp(cmd, "sessions") == 0 && client) ||
	    (strcmp(cmd, "kill") == 0 && ((backend == NULL) == (client == NULL) || json || limit)))
		usage();
	if (backend && !pool_name_valid(backend)) {
		fprintf(stderr, "tcpdist: --backend: '%s' is not a backend name\n", backend);
		exit(2);
	}
	if (client && (strchr(client, ' ') || strchr(client, '\n'))) {
		fprintf(stderr, "tcpdist: --client: not an address\n");
		exit(2);
	}
	if (control == NULL) {
		if (pool == NULL)
			pool = getenv("TCPDIST_POOL");
		if (pool == NULL || *pool == '\0') {
			fprintf(stderr, "tcpdist: %s: give --control PATH, -f POOL or set TCPDIST_POOL\n",
				cmd);
			exit(2);
		}
		if (control_path_of_pool(pool, path, sizeof(path), err) < 0) {
			fprintf(stderr, "tcpdist: %s\n", err);
			exit(2);
		}
		control = path;
	}
	snprintf(request, sizeof(request), "%s%s%s%s%s%s", cmd, json ? " json" : "",
		 backend ? " backend=" : "", backend ? backend : "", client ? " client=" : "",
		 client ? client : "");
	if (limit) {
		size_t used = strlen(request);

		snprintf(request + used, sizeof(request) - used, " limit=%lld", limit);
	}
	if (control_call(control, request, CTL_TIMEOUT_MS, &answer, &len, err) < 0) {
		fprintf(stderr, "tcpdist: %s\n", err);
		exit(2);
	}
	if (strncmp(answer, "error: ", 7) == 0) {
		fprintf(stderr, "tcpdist: %s: %s", cmd, answer + 7);
		free(answer);
		exit(2);
	}
	rc = print_answer(answer);
	/* kill: nothing matched is a negative answer, as pkill's. */
	if (rc == 0 && strcmp(cmd, "kill") == 0 && strtoull(answer, NULL, 10) == 0)
		rc = 1;
	free(answer);
	return rc;
}
