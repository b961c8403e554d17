#!/usr/bin/env bash
# timeout: 900
# Postcopy recovery on one host (loopback), each case to the guest's own
# verdict on the destination:
#  - restart: the fault server killed twice while pages are still being
#    pushed; the destination starts another each time by itself (the source
#    reconnects to the same URI by itself), the migration completes, and
#    info migrate says 2 restarts on the destination.
#  - pause: migrate_pause on the source; both sides postcopy-paused;
#    migrate_recover on the destination (a new URI), `vmm migrate --resume`
#    on the source; it completes, and info migrate shows the recovery.
#  - lost-ack: the destination does not send ACK(RUNNING) (x-lose-ack-running):
#    exactly one side runs the guest (the destination), the source pauses and
#    refuses cont with what to do; recovered with migrate_recover + migrate -r.
#  - lost-eoc: the destination has every page and completes, but its
#    END_OF_COPY never reaches the source (x-lose-end-of-copy): the source
#    pauses; migrate_recover on the completed destination and migrate_resume
#    on the source: the source learns that every page arrived and completes.
# (Real network faults between two network namespaces: postcopy_netfaults.sh.)
. "$(dirname "$0")/../lib.sh"
need_kvm
[ -c /dev/userfaultfd ] || [ -r /proc/sys/vm/unprivileged_userfaultfd ] || skip "no userfaultfd"

# The guest runs on, the test ends it; it verifies every page on the destination.
finish_case() {
	wait_mig "$DST_SOCK" completed 300 || fail "$tag: the destination did not complete"
	wait_mig "$SRC_SOCK" completed 60 || fail "$tag: the source did not complete"
	guest_stop "$DST_SOCK" "$TMP/src$tag.out" || fail "$tag: cannot stop the guest"
	vmm_wait "$DST_PID" 300 || fail "$tag: the guest did not finish on the destination"
	expect_pass "dst$tag" "$VMM_STATUS"
	mon "$SRC_SOCK" quit >/dev/null
	vmm_wait "$SRC_PID" 60 || fail "$tag: the source did not quit"
}

# The fault server's pid, from the destination's last line naming one.
faultsrv_pid() {
	sed -n 's/.*fault server (pid \([0-9]*\)).*/\1/p' "$TMP/dst$tag.out" | tail -n 1
}

start_case() {
	local dstopts=("$@")
	uri=tcp:127.0.0.1:$(free_port)
	src_start "src$tag" 1 "dirty ws=64M secs=900 pattern=random"
	dst_start "dst$tag" 1 "$uri" "${dstopts[@]}"
	# Slow enough that postcopy is still pushing when the test breaks it.
	mon "$SRC_SOCK" "migrate_set_capability postcopy on" "migrate_set_parameter postcopy-after-rounds 0" \
		"migrate_set_parameter max-postcopy-bandwidth 1M" "migrate $uri" >/dev/null ||
		fail "$tag: cannot start"
}

# ---- the fault server killed twice ----
tag=restart
start_case
wait_for "$TMP/dst$tag.out" 'the guest runs here' || fail "$tag: no switch"
for n in 1 2; do
	wait_mig "$DST_SOCK" postcopy-active || fail "$tag: not in postcopy before kill $n"
	pid=$(faultsrv_pid)
	[ -n "$pid" ] && running "$pid" || fail "$tag: no fault server to kill ($pid)"
	sleep 1
	note "killing the fault server (pid $pid), time $n"
	kill -9 "$pid"
	deadline=$((SECONDS + $(scaled 120)))
	while [ $SECONDS -le $deadline ]; do
		out=$(mon "$DST_SOCK" "info migrate --json")
		[ "$(jfield "$out" faultsrv_restarts)" = "$n" ] && [ "$(jfield "$out" status)" = postcopy-active ] && break
		sleep 0.2
	done
	[ "$(jfield "$out" faultsrv_restarts)" = "$n" ] || { echo "$out"; fail "$tag: no restart $n"; }
	note "restart $n: paused $(jfield "$out" paused_ms) ms in all"
done
wait_mig "$DST_SOCK" completed 300 || fail "$tag: the destination did not complete"
info=$(mon "$DST_SOCK" "info migrate")
grep -E 'postcopy recovery|fault server restarts' <<<"$info"
grep -q '^fault server restarts: 2$' <<<"$info" || fail "$tag: info migrate does not show 2 restarts"
[ "$(grep -c 'postcopy resumed' "$TMP/dst$tag.out")" -eq 2 ] || fail "$tag: the destination did not say it resumed twice"
finish_case

# ---- migrate_pause, then migrate_recover + migrate_resume ----
tag=pause
start_case
wait_mig "$SRC_SOCK" postcopy-active || fail "$tag: no switch"
sleep 2
mon "$SRC_SOCK" migrate_pause || fail "$tag: migrate_pause refused"
wait_mig "$SRC_SOCK" postcopy-paused 60 || fail "$tag: the source did not pause"
wait_mig "$DST_SOCK" postcopy-paused 60 || fail "$tag: the destination did not pause"
mon "$DST_SOCK" "info status" | grep -q running || fail "$tag: the destination's guest is not left running"
mon "$SRC_SOCK" "info status" | grep -q paused || fail "$tag: the source's copy runs"
out=$(mon "$SRC_SOCK" cont 2>&1) && fail "$tag: cont accepted on a switched source: $out"
grep -q 'runs on the destination' <<<"$out" || fail "$tag: cont refused without saying why: $out"
# Refused where they do not belong, with a clear line.
out=$(mon "$SRC_SOCK" "migrate_recover tcp:127.0.0.1:1" 2>&1) && fail "$tag: migrate_recover accepted on the source"
grep -q 'migrate_resume' <<<"$out" || fail "$tag: migrate_recover on the source does not say what to use: $out"
uri2=tcp:127.0.0.1:$(free_port)
mon "$DST_SOCK" "migrate_recover $uri2" | grep -q listening || fail "$tag: migrate_recover refused"
wait_for "$TMP/dst$tag.out" "waiting on $uri2" 60 || fail "$tag: the destination does not listen again"
# From the shell, as a user would: vmm migrate --resume follows it to the end.
"$VMM" migrate -q --resume -t "$(scaled 300)" --monitor "$SRC_SOCK" "$uri2" >"$TMP/resume.out" ||
	{ cat "$TMP/resume.out"; fail "$tag: vmm migrate --resume did not complete"; }
grep -q '^Migration status: completed' "$TMP/resume.out" || fail "$tag: vmm migrate --resume does not show the end"
grep -q '^postcopy recovery: paused 1 times, recovered 1' "$TMP/resume.out" ||
	{ cat "$TMP/resume.out"; fail "$tag: info migrate does not show the recovery"; }
finish_case
grep -q 'postcopy resumed through' "$TMP/src$tag.out" || fail "$tag: the source did not say it resumed"

# ---- ACK(RUNNING) lost: one side runs the guest, never two ----
tag=lostack
start_case --set x-lose-ack-running=on
wait_for "$TMP/dst$tag.out" 'the guest runs here' || fail "$tag: the destination did not start"
wait_mig "$SRC_SOCK" postcopy-paused 120 || fail "$tag: the source did not pause without the acknowledgement"
mon "$SRC_SOCK" "info status" | grep -q paused || fail "$tag: the source runs the guest too"
mon "$DST_SOCK" "info status" | grep -q running || fail "$tag: the destination does not run the guest"
out=$(mon "$SRC_SOCK" cont 2>&1) && fail "$tag: cont accepted: two copies would run"
note "cont on the source: $out"
grep -q "migrate_recover URI" <<<"$out" || fail "$tag: the refusal does not say what to do: $out"
grep -q "the destination may run the guest" "$TMP/src$tag.out" || fail "$tag: the source's message does not say why it waits"
wait_mig "$DST_SOCK" postcopy-paused 120 || fail "$tag: the destination did not pause"
uri2=tcp:127.0.0.1:$(free_port)
mon "$DST_SOCK" "migrate_set_parameter x-lose-ack-running off" "migrate_recover $uri2" >/dev/null ||
	fail "$tag: migrate_recover refused"
wait_for "$TMP/dst$tag.out" "waiting on $uri2" 60 || fail "$tag: the destination does not listen again"
mon "$SRC_SOCK" "migrate -r $uri2" || fail "$tag: migrate -r refused"
finish_case

# ---- END_OF_COPY lost: the destination completed, the source waits for it ----
tag=losteoc
uri=tcp:127.0.0.1:$(free_port)
src_start "src$tag" 1 "dirty ws=16M secs=900 pattern=random"
dst_start "dst$tag" 1 "$uri" --set x-lose-end-of-copy=on
mon "$SRC_SOCK" "migrate_set_capability postcopy on" "migrate_set_parameter postcopy-after-rounds 0" \
	"migrate $uri" >/dev/null || fail "$tag: cannot start"
wait_mig "$DST_SOCK" completed 300 || fail "$tag: the destination did not complete"
wait_mig "$SRC_SOCK" postcopy-paused 120 || fail "$tag: the source did not pause without END_OF_COPY"
mon "$SRC_SOCK" "info status" | grep -q paused || fail "$tag: the source runs the guest too"
mon "$SRC_SOCK" cont >/dev/null 2>&1 && fail "$tag: cont accepted: two copies would run"
uri2=tcp:127.0.0.1:$(free_port)
out=$(mon "$DST_SOCK" "migrate_recover $uri2") || fail "$tag: migrate_recover refused on the completed destination"
grep -q 'every page arrived' <<<"$out" || fail "$tag: migrate_recover does not say what it does: $out"
wait_for "$TMP/dst$tag.out" "waiting on $uri2" 60 || fail "$tag: the destination does not listen"
mon "$SRC_SOCK" "migrate_resume $uri2" >/dev/null || fail "$tag: migrate_resume refused"
wait_mig "$SRC_SOCK" completed 120 || fail "$tag: the source did not complete after the resume"
grep -q 'told the resumed source' "$TMP/dst$tag.out" || fail "$tag: the destination did not answer"
grep -q '0 pages still to send' "$TMP/src$tag.out" || fail "$tag: the source had pages left to send"
finish_case
echo "PASS"
