#!/usr/bin/env bash
# Malformed images are refused with one error line and a non-zero status,
# never a crash: truncated ELF, no multiboot header, segments outside RAM,
# not ELF, ELF64, a missing file.  (No KVM needed: images are checked first.)
. "$(dirname "$0")/../lib.sh"
[ -r "$GUEST" ] || fail "no $GUEST"
img=$TMP/img
refuse() {
	local what=$1 re=$2
	shift 2
	out=$("$VMM" run -n "$@" 2>&1)
	rc=$?
	echo "$what: status $rc: $out"
	[ $rc -ne 0 ] || fail "$what: accepted"
	[ $rc -lt 128 ] || fail "$what: crashed (status $rc)"
	[ "$(grep -c 'error' <<<"$out")" -eq 1 ] || fail "$what: not exactly one error line"
	grep -qE -- "$re" <<<"$out" || fail "$what: message does not match /$re/"
}
head -c 40 "$GUEST" >"$img.short"
refuse "truncated ELF header" 'truncated|not a multiboot' "$img.short"
python3 - "$GUEST" "$img" <<'PY'
import struct, sys
data = bytearray(open(sys.argv[1], 'rb').read())
out = sys.argv[2]
magic = struct.pack('<I', 0x1BADB002)
off = data.find(magic)
assert 0 <= off < 8192, "no multiboot header in the guest"
nohdr = bytearray(data); nohdr[off:off + 4] = b'\0\0\0\0'
open(out + '.nohdr', 'wb').write(nohdr)
bad = bytearray(data); bad[off + 8] ^= 0xff
open(out + '.badsum', 'wb').write(bad)
e_phoff, = struct.unpack_from('<I', data, 28)
e_phnum, = struct.unpack_from('<H', data, 44)
far = bytearray(data)
for i in range(e_phnum):
    ph = e_phoff + 32 * i
    if struct.unpack_from('<I', far, ph)[0] == 1:     # PT_LOAD: move p_paddr to 3 GiB
        struct.pack_into('<I', far, ph + 12, 0xC0000000)
        break
open(out + '.far', 'wb').write(far)
zero = bytearray(data)
for i in range(e_phnum):
    ph = e_phoff + 32 * i
    if struct.unpack_from('<I', zero, ph)[0] == 1:     # over page 0
        struct.pack_into('<I', zero, ph + 12, 0)
        break
open(out + '.page0', 'wb').write(zero)
open(out + '.trunc', 'wb').write(data[:off + 48])   # header kept, segments cut
e64 = bytearray(data); e64[4] = 2
open(out + '.elf64', 'wb').write(e64)
PY
[ $? -eq 0 ] || fail "cannot build the malformed images"
refuse "truncated ELF" 'truncated' "$img.trunc"
refuse "no multiboot header" 'not a multiboot image' "$img.nohdr"
refuse "bad header checksum" 'bad checksum' "$img.badsum"
refuse "segment outside RAM" 'outside guest RAM' "$img.far"
refuse "segment over page 0" 'page 0' "$img.page0"
refuse "ELF64" 'ELF64' "$img.elf64"
refuse "not ELF" 'not a multiboot image|not an ELF' /etc/hostname
refuse "missing file" 'cannot open' "$TMP/does-not-exist"
refuse "bad option" 'bad --mem' -m 12Q "$GUEST"
echo "PASS"
