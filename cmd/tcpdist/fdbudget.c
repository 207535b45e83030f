/* Descriptors for clients, but never all of them. The worker threads count
 * every descriptor they hold for connections (a client's socket and its
 * backend's, the relay's pipes, idle pipes kept for reuse) in one counter,
 * and take more only while it stays within a budget: the soft RLIMIT_NOFILE,
 * less what the rest of the process holds (standard streams, event loops,
 * listeners), less a reserve for what the other threads open on the way (a
 * reload, metrics requests, health checks, the control socket). A worker
 * at the budget stops accepting and leaves new clients in the kernel's
 * backlog. So clients can never lock out a reload or a scrape, and a
 * client once accepted always gets its backend socket. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/resource.h>

#include "log.h"
#include "tcpdist.h"

/* The reserve, by what it is kept for (see LIMITS in tcpdist(1)). */
#define RESERVE_RELOAD 8   /* the pool file, name lookups, getifaddrs, a bind probe */
#define RESERVE_METRICS 16 /* metrics requests served at once */
#define RESERVE_CHECKS 64  /* health checks in flight */
#define RESERVE_CONTROL 8  /* the control socket and its clients */
#define RESERVE_LATE 8     /* opened after the count: the metrics listener, inotify, signals */
#define RESERVE_BASE                                                                        \
	(RESERVE_RELOAD + RESERVE_METRICS + RESERVE_CHECKS + RESERVE_CONTROL + RESERVE_LATE)
#define COUNT_WITHOUT_PROC 65536 /* descriptors probed one by one when /proc is missing */

/* Descriptors open now, this process's. */
static long fds_open(long nofile)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	long n = 0;

	if (d != NULL) {
		while ((de = readdir(d)) != NULL)
			n += de->d_name[0] != '.';
		closedir(d);
		return n - 1; /* the directory's own */
	}
	for (int fd = 0; fd < nofile && fd < COUNT_WITHOUT_PROC; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

/* Before the workers run: the soft limit is raised to the hard one, and
 * what is open now (stdio, the event loops) is counted. */
void fd_budget_init(struct fd_budget *b, int nworkers)
{
	struct rlimit rl;
	long reserve;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		rl.rlim_cur = rl.rlim_max = 1024;
	} else if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit raised = {rl.rlim_max, rl.rlim_max};

		if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
			rl.rlim_cur = rl.rlim_max;
	}
	b->nofile = rl.rlim_cur > (rlim_t)LONG_MAX / 2 ? LONG_MAX / 2 : (long)rl.rlim_cur;
	/* And the sockets of one new listen address, one per thread. Under a
	 * small limit a quarter of it: clients get the rest. */
	reserve = RESERVE_BASE + nworkers;
	b->reserve = reserve < b->nofile / 4 ? reserve : b->nofile / 4;
	atomic_store(&b->other, fds_open(b->nofile));
	log_debug("file descriptors: limit %ld, %ld kept back, %ld in use", b->nofile, b->reserve,
		  atomic_load(&b->other));
}

/* What the workers may hold between them. */
static long fd_limit(const struct fd_budget *b)
{
	if (b->nofile == 0)
		return LONG_MAX / 2;
	return b->nofile - b->reserve - atomic_load_explicit(&b->other, memory_order_relaxed);
}

long fd_room(const struct fd_budget *b)
{
	return fd_limit(b) - atomic_load_explicit(&b->held, memory_order_relaxed);
}

int fd_take(struct fd_budget *b, long n)
{
	long held = atomic_load_explicit(&b->held, memory_order_relaxed);

	do {
		if (held + n > fd_limit(b))
			return -1;
	} while (!atomic_compare_exchange_weak_explicit(&b->held, &held, held + n,
							memory_order_relaxed,
							memory_order_relaxed));
	return 0;
}

void fd_give(struct fd_budget *b, long n)
{
	atomic_fetch_sub_explicit(&b->held, n, memory_order_relaxed);
}

void fd_other_add(struct fd_budget *b, long n)
{
	atomic_fetch_add_explicit(&b->other, n, memory_order_relaxed);
}
