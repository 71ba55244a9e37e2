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

use super::queue::{Export, Framing, LogQueue};
use super::*;
use crate::telemetry::config::LogQueueConfig;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Vec<u8>>>>);

impl Export for Capture {
    fn export(&mut self, request: &[u8]) -> Result<(), String> {
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
    let queue = Arc::new(LogQueue::start(sink.clone(), framing, cfg, health).expect("worker"));
    let subscriber = tracing_subscriber::registry().with(OtlpLogLayer::new(queue.clone(), &SCOPES));
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
