#!/usr/bin/env bats
# tcppeer keeping the promises of serf: strict about what it passes on,
# joining late seeds, reconnecting after a partition, stream slots shared
# per source, intents, snapshots and coordinates. Real serf agents on
# loopback, network namespaces where a test makes them. Every wait polls
# with a deadline; every background process is killed by pid.

bats_require_minimum_version 1.5.0
load 'helpers'
load 'tcppeer_helpers'

# alive_msg NAME IP_HEX_BYTES VSN_HEX_BYTES: a memberlist alive message
# (incarnation 1, port 1, no meta), as printf escapes.
alive_msg() {
	local n=$1
	printf '\\x04\\x86\\xabIncarnation\\x01\\xa4Node\\x%02x%s\\xa4Addr\\xc4\\x04%s\\xa4Port\\x01\\xa4Meta\\xc4\\x00\\xa3Vsn\\xc4\\x%02x%s' \
		$((0xa0 + ${#n})) "$n" "$2" $((${#3} / 4)) "$3"
}

# ---------------------------------------------------------------------------
# Strict: only what tcppeer decoded, checked and wrote again is passed on

@test "a forged alive with a 1-byte Vsn is dropped, never passed on: every serf agent stays up" {
	serf_cluster
	ports P
	start_peer tp "$P" -j "127.0.0.1:$G1"
	wait_until 5 serf_has "$R3" tp alive
	# memberlist indexes Vsn[0..5] of an alive: one byte makes it panic.
	printf "$(alive_msg evil '\x7f\x00\x03\x01' '\x01')" >"$T/evil"
	printf "$(alive_msg good '\x7f\x00\x03\x02' '\x01\x05\x02\x02\x05\x04')" >"$T/good"
	udp_file "$P" "$T/evil"
	udp_file "$P" "$T/good"
	# The well-formed one, sent after it, reaches every agent: gossip ran.
	wait_until 5 serf_knows "$R1" good
	wait_until 5 serf_knows "$R2" good
	wait_until 5 serf_knows "$R3" good
	local s
	for s in s1 s2 s3; do
		pid_alive "${BG_PID[$s]}" || fail "serf agent $s died"
		run ! grep -q 'panic' "$T/$s.out" "$T/$s.err"
	done
	run ! serf_knows "$R1" evil
	run ! peer_has tp evil alive
	stat_at_least tp messages_bad 1
}

@test "a user event serf cannot decode is neither printed nor passed on; a good one is" {
	serf_cluster
	ports P
	start_peer tp "$P" -j "127.0.0.1:$G1"
	wait_until 5 serf_has "$R3" tp alive
	# serf's CC is a bool: a string there fails serf's decoder.
	printf '\x08\x03\x84\xa5LTime\x01\xa4Name\xa3bad\xa7Payload\xa1x\xa2CC\xa3yes' >"$T/bad"
	printf '\x08\x03\x84\xa5LTime\x02\xa4Name\xa4good\xa7Payload\xa1y\xa2CC\xc2' >"$T/good"
	udp_file "$P" "$T/bad"
	udp_file "$P" "$T/good"
	wait_for_file_line "$T/tp.out" '^user-event good y$' 5
	wait_for_file_line "$T/s1.out" 'Received event: user-event: good' 5
	wait_for_file_line "$T/s2.out" 'Received event: user-event: good' 5
	wait_for_file_line "$T/s3.out" 'Received event: user-event: good' 5
	run ! grep -q '^user-event bad' "$T/tp.out"
	run ! grep -h 'Error decoding user event' "$T/s1.out" "$T/s2.out" "$T/s3.out"
	stat_at_least tp messages_bad 1
}

# ---------------------------------------------------------------------------
# Joining and reconnecting

@test "a seed not up yet is retried until it answers, though another node joined this one meanwhile" {
	ports PT PU PA
	start_peer t "$PT" -j "127.0.0.1:$PA"
	start_peer u "$PU" -j "127.0.0.1:$PT"
	wait_until 5 peer_has t u alive
	start_peer a "$PA"
	# t retries its seed at 1, 2, 4... s: the next try after a is up joins them.
	wait_until 10 peer_has a t alive
	wait_until 3 peer_has a u alive
	wait_until 3 peer_has t a alive
	wait_until 3 peer_has u a alive
	grep -q "joined the cluster through 127.0.0.1:$PA" "$T/t.err"
}
