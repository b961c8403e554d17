#!/usr/bin/env bash
# timeout: 600
# Postcopy failures that cannot be recovered here: the source killed, and
# the connection cut (a proxy killed), each while the guest runs on the
# destination with pages still on the source (background push off).  The
# destination pauses (postcopy-paused, everything kept, the vCPUs that fault
# wait) with a clear message within a few seconds, does not crash or hang,
# its monitor answers, and quit ends it; after a cut the source pauses too.
# (The fault server killed, and recoveries: postcopy_recovery.sh.)
. "$(dirname "$0")/../lib.sh"
need_kvm
command -v python3 >/dev/null || skip "python3 is needed for the proxy"
FAKE=$TOP/tests/tools/fake-dest.py

for what in source cut; do
	uri=tcp:127.0.0.1:$(free_port)
	src_start "src$what" 1 "dirty ws=64M secs=900 pattern=random"
	dst_start "dst$what" 1 "$uri"
	target=$uri
	if [ "$what" = cut ]; then
		port=$(free_port)
		spawn proxy python3 "$FAKE" proxy "$port" "${uri##*:}"
		proxy=$SPAWN_PID
		wait_for "$TMP/proxy.out" ready || fail "no proxy"
		target=tcp:127.0.0.1:$port
	fi
	mon "$SRC_SOCK" "migrate_set_capability postcopy on" "migrate_set_parameter postcopy-after-rounds 0" \
		"migrate_set_parameter postcopy-background off" "migrate $target" >/dev/null || fail "$what: cannot start"
	wait_for "$TMP/dst$what.out" 'the guest runs here' || fail "$what: no switch"
	sleep 2
	case $what in
	source)
		note "killing the source"
		kill -9 "$SRC_PID" ;;
	cut)
		note "cutting the connection"
		kill -9 "$proxy" ;;
	esac
	# "Within a few seconds": 10, times TEST_SLOWDOWN.
	t0=$SECONDS notice=$(scaled 10)
	deadline=$((SECONDS + $(scaled 60)))
	while [ $SECONDS -le $deadline ]; do
		out=$(mon "$DST_SOCK" "info migrate --json") || fail "$what: the destination monitor does not answer"
		[ "$(jfield "$out" status)" = postcopy-paused ] && break
		sleep 0.2
	done
	echo "$out" | grep -E 'status|error'
	[ "$(jfield "$out" status)" = postcopy-paused ] || fail "$what: the destination did not notice"
	note "$what: noticed in $((SECONDS - t0)) s"
	[ $((SECONDS - t0)) -le "$notice" ] || fail "$what: took more than $notice s to notice"
	[ "$(jfield "$out" pauses)" = 1 ] || fail "$what: the pause is not counted"
	grep -q "postcopy paused: .*'migrate_recover URI' here" "$TMP/dst$what.out" ||
		fail "$what: no message on the destination saying what to do"
	grep -q '^dirty: PASS' "$TMP/dst$what.out" && fail "$what: the guest finished without its pages"
	# A vCPU blocked on a page that will not come cannot be stopped: the
	# monitor must say so, not hang.
	cpus=$(timeout "$(scaled 30)" "$VMM" monitor "$DST_SOCK" "info cpus" "x 0x100000 16")
	[ $? -ne 124 ] || fail "$what: the monitor hangs"
	# The guest touches a page that is not coming within a second or two: its vCPU shows it.
	echo "$cpus" | grep 'CPU #'
	grep -q 'waiting for a missing page' <<<"$cpus" || fail "$what: info cpus does not show the vCPU waiting"

	mon "$DST_SOCK" quit >/dev/null
	vmm_wait "$DST_PID" 60 || fail "$what: the destination did not quit"
	[ "$VMM_STATUS" -lt 128 ] || fail "$what: the destination crashed (status $VMM_STATUS)"
	if [ "$what" != source ]; then
		mon "$SRC_SOCK" "info status" | grep -q 'paused' || fail "$what: the source copy is not kept paused"
		wait_mig "$SRC_SOCK" 'postcopy-(paused|recover)' 60 || fail "$what: the source did not pause"
		mon "$SRC_SOCK" quit >/dev/null
	fi
	vmm_wait "$SRC_PID" 60 || fail "$what: the source did not end"
done
echo "PASS"
