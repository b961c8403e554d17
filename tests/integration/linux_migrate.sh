#!/usr/bin/env bash
# timeout: 2400
# The Linux guest migrates while it works: a source booted with --kernel
# and a destination waiting with --console serial, both in tmux (their
# stdin is the guest's console).  Before the migration the guest writes a
# tmpfs file and its checksum and starts memtouch in the background; after
# it, typed on the destination: the checksum holds, the guest's clock is
# within 2 s of the host's, memtouch is told to end and verifies every
# page, and its status is vmm's exit status (vmm-exit).  For each mode
# (precopy, hybrid, postcopy) with 2 vCPUs, and precopy with 1.  The
# console must be free of soft lockups, BUGs, RCU stalls and clocksource
# complaints on both sides.
. "$(dirname "$0")/../lib.sh"
need_kvm
command -v tmux >/dev/null || skip "tmux is not installed"
LG=$TOP/build/linux-guest
[ -f "$LG/initramfs.cpio" ] && [ -e "$LG/bzImage" ] || fail "no $LG: make linux-guest builds it"
export HOME=$TMP TERM=xterm

pane() { tmux capture-pane -t "$1" -p -S -200 | grep -v '^$'; }
wait_pane() {	# SESSION RE [SECS]
	local deadline=$((SECONDS + $(scaled "${3:-60}")))
	until pane "$1" | grep -qE -- "$2"; do
		[ $SECONDS -le $deadline ] || return 1
		sleep 0.3
	done
}
type_in() { tmux send-keys -t "$1" "$2" Enter; }

one() {	# NAME CPUS MODE
	local name=$1 cpus=$2 mode=$3 port src dst sets=()
	port=$(free_port)
	src=lxs$$$name dst=lxd$$$name
	tmux new-session -d -s "$src" -x 160 -y 50 "'$VMM' run -m 512 -c $cpus --kernel '$LG/bzImage' \
		--initrd '$LG/initramfs.cpio' --monitor unix:$TMP/$name-src.sock; echo vmm-exit=\$?; sleep 600"
	tmux new-session -d -s "$dst" -x 160 -y 50 "'$VMM' run -m 512 -c $cpus --incoming tcp:127.0.0.1:$port \
		--console serial --monitor unix:$TMP/$name-dst.sock; echo vmm-exit=\$?; sleep 600"
	tmux pipe-pane -t "$src" -o "cat >>'$TMP/$name-src.console'"
	tmux pipe-pane -t "$dst" -o "cat >>'$TMP/$name-dst.console'"
	at_cleanup "tmux kill-session -t $src; tmux kill-session -t $dst; echo '--- $name source console:'; tail -n 40 '$TMP/$name-src.console'; echo '--- $name destination console:'; tail -n 40 '$TMP/$name-dst.console'"
	wait_pane "$src" 'vmm-guest:/#' 600 || { pane "$src"; fail "$name: Linux did not boot to its shell"; }
	type_in "$src" "dd if=/dev/urandom of=/tmp/blob bs=1M count=8 2>/dev/null; sha256sum /tmp/blob >/tmp/blob.sum; memtouch -m 128 -r 20 -p 2 >/tmp/mt.log 2>&1 & echo started=\$!"
	wait_pane "$src" '^started=' 60 || { pane "$src"; fail "$name: the workload did not start"; }
	sleep "$(scaled 3)"
	case $mode in
	precopy) sets=(-s downtime-limit=300) ;;
	hybrid) sets=(-p -s postcopy-after-rounds=2) ;;
	postcopy) sets=(-p -s postcopy-after-rounds=0) ;;
	esac
	"$VMM" migrate --monitor "$TMP/$name-src.sock" -q -s verify=on -s peer-timeout=$PEER_TIMEOUT_MS \
		"${sets[@]}" -t "$(scaled 600)" "tcp:127.0.0.1:$port" >"$TMP/$name-migrate.out" 2>&1 ||
		{ cat "$TMP/$name-migrate.out"; pane "$dst"; fail "$name: the migration failed"; }
	note "$name: $(tail -n 1 "$TMP/$name-migrate.out")"
	type_in "$dst" ""
	type_in "$dst" "sha256sum -c /tmp/blob.sum && echo blob=ok; echo guest-clock=\$(date +%s)"
	wait_pane "$dst" '^guest-clock=[0-9]' 120 || { pane "$dst"; fail "$name: the migrated shell does not answer"; }
	host_now=$(date +%s)
	pane "$dst" | grep -q '^blob=ok' || { pane "$dst"; fail "$name: the tmpfs file changed"; }
	guest_now=$(pane "$dst" | sed -n 's/^guest-clock=\([0-9]*\).*/\1/p' | tail -n 1)
	[ $((host_now - guest_now)) -le 2 ] && [ $((guest_now - host_now)) -le 2 ] ||
		fail "$name: the guest's clock is $((guest_now - host_now)) s off the host's"
	type_in "$dst" "kill -USR1 %1; wait %1; s=\$?; tail -n 1 /tmp/mt.log; vmm-exit \$s"
	wait_pane "$dst" 'vmm-exit=' 300 || { pane "$dst"; fail "$name: the guest did not end"; }
	pane "$dst" | grep -q '^memtouch: PASS' || { pane "$dst"; fail "$name: memtouch did not pass"; }
	pane "$dst" | grep -q 'vmm-exit=0' || { pane "$dst"; fail "$name: the destination's exit status is not 0"; }
	bad=$(grep -ahE 'soft lockup|BUG:|rcu_sched|rcu_preempt detected|clocksource|Kernel panic' \
		"$TMP/$name-src.console" "$TMP/$name-dst.console" | head -n 5)
	[ -z "$bad" ] || fail "$name: a console shows: $bad"
	tmux kill-session -t "$src"
	tmux kill-session -t "$dst"
	echo "$name: PASS"
}

one precopy2 2 precopy
one hybrid2 2 hybrid
one postcopy2 2 postcopy
one precopy1 1 precopy
echo "PASS"
