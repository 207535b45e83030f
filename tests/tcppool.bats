#!/usr/bin/env bats
# tcppool: every command and its refusals, layout kept (golden diffs of
# commented files), parallel writers, writers killed mid-edit, symlinks and
# modes, and live edits of a running tcpdist's pool. Every wait polls with a
# deadline; every background process is killed by pid in teardown.

bats_require_minimum_version 1.5.0
load 'helpers'

: "${TCPPOOL:=$BATS_TEST_DIRNAME/../bin/tcppool}"
GOLDEN="$BATS_TEST_DIRNAME/golden/tcppool"

setup() {
	[[ -x $TCPPOOL ]] || fail "$TCPPOOL missing: run 'make'"
	T=$BATS_TEST_TMPDIR
	unset TCPDIST_POOL
}

teardown() {
	[[ -n ${BATS_TEST_COMPLETED:-} ]] || dump_logs
	bg_teardown
	[[ -z ${LOCKDIR:-} ]] || rm -rf "$LOCKDIR"
}

# A small valid pool in $T/web.pool.
small_pool() {
	write_pool web.pool <<-'EOF'
		; web.pool for the tests
		[pool]
		listen = 127.0.0.1:8080   ; front
		balance = roundrobin

		[backend web1]
		address = 10.0.0.1:80
		weight = 2                ; twice the share

		[backend web2]
		address = 10.0.0.2:80
		state = drain
	EOF
}

# refused CMD...: tcppool -f $T/web.pool CMD exits 2, says why on stderr,
# and leaves the file byte-identical (same inode: not even rewritten).
refused() {
	local before ino
	before=$(cat "$T/web.pool")
	ino=$(stat -c %i "$T/web.pool")
	run --separate-stderr "$TCPPOOL" -f "$T/web.pool" "$@"
	echo "status $status, stderr: $stderr"
	[ "$status" -eq 2 ]
	[ -z "$output" ]
	[[ $stderr == "tcppool: "* ]]
	[ "$(cat "$T/web.pool")" = "$before" ] || fail "the file changed"
	[ "$(stat -c %i "$T/web.pool")" = "$ino" ] || fail "the file was replaced"
}

# For the stress tests' thousands of short processes: under a sanitized
# build, LeakSanitizer's scan at exit would take most of their time (the
# same code paths are leak-checked by the other tests).
no_leak_scan() {
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
}


# ---------------------------------------------------------------------------
# Command line

@test "-h and --help print usage on stdout; --version; bad usage exits 2" {
	run --separate-stderr "$TCPPOOL" -h
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == "usage: tcppool [-f POOL] init "* ]]
	[ -z "$stderr" ]
	run --separate-stderr "$TCPPOOL" --help
	[ "$status" -eq 0 ]
	[[ $output == *"check [--json]"* ]]
	run --separate-stderr "$TCPPOOL" --version
	[ "$status" -eq 0 ]
	[ "$output" = "tcppool 0.1.0" ]
	small_pool
	for args in "" "bogus" "--bogus list" "list extra" "show" "add web9" "rm" "set web1" \
		"drain" "up a b" "rm --json web1" "list --bogus"; do
		run --separate-stderr "$TCPPOOL" -f "$T/web.pool" $args
		echo "args '$args': status $status"
		[ "$status" -eq 2 ]
		[[ $stderr == *"usage: tcppool"* ]]
	done
}

@test "the pool file comes from -f, else TCPDIST_POOL; neither is an error" {
	small_pool
	run --separate-stderr "$TCPPOOL" list
	[ "$status" -eq 2 ]
	[ "$stderr" = "tcppool: no pool file: give -f POOL or set TCPDIST_POOL" ]
	TCPDIST_POOL="$T/web.pool" run -0 "$TCPPOOL" list
	[ "${#lines[@]}" -eq 2 ]
	cp "$T/web.pool" "$T/other.pool"
	"$TCPPOOL" -f "$T/other.pool" rm web2
	TCPDIST_POOL="$T/web.pool" run -0 "$TCPPOOL" -f "$T/other.pool" list
	[ "${#lines[@]}" -eq 1 ]
	run --separate-stderr "$TCPPOOL" -f "$T/missing.pool" list
	[ "$status" -eq 2 ]
	[[ $stderr == "tcppool: $T/missing.pool: No such file or directory" ]]
}

# ---------------------------------------------------------------------------
# Commands

@test "init creates a valid pool with a commented [pool] section, and never overwrites" {
	run -0 "$TCPPOOL" -f "$T/new.pool" init listen=127.0.0.1:9000 retries=3
	[ -z "$output" ]
	run -0 "$TCPPOOL" -f "$T/new.pool" check
	[ "$output" = "configuration OK" ]
	grep -q '^\[pool\]$' "$T/new.pool"
	grep -Eq '^listen = 127\.0\.0\.1:9000 +; ' "$T/new.pool"
	grep -Eq '^retries = 3 +; ' "$T/new.pool"
	grep -Eq '^balance = hash +; hash \| roundrobin' "$T/new.pool"
	[ "$(grep -c '^;' "$T/new.pool")" -ge 2 ]
	[ "$("$TCPPOOL" -f "$T/new.pool" list)" = "" ]
	cp "$T/new.pool" "$T/before"
	run --separate-stderr "$TCPPOOL" -f "$T/new.pool" init
	[ "$status" -eq 2 ]
	[ "$stderr" = "tcppool: $T/new.pool: already exists" ]
	cmp "$T/before" "$T/new.pool"
	# an invalid setting: refused, and no file is made
	run --separate-stderr "$TCPPOOL" -f "$T/bad.pool" init retries=99
	[ "$status" -eq 2 ]
	[[ $stderr == "tcppool: $T/bad.pool:"*": retries: 99 is out of range (0-32)" ]]
	[ ! -e "$T/bad.pool" ]
	[ -z "$(find "$T" -name '*.tmp*')" ]
	# the file gets 0666 less the umask, like any new file
	(umask 027 && "$TCPPOOL" -f "$T/masked.pool" init)
	[ "$(stat -c %a "$T/masked.pool")" = 640 ]
}

@test "list: NAME<TAB>ADDRESS<TAB>WEIGHT<TAB>STATE in file order; --json the same" {
	small_pool
	run -0 "$TCPPOOL" -f "$T/web.pool" list
	[ "${lines[0]}" = $'web1\t10.0.0.1:80\t2\tup' ]
	[ "${lines[1]}" = $'web2\t10.0.0.2:80\t1\tdrain' ]
	[ "${#lines[@]}" -eq 2 ]
	run -0 "$TCPPOOL" -f "$T/web.pool" list --json
	[ "$(jq -r '.[] | [.name, .address, .weight, .state] | @tsv' <<<"$output")" = \
		"$("$TCPPOOL" -f "$T/web.pool" list)" ]
	[ "$(jq -r '.[1].weight | type' <<<"$output")" = number ]
	# no backends: no lines; an empty JSON array
	printf '[pool]\n' >"$T/empty.pool"
	run -0 "$TCPPOOL" -f "$T/empty.pool" list
	[ -z "$output" ]
	run -0 "$TCPPOOL" -f "$T/empty.pool" list --json
	[ "$(jq length <<<"$output")" -eq 0 ]
	# an invalid pool is an error, with the loader's FILE:LINE: KEY: reason
	printf '[pool]\nretries = many\n' >"$T/bad.pool"
	run --separate-stderr "$TCPPOOL" -f "$T/bad.pool" list
	[ "$status" -eq 2 ]
	[ "$stderr" = "tcppool: $T/bad.pool:2: retries: invalid number 'many'" ]
}

@test "show NAME: every setting with defaults; show pool; a missing backend exits 1" {
	small_pool
	run -0 "$TCPPOOL" -f "$T/web.pool" show web2
	[[ $output == $'name\tweb2\naddress\t10.0.0.2:80\nweight\t1\nstate\tdrain\nmax_conns\t0\n'* ]]
	[[ $output == *$'\ncheck\tconnect\n'* && $output == *$'\nslowstart\t0s' ]]
	run -0 "$TCPPOOL" -f "$T/web.pool" show --json web1
	jq -e '. == {"name": "web1", "address": "10.0.0.1:80", "weight": 2, "state": "up",
		"max_conns": 0, "proxy_protocol": "off", "backup": "no", "check": "connect", "check_steps": [],
		"check_http": "GET /", "check_expect_status": "200-399", "check_port": 0,
		"check_timeout": "2s", "on_down": "keep", "slowstart": "0s"}' <<<"$output"
	run -0 "$TCPPOOL" -f "$T/web.pool" show pool
	[[ $output == *$'listen\t127.0.0.1:8080\nbalance\troundrobin\n'* ]]
	[[ $output == *$'connect_timeout\t3s\n'* ]]
	[[ $output == *$'backends\t2' ]]
	run -0 "$TCPPOOL" -f "$T/web.pool" show pool --json
	jq -e '.listen == ["127.0.0.1:8080"] and .retries == 2 and (.table_size | type) == "number"' <<<"$output"
	run --separate-stderr "$TCPPOOL" -f "$T/web.pool" show web3
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "$stderr" = "tcppool: $T/web.pool: no backend named 'web3'" ]
}

@test "add appends a backend section; rm removes it with its comments" {
	small_pool
	cp "$T/web.pool" "$T/orig"
	run -0 "$TCPPOOL" -f "$T/web.pool" add web3 '[::1]:8003' weight=5 state=down max_conns=10
	[ -z "$output" ]
	diff "$T/orig" "$T/web.pool" >"$T/diff" || true
	diff - "$T/diff" <<-'EOF'
		12a13,18
		> 
		> [backend web3]
		> address = [::1]:8003
		> weight = 5
		> state = down
		> max_conns = 10
	EOF
	[ "$("$TCPPOOL" -f "$T/web.pool" list | tail -1)" = $'web3\t[::1]:8003\t5\tdown' ]
	"$TCPPOOL" -f "$T/web.pool" rm web3
	cmp "$T/orig" "$T/web.pool"
	"$TCPPOOL" -f "$T/web.pool" rm web1
	[ "$("$TCPPOOL" -f "$T/web.pool" list | cut -f1)" = web2 ]
	run ! grep -q 'twice' "$T/web.pool"
}

@test "add refuses a duplicate name, a bad address, an unknown key, a bad value or name" {
	small_pool
	refused add web1 10.0.0.9:80
	[ "$stderr" = "tcppool: $T/web.pool: backend 'web1' already exists" ]
	refused add web3 10.0.0.3
	[ "$stderr" = "tcppool: $T/web.pool:15: address: '10.0.0.3' needs a port: HOST:PORT" ]
	refused add web3 10.0.0.3:99999
	[[ $stderr == *":15: address: '10.0.0.3:99999': bad port '99999' (1-65535)" ]]
	refused add web3 10.0.0.3:80 colour=blue
	[ "$stderr" = "tcppool: $T/web.pool:16: colour: unknown key in [backend web3]" ]
	refused add web3 10.0.0.3:80 weight=257
	[ "$stderr" = "tcppool: $T/web.pool:16: weight: 257 is out of range (0-256)" ]
	refused add web3 10.0.0.3:80 state=sleeping
	[[ $stderr == *":16: state: unknown value 'sleeping' (expected up, drain or down)" ]]
	refused add 'web 3' 10.0.0.3:80
	[[ $stderr == *"invalid backend name"* ]]
	refused add web3 10.0.0.3:80 weight
	[[ $stderr == *"'weight': expected KEY=VALUE"* ]]
	refused add web3 '10.0.0.3:80 ; x'
	[[ $stderr == *"would start a comment"* ]]
}

@test "rm refuses a missing backend" {
	small_pool
	refused rm web9
	[ "$stderr" = "tcppool: $T/web.pool: no backend named 'web9'" ]
}

@test "set NAME and set pool change only their lines; KEY= removes a key" {
	small_pool
	cp "$T/web.pool" "$T/orig"
	"$TCPPOOL" -f "$T/web.pool" set web1 weight=3 address=10.0.0.11:80
	"$TCPPOOL" -f "$T/web.pool" set pool balance=leastconn retries=4
	diff "$T/orig" "$T/web.pool" >"$T/diff" || true
	diff - "$T/diff" <<-'EOF'
		4c4,5
		< balance = roundrobin
		---
		> balance = leastconn
		> retries = 4
		7,8c8,9
		< address = 10.0.0.1:80
		< weight = 2                ; twice the share
		---
		> address = 10.0.0.11:80
		> weight = 3                ; twice the share
	EOF
	"$TCPPOOL" -f "$T/web.pool" set pool retries=
	"$TCPPOOL" -f "$T/web.pool" set web2 state=
	[ "$("$TCPPOOL" -f "$T/web.pool" list | tail -1)" = $'web2\t10.0.0.2:80\t1\tup' ]
	run ! grep -q retries "$T/web.pool"
}

@test "set refuses a missing backend, an unknown key, a bad value" {
	small_pool
	refused set web9 weight=1
	[ "$stderr" = "tcppool: $T/web.pool: no backend named 'web9'" ]
	refused set web1 colour=blue
	[ "$stderr" = "tcppool: $T/web.pool:9: colour: unknown key in [backend web1]" ]
	refused set pool colour=blue
	[ "$stderr" = "tcppool: $T/web.pool:5: colour: unknown key in [pool]" ]
	# the loader's suggestions, and where a key belongs; nothing written
	cp "$T/web.pool" "$T/before.pool"
	refused set web1 wieght=3
	[ "$stderr" = "tcppool: $T/web.pool:9: wieght: unknown key in [backend web1]; did you mean weight?" ]
	refused set pool retries=1 wieght=3
	[ "$stderr" = "tcppool: $T/web.pool:6: wieght: unknown key in [pool]; did you mean weight (only in a [backend NAME] section)?" ]
	refused set web1 retries=3
	[ "$stderr" = "tcppool: $T/web.pool:9: retries: only in the [pool] section" ]
	refused add web3 10.0.0.3:80 stat=drain
	[[ $stderr == *": stat: unknown key in [backend web3]; did you mean state?" ]]
	cmp "$T/web.pool" "$T/before.pool"
	refused set pool balance=fastest
	[[ $stderr == *":4: balance: unknown value 'fastest'"* ]]
	refused set pool connect_timeout=soon
	[[ $stderr == *":5: connect_timeout: invalid duration 'soon'"* ]]
	refused set web1 address=
	[ "$stderr" = "tcppool: $T/web.pool:6: [backend web1]: missing address" ]
	refused set web1 weight=1 =2
	[[ $stderr == *"'=2': expected KEY=VALUE" ]]
}

@test "set pool zone_table_size: a prime is written and shown by show pool; 65536 is refused" {
	small_pool
	run -0 "$TCPPOOL" -f "$T/web.pool" show pool
	[[ $output == *$'\ntable_size\t524287\nzone_table_size\t65521\n'* ]]
	refused set pool zone_table_size=65536
	[[ $stderr == "tcppool: $T/web.pool:"*": zone_table_size: 65536 is not a prime" ]]
	"$TCPPOOL" -f "$T/web.pool" set pool zone_table_size=131071
	grep -qx 'zone_table_size = 131071' "$T/web.pool"
	run -0 "$TCPPOOL" -f "$T/web.pool" show pool
	[[ $output == *$'\ntable_size\t524287\nzone_table_size\t131071\n'* ]]
	run -0 "$TCPPOOL" -f "$T/web.pool" show pool --json
	jq -e '.table_size == 524287 and .zone_table_size == 131071' <<<"$output"
	run -0 "$TCPPOOL" -f "$T/web.pool" check
}

@test "drain, down and up set the state; nothing to change writes nothing" {
	small_pool
	"$TCPPOOL" -f "$T/web.pool" drain web1
	[ "$("$TCPPOOL" -f "$T/web.pool" show web1 | grep state)" = $'state\tdrain' ]
	grep -q '^weight = 2                ; twice the share$' "$T/web.pool"
	"$TCPPOOL" -f "$T/web.pool" down web1
	[ "$(grep -c '^state = down$' "$T/web.pool")" -eq 1 ]
	"$TCPPOOL" -f "$T/web.pool" up web2
	[ "$("$TCPPOOL" -f "$T/web.pool" list | cut -f4 | xargs)" = "down up" ]
	# already so: the file is not even rewritten
	ino=$(stat -c %i "$T/web.pool")
	"$TCPPOOL" -f "$T/web.pool" down web1
	"$TCPPOOL" -f "$T/web.pool" up web2
	[ "$(stat -c %i "$T/web.pool")" = "$ino" ]
	printf '\n[backend web3]\naddress = 10.0.0.3:80\n' >>"$T/web.pool"
	ino=$(stat -c %i "$T/web.pool")
	"$TCPPOOL" -f "$T/web.pool" up web3 # no state line: up already
	[ "$(stat -c %i "$T/web.pool")" = "$ino" ]
	[ "$(sed -n '/^\[backend web3\]/,$p' "$T/web.pool" | grep -c '^state' || true)" -eq 0 ]
	for cmd in drain up down; do
		refused "$cmd" web9
		[ "$stderr" = "tcppool: $T/web.pool: no backend named 'web9'" ]
	done
}

@test "check lists every problem, exit 1; a valid pool says so, exit 0" {
	small_pool
	run -0 "$TCPPOOL" -f "$T/web.pool" check
	[ "$output" = "configuration OK" ]
	run -0 "$TCPPOOL" -f "$T/web.pool" check --json
	[ "$output" = "[]" ] || [ "$(jq length <<<"$output")" -eq 0 ]
	write_pool bad.pool <<-'EOF'
		[pool]
		balance = fastest
		retries = 99
		[backend a]
		weight = 1
		colour = red
		[backend a]
		address = 1.2.3.4:80
	EOF
	run --separate-stderr "$TCPPOOL" -f "$T/bad.pool" check
	[ "$status" -eq 1 ]
	[ -z "$stderr" ]
	printf '%s\n' "${lines[@]}"
	[ "${#lines[@]}" -eq 5 ]
	[[ ${lines[0]} == "$T/bad.pool:2: balance: unknown value 'fastest'"* ]]
	[ "${lines[1]}" = "$T/bad.pool:3: retries: 99 is out of range (0-32)" ]
	[ "${lines[2]}" = "$T/bad.pool:6: colour: unknown key in [backend a]" ]
	[ "${lines[3]}" = "$T/bad.pool:7: [backend a]: duplicate backend (first at line 4)" ]
	[ "${lines[4]}" = "$T/bad.pool:4: [backend a]: missing address" ]
	run --separate-stderr "$TCPPOOL" -f "$T/bad.pool" check --json
	[ "$status" -eq 1 ]
	jq -e 'length == 5 and .[1] == {"file": "'"$T"'/bad.pool", "line": 3,
		"message": "retries: 99 is out of range (0-32)"}' <<<"$output"
	run --separate-stderr "$TCPPOOL" -f "$T/missing.pool" check
	[ "$status" -eq 2 ]
	run --separate-stderr "$TCPPOOL" -f "$T" check
	[ "$status" -eq 2 ]
	[ "$stderr" = "tcppool: $T: not a regular file" ]
	# What check says cannot be written: exit 2 and why, for a bad pool too.
	run --separate-stderr bash -c '"$0" -f "$1" check >/dev/full' "$TCPPOOL" "$T/bad.pool"
	[ "$status" -eq 2 ]
	[ "$stderr" = "tcppool: stdout: No space left on device" ]
	run --separate-stderr bash -c '"$0" -f "$1" check --json >/dev/full' "$TCPPOOL" "$T/web.pool"
	[ "$status" -eq 2 ]
}

@test "check: a wrong address is one problem, not also a missing one; a long value is cut between characters and the reason kept" {
	write_pool addr.pool <<-'EOF'
		[pool]
		listen = 127.0.0.1:8080
		[backend a]
		address = [fe80::1%lo]:80
		[backend b]
		address = 127.0.0.1:0
		[backend c]
		address =
		[backend d]
		weight = 1
	EOF
	run --separate-stderr "$TCPPOOL" -f "$T/addr.pool" check
	[ "$status" -eq 1 ]
	printf '%s\n' "${lines[@]}"
	[ "${#lines[@]}" -eq 4 ]
	[[ ${lines[0]} == "$T/addr.pool:4: address: "* ]]
	[[ ${lines[1]} == "$T/addr.pool:6: address: "* ]]
	[ "${lines[2]}" = "$T/addr.pool:8: address: missing value" ]
	[ "${lines[3]}" = "$T/addr.pool:9: [backend d]: missing address" ]
	# 92 two-byte characters: the message quotes only the start of them,
	# whole characters followed by "...", and still says what is expected.
	{
		printf '[pool]\nbalance = '
		for _ in $(seq 92); do printf '\xc3\xa9'; done
		printf '\n'
	} >"$T/utf8.pool"
	run --separate-stderr "$TCPPOOL" -f "$T/utf8.pool" check
	[ "$status" -eq 1 ]
	[[ $output == *"...' (expected hash, roundrobin, leastconn or random)" ]]
	iconv -f UTF-8 -t UTF-8 <<<"$output" >/dev/null
	run --separate-stderr "$TCPPOOL" -f "$T/utf8.pool" check --json
	[ "$status" -eq 1 ]
	jq -e 'length == 1 and (.[0].message | endswith("(expected hash, roundrobin, leastconn or random)"))' <<<"$output"
}

@test "an edit that would take the file over 16 MiB is refused, the file unchanged" {
	small_pool
	local size
	# Comment lines up to 40 bytes short of the limit: valid, and loaded.
	size=$(stat -c %s "$T/web.pool")
	yes '; padding padding padding padding padding padding padding' |
		head -c $((16 * 1024 * 1024 - 40 - size)) >>"$T/web.pool"
	printf '\n' >>"$T/web.pool"
	run -0 "$TCPPOOL" -f "$T/web.pool" check
	cp "$T/web.pool" "$T/before"
	run --separate-stderr "$TCPPOOL" -f "$T/web.pool" add web3 10.0.0.3:80 weight=2
	[ "$status" -eq 2 ]
	[[ $stderr == *"file too large ("*" bytes, at most 16777216)"* ]]
	cmp "$T/before" "$T/web.pool"
}

@test "an edit leaves alone the lock of a pool whose name starts like its temporaries" {
	small_pool
	# web.pool's temporaries are .web.pool.tmpXXXXXX; the pool web.pool.tmp1
	# has the lock .web.pool.tmp1.lock, also 6 bytes after ".web.pool.tmp".
	run -0 "$TCPPOOL" -f "$T/web.pool.tmp1" init
	[ -e "$T/.web.pool.tmp1.lock" ]
	: >"$T/.web.pool.tmpq7x0zz" # a temporary left by a writer killed mid-edit
	run -0 "$TCPPOOL" -f "$T/web.pool" add web3 10.0.0.3:80
	[ -e "$T/.web.pool.tmp1.lock" ]
	[ ! -e "$T/.web.pool.tmpq7x0zz" ]
}

@test "init takes any file name: long, not UTF-8, with a newline" {
	local long name
	long=$(printf 'p%.0s' $(seq 200))
	for name in "$long.pool" $'caf\xe9.pool' $'two\nlines.pool'; do
		run -0 "$TCPPOOL" -f "$T/$name" init
		run -0 "$TCPPOOL" -f "$T/$name" check
	done
}

@test "an edit with standard output closed succeeds (it has nothing to say); a listing fails" {
	small_pool
	run -0 bash -c '"$0" -f "$1" add web3 10.0.0.3:80 >&-' "$TCPPOOL" "$T/web.pool"
	grep -q '^\[backend web3\]' "$T/web.pool"
	run -2 bash -c '"$0" -f "$1" list >&-' "$TCPPOOL" "$T/web.pool"
}

@test "golden: edits of a commented file change only their own lines" {
	local name cmd
	while IFS='|' read -r name cmd; do
		cp "$GOLDEN/commented.pool" "$T/x.pool"
		"$TCPPOOL" -f "$T/x.pool" $cmd
		diff -u "$GOLDEN/$name.expected" "$T/x.pool" || fail "$name: $cmd"
	done <<-'EOF'
		set-backend|set web1 weight=12 state=drain
		set-pool|set pool balance=roundrobin idle_timeout=5m listen=127.0.0.1:9000
		add|add web4 [::1]:80 weight=2 state=down
		rm-middle|rm web2
		rm-last|rm web3
		drain|drain web3
		unset|set web3 max_conns=
	EOF
	# CR LF files stay CR LF, new lines included
	sed 's/$/\r/' "$GOLDEN/commented.pool" >"$T/crlf.pool"
	"$TCPPOOL" -f "$T/crlf.pool" add web4 '[::1]:80' weight=2 state=down
	sed 's/\r$//' "$T/crlf.pool" | diff -u "$GOLDEN/add.expected" -
	[ "$(grep -c $'\r$' "$T/crlf.pool")" -eq "$(wc -l <"$T/crlf.pool")" ]
}

# ---------------------------------------------------------------------------
# Files: links, modes, owners

@test "a symlinked pool is edited at its target; the link survives; the lock sits by the target" {
	small_pool
	mkdir "$T/real"
	mv "$T/web.pool" "$T/real/web-v1.pool"
	ln -s real/web-v1.pool "$T/web.pool"
	"$TCPPOOL" -f "$T/web.pool" set web1 weight=9
	[ -L "$T/web.pool" ]
	[ "$(readlink "$T/web.pool")" = real/web-v1.pool ]
	grep -q '^weight = 9 ' "$T/real/web-v1.pool"
	[ -f "$T/real/.web-v1.pool.lock" ]
	[ ! -e "$T/.web.pool.lock" ]
	[ "$(stat -c %a "$T/real/.web-v1.pool.lock")" = 640 ] # the pool's 0644, less others
	# a chain of links too
	ln -s web.pool "$T/chain.pool"
	"$TCPPOOL" -f "$T/chain.pool" drain web1
	[ -L "$T/chain.pool" ] && [ -L "$T/web.pool" ]
	grep -q '^state = drain$' "$T/real/web-v1.pool"
}

@test "the file's mode (and owner, as root) is kept; no temporary file is left" {
	small_pool
	chmod 0640 "$T/web.pool"
	if [[ $(id -u) -eq 0 ]]; then
		chown nobody:nogroup "$T/web.pool" 2>/dev/null || chown 65534:65534 "$T/web.pool"
	fi
	owner=$(stat -c %u:%g "$T/web.pool")
	"$TCPPOOL" -f "$T/web.pool" add web3 10.0.0.3:80
	[ "$(stat -c %a "$T/web.pool")" = 640 ]
	[ "$(stat -c %u:%g "$T/web.pool")" = "$owner" ]
	chmod 0604 "$T/web.pool"
	"$TCPPOOL" -f "$T/web.pool" rm web3
	[ "$(stat -c %a "$T/web.pool")" = 604 ]
	[ -z "$(find "$T" -name '.web.pool.tmp*')" ]
}

@test "a writer in the pool's group locks a pool whose lock root made (the lock is 0660, read-only)" {
	[[ $(id -u) -eq 0 ]] || skip "needs root to act as two users"
	# nobody:nogroup stands for tcppeer in group tcpdist; the directory is
	# outside $T, whose parents only root may enter.
	LOCKDIR=$(mktemp -d /tmp/tcppool-lock.XXXXXX)
	small_pool
	cp "$T/web.pool" "$LOCKDIR/web.pool"
	chgrp 65534 "$LOCKDIR" "$LOCKDIR/web.pool"
	chmod 0775 "$LOCKDIR"
	chmod 0664 "$LOCKDIR/web.pool"
	"$TCPPOOL" -f "$LOCKDIR/web.pool" set web1 weight=3
	[ "$(stat -c '%U %g %a' "$LOCKDIR/.web.pool.lock")" = "root 65534 660" ]
	run -0 setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$TCPPOOL" -f "$LOCKDIR/web.pool" set web1 weight=4
	grep -q '^weight = 4 ' "$LOCKDIR/web.pool"
	# a lock an older version made 0600 is mended by its owner's next edit
	chmod 0600 "$LOCKDIR/.web.pool.lock"
	chgrp 0 "$LOCKDIR/.web.pool.lock"
	"$TCPPOOL" -f "$LOCKDIR/web.pool" drain web2
	[ "$(stat -c '%g %a' "$LOCKDIR/.web.pool.lock")" = "65534 660" ]
}

# ---------------------------------------------------------------------------
# Concurrency

@test "4 parallel writers x 250 adds: all 1,000 backends present, the file valid" {
	printf '; parallel\n[pool]\nlisten = 127.0.0.1:8080\ntable_size = 65537\n' >"$T/web.pool"
	local w start
	no_leak_scan
	start=$(now_ms)
	for w in 1 2 3 4; do
		start_bg "writer$w" bash -c '
			for ((i = 1; i <= 250; i++)); do
				"$1" -f "$2" add "w$3-$i" "10.$3.$((i / 200)).$((i % 200 + 1)):80" ||
					echo "failed w$3-$i"
			done' _ "$TCPPOOL" "$T/web.pool" "$w"
	done
	for w in 1 2 3 4; do
		wait_for_exit "writer$w" 60
		[ "$EXIT_STATUS" -eq 0 ]
		[ ! -s "$T/writer$w.out" ] || fail "writer $w: $(head "$T/writer$w.out")"
		[ ! -s "$T/writer$w.err" ] || fail "writer $w: $(head "$T/writer$w.err")"
	done
	echo "1,000 adds in $(($(now_ms) - start)) ms"
	run -0 "$TCPPOOL" -f "$T/web.pool" check
	"$TCPPOOL" -f "$T/web.pool" list | cut -f1 | sort >"$T/got"
	for w in 1 2 3 4; do for ((i = 1; i <= 250; i++)); do echo "w$w-$i"; done; done | sort >"$T/want"
	diff "$T/want" "$T/got"
	[ "$(grep -c '^\[backend ' "$T/web.pool")" -eq 1000 ]
	[ -z "$(find "$T" -name '.web.pool.tmp*')" ]
}

@test "a writer killed at random moments in 200 edits: the pool is always old or new, readers never see it invalid" {
	local i k w old new cur dur start pid killed=0 done_=0 before=0 busy_until
	no_leak_scan
	{
		printf '[pool]\nlisten = 127.0.0.1:8080\nbalance = roundrobin\n'
		for ((k = 0; k < 50; k++)); do
			printf '\n; backend %d\n[backend b%d]\naddress = 10.0.0.%d:80\nweight = 1\n' "$k" "$k" $((k + 1))
		done
	} >"$T/web.pool"
	# A reader that checks the file as fast as it can until told to stop.
	start_bg reader bash -c '
		while [[ ! -e $2.stop ]]; do
			if "$1" -f "$2" check >/dev/null 2>&1; then echo ok; else echo INVALID; cp "$2" "$2.invalid"; fi
		done' _ "$TCPPOOL" "$T/web.pool"
	# How long one edit takes here, to spread the kills over its whole life.
	start=$EPOCHREALTIME
	"$TCPPOOL" -f "$T/web.pool" set b0 weight=2
	dur=$(((${EPOCHREALTIME/./} - ${start/./}) * 3 / 2))
	echo "one edit: $((dur * 2 / 3)) us; kills within 0-$dur us"
	old=$(cat "$T/web.pool")
	for ((i = 1; i <= 200; i++)); do
		k=$((i % 50))
		w=$((i % 200 + 1))
		new=$(sed "/^\[backend b$k\]\$/,/^weight/ s/^weight = .*/weight = $w/" <<<"$old")
		start_bg "w$i" "$TCPPOOL" -f "$T/web.pool" set "b$k" "weight=$w"
		pid=${BG_PID[w$i]}
		busy_until=$((${EPOCHREALTIME/./} + RANDOM * dur / 32768))
		while ((${EPOCHREALTIME/./} < busy_until)); do :; done
		kill -KILL "$pid" 2>/dev/null && killed=$((killed + 1))
		wait_for_exit "w$i" 5
		cur=$(cat "$T/web.pool")
		if [[ $cur == "$new" ]]; then
			done_=$((done_ + 1))
			old=$new
		elif [[ $cur == "$old" ]]; then
			before=$((before + 1))
		else
			diff <(echo "$old") "$T/web.pool"
			fail "edit $i: the pool is neither the old nor the new version"
		fi
	done
	touch "$T/web.pool.stop"
	wait_for_exit reader 10
	echo "signals sent: $killed; edits done: $done_; edits killed before the rename: $before"
	echo "reader: $(grep -c '^ok$' "$T/reader.out") checks"
	! grep -q INVALID "$T/reader.out" || fail "a reader saw an invalid pool"
	(($(grep -c '^ok$' "$T/reader.out") >= 10))
	((killed > 0 && done_ + before == 200))
	# the next writer sweeps the temporary files of the killed ones
	"$TCPPOOL" -f "$T/web.pool" set b1 weight=100
	[ -z "$(find "$T" -name '.web.pool.tmp*')" ]
	run -0 "$TCPPOOL" -f "$T/web.pool" check
}

# ---------------------------------------------------------------------------
# End to end: a running tcpdist picks up tcppool's edits (pool reload)

@test "end to end: tcppool add on a running tcpdist's pool: the new backend gets connections within 1 s" {
	require_helpers
	local pt pa pb start deadline got=
	ports pt pa pb
	start_namesrv a "127.0.0.1:$pa"
	start_namesrv b "127.0.0.1:$pb"
	write_pool web.pool <<-EOF
		[pool]
		listen = 127.0.0.1:$pt
		balance = roundrobin
		check_interval = 0

		[backend a]
		address = 127.0.0.1:$pa
	EOF
	start_tcpdist "$T/web.pool"
	run -0 "$HELPERS/names" "127.0.0.1:$pt" 4
	[ "$(sort -u <<<"$output")" = a ]
	"$TCPPOOL" -f "$T/web.pool" add b "127.0.0.1:$pb"
	start=$(now_ms)
	deadline=$((start + 1000))
	while (($(now_ms) < deadline)); do
		if "$HELPERS/names" "127.0.0.1:$pt" 2 | grep -qx b; then
			got=yes
			break
		fi
		sleep 0.02
	done
	[ -n "$got" ] || fail "backend b got no connection within 1 s of tcppool add"
	echo "b reached after $(($(now_ms) - start)) ms"
	run -0 "$HELPERS/names" "127.0.0.1:$pt" 10
	[ "$(grep -cx b <<<"$output")" -eq 5 ]
}

@test "end to end: tcppool drain stops new connections to a backend, its established one keeps flowing" {
	require_helpers
	local pt pa pb name other deadline pings drained=
	ports pt pa pb
	start_namesrv a "127.0.0.1:$pa"
	start_namesrv b "127.0.0.1:$pb"
	write_pool web.pool <<-EOF
		[pool]
		listen = 127.0.0.1:$pt
		balance = roundrobin
		check_interval = 0

		[backend a]
		address = 127.0.0.1:$pa

		[backend b]
		address = 127.0.0.1:$pb
	EOF
	start_tcpdist "$T/web.pool"
	start_bg hold "$HELPERS/hold" --every 50 "127.0.0.1:$pt" 30
	wait_for_file_line "$T/hold.out" '^line [ab]$'
	name=$(sed -n 's/^line \([ab]\)$/\1/p' "$T/hold.out" | head -1)
	other=$([[ $name == a ]] && echo b || echo a)
	"$TCPPOOL" -f "$T/web.pool" drain "$name"
	deadline=$(($(now_ms) + 1000))
	while (($(now_ms) < deadline)); do
		if [[ $("$HELPERS/names" "127.0.0.1:$pt" 4 | sort -u) == "$other" ]]; then
			drained=yes
			break
		fi
		sleep 0.02
	done
	[ -n "$drained" ] || fail "$name still gets new connections 1 s after tcppool drain"
	run -0 "$HELPERS/names" "127.0.0.1:$pt" 20
	[ "$(sort -u <<<"$output")" = "$other" ]
	# the held connection to the drained backend still carries its pings
	pings=$(grep -c '^line ping$' "$T/hold.out" || true)
	wait_for_line_count "$T/hold.out" '^line ping$' $((pings + 5)) 3
	run ! grep -q closed-by-peer "$T/hold.out"
	[ "$(established_to "$([[ $name == a ]] && echo "$pa" || echo "$pb")")" -eq 1 ]
}

# ---------------------------------------------------------------------------
# Completions

# bash_complete LINE: what completions/tcppool.bash offers at the end of LINE,
# one per line, with the default COMP_WORDBREAKS.
bash_complete() {
	bash -c 'source "$1"; COMP_WORDBREAKS=$3; COMP_LINE=$2; COMP_POINT=${#COMP_LINE}
		_tcppool; printf "%s\n" "${COMPREPLY[@]}"' \
		_ "$BATS_TEST_DIRNAME/../completions/tcppool.bash" "$1" $' \t\n"\'><=;|&(:'
}

@test "completions: commands, keys and values, backend names of the -f or TCPDIST_POOL pool" {
	small_pool
	cd "$T"
	[ "$(bash_complete 'tcppool ' | xargs)" = "init list show add rm set drain up down check" ]
	[ "$(bash_complete 'tcppool -f web.pool drain ' | xargs)" = "web1 web2" ]
	[ "$(TCPDIST_POOL=web.pool bash_complete 'tcppool rm w' | xargs)" = "web1 web2" ]
	[ "$(bash_complete 'tcppool -f web.pool set ' | xargs)" = "web1 web2 pool" ]
	[ "$(bash_complete 'tcppool -f web.pool set web1 st' | xargs)" = "state=" ]
	# bash replaces the part after '=', so the values come alone
	[ "$(bash_complete 'tcppool -f web.pool set web1 state=d' | xargs)" = "drain down" ]
	[ "$(bash_complete 'tcppool set pool bal' | xargs)" = "balance=" ]
	[ "$(bash_complete 'tcppool set pool zone_t' | xargs)" = "zone_table_size=" ]
	[ "$(bash_complete 'tcppool add web3 10.0.0.3:80 w' | xargs)" = "weight=" ]
	[ "$(bash_complete 'tcppool list --j' | xargs)" = "--json" ]
	run zsh -n "$BATS_TEST_DIRNAME/../completions/_tcppool"
	[ "$status" -eq 0 ]
	command -v fish >/dev/null || skip "fish not installed"
	fish_complete() {
		fish -c "source '$BATS_TEST_DIRNAME/../completions/tcppool.fish'; complete -C '$1'" | cut -f1 | xargs
	}
	[ "$(fish_complete 'tcppool -f web.pool drain ')" = "web1 web2" ]
	[ "$(TCPDIST_POOL=web.pool fish_complete 'tcppool set ')" = "pool web1 web2" ]
	[ "$(fish_complete 'tcppool -f web.pool set web1 state=d')" = "state=down state=drain" ]
	[ "$(fish_complete 'tcppool init li')" = "listen=" ]
	[ "$(fish_complete 'tcppool set pool zone_t')" = "zone_table_size=" ]
}
