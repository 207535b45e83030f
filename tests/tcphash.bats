#!/usr/bin/env bats
# tcphash: offline answers, golden vectors, and the truth check against a
# live tcpdist on loopback.

bats_require_minimum_version 1.5.0
load 'helpers'

GOLDEN="$BATS_TEST_DIRNAME/golden"
: "${TCPHASH:=$BATS_TEST_DIRNAME/../bin/tcphash}"

setup() {
	require_helpers
	[[ -x $TCPHASH ]] || fail "$TCPHASH missing: run 'make'"
}

teardown() {
	bg_teardown
}

# pool_of NAME HASH_KEY PORT...: a balance = hash pool with backends
# web1.. on 127.0.0.1:PORT, listening on $LISTEN.
pool_of() {
	local file=$1 key=$2 i=0 port
	shift 2
	{
		printf '[pool]\nlisten = 127.0.0.1:%s\nbalance = hash\nhash_key = %s\nretries = 3\n' \
			"$LISTEN" "$key"
		printf 'connect_timeout = 1s\n\n'
		for port in "$@"; do
			i=$((i + 1))
			printf '[backend web%d]\naddress = 127.0.0.1:%s\nweight = %d\n\n' "$i" "$port" \
				$((1 + i % 3))
		done
	} >"$BATS_TEST_TMPDIR/$file"
}

@test "tcphash -h prints usage on stdout; --version; bad usage exits 2" {
	run "$TCPHASH" -h
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "usage: tcphash "* ]]
	run "$TCPHASH" --version
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^tcphash\ [0-9] ]]
	run "$TCPHASH" --bogus
	[ "$status" -eq 2 ]
	run "$TCPHASH" --diff only-one.pool
	[ "$status" -eq 2 ]
	run "$TCPHASH" -n 0 -f "$GOLDEN/hash.pool" 1.2.3.4
	[ "$status" -eq 2 ]
}

@test "golden vectors: 1,000 clients map as committed, with -n 3 too" {
	run "$TCPHASH" -f "$GOLDEN/hash.pool" <"$GOLDEN/clients.txt"
	[ "$status" -eq 0 ]
	diff <(printf '%s\n' "$output") "$GOLDEN/hash.expected"
	"$TCPHASH" -f "$GOLDEN/hash.pool" -n 3 <"$GOLDEN/clients.txt" | diff - "$GOLDEN/hash-n3.expected"
}

@test "golden vectors: the same answers with the pool's sections shuffled" {
	"$TCPHASH" -f "$GOLDEN/hash-shuffled.pool" <"$GOLDEN/clients.txt" | diff - "$GOLDEN/hash.expected"
	"$TCPHASH" -f "$GOLDEN/hash-shuffled.pool" -n 3 <"$GOLDEN/clients.txt" |
		diff - "$GOLDEN/hash-n3.expected"
}

@test "golden vectors: the same answers from a clang build" {
	command -v clang >/dev/null || skip "clang not installed"
	local out="$BATS_TEST_TMPDIR/clang"
	make -s -C "$BATS_TEST_DIRNAME/.." CC=clang B="$out" SANITIZE= "$out/bin/tcphash" >/dev/null
	"$out/bin/tcphash" -f "$GOLDEN/hash.pool" <"$GOLDEN/clients.txt" | diff - "$GOLDEN/hash.expected"
	"$out/bin/tcphash" -f "$GOLDEN/hash.pool" -n 3 <"$GOLDEN/clients.txt" |
		diff - "$GOLDEN/hash-n3.expected"
}

@test "arguments and stdin; a bad line is reported with its number and the rest answered" {
	printf '10.1.1.1\nnot-an-ip\n\n10.1.1.2:80\n[2001:db8::1]:443\n' >"$BATS_TEST_TMPDIR/in"
	run "$TCPHASH" -f "$GOLDEN/hash.pool" <"$BATS_TEST_TMPDIR/in"
	[ "$status" -eq 2 ]
	[[ "$output" == *"stdin:2: invalid client address 'not-an-ip'"* ]]
	[ "$(grep -c $'\t' <<<"$output")" -eq 3 ]
	[[ "$output" == *$'10.1.1.2:80\t'* ]]
	# The same clients as arguments give the same lines.
	diff <("$TCPHASH" -f "$GOLDEN/hash.pool" 10.1.1.1 10.1.1.2:80 '[2001:db8::1]:443') \
		<(grep -v -e not-an-ip -e '^$' "$BATS_TEST_TMPDIR/in" | "$TCPHASH" -f "$GOLDEN/hash.pool")
	# A NUL byte makes the line bad; it does not end the client early.
	run --separate-stderr "$TCPHASH" -f "$GOLDEN/hash.pool" < <(printf '10.1.1.1\0junk\n10.1.1.3\n')
	[ "$status" -eq 2 ]
	[ "$stderr" = "tcphash: stdin:1: invalid client: the line holds a NUL byte" ]
	[[ $output == $'10.1.1.3\t'* && ${#lines[@]} -eq 1 ]]
}

@test "output is CLIENT<TAB>NAME<TAB>ADDRESS; --json carries the same answers" {
	run "$TCPHASH" -f "$GOLDEN/hash.pool" 192.0.2.1
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^192\.0\.2\.1$'\t'[a-z]+$'\t'10\.0\.0\.[0-9]:80$ ]]
	name=$(cut -f2 <<<"$output")
	run "$TCPHASH" -f "$GOLDEN/hash.pool" --json -n 2 192.0.2.1
	[ "$status" -eq 0 ]
	[ "$(jq -r '.[0].backend' <<<"$output")" = "$name" ]
	[ "$(jq -r '.[0].preference | length' <<<"$output")" -eq 2 ]
	[ "$(jq -r '.[0].preference[0].backend' <<<"$output")" = "$name" ]
}

@test "--down NAME moves only that backend's clients, to their next preference" {
	"$TCPHASH" -f "$GOLDEN/hash.pool" -n 2 <"$GOLDEN/clients.txt" >"$BATS_TEST_TMPDIR/pref"
	"$TCPHASH" -f "$GOLDEN/hash.pool" --down echo <"$GOLDEN/clients.txt" >"$BATS_TEST_TMPDIR/down"
	# Expected: a client of echo goes to its second choice; others stay.
	awk -F'\t' 'NR % 2 == 1 { c = $1; first = $2; firstaddr = $3; next }
		first == "echo" { print c "\t" $2 "\t" $3; next } { print c "\t" first "\t" firstaddr }' \
		"$BATS_TEST_TMPDIR/pref" | diff - "$BATS_TEST_TMPDIR/down"
	run ! grep -q $'\techo\t' "$BATS_TEST_TMPDIR/down"
	run "$TCPHASH" -f "$GOLDEN/hash.pool" --down nosuch 1.2.3.4
	[ "$status" -eq 2 ]
	[[ "$output" == *"no backend named 'nosuch'"* ]]
}

@test "no backend available is a negative answer: exit 1" {
	run "$TCPHASH" -f "$GOLDEN/hash.pool" --down alpha --down bravo --down charlie --down echo \
		--down foxtrot 1.2.3.4
	[ "$status" -eq 1 ]
	[[ "$output" == *"no backend available"* ]]
}

@test "--stats: shares match weights; a backend down then up restores the same table" {
	# NAME WEIGHT STATE SLOTS SHARE WEIGHT_SHARE RATIO. The configured
	# table is balanced to within 0.2%; drained and weight-0 have no share.
	grep -v '^state = drain' "$GOLDEN/hash.pool" >"$BATS_TEST_TMPDIR/all-up.pool"
	run "$TCPHASH" --stats -f "$BATS_TEST_TMPDIR/all-up.pool"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 7 ]
	[ "$(awk -F'\t' '$2 > 0 && ($7 < 0.998 || $7 > 1.002)' <<<"$output" | wc -l)" -eq 0 ]
	run "$TCPHASH" --stats -f "$GOLDEN/hash.pool"
	[ "$status" -eq 0 ]
	[ "$(awk -F'\t' '$1 == "delta" || $1 == "golf" { print $4 }' <<<"$output" | sort -u)" = 0 ]
	before=$("$TCPHASH" --stats --json -f "$GOLDEN/hash.pool" | jq -r .digest)
	down=$("$TCPHASH" --stats --json -f "$GOLDEN/hash.pool" --down bravo | jq -r .digest)
	[ "$before" != "$down" ]
	sed 's/^\[backend bravo\]$/&\nstate = down/' "$GOLDEN/hash.pool" >"$BATS_TEST_TMPDIR/down.pool"
	[ "$("$TCPHASH" --stats --json -f "$BATS_TEST_TMPDIR/down.pool" | jq -r .digest)" = "$down" ]
	sed 's/^state = down$/state = up/' "$BATS_TEST_TMPDIR/down.pool" >"$BATS_TEST_TMPDIR/up.pool"
	[ "$("$TCPHASH" --stats --json -f "$BATS_TEST_TMPDIR/up.pool" | jq -r .digest)" = "$before" ]
	[ "$("$TCPHASH" --stats --json -f "$GOLDEN/hash-shuffled.pool" | jq -r .digest)" = "$before" ]
}

@test "--diff: removing or adding one of 10 backends moves close to the ideal share" {
	{
		printf '[pool]\nbalance = hash\n'
		for i in $(seq 1 10); do printf '[backend b%d]\naddress = 127.0.0.1:%d\n' "$i" $((9000 + i)); done
	} >"$BATS_TEST_TMPDIR/ten.pool"
	grep -v -e '^\[backend b10\]' -e ':9010$' "$BATS_TEST_TMPDIR/ten.pool" >"$BATS_TEST_TMPDIR/nine.pool"
	run "$TCPHASH" --diff "$BATS_TEST_TMPDIR/ten.pool" "$BATS_TEST_TMPDIR/nine.pool" --json
	[ "$status" -eq 0 ]
	# Maglev moves a little more than the removed backend's own clients.
	jq -e '.exact and .ideal > 0.0999 and .ideal < 0.1001 and .ratio >= 1 and .ratio <= 1.2' <<<"$output"
	jq -e '[.moves[] | select(.from == "b10")] | map(.share) | add > 0.0999' <<<"$output"
	run "$TCPHASH" --diff "$BATS_TEST_TMPDIR/nine.pool" "$BATS_TEST_TMPDIR/ten.pool" --json
	jq -e '.ratio >= 1 and .ratio <= 1.2' <<<"$output"
	jq -e '[.moves[] | select(.to == "b10")] | map(.share) | add > 0.0999' <<<"$output"
	run "$TCPHASH" --diff "$BATS_TEST_TMPDIR/ten.pool" "$BATS_TEST_TMPDIR/ten.pool"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "moved 0.0000% of clients"* ]]
}

@test "--diff POOL --without/--set: the same answer as --diff against an edited copy; nothing written" {
	local d=$BATS_TEST_TMPDIR/plan TCPPOOL=$BATS_TEST_DIRNAME/../bin/tcppool
	mkdir "$d"
	{
		printf '[pool]\nbalance = hash\n'
		for i in $(seq 1 6); do printf '[backend b%d.dc1]\naddress = 127.0.0.1:%d\n' "$i" $((9000 + i)); done
	} >"$d/web.pool"
	cp "$d/web.pool" "$d/edited.pool"
	"$TCPPOOL" -f "$d/edited.pool" rm b2.dc1
	"$TCPPOOL" -f "$d/edited.pool" set b5.dc1 weight=3
	"$TCPPOOL" -f "$d/edited.pool" set pool table_size=65521
	run -0 "$TCPHASH" --diff "$d/web.pool" "$d/edited.pool" --json
	want=$output
	before=$(cksum <"$d/web.pool")
	run -0 "$TCPHASH" --diff "$d/web.pool" --without b2.dc1 --set b5.dc1.weight=3 \
		--set pool.table_size=65521 --json
	[ "$output" = "$want" ]
	jq -e '.exact == false and ([.moves[] | select(.from == "b2.dc1")] | length > 0)' <<<"$output"
	# KEY= removes the key; an unchanged pool moves nobody
	run -0 "$TCPHASH" --diff "$d/web.pool" --set b1.dc1.weight=
	[[ ${lines[0]} == "moved 0.0000% of clients"* ]]
	# the pool file is untouched, and no lock or temporary file appears
	[ "$(cksum <"$d/web.pool")" = "$before" ]
	[ "$(ls -A "$d" | sort | tr '\n' ' ')" = ".edited.pool.lock edited.pool web.pool " ]
	# refusals: a missing backend, a malformed --set, an invalid result, bad usage
	run -2 "$TCPHASH" --diff "$d/web.pool" --without b9
	[ "$output" = "tcphash: --without: no backend named 'b9'" ]
	run -2 "$TCPHASH" --diff "$d/web.pool" --set b9.weight=2
	[ "$output" = "tcphash: --set: no backend named 'b9'" ]
	run -2 "$TCPHASH" --diff "$d/web.pool" --set b1.dc1
	[ "$output" = "tcphash: --set: 'b1.dc1': expected NAME.KEY=VALUE" ]
	run -2 "$TCPHASH" --diff "$d/web.pool" --set b1.dc1.wieght=2
	[[ $output == "tcphash: $d/web.pool (changed):"*": wieght: unknown key in [backend b1.dc1]; did you mean weight?" ]]
	run -2 "$TCPHASH" --diff "$d/web.pool" "$d/edited.pool" --without b1.dc1
	[[ ${lines[0]} == usage:* ]]
	run -2 "$TCPHASH" -f "$d/web.pool" --without b1.dc1 192.0.2.1
	[[ ${lines[0]} == usage:* ]]
}

@test "--diff: no backend available is told apart from a backend named '-'" {
	local d=$BATS_TEST_TMPDIR
	printf '[pool]\n[backend -]\naddress = 127.0.0.1:9001\nstate = drain\n[backend x]\naddress = 127.0.0.1:9002\nstate = drain\n' >"$d/none.pool"
	sed '0,/state = drain/s//state = up/' "$d/none.pool" >"$d/dash.pool"
	run -1 "$TCPHASH" -f "$d/none.pool" 192.0.2.1
	run -0 "$TCPHASH" -f "$d/dash.pool" 192.0.2.1
	[[ $output == *$'\t-\t'* ]]
	# Every client goes from no backend to the one named "-".
	run -0 "$TCPHASH" --diff "$d/none.pool" "$d/dash.pool"
	[ "${lines[0]}" = "moved 100.0000% of clients, ideal minimum 100.0000% (1.0000x)" ]
	[ "${lines[1]}" = $'-\t-\t1.000000' ]
	run -0 "$TCPHASH" --diff "$d/none.pool" "$d/dash.pool" --json
	jq -e '.moved == 1 and .moves == [{"from": null, "to": "-", "share": 1}]' <<<"$output"
}

@test "a million clients from stdin in well under a second" {
	awk 'BEGIN { for (i = 0; i < 1000000; i++) printf "10.%d.%d.%d:%d\n", int(i / 65536) % 256, int(i / 256) % 256, i % 256, 1024 + i % 60000 }' >"$BATS_TEST_TMPDIR/million"
	local limit=1000
	[[ -n ${SANITIZE:-} ]] && limit=15000 # sanitized builds are several times slower
	start=$(now_ms)
	"$TCPHASH" -f "$GOLDEN/hash.pool" <"$BATS_TEST_TMPDIR/million" >"$BATS_TEST_TMPDIR/answers"
	elapsed=$(($(now_ms) - start))
	echo "1,000,000 clients in ${elapsed} ms"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/answers")" -eq 1000000 ]
	[ "$elapsed" -lt "$limit" ]
}

# Truth check: many client addresses through a live tcpdist; every answer
# equals tcphash's for the same pool.
@test "live tcpdist answers exactly as tcphash for 199 source addresses, also with a backend down" {
	read -r LISTEN p1 p2 p3 p4 p5 <<<"$(free_port 6 | tr '\n' ' ')"
	pool_of hash.pool ip "$p1" "$p2" "$p3" "$p4" "$p5"
	for i in 1 2 3 4 5; do
		eval "port=\$p$i"
		start_namesrv "web$i" "127.0.0.1:$port"
	done
	start_tcpdist "$BATS_TEST_TMPDIR/hash.pool"
	srcs=$(seq -f '127.0.0.%g' 2 200)
	"$HELPERS/fromaddrs" "127.0.0.1:$LISTEN" $srcs >"$BATS_TEST_TMPDIR/live"
	"$TCPHASH" -f "$BATS_TEST_TMPDIR/hash.pool" $srcs | cut -f1,2 >"$BATS_TEST_TMPDIR/offline"
	diff "$BATS_TEST_TMPDIR/offline" "$BATS_TEST_TMPDIR/live"
	[ "$(cut -f2 "$BATS_TEST_TMPDIR/live" | sort -u | wc -l)" -eq 5 ]

	# web3 dies: tcpdist's retries follow the preference order, which is
	# exactly what tcphash --down web3 answers.
	stop_bg web3 KILL || true
	"$HELPERS/fromaddrs" "127.0.0.1:$LISTEN" $srcs >"$BATS_TEST_TMPDIR/live-down"
	"$TCPHASH" -f "$BATS_TEST_TMPDIR/hash.pool" --down web3 $srcs | cut -f1,2 >"$BATS_TEST_TMPDIR/offline-down"
	diff "$BATS_TEST_TMPDIR/offline-down" "$BATS_TEST_TMPDIR/live-down"
	run ! grep -q $'\tweb3$' "$BATS_TEST_TMPDIR/live-down"
}

@test "hash_key = ip_port: source ports matter, live and offline agree" {
	read -r LISTEN p1 p2 p3 <<<"$(free_port 4 | tr '\n' ' ')"
	pool_of ipport.pool ip_port "$p1" "$p2" "$p3"
	for i in 1 2 3; do
		eval "port=\$p$i"
		start_namesrv "web$i" "127.0.0.1:$port"
	done
	start_tcpdist "$BATS_TEST_TMPDIR/ipport.pool"
	srcs=$(for port in $(seq 41000 41060); do echo "127.0.0.9:$port"; done)
	"$HELPERS/fromaddrs" "127.0.0.1:$LISTEN" $srcs >"$BATS_TEST_TMPDIR/live"
	"$TCPHASH" -f "$BATS_TEST_TMPDIR/ipport.pool" $srcs | cut -f1,2 >"$BATS_TEST_TMPDIR/offline"
	diff "$BATS_TEST_TMPDIR/offline" "$BATS_TEST_TMPDIR/live"
	[ "$(cut -f2 "$BATS_TEST_TMPDIR/live" | sort -u | wc -l)" -eq 3 ]
}

@test "two tcpdist processes on one pool (sections in another order) agree for every client" {
	read -r LISTEN L2 p1 p2 p3 p4 <<<"$(free_port 6 | tr '\n' ' ')"
	pool_of a.pool ip "$p1" "$p2" "$p3" "$p4"
	# Reverse the backend sections and listen elsewhere.
	awk -v RS= -v ORS='\n\n' '{ s[NR] = $0 } END { print s[1]; for (i = NR; i > 1; i--) print s[i] }' \
		"$BATS_TEST_TMPDIR/a.pool" | sed "s/^listen = .*/listen = 127.0.0.1:$L2/" >"$BATS_TEST_TMPDIR/b.pool"
	for i in 1 2 3 4; do
		eval "port=\$p$i"
		start_namesrv "web$i" "127.0.0.1:$port"
	done
	start_tcpdist "$BATS_TEST_TMPDIR/a.pool"
	start_bg tcpdist2 "$TCPDIST" "$BATS_TEST_TMPDIR/b.pool"
	wait_for_file_line "$BATS_TEST_TMPDIR/tcpdist2.err" 'listening on'
	srcs=$(seq -f '127.0.1.%g' 1 150)
	"$HELPERS/fromaddrs" "127.0.0.1:$LISTEN" $srcs >"$BATS_TEST_TMPDIR/one"
	"$HELPERS/fromaddrs" "127.0.0.1:$L2" $srcs >"$BATS_TEST_TMPDIR/two"
	diff "$BATS_TEST_TMPDIR/one" "$BATS_TEST_TMPDIR/two"
	[ "$(cut -f2 "$BATS_TEST_TMPDIR/one" | sort -u | wc -l)" -eq 4 ]
}
