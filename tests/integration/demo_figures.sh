#!/usr/bin/env bash
# timeout: 600
# The demo's closing summary and `info migrate` on both sides agree on
# every figure they both show (issue 16, acceptance 3).  scripts/demo runs
# a small pure-postcopy migration (so that faults happen however slow the
# machine) and keeps both sides' `info migrate --json` (--keep); every
# number of its summary paragraph is looked up in them.  Each figure means
# one thing on both sides (docs/design.md, "The figures of info migrate"):
# the bytes and the requested pages are equal there, the destination shows
# no downtime of its own but its "load and start", no stale forecast
# remains, and nothing is left to send.
. "$(dirname "$0")/../lib.sh"
need_kvm
[ -c /dev/userfaultfd ] || [ -r /proc/sys/vm/unprivileged_userfaultfd ] || skip "no userfaultfd"

keep=$TMP/demo
timeout -k 10 "$(scaled 400)" "$TOP/scripts/demo" --ws 4M --rounds 0 --secs 3 --keep "$keep" \
	>"$TMP/demo.out" 2>&1
rc=$?
[ $rc -eq 0 ] || { tail -n 40 "$TMP/demo.out"; fail "scripts/demo exited $rc"; }
for f in src.json dst.json summary.txt; do
	[ -s "$keep/$f" ] || { tail -n 40 "$TMP/demo.out"; fail "the demo kept no $f"; }
done
cat "$keep/summary.txt"
python3 - "$keep" <<'PY' || fail "the summary and info migrate disagree"
import json, os, re, sys
k = sys.argv[1]
s = json.load(open(os.path.join(k, "src.json")))
d = json.load(open(os.path.join(k, "dst.json")))
text = open(os.path.join(k, "summary.txt")).read()
bad = []

def num(pattern):
    m = re.search(pattern, text)
    if not m:
        bad.append(f"the summary has no /{pattern}/")
        return None
    return int(m.group(1))

# Every figure of the summary, against the JSON it claims to come from.
for pattern, side, key in (
        (r"(\d+) precopy rounds", s, "rounds"),
        (r"stopped for (\d+) ms", s, "downtime_ms"),
        (r"took (\d+) ms in all", s, "total_ms"),
        (r"moved (\d+) bytes", s, "bytes"),
        (r"faulted (\d+) times", d, "faults")) + ((
        (r"p50 (\d+) us", d, "fault_latency_p50_us"),
        (r"p99 (\d+) us", d, "fault_latency_p99_us")) if d.get("faults") else ()):
    v = num(pattern)
    if v is not None and v != side.get(key):
        bad.append(f"summary {pattern!r} = {v}, info migrate --json {key} = {side.get(key)}")
if not text.startswith("Postcopy migration"):
    bad.append("the summary does not say postcopy")
if "verdict after verifying all its memory on the destination: PASS" not in text:
    bad.append("the summary does not give the guest's PASS")
# One definition each, on both sides.
for side, name in ((s, "source"), (d, "destination")):
    if side.get("status") != "completed":
        bad.append(f"{name}: status {side.get('status')}")
for key in ("bytes", "pages_requested", "requests"):
    if s.get(key) != d.get(key):
        bad.append(f"{key}: source {s.get(key)}, destination {d.get(key)}")
for key in ("downtime_ms", "switchover_downtime_ms", "expected_downtime_ms", "pages_remaining"):
    if key in d:
        bad.append(f"the destination shows {key}, a figure only the source can know")
for key in ("load_start_ms", "wait_ms"):
    if key not in d:
        bad.append(f"the destination lacks {key}")
if "expected_downtime_ms" in s:
    bad.append("a completed source still shows an expected downtime")
if s.get("pages_remaining") != 0:
    bad.append(f"the source completed with pages_remaining {s.get('pages_remaining')}")
if s.get("downtime_ms") != s.get("switchover_downtime_ms"):
    bad.append(f"downtime {s.get('downtime_ms')} != switchover downtime {s.get('switchover_downtime_ms')}")
if s["pages_requested"] - s["pages_resent"] + s["pages_pushed"] + s["pages_had_at_switch"] != s["pages_total"]:
    bad.append("requested (less those sent again) + pushed + had != all pages")
if bad:
    print("\n".join(bad))
    sys.exit(1)
PY
# The text form says the same as the JSON: the destination's requested pages and bytes.
grep -q "^   dst> pages requested: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pages_requested"])' "$keep/dst.json") " \
	"$TMP/demo.out" || fail "the destination's info migrate text disagrees with its JSON on pages requested"
grep -q "^   dst> downtime:" "$TMP/demo.out" && fail "the destination's info migrate shows a downtime"
echo "PASS"
