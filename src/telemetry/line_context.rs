//! The fields a Sling line takes from its attempt span (`spans::LINE_CONTEXT`: pipeline, job id, attempt).
//!
//! They are not on the line's tracing event: there they would be three more attributes on each of up to 10,000 span
//! events of the attempt (the span carries them once) and three more fields to visit per line in every layer. The
//! layers that print or export a line with them — batch output and log records — render them once, when the attempt
//! span opens, keep that in the span's extensions, and add it to each of its lines: the same fields, in the same
//! order, as when the event carried them. (An `Arc`, so that a layer holds no lock on the span while it waits for
//! room in its output.)

use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::span::Attributes;
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::sync::spans;

/// One field's value as the attempt span recorded it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
}

/// The context fields of an attempt span, in `spans::LINE_CONTEXT` order.
pub type LineContext = Vec<(&'static str, Value)>;

/// The line context of a span being opened: `Some` for an attempt span.
pub fn of_new_span(attrs: &Attributes<'_>) -> Option<LineContext> {
    if attrs.metadata().name() != spans::ATTEMPT_SPAN {
        return None;
    }
    let mut fields = Collect(Vec::new());
    attrs.record(&mut fields);
    let mut fields = fields.0;
    fields.sort_by_key(|(name, _)| spans::LINE_CONTEXT.iter().position(|n| n == name));
    Some(fields)
}

/// What a layer kept (`keep`) on the attempt span of `event`, when `event` is a Sling line.
pub fn inherited<S, T>(ctx: &Context<'_, S>, event: &Event<'_>) -> Option<Arc<T>>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    T: Send + Sync + 'static,
{
    if event.metadata().target() != spans::SLING {
        return None;
    }
    let span = ctx.event_span(event)?;
    let ext = span.extensions();
    ext.get::<Arc<T>>().cloned()
}

/// Keeps `rendered` on the span `id` for `inherited`.
pub fn keep<S, T>(ctx: &Context<'_, S>, id: &tracing::span::Id, rendered: T)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    T: Send + Sync + 'static,
{
    if let Some(span) = ctx.span(id) {
        let mut ext = span.extensions_mut();
        if ext.get_mut::<Arc<T>>().is_none() {
            ext.insert(Arc::new(rendered));
        }
    }
}

struct Collect(LineContext);

impl Collect {
    fn add(&mut self, field: &Field, value: Value) {
        if let Some(name) = spans::LINE_CONTEXT.iter().find(|n| **n == field.name()) {
            self.0.push((name, value));
        }
    }
}

impl Visit for Collect {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.add(field, Value::Str(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.add(field, Value::Int(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        match i64::try_from(value) {
            Ok(v) => self.add(field, Value::Int(v)),
            Err(_) => self.add(field, Value::Str(value.to_string())),
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.add(field, Value::Str(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::Layer;

    use super::*;

    /// Records each event's inherited context.
    #[derive(Default, Clone)]
    struct Probe(Arc<Mutex<Vec<Option<LineContext>>>>);

    struct Kept(LineContext);

    impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Probe {
        fn on_new_span(&self, attrs: &Attributes<'_>, id: &tracing::span::Id, ctx: Context<'_, S>) {
            if let Some(lc) = of_new_span(attrs) {
                keep(&ctx, id, Kept(lc));
            }
        }
        fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
            let got = inherited::<S, Kept>(&ctx, event).map(|k| k.0.clone());
            self.0.lock().expect("lock").push(got);
        }
    }

    #[test]
    fn sling_lines_inside_an_attempt_span_get_its_pipeline_job_and_attempt_in_order() {
        let probe = Probe::default();
        let subscriber = tracing_subscriber::registry().with(probe.clone());
        tracing::subscriber::with_default(subscriber, || {
            let span = spans::attempt_span("orders", "job-1", 2);
            let _entered = span.enter();
            tracing::info!(target: spans::SLING, "a line");
            tracing::info!(target: spans::SYNC, "not a line");
            drop(_entered);
            tracing::info!(target: spans::SLING, "outside any attempt");
        });
        let got = probe.0.lock().expect("lock").clone();
        let expected = vec![
            ("pipeline", Value::Str("orders".into())),
            ("sync_job_id", Value::Str("job-1".into())),
            ("attempt", Value::Int(2)),
        ];
        assert_eq!(got, [Some(expected), None, None]);
    }
}
