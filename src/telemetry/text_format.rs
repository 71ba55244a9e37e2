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

/// A duration in seconds rounded for people: `0.22s`, `12.3s`, `1m05s`, `2h03m`. JSON output keeps full precision.
pub fn human_seconds(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return format!("{secs}s");
    }
    if secs < 9.995 {
        return format!("{secs:.2}s");
    }
    if secs < 59.95 {
        return format!("{secs:.1}s");
    }
    let whole = secs.round() as u64;
    if whole < 3600 {
        format!("{}m{:02}s", whole / 60, whole % 60)
    } else {
        format!("{}h{:02}m", whole / 3600, whole % 3600 / 60)
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        match field.name() {
            n if HIDDEN.contains(&n) => {}
            n if n.ends_with("_seconds") => self.rest.push((n, human_seconds(value))),
            n => self.rest.push((n, value.to_string())),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::human_seconds;

    #[test]
    fn durations_are_rounded_for_people() {
        assert_eq!(human_seconds(0.221936841), "0.22s");
        assert_eq!(human_seconds(0.0), "0.00s");
        assert_eq!(human_seconds(12.345), "12.3s");
        assert_eq!(human_seconds(59.94), "59.9s");
        assert_eq!(human_seconds(59.97), "1m00s");
        assert_eq!(human_seconds(9.999), "10.0s");
        assert_eq!(human_seconds(65.2), "1m05s");
        assert_eq!(human_seconds(3599.6), "1h00m");
        assert_eq!(human_seconds(7385.0), "2h03m");
    }
}
