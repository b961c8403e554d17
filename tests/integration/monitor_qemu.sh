#!/usr/bin/env bash
# timeout: 300
# QEMU's HMP habits at the terminal monitor (readline, a real pty in tmux),
# issue 16: tab completion of arguments (capability and parameter names,
# on/off, CPU indexes, info topics, file names after file:); c and q;
# xp and x with QEMU's /FMT; info registers -a; migrate_set_capability
# postcopy-ram; migrate -p for that migration only, and a postcopy snapshot
# refused before its file is created; info migrate after a failure (the
# reason first, no zeros).
. "$(dirname "$0")/../lib.sh"
need_kvm
command -v tmux >/dev/null || skip "tmux is not installed"
export HOME=$TMP TERM=xterm
sess=vmmq$$
sock=$TMP/q.sock
# The whole session, scrollback included, wrapped lines joined.
screen() { tmux capture-pane -t "$sess" -p -J -S -2000 | grep -v '^$'; }
# Type a command line and Enter; wait for RE on the screen.
type_cmd() {
	local line=$1 re=$2 what=$3
	tmux send-keys -t "$sess" -l "$line"
	tmux send-keys -t "$sess" Enter
	wait_screen "$re" || { screen | tail -n 30; fail "$what"; }
}
# The reply to the last "(vmm) CMD" on the screen (the lines up to the next
# prompt, without the guest's progress lines printed meanwhile).
reply_to() {
	screen | awk -v c="(vmm) $1" '$0 == c { r = ""; on = 1; next } /^\(vmm\)/ { on = 0 }
		on && !/^dirty: / { r = r $0 "\n" } END { printf "%s", r }'
}
# Wait until the screen has at least N lines matching RE.
wait_count() {
	local re=$1 n=$2 deadline=$((SECONDS + $(scaled 60)))
	until [ "$(screen | grep -cE -- "$re")" -ge "$n" ]; do
		[ $SECONDS -le $deadline ] || return 1
		sleep 0.2
	done
}
tmux new-session -d -s "$sess" -x 200 -y 50 \
	"'$VMM' run -m 64M -c 2 --monitor 'unix:$sock' '$GUEST' --append 'dirty ws=4M rate=1 secs=900 report=1'; echo vmm-exit=\$?; sleep 60"
at_cleanup 'tmux kill-session -t "$sess"'
wait_screen '^dirty: t=' || { screen; fail "the guest does not run"; }

# Completion of arguments, not only of command names.
mon "$sock" "migrate_set_capability verify on" || fail "cannot turn verify on"
tmux send-keys -t "$sess" "migrate_set_cap" Tab "ver" Tab "of" Tab Enter
type_cmd "info migrate_capabilities" '^verify: off' "the completed 'migrate_set_capability verify off' did not run"
screen | grep -q '^(vmm) migrate_set_capability verify off *$' || { screen | tail; fail "capability name or off not completed"; }
tmux send-keys -t "$sess" "migrate_set_parameter downt" Tab "250" Enter
type_cmd "info migrate_parameters" '^downtime-limit: 250' "the completed parameter name did not take"
tmux send-keys -t "$sess" "info registers " Tab Tab
wait_screen '^-a +0 +1 *$' 20 || { screen | tail; fail "info registers Tab Tab does not list -a and the CPU indexes"; }
tmux send-keys -t "$sess" C-u
tmux send-keys -t "$sess" "info migrate_p" Tab Enter
wait_count '^downtime-limit: ' 2 || { screen | tail; fail "info topic not completed"; }
mkdir -p "$TMP/snaps" && : >"$TMP/snaps/only-one.img"
tmux send-keys -t "$sess" "migrate file:$TMP/sn" Tab Tab
wait_screen "^\(vmm\) migrate file:$TMP/snaps/only-one.img *\$" 20 ||
	{ screen | tail; fail "file names after file: are not completed"; }
tmux send-keys -t "$sess" C-u

# QEMU's memory dumps: the multiboot magic at 1 MiB, physical and (identity-mapped) virtual.
type_cmd "xp /8xb 0x100000" '^0000000000100000: 0x02 0xb0 0xad 0x1b' "xp /8xb does not show the magic"
type_cmd "x/2xw 0x100000" '^0000000000100000: 0x1badb002 0x' "x/2xw (no blank) does not show the magic"
type_cmd "xp /4ub 0x100000" '^0000000000100000:   2 176 173  27$' "xp /4ub: not QEMU's decimal layout"
type_cmd "xp /2dh 0x100000" '^0000000000100000: +-20478 +7085$' "xp /2dh: not signed decimal"
type_cmd "x /2xg 0xffff800000000000" '^error: virtual address 0xffff800000000000 is not mapped' \
	"x of an unmapped virtual address does not say so"
type_cmd "info registers -a" '^vcpu 1 registers' "info registers -a does not show vCPU 1"
reply_to "info registers -a" | grep -q '^vcpu 0 registers' || fail "info registers -a does not show vCPU 0"
type_cmd "stop" '^\(vmm\) stop' "stop"
type_cmd "info status" 'VM status: paused' "stop did not pause"
type_cmd "c" '^\(vmm\) c$' "c"
type_cmd "info status" 'VM status: running' "c did not continue"

# migrate -p: postcopy for that migration only.  It fails (nobody listens),
# then the capability is still off and a snapshot is not refused for it.
type_cmd "migrate -p unix:$TMP/nobody.sock" 'migration to unix:.* failed' "migrate -p to nobody did not fail"
type_cmd "info migrate" '^failure reason: ' "info migrate after a failure has no reason"
r=$(reply_to "info migrate")
echo "$r"
[ "$(sed -n 1p <<<"$r")" = "Migration status: failed" ] && sed -n 2p <<<"$r" | grep -q '^failure reason: cannot connect' ||
	fail "info migrate after a failure: not the status and then the reason"
grep -qE ': 0( |$)' <<<"$r" && fail "info migrate after a failure shows figures of zero"
[ "$(wc -l <<<"$r")" -le 8 ] || fail "info migrate after a failure: more than 8 lines"
mon "$sock" "info migrate_capabilities" | grep -q '^postcopy: off' || fail "migrate -p left the postcopy capability on"

# The capability on (QEMU's name): a snapshot is refused in one line, before its file exists.
type_cmd "migrate_set_capability postcopy-ram on" '^\(vmm\) migrate_set_capability postcopy-ram on' "postcopy-ram"
mon "$sock" "info migrate_capabilities" | grep -q '^postcopy: on' || fail "postcopy-ram on did not turn postcopy on"
type_cmd "migrate file:$TMP/snap" '^error: postcopy needs a return path' "a postcopy snapshot was not refused"
[ "$(reply_to "migrate file:$TMP/snap" | wc -l)" -eq 1 ] || fail "the refusal is not one line"
[ -e "$TMP/snap" ] && fail "the refused snapshot left a file"
type_cmd "migrate -p file:$TMP/snap" '^error: postcopy needs a return path' "migrate -p file: was not refused"
[ -e "$TMP/snap" ] && fail "the refused migrate -p snapshot left a file"
# Off again, the snapshot works.
type_cmd "migrate_set_capability postcopy off" '^\(vmm\) migrate_set_capability postcopy off' "postcopy off"
type_cmd "migrate file:$TMP/snap" 'migration to file:.* completed' "the snapshot did not complete" 120
[ -s "$TMP/snap" ] || fail "the snapshot is empty"

type_cmd "q" 'vmm-exit=' "q did not end vmm"
screen | grep -q 'vmm-exit=0' || fail "exit status after q is not 0"
echo "PASS"
