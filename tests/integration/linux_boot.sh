#!/usr/bin/env bash
# timeout: 1500
# A real Linux guest (make linux-guest: Debian's kernel, an initramfs of
# busybox, memtouch and vmm-exit): `vmm run --kernel --initrd` boots it with
# 2 vCPUs to a shell on the serial console; commands typed through a pty
# (tmux) answer: nproc says 2, memtouch verifies its memory (PASS); Ctrl-A c
# reaches the monitor and comes back; poweroff ends vmm with status 0.  The
# console must be free of soft lockups, BUGs and RCU stalls.
. "$(dirname "$0")/../lib.sh"
need_linux_guest
sess=vmmlx$$
console=$TMP/console.log
screen() { tmux capture-pane -t "$sess" -p | grep -v '^$'; }
t0=$EPOCHREALTIME
tmux new-session -d -s "$sess" -x 160 -y 50 \
	"'$VMM' run -m 512 -c 2 --kernel '$LG/bzImage' --initrd '$LG/initramfs.cpio'; echo vmm-exit=\$?; sleep 60"
tmux pipe-pane -t "$sess" -o "cat >>'$console'"
at_cleanup 'tmux kill-session -t "$sess"; echo "--- the guest console ($console):"; tail -n 60 "$console"'
# Under TCG (scripts/kvm-sandbox) the kernel takes minutes to boot; natively a second.
wait_screen '^vmm-guest: init' 600 || { screen; fail "Linux did not reach its init"; }
note "to init: $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
wait_screen 'vmm-guest:/#' 120 || { screen; fail "no shell prompt on the serial console"; }
tmux send-keys -t "$sess" "echo cpus=\$(nproc)" Enter
wait_screen '^cpus=[0-9]' 60 || { screen; fail "the shell does not answer typed commands"; }
screen | grep -q '^cpus=2' || { screen; fail "nproc does not say 2"; }
tmux send-keys -t "$sess" "memtouch -m 32 -r 4 -s 2 -p 1; echo verdict=\$?" Enter
wait_screen '^verdict=' 300 || { screen; fail "memtouch did not end"; }
screen | grep -q '^memtouch: PASS' && screen | grep -q '^verdict=0' || { screen; fail "memtouch did not pass"; }
# The monitor and back: Ctrl-A c, info status, Ctrl-A c.
tmux send-keys -t "$sess" C-a c
wait_screen '^\(vmm\)' 30 || { screen; fail "Ctrl-A c did not show the monitor"; }
tmux send-keys -t "$sess" "info status" Enter
wait_screen 'VM status: running' 30 || { screen; fail "the monitor does not answer"; }
tmux send-keys -t "$sess" C-a c
tmux send-keys -t "$sess" "echo back=\$((6 * 7))" Enter
wait_screen '^back=42' 60 || { screen; fail "Ctrl-A c did not give the console back"; }
tmux send-keys -t "$sess" "poweroff" Enter
wait_screen 'vmm-exit=' 120 || { screen; fail "poweroff did not end vmm"; }
screen | grep -q 'vmm-exit=0' || { screen; fail "vmm's exit status after poweroff is not 0"; }
bad=$(grep -aE 'soft lockup|BUG:|rcu_sched|rcu_preempt detected|clocksource.*unstable|Kernel panic' "$console" | head -n 5)
[ -z "$bad" ] || fail "the console shows: $bad"
echo "PASS"
