#!/usr/bin/env bats
# Asking a running tcpdist (status, sessions, kill over the control socket),
# tcppool drain --wait, upgrades by --takeover under load, systemd's socket
# activation and readiness notifications. Real sockets on 127.0.0.1; every
# wait polls with a deadline; teardown kills by pid.

bats_require_minimum_version 1.5.0
load 'helpers'

: "${TCPPOOL:=$BATS_TEST_DIRNAME/../bin/tcppool}"

setup() {
	require_helpers
	T=$BATS_TEST_TMPDIR
}

teardown() {
	[[ -n ${BATS_TEST_COMPLETED:-} ]] || dump_logs
	bg_teardown
}

# The pool under test: backends a and b (namesrv), roundrobin, a control socket.
start_ab_control() {
	ports P PA PB
	start_namesrv a "127.0.0.1:$PA"
	start_namesrv b "127.0.0.1:$PB"
	printf '[pool]\nlisten = 127.0.0.1:%s\nbalance = roundrobin\ncontrol = %s\n' "$P" "$T/ctl.sock" >"$T/web.pool"
	printf '[backend a]\naddress = 127.0.0.1:%s\n[backend b]\naddress = 127.0.0.1:%s\n' "$PA" "$PB" >>"$T/web.pool"
	start_tcpdist "$T/web.pool" "$@"
}

# always_for SECONDS CMD...: CMD stays true the whole time (polled).
always_for() {
	local deadline=$(($(now_ms) + $(ms_of "$1")))
	shift
	while (($(now_ms) < deadline)); do
		"$@" || fail "became false: $*" || return 1
		sleep 0.05
	done
}

# field FILE TYPE NAME COLUMN: a column of the status row TYPE/NAME.
field() {
	awk -F'\t' -v t="$2" -v n="$3" -v c="$4" '$1 == t && $2 == n { print $c }' "$1"
}

@test "status, sessions and kill report what was done, in TSV and JSON; socat speaks the protocol too" {
	start_ab_control
	# Two finished connections each way with known bytes: "hello\n" in,
	# the name line and the echo out.
	"$HELPERS/names" --send hello "127.0.0.1:$P" 4 >"$T/names"
	[ "$(sort "$T/names" | uniq -c | awk '{print $1 $2}' | xargs)" = "2a 2b" ]
	start_bg h1 "$HELPERS/hold" "127.0.0.1:$P" 30
	start_bg h2 "$HELPERS/hold" "127.0.0.1:$P" 30
	wait_for_file_line "$T/h1.out" '^line [ab]$'
	wait_for_file_line "$T/h2.out" '^line [ab]$'
	run -0 "$TCPDIST" status -f "$T/web.pool"
	printf '%s\n' "$output" >"$T/status"
	[ "$(field "$T/status" pool "$T/web.pool" 9)" = 2 ] # connections
	[ "$(field "$T/status" pool "$T/web.pool" 10)" = no ] # backup_in_use
	[ "$(field "$T/status" pool "$T/web.pool" 5)" = no ]
	for n in a b; do
		[ "$(field "$T/status" backend $n 4)" = up ]
		[ "$(field "$T/status" backend $n 5)" = up ]
		[ "$(field "$T/status" backend $n 8)" = primary ] # tier
		[ "$(field "$T/status" backend $n 9)" = - ]  # zone: none
		[ "$(field "$T/status" backend $n 10)" = 1 ]  # active: one hold each
		[ "$(field "$T/status" backend $n 11)" = 3 ]  # total
		[ "$(field "$T/status" backend $n 12)" = 12 ] # bytes in: 2 x "hello\n"
		[ "$(field "$T/status" backend $n 13)" = 18 ] # bytes out: 3 name lines, 2 echoes
	done
	run -0 "$TCPDIST" status --control "$T/ctl.sock" --json
	jq -e '.pool.connections == 2 and (.backends | length) == 2 and
		(.backends[] | select(.name == "a") | .bytes_in == 12 and .total == 3 and .active == 1)' <<<"$output"
	run -0 "$TCPDIST" sessions -f "$T/web.pool"
	[ "${#lines[@]}" -eq 2 ]
	[[ ${lines[0]} =~ ^127\.0\.0\.1:[0-9]+$'\t'[ab]$'\t'127\.0\.0\.1:$P$'\t'[0-9.]+$'\t'0$'\t'2$'\t'relaying$ ]]
	run -0 "$TCPDIST" sessions -f "$T/web.pool" --backend a --json
	jq -e '.total == 1 and .shown == 1 and .sessions[0].backend == "a"' <<<"$output"
	run -0 "$TCPDIST" sessions -f "$T/web.pool" --limit 1
	[ "${#lines[@]}" -eq 2 ] # one row, and the note (stderr) of how many were shown
	[[ $output == *"1 of 2 sessions shown"* ]]
	# kill: the matching session is reset, the count printed; none left: exit 1.
	local victim=$(sed -n 's/^line //p' "$T/h1.out")
	run -0 "$TCPDIST" kill -f "$T/web.pool" --backend "$victim"
	[ "$output" = 1 ]
	wait_for_file_line "$T/h1.out" '^closed-by-peer .*how=reset'
	run -1 "$TCPDIST" kill -f "$T/web.pool" --backend "$victim"
	[ "$output" = 0 ]
	local port=$(awk -F'\t' -v b="$([ "$victim" = a ] && echo b || echo a)" '$2 == b { print $1 }' \
		<("$TCPDIST" sessions -f "$T/web.pool"))
	run -0 "$TCPDIST" kill -f "$T/web.pool" --client "$port"
	[ "$output" = 1 ]
	wait_for_file_line "$T/h2.out" '^closed-by-peer .*how=reset'
	# The protocol itself, as an operator types it.
	command -v socat >/dev/null || skip "socat not installed"
	run -0 socat - "UNIX-CONNECT:$T/ctl.sock" <<<"backend a"
	[[ $output == *$'state\tup'* && $output == *$'total\t3'* ]]
	run -0 socat - "UNIX-CONNECT:$T/ctl.sock" <<<"bogus"
	[ "$output" = "error: unknown request 'bogus' (try help)" ]
}

@test "control socket: mode 0600, a stale one replaced, a live one refused, gone at exit; no tcpdist: exit 2" {
	start_ab_control
	[ "$(stat -c %a "$T/ctl.sock")" = 600 ]
	# A second tcpdist on the same socket is refused, the first one untouched.
	ports P2
	sed "s/^listen = .*/listen = 127.0.0.1:$P2/" "$T/web.pool" >"$T/other.pool"
	run -2 "$TCPDIST" "$T/other.pool"
	[[ $output == *"a running tcpdist answers there"* ]]
	run -0 "$TCPDIST" status -f "$T/web.pool"
	stop_bg tcpdist TERM
	[ ! -e "$T/ctl.sock" ]
	run -2 "$TCPDIST" status -f "$T/web.pool"
	[[ $output == *"no tcpdist answers at $T/ctl.sock"* ]]
	# A socket left by a crash: replaced.
	start_tcpdist "$T/web.pool"
	kill -KILL "$TCPDIST_PID"
	wait_for_exit tcpdist
	[ -S "$T/ctl.sock" ]
	start_tcpdist "$T/web.pool"
	grep -q 'replaced a stale socket' "$TCPDIST_LOG"
	run -0 "$TCPDIST" status -f "$T/web.pool"
}

@test "tcppool drain --wait returns once the last connection ends, and exits 1 at its timeout" {
	start_ab_control
	start_bg h1 "$HELPERS/hold" "127.0.0.1:$P" 30
	wait_for_file_line "$T/h1.out" '^line [ab]$'
	local held=$(sed -n 's/^line //p' "$T/h1.out")
	run -1 "$TCPPOOL" -f "$T/web.pool" drain --wait=500ms "$held"
	[[ $output == *"$held still has 1 connection after 500ms"* ]]
	grep -q '^state = drain' "$T/web.pool"
	start_bg waiter "$TCPPOOL" -f "$T/web.pool" drain --wait=10s "$held"
	always_for 0.5 pid_alive "${BG_PID[waiter]}"
	stop_bg h1 KILL
	wait_for_exit waiter 3
	[ "$EXIT_STATUS" -eq 0 ]
}

# upgrades N -j J: N takeovers in a row while short connections run in a
# loop and long checksummed transfers span them; none refused or reset,
# every byte intact.
upgrades() {
	local n=$1 i
	shift
	ports P PB
	start_bg blastsrv "$HELPERS/blast" server "127.0.0.1:$PB" --bytes 4K
	wait_for_file_line "$T/blastsrv.out" '^ready$'
	printf '[pool]\nlisten = 127.0.0.1:%s\ncontrol = %s\ncheck_interval = 0\n[backend sink]\naddress = 127.0.0.1:%s\n' \
		"$P" "$T/ctl.sock" "$PB" >"$T/web.pool"
	start_tcpdist "$T/web.pool" "$@"
	# Long transfers: 4 x 3 MiB each way at 1 MiB/s, across the upgrades.
	start_bg long "$HELPERS/blast" client "127.0.0.1:$P" --conns 4 --bytes 3M --rate 1M --first-id 1000000
	# Short connections, back to back, until the upgrades are done.
	start_bg loop bash -c 'id=0; while [ ! -e "$0/done" ] && [ $id -lt 40000 ]; do
		"$1" client "127.0.0.1:$2" --conns 20 --bytes 1K --first-id $id || echo "ROUND FAILED $id"
		id=$((id + 20)); done' "$T" "$HELPERS/blast" "$P"
	for ((i = 1; i <= n; i++)); do
		start_bg "up$i" "$TCPDIST" --takeover "$@" "$T/web.pool"
		wait_for_file_line "$T/up$i.err" 'taken over' 5
		wait_for_file_line "$T/up$i.err" 'control socket' 5
	done
	touch "$T/done"
	wait_for_exit loop 20
	wait_for_exit long 20
	[ "$EXIT_STATUS" -eq 0 ] || fail "long transfers: exit $EXIT_STATUS: $(head -3 "$T/long.err")"
	run grep -c 'ROUND FAILED\|ERROR' "$T/loop.out"
	[ "$output" = 0 ] || fail "refused or reset: $(grep -m3 'ROUND FAILED\|ERROR' "$T/loop.out")"
	local short=$(grep -c '^[0-9]' "$T/loop.out")
	echo "# $n upgrades: $short short connections, 4 long transfers, none failed" >&3
	((short >= 200))
	# Every connection's bytes, both ways, as the other end saw them.
	wait_for_line_count "$T/blastsrv.out" '^[0-9]+ ' $((short + 4)) 10
	awk 'FNR == NR { if ($1 ~ /^[0-9]+$/) { got[$1] = $3; sent[$1] = $4 } next }
		$1 ~ /^[0-9]+$/ { if (got[$1] != $2 || sent[$1] != $4) { print "id " $1 " differs"; bad++ } n++ }
		END { exit bad || n == 0 }' "$T/blastsrv.out" <(cat "$T/loop.out" "$T/long.out")
	# The old processes are gone, each after its own connections.
	for ((i = 1; i < n; i++)); do
		wait_for_file_line "$T/up$i.err" 'tcpdist: stopped$' 10
	done
	wait_for_file_line "$TCPDIST_LOG" 'tcpdist: stopped$' 10
}

@test "upgrades: 10 takeovers in a row under load at -j 1: no connection refused or reset, no byte changed" {
	upgrades 10 -j 1
}

@test "upgrades: 10 takeovers in a row under load at -j 2: no connection refused or reset, no byte changed" {
	upgrades 10 -j 2
}

@test "systemd: socket activation (LISTEN_FDS) and readiness notifications (NOTIFY_SOCKET)" {
	command -v systemd-socket-activate >/dev/null || skip "systemd-socket-activate not installed"
	[[ -x $HELPERS/notifysink ]] || fail "notifysink missing: run 'make helpers'"
	ports P PA
	start_namesrv a "127.0.0.1:$PA"
	start_bg sink "$HELPERS/notifysink" "$T/notify.sock" 30
	wait_for_file_line "$T/sink.out" '^ready$'
	printf '[pool]\nlisten = 127.0.0.1:%s\n[backend a]\naddress = 127.0.0.1:%s\n' "$P" "$PA" >"$T/web.pool"
	# systemd-socket-activate binds the port, then starts tcpdist on the first connection.
	start_bg tcpdist systemd-socket-activate -E NOTIFY_SOCKET="$T/notify.sock" -l "127.0.0.1:$P" \
		"$TCPDIST" -j 2 "$T/web.pool"
	TCPDIST_LOG=$T/tcpdist.err
	wait_for_file_line "$TCPDIST_LOG" 'Listening on' 5
	[ "$("$HELPERS/names" --timeout 3000 "127.0.0.1:$P" 1)" = a ]
	wait_for_file_line "$TCPDIST_LOG" "listening on 127.0.0.1:$P \\(1 socket from systemd\\)" 2
	wait_for_file_line "$T/sink.out" '^READY=1$' 2
	wait_for_file_line "$T/sink.out" '^STATUS=1 of 1 backends available' 2
	[ "$("$HELPERS/names" --timeout 3000 "127.0.0.1:$P" 1)" = a ]
	kill -HUP "$(pgrep -f "$TCPDIST -j 2 $T/web.pool" | head -1)"
	wait_for_file_line "$T/sink.out" '^RELOADING=1 MONOTONIC_USEC=[0-9]+$' 2
	wait_for_line_count "$T/sink.out" '^READY=1$' 2 2
	kill -TERM "$(pgrep -f "$TCPDIST -j 2 $T/web.pool" | head -1)"
	wait_for_file_line "$T/sink.out" '^STOPPING=1$' 2
}
