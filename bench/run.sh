#!/usr/bin/env bash
# bench/run.sh - tcpdist -j 1 against HAProxy 2.6 (plain and splice) and a
# direct connection, on loopback, with three nginx backends and wrk.
# Run from the repository root: bash bench/run.sh (or make bench).
# Settings come from BENCH_* environment variables; see bench/README.md.
set -euo pipefail
export LC_ALL=C
PATH=$PATH:/usr/sbin:/sbin

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

REPS=${BENCH_REPS:-3}
SECS=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNS:-50}
BULK_CONNS=${BENCH_BULK_CONNS:-8}
IDLE=${BENCH_IDLE_CONNS:-5000}
TCPDIST=${BENCH_TCPDIST:-$ROOT/bin/tcpdist}
LOAD_CPU=${BENCH_LOAD_CPU:-0}
PROXY_CPU=${BENCH_PROXY_CPU:-1}
PORT_BASE=${BENCH_PORT_BASE:-}
OUT=${BENCH_OUT:-}
KEEP=${BENCH_KEEP:-0}
STRICT=${BENCH_STRICT:-0}
WAIT_QUIET=${BENCH_WAIT_QUIET:-0}
NOISE=${BENCH_NOISE:-10}

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }

# check_num VAR ENVNAME MIN MAX: VAR must hold a whole number in MIN..MAX;
# leading zeros are dropped so that arithmetic never reads it as octal.
check_num() {
	local v=${!1}
	[[ $v =~ ^[0-9]{1,7}$ ]] && ((10#$v >= $3 && 10#$v <= $4)) ||
		die "$2 must be a whole number from $3 to $4, not '$v'"
	printf -v "$1" '%d' "$((10#$v))"
}
check_num REPS BENCH_REPS 1 99
check_num SECS BENCH_SECONDS 1 3600
check_num CONNS BENCH_CONNS 1 10000
check_num BULK_CONNS BENCH_BULK_CONNS 1 10000
check_num IDLE BENCH_IDLE_CONNS 1 100000
check_num LOAD_CPU BENCH_LOAD_CPU 0 4095
check_num PROXY_CPU BENCH_PROXY_CPU 0 4095
check_num WAIT_QUIET BENCH_WAIT_QUIET 0 86400
check_num NOISE BENCH_NOISE 0 200
[[ -z $PORT_BASE ]] || check_num PORT_BASE BENCH_PORT_BASE 1024 65000
[[ $KEEP == [01] && $STRICT == [01] ]] || die "BENCH_KEEP and BENCH_STRICT take 0 or 1"

# --- packages ---------------------------------------------------------------

ensure_packages() {
	local need=() sudo=()
	command -v nginx >/dev/null || need+=(nginx-light)
	command -v haproxy >/dev/null || need+=(haproxy)
	command -v wrk >/dev/null || need+=(wrk)
	command -v taskset >/dev/null || need+=(util-linux)
	command -v cc >/dev/null || need+=(gcc libc6-dev)
	((${#need[@]} == 0)) && return 0
	if (($(id -u) != 0)); then
		if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
			sudo=(sudo)
		else
			log "missing packages: ${need[*]}; install them with:"
			log "  sudo apt-get update && sudo apt-get install -y ${need[*]}"
			exit 2
		fi
	fi
	log "installing ${need[*]}"
	"${sudo[@]}" apt-get update -q >&2 &&
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -q "${need[@]}" >&2 ||
		die "apt-get install ${need[*]} failed"
}
ensure_packages

# --- processes --------------------------------------------------------------

T=$(mktemp -d "${TMPDIR:-/tmp}/tcpdist-bench.XXXXXX")
PIDS=()

# alive PID: true while PID runs (a zombie counts as gone).
alive() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	[[ ${s:0:1} != Z ]]
}

untrack() {
	local p keep=()
	for p in "${PIDS[@]}"; do
		[[ $p == "$1" ]] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

# stop_pid PID: SIGTERM, then a second SIGTERM (tcpdist exits at once on the
# second), then SIGKILL; every wait is bounded.
stop_pid() {
	local pid=$1 round i
	for round in TERM TERM KILL; do
		alive "$pid" || break
		kill "-$round" "$pid" 2>/dev/null || true
		for ((i = 0; i < 30; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
	done
	wait "$pid" 2>/dev/null || true
	untrack "$pid"
}

cleanup() {
	local pid
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do
		stop_pid "$pid"
	done
	if [[ $KEEP == 1 ]]; then
		log "kept work directory $T"
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The proxies and nginx need one descriptor per connection end (tcpdist may
# also hold splice pipes): raise the limit, which children inherit.
ulimit -Hn 65536 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
((NOFILE >= 2 * IDLE + 1000)) ||
	log "warning: open-file limit $NOFILE is low for $IDLE idle connections"

# HAProxy wants 2 descriptors per connection plus, with splice, a pipe for
# every fourth: keep maxconn 20000 unless the limit cannot take it.
HAP_MAXCONN=$(((NOFILE - 200) * 2 / 5))
((HAP_MAXCONN <= 20000)) || HAP_MAXCONN=20000
((HAP_MAXCONN >= IDLE + 100)) ||
	die "open-file limit $NOFILE is too low for $IDLE idle connections through HAProxy"

# --- environment checks -------------------------------------------------------

taskset -c "$LOAD_CPU" true 2>/dev/null || die "cannot pin to CPU $LOAD_CPU (BENCH_LOAD_CPU)"
taskset -c "$PROXY_CPU" true 2>/dev/null || die "cannot pin to CPU $PROXY_CPU (BENCH_PROXY_CPU)"
((LOAD_CPU != PROXY_CPU)) || log "warning: load and proxy share CPU $LOAD_CPU"
CLK_TCK=$(getconf CLK_TCK)
HAP_VERSION=$(haproxy -v 2>/dev/null | awk 'NR == 1 {print $3}')
[[ $HAP_VERSION == 2.6* ]] || log "warning: HAProxy $HAP_VERSION, the targets refer to 2.6"

TARGETS=(direct haproxy haproxy-splice tcpdist)
HAVE_TCPDIST=1
if [[ ! -x $TCPDIST ]]; then
	HAVE_TCPDIST=0
	TARGETS=(direct haproxy haproxy-splice)
	log "warning: $TCPDIST not found (build it with make); measuring without tcpdist"
elif ldd "$TCPDIST" 2>/dev/null | grep -Eq 'lib(a|ub|t|l)san' ||
	grep -aq -e __asan_init -e __tsan_init -e __ubsan_handle "$TCPDIST"; then
	# A sanitizer build is several times slower and keeps freed memory in
	# quarantine: every figure would be meaningless.
	die "$TCPDIST is a sanitizer build; rebuild it without SANITIZE (make clean && make)"
fi

cc -O2 -o "$T/idleconns" bench/idleconns.c || die "cannot build bench/idleconns.c"
if ((HAVE_TCPDIST)); then
	# Run a snapshot, so that a rebuild during the run cannot mix two versions.
	cp "$TCPDIST" "$T/tcpdist" || die "cannot copy $TCPDIST"
	TCPDIST_REAL=$TCPDIST
	TCPDIST=$T/tcpdist
fi

# port_free PORT: nothing accepts on 127.0.0.1:PORT.
port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pick_ports() {
	local try p ok
	for ((try = 0; try < 20; try++)); do
		[[ -n $PORT_BASE ]] || PORT_BASE=$((21000 + RANDOM % 10000))
		ok=1
		for ((p = PORT_BASE; p < PORT_BASE + 6; p++)); do
			port_free "$p" || { ok=0; break; }
		done
		((ok)) && return 0
		[[ -z ${BENCH_PORT_BASE:-} ]] || die "ports $PORT_BASE-$((PORT_BASE + 5)) are not free"
		PORT_BASE=
	done
	die "no six free ports found"
}
pick_ports
NGX=($PORT_BASE $((PORT_BASE + 1)) $((PORT_BASE + 2)))
declare -A PORT=([direct]=${NGX[0]} [haproxy]=$((PORT_BASE + 3))
	[haproxy-splice]=$((PORT_BASE + 4)) [tcpdist]=$((PORT_BASE + 5)))
declare -A PID=()

# wait_port PORT PID: wait up to 5 s until PORT accepts while PID is alive.
wait_port() {
	local i
	for ((i = 0; i < 100; i++)); do
		alive "$2" || return 1
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# --- nginx ----------------------------------------------------------------------

start_nginx() {
	local d=$T/nginx p pid user=
	mkdir -p "$d/www" "$d/tmp"
	printf 'ok\n' >"$d/www/index.html"
	head -c 1048576 /dev/zero >"$d/www/1m"
	# A root master would hand the workers to nobody, who cannot read $T.
	(($(id -u) == 0)) && user="user root;"
	{
		cat <<EOF
$user
daemon off;
worker_processes 1;
worker_rlimit_nofile $((2 * IDLE + 10000));
pid $d/nginx.pid;
error_log $d/error.log warn;
events {
	worker_connections $((2 * IDLE + 5000));
}
http {
	access_log off;
	client_body_temp_path $d/tmp/body;
	proxy_temp_path $d/tmp/proxy;
	fastcgi_temp_path $d/tmp/fastcgi;
	uwsgi_temp_path $d/tmp/uwsgi;
	scgi_temp_path $d/tmp/scgi;
	default_type application/octet-stream;
	sendfile on;
	tcp_nopush on;
	tcp_nodelay on;
	keepalive_timeout 300s;
	keepalive_requests 10000000;
	client_header_timeout 300s;
	root $d/www;
EOF
		for p in "${NGX[@]}"; do
			cat <<EOF
	server {
		listen 127.0.0.1:$p backlog=4096;
		location = / { return 200 "ok\n"; }
		location = /1m { }
	}
EOF
		done
		echo "}"
	} >"$d/nginx.conf"
	taskset -c "$LOAD_CPU" nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" \
		>"$d/stdout.log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	for p in "${NGX[@]}"; do
		wait_port "$p" "$pid" || {
			cat "$d/stdout.log" "$d/error.log" >&2 2>/dev/null || true
			die "nginx did not start"
		}
	done
}

# --- proxies --------------------------------------------------------------------

haproxy_config() { # PORT SPLICE(0|1)
	local maxconn=$HAP_MAXCONN
	cat <<EOF
global
	nbthread 1
	maxconn $maxconn

defaults
	mode tcp
	timeout connect 3s
	timeout client 1h
	timeout server 1h
	maxconn $maxconn
EOF
	if (($2)); then
		printf '\toption splice-request\n\toption splice-response\n'
	fi
	cat <<EOF

listen bench
	bind 127.0.0.1:$1
	balance roundrobin
	server web1 127.0.0.1:${NGX[0]}
	server web2 127.0.0.1:${NGX[1]}
	server web3 127.0.0.1:${NGX[2]}
EOF
}

tcpdist_pool() { # PORT
	cat <<EOF
; generated by bench/run.sh
[pool]
listen = 127.0.0.1:$1
balance = roundrobin
idle_timeout = 1h
; HAProxy runs without health checks; so does tcpdist
check_interval = 0

[backend web1]
address = 127.0.0.1:${NGX[0]}

[backend web2]
address = 127.0.0.1:${NGX[1]}

[backend web3]
address = 127.0.0.1:${NGX[2]}
EOF
}

# start_target NAME: start a fresh proxy pinned to PROXY_CPU; sets PID[NAME].
start_target() {
	local name=$1 port=${PORT[$1]} splice=0 cfg pid
	case $name in
	haproxy | haproxy-splice)
		[[ $name == haproxy-splice ]] && splice=1
		cfg=$T/$name.cfg
		haproxy_config "$port" "$splice" >"$cfg"
		haproxy -c -q -f "$cfg" >&2 || die "bad HAProxy configuration $cfg"
		taskset -c "$PROXY_CPU" haproxy -db -f "$cfg" >>"$T/$name.log" 2>&1 &
		;;
	tcpdist)
		cfg=$T/bench.pool
		tcpdist_pool "$port" >"$cfg"
		"$TCPDIST" -n -f "$cfg" >/dev/null || die "tcpdist rejects the pool file $cfg"
		taskset -c "$PROXY_CPU" "$TCPDIST" -j 1 -f "$cfg" >>"$T/$name.log" 2>&1 &
		;;
	*)
		die "start_target: unknown target $name"
		;;
	esac
	pid=$!
	PIDS+=("$pid")
	PID[$name]=$pid
	wait_port "$port" "$pid" || {
		tail -n 20 "$T/$name.log" >&2 || true
		die "$name did not start on 127.0.0.1:$port"
	}
}

stop_target() {
	[[ -n ${PID[$1]:-} ]] || return 0
	stop_pid "${PID[$1]}"
	unset "PID[$1]"
}

# cpu_ticks PID: "utime stime" of the whole process, in clock ticks.
cpu_ticks() {
	local s f
	s=$(cat "/proc/$1/stat") || return 1
	s=${s##*) }
	read -r -a f <<<"$s"
	echo "${f[11]} ${f[12]}"
}

# mem_kb PID: proportional set size (Pss), or VmRSS on kernels without smaps_rollup.
mem_kb() {
	if [[ -r /proc/$1/smaps_rollup ]]; then
		awk '/^Pss:/ {print $2; exit}' "/proc/$1/smaps_rollup"
	else
		awk '/^VmRSS:/ {print $2; exit}' "/proc/$1/status"
	fi
}

fd_count() {
	local a=("/proc/$1/fd/"*)
	echo "${#a[@]}"
}

# --- measurements -------------------------------------------------------------

RES=$T/results
mkdir -p "$RES"
: >"$T/problems"

# record METRIC TARGET VALUE: one line "VALUE NOISY" per repetition; NOISY is 1
# for a run that stayed disturbed by other work (see run_scenario).
NOISY=0
record() {
	echo "$3 $NOISY" >>"$RES/$1.$2"
}

problem() {
	log "problem: $*"
	echo "$*" >>"$T/problems"
}

cat >"$T/report.lua" <<'EOF'
done = function(summary, latency, requests)
	local e = summary.errors
	io.write(string.format(
		"BENCH requests=%.0f bytes=%.0f duration_us=%.0f p50_us=%.0f p99_us=%.0f " ..
		"connect=%.0f read=%.0f write=%.0f status=%.0f timeout=%.0f\n",
		summary.requests, summary.bytes, summary.duration,
		latency:percentile(50), latency:percentile(99),
		e.connect, e.read, e.write, e.status, e.timeout))
end
EOF

declare -A W=()

# run_wrk OUTFILE SECONDS WRK-ARGS...: run wrk pinned to LOAD_CPU; fills W[].
run_wrk() {
	local out=$1 secs=$2 pid kv
	shift 2
	taskset -c "$LOAD_CPU" wrk -t1 -d"${secs}s" --timeout 5s -s "$T/report.lua" "$@" \
		>"$out" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	if ! wait "$pid"; then
		untrack "$pid"
		cat "$out" >&2
		die "wrk $* failed"
	fi
	untrack "$pid"
	W=()
	for kv in $(grep '^BENCH ' "$out" | tail -n 1); do
		[[ $kv == *=* ]] && W[${kv%%=*}]=${kv#*=}
	done
	[[ -n ${W[requests]:-} && -n ${W[duration_us]:-} && ${W[duration_us]} -gt 0 ]] || {
		cat "$out" >&2
		die "cannot read wrk's report in $out"
	}
}

# foreign_ticks: CPU ticks, their own and their reaped children's, of every
# process that is neither this script nor one of its descendants. ksoftirqd is
# left out: it mostly carries the benchmark's own packets. The difference over
# a run is the other work the machine did meanwhile, short-lived processes
# included (their time moves into their parent's cutime and cstime).
foreign_ticks() {
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v self=$$ '
	{
		pid = $1
		s = $0
		sub(/^.*\) /, "", s)
		split(s, f, " ")
		pp[pid] = f[2]
		t[pid] = f[12] + f[13] + f[14] + f[15]
		if ($0 ~ /^[0-9]+ \(ksoftirqd\//)
			skip[pid] = 1
	}
	END {
		for (p in t) {
			mine = 0
			q = p
			for (d = 0; d < 64 && q > 0; d++) {
				if (q == self) {
					mine = 1
					break
				}
				q = pp[q]
			}
			if (!mine && !skip[p])
				sum += t[p]
		}
		printf "%.0f\n", sum
	}'
}

# steal_ticks: time the hypervisor gave to other guests, all CPUs, from /proc/stat.
steal_ticks() {
	awk '$1 == "cpu" {print $9 + 0; exit}' /proc/stat
}

url() { # TARGET PATH
	echo "http://127.0.0.1:${PORT[$1]}$2"
}

# run_scenario SCENARIO TARGET REP: measure, and measure again (at most twice)
# when other work and steal took more than NOISE% of a CPU during the run.
# Before measuring again it waits for the machine to calm down. At most 12
# repeats and 120 s of such waiting in the whole run keep its length bounded.
RERUNS_LEFT=12
PAUSE_LEFT=120
run_scenario() {
	local try
	for ((try = 1; ; try++)); do
		measure "$@" && return 0
		((try < 3 && RERUNS_LEFT > 0)) || break
		RERUNS_LEFT=$((RERUNS_LEFT - 1))
		log "$2 $1 rep $3: $FOREIGN s of CPU went to other work or steal; measuring again"
		wait_quiet $((PAUSE_LEFT < 30 ? PAUSE_LEFT : 30))
		PAUSE_LEFT=$((PAUSE_LEFT - WAITED))
	done
	problem "$2 $1 rep $3: $FOREIGN s of CPU went to other work or steal" \
		"(try $try); it is left out of the medians"
	NOISY=1
	record_run "$@"
	NOISY=0
}

# measure SCENARIO TARGET REP: one wrk run; records it and returns 0 unless
# the machine was busy with other work or the hypervisor stole time from it
# (FOREIGN seconds of CPU, both together).
measure() {
	local scen=$1 tgt=$2 rep=$3 out=$T/wrk.$1.$2.$3 pid= c0='0 0' c1='0 0' f0 f1 st0 st1
	local args=()
	CPU= CPU_USER=
	case $scen in
	conn) args=(-c"$CONNS" -H "Connection: close" "$(url "$tgt" /)") ;;
	ka) args=(-c"$CONNS" --latency "$(url "$tgt" /)") ;;
	bulk) args=(-c"$BULK_CONNS" "$(url "$tgt" /1m)") ;;
	esac
	if [[ $tgt != direct ]]; then
		pid=${PID[$tgt]}
		alive "$pid" || die "$tgt (pid $pid) has died; see its log in $T/$tgt.log"
	fi
	f0=$(foreign_ticks)
	st0=$(steal_ticks)
	[[ -z $pid ]] || c0=$(cpu_ticks "$pid")
	run_wrk "$out" "$SECS" "${args[@]}"
	sleep 0.2 # let the proxy finish the last closes
	[[ -z $pid ]] || c1=$(cpu_ticks "$pid")
	f1=$(foreign_ticks)
	st1=$(steal_ticks)
	if [[ -n $pid ]]; then
		read -r CPU CPU_USER < <(awk -v a="$c0" -v b="$c1" -v hz="$CLK_TCK" 'BEGIN {
			split(a, x, " "); split(b, y, " ")
			print (y[1] + y[2] - x[1] - x[2]) / hz, (y[1] - x[1]) / hz
		}')
	fi
	FOREIGN=$(awk -v f="$((f1 - f0 + st1 - st0))" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", f / hz}')
	if awk -v f="$FOREIGN" -v s="$SECS" -v n="$NOISE" 'BEGIN {exit !(f > s * n / 100)}'; then
		return 1
	fi
	record_run "$@"
}

# record_run SCENARIO TARGET REP: record the figures of the wrk run in W[] and CPU.
record_run() {
	local scen=$1 tgt=$2 rep=$3 cpu=$CPU cpu_user=$CPU_USER errs
	errs=$((W[connect] + W[read] + W[write] + W[status] + W[timeout]))
	((errs == 0)) || problem "$tgt $scen rep $rep: wrk errors connect ${W[connect]}" \
		"read ${W[read]} write ${W[write]} status ${W[status]} timeout ${W[timeout]}" \
		"(of ${W[requests]} requests)"
	((W[requests] > 0)) || die "$tgt $scen rep $rep: no request completed"
	local req=${W[requests]} bytes=${W[bytes]} dur=${W[duration_us]}
	case $scen in
	conn)
		record conn_rate "$tgt" "$(awk -v r="$req" -v d="$dur" 'BEGIN {print r / (d / 1e6)}')"
		if [[ -n $cpu ]]; then
			record conn_cpu "$tgt" "$(awk -v c="$cpu" -v r="$req" 'BEGIN {print c / r * 10000}')"
			record conn_cpu_user "$tgt" \
				"$(awk -v c="$cpu_user" -v r="$req" 'BEGIN {print c / r * 10000}')"
			record conn_cpu_sys "$tgt" \
				"$(awk -v c="$cpu" -v u="$cpu_user" -v r="$req" 'BEGIN {print (c - u) / r * 10000}')"
		fi
		;;
	ka)
		record ka_rps "$tgt" "$(awk -v r="$req" -v d="$dur" 'BEGIN {print r / (d / 1e6)}')"
		record ka_p50 "$tgt" "$(awk -v u="${W[p50_us]}" 'BEGIN {print u / 1000}')"
		record ka_p99 "$tgt" "$(awk -v u="${W[p99_us]}" 'BEGIN {print u / 1000}')"
		;;
	bulk)
		record bulk_mbps "$tgt" "$(awk -v b="$bytes" -v d="$dur" 'BEGIN {print b / d}')"
		[[ -z $cpu ]] || record bulk_cpu "$tgt" \
			"$(awk -v c="$cpu" -v b="$bytes" 'BEGIN {print c / (b / 1e9)}')"
		;;
	esac
	log "$(printf '%-5s %-15s rep %d: %s requests in %.2f s%s, other work+steal %s s' "$scen" \
		"$tgt" "$rep" "$req" "$(awk -v d="$dur" 'BEGIN {print d / 1e6}')" \
		"${cpu:+, proxy CPU $cpu s}" "$FOREIGN")"
	record noise "$tgt" "$FOREIGN"
}

# idle_open N FILE: start idleconns against 127.0.0.1:IDLE_PORT; sets IDLE_PID
idle_open() {
	local n=$1 file=$2 pid i
	taskset -c "$LOAD_CPU" "$T/idleconns" 127.0.0.1 "$IDLE_PORT" "$n" >"$file" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	for ((i = 0; i < 600; i++)); do
		grep -qs '^open ' "$file" && break
		alive "$pid" || break
		sleep 0.05
	done
	grep -qs '^open ' "$file" || {
		cat "$file" >&2
		stop_pid "$pid"
		return 1
	}
	IDLE_PID=$pid
}

# idle_close FILE: SIGTERM idleconns; IDLE_ALIVE = connections still open at the end.
idle_close() {
	local file=$1 pid=$IDLE_PID i
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		grep -qs '^alive ' "$file" && break
		alive "$pid" || break
		sleep 0.05
	done
	stop_pid "$pid"
	IDLE_ALIVE=$(awk '/^alive / {print $2}' "$file")
}

# mem_test TARGET REP: fresh proxy, IDLE idle connections, Pss growth per connection.
mem_test() {
	local tgt=$1 rep=$2 pid before after fds0 fds i f=$T/idle.$1.$2 bpc
	start_target "$tgt"
	pid=${PID[$tgt]}
	IDLE_PORT=${PORT[$tgt]}
	# A few connections first, so one-time set-up is not charged to the 5,000.
	idle_open 16 "$f.warm" || die "$tgt: cannot open warm-up connections"
	idle_close "$f.warm"
	sleep 0.3
	before=$(mem_kb "$pid")
	fds0=$(fd_count "$pid")
	idle_open "$IDLE" "$f" || die "$tgt: cannot open $IDLE idle connections"
	# Both ends of every connection must exist: wait for the backend side.
	for ((i = 0; i < 200; i++)); do
		fds=$(fd_count "$pid")
		((fds >= fds0 + 2 * IDLE)) && break
		sleep 0.05
	done
	((fds >= fds0 + 2 * IDLE)) ||
		problem "$tgt mem rep $rep: only $((fds - fds0)) new descriptors for $IDLE connections"
	sleep 0.5
	after=$(mem_kb "$pid")
	idle_close "$f"
	[[ $IDLE_ALIVE == "$IDLE" ]] ||
		problem "$tgt mem rep $rep: ${IDLE_ALIVE:-?} of $IDLE idle connections survived the hold"
	stop_target "$tgt"
	bpc=$(awk -v a="$after" -v b="$before" -v n="$IDLE" 'BEGIN {print (a - b) * 1024 / n}')
	record mem_bpc "$tgt" "$bpc"
	record mem_total "$tgt" "$after"
	log "$(printf 'idle  %-15s rep %d: Pss %d -> %d KiB, %.0f B per connection' \
		"$tgt" "$rep" "$before" "$after" "$bpc")"
}

# rotated REP: the targets, in an order that rotates every repetition.
rotated() {
	local -a t=("$@")
	local rep=$1 i n
	t=("${t[@]:1}")
	n=${#t[@]}
	for ((i = 0; i < n; i++)); do
		echo "${t[$(((i + rep) % n))]}"
	done
}

# cpu_sample: "busy steal total" ticks summed over all CPUs, from /proc/stat.
cpu_sample() {
	awk '$1 == "cpu" {
		t = 0; for (i = 2; i <= NF; i++) t += $i
		print t - $5 - $6, $9, t; exit
	}' /proc/stat
}

# pct_between "A" "B" FIELD: FIELD's share of the total between two samples, in %.
pct_between() {
	awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN {
		split(a, x, " "); split(b, y, " ")
		printf "%.0f", (y[3] > x[3]) ? 100 * (y[f] - x[f]) / (y[3] - x[3]) : 0
	}'
}

# wait_quiet MAX: sample the machine once a second until it was under 5% busy
# for 3 seconds in a row, or MAX seconds have passed. Sets IDLE_BUSY (% busy in
# the last second), WAITED (seconds) and s1 (the last sample).
wait_quiet() {
	local quiet=0 s0 next_log=0
	for ((WAITED = 0; ; )); do
		s0=$(cpu_sample)
		sleep 1
		s1=$(cpu_sample)
		WAITED=$((WAITED + 1))
		IDLE_BUSY=$(pct_between "$s0" "$s1" 1)
		((IDLE_BUSY < 5)) && quiet=$((quiet + 1)) || quiet=0
		((quiet < 3 && WAITED < $1)) || break
		if ((IDLE_BUSY >= 5 && WAITED >= next_log)); then
			log "waiting for the machine to be quiet ($IDLE_BUSY% busy)"
			next_log=$((WAITED + 30))
		fi
	done
}

# --- the run --------------------------------------------------------------------

START=$(date +%s)
wait_quiet "$WAIT_QUIET"
START_BUSY=$IDLE_BUSY
START_SAMPLE=$s1
((IDLE_BUSY < 5)) || log "warning: $IDLE_BUSY% of all CPU time was busy before the run" \
	"started; other work on this machine makes the figures noisy"
start_nginx
PROXIES=("${TARGETS[@]:1}")

log "memory with $IDLE idle connections, $REPS repetitions"
for ((rep = 1; rep <= REPS; rep++)); do
	for tgt in $(rotated "$rep" "${PROXIES[@]}"); do
		mem_test "$tgt" "$rep"
	done
done

for tgt in "${PROXIES[@]}"; do
	start_target "$tgt"
done
log "warm-up"
for tgt in "${TARGETS[@]}"; do
	run_wrk "$T/wrk.warmup.$tgt" 1 -c"$CONNS" "$(url "$tgt" /)"
done

log "load: $REPS repetitions of ${SECS} s per scenario and target"
for ((rep = 1; rep <= REPS; rep++)); do
	for scen in conn ka bulk; do
		for tgt in $(rotated "$rep" "${TARGETS[@]}"); do
			run_scenario "$scen" "$tgt" "$rep"
		done
	done
done
for tgt in "${PROXIES[@]}"; do
	stop_target "$tgt"
done
s2=$(cpu_sample)
STEAL=$(pct_between "$START_SAMPLE" "$s2" 2)

# --- the report -----------------------------------------------------------------

# median METRIC TARGET: median of the runs that were not noisy (of all runs when
# every one was).
median() {
	local f=$RES/$1.$2
	[[ -s $f ]] || { echo -; return; }
	{ awk '$2 == 0 {print $1}' "$f" | grep . || awk '{print $1}' "$f"; } | sort -g |
		awk '{v[NR] = $1}
		END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

REPORT=$T/report.txt
{
	echo "tcpdist benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "host: $(uname -r), $(nproc) CPUs ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), proxy on CPU $PROXY_CPU, wrk and nginx on CPU $LOAD_CPU"
	echo "versions: $("$TCPDIST" --version 2>/dev/null || echo 'tcpdist absent')${TCPDIST_REAL:+ ($TCPDIST_REAL)}, HAProxy $HAP_VERSION, $(nginx -v 2>&1 | sed 's/.*: //'), $(wrk -v 2>&1 | awk 'NR == 1 {print $1, $2}')"
	echo "machine: $START_BUSY% CPU busy before the run, $STEAL% stolen by the hypervisor during it"
	echo "settings: $REPS repetitions x ${SECS} s, medians; wrk -t1 -c$CONNS (bulk -c$BULK_CONNS); $IDLE idle connections; HAProxy maxconn $HAP_MAXCONN; open-file limit $NOFILE"
	echo
	{
		printf 'metric\tdirect\thaproxy\thaproxy-splice\ttcpdist\tvs haproxy\tvs splice\ttarget\tresult\n'
		for m in conn_rate ka_rps ka_p50 ka_p99 bulk_mbps conn_cpu bulk_cpu mem_bpc mem_total; do
			printf '%s\t%s\t%s\t%s\t%s\n' "$m" "$(median "$m" direct)" \
				"$(median "$m" haproxy)" "$(median "$m" haproxy-splice)" \
				"$(median "$m" tcpdist)"
		done
	} | awk -F'\t' '
	function num(v) { return v != "-" && v != "" }
	function fmt(v, f) { return num(v) ? sprintf(f, v) : "-" }
	function ratio(a, b) { return (num(a) && num(b) && b > 0) ? sprintf("%.2fx", a / b) : "-" }
	function max2(a, b) { return !num(a) ? b : !num(b) ? a : (a > b ? a : b) }
	function min2(a, b) { return !num(a) ? b : !num(b) ? a : (a < b ? a : b) }
	NR == 1 {
		printf "%-30s %10s %10s %14s %10s %10s %10s  %-22s %s\n", \
			$1, $2, $3, $4, $5, $6, $7, $8, $9
		next
	}
	{
		m = $1; d = $2; h = $3; s = $4; t = $5
		if (m == "conn_rate") {
			name = "new connections/s"; f = "%.0f"
			tgt = ">= best HAProxy"; ok = num(t) ? t >= max2(h, s) : -1
		} else if (m == "ka_rps") {
			name = "keep-alive requests/s"; f = "%.0f"
			tgt = ">= best HAProxy"; ok = num(t) ? t >= max2(h, s) : -1
		} else if (m == "ka_p50") {
			name = "keep-alive p50 latency ms"; f = "%.3f"; tgt = "(none)"; ok = -2
		} else if (m == "ka_p99") {
			name = "keep-alive p99 latency ms"; f = "%.3f"
			tgt = "<= best HAProxy"; ok = num(t) ? t <= min2(h, s) : -1
		} else if (m == "bulk_mbps") {
			name = "1 MiB bulk MB/s"; f = "%.0f"
			tgt = ">= best HAProxy"; ok = num(t) ? t >= max2(h, s) : -1
		} else if (m == "conn_cpu") {
			name = "CPU s per 10,000 connections"; f = "%.3f"
			tgt = "<= 0.8x haproxy"; ok = (num(t) && num(h)) ? t <= 0.8 * h : -1
		} else if (m == "bulk_cpu") {
			name = "CPU s per GB relayed"; f = "%.3f"
			tgt = "<= haproxy-splice"; ok = (num(t) && num(s)) ? t <= s : -1
		} else if (m == "mem_bpc") {
			name = "idle memory B/connection"; f = "%.0f"
			tgt = "< 1024"; ok = num(t) ? t < 1024 : -1
		} else if (m == "mem_total") {
			name = "Pss KiB with idle conns open"; f = "%.0f"; tgt = "(none)"; ok = -2
		}
		res = ok == 1 ? "PASS" : ok == 0 ? "FAIL" : ok == -1 ? "n/a" : ""
		printf "%-30s %10s %10s %14s %10s %10s %10s  %-22s %s\n", name, fmt(d, f), \
			fmt(h, f), fmt(s, f), fmt(t, f), ratio(t, h), ratio(t, s), tgt, res
	}'
	echo
	echo "per-repetition values (run order; * = noisy run, left out) and max/min spread:"
	for m in conn_rate ka_rps ka_p50 ka_p99 bulk_mbps conn_cpu bulk_cpu mem_bpc noise; do
		for tgt in "${TARGETS[@]}"; do
			[[ -s $RES/$m.$tgt ]] || continue
			printf '  %-10s %-15s' "$m" "$tgt"
			awk -v m="$m" '{
				v = $1
				printf " %10.4g%s", v, $2 == 1 ? "*" : " "
				if (!n++ || v < lo)
					lo = v
				if (v > hi)
					hi = v
			}
			END {if (m != "noise" && lo > 0) printf "  (%.2f)", hi / lo; print ""}' "$RES/$m.$tgt"
		done
	done
	if [[ -s $RES/conn_rate.tcpdist && -s $RES/conn_rate.haproxy && -s $RES/conn_rate.haproxy-splice ]]; then
		echo
		echo "paired ratios: tcpdist / haproxy and tcpdist / haproxy-splice within each repetition"
		echo "(these cancel slow drifts of the machine; the table above divides the medians)"
		for m in conn_rate ka_rps ka_p50 ka_p99 bulk_mbps conn_cpu bulk_cpu mem_bpc; do
			[[ -s $RES/$m.tcpdist ]] || continue
			paste "$RES/$m.tcpdist" "$RES/$m.haproxy" "$RES/$m.haproxy-splice" |
				awk -v m="$m" '
				function median(a, n,    i, j, t) {
					for (i = 2; i <= n; i++)
						for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
							t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
						}
					return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
				}
				$3 > 0 && $5 > 0 {
					noisy = $2 + $4 + $6 > 0
					hl = hl sprintf(" %5.2f%s", $1 / $3, noisy ? "*" : " ")
					sl = sl sprintf(" %5.2f%s", $1 / $5, noisy ? "*" : " ")
					if (noisy)
						next
					n++; h[n] = $1 / $3; s[n] = $1 / $5
				}
				END {
					mh = n ? sprintf("%.2fx", median(h, n)) : "-"
					ms = n ? sprintf("%.2fx", median(s, n)) : "-"
					printf "  %-10s vs haproxy %-42s median %s\n", m, hl, mh
					printf "  %-10s vs splice  %-42s median %s\n", "", sl, ms
				}'
		done
	fi
	if [[ -s $RES/conn_cpu_sys.haproxy ]]; then
		echo
		echo "CPU s per 10,000 connections split into user and system (kernel) time, medians:"
		for tgt in "${PROXIES[@]}"; do
			printf '  %-15s user %6.3f  system %6.3f\n' "$tgt" \
				"$(median conn_cpu_user "$tgt")" "$(median conn_cpu_sys "$tgt")"
		done
		awk -v hu="$(median conn_cpu_user haproxy)" -v hs="$(median conn_cpu_sys haproxy)" \
			-v ts="$(median conn_cpu_sys tcpdist)" 'BEGIN {
			if (hu + hs <= 0)
				exit
			printf "  the kernel does %.0f%% of plain HAProxy'"'"'s work per connection: a proxy making the\n", \
				100 * hs / (hu + hs)
			printf "  same TCP traffic with no user time at all would measure %.2fx of it\n", hs / (hu + hs)
			if (ts > 0 && hs > 0)
				printf "  tcpdist'"'"'s system time is %.2fx HAProxy'"'"'s\n", ts / hs
		}'
	fi
	echo
	echo "MB = 10^6 bytes, GB = 10^9 bytes; CPU = utime + stime of the proxy from /proc (CLK_TCK $CLK_TCK)."
	echo "'best HAProxy' is the better of the two HAProxy modes; ratios are tcpdist / HAProxy."
	if [[ -s $T/problems ]]; then
		echo
		echo "problems during the run:"
		sed 's/^/  /' "$T/problems"
	fi
	echo
	echo "run time: $(($(date +%s) - START)) s"
} >"$REPORT"

cat "$REPORT"
if [[ -n $OUT ]]; then
	cp "$REPORT" "$OUT" || die "cannot write $OUT"
fi
if [[ $STRICT == 1 ]] && { ((HAVE_TCPDIST == 0)) || grep -q ' FAIL$' "$REPORT"; }; then
	exit 1
fi
exit 0
