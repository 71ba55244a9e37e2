//! Sling lines as span events of their attempt span, written as protobuf where the engine hands them over and kept
//! until the span is exported (`PendingEvents`), instead of the twin tracing event the SDK collected.
//!
//! The twin went through tracing's dispatch and every layer's filter, became an SDK event (three attributes, the
//! message copied into a `String`) on the span's builder, was cloned into `SpanData` when the attempt ended, and was
//! encoded, then freed, when the span was exported — at the end of the run, while the process waits to exit. For a
//! flood's 10,000 span events that was about 6 ms of a 0.15 s run (measured by turning the twins off). Here each is
//! encoded once, from the parts `LogLines` already has, and the exporter copies the bytes. The collector receives
//! the same events: the message (cut to `spans::MAX_SPAN_EVENT_TEXT`) as the name, `level` and `target` as the
//! attributes tracing-opentelemetry gave them, the time of the log record's observation; among the span's other
//! events in time order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::log_layer::current_context;
use super::proto::{self, Scalar};
use crate::sync::spans::{self, SlingLine};

/// The sampled bit of W3C trace flags.
const SAMPLED: u8 = 1;

/// A span, by its trace id and span id.
pub(super) type SpanKey = ([u8; 16], [u8; 8]);

/// Span events written for spans not exported yet. Bounded by the engine's budget per attempt
/// (`spans::MAX_EVENTS_PER_SPAN` events, `spans::MAX_SPAN_EVENT_TEXT_PER_ATTEMPT` of text), as the SDK's copy was,
/// and taken when the span is encoded for export — also when that export then fails. Only a sampled span that the
/// SDK's batch processor drops (its queue of 2,048 spans full) would leave its events here.
#[derive(Default)]
pub struct PendingEvents(Mutex<HashMap<SpanKey, Events>>);

/// One span's pending events: `events` fields of a `Span` (field 11), one after another.
#[derive(Default)]
pub(super) struct Events {
    encoded: Vec<u8>,
    /// Each event's time and where it ends in `encoded`.
    ends: Vec<(u64, usize)>,
}

impl PendingEvents {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SpanKey, Events>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends the `events` field that `encode` writes, of time `nanos`, to the span `key`.
    pub(super) fn add(&self, key: SpanKey, nanos: u64, encode: impl FnOnce(&mut Vec<u8>)) {
        let mut pending = self.lock();
        let events = pending.entry(key).or_default();
        proto::message_with(&mut events.encoded, 11, encode);
        let end = events.encoded.len();
        events.ends.push((nanos, end));
    }

    /// The events of span `key`, which is being exported; they are no longer kept.
    pub(super) fn take(&self, key: &SpanKey) -> Option<Events> {
        self.lock().remove(key)
    }
}

impl Events {
    /// The events, each with its time, in the order they were added.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|(_, end)| *end));
        self.ends
            .iter()
            .zip(starts)
            .map(|((nanos, end), start)| (*nanos, &self.encoded[start..*end]))
    }
}

/// The line output that makes the lines the engine marks (`SlingLine::span_event`) span events of the current span
/// (the attempt's).
pub struct SpanEventLines {
    pending: Arc<PendingEvents>,
}

impl SpanEventLines {
    pub fn new(pending: Arc<PendingEvents>) -> Self {
        Self { pending }
    }
}

impl spans::LineOutput for SpanEventLines {
    fn line(&self, line: &SlingLine<'_>) {
        if !line.span_event {
            return;
        }
        // As tracing-opentelemetry: an event outside any span is not recorded. Nor is one of a span that is not
        // sampled: it is never exported, and its events would be kept for the life of the process.
        let Some((flags, trace_id, span_id)) = current_context() else {
            return;
        };
        if flags & SAMPLED == 0 {
            return;
        }
        let nanos = u64::try_from(line.observed.as_nanos()).unwrap_or(u64::MAX);
        let name = spans::span_event_text(line.message);
        self.pending.add((trace_id, span_id), nanos, |out| {
            // Event { time_unix_nano = 1, name = 2, attributes = 3 }
            proto::fixed64(out, 1, nanos);
            proto::bytes(out, 2, name.as_bytes());
            proto::key_value(out, 3, "level", &Scalar::Str(line.level.as_str()));
            proto::key_value(out, 3, "target", &Scalar::Str(spans::SLING));
        });
    }

    fn takes_span_events(&self) -> bool {
        true
    }
}
