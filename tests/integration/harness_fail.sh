#!/usr/bin/env bash
# timeout: 300
# The harness itself (tests/lib.sh): a test that fails ends at once.  An
# inner test starts a source, a destination, a proxy between them and a
# process with a child of its own, and fails mid-migration: it must exit 1
# within a few seconds of its FAIL line, its log must hold the output of both
# vmm processes under their headers, and none of its processes may be left.
# An inner test that passes leaves no process either and prints no outputs;
# one ended by SIGTERM (run-tests' limit) ends its processes and prints
# their outputs; a fail inside $(...) fails the test.
. "$(dirname "$0")/../lib.sh"
need_kvm
command -v python3 >/dev/null || skip "python3 is needed for the proxy"

# inner NAME: the inner test NAME (its body on stdin) runs in the
# background, output in $TMP/NAME.out; sets INNER_PID.
inner() {
	{
		echo ". '$TOP/tests/lib.sh'"
		cat
	} >"$TMP/$1.sh"
	spawn "$1" env TMPDIR="$TMP" bash "$TMP/$1.sh"
	INNER_PID=$SPAWN_PID
}
# Wait for the inner test to end; INNER_FAIL_AT and INNER_END_AT are when its
# first FAIL line was seen and when it ended ($EPOCHREALTIME).
inner_wait() {
	local out=$TMP/$1.out deadline=$((SECONDS + $(scaled 240)))
	INNER_FAIL_AT=
	while running "$INNER_PID"; do
		[ -z "$INNER_FAIL_AT" ] && grep -q '^FAIL:' "$out" && INNER_FAIL_AT=$EPOCHREALTIME
		[ $SECONDS -le $deadline ] || fail "$1: the inner test did not end"
		sleep 0.05
	done
	INNER_END_AT=$EPOCHREALTIME
	[ -z "$INNER_FAIL_AT" ] && grep -q '^FAIL:' "$out" && INNER_FAIL_AT=$INNER_END_AT
	vmm_wait "$INNER_PID" 10
}
# The pids an inner test listed on its "pids:" line, all ended.
all_gone() {
	local p pids
	pids=$(sed -n 's/^pids: //p' "$TMP/$1.out")
	[ -n "$pids" ] || fail "$1: no pids line"
	for p in $pids; do
		running "$p" && { ps -o pid,ppid,stat,cmd -p "$p"; fail "$1: process $p is left running"; }
	done
	note "$1: none of $pids is left"
}
# The lines under the header of NAME's output in the inner test's log.
section() {
	awk -v name="$2" '/^==== / { on = index($0, "==== output of " name " (") == 1; next } on' "$TMP/$1.out"
}

# 1. A failure mid-migration.
inner fail <<'EOF'
src_start src 1 "dirty ws=16M rate=4 secs=900"
uri=tcp:127.0.0.1:$(free_port) port=$(free_port)
dst_start dst 1 "$uri"
spawn proxy python3 "$TOP/tests/tools/fake-dest.py" proxy "$port" "${uri##*:}"
proxy=$SPAWN_PID
wait_for "$TMP/proxy.out" ready || fail "no proxy"
spawn deep bash -c 'sleep 1000 & echo "child $!"; wait'
deep=$SPAWN_PID
wait_for "$TMP/deep.out" '^child ' || fail "no child of deep"
mon "$SRC_SOCK" "migrate_set_parameter max-bandwidth 1M" "migrate tcp:127.0.0.1:$port" >/dev/null || fail "cannot migrate"
deadline=$((SECONDS + $(scaled 120)))
until [ "$(mig_status "$SRC_SOCK")" = active ]; do
	[ $SECONDS -le $deadline ] || fail "the migration is never active"
	sleep 0.1
done
echo "pids: $SRC_PID $DST_PID $proxy $deep $(sed -n 's/^child //p' "$TMP/deep.out")"
fail "a deliberate failure in the middle of a migration"
EOF
inner_wait fail
sed 's/^/  | /' "$TMP/fail.out"
[ "$VMM_STATUS" -eq 1 ] || fail "fail: the inner test's status is $VMM_STATUS, expected 1"
grep -q '^FAIL: a deliberate failure' "$TMP/fail.out" || fail "fail: no FAIL line"
secs=$(awk -v a="$INNER_FAIL_AT" -v b="$INNER_END_AT" 'BEGIN { printf "%.1f", b - a }')
note "fail: ended ${secs}s after its FAIL line"
awk -v s="$secs" -v lim="$(scaled 10)" 'BEGIN { exit !(s <= lim) }' ||
	fail "fail: the inner test ended ${secs}s after its FAIL line (at most $(scaled 10) s)"
read -r src dst proxy deep _ <<<"$(sed -n 's/^pids: //p' "$TMP/fail.out")"
for n in "src $src" "dst $dst" "proxy $proxy" "deep $deep"; do
	set -- $n
	grep -qE "^==== output of $1 \(pid $2, exit [0-9]+, ended by the cleanup\): .*/$1\.out ====$" "$TMP/fail.out" ||
		fail "fail: no header for the output of $1 (pid $2)"
done
section fail src | grep -q '^dirty: t=' || fail "fail: the source's output is not under its header"
section fail dst | grep -q 'waiting for a migration' || fail "fail: the destination's output is not under its header"
section fail proxy | grep -q '^ready' || fail "fail: the proxy's output is not under its header"
all_gone fail
ls -d "$TMP"/vmm-test.* 2>/dev/null && fail "fail: the inner test left its directory"

# 2. A pass: processes left running are ended all the same, no outputs shown.
inner pass <<'EOF'
spawn sleeper sleep 1000
echo "pids: $SPAWN_PID"
echo PASS
EOF
inner_wait pass
[ "$VMM_STATUS" -eq 0 ] || { cat "$TMP/pass.out"; fail "pass: status $VMM_STATUS, expected 0"; }
grep -q '^==== output of' "$TMP/pass.out" && { cat "$TMP/pass.out"; fail "pass: outputs shown although it passed"; }
all_gone pass

# 3. SIGTERM (run-tests' limit): the processes end, their outputs are shown.
inner term <<'EOF'
spawn sleeper bash -c 'echo sleeping; exec sleep 1000'
wait_for "$TMP/sleeper.out" sleeping || fail "no sleeper"
sleep 1000 &
echo "pids: $SPAWN_PID $!"
wait $!
EOF
wait_for "$TMP/term.out" '^pids: ' || fail "term: the inner test does not start"
kill -TERM "$INNER_PID"
inner_wait term
[ "$VMM_STATUS" -eq 143 ] || { cat "$TMP/term.out"; fail "term: status $VMM_STATUS, expected 143"; }
section term sleeper | grep -q '^sleeping' || { cat "$TMP/term.out"; fail "term: the sleeper's output is not shown"; }
all_gone term

# 4. fail inside $(...) fails the test, and its FAIL line is not swallowed.
inner subshell <<'EOF'
x=$(fail "inside a command substitution"; echo unreachable)
echo "went on after the subshell: $x"
EOF
inner_wait subshell
[ "$VMM_STATUS" -eq 1 ] || { cat "$TMP/subshell.out"; fail "subshell: status $VMM_STATUS, expected 1"; }
grep -q '^FAIL: inside a command substitution' "$TMP/subshell.out" || fail "subshell: no FAIL line"
grep -q 'went on' "$TMP/subshell.out" && fail "subshell: the test went on after the failure"
echo "PASS"
