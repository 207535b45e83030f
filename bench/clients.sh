#!/usr/bin/env bash
# bench/clients.sh - what the client's identity costs (issue 15): the rate
# of new connections and the CPU per 10,000 connections of
#   tcpdist            plain, as before
#   tcpdist-pp2        proxy_protocol = v2 to its backend
#   tcpdist-limits     client_max_conns and client_rate on (never reached)
#   haproxy            HAProxy 2.6, plain, for its own differences
#   haproxy-pp2        HAProxy 2.6, send-proxy-v2
#   haproxy-limits     HAProxy 2.6, a stick table tracking conn_cur and
#                      conn_rate with reject rules (never reached)
# in one run, rounds interleaved, on loopback: wrk with "Connection: close"
# (one connection per request) through each proxy, -j 1 / nbthread 1 pinned
# to one CPU, to nginx (plain, and with listen ... proxy_protocol).
# Run from the repository root: bash bench/clients.sh. Not part of CI.
# BENCH_REPS (5), BENCH_SECONDS (5), BENCH_CONNS (32), BENCH_LOAD_CPU (0),
# BENCH_PROXY_CPU (1), BENCH_TCPDIST (bin/tcpdist).
set -euo pipefail
export LC_ALL=C
PATH=$PATH:/usr/sbin:/sbin

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
REPS=${BENCH_REPS:-5}
SECS=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNS:-32}
LOAD_CPU=${BENCH_LOAD_CPU:-0}
PROXY_CPU=${BENCH_PROXY_CPU:-1}
TCPDIST=${BENCH_TCPDIST:-$ROOT/bin/tcpdist}

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; [[ -z ${T:-} ]] || tail -n 5 "$T"/*.log "$T"/nginx/*.log >&2 2>/dev/null; exit 2; }
for c in nginx haproxy wrk taskset; do
	command -v "$c" >/dev/null || die "$c missing: scripts/deps.sh bench installs it"
done
[[ -x $TCPDIST ]] || die "$TCPDIST missing: run make"

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

# Ports outside the ephemeral range, free now (tests/helpers/freeport).
FREEPORT=$ROOT/build/helpers/freeport
[[ -x $FREEPORT ]] || make -s build/helpers/freeport >/dev/null || die "cannot build freeport"
FREE=($("$FREEPORT" 8))
((${#FREE[@]} == 8)) || die "no 8 free ports"
NEXT_PORT=0
wait_port() {
	local i
	for ((i = 0; i < 100; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	die "nothing listens on $1"
}

NGX_PLAIN=${FREE[0]}
NGX_PP=${FREE[1]}
NEXT_PORT=2
mkdir -p "$T/nginx"
user=
(($(id -u) == 0)) && user="user root;"
cat >"$T/nginx/nginx.conf" <<EOF
$user
daemon off;
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $T/nginx;
	proxy_temp_path $T/nginx;
	fastcgi_temp_path $T/nginx;
	uwsgi_temp_path $T/nginx;
	scgi_temp_path $T/nginx;
	server { listen 127.0.0.1:$NGX_PLAIN backlog=4096; location / { return 200 "ok\n"; } }
	server { listen 127.0.0.1:$NGX_PP backlog=4096 proxy_protocol; location / { return 200 "ok\n"; } }
}
EOF
taskset -c "$LOAD_CPU" nginx -p "$T/nginx" -c "$T/nginx/nginx.conf" >"$T/nginx/out" 2>&1 &
PIDS+=($!)
wait_port "$NGX_PLAIN"
wait_port "$NGX_PP"

declare -A PORT PID
start_tcpdist() { # NAME BACKEND_PORT EXTRA_POOL_LINES
	local port=${FREE[NEXT_PORT++]}
	printf '[pool]\nlisten = 127.0.0.1:%s\ncheck_interval = 0\n%s\n[backend web]\naddress = 127.0.0.1:%s\n' \
		"$port" "$3" "$2" >"$T/$1.pool"
	taskset -c "$PROXY_CPU" "$TCPDIST" -j 1 "$T/$1.pool" >"$T/$1.log" 2>&1 &
	PID[$1]=$!
	PIDS+=($!)
	PORT[$1]=$port
	wait_port "$port"
}
start_haproxy() { # NAME BACKEND_PORT SERVER_OPTIONS FRONTEND_LINES
	local port=${FREE[NEXT_PORT++]}
	cat >"$T/$1.cfg" <<EOF
global
	nbthread 1
	maxconn 8000
defaults
	mode tcp
	timeout connect 3s
	timeout client 30s
	timeout server 30s
listen bench
	bind 127.0.0.1:$port
$4
	server web 127.0.0.1:$2 $3
EOF
	taskset -c "$PROXY_CPU" haproxy -db -f "$T/$1.cfg" >"$T/$1.log" 2>&1 &
	PID[$1]=$!
	PIDS+=($!)
	PORT[$1]=$port
	wait_port "$port"
}

start_tcpdist tcpdist "$NGX_PLAIN" ""
start_tcpdist tcpdist-pp2 "$NGX_PP" "proxy_protocol = v2"
start_tcpdist tcpdist-limits "$NGX_PLAIN" "client_max_conns = 100000
client_rate = 1000000/s"
start_haproxy haproxy "$NGX_PLAIN" "" ""
start_haproxy haproxy-pp2 "$NGX_PP" "send-proxy-v2" ""
start_haproxy haproxy-limits "$NGX_PLAIN" "" "	stick-table type ip size 100k expire 30s store conn_cur,conn_rate(1s)
	tcp-request connection track-sc0 src
	tcp-request connection reject if { sc0_conn_cur gt 100000 } || { sc0_conn_rate gt 1000000 }"
NAMES=(tcpdist tcpdist-pp2 tcpdist-limits haproxy haproxy-pp2 haproxy-limits)


declare -A RATES CPUS
for ((r = 1; r <= REPS; r++)); do
	# Each round starts one proxy further on: none is always first or last.
	order=("${NAMES[@]:r % ${#NAMES[@]}}" "${NAMES[@]:0:r % ${#NAMES[@]}}")
	for n in "${order[@]}"; do
		before=$(cpu_ns "${PID[$n]}")
		out=$(taskset -c "$LOAD_CPU" wrk -t 1 -c "$CONNS" -d "${SECS}s" -H 'Connection: close' \
			"http://127.0.0.1:${PORT[$n]}/" 2>&1)
		after=$(cpu_ns "${PID[$n]}")
		reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
		errs=$(awk '/Non-2xx|Socket errors/ { print }' <<<"$out")
		[[ -z $errs ]] || log "$n: $errs"
		rate=$(awk -v n="$reqs" -v s="$SECS" 'BEGIN { printf "%.0f", n / s }')
		cpu=$(awk -v t=$((after - before)) -v n="$reqs" \
			'BEGIN { printf "%.3f", n ? t / 1e9 / n * 10000 : 0 }')
		RATES[$n]+="$rate "
		CPUS[$n]+="$cpu "
		log "round $r $n: $rate conn/s, $cpu s CPU per 10,000"
	done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
printf '%-16s %12s %22s %12s\n' proxy conn/s "CPU s per 10,000" "vs tcpdist"
base_cpu=$(median <<<"${CPUS[tcpdist]}")
for n in "${NAMES[@]}"; do
	rate=$(median <<<"${RATES[$n]}")
	cpu=$(median <<<"${CPUS[$n]}")
	printf '%-16s %12s %22s %11s%%\n' "$n" "$rate" "$cpu" \
		"$(awk -v c="$cpu" -v b="$base_cpu" 'BEGIN { printf "%+.1f", (c / b - 1) * 100 }')"
done
