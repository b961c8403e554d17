#!/usr/bin/env bash
# timeout: 900
# Nothing is lost, nothing crashes: a flipped byte, a wrong version, a
# smaller destination, a destination killed mid-stream, a cut connection,
# and migrate_cancel in the setup, active and completing states.  Each
# time the source guest runs on (once END has left, after the user's cont:
# the destination may run it) and is checked to progress, the
# destination fails with one clear message, and at the end a migration
# succeeds and the guest's own final verification passes.
. "$(dirname "$0")/../lib.sh"
need_kvm
command -v python3 >/dev/null || skip "python3 is needed for the fake destinations"
FAKE=$TOP/tests/tools/fake-dest.py

src_start src 1 "dirty ws=16M rate=4 secs=900"

status_of() { mig_status "$SRC_SOCK"; }
wait_status() {
	local want=$1 s deadline=$((SECONDS + $(scaled 120)))
	while [ $SECONDS -le $deadline ]; do
		s=$(status_of)
		[[ "$s" =~ ^($want)$ ]] && return 0
		sleep 0.1
	done
	echo "status is '$s', waited for '$want'"
	mon "$SRC_SOCK" "info migrate"
	return 1
}
# The source guest is running and progressing, and found nothing bad.
source_alive() {
	mon "$SRC_SOCK" "info status" | grep -q 'VM status: running' || fail "$1: the source is not running"
	wait_progress "$TMP/src.out" || fail "$1: the source guest does not progress"
	grep -q FAIL "$TMP/src.out" && fail "$1: the source guest found bad pages"
	note "$1: source running and progressing"
}
# A destination that must fail with a message matching RE and VMM_EXIT_INCOMING.
dst_refused() {
	local name=$1 re=$2
	vmm_wait "$DST_PID" || fail "$name: the destination did not end"
	[ "$VMM_STATUS" -eq $VMM_EXIT_INCOMING ] || fail "$name: destination exit status $VMM_STATUS, expected $VMM_EXIT_INCOMING"
	grep -qE -- "$re" "$TMP/$name.out" || fail "$name: no message matching /$re/"
	grep -q '^dirty:' "$TMP/$name.out" && fail "$name: the destination ran the guest"
	note "$name: $(grep -m1 -E -- "$re" "$TMP/$name.out")"
}

# 1. A snapshot, then corrupted copies of it.
mon "$SRC_SOCK" "migrate file:$TMP/snap" >/dev/null
wait_status completed || fail "snapshot failed"
mon "$SRC_SOCK" cont
# A flipped byte in a record's entry list fails its CRC; one in page data
# (outside the CRC since stream version 2) fails verify (on: mig_prepare),
# which names the page.  The records are walked to find both places.
python3 - "$TMP/snap" <<'PY'
import struct, sys
data = bytearray(open(sys.argv[1], 'rb').read())
off = struct.unpack_from('<I', data, 12)[0]
pages = []
while off + 16 <= len(data):
    rtype, rlen = struct.unpack_from('<II', data, off)
    if rtype == 1:
        pages.append(off)
    off += 16 + rlen
rec = pages[len(pages) // 2]
flip = bytearray(data); flip[rec + 16 + 8 + 3] ^= 0x20          # an entry
open(sys.argv[1] + '.flip', 'wb').write(flip)
# Page data of the last record that has any: no later round can send that page again.
for rec in reversed(pages):
    count = struct.unpack_from('<I', data, rec + 16)[0]
    entries = struct.unpack_from('<%dQ' % count, data, rec + 24)
    if any(not e & 1 for e in entries):
        break
flip = bytearray(data); flip[rec + 16 + 8 + 8 * count + 100] ^= 0x20
open(sys.argv[1] + '.flipdata', 'wb').write(flip)
ver = bytearray(data); ver[8] = 1    # a stream from an older vmm
open(sys.argv[1] + '.ver', 'wb').write(ver)
open(sys.argv[1] + '.short', 'wb').write(data[:len(data) // 3])
PY
vmm_start flip run --incoming "file:$TMP/snap.flip" -m 256M -n
DST_PID=$VMM_PID; dst_refused flip 'checksum mismatch'
vmm_start flipdata run --incoming "file:$TMP/snap.flipdata" -m 256M -n
DST_PID=$VMM_PID; dst_refused flipdata 'verify: 1 of [0-9]+ pages compared differ from the source.s: page [0-9]+ \(gpa'
vmm_start ver run --incoming "file:$TMP/snap.ver" -m 256M -n
DST_PID=$VMM_PID; dst_refused ver 'stream version 1, this vmm speaks version [0-9]+ \(the stream comes from an older vmm\)'
vmm_start short run --incoming "file:$TMP/snap.short" -m 256M -n
DST_PID=$VMM_PID; dst_refused short 'connection closed|truncated'
source_alive "after the snapshot"

# 2. A destination with less RAM refuses the header; the source says why.
uri=tcp:127.0.0.1:$(free_port)
vmm_start small run --incoming "$uri" -m 128M -n
DST_PID=$VMM_PID
wait_for "$TMP/small.out" 'waiting for a migration' || fail "smaller destination: not listening"
mon "$SRC_SOCK" "migrate $uri" >/dev/null
wait_status failed || fail "smaller destination: the migration did not fail"
out=$(mon "$SRC_SOCK" "info migrate --json")
grep -q '"error":"the destination refused: the source has 256 MiB' <<<"$out" ||
	{ echo "$out"; fail "smaller destination: the source does not say why"; }
dst_refused small 'source has 256 MiB of RAM, this destination 128 MiB'
source_alive "smaller destination"

# 3. The destination killed mid-stream.
uri=tcp:127.0.0.1:$(free_port)
dst_start killed 1 "$uri"
mon "$SRC_SOCK" "migrate_set_parameter max-bandwidth 1M" "migrate $uri" >/dev/null
wait_status active || fail "kill: never active"
sleep 2
kill -9 "$DST_PID"
wait_status failed || fail "kill: the migration did not fail"
note "kill: $(mon "$SRC_SOCK" "info migrate --json" | sed -n 's/.*"error":"\([^"]*\)".*/\1/p')"
source_alive "destination killed"

# 4. The connection cut between the two (a proxy in the middle dies).
port=$(free_port) uri=tcp:127.0.0.1:$(free_port)
dst_start cut 1 "$uri"
spawn proxy python3 "$FAKE" proxy "$port" "${uri##*:}"
proxy=$SPAWN_PID
wait_for "$TMP/proxy.out" ready || fail "no proxy"
mon "$SRC_SOCK" "migrate tcp:127.0.0.1:$port" >/dev/null
wait_status active || fail "cut: never active"
sleep 2
kill -9 "$proxy"
wait_status failed || fail "cut: the migration did not fail"
dst_refused cut 'connection closed|Connection reset|truncated'
source_alive "connection cut"

# 5. migrate_cancel in each state.
port=$(free_port)
spawn silent python3 "$FAKE" silent "$port"
wait_for "$TMP/silent.out" ready || fail "no fake destination"
mon "$SRC_SOCK" "migrate tcp:127.0.0.1:$port" >/dev/null
wait_status setup || fail "cancel: not in setup"
sleep 1
mon "$SRC_SOCK" migrate_cancel || fail "cancel in setup refused"
wait_status cancelled || fail "cancel in setup did not take"
source_alive "cancelled in setup"

uri=tcp:127.0.0.1:$(free_port)
dst_start cancelled 1 "$uri"
mon "$SRC_SOCK" "migrate $uri" >/dev/null
wait_status active || fail "cancel: not active"
sleep 1
mon "$SRC_SOCK" migrate_cancel || fail "cancel while active refused"
wait_status cancelled || fail "cancel while active did not take"
dst_refused cancelled 'connection closed|Connection reset|truncated'
source_alive "cancelled while active"

port=$(free_port)
mon "$SRC_SOCK" "migrate_set_parameter max-bandwidth 0" >/dev/null
spawn ackh python3 "$FAKE" ack-header "$port"
wait_for "$TMP/ackh.out" ready || fail "no fake destination"
mon "$SRC_SOCK" "migrate tcp:127.0.0.1:$port" >/dev/null
wait_status completing || fail "cancel: never completing"
mon "$SRC_SOCK" "info status" | grep -q running && fail "completing, yet the source runs"
mon "$SRC_SOCK" migrate_cancel || fail "cancel while completing refused"
wait_status cancelled || fail "cancel while completing did not take"
# END had left: the destination may run the guest, so the source waits for the user's cont (no split brain).
mon "$SRC_SOCK" "info status" | grep -q 'paused (migrate-unknown)' || fail "the source resumed by itself after END left"
mon "$SRC_SOCK" cont >/dev/null || fail "cont refused after a cancel while completing"
source_alive "cancelled while completing"
mon "$SRC_SOCK" migrate_cancel && fail "cancel with no migration did not fail"

# 6. After all that, a migration that works; the guest runs on, then the
# test ends it and it verifies everything.
uri=tcp:127.0.0.1:$(free_port)
dst_start final 1 "$uri"
"$VMM" migrate -q --timeout "$(scaled 300)" --monitor "$SRC_SOCK" "$uri" >"$TMP/final-mig.out" ||
	{ cat "$TMP/final-mig.out"; fail "the final migration failed"; }
mon "$SRC_SOCK" quit
vmm_wait "$SRC_PID" 60 || fail "the source did not quit"
wait_progress "$TMP/final.out" || fail "the guest does not run on the destination"
guest_stop "$DST_SOCK" "$TMP/src.out" || fail "cannot stop the guest"
vmm_wait "$DST_PID" 300 || fail "the guest did not finish on the destination"
expect_pass final "$VMM_STATUS"
echo "PASS"
