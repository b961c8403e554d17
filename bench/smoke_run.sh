#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Smoke test of the benchmark itself, so that it cannot rot: bench/run --smoke
# (the floors and one short hybrid migration of the dirty guest, which must
# verify, then the same under qemu-system-x86_64 -accel kvm, which must verify
# too) into a scratch directory, then bench/report.py with its plots; every
# figure the report needs must be there, and every plot a PNG.
# Needs real KVM (make check runs it inside scripts/kvm-sandbox).
# Exit 0 pass, 1 fail, 77 skip.  The limit (500 s) only catches a hang; it is
# multiplied by TEST_SLOWDOWN (tests/lib.sh).
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vmm-bench-smoke.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$(dirname "$0")/../scripts/kvm-sandbox" --probe >/dev/null || { echo "SKIP: no hardware-virtualized /dev/kvm (run through scripts/kvm-sandbox)"; exit 77; }
command -v gnuplot >/dev/null || { echo "FAIL: gnuplot is missing (scripts/install-deps installs it)"; exit 1; }

limit=$(awk -v f="${TEST_SLOWDOWN:-1}" 'BEGIN { x = 500 * f; printf "%d", x == int(x) ? x : int(x) + 1 }')
timeout --kill-after=10 "$limit" "$top/bench/run" --inside --smoke --out "$tmp" 2>&1 | sed 's/^/# /'
rc=${PIPESTATUS[0]}
[ "$rc" -eq 124 ] && { echo "FAIL: bench/run --smoke did not finish within $limit s"; exit 1; }
[ "$rc" -eq 0 ] || { echo "FAIL: bench/run --smoke exited with status $rc"; exit 1; }
"$top/bench/report.py" "$tmp/LATEST.json" --out "$tmp" >"$tmp/report.txt" 2>&1 ||
	{ sed 's/^/# /' "$tmp/report.txt"; echo "FAIL: bench/report.py failed"; exit 1; }

python3 - "$tmp" <<'PY'
import json, os, sys

d = sys.argv[1]
j = json.load(open(os.path.join(d, "LATEST.json")))
bad = []
runs = j.get("runs") or []
if len(runs) != 1 or not runs[0].get("ok"):
    bad.append(f"want one verified run, have {[(r.get('name'), r.get('error')) for r in runs]}")
else:
    r = runs[0]
    f = r["figures"]
    for k in ("total_ms", "switchover_ms", "bytes", "pages_precopy", "pages_requested", "pages_pushed",
              "pages_discarded", "vcpu_blocked_ms", "rate_before_mbps", "rate_during_mbps",
              "rate_after_mbps", "precopy_bytes_per_s", "push_bytes_per_s", "bytes_after_switch",
              "nonzero_at_switch", "paused_ms"):
        if not isinstance(f.get(k), (int, float)):
            bad.append(f"figures.{k} = {f.get(k)!r}")
    for k in ("throughput_vs_tcp", "precopy_vs_tcp", "push_vs_floor", "bytes_after_switch_vs_nonzero"):
        if not isinstance(r["ratios"].get(k), (int, float)):
            bad.append(f"ratios.{k} = {r['ratios'].get(k)!r}")
    if len(r.get("timeline") or []) < 8:
        bad.append(f"timeline has {len(r.get('timeline') or [])} points")
    if not r["events"].get("switch") or not r["events"].get("end"):
        bad.append(f"events = {r['events']}")
    # The same run under QEMU, beside it, verified by the same guest.
    q = r.get("qemu") or {}
    if not q.get("ok"):
        bad.append(f"the QEMU run: {q.get('error') or 'missing'}")
    else:
        g = q["figures"]
        # paused_ms: QEMU's STOP and RESUME events, read over QMP.
        for k in ("total_ms", "bytes", "throughput_bytes_per_s", "paused_ms"):
            if not isinstance(g.get(k), (int, float)):
                bad.append(f"qemu.figures.{k} = {g.get(k)!r}")
        if not isinstance(g.get("switchover_ms" if g.get("postcopy") else "downtime_ms"), (int, float)):
            bad.append(f"qemu.figures: no downtime in {g}")
    # Every page is accounted for: requested (less those already pushed) + pushed + had at the switch.
    s = r["src"]
    if (s["pages_requested"] - s["pages_resent"] + s["pages_pushed"] + s["pages_had_at_switch"]
            != s["pages_total"]):
        bad.append("requested + pushed + had != all pages")
md = open(os.path.join(d, "LATEST.md")).read()
for word in ("Floors", "Targets", "Runs", "Ratios", "vmm and QEMU, side by side"):
    if word not in md:
        bad.append(f"LATEST.md has no {word} section")
for png in ("total_time.png", "downtime.png", "fault_latency_cdf.png", "timeline.png"):
    p = os.path.join(d, png)
    if not os.path.exists(p) or open(p, "rb").read(8) != b"\x89PNG\r\n\x1a\n":
        bad.append(f"{png} is not a PNG")
if bad:
    print("FAIL: " + "; ".join(bad))
    sys.exit(1)
f = runs[0]["figures"]
g = runs[0]["qemu"]["figures"]
print(f"ok: hybrid run verified; total {f['total_ms']} ms, switchover {f['switchover_ms']} ms "
      f"(paused {f['paused_ms']} ms on one clock, QEMU {g['paused_ms']} ms), "
      f"fault p50 {f.get('fault_p50_us')} us; under QEMU verified too: total {g['total_ms']} ms, "
      f"{'switchover' if g.get('postcopy') else 'downtime (converged)'} "
      f"{g['switchover_ms'] if g.get('postcopy') else g['downtime_ms']} ms; report and plots made")
PY
