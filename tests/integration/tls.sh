#!/usr/bin/env bash
# timeout: 1200
# TLS on the migration connections, on real KVM, each migration to the
# guest's own verdict (credentials from scripts/tls-creds):
#  - precopy with a pre-shared key, and hybrid postcopy (urgent channel and
#    fault server) with x509 certificates both ways: complete, guest PASS;
#    info migrate says kernel TLS carried every connection, and the kernel's
#    /proc/net/tls_stat counted them.
#  - refused, each with one clear line, while the source's guest runs on and
#    the destination waits for the real source (which then completes): a
#    source without credentials, a wrong PSK, a certificate from another CA,
#    an expired certificate (from the right CA).
#  - one byte flipped in flight by a proxy: the destination fails before
#    anything of the guest runs there, saying so; the source's guest runs on.
# (The handshake's own cases, a replayed session and a third connection
# joining as the urgent channel: tests/unit/test_tls.c.)
. "$(dirname "$0")/../lib.sh"
need_kvm
[ -c /dev/userfaultfd ] || [ -r /proc/sys/vm/unprivileged_userfaultfd ] || skip "no userfaultfd"
command -v certtool >/dev/null || fail "certtool is needed (scripts/install-deps installs gnutls-bin)"

C=$TMP/creds
"$TOP/scripts/tls-creds" "$C/a" >/dev/null && "$TOP/scripts/tls-creds" "$C/b" >/dev/null &&
	"$TOP/scripts/tls-creds" --expired --ca "$C/a/x509" "$C/exp" >/dev/null || fail "cannot make credentials"

tls_stat() { awk -v k="$1" '$1 == k { print $2 }' /proc/net/tls_stat 2>/dev/null; }

# The guest runs on the destination: end it, its verdict, and quit the source.
finish() {
	wait_mig "$DST_SOCK" completed 300 || fail "$tag: the destination did not complete"
	wait_mig "$SRC_SOCK" completed 60 || fail "$tag: the source did not complete"
	local s d
	s=$(mon "$SRC_SOCK" "info migrate --json") d=$(mon "$DST_SOCK" "info migrate --json")
	note "$tag: source tls $(jfield "$s" tls), $(jfield "$s" tls_kernel_connections) kernel," \
		"$(jfield "$s" tls_relay_connections) relayed; destination $(jfield "$d" tls_kernel_connections) kernel;" \
		"$(jfield "$s" total_ms) ms, downtime $(jfield "$s" downtime_ms) ms"
	[ "$(jfield "$s" tls)" = "$1" ] || fail "$tag: info migrate does not say TLS $1"
	[ "$(jfield "$s" tls_kernel_connections)" = "$2" ] && [ "$(jfield "$d" tls_kernel_connections)" = "$2" ] ||
		fail "$tag: kernel TLS did not carry the $2 connections"
	mon "$SRC_SOCK" "info migrate" | grep -q "^tls: $1; $2 connections by kernel TLS" ||
		fail "$tag: info migrate's text does not show TLS"
	guest_stop "$DST_SOCK" "$TMP/src$tag.out" || fail "$tag: cannot stop the guest"
	vmm_wait "$DST_PID" 300 || fail "$tag: the guest did not finish on the destination"
	expect_pass "dst$tag" "$VMM_STATUS"
	mon "$SRC_SOCK" quit >/dev/null
	vmm_wait "$SRC_PID" 60 || fail "$tag: the source did not quit"
}

# A source's migration that TLS refuses: one line on each side, the source's guest runs on.
refused() {
	local creds=$1 src_says=$2 dst_says=$3 n
	n=$(grep -c 'ignored a connection' "$TMP/dst$tag.out")
	mon "$SRC_SOCK" "migrate_set_parameter tls-creds $creds" "migrate $uri" >/dev/null ||
		fail "$tag: migrate refused at once ($creds)"
	wait_mig "$SRC_SOCK" failed 120 || fail "$tag: the source did not fail ($creds)"
	err=$(mon "$SRC_SOCK" "info migrate" | sed -n 's/^failure reason: //p')
	note "$tag: source with ${creds#"$C"/}: $err"
	grep -q -- "$src_says" <<<"$err" || fail "$tag: the source's reason does not say '$src_says': $err"
	deadline=$((SECONDS + $(scaled 60)))
	until [ "$(grep -c 'ignored a connection' "$TMP/dst$tag.out")" -gt "$n" ]; do
		[ $SECONDS -le $deadline ] || fail "$tag: the destination did not refuse the connection"
		sleep 0.2
	done
	line=$(grep 'ignored a connection' "$TMP/dst$tag.out" | tail -n 1)
	note "$tag: destination: $line"
	grep -q -- "$dst_says" <<<"$line" || fail "$tag: the destination's line does not say '$dst_says'"
	[ "$(mig_status "$DST_SOCK")" = setup ] || fail "$tag: the destination is not waiting any more"
	mon "$SRC_SOCK" "info status" | grep -q 'VM status: running' || fail "$tag: the source's guest does not run"
	wait_progress "$TMP/src$tag.out" || fail "$tag: the source's guest does not run"
}

tx0=$(tls_stat TlsTxSw)

# ---- precopy, PSK: refused without credentials and with another key, then completes ----
tag=psk
uri=tcp:127.0.0.1:$(free_port)
src_start "src$tag" 1 "dirty ws=32M rate=8 secs=900 pattern=random"
dst_start "dst$tag" 1 "$uri" --tls-creds "$C/a/psk"
grep -q 'with TLS, PSK' "$TMP/dst$tag.out" || fail "$tag: the destination does not say it listens with TLS"
refused '""' 'takes TLS only' 'the source has no tls-creds'
refused "$C/b/psk" 'another pre-shared key' 'pre-shared key'
mon "$SRC_SOCK" "migrate_set_parameter tls-creds $C/a/psk" "migrate $uri" >/dev/null || fail "$tag: cannot start"
finish PSK 1

# ---- hybrid postcopy, x509: another CA, an expired certificate, then completes ----
tag=x509
uri=tcp:127.0.0.1:$(free_port)
src_start "src$tag" 1 "dirty ws=64M secs=900 pattern=random"
dst_start "dst$tag" 1 "$uri" --tls-creds "$C/a/x509"
mon "$SRC_SOCK" "migrate_set_capability postcopy on" "migrate_set_parameter postcopy-after-rounds 1" \
	"migrate_set_parameter max-postcopy-bandwidth 16M" >/dev/null || fail "$tag: cannot set postcopy"
refused "$C/b/x509" 'certificate is refused' 'refused the handshake'
refused "$C/exp/x509" 'refused the handshake' 'expired'
mon "$SRC_SOCK" "migrate_set_parameter tls-creds $C/a/x509" "migrate $uri" >/dev/null || fail "$tag: cannot start"
wait_mig "$SRC_SOCK" 'postcopy-active|completed' 300 || fail "$tag: no switch to postcopy"
finish x509 2
grep -q 'fault server' "$TMP/dst$tag.out" || fail "$tag: no fault server ran"

tx1=$(tls_stat TlsTxSw)
note "/proc/net/tls_stat: TlsTxSw ${tx0:-none} -> ${tx1:-none}"
[ -n "$tx1" ] && [ "$tx1" -gt "${tx0:-0}" ] || fail "the kernel counted no TLS connection (/proc/net/tls_stat)"

# ---- one byte flipped in flight ----
tag=flip
uri=tcp:127.0.0.1:$(free_port)
pport=$(free_port)
src_start "src$tag" 1 "dirty ws=32M rate=8 secs=900 pattern=random"
dst_start "dst$tag" 1 "$uri" --tls-creds "$C/a/psk"
# Forwards both ways; flips one byte of the source's, 1 MiB into the stream.
spawn proxy python3 -c '
import socket, sys, threading
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1]))); ls.listen(4)
print("proxy listening", flush=True)
def pipe(a, b, flip):
    seen = 0
    while True:
        d = a.recv(65536)
        if not d:
            break
        if flip and seen <= flip < seen + len(d):
            d = bytearray(d); d[flip - seen] ^= 0x20; d = bytes(d)
            print("flipped a byte at", flip, flush=True)
        seen += len(d)
        b.sendall(d)
    b.close()
while True:
    c, _ = ls.accept()
    s = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
    threading.Thread(target=pipe, args=(c, s, 1 << 20), daemon=True).start()
    threading.Thread(target=pipe, args=(s, c, 0), daemon=True).start()
' "$pport" "${uri##*:}"
wait_for "$TMP/proxy.out" 'proxy listening' 60 || fail "$tag: the proxy does not listen"
mon "$SRC_SOCK" "migrate_set_parameter tls-creds $C/a/psk" "migrate tcp:127.0.0.1:$pport" >/dev/null ||
	fail "$tag: cannot start"
vmm_wait "$DST_PID" 300 && fail "$tag: the destination ended well with a flipped byte"
[ "$VMM_STATUS" -eq "$VMM_EXIT_INCOMING" ] || fail "$tag: the destination's status is $VMM_STATUS"
grep -q 'flipped a byte' "$TMP/proxy.out" || fail "$tag: the proxy flipped nothing"
line=$(grep 'incoming migration failed' "$TMP/dst$tag.out")
note "$tag: destination: $line"
grep -q 'failed authentication' <<<"$line" || fail "$tag: the destination does not say a record failed authentication"
grep -q '^dirty:' "$TMP/dst$tag.out" && fail "$tag: the guest ran on the destination"
wait_mig "$SRC_SOCK" failed 120 || fail "$tag: the source did not fail"
wait_progress "$TMP/src$tag.out" || fail "$tag: the source's guest does not run on"
mon "$SRC_SOCK" quit >/dev/null
vmm_wait "$SRC_PID" 60 || fail "$tag: the source did not quit"
echo "PASS"
