#!/usr/bin/env bash
# timeout: 700
# Multifd: precopy's pages on connections of their own (migrate/multifd.h).
# The dirty guest (2 vCPUs, 256 MiB, a 64 MiB working set) migrates with
# multifd on: precopy over tcp with 4 connections and over unix with 2 (held
# to a bandwidth that takes several rounds, so the rounds' fences matter),
# hybrid postcopy with 3, pure postcopy with 2 (connections opened and
# closed unused).  verify is on, and every case ends with the guest's own
# verification on the destination.  The multifd connections carry the pages:
# both sides count the same bytes on them, and most of the migration's.  A
# file: URI and a bad channel count are refused, each with one line.
. "$(dirname "$0")/../lib.sh"
need_kvm
[ -c /dev/userfaultfd ] || [ -r /proc/sys/vm/unprivileged_userfaultfd ] || skip "no userfaultfd"

run_case() {
	local tag=$1 uri=$2 n=$3 mode=$4
	local set=("migrate_set_capability multifd on" "migrate_set_parameter multifd-channels $n")
	local opts=()
	src_start "src$tag" 2 "dirty ws=64M rate=8 secs=900 pattern=random seed=7 prefault=1"
	dst_start "dst$tag" 2 "$uri"
	case $mode in
	precopy) set+=("migrate_set_parameter max-bandwidth 48M" "migrate_set_parameter downtime-limit 50") ;;
	hybrid) set+=("migrate_set_parameter postcopy-after-rounds 2" "migrate_set_parameter downtime-limit 1")
		opts=(-p) ;;
	postcopy) set+=("migrate_set_parameter postcopy-after-rounds 0"); opts=(-p) ;;
	esac
	mon "$SRC_SOCK" "${set[@]}" >/dev/null || fail "$tag: cannot set multifd"
	"$VMM" migrate --timeout "$(scaled 400)" --monitor "$SRC_SOCK" "${opts[@]}" "$uri" >"$TMP/mig$tag.out" || {
		cat "$TMP/mig$tag.out"; tail -n 20 "$TMP/src$tag.out" "$TMP/dst$tag.out"; fail "$tag: vmm migrate failed"; }
	cat "$TMP/mig$tag.out"
	sout=$(mon "$SRC_SOCK" "info migrate --json")
	dout=$(mon "$DST_SOCK" "info migrate --json")
	mon "$SRC_SOCK" "info migrate" | grep -E 'multifd|transferred|rounds'
	[ "$(jfield "$sout" status)" = completed ] || fail "$tag: the source did not complete"
	[ "$(jfield "$dout" status)" = completed ] || fail "$tag: the destination did not complete"
	for side in sout dout; do
		[ "$(jfield "${!side}" multifd_channels)" = "$n" ] ||
			fail "$tag: $side: $(jfield "${!side}" multifd_channels) multifd connections, not $n"
	done
	sb=$(jfield "$sout" multifd_bytes) db=$(jfield "$dout" multifd_bytes) total=$(jfield "$sout" bytes)
	[ "$sb" = "$db" ] || fail "$tag: the source sent $sb bytes on the multifd connections, the destination read $db"
	rounds=$(jfield "$sout" rounds)
	if [ "$mode" = postcopy ]; then
		# No precopy round: each connection carried its header only.
		[ "$sb" -le $((n * 200)) ] || fail "$tag: pure postcopy sent $sb bytes on the multifd connections"
	else
		# The pages went on them (the main connection: rounds, state, the switch, the push).
		[ "$sb" -gt $((total / 3)) ] || fail "$tag: only $sb of $total bytes on the multifd connections"
		[ "$mode" = hybrid ] || [ "$rounds" -ge 2 ] || fail "$tag: one round only: the fences were not used"
	fi
	note "$tag: $n connections, $sb of $total bytes on them, $rounds rounds"
	mon "$SRC_SOCK" quit >/dev/null
	vmm_wait "$SRC_PID" 60 || fail "$tag: the source did not quit"
	wait_progress "$TMP/dst$tag.out" || fail "$tag: the guest made no progress on the destination"
	guest_stop "$DST_SOCK" "$TMP/src$tag.out" || fail "$tag: cannot stop the guest"
	vmm_wait "$DST_PID" 300 || fail "$tag: the destination guest did not finish"
	expect_pass "dst$tag" "$VMM_STATUS"
	note "$tag: migrated with multifd and verified"
}

run_case precopy-tcp "tcp:127.0.0.1:$(free_port)" 4 precopy
run_case precopy-unix "unix:$TMP/mfd.mig" 2 precopy
run_case hybrid "tcp:127.0.0.1:$(free_port)" 3 hybrid
run_case postcopy "tcp:127.0.0.1:$(free_port)" 2 postcopy

# Refused, one line each, the guest running on.
src_start srcbad 1 "dirty ws=8M rate=1 secs=900 pattern=random seed=1"
out=$(mon "$SRC_SOCK" "migrate_set_parameter multifd-channels 9" 2>&1)
grep -q "bad value '9' for multifd-channels (1 to 8)" <<<"$out" || fail "multifd-channels 9: '$out'"
out=$(mon "$SRC_SOCK" "migrate_set_capability multifd on" "migrate file:$TMP/snap.vmm" 2>&1)
grep -q "multifd needs connections (tcp: or unix:), a file is one stream" <<<"$out" || fail "multifd to a file: '$out'"
[ -e "$TMP/snap.vmm" ] && fail "a refused snapshot left a file"
mon "$SRC_SOCK" "info status" | grep -q 'running' || fail "the guest does not run on after the refusals"
mon "$SRC_SOCK" quit >/dev/null
vmm_wait "$SRC_PID" 60 || fail "the source did not quit"
echo "PASS"
