#!/usr/bin/env python3
"""The WAN case: many small pipelines whose mission database sits behind a slow link.

A PostgreSQL mission database is reached through a delay-adding TCP forwarder on 127.0.0.1 (asyncio, in its own
process: every chunk is delivered half a round trip after it was read, in each direction, so the link has latency
but no bandwidth limit). 16 pipelines copy ~2,000 rows each (full-refresh, so every run does the same work) into
one SQLite file per pipeline. One run alternates, round by round:

  wrapper --concurrency 1     the pipelines one after another (the default)
  wrapper --concurrency 8
  raw Sling, xargs -P 8       `sling run -r FILE` per pipeline, 8 at a time

and reports medians, the ratios the issue sets targets for, and the wrapper's peak RSS at 8. Results go into their
own section of docs/PERFORMANCE.md (scripts/bench.py keeps everything after its history marker).

Usage: scripts/bench_wan.py [--rounds 5] [--rtt-ms 100] [--quick] [--out docs/PERFORMANCE.md]
Needs: a release build (built here), the pinned Sling (installed here), sqlite3, PostgreSQL on 127.0.0.1:5432 (user
postgres). Network traffic stays on 127.0.0.1.
"""

import argparse
import asyncio
import datetime
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the shared harness: sh(), vm_hwm_kib())

ROOT = Path(__file__).resolve().parent.parent
WRAPPER = ROOT / "target" / "release" / "sling-sync-wrapper"
PIPELINES = 16
ROWS = 2_000
BEGIN = "<!-- wan: written by scripts/bench_wan.py -->"
END = "<!-- /wan -->"


# --- the delayed link ------------------------------------------------------------------------------
async def _pump(reader, writer, delay):
    """Copies one direction, delivering every chunk `delay` seconds after it was read (order kept)."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    sender = asyncio.create_task(deliver())
    try:
        while data := await reader.read(65536):
            queue.put_nowait((loop.time() + delay, data))
    except ConnectionError:
        pass
    queue.put_nowait((0, None))
    try:
        await sender
    except ConnectionError:
        pass


async def _serve_proxy(upstream_port, one_way):
    async def handle(client_r, client_w):
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_pump(client_r, up_w, one_way), _pump(up_r, client_w, one_way))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


class Link:
    """The forwarder as a child process (so its event loop does not share the harness's interpreter)."""

    def __init__(self, upstream_port, rtt_ms):
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-link", str(upstream_port), str(rtt_ms)],
            stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


# --- measuring -------------------------------------------------------------------------------------
def psql(db, sql, port=5432):
    return bench.sh(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1",
                     "-qAt", "-c", sql])


def timed(cmd, env, sample_rss=False):
    """Wall seconds of one run and the process's own peak RSS (KiB); output drained as a container runtime does."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    err = []
    drains = [threading.Thread(target=lambda: [None for _ in iter(lambda: p.stdout.read(65536), b"")]),
              threading.Thread(target=lambda: err.append(p.stderr.read()))]
    for t in drains:
        t.start()
    peak = 0
    while p.poll() is None:
        if sample_rss:
            peak = max(peak, bench.vm_hwm_kib(p.pid) or 0)
        time.sleep(0.005)
    for t in drains:
        t.join()
    wall = time.perf_counter() - start
    if p.returncode != 0:
        raise SystemExit(f"benchmark command failed ({p.returncode}): {' '.join(map(str, cmd))}\n"
                         f"{b''.join(err).decode()[-2000:]}")
    return wall, peak


def setup(tmp, db, link_port, rows):
    tables = []
    for i in range(1, PIPELINES + 1):
        t = f"t{i:02d}"
        psql(db, f"create table {t} as select g as id, md5(g::text) as payload, g * 0.5 as amount, "
                 f"timestamp '2026-01-01' + g * interval '1 second' as updated_at from generate_series(1, {rows}) g;"
                 f"alter table {t} add primary key (id);")
        tables.append(t)
    pipes = tmp / "pipelines"
    pipes.mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp / "home"),
        "SLING_LOGGING": "JSON",
        "SLING_DISABLE_TELEMETRY": "true",
        "SQLITE_PATH": shutil.which("sqlite3") or "",
        "MISSION_CLUSTER_ID": "bench-wan",
        "SLING_STATE_PATH": str(tmp / "state"),
        "OTEL_SDK_DISABLED": "true",
        "WAN_SRC": f"postgresql://postgres@127.0.0.1:{link_port}/{db}?sslmode=disable",
    }
    for i, t in enumerate(tables, 1):
        env[f"DST_{i:02d}"] = f"sqlite://{tmp / f'dst_{i:02d}.db'}"
        (pipes / f"{t}.yaml").write_text(
            f"source: WAN_SRC\ntarget: DST_{i:02d}\nstreams:\n  public.{t}:\n    mode: full-refresh\n"
            f"    object: main.{t}\n")
    return pipes, env


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rtt-ms", type=int, default=100)
    ap.add_argument("--quick", action="store_true", help="one round, for checking the script")
    ap.add_argument("--out", default=str(ROOT / "docs" / "PERFORMANCE.md"))
    ap.add_argument("--serve-link", nargs=2, type=int, metavar=("UPSTREAM_PORT", "RTT_MS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_link:
        upstream, rtt = args.serve_link
        try:
            asyncio.run(_serve_proxy(upstream, rtt / 2000))
        except KeyboardInterrupt:
            pass
        return 0
    rounds = 1 if args.quick else args.rounds
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=ROOT, check=True)
    sling = Path(bench.sh(["bash", str(ROOT / "scripts" / "install-sling.sh")]))
    db = f"bench_wan_{os.getpid()}"
    psql("postgres", f"create database {db}")
    link = Link(5432, args.rtt_ms)
    try:
        with tempfile.TemporaryDirectory() as t:
            tmp = Path(t)
            (tmp / "home").mkdir()
            pipes, env = setup(tmp, db, link.port, ROWS)
            # Verification off: wrapper and raw Sling do the same work (its cost is bench_verify.py's subject).
            wrapper = [str(WRAPPER), "--batch", "--log-format", "json", "--sling-bin", str(sling),
                       "--verify", "off", "--pipeline-dir", str(pipes)]
            raw8 = ["bash", "-c", f'ls "{pipes}"/*.yaml | xargs -P 8 -n 1 "{sling}" run -r']
            cases = {
                "wrapper --concurrency 1": (wrapper + ["--concurrency", "1"], False),
                "wrapper --concurrency 8": (wrapper + ["--concurrency", "8"], True),
                "raw Sling, xargs -P 8": (raw8, False),
            }
            timed(cases["raw Sling, xargs -P 8"][0], env)  # warm-up, not counted
            walls = {k: [] for k in cases}
            rss = []
            for r in range(rounds):
                for name, (cmd, sample) in cases.items():
                    wall, peak = timed(cmd, env, sample)
                    walls[name].append(wall)
                    if sample:
                        rss.append(peak)
                    print(f"round {r + 1}: {name}: {wall:.3f} s", flush=True)
            for i in range(1, PIPELINES + 1):
                n = bench.sh(["sqlite3", str(tmp / f"dst_{i:02d}.db"), f"select count(*) from t{i:02d}"])
                if int(n) != ROWS:
                    raise SystemExit(f"t{i:02d}: {n} rows landed, expected {ROWS}")
    finally:
        link.close()
        psql("postgres", f"drop database if exists {db} with (force)")
    med = {k: statistics.median(v) for k, v in walls.items()}
    result = {"rounds": rounds, "rtt_ms": args.rtt_ms, "walls": walls, "median": med,
              "rss_kib": max(rss) if rss else 0, "sling": bench.sh([str(sling), "--version"]).replace("\n", " ")}
    for k, v in med.items():
        print(f"{k}: median {v:.3f} s over {rounds}")
    print(f"8 vs 1: {med['wrapper --concurrency 8'] / med['wrapper --concurrency 1']:.3f} (target ≤ 0.40); "
          f"8 vs raw -P 8: {med['wrapper --concurrency 8'] / med['raw Sling, xargs -P 8']:.3f} (target ≤ 1.10); "
          f"peak RSS at 8: {result['rss_kib'] / 1024:.1f} MiB (target ≤ 40)")
    write_section(Path(args.out), result, args.quick)
    return 0


def write_section(path, r, quick):
    med = r["median"]
    c1, c8, raw = med["wrapper --concurrency 1"], med["wrapper --concurrency 8"], med["raw Sling, xargs -P 8"]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    all_runs = "; ".join(f"{k}: " + ", ".join(f"{w:.2f}" for w in v) for k, v in r["walls"].items())
    lines = [
        BEGIN,
        "## Many pipelines over a slow link (`scripts/bench_wan.py`)",
        "",
        f"Measured {now}{' with --quick' if quick else ''}: {PIPELINES} pipelines × {ROWS:,} rows, PostgreSQL → "
        f"SQLite (one file per pipeline, full-refresh), the PostgreSQL mission database behind a TCP forwarder on "
        f"127.0.0.1 that adds {r['rtt_ms']} ms per round trip. {r['rounds']} rounds, the three cases alternating; "
        f"medians. {r['sling']}; release build; telemetry off.",
        "",
        "| Case | Median wall time | Ratio | Target |",
        "|---|---|---|---|",
        f"| wrapper `--concurrency 1` | {c1:.3f} s | 1 | |",
        f"| wrapper `--concurrency 8` | {c8:.3f} s | **{c8 / c1:.3f}** of `--concurrency 1` | ≤ 0.40 |",
        f"| raw Sling, `xargs -P 8` | {raw:.3f} s | wrapper at 8 is **{c8 / raw:.3f}** of this | ≤ 1.10 |",
        "",
        f"Wrapper peak RSS at `--concurrency 8` (the wrapper process, not its Sling children): "
        f"**{r['rss_kib'] / 1024:.1f} MiB** (target ≤ 40 MiB). Every run: {all_runs} (seconds).",
        "",
        "The wrapper ran with `--verify off`, so wrapper and raw Sling do the same work here; what verification adds "
        "per pipeline is measured by `scripts/bench_verify.py`.",
        END,
    ]
    text = path.read_text() if path.exists() else "# Performance\n"
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + "\n".join(lines) + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    path.write_text(text)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
