# Shared by the tcppeer suites (load 'tcppeer_helpers' after 'helpers'):
# serf agents and tcppeer nodes on loopback, and polling with deadlines.

: "${TCPPEER:=$BATS_TEST_DIRNAME/../bin/tcppeer}"
: "${SERF:=serf}"

setup() {
	require_helpers
	[[ -x $TCPPEER ]] || fail "$TCPPEER missing: run 'make'"
	T=$BATS_TEST_TMPDIR
}

# NETNS: the network namespaces a test made (blank-separated), deleted
# with it (and the veth pairs in them).
teardown() {
	[[ -n ${BATS_TEST_COMPLETED:-} ]] || dump_logs
	bg_teardown
	local ns
	for ns in ${NETNS:-}; do
		ip netns del "$ns" 2>/dev/null || true
	done
}

# never_within SECONDS CMD...: CMD stays false for the whole period (polled).
never_within() {
	local deadline
	deadline=$(($(now_ms) + $(ms_of "$1")))
	shift
	while (($(now_ms) < deadline)); do
		if "$@" >/dev/null 2>&1; then
			fail "became true: $*"
			return 1
		fi
		sleep 0.1
	done
}

# always_within SECONDS CMD...: CMD stays true for the whole period (polled).
always_within() {
	local deadline
	deadline=$(($(now_ms) + $(ms_of "$1")))
	shift
	while (($(now_ms) < deadline)); do
		if ! "$@" >/dev/null 2>&1; then
			"$@"
			fail "became false: $*"
			return 1
		fi
		sleep 0.1
	done
}

# wait_until TIMEOUT_S CMD...: polls CMD until it succeeds; on timeout runs
# it once more with its output shown and fails.
wait_until() {
	local timeout=$1 deadline
	shift
	deadline=$(($(now_ms) + $(ms_of "$timeout")))
	until "$@" >/dev/null 2>&1; do
		if (($(now_ms) >= deadline)); then
			"$@"
			fail "not true after ${timeout}s: $*"
			return 1
		fi
		sleep 0.05
	done
}

# start_serf NAME GOSSIP_PORT RPC_PORT [AGENT ARGS...]: a serf agent, its
# RPC listening on return.
start_serf() {
	local name=$1 gp=$2 rp=$3
	shift 3
	start_bg "$name" "$SERF" agent -node "$name" -bind "127.0.0.1:$gp" \
		-rpc-addr "127.0.0.1:$rp" -log-level info "$@" || return 1
	wait_for_port "$rp" 5
}

# serf_status RPC_PORT NODE: the node's status in that agent's view.
serf_status() {
	"$SERF" members -rpc-addr "127.0.0.1:$1" 2>/dev/null | awk -v n="$2" '$1 == n { print $3 }'
}

serf_has() { # RPC_PORT NODE STATUS [TAG]
	local line
	line=$("$SERF" members -rpc-addr "127.0.0.1:$1" 2>/dev/null | awk -v n="$2" '$1 == n')
	[[ $(awk '{print $3}' <<<"$line") == "$3" ]] || return 1
	[[ -z ${4:-} || $line == *"$4"* ]]
}

# start_peer NAME PORT [ARGS...]: a tcppeer node with its control socket in
# $T/NAME.sock, listening on return.
start_peer() {
	local name=$1 port=$2
	shift 2
	start_bg "$name" "$TCPPEER" -n "$name" -b "127.0.0.1:$port" --control "$T/$name.sock" "$@" ||
		return 1
	wait_for_file_line "$T/$name.err" 'listening on' 5
}

peer_members() { # NAME [--json]
	"$TCPPEER" members --control "$T/$1.sock" "${@:2}"
}

peer_has() { # NAME MEMBER STATUS
	peer_members "$1" | awk -F'\t' -v m="$2" -v s="$3" '$1 == m && $3 == s { f = 1 } END { exit !f }'
}

# A 3-agent serf cluster: s1 s2 s3 with gossip ports G1..G3 and RPC ports
# R1..R3; further arguments go to every agent.
serf_cluster() {
	ports G1 G2 G3 R1 R2 R3
	start_serf s1 "$G1" "$R1" -tag role=one "$@"
	start_serf s2 "$G2" "$R2" -tag role=two -join "127.0.0.1:$G1" "$@"
	start_serf s3 "$G3" "$R3" -tag role=three -join "127.0.0.1:$G1" "$@"
	wait_until 5 serf_has "$R1" s3 alive
	wait_until 5 serf_has "$R3" s2 alive
}

# stat_of NAME COUNTER: one counter of members --json.
stat_of() {
	peer_members "$1" --json | grep -oE "\"$2\":[0-9]+" | cut -d: -f2
}

stat_at_least() { # NAME COUNTER MIN
	local v
	v=$(stat_of "$1" "$2")
	((${v:-0} >= $3))
}

# serf_knows RPC_PORT NODE: the agent lists NODE, whatever its status.
serf_knows() {
	"$SERF" members -rpc-addr "127.0.0.1:$1" 2>/dev/null | awk -v n="$2" '$1 == n { f = 1 } END { exit !f }'
}

# udp_file PORT FILE: FILE as one datagram to 127.0.0.1:PORT (NUL bytes kept).
udp_file() {
	cat "$2" >/dev/udp/127.0.0.1/"$1"
}
