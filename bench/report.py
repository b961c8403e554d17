#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Turn the benchmark's results JSON into a one-minute report with plots.

usage: bench/report.py RESULTS.json [--out DIR] [--no-plots]

Reads the results written by bench/run and writes into DIR (default: the
directory of RESULTS.json):

  LATEST.md               the report (Markdown), also printed on stdout:
                          where it ran, the floors, the targets met or
                          missed, every run, every run's ratios to the
                          floors, the plots and how to read them
  total_time.png          total migration time against the guest's dirty rate
  downtime.png            downtime (precopy) / switchover (postcopy modes)
                          against the dirty rate
  fault_latency_cdf.png   CDF of the fault service latency of one workload
  timeline.png            the guest's progress rate through one run

The plots are drawn with gnuplot (pngcairo); its data files live in a
temporary directory that is removed afterwards.  A run whose guest failed
verification is an error, never a data point: it is listed with its error
and left out of the plots and the targets.  Runs at another RAM size than
the results' ram_mib (the RAM-scaling runs) are listed and count for the
targets, but the plots leave them out.  Runs of different working sets
are separate series (the legend says which), never points of one curve.

LATEST.md names the commit the results were measured at, and the commit
of the code beside this script when the report was made; when that code
is newer it says so, and which directories changed since.

Exit status: 0 done; 1 bad input (missing file, not JSON, missing keys) or
a plot could not be drawn (LATEST.md is still written, saying why); 2 bad
usage.  With --no-plots no gnuplot is needed.
"""

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

PROG = "bench/report.py"
DASH = "–"
PAGE_SIZE = 4096
# The results measured before the data-path work (issue 12), for the before/after table.
BASELINE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "BASELINE.json")
MODES = ("precopy", "hybrid", "postcopy", "postcopy-nobg", "postcopy-memfd", "precopy-multifd",
         "precopy-tls", "postcopy-tls")
STOP_AND_COPY = ("precopy", "precopy-multifd", "precopy-tls")
POSTCOPY_LIKE = ("hybrid", "postcopy", "postcopy-nobg", "postcopy-memfd", "postcopy-tls")
PUSH_ON = ("hybrid", "postcopy")          # postcopy with the background push
QEMU_MODES = ("precopy", "hybrid", "postcopy")  # QEMU has no postcopy without the push
MODE_COLOURS = {"precopy": "#0072B2", "hybrid": "#E69F00",
                "postcopy": "#009E73", "postcopy-nobg": "#CC79A7", "postcopy-memfd": "#56B4E9",
                "precopy-multifd": "#D55E00", "precopy-tls": "#332288", "postcopy-tls": "#117733"}
OTHER_COLOUR = "#555555"
# point type and dash type per access pattern (gnuplot pt / dt)
PATTERN_STYLES = [("random", 7, 1), ("hotcold", 9, 2)]
OTHER_PATTERN_STYLE = (5, 4)
GNUPLOT_TIMEOUT_S = 60
TERMINAL = 'set terminal pngcairo size 900,560 font "DejaVu Sans,10"'


class BadInput(Exception):
    """The results file cannot be used; the message says why."""


# ---------------------------------------------------------------- access

def get(obj, *path):
    """obj[path[0]][path[1]]..., or None when any level is missing."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def num(value):
    """A finite number as float, else None (null, strings, booleans)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def numbers(values):
    """The numbers of a JSON list (anything else: none)."""
    if not isinstance(values, list):
        return []
    return [v for v in map(num, values) if v is not None]


def fig(run, key):
    return num(get(run, "figures", key))


def div(a, b):
    """a / b, or None when either is missing or b is not positive."""
    if a is None or b is None or b <= 0:
        return None
    return a / b


def median(values):
    return statistics.median(values) if values else None


# ---------------------------------------------------------------- format

def fmt(value):
    """3 significant digits, whole numbers from 1000 on; None as a dash."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    value = num(value)
    if value is None:
        return DASH
    if value == 0:
        return "0"
    rounded = float(f"{value:.3g}")
    if abs(rounded) >= 1000:
        return f"{value:.0f}"
    return f"{rounded:#.3g}".rstrip(".")


def fmt_count(value):
    value = num(value)
    return DASH if value is None else f"{value:.0f}"


def fmt_ratio(value):
    return DASH if value is None else fmt(value) + "×"


def scaled(value, factor):
    value = num(value)
    return None if value is None else value / factor


def md_text(value):
    """Text safe inside a Markdown table cell."""
    text = " ".join(str(value).split())
    return text.replace("|", "\\|")


def md_table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------- input

def load(path):
    """The results as a dict, checked for the keys the report needs."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except OSError as e:
        raise BadInput(f"{path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise BadInput(f"{path}: not UTF-8 text: {e}") from None
    except json.JSONDecodeError as e:
        raise BadInput(f"{path}: not JSON: {e}") from None
    problems = check(data)
    if problems:
        raise BadInput(f"{path}: " + "; ".join(problems))
    return data


def check(data):
    """What is missing or of the wrong type, as a list of messages."""
    if not isinstance(data, dict):
        return ["the top level is not a JSON object"]
    problems = []
    for key in ("floors", "runs"):
        if key not in data:
            problems.append(f"missing key '{key}'")
    if "floors" in data and not isinstance(data["floors"], dict):
        problems.append("'floors' is not an object")
    runs = data.get("runs")
    if "runs" in data and not isinstance(runs, list):
        problems.append("'runs' is not a list")
    elif isinstance(runs, list):
        for i, run in enumerate(runs):
            problems += check_run(i, run)
    return problems


def check_run(i, run):
    if not isinstance(run, dict):
        return [f"runs[{i}] is not an object"]
    where = f"runs[{i}]"
    if isinstance(run.get("name"), str):
        where += f" ({run['name']})"
    missing = [f"'{key}'" for key in ("name", "mode", "ok") if key not in run]
    if not missing:
        return []
    return [f"{where}: missing key{'s' if len(missing) > 1 else ''} "
            + ", ".join(missing)]


# ---------------------------------------------------------------- runs

def is_ok(run):
    return run.get("ok") is True


def mode_of(run):
    return str(run.get("mode"))


def workload_of(run):
    name = get(run, "workload", "name")
    if name is None:
        name = str(run.get("name", "?")).split("/")[0]
    return str(name)


def pattern_of(run):
    pattern = get(run, "workload", "pattern")
    return str(pattern) if pattern is not None else "?"


def is_idle(run):
    idle = get(run, "workload", "idle")
    return idle is True or (idle is None and workload_of(run) == "idle")


def good_runs(data, modes=None):
    """The runs that are data points (ok), optionally only of some modes."""
    return [r for r in data["runs"] if is_ok(r)
            and (modes is None or mode_of(r) in modes)]


def other_ram(data, run):
    """The run's RAM in MiB when it differs from the guest RAM of the
    results (the RAM-scaling runs), else None."""
    ram, main = num(run.get("ram_mib")), num(data.get("ram_mib"))
    if ram is None or main is None or ram == main:
        return None
    return ram


def plot_runs(data, modes=None):
    """The runs the plots compare: ok, and at the one guest RAM size."""
    return [r for r in good_runs(data, modes) if other_ram(data, r) is None]


def run_label(data, run):
    """The workload's name, with the RAM size when it is not the usual."""
    ram = other_ram(data, run)
    label = workload_of(run) + (f" @{fmt(ram)} MiB" if ram is not None else "")
    return md_text(label)


def downtime_ms(run):
    """Precopy: the stop-and-copy downtime; otherwise the switchover."""
    if mode_of(run) in STOP_AND_COPY:
        return fig(run, "downtime_ms")
    value = fig(run, "switchover_ms")
    return value if value is not None else fig(run, "downtime_ms")


class Floors:
    """The floors of the same benchmark run: the ratios' denominators."""

    def __init__(self, floors):
        self.tcp = num(floors.get("tcp_bytes_per_s"))
        self.ktls = num(floors.get("ktls_bytes_per_s")) or None   # 0: no kernel TLS there
        self.copy4k = num(floors.get("uffd_copy_4k_bytes_per_s"))
        self.copy64k = num(floors.get("uffd_copy_64k_bytes_per_s"))
        self.memcpy = num(floors.get("memcpy_bytes_per_s"))
        # A page that arrives, placed by copy or mapped by a minor fault (0: no minor faults here).
        self.place = {(how, size): num(floors.get(f"place_{how}_{size}_bytes_per_s"))
                      for how in ("copy", "minor") for size in ("4k", "64k")}
        self.rtt = {p: num(get(floors, "fault_rtt_us", p))
                    for p in ("p50", "p90", "p99", "max", "mean", "n")}
        known = [v for v in (self.tcp, self.copy64k) if v is not None]
        self.push = min(known) if known else None


def ratio_or(run, key, computed):
    """The run's own ratio if given, else the one computed here."""
    value = num(get(run, "ratios", key))
    return value if value is not None else computed


def throughput_vs_tcp(run, fl):
    seconds = scaled(fig(run, "total_ms"), 1000)
    return ratio_or(run, "throughput_vs_tcp",
                    div(div(fig(run, "bytes"), seconds), fl.tcp))


def precopy_vs_tcp(run, fl):
    return ratio_or(run, "precopy_vs_tcp",
                    div(fig(run, "precopy_bytes_per_s"), fl.tcp))


def push_vs_floor(run, fl):
    return ratio_or(run, "push_vs_floor",
                    div(fig(run, "push_bytes_per_s"), fl.push))


def fault_vs_floor(run, fl, pct, floor_pct="p50"):
    """Fault latency pct (p50, p99) over the fault floor's floor_pct.

    Computed from the figures, so that the denominator is certain; only
    for p50 over p50 does the run's own ratio serve as a fallback."""
    value = div(fig(run, f"fault_{pct}_us"), fl.rtt[floor_pct])
    if value is None and pct == "p50" and floor_pct == "p50":
        value = num(get(run, "ratios", "fault_p50_vs_floor"))
    return value


def after_switch_vs_nonzero(run):
    nonzero = fig(run, "nonzero_at_switch")
    computed = div(fig(run, "bytes_after_switch"),
                   None if nonzero is None else nonzero * PAGE_SIZE)
    return ratio_or(run, "bytes_after_switch_vs_nonzero", computed)


# ---------------------------------------------------------------- header

def section_header(data, head):
    host = data.get("host") if isinstance(data.get("host"), dict) else {}
    runs = data["runs"]
    failed = sum(1 for r in runs if not is_ok(r))
    lines = [f"# Migration benchmark, {md_text(data.get('date') or DASH)}", "",
             f"- **Measured at commit:** {md_text(data.get('describe') or data.get('commit') or DASH)}",
             code_line(data, head),
             f"- **Host:** {where_it_ran(host)}",
             f"- **Guest:** {guest_line(data)}",
             f"- **Quick mode:** {quick_line(data)}",
             f"- **Runs:** {len(runs)}, of which {failed} failed"]
    return "\n".join(lines)


HERE = os.path.dirname(os.path.abspath(__file__))


def git(*args):
    """git's output in the checkout beside this script, or None."""
    try:
        proc = subprocess.run(["git", "-C", HERE] + list(args), capture_output=True,
                              text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def code_line(data, head):
    """Whether the code beside this report (@head: git describe, taken
    before the report wrote anything) is the code measured."""
    made = data.get("commit")
    if head is None:
        return "- **Report made at:** unknown (no git checkout beside bench/report.py)"
    text = f"- **Report made at:** {md_text(head)}"
    if not made:
        return text + "; the results do not say which commit they measured"
    if git("rev-parse", "--verify", "--quiet", f"{made}^{{commit}}") is None:
        return text + f"; the results' commit {md_text(made)} is not in this checkout"
    newer = git("rev-list", "--count", f"{made}..HEAD")
    dirty = head.endswith("-dirty")
    if newer == "0" and not dirty:
        return text + ": the code measured"
    # The results committed after the run are not a change of the code measured.
    dirs = sorted({f.split("/")[0] + "/" for f in
                   (git("diff", "--name-only", made, "--", ":/migrate", ":/vmm", ":/guest", ":/bench",
                        ":(top,exclude)bench/results") or "").split("\n") if f})
    if not dirs and not dirty:
        return text + (f": the code measured ({newer} commits after {md_text(made)}, none under migrate/, "
                       "vmm/, guest/ or bench/ but its results)")
    return (text + f": **newer than the code measured** ({newer} commits after "
            f"{md_text(made)}{', and changes not committed' if dirty else ''}; changed since: "
            f"{', '.join(dirs) or 'nothing under migrate/, vmm/, guest/, bench/'}). "
            "The figures are those of the older code; bench/run measures this one")


def where_it_ran(host):
    kernel = host.get("kernel")
    cpus = host.get("cpus")
    text = f"Linux {md_text(kernel)}" if kernel else "kernel " + DASH
    text += f", {md_text(cpus)} CPUs" if cpus is not None else ""
    if host.get("sandbox") is True:
        text += (". Inside scripts/kvm-sandbox: real KVM under QEMU TCG, so "
                 "absolute speeds are 10–1000× below native; read the ratios")
    elif host.get("sandbox") is False:
        text += ", natively (not in the sandbox)"
    return text


def guest_line(data):
    ram = num(data.get("ram_mib"))
    text = f"{fmt(ram)} MiB RAM" if ram is not None else f"RAM {DASH}"
    if data.get("cpus") is not None:
        text += f", {md_text(data['cpus'])} vCPUs"
    if data.get("ram_note"):
        text += f"; {md_text(data['ram_note'])}"
    return text


def quick_line(data):
    if data.get("smoke") is True:
        return "no: a smoke test (one short run, to check the benchmark)"
    if data.get("quick") is True:
        return "yes (fewer, smaller runs: the figures are rougher)"
    if data.get("quick") is False:
        return "no"
    return DASH


# ---------------------------------------------------------------- floors

def section_floors(fl):
    gbs = [("TCP over 127.0.0.1", fl.tcp), ("the same, kernel TLS (AES-128-GCM)", fl.ktls),
           ("UFFDIO_COPY 4 KiB", fl.copy4k),
           ("UFFDIO_COPY 64 KiB", fl.copy64k), ("memcpy", fl.memcpy)]
    rows = [[what, fmt(scaled(v, 1e9)) + " GB/s" if v is not None else DASH]
            for what, v in gbs]
    for size, label in (("4k", "4 KiB"), ("64k", "64 KiB")):
        copy, minor = fl.place[("copy", size)], fl.place[("minor", size)]
        if copy is None or minor is None:
            continue  # results from before this floor
        value = (f"copy {fmt(scaled(copy, 1e9))} GB/s, memfd + UFFDIO_CONTINUE "
                 + (f"{fmt(scaled(minor, 1e9))} GB/s ({fmt_ratio(div(minor, copy))})"
                    if minor else "n/a"))
        rows.append([f"a page that arrived, placed, {label}", value])
    for pct in ("p50", "p90", "p99", "max"):
        v = fl.rtt[pct]
        rows.append([f"fault round trip {pct}",
                     fmt(v) + " µs" if v is not None else DASH])
    n = fl.rtt["n"]
    note = f" (fault round trip from {fmt_count(n)} samples)" if n else ""
    return ("## Floors\n\nWhat the machine itself does, measured in the same "
            f"run{note}; the ratios below divide by these.\n\n"
            + md_table(["Floor", "Value"], rows))


# ---------------------------------------------------------------- targets

def verdict(ok):
    if ok is None:
        return "n/a"
    return "met" if ok else "**missed**"


def spread(values, worst, label="worst"):
    """'median X×, worst Y× (n runs)' for a list of ratios."""
    if not values:
        return DASH
    return (f"median {fmt_ratio(median(values))}, {label} "
            f"{fmt_ratio(worst(values))} ({len(values)} runs)")


def target_fault(data, fl, pct, limit):
    runs = good_runs(data, PUSH_ON)
    vals = [v for v in (fault_vs_floor(r, fl, pct) for r in runs)
            if v is not None]
    ok = None if not vals else median(vals) <= limit
    floor_p50 = fl.rtt["p50"]
    note = f"floor p50 = {fmt(floor_p50)} µs" if floor_p50 else "no floor p50"
    if pct == "p99":
        vs99 = [v for v in (fault_vs_floor(r, fl, "p99", "p99") for r in runs)
                if v is not None]
        note = (f"vs floor p99 ({fmt(fl.rtt['p99'])} µs): "
                f"{spread(vs99, max)}" if vs99 else "vs floor p99: " + DASH)
    rule = (f"median over hybrid and postcopy runs of fault {pct} / floor "
            f"p50 ≤ {limit:g}")
    return [f"Fault latency {pct}", rule, spread(vals, max), verdict(ok), note]


def target_rate(data, fl, name, modes, get_ratio, floor_name):
    vals = [v for v in (get_ratio(r, fl) for r in good_runs(data, modes))
            if v is not None]
    ok = None if not vals else max(vals) >= 0.8
    rule = f"best run ≥ 0.8 × {floor_name}"
    return [name, rule, spread(vals, max, "best"), verdict(ok),
            f"runs of {', '.join(modes)}"]


def target_ram_scaling(data):
    rs = data.get("ram_scaling")
    rule = ("\\|median large − median small\\| ≤ max(5 ms, 25 % of median "
            "small)")
    small, large = numbers(get(rs, "small_ms")), numbers(get(rs, "large_ms"))
    if not small or not large:
        return ["Switchover independent of RAM size", rule, DASH, "n/a",
                "no ram_scaling figures"]
    ms, ml = median(small), median(large)
    ok = abs(ml - ms) <= max(5.0, 0.25 * ms)
    measured = (f"{fmt(get(rs, 'small_ram_mib'))} MiB: {fmt(ms)} ms; "
                f"{fmt(get(rs, 'large_ram_mib'))} MiB: {fmt(ml)} ms")
    note = f"medians of {len(small)} and {len(large)} repeats"
    if isinstance(get(rs, "workload"), str):
        note += f" of {md_text(rs['workload'])}"
    return ["Switchover independent of RAM size", rule, measured,
            verdict(ok), note]


def target_after_switch(data):
    vals = [v for v in map(after_switch_vs_nonzero,
                           good_runs(data, POSTCOPY_LIKE)) if v is not None]
    ok = None if not vals else max(vals) <= 1.02
    return ["Bytes after the switch",
            "worst run ≤ 1.02 × the non-zero pages still on the source",
            spread(vals, max), verdict(ok), "runs of all postcopy modes"]


def section_targets(data, fl):
    rows = [target_fault(data, fl, "p50", 1.5),
            target_fault(data, fl, "p99", 4.0),
            target_rate(data, fl, "Background push", PUSH_ON, push_vs_floor,
                        "min(TCP, UFFDIO_COPY 64 KiB) floor"),
            target_rate(data, fl, "Precopy RAM stream", ("precopy",),
                        precopy_vs_tcp, "TCP floor"),
            target_ram_scaling(data),
            target_after_switch(data)]
    if qemu_runs(data):
        rows += [target_qemu(data, "Total time", QEMU_MODES, True),
                 target_qemu(data, "Downtime", QEMU_MODES, True),
                 target_qemu(data, "Guest paused", QEMU_MODES, True),
                 target_qemu(data, "Throughput", QEMU_MODES, False),
                 target_qemu(data, "vCPU blocked", ("hybrid", "postcopy"), True)]
    return ("## Targets\n\nFailed runs are left out; \"n/a\": no run "
            "measures it.\n\n"
            + md_table(["Target", "Rule", "Measured", "Result", "Note"], rows))


# ---------------------------------------------------------------- runs

RUN_HEADERS = ["Workload", "Mode", "Verdict", "Total (s)", "Downtime (ms)",
               "Wire (MB)", "Pages precopy", "Requested", "Pushed",
               "Discarded", "Fault p50 (µs)", "p90", "p99", "max",
               "vCPU blocked (ms)", "Rate before (MB/s)", "during", "after"]


def run_verdict(run):
    if is_ok(run):
        return "PASS"
    error = run.get("error") or "failed (no error given)"
    return "**ERROR**: " + md_text(error)


def fault_cells(run):
    faults = fig(run, "faults")
    if faults == 0 or fig(run, "fault_p50_us") is None:
        return [DASH] * 4
    return [fmt(fig(run, f"fault_{p}_us"))
            for p in ("p50", "p90", "p99", "max")]


def run_row(data, run):
    return ([run_label(data, run), md_text(mode_of(run)),
             run_verdict(run),
             fmt(scaled(fig(run, "total_ms"), 1000)),
             fmt(downtime_ms(run)),
             fmt(scaled(fig(run, "bytes"), 1e6))]
            + [fmt_count(fig(run, k)) for k in
               ("pages_precopy", "pages_requested", "pages_pushed",
                "pages_discarded")]
            + fault_cells(run)
            + [fmt(fig(run, "vcpu_blocked_ms"))]
            + [fmt(fig(run, f"rate_{w}_mbps"))
               for w in ("before", "during", "after")])


def section_runs(data):
    runs = data["runs"]
    if not runs:
        return "## Runs\n\nNo runs in the results."
    text = ("Downtime: the stop-and-copy for precopy, the switchover pause "
            "for the postcopy modes. MB = 10^6 bytes.")
    if any(other_ram(data, r) is not None for r in runs):
        text += (" Runs marked @N MiB ran at another RAM size (the RAM-scaling"
                 " runs): they count for the targets, but the plots compare "
                 "one RAM size and leave them out.")
    return ("## Runs\n\n" + text + "\n\n"
            + md_table(RUN_HEADERS, [run_row(data, r) for r in runs]))


def section_ratios(data, fl):
    rows = []
    for run in good_runs(data):
        rows.append([run_label(data, run), md_text(mode_of(run)),
                     fmt_ratio(throughput_vs_tcp(run, fl)),
                     fmt_ratio(precopy_vs_tcp(run, fl)),
                     fmt_ratio(push_vs_floor(run, fl)),
                     fmt_ratio(fault_vs_floor(run, fl, "p50")),
                     fmt_ratio(fault_vs_floor(run, fl, "p99")),
                     fmt_ratio(after_switch_vs_nonzero(run))])
    if not rows:
        return "## Ratios\n\nNo successful runs."
    headers = ["Workload", "Mode", "Throughput / TCP", "Precopy / TCP",
               "Push / min(TCP, UFFDIO_COPY 64K)", "Fault p50 / floor p50",
               "Fault p99 / floor p50", "Bytes after switch / non-zero"]
    return ("## Ratios\n\nPer successful run, against the floors above "
            "(throughput: bytes on the wire over the total time).\n\n"
            + md_table(headers, rows))


SWITCH_PHASES = [("switch_sync_us", "source: stop → dirty log synced"),
                 ("switch_send_us", "source: → discard list and state sent"),
                 ("switch_drop_us", "destination: dropping every page not received, registering"),
                 ("load_start_ms", "destination: state arrived → vCPUs run")]


def section_switchover(data):
    """Medians per postcopy mode of where the switchover went (runs that recorded it)."""
    modes = {}
    for run in good_runs(data):
        if fig(run, "switch_sync_us") is not None:
            modes.setdefault(mode_of(run), []).append(run)
    if not modes:
        return ""
    rows = []
    for mode, runs in sorted(modes.items()):
        row = [md_text(mode), str(len(runs)),
               fmt(median([v for v in (fig(r, "switchover_ms") for r in runs) if v is not None]))]
        for key, _ in SWITCH_PHASES:
            vals = [v for v in (fig(r, key) for r in runs) if v is not None]
            ms = median(vals)
            row.append(fmt(ms / 1000 if ms is not None and key.endswith("_us") else ms))
        rows.append(row)
    text = ("Medians per mode, in ms, of where the switchover downtime went: "
            + "; ".join(f"{i + 1}. {what}" for i, (_, what) in enumerate(SWITCH_PHASES))
            + ". 3 is part of 4; "
            "the downtime is the source's stop to the destination's acknowledgement.")
    return ("## Where the switchover went\n\n" + text + "\n\n"
            + md_table(["Mode", "Runs", "Downtime"] + [str(i + 1) for i in range(len(SWITCH_PHASES))],
                       rows))


# Variants of a mode, each against the same workloads' runs of the mode: (title, mode, variant,
# what the variant is, its figures as (name, value of a run, lower is better)).
VARIANTS = [
    ("Placement: memfd + UFFDIO_CONTINUE against UFFDIO_COPY", "postcopy", "postcopy-memfd",
     "Pure postcopy onto a destination whose guest RAM is a memfd (`--memory-backend memfd`: "
     "pages written into the file by the fault server and shown by `UFFDIO_CONTINUE`) against the "
     "same workloads' postcopy runs (`UFFDIO_COPY`)",
     [("Push / floor", lambda r, fl: push_vs_floor(r, fl), False),
      ("Fault p50 / floor", lambda r, fl: fault_vs_floor(r, fl, "p50"), True),
      ("Fault p99 / floor", lambda r, fl: fault_vs_floor(r, fl, "p99"), True),
      ("Total time (ms)", lambda r, fl: fig(r, "total_ms"), True),
      ("vCPU blocked (ms)", lambda r, fl: fig(r, "vcpu_blocked_ms"), True),
      ("Fault server CPU (ms)", lambda r, fl: fig(r, "faultsrv_cpu_ms"), True)]),
    ("Multifd: precopy on several connections against one", "precopy", "precopy-multifd",
     "Precopy with its pages on multifd connections (`migrate_set_capability multifd on`, "
     "2 connections: the sandbox has 2 CPUs) against the same workloads' precopy runs (one stream)",
     [("Precopy / TCP", lambda r, fl: precopy_vs_tcp(r, fl), False),
      ("Total time (ms)", lambda r, fl: fig(r, "total_ms"), True),
      ("Downtime (ms)", lambda r, fl: fig(r, "downtime_ms"), True),
      ("Bytes (MB)", lambda r, fl: div(fig(r, "bytes"), 1e6), True),
      ("Source thread CPU (ms)", lambda r, fl: fig(r, "precopy_cpu_ms"), True)]),
    ("TLS: precopy over TLS against plaintext", "precopy", "precopy-tls",
     "Precopy with `tls-creds` (TLS 1.3, a pre-shared key; the records by kernel TLS where the kernel has "
     "it, else the user-space relay) against the same workloads' precopy runs in plaintext",
     [("Precopy / TCP", lambda r, fl: precopy_vs_tcp(r, fl), False),
      ("Precopy / its link's floor", lambda r, fl: div(fig(r, "precopy_bytes_per_s"),
                                                       fl.ktls if mode_of(r).endswith("-tls") else fl.tcp), False),
      ("Downtime (ms)", lambda r, fl: downtime_ms(r), True),
      ("Total time (ms)", lambda r, fl: fig(r, "total_ms"), True),
      ("Source thread CPU (ms)", lambda r, fl: fig(r, "precopy_cpu_ms"), True)]),
    ("TLS: postcopy over TLS against plaintext", "postcopy", "postcopy-tls",
     "Pure postcopy with `tls-creds` (as above: the fault server's connections are kernel TLS sockets) "
     "against the same workloads' postcopy runs in plaintext",
     [("Downtime (ms)", lambda r, fl: downtime_ms(r), True),
      ("Fault p50 / floor", lambda r, fl: fault_vs_floor(r, fl, "p50"), True),
      ("Fault p99 / floor", lambda r, fl: fault_vs_floor(r, fl, "p99"), True),
      ("Push / floor", lambda r, fl: push_vs_floor(r, fl), False),
      ("Total time (ms)", lambda r, fl: fig(r, "total_ms"), True)]),
]


def variant_pairs(data, mode, variant):
    """(workload, mode's run, variant's run) for each workload where both succeeded."""
    by = {}
    for run in good_runs(data, (mode, variant)):
        if run.get("scaling") or "@" in str(run.get("name", "")):
            continue  # the RAM-scaling runs: postcopy only
        by.setdefault(workload_of(run), {})[mode_of(run)] = run
    return [(w, m[mode], m[variant]) for w, m in by.items() if mode in m and variant in m]


def section_variant(data, fl, title, mode, variant, what, figures):
    """A variant of @mode against it: each pair of runs, and the medians of the ratios."""
    pairs = variant_pairs(data, mode, variant)
    if not pairs:
        return ""
    rows, ratios = [], {name: [] for name, _, _ in figures}
    for w, copy, memfd in pairs:
        row = [md_text(w)]
        for name, value_of, _ in figures:
            a, b = value_of(copy, fl), value_of(memfd, fl)
            r = div(b, a)
            if r is not None:
                ratios[name].append(r)
            row.append(f"{fmt(a)} → {fmt(b)} ({fmt_ratio(r)})" if a is not None and b is not None else DASH)
        rows.append(row)
    summary = []
    for name, _, lower in figures:
        m = median(ratios[name])
        if m is not None:
            better = m < 1 if lower else m > 1
            word = "the same" if abs(m - 1) < 0.02 else "better" if better else "worse"
            summary.append(f"{name.split(' (')[0]} {fmt_ratio(m)} ({word})")
    text = (f"{what}; each cell {mode} → {variant} ({variant} / {mode}). Medians of the ratios: "
            + "; ".join(summary) + ".")
    return (f"## {title}\n\n" + text + "\n\n"
            + md_table(["Workload"] + [name for name, _, _ in figures], rows))


def section_variants(data, fl):
    return "\n\n".join(s for s in (section_variant(data, fl, *v) for v in VARIANTS) if s)


def cpu_shares(data, title, text, wall, rate, columns):
    """A section of medians per mode: the rate (MB/s) and each figure of @columns (name, key) as a share
    of the phase's wall time @wall, over the good runs that recorded the first of them."""
    modes = {}
    for run in good_runs(data):
        if fig(run, columns[0][1]) is not None and fig(run, wall):
            modes.setdefault(mode_of(run), []).append(run)
    if not modes:
        return ""
    rows = []
    for mode, runs in sorted(modes.items()):
        mbps = median([v for v in (div(fig(r, rate), 1e6) for r in runs) if v is not None])
        rows.append([md_text(mode), str(len(runs)), fmt(mbps)]
                    + [fmt_pct(median_share(runs, key, wall)) for _, key in columns])
    return (f"## {title}\n\n{text}\n\n"
            + md_table(["Mode", "Runs", ("Stream" if wall == "precopy_ms" else "Push") + " (MB/s)"]
                       + [name for name, _ in columns], rows))


def section_precopy_cpu(data):
    """How busy the precopy stream's two threads were, and the syncs' share."""
    return cpu_shares(
        data, "What the precopy stream waited on",
        "Medians per mode over the precopy rounds' wall time: the source's migration thread on a "
        "CPU, the part of the rounds spent syncing the dirty log, and the destination's receiving "
        "thread on a CPU. A thread near 100 % is limited by its own work per page; well below, "
        "by the CPUs it shares (the guest's vCPUs, the other side) or by the other thread.",
        "precopy_ms", "precopy_bytes_per_s",
        [("Source thread CPU", "precopy_cpu_ms"), ("Dirty-log syncs", "precopy_sync_ms"),
         ("Destination thread CPU", "receive_cpu_ms")])


def section_push_cpu(data):
    """How busy the push's threads and the fault server were."""
    return cpu_shares(
        data, "What the push waited on",
        "Medians per mode over the postcopy phase's wall time (the switch to the end of the copy): "
        "the source's push and return-path threads on a CPU, and the destination's fault server.",
        "postcopy_ms", "push_bytes_per_s",
        [("Push thread CPU", "push_cpu_ms"), ("Return path CPU", "return_path_cpu_ms"),
         ("Fault server CPU", "faultsrv_cpu_ms")])


def fmt_pct(value):
    return DASH if value is None else f"{value * 100:.0f} %"


# ---------------------------------------------------------------- plots

class Plot:
    """One PNG: its file, alt text, the sentence under it, and its state."""

    def __init__(self, file, alt):
        self.file = file
        self.alt = alt
        self.sentence = ""
        self.script = None      # gnuplot commands, None: nothing to draw
        self.status = None      # None: drawn; else why not, for LATEST.md
        self.failed = False     # gnuplot could not draw it


def gp_str(text):
    """A gnuplot string literal (single quotes: no escapes inside)."""
    return "'" + str(text).replace("'", "''") + "'"


def write_data(tmp, name, rows):
    path = os.path.join(tmp, name)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(" ".join(repr(float(v)) for v in row) + "\n")
    return path


def preamble(png, title):
    return "\n".join(["set encoding utf8", TERMINAL,
                      "set termoption noenhanced",
                      f"set output {gp_str(png)}",
                      f"set title {gp_str(title)}",
                      "set grid lw 1 lc rgb '#c8c8c8'", ""])


def wide(values, factor=10):
    """Whether positive values span enough for a log scale to help."""
    pos = [v for v in values if v > 0]
    return bool(pos) and max(pos) / min(pos) >= factor


def pattern_style(pattern):
    for name, pt, dt in PATTERN_STYLES:
        if name == pattern:
            return pt, dt
    return OTHER_PATTERN_STYLE


def ws_of(run):
    """The working set in MiB, or None."""
    return num(get(run, "workload", "ws_mib"))


def rate_series(data, value_of):
    """{(mode, pattern, ws_mib): [(rate, value)]} over ok working-set runs:
    one series per working set, or a 64 MiB point would join a 256 MiB curve."""
    series = {}
    for run in plot_runs(data):
        if is_idle(run):
            continue
        x, y = fig(run, "rate_before_mbps"), value_of(run)
        if x is None or y is None or x <= 0 or y <= 0:
            continue
        key = (mode_of(run), pattern_of(run), ws_of(run))
        series.setdefault(key, []).append((x, y))
    # the largest working set first, random first, then by mode
    modes = {m: i for i, m in enumerate(MODES)}
    patterns = {p[0]: i for i, p in enumerate(PATTERN_STYLES)}

    def order(item):
        mode, pattern, ws = item[0]
        return (-(ws or 0), patterns.get(pattern, 99), pattern,
                modes.get(mode, 99), mode)
    return dict(sorted(series.items(), key=order))


def series_title(mode, pattern, ws):
    return f"{mode}, {pattern}, ws {ws:g} MiB" if ws is not None else f"{mode}, {pattern}"


def axis_range(axis, values, log):
    """A range with some room around the points, so none sits on an edge."""
    lo, hi = min(values), max(values)
    if log:
        lo, hi = lo / 1.4, hi * 1.4
        if not (lo > 0 and math.isfinite(hi) and hi / lo < 1e12):
            return [f"set logscale {axis}"]     # absurd figures: autoscale
        tics = log_tics(lo, hi)
        return [f"set logscale {axis}", f"set {axis}range [{lo!r}:{hi!r}]"] + (
            [f"set {axis}tics ({', '.join(tics)})"] if len(tics) > 1 else [])
    hi = hi * (1.08 if lo < hi else 1.25)
    return [f"set {axis}range [0:{hi!r}]" if 0 < hi < math.inf
            else f"set {axis}range [0:*]"]


def log_tics(lo, hi):
    """Tic marks 1, 2, 5, 10, 20, ... within [lo, hi] (0 < lo < hi); on a
    narrow range finer steps."""
    exps = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    for mantissas, enough in (((1, 2, 5), 5), ((1, 2, 3, 5), 4),
                              ((1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8), 0)):
        tics = [m * 10.0 ** e for e in exps for m in mantissas
                if lo <= m * 10.0 ** e <= hi]
        if len(tics) >= enough:
            break
    return [f"{t:g}" for t in tics]


def rate_plot(plot, data, tmp, png, value_of, ylabel, ylog):
    series = rate_series(data, value_of)
    if not series:
        plot.status = "no successful working-set run has both figures"
        return
    xs = [x for pts in series.values() for x, _ in pts]
    ys = [y for pts in series.values() for _, y in pts]
    lines = [preamble(png, plot.alt),
             "set xlabel 'guest dirty rate before migration (MB/s)'",
             f"set ylabel {gp_str(ylabel)}",
             "set key outside right top box"]
    lines += axis_range("x", xs, wide(xs))
    lines += axis_range("y", ys, ylog or wide(ys))
    plots = []
    largest = max((ws for _, _, ws in series if ws is not None), default=None)
    for i, ((mode, pattern, ws), pts) in enumerate(series.items()):
        path = write_data(tmp, f"{plot.file}.{i}.dat", sorted(pts))
        pt, dt = pattern_style(pattern)
        # A smaller working set: the same colour and dash, open points, thinner.
        small = ws is not None and largest is not None and ws < largest
        pt, lw = (pt - 1, 1) if small else (pt, 1.5)
        colour = MODE_COLOURS.get(mode, OTHER_COLOUR)
        plots.append(f"{gp_str(path)} using 1:2 with linespoints lw {lw} "
                     f"lc rgb '{colour}' dt {dt} pt {pt} ps 1.3 "
                     f"title {gp_str(series_title(mode, pattern, ws))}")
    plot.script = "\n".join(lines) + "\nplot " + ", \\\n  ".join(plots) + "\n"


def plot_total_time(data, tmp, out):
    plot = Plot("total_time.png",
                "Total migration time against the dirty rate")
    plot.sentence = (
        "Total migration time against the rate the guest dirtied memory "
        "before migration, one colour per mode (solid circles: random "
        "pattern, dashed triangles: hot/cold; open points: a smaller working "
        "set, its own series): look for precopy climbing with "
        "the rate while the postcopy modes stay nearly flat.")
    rate_plot(plot, data, tmp, os.path.join(out, plot.file),
              lambda r: scaled(fig(r, "total_ms"), 1000),
              "total migration time (s)", False)
    return plot


def plot_downtime(data, tmp, out):
    plot = Plot("downtime.png",
                "Downtime or switchover against the dirty rate")
    plot.sentence = (
        "Downtime (precopy's stop-and-copy) or switchover pause (postcopy "
        "modes) against the dirty rate, log scale: look for precopy's "
        "downtime growing with the rate while the switchover stays low and "
        "flat.")
    rate_plot(plot, data, tmp, os.path.join(out, plot.file), downtime_ms,
              "downtime or switchover (ms)", True)
    return plot


def samples_of(run):
    return sorted(v for v in numbers(run.get("fault_latency_samples_us"))
                  if v > 0)


def cdf_runs(data):
    """(workload, [runs with samples]) for the CDF, or (None, [])."""
    runs = [r for r in plot_runs(data, POSTCOPY_LIKE) if samples_of(r)]
    wanted = data.get("cdf_workload")
    chosen = [r for r in runs if workload_of(r) == wanted]
    if not chosen and runs:
        # the idle guest faults on a handful of pages: a last resort
        runs.sort(key=is_idle)
        wanted = workload_of(runs[0])
        chosen = [r for r in runs if workload_of(r) == wanted]
    return wanted, chosen


def floor_line(plot, tmp, fl, pct, dt):
    x = fl.rtt[pct]
    if x is None or x <= 0:
        return None
    path = write_data(tmp, f"{plot.file}.floor{pct}.dat", [(x, 0), (x, 1)])
    return (f"{gp_str(path)} using 1:2 with lines lw 2 lc rgb '#333333' "
            f"dt {dt} title {gp_str(f'fault floor {pct}: {fmt(x)} µs')}")


def plot_cdf(data, fl, tmp, out):
    plot = Plot("fault_latency_cdf.png", "Fault latency CDF")
    workload, runs = cdf_runs(data)
    if not runs:
        plot.status = "no successful postcopy run has latency samples"
        return plot
    plot.alt = f"Fault service latency CDF, workload {workload}"
    plot.sentence = (
        f"The distribution of fault service latencies for {md_text(workload)},"
        " one curve per mode, against the bare fault round trip (dashed): the "
        "closer a curve sits to the floor lines, the less a fault costs "
        "beyond the round trip; a tail far right is the vCPU waiting behind "
        "the link.")
    if workload != data.get("cdf_workload"):
        plot.sentence += (f" (cdf_workload {md_text(data.get('cdf_workload'))}"
                          " has no successful run with samples.)")
    lines = [preamble(os.path.join(out, plot.file), plot.alt),
             "set xlabel 'fault service latency (µs)'",
             "set ylabel 'fraction of faults at or below'",
             "set yrange [0:1.02]", "set key right bottom box opaque"]
    xs = [v for r in runs for v in samples_of(r)]
    xs += [v for v in (fl.rtt["p50"], fl.rtt["p99"])
           if v is not None and v > 0]
    lines += axis_range("x", xs, True)
    plots = []
    for i, run in enumerate(runs):
        s = samples_of(run)
        pts = [(v, (k + 1) / len(s)) for k, v in enumerate(s)]
        path = write_data(tmp, f"{plot.file}.{i}.dat", [(s[0], 0)] + pts)
        colour = MODE_COLOURS.get(mode_of(run), OTHER_COLOUR)
        plots.append(f"{gp_str(path)} using 1:2 with steps lw 2 "
                     f"lc rgb '{colour}' "
                     f"title {gp_str(f'{mode_of(run)} ({len(s)} samples)')}")
    plots += [p for p in (floor_line(plot, tmp, fl, "p50", 2),
                          floor_line(plot, tmp, fl, "p99", 4)) if p]
    plot.script = "\n".join(lines) + "\nplot " + ", \\\n  ".join(plots) + "\n"
    return plot


def timeline_run(data):
    """The run for the timeline: timeline_run, else the first hybrid one."""
    def has_timeline(r):
        return isinstance(r.get("timeline"), list) and r["timeline"]
    runs = [r for r in plot_runs(data) if has_timeline(r)]
    named = [r for r in runs if r.get("name") == data.get("timeline_run")]
    hybrid = [r for r in runs if mode_of(r) == "hybrid"]
    return (named or hybrid or [None])[0]


def timeline_points(run):
    """{side: [(t, mbps)]} sorted by time."""
    sides = {}
    for sample in run["timeline"]:
        t, v = num(get(sample, "t")), num(get(sample, "mbps"))
        if t is None or v is None:
            continue
        sides.setdefault(str(get(sample, "side")), []).append((t, v))
    return {side: sorted(pts) for side, pts in sides.items()}


# (event key, its label on the timeline)
EVENTS = [("stop", "precopy stop"), ("switch", "switch to postcopy"),
          ("end", "migration complete")]


def event_times(run):
    """[(time, label)] of the events the run has, in EVENTS order."""
    marks = []
    for key, label in EVENTS:
        t = num(get(run, "events", key))
        if t is not None:
            marks.append((t, label))
    return marks


def event_marks(events, xlo, xhi):
    """gnuplot arrows and labels: each label on its own row at the top,
    beside its line on the side with more room, so none overlap."""
    lines = ["set style textbox opaque noborder"]
    for row, (t, label) in enumerate(events):
        left = (t - xlo) > (xhi - t)
        side = "right offset -0.6,0" if left else "left offset 0.6,0"
        lines += [f"set arrow from {t!r}, graph 0 to {t!r}, graph 1 nohead "
                  "dt 2 lw 1.5 lc rgb '#444444' back",
                  f"set label {gp_str(label)} at {t!r}, graph "
                  f"{0.955 - 0.055 * row:.3f} {side} boxed front "
                  "tc rgb '#222222'"]
    return lines


def plot_timeline(data, tmp, out):
    plot = Plot("timeline.png", "Guest progress through one migration")
    run = timeline_run(data)
    points = timeline_points(run) if run else {}
    if not points:
        plot.status = "no successful run with timeline samples"
        return plot
    name = run.get("name")
    plot.alt = f"Guest progress rate through {name}"
    plot.sentence = (
        f"The guest's progress rate through {md_text(name)} on the source "
        "and then the destination: look for " + (
            "the dip after the switch, while faults block the vCPU, and how "
            "soon the destination reaches full speed."
            if num(get(run, "events", "switch")) is not None else
            "the slowdown while the rounds run, and the gap between the stop "
            "and the guest running again on the destination."))
    if name != data.get("timeline_run"):
        plot.sentence += (f" (timeline_run {md_text(data.get('timeline_run'))}"
                          " is not a successful run with a timeline.)")
    events = event_times(run)
    ts = [t for pts in points.values() for t, _ in pts]
    ts += [t for t, _ in events] + [0.0]
    pad = 0.03 * ((max(ts) - min(ts)) or 1.0)
    xlo, xhi = min(ts) - pad, max(ts) + pad
    ytop = max(v for pts in points.values() for _, v in pts)
    # the top rows are for the event labels: keep the data below them
    ytop = ytop * (1.12 + 0.06 * len(events))
    yrange = f"[0:{ytop!r}]" if 0 < ytop < math.inf else "[0:*]"
    lines = [preamble(os.path.join(out, plot.file), plot.alt),
             "set xlabel 'host time (s), 0 = migration started'",
             "set ylabel 'guest progress rate (MB/s)'",
             f"set xrange [{xlo!r}:{xhi!r}]", f"set yrange {yrange}",
             "set key outside bottom center horizontal", "set bmargin 5"]
    lines += event_marks(events, xlo, xhi)
    colours = {"src": "#0072B2", "dst": "#D55E00"}
    titles = {"src": "on the source", "dst": "on the destination"}
    plots = []
    for i, (side, pts) in enumerate(sorted(points.items(), reverse=True)):
        path = write_data(tmp, f"{plot.file}.{i}.dat", pts)
        plots.append(f"{gp_str(path)} using 1:2 with linespoints lw 2 pt 7 "
                     f"ps 0.8 lc rgb '{colours.get(side, OTHER_COLOUR)}' "
                     f"title {gp_str(titles.get(side, side))}")
    plot.script = "\n".join(lines) + "\nplot " + ", \\\n  ".join(plots) + "\n"
    return plot


def run_gnuplot(gnuplot, script, png):
    """Draw one plot; None when done, else why not."""
    try:
        proc = subprocess.run([gnuplot], input=script, text=True,
                              capture_output=True, timeout=GNUPLOT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"gnuplot did not finish within {GNUPLOT_TIMEOUT_S} s"
    except OSError as e:
        return f"cannot run gnuplot: {e.strerror}"
    err = " ".join(proc.stderr.split())
    err = err if len(err) <= 400 else err[:400] + "…"
    if proc.returncode != 0:
        return (f"gnuplot failed (status {proc.returncode}): "
                f"{err or 'no message'}")
    if not os.path.isfile(png) or os.path.getsize(png) == 0:
        return f"gnuplot wrote no image: {err or 'no message'}"
    if err:
        print(f"{PROG}: gnuplot ({os.path.basename(png)}): {err}",
              file=sys.stderr)
    return None


def draw_plots(data, fl, out):
    """Build and draw the four plots; returns them with their state."""
    with tempfile.TemporaryDirectory(prefix="vmm-report.") as tmp:
        plots = [plot_total_time(data, tmp, out),
                 plot_downtime(data, tmp, out),
                 plot_cdf(data, fl, tmp, out),
                 plot_timeline(data, tmp, out)]
        gnuplot = shutil.which("gnuplot")
        if gnuplot is None:
            print(f"{PROG}: gnuplot is not installed (not found in PATH): "
                  "no plots", file=sys.stderr)
        for plot in plots:
            png = os.path.join(out, plot.file)
            remove_stale(png)
            if plot.script is None:
                continue
            why = (run_gnuplot(gnuplot, plot.script, png) if gnuplot
                   else "gnuplot is not installed (not found in PATH)")
            if why:
                plot.status, plot.failed = why, True
                remove_stale(png)
                if gnuplot:
                    print(f"{PROG}: {plot.file}: {why}", file=sys.stderr)
    return plots


def remove_stale(png):
    """An old image of ours would not match the new LATEST.md."""
    try:
        os.remove(png)
    except FileNotFoundError:
        pass


def section_plots(plots, no_plots):
    parts = ["## Plots"]
    if no_plots:
        parts.append("Not drawn (--no-plots).")
        return "\n\n".join(parts)
    for plot in plots:
        if plot.status is None:
            alt = md_text(plot.alt).replace("[", "\\[").replace("]", "\\]")
            parts.append(f"![{alt}]({plot.file})\n\n"
                         f"{plot.sentence}")
        else:
            parts.append(f"**{plot.file}** not drawn: {md_text(plot.status)}.")
    return "\n\n".join(parts)


# ---------------------------------------------------------------- report

HOW_TO_READ = """## How to read

**precopy** sends RAM in rounds (every non-zero page, then what the guest
dirtied meanwhile) until the rest fits `downtime-limit` at the measured
bandwidth, or `max-rounds` is reached; then it stops the guest and copies
the rest (stop-and-copy): its downtime is that stop. **hybrid** runs 2
precopy rounds, then switches to postcopy. **postcopy** switches at once.
In the postcopy modes the guest runs on the destination after a short
switchover pause; every page it touches that is not there yet is a fault
fetched from the source, while a background push sends the rest.
**postcopy-nobg** is postcopy with the background push off: only faulted
pages move. **postcopy-memfd** is postcopy onto a destination with its guest
RAM on a memfd, pages placed by `UFFDIO_CONTINUE`, and **precopy-multifd**
precopy with its pages on 2 multifd connections; **precopy-tls** and
**postcopy-tls** are precopy and postcopy over TLS (a pre-shared key, kernel
TLS) (each vmm against itself: no QEMU run). The ratios compare each figure with the floors measured in the
same run, which is what stays meaningful across machines. A run whose guest
failed verification is an error, never a data point: it is listed in Runs
with its error and left out of the ratios, the plots and the targets."""


def section_linux_boot(data):
    lb = data.get("linux_boot")
    if not isinstance(lb, dict):
        return None
    head = "## Linux boot time, vmm and QEMU\n\n"
    if lb.get("error"):
        return head + f"Not measured: {md_text(lb['error'])}."
    vmm, qemu = num(lb.get("vmm_median_s")), num(lb.get("qemu_median_s"))
    text = (f"The Linux guest (make linux-guest: Debian's kernel and the busybox "
            f"initramfs; {md_text(lb.get('ram_mib'))} MiB, {md_text(lb.get('cpus'))} vCPUs) "
            f"from the VMM's launch to the first line of its init, median of "
            f"{md_text(lb.get('boots'))} boots each (bench/linux-boot).")
    if lb.get("sandbox"):
        text += " In scripts/kvm-sandbox: TCG's seconds; read the ratio."
    rows = [["vmm", fmt(vmm), ", ".join(fmt(num(t)) for t in lb.get("vmm_s", []))],
            ["QEMU (`-accel kvm`, pc)", fmt(qemu), ", ".join(fmt(num(t)) for t in lb.get("qemu_s", []))]]
    text += "\n\n" + md_table(["VMM", "median s", "each boot, s"], rows)
    text += f"\n\nQEMU / vmm: {fmt_ratio(div(qemu, vmm))}."
    return head + text


# ---------------------------------------------------------------- QEMU

def qfig(run, key):
    return num(get(run, "qemu", "figures", key))


def q_ok(run):
    return is_ok(run) and get(run, "qemu", "ok") is True


def q_downtime_ms(run):
    """QEMU's stop-and-copy downtime, or its switchover when it switched."""
    value = qfig(run, "switchover_ms")
    return value if value is not None else qfig(run, "downtime_ms")


def vmm_throughput(run):
    """Bytes on the wire per second of the migration, setup left out (as QEMU counts)."""
    busy = fig(run, "total_ms")
    setup = num(get(run, "src", "setup_ms")) or 0
    return div(fig(run, "bytes"), scaled(busy - setup, 1000) if busy is not None else None)


# Each compared figure: its name, vmm's value, QEMU's, and whether vmm wants to be lower.
QEMU_FIGURES = [
    ("Total time", lambda r: fig(r, "total_ms"), lambda r: qfig(r, "total_ms"), True),
    ("Downtime", downtime_ms, q_downtime_ms, True),
    ("Guest paused", lambda r: fig(r, "paused_ms"), lambda r: qfig(r, "paused_ms"), True),
    ("Throughput", vmm_throughput, lambda r: qfig(r, "throughput_bytes_per_s"), False),
    ("vCPU blocked", lambda r: fig(r, "vcpu_blocked_ms"), lambda r: qfig(r, "vcpu_blocked_ms"), True),
]


def vs_qemu(run, name):
    for n, mine, theirs, _ in QEMU_FIGURES:
        if n == name:
            return div(mine(run), theirs(run))
    raise KeyError(name)


def qemu_runs(data):
    return [r for r in data["runs"] if isinstance(r.get("qemu"), dict)]


def qemu_verdict(run):
    q = run.get("qemu")
    if q.get("ok") is True:
        return "PASS"
    return "**ERROR**: " + md_text(q.get("error") or "failed (no error given)")


def section_qemu(data):
    head = "## vmm and QEMU, side by side\n\n"
    q = data.get("qemu")
    runs = qemu_runs(data)
    if not runs:
        why = ("bench/run --no-qemu, or no qemu-system-x86_64" if not q
               else "no run had a QEMU twin")
        return head + f"No QEMU runs ({why})."
    text = (f"The same guest image, workload and mode under `qemu-system-x86_64 -accel "
            f"{md_text(get(q, 'accel') or 'kvm')}` (QEMU {md_text(get(q, 'version') or '?')}), in the same "
            "boot, over the same loopback: postcopy-ram (with postcopy-preempt where QEMU has it), "
            "migrate_start_postcopy after 2 rounds (hybrid) or at once (postcopy); vmm's max-rounds 5 "
            "as a downtime limit raised to QEMU's maximum after its 5th round. QEMU has no postcopy "
            "without the background push. Downtime: the stop-and-copy, or the switchover pause when the "
            "migration switched, each as it reports it: vmm's ends when the destination acknowledges "
            "that its vCPUs run, QEMU's when the source has sent the last byte of the switch, so QEMU's "
            "leaves out the destination's share. Guest paused: the same pause for both read on one "
            "clock, from the source's vCPUs stopping to the destination's starting (vmm's figures; "
            "QEMU's STOP and RESUME events): the like-for-like figure. Throughput: bytes on the wire over the time after setup. vCPU blocked: "
            "the sum over vCPUs (QEMU's postcopy vCPU blocktime). vmm/QEMU below 1: vmm is lower.")
    rows = []
    for r in runs:
        row = [run_label(data, r), md_text(mode_of(r)), run_verdict(r) if not is_ok(r) else "PASS",
               qemu_verdict(r)]
        for n, mine, theirs, _ in QEMU_FIGURES:
            a, b = mine(r), theirs(r) if r["qemu"].get("ok") is True else None
            if n == "Throughput":
                a, b = scaled(a, 1e6), scaled(b, 1e6)
            if n == "Total time":
                a, b = scaled(a, 1000), scaled(b, 1000)
            row += [fmt(a), fmt(b), fmt_ratio(div(a, b)) if is_ok(r) else DASH]
        row += [fmt_count(fig(r, "pages_requested")), fmt_count(qfig(r, "pages_requested"))]
        rows.append(row)
    headers = ["Workload", "Mode", "vmm", "QEMU", "Total s: vmm", "QEMU", "vmm/QEMU",
               "Downtime ms: vmm", "QEMU", "vmm/QEMU", "Paused ms: vmm", "QEMU", "vmm/QEMU", "MB/s: vmm", "QEMU", "vmm/QEMU",
               "vCPU blocked ms: vmm", "QEMU", "vmm/QEMU", "Requests: vmm", "QEMU"]
    return head + text + "\n\n" + md_table(headers, rows)


def qemu_medians(data, name, modes):
    """(mode, median vmm/QEMU of @name, runs) for each of @modes with a run both verified."""
    out = []
    for m in modes:
        vals = [v for v in (vs_qemu(r, name) for r in data["runs"] if q_ok(r) and mode_of(r) == m)
                if v is not None]
        if vals:
            out.append((m, median(vals), len(vals)))
    return out


def target_qemu(data, name, modes, lower):
    """vmm against QEMU for one figure: the median ratio of each mode must be ≤ 1 (or ≥ 1)."""
    per_mode = qemu_medians(data, name, modes)
    rule = (f"in every mode, median vmm/QEMU {'≤' if lower else '≥'} 1")
    if not per_mode:
        return [f"{name} against QEMU", rule, DASH, "n/a", "no run with both verified"]
    ok = all((v <= 1) if lower else (v >= 1) for _, v, _ in per_mode)
    measured = "; ".join(f"{md_text(m)} {fmt_ratio(v)} ({n})" for m, v, n in per_mode)
    return [f"{name} against QEMU", rule, measured, verdict(ok), "runs of " + ", ".join(modes)]


# ---------------------------------------------------------------- data-path targets, before and after

def best(values):
    return max(values) if values else None


def goal_stats(data):
    """Each data-path target's statistic over one results file: name -> (value, runs)."""
    fl = Floors(data["floors"])

    def over(modes, get_ratio, stat):
        vals = [v for v in (get_ratio(r) for r in good_runs(data, modes)) if v is not None]
        return (stat(vals), len(vals)) if vals else (None, 0)

    out = {
        "precopy": over(("precopy",), lambda r: precopy_vs_tcp(r, fl), best),
        "push": over(PUSH_ON, lambda r: push_vs_floor(r, fl), best),
        "p50": over(PUSH_ON, lambda r: fault_vs_floor(r, fl, "p50"), median),
        "p99": over(PUSH_ON, lambda r: fault_vs_floor(r, fl, "p99"), median),
        "p50-nobg": over(("postcopy-nobg",), lambda r: fault_vs_floor(r, fl, "p50"), median),
    }
    for name, _, _, lower in QEMU_FIGURES:
        modes = ("hybrid", "postcopy") if name == "vCPU blocked" else QEMU_MODES
        per = [v for _, v, _ in qemu_medians(data, name, modes)]
        # The worst mode decides ("in every mode").
        out["qemu " + name] = ((max(per) if lower else min(per)) if per else None, len(per))
    return out


# (key, target, rule, limit, lower is better)
GOALS = [
    ("precopy", "Precopy RAM stream", "best precopy run ≥ 0.6 × the TCP floor", 0.6, False),
    ("push", "Background push", "best run ≥ 0.5 × min(TCP, UFFDIO_COPY 64 KiB)", 0.5, False),
    ("p50", "Fault p50, push on", "median (hybrid, postcopy) ≤ 3 × floor p50", 3.0, True),
    ("p99", "Fault p99, push on", "median (hybrid, postcopy) ≤ 15 × floor p50", 15.0, True),
    ("p50-nobg", "Fault p50, push off", "median (postcopy-nobg) ≤ 2 × floor p50", 2.0, True),
    ("qemu Total time", "Total time against QEMU", "worst mode's median vmm/QEMU ≤ 1", 1.0, True),
    ("qemu Downtime", "Downtime against QEMU, each as it reports", "worst mode's median vmm/QEMU ≤ 1", 1.0,
     True),
    ("qemu Guest paused", "Guest paused against QEMU, one clock", "worst mode's median vmm/QEMU ≤ 1", 1.0,
     True),
    ("qemu Throughput", "Throughput against QEMU", "worst mode's median vmm/QEMU ≥ 1", 1.0, False),
    ("qemu vCPU blocked", "vCPU blocked against QEMU", "worst postcopy mode's median vmm/QEMU ≤ 1",
     1.0, True),
]


def median_share(runs, key, over):
    """The median over @runs of figure @key as a share of figure @over."""
    return median([v for v in (div(fig(r, key), fig(r, over)) for r in runs) if v is not None])


# The postcopy phase's threads, as a limit note names them, and their CPU figures.
PUSH_THREADS = (("push thread on a CPU", "push_cpu_ms"), ("return path", "return_path_cpu_ms"),
                ("fault server", "faultsrv_cpu_ms"))


def limit_note(data, key):
    """What limits a target, from the figures measured in the same runs ("" if none recorded)."""
    if key == "precopy":
        runs = good_runs(data, ("precopy",))
        parts = [(what, median_share(runs, k, "precopy_ms")) for what, k in
                 (("source thread on a CPU", "precopy_cpu_ms"), ("receiver", "receive_cpu_ms"),
                  ("dirty-log syncs", "precopy_sync_ms"))]
    elif key in ("push", "p50", "p99", "p50-nobg"):
        runs = good_runs(data, ("postcopy-nobg",) if key == "p50-nobg" else PUSH_ON)
        parts = [(what, median_share(runs, k, "postcopy_ms")) for what, k in PUSH_THREADS
                 if not (key == "p50-nobg" and k == "push_cpu_ms")]
    elif key in ("qemu Total time", "qemu Throughput"):
        # Missed where the push carries most of RAM: what the push's threads did, in the worst mode.
        worst = qemu_medians(data, key[5:], QEMU_MODES)
        if not worst:
            return ""
        lower = key == "qemu Total time"
        mode = (max if lower else min)(worst, key=lambda w: w[1])[0]
        if mode not in PUSH_ON:
            return ""
        runs = good_runs(data, (mode,))
        parts = [(what, median_share(runs, k, "postcopy_ms")) for what, k in PUSH_THREADS]
        known = [f"{what} {fmt_pct(v)}" for what, v in parts if v is not None]
        return (f"{mode}: the push carries the pages; of its phase's wall time (medians): "
                + ", ".join(known)) if known else ""
    elif key == "qemu vCPU blocked":
        # Blocked time is faults times their wait: how many pages each asked for, and vmm's wait.
        worst = qemu_medians(data, "vCPU blocked", ("hybrid", "postcopy"))
        if not worst:
            return ""
        mode = max(worst, key=lambda w: w[1])[0]
        runs = [r for r in data["runs"] if q_ok(r) and mode_of(r) == mode]
        mine = median([v for v in (fig(r, "pages_requested") for r in runs) if v is not None])
        theirs = median([v for v in (qfig(r, "pages_requested") for r in runs) if v is not None])
        p50 = median([v for v in (fig(r, "fault_p50_us") for r in runs) if v is not None])
        if mine is None or theirs is None:
            return ""
        return (f"{mode} (medians): pages requested after the switch, vmm {fmt(mine)}, QEMU {fmt(theirs)}"
                + (f"; vmm's fault p50 {fmt(p50)} µs" if p50 is not None else ""))
    elif key in ("qemu Downtime", "qemu Guest paused"):
        runs = good_runs(data, ("hybrid",))
        parts = [(what, median([v for v in (fig(r, k) for r in runs) if v is not None]))
                 for what, k in (("sync", "switch_sync_us"), ("send", "switch_send_us"),
                                 ("drop and register", "switch_drop_us"))]
        parts = [(what, None if v is None else v / 1000) for what, v in parts]
        load = median([v for v in (fig(r, "load_start_ms") for r in runs) if v is not None])
        known = [f"{what} {fmt(v)} ms" for what, v in parts if v is not None]
        if load is not None:
            known.append(f"destination's load and start {fmt(load)} ms")
        return ("hybrid switchover (medians): " + ", ".join(known)) if known else ""
    else:
        return ""
    known = [f"{what} {fmt_pct(v)}" for what, v in parts if v is not None]
    return ("of the phase's wall time (medians): " + ", ".join(known)) if known else ""


def section_goals(data, before):
    """The data path's targets (issue 12), in this run and in the baseline run before the work."""
    now = goal_stats(data)
    was = goal_stats(before) if before else {}
    rows = []
    for key, name, rule, limit, lower in GOALS:
        v, n = now[key]
        b, bn = was.get(key, (None, 0))
        ok = None if v is None else (v <= limit if lower else v >= limit)
        rows.append([name, rule, f"{fmt_ratio(b)} ({bn})" if b is not None else DASH,
                     f"{fmt_ratio(v)} ({n})" if v is not None else DASH, verdict(ok),
                     md_text(limit_note(data, key)) if ok is False else ""])
    text = ("The data path's targets: this run against the baseline measured before the work on "
            "them")
    if before:
        text += (f" (commit {md_text(before.get('commit') or '?')}, {md_text(before.get('date') or '?')}"
                 f"{', quick' if before.get('quick') else ''}; no QEMU runs then)")
    else:
        text += " (none given: bench/report.py --baseline FILE)"
    text += (". In brackets: runs (for the QEMU rows, modes). Where a target is missed, the last "
             "column gives the figures measured in the same runs that bound it, and "
             "docs/performance.md reads them.")
    return ("## Data-path targets, before and after\n\n" + text + "\n\n"
            + md_table(["Target", "Rule", "Before", "Now", "Result", "Measured limits"], rows))


def build_report(data, fl, plots, no_plots, head, before=None):
    sections = [section_header(data, head), section_floors(fl),
                section_targets(data, fl), section_goals(data, before), section_runs(data),
                section_ratios(data, fl), section_precopy_cpu(data), section_push_cpu(data),
                section_switchover(data), section_variants(data, fl),
                section_qemu(data),
                section_linux_boot(data),
                section_plots(plots, no_plots), HOW_TO_READ]
    sections = [s for s in sections if s]
    return "\n\n".join(sections) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Write LATEST.md and the plots from a results JSON of "
                    "bench/run.")
    parser.add_argument("results", metavar="RESULTS.json")
    parser.add_argument("--out", metavar="DIR",
                        help="where to write (default: beside RESULTS.json)")
    parser.add_argument("--no-plots", action="store_true",
                        help="write LATEST.md only; gnuplot is not needed")
    parser.add_argument("--baseline", metavar="FILE", default=BASELINE,
                        help="results measured before the data-path work, for the "
                             "before/after table (default: bench/results/BASELINE.json; "
                             "'' for none)")
    return parser.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    out = args.out or os.path.dirname(os.path.abspath(args.results))
    try:
        data = load(args.results)
        os.makedirs(out, exist_ok=True)
    except BadInput as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{PROG}: cannot create {out}: {e.strerror}", file=sys.stderr)
        return 1
    fl = Floors(data["floors"])
    before = None
    if args.baseline and os.path.exists(args.baseline):
        try:
            before = load(args.baseline)
        except BadInput as e:
            print(f"{PROG}: the baseline: {e}", file=sys.stderr)
            return 1
    # Before the plots are written: they would make the checkout read as changed.
    head = git("describe", "--always")
    # Changes not committed, the results (which a run writes first) left out.
    if head and git("status", "--porcelain", "--untracked-files=no", "--", ":/", ":(top,exclude)bench/results"):
        head += "-dirty"
    plots = [] if args.no_plots else draw_plots(data, fl, out)
    report = build_report(data, fl, plots, args.no_plots, head, before)
    path = os.path.join(out, "LATEST.md")
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(report)
    except OSError as e:
        print(f"{PROG}: cannot write {path}: {e.strerror}", file=sys.stderr)
        return 1
    sys.stdout.write(report)
    return 1 if any(p.failed for p in plots) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
