#!/usr/bin/env bash
# bench/reload.sh - reload latency and connection rate under reloads (see
# bench/reloadbench.c). Run from the repository root, after make and make helpers.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
B=${BENCH_BUILD:-build/plain}
dir=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT
read -r P PA PB < <(build/helpers/freeport 3 | xargs)
build/helpers/namesrv a "127.0.0.1:$PA" >"$dir/a.out" & pids+=($!)
build/helpers/namesrv b "127.0.0.1:$PB" >"$dir/b.out" & pids+=($!)
printf '[pool]\nlisten = 127.0.0.1:%s\nbalance = roundrobin\n[backend a]\naddress = 127.0.0.1:%s\n' \
	"$P" "$PA" >"$dir/web.pool"
bin/tcpdist "$dir/web.pool" 2>"$dir/tcpdist.err" & pids+=($!)
for _ in $(seq 100); do
	grep -q 'listening on' "$dir/tcpdist.err" 2>/dev/null && grep -q ready "$dir/a.out" &&
		grep -q ready "$dir/b.out" && break
	sleep 0.05
done
echo "== reload (tcpdist $(bin/tcpdist --version | cut -d' ' -f2))"
"$B/reloadbench" "$dir/web.pool" "$P" "$PA" "$PB" "${BENCH_RELOADS:-100}" "${BENCH_RELOAD_SECONDS:-10}"
echo "  reload failures logged: $(grep -c 'reload failed' "$dir/tcpdist.err" || true)"
