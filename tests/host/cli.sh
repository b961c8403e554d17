#!/usr/bin/env bash
# The command line as a QEMU user meets it (issue 16: points 3, 4, 5, 5b, 7,
# 8, 11), one section per point.  No KVM needed: everything here is decided
# before vmm opens /dev/kvm, or /dev/kvm is hidden in a private mount
# namespace (as root; those checks are skipped, with a note, otherwise).
. "$(dirname "$0")/../lib.sh"
[ -r "$GUEST" ] || fail "no $GUEST"

# Run vmm: out= its stdout+stderr, rc= its status.
try() {
	out=$("$VMM" "$@" 2>&1 </dev/null)
	rc=$?
}
# The last try: status WANT, exactly one error line, the text matching RE.
expect() {
	local what=$1 want=$2 re=$3
	[ "$rc" -eq "$want" ] || fail "$what: status $rc, expected $want: $out"
	[ "$(grep -c 'error' <<<"$out")" -eq 1 ] || fail "$what: not exactly one error line: $out"
	grep -qE -- "$re" <<<"$out" || fail "$what: no /$re/ in: $out"
	note "$what: $rc: $(grep error <<<"$out")"
}
# Hiding /dev/kvm needs a mount namespace of our own: root's.
CAN_HIDE=0
[ "$(id -u)" -eq 0 ] && unshare -m true 2>/dev/null && CAN_HIDE=1
# Run vmm with /dev/kvm missing (an empty /dev), and /proc/cpuinfo replaced
# by FILE if one is given: nokvm [--cpuinfo FILE] ARGS...
nokvm() {
	local cpuinfo=
	[ "$1" = --cpuinfo ] && { cpuinfo=$2; shift 2; }
	out=$(unshare -m bash -c 'mount -t tmpfs none /dev || exit 99
		[ -z "$1" ] || mount --bind "$1" /proc/cpuinfo || exit 99
		shift; exec "$@"' nokvm "$cpuinfo" "$VMM" "$@" 2>&1 </dev/null)
	rc=$?
	[ $rc -ne 99 ] || fail "cannot hide /dev/kvm: $out"
}

echo "== point 3: monitor addresses are [unix:]PATH everywhere"
# A stand-in monitor: the prompt, then one reply per line (a completed
# migration for `info migrate`), as vmm/monitor.h's protocol says.
sock=$TMP/mon.sock
spawn fake-monitor python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(4)
print("ready", flush=True)
while True:
    c, _ = s.accept(); f = c.makefile("rwb", buffering=0); f.write(b"(vmm) ")
    for line in f:
        cmd = line.decode().strip()
        reply = "Migration status: completed\n" if cmd == "info migrate" else "did: %s\n" % cmd
        f.write((reply + "(vmm) ").encode())
    c.close()' "$sock"
wait_for "$SPAWN_OUT" ready 30 || fail "the stand-in monitor did not start"
for addr in "$sock" "unix:$sock"; do
	try monitor "$addr" "info status"
	[ $rc -eq 0 ] && grep -q 'did: info status' <<<"$out" || fail "vmm monitor $addr: $rc: $out"
	try migrate -q --monitor "$addr" tcp:127.0.0.1:1
	[ $rc -eq 0 ] && grep -q 'completed' <<<"$out" || fail "vmm migrate --monitor $addr: $rc: $out"
	VMM_MONITOR=$addr try migrate -q tcp:127.0.0.1:1
	[ $rc -eq 0 ] || fail "VMM_MONITOR=$addr vmm migrate: $rc: $out"
	# vmm run takes both too: the option passes, and the (missing) image is what fails.
	try run -n --monitor "$addr" "$TMP/none.img"
	expect "run --monitor $addr" "$VMM_EXIT_SETUP" "cannot open $TMP/none.img"
done
note "vmm monitor, vmm migrate --monitor, VMM_MONITOR and vmm run --monitor take PATH and unix:PATH"
try run -n --monitor tcp:127.0.0.1:1 "$TMP/none.img"
expect "run --monitor tcp:" "$VMM_EXIT_USAGE" "bad monitor address"
try monitor "unix:$sock,mode=0660" "info status"
expect "monitor with mode=" 2 "mode= is for the side that listens"

echo "== point 4: -m N is MiB; too much RAM is refused before KVM"
for m in 256 256M 256m 256MiB 0.25G; do
	try run -v -n -m "$m" "$TMP/none.img"
	if [ "$m" = 0.25G ]; then
		expect "-m $m" "$VMM_EXIT_USAGE" "bad --mem"
		continue
	fi
	grep -q 'debug: 256 MiB of RAM' <<<"$out" || fail "-m $m is not 256 MiB: $out"
done
try run -v -n -m 3 "$TMP/none.img"
grep -q 'debug: 3 MiB of RAM' <<<"$out" || fail "-m 3 is not 3 MiB: $out"
# The refusals name a missing image: one accepted by mistake ends there, never boots.
try run -n -m 1 "$TMP/none.img"
expect "-m 1 (1 MiB)" "$VMM_EXIT_USAGE" "bad --mem '1': a size from 2M"
for m in 2T 1025G 2000000; do
	try run -n -m "$m" "$TMP/none.img"
	expect "-m $m" "$VMM_EXIT_USAGE" "bad --mem '$m': (at most|a size from 2M to) [0-9]+G"
	grep -q KVM <<<"$out" && fail "-m $m reached KVM: $out"
done
# 1T: refused where the host's physical address width cannot hold 1T plus the
# 1 GiB PCI hole (40 bits or fewer), else accepted; never a KVM error.
try run -v -n -m 1T "$TMP/none.img"
if [ $rc -eq "$VMM_EXIT_USAGE" ]; then
	expect "-m 1T" "$VMM_EXIT_USAGE" "at most [0-9]+G on this host \(its CPU has [0-9]+ physical address bits"
else
	grep -q 'debug: 1048576 MiB of RAM' <<<"$out" || fail "-m 1T: $rc: $out"
	note "-m 1T: accepted here ($(grep -m1 'address sizes' /proc/cpuinfo))"
fi
"$VMM" run --help | grep -qE -- "-m, --mem SIZE .*256 \(MiB" || fail "run --help does not say -m N is MiB"
"$VMM" run --help | grep -qE "2M to [0-9]+G here" || fail "run --help does not give the maximum"
# --memory-backend: ram or memfd, nothing else; memfd passes (the missing image fails).
try run -n --memory-backend hugetlbfs "$TMP/none.img"
expect "--memory-backend hugetlbfs" "$VMM_EXIT_USAGE" "bad --memory-backend 'hugetlbfs': ram or memfd"
try run -n --memory-backend memfd "$TMP/none.img"
expect "--memory-backend memfd" "$VMM_EXIT_SETUP" "cannot open $TMP/none.img"
"$VMM" run --help | grep -q -- "--memory-backend TYPE" || fail "run --help does not list --memory-backend"

echo "== point 5: vmm's own exit statuses are even and apart from the guest's"
for s in "$VMM_EXIT_USAGE" "$VMM_EXIT_SETUP" "$VMM_EXIT_INCOMING" "$VMM_EXIT_VM_ERROR"; do
	[ $((s % 2)) -eq 0 ] && [ "$s" -ne 0 ] || fail "vmm status $s is odd or 0: a qemu-mode guest could give it"
	case $s in 123|124|125|126) fail "vmm status $s is one of the test guest's or the shell's" ;; esac
	"$VMM" run --help | grep -qE "^  $s +[a-z]" || fail "run --help does not list status $s"
done
try run -n "$TMP/none.img"
expect "setup failure (no image file)" "$VMM_EXIT_SETUP" "cannot open"
try run -n --debug-exit=qemu "$TMP/none.img"
expect "setup failure with --debug-exit=qemu" "$VMM_EXIT_SETUP" "cannot open"
[ $((rc & 1)) -eq 0 ] || fail "with --debug-exit=qemu a setup failure is odd ($rc): a QEMU suite reads a guest verdict"
try run -n --debug-exit=qemu -m 12Q "$TMP/none.img"
expect "bad usage with --debug-exit=qemu" "$VMM_EXIT_USAGE" "bad --mem"
if [ $CAN_HIDE -eq 1 ]; then
	nokvm run -n --debug-exit=qemu "$GUEST"
	expect "no KVM with --debug-exit=qemu" "$VMM_EXIT_SETUP" "/dev/kvm"
fi
grep -q "VMM_EXIT_SETUP=$(sed -n 's/^#define VM_STATUS_SETUP[[:space:]]*\([0-9]*\).*/\1/p' "$TOP/vmm/vm.h")\$" "$TOP/tests/lib.sh" ||
	fail "tests/lib.sh and vmm/vm.h disagree on VM_STATUS_SETUP"
grep -q "VMM_EXIT_VM_ERROR=$(sed -n 's/^#define VM_STATUS_ERROR[[:space:]]*\([0-9]*\).*/\1/p' "$TOP/vmm/vm.h")\$" "$TOP/tests/lib.sh" ||
	fail "tests/lib.sh and vmm/vm.h disagree on VM_STATUS_ERROR"
grep -q "VMM_EXIT_INCOMING=$(sed -n 's/^#define VM_STATUS_INCOMING[[:space:]]*\([0-9]*\).*/\1/p' "$TOP/vmm/vm.h")\$" "$TOP/tests/lib.sh" ||
	fail "tests/lib.sh and vmm/vm.h disagree on VM_STATUS_INCOMING"

echo "== point 5b: an image over 0x9000 gets its boot information elsewhere"
# A multiboot ELF whose one segment loads at 0x8000-0xa86c (as in the issue):
# at its entry, EAX must hold the multiboot magic; it writes 42 to the
# debug-exit port if so, 7 if not.
python3 - "$TMP/low.elf" <<'PY' || fail "cannot build the low image"
import struct, sys
code = bytes([0x3d, 0x02, 0xb0, 0xad, 0x2b,      # cmp eax, 0x2badb002
              0x75, 0x05,                         # jne bad
              0xb0, 42, 0xe6, 0xf4, 0xf4,         # mov al, 42; out 0xf4, al; hlt
              0xb0, 7, 0xe6, 0xf4, 0xf4])         # bad: mov al, 7; out 0xf4, al; hlt
magic, flags = 0x1BADB002, 0
seg = struct.pack('<III', magic, flags, (-(magic + flags)) & 0xffffffff).ljust(0x20, b'\0') + code
paddr, memsz, off = 0x8000, 0xa86c - 0x8000, 0x1000
ehdr = struct.pack('<16sHHIIIIIHHHHHH', b'\x7fELF\x01\x01\x01' + b'\0' * 9, 2, 3, 1,
                   paddr + 0x20, 52, 0, 0, 52, 32, 1, 0, 0, 0)
phdr = struct.pack('<IIIIIIII', 1, off, paddr, paddr, len(seg), memsz, 7, 0x1000)
open(sys.argv[1], 'wb').write((ehdr + phdr).ljust(off, b'\0') + seg)
PY
if [ $CAN_HIDE -eq 1 ]; then
	nokvm run -v -n "$TMP/low.elf"
	expect "the low image (no KVM)" "$VMM_EXIT_SETUP" "/dev/kvm does not exist"
else
	try run -v -n "$TMP/low.elf"
fi
grep -q 'overlaps' <<<"$out" && fail "the low image is refused: $out"
info=$(sed -n 's/.*entry 0x8020, boot information at \(0x[0-9a-f]*\),.*/\1/p' <<<"$out")
[ -n "$info" ] || fail "the low image was not loaded: $out"
[ $((info + 88)) -le $((0x8000)) ] || [ $((info)) -ge $((0xa86c)) ] ||
	fail "the boot information at $info overlaps the image at 0x8000-0xa86c"
note "the low image loads; its boot information is at $info"
# With a KVM that opens, boot it for real (a few instructions): the guest
# sees the magic, and vmm exits with its value.
if [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	try run -n "$TMP/low.elf"
	if grep -q 'error' <<<"$out"; then
		note "the real boot was not possible here: $out"
	else
		[ $rc -eq 42 ] || fail "the low image booted but exited $rc (7: no multiboot magic): $out"
		note "the low image booted on KVM and exited 42"
	fi
fi

echo "== point 7: vmm migrate --help lists every setting; no -m there"
names=$(sed -n 's/^[[:space:]]*[PC]("\([a-z0-9-]*\)".*/\1/p' "$TOP/migrate/migration.c")
[ "$(wc -w <<<"$names")" -ge 10 ] || fail "cannot read the settings table: $names"
help=$("$VMM" migrate --help) || fail "vmm migrate --help failed"
for n in $names; do
	grep -qE "^  $n=" <<<"$help" || fail "vmm migrate --help does not list $n"
done
note "vmm migrate --help lists all $(wc -w <<<"$names") settings"
grep -q -- '--monitor' <<<"$help" || fail "vmm migrate --help lacks --monitor"
grep -qE -- '-m, --monitor' <<<"$help" && fail "vmm migrate --help still has -m"
try migrate -m "$sock" tcp:127.0.0.1:1
expect "migrate -m" "$VMM_EXIT_USAGE" "-m is --mem in 'vmm run'"

echo "== point 8: without /dev/kvm, the bare-metal fix comes first"
if [ $CAN_HIDE -eq 1 ]; then
	# The message must name the fix before the sandbox: its position in the line.
	before() { local a=${out%%"$1"*}; local b=${out%%"$2"*}; [ ${#a} -lt ${#b} ]; }
	printf 'processor\t: 0\nflags\t\t: fpu lm vmx sse\n' >"$TMP/cpuinfo.intel"
	printf 'processor\t: 0\nflags\t\t: fpu lm svm sse\n' >"$TMP/cpuinfo.amd"
	printf 'processor\t: 0\nflags\t\t: fpu lm sse\n' >"$TMP/cpuinfo.none"
	for cpu in intel:kvm_intel amd:kvm_amd; do
		f=$TMP/cpuinfo.${cpu%%:*} mod=${cpu#*:}
		if [ -d "/sys/module/$mod" ]; then
			nokvm --cpuinfo "$f" run -n "$GUEST"
			expect "no /dev/kvm, $mod loaded" "$VMM_EXIT_SETUP" "mknod /dev/kvm"
		else
			nokvm --cpuinfo "$f" run -n "$GUEST"
			expect "no /dev/kvm, ${cpu%%:*} CPU" "$VMM_EXIT_SETUP" "modprobe $mod"
			before "modprobe $mod" "kvm-sandbox" || fail "the sandbox comes before modprobe: $out"
			grep -q BIOS <<<"$out" || fail "no word of the BIOS setting: $out"
		fi
	done
	nokvm --cpuinfo "$TMP/cpuinfo.none" run -n "$GUEST"
	expect "no /dev/kvm, no vmx/svm" "$VMM_EXIT_SETUP" "enable VT-x/AMD-V in the BIOS"
	before "BIOS" "kvm-sandbox" || fail "the sandbox comes before the BIOS: $out"
else
	note "point 8's missing /dev/kvm is not checked: hiding it needs root"
fi
# EACCES: a user who may not open /dev/kvm is told about the group.
if [ -c /dev/kvm ] && [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null &&
   [ $(($(stat -c %a /dev/kvm | sed 's/^/0/') & 06)) -eq 0 ] &&
   setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$VMM" -a -r "$GUEST" 2>/dev/null; then
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$VMM" run -n "$GUEST" 2>&1 </dev/null)
	rc=$?
	expect "/dev/kvm not permitted" "$VMM_EXIT_SETUP" "permission denied on /dev/kvm .*(group|usermod)"
else
	note "point 8's EACCES is not checked: needs root, setpriv and a /dev/kvm closed to others"
fi

echo "== point 11: bad usage is one line, a hint and status 2"
try run
expect "run without IMAGE" "$VMM_EXIT_USAGE" "no IMAGE given"
[ "$(wc -l <<<"$out")" -eq 2 ] || fail "run without IMAGE: not one error line and one hint: $out"
grep -q "try 'vmm run --help'" <<<"$out" || fail "run without IMAGE: no hint: $out"
try run --frob "$TMP/none.img"
expect "run --frob" "$VMM_EXIT_USAGE" "unknown option '--frob'"
try run "$TMP/none.img" -m
expect "run -m (no value)" "$VMM_EXIT_USAGE" "option '-m' needs a value"
try run --initrd "$TMP/none.cpio" "$TMP/none.img"
expect "run --initrd without a kernel" "$VMM_EXIT_USAGE" "--initrd is for a Linux kernel"
try run --kernel "$TMP/none.bz" "$TMP/none.img"
expect "run --kernel and IMAGE" "$VMM_EXIT_USAGE" "--kernel and an IMAGE"
try run --kernel "$TMP/none.bz" --module "$TMP/none.mod"
expect "run --kernel --module" "$VMM_EXIT_USAGE" "Linux takes --initrd"
# A kernel that is not a bzImage: one line naming it, before any KVM setup.
head -c 4096 /dev/zero >"$TMP/zero.bz"
try run -n --kernel "$TMP/zero.bz"
expect "run --kernel of zeros" "$VMM_EXIT_SETUP" "zero.bz: not a Linux bzImage"
try migrate --frob tcp:127.0.0.1:1
expect "migrate --frob" "$VMM_EXIT_USAGE" "unknown option '--frob'"
try migrate --monitor "$sock"
expect "migrate without URI" "$VMM_EXIT_USAGE" "no URI given"
try monitor
expect "monitor without PATH" "$VMM_EXIT_USAGE" "no monitor socket given"
try monitor --frob
expect "monitor --frob" "$VMM_EXIT_USAGE" "unknown option '--frob'"
try dump-state
expect "dump-state without SNAPSHOT" "$VMM_EXIT_USAGE" "no SNAPSHOT given"
try help frob
expect "help frob" "$VMM_EXIT_USAGE" "no command 'frob'"
try frob
expect "vmm frob" "$VMM_EXIT_USAGE" "unknown command 'frob'"
for uri in frob:x tcp:nohost "unix:"; do
	if [ $CAN_HIDE -eq 1 ]; then
		nokvm run -n --incoming "$uri"
	else
		try run -n --incoming "$uri"
	fi
	expect "--incoming $uri" "$VMM_EXIT_USAGE" "bad --incoming"
	grep -q kvm <<<"$out" && fail "--incoming $uri: the KVM check came first: $out"
done
for c in run migrate monitor dump-state help version; do
	h=$("$VMM" "$c" --help 2>&1) || fail "vmm $c --help: status $?"
	grep -qE "^usage: vmm ($c|COMMAND)" <<<"$h" || fail "vmm $c --help: no usage line: $h"
	h2=$("$VMM" help "$c" 2>&1) || fail "vmm help $c: status $?"
	[ "$h" = "$h2" ] || fail "vmm help $c differs from vmm $c --help"
done
demo=$("$TOP/scripts/demo" --help) || fail "scripts/demo --help failed"
for o in $(sed -n 's/^[[:space:]]*\(--[a-z]*\)).*/\1/p' "$TOP/scripts/demo"); do
	grep -q -- "$o" <<<"$demo" || fail "scripts/demo --help does not list $o"
done
echo "PASS"
