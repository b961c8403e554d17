#!/usr/bin/env bash
# timeout: 200
# The monitor on a terminal (readline, driven by a real pty in tmux): tab
# completion, guest output printed above the prompt without eating the
# typed line, history kept in ~/.vmm_history, quit.
. "$(dirname "$0")/../lib.sh"
need_kvm
command -v tmux >/dev/null || skip "tmux is not installed"
export HOME=$TMP TERM=xterm
sess=vmm$$
screen() { tmux capture-pane -t "$sess" -p | grep -v '^$'; }
tmux new-session -d -s "$sess" -x 150 -y 40 \
	"'$VMM' run -m 64M '$GUEST' --append 'dirty ws=4M rate=1 secs=60 report=1'; echo vmm-exit=\$?; sleep 30"
trap 'tmux kill-session -t "$sess" 2>/dev/null; cleanup' EXIT
deadline=$((SECONDS + 60))
until screen | grep -q '^dirty: t='; do
	[ $SECONDS -le $deadline ] || { screen; fail "the guest does not run"; }
	sleep 0.5
done
tmux send-keys -t "$sess" "info st" Tab Enter
sleep 2
screen | grep -q 'VM status: running' || { screen; fail "tab completion of 'info st' did not run info status"; }
# A half-typed line survives guest output printed while it waits.
tmux send-keys -t "$sess" "info cp" Tab
sleep 3
screen | tail -n 1 | grep -q '^(vmm) info cpus' || { screen; fail "the typed line was not redrawn under the guest output"; }
tmux send-keys -t "$sess" Enter
sleep 2
screen | grep -q 'CPU #0: rip=' || { screen; fail "info cpus did not answer"; }
tmux send-keys -t "$sess" "quit" Enter
deadline=$((SECONDS + 30))
until screen | grep -q 'vmm-exit='; do
	[ $SECONDS -le $deadline ] || { screen; fail "quit did not end vmm"; }
	sleep 0.5
done
screen | tail -n 4
screen | grep -q 'vmm-exit=0' || fail "exit status after quit is not 0"
grep -q '^info status' "$HOME/.vmm_history" && grep -q '^quit' "$HOME/.vmm_history" ||
	{ cat "$HOME/.vmm_history"; fail "no history in ~/.vmm_history"; }
echo "PASS"
