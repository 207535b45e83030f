#!/usr/bin/env bats
# tcpdist --metrics as an HTTP server: idle clients cannot lock scrapers out
# (header timeout, eviction of the idlest), a slow reader still gets its
# whole answer (a write deadline of its own), every malformed request gets
# an answer. Real sockets on 127.0.0.1; every wait polls with a deadline;
# teardown kills by pid. The figures tested (16 slots, 2 s header timeout)
# are the man page's.

bats_require_minimum_version 1.5.0
load 'helpers'

setup() {
	require_helpers
	[[ -x $HELPERS/httpraw ]] || fail "$HELPERS/httpraw missing: run 'make helpers'"
	T=$BATS_TEST_TMPDIR
}

# A test that passed also proves tcpdist stops cleanly (exit 0, which
# under the sanitizers also means no leak): clients go first.
teardown() {
	tcpdist_teardown
}

# start_metrics [NBACKENDS]: tcpdist with --metrics on $PM and NBACKENDS
# (default 1) backends that nobody listens on and nobody checks; long
# names, so that many make a big answer (2000 make about 7 MB). They are on
# 127.0.0.2, so no port of theirs can be tcpdist's own listener on 127.0.0.1
# (tcpdist refuses such a loop).
start_metrics() {
	ports P PM
	{
		printf '[pool]\nlisten = 127.0.0.1:%s\ncheck_interval = 0\nbalance = roundrobin\n' "$P"
		awk -v n="${1:-1}" 'BEGIN { for (i = 1; i <= n; i++)
			printf "[backend b%s-%05d]\naddress = 127.0.0.2:%d\n",
				"0123456789abcdef0123456789abcdef0123456789abcdef0123456", i, 10000 + i }'
	} >"$T/web.pool"
	start_tcpdist "$T/web.pool" --metrics "127.0.0.1:$PM"
}

# answer_of NAME [I]: the report line of connection I (default 1) of the
# httpraw started as NAME.
answer_of() {
	grep "^${2:-1} status=" "$T/$1.out"
}

# field LINE KEY: the value of KEY=VALUE in an httpraw report line.
field() {
	sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"
}

@test "metrics: 16 idle connections do not lock out a scrape; the idlest is evicted with a 503" {
	start_metrics
	# 20: the last 4 already evict the first 4, the scrape the 5th.
	start_bg idle "$HELPERS/httpraw" -n 20 --timeout 3000 "127.0.0.1:$PM"
	wait_for_file_line "$T/idle.out" '^connected 20$' 2
	local t0
	t0=$(now_ms)
	run curl -s --max-time 2 -o "$T/metrics" -w '%{http_code}' "http://127.0.0.1:$PM/metrics"
	echo "# scrape answered in $(($(now_ms) - t0)) ms" >&3
	[ "$status" -eq 0 ]
	[ "$output" = 200 ]
	grep -q '^tcpdist_connections_accepted_total 0$' "$T/metrics"
	wait_for_line_count "$T/idle.out" '^[0-9]+ status=' 5 1
	for i in 1 2 3 4 5; do
		answer_of idle "$i" | grep -q ' status=HTTP/1.1 503 Service Unavailable .* end=eof$'
	done
	# The others still wait for their header timeout.
	[ "$(grep -c '^[0-9]* status=' "$T/idle.out")" -eq 5 ]
}

@test "metrics: an idle connection and an unfinished request get 408 at the 2 s header timeout" {
	start_metrics
	start_bg idle "$HELPERS/httpraw" --timeout 4000 "127.0.0.1:$PM"
	# Bytes keep coming, but the timeout runs from accept, not from the last byte.
	start_bg partial "$HELPERS/httpraw" --timeout 4000 "127.0.0.1:$PM" 'GET /metrics HTTP/1.1\r\nHost: x\r\n'
	wait_for_file_line "$T/idle.out" '^1 status=' 4
	wait_for_file_line "$T/partial.out" '^1 status=' 1
	for name in idle partial; do
		line=$(answer_of "$name")
		echo "# $name: $line" >&3
		[[ $line == *' status=HTTP/1.1 408 Request Timeout '*' end=eof' ]]
		after=$(field "$line" after_ms)
		((after >= 1800 && after <= 3000))
	done
}

@test "metrics: a NUL byte gets 400 at once; an oversized header 431; a request cut short 400" {
	start_metrics
	run "$HELPERS/httpraw" --timeout 1000 "127.0.0.1:$PM" 'GET /metrics\0 HTTP/1.1\r\n\r\n'
	[ "$status" -eq 0 ]
	[[ $output == *'1 status=HTTP/1.1 400 Bad Request '*' end=eof' ]]
	# In a header line, before the blank line: no waiting for the rest.
	run "$HELPERS/httpraw" --timeout 1000 "127.0.0.1:$PM" 'GET /metrics HTTP/1.1\r\nX: a\0b\r\n'
	[[ $output == *'1 status=HTTP/1.1 400 Bad Request '*' end=eof' ]]
	(($(field "${lines[1]}" after_ms) < 500))
	# More than 4096 bytes without a blank line; the rest is read and dropped.
	local big
	printf -v big '%*s' 6000 ''
	run "$HELPERS/httpraw" --timeout 1000 "127.0.0.1:$PM" "GET /metrics HTTP/1.1\\r\\nX: ${big// /a}\\r\\n\\r\\n"
	[[ $output == *'1 status=HTTP/1.1 431 Request Header Fields Too Large '*' end=eof' ]]
	# A client that ends its side before the blank line.
	run "$HELPERS/httpraw" --shut --timeout 1000 "127.0.0.1:$PM" 'GET /metrics HTTP/1.1\r\n'
	[[ $output == *'1 status=HTTP/1.1 400 Bad Request '*' end=eof' ]]
}

@test "metrics: a slow reader gets its whole answer past the header timeout; the write deadline is its own" {
	start_metrics 2000
	# Reads nothing for 2.5 s: the ~7 MB answer (2000 backends, each with its
	# connect-time histogram) fills the socket buffers and
	# tcpdist is still writing when an idle client beside it times out.
	start_bg reader "$HELPERS/httpraw" --rcvbuf 65536 --read-after 2500 --timeout 6000 \
		"127.0.0.1:$PM" 'GET /metrics HTTP/1.1\r\n\r\n'
	start_bg idle "$HELPERS/httpraw" --timeout 4000 "127.0.0.1:$PM"
	wait_for_file_line "$T/idle.out" '^1 status=' 3
	[[ $(answer_of idle) == *' status=HTTP/1.1 408 Request Timeout '* ]]
	# The reader's side has not been shut yet: its answer was still being
	# written when the header timeout passed.
	[[ -n $(ss -Htn state established "sport = :$PM") ]] ||
		fail "the answer fit in the socket buffers: nothing was left to write"
	wait_for_file_line "$T/reader.out" '^1 status=' 4
	line=$(answer_of reader)
	echo "# reader: $line" >&3
	[[ $line == *' status=HTTP/1.1 200 OK '*' end=eof' ]]
	[ "$(field "$line" body)" -eq "$(field "$line" length)" ]
	(($(field "$line" length) > 4000000))
	(($(field "$line" after_ms) >= 2400))
}

@test "metrics: per-backend bytes, connect and session histograms, retries, build and process figures match the traffic; the instance label is on every sample" {
	command -v promtool >/dev/null || skip "promtool not installed"
	ports P PA PD PM
	start_namesrv a "127.0.0.1:$PA"
	# "dead" answers nobody: each client that meets it first is retried on a.
	printf '[pool]\nlisten = 127.0.0.1:%s\nbalance = roundrobin\ncheck_interval = 0\ninstance = edge-1\n' "$P" >"$T/web.pool"
	printf '[backend a]\naddress = 127.0.0.1:%s\n[backend dead]\naddress = 127.0.0.1:%s\n' "$PA" "$PD" >>"$T/web.pool"
	start_tcpdist "$T/web.pool" --metrics "127.0.0.1:$PM"
	[ "$("$HELPERS/names" --send hello "127.0.0.1:$P" 4 | sort -u)" = a ]
	curl -sf "http://127.0.0.1:$PM/metrics" >"$T/metrics"
	promtool check metrics <"$T/metrics"
	m() { awk -v k="$1" '$1 == k { print $2 }' "$T/metrics"; }
	local i='instance="edge-1"'
	[ "$(m "tcpdist_backend_bytes_in_total{$i,backend=\"a\"}")" = 24 ]   # 4 x "hello\n"
	[ "$(m "tcpdist_backend_bytes_out_total{$i,backend=\"a\"}")" = 32 ]  # 4 x ("a\n" + echo)
	[ "$(m "tcpdist_backend_connect_seconds_count{$i,backend=\"a\"}")" = 4 ]
	[ "$(m "tcpdist_backend_connect_seconds_bucket{$i,backend=\"a\",le=\"+Inf\"}")" = 4 ]
	[ "$(m "tcpdist_backend_connect_seconds_count{$i,backend=\"dead\"}")" = 0 ]
	[ "$(m "tcpdist_session_duration_seconds_count{$i}")" = 4 ]
	[ "$(m "tcpdist_connection_retries_total{$i}")" = 2 ] # roundrobin: every other client met dead first
	[ "$(m "tcpdist_build_info{$i,version=\"$("$TCPDIST" --version | cut -d' ' -f2)\"}")" = 1 ]
	local start=$(m "process_start_time_seconds{$i}") now=$(date +%s)
	((${start%.*} <= now && ${start%.*} > now - 60))
	(($(m "process_open_fds{$i}") > 5))
	(($(m "process_max_fds{$i}") >= 64))
	# Every sample carries the label.
	run grep -v '^#' "$T/metrics"
	[ "$(grep -cv "$i" <<<"$output")" = 0 ]
}
