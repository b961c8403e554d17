#!/usr/bin/env bash
# The value the guest writes to the debug-exit port is vmm's exit status;
# --debug-exit=qemu gives QEMU's (V << 1) | 1.
. "$(dirname "$0")/../lib.sh"
need_kvm
check() {
	local want=$1
	shift
	"$VMM" run "$GUEST" -n "$@"
	local rc=$?
	[ "$rc" -eq "$want" ] || fail "'$*': exit status $rc, expected $want"
	note "'$*' -> $rc"
}
check 1 --append "exit code=1"
check 3 --append "exit code=1" --debug-exit=qemu
check 42 --append "exit code=42"
check 0 --append "exit code=0"
check 1 --append "exit code=0" --debug-exit qemu
check 0 --append hello --serial none
echo "PASS"
