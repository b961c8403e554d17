#!/usr/bin/env bash
# timeout: 2400
# The Linux guest migrates while it works, hop after hop, one boot per
# vCPU count (2, then 1): precopy, hybrid (2 rounds, then postcopy) and pure
# postcopy over tcp, then a file: snapshot restored in a new vmm.  Every
# vmm runs in tmux with the guest's serial console as its terminal (the
# destinations with --console serial).  Before the first hop the guest
# writes a tmpfs file and its checksum and starts memtouch; after each hop,
# typed on the new machine: the checksum holds, memtouch has found no bad
# page and still writes, and the guest's clock is within a second of the
# host's and moved by at most a second.  At the end memtouch stops and verifies every page; its verdict
# is the last vmm's exit status (vmm-exit).  No console may show a soft
# lockup, a BUG, an RCU stall or a clocksource complaint.
. "$(dirname "$0")/../lib.sh"
need_linux_guest
MEM=256

pane() { tmux capture-pane -t "$1" -p -S -300 | grep -v '^$'; }
wait_pane() {	# SESSION RE [SECS [POLL]]: the pane has a line matching RE (looked for every POLL s)
	local deadline=$((SECONDS + $(scaled "${3:-60}")))
	until pane "$1" | grep -qE -- "$2"; do
		[ $SECONDS -le $deadline ] || return 1
		sleep "${4:-0.3}"
	done
}
type_in() { tmux send-keys -t "$1" "$2" Enter; }

# Start vmm NAME in its own tmux session (ARGS: vmm run's), its terminal
# logged to $TMP/NAME.console; the session is killed at cleanup.
vm_session() {	# NAME ARGS...
	local name=$1 args
	shift
	printf -v args ' %q' "$@"
	tmux new-session -d -s "lx$$$name" -x 160 -y 50 "'$VMM' run$args; echo vmm-exit=\$?; sleep 3600"
	tmux pipe-pane -t "lx$$$name" -o "cat >>'$TMP/$name.console'"
	at_cleanup "tmux kill-session -t lx$$$name 2>/dev/null; echo '--- console of $name:'; tail -n 40 '$TMP/$name.console'"
}

console_clean() {	# NAME
	local bad
	bad=$(grep -ahE 'soft lockup|BUG:|rcu_sched|rcu_preempt detected|clocksource.*(unstable|skew)|Kernel panic' \
		"$TMP/$1.console" | head -n 5)
	[ -z "$bad" ] || fail "$1: its console shows: $bad"
}

# The guest's clock against the host's, on NAME's console: the host notes
# t0, types `guestclock now`, and sees the guest's G at t1; the guest read
# its clock at some moment in [t0, t1], so its offset lies in
# [G - t1, G - t0] (as wide as the console's round trip, a tenth of a
# second or so here).  The guest's clock was set from vmm's RTC at boot
# (guestclock sync in its init), so it must be within a second of the
# host's, and a hop may move it by at most a second.  Only an offset the
# interval proves wrong fails: a slow console widens it, never decides.
CLOCK_LO= CLOCK_HI=
check_clock() {	# NAME
	local s=lx$$$1 t0 t1 g lo hi
	t0=$EPOCHREALTIME
	type_in "$s" "guestclock now"
	wait_pane "$s" '^guest-clock=[0-9]' 120 0.05 || { pane "$s"; fail "$1: the shell does not answer"; }
	t1=$EPOCHREALTIME
	g=$(pane "$s" | sed -n 's/^guest-clock=\([0-9.]*\).*/\1/p' | tail -n 1)
	lo=$(awk -v g="$g" -v t="$t1" 'BEGIN { printf "%.3f", g - t }')
	hi=$(awk -v g="$g" -v t="$t0" 'BEGIN { printf "%.3f", g - t }')
	note "$1: the guest's clock is $lo to $hi s off the host's${CLOCK_LO:+ (before the hop: $CLOCK_LO to $CLOCK_HI s)}"
	awk -v lo="$lo" -v hi="$hi" 'BEGIN { exit !(lo <= 1 && hi >= -1) }' ||
		fail "$1: the guest's clock is more than a second off the host's ($lo to $hi s)"
	if [ -n "$CLOCK_LO" ]; then
		awk -v a="$CLOCK_LO" -v b="$CLOCK_HI" -v lo="$lo" -v hi="$hi" \
			'BEGIN { exit !(lo - b <= 1 && a - hi <= 1) }' ||
			fail "$1: the hop moved the guest's clock by more than a second ($CLOCK_LO to $CLOCK_HI s, then $lo to $hi s)"
	fi
	CLOCK_LO=$lo CLOCK_HI=$hi
}

# After a hop, on NAME's console: the tmpfs file, memtouch and the clock.
check_guest() {	# NAME
	local s=lx$$$1
	type_in "$s" ""
	type_in "$s" "sha256sum -c /tmp/blob.sum >/dev/null && echo blob=ok; echo mt=\$(grep -c 'bad page' /tmp/mt.log)"
	wait_pane "$s" '^mt=[0-9]' 120 || { pane "$s"; fail "$1: the migrated shell does not answer"; }
	pane "$s" | grep -q '^blob=ok' || { pane "$s"; fail "$1: the tmpfs file changed"; }
	pane "$s" | grep -q '^mt=0$' || { pane "$s"; fail "$1: memtouch found bad pages"; }
	check_clock "$1"
	console_clean "$1"
}

# One hop: FROM's guest to a new vmm TO by MODE (precopy, hybrid, postcopy, file).
hop() {	# FROM TO CPUS MODE
	local from=$1 to=$2 cpus=$3 mode=$4 port sets=() uri
	case $mode in
	precopy) sets=(-s downtime-limit=300) ;;
	hybrid) sets=(-p -s postcopy-after-rounds=2 -s downtime-limit=1) ;;
	postcopy) sets=(-p -s postcopy-after-rounds=0) ;;
	esac
	if [ "$mode" = file ]; then
		uri=file:$TMP/$to.snap
	else
		port=$(free_port)
		uri=tcp:127.0.0.1:$port
		vm_session "$to" -m "$MEM" -c "$cpus" --incoming "$uri" --console serial \
			--set "peer-timeout=$PEER_TIMEOUT_MS" --monitor "unix:$TMP/$to.sock"
		wait_socket "$TMP/$to.sock" || { pane "lx$$$to"; fail "$to: no monitor"; }
	fi
	"$VMM" migrate --monitor "$TMP/$from.sock" -q -s verify=on -s peer-timeout=$PEER_TIMEOUT_MS \
		"${sets[@]}" -t "$(scaled 600)" "$uri" >"$TMP/$to-migrate.out" 2>&1 ||
		{ cat "$TMP/$to-migrate.out"; pane "lx$$$to"; fail "$from -> $to ($mode): the migration failed"; }
	note "$from -> $to ($mode): $(tail -n 1 "$TMP/$to-migrate.out")"
	if [ "$mode" = file ]; then
		mon "$TMP/$from.sock" quit >/dev/null
		ls -l "$TMP/$to.snap"
		vm_session "$to" -m "$MEM" -c "$cpus" --incoming "$uri" --console serial --monitor "unix:$TMP/$to.sock"
		# Type nothing before the guest runs (the restore reads the whole file first).
		wait_pane "lx$$$to" 'the guest runs here' 300 || { pane "lx$$$to"; fail "$to: the restore did not complete"; }
	fi
	console_clean "$from"
	tmux kill-session -t "lx$$$from"
	check_guest "$to"
}

chain() {	# CPUS
	local c=$1 s=lx$$boot$1 cur try
	vm_session "boot$c" -m "$MEM" -c "$c" --kernel "$LG/bzImage" --initrd "$LG/initramfs.cpio" \
		--monitor "unix:$TMP/boot$c.sock"
	wait_pane "$s" 'vmm-guest:/#' 600 || { pane "$s"; fail "$c vCPUs: Linux did not boot to its shell"; }
	type_in "$s" "dd if=/dev/urandom of=/tmp/blob bs=1M count=8 2>/dev/null; sha256sum /tmp/blob >/tmp/blob.sum; memtouch -m 48 -r 8 -p 2 >/tmp/mt.log 2>&1 & echo started=\$!"
	wait_pane "$s" '^started=' 60 || { pane "$s"; fail "$c vCPUs: the workload did not start"; }
	CLOCK_LO= CLOCK_HI=
	check_clock "boot$c"
	sleep "$(scaled 3)"
	hop "boot$c" "pre$c" "$c" precopy
	# Hybrid: a guest starved on a busy host may dirty next to nothing in
	# round 2, and precopy then rightly completes before the switch (as
	# QEMU's would); that hop is checked like any other and the guest moves
	# again, up to 3 times, since this hop is about the switch.
	cur=pre$c
	for try in 1 2 3; do
		hop "$cur" "hyb$c-$try" "$c" hybrid
		cur=hyb$c-$try
		grep -q 'postcopy: the guest runs here' "$TMP/$cur.console" && break
		[ "$try" -lt 3 ] || fail "$c vCPUs: hybrid: precopy converged before the switch 3 times"
		note "$cur: precopy converged before the switch (the guest barely ran); hybrid again"
	done
	hop "$cur" "post$c" "$c" postcopy
	grep -q 'postcopy: the guest runs here' "$TMP/post$c.console" || fail "post$c: the destination never ran in postcopy"
	hop "post$c" "snap$c" "$c" file
	s=lx$$snap$c
	type_in "$s" "kill -USR1 %1; wait %1; v=\$?; tail -n 1 /tmp/mt.log; vmm-exit \$v"
	wait_pane "$s" 'vmm-exit=' 300 || { pane "$s"; fail "$c vCPUs: the guest did not end"; }
	pane "$s" | grep -q '^memtouch: PASS' || { pane "$s"; fail "$c vCPUs: memtouch did not pass"; }
	pane "$s" | grep -q 'vmm-exit=0' || { pane "$s"; fail "$c vCPUs: the last vmm's exit status is not 0"; }
	console_clean "snap$c"
	tmux kill-session -t "$s"
	echo "$c vCPUs: precopy, hybrid, postcopy and file: PASS"
}

chain 2
chain 1
echo "PASS"
