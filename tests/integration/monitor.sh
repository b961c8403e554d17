#!/usr/bin/env bash
# timeout: 200
# The monitor over its unix socket: info status/cpus/registers, x, stop, cont,
# errors, quit.
. "$(dirname "$0")/../lib.sh"
need_kvm
sock=$TMP/mon.sock
vmm_start run run "$GUEST" -c 2 -n --monitor "unix:$sock" --append "dirty ws=8M secs=600 rate=2"
wait_socket "$sock" || fail "no monitor"
wait_for "$TMP/run.out" '^dirty: ws=' || fail "guest did not start"

out=$(mon "$sock" "info status") || fail "info status failed"
grep -q 'VM status: running' <<<"$out" || fail "not running: $out"

out=$(mon "$sock" "info registers") || fail "info registers failed"
echo "$out" | head -n 12
grep -q 'vcpu 0 registers' <<<"$out" && grep -q 'vcpu 1 registers' <<<"$out" || fail "no registers for both vCPUs"
grep -qE 'rip=[0-9a-f]{16}' <<<"$out" || fail "no rip"
grep -qE 'efer=0*d01|efer=0*500' <<<"$out" || fail "the guest is not in long mode"

out=$(mon "$sock" "info cpus") || fail "info cpus failed"
echo "$out"
[ "$(grep -c 'CPU #' <<<"$out")" -eq 2 ] || fail "info cpus does not list 2 CPUs"

mon "$sock" stop || fail "stop failed"
out=$(mon "$sock" "info status")
grep -q 'VM status: paused' <<<"$out" || fail "not paused after stop: $out"
# While paused the guest prints nothing.
sleep 1
n1=$(wc -l <"$TMP/run.out")
sleep 3
n2=$(wc -l <"$TMP/run.out")
[ "$n1" -eq "$n2" ] || fail "guest output went on while paused ($n1 -> $n2 lines)"

# x: the multiboot header of the image, loaded at 1 MiB, starts with its magic.
out=$(mon "$sock" "x 0x100000 64") || fail "x failed"
echo "$out"
grep -q '02 b0 ad 1b' <<<"$out" || fail "x does not show the multiboot magic at 1 MiB"
mon "$sock" "x 0x100000000 16" && fail "x outside RAM did not fail"
mon "$sock" "bogus" && fail "an unknown command did not fail"
mon "$sock" "help" | grep -q '^quit' || fail "help does not list quit"

mon "$sock" cont || fail "cont failed"
out=$(mon "$sock" "info status")
grep -q 'VM status: running' <<<"$out" || fail "not running after cont: $out"
wait_for "$TMP/run.out" '^dirty: t=' || fail "no progress after cont"
wait_progress "$TMP/run.out" || fail "the guest does not progress after cont"

mon "$sock" quit
vmm_wait "$VMM_PID" 60 || fail "vmm did not exit after quit"
[ "$VMM_STATUS" -eq 0 ] || fail "exit status $VMM_STATUS after quit"
[ -e "$sock" ] && fail "the socket file was left behind"
echo "PASS"
