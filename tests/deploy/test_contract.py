"""Contract: everything the dashboards and alert rules query must be produced by the Rust code.

If the code renames a span, an attribute or a metric, or a dashboard names something the code never
emits, these tests fail (instead of the dashboard silently showing nothing)."""

from __future__ import annotations

import pytest

from deploy_helpers import DASHBOARDS, SRC
from telemetry_contract import (
    LOG_TABLE,
    TRACE_TABLE,
    all_refs,
    contract_problems,
    emitted,
    load_queries,
)

# The telemetry contract of the wrapper (src/sync/spans.rs, src/sync/metrics.rs, src/telemetry/).
SPANS = {"sync.job", "sync.pipeline", "sling.attempt"}
JOB_ATTRS = {"sync_job_id", "mission_cluster_id", "sync_mode", "pipelines", "status", "rows_synced", "duration_seconds"}
PIPELINE_ATTRS = {"pipeline", "sync_job_id", "mission_cluster_id", "sync_mode", "status", "rows_synced",
                  "duration_seconds", "attempts"}
ATTEMPT_ATTRS = {"pipeline", "sync_job_id", "attempt", "exit_code", "status", "rows_synced", "sling_log_lines"}
LOG_ATTRS = {"pipeline", "sync_job_id", "attempt", "sling_time"}
COUNTERS = {"sync_jobs", "sync_pipeline_runs", "sync_rows", "sync_retries"}
HISTOGRAMS = {"sync_job_duration_seconds", "sync_pipeline_duration_seconds"}


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
    missing += [f"counter {c}" for c in sorted(COUNTERS - code.counters)]
    missing += [f"histogram {h}" for h in sorted(HISTOGRAMS - code.histograms)]
    if "mission_cluster_id" not in code.resource_attrs:
        missing.append("resource attribute mission_cluster_id")
    assert not missing, "src/ no longer emits: " + ", ".join(missing)


def test_metric_table_names_follow_greptimedb_translation(code):
    tables = code.metric_tables()
    for c in COUNTERS:
        assert f"{c}_total" in tables
    for h in HISTOGRAMS:
        assert {f"{h}_bucket", f"{h}_sum", f"{h}_count"} <= tables


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
    baseline = set(contract_problems(queries, code))
    problems = [p for p in contract_problems(queries + fake, code) if p not in baseline]
    joined = "\n".join(problems)
    for needle in ("definitely_not_emitted_xyz", "sync.nope", "bogus_log_attr_xyz", "bogus_resource_xyz",
                   "sync_bogus_metric_total", "no_such_column_xyz", "another_fake_xyz"):
        assert needle in joined, f"the contract check missed {needle}: {problems}"
    assert len(problems) == 7, problems


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


def test_code_emits_the_verify_contract(code):
    """Issue 11: the verification span, its attributes and the drift gauge (dashboards to follow)."""
    assert "sync.verify" in code.span_names
    assert {"verify_status", "drift_rows"} <= code.span_fields["sync.verify"] | code.fields
    metrics_rs = (SRC / "sync" / "metrics.rs").read_text(encoding="utf-8")
    assert "gauge.sync_drift_rows" in metrics_rs
