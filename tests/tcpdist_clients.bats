#!/usr/bin/env bats
# The client's identity (tcpdist.pool(5), CLIENTS): PROXY headers sent to
# nginx and HAProxy and read from HAProxy, hostile headers, allow and deny,
# client_max_conns, client_rate and the bounded client table. Real programs
# on 127.0.0.0/8 (any address there is local, so clients bind 127.0.0.x);
# every wait polls with a deadline; teardown kills by pid.

bats_require_minimum_version 1.5.0
load 'helpers'

: "${TCPHASH:=$BATS_TEST_DIRNAME/../bin/tcphash}"
: "${TCPPOOL:=$BATS_TEST_DIRNAME/../bin/tcppool}"

setup() {
	require_helpers
	for h in ppsend crowd; do
		[[ -x $HELPERS/$h ]] || fail "$HELPERS/$h missing: run 'make helpers'" || return 1
	done
	T=$BATS_TEST_TMPDIR
}

# A test that passed also proves tcpdist stops cleanly (exit 0: under the
# sanitizers, no leak): the other programs go first.
teardown() {
	tcpdist_teardown
}

# scrape METRICS_PORT: the metrics text on stdout.
scrape() {
	curl -sf "http://127.0.0.1:$1/metrics"
}

# metric METRICS_PORT NAME{LABELS}: its value (0 if absent).
metric() {
	scrape "$1" | awk -v m="$2" '$1 == m { v = $2 } END { print v + 0 }'
}

# wait_for_metric PORT NAME VALUE [TIMEOUT_S]: until the metric is VALUE.
wait_for_metric() {
	local deadline got
	deadline=$(($(now_ms) + $(ms_of "${4:-5}")))
	until got=$(metric "$1" "$2"); [[ $got == "$3" ]]; do
		(($(now_ms) < deadline)) || fail "$2 is $got, not $3" || return 1
		sleep 0.05
	done
}

# nginx_start NAME PORT [STATUS_PORT]: nginx in the foreground, PROXY protocol
# on PORT, its access log "$proxy_protocol_addr $remote_addr" in
# $T/NAME.access, errors in NAME.error; stub_status on STATUS_PORT.
nginx_start() {
	local name=$1 port=$2 status=
	[[ -z ${3:-} ]] || status="server { listen 127.0.0.1:$3; location / { stub_status; } }"
	command -v nginx >/dev/null || skip "nginx not installed (scripts/deps.sh check)"
	mkdir -p "$T/$name"
	cat >"$T/$name.conf" <<-EOF
		daemon off;
		master_process off;
		worker_processes 1;
		pid $T/$name.pid;
		error_log $T/$name.error info;
		events { worker_connections 256; }
		http {
			client_body_temp_path $T/$name;
			proxy_temp_path $T/$name;
			fastcgi_temp_path $T/$name;
			uwsgi_temp_path $T/$name;
			scgi_temp_path $T/$name;
			log_format pp '\$proxy_protocol_addr \$proxy_protocol_port \$remote_addr';
			access_log $T/$name.access pp;
			server {
				listen 127.0.0.1:$port proxy_protocol;
				location / { return 200 "\$proxy_protocol_addr\n"; }
			}
			$status
		}
	EOF
	start_bg "$name" nginx -p "$T/$name" -c "$T/$name.conf" || return 1
	wait_for_port "$port"
}

# haproxy_start NAME CONFIG_TEXT: HAProxy in the foreground.
haproxy_start() {
	command -v haproxy >/dev/null || skip "haproxy not installed (scripts/deps.sh check)"
	printf '%s\n' "$2" >"$T/$1.cfg"
	start_bg "$1" haproxy -db -f "$T/$1.cfg"
}

# get PORT SOURCE: an HTTP GET from SOURCE; the body on stdout.
get() {
	curl -sf --max-time 5 --interface "$2" "http://127.0.0.1:$1/"
}

@test "clients: nginx behind tcpdist, v1 then v2: its access log has the real client addresses, and checks leave no broken header" {
	ports P N M S
	nginx_start nginx "$N" "$S"
	write_pool web.pool <<-EOF
		[pool]
		listen = 127.0.0.1:$P
		check_interval = 100ms
		proxy_protocol = v1
		[backend nginx]
		address = 127.0.0.1:$N
	EOF
	start_tcpdist "$T/web.pool" --metrics "127.0.0.1:$M"
	for src in 127.0.0.2 127.0.0.3 127.0.0.4; do
		run -0 get "$P" "$src"
		[ "$output" = "$src" ]
	done
	# a backend's own key beats the pool's: v2 for nginx from now on
	printf 'proxy_protocol = v2\n' >>"$T/web.pool"
	wait_for_file_line "$TCPDIST_LOG" 'reloaded.*changed nginx'
	for src in 127.0.0.5 127.0.0.6; do
		run -0 get "$P" "$src"
		[ "$output" = "$src" ]
	done
	wait_for_line_count "$T/nginx.access" '^127\.0\.0\.[2-6] [0-9]+ 127\.0\.0\.1$' 5
	# v2 LOCAL health checks are no broken headers to nginx: wait for 3 of
	# them (connections without a request: stub_status's accepts less
	# requests, its own included in both).
	checks_seen() {
		curl -sf --max-time 2 "http://127.0.0.1:$S/" |
			awk 'NR == 3 { seen = $1 - $3 >= 3 } END { exit !seen }'
	}
	local deadline=$(($(now_ms) + 5000))
	until checks_seen; do
		(($(now_ms) < deadline)) || fail "nginx saw fewer than 3 health checks in 5 s"
		sleep 0.05
	done
	run grep -c 'broken header' "$T/nginx.error"
	[ "$output" = 0 ]
	[ "$(metric "$M" tcpdist_backend_up'{backend="nginx",address="127.0.0.1:'"$N"'"}')" = 1 ]
}

@test "clients: HAProxy send-proxy-v2 in front: tcpdist hashes the real clients, as tcphash does" {
	ports H P B1 B2 B3 B4 M
	for b in 1 2 3 4; do
		local port="B$b"
		start_namesrv "b$b" "127.0.0.1:${!port}"
	done
	write_pool web.pool <<-EOF
		[pool]
		listen = 127.0.0.1:$P
		check_interval = 0
		accept_proxy_from = 127.0.0.1
		[backend b1]
		address = 127.0.0.1:$B1
		[backend b2]
		address = 127.0.0.1:$B2
		[backend b3]
		address = 127.0.0.1:$B3
		[backend b4]
		address = 127.0.0.1:$B4
	EOF
	start_tcpdist "$T/web.pool" --metrics "127.0.0.1:$M"
	haproxy_start haproxy "$(printf 'defaults\n mode tcp\n timeout connect 2s\n timeout client 5s\n timeout server 5s\nfrontend fe\n bind 127.0.0.1:%s\n default_backend be\nbackend be\n server td 127.0.0.1:%s send-proxy-v2\n' "$H" "$P")"
	wait_for_port "$H"
	local srcs=() s
	for s in $(seq 2 40); do srcs+=("127.0.1.$s"); done
	run -0 "$HELPERS/fromaddrs" "127.0.0.1:$H" "${srcs[@]}"
	printf '%s\n' "$output" | awk '{ print $1 "\t" $2 }' >"$T/got"
	"$TCPHASH" -f "$T/web.pool" "${srcs[@]}" | cut -f1,2 >"$T/want"
	diff "$T/want" "$T/got"
	# the clients spread: more than one backend got some (all were 127.0.0.1 before)
	[ "$(cut -f2 "$T/got" | sort -u | wc -l)" -gt 1 ]
	[ "$(metric "$M" 'tcpdist_proxy_headers_total{version="2"}')" = 39 ]
}

@test "clients: HAProxy accept-proxy as a backend of tcpdist, fed v2, sees the clients" {
	ports P H
	# It logs to stderr (a bad PROXY header: "... PROXY protocol header ...")
	# and counts its frontend's connections (stot) on its stats socket.
	haproxy_start haproxy "$(printf 'global\n log stderr format raw local0 info\n stats socket %s\ndefaults\n mode http\n log global\n timeout connect 2s\n timeout client 5s\n timeout server 5s\nfrontend fe\n bind 127.0.0.1:%s accept-proxy\n http-request return status 200 content-type text/plain lf-string "%%[src]\\n"\n' "$T/haproxy.sock" "$H")"
	wait_for_port "$H"
	write_pool web.pool <<-EOF
		[pool]
		listen = 127.0.0.1:$P
		check_interval = 100ms
		[backend haproxy]
		address = 127.0.0.1:$H
		proxy_protocol = v2
	EOF
	start_tcpdist "$T/web.pool"
	for src in 127.0.0.7 127.0.0.8; do
		run -0 get "$P" "$src"
		[ "$output" = "$src" ]
	done
	# Its checks (v2 LOCAL), 3 of them beside the 2 clients, are good
	# headers to HAProxy, and the backend stays up.
	frontend_sessions() {
		echo 'show stat' | socat - "UNIX-CONNECT:$T/haproxy.sock" 2>/dev/null |
			awk -F, '$1 == "fe" && $2 == "FRONTEND" { n = $8 } END { print n + 0 }'
	}
	local deadline=$(($(now_ms) + 5000))
	until (($(frontend_sessions) >= 5)); do
		(($(now_ms) < deadline)) || fail "HAProxy saw fewer than 3 health checks in 5 s"
		sleep 0.05
	done
	run grep -c 'PROXY protocol' "$T/haproxy.err"
	[ "$output" = 0 ]
	run grep -E 'backend haproxy .* is down' "$TCPDIST_LOG"
	[ "$status" -ne 0 ]
}

@test "clients: the PROXY header and the client's first bytes go in one segment; a header waits no more than a moment for them" {
	[[ -x $HELPERS/ppsegs ]] || fail "$HELPERS/ppsegs missing: run 'make helpers'"
	ports P B
	write_pool web.pool <<-EOF
		[pool]
		listen = 127.0.0.1:$P
		check_interval = 0
		proxy_protocol = v2
		[backend b]
		address = 127.0.0.1:$B
	EOF
	start_tcpdist "$T/web.pool"
	# Clients that speak 0.3 ms after their connect, once tcpdist has
	# connected to the backend: before, each header went out alone (0 of 30).
	run -0 "$HELPERS/ppsegs" -n 30 --delay-us 300 "127.0.0.1:$B" "127.0.0.1:$P"
	echo "# $output" >&3
	[[ $output =~ ^one\ ([0-9]+)\ of\ 30$ ]]
	((BASH_REMATCH[1] >= 20))
	# Clients silent for 100 ms: each header went on without them, so a
	# backend that speaks first (SMTP, MySQL) is not kept waiting.
	run -0 "$HELPERS/ppsegs" -n 3 --delay-us 100000 "127.0.0.1:$B" "127.0.0.1:$P"
	[ "$output" = "one 0 of 3" ]
}

@test "clients: hostile PROXY headers are closed within the timeout and counted; tcpdist keeps serving" {
	ports P B M
	start_namesrv b "127.0.0.1:$B"
	write_pool web.pool <<-EOF
		[pool]
		listen = 127.0.0.1:$P
		check_interval = 0
		accept_proxy_from = 127.0.0.1, ::1
		accept_proxy_timeout = 1s
		[backend b]
		address = 127.0.0.1:$B
	EOF
	start_tcpdist "$T/web.pool" --metrics "127.0.0.1:$M" --log-connections
	# no header at all: the timeout
	run -0 "$HELPERS/ppsend" --timeout 3000 "127.0.0.1:$P"
	[[ $output =~ ^reset\ bytes=0\ ms=([0-9]+)$ ]]
	((BASH_REMATCH[1] >= 900 && BASH_REMATCH[1] <= 1600))
	# a truncated header, then silence: the timeout
	run -0 "$HELPERS/ppsend" --timeout 3000 "127.0.0.1:$P" 'PROXY TCP4 10.0.0.1 127.0.0'
	[[ $output =~ ^reset\ bytes=0\ ms=([0-9]+)$ ]]
	((BASH_REMATCH[1] >= 900 && BASH_REMATCH[1] <= 1600))
	# a valid header at one byte a second: the timeout, not 40 s
	run -0 "$HELPERS/ppsend" --drip 1000 --timeout 3000 "127.0.0.1:$P" 'PROXY TCP4 10.0.0.1 127.0.0.1 1 2\r\n'
	[[ $output =~ ^reset\ bytes=0\ ms=([0-9]+)$ ]]
	((BASH_REMATCH[1] >= 900 && BASH_REMATCH[1] <= 1600))
	[ "$(metric "$M" 'tcpdist_connections_refused_total{reason="proxy_timeout"}')" = 3 ]
	# a v2 header claiming 65535 bytes: at once
	run -0 "$HELPERS/ppsend" --timeout 3000 "127.0.0.1:$P" '\r\n\r\n\0\r\nQUIT\n\x21\x11\xff\xff'
	[[ $output =~ ^(reset|eof)\ bytes=0\ ms=([0-9]+)$ ]]
	((BASH_REMATCH[2] < 500))
	# no header but HTTP: at once
	run -0 "$HELPERS/ppsend" "127.0.0.1:$P" 'GET / HTTP/1.1\r\n\r\n'
	[[ $output =~ ^(reset|eof)\ bytes=0 ]]
	[ "$(metric "$M" 'tcpdist_connections_refused_total{reason="proxy_invalid"}')" = 2 ]
	# from outside accept_proxy_from: at once, whatever it sends
	# (its header may meet the reset: then the close reads as an end of file)
	run -0 "$HELPERS/ppsend" --from 127.0.0.2 --v2 10.0.0.1:1 "127.0.0.1:$P"
	[[ $output =~ ^(reset|eof)\ bytes=0\ ms=([0-9]+)$ ]]
	((BASH_REMATCH[2] < 500))
	[ "$(metric "$M" 'tcpdist_connections_refused_total{reason="proxy_untrusted"}')" = 1 ]
	grep -q 'client 127.0.0.2:[0-9]*: not in accept_proxy_from' "$TCPDIST_LOG"
	grep -q 'no whole PROXY header within 1s' "$TCPDIST_LOG"
	# and a valid client is served, its bytes after the header intact
	run -0 "$HELPERS/ppsend" --lines 2 "127.0.0.1:$P" 'PROXY TCP4 10.0.0.1 127.0.0.1 1 2\r\nping\n'
	[ "${lines[0]}" = "line b" ]
	[ "${lines[1]}" = "line ping" ]
	run -0 "$HELPERS/ppsend" --lines 2 --v2 '[2001:db8::1]:5' "127.0.0.1:$P" 'pong\n'
	[ "${lines[1]}" = "line pong" ]
	# LOCAL (v2) and UNKNOWN (v1) are accepted: the socket's address stands
	run -0 "$HELPERS/ppsend" --lines 2 "127.0.0.1:$P" '\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00local\n'
	[ "${lines[1]}" = "line local" ]
	run -0 "$HELPERS/ppsend" --lines 2 "127.0.0.1:$P" 'PROXY UNKNOWN\r\nunknown\n'
	[ "${lines[1]}" = "line unknown" ]
	[ "$(metric "$M" 'tcpdist_proxy_headers_total{version="1"}')" = 2 ]
	[ "$(metric "$M" 'tcpdist_proxy_headers_total{version="2"}')" = 2 ]
	wait_for_line_count "$T/tcpdist.err" 'connection client=127\.0\.0\.1:[0-9]+ .*backend=b ' 2
	wait_for_file_line "$T/tcpdist.err" 'connection client=10\.0\.0\.1:1 .*backend=b '
	wait_for_file_line "$T/tcpdist.err" 'connection client=\[2001:db8::1\]:5 .*backend=b '
	[ "$(metric "$M" 'tcpdist_connections_active')" = 0 ]
}

@test "clients: a client waiting for its PROXY header counts against max_conns" {
	ports P B
	start_namesrv b "127.0.0.1:$B"
	write_pool web.pool <<-EOF
		[pool]
		listen = 127.0.0.1:$P
		check_interval = 0
		max_conns = 1
		accept_proxy_from = 127.0.0.1
		accept_proxy_timeout = 1s
		[backend b]
		address = 127.0.0.1:$B
	EOF
	start_tcpdist "$T/web.pool"
	start_bg silent "$HELPERS/ppsend" --timeout 3000 "127.0.0.1:$P"
	wait_for_established "$P" 1
	local t0 elapsed
	t0=$(now_ms)
	run -0 "$HELPERS/ppsend" --lines 1 --timeout 3000 --v2 10.0.0.1:1 "127.0.0.1:$P"
	elapsed=$(($(now_ms) - t0))
	[ "${lines[0]}" = "line b" ]
	# it waited in the backlog until the silent one's header time was up
	((elapsed >= 700))
	wait_for_file_line "$T/silent.out" '^reset bytes=0'
}

@test "clients: allow and deny, IPv4 and IPv6: the longest prefix wins, deny wins a tie, no match is refused when allow is set" {
	ports P B M
	start_namesrv b "127.0.0.1:$B"
	write_pool web.pool <<-EOF
		[pool]
		listen = 127.0.0.1:$P
		check_interval = 0
		accept_proxy_from = 127.0.0.1
		allow = 10.0.0.0/8, 2001:db8::/32
		deny = 10.1.0.0/16
		allow = 10.1.2.3
		deny = 2001:db8:bad::/48
		allow = 192.168.0.0/16
		deny = 192.168.0.0/16
		[backend b]
		address = 127.0.0.1:$B
	EOF
	start_tcpdist "$T/web.pool" --metrics "127.0.0.1:$M"
	verdict() {
		local out
		out=$("$HELPERS/ppsend" --timeout 2000 --lines 1 --v2 "$1" "127.0.0.1:$P")
		[[ $out == "line b"* ]] && echo served || echo refused
	}
	# refused, all within a second: logged once
	[ "$(verdict 10.1.9.9:1)" = refused ]    # /16 deny over /8 allow
	[ "$(verdict 192.168.1.1:1)" = refused ] # a tie: deny
	[ "$(verdict 172.16.0.1:1)" = refused ]  # no match, and allow is set
	[ "$(verdict '[2001:db8:bad::1]:1')" = refused ]
	[ "$(verdict '[2001:db9::1]:1')" = refused ]
	[ "$(metric "$M" 'tcpdist_connections_refused_total{reason="denied"}')" = 5 ]
	run grep -c 'refused: \(deny\|in no allow\)' "$TCPDIST_LOG"
	[ "$output" = 1 ]
	grep -q 'client 10.1.9.9:1: refused: deny 10.1.0.0/16$' "$TCPDIST_LOG"
	[ "$(verdict 10.9.9.9:1)" = served ]
	[ "$(verdict 10.1.2.3:1)" = served ]     # /32 allow over /16 deny
	[ "$(verdict '[2001:db8::1]:1')" = served ]
	# a second on, the next line says how many were not logged
	sleep 1
	[ "$(verdict 10.1.9.9:1)" = refused ]
	grep -q 'refused: deny 10.1.0.0/16 (and 4 more like it since the last line)' "$TCPDIST_LOG"
	# live: a reload that drops the deny lines lets those clients in
	sed -i '/^deny/d' "$T/web.pool"
	wait_for_file_line "$TCPDIST_LOG" 'reloaded.*pool settings changed'
	[ "$(verdict 10.1.9.9:1)" = served ]
	[ "$(verdict '[2001:db8:bad::1]:1')" = served ]
	[ "$(verdict 172.16.0.1:1)" = refused ]
}

@test "clients: allow and deny on real sockets, IPv4 sources and ::1" {
	ports P B
	start_namesrv b "127.0.0.1:$B"
	write_pool web.pool <<-EOF
		[pool]
		listen = 127.0.0.1:$P
		listen = [::1]:$P
		check_interval = 0
		deny = 127.0.0.3, ::1
		[backend b]
		address = 127.0.0.1:$B
	EOF
	start_tcpdist "$T/web.pool" --log-connections
	run -0 "$HELPERS/ppsend" --from 127.0.0.2 --lines 1 "127.0.0.1:$P"
	[ "${lines[0]}" = "line b" ]
	run -0 "$HELPERS/ppsend" --from 127.0.0.3 --timeout 2000 "127.0.0.1:$P"
	[[ $output == reset* ]]
	run -0 "$HELPERS/ppsend" --timeout 2000 "[::1]:$P"
	[[ $output == reset* ]]
	wait_for_file_line "$TCPDIST_LOG" 'connection client=127\.0\.0\.3:[0-9]+ listener=[^ ]+ backend=- .* close=denied$'
	wait_for_file_line "$TCPDIST_LOG" 'connection client=\[::1\]:[0-9]+ listener=[^ ]+ backend=- .* close=denied$'
	wait_for_file_line "$TCPDIST_LOG" 'connection client=127\.0\.0\.2:[0-9]+ listener=[^ ]+ backend=b '
}

# max_conns_exact THREADS: 20 at once from one client with client_max_conns = 5.
max_conns_exact() {
	ports P B M
	start_namesrv b "127.0.0.1:$B"
	write_pool web.pool <<-EOF
		[pool]
		listen = 127.0.0.1:$P
		check_interval = 0
		client_max_conns = 5
		[backend b]
		address = 127.0.0.1:$B
	EOF
	start_tcpdist "$T/web.pool" -j "$1" --metrics "127.0.0.1:$M"
	start_bg crowd "$HELPERS/crowd" burst "127.0.0.1:$P" 127.0.0.9 20 30000
	wait_for_file_line "$T/crowd.out" '^accepted='
	[ "$(cat "$T/crowd.out")" = "accepted=5 refused=15" ]
	# another client is not held back by this one's limit
	run -0 "$HELPERS/crowd" burst "127.0.0.1:$P" 127.0.0.10 7
	[ "$output" = "accepted=5 refused=2" ]
	[ "$(metric "$M" 'tcpdist_connections_refused_total{reason="client_max_conns"}')" = 17 ]
	grep -q 'client 127.0.0.9:[0-9]*: refused: client_max_conns 5 reached' "$TCPDIST_LOG"
	# once its connections end, the client has its 5 again
	stop_bg crowd KILL || true
	wait_for_metric "$M" tcpdist_connections_active 0
	run -0 "$HELPERS/crowd" burst "127.0.0.1:$P" 127.0.0.9 6
	[ "$output" = "accepted=5 refused=1" ]
	# live: a reload to 2 holds from the next connection on
	sed -i 's/^client_max_conns = 5$/client_max_conns = 2/' "$T/web.pool"
	wait_for_file_line "$TCPDIST_LOG" 'reloaded.*pool settings changed'
	run -0 "$HELPERS/crowd" burst "127.0.0.1:$P" 127.0.0.14 6
	[ "$output" = "accepted=2 refused=4" ]
}

@test "clients: client_max_conns is exact with -j 1" {
	max_conns_exact 1
}

@test "clients: client_max_conns is exact with -j 2" {
	max_conns_exact 2
}

@test "clients: client_rate 20/s:1 lets one client through at 20 a second, within 10% over 5 s, with -j 2" {
	ports P B M
	start_namesrv b "127.0.0.1:$B"
	write_pool web.pool <<-EOF
		[pool]
		listen = 127.0.0.1:$P
		check_interval = 0
		client_rate = 20/s:1
		[backend b]
		address = 127.0.0.1:$B
	EOF
	start_tcpdist "$T/web.pool" -j 2 --metrics "127.0.0.1:$M"
	start_bg other "$HELPERS/crowd" rate "127.0.0.1:$P" 127.0.0.12 5
	run -0 "$HELPERS/crowd" rate "127.0.0.1:$P" 127.0.0.11 5
	[[ $output =~ ^accepted=([0-9]+)\ refused=([0-9]+)$ ]]
	echo "# $output" >&3
	((BASH_REMATCH[1] >= 90 && BASH_REMATCH[1] <= 110))
	((BASH_REMATCH[2] > 100)) # it did try faster
	wait_for_exit other 5
	[[ $(cat "$T/other.out") =~ ^accepted=(9[0-9]|10[0-9]|110)\  ]]
	grep -q 'refused: client_rate 20/s:1 exceeded' "$TCPDIST_LOG"
}

@test "clients: 10,000 distinct sources: the client table stays within its bound" {
	ports P B M
	start_namesrv b "127.0.0.1:$B"
	write_pool web.pool <<-EOF
		[pool]
		listen = 127.0.0.1:$P
		check_interval = 0
		client_rate = 1/s:3
		client_max_conns = 2
		[backend b]
		address = 127.0.0.1:$B
	EOF
	# a descriptor limit of 4096 makes a table of 4096 entries
	TCPDIST_LOG="$T/tcpdist.err"
	start_bg tcpdist bash -c 'ulimit -n 4096 && exec "$0" "$@"' "$TCPDIST" --metrics "127.0.0.1:$M" "$T/web.pool"
	wait_for_file_line "$TCPDIST_LOG" 'listening on'
	[ "$(metric "$M" tcpdist_client_table_size)" = 4096 ]
	run -0 "$HELPERS/crowd" sources "127.0.0.1:$P" 127.1.0.1 10000 32
	[ "$output" = "accepted=10000 refused=0" ]
	local used evicted
	used=$(metric "$M" tcpdist_client_table_entries)
	evicted=$(metric "$M" tcpdist_client_table_evictions_total)
	echo "# entries $used, evicted $evicted" >&3
	# full, and no fuller: 10,000 clients went through 4096 entries
	((used > 3500 && used <= 4096))
	# and the limits still hold for a client seen before
	run -0 "$HELPERS/crowd" burst "127.0.0.1:$P" 127.0.0.13 5
	[ "$output" = "accepted=2 refused=3" ]
}

@test "clients: tcppool validates and shows the keys; bad values are refused and the file kept" {
	write_pool web.pool <<-EOF
		[pool]
		listen = 127.0.0.1:8080
		[backend b]
		address = 127.0.0.1:9000
	EOF
	run -0 "$TCPPOOL" -f "$T/web.pool" set pool proxy_protocol=v2 accept_proxy_from=10.0.0.0/8,::1 \
		allow=10.0.0.0/8 client_max_conns=10 client_rate=20/s:5 client_prefix6=56 \
		accept_proxy_timeout=2s
	run -0 "$TCPPOOL" -f "$T/web.pool" set b proxy_protocol=v1
	run -0 "$TCPPOOL" -f "$T/web.pool" show pool
	[[ $output == *$'proxy_protocol\tv2\n'* ]]
	[[ $output == *$'accept_proxy_from\t10.0.0.0/8\naccept_proxy_from\t::1/128\n'* ]]
	[[ $output == *$'client_rate\t20/s:5\n'* ]]
	[[ $output == *$'client_prefix6\t56\n'* ]]
	run -0 "$TCPPOOL" -f "$T/web.pool" show b
	[[ $output == *$'proxy_protocol\tv1'* ]]
	cp "$T/web.pool" "$T/before"
	run -2 "$TCPPOOL" -f "$T/web.pool" set pool client_rate=fast
	[[ $output == *"client_rate: 'fast': expected N/s or N/s:BURST"* ]]
	run -2 "$TCPPOOL" -f "$T/web.pool" set pool deny=10.1.0.0/8
	[[ $output == *"deny: '10.1.0.0/8' has host bits set (the network is 10.0.0.0/8)"* ]]
	run -2 "$TCPPOOL" -f "$T/web.pool" set b proxy_protocol=v3
	[[ $output == *"proxy_protocol: unknown value 'v3' (expected off, v1 or v2)"* ]]
	run -2 "$TCPPOOL" -f "$T/web.pool" set pool client_prefix6=129
	cmp "$T/before" "$T/web.pool"
	run -0 "$TCPPOOL" -f "$T/web.pool" check
}
