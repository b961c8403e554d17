#!/usr/bin/env bash
# The value the guest writes to the debug-exit port is vmm's exit status;
# --debug-exit=qemu gives QEMU's (V << 1) | 1.  A signal ends vmm by that
# signal, never with an exit status a guest could have given.
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
rc=$(python3 - "$VMM" "$GUEST" "$(scaled 120)" <<'PY'
import signal, subprocess, sys, time
p = subprocess.Popen([sys.argv[1], "run", sys.argv[2], "-n", "--debug-exit=qemu", "--append", "dirty ws=4M secs=600"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(1)
p.send_signal(signal.SIGTERM)
try:
    print(p.wait(timeout=int(sys.argv[3])))
except subprocess.TimeoutExpired:
    p.kill()
    print("hang")
PY
)
[ "$rc" = -15 ] || fail "SIGTERM: vmm ended with '$rc', expected death by SIGTERM (-15)"
note "SIGTERM -> killed by SIGTERM"
echo "PASS"
