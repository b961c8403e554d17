#!/usr/bin/env bash
# timeout: 300
# A failure is reported once, where its context is known: a migration to a
# port where nobody listens, and a destination that cannot listen (the port
# is taken), each print their reason exactly once, and the source's guest
# runs on.
. "$(dirname "$0")/../lib.sh"
need_kvm
command -v python3 >/dev/null || skip "python3 holds the port taken"

src_start src 1 "dirty ws=16M rate=4 secs=900"
# A port nobody listens on: take one, then let it go.
port=$(free_port)
"$VMM" migrate -q --monitor "$SRC_SOCK" "tcp:127.0.0.1:$port" >"$TMP/mig.out" 2>&1 && fail "the migration to nobody succeeded"
n=$(grep -c "cannot connect to tcp:127.0.0.1:$port" "$TMP/src.out")
[ "$n" -eq 1 ] || { cat "$TMP/src.out"; fail "the failed connect was reported $n times in the source's log"; }
grep -q "failure reason: cannot connect to tcp:127.0.0.1:$port: Connection refused" "$TMP/mig.out" ||
	{ cat "$TMP/mig.out"; fail "info migrate does not say why"; }
note "connect: $(grep "cannot connect" "$TMP/src.out")"
mon "$SRC_SOCK" "info status" | grep -q 'VM status: running' || fail "the source is not running"

# A port that is taken: the destination cannot listen, says so once, ends with VMM_EXIT_INCOMING.
port=$(free_port)
spawn holder python3 -c 'import socket,sys,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); print("ready", flush=True); time.sleep(3600)' "$port"
wait_for "$TMP/holder.out" ready || fail "cannot take a port"
vmm_start dst run --incoming "tcp:127.0.0.1:$port" -m 256M -n
vmm_wait "$VMM_PID" 120 || fail "the destination did not end"
[ "$VMM_STATUS" -eq $VMM_EXIT_INCOMING ] || { cat "$TMP/dst.out"; fail "destination status $VMM_STATUS, expected $VMM_EXIT_INCOMING"; }
n=$(grep -c "cannot listen on tcp:127.0.0.1:$port" "$TMP/dst.out")
[ "$n" -eq 1 ] || { cat "$TMP/dst.out"; fail "the failed listen was reported $n times"; }
note "listen: $(grep "cannot listen" "$TMP/dst.out")"
mon "$SRC_SOCK" quit
echo PASS
