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
# The guest's last t= on the screen.
screen_t() { screen | sed -n 's/^dirty: t=\([0-9]*\).*/\1/p' | tail -n 1; }
tmux new-session -d -s "$sess" -x 150 -y 40 \
	"'$VMM' run -m 64M '$GUEST' --append 'dirty ws=4M rate=1 secs=900 report=1'; echo vmm-exit=\$?; sleep 30"
at_cleanup 'tmux kill-session -t "$sess"'
wait_screen '^dirty: t=' || { screen; fail "the guest does not run"; }
tmux send-keys -t "$sess" "info st" Tab Enter
wait_screen 'VM status: running' || { screen; fail "tab completion of 'info st' did not run info status"; }
# A half-typed line survives guest output printed while it waits: two more
# progress lines, and the prompt with the typed text is the last line again.
tmux send-keys -t "$sess" "info cp" Tab
t0=$(screen_t)
deadline=$((SECONDS + $(scaled 60)))
until [ "$(screen_t)" -ge $((t0 + 2)) ]; do
	[ $SECONDS -le $deadline ] || { screen; fail "no guest output while the line waits"; }
	sleep 0.2
done
deadline=$((SECONDS + $(scaled 3)))
until screen | tail -n 1 | grep -q '^(vmm) info cpus'; do
	[ $SECONDS -le $deadline ] || { screen; fail "the typed line was not redrawn under the guest output"; }
	sleep 0.1
done
tmux send-keys -t "$sess" Enter
wait_screen 'CPU #0: rip=' || { screen; fail "info cpus did not answer"; }
tmux send-keys -t "$sess" "quit" Enter
wait_screen 'vmm-exit=' 30 || { screen; fail "quit did not end vmm"; }
screen | tail -n 4
screen | grep -q 'vmm-exit=0' || fail "exit status after quit is not 0"
grep -q '^info status' "$HOME/.vmm_history" && grep -q '^quit' "$HOME/.vmm_history" ||
	{ cat "$HOME/.vmm_history"; fail "no history in ~/.vmm_history"; }
echo "PASS"
