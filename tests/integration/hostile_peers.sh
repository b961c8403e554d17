#!/usr/bin/env bash
# timeout: 900
# Hostile and dead peers (tests/tools/hostile.py), each case ending with the
# endpoint's verdict: one clear line, within its deadline (peer-timeout 2 s
# here, scaled; the bound checked is only there to catch a hang), and nothing lost.
#
# Destination: a client that connects and says nothing, sends 10 bytes, or
# trickles a header is dropped and the destination waits for the next; the
# real source that comes after migrates and its guest verifies.  A source
# that sends a header and then nothing, or declares a 2 MiB record and
# sends 1000 bytes, or a device tree that crashed libfdt 1.6.1, is refused
# with one line and VMM_EXIT_INCOMING, within the deadline.  A waiting destination
# ends on SIGTERM and on migrate_cancel.
#
# Source: a destination that never acknowledges the header, sends half a
# record, sends wrong acknowledgements, or the right one a byte at a time,
# makes the migration fail within the deadline with the reason in info
# migrate, the guest running on (after END left, once the user says `cont`:
# the source cannot know whether the destination runs it); an ERROR full of
# escape sequences is shown sanitized.
. "$(dirname "$0")/../lib.sh"
need_kvm
command -v python3 >/dev/null || skip "python3 plays the hostile peers"
HOSTILE=$TOP/tests/tools/hostile.py
PT=$(($(scaled 2) * 1000))	# peer-timeout, ms: 2 s, scaled (the real source must not run into it)
BOUND=60	# seconds, scaled by the waits: far above PT, only a hang goes past it

bg() {	# bg NAME CMD...: a helper process, ended at cleanup, output in $TMP/NAME.out
	spawn "$@"
	BG_PID=$SPAWN_PID
}

# ---- the destination ----
port=$(free_port)
dst_start dst 1 "tcp:127.0.0.1:$port" --set peer-timeout=$PT
for mode in silent ten-bytes trickle; do
	n=$(grep -c 'ignored a connection' "$TMP/dst.out")
	t0=$SECONDS
	bg "fake-$mode" python3 "$HOSTILE" source "$mode" "$port"
	fake=$BG_PID
	wait_for "$TMP/dst.out" "ignored a connection" $BOUND || fail "$mode: the destination did not drop the client"
	deadline=$((SECONDS + $(scaled $BOUND)))
	while [ "$(grep -c 'ignored a connection' "$TMP/dst.out")" -le "$n" ] && [ $SECONDS -lt $deadline ]; do
		sleep 0.1
	done
	[ "$(grep -c 'ignored a connection' "$TMP/dst.out")" -gt "$n" ] || fail "$mode: not dropped"
	kill "$fake" 2>/dev/null
	note "$mode: dropped after $((SECONDS - t0)) s: $(grep 'ignored a connection' "$TMP/dst.out" | tail -n 1)"
	kill -0 "$DST_PID" 2>/dev/null || fail "$mode: the destination died"
done
# The real source, after all that.
src_start src 1 "dirty ws=16M rate=4 secs=900"
"$VMM" migrate -q --monitor "$SRC_SOCK" "tcp:127.0.0.1:$port" >"$TMP/mig.out" ||
	{ cat "$TMP/mig.out"; fail "the real source could not migrate after the bad clients"; }
guest_stop "$DST_SOCK" "$TMP/src.out" || fail "cannot stop the guest"
mon "$SRC_SOCK" quit
vmm_wait "$DST_PID" 300 || fail "the guest did not finish on the destination"
expect_pass dst "$VMM_STATUS"
note "the real source migrated after three bad clients; the guest verified"

# After the header the source is taken at its word: a dead one ends the destination.
for mode in header-only big-record fdt-old; do
	port=$(free_port)
	dst_start "d-$mode" 1 "tcp:127.0.0.1:$port" --set peer-timeout=$PT
	t0=$SECONDS
	bg "fake-$mode" python3 "$HOSTILE" source "$mode" "$port"
	vmm_wait "$DST_PID" $BOUND || fail "$mode: the destination hangs"
	took=$((SECONDS - t0))
	[ "$VMM_STATUS" -eq $VMM_EXIT_INCOMING ] || { cat "$TMP/d-$mode.out"; fail "$mode: destination status $VMM_STATUS, expected $VMM_EXIT_INCOMING"; }
	n=$(grep -c 'error:' "$TMP/d-$mode.out")
	[ "$n" -eq 1 ] || { cat "$TMP/d-$mode.out"; fail "$mode: $n error lines, expected 1"; }
	# A record cut short inside its checked part ends on the record's deadline, not a checksum.
	[ "$mode" != big-record ] || grep -q 'truncated RAM_PAGES record (the peer went silent)' "$TMP/d-$mode.out" ||
		{ cat "$TMP/d-$mode.out"; fail "$mode: not ended by the record's deadline"; }
	note "$mode: exit $VMM_STATUS after $took s: $(grep 'error:' "$TMP/d-$mode.out")"
done

# A waiting destination ends on SIGTERM, and on migrate_cancel, at once.
port=$(free_port)
dst_start term 1 "tcp:127.0.0.1:$port"
kill -TERM "$DST_PID"
vmm_wait "$DST_PID" 30 || fail "a waiting destination ignores SIGTERM"
note "SIGTERM: a waiting destination ended (status $VMM_STATUS)"
port=$(free_port)
dst_start cancel 1 "tcp:127.0.0.1:$port"
mon "$DST_SOCK" migrate_cancel || fail "migrate_cancel refused on a waiting destination"
vmm_wait "$DST_PID" 30 || fail "a waiting destination ignores migrate_cancel"
grep -q 'incoming migration cancelled' "$TMP/cancel.out" || { cat "$TMP/cancel.out"; fail "no word of the cancel"; }
note "migrate_cancel: a waiting destination ended (status $VMM_STATUS)"

# ---- the source ----
src_start s2 1 "dirty ws=16M rate=4 secs=900"
mon "$SRC_SOCK" "migrate_set_parameter peer-timeout $PT" >/dev/null
progressing() {
	mon "$SRC_SOCK" "info status" | grep -q 'VM status: running' || fail "$1: the source is not running"
	wait_progress "$TMP/s2.out" || fail "$1: the source guest does not progress"
}
for mode in no-ack half-record wrong-acks slow-ack error-escapes; do
	port=$(free_port)
	# slow-ack's 20 bytes take 5 peer-timeouts.
	bg "fd-$mode" python3 "$HOSTILE" dest "$mode" "$port" "$((PT / 4000 + 1))"
	wait_for "$TMP/fd-$mode.out" ready $BOUND || fail "$mode: no fake destination"
	t0=$SECONDS
	"$VMM" migrate -q -t "$(scaled $BOUND)" --monitor "$SRC_SOCK" "tcp:127.0.0.1:$port" >"$TMP/m-$mode.out" 2>&1 &&
		fail "$mode: the migration succeeded"
	took=$((SECONDS - t0))
	reason=$(sed -n 's/^failure reason: //p' "$TMP/m-$mode.out")
	[ -n "$reason" ] || { cat "$TMP/m-$mode.out"; fail "$mode: no failure reason"; }
	grep -q 'timed out, cancelling' "$TMP/m-$mode.out" && fail "$mode: only vmm migrate's own timeout ended it"
	note "$mode: failed after $took s: $reason"
	case $mode in
	wrong-acks|slow-ack)
		# END left: the destination may run the guest, so the source waits for the user (no split brain).
		mon "$SRC_SOCK" "info status" | grep -q 'paused (migrate-unknown)' ||
			fail "$mode: the source resumed by itself after END left"
		grep -q "may run on the destination" "$TMP/s2.out" || fail "$mode: the source does not say why it waits"
		mon "$SRC_SOCK" cont >/dev/null || fail "$mode: cont refused" ;;
	esac
	progressing "$mode"
	kill "$BG_PID" 2>/dev/null
done
grep -q $'\x1b' "$TMP/m-error-escapes.out" "$TMP/s2.out" && fail "an escape sequence from the peer reached the output"
grep -q 'bad ?\[31mred?\[0m??? end' "$TMP/m-error-escapes.out" || fail "the peer's text is not shown sanitized"
mon "$SRC_SOCK" quit
echo PASS
