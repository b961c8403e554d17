#!/usr/bin/env bash
# timeout: 600
# migrate_set_capability verify on, shown to work and shown to fail:
#  1. precopy with verify on: both sides report every page digested /
#     compared, none differs, and the guest verifies on the destination;
#  2. precopy with the x-drop-page hook (the highest dirty page of the last
#     round that changed since it was sent is not sent): the destination
#     refuses to run, naming exactly that
#     page, and the source resumes its guest;
#  3. postcopy with the x-corrupt-page hook (the first data page after the
#     switch goes with a byte flipped): the fault server names that page and
#     the destination stops, its RAM kept.
. "$(dirname "$0")/../lib.sh"
need_kvm

json_field() {	# json_field JSON NAME: a number or string field of info migrate --json
	sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$1"
}

# 1. verify on, nothing wrong.
src_start src 1 "dirty ws=16M rate=8 secs=900 pattern=random"
uri=tcp:127.0.0.1:$(free_port)
dst_start ok 1 "$uri"
mon "$SRC_SOCK" "migrate_set_capability verify on" >/dev/null || fail "no verify capability"
mon "$SRC_SOCK" "info migrate_capabilities" | grep -q '^verify: on' || fail "verify is not on"
"$VMM" migrate -q --monitor "$SRC_SOCK" "$uri" >"$TMP/mig-ok.out" || { cat "$TMP/mig-ok.out"; fail "migration with verify on failed"; }
s=$(mon "$SRC_SOCK" "info migrate --json")
d=$(mon "$DST_SOCK" "info migrate --json")
total=$(json_field "$s" pages_total)
[ "$(json_field "$s" verify_pages)" = "$total" ] || { echo "$s"; fail "the source did not digest every page"; }
[ "$(json_field "$d" verify_pages)" = "$total" ] || { echo "$d"; fail "the destination did not compare every page"; }
[ "$(json_field "$d" verify_bad)" = 0 ] || { echo "$d"; fail "the destination found bad pages"; }
note "verify on: $total pages digested in $(json_field "$s" verify_ms) ms, compared in $(json_field "$d" verify_ms) ms"
grep -q 'verify: .* pages compared .* all equal' "$TMP/ok.out" || fail "the destination does not say it compared"
guest_stop "$DST_SOCK" "$TMP/src.out" || fail "cannot stop the guest"
mon "$SRC_SOCK" quit
vmm_wait "$DST_PID" 300 || fail "the guest did not finish on the destination"
expect_pass ok "$VMM_STATUS"

# 2. A dirty page left out of the last round: named, refused, the source goes on.
src_start src2 1 "dirty ws=16M rate=8 secs=900 pattern=random"
# Two seconds of writes first: the last round then has pages written since they were sent.
wait_for "$TMP/src2.out" '^dirty: t=2 ' 120 || fail "the source guest does not progress"
uri=tcp:127.0.0.1:$(free_port)
dst_start drop 1 "$uri"
mon "$SRC_SOCK" "migrate_set_capability verify on" "migrate_set_parameter x-drop-page on" >/dev/null
"$VMM" migrate -q --monitor "$SRC_SOCK" "$uri" >"$TMP/mig-drop.out" && fail "the migration with a dropped page succeeded"
dropped=$(sed -n 's/.*x-drop-page: page \([0-9]*\) (gpa \(0x[0-9a-f]*\)).*/\1 \2/p' "$TMP/src2.out")
[ -n "$dropped" ] || { cat "$TMP/src2.out"; fail "the source did not drop a page"; }
set -- $dropped
vmm_wait "$DST_PID" 120 || fail "the destination did not end"
[ "$VMM_STATUS" -eq $VMM_EXIT_INCOMING ] || { cat "$TMP/drop.out"; fail "destination status $VMM_STATUS, expected $VMM_EXIT_INCOMING"; }
grep -qE "verify: 1 of [0-9]+ pages compared differ from the source's: page $1 \(gpa $2, (last sent in round [0-9]+|never sent)\)" "$TMP/drop.out" ||
	{ cat "$TMP/drop.out"; fail "the destination does not name page $1"; }
grep -q '^dirty:' "$TMP/drop.out" && fail "the destination ran the guest"
note "dropped page $1 ($2): $(grep -m1 'verify:' "$TMP/drop.out")"
mon "$SRC_SOCK" "info status" | grep -q 'VM status: running' || fail "the source did not resume its guest"
grep -q "\"error\":\"the destination refused: .*page $1 " <<<"$(mon "$SRC_SOCK" "info migrate --json")" ||
	fail "the source does not say why"
mon "$SRC_SOCK" quit
vmm_wait "$SRC_PID" 60

# 3. Postcopy, a page corrupted in flight after the switch: the fault server names it.
src_start src3 1 "dirty ws=16M rate=8 secs=900 pattern=random"
uri=tcp:127.0.0.1:$(free_port)
dst_start corrupt 1 "$uri"
mon "$SRC_SOCK" "migrate_set_capability verify on" "migrate_set_capability postcopy on" \
	"migrate_set_parameter postcopy-after-rounds 0" "migrate_set_parameter x-corrupt-page on" >/dev/null
"$VMM" migrate -q --monitor "$SRC_SOCK" "$uri" >"$TMP/mig-corrupt.out" && fail "the corrupted migration succeeded"
wait_for "$TMP/src3.out" 'x-corrupt-page: page' 60 || fail "the source corrupted no page"
bad=$(sed -n 's/.*x-corrupt-page: page \([0-9]*\) (gpa \(0x[0-9a-f]*\)).*/\1 \2/p' "$TMP/src3.out")
set -- $bad
wait_for "$TMP/corrupt.out" 'postcopy failed' 120 || fail "the destination did not stop"
grep -qE "verify: page $1 \(gpa $2, (requested|pushed) after the switch\) differs from the source's" "$TMP/corrupt.out" ||
	{ cat "$TMP/corrupt.out"; fail "the destination does not name page $1"; }
note "corrupted page $1 ($2): $(grep -m1 -o 'verify: page.*' "$TMP/corrupt.out")"
mon "$DST_SOCK" "info status" | grep -q 'paused (postcopy-failed)' || fail "the destination is not stopped"
d=$(mon "$DST_SOCK" "info migrate --json")
[ "$(json_field "$d" verify_bad)" = 1 ] || { echo "$d"; fail "verify_bad is not 1"; }
echo "PASS"
