/* tcpdist: a TCP load balancer that reads its backends from a pool file. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "closeout.h"
#include "log.h"
#include "num.h"
#include "rng.h"
#include "sdnotify.h"
#include "tcpdist.h"

#define THREADS_MAX 64

static const char usage_text[] =
	"usage: tcpdist [-nv] [-j N] [-l ADDR]... [--metrics ADDR] [--control PATH] [--takeover]\n"
	"               [--log-connections] [--log-format FORMAT] [--no-splice]\n"
	"               [--drain-timeout DURATION] [--syslog] [[-f] POOL]\n"
	"       tcpdist status   [-f POOL | --control PATH] [--json]\n"
	"       tcpdist sessions [-f POOL | --control PATH] [--backend NAME] [--limit N] [--json]\n"
	"       tcpdist kill     [-f POOL | --control PATH] (--backend NAME | --client ADDR)\n";

static const char help_text[] =
	"\n"
	"Relay TCP connections to the backends of a pool file.\n"
	"\n"
	"  -f POOL               pool file (default: $TCPDIST_POOL)\n"
	"  -n                    check the pool file, print 'configuration OK' and exit\n"
	"  -v                    log every connection event\n"
	"  -j N                  run N event loops on N threads (1-64, default 1)\n"
	"  -l ADDR               listen on ADDR instead of the pool's listen lines;\n"
	"                        may be repeated\n"
	"      --metrics ADDR    serve Prometheus metrics at http://ADDR/metrics\n"
	"      --control PATH    the control socket (default: the pool's control key)\n"
	"      --takeover        take the listening sockets of the tcpdist running at the\n"
	"                        control socket, then let it finish its connections\n"
	"      --log-connections log one line per finished connection\n"
	"      --log-format F    text (default), logfmt or json, for every line\n"
	"      --no-splice       relay with read/write only, never splice(2)\n"
	"      --drain-timeout D on SIGINT/SIGTERM wait up to D for connections (default 10s)\n"
	"      --syslog          log to syslog instead of stderr\n"
	"  -h, --help            show this help\n"
	"      --version         show the version\n";

/* What the main loop needs to stop: the process, and its drain. */
struct run {
	struct proc *proc;
	atomic_int workers_left;
	int signals;
	int stopping;
	ev_async worker_done;
	ev_timer drain;
	uint64_t drain_ms;
};

static void usage(void)
{
	fputs(usage_text, stderr);
	exit(2);
}

static void drain_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct run *run = container_of(t, struct run, drain);
	struct proc *p = run->proc;
	size_t n = proc_connections(p);

	(void)loop;
	(void)revents;
	log_warn("drain timeout: closing %zu connection%s", n, n == 1 ? "" : "s");
	for (int i = 0; i < p->nworkers; i++)
		ev_async_send(p->workers[i].loop, &p->workers[i].force);
}

static void signal_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
	struct run *run = s->data;
	struct proc *p = run->proc;

	(void)loop;
	(void)revents;
	if (run->signals++ > 0) {
		log_warn("second signal: exiting now");
		_exit(0);
	}
	proc_stop(p);
}

void proc_stop(struct proc *p)
{
	struct run *run = p->run;
	char d[32];
	size_t n;

	if (run->stopping++)
		return;
	duration_format(run->drain_ms, d, sizeof(d));
	n = proc_connections(p);
	log_info("shutting down: waiting up to %s for %zu connection%s", d, n, n == 1 ? "" : "s");
	sd_notify_send("STOPPING=1");
	watch_close(p);
	loader_close(p);
	metrics_close(p);
	control_close(p);
	for (int i = 0; i < p->nworkers; i++)
		ev_async_send(p->workers[i].loop, &p->workers[i].stop);
	ev_timer_init(&run->drain, drain_timeout_cb, (ev_tstamp)run->drain_ms / 1000.0, 0.0);
	ev_timer_start(p->loop, &run->drain);
}

void proc_notify_status(struct proc *p)
{
	char status[128];
	size_t n = farm_count_available(p->farm);

	if (!sd_notify_wanted())
		return;
	snprintf(status, sizeof(status), "STATUS=%zu of %zu backends available, %zu connections",
		 n, p->farm->n, proc_connections(p));
	sd_notify_send(status);
}

static void sighup_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
	struct run *run = s->data;

	(void)loop;
	(void)revents;
	if (run->signals == 0 && !run->stopping) {
		char state[64];
		struct timespec now;

		log_info("SIGHUP: reloading %s", run->proc->opt->pool_path);
		clock_gettime(CLOCK_MONOTONIC, &now);
		snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
			 (unsigned long long)now.tv_sec * 1000000 +
				 (unsigned long long)now.tv_nsec / 1000);
		sd_notify_send(state);
		watch_reload(run->proc, 1);
	}
}

static void health_changed_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	(void)loop;
	(void)revents;
	health_changed(container_of(a, struct proc, health_changed));
}

static void worker_done_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	struct run *run = container_of(a, struct run, worker_done);

	(void)revents;
	if (atomic_load(&run->workers_left) == 0)
		ev_break(loop, EVBREAK_ALL);
}

/* Runs on the worker's thread as its loop ends. */
static void worker_exited(struct worker *w)
{
	struct run *run = w->proc->run;

	atomic_fetch_sub(&run->workers_left, 1);
	ev_async_send(w->proc->loop, &run->worker_done);
}

static void parse_options(int argc, char **argv, struct options *opt)
{
	enum {
		OPT_VERSION = 256, OPT_NO_SPLICE, OPT_DRAIN_TIMEOUT, OPT_SYSLOG, OPT_METRICS,
		OPT_LOG_CONNECTIONS, OPT_CONTROL, OPT_TAKEOVER, OPT_LOG_FORMAT,
	};
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, OPT_VERSION},
		{"metrics", required_argument, NULL, OPT_METRICS},
		{"control", required_argument, NULL, OPT_CONTROL},
		{"takeover", no_argument, NULL, OPT_TAKEOVER},
		{"log-connections", no_argument, NULL, OPT_LOG_CONNECTIONS},
		{"log-format", required_argument, NULL, OPT_LOG_FORMAT},
		{"no-splice", no_argument, NULL, OPT_NO_SPLICE},
		{"drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT},
		{"syslog", no_argument, NULL, OPT_SYSLOG},
		{NULL, 0, NULL, 0},
	};
	char err[ERR_LEN];
	long long n;
	int ch;

	/* getopt names argv[0] in its messages: the tool, not the path that ran it. */
	argv[0] = (char *)"tcpdist";
	memset(opt, 0, sizeof(*opt));
	opt->threads = 1;
	opt->splice = 1;
	opt->drain_timeout_ms = 10000;
	while ((ch = getopt_long(argc, argv, "f:hj:l:nv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			opt->pool_path = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			fputs(help_text, stdout);
			exit(close_stdout() == 0 ? 0 : 2);
		case 'j':
			if (num_parse(optarg, 1, THREADS_MAX, &n, err) < 0) {
				fprintf(stderr, "tcpdist: -j: %s\n", err);
				exit(2);
			}
			opt->threads = (int)n;
			break;
		case 'l':
			if (opt->nlisten == POOL_LISTEN_MAX) {
				fprintf(stderr, "tcpdist: -l: at most %d addresses\n", POOL_LISTEN_MAX);
				exit(2);
			}
			opt->listen[opt->nlisten++] = optarg;
			break;
		case 'n':
			opt->check_only = 1;
			break;
		case 'v':
			opt->verbose = 1;
			break;
		case OPT_VERSION:
			printf("tcpdist %s\n", TCPDIST_VERSION);
			exit(close_stdout() == 0 ? 0 : 2);
		case OPT_NO_SPLICE:
			opt->splice = 0;
			break;
		case OPT_DRAIN_TIMEOUT:
			if (duration_parse(optarg, 0, 24ull * 3600000, &opt->drain_timeout_ms, err) < 0) {
				fprintf(stderr, "tcpdist: --drain-timeout: %s\n", err);
				exit(2);
			}
			break;
		case OPT_SYSLOG:
			opt->use_syslog = 1;
			break;
		case OPT_METRICS:
			opt->metrics = optarg;
			break;
		case OPT_CONTROL:
			if (*optarg == '\0' || strlen(optarg) > POOL_CONTROL_MAX) {
				fprintf(stderr, "tcpdist: --control: a socket path of 1-%d bytes\n",
					POOL_CONTROL_MAX);
				exit(2);
			}
			opt->control = optarg;
			break;
		case OPT_TAKEOVER:
			opt->takeover = 1;
			break;
		case OPT_LOG_CONNECTIONS:
			opt->log_connections = 1;
			break;
		case OPT_LOG_FORMAT: {
			enum log_format f;

			if (log_format_parse(optarg, &f) < 0) {
				fprintf(stderr, "tcpdist: --log-format: '%s' is not text, logfmt or json\n",
					optarg);
				exit(2);
			}
			opt->log_format = (int)f;
			break;
		}
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 1 || (argc == 1 && opt->pool_path != NULL))
		usage();
	if (argc == 1)
		opt->pool_path = argv[0];
	if (opt->pool_path == NULL)
		opt->pool_path = getenv("TCPDIST_POOL");
	if (opt->pool_path == NULL || *opt->pool_path == '\0') {
		fprintf(stderr, "tcpdist: no pool file: give -f POOL or set TCPDIST_POOL\n");
		exit(2);
	}
}

/* Stops the workers that did start when a later one cannot. */
static void workers_abort(struct proc *p, int started)
{
	for (int i = 0; i < started; i++)
		ev_async_send(p->workers[i].loop, &p->workers[i].force);
	for (int i = 0; i < started; i++)
		pthread_join(p->workers[i].thread, NULL);
}

int main(int argc, char **argv)
{
	struct ev_loop *loop;
	ev_signal sigint_w, sigterm_w, sighup_w;
	struct options opt;
	struct proc proc = {0};
	struct run run = {0};
	struct inherited inherited = {NULL, 0, -1}, activated = {NULL, 0, -1};
	const char *control;
	struct farm *farm;
	struct pool *pool;
	struct timespec now;
	char err[ERR_LEN * 2];
	int status = 2, initialized = 0;

	if (argc > 1 && (strcmp(argv[1], "status") == 0 || strcmp(argv[1], "sessions") == 0 ||
			 strcmp(argv[1], "kill") == 0))
		return ctl_main(argc - 1, argv + 1);
	parse_options(argc, argv, &opt);
	log_init("tcpdist", opt.use_syslog, opt.verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	/* A person at a terminal, or -n in a script, reads "tcpdist: ..."
	 * lines; a service's stream gets the time too. */
	log_setup((enum log_format)opt.log_format, !opt.check_only && !isatty(STDERR_FILENO));
	signal(SIGPIPE, SIG_IGN);

	loop = EV_DEFAULT;
	proc.opt = &opt;
	proc.loop = loop;
	proc.run = &run;
	proc.rng = rng_seed();
	pthread_mutex_init(&proc.lock, NULL);
	run.proc = &proc;
	if (loader_init(&proc, err) < 0) {
		log_err("%s", err);
		return 2;
	}
	pool = config_load(&proc, err);
	if (pool == NULL) {
		log_err("%s", err);
		loader_close(&proc);
		return 2;
	}
	if (opt.check_only) {
		pool_free(pool);
		loader_close(&proc);
		puts("configuration OK");
		return close_stdout() == 0 ? 0 : 2;
	}
	farm = farm_create(pool, NULL, err);
	if (farm == NULL) {
		log_err("%s", err);
		pool_free(pool);
		loader_close(&proc);
		return 2;
	}

	proc.farm = farm;
	proc.nworkers = opt.threads;
	control = opt.control ? opt.control : pool->control[0] ? pool->control : NULL;
	if (opt.takeover && control == NULL) {
		log_err("--takeover: no control socket: give --control PATH or set control in the pool");
		goto out;
	}
	/* Before anything is bound: the sockets of the running tcpdist, then
	 * those systemd passed. */
	if (opt.takeover && takeover_receive(control, &inherited, err) < 0) {
		log_err("%s", err);
		goto out;
	}
	if (systemd_listen_fds(&activated, err) < 0) {
		log_err("%s", err);
		goto out;
	}

	proc.available = (size_t)-1;
	atomic_init(&run.workers_left, opt.threads);
	run.drain_ms = opt.drain_timeout_ms;
	clock_gettime(CLOCK_REALTIME, &now);
	proc.last_reload = proc.started_at = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
	proc.workers = calloc((size_t)opt.threads, sizeof(*proc.workers));
	if (proc.workers == NULL) {
		log_err("out of memory");
		goto out;
	}
	for (; initialized < opt.threads; initialized++) {
		struct worker *w = &proc.workers[initialized];

		if (worker_init(w, initialized, &proc, farm) < 0) {
			log_err("cannot set up worker %d: out of memory", initialized);
			initialized++; /* partly set up: worker_destroy frees what it has */
			goto out;
		}
		w->on_exit = worker_exited;
	}
	if (listeners_adopt(&proc, activated.fds, activated.n, 1, err) < 0 ||
	    listeners_adopt(&proc, inherited.fds, inherited.n, 0, err) < 0) {
		log_err("%s", err);
		goto out;
	}
	free(activated.fds), activated.fds = NULL, activated.n = 0; /* the workers' now */
	free(inherited.fds), inherited.fds = NULL, inherited.n = 0;
	if (listeners_update(&proc, pool->listen, pool->nlisten, err) < 0) {
		log_err("%s", err);
		goto out;
	}
	if (opt.metrics && metrics_init(&proc, opt.metrics, err) < 0) {
		log_err("%s", err);
		goto out;
	}
	if (control && control_open(&proc, control, opt.takeover, err) < 0) {
		log_err("%s", err);
		goto out;
	}
	log_info("pool %s: %zu backend%s, balance %s, %d thread%s", opt.pool_path, farm->n,
		 farm->n == 1 ? "" : "s", balance_name(pool->balance), opt.threads,
		 opt.threads == 1 ? "" : "s");
	health_sync(&proc, farm, NULL);
	health_availability(&proc);
	if (loader_start(&proc, err) < 0) {
		log_err("%s", err);
		goto out;
	}
	if (watch_init(&proc, err) < 0)
		log_warn("%s: changes to %s take effect only on SIGHUP", err, opt.pool_path);

	ev_async_init(&run.worker_done, worker_done_cb);
	ev_async_start(loop, &run.worker_done);
	ev_async_init(&proc.health_changed, health_changed_cb);
	ev_async_start(loop, &proc.health_changed);
	survey_proc_init(&proc);
	ev_signal_init(&sigint_w, signal_cb, SIGINT);
	ev_signal_init(&sigterm_w, signal_cb, SIGTERM);
	ev_signal_init(&sighup_w, sighup_cb, SIGHUP);
	sigint_w.data = sigterm_w.data = sighup_w.data = &run;
	ev_signal_start(loop, &sigint_w);
	ev_signal_start(loop, &sigterm_w);
	ev_signal_start(loop, &sighup_w);

	for (int i = 0; i < opt.threads; i++) {
		if (worker_start(&proc.workers[i]) < 0) {
			log_err("cannot start worker thread %d: %s", i, strerror(errno));
			workers_abort(&proc, i);
			goto out;
		}
	}
	takeover_ok(&inherited); /* accepting now: the old process may go */
	sd_notify_send("READY=1");
	proc_notify_status(&proc);
	ev_run(loop, 0);
	for (int i = 0; i < proc.nworkers; i++)
		pthread_join(proc.workers[i].thread, NULL);
	status = 0;
	log_info("stopped");
out:
	inherited_free(&inherited); /* an old process not told "ok" serves on */
	inherited_free(&activated);
	watch_close(&proc);
	loader_close(&proc);
	metrics_close(&proc);
	control_close(&proc);
	survey_finish(&proc);
	health_stop_all(proc.farm);
	for (int i = 0; i < initialized; i++)
		worker_destroy(&proc.workers[i]);
	free(proc.workers);
	zone_stats_free(&proc);
	listen_entries_free(&proc);
	farm_unref(proc.farm);
	/* exit, not return: a load still running on the loader thread reads
	 * proc and opt, which live in this frame until the process is gone. */
	exit(status);
}
