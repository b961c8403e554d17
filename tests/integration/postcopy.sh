#!/usr/bin/env bash
# timeout: 900
# Postcopy: the dirty guest (1 and 2 vCPUs, 256 MiB, a working set and dirty
# rate precopy cannot finish) completes with pure postcopy, 2 precopy
# rounds then postcopy, a manual migrate_start_postcopy, and background
# push off; each time the guest's own final verification passes on the
# destination.  The pages add up: requested + pushed + had at the switch =
# every page; each non-zero page crosses once after the switch, zero pages
# never as data.  The fault server is a separate process.
. "$(dirname "$0")/../lib.sh"
need_kvm
[ -c /dev/userfaultfd ] || [ -r /proc/sys/vm/unprivileged_userfaultfd ] || skip "no userfaultfd"
npages=65536

for cpus in 1 2; do
	for mode in pure hybrid manual nobg; do
		tag=$mode$cpus
		uri=tcp:127.0.0.1:$(free_port)
		src_start "src$tag" "$cpus" "dirty ws=64M secs=14 pattern=random seed=$cpus"
		dst_start "dst$tag" "$cpus" "$uri"
		set=("migrate_set_capability postcopy on" "migrate_set_parameter downtime-limit 1")
		case $mode in
		pure) set+=("migrate_set_parameter postcopy-after-rounds 0") ;;
		hybrid) set+=("migrate_set_parameter postcopy-after-rounds 2") ;;
		manual) set+=("migrate_set_parameter postcopy-after-rounds 1000") ;;
		nobg) set+=("migrate_set_parameter postcopy-after-rounds 1" "migrate_set_parameter postcopy-background off") ;;
		esac
		mon "$SRC_SOCK" "${set[@]}" "migrate $uri" >/dev/null || fail "$tag: cannot start"
		if [ "$mode" = manual ]; then
			sleep 2
			mon "$SRC_SOCK" migrate_start_postcopy || fail "$tag: migrate_start_postcopy refused"
		fi
		# The fault server is a child process of the destination while postcopy runs.
		deadline=$((SECONDS + 120))
		while [ $SECONDS -le $deadline ]; do
			st=$(field "$(mon "$DST_SOCK" "info migrate")" "Migration status")
			[ "$st" = postcopy-active ] || [ "$st" = completed ] || [ "$st" = failed ] && break
			sleep 0.1
		done
		[ "$st" = postcopy-active ] || [ "$st" = completed ] || fail "$tag: the destination never switched ($st)"
		if [ "$st" = postcopy-active ]; then
			kids=$(pgrep -P "$DST_PID" | wc -l)
			note "$tag: destination $DST_PID has $kids child process(es) during postcopy"
			[ "$kids" -ge 1 ] || fail "$tag: no fault server process under the destination"
		fi
		if [ "$mode" != nobg ]; then
			deadline=$((SECONDS + 200))
			while [ $SECONDS -le $deadline ]; do
				out=$(mon "$SRC_SOCK" "info migrate")
				st=$(field "$out" "Migration status")
				[ "$st" = completed ] || [ "$st" = failed ] && break
				sleep 0.2
			done
			echo "$out"
			[ "$st" = completed ] || fail "$tag: postcopy did not complete ($st)"
			req=$(field "$out" "pages requested" | cut -d' ' -f1)
			push=$(field "$out" "pages pushed")
			had=$(field "$out" "pages had at switch")
			zero=$(field "$out" "zero pages after switch")
			nz=$(field "$out" "non-zero pages missing at switch")
			[ $((req + push + had)) -eq $npages ] || fail "$tag: requested $req + pushed $push + had $had != $npages"
			[ $((req + push - zero)) -eq "$nz" ] || fail "$tag: $((req + push - zero)) data pages after the switch, $nz non-zero missing"
			[ "$mode" = pure ] && [ "$had" -ne 0 ] && fail "$tag: pure postcopy, yet $had pages before the switch"
			dout=$(mon "$DST_SOCK" "info migrate")
			echo "$dout" | grep -E 'fault|requested|placed|blocked'
			[ "$(field "$dout" "Migration status")" = completed ] || fail "$tag: the destination did not complete"
		fi
		# Without the background push the source serves until the guest is done.
		vmm_wait "$DST_PID" 200 || fail "$tag: the guest did not finish on the destination"
		expect_pass "dst$tag" "$VMM_STATUS"
		mon "$SRC_SOCK" quit >/dev/null
		vmm_wait "$SRC_PID" 30
		note "$tag: postcopy migrated and verified"
	done
done
echo "PASS"
