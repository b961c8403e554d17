#!/usr/bin/env bash
# timeout: 300
# The monitor socket can poke guest RAM and create files: it is 0600 whatever
# the umask (or the ,mode= asked for), and a client of another uid is refused
# even where the file's mode would let it in.
. "$(dirname "$0")/../lib.sh"
need_kvm
command -v setpriv >/dev/null || skip "setpriv (util-linux) plays the other user"
[ "$(id -u)" = 0 ] || skip "needs root to act as another user"

sock=$TMP/mon.sock
spawn vm bash -c 'umask 000; exec "$@"' umask000 "$VMM" run "$GUEST" -n --monitor "unix:$sock" \
	--append "dirty ws=4M rate=1 secs=900"
wait_socket "$sock" || fail "no monitor"
mode=$(stat -c %a "$sock")
[ "$mode" = 600 ] || fail "the monitor socket is $mode under umask 000, expected 600"
note "umask 000: the socket is $mode"

# Let everyone at the file, and into the directory: the peer check still refuses.
chmod 0777 "$sock"
chmod 0755 "$TMP"
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$VMM" monitor "$sock" "info status" 2>&1)
grep -q 'VM status' <<<"$out" && fail "uid 65534 got an answer: $out"
grep -q 'permission denied' <<<"$out" || note "uid 65534 was refused ($out)"
grep -q 'monitor: refused a client of uid 65534' "$TMP/vm.out" || { cat "$TMP/vm.out"; fail "the refusal is not logged"; }
mon "$sock" "info status" | grep -q 'VM status: running' || fail "the owner is refused too"
note "uid 65534 refused, root served"

# A mode asked for is the mode given; one that shuts the owner out is refused.
sock2=$TMP/mon2.sock
vmm_start vm2 run "$GUEST" -n --monitor "unix:$sock2,mode=0660" --append "dirty ws=4M rate=1 secs=900"
wait_socket "$sock2" || fail "no monitor with mode=0660"
[ "$(stat -c %a "$sock2")" = 660 ] || fail "mode=0660 gave $(stat -c %a "$sock2")"
mon "$sock2" quit
"$VMM" run "$GUEST" -n --monitor "unix:$TMP/m3.sock,mode=0400" --append hello >"$TMP/vm3.out" 2>&1 &&
	fail "mode=0400 (the owner cannot connect) was accepted"
grep -q "bad monitor socket mode" "$TMP/vm3.out" || { cat "$TMP/vm3.out"; fail "no word on the bad mode"; }
mon "$sock" quit
echo PASS
