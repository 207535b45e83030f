#!/usr/bin/env bash
# bench/checks.sh - what health checks cost: tcpdist -j 1 with 1,000
# backends (one nginx listening on 1,000 loopback ports), each checked by a
# send-expect check every second (to a second nginx on as many ports, the
# backends' check_port, so that answering checks does not slow the server
# of the load down). Reports the CPU of tcpdist's main thread,
# where the checks run, in % of one core (idle and under load), and the
# connection rate through tcpdist with the checks on and off in the same
# process (a reload switches them), in alternating runs: the ratio on/off.
# Targets (issue 16): at most 5% of a core; a ratio of at least 0.97.
# Run from the repository root: bash bench/checks.sh. Not part of CI.
# Settings: BENCH_BACKENDS (1000), BENCH_SECONDS (5, each wrk run),
# BENCH_REPS (5 runs each way), BENCH_IDLE_SECONDS (20), BENCH_CONNS (50),
# BENCH_LOAD_CPU (0: wrk and nginx), BENCH_PROXY_CPU (1: tcpdist),
# BENCH_CHECK_CPU (the nginx answering checks: 2, or BENCH_LOAD_CPU on a
# machine of 2 CPUs, where it then competes with the load),
# BENCH_TCPDIST (bin/tcpdist), BENCH_STRICT (1: exit 1 on a missed target),
# BENCH_NOISE (10: a pair of runs during which other work took more than
# this % of a CPU is measured again, twice at most). The ratio reported is
# the median of the pairs' ratios, each pair run back to back, in turns.
set -euo pipefail
export LC_ALL=C
PATH=$PATH:/usr/sbin:/sbin

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${BENCH_BACKENDS:-1000}
SECS=${BENCH_SECONDS:-5}
REPS=${BENCH_REPS:-5}
IDLE_SECS=${BENCH_IDLE_SECONDS:-20}
CONNS=${BENCH_CONNS:-50}
LOAD_CPU=${BENCH_LOAD_CPU:-0}
PROXY_CPU=${BENCH_PROXY_CPU:-1}
CHECK_CPU=${BENCH_CHECK_CPU:-$(($(nproc) > 2 ? 2 : LOAD_CPU))}
TCPDIST=${BENCH_TCPDIST:-$ROOT/bin/tcpdist}
STRICT=${BENCH_STRICT:-0}
NOISE=${BENCH_NOISE:-10}

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }

for v in N SECS REPS IDLE_SECS CONNS LOAD_CPU PROXY_CPU CHECK_CPU NOISE; do
	[[ ${!v} =~ ^[0-9]{1,5}$ ]] || die "$v must be a whole number, not '${!v}'"
done
((N >= 1 && N <= 10000)) || die "BENCH_BACKENDS must be 1-10000"
for c in nginx wrk taskset curl; do
	command -v "$c" >/dev/null || die "$c missing: apt-get install nginx-light wrk util-linux curl"
done
[[ -x $TCPDIST ]] || die "$TCPDIST missing: run make"

T=$(mktemp -d "${TMPDIR:-/tmp}/tcpdist-checks.XXXXXX")
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Ports: N for nginx, N for the nginx of checks, one for tcpdist, one for its
# metrics: a run of free ones below the kernel's ephemeral range.
ephemeral=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range)
# The middle of the widest gap between listening ports, from 10000 up to it.
BASE=$(ss -Htln | awk '{n = split($4, a, ":"); print a[n]}' | sort -un |
	awk -v lo=10000 -v hi="$ephemeral" -v need=$((2 * N + 2)) '
	function gap(next_used) {
		if (next_used - prev - 1 > best) { best = next_used - prev - 1; at = prev + 1 }
	}
	BEGIN { prev = lo - 1 }
	$1 >= lo && $1 < hi { gap($1); prev = $1 }
	END { gap(hi); if (best >= need) print at + int((best - need) / 2) }')
[[ -n $BASE ]] || die "no run of $((2 * N + 2)) free ports below $ephemeral"
CBASE=$((BASE + N))
LISTEN=$((BASE + 2 * N))
METRICS=$((BASE + 2 * N + 1))
ulimit -n 65536 2>/dev/null || true

# --- nginx: one on N ports for the load, one on N more for the checks -------
# start_nginx NAME FIRST_PORT CPU
start_nginx() {
	local d=$T/$1 i
	mkdir -p "$d/tmp"
	{
		(($(id -u) == 0)) && echo "user root;"
		cat <<EOF
daemon off;
worker_processes 1;
worker_rlimit_nofile 60000;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 20000; }
http {
	access_log off;
	client_body_temp_path $d/tmp;
	proxy_temp_path $d/tmp;
	fastcgi_temp_path $d/tmp;
	uwsgi_temp_path $d/tmp;
	scgi_temp_path $d/tmp;
	server {
EOF
		for ((i = 0; i < N; i++)); do
			echo "		listen 127.0.0.1:$(($2 + i)) backlog=4096;"
		done
		cat <<EOF
		location = / { return 200 "ok\n"; }
		location = /health { return 200 "healthy\n"; }
	}
}
EOF
	} >"$d/nginx.conf"
	taskset -c "$3" nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" 2>"$d/stderr.log" &
	PIDS+=("$!")
	for ((i = 0; i < 100; i++)); do
		curl -s -o /dev/null "http://127.0.0.1:$(($2 + N - 1))/" && return 0
		sleep 0.1
	done
	die "nginx $1 did not start: $(tail -n 3 "$d/stderr.log")"
}
start_nginx nginx "$BASE" "$LOAD_CPU"
start_nginx nginx-checks "$CBASE" "$CHECK_CPU"

# --- tcpdist ---------------------------------------------------------------------
# pool_file INTERVAL: the pool with checks every INTERVAL (0: off).
pool_file() {
	{
		cat <<EOF
[pool]
listen = 127.0.0.1:$LISTEN
balance = roundrobin
check_interval = $1
check_timeout = 500ms
check = send-expect
check_send = GET /health HTTP/1.0\r\n\r\n
check_expect = HTTP/1.1 200
EOF
		for ((i = 0; i < N; i++)); do
			printf '\n[backend b%d]\naddress = 127.0.0.1:%d\ncheck_port = %d\n' "$i" $((BASE + i)) \
				$((CBASE + i))
		done
	} >"$T/pool.tmp"
	mv "$T/pool.tmp" "$T/web.pool"
}
pool_file 1s
cp "$TCPDIST" "$T/tcpdist"
taskset -c "$PROXY_CPU" "$T/tcpdist" -j 1 --metrics "127.0.0.1:$METRICS" "$T/web.pool" \
	2>"$T/tcpdist.log" &
TPID=$!
PIDS+=("$TPID")
for ((i = 0; i < 100; i++)); do
	grep -q 'listening on' "$T/tcpdist.log" 2>/dev/null && break
	sleep 0.1
done

# Nanoseconds on CPU of tcpdist's main thread (its checks, reloads, metrics).
main_ns() { awk '{print $1}' "/proc/$TPID/task/$TPID/schedstat"; }
# And of all its threads.
all_ns() { cat /proc/"$TPID"/task/*/schedstat | awk '{s += $1} END {printf "%.0f\n", s}'; }
now_ns() { date +%s%N; }
reloads() { grep -c 'reloaded' "$T/tcpdist.log" || true; }

# switch_checks INTERVAL: reload with checks every INTERVAL (0: off).
CURRENT=1s
switch_checks() {
	local before
	[[ $1 == "$CURRENT" ]] && return 0
	CURRENT=$1
	before=$(reloads)
	pool_file "$1"
	for ((i = 0; i < 100; i++)); do
		(($(reloads) > before)) && return 0
		sleep 0.05
	done
	die "tcpdist did not reload"
}

# Every backend checked and passing.
for ((i = 0; i < 100; i++)); do
	passed=$(curl -s "http://127.0.0.1:$METRICS/metrics" |
		grep -c '^tcpdist_backend_check_result{.*result="passed"' || true)
	((passed == N)) && break
	sleep 0.2
done
((passed == N)) || die "only $passed of $N backends pass their checks"
log "$N backends checked every 1s, all passing"

# cpu_over SECONDS: % of one core the main thread used over SECONDS.
cpu_over() {
	local n0 t0 n1 t1
	n0=$(main_ns) t0=$(now_ns)
	sleep "$1"
	n1=$(main_ns) t1=$(now_ns)
	echo "scale=2; 100 * ($n1 - $n0) / ($t1 - $t0)" | bc
}

log "idle, checks on: ${IDLE_SECS}s"
idle_on=$(cpu_over "$IDLE_SECS")
switch_checks 0
sleep 1
log "idle, checks off: ${IDLE_SECS}s"
idle_off=$(cpu_over "$IDLE_SECS")

# run_wrk: connections per second through tcpdist over SECS, the main
# thread's CPU meanwhile, and tcpdist's CPU (all threads) per connection in
# microseconds; prints "RATE CPU US".
run_wrk() {
	local n0 a0 t0 n1 a1 t1 out rate
	n0=$(main_ns) a0=$(all_ns) t0=$(now_ns)
	out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${SECS}s" -H 'Connection: close' \
		"http://127.0.0.1:$LISTEN/")
	n1=$(main_ns) a1=$(all_ns) t1=$(now_ns)
	rate=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
	echo "$rate $(echo "scale=2; 100 * ($n1 - $n0) / ($t1 - $t0)" | bc)" \
		"$(echo "scale=2; ($a1 - $a0) / 1000 / ($rate * ($t1 - $t0) / 1000000000)" | bc)"
	grep -q 'Non-2xx\|Socket errors' <<<"$out" && log "wrk: $(grep 'Non-2xx\|Socket errors' <<<"$out")"
	return 0
}

taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d1s -H 'Connection: close' "http://127.0.0.1:$LISTEN/" >/dev/null
# foreign_ticks: CPU ticks of every process but this script's (and its
# children's), ksoftirqd left out, as in bench/run.sh.
foreign_ticks() {
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v self=$$ '
	{
		pid = $1; s = $0; sub(/^.*\) /, "", s); split(s, f, " ")
		pp[pid] = f[2]; t[pid] = f[12] + f[13] + f[14] + f[15]
		if ($0 ~ /^[0-9]+ \(ksoftirqd\//) skip[pid] = 1
	}
	END {
		for (p in t) {
			mine = 0
			q = p
			for (d = 0; d < 64 && q > 0; d++) { if (q == self) { mine = 1; break }; q = pp[q] }
			if (!mine && !skip[p]) sum += t[p]
		}
		printf "%.0f\n", sum
	}'
}
HZ=$(getconf CLK_TCK)

# measure_off, measure_on: one run each way.
measure_off() {
	switch_checks 0
	sleep 1
	read -r rate _ us < <(run_wrk)
	off+=("$rate")
	us_off+=("$us")
}
measure_on() {
	switch_checks 1s
	sleep 1.5 # the first checks come within the first interval
	read -r rate cpu us < <(run_wrk)
	on+=("$rate")
	cpu_on+=("$cpu")
	us_on+=("$us")
}
on=() off=() cpu_on=() pairs=() noisy=0 us_on=() us_off=()
for ((r = 1; r <= REPS; r++)); do
	for ((try = 1; try <= 3; try++)); do
		f0=$(foreign_ticks) t0=$(now_ns)
		# In turns, so that a drift of the machine weighs on both alike.
		if ((r % 2)); then measure_off; measure_on; else measure_on; measure_off; fi
		f1=$(foreign_ticks) t1=$(now_ns)
		busy=$(echo "scale=1; 100 * ($f1 - $f0) / $HZ / (($t1 - $t0) / 1000000000)" | bc)
		(($(echo "$busy <= $NOISE" | bc))) && break
		log "run $r: other work took ${busy}% of a CPU meanwhile; measuring again"
		if ((try < 3)); then
			unset 'on[-1]' 'off[-1]' 'cpu_on[-1]' 'us_on[-1]' 'us_off[-1]'
		else
			noisy=$((noisy + 1))
		fi
	done
	pairs+=("$(echo "scale=4; ${on[-1]} / ${off[-1]}" | bc)")
	log "run $r: checks off ${off[-1]}/s, on ${on[-1]}/s, ratio ${pairs[-1]} (main thread ${cpu_on[-1]}%, others ${busy}%)"
done

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
m_off=$(median "${off[@]}")
m_on=$(median "${on[@]}")
m_cpu=$(median "${cpu_on[@]}")
ratio=$(median "${pairs[@]}")
bound=$(echo "scale=4; 1 - $m_cpu / 100" | bc)
checks=$(curl -s "http://127.0.0.1:$METRICS/metrics" | grep -c '^tcpdist_backend_check_result{.*result="passed"' || true)

cat <<EOF
health checks: $N backends, send-expect (GET /health, expect 'HTTP/1.1 200') every 1s
host: $(uname -r), $(nproc) CPUs, tcpdist -j 1 on CPU $PROXY_CPU, nginx and wrk on CPU $LOAD_CPU, nginx of checks on CPU $CHECK_CPU
main thread CPU, idle:        checks on ${idle_on}%, off ${idle_off}% of one core (target <= 5%)
main thread CPU, under load:  checks on ${m_cpu}% (median of $REPS runs)
connection rate (wrk -c$CONNS, Connection: close, ${SECS}s runs, medians of $REPS):
  checks off ${m_off}/s, on ${m_on}/s; ratio on/off of each pair: median ${ratio} (target >= 0.97)
  pairs: ${pairs[*]}${noisy:+ ($noisy pairs busy with other work all 3 times)}
  runs off: ${off[*]}
  runs on:  ${on[*]}
tcpdist's CPU (all threads) per connection: checks off $(median "${us_off[@]}") us, on $(median "${us_on[@]}") us
  (the checks' fixed cost spread over the connections of these runs)
where tcpdist is the bottleneck, the checks leave its core $bound of its time: the ratio to expect
backends passing at the end: $checks of $N
EOF
miss=0
(($(echo "$idle_on > 5" | bc))) && miss=1
(($(echo "$ratio < 0.97" | bc))) && miss=1
((STRICT == 1 && miss == 1)) && exit 1
exit 0
