//! Telemetry end to end: the real binary and the real Sling export to an in-process OTLP receiver (gRPC or
//! HTTP/protobuf); the captured requests are checked for the shape the dashboards rely on.

mod common;

use std::time::{Duration, Instant};

use common::otlp::{self, double_attr, int_attr, str_attr, Receiver};
use common::{count, World};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, Metric};
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span};

/// Every instrument and its unit: the names the dashboards' PromQL is built from (via GreptimeDB's translation).
const UNITS: [(&str, &str); 11] = [
    ("sync.jobs", "{run}"),
    ("sync.job.duration", "s"),
    ("sync.pipeline.runs", "{run}"),
    ("sync.rows", "{row}"),
    ("sync.pipeline.duration", "s"),
    ("sync.retries", "{attempt}"),
    ("sync.pipeline.last_success_timestamp", "s"),
    ("sync.pipeline.last_run_duration", "s"),
    ("sync.pipeline.last_run_rows", "{row}"),
    ("sync.pipeline.last_run_status", "{status}"),
    ("sync_drift_rows", "{row}"),
];
/// Sub-second noop checks to hour-long backfills.
const DURATION_BOUNDARIES: [f64; 16] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
    3600.0,
];

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn by_name<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn run_with(w: &World, env: &[(&str, String)], args: &[&str]) -> common::Run {
    let mut c = w.cmd(args);
    c.env_remove("OTEL_SDK_DISABLED")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "600000");
    for (k, v) in env {
        c.env(k, v);
    }
    common::Run::from(c.output().expect("run wrapper"))
}

#[test]
fn grpc_one_trace_per_job_with_the_documented_shape() {
    let rx = Receiver::grpc();
    let w = World::new();
    // The seed's form: host:port without a scheme.
    let run = run_with(
        &w,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", rx.addr.to_string()),
            ("SYNC_JOB_ID", "job-otel-1".into()),
        ],
        &[],
    );
    assert_eq!(run.code, Some(0), "{}", run.explain());
    let c = rx.captured();
    let spans = c.spans();

    let jobs = by_name(&spans, "sync.job");
    assert_eq!(jobs.len(), 1, "one root span per job");
    let job = jobs[0];
    assert!(job.parent_span_id.is_empty(), "sync.job is the root");
    assert!(
        spans.iter().all(|s| s.trace_id == job.trace_id),
        "every span of the job shares its trace id"
    );
    assert_eq!(
        str_attr(&job.attributes, "sync_job_id").as_deref(),
        Some("job-otel-1")
    );
    assert_eq!(
        str_attr(&job.attributes, "mission_cluster_id").as_deref(),
        Some("test-mission")
    );
    assert_eq!(
        str_attr(&job.attributes, "sync_mode").as_deref(),
        Some("incremental")
    );
    assert_eq!(
        str_attr(&job.attributes, "status").as_deref(),
        Some("success")
    );
    let landed = count(&w.command, "orders")
        + count(&w.command, "customers")
        + count(&w.command, "products");
    assert_eq!(
        int_attr(&job.attributes, "rows_synced"),
        Some(landed as i64),
        "rows_synced is an int equal to rows landed"
    );
    assert!(
        double_attr(&job.attributes, "duration_seconds").is_some_and(|d| d > 0.0),
        "duration_seconds is a double"
    );

    let pipelines = by_name(&spans, "sync.pipeline");
    assert_eq!(pipelines.len(), 2);
    for p in &pipelines {
        assert_eq!(
            p.parent_span_id, job.span_id,
            "sync.pipeline is a child of sync.job"
        );
        assert_eq!(
            str_attr(&p.attributes, "status").as_deref(),
            Some("success")
        );
        assert!(double_attr(&p.attributes, "duration_seconds").is_some());
    }
    let orders = pipelines
        .iter()
        .find(|p| str_attr(&p.attributes, "pipeline").as_deref() == Some("orders"))
        .expect("orders span");
    assert_eq!(int_attr(&orders.attributes, "rows_synced"), Some(5));

    let attempts = by_name(&spans, "sling.attempt");
    assert_eq!(attempts.len(), 2);
    let attempt = attempts
        .iter()
        .find(|a| a.parent_span_id == orders.span_id)
        .expect("attempt under orders");
    assert_eq!(int_attr(&attempt.attributes, "attempt"), Some(1));
    assert_eq!(int_attr(&attempt.attributes, "exit_code"), Some(0));

    // The row-count line: a span event on the attempt span, and a log record carrying that span's ids.
    let line = "inserted 3 rows into \"main\".\"orders\"";
    assert!(
        attempt.events.iter().any(|e| e.name.starts_with(line)),
        "span event missing: {:?}",
        attempt.events
    );
    assert_eq!(attempt.dropped_events_count, 0);
    let logs = c.log_records();
    let rec = logs
        .iter()
        .find(|l| format!("{:?}", l.body).contains("inserted 3 rows into"))
        .expect("log record for the row-count line");
    assert_eq!(hex(&rec.trace_id), hex(&job.trace_id));
    assert_eq!(hex(&rec.span_id), hex(&attempt.span_id));
    assert_eq!(rec.severity_text, "INFO");
    assert_eq!(
        str_attr(&rec.attributes, "pipeline").as_deref(),
        Some("orders")
    );
    assert_eq!(
        str_attr(&rec.attributes, "sync_job_id").as_deref(),
        Some("job-otel-1")
    );

    let res = c.resource_attrs();
    assert_eq!(
        str_attr(&res, "service.name").as_deref(),
        Some("sling-sync-wrapper")
    );
    assert_eq!(
        str_attr(&res, "mission_cluster_id").as_deref(),
        Some("test-mission")
    );
    assert!(str_attr(&res, "service.version").is_some());

    let metrics = c.metric_names();
    for m in [
        "sync.jobs",
        "sync.pipeline.runs",
        "sync.rows",
        "sync.pipeline.duration",
        "sync.job.duration",
        "sync.pipeline.last_success_timestamp",
    ] {
        assert!(
            metrics.iter().any(|n| n == m),
            "metric {m} missing from {metrics:?}"
        );
    }
    assert!(
        !run.stdout.contains("telemetry could not be delivered"),
        "{}",
        run.stdout
    );
}

#[test]
fn http_protobuf_appends_signal_paths_to_the_base() {
    let rx = Receiver::http();
    let w = World::new();
    let run = run_with(
        &w,
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into()),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://{}/v1/otlp", rx.addr),
            ),
            ("OTEL_SERVICE_NAME", "sync-under-test".into()),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=ci".into(),
            ),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "x-greptime-db-name=sync_obs".into(),
            ),
            (
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "x-greptime-pipeline-name=greptime_trace_v1".into(),
            ),
        ],
        &["--pipeline", "products"],
    );
    assert_eq!(run.code, Some(0), "{}", run.explain());
    let c = rx.captured();
    for p in [
        "/v1/otlp/v1/traces",
        "/v1/otlp/v1/logs",
        "/v1/otlp/v1/metrics",
    ] {
        assert!(
            c.paths.iter().any(|x| x == p),
            "{p} not requested: {:?}",
            c.paths
        );
    }
    let header = |path: &str, name: &str| -> Vec<String> {
        c.http_headers
            .iter()
            .filter(|(p, _)| p == path)
            .flat_map(|(_, hs)| hs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()))
            .collect()
    };
    let trace_header = header("/v1/otlp/v1/traces", "x-greptime-pipeline-name");
    assert!(!trace_header.is_empty() && trace_header.iter().all(|v| v == "greptime_trace_v1"));
    assert!(
        header("/v1/otlp/v1/logs", "x-greptime-pipeline-name").is_empty(),
        "trace header kept off logs"
    );
    assert!(
        !header("/v1/otlp/v1/logs", "x-greptime-db-name").is_empty(),
        "common header on logs"
    );
    let spans = c.spans();
    assert_eq!(by_name(&spans, "sync.job").len(), 1);
    assert_eq!(by_name(&spans, "sync.pipeline").len(), 1);
    assert_eq!(by_name(&spans, "sling.attempt").len(), 1);
    let res = c.resource_attrs();
    assert_eq!(
        str_attr(&res, "service.name").as_deref(),
        Some("sync-under-test")
    );
    assert_eq!(
        str_attr(&res, "deployment.environment").as_deref(),
        Some("ci")
    );
    assert!(c
        .log_records()
        .iter()
        .any(|l| format!("{:?}", l.body).contains("inserted 3 rows")));
}

#[test]
fn a_retried_pipeline_has_one_attempt_span_per_attempt_and_errors_carry_the_reason() {
    let rx = Receiver::grpc();
    let w = World::new();
    let shim = tempfile::tempdir().expect("tempdir");
    let run = run_with(
        &w,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{}", rx.addr)),
            (
                "SLING_BIN",
                format!(
                    "{}/tests/fixtures/sling-shim.sh",
                    env!("CARGO_MANIFEST_DIR")
                ),
            ),
            ("SHIM_DIR", shim.path().display().to_string()),
            ("SHIM_MODE", "fail_then_real".into()),
            ("SHIM_FAILS", "1".into()),
            ("SHIM_REAL", common::sling_bin().display().to_string()),
        ],
        &["--pipeline", "orders"],
    );
    assert_eq!(run.code, Some(0), "{}", run.explain());
    let c = rx.captured();
    let spans = c.spans();
    let mut attempts = by_name(&spans, "sling.attempt");
    attempts.sort_by_key(|a| int_attr(&a.attributes, "attempt"));
    assert_eq!(attempts.len(), 2);
    let failed = attempts[0];
    assert_eq!(int_attr(&failed.attributes, "exit_code"), Some(1));
    let status = failed.status.as_ref().expect("status");
    assert_eq!(status.code, StatusCode::Error as i32);
    assert!(
        status.message.contains("connection reset by peer"),
        "{}",
        status.message
    );
    assert_eq!(
        attempts[1].status.as_ref().map(|s| s.code),
        Some(StatusCode::Unset as i32)
    );
    let pipeline = by_name(&spans, "sync.pipeline")[0];
    assert_eq!(int_attr(&pipeline.attributes, "attempts"), Some(2));
    let retry = pipeline
        .events
        .iter()
        .find(|e| e.name.starts_with("retry scheduled"))
        .expect("retry event on the pipeline span");
    assert!(double_attr(&retry.attributes, "delay_seconds").is_some_and(|d| d > 0.0));
    assert!(c.metric_names().iter().any(|n| n == "sync.retries"));
}

#[test]
fn a_failed_job_has_error_status_on_job_and_pipeline() {
    let rx = Receiver::grpc();
    let w = World::new();
    w.write_pipeline(
        "broken",
        "source: MISSION\ntarget: NOPE\nstreams:\n  main.orders:\n    object: main.x\n",
    );
    let run = run_with(
        &w,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{}", rx.addr))],
        &["--pipeline", "broken"],
    );
    assert_eq!(run.code, Some(1), "{}", run.explain());
    let c = rx.captured();
    let spans = c.spans();
    for name in ["sync.job", "sync.pipeline", "sling.attempt"] {
        let s = by_name(&spans, name)[0];
        let st = s.status.as_ref().expect("status");
        assert_eq!(st.code, StatusCode::Error as i32, "{name}");
        assert!(!st.message.is_empty(), "{name} carries the reason");
        if name != "sling.attempt" {
            assert_eq!(str_attr(&s.attributes, "status").as_deref(), Some("failed"));
        }
    }
    let p = by_name(&spans, "sync.pipeline")[0];
    assert!(p
        .status
        .as_ref()
        .is_some_and(|s| s.message.contains("could not find connection NOPE")));
}

fn assert_sync_unaffected(endpoint: String, protocol: &str) {
    let w = World::new();
    let started = Instant::now();
    let run = run_with(
        &w,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.into()),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000".into()),
            ("SYNC_TELEMETRY_FLUSH_TIMEOUT", "2s".into()),
        ],
        &["--pipeline", "products"],
    );
    let took = started.elapsed();
    assert_eq!(run.code, Some(0), "{}", run.explain());
    assert_eq!(count(&w.command, "products"), 3);
    // A generous ceiling, not a benchmark: the sync itself takes about a second.
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(
        run.stdout.contains("telemetry could not be delivered"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_dead_collector_leaves_the_result_and_exit_code_alone() {
    assert_sync_unaffected(format!("http://{}", otlp::dead_addr()), "grpc");
    assert_sync_unaffected(format!("http://{}", otlp::dead_addr()), "http/protobuf");
}

#[test]
fn a_silent_collector_adds_only_a_bounded_delay() {
    let silent = otlp::Silent::new();
    assert_sync_unaffected(format!("http://{}", silent.addr), "grpc");
    assert_sync_unaffected(format!("http://{}", silent.addr), "http/protobuf");
}

#[test]
fn a_password_in_a_connection_url_appears_nowhere_in_telemetry_stdout_or_state() {
    let rx = Receiver::grpc();
    let mut w = World::new();
    let secret = "hunter2secret";
    // The command database reached through a URL whose password Sling would echo: a sqlite URL cannot carry one,
    // so the secret rides in a key=value variable and in an inline URL's password position of a failing pipeline.
    w.env.insert(
        "EXTRA_DSN".into(),
        format!("host=db user=sync password={secret}"),
    );
    w.write_pipeline(
        "leaky",
        &format!("source: MISSION\ntarget: postgresql://sync:{secret}@127.0.0.1:1/db?sslmode=disable\nstreams:\n  main.orders:\n    object: public.orders\n    mode: full-refresh\n"),
    );
    let run = run_with(
        &w,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{}", rx.addr)),
            ("SYNC_MAX_RETRIES", "0".into()),
        ],
        &[],
    );
    assert_eq!(
        run.code,
        Some(1),
        "the leaky pipeline cannot connect: {}",
        run.explain()
    );
    let c = rx.captured();
    assert!(!c.spans().is_empty() && !c.log_records().is_empty());
    let dump = c.dump();
    assert!(
        dump.contains("postgresql://sync:***@127.0.0.1:1"),
        "Sling's header line arrives masked"
    );
    assert!(!dump.contains(secret), "password exported");
    assert!(
        !run.stdout.contains(secret) && !run.stderr.contains(secret),
        "password printed"
    );
    let mut files = String::new();
    for e in std::fs::read_dir(&w.state).expect("state").flatten() {
        files.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
    }
    assert!(!files.contains(secret), "password in state files");
}

#[test]
fn sigterm_mid_run_closes_and_exports_spans_as_cancelled() {
    let rx = Receiver::grpc();
    let w = World::new();
    let shim = tempfile::tempdir().expect("tempdir");
    let mut c = w.cmd(&["--pipeline", "orders"]);
    c.env_remove("OTEL_SDK_DISABLED")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{}", rx.addr))
        .env(
            "SLING_BIN",
            format!(
                "{}/tests/fixtures/sling-shim.sh",
                env!("CARGO_MANIFEST_DIR")
            ),
        )
        .env("SHIM_DIR", shim.path())
        .env("SHIM_MODE", "hang")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let child = c.spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !shim.path().join("attempts").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(143));
    let c = rx.captured();
    let spans = c.spans();
    for name in ["sync.job", "sync.pipeline"] {
        let s = by_name(&spans, name);
        assert_eq!(s.len(), 1, "{name} closed and exported");
        assert_eq!(
            str_attr(&s[0].attributes, "status").as_deref(),
            Some("cancelled"),
            "{name}"
        );
        assert_eq!(
            s[0].status.as_ref().map(|st| st.code),
            Some(StatusCode::Error as i32)
        );
    }
    let attempt = by_name(&spans, "sling.attempt")[0];
    assert_eq!(
        str_attr(&attempt.attributes, "status").as_deref(),
        Some("cancelled")
    );
    assert!(
        c.metric_names().iter().any(|n| n == "sync.pipeline.runs"),
        "metrics flushed at exit"
    );
}

/// Every exported data point of one metric as (attributes, value), whatever its number type.
fn gauge_points(metrics: &[Metric], name: &str) -> Vec<(Vec<KeyValue>, f64)> {
    metrics
        .iter()
        .filter(|m| m.name == name)
        .flat_map(|m| match &m.data {
            Some(Data::Gauge(g)) => g.data_points.clone(),
            other => panic!("{name} is not a gauge: {other:?}"),
        })
        .map(|p| {
            let v = match p.value {
                Some(Value::AsDouble(d)) => d,
                Some(Value::AsInt(i)) => i as f64,
                None => panic!("{name}: point without a value"),
            };
            (p.attributes, v)
        })
        .collect()
}

fn gauge_of(metrics: &[Metric], name: &str, pipeline: &str) -> f64 {
    let points: Vec<f64> = gauge_points(metrics, name)
        .into_iter()
        .filter(|(a, _)| str_attr(a, "pipeline").as_deref() == Some(pipeline))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(points.len(), 1, "{name} for {pipeline}: {points:?}");
    points[0]
}

fn finished_at_seconds(record: &serde_json::Value) -> f64 {
    let text = record["finished_at"].as_str().expect("finished_at");
    chrono::DateTime::parse_from_rfc3339(text)
        .expect("RFC 3339")
        .timestamp_millis() as f64
        / 1000.0
}

#[test]
fn metrics_carry_units_duration_buckets_delta_counters_and_batch_job_gauges() {
    let w = World::new();
    let first = Receiver::grpc();
    let run = run_with(
        &w,
        &[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://{}", first.addr),
        )],
        &[],
    );
    assert_eq!(run.code, Some(0), "{}", run.explain());
    let orders_success = finished_at_seconds(&w.last_record("orders"));

    // The second job: orders fails (its source table is gone), products succeeds.
    common::sqlite(&w.mission, "drop table orders");
    let rx = Receiver::grpc();
    let run = run_with(
        &w,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{}", rx.addr)),
            ("SYNC_MAX_RETRIES", "0".into()),
        ],
        &[],
    );
    assert_eq!(run.code, Some(1), "{}", run.explain());
    assert_eq!(w.last_record("orders")["status"], "failed");
    let products = w.last_record("products");
    assert_eq!(products["status"], "success");
    let metrics = rx.captured().metrics();

    // Units on every instrument.
    for m in &metrics {
        let (_, unit) = UNITS
            .iter()
            .find(|(name, _)| *name == m.name)
            .unwrap_or_else(|| panic!("{} is not a known instrument", m.name));
        assert_eq!(m.unit, *unit, "{}", m.name);
        assert!(!m.description.is_empty(), "{}", m.name);
    }
    // All but the retry counter (no retries here) were exported.
    for (name, _) in UNITS.iter().filter(|(n, _)| *n != "sync.retries") {
        assert!(
            metrics.iter().any(|m| m.name == *name),
            "{name} not exported"
        );
    }

    // Histograms: boundaries from sub-second to an hour, delta like the counters.
    for name in ["sync.pipeline.duration", "sync.job.duration"] {
        let m = metrics.iter().find(|m| m.name == name).expect("histogram");
        let Some(Data::Histogram(h)) = &m.data else {
            panic!("{name} is not a histogram")
        };
        assert_eq!(
            h.aggregation_temporality,
            AggregationTemporality::Delta as i32
        );
        for p in &h.data_points {
            assert_eq!(p.explicit_bounds, DURATION_BOUNDARIES, "{name}");
            assert!(p.explicit_bounds[0] < 1.0 && p.explicit_bounds.last() == Some(&3600.0));
            assert_eq!(p.bucket_counts.len(), p.explicit_bounds.len() + 1);
        }
    }
    let runs = metrics
        .iter()
        .find(|m| m.name == "sync.pipeline.runs")
        .expect("runs");
    let Some(Data::Sum(sum)) = &runs.data else {
        panic!("sync.pipeline.runs is not a sum")
    };
    assert!(sum.is_monotonic);
    assert_eq!(
        sum.aggregation_temporality,
        AggregationTemporality::Delta as i32
    );
    let counted: i64 = sum
        .data_points
        .iter()
        .map(|p| match p.value {
            Some(Value::AsInt(i)) => i,
            ref other => panic!("run count {other:?}"),
        })
        .sum();
    assert_eq!(counted, 2, "the two runs of this job: {sum:?}");

    // The batch-job gauges: the failed pipeline still reports its last success, from the journal.
    let last_success = "sync.pipeline.last_success_timestamp";
    assert!(
        (gauge_of(&metrics, last_success, "orders") - orders_success).abs() < 0.002,
        "orders: {} vs the first job's {orders_success}",
        gauge_of(&metrics, last_success, "orders")
    );
    assert!(
        (gauge_of(&metrics, last_success, "products") - finished_at_seconds(&products)).abs()
            < 0.002
    );
    assert_eq!(
        gauge_of(&metrics, "sync.pipeline.last_run_status", "orders"),
        0.0
    );
    assert_eq!(
        gauge_of(&metrics, "sync.pipeline.last_run_status", "products"),
        1.0
    );
    assert_eq!(
        gauge_of(&metrics, "sync.pipeline.last_run_rows", "products"),
        products["rows"].as_f64().expect("rows")
    );
    assert!(products["rows"].as_u64() > Some(0));
    // The verified pipeline's drift gauge (one stream, nothing deleted): a match.
    assert_eq!(gauge_of(&metrics, "sync_drift_rows", "products"), 0.0);
    assert!(
        (gauge_of(&metrics, "sync.pipeline.last_run_duration", "products")
            - products["duration_seconds"].as_f64().expect("duration"))
        .abs()
            < 1e-9
    );
    // Every point names its mission cluster: GreptimeDB does not keep that resource attribute as a label.
    for m in &metrics {
        let attrs: Vec<Vec<KeyValue>> = match &m.data {
            Some(Data::Gauge(g)) => g.data_points.iter().map(|p| p.attributes.clone()).collect(),
            Some(Data::Sum(s)) => s.data_points.iter().map(|p| p.attributes.clone()).collect(),
            Some(Data::Histogram(h)) => {
                h.data_points.iter().map(|p| p.attributes.clone()).collect()
            }
            other => panic!("{}: unexpected data {other:?}", m.name),
        };
        for a in attrs {
            assert_eq!(
                str_attr(&a, "mission_cluster_id").as_deref(),
                Some("test-mission"),
                "{}",
                m.name
            );
        }
    }
}

#[test]
fn a_pipeline_that_never_succeeded_reports_last_success_zero() {
    let w = World::new();
    common::sqlite(&w.mission, "drop table products");
    let rx = Receiver::grpc();
    let run = run_with(
        &w,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{}", rx.addr)),
            ("SYNC_MAX_RETRIES", "0".into()),
        ],
        &["--pipeline", "products"],
    );
    assert_eq!(run.code, Some(1), "{}", run.explain());
    let metrics = rx.captured().metrics();
    assert_eq!(
        gauge_of(&metrics, "sync.pipeline.last_success_timestamp", "products"),
        0.0
    );
    assert_eq!(
        gauge_of(&metrics, "sync.pipeline.last_run_status", "products"),
        0.0
    );
}

#[test]
fn temporality_preference_is_honoured_and_a_bad_one_is_a_usage_error() {
    let w = World::new();
    let rx = Receiver::grpc();
    let run = run_with(
        &w,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{}", rx.addr)),
            (
                "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
                "cumulative".into(),
            ),
        ],
        &["--pipeline", "products"],
    );
    assert_eq!(run.code, Some(0), "{}", run.explain());
    let metrics = rx.captured().metrics();
    let rows = metrics
        .iter()
        .find(|m| m.name == "sync.rows")
        .expect("sync.rows");
    let Some(Data::Sum(sum)) = &rows.data else {
        panic!("sync.rows is not a sum")
    };
    assert_eq!(
        sum.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );

    let run = run_with(
        &w,
        &[(
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
            "sometimes".into(),
        )],
        &["--pipeline", "products"],
    );
    assert_eq!(run.code, Some(2), "{}", run.explain());
    assert!(
        run.stderr
            .contains("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"),
        "{}",
        run.stderr
    );
}

/// The wrapper with the shim in `track` mode around the real Sling: it records how many ran at once.
fn tracked(
    w: &World,
    shim_dir: &std::path::Path,
    rx: &Receiver,
    more: &[(&str, String)],
    args: &[&str],
) -> common::Run {
    let mut env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{}", rx.addr)),
        (
            "SLING_BIN",
            format!(
                "{}/tests/fixtures/sling-shim.sh",
                env!("CARGO_MANIFEST_DIR")
            ),
        ),
        ("SHIM_DIR", shim_dir.display().to_string()),
        ("SHIM_MODE", "track".into()),
        ("SHIM_REAL", common::sling_bin().display().to_string()),
    ];
    env.extend(more.iter().cloned());
    run_with(w, &env, args)
}

#[test]
fn concurrent_pipelines_share_one_trace_and_job_id_under_the_job_span() {
    let rx = Receiver::grpc();
    let w = World::new();
    // SQLite takes one writer at a time: products gets a target file of its own.
    w.write_pipeline(
        "products",
        &common::PRODUCTS_PIPELINE.replace("target: COMMAND", "target: COMMAND_B"),
    );
    let shim = tempfile::tempdir().expect("tempdir");
    let run = tracked(
        &w,
        shim.path(),
        &rx,
        &[
            ("SHIM_HOLD", "0.5".into()),
            ("SYNC_JOB_ID", "job-concurrent".into()),
            (
                "COMMAND_B",
                format!("sqlite://{}", w.dir.path().join("b.db").display()),
            ),
        ],
        &["--concurrency", "2"],
    );
    assert_eq!(run.code, Some(0), "{}", run.explain());
    assert_eq!(
        std::fs::read_to_string(shim.path().join("max"))
            .map(|s| s.trim().to_owned())
            .ok(),
        Some("2".into()),
        "the two pipelines ran at the same time"
    );
    let c = rx.captured();
    let spans = c.spans();
    let jobs = by_name(&spans, "sync.job");
    assert_eq!(jobs.len(), 1);
    let job = jobs[0];
    assert!(
        spans.iter().all(|s| s.trace_id == job.trace_id),
        "one trace"
    );
    let pipelines = by_name(&spans, "sync.pipeline");
    assert_eq!(pipelines.len(), 2);
    for p in &pipelines {
        assert_eq!(p.parent_span_id, job.span_id, "a child of the job span");
        assert_eq!(
            str_attr(&p.attributes, "sync_job_id").as_deref(),
            Some("job-concurrent")
        );
    }
    let attempts = by_name(&spans, "sling.attempt");
    assert_eq!(attempts.len(), 2);
    for a in &attempts {
        assert!(pipelines.iter().any(|p| p.span_id == a.parent_span_id));
        assert_eq!(
            str_attr(&a.attributes, "sync_job_id").as_deref(),
            Some("job-concurrent")
        );
    }
    let logs = c.log_records();
    assert!(!logs.is_empty());
    for l in &logs {
        assert_eq!(hex(&l.trace_id), hex(&job.trace_id));
    }
}

#[test]
fn a_pipeline_skipped_at_the_deadline_is_a_span_and_a_counter() {
    let rx = Receiver::grpc();
    let w = World::new();
    let shim = tempfile::tempdir().expect("tempdir");
    // orders starts first (by name: neither succeeded yet) and holds past the deadline; products never starts.
    let run = tracked(
        &w,
        shim.path(),
        &rx,
        &[("SHIM_HOLD", "2".into())],
        &["--job-deadline", "1s"],
    );
    assert_eq!(run.code, Some(1), "{}", run.explain());
    let c = rx.captured();
    let spans = c.spans();
    let job = by_name(&spans, "sync.job")[0];
    assert_eq!(
        str_attr(&job.attributes, "status").as_deref(),
        Some("failed")
    );
    let skipped = by_name(&spans, "sync.pipeline")
        .into_iter()
        .find(|p| str_attr(&p.attributes, "pipeline").as_deref() == Some("products"))
        .expect("a span for the skipped pipeline");
    assert_eq!(skipped.parent_span_id, job.span_id);
    assert_eq!(
        str_attr(&skipped.attributes, "status").as_deref(),
        Some("skipped")
    );
    assert_eq!(int_attr(&skipped.attributes, "attempts"), Some(0));
    let st = skipped.status.as_ref().expect("status");
    assert_eq!(st.code, StatusCode::Error as i32);
    assert!(st.message.contains("deadline"), "{}", st.message);
    assert!(
        by_name(&spans, "sling.attempt")
            .iter()
            .all(|a| a.parent_span_id != skipped.span_id),
        "no attempt"
    );

    let metrics = c.metrics();
    let runs = metrics
        .iter()
        .find(|m| m.name == "sync.pipeline.runs")
        .expect("runs");
    let Some(Data::Sum(sum)) = &runs.data else {
        panic!("sync.pipeline.runs is not a sum")
    };
    assert!(sum.data_points.iter().any(|p| {
        str_attr(&p.attributes, "pipeline").as_deref() == Some("products")
            && str_attr(&p.attributes, "status").as_deref() == Some("skipped")
    }));
    // It did not run: no last-run gauges, but its staleness stays visible.
    assert_eq!(
        gauge_of(&metrics, "sync.pipeline.last_success_timestamp", "products"),
        0.0
    );
    assert!(gauge_points(&metrics, "sync.pipeline.last_run_status")
        .iter()
        .all(|(a, _)| str_attr(a, "pipeline").as_deref() != Some("products")));
    assert_eq!(
        gauge_of(&metrics, "sync.pipeline.last_run_status", "orders"),
        1.0
    );
}

/// A flood through the shim with a collector that answers: every line arrives as a log record, even with a queue far
/// smaller than the flood (the SDK's batch processor dropped whatever did not fit), and span events stay bounded.
fn flood_delivers_every_line(rx: &Receiver, protocol: &str, endpoint: String) {
    const LINES: usize = 20_000;
    let w = World::new();
    let shim = tempfile::tempdir().expect("tempdir");
    let run = run_with(
        &w,
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.into()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_BLRP_MAX_QUEUE_SIZE", "64".into()),
            ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "16".into()),
            ("SLING_BIN", common::shim().display().to_string()),
            ("SHIM_DIR", shim.path().display().to_string()),
            ("SHIM_MODE", "flood".into()),
            ("SHIM_LINES", LINES.to_string()),
        ],
        &["--pipeline", "orders"],
    );
    assert_eq!(run.code, Some(0), "{}", run.explain());
    assert!(
        !run.stdout.contains("telemetry could not be delivered"),
        "{}",
        run.stdout
    );
    let c = rx.captured();
    let mut seen = vec![false; LINES];
    for record in c.log_records() {
        let body = format!("{:?}", record.body);
        if let Some(i) = body
            .split("flood line ")
            .nth(1)
            .map(|rest| {
                rest.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
            .and_then(|n| n.parse::<usize>().ok())
        {
            assert!(!seen[i], "flood line {i} arrived twice");
            seen[i] = true;
        }
    }
    let missing = seen.iter().filter(|s| !**s).count();
    assert_eq!(
        missing, 0,
        "{missing} of {LINES} flood lines never arrived as log records"
    );
    let spans = c.spans();
    let attempt = by_name(&spans, "sling.attempt")[0];
    // Every event in the attempt span is also a log record carrying that span's id: kept as a span event or
    // counted in `dropped_events_count`, whether the SDK dropped it or it was never built (beyond the bound).
    let under_attempt = c
        .log_records()
        .iter()
        .filter(|r| r.span_id == attempt.span_id)
        .count();
    assert!(under_attempt > LINES, "{under_attempt}");
    assert_eq!(
        attempt.events.len() + attempt.dropped_events_count as usize,
        under_attempt,
        "span events kept + dropped = the attempt's events"
    );
    assert_eq!(attempt.events.len(), 10_000);
    assert!(
        attempt
            .attributes
            .iter()
            .all(|kv| kv.key != "sling_line_events_skipped"),
        "the skipped count is folded into dropped_events_count, not exported"
    );
    // The source location (one line of spans.rs) would cost three attributes per event for nothing, and so would
    // the attempt span's own pipeline, job id and attempt and Sling's time stamp (the log records carry those).
    let line_event = attempt
        .events
        .iter()
        .find(|e| e.name.starts_with("flood line"))
        .expect("a line's span event");
    let mut keys: Vec<&str> = line_event
        .attributes
        .iter()
        .map(|kv| kv.key.as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["level", "target"]);
    let record = c
        .log_records()
        .into_iter()
        .find(|r| format!("{:?}", r.body).contains("flood line"))
        .expect("a line's log record");
    let mut keys: Vec<String> = record.attributes.iter().map(|kv| kv.key.clone()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["attempt", "pipeline", "sling_time", "sync_job_id"]);
}

#[test]
fn a_flood_reaches_an_answering_collector_line_for_line_over_http() {
    let rx = Receiver::http();
    let endpoint = format!("http://{}", rx.addr);
    flood_delivers_every_line(&rx, "http/protobuf", endpoint);
}

#[test]
fn a_flood_reaches_an_answering_collector_line_for_line_over_grpc() {
    let rx = Receiver::grpc();
    let endpoint = format!("http://{}", rx.addr);
    flood_delivers_every_line(&rx, "grpc", endpoint);
}

/// Long lines: the attempt span keeps line span events only up to a budget of text, each cut to
/// `MAX_SPAN_EVENT_TEXT`, and counts the rest as dropped; the log records carry every line whole. (Without the
/// budget, 10,000 lines at Sling's 16 KiB limit held over 512 MiB, the CronJob's memory limit.)
#[test]
fn long_lines_are_span_events_only_within_a_text_budget_and_log_records_whole() {
    const LINES: usize = 3_000;
    const PAD: usize = 2_000;
    let rx = Receiver::http();
    let w = World::new();
    let shim = tempfile::tempdir().expect("tempdir");
    let run = run_with(
        &w,
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{}", rx.addr)),
            ("SLING_BIN", common::shim().display().to_string()),
            ("SHIM_DIR", shim.path().display().to_string()),
            ("SHIM_MODE", "flood".into()),
            ("SHIM_LINES", LINES.to_string()),
            ("SHIM_LINE_BYTES", PAD.to_string()),
        ],
        &["--pipeline", "orders"],
    );
    assert_eq!(run.code, Some(0), "{}", run.explain());
    let c = rx.captured();
    let long_records = c
        .log_records()
        .iter()
        .filter(|r| {
            format!("{:?}", r.body).contains("flood line") && format!("{:?}", r.body).len() > PAD
        })
        .count();
    assert_eq!(
        long_records, LINES,
        "every line arrives whole as a log record"
    );
    let spans = c.spans();
    let attempt = by_name(&spans, "sling.attempt")[0];
    let line_events: Vec<&str> = attempt
        .events
        .iter()
        .map(|e| e.name.as_str())
        .filter(|n| n.contains("flood line"))
        .collect();
    let cut = sling_sync_wrapper::sync::spans::MAX_SPAN_EVENT_TEXT;
    let budget = sling_sync_wrapper::sync::spans::MAX_SPAN_EVENT_TEXT_PER_ATTEMPT;
    // The budget is filled with the flood's cut lines, less room for the few short lines the stand-in prints first.
    let kept = line_events.len();
    assert!(
        kept * cut <= budget && kept * cut > budget - 4 * cut,
        "{kept} line span events"
    );
    assert!(
        line_events
            .iter()
            .all(|n| n.len() == cut + '…'.len_utf8() && n.ends_with('…')),
        "each span event is the line cut to {cut} bytes"
    );
    assert_eq!(
        attempt.events.len() + attempt.dropped_events_count as usize,
        c.log_records()
            .iter()
            .filter(|r| r.span_id == attempt.span_id)
            .count(),
        "span events kept + dropped = the attempt's events"
    );
}
