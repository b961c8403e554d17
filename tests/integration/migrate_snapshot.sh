#!/usr/bin/env bash
# timeout: 300
# file: snapshots: save a running VM, restore it in a new vmm, continue and
# verify (the test ends the guest once it runs on); a saved state reads with
# dtc, vCPU registers by name.
. "$(dirname "$0")/../lib.sh"
need_kvm
src_start snap 2 "dirty ws=16M rate=8 secs=900"
"$VMM" migrate -q --timeout "$(scaled 300)" --monitor "$SRC_SOCK" "file:$TMP/snap" >"$TMP/mig.out" ||
	{ cat "$TMP/mig.out"; fail "snapshot failed"; }
mon "$SRC_SOCK" "info status" | grep -q 'paused' || fail "the source is not paused after the snapshot"
mon "$SRC_SOCK" quit
vmm_wait "$SRC_PID" 60 || fail "the source did not quit"
ls -l "$TMP/snap"
vmm_start restored run --incoming "file:$TMP/snap" -m 256M -c 2 -n --monitor "unix:$TMP/restored.sock"
wait_socket "$TMP/restored.sock" || fail "the restored VM has no monitor"
wait_progress "$TMP/restored.out" || fail "the restored guest does not run"
guest_stop "$TMP/restored.sock" "$TMP/snap.out" || fail "cannot stop the restored guest"
vmm_wait "$VMM_PID" 300 || fail "the restored guest did not finish"
expect_pass restored "$VMM_STATUS"

# The state inside the snapshot, as a device tree.
"$VMM" dump-state "$TMP/snap" >"$TMP/state.dtb" || fail "dump-state failed"
if command -v dtc >/dev/null; then
	dtc -I dtb -O dts "$TMP/state.dtb" >"$TMP/state.dts" 2>/dev/null || fail "dtc cannot read the state"
	grep -E '^\s+(rip|rax|rsp|cr3) = ' "$TMP/state.dts" | head -n 8
	for r in rip rax rsp rflags cr0 cr3 efer; do
		grep -qE "^\s+$r = <" "$TMP/state.dts" || fail "no register $r by name in the state"
	done
	grep -q 'cpu@1' "$TMP/state.dts" || fail "no second vCPU in the state"
else
	note "dtc not installed: device tree check skipped (install device-tree-compiler)"
fi
echo "PASS"
