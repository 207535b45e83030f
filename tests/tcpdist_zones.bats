#!/usr/bin/env bats
# Locality (issue 17): three zones on loopback, clients bound to sources in
# 127.0.1.x, 127.0.2.x and 127.0.3.x, two backends per zone. tcphash must
# answer as the live proxy does in every state.

bats_require_minimum_version 1.5.0
load 'helpers'

: "${TCPHASH:=$BATS_TEST_DIRNAME/../bin/tcphash}"

setup() {
	require_helpers
	T=$BATS_TEST_TMPDIR
}

teardown() {
	[[ -n ${BATS_TEST_COMPLETED:-} ]] || dump_logs
	bg_teardown
}

# zone_pool FILE LOCALITY [DOWN...]: the three-zone pool, DOWN backends with
# state = down; ZONES_REVERSED=1 writes the sections in the other order,
# ZONE_EXTRA holds more [pool] lines.
zone_pool() {
	local file=$1 locality=$2 b z n sections=() out
	shift 2
	for z in a b c; do
		sections+=("[zone $z]"$'\n'"clients = 127.0.$((${#sections[@]} + 1)).0/24")
	done
	for b in a1 a2 b1 b2 c1 c2; do
		n=PORT_$b
		out="[backend $b]"$'\n'"address = 127.0.0.1:${!n}"$'\n'"zone = ${b:0:1}"
		[[ " $* " == *" $b "* ]] && out+=$'\n'"state = down"
		sections+=("$out")
	done
	{
		printf '[pool]\nlisten = 127.0.0.1:%s\nlocality = %s\ntable_size = 65537\ncheck_interval = 0\n' \
			"$LPORT" "$locality"
		[[ ${ZONE_EXTRA:-} ]] && printf '%s\n' "$ZONE_EXTRA" # more [pool] keys
		if [[ ${ZONES_REVERSED:-} ]]; then
			for ((n = ${#sections[@]} - 1; n >= 0; n--)); do printf '%s\n' "${sections[n]}"; done
		else
			printf '%s\n' "${sections[@]}"
		fi
	} >"$file.tmp"
	mv "$file.tmp" "$file"
}

start_zone_backends() {
	local b
	for b in a1 a2 b1 b2 c1 c2; do
		ports "PORT_$b"
		start_namesrv "$b" "127.0.0.1:$(eval echo \$PORT_$b)"
	done
}

# agree FILE: live answers for $SRCS into FILE.live, tcphash's must match.
agree() {
	"$HELPERS/fromaddrs" "127.0.0.1:$LPORT" $SRCS >"$1.all" || true
	grep -v $'\t-$' "$1.all" >"$1.live" || true
	"$TCPHASH" -f "$T/zones.pool" $SRCS 2>/dev/null | cut -f1,2 >"$1.offline" || true
	diff "$1.offline" "$1.live"
}

# spilled FILE ZONE: how many of FILE's clients of ZONE (127.0.Z.x) left it.
spilled() {
	awk -v z="$2" -F'\t' '$1 ~ "^127\\.0\\." z "\\." && substr($2, 1, 1) != substr("abc", z, 1)' "$1" | wc -l
}

@test "locality = prefer: clients stay in their zone, spill 1 - fraction x 1.4 as backends go down, and tcphash agrees for 300 clients in each state" {
	ports LPORT
	start_zone_backends
	SRCS="$(seq -f '127.0.1.%g' 1 250) $(seq -f '127.0.2.%g' 1 25) $(seq -f '127.0.3.%g' 1 25)"
	zone_pool "$T/zones.pool" prefer
	start_tcpdist "$T/zones.pool" --log-connections
	agree "$T/up"
	[ "$(wc -l <"$T/up.live")" -eq 300 ]
	for z in 1 2 3; do [ "$(spilled "$T/up.live" $z)" -eq 0 ]; done
	grep -q 'connection client=127\.0\.1\.[0-9]*:[0-9]* .* czone=a bzone=a ' "$TCPDIST_LOG"

	# a1 down: zone a keeps min(1, 0.5 x 1.4) = 70%: 75 of 250 spill, within 25.
	zone_pool "$T/zones.pool" prefer a1
	wait_for_line_count "$TCPDIST_LOG" reloaded 1
	agree "$T/a1"
	n=$(spilled "$T/a1.live" 1)
	echo "spilled with a1 down: $n of 250 (expected 75)"
	((n >= 50 && n <= 100))
	run ! grep -q $'\ta1$' "$T/a1.live"
	[ "$(spilled "$T/a1.live" 2)" -eq 0 ]

	# a2 down as well: everything spills, by weight over b and c.
	zone_pool "$T/zones.pool" prefer a1 a2
	wait_for_line_count "$TCPDIST_LOG" reloaded 2
	agree "$T/a12"
	[ "$(spilled "$T/a12.live" 1)" -eq 250 ]
	run -0 "$TCPHASH" -f "$T/zones.pool" --json 127.0.1.9
	jq -e '.[0].zone == "a" and .[0].locality == "spill" and .[0].backend_zone != "a"' <<<"$output"
	run -0 "$TCPHASH" -f "$T/zones.pool" --zone b 127.0.1.9
	[[ $output == *$'\tb\tlocal' ]]
}

@test "locality = strict refuses clients whose zone is empty; two tcpdist with the sections in other orders answer alike" {
	ports LPORT
	start_zone_backends
	SRCS="$(seq -f '127.0.1.%g' 1 100) $(seq -f '127.0.2.%g' 1 100) $(seq -f '127.0.3.%g' 1 100)"
	zone_pool "$T/zones.pool" strict b1 b2
	start_tcpdist "$T/zones.pool"
	agree "$T/strict"
	[ "$(grep -c '^127\.0\.2\.' "$T/strict.live")" -eq 0 ]
	[ "$(grep -c $'^127\\.0\\.2\\.[0-9]*\t-$' "$T/strict.all")" -eq 100 ]
	[ "$(spilled "$T/strict.live" 1)" -eq 0 ]
	[ "$(spilled "$T/strict.live" 3)" -eq 0 ]
	[ "$(wc -l <"$T/strict.live")" -eq 200 ]
	run -1 "$TCPHASH" -f "$T/zones.pool" 127.0.2.7

	# prefer with c1 down, in both orders of sections.
	zone_pool "$T/zones.pool" prefer c1
	wait_for_line_count "$TCPDIST_LOG" reloaded 1
	grep -q 'reloaded.*(changed b1, b2, c1; pool settings changed)' "$TCPDIST_LOG" # locality too
	agree "$T/one"
	P1=$LPORT
	ports LPORT
	ZONES_REVERSED=1 zone_pool "$T/reversed.pool" prefer c1
	start_bg tcpdist2 "$TCPDIST" "$T/reversed.pool"
	wait_for_file_line "$BATS_TEST_TMPDIR/tcpdist2.err" 'listening on'
	"$HELPERS/fromaddrs" "127.0.0.1:$LPORT" $SRCS >"$T/two.live"
	diff "$T/one.live" "$T/two.live"
	LPORT=$P1
}

# metric FILE NAME{LABELS}: the value of one series, 0 if absent.
metric() {
	awk -v k="$2" '$1 == k { v = $2 } END { print v + 0 }' "$1"
}

@test "zone metrics count known traffic: connections by client and backend zone, spills, strict refusals with their own reason and log line; status has a zone column" {
	ports LPORT M
	start_zone_backends
	# strict with zone b down: 40 clients of a stay in a, 30 of b are refused, 20 of c stay in c.
	SRCS="$(seq -f '127.0.1.%g' 1 40) $(seq -f '127.0.2.%g' 1 30) $(seq -f '127.0.3.%g' 1 20)"
	ZONE_EXTRA="control = $T/ctl.sock" zone_pool "$T/zones.pool" strict b1 b2
	start_tcpdist "$T/zones.pool" --metrics "127.0.0.1:$M"
	"$HELPERS/fromaddrs" "127.0.0.1:$LPORT" $SRCS >"$T/strict.all" || true
	curl -sf "http://127.0.0.1:$M/metrics" >"$T/m1"
	[ "$(metric "$T/m1" 'tcpdist_zone_connections_total{client_zone="a",backend_zone="a"}')" -eq 40 ]
	[ "$(metric "$T/m1" 'tcpdist_zone_connections_total{client_zone="c",backend_zone="c"}')" -eq 20 ]
	[ "$(metric "$T/m1" 'tcpdist_zone_refused_total{client_zone="b",backend_zone="-"}')" -eq 30 ]
	[ "$(metric "$T/m1" 'tcpdist_connections_failed_total{reason="zone"}')" -eq 30 ]
	[ "$(metric "$T/m1" 'tcpdist_connections_failed_total{reason="max_conns"}')" -eq 0 ]
	[ "$(grep -c 'tcpdist_zone_spills_total{' "$T/m1")" -eq 0 ]
	grep -q 'client 127\.0\.2\.[0-9]*:[0-9]*: no backend available (zone b has no available backend' "$TCPDIST_LOG"
	run ! grep -q 'every available backend is at its max_conns' "$TCPDIST_LOG"

	# status: the zone column after tier, "zone" in JSON.
	run -0 "$TCPDIST" status -f "$T/zones.pool"
	[ "$(awk -F'\t' '$1 == "backend" && $2 == "b1" { print $8, $9 }' <<<"$output")" = "primary b" ]
	[ "$(awk -F'\t' '$1 == "backend" { print $9 }' <<<"$output" | xargs)" = "a a b b c c" ]
	run -0 "$TCPDIST" status -f "$T/zones.pool" --json
	jq -e '[.backends[].zone] == ["a", "a", "b", "b", "c", "c"]' <<<"$output"

	# prefer with a1 and a2 down: the 40 of a all spill, to b and c.
	ZONE_EXTRA="control = $T/ctl.sock" zone_pool "$T/zones.pool" prefer a1 a2
	wait_for_line_count "$TCPDIST_LOG" reloaded 1
	"$HELPERS/fromaddrs" "127.0.0.1:$LPORT" $SRCS >"$T/prefer.all"
	curl -sf "http://127.0.0.1:$M/metrics" >"$T/m2"
	sb=$(metric "$T/m2" 'tcpdist_zone_spills_total{client_zone="a",backend_zone="b"}')
	sc=$(metric "$T/m2" 'tcpdist_zone_spills_total{client_zone="a",backend_zone="c"}')
	echo "spills of a: $sb to b, $sc to c"
	[ $((sb + sc)) -eq 40 ] && [ "$sb" -gt 0 ] && [ "$sc" -gt 0 ]
	[ "$(metric "$T/m2" 'tcpdist_zone_connections_total{client_zone="a",backend_zone="b"}')" -eq "$sb" ]
	[ "$(metric "$T/m2" 'tcpdist_zone_connections_total{client_zone="b",backend_zone="b"}')" -eq 30 ]
	[ "$(metric "$T/m2" 'tcpdist_zone_connections_total{client_zone="c",backend_zone="c"}')" -eq 40 ]
	[ "$(metric "$T/m2" 'tcpdist_zone_refused_total{client_zone="b",backend_zone="-"}')" -eq 30 ]
}

@test "locality with roundrobin, leastconn and random: clients stay in their zone, and spill 1 - fraction x 1.4 with a backend down" {
	ports LPORT
	start_zone_backends
	SRCS="$(seq -f '127.0.1.%g' 1 200) $(seq -f '127.0.2.%g' 1 50)"
	n=0
	for bal in roundrobin leastconn random; do
		ZONE_EXTRA="balance = $bal" zone_pool "$T/zones.pool" prefer
		if ((n == 0)); then
			start_tcpdist "$T/zones.pool"
		else
			wait_for_line_count "$TCPDIST_LOG" reloaded $n
		fi
		n=$((n + 1))
		"$HELPERS/fromaddrs" "127.0.0.1:$LPORT" $SRCS >"$T/$bal.up"
		[ "$(spilled "$T/$bal.up" 1)" -eq 0 ] && [ "$(spilled "$T/$bal.up" 2)" -eq 0 ]
		# both backends of a zone take its clients
		[ "$(cut -f2 "$T/$bal.up" | sort -u | xargs)" = "a1 a2 b1 b2" ] || { sort "$T/$bal.up" | cut -f2 | uniq -c; false; }

		# a1 down: zone a keeps 70%: 60 of 200 spill, within 25; b keeps all.
		ZONE_EXTRA="balance = $bal" zone_pool "$T/zones.pool" prefer a1
		wait_for_line_count "$TCPDIST_LOG" reloaded $n
		n=$((n + 1))
		"$HELPERS/fromaddrs" "127.0.0.1:$LPORT" $SRCS >"$T/$bal.a1"
		s=$(spilled "$T/$bal.a1" 1)
		echo "$bal: spilled with a1 down: $s of 200 (expected 60)"
		((s >= 35 && s <= 85))
		[ "$(spilled "$T/$bal.a1" 2)" -eq 0 ]
		# the spill goes to both other zones
		[ "$(awk -F'\t' '$1 ~ /^127\.0\.1\./ { print substr($2, 1, 1) }' "$T/$bal.a1" | sort -u | xargs)" = "a b c" ]
	done

	# strict with roundrobin and zone a empty: its clients are refused.
	ZONE_EXTRA="balance = roundrobin" zone_pool "$T/zones.pool" strict a1 a2
	wait_for_line_count "$TCPDIST_LOG" reloaded $n
	"$HELPERS/fromaddrs" "127.0.0.1:$LPORT" $SRCS >"$T/strict.all" || true
	[ "$(grep -c $'^127\\.0\\.1\\.[0-9]*\t-$' "$T/strict.all")" -eq 200 ]
	[ "$(spilled "$T/strict.all" 2)" -eq 0 ]
}

@test "tcphash --stats per zone: each backend's share of its zone's table, and the share of its clients each zone keeps" {
	cat >"$T/z.pool" <<-EOF2
		[pool]
		listen = 127.0.0.1:1
		locality = prefer
		[zone a]
		clients = 10.1.0.0/16
		[zone b]
		clients = 10.2.0.0/16
		[backend a1]
		address = 127.0.0.1:11
		zone = a
		[backend a2]
		address = 127.0.0.1:12
		zone = a
		weight = 3
		[backend b1]
		address = 127.0.0.1:21
		zone = b
		[backend b2]
		address = 127.0.0.1:22
		zone = b
		[backend x]
		address = 127.0.0.1:31
	EOF2
	run -0 "$TCPHASH" --stats -f "$T/z.pool" --down a2
	# name weight state slots share weight_share ratio, then zone zone_slots zone_share zone_ratio
	# a1 is all that is left of zone a: its whole table, of zone_table_size's default 65521
	# slots, not the pool's 524287
	[ "$(awk -F'\t' '$1 == "a1" { print NF, $8, $9, $10, $11 }' <<<"$output")" = "11 a 65521 1.000000 1.0000" ]
	[ "$(awk -F'\t' '$1 == "x" { print $8, $9 }' <<<"$output")" = "- 0" ]
	[ "$(awk -F'\t' '$1 == "b1" { print $8 }' <<<"$output")" = b ]
	run -0 "$TCPHASH" --stats -f "$T/z.pool" --down a2 --json
	# zone a: 1 of its 4 available, kept 1/4 x 1.4 = 0.35; zone b whole
	jq -e '.locality == "prefer" and .table_size == 524287 and
		(.zones | map(.table_size)) == [65521, 65521] and
		(.zones | map({(.name): .keeps}) | add) == {"a": 0.35, "b": 1} and
		(.zones[0] | .weight == 4 and .available_weight == 1) and
		(.backends[] | select(.name == "x") | .zone == null) and
		(.backends[] | select(.name == "b2") | .zone == "b" and .zone_share > 0.49)' <<<"$output"
	# zone_table_size: every zone's table, smaller or larger than table_size
	sed -i 's/^locality = prefer$/&\nzone_table_size = 1048573/' "$T/z.pool"
	run -0 "$TCPHASH" --stats -f "$T/z.pool" --down a2 --json
	jq -e '.table_size == 524287 and (.zones | map(.table_size)) == [1048573, 1048573] and
		(.backends[] | select(.name == "a1") | .zone_slots == 1048573 and .zone_share == 1)' <<<"$output"
	sed -i 's/^zone_table_size = .*/zone_table_size = 4099/' "$T/z.pool"
	run -0 "$TCPHASH" --stats -f "$T/z.pool" --down a2
	[ "$(awk -F'\t' '$1 == "a1" { print $9, $10 }' <<<"$output")" = "4099 1.000000" ]
	[ "$(awk -F'\t' '$8 == "b" { s += $9 } END { print s }' <<<"$output")" = 4099 ]
	# without locality the lines keep their 7 columns
	sed -i 's/^locality = prefer$/locality = off/' "$T/z.pool"
	run -0 "$TCPHASH" --stats -f "$T/z.pool"
	[ "$(awk -F'\t' '{ print NF }' <<<"$output" | sort -u)" = 7 ]
}

# zone_of N: a pool with zone a of backends a1..aN (weight 1) and x of no zone.
zone_of() {
	printf '[pool]\nlocality = prefer\n[zone a]\nclients = 10.1.0.0/16\n[backend x]\naddress = 127.0.0.1:9\n'
	for ((i = 1; i <= $1; i++)); do
		printf '[backend a%d]\naddress = 127.0.0.1:%d\nzone = a\n' "$i" $((100 + i))
	done
}

@test "consistent hashing in a zone: a 14th backend in a zone of 13 takes 1/14 of the zone's clients and moves within 1.2 times that" {
	zone_of 13 >"$T/13.pool"
	zone_of 14 >"$T/14.pool"
	awk 'BEGIN { for (i = 0; i < 3000; i++) printf "10.1.%d.%d\n", int(i / 250), i % 250 + 1 }' >"$T/clients"
	"$TCPHASH" -f "$T/13.pool" <"$T/clients" | cut -f1,2,5 >"$T/13.out"
	"$TCPHASH" -f "$T/14.pool" <"$T/clients" | cut -f1,2,5 >"$T/14.out"
	[ "$(cut -f3 "$T/14.out" | sort | uniq -c | xargs)" = "3000 local" ]
	read -r moved to_new < <(paste "$T/13.out" "$T/14.out" |
		awk -F'\t' '$2 != $5 { m++; n += $5 == "a14" } END { print m + 0, n + 0 }')
	echo "moved $moved of 3000, $to_new to a14 (1/14: 214)"
	# 1.2 x 3000 / 14 = 257, and 60 for the sample; a table that changed size would move ~2800
	((moved <= 317))
	((to_new >= 150))
}

@test "zone_table_size: tcpdist and tcphash answer alike at any size; a reload that changes it rebuilds the zones' tables" {
	ports LPORT
	start_zone_backends
	SRCS="$(seq -f '127.0.1.%g' 1 100) $(seq -f '127.0.2.%g' 1 100) $(seq -f '127.0.3.%g' 1 100)"
	ZONE_EXTRA="zone_table_size = 257" zone_pool "$T/zones.pool" prefer
	start_tcpdist "$T/zones.pool"
	agree "$T/small"
	[ "$(wc -l <"$T/small.live")" -eq 300 ]
	for z in 1 2 3; do [ "$(spilled "$T/small.live" $z)" -eq 0 ]; done

	ZONE_EXTRA="zone_table_size = 1048573" zone_pool "$T/zones.pool" prefer
	wait_for_file_line "$TCPDIST_LOG" 'reloaded.*pool settings changed'
	agree "$T/large"
	# the sizes answer differently: tcpdist's own answers changed with the reload
	n=$(paste "$T/small.live" "$T/large.live" | awk -F'\t' '$2 != $4' | wc -l)
	echo "$n of 300 clients moved within their zone"
	((n >= 50))
	for z in 1 2 3; do [ "$(spilled "$T/large.live" $z)" -eq 0 ]; done
}
