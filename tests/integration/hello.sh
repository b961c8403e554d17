#!/usr/bin/env bash
# `vmm run guest.img --append hello` prints the guest's greeting and exits 0,
# with 1 and 2 vCPUs.
. "$(dirname "$0")/../lib.sh"
need_kvm
for cpus in 1 2; do
	out=$("$VMM" run "$GUEST" --append hello -c "$cpus" -n 2>&1)
	rc=$?
	echo "$out"
	[ $rc -eq 0 ] || fail "$cpus vCPU(s): exit status $rc, expected 0"
	grep -q '^hello: vmm test guest ready' <<<"$out" || fail "$cpus vCPU(s): no greeting"
done
echo "PASS"
