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
