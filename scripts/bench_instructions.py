#!/usr/bin/env python3
"""Instructions the wrapper executes per Sling line, counted by valgrind (callgrind), telemetry off and on.

Wall and CPU times on a shared 2-vCPU VM drift by tens of percent from minute to minute, so a change of 10-20 % in
the per-line path can hide in them. An instruction count does not drift: the same binary, input and environment
give the same count whatever else the machine does. It is not a time (cache misses, system calls and waiting are
not in it), so it complements `scripts/bench.py`, it does not replace it.

Counted: the wrapper process, all its threads (user space only); the stand-in Sling (the flood shim) is not traced.
Per line = (count for N lines - count for N/10 lines) / (0.9 N): start-up cancels out. "on" exports over OTLP/HTTP
to bench.py's receiver (examples/otlp_sink.rs, its own process), which answers 200.

Usage: scripts/bench_instructions.py [--lines 100000] [WRAPPER ...]   (default: this tree's release build)
Needs valgrind.
"""

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402


def instructions(wrapper, rep, env, tmp):
    out = tmp / "callgrind.out"
    p = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(wrapper), "--batch",
                        "--log-format", "json", "--sling-bin", str(bench.SHIM), "--config", str(rep)],
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
    m = re.search(r"Collected : (\d+)", p.stderr)
    if not m:
        raise SystemExit(f"no instruction count in valgrind's output:\n{p.stderr[-2000:]}")
    return int(m.group(1))


def per_line(wrapper, lines, tmp, telemetry):
    recv = bench.Receiver() if telemetry else None
    try:
        counts = []
        for n in (lines // 10, lines):
            rep, env = bench.flood_env(tmp, n)
            if recv:
                env = dict(env, OTEL_SDK_DISABLED="", OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
                           OTEL_EXPORTER_OTLP_ENDPOINT=recv.endpoint)
            counts.append(instructions(wrapper, rep, env, tmp))
            if recv:
                got = recv.take_counts()["logs"]
                if got != n + 5:
                    raise SystemExit(f"the receiver got {got} log records of {n + 5}")
        return (counts[1] - counts[0]) / (lines - lines // 10)
    finally:
        if recv:
            recv.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("wrappers", nargs="*")
    ap.add_argument("--lines", type=int, default=100_000)
    args = ap.parse_args()
    if not args.wrappers:
        subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=bench.ROOT, check=True)
    wrappers = [Path(w).resolve() for w in args.wrappers] or [bench.WRAPPER]
    print("| wrapper | instructions per line, telemetry off | telemetry on | on - off |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        (tmp / "home").mkdir()
        for w in wrappers:
            off = per_line(w, args.lines, tmp, False)
            on = per_line(w, args.lines, tmp, True)
            print(f"| {w} | {off:,.0f} | {on:,.0f} | {on - off:,.0f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
