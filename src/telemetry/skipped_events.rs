//! The Sling lines that were not made span events still count in the span's `dropped_events_count`.
//!
//! Beyond `spans::MAX_EVENTS_PER_SPAN` lines per attempt the engine emits lines that the span-event layer never sees
//! (building each event only for the SDK to drop it was most of telemetry's cost in a flood). The engine records how
//! many on the attempt span (`spans::SKIPPED_EVENTS_FIELD`); this processor moves that number into the exported
//! span's `dropped_events_count` and removes the attribute, so the span says what it said before: how many events
//! were lost.

use std::time::Duration;

use opentelemetry::{Context, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use opentelemetry_sdk::Resource;

use crate::sync::spans;

/// Wraps the processor that exports spans.
#[derive(Debug)]
pub struct CountSkippedEvents<P>(pub P);

/// Takes the skipped-events attribute out of `span` and adds its count to `dropped_events_count`.
fn fold_skipped(span: &mut SpanData) {
    let Some(i) = span
        .attributes
        .iter()
        .position(|kv| kv.key.as_str() == spans::SKIPPED_EVENTS_FIELD)
    else {
        return;
    };
    let skipped = match span.attributes.remove(i).value {
        Value::I64(n) => u32::try_from(n).unwrap_or(if n < 0 { 0 } else { u32::MAX }),
        _ => 0,
    };
    span.events.dropped_count = span.events.dropped_count.saturating_add(skipped);
}

impl<P: SpanProcessor> SpanProcessor for CountSkippedEvents<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.0.on_start(span, cx);
    }

    fn on_end(&self, mut span: SpanData) {
        fold_skipped(&mut span);
        self.0.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use opentelemetry::KeyValue;
    use opentelemetry_sdk::trace::SdkTracerProvider;

    use super::*;

    #[derive(Debug, Clone, Default)]
    struct Keep(Arc<Mutex<Vec<SpanData>>>);

    impl SpanProcessor for Keep {
        fn on_start(&self, _: &mut Span, _: &Context) {}
        fn on_end(&self, span: SpanData) {
            self.0.lock().expect("lock").push(span);
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
            Ok(())
        }
    }

    #[test]
    fn skipped_lines_join_the_events_the_sdk_dropped_and_the_attribute_goes() {
        let kept = Keep::default();
        let provider = SdkTracerProvider::builder()
            .with_max_events_per_span(3)
            .with_span_processor(CountSkippedEvents(kept.clone()))
            .build();
        let tracer = provider.tracer("test");
        let mut span = tracer.start("sling.attempt");
        for i in 0..5 {
            span.add_event(format!("line {i}"), vec![]);
        }
        span.set_attribute(KeyValue::new("rows_synced", 7));
        span.set_attribute(KeyValue::new(spans::SKIPPED_EVENTS_FIELD, 40));
        span.end();
        let mut plain = tracer.start("sync.job");
        plain.add_event("one", vec![]);
        plain.end();

        let spans = kept.0.lock().expect("lock").clone();
        let attempt = spans
            .iter()
            .find(|s| s.name == "sling.attempt")
            .expect("exported");
        assert_eq!(attempt.events.len(), 3);
        // 2 dropped by the SDK's limit + 40 never built.
        assert_eq!(attempt.events.dropped_count, 42);
        let keys: Vec<&str> = attempt
            .attributes
            .iter()
            .map(|kv| kv.key.as_str())
            .collect();
        assert_eq!(keys, ["rows_synced"]);
        let job = spans
            .iter()
            .find(|s| s.name == "sync.job")
            .expect("exported");
        assert_eq!(job.events.dropped_count, 0);
        assert_eq!(job.events.len(), 1);
    }
}
