"""Grafana dashboard JSON and provisioning files (datasources, dashboard provider, alert rules)."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from deploy_helpers import PROVISIONING, dashboard_files, load_yaml
from telemetry_contract import alert_promql, alert_sql, dashboard_promql, dashboard_sql, iter_panels, promql_refs

PLUGIN = "info8fcc-greptimedb-datasource"
TEMPLATE_REF = re.compile(r"^\$\{?([A-Za-z0-9_]+)\}?$")
# Grafana's own variables and macros that may appear in queries and links.
BUILTINS = {
    "__timeFilter", "__interval", "__interval_ms", "__rate_interval", "__from", "__to", "__fromTime", "__toTime",
    "__timeInterval", "__conditionalAll", "__value", "__data", "__field", "__series", "__org", "__user",
    "__url_time_range", "__dashboard", "__all_variables", "__range", "__range_s", "__timezone",
}
VAR_REF = re.compile(r"\$\{([A-Za-z0-9_]+)(?:[.:][^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def load_dashboards():
    return [(f.name, json.loads(f.read_text(encoding="utf-8"))) for f in dashboard_files()]


DASHBOARDS = load_dashboards()


def var_names(d: dict) -> set[str]:
    return {v["name"] for v in d.get("templating", {}).get("list", [])}


def all_datasource_refs(node, path="$"):
    """Every `datasource` object anywhere in the JSON, with its JSON path."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "datasource" and isinstance(v, dict):
                yield f"{path}.datasource", v
            yield from all_datasource_refs(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from all_datasource_refs(v, f"{path}[{i}]")


def all_strings(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from all_strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from all_strings(v)
    elif isinstance(node, str):
        yield node


@pytest.mark.parametrize("name,d", DASHBOARDS, ids=[n for n, _ in DASHBOARDS])
class TestDashboard:
    def test_importable_with_datasource_inputs(self, name, d):
        inputs = {i["name"]: i for i in d.get("__inputs", [])}
        assert inputs, "dashboard needs __inputs for the Import flow"
        for i in inputs.values():
            assert i["type"] == "datasource" and i["pluginId"]
        assert inputs["DS_GREPTIMEDB"]["pluginId"] == PLUGIN
        # File provisioning ignores __inputs: each input must also be a datasource variable.
        ds_vars = {v["name"]: v for v in d["templating"]["list"] if v["type"] == "datasource"}
        for n, i in inputs.items():
            assert n in ds_vars, f"input {n} has no datasource template variable of the same name"
            assert ds_vars[n]["query"] == i["pluginId"]
        assert d.get("uid") and d.get("title") and d.get("schemaVersion")
        assert d.get("id") is None, "exported dashboards must not carry a database id"

    def test_every_panel_has_a_templated_datasource(self, name, d):
        ids = set()
        panels = list(iter_panels(d["panels"]))
        assert len([p for p in panels if p["type"] != "row"]) >= 8
        for p in panels:
            assert p["id"] not in ids, f"duplicate panel id {p['id']}"
            ids.add(p["id"])
            assert "gridPos" in p
            if p["type"] == "row":
                continue
            assert p.get("datasource"), f"panel {p['title']!r} has no datasource"
            assert p.get("targets"), f"panel {p['title']!r} has no query"
            for t in p["targets"]:
                assert t.get("datasource") == p["datasource"], f"panel {p['title']!r}: target datasource differs"
                if p["datasource"]["type"] == "prometheus":
                    assert t.get("expr", "").strip(), f"panel {p['title']!r}: empty PromQL"
                else:
                    assert t.get("rawSql", "").strip(), f"panel {p['title']!r}: empty SQL"

    def test_no_hard_coded_datasource_uids(self, name, d):
        names = var_names(d) | {i["name"] for i in d.get("__inputs", [])}
        for path, ds in all_datasource_refs(d):
            uid = ds.get("uid")
            if uid in ("-- Grafana --", "grafana") and ds.get("type") in ("grafana", "datasource"):
                continue  # Grafana's built-in annotations source
            m = TEMPLATE_REF.match(uid or "")
            assert m and m.group(1) in names, f"{path}: datasource uid {uid!r} is hard-coded"
        for s in all_strings(d):
            for uid in re.findall(r"%22uid%22%3A%22(.*?)%22", s) + re.findall(r'"uid"\s*:\s*"([^"]*)"', s):
                m = TEMPLATE_REF.match(uid)
                assert m and m.group(1) in names, f"hard-coded datasource uid {uid!r} in a link: {s[:120]}"

    def test_required_variables_and_references(self, name, d):
        names = var_names(d)
        assert {"mission_cluster_id", "pipeline", "DS_GREPTIMEDB"} <= names
        for v in d["templating"]["list"]:
            if v["name"] in ("mission_cluster_id", "pipeline"):
                assert v["type"] == "query" and v["includeAll"] and v["multi"]
                assert v["datasource"]["uid"] == "${DS_GREPTIMEDB}"
                # A custom "All" value is inserted verbatim (no formatting): it must be a SQL literal.
                assert re.fullmatch(r"'[^']*'", v.get("allValue", "")), "allValue must be a quoted SQL literal"
        for s in all_strings(d):
            for braced, bare in VAR_REF.findall(s):
                ref = braced or bare
                assert ref in names or ref in BUILTINS or ref.startswith("__"), f"unknown variable ${ref} in {s[:100]}"

    def test_panels_cover_jobs_pipelines_failures_and_logs(self, name, d):
        panels = [p for p in iter_panels(d["panels"]) if p["type"] != "row"]
        sql_of = {p["title"]: " ".join(t.get("rawSql") or t["expr"] for t in p["targets"]) for p in panels}

        def some(pred, what):
            assert any(pred(p, sql_of[p["title"]]) for p in panels), f"no panel for {what}"

        some(lambda p, s: "'sync.job'" in s and "span_attributes.status" in s and p["type"] in ("stat", "piechart", "timeseries"),
             "job counts / status breakdown")
        some(lambda p, s: p["type"] == "timeseries" and "'sync.pipeline'" in s and "duration_seconds" in s and "span_attributes.pipeline" in s,
             "duration trend per pipeline")
        some(lambda p, s: p["type"] == "timeseries" and "'sync.pipeline'" in s and "rows_synced" in s and "span_attributes.pipeline" in s,
             "rows trend per pipeline")
        some(lambda p, s: p["type"] == "table" and "'sync.job'" in s and "trace_id" in s, "recent jobs table")
        some(lambda p, s: p["type"] == "table" and "<> 'success'" in s, "failures")
        some(lambda p, s: p["type"] == "logs" and "opentelemetry_logs" in s, "recent logs")
        for p in panels:
            s = sql_of[p["title"]]
            if p["datasource"]["type"] == "prometheus":
                continue
            if "opentelemetry_traces" in s and "$__timeFilter" not in s:
                pytest.fail(f"panel {p['title']!r} scans traces without $__timeFilter")
            if "'sync.pipeline'" in s or "'sling.attempt'" in s or "'sync.verify'" in s:
                assert "${pipeline" in s, f"panel {p['title']!r} ignores the pipeline variable"
            if "opentelemetry_" in s:
                assert "${mission_cluster_id" in s, f"panel {p['title']!r} ignores the mission_cluster_id variable"

    def test_verification_row_shows_drift_per_stream_and_the_latest_verification(self, name, d):
        """Issue 11: drift per pipeline/stream over time, and the latest verification per pipeline with its
        status, each stream's status and warnings, and the trace links."""
        panels = {p["title"]: p for p in iter_panels(d["panels"]) if p["type"] != "row"}
        drift = panels["Drift rows per stream"]
        (expr,) = [t["expr"] for t in drift["targets"]]
        assert drift["type"] == "timeseries" and drift["datasource"]["type"] == "prometheus"
        assert promql_refs(expr).metrics == {"sync_drift_rows"}
        assert "{{stream}}" in drift["targets"][0]["legendFormat"] and "{{pipeline}}" in drift["targets"][0]["legendFormat"]
        latest = panels["Latest verification per pipeline"]
        (sql,) = [t["rawSql"] for t in latest["targets"]]
        assert latest["type"] == "table"
        assert "span_name = 'sync.verify'" in sql and "body = 'verify stream'" in sql
        # newest verification per (cluster, pipeline); its streams joined by the span that emitted them
        assert re.search(r"ROW_NUMBER\(\) OVER \(PARTITION BY \S*mission_cluster_id\S*, \S*pipeline\S* ORDER BY \S*timestamp\S* DESC\)", sql)
        assert "WHERE v.rn = 1" in sql and "ON s.trace_id = v.trace_id AND s.span_id = v.span_id" in sql
        selected = sql.split("FROM")[0]
        for column in ("verify_status", "stream", "status", "drift_rows", "warnings", "trace_id"):
            assert re.search(rf"\.{column}\b", selected), f"the latest-verification table lacks {column}"
        by_status = panels["Verifications by status"]
        assert "\"span_attributes.verify_status\"" in by_status["targets"][0]["rawSql"]

    def test_promql_panels_cover_staleness_rows_failures_and_p95(self, name, d):
        prom = {p["title"]: " ".join(t["expr"] for t in p["targets"])
                for p in iter_panels(d["panels"]) if p.get("datasource", {}).get("type") == "prometheus"}

        def some(pred, what):
            assert any(pred(e) for e in prom.values()), f"no PromQL panel for {what}"

        some(lambda e: "time() - " in e and "sync_pipeline_last_success_timestamp_seconds" in e, "staleness")
        some(lambda e: "sync_rows_total" in e and "[1h]" in e, "rows per hour")
        some(lambda e: 'status="failed"' in e and e.count("sync_pipeline_runs_total") >= 2 and "/" in e,
             "failure ratio")
        some(lambda e: "histogram_quantile(0.95" in e and "sync_pipeline_duration_seconds_bucket" in e, "p95 duration")
        for title, e in prom.items():
            # Every selector honours both dashboard variables (a custom All value is inserted verbatim: '|.*|').
            selectors = re.findall(r"\b(sync_\w+)\{([^}]*)\}", e)
            assert selectors and len(selectors) == len(re.findall(r"\bsync_\w+\b(?!\s*[=!~])", e)), title
            for _, m in selectors:
                assert 'mission_cluster_id=~"$mission_cluster_id"' in m and 'pipeline=~"$pipeline"' in m, title

    def test_trace_id_columns_link_to_traces_and_logs(self, name, d):
        to_trace = to_logs = 0
        for p in iter_panels(d["panels"]):
            if p["type"] == "row":
                continue
            sql = " ".join(t.get("rawSql", "") for t in p["targets"])
            if not re.search(r"\btrace_id\b", sql.split("FROM")[0]):
                continue
            links = [
                link
                for o in p["fieldConfig"]["overrides"]
                if o["matcher"] == {"id": "byName", "options": "trace_id"}
                for prop in o["properties"] if prop["id"] == "links"
                for link in prop["value"]
            ]
            assert links, f"panel {p['title']!r} selects trace_id but has no data link on it"
            for link in links:
                url = link["url"]
                if url.startswith("/explore"):
                    panes = json.loads(parse_qs(urlparse(url).query)["panes"][0])
                    (pane,) = panes.values()
                    assert pane["queries"][0]["datasource"]["type"] == "jaeger"
                    assert pane["queries"][0]["query"] == "${__value.raw}"
                    to_trace += 1
                elif "var-trace_id=${__value.raw}" in url:
                    to_logs += 1
        assert to_trace >= 3, "job/failure/log rows need a link to their trace"
        assert to_logs >= 2, "job/failure rows need a link to their log lines"
        # and the panels listing log lines filter on that variable (the verification table only joins
        # its stream events to its spans)
        log_sql = [s for s in dashboard_sql(d) if "opentelemetry_logs" in s and "opentelemetry_traces" not in s]
        assert log_sql and all("trace_id = ${trace_id" in s for s in log_sql)


def all_promql() -> list[str]:
    out = [e for _, d in DASHBOARDS for e in dashboard_promql(d)]
    return out + alert_promql(load_yaml(PROVISIONING / "alerting" / "sling-sync-alerts.yaml"))


# Gauges whose value is signed: the latest one is the answer (max_over_time would hide -5 behind a later 0).
SIGNED_GAUGES = {"sync_drift_rows"}


def test_promql_adds_delta_samples_and_spans_gauge_gaps():
    """Counters and histograms are exported as deltas (README: GreptimeDB up to 1.2 stores them as the count of
    their interval), so only sum_over_time gives right totals: increase()/rate() assume cumulative series.
    Gauges arrive once per run, so they are read with max_over_time over a window longer than the schedule,
    or with last_over_time when they are signed (drift)."""
    exprs = all_promql()
    assert exprs
    for e in exprs:
        assert not re.search(r"\b(increase|rate|irate|delta|idelta|resets)\s*\(", e), e
        for m in promql_refs(e).metrics:
            if m.endswith(("_total", "_bucket", "_sum", "_count")):
                assert re.search(r"sum_over_time\(\s*" + m + r"\b", e), f"{m} not under sum_over_time: {e}"
            elif m in SIGNED_GAUGES:
                assert re.search(r"last_over_time\(\s*" + m + r"\b", e), f"signed gauge {m} not under last_over_time: {e}"
                window = re.search(r"last_over_time\(\s*" + m + r"\{[^}]*\}\[(\d+)([hd])\]", e)
                assert window and int(window.group(1)) * {"h": 3600, "d": 86400}[window.group(2)] >= 3600, e
            else:
                assert re.search(r"max_over_time\(\s*" + m + r"\b", e), f"gauge {m} not under max_over_time: {e}"


def test_custom_all_value_is_sql_literal_and_match_all_regex():
    for _, d in DASHBOARDS:
        for v in d["templating"]["list"]:
            if v["name"] in ("mission_cluster_id", "pipeline"):
                inner = v["allValue"]
                assert re.fullmatch(r"'[^']*'", inner)
                for value in ("orders", "", "a-b.c"):
                    assert re.fullmatch(inner, value), f"{inner} must match every value as a PromQL regex"


# ---------------------------------------------------------------------------------------------------
# provisioning


def datasources() -> list[dict]:
    doc = load_yaml(PROVISIONING / "datasources" / "greptimedb.yaml")
    assert doc["apiVersion"] == 1
    return doc["datasources"]


def test_every_provisioning_file_parses():
    files = sorted(PROVISIONING.rglob("*.y*ml"))
    assert {f.parent.name for f in files} >= {"datasources", "dashboards", "alerting"}
    for f in files:
        doc = yaml.safe_load(f.read_text(encoding="utf-8"))
        assert isinstance(doc, dict) and doc.get("apiVersion") == 1, f


def test_datasources_configure_trace_and_log_drilldown():
    ds = {d["uid"]: d for d in datasources()}
    assert len(ds) == len(datasources()), "datasource uids must be unique"
    plugin = [d for d in ds.values() if d["type"] == PLUGIN]
    assert len(plugin) == 1
    j = plugin[0]["jsonData"]
    assert j["logs"]["defaultTable"] == "opentelemetry_logs" and j["logs"]["traceIdColumn"] == "trace_id"
    assert j["traces"]["defaultTable"] == "opentelemetry_traces" and j["traces"]["traceIdColumn"] == "trace_id"
    assert j["traces"]["durationColumn"] == "duration_nano" and j["traces"]["durationUnit"] == "nanoseconds"
    assert j["traces"]["operationNameColumn"] == "span_name" and j["traces"]["parentSpanIdColumn"] == "parent_span_id"
    dbs = {j["defaultDatabase"], j["logs"]["defaultDatabase"], j["traces"]["defaultDatabase"]}
    jaeger = [d for d in ds.values() if d["type"] == "jaeger"]
    assert len(jaeger) == 1 and jaeger[0]["url"].endswith("/v1/jaeger")
    assert jaeger[0]["secureJsonData"]["httpHeaderValue1"] in dbs
    mysql = [d for d in ds.values() if d["type"] == "mysql"]
    assert len(mysql) == 1 and mysql[0]["url"].endswith(":4002")
    assert mysql[0]["jsonData"]["database"] in dbs and len(dbs) == 1
    prom = [d for d in ds.values() if d["type"] == "prometheus"]
    assert len(prom) == 1 and prom[0]["url"].endswith("/v1/prometheus")
    assert prom[0]["jsonData"]["httpHeaderName1"] == "x-greptime-db-name"
    assert prom[0]["secureJsonData"]["httpHeaderValue1"] in dbs
    # the database the collector writes to
    from deploy_helpers import collector_config
    cfg = collector_config()
    collector_dbs = {e["headers"]["x-greptime-db-name"] for k, e in cfg["exporters"].items() if k.startswith("otlphttp")}
    assert dbs == collector_dbs


def test_dashboard_provider():
    doc = load_yaml(PROVISIONING / "dashboards" / "sling-sync.yaml")
    (prov,) = doc["providers"]
    assert prov["type"] == "file" and prov["options"]["path"]


def alert_rules() -> list[dict]:
    doc = load_yaml(PROVISIONING / "alerting" / "sling-sync-alerts.yaml")
    return [r for g in doc["groups"] for r in g["rules"]]


def test_alert_rules_are_the_three_expected_and_well_formed():
    rules = {r["uid"]: r for r in alert_rules()}
    assert set(rules) == {"sling-sync-3-failures-in-a-row", "sling-sync-no-success-1h", "sling-sync-drift-3-runs-in-a-row"}
    ds_uids = {d["uid"] for d in datasources()}
    for r in rules.values():
        refs = {d["refId"] for d in r["data"]}
        assert r["condition"] in refs, f"{r['uid']}: condition {r['condition']} is not a refId"
        for d in r["data"]:
            assert d["model"]["refId"] == d["refId"]
            if d["datasourceUid"] == "__expr__":
                assert d["model"]["expression"] in refs
            else:
                assert d["datasourceUid"] in ds_uids, f"{r['uid']}: unknown datasource {d['datasourceUid']}"
                assert d["relativeTimeRange"]["from"] > 0
        assert r["noDataState"] in ("NoData", "Alerting", "OK")
        assert r["execErrState"] in ("Error", "Alerting", "OK")
        assert r["labels"] and r["annotations"]["summary"]


def threshold(rule: dict) -> dict:
    (expr,) = [d["model"] for d in rule["data"] if d["model"].get("type") == "threshold"]
    return expr["conditions"][0]["evaluator"]


def test_alert_rule_semantics():
    rules = {r["uid"]: r for r in alert_rules()}
    three = rules["sling-sync-3-failures-in-a-row"]
    (sql,) = alert_sql({"groups": [{"rules": [three]}]})
    assert "'sync.pipeline'" in sql and "ROW_NUMBER()" in sql and "rn <= 3" in sql and "'failed'" in sql
    assert "PARTITION BY `span_attributes.mission_cluster_id`, `span_attributes.pipeline`" in sql
    assert threshold(three) == {"type": "gt", "params": [2]}
    hour = rules["sling-sync-no-success-1h"]
    (expr,) = alert_promql({"groups": [{"rules": [hour]}]})
    assert "time() - " in expr and "sync_pipeline_last_success_timestamp_seconds" in expr
    assert "by (mission_cluster_id, pipeline)" in expr
    (query,) = [d for d in hour["data"] if d["refId"] == "A"]
    assert query["datasourceUid"] == "greptimedb-prometheus" and query["model"]["instant"] is True
    window = re.search(r"\[(\d+)d\]", expr)
    assert window and int(window.group(1)) * 86400 <= query["relativeTimeRange"]["from"]
    assert threshold(hour) == {"type": "gt", "params": [3600]}
    drift = rules["sling-sync-drift-3-runs-in-a-row"]
    (sql,) = alert_sql({"groups": [{"rules": [drift]}]})
    assert "FROM sync_drift_rows" in sql and "rn <= 3" in sql and "`greptime_value` AS drift_rows" in sql
    assert "PARTITION BY `mission_cluster_id`, `pipeline`, `stream`" in sql
    assert "ORDER BY `greptime_timestamp` DESC" in sql and "drift_rows <> 0" in sql
    assert threshold(drift) == {"type": "gt", "params": [2]}
    (query,) = [d for d in drift["data"] if d["refId"] == "A"]
    assert query["datasourceUid"] == "greptimedb-mysql" and query["relativeTimeRange"]["from"] >= 86400
    assert {"$labels.pipeline", "$labels.stream", "$labels.mission_cluster_id"} <= set(
        re.findall(r"\$labels\.\w+", drift["annotations"]["summary"]))


def test_alert_sql_uses_backticks_on_the_mysql_port():
    """On GreptimeDB's MySQL port "double quotes" are string literals: WHERE "col" = 'x' matches nothing."""
    for sql in alert_sql(load_yaml(PROVISIONING / "alerting" / "sling-sync-alerts.yaml")):
        assert '"' not in sql, f"double quotes in MySQL-dialect alert SQL: {sql}"
        assert "`span_attributes." in sql or "`greptime_value`" in sql
