#!/usr/bin/env bats
# Manual pages, completions and usage text agree and are well-formed.

setup() {
	ROOT="$BATS_TEST_DIRNAME/.."
}

@test "man pages are clean under mandoc -T lint -W warning" {
	run mandoc -T lint -W warning "$ROOT"/man/*.[1-8]
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "every tool has a man page, completions for bash, zsh and fish, and a README section" {
	for tool in "$ROOT"/cmd/*/; do
		t=$(basename "$tool")
		[ -f "$ROOT/man/$t.1" ]
		[ -f "$ROOT/completions/$t.bash" ]
		[ -f "$ROOT/completions/_$t" ]
		[ -f "$ROOT/completions/$t.fish" ]
		grep -q "^## $t\$" "$ROOT/README.md"
	done
}

@test "bash completions parse and complete tcpdist options" {
	run bash -n "$ROOT/completions/tcpdist.bash"
	[ "$status" -eq 0 ]
	run bash -c "source '$ROOT/completions/tcpdist.bash'; COMP_WORDS=(tcpdist --dr); COMP_CWORD=1; _tcpdist; printf '%s\n' \"\${COMPREPLY[@]}\""
	[ "$status" -eq 0 ]
	[[ "$output" == *--drain-timeout* ]]
}

@test "zsh and fish completions parse (when the shells are installed)" {
	command -v zsh >/dev/null || skip "zsh not installed"
	run zsh -n "$ROOT/completions/_tcpdist"
	[ "$status" -eq 0 ]
	command -v fish >/dev/null || skip "fish not installed"
	run fish -n "$ROOT/completions/tcpdist.fish"
	[ "$status" -eq 0 ]
}

@test "each tool's usage names every option of its man page SYNOPSIS" {
	for tool in "$ROOT"/cmd/*/; do
		t=$(basename "$tool")
		synopsis_in_usage "$t"
	done
}

@test "option errors start with the tool's name, whatever path ran it, and exit 2" {
	local t err rc
	for tool in "$ROOT"/cmd/*/; do
		t=$(basename "$tool")
		rc=0; err=$("$ROOT/bin/$t" --bogus 2>&1 >/dev/null) || rc=$?
		[[ $rc == 2 && ${err%%$'\n'*} == "$t: unrecognized option '--bogus'" ]] ||
			{ echo "$t: exit $rc: $err"; return 1; }
		rc=0; err=$("$ROOT/bin/$t" -j 2>&1 >/dev/null) || rc=$?
		[[ $rc == 2 && ${err%%$'\n'*} == "$t: "* ]] || { echo "$t: exit $rc: $err"; return 1; }
	done
	for sub in members event; do
		rc=0; err=$("$ROOT/bin/tcppeer" "$sub" --bogus 2>&1 >/dev/null) || rc=$?
		[[ $rc == 2 && ${err%%$'\n'*} == "tcppeer: $sub: unrecognized option '--bogus'" ]] ||
			{ echo "exit $rc: $err"; return 1; }
	done
}

synopsis_in_usage() {
	local opt n=0 usage
	usage=$("$ROOT/bin/$1" --help)
	for opt in $(mandoc -T ascii "$ROOT/man/$1.1" | col -b | sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' |
		grep -oE -- '(^|[[ ])-(-[a-z-]+|[a-zA-Z]+)' | tr -d '[ '); do
		[[ "$usage" == *"$opt"* ]] || { echo "$1: missing in usage: $opt"; return 1; }
		n=$((n + 1))
	done
	[ "$n" -ge 3 ] || { echo "$1: found only $n options in the SYNOPSIS"; return 1; }
}

@test "the README example pool is the one in examples/ and it loads" {
	run "$ROOT/bin/tcpdist" -n "$ROOT/examples/web.pool"
	[ "$status" -eq 0 ]
	[ "$output" = "configuration OK" ]
	awk '/^```ini/{f=1;next} /^```/{if(f)exit} f' "$ROOT/README.md" > "$BATS_TEST_TMPDIR/readme.pool"
	diff "$ROOT/examples/web.pool" "$BATS_TEST_TMPDIR/readme.pool"
}

# run_examples FILE DIR: every "$ tcphash ..." line of FILE's examples, run in
# DIR, must print exactly the lines that follow it there (up to the next
# prompt, the end of the block or a blank line). A command continued on the
# next line is skipped, and so is one that needs a program not installed.
run_examples() {
	local file=$1 dir=$2 line cmd= expected= n=0 skip=0
	check_one() {
		[[ -n $cmd ]] || return 0
		if ((skip == 0)); then
			local got
			got=$(cd "$dir" && PATH="$ROOT/bin:$PATH" bash -c "$cmd" 2>&1) || true
			if [[ $got != "$expected" ]]; then
				printf '%s: %s\n--- documented:\n%s\n--- printed:\n%s\n' "$file" "$cmd" "$expected" "$got"
				return 1
			fi
			n=$((n + 1))
		fi
		cmd= expected= skip=0
	}
	while IFS= read -r line; do
		if [[ $line == '$ tcphash '* ]]; then
			check_one || return 1
			cmd=${line#'$ '}
			cmd=$(sed -E 's/ {2,}#.*$//' <<<"$cmd")
			[[ $cmd == *'|' ]] && skip=1
			[[ $cmd == *'| jq '* ]] && ! command -v jq >/dev/null && skip=1
		elif [[ -n $cmd && ( $line == '$ '* || $line == .Ed || $line == '```' || -z $line ) ]]; then
			check_one || return 1
		elif [[ -n $cmd ]]; then
			expected+=${expected:+$'\n'}$line
		fi
	done <"$file"
	check_one || return 1
	echo "# $file: $n examples checked" >&3
	((n > 0))
}

@test "the tcphash examples in the man page and the README print what tcphash prints" {
	local d=$BATS_TEST_TMPDIR
	grep -v '^balance' "$ROOT/examples/web.pool" >"$d/web.pool"
	awk '/^\[backend web3\]/ { skip = 1; next } /^\[/ { skip = 0 } !skip' "$d/web.pool" \
		>"$d/web-without-web3.pool"
	cp "$ROOT/tests/golden/hash.pool" "$d/hash.pool"
	run_examples "$ROOT/man/tcphash.1" "$d"
	run_examples "$ROOT/README.md" "$d"
}
