#!/usr/bin/env python3
"""What verification (issue 11) costs: the wrapper's incremental run of one pipeline with SYNC_VERIFY=off and with
SYNC_VERIFY=report, alternated run by run on the same data (nothing new to copy, so the difference is the
verification), for SQLite and PostgreSQL pipelines of 1 and 10 streams; and noop over 500 pipeline files, which now
also discovers the tables' columns.

Usage: scripts/bench_verify.py [--quick] [--out docs/PERFORMANCE.md]
Results go to stdout and into docs/PERFORMANCE.md between the `verify` markers (kept by scripts/bench.py, which only
rewrites the part above its history marker). PostgreSQL on 127.0.0.1:5432 (user postgres) is optional.
"""

import argparse
import datetime
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the shared harness: run(), pairs(), spread(), base_env(), bench_noop())

ROOT = bench.ROOT
BEGIN = "<!-- verify: kept by scripts/bench_verify.py -->"
END = "<!-- /verify -->"


def pipeline(source, target, schema_src, schema_tgt, streams):
    body = "".join(f"  {schema_src}.t{i}:\n" for i in range(streams))
    return (f"source: {source}\ntarget: {target}\ndefaults:\n  mode: incremental\n  object: {schema_tgt}.{{stream_table}}\n"
            f"  primary_key: [id]\n  update_key: updated_at\nstreams:\n{body}")


def measure(name, sling, env, file, runs):
    cmd = bench.wrapper_cmd(sling, file)
    bench.run(cmd, {**env, "SYNC_VERIFY": "off"})  # the first copy, not counted
    # ABBA after a warm-up of each (bench.pairs), so a trend in the machine's load hits both sides alike.
    off, on = bench.pairs(lambda: bench.run(cmd, {**env, "SYNC_VERIFY": "off"}),
                          lambda: bench.run(cmd, {**env, "SYNC_VERIFY": "report"}), runs)
    off, on = [r.wall for r in off], [r.wall for r in on]
    added = [b - a for a, b in zip(off, on)]
    row = {"name": name, "runs": runs, "off": bench.spread(off, "{:.3f} s"), "report": bench.spread(on, "{:.3f} s"),
           "added": bench.spread(added, "{:+.3f} s")}
    print(f"{name}: off {row['off']} report {row['report']} verification adds {row['added']}", flush=True)
    return row


def sqlite_case(sling, tmp, streams, runs):
    m, c = tmp / f"v{streams}_m.db", tmp / f"v{streams}_c.db"
    ddl = "".join(
        f"create table t{i} (id integer primary key, v text, updated_at text);"
        f"insert into t{i} select value, 'v' || value, printf('2026-01-01 %02d:%02d:%02d', value / 3600, value / 60 % 60, value % 60)"
        f" from generate_series(1, 1000);" for i in range(streams))
    bench.sh(["sqlite3", str(m), ddl])
    f = tmp / f"sqlite{streams}.yaml"
    f.write_text(pipeline("VMISSION", "VCOMMAND", "main", "main", streams))
    env = bench.base_env(tmp, {"VMISSION": f"sqlite://{m}", "VCOMMAND": f"sqlite://{c}"})
    return measure(f"SQLite → SQLite, {streams} stream(s) × 1,000 rows", sling, env, f, runs)


def postgres_case(sling, tmp, streams, runs):
    db_m, db_c = f"bench_verify_m_{streams}", f"bench_verify_c_{streams}"
    try:
        for db in (db_m, db_c):
            bench.psql("postgres", f"drop database if exists {db} with (force)")
            bench.psql("postgres", f"create database {db}")
    except subprocess.CalledProcessError as e:
        print(f"PostgreSQL case skipped: {e}", flush=True)
        return None
    try:
        bench.psql(db_m, "".join(
            f"create table t{i} (id int primary key, v text, updated_at timestamptz not null);"
            f"insert into t{i} select g, 'v' || g, timestamptz '2026-01-01' + g * interval '1 second' from generate_series(1, 1000) g;"
            for i in range(streams)))
        f = tmp / f"pg{streams}.yaml"
        f.write_text(pipeline("VMISSION_PG", "VCOMMAND_PG", "public", "public", streams))
        url = "postgresql://postgres@127.0.0.1:5432/{}?sslmode=disable"
        env = bench.base_env(tmp, {"VMISSION_PG": url.format(db_m), "VCOMMAND_PG": url.format(db_c)})
        return measure(f"PostgreSQL → PostgreSQL, {streams} stream(s) × 1,000 rows", sling, env, f, runs)
    finally:
        for db in (db_m, db_c):
            bench.psql("postgres", f"drop database if exists {db} with (force)")


def write(path, rows, noop, quick):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        BEGIN,
        "## Verification cost (issue 11)",
        "",
        f"Measured {now} by `scripts/bench_verify.py`{' --quick' if quick else ''}, same machine, release build. Incremental "
        "runs with nothing new to copy, `SYNC_VERIFY=off` and `report` in ABBA pairs after a warm-up of each; median "
        "[min–max]; \"adds\" is the difference within each pair. It is what "
        "verification adds to one pipeline (target: at most 1 s for up to 10 streams; nothing when `off`, where no "
        "Sling call is made).",
        "",
        "| Pipeline | Pairs | `off` | `report` | Verification adds |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['name']} | {r['runs']} | {r['off']} | {r['report']} | **{r['added']}** |")
    lines += [
        "",
        f"noop over {noop['files']} pipeline files (2 shared connections), now with schema and checkpoint validation: "
        f"**{noop['wall']}** (target ≤ 1 s), wrapper CPU {noop['own']}.",
        END,
    ]
    text = path.read_text() if path.exists() else ""
    block = "\n".join(lines)
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)
    print(f"wrote {path}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "docs" / "PERFORMANCE.md"))
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=ROOT, check=True)
    sling = Path(bench.sh(["bash", str(ROOT / "scripts" / "install-sling.sh")]))
    runs = 2 if args.quick else 7
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        (tmp / "home").mkdir()
        rows = [sqlite_case(sling, tmp, 1, runs), sqlite_case(sling, tmp, 10, runs),
                postgres_case(sling, tmp, 1, runs), postgres_case(sling, tmp, 10, runs)]
        noop = bench.bench_noop(sling, tmp, 50 if args.quick else 500, 1 if args.quick else 3)
    write(Path(args.out), [r for r in rows if r], noop, args.quick)


if __name__ == "__main__":
    sys.exit(main())
