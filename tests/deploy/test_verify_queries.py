"""What the verification queries compute, run on SQLite with made-up rows.

This checks their logic (which rows count as "3 in a row", which verification is the latest, how its streams
are joined), not GreptimeDB's dialect: the few GreptimeDB/Grafana-specific parts (the time bound, Grafana's
macros and variables, the JSON functions) are replaced or provided here, everything else runs as written.
"""

from __future__ import annotations

import json
import sqlite3

from deploy_helpers import DASHBOARDS, PROVISIONING, load_yaml
from telemetry_contract import alert_sql, iter_panels

DAY = 86400
NOW = 10 * DAY


def drift_rule_sql() -> str:
    doc = load_yaml(PROVISIONING / "alerting" / "sling-sync-alerts.yaml")
    (rule,) = [r for g in doc["groups"] for r in g["rules"] if r["uid"] == "sling-sync-drift-3-runs-in-a-row"]
    (sql,) = alert_sql({"groups": [{"rules": [rule]}]})
    bound = "now() - INTERVAL 1 DAY"
    assert sql.count(bound) == 1, "the drift rule's time bound changed: adapt this test"
    return sql.replace(bound, str(NOW - DAY))


def latest_verification_sql() -> str:
    d = json.loads((DASHBOARDS / "sling-sync.json").read_text(encoding="utf-8"))
    (panel,) = [p for p in iter_panels(d["panels"]) if p["title"] == "Latest verification per pipeline"]
    (sql,) = [t["rawSql"] for t in panel["targets"]]
    for grafana, value in (('$__timeFilter("timestamp")', "1 = 1"), ("${mission_cluster_id:sqlstring}", "'|.*|'"),
                           ("${pipeline:sqlstring}", "'|.*|'")):
        assert grafana in sql
        sql = sql.replace(grafana, value)
    assert "$" not in sql, f"an unsubstituted Grafana variable or macro: {sql}"
    return sql


def test_drift_rule_fires_only_on_three_drifted_verifications_in_a_row():
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE sync_drift_rows (greptime_timestamp INTEGER, greptime_value REAL, "
               "mission_cluster_id TEXT, pipeline TEXT, stream TEXT)")
    # (cluster, pipeline, stream) -> drift of each verified run, newest first, 5 minutes apart
    series = {
        ("m1", "orders", "main.orders"): [3, 3, 5],          # fires
        ("m1", "orders", "main.items"): [3, 0, 3],           # a match in between
        ("m1", "users", "main.users"): [-2, -2, -2],         # rows missing counts as drift: fires
        ("m1", "users", "main.roles"): [4, 4],               # only 2 verifications so far
        ("m1", "assets", "main.assets"): [0, 3, 3, 3],       # the newest run matched again
        ("m2", "orders", "main.orders"): [1, 0, 0],          # same names, other mission cluster
    }
    for (cluster, pipeline, stream), values in series.items():
        for i, v in enumerate(values):
            db.execute("INSERT INTO sync_drift_rows VALUES (?, ?, ?, ?, ?)", (NOW - 300 * i, v, cluster, pipeline, stream))
    # older than the rule's day: does not make the two recent drifts a third
    db.execute("INSERT INTO sync_drift_rows VALUES (?, 7, 'm1', 'users', 'main.roles')", (NOW - DAY - 60,))
    rows = db.execute(drift_rule_sql()).fetchall()
    values = {(c, p, s): v for c, p, s, v in rows}
    assert values == {
        ("m1", "orders", "main.orders"): 3.0, ("m1", "orders", "main.items"): 2.0,
        ("m1", "users", "main.users"): 3.0, ("m1", "users", "main.roles"): 2.0,
        ("m1", "assets", "main.assets"): 2.0, ("m2", "orders", "main.orders"): 1.0,
    }
    firing = {k for k, v in values.items() if v > 2}  # the rule's threshold: gt 2
    assert firing == {("m1", "orders", "main.orders"), ("m1", "users", "main.users")}


def _json_get(kind):
    def get(doc, key):
        if doc is None:
            return None
        value = json.loads(doc).get(key)
        return value if isinstance(value, kind) and not isinstance(value, bool) else None
    return get


def test_latest_verification_table_shows_each_pipelines_newest_verification_per_stream():
    db = sqlite3.connect(":memory:")
    db.create_function("json_get_string", 2, _json_get(str))
    db.create_function("json_get_int", 2, _json_get(int))
    db.execute('CREATE TABLE opentelemetry_traces ("timestamp" INTEGER, trace_id TEXT, span_id TEXT, span_name TEXT, '
               '"resource_attributes.mission_cluster_id" TEXT, "span_attributes.pipeline" TEXT, '
               '"span_attributes.verify_status" TEXT, "span_attributes.sync_job_id" TEXT)')
    db.execute('CREATE TABLE opentelemetry_logs ("timestamp" INTEGER, trace_id TEXT, span_id TEXT, body TEXT, '
               'log_attributes TEXT)')

    def verify(ts, trace, span, cluster, pipeline, status, streams):
        db.execute("INSERT INTO opentelemetry_traces VALUES (?, ?, ?, 'sync.verify', ?, ?, ?, ?)",
                   (ts, trace, span, cluster, pipeline, status, f"job-{trace}"))
        for stream, (st, drift, warnings) in streams.items():
            attrs = {"stream": stream, "status": st, "drift_rows": drift, "source_rows": 10,
                     "target_rows": 10 + drift, "warnings": warnings, "note": ""}
            db.execute("INSERT INTO opentelemetry_logs VALUES (?, ?, ?, 'verify stream', ?)",
                       (ts, trace, span, json.dumps(attrs)))

    verify(100, "t1", "s1", "m1", "orders", "match", {"a": ("match", 0, ""), "b": ("match", 0, "")})
    verify(200, "t2", "s2", "m1", "orders", "drift", {"a": ("match", 0, ""), "b": ("drift", 3, "deletes_not_propagated")})
    verify(150, "t3", "s3", "m1", "users", "match", {"u": ("match", 0, "")})
    verify(120, "t4", "s4", "m2", "orders", "match", {"a": ("match", 0, "")})
    # the job's other spans and log lines in the same trace are not streams of the verification
    db.execute("INSERT INTO opentelemetry_traces VALUES (200, 't2', 'p2', 'sync.pipeline', 'm1', 'orders', NULL, 'job-t2')")
    db.execute("INSERT INTO opentelemetry_logs VALUES (190, 't2', 'a2', 'copied 3 rows', '{\"stream\": \"a\"}')")
    # a verification whose stream records were lost still shows its status
    db.execute("INSERT INTO opentelemetry_traces VALUES (300, 't5', 's5', 'sync.verify', 'm1', 'assets', 'error', 'job-t5')")

    cur = db.execute(latest_verification_sql())
    names = [c[0] for c in cur.description]
    rows = [dict(zip(names, r)) for r in cur.fetchall()]
    got = [(r["mission_cluster_id"], r["pipeline"], r["verify_status"], r["stream"], r["status"], r["drift_rows"],
            r["warnings"], r["trace_id"]) for r in rows]
    assert got == [
        ("m1", "orders", "drift", "a", "match", 0, "", "t2"),
        ("m1", "orders", "drift", "b", "drift", 3, "deletes_not_propagated", "t2"),
        ("m1", "assets", "error", None, None, None, None, "t5"),
        ("m2", "orders", "match", "a", "match", 0, "", "t4"),
        ("m1", "users", "match", "u", "match", 0, "", "t3"),
    ]
    assert {"verified_at", "source_rows", "target_rows", "note", "sync_job_id"} <= set(names)
