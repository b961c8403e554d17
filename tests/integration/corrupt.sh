#!/usr/bin/env bash
# timeout: 300
# The oracle can fail: a byte changed in one guest page from the host, through
# the monitor, makes the dirty guest report exactly that page and exit 1
# (it stops at the first bad page; secs= is only a safety net).
. "$(dirname "$0")/../lib.sh"
need_kvm
for cpus in 1 2; do
	sock=$TMP/mon$cpus.sock
	vmm_start run$cpus run "$GUEST" -m 128M -c "$cpus" -n --monitor "unix:$sock" \
		--append "dirty ws=16M secs=900 rate=4"
	wait_for "$TMP/run$cpus.out" '^dirty: ws=0x' || fail "the guest did not start"
	wait_socket "$sock" || fail "no monitor"
	start=$(sed -n 's/^dirty: ws=\(0x[0-9a-fA-F]*\)-.*/\1/p' "$TMP/run$cpus.out" | head -n 1)
	[ -n "$start" ] || fail "cannot read the working set address"
	page=1234
	gpa=$(printf '0x%x' $((start + page * 4096 + 64)))
	note "corrupting page $page at $gpa"
	mon "$sock" stop "poke $gpa 0x5a5a5a5a5a5a5a5a 8" cont || fail "monitor commands failed"
	vmm_wait "$VMM_PID" 300 || fail "vmm did not end"
	cat "$TMP/run$cpus.out" | tail -n 12
	[ "$VMM_STATUS" -eq 1 ] || fail "$cpus vCPU(s): exit status $VMM_STATUS, expected 1 (guest FAIL)"
	grep -q "^dirty: FAIL page=$page " "$TMP/run$cpus.out" || fail "the guest did not report page $page"
	grep -q '^dirty: FAIL$' "$TMP/run$cpus.out" || fail "no final FAIL verdict"
done
echo "PASS"
