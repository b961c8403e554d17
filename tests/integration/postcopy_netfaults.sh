#!/usr/bin/env bash
# timeout: 1500
# Real network faults: the source and the destination in two network
# namespaces joined by a veth pair (10.77.0.1 and .2), faults injected with
# `ip link set down` and `tc netem`; every case ends with the guest's own
# verdict on the host that runs it last.
#  - postcopy, the push running: the link cut for longer than peer-timeout;
#    both sides pause; link back, migrate_recover + migrate_resume, with a
#    second failure during the recovery (every packet lost while the source
#    resumes: its try fails and it stays paused); then it completes.
#  - a cut at each phase: setup and a precopy round (the source's guest keeps
#    running, a new migrate succeeds); the switch, for less than peer-timeout
#    (TCP carries it over: it completes without a pause) and for longer; the
#    end-of-copy handshake (wherever a long cut lands, exactly one copy runs,
#    and the migration completes after a recovery, or a new migrate does).
#  - 1 % loss each way and a 50 ms round trip: precopy, hybrid and pure
#    postcopy complete; a 40 Mbit/s limit: hybrid completes.
. "$(dirname "$0")/../lib.sh"
need_kvm
[ -c /dev/userfaultfd ] || [ -r /proc/sys/vm/unprivileged_userfaultfd ] || skip "no userfaultfd"
command -v ip >/dev/null && command -v tc >/dev/null || fail "ip and tc (iproute2) are needed"

# A failure is noticed within about peer-timeout: short, so that cuts are quick to test.
PEER_TIMEOUT_MS=$(($(scaled 6) * 1000))
NSA=vmmsrc$$ NSB=vmmdst$$
ip netns add "$NSA" && ip netns add "$NSB" || fail "cannot create network namespaces"
at_cleanup "ip netns del $NSA; ip netns del $NSB"
ip link add vA netns "$NSA" type veth peer name vB netns "$NSB" || fail "cannot create the veth pair"
ip -n "$NSA" addr add 10.77.0.1/24 dev vA && ip -n "$NSB" addr add 10.77.0.2/24 dev vB || fail "addresses"
for ns in "$NSA" "$NSB"; do
	ip -n "$ns" link set lo up
done
ip -n "$NSA" link set vA up && ip -n "$NSB" link set vB up || fail "cannot bring the link up"
HOST_VMM=$VMM
for ns in "$NSA" "$NSB"; do
	printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$ns" "$HOST_VMM" >"$TMP/vmm-$ns"
	chmod +x "$TMP/vmm-$ns"
done
ip netns exec "$NSA" busybox ping -c 1 -W 5 10.77.0.2 >/dev/null || fail "the namespaces cannot reach each other"

link_down() { note "link down"; ip -n "$NSA" link set vA down; }
link_up() { note "link up"; ip -n "$NSA" link set vA up; }
# Shape both ends: shape "loss 1% delay 50ms"; shape off.
shape() {
	local dev ns
	for ns in "$NSA:vA" "$NSB:vB"; do
		dev=${ns#*:} ns=${ns%%:*}
		tc -n "$ns" qdisc del dev "$dev" root 2>/dev/null
		[ "$1" = off ] || tc -n "$ns" qdisc add dev "$dev" root netem $1 || fail "tc netem $1"
	done
	note "link: ${1}"
}

port=40000
next_uri() { port=$((port + 1)); uri=tcp:10.77.0.2:$port; }
# A source whose guest has written its working set once (so that pages take time to move).
src() {
	SRC_NAME=src$tag
	VMM=$TMP/vmm-$NSA src_start "$SRC_NAME" 1 "${GUEST_ARGS:-dirty ws=4M secs=900 pattern=random}" "$@"
	wait_progress "$TMP/$SRC_NAME.out" && wait_progress "$TMP/$SRC_NAME.out" || fail "$tag: the guest does not run"
}
# A destination named for the case (dstCASE, dstCASE-2 for a second one).
dst() {
	local n=2
	DST_NAME=dst$tag
	while [ -e "$TMP/$DST_NAME.out" ]; do
		DST_NAME=dst$tag-$n n=$((n + 1))
	done
	VMM=$TMP/vmm-$NSB dst_start "$DST_NAME" 1 "$uri" "$@"
}
migrate() { mon "$SRC_SOCK" "$@" "migrate $uri" >/dev/null || fail "$tag: cannot start"; }
postcopy_set=("migrate_set_capability postcopy on" "migrate_set_parameter max-postcopy-bandwidth 1M")

# The guest runs on the destination: end it, its verdict, and quit the source.
finish() {
	wait_mig "$DST_SOCK" completed 300 || fail "$tag: the destination did not complete"
	guest_stop "$DST_SOCK" "$TMP/$SRC_NAME.out" || fail "$tag: cannot stop the guest"
	vmm_wait "$DST_PID" 300 || fail "$tag: the guest did not finish on the destination"
	expect_pass "$DST_NAME" "$VMM_STATUS"
	mon "$SRC_SOCK" quit >/dev/null
	vmm_wait "$SRC_PID" 60 || fail "$tag: the source did not quit"
	note "$tag: completed, guest PASS"
}

# Both sides paused after a cut: link back, recover through a new port.  recover twice:
# the first try made while every packet is lost (a second failure, during
# the recovery): it fails, the source stays paused, and the next try works.
recover() {
	wait_mig "$SRC_SOCK" 'postcopy-(paused|recover)' 120 || fail "$tag: the source did not pause"
	wait_mig "$DST_SOCK" 'postcopy-paused' 120 || fail "$tag: the destination did not pause"
	mon "$DST_SOCK" "info status" | grep -q running || fail "$tag: the destination's guest is not left running"
	mon "$SRC_SOCK" "info status" | grep -q paused || fail "$tag: the source's copy runs"
	link_up
	next_uri
	mon "$DST_SOCK" "migrate_recover $uri" >/dev/null || fail "$tag: migrate_recover refused"
	wait_for "$TMP/$DST_NAME.out" "waiting on $uri" 60 || fail "$tag: the destination does not listen again"
	if [ "${1:-}" = twice ]; then
		shape "loss 100%"
		mon "$SRC_SOCK" "migrate_resume $uri" >/dev/null || fail "$tag: migrate_resume refused"
		wait_for "$TMP/$SRC_NAME.out" "cannot resume postcopy through $uri" 120 ||
			fail "$tag: the resume did not fail under a cut"
		wait_mig "$SRC_SOCK" postcopy-paused 60 || fail "$tag: the source is not paused after the failed resume"
		mon "$DST_SOCK" "info status" | grep -q running || fail "$tag: the destination's guest is not left running"
		shape off
	fi
	mon "$SRC_SOCK" "migrate_resume $uri" >/dev/null || fail "$tag: migrate_resume refused"
}

figures() {
	local s d
	s=$(mon "$SRC_SOCK" "info migrate --json") d=$(mon "$DST_SOCK" "info migrate --json")
	note "$tag: source: paused $(jfield "$s" pauses) times, $(jfield "$s" paused_ms) ms, noticed in" \
		"$(jfield "$s" detect_ms) ms, $(jfield "$s" recovery_pages) pages ($(jfield "$s" recovery_bytes) bytes)" \
		"sent again; destination: noticed in $(jfield "$d" detect_ms) ms, total $(jfield "$d" total_ms) ms"
}

# ---- postcopy with the push running: a cut, and another during the recovery ----
tag=push
next_uri
# A guest that touches its pages slowly: it does not fetch them all before the cut.
GUEST_ARGS="dirty ws=16M rate=1 secs=900 pattern=random" src
dst
# Beyond loopback without tls-creds: the destination says who can write its VM.
wait_for "$TMP/$DST_NAME.out" 'no tls-creds: anyone who can reach' 30 || fail "$tag: no warning without TLS"
# A slow push: postcopy lasts until the test lets it end.
migrate "${postcopy_set[@]}" "migrate_set_parameter postcopy-after-rounds 0" \
	"migrate_set_parameter max-postcopy-bandwidth 256K"
wait_mig "$SRC_SOCK" postcopy-active 300 || fail "$tag: no switch"
sleep 2
link_down
recover twice
mon "$SRC_SOCK" "migrate_set_parameter max-postcopy-bandwidth 0" >/dev/null
wait_mig "$SRC_SOCK" completed 300 || fail "$tag: did not complete after the recoveries"
figures
finish

# ---- a cut at setup: nothing starts; the guest runs on; a new migrate succeeds ----
tag=setup
next_uri
src
dst
link_down
migrate
wait_mig "$SRC_SOCK" failed 120 || fail "$tag: the migration did not fail"
mon "$SRC_SOCK" "info status" | grep -q 'VM status: running' || fail "$tag: the source does not run"
wait_progress "$TMP/$SRC_NAME.out" || fail "$tag: the source's guest does not progress"
link_up
migrate
finish

# ---- a cut during a precopy round ----
tag=precopy
next_uri
src
dst
migrate "migrate_set_parameter max-bandwidth 1M" "migrate_set_parameter max-rounds 0"
wait_mig "$SRC_SOCK" active 60 || fail "$tag: not active"
sleep 2
link_down
wait_mig "$SRC_SOCK" failed 120 || fail "$tag: the migration did not fail"
mon "$SRC_SOCK" "info status" | grep -q 'VM status: running' || fail "$tag: the source does not run"
wait_progress "$TMP/$SRC_NAME.out" || fail "$tag: the source's guest does not progress"
vmm_wait "$DST_PID" 120 || fail "$tag: the destination did not end"
link_up
next_uri
dst
migrate "migrate_set_parameter max-bandwidth 0"
finish

# ---- a cut at the switch, shorter than peer-timeout: TCP carries it over ----
# Precopy rounds slow enough to cut the link, then the switch asked for.
switch_cut() {
	migrate "${postcopy_set[@]}" "migrate_set_parameter postcopy-after-rounds 1000" \
		"migrate_set_parameter max-bandwidth 1M" "migrate_set_parameter max-postcopy-bandwidth 0"
	wait_mig "$SRC_SOCK" active 60 || fail "$tag: not active"
	sleep 1
	link_down
	mon "$SRC_SOCK" migrate_start_postcopy >/dev/null || fail "$tag: migrate_start_postcopy refused"
}

tag=switch
next_uri
src
dst
switch_cut
sleep "$(scaled 2)"
link_up
wait_mig "$SRC_SOCK" completed 300 || fail "$tag: did not complete after a short cut at the switch"
[ "$(jfield "$(mon "$SRC_SOCK" "info migrate --json")" pauses)" = 0 ] || fail "$tag: a short cut paused it"
finish

# ---- a cut at the switch and at the end-of-copy handshake, longer than peer-timeout ----
# The cut lands where it lands: before POSTCOPY_RUN reached the destination
# the source cannot know whether it runs the guest, pauses, and the user
# (here the test, having seen the destination gone) cancels and resumes it;
# after it both pause and recover; or the destination completed first and
# END_OF_COPY was lost (the source pauses and refuses cont; migrate_recover on
# the completed destination and migrate_resume complete it).
for tag in switchlong end; do
	next_uri
	src
	dst
	if [ $tag = switchlong ]; then
		switch_cut
	else
		# A long delay keeps the last pages and END_OF_COPY on the wire for a while.
		shape "delay 300ms"
		migrate "migrate_set_capability postcopy on" "migrate_set_parameter postcopy-after-rounds 0" \
			"migrate_set_parameter max-postcopy-bandwidth 512K"
		wait_mig "$SRC_SOCK" 'postcopy-active|completed' 300 || fail "$tag: no switch"
		until out=$(mon "$SRC_SOCK" "info migrate --json")
		      [ "$(jfield "$out" status)" != postcopy-active ] || [ "$(jfield "$out" pages_remaining)" = 0 ]; do :; done
		link_down
		shape off
	fi
	note "$tag: cut with the source $(mig_status "$SRC_SOCK"), the destination $(mig_status "$DST_SOCK")"
	sleep "$(scaled 2)"
	deadline=$((SECONDS + $(scaled 120)))
	while s=$(mig_status "$SRC_SOCK"); d=$(mig_status "$DST_SOCK" 2>/dev/null); d=${d:-gone}
	      [ $SECONDS -le $deadline ]; do
		case "$s/$d" in
		failed/*|postcopy-paused/postcopy-paused|postcopy-paused/gone|completed/completed|postcopy-paused/completed) break ;;
		esac
		sleep 0.2
	done
	note "$tag: then the source $s, the destination $d"
	case "$s/$d" in
	failed/*)
		mon "$SRC_SOCK" "info status" | grep -q 'VM status: running' || fail "$tag: the source does not run"
		vmm_wait "$DST_PID" 120 || fail "$tag: the destination did not end"
		link_up
		next_uri
		dst
		migrate "migrate_set_capability postcopy off" "migrate_set_parameter max-bandwidth 0"
		finish ;;
	postcopy-paused/gone)
		# POSTCOPY_RUN never arrived: the destination failed in precopy and ended.
		out=$(mon "$SRC_SOCK" cont 2>&1) && fail "$tag: cont accepted while the migration is paused"
		grep -q "migrate_cancel' then 'cont'" <<<"$out" || fail "$tag: the refusal does not say what to do: $out"
		vmm_wait "$DST_PID" 120 || fail "$tag: the destination did not end"
		mon "$SRC_SOCK" migrate_cancel >/dev/null || fail "$tag: migrate_cancel refused while paused"
		wait_mig "$SRC_SOCK" failed 60 || fail "$tag: the source did not give up"
		mon "$SRC_SOCK" cont >/dev/null || fail "$tag: cont refused after the cancel"
		wait_progress "$TMP/$SRC_NAME.out" || fail "$tag: the source's guest does not run again"
		link_up
		next_uri
		dst
		migrate "migrate_set_capability postcopy off" "migrate_set_parameter max-bandwidth 0"
		finish ;;
	postcopy-paused/postcopy-paused)
		recover
		finish ;;
	completed/completed)
		link_up
		finish ;;
	postcopy-paused/completed)
		# END_OF_COPY was lost: the completed destination tells the resumed source so.
		link_up
		out=$(mon "$SRC_SOCK" cont 2>&1) && fail "$tag: cont accepted while the destination runs the guest"
		next_uri
		mon "$DST_SOCK" "migrate_recover $uri" >/dev/null || fail "$tag: migrate_recover refused"
		wait_for "$TMP/$DST_NAME.out" "waiting on $uri" 60 || fail "$tag: the destination does not listen"
		mon "$SRC_SOCK" "migrate_resume $uri" >/dev/null || fail "$tag: migrate_resume refused"
		wait_mig "$SRC_SOCK" completed 120 || fail "$tag: the source did not complete after the resume"
		finish ;;
	*)
		fail "$tag: after the cut the source is $s and the destination $d" ;;
	esac
done

# ---- loss and delay; a bandwidth limit ----
# 50 ms round trip (25 ms each way), 1 % of the packets lost each way.
shape "loss 1% delay 25ms"
for tag in lossprecopy losshybrid losspostcopy; do
	next_uri
	src
	dst
	t0=$SECONDS
	case $tag in
	# The guest dirties faster than a lossy link carries: at most 3 rounds, then the rest stopped.
	lossprecopy) migrate "migrate_set_parameter max-rounds 3" ;;
	losshybrid) migrate "${postcopy_set[@]}" "migrate_set_parameter max-postcopy-bandwidth 0" \
			"migrate_set_parameter postcopy-after-rounds 2" ;;
	losspostcopy) migrate "${postcopy_set[@]}" "migrate_set_parameter max-postcopy-bandwidth 0" \
			"migrate_set_parameter postcopy-after-rounds 0" ;;
	esac
	wait_mig "$SRC_SOCK" completed 600 || fail "$tag: did not complete under loss and delay"
	json=$(mon "$SRC_SOCK" "info migrate --json")
	note "$tag: $(jfield "$json" total_ms) ms, downtime $(jfield "$json" downtime_ms) ms, $(jfield "$json" bytes) bytes, paused $(jfield "$json" pauses) times"
	finish
done
shape "rate 40mbit"
tag=ratehybrid
next_uri
src
dst
migrate "${postcopy_set[@]}" "migrate_set_parameter max-postcopy-bandwidth 0" "migrate_set_parameter postcopy-after-rounds 2"
wait_mig "$SRC_SOCK" completed 600 || fail "$tag: did not complete under a bandwidth limit"
json=$(mon "$SRC_SOCK" "info migrate --json")
note "$tag: $(jfield "$json" total_ms) ms, downtime $(jfield "$json" downtime_ms) ms, $(jfield "$json" bytes) bytes"
finish
shape off
echo "PASS"
