#!/usr/bin/env bash
# An unexpected exit (a guest triple fault) is reported by name with a
# register dump, and stops the VM with status VMM_EXIT_VM_ERROR: never a hang or a crash.
. "$(dirname "$0")/../lib.sh"
need_kvm
out=$("$VMM" run "$GUEST" -n --append fault 2>&1)
rc=$?
echo "$out"
[ $rc -eq $VMM_EXIT_VM_ERROR ] || fail "exit status $rc, expected $VMM_EXIT_VM_ERROR"
grep -q 'unexpected exit KVM_EXIT_SHUTDOWN' <<<"$out" || fail "exit reason not named"
grep -qE 'rip=[0-9a-f]{16}' <<<"$out" || fail "no register dump"
grep -q 'code at' <<<"$out" || fail "no code bytes"
echo "PASS"
