#!/usr/bin/env bash
# make demo: tcpdist in the foreground on 127.0.0.1:8080 in front of three
# demo backends (web1-web3 of examples/web.pool) that answer with their own
# name and then echo. Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."

pool=examples/web.pool
namesrv=build/helpers/namesrv
pids=()
stop() {
	trap - EXIT INT TERM
	[ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null
	wait 2>/dev/null
	exit 0
}
trap stop EXIT INT TERM

for i in 1 2 3; do
	out=$(mktemp)
	"$namesrv" "web$i" "127.0.0.1:900$i" >"$out" &
	pids+=($!)
	# Wait for "ready" (or the server's death) with a 5 s deadline.
	for _ in $(seq 100); do
		grep -q ready "$out" && break
		kill -0 "${pids[-1]}" 2>/dev/null || { echo "demo: backend web$i could not start on 127.0.0.1:900$i" >&2; exit 1; }
		sleep 0.05
	done
	rm -f "$out"
done

cat <<'MSG'
demo: backends web1-web3 on 127.0.0.1:9001-9003 (pool: examples/web.pool)
demo: try   nc 127.0.0.1 8080      (each connection shows the backend it reached)
demo: Ctrl-C stops tcpdist and the backends
MSG
bin/tcpdist -v --drain-timeout 2s "$pool" || true
