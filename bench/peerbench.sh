#!/usr/bin/env bash
# bench/peerbench.sh - 40 tcppeer nodes beside 40 serf agents, in the same
# run, on loopback: two clusters of N members each, started together.
# Measures, for each: convergence (the start of the first member until every
# member has seen every other join), failure detection (kill -9 of K members
# until every survivor has reported all K failed), and the steady CPU and
# RSS per member over a quiet period. Not part of CI.
# Run from the repository root: bash bench/peerbench.sh
# Settings: BENCH_PEERS (40), BENCH_KILL (5), BENCH_STEADY_SECONDS (30),
# BENCH_TCPPEER (build/peer/bin/tcppeer, else bin/tcppeer), BENCH_KEEP=1
# keeps the work directory.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${BENCH_PEERS:-40}
K=${BENCH_KILL:-5}
STEADY=${BENCH_STEADY_SECONDS:-30}
TCPPEER=${BENCH_TCPPEER:-}
[[ -n $TCPPEER ]] || { [[ -x build/peer/bin/tcppeer ]] && TCPPEER=$ROOT/build/peer/bin/tcppeer; } ||
	TCPPEER=$ROOT/bin/tcppeer
command -v serf >/dev/null || { echo "peerbench: serf not installed" >&2; exit 2; }
[[ -x build/helpers/freeport ]] || make -s helpers
W=$(mktemp -d /tmp/peerbench.XXXXXX)
declare -a PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[[ ${BENCH_KEEP:-0} == 1 ]] && echo "peerbench: kept $W" >&2 || rm -rf "$W"
}
trap cleanup EXIT

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
# freeport gives at most 64 at a time: ask until there are enough distinct ones.
declare -A _seen_port=()
PORTS=()
for _try in $(seq 1 20); do
	for _p in $(build/helpers/freeport 60); do
		[[ -n ${_seen_port[$_p]:-} ]] && continue
		_seen_port[$_p]=1
		PORTS+=("$_p")
	done
	((${#PORTS[@]} >= 3 * N)) && break
done
PORTS=("${PORTS[@]:0:3 * N}")
((${#PORTS[@]} == 3 * N)) || { echo "peerbench: not enough free ports" >&2; exit 2; }
declare -a SPID TPID

# Every member joins the first, as operators start them.
t0=$(now_ms)
for ((i = 0; i < N; i++)); do
	g=${PORTS[i]} r=${PORTS[N + i]} p=${PORTS[2 * N + i]}
	join=()
	((i > 0)) && join=(-retry-join "127.0.0.1:${PORTS[0]}" -retry-interval 1s)
	serf agent -node "s$i" -bind "127.0.0.1:$g" -rpc-addr "127.0.0.1:$r" "${join[@]}" \
		>"$W/s$i.log" 2>&1 &
	SPID[i]=$!
	PIDS+=($!)
	seed=()
	((i > 0)) && seed=(-j "127.0.0.1:${PORTS[2 * N]}")
	"$TCPPEER" -n "t$i" -b "127.0.0.1:$p" --control "$W/t$i.sock" "${seed[@]}" \
		>"$W/t$i.out" 2>"$W/t$i.err" &
	TPID[i]=$!
	PIDS+=($!)
done

# seen PREFIX PATTERN COUNT: every log of that kind has COUNT matching lines.
seen() {
	local f
	for f in "$W"/$1*; do
		(($(grep -c -- "$2" "$f") >= $3)) || return 1
	done
}
s_conv= t_conv=
while [[ -z $s_conv || -z $t_conv ]]; do
	(($(now_ms) - t0 < 120000)) || { echo "peerbench: no convergence in 120 s" >&2; exit 1; }
	[[ -z $t_conv ]] && seen 't*.out' '^member-join ' "$N" 2>/dev/null &&
		t_conv=$(($(now_ms) - t0))
	[[ -z $s_conv ]] && seen 's*.log' 'EventMemberJoin: ' "$N" 2>/dev/null &&
		s_conv=$(($(now_ms) - t0))
	sleep 0.05
done

# steady CPU (ticks) and RSS (kB), averaged over the members.
steady() {
	local -n pids=$1
	local p a b ticks=0 rss=0 x
	declare -A before=()
	for p in "${pids[@]}"; do
		read -r -a x <"/proc/$p/stat"
		before[$p]=$((x[13] + x[14]))
	done
	sleep "$STEADY"
	for p in "${pids[@]}"; do
		read -r -a x <"/proc/$p/stat"
		ticks=$((ticks + x[13] + x[14] - before[$p]))
		rss=$((rss + $(awk '/^VmRSS/ { print $2 }' "/proc/$p/status")))
	done
	# percent of one core, and kB
	awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v s="$STEADY" -v n="${#pids[@]}" -v r="$rss" \
		'BEGIN { printf "%.3f %d\n", 100 * t / (hz * s * n), r / n }'
}
# Both clusters are measured over the same seconds.
steady SPID >"$W/s.steady" &
steady TPID >"$W/t.steady"
wait $!
read -r s_cpu s_rss <"$W/s.steady"
read -r t_cpu t_rss <"$W/t.steady"

# Kill K members of each (the last ones started), then wait for every
# survivor to report all of them.
t1=$(now_ms)
for ((i = N - K; i < N; i++)); do
	kill -KILL "${SPID[i]}" "${TPID[i]}"
done
s_fail= t_fail=
while [[ -z $s_fail || -z $t_fail ]]; do
	(($(now_ms) - t1 < 120000)) || { echo "peerbench: failures not seen in 120 s" >&2; exit 1; }
	if [[ -z $t_fail ]]; then
		ok=1
		for ((i = 0; i < N - K; i++)); do
			(($(grep -cE "^member-failed t($(seq -s '|' $((N - K)) $((N - 1)))) " "$W/t$i.out") >= K)) ||
				{ ok=0; break; }
		done
		((ok)) && t_fail=$(($(now_ms) - t1))
	fi
	if [[ -z $s_fail ]]; then
		ok=1
		for ((i = 0; i < N - K; i++)); do
			(($(grep -cE "EventMemberFailed: s($(seq -s '|' $((N - K)) $((N - 1)))) " "$W/s$i.log") >= K)) ||
				{ ok=0; break; }
		done
		((ok)) && s_fail=$(($(now_ms) - t1))
	fi
	sleep 0.1
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "-" }'; }
printf '%-34s %12s %12s %10s\n' "$N members, $K killed" serf tcppeer 'serf/tcppeer'
printf '%-34s %10s ms %10s ms %10s\n' convergence "$s_conv" "$t_conv" "$(ratio "$s_conv" "$t_conv")"
printf '%-34s %10s ms %10s ms %10s\n' "all survivors see $K failed" "$s_fail" "$t_fail" \
	"$(ratio "$s_fail" "$t_fail")"
printf '%-34s %9s %% %10s %% %10s\n' "steady CPU per member (${STEADY}s)" "$s_cpu" "$t_cpu" \
	"$(ratio "$s_cpu" "$t_cpu")"
printf '%-34s %9s kB %9s kB %10s\n' "RSS per member" "$s_rss" "$t_rss" "$(ratio "$s_rss" "$t_rss")"
