#!/usr/bin/env bash
# timeout: 600
# Ping-pong A -> B -> A -> B with 2 vCPUs: after every hop the guest keeps
# running and completes at least one full verified pass over its working
# set on the new host; the last host's final verification passes.
. "$(dirname "$0")/../lib.sh"
need_kvm
src_start hop0 2 "dirty ws=16M rate=8 secs=900"
cur=hop0 cur_sock=$SRC_SOCK cur_pid=$SRC_PID
for hop in 1 2 3; do
	uri=tcp:127.0.0.1:$(free_port)
	dst_start "hop$hop" 2 "$uri"
	mig_prepare "$cur_sock"
	"$VMM" migrate -q --timeout "$(scaled 300)" --monitor "$cur_sock" "$uri" >"$TMP/mig$hop.out" || {
		cat "$TMP/mig$hop.out"; fail "hop $hop: migration failed"; }
	mon "$cur_sock" quit
	vmm_wait "$cur_pid" 60 || fail "hop $hop: the old host did not quit"
	grep -q 'FAIL' "$TMP/$cur.out" && fail "hop $hop: the guest found bad pages before leaving"
	cur=hop$hop cur_sock=$DST_SOCK cur_pid=$DST_PID
	# A full pass on this host: the passes counter moves on by at least 2.
	wait_for "$TMP/$cur.out" '^dirty: t=' || fail "hop $hop: no progress"
	p0=$(grep '^dirty: t=' "$TMP/$cur.out" | head -n 1 | sed 's/.*passes=\([0-9]*\).*/\1/')
	[ "$hop" -lt 3 ] && { wait_for "$TMP/$cur.out" "^dirty: t=.* passes=$((p0 + 2)) " 300 || fail "hop $hop: no full pass"; }
	note "hop $hop done ($(grep -c '^dirty: t=' "$TMP/$cur.out") progress lines)"
done
# The last host: the test ends the guest, which verifies everything.
guest_stop "$cur_sock" "$TMP/hop0.out" || fail "cannot stop the guest"
vmm_wait "$cur_pid" 300 || fail "the last host did not finish"
expect_pass "$cur" "$VMM_STATUS"
echo "PASS"
