"""Contract: everything the dashboards and alert rules query must be produced by the Rust code.

If the code renames a span, an attribute or a metric, or a dashboard names something the code never
emits, these tests fail (instead of the dashboard silently showing nothing)."""

from __future__ import annotations

import json

import pytest

from deploy_helpers import DASHBOARDS, SRC
from telemetry_contract import (
    LOG_TABLE,
    TRACE_TABLE,
    all_refs,
    contract_problems,
    emitted,
    legend_problems,
    load_promql,
    load_queries,
    prometheus_names,
    promql_problems,
    promql_refs,
)

# The telemetry contract of the wrapper (src/sync/spans.rs, src/sync/metrics.rs, src/telemetry/).
SPANS = {"sync.job", "sync.pipeline", "sling.attempt"}
JOB_ATTRS = {"sync_job_id", "mission_cluster_id", "sync_mode", "pipelines", "status", "rows_synced", "duration_seconds"}
PIPELINE_ATTRS = {"pipeline", "sync_job_id", "mission_cluster_id", "sync_mode", "status", "rows_synced",
                  "duration_seconds", "attempts"}
ATTEMPT_ATTRS = {"pipeline", "sync_job_id", "attempt", "exit_code", "status", "rows_synced", "sling_log_lines"}
LOG_ATTRS = {"pipeline", "sync_job_id", "attempt", "sling_time"}
# Instruments (OTel names, src/sync/metrics.rs) and the tables GreptimeDB makes of them (TELEMETRY_FACTS §2.4).
COUNTERS = {"sync.jobs": "sync_jobs_total", "sync.pipeline.runs": "sync_pipeline_runs_total",
            "sync.rows": "sync_rows_total", "sync.retries": "sync_retries_total"}
HISTOGRAMS = {"sync.job.duration": "sync_job_duration_seconds", "sync.pipeline.duration": "sync_pipeline_duration_seconds"}
GAUGES = {
    "sync.pipeline.last_success_timestamp": "sync_pipeline_last_success_timestamp_seconds",
    "sync.pipeline.last_run_duration": "sync_pipeline_last_run_duration_seconds",
    "sync.pipeline.last_run_rows": "sync_pipeline_last_run_rows",
    "sync.pipeline.last_run_status": "sync_pipeline_last_run_status",
    "sync_drift_rows": "sync_drift_rows",
}
METRIC_LABELS = {"mission_cluster_id", "pipeline", "status", "sync_mode"}


@pytest.fixture(scope="module")
def code():
    return emitted(SRC)


@pytest.fixture(scope="module")
def queries():
    q = load_queries(DASHBOARDS)
    assert q, "no SQL found in dashboards/*.json or dashboards/provisioning/alerting"
    return q


def test_dashboards_and_alerts_only_query_what_the_code_emits(queries, code):
    problems = contract_problems(queries, code)
    assert not problems, "dashboard/alert queries do not match the telemetry the code emits:\n" + "\n".join(problems)


def test_queries_cover_the_three_span_levels_and_both_tables(queries):
    refs = all_refs(queries)
    assert SPANS <= refs.span_names, f"queries never look at {SPANS - refs.span_names}"
    assert {TRACE_TABLE, LOG_TABLE} <= refs.tables
    assert {"pipeline", "status", "rows_synced", "duration_seconds", "sync_job_id", "mission_cluster_id"} <= refs.span_attrs
    assert {"pipeline", "sync_job_id"} <= refs.log_attrs


def test_code_emits_the_documented_contract(code):
    """The names the deployment docs and dashboards rely on are still in src/ (fails if src drops one)."""
    missing = []
    missing += [f"span {s}" for s in sorted(SPANS - code.span_names)]
    all_attrs = JOB_ATTRS | PIPELINE_ATTRS | ATTEMPT_ATTRS | LOG_ATTRS
    missing += [f"attribute {a}" for a in sorted(all_attrs - code.fields)]
    missing += [f"counter {c}" for c in sorted(set(COUNTERS) - code.counters)]
    missing += [f"histogram {h}" for h in sorted(set(HISTOGRAMS) - code.histograms)]
    missing += [f"gauge {g}" for g in sorted(set(GAUGES) - code.gauges)]
    missing += [f"metric label {a}" for a in sorted(METRIC_LABELS - code.metric_labels)]
    if "mission_cluster_id" not in code.resource_attrs:
        missing.append("resource attribute mission_cluster_id")
    assert not missing, "src/ no longer emits: " + ", ".join(missing)


def test_metric_table_names_follow_greptimedb_translation(code):
    tables = code.metric_tables()
    for table in COUNTERS.values():
        assert table in tables
    for h in HISTOGRAMS.values():
        assert {f"{h}_bucket", f"{h}_sum", f"{h}_count"} <= tables
    assert set(GAUGES.values()) <= tables
    assert tables == set(COUNTERS.values()) | set(GAUGES.values()) | {
        f"{h}_{s}" for h in HISTOGRAMS.values() for s in ("bucket", "sum", "count")}, "an instrument nobody documented"


def test_every_instrument_has_a_unit_spec(code):
    assert set(code.specs) == set(code.instruments()), "every metric field needs a Spec with its unit, and back"
    assert all(unit for _, unit in code.specs.values())
    assert code.specs["sync.pipeline.duration"] == ("histogram", "s")
    assert code.specs["sync.rows"] == ("counter", "{row}")


def test_greptimedb_translation_rules():
    """The rules from TELEMETRY_FACTS §2.4, on its own examples and the edge cases these metrics touch."""
    assert prometheus_names("sync.rows_synced", "counter", "{row}") == {"sync_rows_synced_total"}
    assert prometheus_names("sync.job.duration", "histogram", "s") == {
        "sync_job_duration_seconds_bucket", "sync_job_duration_seconds_sum", "sync_job_duration_seconds_count"}
    assert prometheus_names("sync.pipeline.last_run_rows", "gauge", "{row}") == {"sync_pipeline_last_run_rows"}
    assert prometheus_names("a.ratio", "gauge", "1") == {"a_ratio"}
    assert prometheus_names("a.size", "gauge", "By") == {"a_size_bytes"}


def test_promql_only_names_what_the_code_emits(code):
    exprs = load_promql(DASHBOARDS)
    assert exprs, "no PromQL in dashboards/*.json or the alert rules"
    problems = promql_problems(exprs, code)
    assert not problems, "\n".join(problems)
    used = set().union(*(promql_refs(e).metrics for e in exprs))
    assert {"sync_pipeline_last_success_timestamp_seconds", "sync_rows_total", "sync_pipeline_runs_total",
            "sync_pipeline_duration_seconds_bucket"} <= used


def test_promql_check_rejects_fakes(code):
    fake = ['sum by (bogus_label_xyz) (sync_rows)',
            'max_over_time(sync_pipeline_last_success_timestamp{pipeline="a"}[1h])',
            'sync_rows_total{nope_xyz="1"}']
    problems = promql_problems(fake, code)
    joined = "\n".join(problems)
    for needle in ("'bogus_label_xyz'", "'sync_rows'", "'sync_pipeline_last_success_timestamp'", "'nope_xyz'"):
        assert needle in joined, problems
    assert len(problems) == 4, problems


def test_contract_check_rejects_names_the_code_does_not_produce(queries, code):
    """Negative self-check: a dashboard naming fake things must be reported, one problem per fake name."""
    fake = [
        "SELECT \"span_attributes.definitely_not_emitted_xyz\" FROM opentelemetry_traces WHERE span_name = 'sync.nope'",
        "SELECT json_get_string(log_attributes, 'bogus_log_attr_xyz') FROM opentelemetry_logs",
        "SELECT json_get_string(resource_attributes, 'bogus_resource_xyz') FROM opentelemetry_logs",
        "SELECT greptime_value FROM sync_bogus_metric_total",
        "SELECT \"no_such_column_xyz\" FROM opentelemetry_traces",
        "SELECT `span_attributes.another_fake_xyz` FROM opentelemetry_traces",
    ]
    _assert_each_reported(queries, code, fake, 7, (
        "definitely_not_emitted_xyz", "sync.nope", "bogus_log_attr_xyz", "bogus_resource_xyz",
        "sync_bogus_metric_total", "no_such_column_xyz", "another_fake_xyz"))


def _assert_each_reported(queries, code, fake, count, needles):
    """The fake queries added to the real ones give exactly `count` new problems, naming every needle."""
    baseline = set(contract_problems(queries, code))
    problems = [p for p in contract_problems(queries + fake, code) if p not in baseline]
    joined = "\n".join(problems)
    for needle in needles:
        assert needle in joined, f"the contract check missed {needle!r}: {problems}"
    assert len(problems) == count, problems


def test_real_metric_tables_are_accepted(code):
    ok = ["SELECT greptime_value, le FROM sync_job_duration_seconds_bucket",
          "SELECT greptime_value FROM sync_rows_total"]
    assert contract_problems(ok, code) == []


def test_attributes_are_checked_per_span(code):
    """exit_code exists (on sling.attempt) but a query reading it from sync.job spans must be flagged."""
    bad = ["SELECT \"span_attributes.exit_code\" FROM opentelemetry_traces WHERE span_name = 'sync.job'"]
    problems = contract_problems(bad, code)
    assert problems == ["span attribute 'exit_code' is queried on span 'sync.job', which does not declare it in src/"]
    good = ["SELECT \"span_attributes.exit_code\" FROM opentelemetry_traces WHERE span_name = 'sling.attempt'"]
    assert contract_problems(good, code) == []


# Issue 11: verification (src/sync/spans.rs verify_span/verify_stream, src/sync/metrics.rs stream_drift).
VERIFY_SPAN = "sync.verify"
VERIFY_SPAN_ATTRS = {"pipeline", "sync_job_id", "verify_status", "drift_rows"}
VERIFY_EVENT = "verify stream"  # the message: the body of its log record, the name of its span event
VERIFY_EVENT_FIELDS = {"stream", "source_rows", "target_rows", "drift_rows", "status", "warnings"}
DRIFT_TABLE = "sync_drift_rows"
DRIFT_LABELS = {"mission_cluster_id", "pipeline", "stream"}


def test_code_emits_the_verify_contract(code):
    """The names issue 11 fixed, each where it belongs: on the span, on the per-stream event, on the gauge."""
    assert VERIFY_SPAN in code.span_names
    assert VERIFY_SPAN_ATTRS <= code.span_fields[VERIFY_SPAN], code.span_fields[VERIFY_SPAN]
    assert VERIFY_EVENT_FIELDS <= code.event_fields.get(VERIFY_EVENT, set()), code.event_fields.get(VERIFY_EVENT)
    assert DRIFT_TABLE in code.gauges and code.specs[DRIFT_TABLE][0] == "gauge"
    assert code.table_labels()[DRIFT_TABLE] == DRIFT_LABELS


def test_queries_cover_the_verify_contract(queries):
    """The drift panels and the drift alert read the verification names (the contract test above then holds
    them to what src/ emits)."""
    refs = all_refs(queries)
    assert VERIFY_SPAN in refs.span_names and "verify_status" in refs.span_attrs
    assert VERIFY_EVENT in refs.bodies
    assert {"stream", "status", "drift_rows", "warnings"} <= refs.log_attrs
    assert DRIFT_TABLE in refs.tables, "the drift alert reads the gauge table"
    assert DRIFT_LABELS | {"greptime_value", "greptime_timestamp"} <= refs.quoted_columns
    assert any(DRIFT_TABLE in promql_refs(e).metrics for e in load_promql(DASHBOARDS))


def test_legends_only_name_labels_of_their_metric(code):
    for f in sorted(DASHBOARDS.glob("*.json")):
        problems = legend_problems(json.loads(f.read_text(encoding="utf-8")), code)
        assert not problems, "\n".join(problems)
    fake = {"panels": [{"title": "t", "targets": [
        {"expr": "last_over_time(sync_drift_rows[1h])", "legendFormat": "{{pipeline}} {{stream}} {{streamz}}"},
        {"expr": "sync_rows_total", "legendFormat": "{{stream}}"}]}]}
    problems = legend_problems(fake, code)
    assert len(problems) == 2 and "'streamz'" in problems[0] and "sync_rows_total" in problems[1], problems


def test_verify_contract_check_is_per_span_event_and_metric(queries, code):
    """Negative self-check: names that exist somewhere in src/ but not on the span, event or metric queried
    (the way a rename in one place would look) are each reported once."""
    fake = [
        # `attempt` is a log attribute (of Sling lines), not a field of the verify stream event
        "SELECT json_get_int(log_attributes, 'attempt') FROM opentelemetry_logs WHERE body = 'verify stream'",
        # no event has this message
        "SELECT json_get_int(log_attributes, 'drift_rows') FROM opentelemetry_logs WHERE body = 'verify streams'",
        # `exit_code` is a span attribute, of sling.attempt only
        "SELECT \"span_attributes.exit_code\" FROM opentelemetry_traces WHERE span_name = 'sync.verify'",
        # `status` labels sync_rows_total, not the drift gauge
        "SELECT `status`, `stream` FROM sync_drift_rows",
        # `stream` labels the drift gauge only
        "SELECT `stream` FROM sync_rows_total",
    ]
    _assert_each_reported(queries, code, fake, 5, (
        "'attempt' is queried on event 'verify stream'", "log body 'verify streams'",
        "'exit_code' is queried on span 'sync.verify'", "'status' is not a column", "'stream' is not a column"))
    prom = promql_problems(['last_over_time(sync_drift_rows{sync_mode="x"}[1h])',
                            'sum by (stream) (sum_over_time(sync_rows_total[1h]))'], code)
    assert len(prom) == 2 and "'sync_mode'" in prom[0] and "'stream'" in prom[1], prom
