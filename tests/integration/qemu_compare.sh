#!/usr/bin/env bash
# timeout: 400
# The same guest.img boots under QEMU (TCG) with the same output and the same
# guest exit value as under vmm: hello byte for byte, exit codes, and the
# dirty workload's verdict.
. "$(dirname "$0")/../lib.sh"
need_kvm
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed"

# QEMU's isa-debug-exit gives (V << 1) | 1; both runs report the guest's V.
run_qemu() {
	local rc
	timeout "$(scaled 300)" qemu-system-x86_64 -accel tcg -kernel "$GUEST" -device isa-debug-exit \
		-serial stdio -display none -monitor none -nodefaults -no-reboot -m 128 "$@" \
		>"$TMP/qemu.out" 2>"$TMP/qemu.err" </dev/null
	rc=$?
	QEMU_V=$((rc >> 1))
	[ $((rc & 1)) -eq 1 ] || { cat "$TMP/qemu.err"; fail "QEMU did not exit through isa-debug-exit (status $rc)"; }
}
run_vmm() {
	"$VMM" run -m 128M -n "$GUEST" "$@" >"$TMP/vmm.out" 2>"$TMP/vmm.err"
	VMM_V=$?
}
compare() {
	local what=$1
	note "$what: vmm exit $VMM_V, QEMU guest value $QEMU_V"
	[ "$VMM_V" -eq "$QEMU_V" ] || fail "$what: exit values differ"
}

run_vmm --append hello
run_qemu -append hello
compare hello
diff -u "$TMP/qemu.out" "$TMP/vmm.out" || fail "hello: outputs differ"
cat "$TMP/vmm.out"

run_vmm --append "exit code=7"
run_qemu -append "exit code=7"
compare "exit code=7"
diff -u "$TMP/qemu.out" "$TMP/vmm.out" || fail "exit: outputs differ"

run_vmm -c 2 --append "dirty ws=4M passes=2"
run_qemu -smp 2 -append "dirty ws=4M passes=2"
compare "dirty on 2 CPUs"
grep -E '^dirty: (ws=|verify|PASS|FAIL)' "$TMP/vmm.out" >"$TMP/vmm.verdict"
grep -E '^dirty: (ws=|verify|PASS|FAIL)' "$TMP/qemu.out" >"$TMP/qemu.verdict"
cat "$TMP/vmm.verdict"
diff -u "$TMP/qemu.verdict" "$TMP/vmm.verdict" || fail "dirty: verdicts differ"
grep -q '^dirty: PASS' "$TMP/vmm.verdict" || fail "dirty did not pass"
echo "PASS"
