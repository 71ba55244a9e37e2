//! Spans as OTLP, encoded straight from the SDK's `SpanData`: the fields opentelemetry-otlp sent, without its
//! protobuf structs in between. An attempt span carries up to 10,000 events and is exported when the run ends, so
//! converting them (every key and string copied, then encoded, then freed) was most of the wait at exit; writing
//! the bytes once takes a fraction of it. The Sling lines' span events are not in `SpanData` at all: they come
//! encoded (`span_events`) and are merged in by time. Sent by the same code as the log records (`send`).

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;

use super::log_queue::Export;
use super::proto;
use super::send::Sender;
use super::span_events::{Events, PendingEvents};
use crate::sync::spans::MAX_EVENTS_PER_SPAN;

/// OTLP's span flags: "the context knows whether the parent is remote", and "it is".
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

/// The SDK's batch span processor hands it spans; it encodes and sends them.
pub struct OtlpSpanExporter {
    sender: Mutex<Sender>,
    /// The Sling lines' span events, by span.
    pending: Arc<PendingEvents>,
    /// Encoded `Resource` and its schema URL, set by the SDK when the provider is built.
    resource: Vec<u8>,
    schema_url: String,
}

impl std::fmt::Debug for OtlpSpanExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OtlpSpanExporter")
    }
}

impl OtlpSpanExporter {
    pub fn new(sender: Sender, pending: Arc<PendingEvents>) -> Self {
        Self {
            sender: Mutex::new(sender),
            pending,
            resource: Vec::new(),
            schema_url: String::new(),
        }
    }
}

#[cfg(test)]
impl OtlpSpanExporter {
    pub(super) fn resource_for_tests(&self) -> Vec<u8> {
        self.resource.clone()
    }
}

impl SpanExporter for OtlpSpanExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut request = Vec::new();
        encode_request(
            &mut request,
            &self.resource,
            &self.schema_url,
            &batch,
            &self.pending,
        );
        drop(batch);
        let mut sender = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        sender
            .export(bytes::Bytes::from(request))
            .map_err(OTelSdkError::InternalFailure)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = proto::resource(resource.iter().map(|(k, v)| (k.as_str(), v)));
        self.schema_url = resource.schema_url().unwrap_or_default().to_owned();
    }
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn attributes(out: &mut Vec<u8>, field: u64, attrs: &[KeyValue]) {
    for kv in attrs {
        proto::otel_key_value(out, field, kv.key.as_str(), &kv.value);
    }
}

/// `ExportTraceServiceRequest { resource_spans = 1 }` with one `ResourceSpans { resource = 1, scope_spans = 2,
/// schema_url = 3 }` holding a `ScopeSpans { scope = 1, spans = 2, schema_url = 3 }` per run of spans of one scope.
/// Each span's events in `pending` are taken and written with its own.
///
/// Every span is encoded once, into a buffer of its own; with every length then known, the request is written in
/// one pass. (Nested in a buffer per level, an attempt span's 10,000 events were copied three more times, into
/// fresh memory, while the process waited to exit.)
pub(super) fn encode_request(
    out: &mut Vec<u8>,
    resource: &[u8],
    schema_url: &str,
    spans: &[SpanData],
    pending: &PendingEvents,
) {
    let mut scratch = Vec::new();
    let encoded: Vec<Vec<u8>> = spans
        .iter()
        .map(|s| {
            let mut span = Vec::new();
            let sc = &s.span_context;
            let lines = pending.take(&(sc.trace_id().to_bytes(), sc.span_id().to_bytes()));
            encode_span(&mut span, s, lines.as_ref(), &mut scratch);
            span
        })
        .collect();
    // Per run of one scope: the encoded scope, its schema URL, the run's spans and the `ScopeSpans`' length.
    let mut runs = Vec::new();
    let mut at = 0;
    for run in spans.chunk_by(|a, b| a.instrumentation_scope == b.instrumentation_scope) {
        let scope = &run[0].instrumentation_scope;
        let mut head = Vec::new();
        encode_scope(&mut head, scope);
        let url = scope.schema_url().filter(|u| !u.is_empty());
        let bodies = &encoded[at..at + run.len()];
        at += run.len();
        let len = proto::field_len(head.len())
            + bodies
                .iter()
                .map(|b| proto::field_len(b.len()))
                .sum::<usize>()
            + url.map_or(0, |u| proto::field_len(u.len()));
        runs.push((head, url, bodies, len));
    }
    let schema = if schema_url.is_empty() {
        0
    } else {
        proto::field_len(schema_url.len())
    };
    let resource_spans = proto::field_len(resource.len())
        + runs.iter().map(|r| proto::field_len(r.3)).sum::<usize>()
        + schema;
    out.reserve(proto::field_len(resource_spans));
    proto::len_prefix(out, 1, resource_spans);
    proto::bytes(out, 1, resource);
    for (head, url, bodies, len) in &runs {
        proto::len_prefix(out, 2, *len);
        proto::bytes(out, 1, head);
        for body in *bodies {
            proto::bytes(out, 2, body);
        }
        if let Some(url) = url {
            proto::bytes(out, 3, url.as_bytes());
        }
    }
    if !schema_url.is_empty() {
        proto::bytes(out, 3, schema_url.as_bytes());
    }
}

/// `InstrumentationScope { name = 1, version = 2, attributes = 3 }`.
fn encode_scope(out: &mut Vec<u8>, scope: &InstrumentationScope) {
    if !scope.name().is_empty() {
        proto::bytes(out, 1, scope.name().as_bytes());
    }
    if let Some(v) = scope.version().filter(|v| !v.is_empty()) {
        proto::bytes(out, 2, v.as_bytes());
    }
    for kv in scope.attributes() {
        proto::otel_key_value(out, 3, kv.key.as_str(), &kv.value);
    }
}

/// Trace id 1, span id 2 and trace state 3: the same field numbers in a `Span` and in a `Link`.
fn context(out: &mut Vec<u8>, sc: &SpanContext) {
    proto::bytes(out, 1, &sc.trace_id().to_bytes());
    proto::bytes(out, 2, &sc.span_id().to_bytes());
    let state = sc.trace_state().header();
    if !state.is_empty() {
        proto::bytes(out, 3, state.as_bytes());
    }
}

/// `Span` (trace/v1): ids 1, 2, trace state 3, parent 4, name 5, kind 6, times 7 and 8, attributes 9 (dropped 10),
/// events 11 (dropped 12), links 13 (dropped 14), status 15, flags 16. `lines`: events already encoded, merged with
/// the span's own by time (an event of either kind keeps its place among those of its kind; at one time, the
/// span's own come first).
fn encode_span(out: &mut Vec<u8>, s: &SpanData, lines: Option<&Events>, scratch: &mut Vec<u8>) {
    let sc = &s.span_context;
    context(out, sc);
    if s.parent_span_id != SpanId::INVALID {
        proto::bytes(out, 4, &s.parent_span_id.to_bytes());
    }
    proto::bytes(out, 5, s.name.as_bytes());
    let kind = match s.span_kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    };
    proto::uint(out, 6, kind);
    proto::fixed64(out, 7, nanos(s.start_time));
    proto::fixed64(out, 8, nanos(s.end_time));
    attributes(out, 9, &s.attributes);
    if s.dropped_attributes_count > 0 {
        proto::uint(out, 10, u64::from(s.dropped_attributes_count));
    }
    // Events: at most `MAX_EVENTS_PER_SPAN` of both kinds, the first in time, as when the SDK held them all; the rest
    // are counted.
    let mut lines = lines.into_iter().flat_map(Events::iter).peekable();
    let mut own = s.events.iter().peekable();
    let (mut room, mut dropped) = (MAX_EVENTS_PER_SPAN, s.events.dropped_count);
    // Whether the next event fits; counts it as dropped if not.
    let mut fits = || {
        if room == 0 {
            dropped = dropped.saturating_add(1);
            return false;
        }
        room -= 1;
        true
    };
    loop {
        let own_at = own.peek().map(|e| nanos(e.timestamp));
        if let Some((_, line)) = lines.next_if(|(t, _)| own_at.is_none_or(|at| *t < at)) {
            if fits() {
                out.extend_from_slice(line);
            }
        } else if let (Some(e), Some(at)) = (own.next(), own_at) {
            if fits() {
                encode_event(out, e, at, scratch);
            }
        } else {
            break;
        }
    }
    if dropped > 0 {
        proto::uint(out, 12, u64::from(dropped));
    }
    // Link { trace_id = 1, span_id = 2, trace_state = 3, attributes = 4, dropped_attributes_count = 5, flags = 6 }
    for l in s.links.iter() {
        scratch.clear();
        let lc = &l.span_context;
        context(scratch, lc);
        attributes(scratch, 4, &l.attributes);
        if l.dropped_attributes_count > 0 {
            proto::uint(scratch, 5, u64::from(l.dropped_attributes_count));
        }
        proto::fixed32(scratch, 6, flags(lc.is_remote(), lc.trace_flags().to_u8()));
        proto::bytes(out, 13, scratch);
    }
    if s.links.dropped_count > 0 {
        proto::uint(out, 14, u64::from(s.links.dropped_count));
    }
    // Status { message = 2, code = 3 }: present on every span, as the SDK's exporter sent it.
    scratch.clear();
    match &s.status {
        Status::Unset => {}
        Status::Ok => proto::uint(scratch, 3, 1),
        Status::Error { description } => {
            if !description.is_empty() {
                proto::bytes(scratch, 2, description.as_bytes());
            }
            proto::uint(scratch, 3, 2);
        }
    }
    proto::bytes(out, 15, scratch);
    proto::fixed32(
        out,
        16,
        flags(s.parent_span_is_remote, sc.trace_flags().to_u8()),
    );
}

/// `Event { time_unix_nano = 1, name = 2, attributes = 3, dropped_attributes_count = 4 }` as a span's field 11.
fn encode_event(
    out: &mut Vec<u8>,
    e: &opentelemetry::trace::Event,
    at: u64,
    scratch: &mut Vec<u8>,
) {
    scratch.clear();
    proto::fixed64(scratch, 1, at);
    proto::bytes(scratch, 2, e.name.as_bytes());
    attributes(scratch, 3, &e.attributes);
    if e.dropped_attributes_count > 0 {
        proto::uint(scratch, 4, u64::from(e.dropped_attributes_count));
    }
    proto::bytes(out, 11, scratch);
}

fn flags(remote: bool, trace_flags: u8) -> u32 {
    u32::from(trace_flags) | HAS_IS_REMOTE | if remote { IS_REMOTE } else { 0 }
}
