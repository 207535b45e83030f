#!/usr/bin/env bats
# tcppeer against the real thing: Debian's serf agents on 127.0.0.1, other
# tcppeer nodes, tcpdist following the pool file, and hostile input. Every
# wait polls with a deadline; every background process is killed by pid.

bats_require_minimum_version 1.5.0
load 'helpers'
load 'tcppeer_helpers'

# Seconds of 10% packet loss in the loss test (the issue asks for 60).
: "${TCPPEER_LOSS_SECONDS:=60}"

# ---------------------------------------------------------------------------
# Command line

@test "-h prints usage on stdout, --version the version, bad usage exits 2" {
	run --separate-stderr "$TCPPEER" -h
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == "usage: tcppeer "* ]]
	run --separate-stderr "$TCPPEER" --version
	[ "$status" -eq 0 ]
	[ "$output" = "tcppeer 0.1.0" ]
	run --separate-stderr "$TCPPEER" -n a
	[ "$status" -eq 2 ]
	[[ $stderr == "usage: tcppeer "* ]]
	run --separate-stderr "$TCPPEER" -n a -b 127.0.0.1:1 --pool x
	[ "$status" -eq 2 ]
	[ "$stderr" = "tcppeer: --pool and --service-tag go together" ]
	run --separate-stderr "$TCPPEER" -n a -b 127.0.0.1:1 -t novalue
	[ "$status" -eq 2 ]
	[[ $stderr == "tcppeer: -t: 'novalue' is not KEY=VALUE" ]]
	run --separate-stderr "$TCPPEER" -n a -b 127.0.0.1:1 --probe-interval 0
	[ "$status" -eq 2 ]
	run --separate-stderr "$TCPPEER" members --control "$T/none.sock"
	[ "$status" -eq 2 ]
	[[ $stderr == "tcppeer: cannot reach a node at '$T/none.sock': "* ]]
}

@test "a busy port or control socket is a runtime error (exit 2)" {
	ports P1 P2
	start_peer a "$P1"
	run --separate-stderr "$TCPPEER" -n b -b "127.0.0.1:$P1" --control "$T/b.sock"
	[ "$status" -eq 2 ]
	[[ $stderr == "tcppeer: bind "*"127.0.0.1:$P1"* ]]
	run --separate-stderr "$TCPPEER" -n b -b "127.0.0.1:$P2" --control "$T/a.sock"
	[ "$status" -eq 2 ]
	[[ $stderr == *"is in use by a running node" ]]
}

@test "control socket: mode 0600, a stale one replaced, a successor's left alone at exit" {
	ports P1 P2 P3
	start_peer a "$P1"
	[ "$(stat -c %a "$T/a.sock")" = 600 ]
	# The file removed under a, another node at the same path: a's exit
	# must not take the other node's socket with it.
	rm "$T/a.sock"
	start_bg b "$TCPPEER" -n b -b "127.0.0.1:$P2" --control "$T/a.sock"
	wait_for_file_line "$T/b.err" 'listening on' 5
	stop_bg a TERM
	[ -S "$T/a.sock" ]
	run -0 --separate-stderr "$TCPPEER" members --control "$T/a.sock"
	[[ $output == b$'\t'* ]]
	# A socket left by a crash: replaced; gone at a clean exit.
	stop_bg b KILL
	[ -S "$T/a.sock" ]
	start_bg c "$TCPPEER" -n c -b "127.0.0.1:$P3" --control "$T/a.sock"
	wait_for_file_line "$T/c.err" 'listening on' 5
	run -0 --separate-stderr "$TCPPEER" members --control "$T/a.sock"
	[[ $output == c$'\t'* ]]
	stop_bg c TERM
	[ ! -e "$T/a.sock" ]
}

# ---------------------------------------------------------------------------
# With serf

@test "joins a 3-agent serf cluster: alive with its tags everywhere within 2 s, and sees all three" {
	serf_cluster
	ports P
	local t0
	t0=$(now_ms)
	start_peer tp "$P" -j "127.0.0.1:$G2" -t zone=a -t svc=127.0.0.1:9
	wait_until 2 serf_has "$R1" tp alive "svc=127.0.0.1:9"
	wait_until 2 serf_has "$R2" tp alive "zone=a"
	wait_until 2 serf_has "$R3" tp alive "zone=a"
	echo "# join seen by all three agents in $(($(now_ms) - t0)) ms" >&3
	wait_until 2 peer_has tp s1 alive
	wait_until 2 peer_has tp s2 alive
	wait_until 2 peer_has tp s3 alive
	run -0 peer_members tp
	[[ $output == *$'s2\t127.0.0.1:'"$G2"$'\talive\trole=two'* ]]
	[[ $output == *$'tp\t127.0.0.1:'"$P"$'\talive\tsvc=127.0.0.1:9,zone=a'* ]]
	wait_for_file_line "$T/tp.out" "^member-join s3 127\\.0\\.0\\.1:$G3 role=three\$"
	wait_for_file_line "$T/tp.out" "^member-join tp 127\\.0\\.0\\.1:$P svc=127\\.0\\.0\\.1:9 zone=a\$"
}

@test "kill -9 of tcppeer: serf marks it failed within 10 s" {
	serf_cluster
	ports P
	start_peer tp "$P" -j "127.0.0.1:$G1"
	wait_until 2 serf_has "$R3" tp alive
	local t0
	t0=$(now_ms)
	kill -KILL "${BG_PID[tp]}"
	wait_until 10 serf_has "$R1" tp failed
	wait_until 1 serf_has "$R2" tp failed
	wait_until 1 serf_has "$R3" tp failed
	echo "# failure seen by all three agents in $(($(now_ms) - t0)) ms" >&3
}

@test "clean stop: serf shows it left within 2 s, and tcppeer exits 0" {
	serf_cluster
	ports P
	start_peer tp "$P" -j "127.0.0.1:$G3"
	wait_until 2 serf_has "$R1" tp alive
	local t0
	t0=$(now_ms)
	kill -TERM "${BG_PID[tp]}"
	wait_until 2 serf_has "$R1" tp left
	wait_until 2 serf_has "$R2" tp left
	wait_until 2 serf_has "$R3" tp left
	echo "# leave seen by all three agents in $(($(now_ms) - t0)) ms" >&3
	wait_for_exit tp 5
	[ "$EXIT_STATUS" -eq 0 ]
	grep -q '^member-leave tp ' "$T/tp.out"
}

@test "a serf agent killed is member-failed within 10 s; one that leaves is member-leave" {
	serf_cluster
	ports P
	start_peer tp "$P" -j "127.0.0.1:$G1"
	wait_until 2 peer_has tp s3 alive
	local t0
	t0=$(now_ms)
	kill -KILL "${BG_PID[s3]}"
	wait_for_file_line "$T/tp.out" "^member-failed s3 127\\.0\\.0\\.1:$G3 role=three\$" 10
	echo "# failure of a serf agent seen in $(($(now_ms) - t0)) ms" >&3
	peer_has tp s3 failed
	"$SERF" leave -rpc-addr "127.0.0.1:$R2" >/dev/null
	wait_for_file_line "$T/tp.out" "^member-leave s2 127\\.0\\.0\\.1:$G2 role=two\$" 5
	peer_has tp s2 left
}

@test "a node killed and restarted refutes its death and is a member again; a left name is reusable at a new address" {
	ports P1 P2 P3
	start_peer a "$P1"
	start_peer b "$P2" -j "127.0.0.1:$P1"
	wait_until 3 peer_has a b alive
	kill -KILL "${BG_PID[b]}"
	wait_for_exit b 2 || true
	wait_for_file_line "$T/a.out" '^member-failed b ' 10
	# Same name, same address: the cluster says it is dead; it refutes.
	start_peer b "$P2" -j "127.0.0.1:$P1"
	wait_for_line_count "$T/a.out" "^member-join b 127\\.0\\.0\\.1:$P2\$" 2 5
	run -0 peer_members a --json
	[[ $output =~ \"name\":\"b\",\"addr\":\"127.0.0.1:$P2\",\"status\":\"alive\",\"incarnation\":([0-9]+) ]]
	((BASH_REMATCH[1] >= 2))
	# A clean leave frees the name at once, for another address.
	stop_bg b
	wait_until 3 peer_has a b left
	start_peer b2 "$P3" -n b -j "127.0.0.1:$P1"
	wait_for_file_line "$T/a.out" "^member-join b 127\\.0\\.0\\.1:$P3\$" 5
	peer_has a b alive
}

@test "members --json lists members and counters" {
	ports P1 P2
	start_peer a "$P1" -t k=v
	start_peer b "$P2" -j "127.0.0.1:$P1"
	wait_until 3 peer_has a b alive
	run -0 peer_members a --json
	[[ $output == '{"members":[{"name":"a","addr":"127.0.0.1:'"$P1"'","status":"alive","incarnation":1,"tags":{"k":"v"}},{"name":"b",'* ]]
	[[ $output == *'"stats":{"packets_in":'* ]]
}

# ---------------------------------------------------------------------------
# Pool file

@test "pool: tagged members become backends, a tag change moves the address, kill -9 drops it; others' backends untouched" {
	ports G1 G2 R1 R2 P
	write_pool web.pool <<-EOF
		[pool]
		listen = 127.0.0.1:1

		; a backend run by hand: never touched
		[backend static]
		address = 127.0.0.1:7
	EOF
	start_serf s1 "$G1" "$R1" -tag web=127.0.0.1:8001
	start_serf s2 "$G2" "$R2" -tag web=127.0.0.1:8002 -join "127.0.0.1:$G1"
	start_peer tp "$P" -j "127.0.0.1:$G1" --pool "$T/web.pool" --service-tag web
	wait_until 5 grep -q '^\[backend s2\]' "$T/web.pool"
	wait_until 5 grep -q '^\[backend s1\]' "$T/web.pool"
	run -0 "$BATS_TEST_DIRNAME/../bin/tcpdist" -n "$T/web.pool"
	kill -KILL "${BG_PID[s2]}"
	wait_for_file_line "$T/tp.out" '^member-failed s2 ' 10
	wait_until 2 bash -c "! grep -q '^\[backend s2\]' '$T/web.pool'"
	grep -q '^\[backend s1\]' "$T/web.pool"
	# A tag changed at run time: member-update, and the address follows.
	"$SERF" tags -rpc-addr "127.0.0.1:$R1" -set web=127.0.0.1:8011 >/dev/null
	wait_for_file_line "$T/tp.out" "^member-update s1 127\\.0\\.0\\.1:$G1 web=127\\.0\\.0\\.1:8011\$" 5
	wait_until 2 grep -q '^address = 127.0.0.1:8011$' "$T/web.pool"
	grep -q '^; a backend run by hand: never touched$' "$T/web.pool"
	grep -q '^\[backend static\]$' "$T/web.pool"
	run ! grep -q 8002 "$T/web.pool"
}

# zone_of FILE BACKEND: the zone key of [backend BACKEND] in FILE.
zone_of() {
	awk -v b="[backend $2]" '/^\[/ { in_b = ($0 == b) } in_b && $1 == "zone" { print $3 }' "$1"
}

@test "pool: --zone-tag: a serf agent's zone tag is its backend's zone, follows a change, and goes with the tag; a bad one is logged" {
	ports G1 G2 R1 R2 P
	printf '[pool]\nlisten = 127.0.0.1:1\nlocality = prefer\n' >"$T/web.pool"
	start_serf s1 "$G1" "$R1" -tag web=127.0.0.1:8001 -tag az=eu-1a
	start_serf s2 "$G2" "$R2" -tag web=127.0.0.1:8002 -tag 'az=not a zone' -join "127.0.0.1:$G1"
	start_peer tp "$P" -j "127.0.0.1:$G1" --pool "$T/web.pool" --service-tag web --zone-tag az \
		--pool-delay 100ms
	wait_until 5 grep -q '^\[backend s2\]' "$T/web.pool"
	wait_until 5 grep -q '^\[backend s1\]' "$T/web.pool"
	[ "$(zone_of "$T/web.pool" s1)" = eu-1a ]
	[ -z "$(zone_of "$T/web.pool" s2)" ]
	grep -q "member 's2': az=not a zone is not a zone name" "$T/tp.err"
	run -0 "$TCPDIST" -n "$T/web.pool"
	# The tag changes: the zone follows; the tag goes: so does the key.
	"$SERF" tags -rpc-addr "127.0.0.1:$R1" -set az=eu-1b >/dev/null
	wait_until 5 bash -c "grep -A3 '^\[backend s1\]' '$T/web.pool' | grep -qx 'zone = eu-1b'"
	"$SERF" tags -rpc-addr "127.0.0.1:$R2" -set az=eu-1c >/dev/null
	wait_until 5 bash -c "grep -A3 '^\[backend s2\]' '$T/web.pool' | grep -qx 'zone = eu-1c'"
	"$SERF" tags -rpc-addr "127.0.0.1:$R1" -delete az >/dev/null
	wait_until 5 bash -c "! grep -A3 '^\[backend s1\]' '$T/web.pool' | grep -q '^zone'"
	[ "$(zone_of "$T/web.pool" s2)" = eu-1c ]
	run -0 "$TCPDIST" -n "$T/web.pool"
	# --zone-tag alone is a usage error.
	run --separate-stderr "$TCPPEER" -n x -b 127.0.0.1:1 --zone-tag az
	[ "$status" -eq 2 ]
	[ "$stderr" = "tcppeer: --zone-tag needs --pool and --service-tag" ]
}

# empty_pool: $T/web.pool with a [pool] section and no backend yet.
empty_pool() {
	printf '[pool]\nlisten = 127.0.0.1:1\n' >"$T/web.pool"
}

@test "pool: a member whose tag the file cannot take is logged once and left out; the others are written" {
	ports PA PB PC PD PE
	empty_pool
	local long
	long=$(printf 'h%.0s' {1..200})
	start_peer a "$PA" --pool "$T/web.pool" --service-tag web --pool-delay 100ms
	start_peer b "$PB" -j "127.0.0.1:$PA" -t "web=$long:80"
	start_peer c "$PC" -j "127.0.0.1:$PA" -t "web=127.0.0.1:80:80"
	start_peer d "$PD" -j "127.0.0.1:$PA" -t web=127.0.0.1:9091
	wait_until 5 grep -q '^\[backend d\]' "$T/web.pool"
	# Later members still get in, and a tag change still moves an address.
	start_peer e "$PE" -j "127.0.0.1:$PA" -t web=127.0.0.1:9092
	wait_until 5 grep -q '^\[backend e\]' "$T/web.pool"
	run -0 "$BATS_TEST_DIRNAME/../bin/tcpdist" -n "$T/web.pool"
	run ! grep -qE '^\[backend (b|c)\]' "$T/web.pool"
	grep "member '[bc]'" "$T/a.err" | sed 's/^/# /' >&3
	[ "$(grep -c "pool: member 'b': address: the line would be 213 bytes long (at most 198); left out" "$T/a.err")" -eq 1 ]
	[ "$(grep -c "pool: member 'c': web=127.0.0.1:80:80 is not host:port; left out" "$T/a.err")" -eq 1 ]
	run ! grep -q 'retrying' "$T/a.err"
}

@test "pool: a burst of joins after the first write is one more write, --pool-delay after its start" {
	ports PA PB PC PD PE
	empty_pool
	start_peer a "$PA" --pool "$T/web.pool" --service-tag web --pool-delay 2s
	start_peer b "$PB" -j "127.0.0.1:$PA" -t web=127.0.0.1:9001
	wait_until 5 grep -q '^\[backend b\]' "$T/web.pool"
	local t0
	t0=$(now_ms)
	start_peer c "$PC" -j "127.0.0.1:$PA" -t web=127.0.0.1:9002
	start_peer d "$PD" -j "127.0.0.1:$PA" -t web=127.0.0.1:9003
	start_peer e "$PE" -j "127.0.0.1:$PA" -t web=127.0.0.1:9004
	wait_until 6 grep -q '^\[backend e\]' "$T/web.pool"
	echo "# the burst was written after $(($(now_ms) - t0)) ms" >&3
	((($(now_ms) - t0) >= 1900))
	grep -q '^\[backend c\]' "$T/web.pool"
	grep -q '^\[backend d\]' "$T/web.pool"
	[ "$(grep -c 'web.pool: 1 added, 0 removed, 0 changed' "$T/a.err")" -eq 1 ]
	[ "$(grep -c 'web.pool: 3 added, 0 removed, 0 changed' "$T/a.err")" -eq 1 ]
}

# start_peer_with_dns NAME PORT RESOLV_CONF [ARGS...]: start_peer, but the node
# sees RESOLV_CONF as /etc/resolv.conf (a private mount; root only).
start_peer_with_dns() {
	local name=$1 port=$2 conf=$3
	shift 3
	start_bg "$name" unshare -m sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$conf" \
		"$TCPPEER" -n "$name" -b "127.0.0.1:$port" --control "$T/$name.sock" "$@" || return 1
	wait_for_file_line "$T/$name.err" 'listening on' 5
}

@test "pool: a DNS server that never answers holds up no one: the node stays alive, numbers and /etc/hosts names are written, the name is left out once it fails" {
	[[ $(id -u) == 0 ]] && unshare -m true 2>/dev/null || skip "needs root for a private /etc/resolv.conf"
	command -v nc >/dev/null || skip "nc needed"
	ports PA PB PC PD
	# The only name server takes every query and never answers.
	start_bg dns nc -u -l -k 127.0.0.9 53
	printf 'nameserver 127.0.0.9\noptions timeout:4 attempts:1\n' >"$T/resolv.conf"
	empty_pool
	local FAST="--probe-interval 500ms --probe-timeout 250ms"
	start_peer_with_dns a "$PA" "$T/resolv.conf" $FAST --pool "$T/web.pool" --service-tag web \
		--pool-delay 100ms
	start_peer b "$PB" $FAST -j "127.0.0.1:$PA" -t web=slow.example:80
	start_peer c "$PC" $FAST -j "127.0.0.1:$PA" -t web=127.0.0.1:9091
	start_peer d "$PD" $FAST -j "127.0.0.1:$PA" -t web=localhost:9092
	wait_until 3 grep -q '^\[backend c\]' "$T/web.pool"
	wait_until 3 grep -q '^\[backend d\]' "$T/web.pool"
	# While its lookup hangs, the node answers every probe in time.
	always_within 3 peer_has c a alive
	run ! grep -q '^\[backend b\]' "$T/web.pool"
	wait_for_file_line "$T/a.err" "pool: member 'b': web=slow.example:80 cannot be resolved" 5
	peer_has b a alive
	peer_has c a alive
	run -0 "$BATS_TEST_DIRNAME/../bin/tcpdist" -n "$T/web.pool"
}

@test "end to end: a serf agent tagged tcpdist=ADDR gets tcpdist's traffic, and loses it when it dies" {
	ports G1 R1 P B LP
	start_namesrv backend1 "127.0.0.1:$B"
	write_pool web.pool <<-EOF
		[pool]
		listen = 127.0.0.1:$LP
		connect_timeout = 300ms
		retries = 0
	EOF
	start_tcpdist "$T/web.pool"
	start_peer tp "$P" --pool "$T/web.pool" --service-tag tcpdist
	start_serf s1 "$G1" "$R1" -tag "tcpdist=127.0.0.1:$B" -join "127.0.0.1:$P"
	wait_until 5 grep -q '^\[backend s1\]' "$T/web.pool"
	# tcpdist reloads the pool by inotify; poll until it routes to the agent's server.
	wait_until 5 bash -c "'$HELPERS/names' --timeout 1000 127.0.0.1:$LP 1 | grep -qx backend1"
	run -0 "$HELPERS/names" "127.0.0.1:$LP" 5
	[ "$(grep -c '^backend1$' <<<"$output")" -eq 5 ]
	kill -KILL "${BG_PID[s1]}"
	wait_for_file_line "$T/tp.out" '^member-failed s1 ' 10
	wait_until 2 bash -c "! grep -q '^\[backend s1\]' '$T/web.pool'"
	wait_until 5 bash -c "! '$HELPERS/names' --timeout 1000 127.0.0.1:$LP 1 | grep -qx backend1"
}

# ---------------------------------------------------------------------------
# Hostile input

# udp_send PORT: stdin as one datagram to 127.0.0.1:PORT.
udp_send() {
	local data
	data=$(cat; printf x)
	printf '%s' "${data%x}" >/dev/udp/127.0.0.1/"$1"
}

@test "garbage over UDP and TCP is dropped and counted; the node keeps running and stays in the cluster" {
	serf_cluster
	ports P
	start_peer tp "$P" -j "127.0.0.1:$G1"
	wait_until 2 serf_has "$R1" tp alive
	local i
	# Random packets of random sizes, each written by one write(2).
	for i in $(seq 1 200); do
		head -c $((RANDOM % 1400 + 1)) /dev/urandom >/dev/udp/127.0.0.1/"$P"
	done
	# Every message type, truncated, with random bodies.
	for i in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 244 99; do
		printf "\\x$(printf %02x "$i")" >/dev/udp/127.0.0.1/"$P"
		{ printf "\\x$(printf %02x "$i")"; head -c 40 /dev/urandom; } >/dev/udp/127.0.0.1/"$P"
		{ printf "\\x$(printf %02x "$i")\\x85"; } >/dev/udp/127.0.0.1/"$P"
	done
	# A ping cut in the middle of a key, an alive with a 5-byte address.
	printf '\x00\x85\xa5SeqNo\x01\xa4No' >/dev/udp/127.0.0.1/"$P"
	printf '\x04\x83\xa4Node\xa1x\xa4Addr\xa5AAAAA\xa4Port\x01' >/dev/udp/127.0.0.1/"$P"
	# Maps and arrays that claim four billion entries; a 4 GiB string.
	printf '\x00\xdf\xff\xff\xff\xff' >/dev/udp/127.0.0.1/"$P"
	printf '\x04\x81\xa4Meta\xdb\xff\xff\xff\xff' >/dev/udp/127.0.0.1/"$P"
	printf '\x04\x81\xa3Vsn\xdd\xff\xff\xff\xff' >/dev/udp/127.0.0.1/"$P"
	# Compound messages nested ten deep, and one whose lengths overrun it.
	printf '\x07\x01\x00\x29\x07\x01\x00\x25\x07\x01\x00\x21\x07\x01\x00\x1d\x07\x01\x00\x19\x07\x01\x00\x15\x07\x01\x00\x11\x07\x01\x00\x0d\x07\x01\x00\x09\x07\x01\x00\x05\x00\x80\x80\x80\x80' >/dev/udp/127.0.0.1/"$P"
	printf '\x07\xff\xff\xff\x00' >/dev/udp/127.0.0.1/"$P"
	# Compress: unknown algorithm, garbage LZW, compress inside compress, a bad CRC.
	printf '\x09\x82\xa4Algo\x07\xa3Buf\xa3abc' >/dev/udp/127.0.0.1/"$P"
	{ printf '\x09\x82\xa4Algo\x00\xa3Buf\xda\x01\x00'; head -c 256 /dev/urandom; } >/dev/udp/127.0.0.1/"$P"
	printf '\x09\x82\xa4Algo\x00\xa3Buf\xa0' >/dev/udp/127.0.0.1/"$P"
	printf '\x0c\xde\xad\xbe\xef\x00\x80' >/dev/udp/127.0.0.1/"$P"
	# Oversized: the largest datagram loopback carries.
	head -c 65000 /dev/zero | tr '\0' '\007' >"$T/big"
	dd if="$T/big" bs=65000 count=1 of=/dev/udp/127.0.0.1/"$P" 2>/dev/null || true

	# TCP: random bytes, a push-pull claiming a million nodes, a user message
	# claiming 4 GiB, an encrypted stream, a stream that stops midway.
	for i in $(seq 1 5); do
		head -c 3000 /dev/urandom >/dev/tcp/127.0.0.1/"$P" || true
	done
	printf '\x06\x83\xa5Nodes\xce\x00\x0f\x42\x40\xacUserStateLen\x00\xa4Join\xc3' >/dev/tcp/127.0.0.1/"$P" || true
	printf '\x08\x81\xaaUserMsgLen\xce\xff\xff\xff\xff' >/dev/tcp/127.0.0.1/"$P" || true
	printf '\x0a\x00\x00\x00\x10abcdefghijklmnop' >/dev/tcp/127.0.0.1/"$P" || true
	printf '\x06\x83\xa5Nodes\x02\xacUserStateLen\x00\xa4Join\xc3\x87\xa4Name' >/dev/tcp/127.0.0.1/"$P" || true
	# More connections at once than it serves: the excess is refused, or
	# takes the place of one that has sent nothing yet.
	local -a holders=()
	for i in $(seq 1 20); do
		(exec 3>&- 8<>/dev/tcp/127.0.0.1/"$P" && printf '\x06' >&8 && sleep 2) &
		holders+=($!)
	done
	wait "${holders[@]}" || true

	pid_alive "${BG_PID[tp]}"
	wait_until 2 serf_has "$R2" tp alive
	wait_until 2 peer_has tp s3 alive
	run -0 peer_members tp --json
	local bad
	bad=$(grep -oE '"(packets_bad|messages_bad|streams_bad|decompress_failed|packets_bad_checksum)":[0-9]+' <<<"$output" |
		awk -F: '{ s += $2 } END { print s }')
	echo "# $bad bad packets, messages and streams counted" >&3
	((bad > 100))
	[[ $output =~ \"streams_(rejected|evicted)\":[1-9] ]]
	# Still a full member a while later: not suspected by anyone.
	always_within 1 serf_has "$R1" tp alive
}

@test "a name from the network with a newline and a terminal escape stays one escaped line, in the log as in events" {
	ports P
	start_peer tp "$P" --probe-interval 200ms --probe-timeout 100ms
	# An alive for "evil<LF>FAKE<ESC>[31m" at 127.0.3.1:1 (nobody there), one datagram.
	printf '\x04\x86\xabIncarnation\x01\xa4Node\xaeevil\nFAKE\x1b[31m\xa4Addr\xc4\x04\x7f\x00\x03\x01\xa4Port\x01\xa3Vsn\xc4\x06\x01\x05\x02\x02\x05\x04\xa4Meta\xc4\x00' >"$T/alive"
	cat "$T/alive" >/dev/udp/127.0.0.1/"$P"
	wait_until 5 grep -q 'member-failed evil' "$T/tp.out"
	grep -qF 'member-join evil\x0aFAKE\x1b[31m 127.0.3.1:1' "$T/tp.out"
	grep -qF "'evil\x0aFAKE\x1b[31m'" "$T/tp.err"
	# Every line of the log is one of ours, and nothing in either drives a terminal.
	# (bats never fails on a bare "! cmd" that is not the last line: run ! does.)
	run ! grep -v '^tcppeer: ' "$T/tp.err"
	run ! grep -q $'\x1b' "$T/tp.err" "$T/tp.out"
}

@test "out of descriptors: the gossip and control listeners rest instead of spinning, say so at most once a second, and serve again once descriptors are free" {
	ports P
	start_bg tp bash -c 'ulimit -n 14 && exec "$0" -n tp -b "127.0.0.1:$1" --control "$2"' \
		"$TCPPEER" "$P" "$T/tp.sock"
	wait_for_file_line "$T/tp.err" 'listening on' 5
	local pid=${BG_PID[tp]} i
	# 15 silent streams held 4 s: more than the free descriptors, fewer than
	# the 16 streams it serves at once, so accept itself runs out.
	for i in $(seq 1 15); do
		start_bg "h$i" "$HELPERS/hold" "127.0.0.1:$P" 4
	done
	wait_for_file_line "$T/tp.err" 'accept: out of file descriptors: pausing accept' 3
	# A control request now waits in the backlog too.
	start_bg members "$TCPPEER" members --control "$T/tp.sock"
	wait_for_file_line "$T/tp.err" 'control: out of file descriptors: pausing accept' 3
	local -a s1 s2
	read -r -a s1 <"/proc/$pid/stat"
	sleep 1
	read -r -a s2 <"/proc/$pid/stat"
	echo "# CPU ticks over 1 s while out of descriptors: $(((s2[13] + s2[14]) - (s1[13] + s1[14])))" >&3
	[ $(((s2[13] + s2[14]) - (s1[13] + s1[14]))) -le 10 ]
	# Once the streams are gone, the waiting request is answered.
	for i in $(seq 1 15); do
		wait_for_exit "h$i" 10
	done
	wait_for_exit members 10
	grep -q '^tp	' "$T/members.out"
	# At most once a second each while it lasted (about 4 s).
	(($(grep -c 'accept: out of file descriptors' "$T/tp.err") <= 6))
	(($(grep -c 'control: out of file descriptors' "$T/tp.err") <= 6))
	pid_alive "$pid"
}

# ---------------------------------------------------------------------------
# tcppeer clusters

# memberlist's LAN profile cannot hold this bound at 20 members: a failure
# takes the first probe to reach the dead node (about 1 s, more when it is
# unlucky), that probe's full interval (1 s), then at least the shortest
# suspicion, 4 x log10(20) x 1 s = 5.2 s, and only once two other members
# have confirmed it. That is 7 to 10 s, over 10 s about one run in ten. The
# cluster here probes every 500 ms, which halves all of it (serf's own tests
# shorten their timings the same way).
@test "20 tcppeer nodes (500 ms probes) converge within 5 s; after kill -9 of 3 the others report them failed within 10 s" {
	local -a P
	local i n t0
	local FAST="--probe-interval 500ms --probe-timeout 250ms"
	P=($(free_port 20))
	start_peer n0 "${P[0]}" $FAST
	for i in $(seq 1 19); do
		start_peer "n$i" "${P[i]}" $FAST -j "127.0.0.1:${P[$(((i - 1) / 2))]}"
	done
	# From the start of the last node (sanitized builds take a while to start).
	t0=$(now_ms)
	converged() {
		local i
		for i in $(seq 0 19); do
			[ "$(peer_members "n$i" | grep -c $'\talive\t')" -eq 20 ] || return 1
		done
	}
	wait_until 5 converged
	echo "# 20 nodes converged in $(($(now_ms) - t0)) ms" >&3
	t0=$(now_ms)
	for i in 17 18 19; do
		kill -KILL "${BG_PID[n$i]}"
	done
	all_failed() {
		local i
		for i in $(seq 0 16); do
			[ "$(grep -cE '^member-failed n(17|18|19) ' "$T/n$i.out")" -eq 3 ] || return 1
		done
	}
	wait_until 10 all_failed
	echo "# 3 failures seen by 17 nodes in $(($(now_ms) - t0)) ms" >&3
	run ! grep -qE '^member-failed n([0-9]|1[0-6]) ' "$T"/n*.out
}

@test "10% packet loss for a while: no healthy node is ever reported failed" {
	command -v ip >/dev/null && command -v tc >/dev/null || skip "ip and tc needed"
	local sent dropped
	local ns=tcppeer$$ i
	ip netns add "$ns" 2>/dev/null || skip "cannot create a network namespace (root needed)"
	NETNS=$ns
	ip netns exec "$ns" ip link set lo up
	# netem where the kernel has it, else the same 10% random drop of every
	# packet leaving lo by nftables (both drop before delivery, both ways).
	if ! ip netns exec "$ns" tc qdisc add dev lo root netem loss 10% 2>/dev/null; then
		command -v nft >/dev/null || skip "neither netem nor nft available"
		ip netns exec "$ns" nft -f - <<-'EOF' || skip "neither netem nor nftables in this kernel"
			table inet loss {
				chain out {
					type filter hook output priority 0; policy accept;
					counter
					numgen random mod 100 < 10 counter drop
				}
			}
		EOF
	fi
	local -a P
	P=($(free_port 10))
	for i in $(seq 0 9); do
		start_bg "l$i" ip netns exec "$ns" "$TCPPEER" -n "l$i" -b "127.0.0.1:${P[i]}" \
			--control "$T/l$i.sock" -j "127.0.0.1:${P[0]}"
	done
	converged() {
		local i
		for i in $(seq 0 9); do
			[ "$(peer_members "l$i" | grep -c $'\talive\t')" -eq 10 ] || return 1
		done
	}
	wait_until 15 converged
	sleep "$TCPPEER_LOSS_SECONDS"
	run ! grep -h '^member-failed' "$T"/l*.out
	# The loss was real: about one packet in ten was dropped all along.
	read -r sent dropped < <( (ip netns exec "$ns" tc -s qdisc show dev lo
		ip netns exec "$ns" nft list ruleset 2>/dev/null) | awk '
		/qdisc netem/ { q = 1; next }
		q && /Sent/ { d = $7; sub(",", "", d); print $4 + d, d; exit }
		/counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") c[n++] = $(i + 1) }
		END { if (n == 2) print c[0], c[1] }')
	echo "# $dropped of $sent packets dropped over ${TCPPEER_LOSS_SECONDS} s" >&3
	((sent > 500 && dropped * 100 > sent * 7 && dropped * 100 < sent * 13))
}
