#!/usr/bin/env python3
"""Benchmarks of sling-sync-wrapper against raw Sling (or its stand-in), measured in one run on one machine.

Every comparison runs pairs in ABBA order (raw, wrapper / wrapper, raw / ...) after one warm-up run of each side,
and reports the median with min and max of every figure. Besides wall time it reports the wrapper's own CPU: the
process's user + system time excluding its children (Sling), taken when it has exited but is not yet reaped.
Results go to docs/PERFORMANCE.md (and stdout).

Usage: scripts/bench.py [--quick] [--out docs/PERFORMANCE.md]
       scripts/bench.py --only collector,flood_100k [--wrapper OLD_BINARY] [--json out.json]
With --only, just those cases run and their rows are printed (and written as JSON), not the report; with --wrapper,
another build (e.g. main's, copied aside) is measured, so that old and new can alternate in the same minutes.
Needs: a release build and the OTLP receiver `examples/otlp_sink.rs` (built here), the pinned Sling (installed here), sqlite3, awk, and PostgreSQL on
127.0.0.1:5432 (user postgres) for the 1M-row case (skipped with a note if unreachable).
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WRAPPER = ROOT / "target" / "release" / "sling-sync-wrapper"
SHIM = ROOT / "tests" / "fixtures" / "sling-shim.sh"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout.strip()


# ---------------------------------------------------------------------------------------------------------------
# One run


class Run:
    """What one run of a command showed: wall seconds, the process's own CPU seconds (children excluded), the CPU
    of the whole tree, peak RSS of the process (KiB) and the lines its stdout delivered."""

    def __init__(self, wall, own_cpu, tree_cpu, rss_kib, lines, code):
        self.wall, self.own_cpu, self.tree_cpu, self.rss_kib, self.lines, self.code = wall, own_cpu, tree_cpu, rss_kib, lines, code


def vm_hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def zombie_cpu(pid):
    """(own, children) CPU seconds of an exited, not yet reaped process, from /proc/PID/stat (clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime) / CLK_TCK, (cutime + cstime) / CLK_TCK


def run(cmd, env, slow_reader=None, check=True):
    """Runs `cmd` with stdout into a pipe drained as it writes (as a container runtime drains a CronJob), or read
    slowly: `slow_reader=(every, seconds)` sleeps that long after every `every` lines."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    lines, err = [0], []

    def drain_fast():
        n = 0
        while chunk := p.stdout.read(1 << 16):
            n += chunk.count(b"\n")
        lines[0] = n

    def drain_slow():
        every, pause = slow_reader
        n = 0
        for _ in p.stdout:
            n += 1
            if n % every == 0:
                time.sleep(pause)
        lines[0] = n

    exited = threading.Event()
    ended = [0.0]

    def wait_exit():
        # WNOWAIT: the process stays a zombie, so its CPU times can still be read below.
        os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT)
        ended[0] = time.perf_counter()
        exited.set()

    threads = [threading.Thread(target=drain_slow if slow_reader else drain_fast),
               threading.Thread(target=lambda: err.append(p.stderr.read())),
               threading.Thread(target=wait_exit)]
    for t in threads:
        t.start()
    peak = 0
    while not exited.wait(0.005):
        v = vm_hwm_kib(p.pid)
        if v:
            peak = max(peak, v)
    _own_ticks, children = zombie_cpu(p.pid)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    for t in threads:
        t.join()
    tree = usage.ru_utime + usage.ru_stime
    # Own CPU: the tree (µs) minus the reaped children (clock ticks, rounded down: up to 10 ms too much). The
    # process's own tick count would round each of its threads down instead.
    own = tree - children
    if check and p.returncode != 0:
        raise SystemExit(f"benchmark command failed ({p.returncode}): {' '.join(map(str, cmd))}\n{b''.join(err).decode()[-2000:]}")
    return Run(ended[0] - start, own, tree, peak or usage.ru_maxrss, lines[0], p.returncode)


# ---------------------------------------------------------------------------------------------------------------
# Statistics and pairs


def spread(values, fmt="{:.3f}", scale=1.0):
    vs = [v * scale for v in values]
    return f"{fmt.format(statistics.median(vs))} [{fmt.format(min(vs))}–{fmt.format(max(vs))}]"


def pairs(a, b, n):
    """Runs `a` and `b` (callables returning Run) after one warm-up each, in ABBA order; returns both lists."""
    a(), b()
    ra, rb = [], []
    for i in range(n):
        if i % 2 == 0:
            ra.append(a()); rb.append(b())
        else:
            rb.append(b()); ra.append(a())
    return ra, rb


def compare(name, raw, wrap, env, n, lines=None, target="≤ 1.03"):
    ra, rw = pairs(lambda: run(raw, env), lambda: run(wrap, env), n)
    ratios = [w.wall / r.wall for r, w in zip(ra, rw)]
    row = {
        "name": name, "runs": n, "target": target,
        "raw": spread([r.wall for r in ra], "{:.3f} s"),
        "wrapper": spread([w.wall for w in rw], "{:.3f} s"),
        "ratio": spread(ratios),
        "ratio_median": statistics.median(ratios),
        "own": spread([w.own_cpu for w in rw], "{:.0f} ms", 1000),
        "own_median": statistics.median(w.own_cpu for w in rw),
        "lines": lines,
        "per_line": spread([w.own_cpu / lines for w in rw], "{:.2f} µs", 1e6) if lines else "—",
        "rss": spread([w.rss_kib for w in rw], "{:.1f}", 1 / 1024) + " MiB",
        # Every run's figures, for combining rounds run with --only.
        "samples": {"raw": [r.wall for r in ra], "wrapper": [w.wall for w in rw], "ratio": ratios,
                    "own": [w.own_cpu for w in rw], "rss_kib": [w.rss_kib for w in rw],
                    "per_line": [w.own_cpu / lines for w in rw] if lines else []},
    }
    if lines:
        delivered = min(w.lines for w in rw)
        row["delivered"] = delivered
    print(f"{name}: ratio {row['ratio']}, wrapper CPU {row['own']}, per line {row['per_line']}, RSS {row['rss']}", flush=True)
    return row


# ---------------------------------------------------------------------------------------------------------------
# Cases


def base_env(tmp, extra=None):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp / "home"),
        "SLING_LOGGING": "JSON",
        "SLING_DISABLE_TELEMETRY": "true",
        "SQLITE_PATH": shutil.which("sqlite3") or "",
        "MISSION_CLUSTER_ID": "bench",
        "SLING_STATE_PATH": str(tmp / "state"),
        "OTEL_SDK_DISABLED": "true",
        # Wrapper against raw Sling, doing the same work; verification's cost is scripts/bench_verify.py's subject.
        "SYNC_VERIFY": "off",
    }
    env.update(extra or {})
    return env


def wrapper_cmd(sling, pipeline_file, *more):
    return [str(WRAPPER), "--batch", "--log-format", "json", "--sling-bin", str(sling), "--config", str(pipeline_file), *more]


def bench_sqlite(sling, tmp, rows, n):
    mission, command = tmp / "m.db", tmp / "c.db"
    sh(["sqlite3", str(mission),
        "create table events (id integer primary key, kind text, payload text, amount real, updated_at text);"
        f"with recursive g(i) as (select 1 union all select i + 1 from g where i < {rows}) "
        "insert into events select i, 'k' || (i % 13), hex(randomblob(16)), i * 0.5, datetime('2026-01-01', '+' || i || ' seconds') from g;"])
    rep = tmp / "sqlite_events.yaml"
    rep.write_text("source: BENCH_SRC\ntarget: BENCH_DST\nstreams:\n  main.events:\n    mode: full-refresh\n    object: main.events\n")
    env = base_env(tmp, {"BENCH_SRC": f"sqlite://{mission}", "BENCH_DST": f"sqlite://{command}"})
    return compare(f"copy SQLite → SQLite, {rows:,} rows", [str(sling), "run", "-r", str(rep)], wrapper_cmd(sling, rep), env, n)


def psql(db, sql):
    return sh(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])


def bench_postgres(sling, tmp, rows, n):
    try:
        psql("postgres", "select 1")
    except Exception as e:  # noqa: BLE001 - report and skip
        print(f"PostgreSQL unreachable, skipping: {e}")
        return None
    src, dst = f"bench_src_{os.getpid()}", f"bench_dst_{os.getpid()}"
    for db in (src, dst):
        psql("postgres", f"create database {db}")
    try:
        psql(src, "create table events (id bigint primary key, kind text, payload text, amount numeric(12,2), updated_at timestamptz);"
                  f"insert into events select g, 'k' || (g % 13), md5(g::text), g * 0.5, timestamptz '2026-01-01' + g * interval '1 second' from generate_series(1, {rows}) g;")
        rep = tmp / "pg_events.yaml"
        rep.write_text("source: BENCH_PG_SRC\ntarget: BENCH_PG_DST\nstreams:\n  public.events:\n    mode: full-refresh\n    object: public.events\n")
        env = base_env(tmp, {
            "BENCH_PG_SRC": f"postgresql://postgres@127.0.0.1:5432/{src}?sslmode=disable",
            "BENCH_PG_DST": f"postgresql://postgres@127.0.0.1:5432/{dst}?sslmode=disable",
        })
        return compare(f"copy PostgreSQL → PostgreSQL, {rows:,} rows", [str(sling), "run", "-r", str(rep)], wrapper_cmd(sling, rep), env, n)
    finally:
        for db in (src, dst):
            try:
                psql("postgres", f"drop database if exists {db} with (force)")
            except Exception:  # noqa: BLE001
                pass


def flood_env(tmp, lines, line_bytes=0, extra=None):
    shim_dir = tmp / "shim"
    shim_dir.mkdir(exist_ok=True)
    rep = tmp / "flood.yaml"
    rep.write_text("source: A\ntarget: B\nstreams:\n  main.orders:\n    object: main.orders\n")
    env = base_env(tmp, {"SHIM_DIR": str(shim_dir), "SHIM_MODE": "flood", "SHIM_LINES": str(lines), "SHIM_LINE_BYTES": str(line_bytes)})
    env.update(extra or {})
    return rep, env


def bench_flood(tmp, lines, n, line_bytes=0, target="≤ 1 µs/line"):
    """The stand-in (awk writing JSON lines in large blocks) alone and as the wrapper's Sling."""
    rep, env = flood_env(tmp, lines, line_bytes)
    what = f"{lines:,} lines of 1 MiB" if line_bytes else f"flood, {lines:,} lines"
    row = compare(what, [str(SHIM), "run", "-r", str(rep)], wrapper_cmd(SHIM, rep), env, n, lines=lines + 2, target=target)
    return row


def bench_slow_reader(tmp, lines, n):
    """A reader that sleeps 2 ms every 100 lines: every line must arrive, and the wrapper must not queue them."""
    rep, env = flood_env(tmp, lines)
    runs = [run(wrapper_cmd(SHIM, rep), env, slow_reader=(100, 0.002)) for _ in range(n)]
    sling_lines = lines + 2
    # Every Sling line plus the wrapper's own lines (start, retry, outcome) — count Sling's alone for the check.
    row = {
        "lines": lines,
        "delivered": spread([r.lines for r in runs], "{:.0f}"),
        "min_delivered": min(r.lines for r in runs),
        "expected_at_least": sling_lines,
        "rss": spread([r.rss_kib for r in runs], "{:.1f}", 1 / 1024) + " MiB",
        "wall": spread([r.wall for r in runs], "{:.2f} s"),
        "runs": n,
    }
    print(f"slow reader, {lines:,} lines: delivered {row['delivered']} (≥ {sling_lines}), RSS {row['rss']}, wall {row['wall']}", flush=True)
    return row


# The receiver that answers like a collector: `examples/otlp_sink.rs` in a process of its own (built here), which
# answers 200 to every export and counts log records, spans, span events and dropped span events by walking the
# protobuf. In Rust rather than in the harness's Python: the Python receiver took 45–76 ms of CPU per 100k-line run
# (0.2 s runs) on the same two vCPUs as the wrapper, so the benchmark measured it nearly as much as the wrapper; the
# sink takes ~10 ms. Its CPU per run is reported with the figures.
SINK = ROOT / "target" / "release" / "examples" / "otlp_sink"


class Receiver:
    def __init__(self):
        if not SINK.exists():
            subprocess.run(["cargo", "build", "--release", "--locked", "--quiet", "--example", "otlp_sink"], cwd=ROOT, check=True)
        self.proc = subprocess.Popen([str(SINK)], stdout=subprocess.PIPE, text=True)
        ready = self.proc.stdout.readline()  # "listening on http://127.0.0.1:PORT"
        if not ready.startswith("listening on http://"):
            raise SystemExit(f"{SINK} did not start: {ready!r}")
        self.endpoint = ready.split()[-1]

    def take_counts(self):
        """What arrived since the last call: logs, spans, events, dropped_events, requests, bytes."""
        with urllib.request.urlopen(self.endpoint + "/counts", timeout=10) as r:
            return json.loads(r.read())

    def cpu(self):
        """The receiver's CPU seconds so far (user + system)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def close(self):
        self.proc.kill()
        self.proc.wait()


def bench_live_collector(tmp, lines, n):
    """The same flood with telemetry off and with telemetry on, exporting to a receiver that answers."""
    recv = Receiver()
    try:
        rep, env = flood_env(tmp, lines)
        on = dict(env, OTEL_SDK_DISABLED="", OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf", OTEL_EXPORTER_OTLP_ENDPOINT=recv.endpoint)
        counts, recv_cpu = [], []

        def with_telemetry():
            before = recv.cpu()
            r = run(wrapper_cmd(SHIM, rep), on)
            counts.append(recv.take_counts())
            recv_cpu.append(recv.cpu() - before)
            return r

        roff, ron = pairs(lambda: run(wrapper_cmd(SHIM, rep), env), with_telemetry, n)
        counts, recv_cpu = counts[1:], recv_cpu[1:]  # the warm-up's
        ratios = [b.wall / a.wall for a, b in zip(roff, ron)]
        row = {
            "lines": lines, "runs": n,
            "off": spread([r.wall for r in roff], "{:.3f} s"),
            "on": spread([r.wall for r in ron], "{:.3f} s"),
            "ratio": spread(ratios),
            "own_off": spread([r.own_cpu for r in roff], "{:.0f} ms", 1000),
            "own_on": spread([r.own_cpu for r in ron], "{:.0f} ms", 1000),
            "rss": spread([r.rss_kib for r in ron], "{:.1f}", 1 / 1024) + " MiB",
            "logs": spread([c["logs"] for c in counts], "{:.0f}"),
            "events": spread([c["events"] for c in counts], "{:.0f}"),
            "dropped_events": spread([c["dropped_events"] for c in counts], "{:.0f}"),
            "receiver_cpu": spread(recv_cpu, "{:.0f} ms", 1000),
            "bytes_per_record": spread([c["bytes"] / max(c["logs"], 1) for c in counts], "{:.0f}"),
            "samples": {"off": [r.wall for r in roff], "on": [r.wall for r in ron], "ratio": ratios,
                        "own_off": [r.own_cpu for r in roff], "own_on": [r.own_cpu for r in ron],
                        "rss_kib": [r.rss_kib for r in ron], "logs": [c["logs"] for c in counts],
                        "receiver_cpu": recv_cpu},
        }
        print(f"live collector, {lines:,} lines: ratio {row['ratio']}, RSS {row['rss']}, log records {row['logs']}, "
              f"span events {row['events']} (+{row['dropped_events']} dropped), receiver CPU {row['receiver_cpu']}", flush=True)
        return row
    finally:
        recv.close()


def bench_collector_long(tmp, lines, line_bytes, n):
    """Lines near Sling's 16 KiB limit with telemetry on and a receiver that answers: peak RSS, everything delivered.
    (Before span events had a text budget and the log queue a byte bound, 6,000 such lines took ~540 MiB.)"""
    recv = Receiver()
    try:
        rep, env = flood_env(tmp, lines, line_bytes)
        on = dict(env, OTEL_SDK_DISABLED="", OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf", OTEL_EXPORTER_OTLP_ENDPOINT=recv.endpoint)
        runs, counts = [], []
        for _ in range(n):
            runs.append(run(wrapper_cmd(SHIM, rep), on))
            counts.append(recv.take_counts())
        row = {
            "lines": lines, "line_bytes": line_bytes, "runs": n,
            "wall": spread([r.wall for r in runs], "{:.3f} s"),
            "rss": spread([r.rss_kib for r in runs], "{:.1f}", 1 / 1024) + " MiB",
            "logs": spread([c["logs"] for c in counts], "{:.0f}"),
            "events": spread([c["events"] for c in counts], "{:.0f}"),
            "samples": {"rss_kib": [r.rss_kib for r in runs], "logs": [c["logs"] for c in counts]},
        }
        print(f"long lines to a live collector, {lines:,} × {line_bytes:,} bytes: RSS {row['rss']}, wall {row['wall']}, "
              f"log records {row['logs']}, span events {row['events']}", flush=True)
        return row
    finally:
        recv.close()


def bench_spawn_latency(tmp, runs):
    """Wrapper start → first Sling spawn: a stand-in Sling records when it starts; the same stand-in launched
    directly gives the baseline (process start of the stand-in itself), subtracted out."""
    stamp = tmp / "stamp.sh"
    stamp.write_text("#!/bin/bash\nprintf '%s' \"$EPOCHREALTIME\" > \"$STAMP_FILE\"\n")
    stamp.chmod(0o755)
    rep = tmp / "stamp.yaml"
    rep.write_text("source: A\ntarget: B\nstreams:\n  main.orders:\n    object: main.orders\n")
    out = tmp / "stamp.out"
    env = base_env(tmp, {"STAMP_FILE": str(out), "SYNC_MAX_RETRIES": "0"})

    def once(cmd):
        t0 = time.time()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        return float(out.read_text()) - t0

    direct, wrapped = [], []
    for i in range(runs):
        # The stand-in prints no row-count line, so the pipeline "fails": irrelevant to the latency measured.
        for side in ((direct, [str(stamp)]), (wrapped, wrapper_cmd(stamp, rep)))[:: 1 if i % 2 == 0 else -1]:
            side[0].append(once(side[1]))
    over = [1000 * (w - d) for d, w in zip(direct, wrapped)]
    print(f"start → first spawn: {spread(over, '{:.1f} ms')}", flush=True)
    return {"overhead": spread(over, "{:.1f} ms")}


def bench_noop(sling, tmp, files, runs):
    d = tmp / f"many_{files}"
    d.mkdir(exist_ok=True)
    mission, command = tmp / "noop_m.db", tmp / "noop_c.db"
    if not mission.exists():
        sh(["sqlite3", str(mission), "create table t (id integer primary key, updated_at text);"])
        sh(["sqlite3", str(command), "create table t (id integer primary key, updated_at text);"])
    for i in range(files):
        (d / f"p{i:04d}.yaml").write_text(
            "source: NOOP_SRC\ntarget: NOOP_DST\ndefaults:\n  mode: incremental\n  primary_key: [id]\n  update_key: updated_at\n"
            f"streams:\n  main.t:\n    object: main.t_{i}\n")
    env = base_env(tmp, {"NOOP_SRC": f"sqlite://{mission}", "NOOP_DST": f"sqlite://{command}", "SLING_STATE_PATH": str(tmp / f"noop_state_{files}")})
    cmd = [str(WRAPPER), "--batch", "--log-format", "json", "--sling-bin", str(sling), "--pipeline-dir", str(d), "--mode", "noop"]
    rs = [run(cmd, env) for _ in range(runs + 1)][1:]  # the first creates the state directories
    row = {"files": files, "wall": spread([r.wall for r in rs], "{:.3f} s"), "wall_median": statistics.median(r.wall for r in rs),
           "own": spread([r.own_cpu for r in rs], "{:.0f} ms", 1000), "own_median": statistics.median(r.own_cpu for r in rs)}
    print(f"noop over {files} pipeline files: {row['wall']}, wrapper CPU {row['own']}", flush=True)
    return row


def bench_unreachable_collector(sling, tmp, runs):
    """Exit delay added by telemetry when the collector is dead (nothing listens) or silent (accepts, never answers)."""
    mission, command = tmp / "u_m.db", tmp / "u_c.db"
    sh(["sqlite3", str(mission), "create table t (id integer primary key, v text); insert into t values (1, 'a'), (2, 'b');"])
    rep = tmp / "u.yaml"
    rep.write_text("source: U_SRC\ntarget: U_DST\nstreams:\n  main.t:\n    mode: full-refresh\n    object: main.t\n")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()
    s.close()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    held = []
    threading.Thread(target=lambda: [held.append(silent.accept()) for _ in range(64)], daemon=True).start()
    base = base_env(tmp, {"U_SRC": f"sqlite://{mission}", "U_DST": f"sqlite://{command}"})
    results = {}
    try:
        for label, extra in [
            ("telemetry off", {}),
            ("collector dead", {"OTEL_SDK_DISABLED": "", "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{dead[0]}:{dead[1]}"}),
            ("collector silent", {"OTEL_SDK_DISABLED": "", "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{silent.getsockname()[0]}:{silent.getsockname()[1]}"}),
        ]:
            env = dict(base, **extra)
            results[label] = [run(wrapper_cmd(sling, rep), env).wall for _ in range(runs)]
            print(f"{label}: {spread(results[label], '{:.3f} s')}", flush=True)
    finally:
        silent.close()
        for c, _ in held:
            c.close()
    return results


CASES = ("sqlite", "postgres", "flood_100k", "flood_1m", "long_lines", "slow_reader", "collector", "collector_long", "spawn", "noop",
         "unreachable")


def main():
    global WRAPPER
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer pairs and smaller sizes, for checking the script")
    ap.add_argument("--out", default=str(ROOT / "docs" / "PERFORMANCE.md"))
    ap.add_argument("--only", help=f"comma-separated cases to run ({', '.join(CASES)}); prints rows, writes no report")
    ap.add_argument("--wrapper", help="the wrapper binary to measure (default: this tree's release build, built here)")
    ap.add_argument("--json", help="with --only: also write the rows to this file")
    args = ap.parse_args()
    q = args.quick
    only = set(args.only.split(",")) if args.only else set(CASES)
    if only - set(CASES):
        ap.error(f"unknown case(s): {', '.join(sorted(only - set(CASES)))}")
    if args.wrapper:
        WRAPPER = Path(args.wrapper).resolve()
    else:
        subprocess.run(["cargo", "build", "--release", "--locked", "--quiet", "--bins", "--example", "otlp_sink"], cwd=ROOT, check=True)
    sling = Path(sh(["bash", str(ROOT / "scripts" / "install-sling.sh")]))
    cases = {
        "sqlite": lambda tmp: bench_sqlite(sling, tmp, 20_000 if q else 200_000, 2 if q else 8),
        "postgres": lambda tmp: bench_postgres(sling, tmp, 50_000 if q else 1_000_000, 2 if q else 4),
        "flood_100k": lambda tmp: bench_flood(tmp, 100_000, 2 if q else 8),
        "flood_1m": lambda tmp: bench_flood(tmp, 1_000_000, 2 if q else 4),
        "long_lines": lambda tmp: bench_flood(tmp, 100, 2 if q else 8, line_bytes=1 << 20, target="≤ 1.5×"),
        "slow_reader": lambda tmp: bench_slow_reader(tmp, 300_000, 1 if q else 3),
        "collector": lambda tmp: bench_live_collector(tmp, 100_000, 2 if q else 24),
        "collector_long": lambda tmp: bench_collector_long(tmp, 6_000, 16_000, 1 if q else 3),
        "spawn": lambda tmp: bench_spawn_latency(tmp, 6 if q else 20),
        "noop": lambda tmp: [bench_noop(sling, tmp, f, 1 if q else 3) for f in (50, 500, 2000)],
        "unreachable": lambda tmp: bench_unreachable_collector(sling, tmp, 1 if q else 3),
    }
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        (tmp / "home").mkdir()
        r = {name: run_case(tmp) for name, run_case in cases.items() if name in only}
    if args.only:
        if args.json:
            Path(args.json).write_text(json.dumps({"wrapper": str(WRAPPER), "load": os.getloadavg(), **r}, indent=1))
        return
    write_report(Path(args.out), r, sling, q)


def write_report(path, r, sling, quick):
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    mem = next((line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal")), "?")
    sling_version = sh([str(sling), "--version"]).replace("\n", " ")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Performance",
        "",
        f"Measured {now} by `scripts/bench.py`{' --quick (fewer pairs, smaller sizes)' if quick else ''}, on "
        f"{os.cpu_count()} × {cpu}, {int(mem) // 1024} MiB RAM, {platform.system()} {platform.release()}; "
        f"{sling_version}; release build. Every figure is the median [min–max] of its runs. Raw and wrapper runs "
        "alternate in ABBA order after one warm-up run of each. The wrapper ran with `--batch --log-format json`; "
        "stdout went into a pipe drained as it was written (as a container runtime drains a CronJob); telemetry off "
        "unless stated, verification (`SYNC_VERIFY`) off. **Wrapper CPU** is the wrapper process's own user + system time, its children (Sling) "
        "excluded: the whole tree's time from `wait4` minus the children's from `/proc/PID/stat` read while the "
        "wrapper is a zombie (clock ticks: ±10 ms).",
        "",
        "| Case | Pairs | Raw (stand-in or Sling) | Wrapper | Ratio | Target | Wrapper CPU | per line | Wrapper peak RSS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key in ("sqlite", "postgres", "flood_100k", "flood_1m", "long_lines"):
        row = r.get(key)
        if row:
            lines.append(f"| {row['name']} | {row['runs']} | {row['raw']} | {row['wrapper']} | **{row['ratio']}** | "
                         f"{row['target']} | {row['own']} | {row['per_line']} | {row['rss']} |")
    a, b = r.get("flood_100k"), r.get("flood_1m")
    if a and b:
        marginal = (b["own_median"] - a["own_median"]) / (b["lines"] - a["lines"]) * 1e6
        lines += ["", f"Marginal wrapper CPU per Sling line (flood 1M minus flood 100k, medians, start-up cancelled out): "
                      f"**{marginal:.2f} µs** (target ≤ 1 µs)."]
    s, c, sr = r["spawn"], r["collector"], r["slow_reader"]
    u = r["unreachable"]
    off = statistics.median(u["telemetry off"])
    noop = r["noop"]
    lines += [
        "",
        "| Measure | Result | Target |",
        "|---|---|---|",
        f"| slow reader (sleeps 2 ms every 100 lines), {sr['lines']:,}-line flood, {sr['runs']} runs: lines delivered | "
        f"{sr['delivered']} (Sling printed {sr['expected_at_least']:,}; the rest are the wrapper's own) | all |",
        f"| same: wrapper peak RSS · wall | {sr['rss']} · {sr['wall']} | ≤ 40 MB |",
        f"| live collector (OTLP/HTTP receiver `examples/otlp_sink.rs` in its own process, answers 200), {c['lines']:,}-line "
        f"flood, {c['runs']} pairs: wall telemetry off · on | {c['off']} · {c['on']} | |",
        f"| same: ratio on/off | **{c['ratio']}** | ≤ 1.25 |",
        f"| same: wrapper CPU off · on; peak RSS on | {c['own_off']} · {c['own_on']}; {c['rss']} | ≤ 40 MB |",
        f"| same: log records · span events (+ dropped, counted by the span's `dropped_events_count`) received | "
        f"{c['logs']} · {c['events']} (+{c['dropped_events']}) | every line a log record |",
        f"| same: the receiver's CPU per run; bytes per log record sent | {c['receiver_cpu']}; {c['bytes_per_record']} | |",
        f"| live collector, {r['collector_long']['lines']:,} lines of {r['collector_long']['line_bytes']:,} bytes (near Sling's "
        f"16 KiB limit), {r['collector_long']['runs']} runs: peak RSS · wall | {r['collector_long']['rss']} · "
        f"{r['collector_long']['wall']} | ≤ 40 MB |",
        f"| same: log records · span events received | {r['collector_long']['logs']} · {r['collector_long']['events']} | "
        f"every line a log record |",
        f"| wrapper start → first Sling spawn (over launching the stand-in directly) | {s['overhead']} | ≤ 20 ms |",
    ]
    for n in noop:
        lines.append(f"| noop over {n['files']} pipeline files (2 shared connections): wall · wrapper CPU | {n['wall']} · {n['own']} | "
                     f"{'≤ 1 s' if n['files'] == 500 else ''} |")
    if len(noop) >= 2:
        a, b = noop[0], noop[-1]
        per_file = (b["wall_median"] - a["wall_median"]) / (b["files"] - a["files"]) * 1000
        cpu_per_file = (b["own_median"] - a["own_median"]) / (b["files"] - a["files"]) * 1000
        lines.append(f"| noop: cost of one more file ({a['files']} → {b['files']}): wall · wrapper CPU | {per_file:.2f} ms · {cpu_per_file:.2f} ms | linear |")
    lines += [
        f"| small job, telemetry off | {spread(u['telemetry off'], '{:.3f} s')} | |",
        f"| same, collector dead (connection refused) | {spread(u['collector dead'], '{:.3f} s')} (+{statistics.median(u['collector dead']) - off:.3f} s) | exit ≤ 5 s after Sling |",
        f"| same, collector silent (accepts, never answers) | {spread(u['collector silent'], '{:.3f} s')} (+{statistics.median(u['collector silent']) - off:.3f} s) | exit ≤ 5 s after Sling |",
        "",
        "Notes: floods, long lines and the slow reader use `tests/fixtures/sling-shim.sh` in `flood` mode as Sling "
        "(awk writing JSON lines in large blocks; raw = the stand-in alone), because real Sling cannot be made to print "
        "that many lines without `--trace`, which prints secrets. Per-line CPU is the wrapper's CPU over the whole run "
        "divided by the lines (start-up included). The noop figures include one `sling --version` and one "
        "`sling conns test` per connection (each Sling start costs about 0.3 s).",
        "",
    ]
    # Everything from the history marker on is kept by hand across runs.
    marker = "<!-- history: kept by scripts/bench.py -->"
    tail = ""
    if path.exists() and marker in path.read_text():
        tail = path.read_text()[path.read_text().index(marker):]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + ("\n" + tail if tail else ""))
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
