#!/usr/bin/env python3
"""Self and inclusive time by function from a `perf record -g` profile of the wrapper.

perf (6.1 here) shows the wrapper's own frames as bare addresses: the release binary is linked by rust-lld, whose
executable segment's file offset is 0x1000 below its address, and perf looks the offset up as if it were the
address. This maps them with `nm` instead.

Usage: perf record -e cpu-clock -F 4000 -g --call-graph dwarf,16384 -o perf.data -- target/release/sling-sync-wrapper …
       scripts/perf_report.py perf.data target/release/sling-sync-wrapper [--top 40] [--thread tokio-rt-worker]
"""

import argparse
import bisect
import collections
import re
import subprocess

# Where rust-lld put the executable segment: its address minus its file offset (see `readelf -l`).
SEGMENT_SHIFT = 0x1000


def symbols(binary):
    syms = []
    nm = subprocess.run(["nm", "-n", "-C", binary], capture_output=True, text=True, check=True).stdout
    for line in nm.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in "tTwW" and parts[0].strip():
            syms.append((int(parts[0], 16), re.sub(r"::h[0-9a-f]{16}$", "", parts[2])))
    syms.sort()
    return [a for a, _ in syms], [n for _, n in syms]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("binary")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--thread", help="only samples of threads with this name (perf's comm, digits stripped)")
    args = ap.parse_args()
    addrs, names = symbols(args.binary)
    base = args.binary.rsplit("/", 1)[-1]

    def name(sym, dso, ip):
        if base in dso:
            i = bisect.bisect_right(addrs, int(ip, 16) + SEGMENT_SHIFT) - 1
            return names[i][:110] if i >= 0 else ip
        return (sym or ip) + (" [k]" if "kernel" in dso else "")

    script = subprocess.run(["perf", "script", "-i", args.data, "-F", "comm,tid,ip,sym,dso"],
                            capture_output=True, text=True, check=True).stdout
    self_time, inclusive, threads = collections.Counter(), collections.Counter(), collections.Counter()
    total = 0
    comm, stack = None, []

    def flush():
        nonlocal total
        if comm is None or not stack or (args.thread and comm != args.thread):
            return
        total += 1
        threads[comm] += 1
        self_time[(comm, stack[0])] += 1
        for s in set(stack):
            inclusive[s] += 1

    for line in script.splitlines():
        if not line.strip():
            flush()
            comm, stack = None, []
        elif not line.startswith((" ", "\t")):
            flush()
            comm, stack = re.sub(r"\d+$", "", line.split()[0]), []
        elif m := re.match(r"\s+([0-9a-f]+)\s+(.*?)\s+\((.*)\)$", line):
            ip, sym, dso = m.groups()
            stack.append(name(sym.split("+")[0], dso, ip))
    flush()
    print(f"samples {total}")
    for c, n in threads.most_common():
        print(f"  {n * 100 / total:5.1f}% {c}")
    print("\nself:")
    for (c, s), n in self_time.most_common(args.top):
        print(f"  {n * 100 / total:5.1f}% {c:16} {s}")
    print("\ninclusive:")
    for s, n in inclusive.most_common(args.top * 2):
        print(f"  {n * 100 / total:5.1f}% {s}")


if __name__ == "__main__":
    main()
