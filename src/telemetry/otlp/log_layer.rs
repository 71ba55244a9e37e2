//! The tracing layer that turns exported events into OTLP log records.
//!
//! It does what `opentelemetry-appender-tracing` and the SDK's exporter did together — `message` is the body, every
//! other field an attribute of the type tracing gave it, the level the severity, the active span's ids the trace
//! context, the target the instrumentation scope — without an SDK record or protobuf structs: that path cost about
//! 3 µs of CPU per Sling line, more than everything else the wrapper does for a line.
//!
//! The work is split between two threads. On the thread that emits the event — the engine's, which a Sling flood
//! keeps busy — the layer only captures it: the time, the trace context and the field values, copied as they are
//! into the queue's batch (`capture`). The export thread, idle about half of a flood, writes the protobuf from that
//! (`Transcoder`). In a 100k-line flood (callgrind) this layer's share of the engine thread went from ~1,800 to ~850
//! instructions per line; the export thread does ~1,140 per line more, ~300 more than the engine saves in all.
//!
//! Sling's lines do not come as events: the engine hands them to `LogLines`, which writes the same record as
//! protobuf itself, without tracing's dispatch, copying the parts every line of an attempt repeats (~550
//! instructions per line on the engine thread, where the event through the layer and its filter cost ~1,440). The
//! export thread copies those records into the request once, as they are (`Form::Encoded`).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use opentelemetry::trace::TraceContextExt as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

use super::log_queue::{Form, LogQueue, Transcode};
use super::proto::{self, Scalar};
use crate::sync::spans::{self, SlingLine};

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

/// The call sites whose events have been captured, by number: a captured record names its call site's metadata
/// (field names, level) by this number, which the export thread looks up. Metadata is `'static` and call sites are
/// few (a few dozen), so the table only grows, and a number once given stays valid.
static CALLSITES: Mutex<Vec<&'static Metadata<'static>>> = Mutex::new(Vec::new());

fn callsites() -> std::sync::MutexGuard<'static, Vec<&'static Metadata<'static>>> {
    CALLSITES.lock().unwrap_or_else(|e| e.into_inner())
}

fn callsite_number(meta: &'static Metadata<'static>) -> u32 {
    let mut known = callsites();
    let i = match known.iter().position(|m| std::ptr::eq(*m, meta)) {
        Some(i) => i,
        None => {
            known.push(meta);
            known.len() - 1
        }
    };
    // A number past the table finds no call site, and its record is left out.
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// How a captured record is laid out (little-endian): the call site's number (u32), the observed time (u64 ns since
/// the epoch), `HAS_CONTEXT` and then trace flags (u8), trace id (16) and span id (8) — or `NO_CONTEXT` —, then per
/// field its index in the call site's field set (u8, or `EXCEPTION`), its kind and its value: `STR` and `BYTES` a
/// u32 length and the bytes, `BOOL` a u8, `INT` an i64, `DOUBLE` an f64's bits.
mod layout {
    pub const NO_CONTEXT: u8 = 0;
    pub const HAS_CONTEXT: u8 = 1;
    /// Not a field of the call site: an error's message, under the attribute name the appender gave it.
    pub const EXCEPTION: u8 = u8::MAX;
    pub const STR: u8 = 0;
    pub const BOOL: u8 = 1;
    pub const INT: u8 = 2;
    pub const DOUBLE: u8 = 3;
    pub const BYTES: u8 = 4;
}

/// What capturing reuses from one event of a thread to the next.
#[derive(Default)]
struct Scratch {
    /// A formatted value.
    text: String,
    /// The last call site and its number.
    last: Option<(tracing::callsite::Identifier, u32)>,
}

thread_local! {
    static SCRATCH: RefCell<Option<Scratch>> = const { RefCell::new(None) };
}

impl<S: Subscriber> Layer<S> for OtlpLogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let Some(scope) = self.scopes.iter().position(|s| *s == meta.target()) else {
            return;
        };
        SCRATCH.with(|scratch| {
            // A record emitted while capturing one (nothing here emits events) would find the scratch in use.
            let Ok(mut scratch) = scratch.try_borrow_mut() else {
                return;
            };
            let Scratch { text, last } = scratch.get_or_insert_with(Scratch::default);
            let number = match last {
                Some((id, n)) if *id == meta.callsite() => *n,
                _ => {
                    let n = callsite_number(meta);
                    *last = Some((meta.callsite(), n));
                    n
                }
            };
            let nanos = now_nanos();
            self.queue.push_with(scope, Form::Captured, |out| {
                capture(event, number, nanos, out, text)
            });
        });
    }
}

/// Sling lines, handed over by the engine (`spans::LineOutput`): the record the layer makes of a `sling line`
/// event, written by the engine as protobuf (`Form::Encoded`), which the export thread copies into the request
/// as it is.
///
/// Unlike an event, a line is cheap to encode where it arrives: its record is mostly what every line of the attempt
/// repeats — severity, trace context, `pipeline`, `sync_job_id`, `attempt`, the start of `sling_time` —, kept
/// encoded (`LineCache`) and copied, so only the time, the message's length and the texts are written per line, in
/// five copies. In a 100k-line flood (callgrind) that is ~550 instructions per line on the engine thread, and the
/// export thread no longer reads the record at all.
pub struct LogLines {
    queue: Arc<LogQueue>,
    scope: usize,
}

impl LogLines {
    /// `None` when `scopes` (what the layer exports) does not hold Sling's target.
    pub fn new(queue: Arc<LogQueue>, scopes: &[&str]) -> Option<Self> {
        let scope = scopes.iter().position(|s| *s == spans::SLING)?;
        Some(Self { queue, scope })
    }

    fn push(&self, line: &SlingLine<'_>, cache: &mut LineCache) {
        let nanos = u64::try_from(line.observed.as_nanos()).unwrap_or(u64::MAX);
        let (prefix, tail) = cache.refresh(line, current_context());
        let (message, time) = (line.message.as_bytes(), line.sling_time.as_bytes());
        // What differs from line to line — the time, the message's length — is put together on the stack
        // (`proto::Head`), so the record goes into the batch in five copies.
        let mut head = proto::Head::new();
        head.fixed64(field::OBSERVED_TIME, nanos);
        head.text_any(field::BODY, message.len());
        let parts = [prefix, head.as_bytes(), message, tail, time];
        self.queue.push_with(self.scope, Form::Encoded, |out| {
            out.reserve(parts.iter().map(|p| p.len()).sum());
            for part in parts {
                out.extend_from_slice(part);
            }
        });
    }
}

impl spans::LineOutput for LogLines {
    fn line(&self, line: &SlingLine<'_>) {
        LINE_CACHE.with(|cache| match cache.try_borrow_mut() {
            Ok(mut cache) => self.push(line, &mut cache),
            // Not reached (nothing in `push` emits a line); a fresh cache is as correct, only slower.
            Err(_) => self.push(line, &mut LineCache::default()),
        });
    }
}

thread_local! {
    static LINE_CACHE: RefCell<LineCache> = RefCell::new(LineCache::default());
}

/// A thread's last Sling line's repeated parts, encoded: the severity and trace context fields (`prefix`), and the
/// `pipeline`, `sync_job_id` and `attempt` attributes with the start of `sling_time` up to its text (`tail`: Sling's
/// time stamps all have one length). Compared with each line's own values, re-encoded when they differ.
#[derive(Default)]
struct LineCache {
    prefix_key: Option<(Level, Option<TraceContext>)>,
    prefix: Vec<u8>,
    /// Pipeline, job id, attempt and the length of `sling_time`.
    tail_key: Option<(String, String, u32, usize)>,
    tail: Vec<u8>,
}

impl LineCache {
    /// The encoded prefix and tail for `line` in `context`.
    fn refresh(&mut self, line: &SlingLine<'_>, context: Option<TraceContext>) -> (&[u8], &[u8]) {
        if self.prefix_key != Some((line.level, context)) {
            self.prefix.clear();
            encode_prefix(&mut self.prefix, line.level, context);
            self.prefix_key = Some((line.level, context));
        }
        let same = self.tail_key.as_ref().is_some_and(|(p, j, a, t)| {
            *a == line.attempt
                && *t == line.sling_time.len()
                && p == line.pipeline
                && j == line.sync_job_id
        });
        if !same {
            let [_, pipeline, sync_job_id, attempt, sling_time] = spans::LINE_FIELDS;
            let r = &mut self.tail;
            r.clear();
            proto::key_value(
                r,
                field::ATTRIBUTES,
                pipeline,
                &Scalar::Text(line.pipeline.as_bytes()),
            );
            proto::key_value(
                r,
                field::ATTRIBUTES,
                sync_job_id,
                &Scalar::Text(line.sync_job_id.as_bytes()),
            );
            proto::key_value(
                r,
                field::ATTRIBUTES,
                attempt,
                &Scalar::Int(i64::from(line.attempt)),
            );
            let mut head = proto::Head::new();
            head.text_key_value(field::ATTRIBUTES, sling_time, line.sling_time.len());
            r.extend_from_slice(head.as_bytes());
            self.tail_key = Some((
                line.pipeline.to_owned(),
                line.sync_job_id.to_owned(),
                line.attempt,
                line.sling_time.len(),
            ));
        }
        (&self.prefix, &self.tail)
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Writes what the export thread needs of `event` into `out` (see `layout`).
fn capture(event: &Event<'_>, callsite: u32, nanos: u64, out: &mut Vec<u8>, text: &mut String) {
    put_head(out, callsite, nanos);
    event.record(&mut Capture { out, text });
}

/// A record's head: call-site number, time and the current trace context (see `layout`).
fn put_head(out: &mut Vec<u8>, callsite: u32, nanos: u64) {
    // Assembled on the stack and appended at once: each append to the batch costs a capacity check and a copy call.
    let mut head = [0u8; 38];
    head[..4].copy_from_slice(&callsite.to_le_bytes());
    head[4..12].copy_from_slice(&nanos.to_le_bytes());
    let len = match current_context() {
        None => {
            head[12] = layout::NO_CONTEXT;
            13
        }
        Some((flags, trace_id, span_id)) => {
            head[12] = layout::HAS_CONTEXT;
            head[13] = flags;
            head[14..30].copy_from_slice(&trace_id);
            head[30..38].copy_from_slice(&span_id);
            38
        }
    };
    out.extend_from_slice(&head[..len]);
}

/// The active span's trace flags, trace id and span id, if a span is active.
pub(super) fn current_context() -> Option<TraceContext> {
    opentelemetry::Context::map_current(|cx| {
        if !cx.has_active_span() {
            return None;
        }
        let span = cx.span();
        let sc = span.span_context();
        Some((
            sc.trace_flags().to_u8(),
            sc.trace_id().to_bytes(),
            sc.span_id().to_bytes(),
        ))
    })
}

/// The event's fields, captured.
struct Capture<'a> {
    out: &'a mut Vec<u8>,
    text: &'a mut String,
}

impl Capture<'_> {
    fn index(field: &Field) -> u8 {
        // tracing allows 32 fields per call site.
        u8::try_from(field.index()).unwrap_or(layout::EXCEPTION - 1)
    }

    fn put_bytes(&mut self, index: u8, kind: u8, b: &[u8]) {
        let mut head = [index, kind, 0, 0, 0, 0];
        head[2..].copy_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_le_bytes());
        self.out.extend_from_slice(&head);
        self.out.extend_from_slice(b);
    }

    fn put_int(&mut self, index: u8, v: i64) {
        let mut value = [index, layout::INT, 0, 0, 0, 0, 0, 0, 0, 0];
        value[2..].copy_from_slice(&v.to_le_bytes());
        self.out.extend_from_slice(&value);
    }

    /// A value given as text to format: formatted into the reused buffer, then captured.
    fn put_text(&mut self, index: u8, args: std::fmt::Arguments<'_>) {
        let mut text = std::mem::take(self.text);
        text.clear();
        let _ = text.write_fmt(args);
        self.put_bytes(index, layout::STR, text.as_bytes());
        *self.text = text;
    }
}

impl Visit for Capture<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put_text(Self::index(field), format_args!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put_bytes(Self::index(field), layout::STR, value.as_bytes());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.out
            .extend_from_slice(&[Self::index(field), layout::BOOL, u8::from(value)]);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        let mut v = [Self::index(field), layout::DOUBLE, 0, 0, 0, 0, 0, 0, 0, 0];
        v[2..].copy_from_slice(&value.to_bits().to_le_bytes());
        self.out.extend_from_slice(&v);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put_int(Self::index(field), value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match i64::try_from(value) {
            Ok(v) => self.put_int(Self::index(field), v),
            Err(_) => self.put_text(Self::index(field), format_args!("{value}")),
        }
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        match i64::try_from(value) {
            Ok(v) => self.put_int(Self::index(field), v),
            Err(_) => self.put_text(Self::index(field), format_args!("{value}")),
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        match i64::try_from(value) {
            Ok(v) => self.put_int(Self::index(field), v),
            Err(_) => self.put_text(Self::index(field), format_args!("{value}")),
        }
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.put_bytes(Self::index(field), layout::BYTES, value);
    }

    fn record_error(&mut self, _field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put_text(layout::EXCEPTION, format_args!("{value}"));
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

/// How each field of the last call site is written, by field index: worked out once per call site, not by comparing
/// field names for every field of every record.
#[derive(Default)]
struct Roles {
    callsite: Option<u32>,
    /// Name and role.
    by_index: Vec<(&'static str, Role)>,
}

enum Role {
    /// `message`: the record's body.
    Body,
    /// An attribute.
    Plain,
}

impl Roles {
    fn for_callsite(&mut self, number: u32, meta: &'static Metadata<'static>) {
        if self.callsite == Some(number) {
            return;
        }
        self.by_index.clear();
        self.by_index.extend(meta.fields().iter().map(|f| {
            let role = match f.name() {
                "message" => Role::Body,
                _ => Role::Plain,
            };
            (f.name(), role)
        }));
        self.callsite = Some(number);
    }

    /// Writes field `index` (of the call site) = `v`.
    fn put(&self, out: &mut Vec<u8>, index: u8, v: &Scalar<'_>) {
        if index == layout::EXCEPTION {
            proto::key_value(out, field::ATTRIBUTES, "exception.message", v);
            return;
        }
        match self.by_index.get(usize::from(index)) {
            Some((_, Role::Body)) => proto::any_value(out, field::BODY, v),
            Some((name, Role::Plain)) => proto::key_value(out, field::ATTRIBUTES, name, v),
            None => {}
        }
    }
}

/// Turns captured records into encoded `LogRecord`s, on the export thread.
#[derive(Default)]
pub struct Transcoder {
    /// The call sites known so far (a copy of `CALLSITES`, taken again when a record names a newer one).
    callsites: Vec<&'static Metadata<'static>>,
    roles: Roles,
}

/// Severity number and text; trace flags, trace id and span id when there is a context.
fn encode_prefix(out: &mut Vec<u8>, level: Level, context: Option<TraceContext>) {
    let (severity, text) = severity(&level);
    proto::uint(out, field::SEVERITY_NUMBER, severity);
    proto::bytes(out, field::SEVERITY_TEXT, text.as_bytes());
    if let Some((flags, trace_id, span_id)) = context {
        proto::fixed32(out, field::FLAGS, u32::from(flags));
        proto::bytes(out, field::TRACE_ID, &trace_id);
        proto::bytes(out, field::SPAN_ID, &span_id);
    }
}

impl Transcode for Transcoder {
    fn transcode(&mut self, queued: &[u8], out: &mut Vec<u8>) {
        let mut records = Reader(queued);
        // Each record as the queue framed it: a `log_records` field (key, length, contents).
        while let (Some(_key), Some(len)) = (records.u8(), records.varint()) {
            let Some(record) = records.take(len) else {
                return;
            };
            self.record(record, out);
        }
    }
}

impl Transcoder {
    fn callsite(&mut self, number: u32) -> Option<&'static Metadata<'static>> {
        let i = usize::try_from(number).ok()?;
        if i >= self.callsites.len() {
            self.callsites.clone_from(&callsites());
        }
        self.callsites.get(i).copied()
    }

    /// One captured record (see `layout`) as a `log_records` field. A record it cannot read (there is none: the
    /// engine wrote it in this process) is left out whole.
    fn record(&mut self, captured: &[u8], out: &mut Vec<u8>) {
        let mut r = Reader(captured);
        let Some(head) = r.head() else {
            return;
        };
        let Some(meta) = self.callsite(head.callsite) else {
            return;
        };
        let start = out.len();
        let complete = proto::message_with(out, 2, |out| {
            // As the SDK did: the time of observation only; the collector and GreptimeDB use it when
            // `time_unix_nano` is 0.
            proto::fixed64(out, field::OBSERVED_TIME, head.nanos);
            encode_prefix(out, *meta.level(), head.context);
            self.roles.for_callsite(head.callsite, meta);
            while !r.0.is_empty() {
                let Some((index, value)) = r.field() else {
                    return false;
                };
                self.roles.put(out, index, &value);
            }
            true
        });
        if !complete {
            out.truncate(start);
        }
    }
}

/// What a captured record holds before its fields.
struct Head {
    callsite: u32,
    nanos: u64,
    context: Option<TraceContext>,
}

/// Trace flags, trace id, span id.
pub(super) type TraceContext = (u8, [u8; 16], [u8; 8]);

/// Reads a captured record or a run of them.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    /// A u32 length and that many bytes.
    fn sized(&mut self) -> Option<&'a [u8]> {
        let len = u32::from_le_bytes(self.array()?);
        self.take(usize::try_from(len).ok()?)
    }

    fn head(&mut self) -> Option<Head> {
        let callsite = u32::from_le_bytes(self.array()?);
        let nanos = u64::from_le_bytes(self.array()?);
        let context = match self.u8()? {
            layout::HAS_CONTEXT => Some((self.u8()?, self.array()?, self.array()?)),
            _ => None,
        };
        Some(Head {
            callsite,
            nanos,
            context,
        })
    }

    /// One field: its index (or `layout::EXCEPTION`) and value.
    fn field(&mut self) -> Option<(u8, Scalar<'a>)> {
        let index = self.u8()?;
        let value = match self.u8()? {
            layout::STR => Scalar::Text(self.sized()?),
            layout::BYTES => Scalar::Bytes(self.sized()?),
            layout::BOOL => Scalar::Bool(self.u8()? != 0),
            layout::INT => Scalar::Int(i64::from_le_bytes(self.array()?)),
            layout::DOUBLE => Scalar::Double(f64::from_bits(u64::from_le_bytes(self.array()?))),
            _ => return None,
        };
        Some((index, value))
    }

    fn varint(&mut self) -> Option<usize> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return usize::try_from(v).ok();
            }
        }
        None
    }
}
