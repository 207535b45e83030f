#!/usr/bin/env bats
# tcpdist's live pool: reloads on every kind of file replacement, admin
# states, health checks, limits, metrics and connection logs. Real sockets
# on 127.0.0.1; every wait polls with a deadline; teardown kills by pid.

bats_require_minimum_version 1.5.0
load 'helpers'

setup() {
	require_helpers
	T=$BATS_TEST_TMPDIR
}

# A test that passed also proves tcpdist stops cleanly (exit 0, which
# under the sanitizers also means no leak): clients and backends go first.
teardown() {
	tcpdist_teardown
}


# pool_text LISTEN_PORT [pool key=value lines...] -- NAME:PORT[:extra;extra]...
# prints a pool file; backend extras are "key=value" separated by ';'.
pool_text() {
	local listen=$1 b name port extra balance='balance = roundrobin'
	shift
	printf '[pool]\nlisten = 127.0.0.1:%s\n' "$listen"
	while [[ $# -gt 0 && $1 != -- ]]; do
		printf '%s\n' "$1"
		[[ $1 != balance* ]] || balance=
		shift
	done
	[[ -z $balance ]] || printf '%s\n' "$balance"
	[[ ${1:-} == -- ]] && shift
	for b in "$@"; do
		IFS=: read -r name port extra <<<"$b"
		printf '\n[backend %s]\naddress = 127.0.0.1:%s\n' "$name" "$port"
		[[ -z $extra ]] || tr ';' '\n' <<<"$extra" | sed 's/=/ = /'
	done
}

# ask PORT: the name of the backend one new connection through PORT reaches.
ask() {
	"$HELPERS/names" --timeout 2000 "127.0.0.1:$1" 1
}

# wait_for_answer PORT NAME [TIMEOUT_S]: until a new connection reaches NAME.
wait_for_answer() {
	local port=$1 want=$2 deadline got
	deadline=$(($(now_ms) + $(ms_of "${3:-1}")))
	while :; do
		got=$(ask "$port" 2>/dev/null) || true
		[[ $got == "$want" ]] && return 0
		(($(now_ms) < deadline)) || fail "port $port answered '$got', not '$want', after ${3:-1}s" || return 1
		sleep 0.01
	done
}

# The tcpdist under test: backends a and b, the pool at $T/web.pool.
start_ab() {
	ports P PA PB
	start_namesrv a "127.0.0.1:$PA"
	start_namesrv b "127.0.0.1:$PB"
	pool_text "$P" "$@" -- "a:$PA" >"$T/web.pool"
	start_tcpdist "$T/web.pool" "${TCPDIST_ARGS[@]}"
	wait_for_answer "$P" a
}

fd_count() {
	ls "/proc/$1/fd" | wc -l
}

@test "reload: writing the file in place takes effect within 1 s" {
	start_ab
	pool_text "$P" -- "b:$PB" >"$T/web.pool"
	wait_for_answer "$P" b 1
	wait_for_file_line "$TCPDIST_LOG" 'reloaded: 1 backend, balance roundrobin \(added b; removed a\)'
}

@test "reload: a new file renamed over the pool takes effect within 1 s" {
	start_ab
	pool_text "$P" -- "b:$PB" >"$T/.web.pool.tmp"
	mv "$T/.web.pool.tmp" "$T/web.pool"
	wait_for_answer "$P" b 1
}

@test "reload: an editor's backup-and-rename takes effect within 1 s" {
	start_ab
	mv "$T/web.pool" "$T/web.pool~"
	pool_text "$P" -- "b:$PB" >"$T/web.pool"
	wait_for_answer "$P" b 1
	run ! grep -q 'reload failed' "$TCPDIST_LOG"
}

@test "reload: delete and recreate takes effect within 1 s; the pool stays while the file is gone" {
	start_ab
	rm "$T/web.pool"
	wait_for_file_line "$TCPDIST_LOG" 'is gone: keeping the last good pool' 1
	[ "$(ask "$P")" = a ]
	pool_text "$P" -- "b:$PB" >"$T/web.pool"
	wait_for_answer "$P" b 1
	run ! grep -q 'reload failed' "$TCPDIST_LOG"
}

@test "reload: delete and a hard link in its place (ln, no writer to close it) takes effect within 1 s" {
	start_ab
	pool_text "$P" -- "b:$PB" >"$T/staged.pool"
	rm "$T/web.pool"
	ln "$T/staged.pool" "$T/web.pool"
	wait_for_answer "$P" b 1
}

@test "reload: the pool's directory removed and made again: watching resumes, no SIGHUP needed" {
	ports P PA PB
	start_namesrv a "127.0.0.1:$PA"
	start_namesrv b "127.0.0.1:$PB"
	mkdir "$T/conf"
	pool_text "$P" -- "a:$PA" >"$T/conf/web.pool"
	start_tcpdist "$T/conf/web.pool"
	wait_for_answer "$P" a
	rm -r "$T/conf"
	wait_for_file_line "$TCPDIST_LOG" 'is gone: keeping the last good pool' 1
	mkdir "$T/conf"
	pool_text "$P" -- "b:$PB" >"$T/conf/.web.pool.tmp"
	mv "$T/conf/.web.pool.tmp" "$T/conf/web.pool"
	wait_for_answer "$P" b 3
	wait_for_file_line "$TCPDIST_LOG" "watching $T/conf again" 1
	# And later edits are seen as they happen.
	pool_text "$P" -- "a:$PA" >"$T/conf/.web.pool.tmp"
	mv "$T/conf/.web.pool.tmp" "$T/conf/web.pool"
	wait_for_answer "$P" a 1
}

@test "reload: a FIFO put at the pool's path is refused, not opened; tcpdist keeps serving and still stops on SIGTERM" {
	start_ab
	rm "$T/web.pool"
	mkfifo "$T/web.pool"
	wait_for_file_line "$TCPDIST_LOG" "reload failed, keeping the last good pool: $T/web.pool: not a regular file" 1
	[ "$(ask "$P")" = a ]
	run -2 timeout 5 "$TCPDIST" -n "$T/web.pool"
	[[ $output == *"not a regular file"* ]]
	rm "$T/web.pool"
	pool_text "$P" -- "b:$PB" >"$T/web.pool"
	wait_for_answer "$P" b 1
}

@test "reload: a Kubernetes ConfigMap symlink swap (..data replaced) takes effect within 1 s" {
	ports P PA PB
	start_namesrv a "127.0.0.1:$PA"
	start_namesrv b "127.0.0.1:$PB"
	mkdir "$T/cm" "$T/cm/..v1" "$T/cm/..v2"
	pool_text "$P" -- "a:$PA" >"$T/cm/..v1/web.pool"
	pool_text "$P" -- "b:$PB" >"$T/cm/..v2/web.pool"
	ln -s ..v1 "$T/cm/..data"
	ln -s ..data/web.pool "$T/cm/web.pool"
	start_tcpdist "$T/cm/web.pool"
	wait_for_answer "$P" a
	# What the kubelet does: a new link, renamed over ..data, old dir removed.
	ln -s ..v2 "$T/cm/..data_tmp"
	mv -T "$T/cm/..data_tmp" "$T/cm/..data"
	rm -r "$T/cm/..v1"
	wait_for_answer "$P" b 1
	# And once more, back to a, to show the watch followed the swap.
	mkdir "$T/cm/..v3"
	pool_text "$P" -- "a:$PA" >"$T/cm/..v3/web.pool"
	ln -s ..v3 "$T/cm/..data_tmp"
	mv -T "$T/cm/..data_tmp" "$T/cm/..data"
	wait_for_answer "$P" a 1
}

@test "reload: a pool that is a symlink to another directory follows edits there" {
	ports P PA PB
	start_namesrv a "127.0.0.1:$PA"
	start_namesrv b "127.0.0.1:$PB"
	mkdir "$T/etc" "$T/srv"
	pool_text "$P" -- "a:$PA" >"$T/srv/real.pool"
	ln -s ../srv/real.pool "$T/etc/web.pool"
	start_tcpdist "$T/etc/web.pool"
	wait_for_answer "$P" a
	pool_text "$P" -- "b:$PB" >"$T/srv/.real.tmp"
	mv "$T/srv/.real.tmp" "$T/srv/real.pool"
	wait_for_answer "$P" b 1
}

@test "reload: SIGHUP forces a reload" {
	start_ab
	kill -HUP "$TCPDIST_PID"
	wait_for_file_line "$TCPDIST_LOG" 'reloaded: 1 backend, balance roundrobin \(no changes\)' 1
}

@test "reload: invalid content is one log line with file, line and reason; the last good pool stays; the next valid write is taken" {
	start_ab
	printf '[pool]\nlisten = 127.0.0.1:%s\n\n[backend b]\naddress = 127.0.0.1:%s\nweight = 300\n' \
		"$P" "$PB" >"$T/web.pool"
	wait_for_file_line "$TCPDIST_LOG" "reload failed, keeping the last good pool: .*web.pool:6: weight: 300 is out of range" 1
	[ "$(grep -c 'reload failed' "$TCPDIST_LOG")" -eq 1 ]
	for _ in 1 2 3; do [ "$(ask "$P")" = a ]; done
	echo 'garbage line' >"$T/web.pool"
	wait_for_line_count "$TCPDIST_LOG" 'reload failed' 2 1
	[ "$(ask "$P")" = a ]
	pool_text "$P" -- "b:$PB" >"$T/web.pool"
	wait_for_answer "$P" b 1
	kill -0 "$TCPDIST_PID"
}

@test "reload: removing a backend keeps its established connection; new ones go elsewhere" {
	start_ab
	start_bg held "$HELPERS/hold" --every 100 "127.0.0.1:$P" 30
	wait_for_file_line "$T/held.out" '^line a$'
	pool_text "$P" -- "b:$PB" >"$T/web.pool"
	wait_for_answer "$P" b 1
	for _ in 1 2 3 4; do [ "$(ask "$P")" = b ]; done
	n=$(grep -c '^line ping$' "$T/held.out" || true)
	wait_for_line_count "$T/held.out" '^line ping$' $((n + 3)) 2
	run ! grep -q closed-by-peer "$T/held.out"
}

@test "reload: drain keeps established connections, sends new ones elsewhere; up brings it back" {
	start_ab
	pool_text "$P" -- "a:$PA" "b:$PB" >"$T/web.pool"
	wait_for_answer "$P" b 1
	start_bg held "$HELPERS/hold" --every 100 "127.0.0.1:$P" 30
	wait_for_file_line "$T/held.out" '^line (a|b)$'
	held=$(sed -n 's/^line \([ab]\)$/\1/p' "$T/held.out" | head -n 1)
	other=$([ "$held" = a ] && echo b || echo a)
	if [ "$held" = a ]; then
		pool_text "$P" -- "a:$PA:state=drain" "b:$PB" >"$T/web.pool"
	else
		pool_text "$P" -- "a:$PA" "b:$PB:state=drain" >"$T/web.pool"
	fi
	wait_for_file_line "$TCPDIST_LOG" "reloaded: 2 backends, balance roundrobin \(changed $held\)" 1
	for _ in 1 2 3 4 5 6; do [ "$(ask "$P")" = "$other" ]; done
	n=$(grep -c '^line ping$' "$T/held.out" || true)
	wait_for_line_count "$T/held.out" '^line ping$' $((n + 3)) 2
	pool_text "$P" -- "a:$PA" "b:$PB" >"$T/web.pool"
	wait_for_answer "$P" "$held" 1
	run ! grep -q closed-by-peer "$T/held.out"
}

@test "reload: weight 0 and state down take a backend out of new connections; weights apply to the next connection" {
	start_ab
	pool_text "$P" -- "a:$PA:weight=0" "b:$PB" >"$T/web.pool"
	wait_for_answer "$P" b 1
	for _ in 1 2 3 4; do [ "$(ask "$P")" = b ]; done
	pool_text "$P" -- "a:$PA" "b:$PB:state=down" >"$T/web.pool"
	wait_for_answer "$P" a 1
	for _ in 1 2 3 4; do [ "$(ask "$P")" = a ]; done
	pool_text "$P" -- "a:$PA:weight=1" "b:$PB:weight=3" >"$T/web.pool"
	wait_for_file_line "$TCPDIST_LOG" 'reloaded: 2 backends.*changed b' 1
	"$HELPERS/names" "127.0.0.1:$P" 400 >"$T/names"
	[ "$(grep -c '^a$' "$T/names")" -eq 100 ]
	[ "$(grep -c '^b$' "$T/names")" -eq 300 ]
}

@test "reload: listen changes open new listeners and close removed ones; established connections stay" {
	start_ab
	ports P2
	start_bg held "$HELPERS/hold" --every 100 "127.0.0.1:$P" 30
	wait_for_file_line "$T/held.out" '^line a$'
	pool_text "$P2" -- "a:$PA" >"$T/web.pool"
	wait_for_file_line "$TCPDIST_LOG" "listening on 127.0.0.1:$P2" 1
	wait_for_file_line "$TCPDIST_LOG" "no longer listening on 127.0.0.1:$P\$" 1
	[ "$(ask "$P2")" = a ]
	run "$HELPERS/probe" "127.0.0.1:$P"
	[[ $output == refused* ]]
	n=$(grep -c '^line ping$' "$T/held.out" || true)
	wait_for_line_count "$T/held.out" '^line ping$' $((n + 3)) 2
	run ! grep -q closed-by-peer "$T/held.out"
}

@test "reload: a listen address moved within its port (127.0.0.1:P to 0.0.0.0:P and back) is taken with -j 2, and clients meanwhile are served" {
	TCPDIST_ARGS=(-j 2)
	start_ab
	# Clients one after another for the whole time: none may be refused.
	start_bg clients "$HELPERS/names" --timeout 2000 "127.0.0.1:$P" 3000
	local listen n=0
	for listen in "0.0.0.0:$P" "127.0.0.1:$P" "0.0.0.0:$P"; do
		sed "s/^listen = .*/listen = $listen/" "$T/web.pool" >"$T/next"
		mv "$T/next" "$T/web.pool"
		n=$((n + 1))
		wait_for_line_count "$TCPDIST_LOG" "reloaded: 1 backend" "$n" 2
		grep -q "no longer listening on" "$TCPDIST_LOG"
	done
	run ! grep -q "reload failed" "$TCPDIST_LOG"
	[ "$(grep -c "tcpdist: listening on 0.0.0.0:$P\$" "$TCPDIST_LOG")" -eq 2 ]
	# The old sockets close once their backlog is drained (up to 0.5 s).
	local deadline=$(($(now_ms) + 2000))
	until [ "$(ss -Hltn "sport = :$P" | awk '{ print $4 }' | sort -u)" = "0.0.0.0:$P" ]; do
		(($(now_ms) < deadline)) || fail "still listening: $(ss -Hltn "sport = :$P")" || return 1
		sleep 0.02
	done
	wait_for_exit clients 30
	run ! grep -v '^a$' "$T/clients.out"
	[ "$EXIT_STATUS" -eq 0 ]
	[ "$(ask "$P")" = a ]
}

@test "listen = [::]:P takes IPv4 clients as well; beside 0.0.0.0:P each family has a socket of its own" {
	free_port 1 -6 >/dev/null 2>&1 || skip "::1 is not available"
	ports P PA
	start_namesrv a "127.0.0.1:$PA"
	printf '[pool]\nlisten = [::]:%s\n[backend a]\naddress = 127.0.0.1:%s\n' "$P" "$PA" >"$T/web.pool"
	start_tcpdist "$T/web.pool"
	[ "$(ask "$P")" = a ]
	[ "$("$HELPERS/names" --timeout 2000 "[::1]:$P" 1)" = a ]
	printf '[pool]\nlisten = [::]:%s\nlisten = 0.0.0.0:%s\n[backend a]\naddress = 127.0.0.1:%s\n' \
		"$P" "$P" "$PA" >"$T/web.pool"
	wait_for_file_line "$TCPDIST_LOG" "listening on 0.0.0.0:$P\$" 2
	run ! grep -q "reload failed" "$TCPDIST_LOG"
	[ "$(ask "$P")" = a ]
	[ "$("$HELPERS/names" --timeout 2000 "[::1]:$P" 1)" = a ]
	[ "$(ss -Hltn "sport = :$P" | wc -l)" -eq 2 ]
	# The same two listen lines from the start.
	run -0 "$TCPDIST" -n "$T/web.pool"
}

@test "reload: a listen address already in use refuses the reload and keeps everything" {
	start_ab
	ports PX
	start_namesrv squatter "127.0.0.1:$PX"
	printf '[pool]\nlisten = 127.0.0.1:%s\nlisten = 127.0.0.1:%s\n[backend b]\naddress = 127.0.0.1:%s\n' \
		"$P" "$PX" "$PB" >"$T/web.pool"
	wait_for_file_line "$TCPDIST_LOG" "reload failed, keeping the last good pool: listen 127.0.0.1:$PX: Address already in use" 1
	[ "$(ask "$P")" = a ]
}

@test "reload: unchanged backends keep their counters and health; a changed address starts afresh" {
	ports P PA PB PM
	TCPDIST_ARGS=(--metrics "127.0.0.1:$PM")
	start_namesrv a "127.0.0.1:$PA"
	start_namesrv b "127.0.0.1:$PB"
	pool_text "$P" -- "a:$PA" >"$T/web.pool"
	start_tcpdist "$T/web.pool" "${TCPDIST_ARGS[@]}"
	"$HELPERS/names" "127.0.0.1:$P" 5 >/dev/null
	curl -sf "http://127.0.0.1:$PM/metrics" >"$T/m0"
	grep -q '^tcpdist_backend_connections_total{backend="a"} 5$' "$T/m0"
	pool_text "$P" -- "a:$PA" "b:$PB" >"$T/web.pool"
	wait_for_answer "$P" b 1
	curl -sf "http://127.0.0.1:$PM/metrics" >"$T/m1"
	grep -Eq '^tcpdist_backend_connections_total\{backend="a"\} ([5-9]|[1-9][0-9])$' "$T/m1"
	pool_text "$P" -- "a:$PB" "b:$PB" >"$T/web.pool"
	wait_for_file_line "$TCPDIST_LOG" 'changed a' 1
	curl -sf "http://127.0.0.1:$PM/metrics" >"$T/m2"
	grep -q '^tcpdist_backend_connections_total{backend="a"} 0$' "$T/m2"
	grep -q '^tcpdist_backend_connections_total{backend="b"} [1-9]' "$T/m2"
	grep -q '^tcpdist_reloads_total 2$' "$T/m2"
}

@test "health: active checks take a dead backend out after check_fall and bring it back after check_rise" {
	start_ab 'check_interval = 100ms' 'check_rise = 2' 'check_fall = 2'
	pool_text "$P" 'check_interval = 100ms' 'check_rise = 2' 'check_fall = 2' -- "a:$PA" "b:$PB" >"$T/web.pool"
	wait_for_answer "$P" b 1
	stop_bg b KILL
	wait_for_file_line "$TCPDIST_LOG" "backend b 127.0.0.1:$PB is down: 2 checks failed in a row \(connection refused\)" 2
	"$HELPERS/names" "127.0.0.1:$P" 20 >"$T/names"
	[ "$(grep -c '^a$' "$T/names")" -eq 20 ]
	run ! grep -q "trying another" "$TCPDIST_LOG"
	start_namesrv b "127.0.0.1:$PB"
	wait_for_file_line "$TCPDIST_LOG" "backend b 127.0.0.1:$PB is up: 2 checks passed" 2
	wait_for_answer "$P" b 1
	[ "$(grep -c "backend b .* is down" "$TCPDIST_LOG")" -eq 1 ]
	[ "$(grep -c "backend b .* is up" "$TCPDIST_LOG")" -eq 1 ]
}

@test "health: passive failures count; 'no backend available' is logged when it happens and when it ends" {
	start_ab 'check_interval = 1h' 'check_fall = 2' 'check_rise = 1' 'retries = 0'
	stop_bg a KILL
	run "$HELPERS/names" "127.0.0.1:$P" 2
	wait_for_file_line "$TCPDIST_LOG" "backend a 127.0.0.1:$PA is down: 2 connection attempts failed in a row \(connection refused\)" 1
	wait_for_file_line "$TCPDIST_LOG" 'no backend available: all 1 backend is down, drained or of weight 0' 1
	run "$HELPERS/probe" "127.0.0.1:$P"
	[[ $output == reset* ]]
	wait_for_file_line "$TCPDIST_LOG" 'no backend available \(none is up\)' 1
	# The file brings a healthy backend: available again.
	pool_text "$P" 'check_interval = 1h' 'check_fall = 2' -- "a:$PA" "b:$PB" >"$T/web.pool"
	wait_for_file_line "$TCPDIST_LOG" 'backends available again: 1 of 2' 1
	[ "$(ask "$P")" = b ]
	[ "$(grep -c 'no backend available: all' "$TCPDIST_LOG")" -eq 1 ]
}

@test "health: checks turned off while a connect is pending: its failure cannot leave the backend down for good" {
	ports P PB
	start_bg hole "$HELPERS/blackhole" "127.0.0.1:$PB"
	wait_for_file_line "$T/hole.out" '^ready$'
	pool_text "$P" 'check_interval = 1h' 'check_fall = 1' 'connect_timeout = 1s' 'retries = 0' \
		-- "b:$PB" >"$T/web.pool"
	start_tcpdist "$T/web.pool"
	# A client whose connect to b hangs, then the pool turns checks off.
	"$HELPERS/probe" --timeout 3000 "127.0.0.1:$P" >"$T/probe" 2>&1 &
	local probe=$! deadline=$(($(now_ms) + 2000))
	until ss -Htn state syn-sent "dport = :$PB" | grep -q .; do
		(($(now_ms) < deadline)) || fail "tcpdist never tried b"
		sleep 0.01
	done
	pool_text "$P" 'check_interval = 0' 'check_fall = 1' 'connect_timeout = 1s' 'retries = 0' \
		-- "b:$PB" >"$T/web.pool"
	wait_for_file_line "$TCPDIST_LOG" 'reloaded' 1
	wait "$probe" || true
	wait_for_file_line "$TCPDIST_LOG" "backend b 127.0.0.1:$PB: health checks are off, taking it as up" 2
	stop_bg hole KILL
	start_namesrv b "127.0.0.1:$PB"
	wait_for_answer "$P" b 2
}

@test "health: kill -9 of a backend under load: no new client fails, its established connection ends cleanly, it is back after check_rise" {
	ports P PA PB PC
	start_namesrv a "127.0.0.1:$PA"
	start_namesrv b "127.0.0.1:$PB"
	start_namesrv c "127.0.0.1:$PC"
	pool_text "$P" 'check_interval = 200ms' 'check_rise = 2' 'check_fall = 2' -- \
		"a:$PA" "b:$PB" "c:$PC" >"$T/web.pool"
	start_tcpdist "$T/web.pool"
	start_bg heldb "$HELPERS/hold" --every 100 "127.0.0.1:$P" 30
	start_bg heldc "$HELPERS/hold" --every 100 "127.0.0.1:$P" 30
	start_bg helda "$HELPERS/hold" --every 100 "127.0.0.1:$P" 30
	wait_for_file_line "$T/heldb.out" '^line ping$'
	wait_for_file_line "$T/heldc.out" '^line ping$'
	wait_for_file_line "$T/helda.out" '^line ping$'
	victim=$(sed -n 's/^line \([abc]\)$/\1/p' "$T/heldb.out")
	start_bg load "$HELPERS/names" --parallel 4 --send check "127.0.0.1:$P" 1000
	wait_for_file_line "$T/load.out" '^[abc]$'
	stop_bg "$victim" KILL
	# Every connection that starts once it is dead is served.
	"$HELPERS/names" --parallel 4 --send check "127.0.0.1:$P" 600 >"$T/after.out"
	[ "$(grep -c '^[abc]$' "$T/after.out")" -eq 600 ]
	wait_for_file_line "$T/heldb.out" 'closed-by-peer' 2
	wait_for_file_line "$TCPDIST_LOG" "backend $victim .* is down" 3
	# Under way when it died: only connections it carried may end, by a reset.
	wait_for_exit load 60
	run ! grep -Ev "^([abc]|ERROR after [0-9]+ bytes: Connection reset by peer)$" "$T/load.out"
	[ "$(grep -c "^ERROR" "$T/load.out" || true)" -le 4 ]
	# Restarted, it gets traffic again once check_rise checks passed.
	start_namesrv "$victim" "127.0.0.1:$(eval echo \$P${victim^^})"
	wait_for_file_line "$TCPDIST_LOG" "backend $victim .* is up: 2 checks passed" 3
	wait_for_answer "$P" "$victim" 1
}

@test "limits: the pool's max_conns holds new clients in the backlog until a connection ends" {
	start_ab 'max_conns = 2'
	start_bg h1 "$HELPERS/hold" "127.0.0.1:$P" 30
	start_bg h2 "$HELPERS/hold" "127.0.0.1:$P" 30
	wait_for_file_line "$T/h1.out" '^line a$'
	wait_for_file_line "$T/h2.out" '^line a$'
	start_bg h3 "$HELPERS/hold" "127.0.0.1:$P" 30
	wait_for_file_line "$T/h3.out" '^connected$'
	run ! wait_for_file_line "$T/h3.out" '^line a$' 0.5
	stop_bg h1 KILL
	wait_for_file_line "$T/h3.out" '^line a$' 2
}

@test "limits: a backend at its max_conns is skipped for the next in the client's order" {
	start_ab
	pool_text "$P" 'balance = hash' -- "a:$PA:max_conns=1" "b:$PB:max_conns=1" >"$T/web.pool"
	wait_for_file_line "$TCPDIST_LOG" 'reloaded' 1
	# start_ab's connection to a has ended: it would hold a's one place
	# (seen once under the sanitizers, the close still on its way).
	wait_for_established "$PA" 0 2
	start_bg h1 "$HELPERS/hold" "127.0.0.1:$P" 30
	wait_for_file_line "$T/h1.out" '^line [ab]$'
	first=$(sed -n 's/^line //p' "$T/h1.out")
	other=$([ "$first" = a ] && echo b || echo a)
	for _ in 1 2 3; do [ "$(ask "$P")" = "$other" ]; done
}

@test "limits: every available backend at its max_conns is refused as max_conns, not as none up" {
	ports PM
	TCPDIST_ARGS=(--metrics "127.0.0.1:$PM")
	start_ab
	pool_text "$P" -- "a:$PA:max_conns=1" "b:$PB:max_conns=1" >"$T/web.pool"
	wait_for_file_line "$TCPDIST_LOG" 'reloaded' 1
	start_bg h1 "$HELPERS/hold" "127.0.0.1:$P" 30
	start_bg h2 "$HELPERS/hold" "127.0.0.1:$P" 30
	wait_for_file_line "$T/h1.out" '^line [ab]$'
	wait_for_file_line "$T/h2.out" '^line [ab]$'
	run ask "$P"
	[ "$status" -ne 0 ]
	wait_for_file_line "$TCPDIST_LOG" 'no backend available \(every available backend is at its max_conns\)' 2
	run grep -c 'none is up' "$TCPDIST_LOG"
	[ "$output" = 0 ]
	curl -sf "http://127.0.0.1:$PM/metrics" >"$T/metrics"
	grep -qx 'tcpdist_connections_failed_total{reason="max_conns"} 1' "$T/metrics"
	grep -qx 'tcpdist_connections_failed_total{reason="no_backend"} 0' "$T/metrics"
}

@test "limits: under ulimit -n 64 (and 65), 300 clients at once are all served; accept pauses and resumes without spinning" {
	ports P PA
	start_namesrv a "127.0.0.1:$PA"
	pool_text "$P" -- "a:$PA" >"$T/web.pool"
	# Whether accept(2) or a backend's socket(2) is the call that runs out
	# depends on the parity of the descriptors in use: both limits are tried.
	for limit in 64 65; do
		TCPDIST_LOG="$T/tcpdist$limit.err"
		start_bg "tcpdist$limit" bash -c 'ulimit -n "$1" && exec "$0" "$2"' "$TCPDIST" "$limit" "$T/web.pool"
		TCPDIST_PID=${BG_PID[tcpdist$limit]}
		wait_for_file_line "$TCPDIST_LOG" 'listening on'
		# Each client stays connected 300 ms, so far more than 64 descriptors are wanted at once.
		"$HELPERS/names" --parallel 300 --hold 300 --timeout 30000 --send hello "127.0.0.1:$P" 300 >"$T/names"
		[ "$(grep -c '^a$' "$T/names")" -eq 300 ]
		grep -q 'out of file descriptors: pausing accept' "$TCPDIST_LOG"
		kill -0 "$TCPDIST_PID"
		# Not spinning: idle again, it uses no CPU over half a second.
		read -r -a s1 <"/proc/$TCPDIST_PID/stat"
		sleep 0.5
		read -r -a s2 <"/proc/$TCPDIST_PID/stat"
		[ $(((s2[13] + s2[14]) - (s1[13] + s1[14]))) -le 5 ]
		[ "$(ask "$P")" = a ]
		stop_bg "tcpdist$limit"
	done
}

@test "metrics: out of descriptors, a scrape waits without spinning and is answered once some are free" {
	ports P PA PM
	start_namesrv a "127.0.0.1:$PA"
	pool_text "$P" -- "a:$PA" >"$T/web.pool"
	TCPDIST_LOG="$T/tcpdist.err"
	start_bg tcpdist bash -c 'ulimit -n 40 && exec "$0" --metrics "$1" "$2"' "$TCPDIST" \
		"127.0.0.1:$PM" "$T/web.pool"
	TCPDIST_PID=${BG_PID[tcpdist]}
	wait_for_file_line "$TCPDIST_LOG" 'listening on'
	# 30 clients held for 3 s want 60 descriptors: none is left for a scrape.
	start_bg holders "$HELPERS/names" --parallel 30 --hold 3000 --timeout 30000 --send hi \
		"127.0.0.1:$P" 30
	wait_for_file_line "$TCPDIST_LOG" 'out of file descriptors: pausing accept' 3
	run curl -s --max-time 1 "http://127.0.0.1:$PM/metrics"
	read -r -a s1 <"/proc/$TCPDIST_PID/stat"
	sleep 0.5
	read -r -a s2 <"/proc/$TCPDIST_PID/stat"
	echo "# CPU ticks over 0.5 s while out of descriptors: $(((s2[13] + s2[14]) - (s1[13] + s1[14])))" >&3
	[ $(((s2[13] + s2[14]) - (s1[13] + s1[14]))) -le 10 ]
	wait_for_exit holders 30
	local deadline=$(($(now_ms) + 5000))
	until curl -sf --max-time 1 -o "$T/metrics" "http://127.0.0.1:$PM/metrics"; do
		(($(now_ms) < deadline)) || fail "no scrape answered once descriptors were free"
		sleep 0.1
	done
	grep -q '^tcpdist_connections_accepted_total' "$T/metrics"
}

@test "metrics: promtool accepts the exposition and the counters match what was done" {
	ports P PA PB PM
	start_namesrv a "127.0.0.1:$PA"
	pool_text "$P" -- "a:$PA" "b:$PB" >"$T/web.pool"
	start_tcpdist "$T/web.pool" --metrics "127.0.0.1:$PM"
	"$HELPERS/names" --send 0123456789 "127.0.0.1:$P" 10 >"$T/names" || true
	echo 'weight = 500' >>"$T/web.pool"
	wait_for_file_line "$TCPDIST_LOG" 'reload failed' 1
	pool_text "$P" -- "a:$PA" >"$T/web.pool"
	wait_for_file_line "$TCPDIST_LOG" 'reloaded' 1
	curl -sf "http://127.0.0.1:$PM/metrics" >"$T/metrics"
	promtool check metrics <"$T/metrics"
	m() { awk -v k="$1" '$1 == k { print $2 }' "$T/metrics"; }
	[ "$(m tcpdist_connections_accepted_total)" -eq 10 ]
	[ "$(m tcpdist_connections_active)" -eq 0 ]
	# b refuses: those clients were retried on a, so nothing failed.
	[ "$(m 'tcpdist_connections_failed_total{reason="connect"}')" -eq 0 ]
	[ "$(m 'tcpdist_backend_connections_total{backend="a"}')" -eq 10 ]
	[ "$(m tcpdist_bytes_in_total)" -eq 110 ]
	[ "$(m tcpdist_bytes_out_total)" -eq 130 ]
	[ "$(m tcpdist_reloads_total)" -eq 1 ]
	[ "$(m tcpdist_reload_failures_total)" -eq 1 ]
	[ "$(m 'tcpdist_backend_up{backend="a",address="127.0.0.1:'$PA'"}')" -eq 1 ]
	[ "$(m 'tcpdist_backend_state{backend="a",state="up"}')" -eq 1 ]
	grep -q '^tcpdist_last_reload_success_timestamp_seconds [0-9]*\.[0-9]*$' "$T/metrics"
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PM/nothing")" = 404 ]
}

@test "--log-connections: one line per finished connection, strict logfmt in every format, with its time on a plain stream" {
	ports P PA
	start_namesrv a "127.0.0.1:$PA"
	pool_text "$P" -- "a:$PA" >"$T/web.pool"
	start_tcpdist "$T/web.pool" --log-connections
	"$HELPERS/names" --send hello "127.0.0.1:$P" 3 >/dev/null
	local ts='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'
	wait_for_line_count "$TCPDIST_LOG" \
		"^$ts tcpdist: connection client=127\.0\.0\.1:[0-9]+ listener=127\.0\.0\.1:$P backend=a address=127\.0\.0\.1:$PA in=6 out=8 connect=[0-9]+\.[0-9]{3} retries=0 duration=[0-9]+\.[0-9]{3} close=client-close$" 3 1
	pool_text "$P" -- "a:$PA:state=drain" >"$T/web.pool"
	wait_for_file_line "$TCPDIST_LOG" reloaded 1
	"$HELPERS/probe" "127.0.0.1:$P" >/dev/null
	wait_for_file_line "$TCPDIST_LOG" 'connection client=127\.0\.0\.1:[0-9]+ listener=[^ ]+ backend=- address=- in=0 out=0 connect=0\.000 retries=0 duration=[0-9.]+ close=no-backend$' 1
	# No key is a part of another: a search for one never finds another.
	local keys=$(grep -m1 'connection client=' "$TCPDIST_LOG" | grep -oE ' [a-z_]+=' | tr -d ' =')
	[ -n "$keys" ]
	for k in $keys; do
		for o in $keys; do
			[[ $k == "$o" || $o != *"$k"* ]] || fail "key $k is part of key $o" || return 1
		done
	done
	stop_bg tcpdist TERM
	# logfmt and json: the same fields, one object or one logfmt record a line.
	start_tcpdist "$T/web.pool" --log-connections --log-format logfmt
	"$HELPERS/probe" "127.0.0.1:$P" >/dev/null
	wait_for_file_line "$TCPDIST_LOG" "^time=$ts level=info msg=connection client=127\.0\.0\.1:[0-9]+ listener=127\.0\.0\.1:$P backend=- address=- in=0 out=0 connect=0\.000 retries=0 duration=[0-9.]+ close=no-backend$" 2
	grep -Eq "^time=$ts level=info msg=\"listening on 127\.0\.0\.1:$P\"$" "$TCPDIST_LOG"
	stop_bg tcpdist TERM
	pool_text "$P" -- "a:$PA" >"$T/web.pool"
	start_tcpdist "$T/web.pool" --log-connections --log-format json
	"$HELPERS/names" --send hello "127.0.0.1:$P" 1 >/dev/null
	wait_for_file_line "$TCPDIST_LOG" '"msg":"connection"' 2
	jq -se 'all(.[]; has("time") and has("level") and has("msg")) and
		(map(select(.msg == "connection"))[0] | .backend == "a" and .in == 6 and .out == 8 and
		 .retries == 0 and (.duration | type) == "number" and .close == "client-close")' "$TCPDIST_LOG"
	stop_bg tcpdist TERM
	# Under systemd's journal: no time, the journal keeps its own.
	TCPDIST_LOG=$T/journal.err
	start_bg journal bash -c 'exec 2>"$0"; read -r dev ino < <(stat -c "%d %i" "$0");
		JOURNAL_STREAM=$dev:$ino exec "$1" "$2"' "$TCPDIST_LOG" "$TCPDIST" "$T/web.pool"
	wait_for_file_line "$TCPDIST_LOG" '^tcpdist: listening on ' 2
}

@test "reload under load: 200 rewrites while checksummed traffic flows: no failure, no corruption, no fd leak" {
	ports P P1 P2 P3 P4
	for i in 1 2 3 4; do
		eval "port=\$P$i"
		start_bg "srv$i" "$HELPERS/blast" server "127.0.0.1:$port" --bytes 20000
	done
	pool_text "$P" -- "s1:$P1" "s2:$P2" >"$T/web.pool"
	start_tcpdist "$T/web.pool"
	for i in 1 2 3 4; do eval "wait_for_port \$P$i"; done
	fds_before=$(fd_count "$TCPDIST_PID")
	# The writer: 200 versions, every one with at least one backend up.
	(
		for v in $(seq 1 200); do
			case $((v % 10)) in
			0) printf '[pool]\nlisten = 127.0.0.1:%s\nweight = 1\n' "$P" ;;
			1) pool_text "$P" -- "s1:$P1" "s2:$P2" "s3:$P3" ;;
			2) pool_text "$P" -- "s2:$P2:weight=3" "s3:$P3" ;;
			3) pool_text "$P" -- "s1:$P1:state=drain" "s3:$P3" "s4:$P4:weight=2" ;;
			4) pool_text "$P" 'balance = leastconn' -- "s4:$P4" "s1:$P1" ;;
			5) pool_text "$P" 'balance = hash' -- "s1:$P1" "s2:$P2:state=down" "s3:$P3" ;;
			6) pool_text "$P" -- "s2:$P2:weight=0" "s3:$P3" ;;
			7) pool_text "$P" 'balance = random' -- "s1:$P1" "s2:$P2" "s3:$P3" "s4:$P4" ;;
			8) pool_text "$P" -- "s4:$P4:weight=5" "s2:$P2" ;;
			9) pool_text "$P" -- "s3:$P3" ;;
			esac >"$T/.web.pool.$v"
			if ((v % 2)); then
				mv "$T/.web.pool.$v" "$T/web.pool"
			else
				cat "$T/.web.pool.$v" >"$T/web.pool"
				rm "$T/.web.pool.$v"
			fi
			sleep 0.02
		done
	) &
	writer=$!
	BG_PIDS+=("$writer")
	round=0
	while pid_alive "$writer" || ((round < 3)); do
		"$HELPERS/blast" client "127.0.0.1:$P" --conns 10 --bytes 20000 \
			--first-id $((round * 10)) >>"$T/clients" || fail "a client failed in round $round" || return 1
		round=$((round + 1))
		((round < 400)) || break
	done
	wait "$writer"
	bg_forget "$writer"
	wait_for_line_count "$TCPDIST_LOG" 'reload failed' 20 2
	total=$((round * 10))
	echo "# $total connections during 200 rewrites" >&3
	[ "$(wc -l <"$T/clients")" -eq "$total" ]
	cat "$T"/srv*.out | grep -v '^ready$' >"$T/servers" || true
	[ "$(wc -l <"$T/servers")" -eq "$total" ] ||
		fail "$total client connections, $(wc -l <"$T/servers") server ones"
	# Client: ID SENT RECEIVED_BYTES RECEIVED; server: ID RECEIVED_BYTES RECEIVED SENT.
	bad=$(join <(awk '{print $1, $2, $3, $4}' "$T/clients" | sort) \
		<(awk '{print $1, $2, $3, $4}' "$T/servers" | sort) |
		awk '$2 != $6 || $3 != 20000 || $5 != 20000 || $4 != $7' | wc -l)
	[ "$bad" -eq 0 ]
	wait_for_established "$P" 0 2
	fds_after=$(fd_count "$TCPDIST_PID")
	[ "$fds_after" -le "$fds_before" ] || fail "fds: $fds_before before, $fds_after after"
}

@test "--log-connections: in a pool with backups each line says the tier its backend is in" {
	ports P PA PB
	start_namesrv a "127.0.0.1:$PA"
	start_namesrv b "127.0.0.1:$PB"
	pool_text "$P" 'check_interval = 0' -- "a:$PA" "b:$PB:backup=yes" >"$T/web.pool"
	start_tcpdist "$T/web.pool" --log-connections
	[ "$(ask "$P")" = a ]
	wait_for_file_line "$TCPDIST_LOG" "connection client=[^ ]+ listener=[^ ]+ backend=a address=127\.0\.0\.1:$PA tier=primary in=" 2
	pool_text "$P" 'check_interval = 0' -- "a:$PA:state=down" "b:$PB:backup=yes" >"$T/web.pool"
	wait_for_file_line "$TCPDIST_LOG" reloaded 2
	[ "$(ask "$P")" = b ]
	wait_for_file_line "$TCPDIST_LOG" "connection client=[^ ]+ listener=[^ ]+ backend=b address=127\.0\.0\.1:$PB tier=backup in=" 2
}
