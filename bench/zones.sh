#!/usr/bin/env bash
# bench/zones.sh - what locality costs (issue 17), in one run, rounds
# interleaved:
#   lookups  tcphash answering the same clients (from stdin) for the same
#            pool of 3 zones x 2 backends, balance = hash, with
#            locality = prefer against locality = off (no zone tables);
#            lookups per second: the run less the load (tcphash on an
#            empty stdin, timed in the same round: parse and the tables,
#            three more with zones), and of whole runs
#   cpu      tcpdist's CPU (all threads, schedstat) per 10,000 connections
#            through two instances, -j 1, of that pool: locality = prefer
#            and locality = off; clients from 10,000 loopback sources
#            (127.0.1.1 on) in three zones, one connection each, 32 at once,
#            in a shuffled order (tests/helpers/crowd, stride 7919: in
#            address order, one zone's clients come in a row and only its
#            two backends are busy at a time, which made locality = prefer
#            look 3% to 4% cheaper), to namesrv backends.
# Run from the repository root: bash bench/zones.sh. Not part of CI.
# BENCH_REPS (31), BENCH_LOOKUPS (1000000), BENCH_BUILD (build/plain),
# BENCH_ZONE_TABLE_SIZE (unset: the pool's default, 65521).
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
REPS=${BENCH_REPS:-31}
LOOKUPS=${BENCH_LOOKUPS:-1000000}
BUILD=${BENCH_BUILD:-build/plain}
TCPDIST=$ROOT/$BUILD/bin/tcpdist
TCPHASH=$ROOT/$BUILD/bin/tcphash
H=$ROOT/build/helpers

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }
[[ -x $TCPDIST && -x $TCPHASH ]] || die "$TCPDIST or $TCPHASH missing: make B=$BUILD"
[[ -x $H/crowd && -x $H/namesrv && -x $H/freeport ]] || die "run make helpers"

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

FREE=($("$H/freeport" 8))
((${#FREE[@]} == 8)) || die "no 8 free ports"

# pool FILE LOCALITY LISTEN_PORT: the same pool but for locality.
pool() {
	local i=2 b
	{
		printf '[pool]\nlisten = 127.0.0.1:%s\nbalance = hash\nlocality = %s\ncheck_interval = 0\n' "$3" "$2"
		[[ -z ${BENCH_ZONE_TABLE_SIZE:-} ]] || printf 'zone_table_size = %s\n' "$BENCH_ZONE_TABLE_SIZE"
		printf '[zone a]\nclients = 127.0.0.0/20\n[zone b]\nclients = 127.0.16.0/20\n'
		printf '[zone c]\nclients = 127.0.32.0/19\n'
		for b in a1 a2 b1 b2 c1 c2; do
			printf '[backend %s]\naddress = 127.0.0.1:%s\nzone = %s\n' "$b" "${FREE[i]}" "${b:0:1}"
			i=$((i + 1))
		done
	} >"$1"
}
pool "$T/off.pool" off "${FREE[0]}"
pool "$T/prefer.pool" prefer "${FREE[1]}"

i=2
for b in a1 a2 b1 b2 c1 c2; do
	"$H/namesrv" "$b" "127.0.0.1:${FREE[i]}" >"$T/$b.log" 2>&1 &
	PIDS+=($!)
	i=$((i + 1))
done
for p in off prefer; do
	"$TCPDIST" -j 1 "$T/$p.pool" 2>"$T/$p.log" &
	PIDS+=($!)
	eval "PID_$p=$!"
done
for ((i = 0; i < 100; i++)); do
	grep -q 'listening on' "$T/off.log" "$T/prefer.log" 2>/dev/null &&
		(($(grep -l 'listening on' "$T/off.log" "$T/prefer.log" | wc -l) == 2)) && break
	sleep 0.05
done

# The clients: 127.0.x.y addresses spread over the three zones.
awk -v n="$LOOKUPS" 'BEGIN { for (i = 0; i < n; i++) printf "127.0.%d.%d\n", i / 250 % 64, i % 250 + 1 }' >"$T/clients"


declare -A LPS CPU WHOLE LOAD
for ((r = 1; r <= REPS; r++)); do
	order="off prefer"
	((r % 2)) || order="prefer off" # who goes first alternates
	for p in $order; do
		t0=$(date +%s%N)
		"$TCPHASH" -f "$T/$p.pool" <"$T/clients" >/dev/null
		t1=$(date +%s%N)
		"$TCPHASH" -f "$T/$p.pool" </dev/null >/dev/null
		t2=$(date +%s%N)
		WHOLE[$p]+=" $(awk -v n="$LOOKUPS" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }')"
		LOAD[$p]+=" $(((t2 - t1) / 1000000))"
		LPS[$p]+=" $(awk -v n="$LOOKUPS" -v ns=$((t1 - t0 - (t2 - t1))) 'BEGIN { printf "%.0f", n / (ns / 1e9) }')"

		pid=PID_$p
		port=${FREE[0]}
		[[ $p == prefer ]] && port=${FREE[1]}
		c0=$(cpu_ns "${!pid}")
		out=$("$H/crowd" sources "127.0.0.1:$port" 127.0.1.1 10000 32 7919)
		c1=$(cpu_ns "${!pid}")
		[[ $out == "accepted=10000 refused=0" ]] || die "$p: $out"
		CPU[$p]+=" $(((c1 - c0) / 1000000))"
	done
	log "round $r: lookups/s${LPS[off]##* } off,${LPS[prefer]##* } prefer; CPU ms${CPU[off]##* } off,${CPU[prefer]##* } prefer"
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
lo=$(median "${LPS[off]}") lp=$(median "${LPS[prefer]}")
co=$(median "${CPU[off]}") cp=$(median "${CPU[prefer]}")
printf 'tcphash lookups/s, load excluded (median of %d, %d clients): locality off %s, prefer %s (%+.1f%%)\n' \
	"$REPS" "$LOOKUPS" "$lo" "$lp" "$(awk -v a="$lo" -v b="$lp" 'BEGIN { print (b - a) * 100 / a }')"
wo=$(median "${WHOLE[off]}") wp=$(median "${WHOLE[prefer]}")
printf 'tcphash whole runs, lookups/s (load included): locality off %s, prefer %s (%+.1f%%)\n' \
	"$wo" "$wp" "$(awk -v a="$wo" -v b="$wp" 'BEGIN { print (b - a) * 100 / a }')"
printf 'tcphash load ms (parse and tables, median): locality off %s, prefer %s\n' \
	"$(median "${LOAD[off]}")" "$(median "${LOAD[prefer]}")"
printf 'tcpdist CPU ms per 10,000 connections (median of %d): locality off %s, prefer %s (%+.1f%%)\n' \
	"$REPS" "$co" "$cp" "$(awk -v a="$co" -v b="$cp" 'BEGIN { print (b - a) * 100 / a }')"
