#!/usr/bin/env bash
# timeout: 900
# The migrations under ASan and UBSan: tests/integration/verify.sh (a precopy
# migration, a precopy one that fails, a postcopy one whose fault server
# fails) with build/vmm-asan on both sides, and tests/integration/postcopy_states.sh
# (a hybrid migration to its end).  Any sanitizer report ends the vmm that
# made it with a non-zero status, and so fails the test it ran in.
. "$(dirname "$0")/../lib.sh"
need_kvm
[ -x "$TOP/build/vmm-asan" ] || skip "no build/vmm-asan (make asan)"
export VMM=$TOP/build/vmm-asan
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for t in verify.sh postcopy_states.sh; do
	"$TOP/tests/integration/$t" >"$TMP/$t.log" 2>&1
	rc=$?
	if [ $rc -ne 0 ] || grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TMP/$t.log"; then
		cat "$TMP/$t.log"
		fail "$t under ASan+UBSan: status $rc"
	fi
	note "$t passed with vmm-asan on both sides"
done
echo PASS
