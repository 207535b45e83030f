# bench/lib.sh - what the bench scripts share; sourced, after ROOT is set.
# A scratch directory $T and the background processes in PIDS, both gone
# at exit (kill by PID), and the CPU counter the comparisons use.

T=$(mktemp -d)
PIDS=()
bench_cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap bench_cleanup EXIT

# CPU nanoseconds of all of PID's threads (schedstat: the scheduler's own
# count, where /proc/PID/stat has 10 ms ticks).
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{ t += $1 } END { printf "%.0f", t }'; }
