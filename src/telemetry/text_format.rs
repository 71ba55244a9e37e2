//! The batch text format for a terminal: one short line per event, `HH:MM:SS LEVEL [pipeline] message key=value`.
//! The span context that tracing's default format prints would repeat the job id on every line.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Fields that every Sling line carries and that would only add noise on a terminal.
const HIDDEN: &[&str] = &[
    "message",
    "pipeline",
    "sync_job_id",
    "attempt",
    "sling_time",
];

#[derive(Default)]
struct Fields {
    message: String,
    pipeline: Option<String>,
    rest: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            "pipeline" => self.pipeline = Some(value.to_owned()),
            n if HIDDEN.contains(&n) || value.is_empty() => {}
            n => self.rest.push((n, value.to_owned())),
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "pipeline" => self.pipeline = Some(format!("{value:?}")),
            n if HIDDEN.contains(&n) => {}
            n => self.rest.push((n, format!("{value:?}"))),
        }
    }
}

pub struct TextFormat {
    pub ansi: bool,
}

impl<S, N> FormatEvent<S, N> for TextFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut f = Fields::default();
        event.record(&mut f);
        let level = *event.metadata().level();
        let (tag, colour) = match level {
            Level::ERROR => ("ERROR", "\x1b[31m"),
            Level::WARN => ("WARN ", "\x1b[33m"),
            Level::INFO => ("INFO ", "\x1b[32m"),
            Level::DEBUG => ("DEBUG", "\x1b[34m"),
            Level::TRACE => ("TRACE", "\x1b[35m"),
        };
        let time = chrono::Local::now().format("%H:%M:%S");
        if self.ansi {
            write!(w, "\x1b[2m{time}\x1b[0m {colour}{tag}\x1b[0m ")?;
        } else {
            write!(w, "{time} {tag} ")?;
        }
        if let Some(p) = &f.pipeline {
            if self.ansi {
                write!(w, "\x1b[1m[{p}]\x1b[0m ")?;
            } else {
                write!(w, "[{p}] ")?;
            }
        }
        write!(w, "{}", f.message)?;
        for (k, v) in &f.rest {
            write!(w, " {k}={v}")?;
        }
        writeln!(w)
    }
}
