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

# A peer's state whose device tree header says version 2, last compatible 0
# (Debian 12's libfdt dereferences NULL on it in fdt_check_full()): the
# destination refuses it with one line naming the version and exits with status 118 (incoming failed).
python3 - "$TMP/snap" "$TMP/snap.fdt2" "$TOP/tests/tools/fake-dest.py" <<'PY'
import importlib.util, struct, sys
spec = importlib.util.spec_from_file_location('fake', sys.argv[3])
fake = importlib.util.module_from_spec(spec); spec.loader.exec_module(fake)
data = bytearray(open(sys.argv[1], 'rb').read())
off, = struct.unpack_from('<I', data, 12)      # the header's length
while True:
    rtype, length, seq = struct.unpack_from('<III', data, off)
    if rtype == 2:                              # MACHINE_STATE
        p = off + 16
        struct.pack_into('>II', data, p + 20, 2, 0)     # FDT version, last_comp_version
        crc = fake.crc32c(bytes(data[off:off + 12] + data[p:p + length]))
        struct.pack_into('<I', data, off + 12, crc)
        break
    off += 16 + length
open(sys.argv[2], 'wb').write(data)
PY
vmm_start fdt2 run --incoming "file:$TMP/snap.fdt2" -m 256M -c 2 -n
vmm_wait "$VMM_PID" 60 || fail "the destination of a bad state header did not end"
cat "$TMP/fdt2.out"
[ "$VMM_STATUS" -eq $VMM_EXIT_INCOMING ] || fail "bad state header: exit status $VMM_STATUS, expected $VMM_EXIT_INCOMING"
[ "$(grep -c 'device tree version 2 (last compatible 0)' "$TMP/fdt2.out")" -eq 1 ] ||
	fail "bad state header: not exactly one line naming the version"
grep -q '^dirty:' "$TMP/fdt2.out" && fail "bad state header: the guest ran"

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
