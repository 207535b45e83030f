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

@test "the README and tcpdist.pool(5) example pool is the one in examples/ and it loads" {
	run "$ROOT/bin/tcpdist" -n "$ROOT/examples/web.pool"
	[ "$status" -eq 0 ]
	[ "$output" = "configuration OK" ]
	awk '/^```ini/{f=1;next} /^```/{if(f)exit} f' "$ROOT/README.md" > "$BATS_TEST_TMPDIR/readme.pool"
	diff "$ROOT/examples/web.pool" "$BATS_TEST_TMPDIR/readme.pool"
	# tcpdist.pool(5) shows the same file from its second line on.
	awk '/^; Check: tcpdist -n examples\/web.pool/{f=1} f && /^\.Ed/{exit} f' "$ROOT/man/tcpdist.pool.5" \
		>"$BATS_TEST_TMPDIR/man.pool"
	diff <(tail -n +2 "$ROOT/examples/web.pool") "$BATS_TEST_TMPDIR/man.pool"
}

# The examples of the man pages and the README run, and print what they show.
# In a literal block (.Bd -literal ... .Ed, or ``` ... ```), a line
# "$ COMMAND" is run and must print exactly the lines after it, up to the
# next "$ " line, the end of the block or a blank line. The commands of one
# file run in order in one shell (so "export" and "echo $?" work), in a
# scratch directory laid out as the source tree: copies of examples/ and
# tests/golden/hash.pool, with /etc/tcpdist/ moved under it. Nothing in the
# tree is edited.

# Examples that cannot run here, by the start of their first line, and why.
# Every one must still be found in the documents, so the list cannot go stale.
declare -gA NOT_RUNNABLE=(
	['tcpdist -j 4']='runs tcpdist in the foreground'
	['tcpdist -v -j 2 ']='runs tcpdist in the foreground'
	['tcpdist --metrics ']='runs tcpdist in the foreground'
	['tcpdist --takeover ']='needs a running tcpdist'
	['curl -s http://127.0.0.1:9100/']='needs a running tcpdist'
	["echo 'status' | socat "]='needs a running tcpdist'
	['kill -HUP ']='needs a running tcpdist'
	['nc -s 127.0.0.23 ']='needs a running tcpdist and its backends'
	['cut -d'"' '"' -f1 access.log']='needs an access log'
	['tcppool drain --wait=5m web1']='needs a running tcpdist'
	['tcppeer -n ']='runs tcppeer, a cluster member, in the foreground'
	['tcppeer event ']='needs a running tcppeer'
	['tcppeer members ']='needs a running tcppeer'
	['serf keygen']='needs serf'
)

# example_dir DIR: the scratch tree the examples run in.
example_dir() {
	mkdir -p "$1/examples" "$1/tests/golden" "$1/etc/tcpdist"
	cp "$ROOT"/examples/*.pool "$1/examples/"
	cp "$ROOT/tests/golden/hash.pool" "$1/tests/golden/"
}

# run_examples FILE DIR
run_examples() {
	local file=$1 dir=$2 line cmd i n=0 inblock=0 cur=-1 script=$2/.examples
	local -a cmds=() expect=() run=()
	declare -gA FOUND
	mkdir -p "$script"
	while IFS= read -r line; do
		[[ $file == *.[1-8] ]] && { line=${line//\\e/\\}; line=${line//\\&/}; }
		if ((!inblock)); then
			[[ $line == '.Bd -literal'* || $line == '```'* ]] && inblock=1
			continue
		fi
		if [[ $line == .Ed || $line == '```' ]]; then
			inblock=0 cur=-1
		elif [[ $line == '$ '* ]]; then
			cur=${#cmds[@]}
			cmd=$(sed -E 's/ {2,}#.*$//' <<<"${line#'$ '}")
			cmds+=("$cmd") expect+=("") run+=(1)
			for i in "${!NOT_RUNNABLE[@]}"; do
				[[ $cmd == "$i"* ]] && { run[cur]=0; FOUND[$i]=1; }
			done
			[[ $cmd == *'| jq '* ]] && ! command -v jq >/dev/null && run[cur]=0
			if ((run[cur])) && [[ $cmd == *'\' || $cmd == *'|' ]]; then
				echo "$file: $cmd: continued on the next line: list it in NOT_RUNNABLE"
				return 1
			fi
		elif [[ -z $line ]]; then
			cur=-1
		elif ((cur >= 0)); then
			expect[cur]+=${expect[cur]:+$'\n'}$line
		fi
	done <"$file"
	for i in "${!cmds[@]}"; do
		((run[i])) || continue
		printf '{ %s\n} >%q 2>&1 </dev/null\n' "${cmds[i]//\/etc\/tcpdist\//$dir/etc/tcpdist/}" \
			"$script/$i"
	done >"$script/all.sh"
	(cd "$dir" && unset TCPDIST_POOL && PATH="$ROOT/bin:$PATH" timeout 60 bash "$script/all.sh") || true
	for i in "${!cmds[@]}"; do
		((run[i])) || continue
		local got
		got=$(cat "$script/$i" 2>/dev/null)
		got=${got//"$dir"/}
		if [[ $got != "${expect[i]}" ]]; then
			printf '%s: %s\n--- documented:\n%s\n--- printed:\n%s\n' "$file" "${cmds[i]}" \
				"${expect[i]}" "$got"
			return 1
		fi
		n=$((n + 1))
	done
	echo "# ${file#"$ROOT/"}: $n examples run, $((${#cmds[@]} - n)) not runnable" >&3
	((${#cmds[@]} > 0))
}

@test "the examples of every man page and of the README print what the tools print" {
	local f d
	declare -gA FOUND=()
	for f in "$ROOT"/man/*.[1-8] "$ROOT/README.md"; do
		d=$BATS_TEST_TMPDIR/$(basename "$f")
		example_dir "$d"
		case $f in
		*/tcpdist.1) cp "$ROOT/examples/web.pool" "$d/etc/tcpdist/web.pool"
			cp "$ROOT/examples/web.pool" "$d/web.pool" ;;
		*/tcppool.1) printf '%s\n' '[pool]' 'listen = 127.0.0.1:8080' '' 'balance = fastest' \
			'' '[backend web1]' 'address = 127.0.0.1:9001' '' '[backend web3]' >"$d/new.pool" ;;
		*/tcpdist.pool.5) # the pool of the example before the tcphash one
			awk '/^\.Bd -literal/ { b = "" ; next } /^\.Ed/ { if (b ~ /backend db4/) { printf "%s", b; exit } }
				{ b = b $0 "\n" }' "$f" >"$d/db.pool" ;;
		esac
		run_examples "$f" "$d"
	done
	for f in "${!NOT_RUNNABLE[@]}"; do
		[[ ${FOUND[$f]-} ]] || { echo "NOT_RUNNABLE: no example starts with '$f'"; return 1; }
	done
}

@test "the README's development tree lists the top directories, and its make and install lines every tool and page" {
	local d listed
	listed=$(awk '/^## Development/ { f = 1 } f && /^```$/ { if (++n == 2) exit } f && n == 1 && /^[a-z]/ { print $1 }' \
		"$ROOT/README.md")
	for d in "$ROOT"/*/; do
		d=$(basename "$d")/
		grep -qxF "$d" <<<"$listed" || { echo "README Development: $d missing"; return 1; }
	done
	for d in $listed; do
		[ -d "$ROOT/$d" ] || { echo "README Development: no directory $d"; return 1; }
	done
	for d in "$ROOT"/cmd/*/; do
		grep -q "^make  .*# .*bin/$(basename "$d")" "$ROOT/README.md" ||
			{ echo "README: the make line does not name bin/$(basename "$d")"; return 1; }
	done
	for d in "$ROOT"/man/*.[1-8]; do
		d=$(basename "$d")
		grep -qF "\`${d%.*}(${d##*.})\`" "$ROOT/README.md" ||
			{ echo "README: the install list does not name ${d%.*}(${d##*.})"; return 1; }
	done
}

@test "the SEE ALSO of every man page names every other page of the toolkit" {
	local f g
	for f in "$ROOT"/man/*.[1-8]; do
		for g in "$ROOT"/man/*.[1-8]; do
			[ "$f" = "$g" ] && continue
			g=$(basename "$g")
			sed -n '/^\.Sh SEE ALSO/,/^\.Sh /p' "$f" | grep -q "^\.Xr ${g%.*} ${g##*.}\( ,\)\?$" ||
				{ echo "$(basename "$f"): SEE ALSO lacks ${g%.*}(${g##*.})"; return 1; }
		done
	done
}
