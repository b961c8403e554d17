#!/usr/bin/env bash
# timeout: 1200
# TLS on the migration connections, on real KVM, each migration to the
# guest's own verdict (credentials from scripts/tls-creds):
#  - with a pre-shared key: precopy, then the guest back the other way
#    (ping-pong) in hybrid postcopy (urgent channel and fault server); with
#    x509 certificates both ways: hybrid postcopy, then precopy back.  Each
#    completes, guest PASS; info migrate says kernel TLS carried every
#    connection, and the kernel's /proc/net/tls_stat counted them.
#  - refused, each with one clear line, while the source's guest runs on and
#    the destination waits for the real source (which then completes): a
#    source without credentials, a wrong PSK, a certificate from another CA,
#    an expired certificate (from the right CA), a capture of an earlier
#    session replayed (tests/tls-proxy.py records the PSK migration's bytes,
#    then sends them again); a TLS source at a destination without
#    credentials.
#  - one byte flipped in flight by a proxy: the destination fails before
#    anything of the guest runs there, saying so; the source's guest runs on.
#  - a file: snapshot with tls-creds set: refused (it would be plaintext).
# (A third connection joining as the urgent channel, with the same key:
# tests/unit/test_tls.c, at the channel's accept.)
. "$(dirname "$0")/../lib.sh"
need_kvm
[ -c /dev/userfaultfd ] || [ -r /proc/sys/vm/unprivileged_userfaultfd ] || skip "no userfaultfd"
command -v certtool >/dev/null || fail "certtool is needed (scripts/install-deps installs gnutls-bin)"

C=$TMP/creds
"$TOP/scripts/tls-creds" "$C/a" >/dev/null && "$TOP/scripts/tls-creds" "$C/b" >/dev/null &&
	"$TOP/scripts/tls-creds" --expired --ca "$C/a/x509" "$C/exp" >/dev/null || fail "cannot make credentials"

tls_stat() { awk -v k="$1" '$1 == k { print $2 }' /proc/net/tls_stat 2>/dev/null; }

# Both sides completed over TLS KIND on N connections, each carried by kernel
# TLS; then (finish_keep=1: the guest goes on, the source quits) or the
# guest is ended on the destination with its verdict: finish KIND N
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
	mon "$SRC_SOCK" quit >/dev/null
	vmm_wait "$SRC_PID" 60 || fail "$tag: the source did not quit"
	if [ "${finish_keep:-0}" = 1 ]; then
		KEEP_DST_SOCK=$DST_SOCK KEEP_DST_PID=$DST_PID
		wait_progress "$TMP/dst$tag.out" || fail "$tag: the guest does not run on the destination"
		return 0
	fi
	guest_stop "$DST_SOCK" "$TMP/src$tag.out" || fail "$tag: cannot stop the guest"
	vmm_wait "$DST_PID" 300 || fail "$tag: the guest did not finish on the destination"
	expect_pass "dst$tag" "$VMM_STATUS"
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

PROXY=$TOP/tests/tls-proxy.py
tx0=$(tls_stat TlsTxSw)

# Ping-pong: the guest, now on the destination, goes on to a new one: the
# destination becomes the source (its tls-creds hold both ends' files).
pingpong() {
	local mode=$1 creds=$2 kind=$3 n=$4 s
	SRC_SOCK=$DST_SOCK SRC_PID=$DST_PID
	cp "$TMP/src$tag.out" "$TMP/src$tag-back.out"	# its ctl= line, for guest_stop
	tag=$tag-back
	uri=tcp:127.0.0.1:$(free_port)
	dst_start "dst$tag" 1 "$uri" --tls-creds "$creds"
	mig_prepare "$SRC_SOCK"
	if [ "$mode" = hybrid ]; then
		mon "$SRC_SOCK" "migrate_set_capability postcopy on" "migrate_set_parameter postcopy-after-rounds 1" \
			>/dev/null || fail "$tag: cannot set postcopy"
	else
		# The guest may dirty faster than the link: at most 3 rounds, then stop and copy.
		mon "$SRC_SOCK" "migrate_set_capability postcopy off" "migrate_set_parameter max-rounds 3" >/dev/null
	fi
	mon "$SRC_SOCK" "migrate $uri" >/dev/null || fail "$tag: cannot start"
	finish "$kind" "$n"
}

# ---- PSK: refused without credentials and with another key; precopy (recorded) and hybrid back ----
tag=psk
uri=tcp:127.0.0.1:$(free_port)
src_start "src$tag" 1 "dirty ws=32M rate=8 secs=900 pattern=random"
dst_start "dst$tag" 1 "$uri" --tls-creds "$C/a/psk"
grep -q 'with TLS, PSK' "$TMP/dst$tag.out" || fail "$tag: the destination does not say it listens with TLS"
refused '""' 'takes TLS only' 'the source has no tls-creds'
refused "$C/b/psk" 'another pre-shared key' 'pre-shared key'
pport=$(free_port)
spawn proxy python3 "$PROXY" proxy "$pport" "${uri##*:}" --record "$TMP/capture"
wait_for "$TMP/proxy.out" 'proxy listening' 60 || fail "$tag: the proxy does not listen"
# A user-space proxy is slower than the guest dirties: at most 2 rounds, then stop and copy.
mon "$SRC_SOCK" "migrate_set_parameter tls-creds $C/a/psk" "migrate_set_parameter max-rounds 2" \
	"migrate tcp:127.0.0.1:$pport" >/dev/null || fail "$tag: cannot start"
finish_keep=1 finish PSK 1
# A capture of that session, sent again to a destination with the same key: refused.
tag=replay
uri=tcp:127.0.0.1:$(free_port)
dst_start "dst$tag" 1 "$uri" --tls-creds "$C/a/psk"
note "$tag: $(python3 "$PROXY" replay "${uri##*:}" "$TMP/capture") ($(stat -c %s "$TMP/capture") bytes captured)"
wait_for "$TMP/dst$tag.out" 'ignored a connection' 60 || fail "$tag: the destination took the replayed capture"
line=$(grep 'ignored a connection' "$TMP/dst$tag.out" | tail -n 1)
note "$tag: destination: $line"
grep -q 'TLS: the handshake failed' <<<"$line" || fail "$tag: the replay is not refused by the handshake"
[ "$(mig_status "$DST_SOCK")" = setup ] || fail "$tag: the destination is not waiting any more"
mon "$DST_SOCK" quit >/dev/null
vmm_wait "$DST_PID" 60 || fail "$tag: the destination did not quit"
tag=psk DST_SOCK=$KEEP_DST_SOCK DST_PID=$KEEP_DST_PID
pingpong hybrid "$C/a/psk" PSK 2

# ---- x509: another CA, an expired certificate; hybrid, and precopy back ----
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
finish_keep=1 finish x509 2
grep -q 'fault server' "$TMP/dst$tag.out" || fail "$tag: no fault server ran"
pingpong precopy "$C/a/x509" x509 1

tx1=$(tls_stat TlsTxSw)
note "/proc/net/tls_stat: TlsTxSw ${tx0:-none} -> ${tx1:-none}"
[ -n "$tx1" ] && [ "$tx1" -gt "${tx0:-0}" ] || fail "the kernel counted no TLS connection (/proc/net/tls_stat)"

# ---- a TLS source at a destination without credentials; one byte flipped in flight ----
tag=flip
src_start "src$tag" 1 "dirty ws=32M rate=8 secs=900 pattern=random"
uri=tcp:127.0.0.1:$(free_port)
dst_start "dst$tag" 1 "$uri"
refused "$C/a/psk" 'does it listen with --tls-creds' 'the peer speaks TLS'
mon "$DST_SOCK" quit >/dev/null
vmm_wait "$DST_PID" 60 || fail "$tag: the plaintext destination did not quit"
uri=tcp:127.0.0.1:$(free_port)
dst_start "dst$tag-2" 1 "$uri" --tls-creds "$C/a/psk"
pport=$(free_port)
# One bit of the source's bytes flipped 1 MiB into the stream (well after the handshake).
spawn proxy python3 "$PROXY" proxy "$pport" "${uri##*:}" --flip $((1 << 20))
wait_for "$SPAWN_OUT" 'proxy listening' 60 || fail "$tag: the proxy does not listen"
flip_out=$SPAWN_OUT
mon "$SRC_SOCK" "migrate tcp:127.0.0.1:$pport" >/dev/null || fail "$tag: cannot start"
vmm_wait "$DST_PID" 300 || fail "$tag: the destination did not end"
[ "$VMM_STATUS" -eq "$VMM_EXIT_INCOMING" ] || fail "$tag: the destination's status is $VMM_STATUS, not failed"
grep -q 'flipped a byte' "$flip_out" || fail "$tag: the proxy flipped nothing"
line=$(grep 'incoming migration failed' "$TMP/dst$tag-2.out")
note "$tag: destination: $line"
grep -q 'failed authentication' <<<"$line" || fail "$tag: the destination does not say a record failed authentication"
grep -q '^dirty:' "$TMP/dst$tag-2.out" && fail "$tag: the guest ran on the destination"
wait_mig "$SRC_SOCK" failed 120 || fail "$tag: the source did not fail"
note "$tag: source: $(mon "$SRC_SOCK" "info migrate" | sed -n 's/^failure reason: //p')"
wait_progress "$TMP/src$tag.out" || fail "$tag: the source's guest does not run on"
# A file: snapshot is plaintext: refused while tls-creds is set, saying so.
out=$(mon "$SRC_SOCK" "migrate file:$TMP/snap" 2>&1) && fail "$tag: a file: migration started with tls-creds set"
note "file: with tls-creds: $out"
grep -q plaintext <<<"$out" && [ ! -e "$TMP/snap" ] || fail "$tag: the refusal does not say a file: is plaintext: $out"
mon "$SRC_SOCK" quit >/dev/null
vmm_wait "$SRC_PID" 60 || fail "$tag: the source did not quit"
echo "PASS"
