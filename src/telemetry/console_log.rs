//! The console's wrapper-log layer: each tracing event becomes one tui-logger line with the message first, then
//! its fields, then the fields of its spans that the event did not repeat, each name once. (tui-logger's own layer
//! prints span fields first and event fields sorted around the message, so `pipeline` showed twice.)

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// `(name, value)` in the order recorded; `message` kept apart.
#[derive(Default)]
struct Fields {
    message: String,
    list: Vec<(&'static str, String)>,
}

impl Fields {
    fn add(&mut self, name: &'static str, value: String) {
        if name == "message" {
            self.message = value;
        } else if !name.starts_with("otel.") && !value.is_empty() {
            self.list.push((name, value));
        }
    }

    fn has(&self, name: &str) -> bool {
        self.list.iter().any(|(n, _)| *n == name)
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.add(field.name(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.add(field.name(), format!("{value:?}"));
    }
}

/// A span's fields as recorded when it was created.
struct SpanFields(Vec<(&'static str, String)>);

/// The span fields worth repeating on a line: which pipeline, attempt and job it belongs to. The mission and mode
/// are in the header; the job id is cut to the 8 characters the header shows.
const SPAN_CONTEXT: &[&str] = &["pipeline", "attempt", "sync_job_id"];

/// The line for an event: `message  k=v k2="v with spaces"`.
fn line(event: Fields, spans: &[&[(&'static str, String)]]) -> String {
    let mut fields = event;
    for list in spans {
        for (name, value) in *list {
            if SPAN_CONTEXT.contains(name) && !fields.has(name) {
                let value = if *name == "sync_job_id" {
                    value.get(..8).unwrap_or(value)
                } else {
                    value
                };
                fields.list.push((name, value.to_string()));
            }
        }
    }
    let mut out = fields.message;
    for (i, (name, value)) in fields.list.iter().enumerate() {
        out.push_str(if i == 0 { "  " } else { " " });
        if value.contains(char::is_whitespace) || value.is_empty() {
            let _ = write!(out, "{name}={value:?}");
        } else {
            let _ = write!(out, "{name}={value}");
        }
    }
    out
}

pub struct ConsoleLogLayer;

impl<S> Layer<S> for ConsoleLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        attrs.record(&mut f);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(f.list));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        // Innermost span first, so the closest value of a repeated name wins.
        let scopes: Vec<Vec<(&'static str, String)>> = ctx
            .event_scope(event)
            .map(|scope| {
                scope
                    .filter_map(|s| s.extensions().get::<SpanFields>().map(|x| x.0.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let refs: Vec<&[(&'static str, String)]> = scopes.iter().map(Vec::as_slice).collect();
        let text = line(f, &refs);
        let meta = event.metadata();
        let level = match *meta.level() {
            Level::ERROR => log::Level::Error,
            Level::WARN => log::Level::Warn,
            Level::INFO => log::Level::Info,
            Level::DEBUG => log::Level::Debug,
            Level::TRACE => log::Level::Trace,
        };
        tui_logger::Drain::new().log(
            &log::Record::builder()
                .args(format_args!("{text}"))
                .level(level)
                .target(meta.target())
                .file(meta.file())
                .line(meta.line())
                .module_path(meta.module_path())
                .build(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_first_and_each_field_once() {
        let event = Fields {
            message: "pipeline finished".into(),
            list: vec![
                ("pipeline", "orders".into()),
                ("status", "failed".into()),
                ("error", "table x does not exist".into()),
            ],
        };
        let attempt: &[(&'static str, String)] =
            &[("pipeline", "orders".into()), ("attempt", "2".into())];
        let job: &[(&'static str, String)] = &[
            ("sync_job_id", "5eed5eed-aaaa-4bbb-8ccc-ddddeeeeffff".into()),
            ("attempt", "9".into()),
            ("mission_cluster_id", "m1".into()),
        ];
        assert_eq!(
            line(event, &[attempt, job]),
            "pipeline finished  pipeline=orders status=failed error=\"table x does not exist\" attempt=2 sync_job_id=5eed5eed"
        );
    }
}
