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

# two_sides: namespaces $NSA and $NSB joined by a veth, 10.231.0.1 in A and
# 10.231.0.2 in B; skips without root. cut_link / mend_link drop and
# restore everything that crosses it (nftables in A: the kernel here may
# lack netem, and taking the device down would take A's address with it).
two_sides() {
	command -v ip >/dev/null && command -v nft >/dev/null || skip "ip and nft needed"
	NSA=tpa$$ NSB=tpb$$ VA=tpva$$ VB=tpvb$$
	ip netns add "$NSA" 2>/dev/null || skip "cannot create a network namespace (root needed)"
	NETNS=$NSA
	ip netns add "$NSB"
	NETNS="$NSA $NSB"
	ip link add "$VA" type veth peer name "$VB"
	ip link set "$VA" netns "$NSA"
	ip link set "$VB" netns "$NSB"
	ip -n "$NSA" addr add 10.231.0.1/24 dev "$VA"
	ip -n "$NSB" addr add 10.231.0.2/24 dev "$VB"
	ip -n "$NSA" link set lo up
	ip -n "$NSB" link set lo up
	ip -n "$NSA" link set "$VA" up
	ip -n "$NSB" link set "$VB" up
}

cut_link() {
	ip netns exec "$NSA" nft -f - <<-EOT
		table inet partition {
			chain in { type filter hook input priority 0; iifname "$VA" drop; }
			chain out { type filter hook output priority 0; oifname "$VA" drop; }
		}
	EOT
}

mend_link() {
	ip netns exec "$NSA" nft delete table inet partition
}

# start_in NS NAME ADDR:PORT ARGS...: start_peer inside a namespace.
start_in() {
	start_bg "$2" ip netns exec "$1" "$TCPPEER" -n "$2" -b "$3" --control "$T/$2.sock" "${@:4}" ||
		return 1
	wait_for_file_line "$T/$2.err" 'listening on' 5
}

# sees_alive NAME N: the node lists exactly N members alive.
sees_alive() {
	[ "$(peer_members "$1" | grep -c $'\talive\t')" -eq "$2" ]
}

@test "3 + 3 nodes split by a cut veth are one cluster again within the reconnect interval + 5 s of its return, the pool file whole" {
	two_sides
	printf '[pool]\nlisten = 127.0.0.1:1\n' >"$T/web.pool"
	# memberlist forgets the dead after --gossip-to-dead: the cut lasts longer
	# than that, as a real partition (30 s against 30 s by default) does.
	local FAST="--probe-interval 200ms --probe-timeout 100ms --gossip-interval 100ms"
	FAST+=" --gossip-to-dead 2s --reconnect-interval 2s"
	local i n
	start_in "$NSA" x1 10.231.0.1:7001 $FAST -t web=10.231.0.1:8001 --pool "$T/web.pool" \
		--service-tag web --pool-delay 100ms
	for i in 2 3; do
		start_in "$NSA" "x$i" "10.231.0.1:700$i" $FAST -t "web=10.231.0.1:800$i" -j 10.231.0.1:7001
	done
	for i in 1 2 3; do
		start_in "$NSB" "y$i" "10.231.0.2:700$i" $FAST -t "web=10.231.0.2:800$i" -j 10.231.0.1:7001
	done
	whole() {
		local n
		for n in x1 x2 x3 y1 y2 y3; do sees_alive "$n" 6 || return 1; done
	}
	backends() { [ "$(grep -c '^\[backend ' "$T/web.pool")" -eq "$1" ]; }
	wait_until 10 whole
	wait_until 3 backends 6
	cut_link
	split() {
		local n
		for n in x1 x2 x3 y1 y2 y3; do sees_alive "$n" 3 || return 1; done
		peer_has x1 y1 failed && peer_has y1 x1 failed
	}
	wait_until 20 split
	wait_until 3 backends 3
	# The cut holds past the gossip-to-dead time; failed members are kept,
	# listed as failed, not forgotten.
	always_within 3 split
	run -0 peer_members x2
	[ "$(grep -c $'\tfailed\t' <<<"$output")" -eq 3 ]
	mend_link
	local t0
	t0=$(now_ms)
	wait_until 7 whole
	echo "# one cluster again $(($(now_ms) - t0)) ms after the link came back" >&3
	wait_until 2 backends 6
	for n in y1 y2 y3; do
		grep -q "^\\[backend $n\\]" "$T/web.pool"
	done
}

# ---------------------------------------------------------------------------
# Stream slots

@test "16 idle connections from one address do not keep a serf agent from joining through the node" {
	ports P G1 R1
	start_peer tp "$P"
	local i
	for i in $(seq 1 16); do
		start_bg "h$i" "$HELPERS/hold" "127.0.0.1:$P" 20
	done
	for i in $(seq 1 16); do
		wait_for_file_line "$T/h$i.out" '^connected' 5
	done
	# The agent connects from the same address as the idle ones.
	start_serf s1 "$G1" "$R1" -join "127.0.0.1:$P"
	wait_until 5 serf_has "$R1" tp alive
	wait_until 3 peer_has tp s1 alive
	# The agent took the place of an idle stream from its own address, and
	# no idle stream outlived the first-message deadline.
	stat_at_least tp streams_evicted 1
	wait_until 5 bash -c "grep -l closed-by-peer '$T'/h*.out | wc -l | grep -qx 16"
}

# ---------------------------------------------------------------------------
# Intents

@test "serf force-leave: member-leave and status left on every tcppeer node; tcppeer force-leave does the same for serf" {
	serf_cluster
	ports PA PB
	local FAST="--probe-interval 500ms --probe-timeout 250ms"
	start_peer ta "$PA" $FAST -j "127.0.0.1:$G1"
	start_peer tb "$PB" $FAST -j "127.0.0.1:$G2"
	wait_until 5 peer_has ta s3 alive
	wait_until 5 peer_has tb s3 alive
	kill -KILL "${BG_PID[s3]}"
	wait_until 10 peer_has ta s3 failed
	wait_until 3 peer_has tb s3 failed
	"$SERF" force-leave -rpc-addr "127.0.0.1:$R1" s3
	wait_for_file_line "$T/ta.out" "^member-leave s3 127\\.0\\.0\\.1:$G3 role=three\$" 3
	wait_for_file_line "$T/tb.out" "^member-leave s3 127\\.0\\.0\\.1:$G3 role=three\$" 3
	peer_has ta s3 left
	peer_has tb s3 left
	# The other way: a serf agent killed, force-left through a tcppeer node.
	kill -KILL "${BG_PID[s2]}"
	wait_until 10 serf_has "$R1" s2 failed
	wait_until 3 peer_has tb s2 failed
	run -0 "$TCPPEER" force-leave --control "$T/ta.sock" s2
	wait_until 3 serf_has "$R1" s2 left
	wait_for_file_line "$T/tb.out" '^member-leave s2 ' 3
	peer_has ta s2 left
	run --separate-stderr "$TCPPEER" force-leave --control "$T/ta.sock" nobody
	[ "$status" -eq 0 ]
	[[ $stderr == *"'nobody' is not a member this node knows"* ]]
}

# ---------------------------------------------------------------------------
# Snapshot

@test "snapshot: a node killed and started again with only --snapshot is alive on every node within 5 s, without old events" {
	serf_cluster
	ports P Q
	start_peer tp "$P" -j "127.0.0.1:$G1" --snapshot "$T/tp.snap"
	start_peer tq "$Q" -j "127.0.0.1:$G2"
	wait_until 5 serf_has "$R3" tp alive
	wait_until 5 peer_has tp tq alive
	"$SERF" event -rpc-addr "127.0.0.1:$R1" deploy v1
	wait_for_file_line "$T/tp.out" '^user-event deploy v1$' 5
	wait_until 3 grep -q "^alive: s3 127.0.0.1:$G3\$" "$T/tp.snap"
	wait_until 3 grep -q "^alive: tq 127.0.0.1:$Q\$" "$T/tp.snap"
	wait_until 3 grep -qE '^event-clock: [1-9]' "$T/tp.snap"
	kill -KILL "${BG_PID[tp]}"
	wait_for_exit tp 2 || true
	local t0
	t0=$(now_ms)
	start_peer tp2 "$P" -n tp --snapshot "$T/tp.snap"
	wait_until 5 serf_has "$R1" tp alive
	wait_until 1 serf_has "$R2" tp alive
	wait_until 1 serf_has "$R3" tp alive
	wait_until 1 peer_has tq tp alive
	echo "# restarted node alive everywhere $(($(now_ms) - t0)) ms after its start" >&3
	wait_until 3 peer_has tp2 s1 alive
	grep -q 'snapshot .*: 4 members, 4 to rejoin' "$T/tp2.err"
	run ! grep -q '^user-event' "$T/tp2.out"
	# A clean stop says so: the next start does not rejoin.
	stop_bg tp2
	grep -qx leave "$T/tp.snap"
}

# ---------------------------------------------------------------------------
# Coordinates

# rtt_ms OUTPUT: the milliseconds of "Estimated A <-> B rtt: X ms", times 1000.
rtt_us() {
	local ms=${1##*rtt: }
	ms=${ms% ms}
	awk -v m="$ms" 'BEGIN { printf "%d\n", m * 1000 }'
}

# agree RPC_PORT PEER A B: serf's and tcppeer's estimates for A <-> B are
# within a factor of 2 of each other.
agree() {
	local s t
	s=$(rtt_us "$("$SERF" rtt -rpc-addr "127.0.0.1:$1" "$3" "$4")") || return 1
	t=$(rtt_us "$("$TCPPEER" rtt --control "$T/$2.sock" "$3" "$4")") || return 1
	echo "# serf: $s us, tcppeer: $t us" >&3
	((s > 0 && t > 0 && s <= 2 * t && t <= 2 * s))
}

@test "serf rtt works to and from tcppeer nodes; tcppeer rtt estimates as serf does" {
	serf_cluster
	ports P
	start_peer tp "$P" -j "127.0.0.1:$G1" --probe-interval 200ms --probe-timeout 100ms
	wait_until 5 serf_has "$R1" tp alive
	# Each learns the other's coordinate from the acks to its own probes.
	wait_until 10 "$SERF" rtt -rpc-addr "127.0.0.1:$R1" tp
	wait_until 5 "$TCPPEER" rtt --control "$T/tp.sock" s1
	run -0 "$SERF" rtt -rpc-addr "127.0.0.1:$R1" tp
	[[ $output == "Estimated tp <-> s1 rtt: "*" ms" ]]
	run -0 "$TCPPEER" rtt --control "$T/tp.sock" s1
	[[ $output == "Estimated tp <-> s1 rtt: "*" ms" ]]
	wait_until 5 "$TCPPEER" rtt --control "$T/tp.sock" s2 s3
	# The same pair, seen from either side, once the coordinates settle.
	wait_until 15 agree "$R1" tp s1 tp
	run -1 "$TCPPEER" rtt --control "$T/tp.sock" nobody
	[[ $output == *"could not find a coordinate for node 'nobody'"* ]]
}

# ---------------------------------------------------------------------------
# Mixed clusters

@test "5 serf agents and 5 tcppeer nodes started within a second with chained seeds are one cluster within 10 s" {
	local -a G R P
	local i t0
	G=($(free_port 5))
	R=($(free_port 5))
	P=($(free_port 5))
	# s0 t0 s1 t1 ... s4 t4, each joining the one started just before it,
	# which may not listen yet: serf retries with -retry-join, tcppeer always.
	t0=$(now_ms)
	start_bg s0 "$SERF" agent -node s0 -bind "127.0.0.1:${G[0]}" -rpc-addr "127.0.0.1:${R[0]}"
	for i in 0 1 2 3 4; do
		start_bg "t$i" "$TCPPEER" -n "t$i" -b "127.0.0.1:${P[i]}" --control "$T/t$i.sock" \
			-j "127.0.0.1:${G[i]}"
		((i == 4)) && break
		start_bg "s$((i + 1))" "$SERF" agent -node "s$((i + 1))" -bind "127.0.0.1:${G[i + 1]}" \
			-rpc-addr "127.0.0.1:${R[i + 1]}" -retry-join "127.0.0.1:${P[i]}" -retry-interval 1s
	done
	echo "# all 10 started in $(($(now_ms) - t0)) ms" >&3
	one_cluster() {
		local i
		for i in 0 1 2 3 4; do
			[ "$(peer_members "t$i" 2>/dev/null | grep -c $'\talive\t')" -eq 10 ] || return 1
			[ "$("$SERF" members -rpc-addr "127.0.0.1:${R[i]}" 2>/dev/null | awk '$3 == "alive"' | wc -l)" -eq 10 ] || return 1
		done
	}
	wait_until 10 one_cluster
	echo "# one cluster $(($(now_ms) - t0)) ms after the first start" >&3
}
