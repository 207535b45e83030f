#!/usr/bin/env bats
# tcpdist's main thread never waits on a load: a large table being built or
# a name server that does not answer leave signals, scrapes and clients
# served, and the pool in force stays until the new one is ready. Host names
# are looked up again every resolve_interval. Real sockets on 127.0.0.0/8;
# private /etc/resolv.conf and /etc/hosts through a mount namespace (root).

bats_require_minimum_version 1.5.0
load 'helpers'

setup() {
	require_helpers
	T=$BATS_TEST_TMPDIR
}

teardown() {
	[[ -n ${BATS_TEST_COMPLETED:-} ]] || dump_logs
	bg_teardown
}

needs_private_mounts() {
	[[ $(id -u) == 0 ]] && unshare -m true 2>/dev/null || skip "needs root for a private /etc/resolv.conf"
}

# start_tcpdist_ns RESOLV_CONF HOSTS POOL [ARGS...]: tcpdist seeing RESOLV_CONF
# and HOSTS as /etc/resolv.conf and /etc/hosts (a private mount namespace).
start_tcpdist_ns() {
	local conf=$1 hosts=$2 pool=$3 deadline
	shift 3
	TCPDIST_LOG="$T/tcpdist.err"
	start_bg tcpdist unshare -m sh -c \
		'mount --bind "$0" /etc/resolv.conf && mount --bind "$1" /etc/hosts && shift && exec "$@"' \
		"$conf" "$hosts" "$TCPDIST" "$@" "$pool" || return 1
	TCPDIST_PID=${BG_PID[tcpdist]}
	wait_for_file_line "$TCPDIST_LOG" 'listening on' 5
}

# ms_to_exit PID: waits up to 5 s for PID to exit, prints how long it took.
ms_to_exit() {
	local start=$(now_ms)
	while pid_alive "$1"; do
		(($(now_ms) - start < 5000)) || break
		sleep 0.01
	done
	echo $(($(now_ms) - start))
}

@test "SIGTERM and a scrape are served while a reload builds the largest table of 10,000 backends, 9,999 drained" {
	ports P PA PM
	start_namesrv a "127.0.0.1:$PA"
	printf '[pool]\nlisten = 127.0.0.1:%s\n[backend a]\naddress = 127.0.0.1:%s\n' "$P" "$PA" >"$T/web.pool"
	start_tcpdist "$T/web.pool" --metrics "127.0.0.1:$PM"
	awk -v p="$P" -v pa="$PA" 'BEGIN {
		printf "[pool]\nlisten = 127.0.0.1:%s\ntable_size = 8388593\n", p
		for (i = 0; i < 10000; i++)
			printf "[backend b%05d]\naddress = 127.0.0.1:%d\n%s", i, pa, i ? "state = drain\n" : ""
	}' >"$T/big.pool"
	mv "$T/big.pool" "$T/web.pool"
	# The scrape and the signal come while the load runs.
	run curl -s --max-time 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PM/metrics"
	[ "$output" = 200 ]
	kill -TERM "$TCPDIST_PID"
	took=$(ms_to_exit "$TCPDIST_PID")
	echo "# exit $took ms after SIGTERM" >&3
	((took < 2000))
	wait_for_exit tcpdist 1
	[ "$EXIT_STATUS" -eq 0 ]
}

@test "a name server that never answers holds up no scrape, client or signal; the pool in force stays until the lookup fails" {
	needs_private_mounts
	command -v nc >/dev/null || skip "nc needed"
	ports P PA PM
	start_bg dns nc -u -l -k 127.0.0.9 53
	printf 'nameserver 127.0.0.9\noptions timeout:3 attempts:2\n' >"$T/resolv.conf"
	printf '127.0.0.1 localhost\n' >"$T/hosts"
	start_namesrv a "127.0.0.1:$PA"
	printf '[pool]\nlisten = 127.0.0.1:%s\n[backend a]\naddress = 127.0.0.1:%s\n' "$P" "$PA" >"$T/web.pool"
	start_tcpdist_ns "$T/resolv.conf" "$T/hosts" "$T/web.pool" --metrics "127.0.0.1:$PM"
	printf '[backend slow]\naddress = slow.example:80\n' >>"$T/web.pool"
	# The lookup hangs for 5 s (tcpdist's deadline); meanwhile everything answers.
	local start=$(now_ms)
	for _ in 1 2 3; do
		run curl -s --max-time 1 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PM/metrics"
		[ "$output" = 200 ]
		[ "$("$HELPERS/names" --timeout 1000 "127.0.0.1:$P" 1)" = a ]
	done
	(($(now_ms) - start < 3000))
	wait_for_file_line "$TCPDIST_LOG" "reload failed, keeping the last good pool: .*web.pool:6: address: cannot resolve 'slow.example': no answer within 5000ms" 8
	[ "$("$HELPERS/names" --timeout 1000 "127.0.0.1:$P" 1)" = a ]
	# A second lookup is hanging when the signal comes.
	printf '[backend slow2]\naddress = slow2.example:80\n' >>"$T/web.pool"
	run curl -s --max-time 1 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PM/metrics"
	[ "$output" = 200 ]
	kill -TERM "$TCPDIST_PID"
	took=$(ms_to_exit "$TCPDIST_PID")
	((took < 1500))
}

@test "resolve_interval: a name that moves is followed, and one that stops answering keeps its address" {
	needs_private_mounts
	ports P PA
	start_namesrv a "127.0.0.1:$PA"
	start_namesrv b "127.0.0.2:$PA"
	printf 'nameserver 127.0.0.9\noptions timeout:1 attempts:1\n' >"$T/resolv.conf"
	printf '127.0.0.1 localhost\n127.0.0.1 web.test\n' >"$T/hosts"
	printf '[pool]\nlisten = 127.0.0.1:%s\nresolve_interval = 1s\n[backend web]\naddress = web.test:%s\n' \
		"$P" "$PA" >"$T/web.pool"
	start_tcpdist_ns "$T/resolv.conf" "$T/hosts" "$T/web.pool"
	[ "$("$HELPERS/names" --timeout 1000 "127.0.0.1:$P" 1)" = a ]
	# Rewritten in place: the bind mount keeps the inode.
	printf '127.0.0.1 localhost\n127.0.0.2 web.test\n' >"$T/hosts"
	wait_for_file_line "$TCPDIST_LOG" 'names looked up again \(changed web\)' 4
	[ "$("$HELPERS/names" --timeout 1000 "127.0.0.1:$P" 1)" = b ]
	# Gone from /etc/hosts: DNS is asked and refuses; the address in force stays.
	printf '127.0.0.1 localhost\n' >"$T/hosts"
	wait_for_file_line "$TCPDIST_LOG" "names looked up again: .*cannot resolve 'web.test'.*keeping the addresses in force" 5
	[ "$("$HELPERS/names" --timeout 1000 "127.0.0.1:$P" 1)" = b ]
	run grep -c 'reload failed' "$TCPDIST_LOG"
	[ "$output" = 0 ]
}
