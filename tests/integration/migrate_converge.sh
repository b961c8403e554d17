#!/usr/bin/env bash
# timeout: 600
# A dirty rate above the (bandwidth-limited) link does not converge; raising
# downtime-limit, or max-bandwidth, then lets the migration complete.
#
# The verdicts must not depend on how fast the guest runs (a starved guest on
# a busy machine writes a few hundred KB/s, or less, not the rate it asks
# for).  So the guest rewrites a small working set (512 KiB) as fast as it
# can, the migration starts once it has written all of it, and the link is
# held at 64 KB/s: a round then lasts ~8 s, in which any guest writing more
# than 8 KB/s dirties more than the 64 KB that a 1000 ms downtime allows, so
# it cannot converge.  Once the knob is raised the whole working set fits:
# 512 KiB at 64 KB/s is ~8 s against a 60 s downtime-limit, or 512 KiB
# unlimited against 1000 ms (any link above 0.5 MB/s).
. "$(dirname "$0")/../lib.sh"
need_kvm
for knob in downtime-limit max-bandwidth; do
	uri=tcp:127.0.0.1:$(free_port)
	src_start "src-$knob" 1 "dirty ws=512K rate=max secs=900"
	dst_start "dst-$knob" 1 "$uri"
	wait_for "$TMP/src-$knob.out" '^dirty: t=.* passes=[1-9]' ||
		fail "$knob: the guest did not write its working set"
	mon "$SRC_SOCK" "migrate_set_parameter max-bandwidth 64K" "migrate_set_parameter downtime-limit 1000" "migrate $uri" ||
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
