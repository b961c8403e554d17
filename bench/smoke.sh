#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Smoke test of the floors: run build/bench/floors --quick --json - and check
# that every figure is there and positive (and the percentiles in order).
# Exit 0 pass, 1 fail, 77 skip ("SKIP: why": userfaultfd not available here).
# FLOORS=path overrides the binary.  The limit (120 s) only catches a hang;
# it is multiplied by TEST_SLOWDOWN (tests/lib.sh).
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
floors=${FLOORS:-$top/build/bench/floors}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vmm-floors.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

[ -x "$floors" ] || { echo "FAIL: $floors is missing: build it with make -f bench/Makefile"; exit 1; }
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to check the JSON"; exit 77; }

limit=$(awk -v f="${TEST_SLOWDOWN:-1}" 'BEGIN { x = 120 * f; printf "%d", x == int(x) ? x : int(x) + 1 }')
timeout --kill-after=5 "$limit" "$floors" --quick --json - >"$tmp/out.json" 2>"$tmp/err.txt"
rc=$?
sed 's/^/# /' "$tmp/err.txt"
case $rc in
0) ;;
3) echo "SKIP: $(grep -m1 'userfaultfd' "$tmp/err.txt" || echo 'userfaultfd is not available')"; exit 77 ;;
124|137) echo "FAIL: floors did not finish within $limit s"; exit 1 ;;
*) echo "FAIL: floors exited with status $rc"; exit 1 ;;
esac

python3 - "$tmp/out.json" <<'PY'
import json, sys

try:
    with open(sys.argv[1]) as f:
        j = json.load(f)
except (OSError, ValueError) as e:
    print(f"FAIL: the output is not one JSON object: {e}")
    sys.exit(1)

def num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)

bad = []
for key in ("memcpy_bytes_per_s", "uffd_copy_4k_bytes_per_s",
            "uffd_copy_64k_bytes_per_s", "tcp_bytes_per_s"):
    v = j.get(key)
    if not num(v) or v <= 0:
        bad.append(f"{key} = {v!r}")
rtt = j.get("fault_rtt_us")
if not isinstance(rtt, dict):
    bad.append(f"fault_rtt_us = {rtt!r}")
else:
    for key in ("p50", "p90", "p99", "max", "mean", "n"):
        v = rtt.get(key)
        if not num(v) or v <= 0:
            bad.append(f"fault_rtt_us.{key} = {v!r}")
    if not bad and not rtt["p50"] <= rtt["p90"] <= rtt["p99"] <= rtt["max"]:
        bad.append(f"fault_rtt_us percentiles out of order: {rtt}")
if bad:
    print("FAIL: " + "; ".join(bad))
    sys.exit(1)
print("ok: every floor is present and positive")
PY
