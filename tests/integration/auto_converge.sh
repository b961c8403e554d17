#!/usr/bin/env bash
# timeout: 600
# auto-converge (QEMU's capability and parameters): while the guest dirties
# pages faster than the link sends them, the source throttles its vCPUs
# step by step; the throttle shows in info migrate, slows the guest, and is
# lifted when the rounds end (here by migrate_cancel: the guest runs at its
# own speed again).  And when max-rounds stops a migration whose downtime
# will be over the limit, info migrate says so; the guest verifies on the
# destination.
#
# As in migrate_converge.sh the verdicts do not depend on the guest's speed:
# it rewrites a 128 KiB working set as fast as it can and the link is held
# at 64 KB/s, so any guest writing more than a few KB/s outruns it (each
# round dirties more than half of what it sent: the trigger).  The throttle
# is held at 90 % (cpu-throttle-initial and max-cpu-throttle): a guest at a
# tenth of its speed still outruns that link, so the migration goes on
# until cancelled.  (At 99 % the guest all but stops, and the migration
# converges and completes: seen in the first run of this test.)  The rates
# compared are the guest's own (pages written per guest second), before,
# under and after the throttle; the test asks for a third of the cut.
. "$(dirname "$0")/../lib.sh"
need_kvm

# The guest's write rate (pages per guest second) over the next SECS guest seconds.
rate() {	# FILE SECS
	local file=$1 secs=$2 t0 w0 t1 w1 line
	wait_progress "$file" || return 1
	line=$(grep '^dirty: t=' "$file" | tail -n 1)
	t0=$(sed -n 's/^dirty: t=\([0-9.]*\) .*/\1/p' <<<"$line")
	w0=$(sed -n 's/.* written=\([0-9]*\) .*/\1/p' <<<"$line")
	while :; do
		wait_progress "$file" || return 1
		line=$(grep '^dirty: t=' "$file" | tail -n 1)
		t1=$(sed -n 's/^dirty: t=\([0-9.]*\) .*/\1/p' <<<"$line")
		w1=$(sed -n 's/.* written=\([0-9]*\) .*/\1/p' <<<"$line")
		awk -v a="$t0" -v b="$t1" -v s="$secs" 'BEGIN { exit !(b - a >= s) }' && break
	done
	awk -v a="$t0" -v b="$t1" -v x="$w0" -v y="$w1" 'BEGIN { printf "%d\n", (y - x) / (b - a) }'
}

uri=tcp:127.0.0.1:$(free_port)
src_start src 1 "dirty ws=128K rate=max secs=900"
dst_start dst 1 "$uri"
wait_for "$TMP/src.out" '^dirty: t=.* passes=[1-9]' || fail "the guest did not write its working set"
free=$(rate "$TMP/src.out" 3) || fail "no progress before the migration"
mon "$SRC_SOCK" "migrate_set_capability auto-converge on" "migrate_set_parameter cpu-throttle-initial 90" \
	"migrate_set_parameter max-cpu-throttle 90" "migrate_set_parameter max-bandwidth 64K" "migrate_set_parameter downtime-limit 100" "migrate $uri" >/dev/null ||
	fail "cannot start the migration"
deadline=$((SECONDS + $(scaled 300)))
while [ $SECONDS -le $deadline ]; do
	out=$(mon "$SRC_SOCK" "info migrate --json")
	[ "$(jfield "$out" cpu_throttle_percentage)" = 90 ] && break
	[ "$(jfield "$out" status)" = active ] || [ "$(jfield "$out" status)" = setup ] ||
		fail "status $(jfield "$out" status) before the throttle: $out"
	sleep 0.2
done
echo "$out"
[ "$(jfield "$out" cpu_throttle_percentage)" = 90 ] || fail "the vCPUs were never throttled to 90 %"
[ "$(jfield "$out" throttle_steps)" = 1 ] || fail "throttle steps $(jfield "$out" throttle_steps), expected 1"
mon "$SRC_SOCK" "info migrate" | grep 'cpu throttle percentage: 90' || fail "info migrate does not show the throttle"
slow=$(rate "$TMP/src.out" 3) || fail "no progress under the throttle"
note "the guest's rate: $free pages/s free, $slow under a 90 % throttle"
[ $((slow * 3)) -lt "$free" ] || fail "a 90 % throttle left the guest at $slow pages/s of $free"
[ "$(mig_status "$SRC_SOCK")" = active ] || fail "the migration is $(mig_status "$SRC_SOCK"), not active, under the throttle"

# Cancelled: the rounds are over, the guest runs at its own speed again.
mon "$SRC_SOCK" migrate_cancel || fail "migrate_cancel refused"
deadline=$((SECONDS + $(scaled 60)))
until [ "$(mig_status "$SRC_SOCK")" = cancelled ]; do
	[ $SECONDS -le $deadline ] || fail "the migration was not cancelled"
	sleep 0.2
done
again=$(rate "$TMP/src.out" 3) || fail "no progress after the cancel"
note "after the cancel: $again pages/s"
[ "$again" -gt $((slow * 3)) ] || fail "the throttle stayed on after the cancel ($again pages/s, $slow under it)"
vmm_wait "$DST_PID" 60 || fail "the destination did not end with the cancelled migration"

# max-rounds stops it with the downtime over the limit: said in info migrate; the guest verifies.
uri=tcp:127.0.0.1:$(free_port)
dst_start dst2 1 "$uri"
mon "$SRC_SOCK" "migrate_set_parameter max-rounds 3" "migrate $uri" >/dev/null || fail "cannot start again"
deadline=$((SECONDS + $(scaled 300)))
until [ "$(mig_status "$SRC_SOCK")" = completed ]; do
	[ $SECONDS -le $deadline ] && [ "$(mig_status "$SRC_SOCK")" != failed ] ||
		fail "the forced migration did not complete: $(mon "$SRC_SOCK" "info migrate")"
	sleep 0.2
done
out=$(mon "$SRC_SOCK" "info migrate" "info migrate --json")
echo "$out"
grep -q 'downtime limit not met: max-rounds stopped the guest with [0-9]* ms expected' <<<"$out" ||
	fail "info migrate does not say the downtime limit was not met"
[ "$(jfield "$(grep '^{' <<<"$out")" forced_expected_downtime_ms)" -gt 100 ] ||
	fail "forced_expected_downtime_ms is not above the limit"
mon "$SRC_SOCK" quit
vmm_wait "$SRC_PID" 60 || fail "the source did not quit"
wait_progress "$TMP/dst2.out" || fail "the guest does not run on the destination"
guest_stop "$DST_SOCK" "$TMP/src.out" || fail "cannot stop the guest"
vmm_wait "$DST_PID" 300 || fail "the guest did not finish on the destination"
expect_pass dst2 "$VMM_STATUS"
echo "PASS"
