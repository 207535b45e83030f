#!/bin/bash
# Runs as root in the scratch root booted by systemd (see scratch.sh): the
# packaged units are set up and started as an administrator would, and each
# step writes "ok NAME" or "not ok NAME: what failed" to /results/steps.
# Backends are socat processes that answer with their names.
set -u
exec >/results/booted.log 2>&1
set -x
steps=/results/steps
: >"$steps"

step() {
	local name=$1
	shift
	if "$@"; then echo "ok $name" >>"$steps"; else echo "not ok $name: $*" >>"$steps"; fi
}
# wait_for SECONDS COMMAND...: until COMMAND succeeds.
wait_for() {
	local n=$(($1 * 10))
	shift
	until "$@"; do
		n=$((n - 1))
		[ "$n" -gt 0 ] || return 1
		sleep 0.1
	done
}
# -t 3: after our EOF socat waits 0.5 s by default for the answer, too short
# for a backend on a loaded machine.
ask() { socat -t 3 -T 3 - TCP:127.0.0.1:80 </dev/null; }
mainpid() { systemctl show -p MainPID --value "$1"; }
status_of() { grep "^$2:" "/proc/$1/status" | awk '{print $2}'; }
journal_has() { journalctl --no-pager -o cat -u "$1" | grep -q -- "$2"; }
lists_backend() { tcpdist status --control /run/tcpdist/web.sock | grep -q "^backend	$1	"; }
metrics_answer() {
	printf 'GET /metrics HTTP/1.0\r\n\r\n' | socat -T 3 - TCP:127.0.0.1:9100 | grep -q '^tcpdist_'
}
equals() { [ "$1" = "$2" ] || { echo "'$1' is not '$2'"; return 1; }; }

for b in web1:9001 web2:9002 node1:9003; do
	systemd-run --unit="backend-${b%:*}" socat "TCP-LISTEN:${b#*:},bind=127.0.0.1,fork,reuseaddr" \
		"SYSTEM:echo ${b%:*}"
	wait_for 5 socat -T 1 - "TCP:127.0.0.1:${b#*:}" </dev/null
done

# The pool: the example's layout, on loopback.
cat >/etc/tcpdist/web.pool <<'EOF'
[pool]
listen = 127.0.0.1:80
balance = roundrobin
control = /run/tcpdist/web.sock
check_interval = 1s

[backend web1]
address = 127.0.0.1:9001
EOF
chgrp tcpdist /etc/tcpdist/web.pool
chmod 640 /etc/tcpdist/web.pool

echo 'TCPDIST_OPTS="-j 2 --metrics 127.0.0.1:9100"' >/etc/default/tcpdist@web

step start systemctl start tcpdist@web.service
step relays-on-port-80 equals "$(ask)" web1
pid=$(mainpid tcpdist@web.service)
step runs-as-tcpdist equals "$(ps -o user= -p "$pid")" tcpdist
step only-cap-net-bind-service equals "$(status_of "$pid" CapEff)" 0000000000000400
step no-new-privileges equals "$(status_of "$pid" NoNewPrivs)" 1
step seccomp-filter equals "$(status_of "$pid" Seccomp)" 2
# The unit's LimitNOFILE, or as much of it as this machine allows PID 1.
nofile=$(awk '/^Max open files/ {print $5}' /proc/1/limits)
[ "$nofile" -gt 524288 ] && nofile=524288
step limit-nofile equals "$(systemctl show -p LimitNOFILE --value tcpdist@web.service)" 524288
step nofile-soft-is-hard equals "$(awk '/^Max open files/ {print $4, $5}' "/proc/$pid/limits")" \
	"$nofile $nofile"
step options-from-default-file wait_for 5 journal_has tcpdist@web.service ', 2 threads'
step metrics-from-default-file metrics_answer
step control-socket equals "$(stat -c '%U %a' /run/tcpdist/web.sock)" "tcpdist 600"
step status-by-pool sh -c 'tcpdist status -f /etc/tcpdist/web.pool | grep -q "^pool	/etc/tcpdist/web.pool	"'
step pool-read-only-for-tcpdist sh -c "! nsenter -t $pid -m touch /etc/tcpdist/probe"

step reload systemctl reload tcpdist@web.service
step reload-logged wait_for 5 journal_has tcpdist@web.service 'SIGHUP: reloading'
step reload-keeps-pid equals "$(mainpid tcpdist@web.service)" "$pid"

# tcppeer, set up in /etc/default/tcppeer, writes itself into the pool.
head -c 32 /dev/urandom | base64 >/etc/tcpdist/tcppeer.keyring
chown tcppeer /etc/tcpdist/tcppeer.keyring
chmod 600 /etc/tcpdist/tcppeer.keyring
cat >>/etc/default/tcppeer <<'EOF'
TCPPEER_NAME=node1
TCPPEER_BIND=127.0.0.1:7946
TCPPEER_OPTS="-t tcpdist=127.0.0.1:9003 --pool /etc/tcpdist/web.pool --service-tag tcpdist --keyring /etc/tcpdist/tcppeer.keyring"
EOF
step tcppeer-start systemctl start tcppeer.service
ppid=$(mainpid tcppeer.service)
step tcppeer-runs-as-tcppeer equals "$(ps -o user= -p "$ppid")" tcppeer
step tcppeer-no-capability equals "$(status_of "$ppid" CapEff)" 0000000000000000
step tcppeer-writes-pool wait_for 10 grep -q '^\[backend node1\]' /etc/tcpdist/web.pool
step tcpdist-follows-tcppeer wait_for 5 lists_backend node1
step pool-group-and-mode-kept equals "$(stat -c '%G %a' /etc/tcpdist/web.pool)" "tcpdist 640"
step tcppeer-members sh -c 'tcppeer members --control /run/tcppeer/tcppeer.sock | grep -q "^node1	.*	alive"'
step tcppeer-snapshot wait_for 5 test -s /var/lib/tcppeer/snapshot
step tcppeer-reload systemctl reload tcppeer.service
step tcppeer-keyring-reloaded wait_for 5 journal_has tcppeer.service 'keyring reloaded: 1 key'

# Root edits the pool too. tcppeer made the lock file .web.pool.lock first:
# one that root makes (0600) would lock tcppeer out (see the README).
step tcppool-edit-applied sh -c 'tcppool -f /etc/tcpdist/web.pool add web2 127.0.0.1:9002'
step tcppool-edit-seen wait_for 5 lists_backend web2

# A pool that does not load: ExecStartPre (tcpdist -n) refuses it.
printf '[pool]\nlisten = 127.0.0.1:81\nwieght = 1\n' >/etc/tcpdist/bad.pool
step bad-pool-refused sh -c '! systemctl start tcpdist@bad.service'
step bad-pool-says-where wait_for 5 journal_has tcpdist@bad.service '/etc/tcpdist/bad.pool:3'

# Socket activation: the socket unit holds 127.0.0.1:80, the first client
# starts tcpdist, which takes the socket from systemd.
mkdir -p /etc/systemd/system/tcpdist@web.socket.d
printf '[Socket]\nListenStream=127.0.0.1:80\n' >/etc/systemd/system/tcpdist@web.socket.d/listen.conf
systemctl daemon-reload
systemctl stop tcpdist@web.service
step socket-start systemctl start tcpdist@web.socket
step socket-service-idle sh -c '! systemctl is-active --quiet tcpdist@web.service'
step socket-activates sh -c 'test -n "$(socat -t 3 -T 3 - TCP:127.0.0.1:80 </dev/null)"'
step socket-service-active systemctl is-active --quiet tcpdist@web.service
step socket-from-systemd wait_for 5 journal_has tcpdist@web.service 'listening on 127.0.0.1:80 (1 socket from systemd)'
step socket-restart systemctl restart tcpdist@web.service
step socket-after-restart sh -c 'test -n "$(socat -t 3 -T 3 - TCP:127.0.0.1:80 </dev/null)"'

step stop systemctl stop tcpdist@web.socket tcpdist@web.service tcppeer.service
step stop-clean equals "$(systemctl show -p Result --value tcpdist@web.service)" success
step tcppeer-stop-clean equals "$(systemctl show -p Result --value tcppeer.service)" success

systemd-analyze security --no-pager tcpdist@web.service >/results/security-tcpdist.txt 2>&1
systemd-analyze security --no-pager tcppeer.service >/results/security-tcppeer.txt 2>&1
journalctl --no-pager -o short-monotonic -u 'tcpdist@*' -u tcppeer.service >/results/journal.txt 2>&1
exit 0
