#!/usr/bin/env bats
# Health that understands the service: send-expect and HTTP checks against
# the real servers users run (redis-server, nginx), backup tiers, slow
# start, on_down = shutdown, hostile check peers; and what tcppool and
# tcphash make of the keys. Loopback only; every wait polls with a deadline.

bats_require_minimum_version 1.5.0
load 'helpers'

: "${TCPHASH:=$BATS_TEST_DIRNAME/../bin/tcphash}"
: "${TCPPOOL:=$BATS_TEST_DIRNAME/../bin/tcppool}"

setup() {
	require_helpers
	[[ -x $HELPERS/checkpeer ]] || fail "$HELPERS/checkpeer missing: run 'make helpers'"
	T=$BATS_TEST_TMPDIR
}

# As tcpdist_live.bats: a test that passed also proves a clean stop.
teardown() {
	tcpdist_teardown
}

# ask PORT: the name of the backend one new connection through PORT reaches.
ask() {
	"$HELPERS/names" --timeout 2000 "127.0.0.1:$1" 1
}

# asks PORT N: the names N new connections reach, one per line.
asks() {
	"$HELPERS/names" --timeout 2000 "127.0.0.1:$1" "$2"
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

metrics() {
	curl -sf --max-time 2 "http://127.0.0.1:$PM/metrics"
}

# --- redis -------------------------------------------------------------------

# start_redis NAME PORT [ARGS...]: a redis-server of its own, ready on return.
start_redis() {
	local name=$1 port=$2
	shift 2
	mkdir -p "$T/$name"
	start_bg "$name" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
		--dir "$T/$name" --protected-mode no "$@"
	wait_for_port "$port" 5
}

# The port of the redis-server a new connection through tcpdist reaches.
redis_port() {
	redis-cli -p "$1" --no-raw config get port 2>/dev/null | sed -n '2s/^[0-9]*) "\(.*\)"$/\1/p'
}

redis_pool() {
	cat <<-EOF
		[pool]
		listen = 127.0.0.1:$P
		balance = roundrobin
		check_interval = 300ms
		check_timeout = 250ms
		check_rise = 2
		check_fall = 2
		on_down = shutdown
		check = send-expect
		check_send = PING\r\n
		check_expect = +PONG
		check_send = INFO replication\r\n
		check_expect = role:master

		[backend r1]
		address = 127.0.0.1:$R1

		[backend r2]
		address = 127.0.0.1:$R2
	EOF
}

@test "redis: only the master gets new connections; after REPLICAOF failover every new one goes to the new master within interval x (fall + rise) + 1 s; on_down = shutdown resets the old master's sessions" {
	command -v redis-server >/dev/null || fail "redis-server missing (scripts/deps.sh check installs it)"
	ports P R1 R2
	start_redis r1 "$R1"
	start_redis r2 "$R2" --replicaof 127.0.0.1 "$R1"
	redis_pool >"$T/redis.pool"
	start_tcpdist "$T/redis.pool"
	wait_for_file_line "$TCPDIST_LOG" "backend r2 127\.0\.0\.1:$R2 is down: 2 checks failed in a row \(expected 'role:master', got '.*role:slave.*' \(timeout after 250ms\)\)" 5
	for i in 1 2 3 4 5 6; do
		[ "$(redis_port "$P")" = "$R1" ]
	done
	run ! grep -q "backend r1 .* is down" "$TCPDIST_LOG"
	# A session to the master, held open.
	exec {held}<>"/dev/tcp/127.0.0.1/$P"
	printf 'PING\r\n' >&"$held"
	read -r -t 2 -u "$held" line
	[[ $line == +PONG* ]]

	# Failover: the replica is promoted, the master demoted.
	redis-cli -p "$R2" replicaof no one >/dev/null
	redis-cli -p "$R1" replicaof 127.0.0.1 "$R2" >/dev/null
	local t0 deadline streak=0 took
	t0=$(now_ms)
	deadline=$((t0 + 300 * (2 + 2) + 1000))
	until ((streak == 6)); do
		if [[ $(redis_port "$P") == "$R2" ]]; then
			streak=$((streak + 1))
		else
			streak=0
			(($(now_ms) < deadline)) || fail "new connections not all on the new master after $(($(now_ms) - t0)) ms"
		fi
	done
	took=$(($(now_ms) - t0))
	echo "# every new connection on the new master after ${took} ms" >&3
	wait_for_file_line "$TCPDIST_LOG" "backend r1 127\.0\.0\.1:$R1 is down: 2 checks failed in a row \(expected 'role:master'" 1
	wait_for_file_line "$TCPDIST_LOG" "backend r2 127\.0\.0\.1:$R2 is up: 2 checks passed" 1
	# The session to the old master was reset (and any redis-cli of the loop
	# above that was on it then).
	wait_for_file_line "$TCPDIST_LOG" "backend r1: on_down = shutdown: [1-9][0-9]* connections? reset" 2
	printf 'PING\r\n' >&"$held" 2>/dev/null || true
	if read -r -t 2 -u "$held" line; then
		fail "the old master's session still answers: '$line'"
	fi
	exec {held}>&-
}

@test "redis: with on_down = keep (the default) the old master's sessions stay" {
	command -v redis-server >/dev/null || fail "redis-server missing"
	ports P R1 R2
	start_redis r1 "$R1"
	start_redis r2 "$R2" --replicaof 127.0.0.1 "$R1"
	redis_pool | sed '/^on_down/d' >"$T/redis.pool"
	start_tcpdist "$T/redis.pool"
	wait_for_file_line "$TCPDIST_LOG" "backend r2 .* is down" 5
	exec {held}<>"/dev/tcp/127.0.0.1/$P"
	printf 'PING\r\n' >&"$held"
	read -r -t 2 -u "$held" line
	[[ $line == +PONG* ]]
	redis-cli -p "$R2" replicaof no one >/dev/null
	redis-cli -p "$R1" replicaof 127.0.0.1 "$R2" >/dev/null
	wait_for_file_line "$TCPDIST_LOG" "backend r1 .* is down" 3
	printf 'PING\r\n' >&"$held"
	read -r -t 2 -u "$held" line
	[[ $line == +PONG* ]]
	exec {held}>&-
	run ! grep -q "on_down = shutdown" "$TCPDIST_LOG"
}

# --- HTTP --------------------------------------------------------------------

@test "http: a check on a side port against nginx: the 200 backend is up, the 503 one down with the status in the log and the metrics" {
	command -v nginx >/dev/null || fail "nginx missing (scripts/deps.sh check installs it)"
	ports P PA PB H PM
	mkdir -p "$T/nginx"
	cat >"$T/nginx/nginx.conf" <<-EOF
		daemon off;
		master_process off;
		worker_processes 1;
		pid $T/nginx/nginx.pid;
		error_log $T/nginx/error.log;
		events { worker_connections 64; }
		http {
		    log_format check '\$request_method \$request_uri \$server_protocol host=\$http_host';
		    access_log $T/nginx/access.log check;
		    client_body_temp_path $T/nginx;
		    proxy_temp_path $T/nginx;
		    fastcgi_temp_path $T/nginx;
		    uwsgi_temp_path $T/nginx;
		    scgi_temp_path $T/nginx;
		    server { listen 127.0.0.1:$H; location / { return 200 "primary\n"; } }
		    server { listen 127.0.0.2:$H; location / { return 503 "replica\n"; } }
		}
	EOF
	start_bg nginx nginx -e "$T/nginx/error.log" -p "$T/nginx" -c "$T/nginx/nginx.conf"
	wait_for_port "$H" 5
	start_namesrv a "127.0.0.1:$PA"
	start_namesrv b "127.0.0.2:$PB"
	cat >"$T/web.pool" <<-EOF
		[pool]
		listen = 127.0.0.1:$P
		balance = roundrobin
		check_interval = 200ms
		check = http
		check_http = OPTIONS /primary
		check_expect_status = 200
		check_port = $H

		[backend a]
		address = 127.0.0.1:$PA

		[backend b]
		address = 127.0.0.2:$PB
	EOF
	start_tcpdist "$T/web.pool" --metrics "127.0.0.1:$PM"
	wait_for_file_line "$TCPDIST_LOG" "backend b 127\.0\.0\.2:$PB is down: 3 checks failed in a row \(HTTP 503\)" 5
	asks "$P" 10 >"$T/names"
	[ "$(grep -c '^a$' "$T/names")" -eq 10 ]
	run ! grep -q "backend a .* is down" "$TCPDIST_LOG"
	# HTTP/1.1 with the host and the side port.
	grep -q "^OPTIONS /primary HTTP/1.1 host=127.0.0.1:$H$" "$T/nginx/access.log"
	grep -q "^OPTIONS /primary HTTP/1.1 host=127.0.0.2:$H$" "$T/nginx/access.log"
	metrics >"$T/metrics"
	grep -q '^tcpdist_backend_check_result{backend="a",result="passed",reason=""} 1$' "$T/metrics"
	grep -q '^tcpdist_backend_check_result{backend="b",result="status",reason="HTTP 503"} 1$' "$T/metrics"
	grep -Eq '^tcpdist_backend_check_duration_seconds\{backend="b"\} 0\.[0-9]+$' "$T/metrics"
	grep -q '^tcpdist_backend_up{backend="b",address="127.0.0.2:'"$PB"'"} 0$' "$T/metrics"
}

# --- backup tier -------------------------------------------------------------

@test "backup: no new connection while a primary is up; all of them once every primary is down; back to the primary when it returns, the backup's sessions going on" {
	ports P PA PB PC
	start_namesrv a "127.0.0.1:$PA"
	start_namesrv b "127.0.0.1:$PB"
	start_namesrv c "127.0.0.1:$PC"
	cat >"$T/web.pool" <<-EOF
		[pool]
		listen = 127.0.0.1:$P
		balance = roundrobin
		check_interval = 100ms
		check_rise = 1
		check_fall = 1

		[backend a]
		address = 127.0.0.1:$PA

		[backend b]
		address = 127.0.0.1:$PB

		[backend c]
		address = 127.0.0.1:$PC
		backup = yes
	EOF
	start_tcpdist "$T/web.pool"
	asks "$P" 30 >"$T/names"
	[ "$(grep -c '^[ab]$' "$T/names")" -eq 30 ]
	# One primary down: the other takes everything.
	stop_bg a KILL
	wait_for_file_line "$TCPDIST_LOG" "backend a .* is down" 2
	asks "$P" 10 >"$T/names"
	[ "$(grep -c '^b$' "$T/names")" -eq 10 ]
	stop_bg b KILL
	wait_for_file_line "$TCPDIST_LOG" "no primary backend available: the backups take new connections" 2
	asks "$P" 10 >"$T/names"
	[ "$(grep -c '^c$' "$T/names")" -eq 10 ]
	start_bg held "$HELPERS/hold" --every 100 "127.0.0.1:$P" 30
	wait_for_file_line "$T/held.out" '^line c$' 2
	# A primary returns.
	start_namesrv a "127.0.0.1:$PA"
	wait_for_file_line "$TCPDIST_LOG" "a primary backend is available again: the backups take no new connections" 2
	asks "$P" 10 >"$T/names"
	[ "$(grep -c '^a$' "$T/names")" -eq 10 ]
	local before
	before=$(grep -c "^line ping$" "$T/held.out" || true)
	wait_for_line_count "$T/held.out" '^line ping$' $((before + 3)) 2
	run ! grep -q closed-by-peer "$T/held.out"
}

@test "backup with balance = hash: the backups have their own table; tcpdist and tcphash agree, --down for every primary names the backup" {
	ports P P1 P2 K1 K2
	for n in p1:$P1 p2:$P2 k1:$K1 k2:$K2; do
		start_namesrv "${n%%:*}" "127.0.0.1:${n#*:}"
	done
	cat >"$T/hash.pool" <<-EOF
		[pool]
		listen = 127.0.0.1:$P
		balance = hash
		check_interval = 100ms
		check_rise = 1
		check_fall = 1

		[backend p1]
		address = 127.0.0.1:$P1
		[backend p2]
		address = 127.0.0.1:$P2
		[backend k1]
		address = 127.0.0.1:$K1
		backup = yes
		[backend k2]
		address = 127.0.0.1:$K2
		backup = yes
	EOF
	# The backups' table is the table of a pool of the backups alone.
	sed '/^\[backend p[12]\]/,+1d; /^backup/d' "$T/hash.pool" >"$T/backups.pool"
	start_tcpdist "$T/hash.pool"
	srcs=$(seq -f '127.0.3.%g' 1 80)
	"$HELPERS/fromaddrs" "127.0.0.1:$P" $srcs >"$T/live"
	"$TCPHASH" -f "$T/hash.pool" $srcs | cut -f1,2 >"$T/offline"
	diff "$T/offline" "$T/live"
	[ "$(cut -f2 "$T/live" | sort -u | xargs)" = "p1 p2" ]
	run -0 "$TCPHASH" -f "$T/hash.pool" --json 127.0.0.1
	jq -e '.[0].tier == "primary"' <<<"$output"

	"$TCPHASH" -f "$T/hash.pool" --down p1 --down p2 $srcs | cut -f1,2 >"$T/offline-down"
	"$TCPHASH" -f "$T/backups.pool" $srcs | cut -f1,2 >"$T/backups-only"
	diff "$T/backups-only" "$T/offline-down"
	[ "$(cut -f2 "$T/offline-down" | sort -u | xargs)" = "k1 k2" ]
	run -0 "$TCPHASH" -f "$T/hash.pool" --down p1 --down p2 --json -n 2 127.0.0.1
	jq -e '.[0].tier == "backup" and ([.[0].preference[].backend] | sort) == ["k1", "k2"]' <<<"$output"
	# One primary down: its clients go to the other primary, not to a backup.
	run -0 "$TCPHASH" -f "$T/hash.pool" --down p1 $srcs
	run ! grep -q $'\tk[12]\t' <<<"$output"

	stop_bg p1 KILL
	stop_bg p2 KILL
	wait_for_file_line "$TCPDIST_LOG" "no primary backend available" 2
	"$HELPERS/fromaddrs" "127.0.0.1:$P" $srcs >"$T/live-down"
	diff "$T/offline-down" "$T/live-down"
}

# --- slow start ----------------------------------------------------------------

# share_of NAME FILE: NAME's share of the lines of FILE, in percent.
share_of() {
	echo $((100 * $(grep -c "^$1$" "$2") / $(wc -l <"$2")))
}

@test "slowstart, roundrobin: a backend that comes back gets w(t)/(w(t)+1) of new connections, w(t) rising linearly from 1/64 to 1 over slowstart (within 8 points)" {
	ports P PA PB PM
	start_namesrv a "127.0.0.1:$PA"
	start_namesrv b "127.0.0.1:$PB"
	cat >"$T/web.pool" <<-EOF
		[pool]
		listen = 127.0.0.1:$P
		balance = roundrobin
		check_interval = 100ms
		check_rise = 1
		check_fall = 1
		slowstart = 4s

		[backend a]
		address = 127.0.0.1:$PA

		[backend b]
		address = 127.0.0.1:$PB
	EOF
	start_tcpdist "$T/web.pool" --metrics "127.0.0.1:$PM"
	# Not at the start: both take half at once.
	asks "$P" 20 >"$T/names"
	[ "$(share_of b "$T/names")" -eq 50 ]
	stop_bg b KILL
	wait_for_file_line "$TCPDIST_LOG" "backend b .* is down" 2
	start_namesrv b "127.0.0.1:$PB"
	wait_for_file_line "$TCPDIST_LOG" "backend b .* is up: 1 check passed \(slow start over 4s\)" 2
	local t0 at want got
	t0=$(now_ms)
	for at in 500 1500 2500 3500 4500; do
		while (($(now_ms) - t0 < at)); do sleep 0.02; done
		asks "$P" 100 >"$T/names"
		got=$(share_of b "$T/names")
		# w(t) = t / 4 s: share = w / (w + 1), at the middle of the batch.
		want=$(((at + 50) >= 4000 ? 50 : 100 * (at + 50) / ((at + 50) + 4000)))
		echo "# at ${at} ms: b has ${got}% (expected ${want}%)" >&3
		((got >= want - 8 && got <= want + 8)) || fail "at ${at} ms b had ${got}% of new connections, not ${want}% +- 8"
	done
	metrics | grep -q '^tcpdist_backend_effective_weight{backend="b"} 1.000$'
}

@test "slowstart, hash: no client of another backend moves; the returning backend takes its clients back, more of them as the ramp goes, all of them at its end" {
	ports P PA PB
	start_namesrv a "127.0.0.1:$PA"
	start_namesrv b "127.0.0.1:$PB"
	cat >"$T/hash.pool" <<-EOF
		[pool]
		listen = 127.0.0.1:$P
		balance = hash
		check_interval = 100ms
		check_rise = 1
		check_fall = 1
		slowstart = 3s

		[backend a]
		address = 127.0.0.1:$PA

		[backend b]
		address = 127.0.0.1:$PB
	EOF
	start_tcpdist "$T/hash.pool"
	srcs=$(seq -f '127.0.4.%g' 1 200)
	"$HELPERS/fromaddrs" "127.0.0.1:$P" $srcs >"$T/base"
	local mine
	mine=$(grep -c $'\tb$' "$T/base")
	((mine > 50))
	stop_bg b KILL
	wait_for_file_line "$TCPDIST_LOG" "backend b .* is down" 2
	start_namesrv b "127.0.0.1:$PB"
	wait_for_file_line "$TCPDIST_LOG" "backend b .* is up" 2
	local t0 at back prev=0
	t0=$(now_ms)
	: >"$T/was-b"
	for at in 700 1700 3300; do
		while (($(now_ms) - t0 < at)); do sleep 0.02; done
		"$HELPERS/fromaddrs" "127.0.0.1:$P" $srcs >"$T/now"
		# Clients of a never move.
		run -0 awk -F '\t' 'NR == FNR { base[$1] = $2; next } base[$1] == "a" && $2 != "a"' "$T/base" "$T/now"
		[ -z "$output" ]
		back=$(grep -c $'\tb$' "$T/now")
		echo "# at ${at} ms: ${back} of b's ${mine} clients are back" >&3
		# Once back, a client stays back.
		run -0 comm -23 <(sort "$T/was-b") <(grep $'\tb$' "$T/now" | cut -f1 | sort)
		[ -z "$output" ]
		grep $'\tb$' "$T/now" | cut -f1 >"$T/was-b"
		((back >= prev))
		prev=$back
	done
	# At 700 ms about a quarter, at the end all of them.
	[ "$back" -eq "$mine" ]
}

# --- hostile peers --------------------------------------------------------------

@test "hostile check peers: one that never answers, one that sends 1 MiB of garbage, one that closes mid-line: each check ends within check_timeout, memory stays bounded, each is down with its reason" {
	ports P PS PG PC PA PM
	start_bg silent "$HELPERS/checkpeer" silent "127.0.0.1:$PS"
	start_bg garbage "$HELPERS/checkpeer" garbage 1048576 "127.0.0.1:$PG"
	start_bg cut "$HELPERS/checkpeer" cut "+PO" "127.0.0.1:$PC"
	for n in silent garbage cut; do wait_for_file_line "$T/$n.out" '^ready$'; done
	start_namesrv a "127.0.0.1:$PA"
	cat >"$T/web.pool" <<-EOF
		[pool]
		listen = 127.0.0.1:$P
		balance = roundrobin
		check_interval = 200ms
		check_timeout = 300ms
		check_fall = 1
		check = send-expect
		check_send = PING\r\n
		check_expect = +PONG

		[backend silent]
		address = 127.0.0.1:$PS
		[backend garbage]
		address = 127.0.0.1:$PG
		[backend cut]
		address = 127.0.0.1:$PC
		[backend a]
		address = 127.0.0.1:$PA
		check = connect
	EOF
	start_tcpdist "$T/web.pool" --metrics "127.0.0.1:$PM"
	wait_for_file_line "$TCPDIST_LOG" "backend silent 127\.0\.0\.1:$PS is down: 1 checks failed in a row \(timeout after 300ms \(expected '\+PONG', got nothing\)\)" 2
	wait_for_file_line "$TCPDIST_LOG" "backend garbage 127\.0\.0\.1:$PG is down: 1 checks failed in a row \(expected '\+PONG', got 'abcdefghijklmnopqrstuvwxyz.*\.\.\.' \(16384 bytes without a match\)\)" 2
	wait_for_file_line "$TCPDIST_LOG" "backend cut 127\.0\.0\.1:$PC is down: 1 checks failed in a row \(expected '\+PONG', got '\+PO' \(connection closed\)\)" 2
	local rss0 rss1
	rss0=$(awk '/^VmRSS/ {print $2}' "/proc/$TCPDIST_PID/status")
	# Ten more rounds of each.
	wait_for_line_count "$T/garbage.out" '^conn ' 12 5
	wait_for_line_count "$T/silent.out" '^conn ' 10 5
	rss1=$(awk '/^VmRSS/ {print $2}' "/proc/$TCPDIST_PID/status")
	echo "# RSS ${rss0} kB, then ${rss1} kB" >&3
	((rss1 - rss0 < 1024))
	metrics >"$T/metrics"
	promtool check metrics <"$T/metrics"
	for b in silent garbage cut; do
		local d
		d=$(sed -n "s/^tcpdist_backend_check_duration_seconds{backend=\"$b\"} //p" "$T/metrics")
		echo "# check of $b took ${d}s" >&3
		awk -v d="$d" 'BEGIN { exit !(d > 0 && d < 0.35) }'
	done
	grep -q '^tcpdist_backend_check_result{backend="silent",result="timeout",' "$T/metrics"
	grep -q '^tcpdist_backend_check_result{backend="garbage",result="mismatch",' "$T/metrics"
	grep -q "^tcpdist_backend_check_result{backend=\"cut\",result=\"mismatch\",reason=\"expected '+PONG', got '+PO' (connection closed)\"} 1$" "$T/metrics"
	asks "$P" 10 >"$T/names"
	[ "$(grep -c '^a$' "$T/names")" -eq 10 ]
}

# --- the tools -------------------------------------------------------------------

@test "tcppool: check steps set in order, checked with the loader's file, line and key; show lists them" {
	printf '[pool]\nlisten = 127.0.0.1:1\n\n[backend a]\naddress = 127.0.0.1:2\n' >"$T/web.pool"
	run -0 "$TCPPOOL" -f "$T/web.pool" set pool check=send-expect 'check_send=PING\r\n' \
		check_expect=+PONG 'check_send=INFO replication\r\n' 'check_expect=~^role:master'
	run -0 grep '^check' "$T/web.pool"
	[ "$output" = $'check = send-expect\ncheck_send = PING\\r\\n\ncheck_expect = +PONG\ncheck_send = INFO replication\\r\\n\ncheck_expect = ~^role:master' ]
	run -0 "$TCPPOOL" -f "$T/web.pool" show --json a
	jq -e '.check == "send-expect" and .check_steps == ["send PING\\r\\n", "expect +PONG",
		"send INFO replication\\r\\n", "expect ~^role:master"] and .backup == "no"' <<<"$output"
	# A second set replaces the steps.
	run -0 "$TCPPOOL" -f "$T/web.pool" set pool 'check_send=QUIT\r\n'
	[ "$(grep -c '^check_' "$T/web.pool")" -eq 1 ]
	# Refused, with the loader's words, nothing written.
	cp "$T/web.pool" "$T/before"
	run --separate-stderr "$TCPPOOL" -f "$T/web.pool" set a check=connect check_send=X
	[ "$status" -eq 2 ]
	[ "$stderr" = "tcppool: $T/web.pool:9: check_send: needs check = send-expect (check is connect)" ]
	run --separate-stderr "$TCPPOOL" -f "$T/web.pool" set a 'check_expect_status=2xx'
	[ "$status" -eq 2 ]
	[[ $stderr == *"check_expect_status: '2xx': expected a status code"* ]]
	run --separate-stderr "$TCPPOOL" -f "$T/web.pool" set pool backup=yes
	[[ $stderr == *"backup: only in a [backend NAME] section"* ]]
	cmp "$T/before" "$T/web.pool"
	run -0 "$TCPPOOL" -f "$T/web.pool" set a backup=yes check=http 'check_http=OPTIONS /primary' \
		check_expect_status=200,204 check_port=8008 slowstart=10s on_down=shutdown
	run -0 "$TCPPOOL" -f "$T/web.pool" show a
	[[ $output == *$'\nbackup\tyes\ncheck\thttp\n'* ]]
	[[ $output == *$'\ncheck_http\tOPTIONS /primary\ncheck_expect_status\t200,204\ncheck_port\t8008\n'* ]]
	[[ $output == *$'\non_down\tshutdown\nslowstart\t10s' ]]
	# And completes them.
	[ "$(bash -c 'source "$1"; COMP_WORDBREAKS=$3; COMP_LINE=$2; COMP_POINT=${#COMP_LINE}
		_tcppool; printf "%s\n" "${COMPREPLY[@]}"' _ "$BATS_TEST_DIRNAME/../completions/tcppool.bash" \
		'tcppool set a on_down=s' $' \t\n"\'><=;|&(:' | xargs)" = shutdown ]
}

@test "tcpdist -n: the check keys are validated with file, line and key" {
	printf '[pool]\nlisten = 127.0.0.1:1\ncheck = http\ncheck_http = GET health\n' >"$T/bad.pool"
	run "$TCPDIST" -n "$T/bad.pool"
	[ "$status" -eq 2 ]
	[[ $output == *"$T/bad.pool:4: check_http: the path starts with '/'"* ]]
	printf '[pool]\nlisten = 127.0.0.1:1\ncheck = send-expect\ncheck_send = PING\\q\n' >"$T/bad.pool"
	run "$TCPDIST" -n "$T/bad.pool"
	[ "$status" -eq 2 ]
	[[ $output == *"$T/bad.pool:4: check_send: unknown escape '\\q'"* ]]
	printf '[pool]\nlisten = 127.0.0.1:1\ncheck = send-expect\ncheck_expect = ~(\nslowstart = 1m\n' >"$T/ok.pool"
	run "$TCPDIST" -n "$T/ok.pool"
	[ "$status" -eq 2 ]
	[[ $output == *"$T/ok.pool:4: check_expect: invalid regular expression"* ]]
}
