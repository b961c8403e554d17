#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bench/report.py on the results kept in the repository (issue 16, point
# 13), into a temporary directory: the plots' series never mix working sets
# (the 64 MiB runs are a series of their own, its legend says 64 MiB), and
# LATEST.md names the commit measured and the code it was made beside,
# saying when that code is newer.  The same results with QEMU twins put
# beside some runs: the side-by-side section shows each pair and its ratio,
# a failed QEMU run as an error (never a figure), and the targets against
# QEMU are judged per mode; the data path's targets show the baseline
# (bench/results/BASELINE.json) beside the run.
. "$(dirname "$0")/../lib.sh"
command -v python3 >/dev/null || skip "no python3"
json=$TOP/bench/results/LATEST.json
[ -f "$json" ] || skip "no bench/results/LATEST.json"
out=$TMP/report
# The plots only if gnuplot is here; the series are checked from the generator itself.
plots=--no-plots
command -v gnuplot >/dev/null && plots=
python3 "$TOP/bench/report.py" "$json" --out "$out" $plots >"$TMP/report.out" 2>&1 ||
	{ cat "$TMP/report.out"; fail "bench/report.py failed"; }
[ -s "$out/LATEST.md" ] || fail "no LATEST.md written"
[ -z "$plots" ] && { [ -s "$out/total_time.png" ] || fail "no total_time.png drawn"; }

commit=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["commit"])' "$json")
grep -q "^- \*\*Measured at commit:\*\* .*$commit" "$out/LATEST.md" ||
	fail "LATEST.md does not name the commit measured ($commit)"
grep -q '^- \*\*Report made at:\*\* ' "$out/LATEST.md" || fail "LATEST.md does not say where it was made"
# The checkout's HEAD is newer than the results (they were measured before this test existed).
# Newer only where the code changed: results and docs committed after the run are not.
if git -C "$TOP" merge-base --is-ancestor "$commit" HEAD 2>/dev/null && [ "$(git -C "$TOP" rev-parse --short HEAD)" != "$commit" ]; then
	if [ -n "$(git -C "$TOP" diff --name-only "$commit" -- migrate vmm guest bench ':(exclude)bench/results')" ]; then
		grep -q 'newer than the code measured' "$out/LATEST.md" ||
			fail "LATEST.md does not say the code beside it is newer than $commit"
	else
		grep -q ': the code measured (' "$out/LATEST.md" ||
			fail "LATEST.md does not say that only results came after $commit"
	fi
fi

python3 - "$TOP/bench/report.py" "$json" <<'PY' || fail "the plots' series mix working sets"
import importlib.util, sys
spec = importlib.util.spec_from_file_location("report", sys.argv[1])
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)
data = report.load(sys.argv[2])
series = report.rate_series(data, lambda r: report.fig(r, "total_ms"))
wss = {}
for (mode, pattern, ws), pts in series.items():
    wss.setdefault((mode, pattern), set()).add(ws)
    title = report.series_title(mode, pattern, ws)
    assert f"ws {ws:g} MiB" in title, title
# Every plotted run's working set is its series' one.
for run in report.plot_runs(data):
    if report.is_idle(run):
        continue
    key = (report.mode_of(run), report.pattern_of(run), report.ws_of(run))
    if report.fig(run, "rate_before_mbps") and report.fig(run, "total_ms"):
        assert key in series, key
assert any(len(v) > 1 for v in wss.values()), "the results have no mode with two working sets"
print("series:", "; ".join(report.series_title(*k) for k in series))
PY
# QEMU twins: the first precopy run's at half its total time (vmm/QEMU 2), the
# first hybrid run's failed.
python3 - "$json" "$TMP/q.json" "$TMP/noq.json" <<'PY' || fail "cannot make the results with QEMU twins"
import json, sys
d = json.load(open(sys.argv[1]))
# Whatever QEMU runs the kept results have, none in noq.json, two known ones in q.json.
d.pop("qemu", None)
# The variant runs are made below, with known figures; none in noq.json.
d["runs"] = [r for r in d["runs"] if r["mode"] not in ("postcopy-memfd", "precopy-multifd")]
for r in d["runs"]:
    r.pop("qemu", None)
# noq.json also stands for results made before the switchover was measured in phases.
phases = ("switch_sync_us", "switch_send_us", "switch_drop_us")
kept = {id(r): {k: r.get("figures", {}).pop(k, None) for k in phases} for r in d["runs"]}
json.dump(d, open(sys.argv[3], "w"))
for r in d["runs"]:
    r.get("figures", {}).update({k: v for k, v in kept[id(r)].items() if v is not None})
d["qemu"] = dict(version="7.2", accel="kvm")
# The placement floors: minor faults twice as fast at 4 KiB, none at 64 KiB (a kernel without them).
d["floors"].update(place_copy_4k_bytes_per_s=1e9, place_minor_4k_bytes_per_s=2e9,
                   place_copy_64k_bytes_per_s=1e9, place_minor_64k_bytes_per_s=0)
done = set()
for r in d["runs"]:
    if not r.get("ok") or r["mode"] in done or r["mode"] not in ("precopy", "hybrid"):
        continue
    done.add(r["mode"])
    if r["mode"] == "hybrid":
        r["qemu"] = dict(ok=False, error="the QEMU migration failed")
    else:
        f = r["figures"]
        # Paused on one clock: vmm 30 ms, QEMU 60 ms (vmm/QEMU 0.5).
        f["paused_ms"] = 30
        r["qemu"] = dict(ok=True, figures=dict(total_ms=f["total_ms"] / 2, downtime_ms=f["downtime_ms"],
                                               paused_ms=60, bytes=f["bytes"], throughput_bytes_per_s=1e6))
# Every hybrid run's switchover in phases: 1, 2, 4 ms and load and start 6 ms; every run with
# the push (hybrid, postcopy): its threads' CPU over a 2 s postcopy phase.
for r in d["runs"]:
    if r.get("ok") and r["mode"] == "hybrid":
        r["figures"].update(switch_sync_us=1000, switch_send_us=2000, switch_drop_us=4000, load_start_ms=6)
    if r.get("ok") and r["mode"] in ("hybrid", "postcopy"):
        r["figures"].update(postcopy_ms=2000, push_cpu_ms=1000, return_path_cpu_ms=200, faultsrv_cpu_ms=1500)
# A postcopy-memfd twin of every postcopy run: its push twice as fast, its fault p50 half, its
# total time 0.8 of the copy run's.
import copy
for r in [r for r in d["runs"] if r.get("ok") and r["mode"] == "postcopy" and "@" not in r["name"]]:
    m = copy.deepcopy(r)
    m["mode"] = "postcopy-memfd"
    m["name"] = m["name"].replace("/postcopy", "/postcopy-memfd")
    m.pop("ratios", None)
    f = m["figures"]
    f.update(push_bytes_per_s=r["figures"]["push_bytes_per_s"] * 2, fault_p50_us=r["figures"]["fault_p50_us"] / 2,
             total_ms=r["figures"]["total_ms"] * 0.8, placement="continue")
    d["runs"].append(m)
# A precopy-multifd twin of every precopy run: its stream 1.5 times as fast, its downtime the same.
for r in [r for r in d["runs"] if r.get("ok") and r["mode"] == "precopy" and "@" not in r["name"]]:
    m = copy.deepcopy(r)
    m["mode"] = "precopy-multifd"
    m["name"] = m["name"].replace("/precopy", "/precopy-multifd")
    m.pop("ratios", None)
    m.pop("qemu", None)
    m["figures"]["precopy_bytes_per_s"] = r["figures"]["precopy_bytes_per_s"] * 1.5
    d["runs"].append(m)
# Every precopy run's rounds: 1000 ms, its thread on a CPU 900 ms, syncs 100 ms, the receiver 500 ms.
for r in d["runs"]:
    if r.get("ok") and r["mode"] == "precopy":
        r["figures"].update(precopy_ms=1000, precopy_cpu_ms=900, precopy_sync_ms=100, receive_cpu_ms=500)
json.dump(d, open(sys.argv[2], "w"))
PY
python3 "$TOP/bench/report.py" "$TMP/q.json" --out "$TMP/q" --no-plots >"$TMP/q.out" 2>&1 ||
	{ cat "$TMP/q.out"; fail "bench/report.py failed on results with QEMU runs"; }
md=$TMP/q/LATEST.md
sed -n '/^## vmm and QEMU/,/^## /p' "$md"
sed -n '/^## Data-path targets/,/^## /p' "$md"
grep -qE '^\| [^|]+ \| precopy \| PASS \| PASS \| [0-9.]+ \| [0-9.]+ \| 2\.00× \| [0-9.]+ \| [0-9.]+ \| 1\.00× ' "$md" ||
	fail "the side-by-side row of the precopy run does not show vmm/QEMU 2.00× and 1.00×"
grep -qE '^\| [^|]+ \| hybrid \| PASS \| \*\*ERROR\*\*: the QEMU migration failed \| [0-9.]+ \| – ' "$md" ||
	fail "the failed QEMU run is not shown as an error without figures"
grep -qE '^\| Total time against QEMU \| .* \| precopy 2\.00× \(1\) \| \*\*missed\*\* ' "$md" ||
	fail "the target 'Total time against QEMU' is not judged missed at 2.00×"
grep -qE '^\| Guest paused against QEMU \| .* \| precopy 0\.500× \(1\) \| met ' "$md" ||
	fail "the target 'Guest paused against QEMU' is not judged met at 0.50×"
grep -qE '^\| [^|]+ \| precopy \| PASS \| PASS \| ([^|]+\|){6} 30\.0 \| 60\.0 \| 0\.500× ' "$md" ||
	fail "the side-by-side row of the precopy run does not show the pause on one clock"
grep -qF '| a page that arrived, placed, 4 KiB | copy 1.00 GB/s, memfd + UFFDIO_CONTINUE 2.00 GB/s (2.00×) |' "$md" ||
	fail "the floors do not show the placement by copy and by minor fault side by side"
grep -qF '| a page that arrived, placed, 64 KiB | copy 1.00 GB/s, memfd + UFFDIO_CONTINUE n/a |' "$md" ||
	fail "a kernel without minor faults does not read n/a in the floors"
grep -qE '^\| hybrid \| [0-9]+ \| [0-9.]+ \| 1\.00 \| 2\.00 \| 4\.00 \| 6\.00 \|$' "$md" ||
	fail "no switchover phases for the hybrid runs"
grep -qE '^\| precopy \| [0-9]+ \| [0-9.]+ \| 90 % \| 10 % \| 50 % \|$' "$md" ||
	fail "no CPU shares of the precopy stream's threads"
grep -qE '^\| hybrid \| [0-9]+ \| [0-9.]+ \| 50 % \| 10 % \| 75 % \|$' "$md" ||
	fail "no CPU shares of the push's threads and the fault server"
# A missed target names what bounds it, from the same runs' figures.
grep -qE '^\| Precopy RAM stream \| .* \| \*\*missed\*\* \| of the phase.s wall time \(medians\): source thread on a CPU 90 %, receiver 50 %, dirty-log syncs 10 % \|$' "$md" ||
	fail "the missed precopy target does not say what bounds it"
grep -qE '^\| Background push \| .* \| \*\*missed\*\* \| .*push thread on a CPU 50 %, return path 10 %, fault server 75 % \|$' "$md" ||
	fail "the missed push target does not say what bounds it"
# Placement by memfd against copy: each pair, and the medians of the ratios.
sed -n '/^## Placement: memfd/,/^## /p' "$md"
grep -qE '^Pure postcopy onto a destination whose guest RAM is a memfd .* Push / floor 2\.00× \(better\); Fault p50 / floor 0\.500× \(better\); Fault p99 / floor 1\.00× \(the same\); Total time 0\.800× \(better\)' "$md" ||
	fail "the memfd placement section does not show the medians of memfd / copy"
grep -qE '^\| ws[^|]+ \| [0-9.]+ → [0-9.]+ \(2\.00×\) \| [0-9.]+ → [0-9.]+ \(0\.500×\) \| ' "$md" ||
	fail "the memfd placement section has no row per workload"
sed -n '/^## Multifd/,/^## /p' "$md"
grep -qE '^Precopy with its pages on multifd connections .* Precopy / TCP 1\.50× \(better\); Total time 1\.00× \(the same\); Downtime 1\.00× \(the same\)' "$md" ||
	fail "the multifd section does not show the medians of precopy-multifd / precopy"
python3 "$TOP/bench/report.py" "$TMP/noq.json" --out "$TMP/noq" --no-plots >"$TMP/noq.out" 2>&1 ||
	{ cat "$TMP/noq.out"; fail "bench/report.py failed on results without QEMU runs"; }
grep -q 'No QEMU runs' "$TMP/noq/LATEST.md" || fail "results without QEMU runs do not say so"
grep -q '^## Where the switchover went' "$TMP/noq/LATEST.md" &&
	fail "results without the switchover's phases show a section for them"
grep -q '^## Placement: memfd' "$TMP/noq/LATEST.md" && fail "results without memfd runs show a section for them"
# The data path's targets against the baseline (bench/results/BASELINE.json): both columns.
grep -qE '^\| Precopy RAM stream \| best precopy run ≥ 0\.6 × the TCP floor \| [0-9.]+× \([0-9]+\) \| [0-9.]+× \([0-9]+\) \| ' "$md" ||
	fail "no before/after row for the precopy stream's target"
grep -qE '^\| Total time against QEMU \| .* \| – \| [0-9.]+× \([0-9]+\) \| ' "$md" ||
	fail "no before/after row for the total time against QEMU"
echo "PASS"
