#!/usr/bin/env bash
# timeout: 400
# A file: snapshot of a guest that dirties memory as fast as it can is
# bounded (issue 16, point 12): with a downtime limit of 0 precopy alone
# would never stop, yet the snapshot ends after at most 4 rounds and the
# file stays within the guest's RAM (docs/design.md: the bound), and it
# restores to a guest that verifies.  A full disk (a small tmpfs, where
# root may mount one) is one error line, the partial file is removed, and
# the source runs on.  (The tmpfs is smaller than the verify digests alone,
# 8 bytes a page, so that the disk fills however little the guest wrote.)
. "$(dirname "$0")/../lib.sh"
need_kvm
ram=$((256 << 20))
src_start bnd 2 "dirty ws=64M rate=max secs=900"
mon "$SRC_SOCK" "migrate_set_parameter downtime-limit 0" || fail "cannot set downtime-limit 0"

# A full disk first: the source must run on after it.
mkdir -p "$TMP/small"
if mount -t tmpfs -o size=256k tmpfs "$TMP/small" 2>/dev/null; then
	at_cleanup "umount '$TMP/small'"
	"$VMM" migrate -q --timeout "$(scaled 120)" --monitor "$SRC_SOCK" "file:$TMP/small/snap" >"$TMP/full.out" 2>&1 &&
		{ cat "$TMP/full.out"; fail "a snapshot onto a full disk succeeded"; }
	cat "$TMP/full.out"
	grep -q '^failure reason: cannot write .*No space left on device (the partial file was removed)' "$TMP/full.out" ||
		fail "vmm migrate does not say the disk is full and the file removed"
	[ "$(grep -c 'No space left on device' "$TMP/bnd.out")" -eq 1 ] ||
		{ tail -n 20 "$TMP/bnd.out"; fail "the source does not report the full disk in exactly one line"; }
	[ -e "$TMP/small/snap" ] && fail "the partial snapshot was left on the full disk"
	mon "$SRC_SOCK" "info status" | grep -q 'VM status: running' || fail "the source does not run on after ENOSPC"
	wait_progress "$TMP/bnd.out" || fail "the guest does not progress after ENOSPC"
else
	note "cannot mount a small tmpfs (not root?): the full-disk part is skipped"
fi

# The bound.
"$VMM" migrate -q --timeout "$(scaled 300)" --monitor "$SRC_SOCK" "file:$TMP/snap" >"$TMP/mig.out" 2>&1 ||
	{ cat "$TMP/mig.out"; fail "the snapshot did not complete"; }
json=$(mon "$SRC_SOCK" "info migrate --json")
rounds=$(jfield "$json" rounds)
size=$(stat -c %s "$TMP/snap")
note "snapshot: $rounds rounds, $size bytes for $ram bytes of RAM (guest dirty rate $(jfield "$json" dirty_rate) pages/s)"
[ "$rounds" -le 4 ] || fail "the snapshot took $rounds rounds (at most 4)"
[ "$size" -le $((ram + (2 << 20))) ] || fail "the snapshot is $size bytes, more than the RAM ($ram) and 2 MiB"
mon "$SRC_SOCK" quit
vmm_wait "$SRC_PID" 60 || fail "the source did not quit"

vmm_start restored run --incoming "file:$TMP/snap" -m 256M -c 2 -n --monitor "unix:$TMP/restored.sock"
wait_socket "$TMP/restored.sock" || fail "the restored VM has no monitor"
wait_progress "$TMP/restored.out" || fail "the restored guest does not run"
guest_stop "$TMP/restored.sock" "$TMP/bnd.out" || fail "cannot stop the restored guest"
vmm_wait "$VMM_PID" 300 || fail "the restored guest did not finish"
expect_pass restored "$VMM_STATUS"
echo "PASS"
