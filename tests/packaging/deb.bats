#!/usr/bin/env bats
# The Debian package and the systemd units: built by make deb (as
# dpkg-buildpackage -us -uc -b, without the unit tests that make check runs
# anyway), checked by lintian, installed in a scratch root where systemd boots
# and runs them (scratch.sh, booted.sh). Run once per CI by make
# check-package, not by make check: it needs root and takes about a minute.

setup_file() {
	ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	W=$BATS_FILE_TMPDIR
	export ROOT W
	local t0=$SECONDS
	DEB_BUILD_OPTIONS=nocheck make -C "$ROOT" --no-print-directory deb DEB_OUT="$W/deb" \
		>"$W/build.log" 2>&1 || echo "make deb: exit $?" >>"$W/build.log"
	local t1=$SECONDS
	(cd "$W/deb" && lintian --pedantic --info tcpdist_*.changes) >"$W/lintian.txt" 2>&1
	echo $? >"$W/lintian.rc"
	local t2=$SECONDS
	"$BATS_TEST_DIRNAME/scratch.sh" "$W/deb" "$W/out" >"$W/scratch.log" 2>&1 ||
		echo "scratch.sh: exit $?" >>"$W/scratch.log"
	echo "# package build $((t1 - t0)) s, lintian $((t2 - t1)) s, scratch root $((SECONDS - t2)) s" >&3
}

deb() { ls "$W"/deb/"$1"_*.deb; }

# steps_ok NAME...: booted.sh passed each of these steps.
steps_ok() {
	local s bad=0
	for s in "$@"; do
		grep -qx "ok $s" "$W/out/steps" 2>/dev/null || { grep "^not ok $s:" "$W/out/steps" ||
			echo "step $s: not run"; bad=1; }
	done
	if [ $bad -ne 0 ]; then
		echo "--- scratch.sh"; cat "$W/scratch.log"
		echo "--- booted.sh (tail)"; tail -n 40 "$W/out/booted.log"
		echo "--- journal (tail)"; tail -n 40 "$W/out/journal.txt"
		echo "--- boot (tail)"; tail -n 20 "$W/out/boot.log"
	fi
	return $bad
}

@test "dpkg-buildpackage -us -uc -b builds tcpdist and tcpdist-dbgsym" {
	run deb tcpdist
	[ "$status" -eq 0 ] || { tail -n 40 "$W/build.log"; false; }
	run deb tcpdist-dbgsym
	[ "$status" -eq 0 ]
}

@test "lintian finds no error in the packages" {
	cat "$W/lintian.txt"
	[ "$(cat "$W/lintian.rc")" -eq 0 ]
	run grep '^E: ' "$W/lintian.txt"
	[ "$status" -eq 1 ]
}

@test "the binaries are stripped, their debug symbols in tcpdist-dbgsym by build ID" {
	local x=$BATS_TEST_TMPDIR/x t id
	dpkg -x "$(deb tcpdist)" "$x"
	dpkg -x "$(deb tcpdist-dbgsym)" "$x"
	for t in tcpdist tcphash tcppeer tcppool; do
		run readelf -S "$x/usr/bin/$t"
		[ "$status" -eq 0 ]
		[[ $output != *.debug_info* && $output != *.symtab* ]] || { echo "$t: not stripped"; false; }
		id=$(readelf -n "$x/usr/bin/$t" | awk '/Build ID:/ {print $3}')
		[ -n "$id" ]
		run readelf -S "$x/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug"
		[ "$status" -eq 0 ]
		[[ $output == *.debug_info* ]] || { echo "$t: no debug info for $id"; false; }
	done
}

@test "the package holds the units, sysusers.d, tmpfiles.d, /etc/default/tcppeer and the example layout" {
	run dpkg -c "$(deb tcpdist)"
	[ "$status" -eq 0 ]
	for f in ./lib/systemd/system/tcpdist@.service ./lib/systemd/system/tcpdist@.socket \
		./lib/systemd/system/tcppeer.service ./usr/lib/sysusers.d/tcpdist.conf \
		./usr/lib/tmpfiles.d/tcpdist.conf ./etc/default/tcppeer \
		./usr/share/doc/tcpdist/examples/etc/tcpdist/web.pool \
		./usr/share/doc/tcpdist/examples/etc/tcpdist/tcppeer.keyring \
		./usr/share/doc/tcpdist/examples/etc/default/tcpdist@web \
		./usr/share/doc/tcpdist/examples/etc/systemd/system/tcpdist@web.socket.d/listen.conf \
		./usr/bin/tcpdist ./usr/bin/tcppeer ./usr/share/man/man1/tcpdist.1.gz; do
		[[ $output == *" $f"$'\n'* || $output == *" $f" ]] || { echo "missing: $f"; false; }
	done
	run sh -c "dpkg-deb --fsys-tarfile '$(deb tcpdist)' | tar -xO ./lib/systemd/system/tcpdist@.service"
	[[ $output == *$'\nExecStart=/usr/bin/tcpdist --control /run/tcpdist/%i.sock '* ]]
	[[ $output != *@BINDIR@* ]]
}

@test "dpkg -i in a scratch root creates the users and /etc/tcpdist" {
	[ "$(cat "$W/out/dpkg.rc")" -eq 0 ] || { cat "$W/scratch.log" "$W/out/dpkg.log"; false; }
	run cat "$W/out/users.txt"
	[[ $output == *$'tcpdist:x:'* && $output == *$'tcppeer:x:'* ]]
	run cat "$W/out/etc-tcpdist.stat"
	[ "$output" = "root tcpdist 2775" ]
}

@test "tcpdist -n, as user tcpdist, accepts the installed example pool" {
	run cat "$W/out/example-n.txt"
	[ "$output" = "configuration OK" ]
	[ "$(cat "$W/out/example-n.rc")" -eq 0 ]
}

@test "systemd-analyze verify has nothing to say about the installed units" {
	run cat "$W/out/verify.txt"
	[ -z "$output" ]
	[ "$(cat "$W/out/verify.rc")" -eq 0 ]
}

@test "booted: tcpdist@web.service relays on port 80 as user tcpdist, with CAP_NET_BIND_SERVICE only, and the options of /etc/default/tcpdist@web" {
	steps_ok start relays-on-port-80 runs-as-tcpdist only-cap-net-bind-service \
		no-new-privileges seccomp-filter limit-nofile nofile-soft-is-hard \
		options-from-default-file metrics-from-default-file
}

@test "booted: its control socket, and reloads by systemctl reload and by tcppool" {
	steps_ok control-socket status-by-pool pool-read-only-for-tcpdist reload reload-logged \
		reload-keeps-pid tcppool-edit-applied tcppool-edit-seen
}

@test "booted: tcppeer.service, set up in /etc/default/tcppeer, writes the pool that tcpdist follows" {
	steps_ok tcppeer-start tcppeer-runs-as-tcppeer tcppeer-no-capability tcppeer-writes-pool \
		tcpdist-follows-tcppeer pool-group-and-mode-kept tcppeer-members tcppeer-snapshot \
		tcppeer-reload tcppeer-keyring-reloaded
}

@test "booted: ExecStartPre refuses a pool that does not load, saying where" {
	steps_ok bad-pool-refused bad-pool-says-where
}

@test "booted: tcpdist@web.socket starts tcpdist, which takes its socket and keeps it across a restart" {
	steps_ok socket-start socket-service-idle socket-activates socket-service-active \
		socket-from-systemd socket-restart socket-after-restart
}

@test "booted: both services stop cleanly" {
	steps_ok stop stop-clean tcppeer-stop-clean
}

@test "systemd-analyze security rates both services at most 2.0 (OK)" {
	local f level
	for f in "$W"/out/security-tcpdist.txt "$W"/out/security-tcppeer.txt; do
		level=$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p' "$f")
		echo "${f##*/}: $level"
		[ -n "$level" ] && awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }' || { cat "$f"; false; }
	done
}

@test "make install-systemd fills in BINDIR, make uninstall takes it all away" {
	local d=$BATS_TEST_TMPDIR/stage
	run make -C "$ROOT" --no-print-directory install-systemd DESTDIR="$d" PREFIX=/opt/td
	[ "$status" -eq 0 ]
	run cat "$d/opt/td/lib/systemd/system/tcpdist@.service"
	[[ $output == *$'\nExecStartPre=/opt/td/bin/tcpdist -n -f /etc/tcpdist/%i.pool\n'* ]]
	run grep -r '@BINDIR@' "$d"
	[ "$status" -eq 1 ]
	for f in lib/systemd/system/tcpdist@.socket lib/systemd/system/tcppeer.service \
		lib/sysusers.d/tcpdist.conf lib/tmpfiles.d/tcpdist.conf \
		share/doc/tcpdist/examples/etc/tcpdist/web.pool; do
		[ -f "$d/opt/td/$f" ] || { echo "missing: $f"; false; }
	done
	run make -C "$ROOT" --no-print-directory uninstall DESTDIR="$d" PREFIX=/opt/td
	[ "$status" -eq 0 ]
	run find "$d" -type f
	[ -z "$output" ]
}
