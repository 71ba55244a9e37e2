#!/usr/bin/env python3
"""Old build against new, in the same minutes: rounds of `bench.py --only CASES`, alternating the two binaries
(ABBA), every run of every round pooled per binary, median [min–max] printed side by side.

Usage: scripts/bench_ab.py OLD_BINARY NEW_BINARY [--cases collector,flood_100k] [--rounds 4] [--quick]
OLD_BINARY is typically main's release build copied aside (a rebuild of main would replace it mid-run).
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent / "bench.py"


def spread(values, fmt):
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}–{fmt.format(max(values))}]"


# (sample key, label, format, scale) per case; every case's samples are lists of floats.
FIGURES = {
    "collector": [("ratio", "wall ratio on/off", "{:.3f}", 1), ("on", "wall on", "{:.3f} s", 1),
                  ("off", "wall off", "{:.3f} s", 1), ("own_on", "wrapper CPU on", "{:.0f} ms", 1000),
                  ("own_off", "wrapper CPU off", "{:.0f} ms", 1000), ("rss_kib", "peak RSS on", "{:.1f} MiB", 1 / 1024),
                  ("logs", "log records received", "{:.0f}", 1), ("receiver_cpu", "receiver CPU per run", "{:.0f} ms", 1000)],
}
DEFAULT_FIGURES = [("raw", "stand-in (or Sling) wall", "{:.3f} s", 1), ("wrapper", "wrapper wall", "{:.3f} s", 1),
                   ("ratio", "wall ratio to the stand-in", "{:.3f}", 1), ("own", "wrapper CPU", "{:.0f} ms", 1000),
                   ("per_line", "wrapper CPU per line", "{:.2f} µs", 1e6), ("rss_kib", "peak RSS", "{:.1f} MiB", 1 / 1024)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--cases", default="collector")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    pooled = {"old": {}, "new": {}}
    loads = []
    with tempfile.TemporaryDirectory() as t:
        for i in range(args.rounds):
            order = ("old", "new") if i % 2 == 0 else ("new", "old")
            for side in order:
                out = Path(t) / f"{side}{i}.json"
                cmd = [sys.executable, str(BENCH), "--only", args.cases, "--wrapper", getattr(args, side), "--json", str(out)]
                subprocess.run(cmd + (["--quick"] if args.quick else []), check=True, stdout=subprocess.DEVNULL)
                r = json.loads(out.read_text())
                loads.append(r["load"][0])
                for case in args.cases.split(","):
                    for key, values in r[case]["samples"].items():
                        pooled[side].setdefault(case, {}).setdefault(key, []).extend(values)
    print(f"{args.rounds} rounds, old = {args.old}, new = {args.new}; load average (1 min) during the rounds: "
          f"{spread(loads, '{:.2f}')}")
    for case in args.cases.split(","):
        print(f"\n| {case} | old | new |\n|---|---|---|")
        for key, label, fmt, scale in FIGURES.get(case, DEFAULT_FIGURES):
            old = [v * scale for v in pooled["old"][case].get(key, [])]
            new = [v * scale for v in pooled["new"][case].get(key, [])]
            if not old or not new:
                continue
            print(f"| {label} ({len(new)} runs) | {spread(old, fmt)} | {spread(new, fmt)} |")


if __name__ == "__main__":
    sys.exit(main())
