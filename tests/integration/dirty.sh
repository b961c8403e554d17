#!/usr/bin/env bash
# timeout: 400
# The dirty workload runs for a set time with 1 and 2 vCPUs, verifies its
# whole working set and exits 0 (the guest's own verdict).
. "$(dirname "$0")/../lib.sh"
need_kvm
for cpus in 1 2; do
	for pattern in seq random hotcold; do
		args="dirty ws=32M secs=4 pattern=$pattern seed=$cpus"
		[ "$pattern" = hotcold ] && args="$args rate=20"
		out=$("$VMM" run "$GUEST" -m 128M -c "$cpus" -n --append "$args" 2>&1)
		rc=$?
		echo "$out" | tail -n 8
		[ $rc -eq 0 ] || fail "$cpus vCPU(s), $pattern: exit status $rc"
		grep -q '^dirty: PASS' <<<"$out" || fail "$cpus vCPU(s), $pattern: no PASS verdict"
		grep -q 'cpus='"$cpus" <<<"$out" || fail "$cpus vCPU(s): the guest did not use $cpus CPUs"
		grep -qE '^dirty: t=[0-9]+ ' <<<"$out" || fail "$cpus vCPU(s): no progress lines"
	done
done
echo "PASS"
