//! The encoded requests decoded with the OTLP protos' generated types: what the SDK's appender and exporter sent.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value as Any, AnyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use prost::Message as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::{Layer, Registry};

use super::log_queue::{Export, Framing, LogQueue};
use super::span_events::{PendingEvents, SpanEventLines};
use super::*;
use crate::sync::spans;
use crate::telemetry::config::LogQueueConfig;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Vec<u8>>>>);

impl Export for Capture {
    fn export(&mut self, request: bytes::Bytes) -> Result<(), String> {
        self.0.lock().expect("lock").push(request.to_vec());
        Ok(())
    }
}

fn requests(c: &Capture) -> Vec<ExportLogsServiceRequest> {
    c.0.lock()
        .expect("lock")
        .iter()
        .map(|b| ExportLogsServiceRequest::decode(b.as_slice()).expect("a valid request"))
        .collect()
}

fn any(v: &Option<AnyValue>) -> Option<&Any> {
    v.as_ref().and_then(|a| a.value.as_ref())
}

fn attr<'a>(r: &'a LogRecord, key: &str) -> Option<&'a Any> {
    r.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| any(&kv.value))
}

/// Every record of `reqs`, in order.
fn log_records(reqs: &[ExportLogsServiceRequest]) -> Vec<&LogRecord> {
    reqs.iter()
        .flat_map(|r| &r.resource_logs)
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .collect()
}

const SCOPES: [&str; 2] = ["sync", "sling"];

/// Runs `emit` with only our layer installed, exporting into a capture with batches of `max_batch`.
fn capture(max_batch: usize, emit: impl FnOnce()) -> Vec<ExportLogsServiceRequest> {
    let resource = Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", "sling-sync-wrapper"),
            KeyValue::new("mission_cluster_id", "m-1"),
            KeyValue::new("replicas", 3),
            KeyValue::new(
                "zones",
                opentelemetry::Value::Array(opentelemetry::Array::String(vec![
                    "a".into(),
                    "b".into(),
                ])),
            ),
        ])
        .with_schema_url(Vec::<KeyValue>::new(), "https://example.test/schema")
        .build();
    let sink = Capture::default();
    let framing = Framing {
        resource: proto::resource(resource.iter().map(|(k, v)| (k.as_str(), v))),
        schema_url: resource.schema_url().unwrap_or_default().to_owned(),
        scopes: &SCOPES,
    };
    let cfg = LogQueueConfig {
        max_queue: 64,
        max_batch,
        delay: Duration::from_secs(60),
    };
    let health = Arc::new(crate::telemetry::health::ExportHealth::default());
    let queue = Arc::new(
        LogQueue::start(
            sink.clone(),
            log_layer::Transcoder::default(),
            framing,
            cfg,
            health,
        )
        .expect("worker"),
    );
    // As `Telemetry::init` installs them: the layer, and the line outputs the engine finds in the subscriber.
    let lines = LogLines::new(queue.clone(), &SCOPES).expect("Sling's target is a scope");
    let layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = vec![
        OtlpLogLayer::new(queue.clone(), &SCOPES).boxed(),
        crate::telemetry::line_outputs_layer(spans::LineOutputs::new(vec![Box::new(lines)]))
            .boxed(),
    ];
    let subscriber = tracing_subscriber::registry().with(layers);
    tracing::subscriber::with_default(subscriber, emit);
    queue
        .shutdown_with_timeout(Duration::from_secs(5))
        .expect("shutdown");
    requests(&sink)
}

#[test]
fn records_carry_body_typed_attributes_severity_trace_context_and_scope() {
    let provider = SdkTracerProvider::builder().build();
    let tracer = provider.tracer("test");
    let span = tracer.start("sling.attempt");
    let (trace_id, span_id) = (
        span.span_context().trace_id(),
        span.span_context().span_id(),
    );
    let before = SystemTime::now();
    let reqs = capture(16, || {
        let msg = "inserted 3 rows";
        {
            let _cx = opentelemetry::Context::current_with_span(span).attach();
            tracing::info!(target: "sling", pipeline = "orders", attempt = 2u32, sling_time = "t", "{msg}");
        }
        tracing::warn!(target: "sync", big = u64::MAX, ratio = 0.5, ok = true, neg = -4i64, "plain");
        tracing::error!(target: "other", "not exported");
    });
    let req = &reqs[0];
    assert_eq!(reqs.len(), 1);
    let rl = &req.resource_logs[0];
    assert_eq!(rl.schema_url, "https://example.test/schema");
    let res = &rl.resource.as_ref().expect("resource").attributes;
    let res_attr = |k: &str| {
        res.iter()
            .find(|kv| kv.key == k)
            .and_then(|kv| any(&kv.value))
    };
    assert_eq!(
        res_attr("mission_cluster_id"),
        Some(&Any::StringValue("m-1".into()))
    );
    assert_eq!(res_attr("replicas"), Some(&Any::IntValue(3)));
    assert!(matches!(res_attr("zones"), Some(Any::ArrayValue(a)) if a.values.len() == 2));

    // One scope per run of records of one target, in the order they came.
    let scopes: Vec<&str> = rl
        .scope_logs
        .iter()
        .map(|s| s.scope.as_ref().map_or("", |s| s.name.as_str()))
        .collect();
    assert_eq!(scopes, ["sling", "sync"]);
    let line = &rl.scope_logs[0].log_records[0];
    assert_eq!(
        any(&line.body),
        Some(&Any::StringValue("inserted 3 rows".into()))
    );
    assert_eq!(line.severity_text, "INFO");
    assert_eq!(line.severity_number, 9);
    assert_eq!(
        attr(line, "pipeline"),
        Some(&Any::StringValue("orders".into()))
    );
    assert_eq!(attr(line, "attempt"), Some(&Any::IntValue(2)));
    assert_eq!(
        attr(line, "sling_time"),
        Some(&Any::StringValue("t".into()))
    );
    assert_eq!(
        line.attributes.len(),
        3,
        "message is the body, not an attribute"
    );
    assert_eq!(line.trace_id, trace_id.to_bytes());
    assert_eq!(line.span_id, span_id.to_bytes());
    assert_eq!(line.flags, 1, "sampled");
    let observed = SystemTime::UNIX_EPOCH + Duration::from_nanos(line.observed_time_unix_nano);
    assert!(observed >= before && observed <= SystemTime::now());
    assert_eq!(line.time_unix_nano, 0);
    assert!(line.event_name.is_empty());

    let sync = &rl.scope_logs[1].log_records[0];
    assert_eq!(sync.severity_text, "WARN");
    assert_eq!(sync.severity_number, 13);
    assert_eq!(any(&sync.body), Some(&Any::StringValue("plain".into())));
    assert_eq!(
        attr(sync, "big"),
        Some(&Any::StringValue(u64::MAX.to_string()))
    );
    assert_eq!(attr(sync, "ratio"), Some(&Any::DoubleValue(0.5)));
    assert_eq!(attr(sync, "ok"), Some(&Any::BoolValue(true)));
    assert_eq!(attr(sync, "neg"), Some(&Any::IntValue(-4)));
    assert!(sync.trace_id.is_empty(), "no span was active");
}

/// Events with the fields every Sling line carries (`pipeline`, `sync_job_id`, `attempt`) arrive as emitted through
/// every change: a new value, another call site with the same values under other names, another type.
#[test]
fn repeated_line_fields_arrive_with_each_records_own_value() {
    let values = [
        ("orders", "job-1", 1u32),
        ("orders", "job-1", 1),
        ("orders", "job-1", 2),
        ("customers", "job-1", 2),
        ("customers", "job-22", 2),
        ("customers", "job-22", 2),
        ("customers", "job-22", 2),
    ];
    // After these lines, another call site: the same values in the same places under swapped names, so bytes kept
    // for one call site would put the wrong names on the other's record.
    let swapped_after = [1, 5];
    let reqs = capture(64, || {
        for (i, (pipeline, job, attempt)) in values.into_iter().enumerate() {
            tracing::info!(target: "sling", pipeline, sync_job_id = job, attempt, sling_time = "t", "line");
            if swapped_after.contains(&i) {
                tracing::info!(target: "sling", sync_job_id = pipeline, pipeline = job, attempt, sling_time = "t", "swapped");
            }
        }
        tracing::info!(target: "sling", pipeline = true, "a bool is encoded, not kept");
        tracing::info!(target: "sling", pipeline = true, "a bool is encoded, not kept");
    });
    let records = log_records(&reqs);
    assert_eq!(records.len(), values.len() + swapped_after.len() + 2);
    let text = |s: &str| Some(Any::StringValue(s.into()));
    let mut next = records.iter();
    for (i, (pipeline, job, attempt)) in values.iter().enumerate() {
        let mut check = |pipeline_attr: &str, job_attr: &str| {
            let r = next.next().expect("a record");
            assert_eq!(attr(r, pipeline_attr).cloned(), text(pipeline), "line {i}");
            assert_eq!(attr(r, job_attr).cloned(), text(job), "line {i}");
            let attempt = Some(&Any::IntValue(i64::from(*attempt)));
            assert_eq!(attr(r, "attempt"), attempt, "line {i}");
            assert_eq!(r.attributes.len(), 4, "line {i}");
        };
        check("pipeline", "sync_job_id");
        if swapped_after.contains(&i) {
            check("sync_job_id", "pipeline");
        }
    }
    for r in next {
        assert_eq!(attr(r, "pipeline"), Some(&Any::BoolValue(true)));
    }
}

/// A Sling line the engine hands over (`LogLines`) arrives as the record the layer makes of the `sling line` event
/// that `spans::sling_line` emits without line outputs: body, severity, attributes (names, order, types), trace
/// context and scope the same; only the time of observation differs. The lines change level, attempt, pipeline,
/// job and span (or none) from one to the next, as each part `LogLines` keeps encoded does.
#[test]
fn sling_lines_handed_over_arrive_as_the_records_of_their_events() {
    use crate::sync::redact::RedactedLine;
    use crate::sync::sling_log::Level as SlingLevel;

    let provider = SdkTracerProvider::builder().build();
    let tracer = provider.tracer("test");
    let (a, b) = (tracer.start("attempt 1"), tracer.start("attempt 2"));
    let (a_id, b_id) = (a.span_context().span_id(), b.span_context().span_id());
    let (a, b) = (
        opentelemetry::Context::current_with_span(a),
        opentelemetry::Context::current_with_span(b),
    );
    let long = "x".repeat(20_000);
    #[rustfmt::skip]
    let lines = [
        (Some(&a), "orders", "job-1", 1, SlingLevel::Info, Some("2026-11-27T00:00:00Z"), "inserted 7 rows é ✓"),
        (Some(&a), "orders", "job-1", 1, SlingLevel::Info, Some("t"), "the same repeated parts"),
        (Some(&a), "orders", "job-1", 1, SlingLevel::Debug, None, "debug \u{0}"),
        (Some(&b), "orders", "job-1", 2, SlingLevel::Warn, Some(""), ""),
        (Some(&b), "customers", "job-1", 2, SlingLevel::Warn, Some("t"), "another pipeline"),
        (Some(&b), "customers", "job-22", 2, SlingLevel::Error, Some("t"), long.as_str()),
        (None, "customers", "job-22", 2, SlingLevel::Error, Some("t"), "no span"),
        (Some(&a), "customers", "job-22", 3, SlingLevel::Trace, Some("t"), "trace"),
    ];
    let reqs = capture(64, || {
        let outputs =
            spans::LineOutputs::current().expect("the line outputs, found in the subscriber");
        for (cx, pipeline, job, attempt, level, time, message) in lines {
            let _guard = cx.map(|cx| cx.clone().attach());
            let line = RedactedLine::of(level, time, message);
            spans::sling_line(None, pipeline, job, attempt, &line, false);
            spans::sling_line(Some(&outputs), pipeline, job, attempt, &line, false);
        }
    });
    let scopes: Vec<&str> = reqs
        .iter()
        .flat_map(|r| &r.resource_logs)
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.scope.as_ref().map_or("", |s| s.name.as_str()))
        .collect();
    assert!(scopes.iter().all(|s| *s == "sling"), "{scopes:?}");
    let records = log_records(&reqs);
    assert_eq!(records.len(), 2 * lines.len());
    for (i, (pair, line)) in records.chunks(2).zip(&lines).enumerate() {
        let (mut via_event, mut handed_over) = (pair[0].clone(), pair[1].clone());
        assert_ne!(handed_over.observed_time_unix_nano, 0, "line {i}");
        via_event.observed_time_unix_nano = 0;
        handed_over.observed_time_unix_nano = 0;
        assert_eq!(handed_over, via_event, "line {i}");
        let span_id = match line.0 {
            Some(cx) if std::ptr::eq(cx, &a) => a_id.to_bytes().to_vec(),
            Some(_) => b_id.to_bytes().to_vec(),
            None => Vec::new(),
        };
        assert_eq!(handed_over.span_id, span_id, "line {i}");
    }
}

/// A record of the same call site under another span, or none, carries its own context.
#[test]
fn records_of_one_call_site_carry_each_its_own_trace_context() {
    let provider = SdkTracerProvider::builder().build();
    let tracer = provider.tracer("test");
    let (a, b) = (tracer.start("a"), tracer.start("b"));
    let ids = |s: &opentelemetry::trace::SpanContext| {
        (
            s.trace_id().to_bytes().to_vec(),
            s.span_id().to_bytes().to_vec(),
        )
    };
    let (a_ids, b_ids) = (ids(a.span_context()), ids(b.span_context()));
    let (a, b) = (
        opentelemetry::Context::current_with_span(a),
        opentelemetry::Context::current_with_span(b),
    );
    let order = [Some(&a), Some(&a), None, Some(&b), Some(&a), None];
    let reqs = capture(64, || {
        for cx in order {
            let _guard = cx.map(|cx| cx.clone().attach());
            tracing::info!(target: "sling", "line");
        }
    });
    let got: Vec<(Vec<u8>, Vec<u8>)> = log_records(&reqs)
        .iter()
        .map(|r| (r.trace_id.clone(), r.span_id.clone()))
        .collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> = order
        .iter()
        .map(|cx| match cx {
            Some(cx) if std::ptr::eq(*cx, &a) => a_ids.clone(),
            Some(_) => b_ids.clone(),
            None => (Vec::new(), Vec::new()),
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn batches_hold_at_most_max_batch_records_and_keep_their_order() {
    let reqs = capture(4, || {
        for i in 0..10 {
            let target_is_sync = i % 3 == 0;
            if target_is_sync {
                tracing::info!(target: "sync", "line {i}");
            } else {
                tracing::info!(target: "sling", "line {i}");
            }
        }
    });
    let per_request: Vec<usize> = reqs
        .iter()
        .map(|r| {
            r.resource_logs[0]
                .scope_logs
                .iter()
                .map(|s| s.log_records.len())
                .sum()
        })
        .collect();
    assert_eq!(per_request, [4, 4, 2]);
    let bodies: Vec<String> = reqs
        .iter()
        .flat_map(|r| &r.resource_logs[0].scope_logs)
        .flat_map(|s| {
            let scope = s.scope.as_ref().map_or("", |s| s.name.as_str()).to_owned();
            s.log_records.iter().map(move |l| match any(&l.body) {
                Some(Any::StringValue(b)) => format!("{scope}:{b}"),
                other => format!("{other:?}"),
            })
        })
        .collect();
    let expected: Vec<String> = (0..10)
        .map(|i| format!("{}:line {i}", if i % 3 == 0 { "sync" } else { "sling" }))
        .collect();
    assert_eq!(bodies, expected);
}

/// A span processor that keeps what ends.
#[derive(Debug, Clone, Default)]
struct KeepSpans(Arc<Mutex<Vec<opentelemetry_sdk::trace::SpanData>>>);

impl opentelemetry_sdk::trace::SpanProcessor for KeepSpans {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}
    fn on_end(&self, span: opentelemetry_sdk::trace::SpanData) {
        self.0.lock().expect("lock").push(span);
    }
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

/// Every span field as opentelemetry-otlp's own conversion makes it: our bytes decode to the same request.
#[test]
fn spans_encode_to_what_the_sdk_exporter_sent() {
    use opentelemetry::trace::{
        Link, SpanContext, SpanKind, Status, TraceFlags, TraceState, Tracer as _,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use opentelemetry_sdk::trace::SpanExporter as _;

    let memory = KeepSpans::default();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(memory.clone())
        .with_max_events_per_span(2)
        .build();
    let tracer = provider.tracer_with_scope(
        opentelemetry::InstrumentationScope::builder("sling-sync-wrapper")
            .with_version("1.2.3")
            .with_attributes([KeyValue::new("scope.attr", true)])
            .build(),
    );
    let remote = SpanContext::new(
        opentelemetry::trace::TraceId::from(7u128),
        opentelemetry::trace::SpanId::from(9u64),
        TraceFlags::SAMPLED,
        true,
        TraceState::from_key_value([("k", "v")]).expect("trace state"),
    );
    let mut span = tracer
        .span_builder("sling.attempt")
        .with_kind(SpanKind::Client)
        .with_links(vec![Link::new(
            remote,
            vec![KeyValue::new("why", "retry")],
            0,
        )])
        .start(&tracer);
    span.set_attribute(KeyValue::new("pipeline", "orders"));
    span.set_attribute(KeyValue::new("attempt", 2));
    span.set_attribute(KeyValue::new("ratio", 0.5));
    span.set_attribute(KeyValue::new(
        "zones",
        opentelemetry::Value::Array(opentelemetry::Array::I64(vec![1, 2])),
    ));
    for i in 0..4 {
        span.add_event(format!("line {i}"), vec![KeyValue::new("level", "INFO")]);
    }
    span.set_status(Status::error("exit code 1"));
    span.end();
    tracer.start("sync.job").end();
    let spans = memory.0.lock().expect("lock").clone();
    assert_eq!(spans.len(), 2);

    let resource = Resource::builder_empty()
        .with_schema_url(
            [KeyValue::new("service.name", "sling-sync-wrapper")],
            "https://opentelemetry.io/schemas/1.26.0",
        )
        .build();
    let mut ours = OtlpSpanExporter::new(
        super::send::Sender::http(
            "http://127.0.0.1:9/v1/traces",
            Default::default(),
            Duration::from_secs(1),
        ),
        Arc::default(),
    );
    ours.set_resource(&resource);
    let mut bytes = Vec::new();
    let none = PendingEvents::default();
    let schema_url = resource.schema_url().unwrap_or_default();
    super::spans::encode_request(
        &mut bytes,
        &ours.resource_for_tests(),
        schema_url,
        &spans,
        &none,
    );
    let decoded = ExportTraceServiceRequest::decode(bytes.as_slice()).expect("a valid request");
    let expected = ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(
            spans,
            &ResourceAttributesWithSchema::from(&resource),
        ),
    };
    assert_eq!(decoded, expected);
    let attempt = &decoded.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(attempt.events.len(), 2);
    assert_eq!(attempt.dropped_events_count, 2);
}

/// Every kind of value the engine captures and the export thread encodes, around the lengths where a record's
/// length prefix changes size.
#[test]
fn errors_bytes_and_records_of_every_size_arrive_as_emitted() {
    let long = "x".repeat(20_000);
    let err = std::io::Error::other("disk full");
    let reqs = capture(16, || {
        tracing::error!(target: "sync", error = &err as &(dyn std::error::Error + 'static), "failed");
        tracing::info!(target: "sync", data = &b"\x00\xffraw"[..], "bytes");
        tracing::info!(target: "sling", "");
        tracing::info!(target: "sling", "{long}");
    });
    let records = log_records(&reqs);
    assert_eq!(records.len(), 4);
    assert_eq!(
        attr(records[0], "exception.message"),
        Some(&Any::StringValue("disk full".into()))
    );
    assert_eq!(
        attr(records[1], "data"),
        Some(&Any::BytesValue(b"\x00\xffraw".to_vec()))
    );
    assert_eq!(
        any(&records[2].body),
        Some(&Any::StringValue(String::new()))
    );
    assert_eq!(any(&records[3].body), Some(&Any::StringValue(long.clone())));
}

/// Sling lines handed to `SpanEventLines` under a span arrive among that span's own events in time order, as
/// opentelemetry-otlp would have sent them had they been SDK events like the tracing twins they replace: the message
/// (cut) as the name, `level` and `target` as attributes. Lines not marked for it, or outside any span, are not
/// recorded, and a span's lines are sent once.
#[test]
fn line_span_events_arrive_among_the_spans_own_in_time_order() {
    use opentelemetry::trace::Tracer as _;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use spans::LineOutput as _;

    let memory = KeepSpans::default();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(memory.clone())
        .build();
    let tracer = provider.tracer("sling-sync-wrapper");
    let pending = Arc::new(PendingEvents::default());
    let lines = SpanEventLines::new(pending.clone());
    let epoch = Duration::from_secs(1_800_000_000);
    let at = |ms: u64| epoch + Duration::from_millis(ms);
    let long = "é".repeat(spans::MAX_SPAN_EVENT_TEXT);
    let line = |ms: u64, level, message: &'static str, span_event| spans::SlingLine {
        level,
        message,
        pipeline: "orders",
        sync_job_id: "job-1",
        attempt: 1,
        sling_time: "",
        observed: at(ms),
        span_event,
    };
    // Outside any span: nowhere to go.
    lines.line(&line(1, tracing::Level::INFO, "before", true));
    let attempt = tracer.start("sling.attempt");
    let attempt_cx = opentelemetry::Context::current_with_span(attempt);
    {
        let _entered = attempt_cx.clone().attach();
        let span = attempt_cx.span();
        span.add_event_with_timestamp(
            "own a",
            SystemTime::UNIX_EPOCH + at(10),
            vec![KeyValue::new("k", 1)],
        );
        lines.line(&line(5, tracing::Level::INFO, "first", true));
        lines.line(&line(10, tracing::Level::WARN, "same time as own a", true));
        lines.line(&line(20, tracing::Level::INFO, "not an event", false));
        lines.line(&line(25, tracing::Level::ERROR, long.clone().leak(), true));
        span.add_event_with_timestamp("own b", SystemTime::UNIX_EPOCH + at(30), vec![]);
        lines.line(&line(40, tracing::Level::DEBUG, "last", true));
        span.end_with_timestamp(SystemTime::UNIX_EPOCH + at(50));
    }
    tracer.start("sync.job").end();
    let spans = memory.0.lock().expect("lock").clone();
    assert_eq!(spans.len(), 2);

    let event = |ms: u64, name: String, level: &str| {
        opentelemetry::trace::Event::new(
            name,
            SystemTime::UNIX_EPOCH + at(ms),
            vec![
                KeyValue::new("level", level.to_owned()),
                KeyValue::new("target", spans::SLING),
            ],
            0,
        )
    };
    let mut expected = spans.clone();
    let own = std::mem::take(&mut expected[0].events.events);
    expected[0].events.events = vec![
        event(5, "first".into(), "INFO"),
        own[0].clone(),
        event(10, "same time as own a".into(), "WARN"),
        event(25, spans::span_event_text(&long).into_owned(), "ERROR"),
        own[1].clone(),
        event(40, "last".into(), "DEBUG"),
    ];
    let resource = Resource::builder_empty().build();
    let reference = ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(
            expected,
            &ResourceAttributesWithSchema::from(&resource),
        ),
    };
    let encode = || {
        let mut bytes = Vec::new();
        super::spans::encode_request(&mut bytes, &[], "", &spans, &pending);
        ExportTraceServiceRequest::decode(bytes.as_slice()).expect("a valid request")
    };
    let decoded = encode();
    assert_eq!(decoded, reference);
    let names: Vec<&str> = decoded.resource_spans[0].scope_spans[0].spans[0]
        .events
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(names[..3], ["first", "own a", "same time as own a"]);
    assert!(
        names[3].ends_with('…') && names[3].len() <= spans::MAX_SPAN_EVENT_TEXT + '…'.len_utf8()
    );

    // Taken: the same spans encoded again carry only their own events.
    let again = encode();
    assert_eq!(
        again.resource_spans[0].scope_spans[0].spans[0].events.len(),
        2
    );

    // A span that is not sampled is never exported: its lines are not kept.
    let unsampled = opentelemetry::trace::SpanContext::new(
        opentelemetry::trace::TraceId::from(7u128),
        opentelemetry::trace::SpanId::from(9u64),
        opentelemetry::trace::TraceFlags::default(),
        false,
        opentelemetry::trace::TraceState::default(),
    );
    {
        let _entered = opentelemetry::Context::new()
            .with_remote_span_context(unsampled.clone())
            .attach();
        lines.line(&line(60, tracing::Level::INFO, "unsampled", true));
    }
    let key = (
        unsampled.trace_id().to_bytes(),
        unsampled.span_id().to_bytes(),
    );
    assert!(pending.take(&key).is_none());
}
