#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bench/report.py on the results kept in the repository (issue 16, point
# 13), into a temporary directory: the plots' series never mix working sets
# (the 64 MiB runs are a series of their own, its legend says 64 MiB), and
# LATEST.md names the commit measured and the code it was made beside,
# saying when that code is newer.
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
if git -C "$TOP" merge-base --is-ancestor "$commit" HEAD 2>/dev/null && [ "$(git -C "$TOP" rev-parse --short HEAD)" != "$commit" ]; then
	grep -q 'newer than the code measured' "$out/LATEST.md" ||
		fail "LATEST.md does not say the code beside it is newer than $commit"
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
echo "PASS"
