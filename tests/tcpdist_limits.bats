#!/usr/bin/env bats
# tcpdist at its limits: listen addresses removed while clients wait in the
# backlog, every descriptor clients may have in use, and a pool that points
# at tcpdist itself. Real sockets on 127.0.0.1; every wait polls with a
# deadline; teardown kills by pid.

bats_require_minimum_version 1.5.0
load 'helpers'

setup() {
	require_helpers
	T=$BATS_TEST_TMPDIR
}

# A test that passed also proves tcpdist stops cleanly: clients and
# backends go first.
teardown() {
	tcpdist_teardown
}

# pool LISTEN [pool lines...] -- NAME:PORT...: a pool file on stdout.
pool() {
	local listen=$1 b
	shift
	printf '[pool]\nlisten = %s\n' "$listen"
	while [[ $# -gt 0 && $1 != -- ]]; do
		printf '%s\n' "$1"
		shift
	done
	[[ ${1:-} == -- ]] && shift
	for b in "$@"; do
		printf '\n[backend %s]\naddress = 127.0.0.1:%s\n' "${b%%:*}" "${b#*:}"
	done
}

# Replaces the pool file at once (rename), as an editor or a deploy does.
put_pool() {
	cat >"$T/next.pool"
	mv "$T/next.pool" "$T/web.pool"
}

# backlog PORT: clients waiting to be accepted by the listening sockets of PORT.
backlog() {
	ss -Hltn "sport = :$1" | awk '{ q += $2 } END { print q + 0 }'
}

# wait_for_backlog PORT N [TIMEOUT_S] [MORE]: until the listening sockets of
# PORT hold N clients waiting to be accepted (N or more with MORE = +).
wait_for_backlog() {
	local port=$1 n=$2 deadline got
	deadline=$(($(now_ms) + $(ms_of "${3:-3}")))
	until got=$(backlog "$port"); ((got == n)) || [[ ${4:-} == + ]] && ((got >= n)); do
		(($(now_ms) < deadline)) || fail "$got clients in the backlog of port $port, not $n" || return 1
		sleep 0.01
	done
}

# wait_for_closed PORT [TIMEOUT_S]: until nothing listens on PORT.
wait_for_closed() {
	local port=$1 deadline
	deadline=$(($(now_ms) + $(ms_of "${2:-2}")))
	while [[ -n $(ss -Hltn "sport = :$port") ]]; do
		(($(now_ms) < deadline)) || fail "port $port still listened on after ${2:-2}s" || return 1
		sleep 0.02
	done
}

# no_client_failed FILE COUNT: names' output has COUNT answers from a, no error.
no_client_failed() {
	if grep -q '^ERROR' "$1" || [ "$(grep -c '^a$' "$1")" -ne "$2" ]; then
		sort "$1" | uniq -c | sort -rn | head
		fail "not every client of $1 was served"
	fi
}

@test "limits: at max_conns, clients in the backlog of a listen address that a reload removes are all served, none reset" {
	ports P P2 PA
	start_namesrv a "127.0.0.1:$PA"
	pool "127.0.0.1:$P" 'max_conns = 1' -- "a:$PA" >"$T/web.pool"
	start_tcpdist "$T/web.pool"
	start_bg h1 "$HELPERS/hold" "127.0.0.1:$P" 30
	wait_for_file_line "$T/h1.out" '^line a$'
	# Five clients wait in the backlog of a thread paused at max_conns.
	start_bg waiting "$HELPERS/names" --parallel 5 --timeout 5000 "127.0.0.1:$P" 5
	wait_for_backlog "$P" 5
	pool "127.0.0.1:$P2" 'max_conns = 1' -- "a:$PA" | put_pool
	wait_for_file_line "$TCPDIST_LOG" "no longer listening on 127.0.0.1:$P\$" 2
	wait_for_exit waiting 5
	no_client_failed "$T/waiting.out" 5
	[ "$EXIT_STATUS" -eq 0 ]
	# They went past max_conns; then the socket closed; h1 is untouched.
	wait_for_closed "$P" 1
	run "$HELPERS/probe" "127.0.0.1:$P"
	[[ $output == refused* ]]
	run grep -c closed-by-peer "$T/h1.out"
	[ "$output" -eq 0 ]
}

@test "limits: with -j 2, bursts of clients while the listen address moves back and forth: none is reset" {
	ports P PA
	start_namesrv a "127.0.0.1:$PA"
	# max_conns makes both threads pause with clients in their backlogs.
	pool "127.0.0.1:$P" 'max_conns = 8' -- "a:$PA" >"$T/web.pool"
	start_tcpdist "$T/web.pool" -j 2
	local listen n=0
	for listen in "0.0.0.0:$P" "127.0.0.1:$P" "0.0.0.0:$P" "127.0.0.1:$P"; do
		n=$((n + 1))
		# A fresh burst: each move finds clients waiting in a backlog.
		start_bg "burst$n" "$HELPERS/names" --parallel 40 --hold 50 --timeout 8000 \
			"127.0.0.1:$P" 80
		wait_for_backlog "$P" 1 2 +
		pool "$listen" 'max_conns = 8' -- "a:$PA" | put_pool
		wait_for_line_count "$TCPDIST_LOG" "reloaded" "$n" 2
	done
	for n in 1 2 3 4; do
		wait_for_exit "burst$n" 10
		no_client_failed "$T/burst$n.out" 80
	done
	run grep -c 'reload failed' "$TCPDIST_LOG"
	[ "$output" -eq 0 ]
}

@test "limits: clients holding every descriptor they may have lock out neither a reload nor a scrape" {
	ports P PA PM
	start_namesrv a "127.0.0.1:$PA"
	pool "127.0.0.1:$P" -- "a:$PA" >"$T/web.pool"
	TCPDIST_LOG="$T/tcpdist.err"
	start_bg tcpdist bash -c 'ulimit -n 64 && exec "$0" --metrics "$1" "$2"' "$TCPDIST" \
		"127.0.0.1:$PM" "$T/web.pool"
	wait_for_file_line "$TCPDIST_LOG" 'listening on'
	# More clients than descriptors, each held 2.5 s.
	start_bg holders "$HELPERS/names" --parallel 60 --hold 2500 --timeout 20000 --send hi \
		"127.0.0.1:$P" 60
	wait_for_file_line "$TCPDIST_LOG" 'out of file descriptors: pausing accept' 2
	pool "127.0.0.1:$P" 'max_conns = 5' -- "a:$PA" | put_pool
	wait_for_file_line "$TCPDIST_LOG" 'reloaded' 1
	run grep -c 'reload failed' "$TCPDIST_LOG"
	[ "$output" -eq 0 ]
	run curl -s --max-time 1 -o "$T/metrics" -w '%{http_code}' "http://127.0.0.1:$PM/metrics"
	[ "$output" = 200 ]
	grep -q '^tcpdist_connections_active [1-9]' "$T/metrics"
}

@test "limits: a backend at tcpdist's own listen address is a loop: refused by -n and by a reload" {
	ports P PA
	pool "127.0.0.1:$P" -- "a:$PA" "self:$P" >"$T/loop.pool"
	run -2 "$TCPDIST" -n "$T/loop.pool"
	[[ $output == *"backend self: address 127.0.0.1:$P is tcpdist's own listener 127.0.0.1:$P (a loop)"* ]]
	# A wildcard listener is reached through loopback too.
	pool "0.0.0.0:$P" -- "a:$PA" "self:$P" >"$T/any.pool"
	run -2 "$TCPDIST" -n "$T/any.pool"
	[[ $output == *"backend self: address 127.0.0.1:$P is tcpdist's own listener 0.0.0.0:$P (a loop)"* ]]
	# The same port elsewhere is no loop.
	pool "127.0.0.1:$P" -- "a:$PA" >"$T/web.pool"
	printf '\n[backend other]\naddress = 127.0.0.2:%s\n' "$P" >>"$T/web.pool"
	run -0 "$TCPDIST" -n "$T/web.pool"

	start_namesrv a "127.0.0.1:$PA"
	start_tcpdist "$T/web.pool"
	cp "$T/loop.pool" "$T/next.pool" && mv "$T/next.pool" "$T/web.pool"
	wait_for_file_line "$TCPDIST_LOG" "reload failed, keeping the last good pool: .*backend self: address 127.0.0.1:$P is tcpdist's own listener 127.0.0.1:$P \(a loop\)" 2
	[ "$("$HELPERS/names" --timeout 2000 "127.0.0.1:$P" 1)" = a ]
}

@test "limits: out of descriptors with -j 4, 3 x 600 clients at once are all served: none accepted is reset" {
	ports P PA
	start_namesrv a "127.0.0.1:$PA"
	# Health checks open sockets on the main thread meanwhile.
	pool "127.0.0.1:$P" 'check_interval = 50ms' -- "a:$PA" >"$T/web.pool"
	TCPDIST_LOG="$T/tcpdist.err"
	start_bg tcpdist bash -c 'ulimit -n 64 && exec "$0" -j 4 "$1"' "$TCPDIST" "$T/web.pool"
	wait_for_file_line "$TCPDIST_LOG" 'listening on'
	for _ in 1 2 3; do
		"$HELPERS/names" --parallel 300 --hold 10 --timeout 20000 --send hi "127.0.0.1:$P" 600 \
			>>"$T/names" || true
	done
	no_client_failed "$T/names" 1800
	grep -q 'out of file descriptors: pausing accept' "$TCPDIST_LOG"
	run grep -c 'cannot open a socket' "$TCPDIST_LOG"
	[ "$output" -eq 0 ]
}
