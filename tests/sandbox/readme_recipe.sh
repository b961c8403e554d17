#!/usr/bin/env bash
# timeout: 900
# The README's migration recipe, typed as written into `scripts/kvm-sandbox
# --shell` on a terminal (tmux): each line once the one before has printed
# the text in double quotes at the end of its comment.  It must end with the
# guest's own verdict, "dirty: PASS", and the destination's status 0.  A
# sandbox whose kernel stalls (kvm-sandbox ends it with status 126, as
# scripts/check's boots do) is booted again and the recipe typed anew, once.
# (Run on the host, not inside a sandbox: it boots its own.  Where /dev/kvm
# works, --shell is bash and the same lines run natively.)
. "$(dirname "$0")/../lib.sh"
command -v tmux >/dev/null || skip "tmux is not installed"
command -v qemu-system-x86_64 >/dev/null || "$TOP/scripts/kvm-sandbox" --probe >/dev/null ||
	skip "neither QEMU for the sandbox nor a usable /dev/kvm"
[ -x "$TOP/build/vmm" ] && [ -r "$GUEST" ] || fail "build/vmm or the guest image is missing: run make"

# The lines between the README's recipe markers, from its code block.
mapfile -t lines < <(sed -n '/^<!-- recipe:/,/^<!-- \/recipe -->/p' "$TOP/README.md" | sed '/^<!--/d; /^```/d')
[ ${#lines[@]} -ge 4 ] || fail "no recipe between <!-- recipe: --> and <!-- /recipe --> in README.md"
case "${lines[0]}" in
scripts/kvm-sandbox\ --shell*) ;;
*) fail "the recipe does not start with scripts/kvm-sandbox --shell: ${lines[0]}" ;;
esac

export TERM=xterm
sess=recipe$$
sock=$TMP/tmux.sock
tm() { tmux -S "$sock" "$@"; }
screen() { tm capture-pane -t "$sess" -p -S -2000 | grep -v '^$'; }
at_cleanup 'echo "==== the terminal ===="; screen | tail -n 60; tm kill-server 2>/dev/null'
# Wait until the screen shows TEXT (fixed string), at most SECS (default 120)
# times TEST_SLOWDOWN; 2 if the sandbox ended meanwhile with 126 (its kernel stalled).
wait_text() {
	local deadline=$((SECONDS + $(scaled "${2:-120}")))
	until screen | grep -qF -- "$1"; do
		screen | grep -q 'sandbox-exit=126' && return 2
		[ $SECONDS -le $deadline ] || return 1
		tm has-session -t "$sess" 2>/dev/null || return 1
		sleep 0.5
	done
}

# Type the recipe into a new session; 0 when every line showed its text, 2
# when the sandbox stalled under it, else the test fails.
recipe() {
	local i line want comment st
	tm kill-session -t "$sess" 2>/dev/null
	# The shell in the sandbox ends the session when it exits: a last line says how.
	tm new-session -d -s "$sess" -x 220 -y 50 -c "$TOP" \
		"bash --norc -c 'cd \"$TOP\" && ${lines[0]%%#*}; echo \"sandbox-exit=\$?\"; sleep 600'"
	tm set-option -t "$sess" history-limit 5000 >/dev/null
	for ((i = 0; i < ${#lines[@]}; i++)); do
		line=${lines[$i]}
		want=
		# The text to wait for: the last "..." in the comment.
		if [[ $line == *#* ]]; then
			comment=${line#*#}
			[[ $comment =~ \"([^\"]*)\"[^\"]*$ ]] && want=${BASH_REMATCH[1]}
		fi
		if [ $i -gt 0 ]; then
			tm send-keys -t "$sess" -l -- "${line%%#*}"
			tm send-keys -t "$sess" Enter
		fi
		if [ $i -eq 0 ] && "$TOP/scripts/kvm-sandbox" --probe >/dev/null; then
			want=   # native: plain bash prints no banner
			sleep 1
		fi
		note "typed: ${line%%#*}"
		[ -n "$want" ] || continue
		# Booting the sandbox and migrating under TCG take minutes on a busy
		# machine; a stalled sandbox kernel is found within kvm-sandbox's 300 s.
		wait_text "$want" 420
		st=$?
		[ $st -eq 2 ] && return 2
		[ $st -eq 0 ] || fail "line $((i + 1)): '$want' did not show"
		note "  saw: $want"
	done
	wait_text "sandbox-exit=" 120
	st=$?
	[ $st -eq 2 ] && return 2
	[ $st -eq 0 ] || fail "the shell in the sandbox did not end after exit"
	return 0
}

recipe
if [ $? -eq 2 ]; then
	note "the sandbox kernel stalled (kvm-sandbox exit 126); its terminal:"
	screen | tail -n 40
	note "booting it again and typing the recipe anew (once)"
	recipe || fail "the sandbox kernel stalled again"
fi
screen | grep -q 'destination exit status 0' || fail "the destination's exit status is not 0"
screen | grep -q 'dirty: PASS' || fail "no dirty: PASS from the guest"
screen | grep -q 'sandbox-exit=0' || fail "scripts/kvm-sandbox --shell did not exit 0"
echo "PASS"
