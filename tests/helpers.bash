# Shared by the bats suites (load 'helpers'): background processes that
# teardown kills by PID, polling with deadlines (never fixed sleeps), and
# the test helper programs built into build/helpers/ by `make helpers`.

HELPERS="$BATS_TEST_DIRNAME/../build/helpers"
: "${TCPDIST:=$BATS_TEST_DIRNAME/../bin/tcpdist}"

# name -> pid of every process start_bg started in this test, and the
# pids still to be reaped.
declare -gA BG_PID=()
declare -ga BG_PIDS=()

# Milliseconds since the epoch, without forking.
now_ms() {
	local t=${EPOCHREALTIME/./}
	echo $((t / 1000))
}

# Fails the test with a message on stdout (shown by bats on failure).
fail() {
	echo "FAIL: $*"
	return 1
}

require_helpers() {
	local h
	for h in freeport namesrv blast blackhole halfclose hold names probe; do
		[[ -x $HELPERS/$h ]] || fail "$HELPERS/$h missing: run 'make helpers'" || return 1
	done
	[[ -x $TCPDIST ]] || fail "$TCPDIST missing: run 'make'"
}

# free_port [N] [-6]: N (default 1) TCP ports free on 127.0.0.1 (or ::1),
# one per line, chosen outside the kernel's ephemeral range.
free_port() {
	local n=${1:-1}
	if [[ ${2:-} == -6 ]]; then
		"$HELPERS/freeport" -6 "$n"
	else
		"$HELPERS/freeport" "$n"
	fi
}

# Reads N free ports into the named variables: ports P1 P2 ...
ports() {
	local -a _ports_got
	local _ports_i=0 _ports_name
	_ports_got=($(free_port $#))
	[ "${#_ports_got[@]}" -eq $# ] || fail "free_port gave ${#_ports_got[@]} ports, not $#" || return 1
	for _ports_name in "$@"; do
		printf -v "$_ports_name" '%s' "${_ports_got[_ports_i]}"
		_ports_i=$((_ports_i + 1))
	done
}

# start_bg NAME CMD...: runs CMD in the background with stdout and stderr
# in $BATS_TEST_TMPDIR/NAME.out and NAME.err; its pid is ${BG_PID[NAME]}
# and teardown kills it. Must not run under `run` (a subshell).
start_bg() {
	local name=$1
	shift
	[[ -z ${BG_PID[$name]:-} ]] || fail "start_bg: name '$name' already used" || return 1
	# fd 3 is bats' own output: a background process holding it makes bats hang.
	"$@" >"$BATS_TEST_TMPDIR/$name.out" 2>"$BATS_TEST_TMPDIR/$name.err" </dev/null 3>&- &
	BG_PID[$name]=$!
	BG_PIDS+=("$!")
}

# True while pid is running (a zombie, exited but not reaped, counts as gone).
pid_alive() {
	local state
	[[ -r /proc/$1/stat ]] || return 1
	read -r _ _ state _ </proc/"$1"/stat 2>/dev/null || return 1
	[[ $state != Z ]]
}

# Forgets pid so teardown never signals a recycled pid.
bg_forget() {
	local i
	for i in "${!BG_PIDS[@]}"; do
		[[ ${BG_PIDS[$i]} == "$1" ]] && unset 'BG_PIDS[i]'
	done
	return 0
}

# wait_for_exit NAME [TIMEOUT_S]: waits for the process to end, sets
# EXIT_STATUS to its exit status and frees NAME for another start_bg.
# Fails if it is still running at the deadline.
wait_for_exit() {
	local name=$1 timeout=${2:-5} pid=${BG_PID[$1]} deadline
	deadline=$(($(now_ms) + $(ms_of "$timeout")))
	while pid_alive "$pid"; do
		(($(now_ms) < deadline)) || fail "$name (pid $pid) still running after ${timeout}s" || return 1
		sleep 0.05
	done
	EXIT_STATUS=0
	wait "$pid" || EXIT_STATUS=$?
	bg_forget "$pid"
	unset 'BG_PID[$name]' # the name may be used again
}

# ms_of SECONDS: "5" or "0.5" -> milliseconds.
ms_of() {
	local s=$1 int frac
	int=${s%%.*}
	frac=0
	[[ $s == *.* ]] && frac=${s#*.}
	frac=${frac}000
	echo $((10#${int:-0} * 1000 + 10#${frac:0:3}))
}

# stop_bg NAME [SIGNAL]: signals the process (default TERM) and reaps it.
stop_bg() {
	local pid=${BG_PID[$1]}
	kill -"${2:-TERM}" "$pid" 2>/dev/null || true
	wait_for_exit "$1" 5 || {
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		bg_forget "$pid"
		unset 'BG_PID[$1]'
		return 1
	}
}

# Kills every process start_bg started (TERM, then KILL after 2 s) and
# reaps them. Call it from each suite's teardown.
bg_teardown() {
	local pid deadline
	for pid in "${BG_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	deadline=$(($(now_ms) + 2000))
	for pid in "${BG_PIDS[@]}"; do
		while pid_alive "$pid" && (($(now_ms) < deadline)); do
			sleep 0.02
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	BG_PIDS=()
	BG_PID=()
}

# wait_for_port PORT [TIMEOUT_S]: until something listens on TCP PORT
# (checked with ss, so no connection is made and no relay is disturbed).
wait_for_port() {
	local port=$1 deadline
	deadline=$(($(now_ms) + $(ms_of "${2:-5}")))
	until [[ -n $(ss -Hltn "sport = :$port" 2>/dev/null) ]]; do
		(($(now_ms) < deadline)) || fail "nothing listens on port $port after ${2:-5}s" || return 1
		sleep 0.05
	done
}

# wait_for_file_line FILE REGEX [TIMEOUT_S]: until a line of FILE matches
# the extended REGEX. On timeout prints the file and fails.
wait_for_file_line() {
	wait_for_line_count "$1" "$2" 1 "${3:-5}"
}

# wait_for_line_count FILE REGEX N [TIMEOUT_S]: until N lines match.
wait_for_line_count() {
	local file=$1 regex=$2 n=$3 deadline count
	deadline=$(($(now_ms) + $(ms_of "${4:-5}")))
	# A file not there yet counts no lines.
	until count=$(grep -Ec -- "$regex" "$file" 2>/dev/null); ((${count:-0} >= n)); do
		if (($(now_ms) >= deadline)); then
			echo "--- $file:"
			cat "$file" 2>/dev/null
			fail "fewer than $n lines matching '$regex' in $file after ${4:-5}s"
			return 1
		fi
		sleep 0.05
	done
}

# established_to PORT: how many established TCP connections go to PORT.
established_to() {
	ss -Htn state established "dport = :$1" 2>/dev/null | wc -l
}

# wait_for_established PORT N [TIMEOUT_S]: until exactly N established
# connections go to PORT.
wait_for_established() {
	local port=$1 n=$2 deadline
	deadline=$(($(now_ms) + $(ms_of "${3:-5}")))
	until (($(established_to "$port") == n)); do
		(($(now_ms) < deadline)) ||
			fail "$(established_to "$port") connections to port $port, not $n, after ${3:-5}s" ||
			return 1
		sleep 0.05
	done
}

# start_namesrv NAME ADDR:PORT [OPTIONS]: a namesrv backend, ready on return.
start_namesrv() {
	local name=$1 addr=$2
	shift 2
	start_bg "$name" "$HELPERS/namesrv" "$@" "$name" "$addr" || return 1
	wait_for_file_line "$BATS_TEST_TMPDIR/$name.out" '^ready$'
}

# start_tcpdist POOLFILE [ARGS...]: starts $TCPDIST ARGS POOLFILE as the
# background process "tcpdist" (log in $TCPDIST_LOG) and waits for its
# `listening on` line.
start_tcpdist() {
	local pool=$1 deadline
	shift
	TCPDIST_LOG="$BATS_TEST_TMPDIR/tcpdist.err"
	start_bg tcpdist "$TCPDIST" "$@" "$pool" || return 1
	TCPDIST_PID=${BG_PID[tcpdist]}
	deadline=$(($(now_ms) + 5000))
	until grep -q 'listening on' "$TCPDIST_LOG" 2>/dev/null; do
		if ! pid_alive "$TCPDIST_PID" || (($(now_ms) >= deadline)); then
			echo "--- tcpdist log:"
			cat "$TCPDIST_LOG"
			fail "tcpdist did not start listening"
			return 1
		fi
		sleep 0.05
	done
}

# tcpdist_teardown: for a suite's teardown. A test that passed also proves
# tcpdist stops cleanly (exit 0, which under the sanitizers also means no
# leak): the other programs go first.
tcpdist_teardown() {
	local name status=0
	if [[ -n ${BATS_TEST_COMPLETED:-} && -n ${BG_PID[tcpdist]:-} ]]; then
		for name in "${!BG_PID[@]}"; do
			[[ $name == tcpdist ]] || kill -KILL "${BG_PID[$name]}" 2>/dev/null || true
		done
		stop_bg tcpdist TERM && [[ $EXIT_STATUS -eq 0 ]] || status=1
		((status == 0)) || dump_logs
	fi
	[[ -n ${BATS_TEST_COMPLETED:-} ]] || dump_logs
	bg_teardown
	return $status
}

# log_has LINE: $TCPDIST_LOG has LINE exactly, after the time a line to a
# plain stream starts with (RFC 3339, then a space).
log_has() {
	sed -E 's/^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z //' "$TCPDIST_LOG" | grep -qxF -- "$1"
}

# write_pool NAME: the pool file $BATS_TEST_TMPDIR/NAME from stdin (a heredoc).
write_pool() {
	cat >"$BATS_TEST_TMPDIR/$1"
}

# Prints the tail of every log of the test, for a failing test's report.
dump_logs() {
	local f
	for f in "$BATS_TEST_TMPDIR"/*.err "$BATS_TEST_TMPDIR"/*.out; do
		[[ -s $f ]] || continue
		echo "--- ${f##*/} (last 20 lines):"
		tail -n 20 "$f"
	done
}
