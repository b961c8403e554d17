#!/usr/bin/env bash
# timeout: 600
# A dirty rate above the (bandwidth-limited) link does not converge; raising
# downtime-limit, or max-bandwidth, then lets the migration complete.
. "$(dirname "$0")/../lib.sh"
need_kvm
for knob in downtime-limit max-bandwidth; do
	uri=tcp:127.0.0.1:$(free_port)
	src_start "src-$knob" 1 "dirty ws=8M rate=6 secs=900"
	dst_start "dst-$knob" 1 "$uri"
	mon "$SRC_SOCK" "migrate_set_parameter max-bandwidth 2M" "migrate_set_parameter downtime-limit 300" "migrate $uri" ||
		fail "cannot start the migration"
	# Let it go round a few times without converging.
	deadline=$((SECONDS + $(scaled 300)))
	while [ $SECONDS -le $deadline ]; do
		out=$(mon "$SRC_SOCK" "info migrate --json")
		[ "$(jfield "$out" rounds)" -ge 3 ] 2>/dev/null && break
		[ "$(jfield "$out" status)" = active ] || [ "$(jfield "$out" status)" = setup ] ||
			fail "$knob: status $(jfield "$out" status) before the change: $out"
		sleep 0.2
	done
	echo "$out"
	[ "$(jfield "$out" status)" = active ] || fail "$knob: converged although the dirty rate is above the link"
	[ "$(jfield "$out" rounds)" -ge 3 ] || fail "$knob: fewer than 3 rounds"
	if [ "$knob" = downtime-limit ]; then
		mon "$SRC_SOCK" "migrate_set_parameter downtime-limit 60000"
	else
		mon "$SRC_SOCK" "migrate_set_parameter max-bandwidth 0"
	fi
	deadline=$((SECONDS + $(scaled 300)))
	while [ $SECONDS -le $deadline ]; do
		out=$(mon "$SRC_SOCK" "info migrate --json")
		[ "$(jfield "$out" status)" = completed ] && break
		sleep 0.2
	done
	echo "$out"
	[ "$(jfield "$out" status)" = completed ] || fail "$knob: did not complete after raising it"
	mon "$SRC_SOCK" quit
	vmm_wait "$SRC_PID" 60 || fail "$knob: the source did not quit"
	# The guest runs and progresses on the destination; then the test ends
	# it and it verifies everything.
	wait_for "$TMP/dst-$knob.out" '^dirty: t=' || fail "$knob: the guest does not run on the destination"
	wait_progress "$TMP/dst-$knob.out" || fail "$knob: no progress on the destination"
	grep -q 'FAIL' "$TMP/dst-$knob.out" && fail "$knob: the guest found bad pages"
	guest_stop "$DST_SOCK" "$TMP/src-$knob.out" || fail "$knob: cannot stop the guest"
	vmm_wait "$DST_PID" 300 || fail "$knob: the guest did not finish on the destination"
	expect_pass "dst-$knob" "$VMM_STATUS"
	note "$knob: converged after the change"
done
echo "PASS"
