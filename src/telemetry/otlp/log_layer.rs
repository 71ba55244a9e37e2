//! The tracing layer that turns exported events into OTLP log records, encoded on the spot.
//!
//! It does what `opentelemetry-appender-tracing` and the SDK's exporter did together — `message` is the body, every
//! other field an attribute of the type tracing gave it, the level the severity, the active span's ids the trace
//! context, the target the instrumentation scope — but writes the record's protobuf bytes straight from the event
//! into the queue: no SDK record, no copy of it into the queue, no conversion into protobuf structs at export. That
//! path cost about 3 µs of CPU per Sling line, more than everything else the wrapper does for a line.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::trace::TraceContextExt as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

use super::log_queue::LogQueue;
use super::proto::{self, Scalar};
use crate::sync::spans;

/// `LogRecord` field numbers (logs/v1).
mod field {
    pub const SEVERITY_NUMBER: u64 = 2;
    pub const SEVERITY_TEXT: u64 = 3;
    pub const BODY: u64 = 5;
    pub const ATTRIBUTES: u64 = 6;
    pub const FLAGS: u64 = 8;
    pub const TRACE_ID: u64 = 9;
    pub const SPAN_ID: u64 = 10;
    pub const OBSERVED_TIME: u64 = 11;
}

/// Writes the events whose target is one of `scopes` into `queue`.
pub struct OtlpLogLayer {
    queue: Arc<LogQueue>,
    scopes: &'static [&'static str],
}

impl OtlpLogLayer {
    pub fn new(queue: Arc<LogQueue>, scopes: &'static [&'static str]) -> Self {
        Self { queue, scopes }
    }
}

/// OTel severity numbers and texts for tracing's levels (as the appender mapped them).
fn severity(level: &Level) -> (u64, &'static str) {
    match *level {
        Level::TRACE => (1, "TRACE"),
        Level::DEBUG => (5, "DEBUG"),
        Level::INFO => (9, "INFO"),
        Level::WARN => (13, "WARN"),
        Level::ERROR => (17, "ERROR"),
    }
}

/// What encoding reuses from one event of a thread to the next.
#[derive(Default)]
struct Scratch {
    /// The record being encoded.
    record: Vec<u8>,
    /// A formatted value.
    text: String,
    roles: Roles,
}

thread_local! {
    static SCRATCH: RefCell<Option<Scratch>> = const { RefCell::new(None) };
}

/// How each field of the last call site is written, by field index: worked out once per call site, not by comparing
/// field names for every field of every event (a flood is ~100k events of one call site).
#[derive(Default)]
struct Roles {
    callsite: Option<tracing::callsite::Identifier>,
    by_index: Vec<Role>,
}

enum Role {
    /// `message`: the record's body.
    Body,
    /// An attribute.
    Plain,
    /// An attribute that every Sling line of an attempt repeats (`spans::is_repeated_line_field`: pipeline, job
    /// id, attempt), with its last value and that value's encoded `attributes` field. The next line with the same
    /// value gets these bytes copied instead of encoded again. With the roles, this took a 100k-line flood's
    /// encoding from ~1,800 to ~1,300 instructions per record (callgrind).
    Repeated(Option<(Kept, Vec<u8>)>),
}

impl Roles {
    fn for_event(&mut self, event: &Event<'_>) {
        let callsite = event.metadata().callsite();
        if self.callsite.as_ref() == Some(&callsite) {
            return;
        }
        self.by_index.clear();
        self.by_index
            .extend(event.metadata().fields().iter().map(|f| match f.name() {
                "message" => Role::Body,
                name if spans::is_repeated_line_field(name) => Role::Repeated(None),
                _ => Role::Plain,
            }));
        self.callsite = Some(callsite);
    }
}

enum Kept {
    Str(String),
    Int(i64),
}

impl Kept {
    fn of(v: &Scalar<'_>) -> Option<Self> {
        match v {
            Scalar::Str(s) => Some(Self::Str((*s).to_owned())),
            Scalar::Int(i) => Some(Self::Int(*i)),
            _ => None,
        }
    }

    fn is(&self, v: &Scalar<'_>) -> bool {
        match (self, v) {
            (Self::Str(a), Scalar::Str(b)) => a == b,
            (Self::Int(a), Scalar::Int(b)) => a == b,
            _ => false,
        }
    }
}

/// Writes attribute `name` = `v` of a repeated field: the kept bytes when the value is the one kept, else encoded
/// (and kept).
fn put_repeated(out: &mut Vec<u8>, last: &mut Option<(Kept, Vec<u8>)>, name: &str, v: &Scalar<'_>) {
    if let Some((kept, encoded)) = last {
        if kept.is(v) {
            out.extend_from_slice(encoded);
            return;
        }
    }
    let start = out.len();
    proto::key_value(out, field::ATTRIBUTES, name, v);
    *last = Kept::of(v).map(|kept| (kept, out[start..].to_vec()));
}

/// Encodes one event's `LogRecord` (without its own key and length) into `out`.
fn encode_record(
    event: &Event<'_>,
    now: SystemTime,
    out: &mut Vec<u8>,
    text: &mut String,
    roles: &mut Roles,
) {
    let (number, name) = severity(event.metadata().level());
    let nanos = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    // As the SDK did: the time of observation only; the collector and GreptimeDB use it when `time_unix_nano` is 0.
    proto::fixed64(out, field::OBSERVED_TIME, nanos);
    proto::uint(out, field::SEVERITY_NUMBER, number);
    proto::bytes(out, field::SEVERITY_TEXT, name.as_bytes());
    opentelemetry::Context::map_current(|cx| {
        if cx.has_active_span() {
            let span = cx.span();
            let sc = span.span_context();
            proto::fixed32(out, field::FLAGS, u32::from(sc.trace_flags().to_u8()));
            proto::bytes(out, field::TRACE_ID, &sc.trace_id().to_bytes());
            proto::bytes(out, field::SPAN_ID, &sc.span_id().to_bytes());
        }
    });
    roles.for_event(event);
    event.record(&mut Fields { out, text, roles });
}

impl<S: Subscriber> Layer<S> for OtlpLogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let target = event.metadata().target();
        let Some(scope) = self.scopes.iter().position(|s| *s == target) else {
            return;
        };
        SCRATCH.with(|scratch| {
            // A record emitted while encoding one (nothing here emits events) would find the scratch in use.
            let Ok(mut scratch) = scratch.try_borrow_mut() else {
                return;
            };
            let Scratch {
                record,
                text,
                roles,
            } = scratch.get_or_insert_with(Scratch::default);
            record.clear();
            encode_record(event, SystemTime::now(), record, text, roles);
            self.queue.push(scope, record);
        });
    }
}

/// The event's fields as body and attributes.
struct Fields<'a> {
    out: &'a mut Vec<u8>,
    text: &'a mut String,
    roles: &'a mut Roles,
}

impl Fields<'_> {
    fn put(&mut self, field: &Field, v: Scalar<'_>) {
        match self.roles.by_index.get_mut(field.index()) {
            Some(Role::Body) => proto::any_value(self.out, field::BODY, &v),
            Some(Role::Repeated(last)) => put_repeated(self.out, last, field.name(), &v),
            _ => proto::key_value(self.out, field::ATTRIBUTES, field.name(), &v),
        }
    }

    /// A value given as text to format: formatted into the reused buffer, then written.
    fn put_text(&mut self, field: &Field, args: std::fmt::Arguments<'_>) {
        let mut text = std::mem::take(self.text);
        text.clear();
        let _ = text.write_fmt(args);
        self.put(field, Scalar::Str(&text));
        *self.text = text;
    }
}

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put_text(field, format_args!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Scalar::Str(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Scalar::Bool(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Scalar::Double(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Scalar::Int(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match i64::try_from(value) {
            Ok(v) => self.put(field, Scalar::Int(v)),
            Err(_) => self.put_text(field, format_args!("{value}")),
        }
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        match i64::try_from(value) {
            Ok(v) => self.put(field, Scalar::Int(v)),
            Err(_) => self.put_text(field, format_args!("{value}")),
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        match i64::try_from(value) {
            Ok(v) => self.put(field, Scalar::Int(v)),
            Err(_) => self.put_text(field, format_args!("{value}")),
        }
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.put(field, Scalar::Bytes(value));
    }

    fn record_error(&mut self, _field: &Field, value: &(dyn std::error::Error + 'static)) {
        // The appender's name for it (the semantic convention).
        let mut text = std::mem::take(self.text);
        text.clear();
        let _ = write!(text, "{value}");
        proto::key_value(
            self.out,
            field::ATTRIBUTES,
            "exception.message",
            &Scalar::Str(&text),
        );
        *self.text = text;
    }
}
