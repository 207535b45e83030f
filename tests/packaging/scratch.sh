#!/usr/bin/env bash
# Installs the built packages in a scratch root and tries them there; the
# host stays as it was. Usage: tests/packaging/scratch.sh DEBDIR OUTDIR
#
# The scratch root is an overlay of / whose writes go to a temporary upper
# layer, mounted in a mount namespace of its own. dpkg -i runs the maintainer
# scripts there (users, /etc/tcpdist); tcpdist -n and systemd-analyze verify
# run in it as a chroot; then systemd-nspawn boots it (loopback only) and
# tests/packaging/booted.sh starts the units as an administrator would.
# What each step gave lands in OUTDIR (see the names below); the exit status
# is 0 unless the scratch root could not be set up.
set -euo pipefail

if [[ ${1-} == --in-namespace ]]; then
	shift
	debdir=$1 out=$2 work=$3 here=$4
	r=$work/root
	mount -t overlay overlay -o "lowerdir=/,upperdir=$work/upper,workdir=$work/work" "$r"
	mount -t tmpfs tmpfs "$r/tmp"
	mount -t tmpfs tmpfs "$r/run"
	mount -t proc proc "$r/proc"
	mount --rbind /dev "$r/dev"
	cp "$debdir"/tcpdist_*.deb "$debdir"/tcpdist-dbgsym_*.deb "$r/tmp/"
	in_root() { chroot "$r" "$@"; }

	rc=0
	in_root sh -c 'dpkg -i /tmp/*.deb' >"$out/dpkg.log" 2>&1 || rc=$?
	echo "$rc" >"$out/dpkg.rc"

	# The example layout, put in place as the README says.
	ex=/usr/share/doc/tcpdist/examples/etc
	in_root sh -c "install -m 640 -g tcpdist $ex/tcpdist/web.pool /etc/tcpdist/web.pool &&
		mkdir -p '/etc/systemd/system/tcpdist@web.socket.d' &&
		cp '$ex/systemd/system/tcpdist@web.socket.d/listen.conf' '/etc/systemd/system/tcpdist@web.socket.d/'" \
		>"$out/layout.log" 2>&1 || true
	rc=0
	in_root setpriv --reuid=tcpdist --regid=tcpdist --clear-groups --inh-caps=-all \
		tcpdist -n /etc/tcpdist/web.pool >"$out/example-n.txt" 2>&1 || rc=$?
	echo "$rc" >"$out/example-n.rc"
	in_root stat -c '%U %G %a' /etc/tcpdist >"$out/etc-tcpdist.stat" 2>&1 || true
	in_root getent passwd tcpdist tcppeer >"$out/users.txt" 2>&1 || true

	rc=0
	in_root systemd-analyze verify tcpdist@web.service tcpdist@web.socket tcppeer.service \
		>"$out/verify.txt" 2>&1 || rc=$?
	echo "$rc" >"$out/verify.rc"

	# Boot it: systemd runs the test unit, which ends the container with
	# booted.sh's status.
	umount -R "$r/dev" "$r/proc" "$r/run" "$r/tmp"
	cat >"$r/etc/systemd/system/pkgtest.service" <<-'EOF'
		[Unit]
		Description=tcpdist package test
		[Service]
		Type=oneshot
		TimeoutStartSec=150
		ExecStart=/bin/bash /pkgtest/booted.sh
		ExecStopPost=/bin/sh -c 'systemctl exit "$EXIT_STATUS"'
	EOF
	rc=0
	timeout -k 10 180 systemd-nspawn --quiet --register=no --keep-unit --link-journal=no \
		--private-network --rlimit=RLIMIT_NOFILE=1048576 --directory="$r" --bind="$out:/results" --bind-ro="$here:/pkgtest" \
		--boot -- systemd.unit=pkgtest.service >"$out/boot.log" 2>&1 || rc=$?
	echo "$rc" >"$out/boot.rc"
	umount "$r"
	exit 0
fi

debdir=$(realpath "$1") out=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
work=$(mktemp -d /var/tmp/tcpdist-scratch.XXXXXX)
cleanup() {
	# Mounts live in the namespace only; should one show here, keep the files.
	if findmnt -rn -o TARGET | grep -q "^$work"; then
		echo "scratch.sh: $work is still mounted: left in place" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
mkdir "$work/upper" "$work/work" "$work/root"
unshare --mount --propagation private "$0" --in-namespace "$debdir" "$out" "$work" "$here"
