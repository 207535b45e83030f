#!/bin/sh
# Installs the Debian packages that a make target needs, or says exactly
# what to run. Usage: scripts/deps.sh build|check|bench|package
set -eu

build="gcc make pkg-config libev-dev libinih-dev libmsgpack-dev libssl-dev zlib1g-dev"
case "${1:-build}" in
build) pkgs="$build" ;;
demo) pkgs="$build libssl-dev netcat-openbsd" ;;
check) pkgs="$build libsodium-dev bats serf prometheus nginx-light haproxy curl mandoc bsdextrautils procps iproute2 nftables netcat-openbsd clang jq zsh fish systemd socat redis-server redis-tools" ;;
bench) pkgs="$build libssl-dev nginx-light haproxy wrk util-linux procps" ;;
package) pkgs="$build build-essential libsodium-dev dpkg-dev debhelper lintian bats systemd systemd-container binutils procps socat" ;;
*) echo "deps.sh: unknown target '$1'" >&2; exit 2 ;;
esac

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
	echo "tcpdist: missing packages:$missing (install them with your package manager)" >&2
	exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
	sudo=""
elif command -v sudo >/dev/null 2>&1 && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
	sudo="sudo"
else
	echo "tcpdist: missing Debian packages:$missing" >&2
	echo "tcpdist: run: sudo apt-get update && sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "tcpdist: installing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >&2
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >&2
