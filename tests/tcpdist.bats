#!/usr/bin/env bats
# tcpdist end to end, over real sockets on 127.0.0.1 (and ::1). Backends
# are the helper programs of tests/helpers/ (built by `make helpers`).
# Every wait polls with a deadline; every background process is killed by
# pid in teardown.

bats_require_minimum_version 1.5.0
load 'helpers'

# Bulk test size: BLAST_CONNS connections at once, BLAST_BYTES each way on
# each. See the two bulk tests below.
: "${BLAST_CONNS:=50}"
: "${BLAST_BYTES:=$((50 * 1024 * 1024))}"

setup() {
	require_helpers
	T=$BATS_TEST_TMPDIR
}

teardown() {
	[[ -n ${BATS_TEST_COMPLETED:-} ]] || dump_logs
	bg_teardown
}


# Prints "COUNT NAME" per backend name in FILE (one name per line), sorted by name.
tally() {
	sort "$1" | uniq -c | awk '{print $1, $2}' | sort -k2
}

# ---------------------------------------------------------------------------
# Command line

@test "-h and --help print usage on stdout and exit 0" {
	run --separate-stderr "$TCPDIST" -h
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == "usage: tcpdist "* ]]
	[ -z "$stderr" ]
	run --separate-stderr "$TCPDIST" --help
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == "usage: tcpdist "* ]]
}

@test "--version prints the version and exits 0" {
	run --separate-stderr "$TCPDIST" --version
	[ "$status" -eq 0 ]
	[ "$output" = "tcpdist 0.1.0" ]
}

@test "-n on a good pool prints 'configuration OK' (-f, positional and TCPDIST_POOL)" {
	write_pool good.pool <<-EOF
		; a comment
		[pool]
		listen = 127.0.0.1:18080
		listen = [::1]:18080
		balance = leastconn
		connect_timeout = 300ms
		idle_timeout = 0
		retries = 0

		[backend web1]
		address = 127.0.0.1:9001
		weight = 256
		[backend web-2.b_c]
		address = [::1]:9002
		state = drain
		max_conns = 10
	EOF
	run --separate-stderr "$TCPDIST" -n "$T/good.pool"
	[ "$status" -eq 0 ]
	[ "$output" = "configuration OK" ]
	run --separate-stderr "$TCPDIST" -n -f "$T/good.pool"
	[ "$status" -eq 0 ]
	[ "$output" = "configuration OK" ]
	TCPDIST_POOL="$T/good.pool" run --separate-stderr "$TCPDIST" -n
	[ "$status" -eq 0 ]
	[ "$output" = "configuration OK" ]
}

@test "-n on a bad pool exits 2 naming FILE:LINE: KEY" {
	local long
	long=$(printf 'x%.0s' {1..200})
	# each case: LINE KEY (or - for no key), then the file's content
	local -a cases=(
		"4 weight|[pool]
listen = 127.0.0.1:18080
[backend a]
weight = 257
address = 127.0.0.1:9001"
		"3 colour|[pool]
listen = 127.0.0.1:18080
colour = blue"
		"5 address|[pool]
listen = 127.0.0.1:18080

[backend a]
address = 127.0.0.1"
		"3 connect_timeout|[pool]
listen = 127.0.0.1:18080
connect_timeout = 2h"
		"2 balance|[pool]
balance = fastest"
		"5 -|[pool]
[backend a]
address = 127.0.0.1:9001
; next: a duplicate name
[backend a]
address = 127.0.0.1:9002"
		"2 -|[pool]
retries = 1 ; $long"
		"3 state|[backend a]
address = 127.0.0.1:9001
state = sleeping"
	)
	local n_case=0 c head want_line want_key
	for c in "${cases[@]}"; do
		n_case=$((n_case + 1))
		head=${c%%|*}
		want_line=${head% *}
		want_key=${head#* }
		printf '%s\n' "${c#*|}" >"$T/bad$n_case.pool"
		run --separate-stderr "$TCPDIST" -n "$T/bad$n_case.pool"
		echo "case $n_case: status $status, stdout '$output', stderr '$stderr'"
		[ "$status" -eq 2 ]
		[ -z "$output" ]
		if [[ $want_key == - ]]; then
			[[ $stderr == "tcpdist: $T/bad$n_case.pool:$want_line: "* ]]
		else
			[[ $stderr == "tcpdist: $T/bad$n_case.pool:$want_line: $want_key: "* ]]
		fi
	done
}

@test "unknown option or bad option value: exit 2 with usage on stderr" {
	write_pool good.pool <<-EOF
		[pool]
		listen = 127.0.0.1:18080
		[backend web1]
		address = 127.0.0.1:9001
	EOF
	run --separate-stderr "$TCPDIST" -j 4 -n "$T/good.pool"
	[ "$status" -eq 0 ]
	run --separate-stderr "$TCPDIST" --bogus
	[ "$status" -eq 2 ]
	[ -z "$output" ]
	[[ $stderr == *usage:* ]]
	run --separate-stderr "$TCPDIST" -x
	[ "$status" -eq 2 ]
	run --separate-stderr "$TCPDIST" -j 0 -n "$T/good.pool"
	[ "$status" -eq 2 ]
	[ -z "$output" ]
	run --separate-stderr "$TCPDIST" -j 65 -n "$T/good.pool"
	[ "$status" -eq 2 ]
	[ -z "$output" ]
	run --separate-stderr "$TCPDIST" --drain-timeout forever -n "$T/good.pool"
	[ "$status" -eq 2 ]
	run --separate-stderr "$TCPDIST" -n "$T/does-not-exist.pool"
	[ "$status" -eq 2 ]
	[[ $stderr == "tcpdist: "*does-not-exist.pool* ]]
}

# ---------------------------------------------------------------------------
# Bulk integrity

# blast_compare SERVER_OUT CLIENT_OUT CONNS BYTES: every connection id
# 0..CONNS-1 appears once on each side, carried BYTES each way, and the
# hashes of what was sent equal the hashes of what arrived.
blast_compare() {
	awk -v conns="$3" -v bytes="$4" '
		function hex(s) { return length(s) == 64 && s ~ /^[0-9a-f]+$/ }
		FNR == NR {
			if ($1 !~ /^[0-9]+$/) next
			if ($2 == "ERROR") { print "server: " $0; bad++; next }
			srv_n[$1]++; srv_got[$1] = $2; srv_rsha[$1] = $3; srv_ssha[$1] = $4
			next
		}
		$2 == "ERROR" { print "client: " $0; bad++; next }
		{
			id = $1; n++; seen[id]++
			if (!hex($2) || !hex($4)) { print "bad client line: " $0; bad++; next }
			if (srv_n[id] != 1) { print "id " id ": " srv_n[id] + 0 " server lines"; bad++; next }
			if ($3 != bytes) { print "id " id ": client received " $3 " bytes, not " bytes; bad++ }
			if (srv_got[id] != bytes) { print "id " id ": server received " srv_got[id] " bytes, not " bytes; bad++ }
			if ($2 != srv_rsha[id]) { print "id " id ": client->server hash differs"; bad++ }
			if ($4 != srv_ssha[id]) { print "id " id ": server->client hash differs"; bad++ }
		}
		END {
			for (i = 0; i < conns; i++)
				if (seen[i] != 1) { print "id " i ": " seen[i] + 0 " client lines"; bad++ }
			if (n != conns) { print n + 0 " client lines, not " conns; bad++ }
			exit bad > 0
		}' "$1" "$2"
}

# blast_through_tcpdist [TCPDIST OPTIONS]: BLAST_CONNS connections at once,
# BLAST_BYTES of pseudo-random data each way on each, through tcpdist to a
# blast server; checks counts and hashes per connection.
blast_through_tcpdist() {
	local pt pb start
	ports pt pb
	start_bg blastsrv "$HELPERS/blast" server "127.0.0.1:$pb" --bytes "$BLAST_BYTES"
	wait_for_file_line "$T/blastsrv.out" '^ready$'
	write_pool blast.pool <<-EOF
		[pool]
		listen = 127.0.0.1:$pt
		check_interval = 0
		[backend sink]
		address = 127.0.0.1:$pb
	EOF
	start_tcpdist "$T/blast.pool" "$@"
	start=$(now_ms)
	start_bg blastcli "$HELPERS/blast" client "127.0.0.1:$pt" --conns "$BLAST_CONNS" --bytes "$BLAST_BYTES"
	wait_for_exit blastcli 150
	echo "# blast $BLAST_CONNS x $BLAST_BYTES bytes each way: $(($(now_ms) - start)) ms" >&3
	[ "$EXIT_STATUS" -eq 0 ] || fail "blast client exited $EXIT_STATUS: $(head -5 "$T/blastcli.err")"
	wait_for_line_count "$T/blastsrv.out" '^[0-9]+ ' "$BLAST_CONNS" 10
	blast_compare "$T/blastsrv.out" "$T/blastcli.out" "$BLAST_CONNS" "$BLAST_BYTES"
	# -v: each connection's byte counts (the client also sent its 4-byte id)
	wait_for_line_count "$TCPDIST_LOG" \
		"tcpdist: closed client=127\.0\.0\.1:[0-9]+ in=$((BLAST_BYTES + 4)) out=$BLAST_BYTES close=fin$" \
		"$BLAST_CONNS" 5
}

@test "bulk: $BLAST_CONNS connections at once, random bytes each way, hashes identical (splice)" {
	blast_through_tcpdist -v
	grep -q 'splicing client->backend' "$TCPDIST_LOG" || fail "log never shows splicing client->backend"
	grep -q 'splicing backend->client' "$TCPDIST_LOG" || fail "log never shows splicing backend->client"
}

@test "bulk: $BLAST_CONNS connections at once, random bytes each way, hashes identical (--no-splice)" {
	blast_through_tcpdist -v --no-splice
	grep -q 'tcpdist: connected client=' "$TCPDIST_LOG" || fail "-v log shows no connection events"
	! grep -q 'splicing' "$TCPDIST_LOG" || fail "--no-splice, yet the log shows splicing"
}

# ---------------------------------------------------------------------------
# Half-close and reset

# Client sends 1 MiB and shuts down its write side; the backend echoes, and
# only after it has seen EOF (i.e. the FIN was passed on) waits 200 ms and
# writes "eof N": the client must still get the whole reply.
halfclose_client_side() {
	local pt pb
	ports pt pb
	start_namesrv echo "127.0.0.1:$pb" --eof-line 200
	write_pool hc.pool <<-EOF
		[pool]
		listen = 127.0.0.1:$pt
		[backend echo]
		address = 127.0.0.1:$pb
	EOF
	start_tcpdist "$T/hc.pool" "$@"
	head -c 1048576 /dev/urandom >"$T/data"
	{ printf 'echo\n'; cat "$T/data"; printf 'eof 1048576\n'; } >"$T/expected"
	run -0 timeout 10 "$HELPERS/halfclose" --data "$T/data" --out "$T/reply" "127.0.0.1:$pt" 1048576
	echo "$output"
	[ "${lines[1]}" = "received $(stat -c %s "$T/expected") $(sha256sum <"$T/expected" | cut -d' ' -f1)" ]
	cmp "$T/reply" "$T/expected"
	wait_for_file_line "$TCPDIST_LOG" \
		"tcpdist: closed client=127\.0\.0\.1:[0-9]+ in=1048576 out=$(stat -c %s "$T/expected") close=fin$"
}

@test "half-close: client's FIN reaches the backend, the reply still flows back (splice)" {
	halfclose_client_side -v
}

@test "half-close: client's FIN reaches the backend, the reply still flows back (--no-splice)" {
	halfclose_client_side -v --no-splice
}

@test "half-close: backend's FIN reaches the client, the client's data still flows to the backend" {
	local pt pb bytes=$((8 * 1024 * 1024))
	ports pt pb
	# The server sends nothing and shuts down its write side at once; the
	# client, paced to take 0.5 s, keeps sending long after that FIN.
	start_bg blastsrv "$HELPERS/blast" server "127.0.0.1:$pb" --bytes 0
	wait_for_file_line "$T/blastsrv.out" '^ready$'
	write_pool hc.pool <<-EOF
		[pool]
		listen = 127.0.0.1:$pt
		check_interval = 0
		[backend sink]
		address = 127.0.0.1:$pb
	EOF
	start_tcpdist "$T/hc.pool"
	timeout 20 "$HELPERS/blast" client "127.0.0.1:$pt" --conns 1 --bytes "$bytes" --rate 16M --timing \
		>"$T/blastcli.out" 2>"$T/blastcli.err" || fail "blast client: $(cat "$T/blastcli.err")"
	wait_for_line_count "$T/blastsrv.out" '^[0-9]+ ' 1
	# the backend's FIN reached the client long before the client finished sending
	local sent_ms eof_ms
	read -r sent_ms eof_ms < <(sed -n 's/^0 timing sent_ms=\([0-9]*\) eof_ms=\([0-9]*\)$/\1 \2/p' "$T/blastcli.err")
	echo "client finished sending at $sent_ms ms, got EOF at $eof_ms ms"
	((sent_ms >= 400 && eof_ms < sent_ms - 200))
	read -r id sent got gotsha <"$T/blastcli.out"
	[ "$got" -eq 0 ]
	[ "$gotsha" = "$(sha256sum </dev/null | cut -d' ' -f1)" ]
	read -r sid sgot ssha _ < <(grep -E '^[0-9]+ ' "$T/blastsrv.out")
	[ "$sid" -eq "$id" ]
	[ "$sgot" -eq "$bytes" ]
	[ "$ssha" = "$sent" ]
}

# rss_kib PID: the process's resident memory in KiB.
rss_kib() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

@test "backpressure: clients that never read do not make tcpdist's memory grow" {
	local pt pb before after i
	ports pt pb
	# The backend would send 1 GiB to each client; the clients never read.
	start_bg blastsrv "$HELPERS/blast" server "127.0.0.1:$pb" --bytes $((1024 * 1024 * 1024))
	wait_for_file_line "$T/blastsrv.out" '^ready$'
	write_pool pool <<-EOF
		[pool]
		listen = 127.0.0.1:$pt
		[backend big]
		address = 127.0.0.1:$pb
	EOF
	start_tcpdist "$T/pool"
	before=$(rss_kib "$TCPDIST_PID")
	for i in 1 2 3 4 5 6 7 8; do
		# Sends its 4-byte id, then sleeps with the socket open and unread.
		start_bg "stuck$i" bash -c "exec 5<>/dev/tcp/127.0.0.1/$pt; printf '\\0\\0\\0\\$i' >&5; sleep 60"
	done
	wait_for_established "$pb" 8
	# Let the socket buffers fill: the relay must then stop reading the backend.
	local deadline=$(($(now_ms) + 3000)) last=0 cur
	while (($(now_ms) < deadline)); do
		sleep 0.5
		cur=$(awk '{ s += $2 } END { print s + 0 }' < <(ss -Htn state established "sport = :$pb"))
		((cur == last)) && break # the backend's send queues stopped moving
		last=$cur
	done
	after=$(rss_kib "$TCPDIST_PID")
	echo "tcpdist RSS before ${before} KiB, after ${after} KiB with 8 stuck clients"
	# Bounded by a buffer or pipe per direction, not by what the backend offers.
	((after - before < 8 * 256)) || fail "RSS grew by $((after - before)) KiB"
	pid_alive "$TCPDIST_PID"
}

@test "a backend's RST reaches the client as RST" {
	local pt pb
	ports pt pb
	start_namesrv rst "127.0.0.1:$pb" --reset
	write_pool rst.pool <<-EOF
		[pool]
		listen = 127.0.0.1:$pt
		[backend rst]
		address = 127.0.0.1:$pb
	EOF
	start_tcpdist "$T/rst.pool"
	run -0 "$HELPERS/probe" --send hello --timeout 3000 "127.0.0.1:$pt"
	[[ $output == "reset bytes=4 "* ]] || fail "expected 'reset bytes=4' (name line, then RST), got '$output'"
}

# ---------------------------------------------------------------------------
# Failover

@test "refused backend: retried on the next one, the data sent before the retry arrives intact" {
	local pt pdead plive
	ports pt pdead plive
	start_namesrv live "127.0.0.1:$plive"
	write_pool pool <<-EOF
		[pool]
		listen = 127.0.0.1:$pt
		balance = roundrobin
		retries = 2
		check_interval = 0
		[backend dead]
		address = 127.0.0.1:$pdead
		[backend live]
		address = 127.0.0.1:$plive
	EOF
	start_tcpdist "$T/pool"
	# names --send: each connection sends a line at once and checks its echo
	run -0 "$HELPERS/names" --send "sent-before-the-retry-$$" "127.0.0.1:$pt" 20
	[ "${#lines[@]}" -eq 20 ]
	[ "$(tally <(printf '%s\n' "${lines[@]}"))" = "20 live" ]
	grep -Eq "tcpdist: client 127\.0\.0\.1:[0-9]+: backend dead 127\.0\.0\.1:$pdead: connection refused, trying another$" "$TCPDIST_LOG" ||
		fail "no 'connection refused, trying another' line"
}

@test "backend that never answers the SYN: connect_timeout, then served by the other backend" {
	local pt phole plive start elapsed
	ports pt phole plive
	start_bg hole "$HELPERS/blackhole" "127.0.0.1:$phole"
	wait_for_file_line "$T/hole.out" '^ready$'
	# the blackhole really swallows SYNs
	run -0 "$HELPERS/probe" --timeout 500 "127.0.0.1:$phole"
	[[ $output == connect-timeout* ]]
	start_namesrv live "127.0.0.1:$plive"
	write_pool pool <<-EOF
		[pool]
		listen = 127.0.0.1:$pt
		balance = roundrobin
		connect_timeout = 300ms
		retries = 2
		check_interval = 0
		[backend hole]
		address = 127.0.0.1:$phole
		[backend live]
		address = 127.0.0.1:$plive
	EOF
	start_tcpdist "$T/pool"
	start=$(now_ms)
	# data sent during the 300 ms wait must reach the backend that answers
	run -0 "$HELPERS/names" --timeout 3000 --send "sent-while-waiting-$$" "127.0.0.1:$pt" 4
	elapsed=$(($(now_ms) - start))
	echo "elapsed ${elapsed}ms"
	[ "$(tally <(printf '%s\n' "${lines[@]}"))" = "4 live" ]
	grep -Eq "tcpdist: client 127\.0\.0\.1:[0-9]+: backend hole 127\.0\.0\.1:$phole: connect timed out after 300ms, trying another$" "$TCPDIST_LOG" ||
		fail "no 'connect timed out after 300ms, trying another' line"
	# at least one connection waited out the timeout, none waited much longer
	((elapsed >= 300 && elapsed < 2500))
}

@test "all backends refuse: the client is reset at once, the log gives the reasons" {
	local pt p1 p2 ms
	ports pt p1 p2
	write_pool pool <<-EOF
		[pool]
		listen = 127.0.0.1:$pt
		retries = 2
		check_interval = 0
		[backend d1]
		address = 127.0.0.1:$p1
		[backend d2]
		address = 127.0.0.1:$p2
	EOF
	start_tcpdist "$T/pool"
	run -0 "$HELPERS/probe" --timeout 3000 "127.0.0.1:$pt"
	[[ $output =~ ^reset\ bytes=0\ ms=([0-9]+)$ ]] || fail "expected a reset, got '$output'"
	ms=${BASH_REMATCH[1]}
	((ms < 1000)) || fail "reset after $ms ms"
	wait_for_file_line "$TCPDIST_LOG" "tcpdist: client 127\.0\.0\.1:[0-9]+: no backend available \(.*\)$"
	grep 'no backend available' "$TCPDIST_LOG" | grep -q 'd1: connection refused'
	grep 'no backend available' "$TCPDIST_LOG" | grep -q 'd2: connection refused'
}

@test "no eligible backend (weight 0, drain, down): reset at once, 'none is up'" {
	local pt pb ms
	ports pt pb
	start_namesrv w0 "127.0.0.1:$pb"
	write_pool pool <<-EOF
		[pool]
		listen = 127.0.0.1:$pt
		[backend w0]
		address = 127.0.0.1:$pb
		weight = 0
		[backend dr]
		address = 127.0.0.1:$pb
		state = drain
		[backend dn]
		address = 127.0.0.1:$pb
		state = down
	EOF
	start_tcpdist "$T/pool"
	run -0 "$HELPERS/probe" --timeout 3000 "127.0.0.1:$pt"
	[[ $output =~ ^reset\ bytes=0\ ms=([0-9]+)$ ]] || fail "expected a reset, got '$output'"
	ms=${BASH_REMATCH[1]}
	((ms < 1000)) || fail "reset after $ms ms"
	wait_for_file_line "$TCPDIST_LOG" "tcpdist: client 127\.0\.0\.1:[0-9]+: no backend available \(none is up\)$"
}

# ---------------------------------------------------------------------------
# Balancing

@test "roundrobin weights 1,2,3: 1002 connections give exactly 167/334/501, every 6 in 1:2:3" {
	local pt p1 p2 p3
	ports pt p1 p2 p3
	start_namesrv w1 "127.0.0.1:$p1"
	start_namesrv w2 "127.0.0.1:$p2"
	start_namesrv w3 "127.0.0.1:$p3"
	write_pool pool <<-EOF
		[pool]
		listen = 127.0.0.1:$pt
		balance = roundrobin
		[backend w1]
		address = 127.0.0.1:$p1
		weight = 1
		[backend w2]
		address = 127.0.0.1:$p2
		weight = 2
		[backend w3]
		address = 127.0.0.1:$p3
		weight = 3
	EOF
	start_tcpdist "$T/pool"
	"$HELPERS/names" "127.0.0.1:$pt" 1002 >"$T/names"
	[ "$(tally "$T/names" | xargs)" = "167 w1 334 w2 501 w3" ]
	# smooth: each run of sum(weights) = 6 connections from the start is 1:2:3
	awk '{ c[$1]++ } NR % 6 == 0 {
		if (c["w1"] != 1 || c["w2"] != 2 || c["w3"] != 3) { print "connections " NR - 5 "-" NR ": " c["w1"] + 0 "/" c["w2"] + 0 "/" c["w3"] + 0; bad = 1 }
		delete c
	} END { exit bad }' "$T/names"
}

@test "leastconn: new connections go to the backend with fewest open connections" {
	local pt pa pb i name
	ports pt pa pb
	start_namesrv A "127.0.0.1:$pa"
	start_namesrv B "127.0.0.1:$pb"
	write_pool pool <<-EOF
		[pool]
		listen = 127.0.0.1:$pt
		balance = leastconn
		check_interval = 0
		[backend A]
		address = 127.0.0.1:$pa
		[backend B]
		address = 127.0.0.1:$pb
	EOF
	start_tcpdist "$T/pool"
	# six long connections, opened one after the other, spread 3/3
	for i in 1 2 3 4 5 6; do
		start_bg "hold$i" "$HELPERS/hold" "127.0.0.1:$pt" 60
		wait_for_file_line "$T/hold$i.out" '^line '
	done
	local -a on_a=() on_b=()
	for i in 1 2 3 4 5 6; do
		name=$(sed -n 's/^line //p' "$T/hold$i.out" | head -1)
		case $name in
		A) on_a+=("$i") ;;
		B) on_b+=("$i") ;;
		*) fail "hold$i reached '$name'" ;;
		esac
	done
	[ "${#on_a[@]}" -eq 3 ] || fail "A got ${#on_a[@]} of 6, B ${#on_b[@]}"
	# close the three on B; wait until tcpdist has closed its side to B too
	for i in "${on_b[@]}"; do
		stop_bg "hold$i"
	done
	wait_for_established "$pb" 0
	[ "$(established_to "$pa")" -eq 3 ]
	# now B has 0 and A has 3: the next three must all go to B
	for i in 7 8 9; do
		start_bg "hold$i" "$HELPERS/hold" "127.0.0.1:$pt" 60
		wait_for_file_line "$T/hold$i.out" '^line '
		grep -qx 'line B' "$T/hold$i.out" || fail "connection $i went to $(grep '^line' "$T/hold$i.out")"
	done
}

# weight 0, drain and down never get a new connection, whatever the balance.
ineligible_never_chosen() {
	local balance=$1 pt p
	ports pt p
	start_namesrv up1 "127.0.0.1:$p"
	# the names come from the backend's answer, so each needs its own server
	local q
	for q in up2 zero drained downed; do
		local pq
		pq=$(free_port)
		start_namesrv "$q" "127.0.0.1:$pq"
		printf -v "port_$q" %s "$pq"
	done
	write_pool pool <<-EOF
		[pool]
		listen = 127.0.0.1:$pt
		balance = $balance
		[backend zero]
		address = 127.0.0.1:$port_zero
		weight = 0
		[backend up1]
		address = 127.0.0.1:$p
		[backend drained]
		address = 127.0.0.1:$port_drained
		state = drain
		[backend up2]
		address = 127.0.0.1:$port_up2
		[backend downed]
		address = 127.0.0.1:$port_downed
		state = down
	EOF
	start_tcpdist "$T/pool"
	run -0 "$HELPERS/names" "127.0.0.1:$pt" 30
	printf '%s\n' "${lines[@]}" >"$T/names"
	tally "$T/names"
	[ "${#lines[@]}" -eq 30 ]
	! grep -Eqx 'zero|drained|downed' "$T/names" || fail "an ineligible backend was chosen"
}

@test "weight 0, state drain, state down never receive new connections (roundrobin: exactly 15/15)" {
	ineligible_never_chosen roundrobin
	[ "$(tally "$T/names" | xargs)" = "15 up1 15 up2" ]
}

@test "weight 0, state drain, state down never receive new connections (leastconn, random)" {
	ineligible_never_chosen leastconn
	stop_bg tcpdist
	for n in up1 up2 zero drained downed; do stop_bg "$n"; done
	ineligible_never_chosen random
}

# ---------------------------------------------------------------------------
# Shutdown

@test "SIGTERM: new connects refused at once, the open transfer completes intact, exit 0" {
	local pt pb bytes=$((16 * 1024 * 1024)) deadline refused=
	ports pt pb
	# 16 MiB each way at 8 MiB/s: the transfer lasts about 2 s
	start_bg blastsrv "$HELPERS/blast" server "127.0.0.1:$pb" --bytes "$bytes" --rate 8M
	wait_for_file_line "$T/blastsrv.out" '^ready$'
	write_pool pool <<-EOF
		[pool]
		listen = 127.0.0.1:$pt
		check_interval = 0
		[backend sink]
		address = 127.0.0.1:$pb
	EOF
	start_tcpdist "$T/pool"
	start_bg blastcli "$HELPERS/blast" client "127.0.0.1:$pt" --conns 1 --bytes "$bytes" --rate 8M
	wait_for_established "$pb" 1
	kill -TERM "$TCPDIST_PID"
	pid_alive "${BG_PID[blastcli]}" || fail "the transfer ended before SIGTERM: test too fast"
	# listeners closed promptly: a new connect is refused within 500 ms
	deadline=$(($(now_ms) + 500))
	while (($(now_ms) < deadline)); do
		if [[ $("$HELPERS/probe" --timeout 100 "127.0.0.1:$pt") == refused* ]]; then
			refused=yes
			break
		fi
		sleep 0.02
	done
	[ -n "$refused" ] || fail "connects still accepted 500 ms after SIGTERM"
	pid_alive "$TCPDIST_PID" || fail "tcpdist exited before the transfer finished"
	wait_for_exit blastcli 20
	[ "$EXIT_STATUS" -eq 0 ] || fail "blast client failed: $(cat "$T/blastcli.err")"
	wait_for_line_count "$T/blastsrv.out" '^[0-9]+ ' 1
	blast_compare "$T/blastsrv.out" "$T/blastcli.out" 1 "$bytes"
	wait_for_exit tcpdist 5
	[ "$EXIT_STATUS" -eq 0 ] || fail "tcpdist exited $EXIT_STATUS"
	log_has 'tcpdist: stopped'
	grep -Eq 'tcpdist: shutting down: waiting up to 10s for [0-9]+ connections?$' "$TCPDIST_LOG"
}

@test "SIGTERM, then a second signal during the drain: exits at once" {
	local pt pb start
	ports pt pb
	start_namesrv web "127.0.0.1:$pb"
	write_pool pool <<-EOF
		[pool]
		listen = 127.0.0.1:$pt
		[backend web]
		address = 127.0.0.1:$pb
	EOF
	start_tcpdist "$T/pool"
	start_bg hold "$HELPERS/hold" "127.0.0.1:$pt" 60
	wait_for_file_line "$T/hold.out" '^line web$'
	kill -TERM "$TCPDIST_PID"
	wait_for_file_line "$TCPDIST_LOG" 'tcpdist: shutting down'
	pid_alive "$TCPDIST_PID" || fail "tcpdist did not wait for the open connection"
	start=$(now_ms)
	kill -TERM "$TCPDIST_PID"
	wait_for_exit tcpdist 1
	echo "exited after $(($(now_ms) - start)) ms with status $EXIT_STATUS"
	[ "$EXIT_STATUS" -eq 0 ] # documented in tcpdist(1): a requested stop, even a hurried one, is not a failure
	log_has 'tcpdist: second signal: exiting now'
	wait_for_file_line "$T/hold.out" '^closed-by-peer' 2
	grep -Eq 'tcpdist: shutting down: waiting up to 10s for 1 connections?$' "$TCPDIST_LOG"
}

@test "SIGINT with --drain-timeout: connections still open at the deadline are closed, exit 0" {
	local pt pb start elapsed
	ports pt pb
	start_namesrv web "127.0.0.1:$pb"
	write_pool pool <<-EOF
		[pool]
		listen = 127.0.0.1:$pt
		[backend web]
		address = 127.0.0.1:$pb
	EOF
	start_tcpdist "$T/pool" --drain-timeout 500ms
	start_bg hold "$HELPERS/hold" "127.0.0.1:$pt" 60
	wait_for_file_line "$T/hold.out" '^line web$'
	start=$(now_ms)
	kill -INT "$TCPDIST_PID"
	wait_for_exit tcpdist 3
	elapsed=$(($(now_ms) - start))
	echo "exited after $elapsed ms with status $EXIT_STATUS"
	[ "$EXIT_STATUS" -eq 0 ]
	((elapsed >= 450)) || fail "exited after $elapsed ms, before the 500ms drain timeout"
	grep -Eq 'tcpdist: drain timeout: closing 1 connections?$' "$TCPDIST_LOG"
	wait_for_file_line "$T/hold.out" '^closed-by-peer' 2
	grep -Eq 'tcpdist: shutting down: waiting up to 500ms for 1 connections?$' "$TCPDIST_LOG"
}

# ---------------------------------------------------------------------------
# Timeouts, threads, addresses

@test "idle_timeout 500ms closes a silent connection (both sides), spares a busy one" {
	local pt pb ms
	ports pt pb
	start_namesrv web "127.0.0.1:$pb"
	write_pool pool <<-EOF
		[pool]
		listen = 127.0.0.1:$pt
		idle_timeout = 500ms
		check_interval = 0
		[backend web]
		address = 127.0.0.1:$pb
	EOF
	start_tcpdist "$T/pool" -v
	start_bg idle "$HELPERS/hold" "127.0.0.1:$pt" 10
	start_bg busy "$HELPERS/hold" --every 200 "127.0.0.1:$pt" 1.5
	wait_for_file_line "$T/idle.out" '^closed-by-peer' 3
	ms=$(sed -n 's/^closed-by-peer after_ms=\([0-9]*\).*/\1/p' "$T/idle.out")
	echo "idle connection closed after $ms ms"
	((ms >= 450 && ms < 1500)) || fail "idle connection closed after $ms ms"
	grep -q 'line web' "$T/idle.out"
	# the backend side of the idle connection is closed too: only busy's remains
	wait_for_established "$pb" 1 2
	wait_for_file_line "$T/busy.out" '^(held|closed-by-peer)' 4
	ms=$(sed -n 's/^held after_ms=\([0-9]*\)$/\1/p' "$T/busy.out")
	[[ -n $ms ]] && ((ms >= 1500)) || fail "busy connection: $(tail -1 "$T/busy.out")"
	[ "$(grep -c '^line ping$' "$T/busy.out")" -ge 5 ]
	grep -Eq 'tcpdist: client 127\.0\.0\.1:[0-9]+: idle for 500ms, closing$' "$TCPDIST_LOG"
}

@test "idle_timeout with bytes held for a backend that stopped reading resets it: the cut stream is not passed off as whole" {
	local pt pb
	ports pt pb
	start_namesrv stuck "127.0.0.1:$pb" --stall 1500
	write_pool pool <<-EOF
		[pool]
		listen = 127.0.0.1:$pt
		idle_timeout = 500ms
		check_interval = 0
		[backend stuck]
		address = 127.0.0.1:$pb
	EOF
	start_tcpdist "$T/pool" -v
	# 16 MiB: far more than the socket buffers on the way hold, so the
	# upload stalls with bytes in tcpdist's hands.
	start_bg upload "$HELPERS/blast" client "127.0.0.1:$pt" --conns 1 --bytes 16M
	wait_for_file_line "$T/stuck.out" '^got ' 5
	grep -qx 'got [0-9]* reset' "$T/stuck.out"
	wait_for_exit upload 5
	[ "$EXIT_STATUS" -ne 0 ]
	grep -Eq 'idle for 500ms, closing$' "$TCPDIST_LOG"
	grep -Eq 'tcpdist: closed client=.* close=reset$' "$TCPDIST_LOG"
}

@test "-j 4: 200 connections, 20 at a time, all answered" {
	local pt p1 p2
	ports pt p1 p2
	start_namesrv a "127.0.0.1:$p1"
	start_namesrv b "127.0.0.1:$p2"
	write_pool pool <<-EOF
		[pool]
		listen = 127.0.0.1:$pt
		[backend a]
		address = 127.0.0.1:$p1
		[backend b]
		address = 127.0.0.1:$p2
	EOF
	start_tcpdist "$T/pool" -j 4
	grep -Eq 'tcpdist: pool .*: 2 backends, balance [a-z]+, 4 threads$' "$TCPDIST_LOG"
	run -0 "$HELPERS/names" --parallel 20 --send ping "127.0.0.1:$pt" 200
	[ "${#lines[@]}" -eq 200 ]
	printf '%s\n' "${lines[@]}" >"$T/names"
	tally "$T/names"
	run ! grep -Evqx 'a|b' "$T/names"
}

@test "listen on port 0: the log gives the real port, which works" {
	local pb port
	pb=$(free_port)
	start_namesrv web "127.0.0.1:$pb"
	write_pool pool <<-EOF
		[pool]
		listen = 127.0.0.1:0
		[backend web]
		address = 127.0.0.1:$pb
	EOF
	start_tcpdist "$T/pool"
	port=$(sed -n 's/^.*tcpdist: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$TCPDIST_LOG")
	[[ $port =~ ^[1-9][0-9]*$ ]] || fail "no port in: $(cat "$TCPDIST_LOG")"
	run -0 "$HELPERS/names" "127.0.0.1:$port" 2
	[ "$output" = "$(printf 'web\nweb')" ]
}

@test "-l overrides the pool's listen lines" {
	local pt pl pb
	ports pt pl pb
	start_namesrv web "127.0.0.1:$pb"
	write_pool pool <<-EOF
		[pool]
		listen = 127.0.0.1:$pt
		[backend web]
		address = 127.0.0.1:$pb
	EOF
	start_tcpdist "$T/pool" -l "127.0.0.1:$pl"
	log_has "tcpdist: listening on 127.0.0.1:$pl"
	run -0 "$HELPERS/names" "127.0.0.1:$pl" 1
	[ "$output" = web ]
	run -0 "$HELPERS/probe" --timeout 500 "127.0.0.1:$pt"
	[[ $output == refused* ]]
}

@test "IPv6: listen on [::1], relay to a backend on [::1]" {
	local p pt pb
	p=$(free_port 2 -6 2>/dev/null) || skip "::1 is not available"
	read -r pt pb <<<"$(echo $p)"
	start_namesrv six "[::1]:$pb" --eof-line 0
	write_pool pool <<-EOF
		[pool]
		listen = [::1]:$pt
		[backend six]
		address = [::1]:$pb
	EOF
	start_tcpdist "$T/pool" -v
	log_has "tcpdist: listening on [::1]:$pt"
	run -0 "$HELPERS/names" --send hello6 "[::1]:$pt" 3
	[ "$output" = "$(printf 'six\nsix\nsix')" ]
	head -c 100000 /dev/urandom >"$T/data"
	run -0 "$HELPERS/halfclose" --data "$T/data" --out "$T/reply" "[::1]:$pt" 100000
	cmp "$T/reply" <({ printf 'six\n'; cat "$T/data"; printf 'eof 100000\n'; })
	grep -Eq "tcpdist: connected client=\[::1\]:[0-9]+ backend=six address=\[::1\]:$pb connect=[0-9.]+ retries=0$" "$TCPDIST_LOG"
}
