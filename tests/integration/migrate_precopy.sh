#!/usr/bin/env bash
# timeout: 600
# Precopy: the dirty guest (256 MiB RAM, 64 MiB working set, a dirty rate
# the link outruns) on 1 and 2 vCPUs migrates over tcp and unix at a random
# moment, runs on at the destination, and its own final verification
# passes.  The source stays paused; info migrate reports the figures.
. "$(dirname "$0")/../lib.sh"
need_kvm
for cpus in 1 2; do
	for transport in tcp unix; do
		tag=$transport$cpus
		if [ "$transport" = tcp ]; then uri=tcp:127.0.0.1:$(free_port); else uri=unix:$TMP/$tag.mig; fi
		src_start "src$tag" "$cpus" "dirty ws=64M rate=8 secs=900 pattern=random seed=$cpus"
		dst_start "dst$tag" "$cpus" "$uri"
		sleep "$((1 + RANDOM % 3)).$((RANDOM % 10))"
		"$VMM" migrate --timeout "$(scaled 300)" --monitor "$SRC_SOCK" "$uri" >"$TMP/mig$tag.out" || {
			cat "$TMP/mig$tag.out"; fail "$tag: vmm migrate failed"; }
		cat "$TMP/mig$tag.out"
		out=$(mon "$SRC_SOCK" "info migrate --json")
		for f in total_ms downtime_ms bytes rounds verify_pages; do
			[ -n "$(jfield "$out" "$f")" ] || fail "$tag: info migrate --json lacks '$f'"
		done
		[ "$(jfield "$out" status)" = completed ] || fail "$tag: not completed"
		mon "$SRC_SOCK" "info status" | grep -q 'VM status: paused (migrated)' ||
			fail "$tag: the source is not paused after the migration"
		[ "$(mig_status "$DST_SOCK")" = completed ] ||
			fail "$tag: the destination does not report completion"
		mon "$SRC_SOCK" quit
		vmm_wait "$SRC_PID" 60 || fail "$tag: the source did not quit"
		# The guest runs on here; then the test ends it and it verifies everything.
		wait_progress "$TMP/dst$tag.out" || fail "$tag: the guest made no progress on the destination"
		guest_stop "$DST_SOCK" "$TMP/src$tag.out" || fail "$tag: cannot stop the guest"
		vmm_wait "$DST_PID" 300 || fail "$tag: the destination guest did not finish"
		expect_pass "dst$tag" "$VMM_STATUS"
		grep -q '^dirty: t=' "$TMP/dst$tag.out" || fail "$tag: the guest made no progress on the destination"
		note "$tag: migrated and verified"
	done
done
echo "PASS"
