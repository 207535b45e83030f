#!/usr/bin/env bats
# tcppeer's encryption, user events and DoS bounds, against Debian's serf
# agents and other tcppeer nodes on loopback. Every wait polls with a
# deadline; every background process is killed by pid.

bats_require_minimum_version 1.5.0
load 'helpers'
load 'tcppeer_helpers'

# all_alive RPC_PORTS... -- PEERS... -- NAMES...: every serf agent and every
# tcppeer node lists every name alive.
all_alive() {
	local -a rpcs=() peers=()
	while [[ $1 != -- ]]; do rpcs+=("$1"); shift; done
	shift
	while [[ $1 != -- ]]; do peers+=("$1"); shift; done
	shift
	local r p n
	for n in "$@"; do
		for r in "${rpcs[@]}"; do serf_has "$r" "$n" alive || return 1; done
		for p in "${peers[@]}"; do peer_has "$p" "$n" alive || return 1; done
	done
}

reloaded() { # NAME KEYS: the node's log says it now holds KEYS keys
	[ "$(grep -c "keyring reloaded: $2 key" "$T/$1.err")" -ge "${3:-1}" ]
}

# ---------------------------------------------------------------------------
# Encryption

@test "keyring: bad files are refused at start; usage names --keyring, --allow and event" {
	run --separate-stderr "$TCPPEER" -h
	[[ $output == *"--keyring FILE"* && $output == *"--allow CIDR"* ]]
	[[ $output == *"tcppeer event [--control PATH] NAME [PAYLOAD]"* ]]
	ports P
	printf 'bm90IGEga2V5\n' >"$T/short"
	run --separate-stderr "$TCPPEER" -n a -b "127.0.0.1:$P" --control "$T/a.sock" --keyring "$T/short"
	[ "$status" -eq 2 ]
	[[ $stderr == "tcppeer: keyring '$T/short': line 1: not a base64 AES key of 16, 24 or 32 bytes" ]]
	: >"$T/empty"
	run --separate-stderr "$TCPPEER" -n a -b "127.0.0.1:$P" --control "$T/a.sock" --keyring "$T/empty"
	[ "$status" -eq 2 ]
	[[ $stderr == *"no key" ]]
	run --separate-stderr "$TCPPEER" -n a -b "127.0.0.1:$P" --control "$T/a.sock" --keyring "$T/none"
	[ "$status" -eq 2 ]
	run --separate-stderr "$TCPPEER" -n a -b "127.0.0.1:$P" --allow 10.0.0.0/33
	[ "$status" -eq 2 ]
	[[ $stderr == "tcppeer: --allow: '10.0.0.0/33': prefix length: "* ]]
	run --separate-stderr "$TCPPEER" event --control "$T/none.sock" x
	[ "$status" -eq 2 ]
}

@test "encrypted: tcppeer with the key joins serf -encrypt agents, is alive everywhere, and sees them" {
	local key
	key=$("$SERF" keygen)
	serf_cluster -encrypt "$key"
	printf '# the primary key\n%s\n' "$key" >"$T/keys"
	ports P
	start_peer tp "$P" -j "127.0.0.1:$G2" --keyring "$T/keys" -t zone=a
	wait_until 5 serf_has "$R1" tp alive zone=a
	wait_until 2 serf_has "$R3" tp alive
	wait_until 2 peer_has tp s1 alive
	wait_until 2 peer_has tp s3 alive
	# Probes, gossip and push-pulls all went through: nothing dropped.
	wait_until 5 stat_at_least tp pushpull_ok 2
	run -0 peer_members tp --json
	[[ $output == *'"packets_undecryptable":0,'* ]]
	[[ $output == *'"streams_undecryptable":0,'* ]]
	# A serf agent joins through tcppeer.
	ports G4 R4
	start_serf s4 "$G4" "$R4" -encrypt "$key" -join "127.0.0.1:$P"
	wait_until 5 peer_has tp s4 alive
	wait_until 5 serf_has "$R1" s4 alive
}

@test "a wrong key or none: never admitted by encrypted serf agents, and never admits them" {
	local key
	key=$("$SERF" keygen)
	serf_cluster -encrypt "$key"
	"$SERF" keygen >"$T/wrong"
	ports PW PN PK
	start_peer wrong "$PW" -j "127.0.0.1:$G1" --keyring "$T/wrong"
	start_peer plain "$PN" -j "127.0.0.1:$G1"
	# The agents try them too: joins towards them must fail.
	run ! "$SERF" join -rpc-addr "127.0.0.1:$R2" "127.0.0.1:$PW"
	run ! "$SERF" join -rpc-addr "127.0.0.1:$R3" "127.0.0.1:$PN"
	# A node with the right key, in the same cluster, as a control.
	printf '%s\n' "$key" >"$T/right"
	start_peer right "$PK" -j "127.0.0.1:$G1" --keyring "$T/right"
	wait_until 5 serf_has "$R1" right alive
	admitted() {
		serf_status "$R1" wrong | grep -q . || serf_status "$R2" plain | grep -q . ||
			peer_members wrong | grep -q '^s' || peer_members plain | grep -q '^s' ||
			peer_has right wrong alive || peer_has right plain alive
	}
	never_within 4 admitted
	# What the agents sent them was dropped and counted, and the agents
	# logged what they dropped.
	run -0 peer_members wrong --json
	[[ $output =~ \"(packets_undecryptable|streams_undecryptable)\":[1-9] ]]
	run -0 peer_members plain --json
	[[ $output =~ \"(packets_unsupported|streams_bad)\":[1-9] ]]
	grep -qiE 'decrypt|encrypt' "$T/s1.err" "$T/s1.out"
}

# keys_ok OUTPUT: serf keys reported every one of the 4 nodes' success.
keys_all_ok() {
	[[ $status -eq 0 ]] || return 1
	[[ $output != *"reported failure"* && $output != *"reported success"* ]]
}

# in_list KEY N: serf keys -list output ($output) says N of the 4 nodes hold KEY.
in_list() {
	awk -v k="$1" -v n="[$2/4]" '$1 == k && $2 == n { f = 1 } END { exit !f }' <<<"$output"
}

@test "key rotation by serf keys across serf agents and tcppeer nodes: all 4 succeed, files rewritten, nobody lost" {
	local k1 k2 pp mode
	k1=$("$SERF" keygen)
	k2=$("$SERF" keygen)
	ports G1 G2 R1 R2 PA PB
	start_serf s1 "$G1" "$R1" -encrypt "$k1"
	start_serf s2 "$G2" "$R2" -encrypt "$k1" -join "127.0.0.1:$G1"
	printf '# a comment\n%s\n' "$k1" >"$T/a.keys"
	printf '%s\n' "$k1" >"$T/b.keys"
	chmod 640 "$T/a.keys"
	start_peer a "$PA" -j "127.0.0.1:$G1" --keyring "$T/a.keys" --pushpull-interval 2s
	start_peer b "$PB" -j "127.0.0.1:$G2" --keyring "$T/b.keys"
	local -a everyone=("$R1" "$R2" -- a b -- s1 s2 a b)
	wait_until 5 all_alive "${everyone[@]}"

	run "$SERF" keys -rpc-addr "127.0.0.1:$R1" -list
	echo "# serf keys -list: exit $status: ${output//$'\n'/ | }" >&3
	[ "$status" -eq 0 ] || fail "exit $status: $output"
	in_list "$k1" 4 || fail "-list: $output"

	# 1. Everyone learns the new key; the old one still sends.
	run "$SERF" keys -rpc-addr "127.0.0.1:$R1" -install "$k2"
	echo "# serf keys -install: exit $status: ${lines[-1]}" >&3
	keys_all_ok || fail "-install: $output"
	grep -qxF "$k2" "$T/a.keys"
	grep -qxF "$k2" "$T/b.keys"
	[ "$(head -n1 "$T/a.keys")" = "$k1" ]
	run "$SERF" keys -rpc-addr "127.0.0.1:$R1" -list
	in_list "$k1" 4 && in_list "$k2" 4 || fail "-list: $output"
	all_alive "${everyone[@]}"

	# 2. The new key becomes primary everywhere.
	run "$SERF" keys -rpc-addr "127.0.0.1:$R1" -use "$k2"
	keys_all_ok || fail "-use: $output"
	[ "$(head -n1 "$T/a.keys")" = "$k2" ]
	[ "$(head -n1 "$T/b.keys")" = "$k2" ]
	# Removing the primary is refused, here as by serf agents.
	run "$SERF" keys -rpc-addr "127.0.0.1:$R1" -remove "$k2"
	[ "$status" -ne 0 ] || fail "exit 0: $output"
	[[ $output == *"4/4 nodes reported failure"* ]] || fail "-remove primary: $output"
	[[ $output == *"Removing the primary key is not allowed"* ]]
	all_alive "${everyone[@]}"

	# 3. The old key goes.
	run "$SERF" keys -rpc-addr "127.0.0.1:$R1" -remove "$k1"
	keys_all_ok || fail "-remove: $output"
	[ "$(grep -vc '^#' "$T/a.keys")" -eq 1 ]
	grep -qxF "$k2" "$T/a.keys"
	grep -qxF "$k2" "$T/b.keys"
	run ! grep -qxF "$k1" "$T/b.keys"
	mode=$(stat -c %a "$T/a.keys")
	[ "$mode" = 640 ] || fail "a.keys mode $mode"
	run "$SERF" keys -rpc-addr "127.0.0.1:$R1" -list
	in_list "$k2" 4 || fail "-list: $output"
	[[ $output != *"$k1"* ]] || fail "-list still has the old key: $output"
	[ "$(stat_of a key_changes)" -eq 3 ]
	# SIGHUP re-reads the rewritten file: the same single key.
	kill -HUP "${BG_PID[a]}"
	wait_until 5 reloaded a 1
	# Several probe rounds and a push-pull on the new key alone.
	pp=$(stat_of a pushpull_ok)
	wait_until 10 stat_at_least a pushpull_ok $((pp + 1))
	all_alive "${everyone[@]}"
	run ! grep -h '^member-\(failed\|leave\)' "$T/a.out" "$T/b.out"
	run ! grep -hE 'EventMember(Failed|Leave)|Suspect' "$T/s1.out" "$T/s2.out"
	# The new key alone gets in everywhere; the old key alone no longer does.
	printf '%s\n' "$k2" >"$T/new.keys"
	printf '%s\n' "$k1" >"$T/old.keys"
	ports PN PO
	start_peer new "$PN" -j "127.0.0.1:$G2" --keyring "$T/new.keys"
	start_peer old "$PO" -j "127.0.0.1:$G1" --keyring "$T/old.keys"
	wait_until 5 all_alive "$R1" "$R2" -- a b new -- new
	old_in() {
		serf_status "$R1" old | grep -q . || serf_status "$R2" old | grep -q . ||
			peer_has a old alive || peer_members old | grep -q '^s'
	}
	never_within 3 old_in
	# A file that does not load leaves the keys as they were.
	echo 'not base64!' >"$T/a.keys"
	kill -HUP "${BG_PID[a]}"
	wait_for_file_line "$T/a.err" 'keyring reloading FAILED' 5
	pp=$(stat_of a pushpull_ok)
	wait_until 10 stat_at_least a pushpull_ok $((pp + 1))
	all_alive "${everyone[@]}"
}

@test "serf keys without encryption: tcppeer answers as an unencrypted serf agent does" {
	ports G1 R1 PA
	start_serf s1 "$G1" "$R1"
	start_peer a "$PA" -j "127.0.0.1:$G1"
	wait_until 5 serf_has "$R1" a alive
	run "$SERF" keys -rpc-addr "127.0.0.1:$R1" -list
	[ "$status" -ne 0 ] || fail "exit 0: $output"
	[[ $output == *"2/2 nodes reported failure"* ]] || fail "-list: $output"
	run "$SERF" keys -rpc-addr "127.0.0.1:$R1" -install "$("$SERF" keygen)"
	[ "$status" -ne 0 ] || fail "exit 0: $output"
	[[ $output == *"2/2 nodes reported failure"* ]] || fail "-install: $output"
	[[ $output == *"No keyring to modify (encryption not enabled)"* ]] || fail "-install: $output"
}

@test "serf query: every tcppeer node acks once; filters by name and tag are honoured; a filtered-out node still takes it once" {
	ports G1 G2 R1 R2 PA PB PC
	start_serf s1 "$G1" "$R1"
	start_serf s2 "$G2" "$R2" -join "127.0.0.1:$G1"
	start_peer a "$PA" -j "127.0.0.1:$G1" -t role=web
	start_peer b "$PB" -j "127.0.0.1:$G1" -t role=db
	start_peer c "$PC" -j "127.0.0.1:$PA" -t role=web
	wait_until 5 all_alive "$R1" "$R2" -- a b c -- s1 s2 a b c
	run "$SERF" query -rpc-addr "127.0.0.1:$R1" -timeout 3s hello world
	echo "# serf query: ${output//$'\n'/ | }" >&3
	[ "$status" -eq 0 ] || fail "exit $status: $output"
	local n
	for n in s1 s2 a b c; do
		[[ $output == *"Ack from '$n'"* ]] || fail "no ack from $n: $output"
	done
	[[ $output == *"Total Acks: 5"* ]] || fail "acks: $output"
	# Each node took the query once, whatever number of copies gossip brought.
	for n in a b c; do
		[ "$(stat_of $n queries_in)" -eq 1 ]
		[ "$(stat_of $n query_acks)" -eq 1 ]
	done
	run "$SERF" query -rpc-addr "127.0.0.1:$R1" -timeout 2s -node a -node s2 byname
	[ "$status" -eq 0 ] || fail "exit $status: $output"
	[[ $output == *"Ack from 'a'"* && $output == *"Ack from 's2'"* ]] || fail "$output"
	[[ $output == *"Total Acks: 2"* ]] || fail "by name: $output"
	run "$SERF" query -rpc-addr "127.0.0.1:$R1" -timeout 2s -tag 'role=^w.b$' bytag
	[ "$status" -eq 0 ] || fail "exit $status: $output"
	[[ $output == *"Ack from 'a'"* && $output == *"Ack from 'c'"* ]] || fail "$output"
	[[ $output == *"Total Acks: 2"* ]] || fail "by tag: $output"
	# The filtered-out node still passed the query on.
	[ "$(stat_of b queries_filtered)" -eq 2 ]
	[ "$(stat_of a query_responses)" -eq 0 ]
}

@test "serf query -relay-factor: tcppeer relays a serf agent's ack to the asker, and its own ack reaches serf by relays too" {
	ports G1 G2 R1 R2 PA
	start_serf s1 "$G1" "$R1"
	start_serf s2 "$G2" "$R2" -join "127.0.0.1:$G1"
	start_peer a "$PA" -j "127.0.0.1:$G1"
	wait_until 5 all_alive "$R1" "$R2" -- a -- s1 s2 a
	# s2 sends its ack straight to s1 and a copy through 2 relays: all the
	# other live members, s1 itself and the tcppeer node.
	run "$SERF" query -rpc-addr "127.0.0.1:$R1" -timeout 2s -relay-factor 2 -node s2 viaus
	echo "# serf query via relays: ${output//$'\n'/ | }" >&3
	[ "$status" -eq 0 ] || fail "exit $status: $output"
	[[ $output == *"Ack from 's2'"* && $output == *"Total Acks: 1"* ]] || fail "$output"
	wait_until 2 stat_at_least a query_relayed 1
	[ "$(stat_of a packets_bad)" -eq 0 ] || fail "bad packets: $(peer_members a --json)"
	# tcppeer's own ack goes straight to s1 and through s1 and s2 as relays;
	# s1 counts it once, and neither agent complains about the relay message.
	run "$SERF" query -rpc-addr "127.0.0.1:$R1" -timeout 2s -relay-factor 2 -node a fromus
	[ "$status" -eq 0 ] || fail "exit $status: $output"
	[[ $output == *"Ack from 'a'"* && $output == *"Total Acks: 1"* ]] || fail "$output"
	[ "$(stat_of a query_acks)" -eq 1 ]
	! grep -E '\[(ERR|WARN)\] serf' "$T/s1.err" "$T/s2.err" "$T/s1.out" "$T/s2.out" ||
		fail "a serf agent complained"
}

@test "serf name conflict: tcppeer nodes answer _serf_conflict with the first holder's address; the newcomer quits" {
	ports G1 G2 R1 R2 PA PB PC
	start_serf s1 "$G1" "$R1"
	start_peer a "$PA" -j "127.0.0.1:$G1"
	start_peer b "$PB" -j "127.0.0.1:$G1"
	start_peer c "$PC" -j "127.0.0.1:$G1"
	wait_until 5 all_alive "$R1" -- a b c -- s1 a b c
	# A second agent named s1 finds its name held at another address and
	# asks the cluster (_serf_conflict) whose it is. Memberlist nodes do not
	# pass a conflicting alive on, so only the newcomer asks.
	start_serf s1new "$G2" "$R2" -node s1 -join "127.0.0.1:$PA"
	wait_until 10 grep -q 'name conflict resolution' "$T/s1new.out"
	grep 'name conflict' "$T/s1.out" "$T/s1new.out" | sed 's/^/# /' >&3
	# Every tcppeer node answered with a serf Member that serf could read,
	# none of them for the newcomer's address: [0 / 3] or more answers.
	local counts
	counts=$(grep -oE 'minority in name conflict resolution, [a-z]+ \[[0-9]+ / [0-9]+\]' "$T/s1new.out")
	[[ $counts =~ \[([0-9]+)\ /\ ([0-9]+)\] ]] || fail "the newcomer did not lose: $(cat "$T/s1new.out")"
	((BASH_REMATCH[1] == 0 && BASH_REMATCH[2] >= 3)) || fail "answers: $counts"
	local n
	for n in a b c; do
		[ "$(stat_of "$n" query_responses)" -eq 1 ] || fail "$n: $(peer_members "$n" --json)"
	done
	! grep -q 'Failed to decode conflict query response' "$T/s1new.out" ||
		fail "serf could not read an answer"
	# The newcomer shuts down; the first s1 stays alive everywhere, at its address.
	wait_until 5 eval '! pid_alive "${BG_PID[s1new]}"'
	always_within 1 all_alive "$R1" -- a b c -- s1 a b c
	peer_members a | grep -q "^s1.*127.0.0.1:$G1" || fail "a: $(peer_members a)"
}

# ---------------------------------------------------------------------------
# User events

@test "user events: serf event reaches tcppeer once; tcppeer event reaches serf agents' handlers" {
	local key
	key=$("$SERF" keygen)
	cat >"$T/handler" <<-'EOF'
		#!/bin/sh
		printf '%s %s %s\n' "$SERF_SELF_NAME" "$SERF_USER_EVENT" "$(cat)" >>"$EVENTS"
	EOF
	chmod +x "$T/handler"
	export EVENTS=$T/handled
	serf_cluster -encrypt "$key" -event-handler "user=$T/handler"
	printf '%s\n' "$key" >"$T/keys"
	ports P
	start_peer tp "$P" -j "127.0.0.1:$G1" --keyring "$T/keys" --pushpull-interval 2s
	wait_until 5 serf_has "$R3" tp alive
	"$SERF" event -rpc-addr "127.0.0.1:$R2" deploy 'v1.2 to all'
	"$SERF" event -rpc-addr "127.0.0.1:$R3" -coalesce=false restart web
	wait_for_file_line "$T/tp.out" '^user-event deploy v1\.2\\x20to\\x20all$' 5
	wait_for_file_line "$T/tp.out" '^user-event restart web$' 5
	run -0 "$TCPPEER" event --control "$T/tp.sock" hello 'from tcppeer'
	run -0 "$TCPPEER" event --control "$T/tp.sock" bare
	wait_until 5 grep -q '^s1 hello from tcppeer$' "$T/handled"
	wait_until 5 grep -q '^s2 hello from tcppeer$' "$T/handled"
	wait_until 5 grep -q '^s3 hello from tcppeer$' "$T/handled"
	wait_until 5 grep -q '^s3 bare $' "$T/handled"
	# The sender sees its own event too (as serf does).
	grep -q '^user-event hello from\\x20tcppeer$' "$T/tp.out"
	# After anti-entropy has carried the recent events again: still once.
	local pp
	pp=$(stat_of tp pushpull_ok)
	wait_until 10 stat_at_least tp pushpull_ok $((pp + 2))
	[ "$(grep -c '^user-event deploy ' "$T/tp.out")" -eq 1 ]
	[ "$(grep -c '^user-event restart ' "$T/tp.out")" -eq 1 ]
	[ "$(grep -c '^user-event hello ' "$T/tp.out")" -eq 1 ]
	[ "$(grep -c '^s1 hello ' "$T/handled")" -eq 1 ]
	# Over serf's size limit: refused with a message, exit 2.
	run --separate-stderr "$TCPPEER" event --control "$T/tp.sock" big "$(head -c 600 /dev/zero | tr '\0' x)"
	[ "$status" -eq 2 ]
	[[ $stderr == "tcppeer: event: "*"over serf's limit of 512"* ]]
}

@test "20 tcppeer nodes: 100 events from random nodes, each delivered exactly once to every node" {
	local -a P
	local i t0
	P=($(free_port 20))
	start_peer n0 "${P[0]}"
	for i in $(seq 1 19); do
		start_peer "n$i" "${P[i]}" -j "127.0.0.1:${P[$(((i - 1) / 2))]}"
	done
	converged() {
		local i
		for i in $(seq 0 19); do
			[ "$(peer_members "n$i" | grep -c $'\talive\t')" -eq 20 ] || return 1
		done
	}
	wait_until 10 converged
	t0=$(now_ms)
	for i in $(seq 1 100); do
		"$TCPPEER" event --control "$T/n$((RANDOM % 20)).sock" "ev$i" "payload $i" ||
			fail "event $i not sent" || return 1
		# Pacing, not synchronisation: serf drops events more than 64 LTimes
		# behind the clock, so a burst faster than gossip spreads would lose some.
		sleep 0.03
	done
	echo "# 100 events sent in $(($(now_ms) - t0)) ms" >&3
	all_delivered() {
		local i
		for i in $(seq 0 19); do
			[ "$(grep -c '^user-event ev' "$T/n$i.out")" -ge 100 ] || return 1
		done
	}
	wait_until 20 all_delivered
	echo "# all 100 delivered to all 20 nodes $(($(now_ms) - t0)) ms after the first" >&3
	# Exactly once: 100 lines, 100 distinct, the right payloads.
	for i in $(seq 0 19); do
		[ "$(grep -c '^user-event ev' "$T/n$i.out")" -eq 100 ] || fail "n$i: duplicates"
		[ "$(grep '^user-event ev' "$T/n$i.out" | sort -u | wc -l)" -eq 100 ]
		grep -q '^user-event ev57 payload\\x2057$' "$T/n$i.out"
	done
	local dups=0 v
	for i in $(seq 0 19); do
		v=$(stat_of "n$i" events_duplicate)
		dups=$((dups + v))
	done
	echo "# $dups duplicate copies suppressed across the cluster" >&3
}

# ---------------------------------------------------------------------------
# DoS bounds

@test "--allow: packets and streams from other addresses are dropped and counted" {
	ports PA PB PC
	start_peer a "$PA" --allow 127.0.0.1/32 --allow ::1
	# 127.0.0.2 is loopback too, but not allowed.
	start_bg b "$TCPPEER" -n b -b "127.0.0.2:$PB" --control "$T/b.sock" -j "127.0.0.1:$PA"
	wait_for_file_line "$T/b.err" 'listening on' 5
	start_peer c "$PC" -j "127.0.0.1:$PA"
	wait_until 5 peer_has a c alive
	never_within 3 peer_has a b alive
	run ! peer_has b a alive
	run -0 peer_members a --json
	[[ $output =~ \"streams_denied\":[1-9] ]]
	# UDP from 127.0.0.2 is dropped too; the same from 127.0.0.1 is not.
	local before
	before=$(stat_of a messages_bad)
	printf 'garbage' | nc -u -w1 -s 127.0.0.2 127.0.0.1 "$PA" || true
	wait_until 5 stat_at_least a packets_denied 1
	[ "$(stat_of a messages_bad)" -eq "$before" ]
	printf 'garbage' | nc -u -w1 -s 127.0.0.1 127.0.0.1 "$PA" || true
	wait_until 5 stat_at_least a messages_bad $((before + 1))
}

@test "per-source rate limits: a ping flood and a connection flood are cut and counted" {
	ports PA
	start_peer a "$PA"
	local i
	# A valid ping, 300 times from one socket (one source address and port).
	exec 5>/dev/udp/127.0.0.1/"$PA"
	for i in $(seq 1 300); do
		printf '\x00\x85\xa5SeqNo\x01\xa4Node\xa1a\xaaSourceAddr\xc4\x04\x7f\x00\x00\x01\xaaSourcePort\xcd\x00\x01\xaaSourceNode\xa1z' >&5
	done
	exec 5>&-
	wait_until 5 stat_at_least a rate_limited 100
	local before
	before=$(stat_of a rate_limited)
	for i in $(seq 1 120); do
		: 2>/dev/null >/dev/tcp/127.0.0.1/"$PA" || true
	done
	wait_until 5 stat_at_least a rate_limited $((before + 20))
	pid_alive "${BG_PID[a]}"
}

@test "garbage flood (bounded, loopback): the node keeps its view and keeps answering probes" {
	local key
	key=$("$SERF" keygen)
	serf_cluster -encrypt "$key"
	printf '%s\n' "$key" >"$T/keys"
	ports P PB
	start_peer tp "$P" -j "127.0.0.1:$G1" --keyring "$T/keys"
	start_peer tb "$PB" -j "127.0.0.1:$G2" --keyring "$T/keys"
	local -a everyone=("$R1" "$R2" "$R3" -- tp tb -- s1 s2 s3 tp tb)
	wait_until 5 all_alive "${everyone[@]}"
	local t0 ms in0 in1 got bad=0 checks=0
	in0=$(stat_of tp packets_in)
	t0=$(now_ms)
	# Two senders of 400000 random 512-byte datagrams each (dd writes each
	# block with one write(2)), and 300 junk TCP connections meanwhile.
	start_bg flood1 bash -c "exec dd if=/dev/urandom bs=512 count=400000 2>/dev/null >/dev/udp/127.0.0.1/$P"
	start_bg flood2 bash -c "exec dd if=/dev/urandom bs=512 count=400000 2>/dev/null >/dev/udp/127.0.0.1/$P"
	start_bg flood3 bash -c "for i in \$(seq 1 300); do head -c 2000 /dev/urandom >/dev/tcp/127.0.0.1/$P || true; done"
	# While it lasts (30 s at most): every member alive in everyone's view.
	while pid_alive "${BG_PID[flood1]}" || pid_alive "${BG_PID[flood2]}"; do
		(($(now_ms) - t0 < 30000)) || fail "the flood outlasted 30 s" || return 1
		checks=$((checks + 1))
		all_alive "${everyone[@]}" || bad=$((bad + 1))
		sleep 0.2
	done
	ms=$(($(now_ms) - t0))
	wait_for_exit flood1 1
	wait_for_exit flood2 1
	wait_for_exit flood3 20
	in1=$(stat_of tp packets_in)
	got=$((in1 - in0))
	echo "# flood: 800000 sent, $got packets taken in by tcppeer in $ms ms ($((got * 1000 / (ms + 1))) a second), $checks views checked during it, $bad not all-alive" >&3
	((got > 100000))
	[ "$bad" -eq 0 ]
	all_alive "${everyone[@]}"
	# Nobody suspected it: it answered every probe.
	run ! grep -h 'Suspect tp' "$T/s1.out" "$T/s2.out" "$T/s3.out" "$T/s1.err" "$T/s2.err" "$T/s3.err"
	[ "$(stat_of tb suspected)" -eq 0 ]
	run ! grep -h '^member-failed' "$T/tp.out" "$T/tb.out"
	run -0 peer_members tp --json
	[[ $output =~ \"packets_undecryptable\":[1-9][0-9]{4} ]]
	[[ $output =~ \"streams_unencrypted\":[1-9] ]]
}
