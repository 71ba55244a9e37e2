//! OTLP without the SDK's log pipeline and without opentelemetry-otlp's span conversion: log records are captured
//! by a tracing layer (`log_layer`) into a bounded queue that applies back-pressure while the collector answers
//! (`log_queue`), and written as protobuf on the export thread; spans are encoded straight from the SDK's
//! `SpanData` (`spans`); both are framed as export requests and sent over OTLP/HTTP or OTLP/gRPC (`proto`, `send`).
//! Metrics still go through opentelemetry-otlp.
//!
//! Why: a Sling flood went tracing event → SDK record (strings copied) → a copy into the queue → protobuf structs at
//! export (copied again, grouped by scope through a hash map per record) → bytes. That was about 3 µs of CPU per
//! line, most of telemetry's cost; writing the bytes once costs a fraction of it. The attempt span's 10,000 events
//! went through the same kind of conversion at exit. What the collector receives is the same: for log records body,
//! attributes, severity, trace context and observed time as the appender and exporter made them, scope = tracing
//! target, the same resource (the appender's `event_name` — the source location — is left out); for spans every
//! field the exporter sent.

mod log_layer;
mod log_queue;
mod proto;
mod send;
mod span_events;
mod spans;

use std::sync::Arc;

use opentelemetry_sdk::Resource;

pub use log_layer::{LogLines, OtlpLogLayer};
pub use log_queue::{LogQueue, STALL_BOUND};
pub use span_events::{PendingEvents, SpanEventLines};
pub use spans::OtlpSpanExporter;

use super::config::{OtelConfig, Protocol};
use super::health::ExportHealth;

/// Starts the export thread for `cfg`'s logs endpoint; records of the targets in `scopes` go out under `resource`.
pub fn start(
    cfg: &OtelConfig,
    resource: &Resource,
    scopes: &'static [&'static str],
    health: Arc<ExportHealth>,
) -> anyhow::Result<Arc<LogQueue>> {
    let framing = log_queue::Framing {
        resource: proto::resource(resource.iter().map(|(k, v)| (k.as_str(), v))),
        schema_url: resource.schema_url().unwrap_or_default().to_owned(),
        scopes,
    };
    let sender = sender(
        cfg,
        &cfg.logs_endpoint,
        &cfg.logs_headers,
        send::LOGS_METHOD,
    )?;
    let queue = LogQueue::start(
        sender,
        log_layer::Transcoder::default(),
        framing,
        cfg.log_queue,
        health,
    );
    Ok(Arc::new(queue.map_err(|e| {
        anyhow::anyhow!("starting the log export thread: {e}")
    })?))
}

/// The span exporter for `cfg`'s traces endpoint (the SDK gives it the resource); it adds the span events `pending`
/// holds (see `SpanEventLines`).
pub fn span_exporter(
    cfg: &OtelConfig,
    pending: Arc<PendingEvents>,
) -> anyhow::Result<OtlpSpanExporter> {
    let sender = sender(
        cfg,
        &cfg.traces_endpoint,
        &cfg.traces_headers,
        send::TRACES_METHOD,
    )?;
    Ok(OtlpSpanExporter::new(sender, pending))
}

/// How one signal is sent under `cfg`'s protocol: to `endpoint` with `headers`; `method` is its gRPC method.
fn sender(
    cfg: &OtelConfig,
    endpoint: &str,
    headers: &std::collections::HashMap<String, String>,
    method: &'static str,
) -> anyhow::Result<send::Sender> {
    Ok(match cfg.protocol {
        Protocol::Grpc => send::Sender::grpc(
            endpoint,
            method,
            super::tonic_metadata(headers),
            cfg.timeout,
        )?,
        Protocol::HttpProtobuf => send::Sender::http(endpoint, headers.clone(), cfg.timeout),
    })
}

#[cfg(test)]
mod tests;
