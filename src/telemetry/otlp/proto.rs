//! Just enough of the protobuf wire format to write OTLP log requests (`opentelemetry/proto/logs/v1`,
//! `collector/logs/v1`): each record is encoded once, from what the engine captured of the tracing event, into bytes
//! that go on the wire as they are. The field numbers are those of the OTLP protos (checked in the tests by decoding
//! with the generated types).

use std::fmt::Write as _;

use opentelemetry::{Array, Value};

const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;
const FIXED32: u64 = 5;

#[inline]
pub(super) fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

#[inline]
fn key(out: &mut Vec<u8>, field: u64, wire: u64) {
    varint(out, field << 3 | wire);
}

/// A length-delimited field (string, bytes or an encoded message).
#[inline]
pub(super) fn bytes(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    key(out, field, LEN);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A length-delimited field whose contents `encode` writes straight into `out`, not into a buffer copied afterwards:
/// two bytes are left for the length (a record under 16 KiB, the usual Sling line), and the contents move only when
/// the length needs fewer or more.
#[inline]
pub(super) fn message_with<R>(
    out: &mut Vec<u8>,
    field: u64,
    encode: impl FnOnce(&mut Vec<u8>) -> R,
) -> R {
    const ROOM: usize = 2;
    key(out, field, LEN);
    let at = out.len();
    out.extend_from_slice(&[0; ROOM]);
    let result = encode(out);
    let len = out.len() - at - ROOM;
    let n = varint_len(len as u64);
    if n != ROOM {
        // Rare for a Sling line's record (over 127 bytes with its trace context): the contents move to fit.
        out.splice(at..at + ROOM, std::iter::repeat_n(0, n));
    }
    let mut v = len as u64;
    for b in &mut out[at..at + n] {
        *b = v as u8 | 0x80;
        v >>= 7;
    }
    out[at + n - 1] &= 0x7f;
    result
}

/// The key and length of a length-delimited field whose `len` bytes of contents follow.
#[inline]
pub(super) fn len_prefix(out: &mut Vec<u8>, field: u64, len: usize) {
    key(out, field, LEN);
    varint(out, len as u64);
}

/// What a length-delimited field of `len` bytes takes, key (fields below 16) and length included.
#[inline]
pub(super) fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

#[inline]
pub(super) fn uint(out: &mut Vec<u8>, field: u64, v: u64) {
    key(out, field, VARINT);
    varint(out, v);
}

pub(super) fn fixed64(out: &mut Vec<u8>, field: u64, v: u64) {
    key(out, field, FIXED64);
    out.extend_from_slice(&v.to_le_bytes());
}

pub(super) fn fixed32(out: &mut Vec<u8>, field: u64, v: u32) {
    key(out, field, FIXED32);
    out.extend_from_slice(&v.to_le_bytes());
}

/// One attribute value, as the bridge from tracing fields made them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Scalar<'a> {
    Str(&'a str),
    /// A string's UTF-8 bytes, taken from a `&str` (a captured record's): written as `Str` is, without checking
    /// them again.
    Text(&'a [u8]),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(&'a [u8]),
}

/// `AnyValue`'s length for a scalar.
#[inline]
fn any_len(v: &Scalar<'_>) -> usize {
    match v {
        Scalar::Str(s) => field_len(s.len()),
        Scalar::Text(b) => field_len(b.len()),
        Scalar::Bytes(b) => field_len(b.len()),
        Scalar::Bool(_) => 2,
        Scalar::Int(i) => 1 + varint_len(*i as u64),
        Scalar::Double(_) => 9,
    }
}

/// `AnyValue` (common/v1) as field `field` of the enclosing message.
#[inline]
pub(super) fn any_value(out: &mut Vec<u8>, field: u64, v: &Scalar<'_>) {
    key(out, field, LEN);
    varint(out, any_len(v) as u64);
    match v {
        Scalar::Str(s) => bytes(out, 1, s.as_bytes()),
        Scalar::Text(b) => bytes(out, 1, b),
        Scalar::Bool(b) => uint(out, 2, u64::from(*b)),
        Scalar::Int(i) => uint(out, 3, *i as u64),
        Scalar::Double(d) => fixed64(out, 4, d.to_bits()),
        Scalar::Bytes(b) => bytes(out, 7, b),
    }
}

/// `KeyValue { key = 1, value = 2 }` as field `field` of the enclosing message.
pub(super) fn key_value(out: &mut Vec<u8>, field: u64, k: &str, v: &Scalar<'_>) {
    // Text under a short name (span events' `level` and `target`, most attributes of events) in two copies (`Head`).
    let text = match v {
        Scalar::Str(s) => Some(s.as_bytes()),
        Scalar::Text(b) => Some(*b),
        _ => None,
    };
    if let Some(text) = text.filter(|_| k.len() <= Head::MAX_KEY) {
        let mut head = Head::new();
        head.text_key_value(field, k, text.len());
        out.reserve(head.as_bytes().len() + text.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(text);
        return;
    }
    let inner = field_len(k.len()) + field_len(any_len(v));
    out.reserve(field_len(inner));
    key(out, field, LEN);
    varint(out, inner as u64);
    bytes(out, 1, k.as_bytes());
    any_value(out, 2, v);
}

/// The keys and lengths in front of a text value, assembled on the stack and appended to a record in one copy. A
/// Sling line's record is mostly such pieces of a byte or two; written one by one, each costs a capacity check and
/// the text a copy call of its own (~560 of the ~840 instructions `LogLines` spent per line, callgrind).
pub(super) struct Head {
    buf: [u8; Head::CAPACITY],
    len: usize,
}

impl Head {
    /// Room for the longest head: a `KeyValue`'s two keys and two lengths, its key's key, length and text (at most
    /// `MAX_KEY`), and the `AnyValue`'s key and length — each length a varint of at most 10 bytes; or a `fixed64`
    /// and an `AnyValue`'s head (31 bytes).
    const CAPACITY: usize = 64;
    /// The longest attribute name `text_key_value` takes.
    pub const MAX_KEY: usize = 20;

    pub fn new() -> Self {
        Self {
            buf: [0; Self::CAPACITY],
            len: 0,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    #[inline]
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf[self.len] = v as u8 | 0x80;
            self.len += 1;
            v >>= 7;
        }
        self.buf[self.len] = v as u8;
        self.len += 1;
    }

    #[inline]
    fn key(&mut self, field: u64, wire: u64) {
        self.varint(field << 3 | wire);
    }

    /// A fixed64 field.
    #[inline]
    pub fn fixed64(&mut self, field: u64, v: u64) {
        self.key(field, FIXED64);
        self.buf[self.len..self.len + 8].copy_from_slice(&v.to_le_bytes());
        self.len += 8;
    }

    /// `AnyValue { string_value = 1 }` as field `field`, up to its text of `len` bytes (`any_value` with
    /// `Scalar::Text`, without the text).
    #[inline]
    pub fn text_any(&mut self, field: u64, len: usize) {
        self.key(field, LEN);
        self.varint(field_len(len) as u64);
        self.key(1, LEN);
        self.varint(len as u64);
    }

    /// `KeyValue { key = 1, value = 2 }` with a text value of `len` bytes as field `field`, up to the text
    /// (`key_value` with `Scalar::Text`, without the text). `k` is a constant attribute name of at most `MAX_KEY`
    /// bytes.
    #[inline]
    pub fn text_key_value(&mut self, field: u64, k: &str, len: usize) {
        assert!(k.len() <= Self::MAX_KEY, "attribute name `{k}` is too long");
        let any = field_len(len);
        self.key(field, LEN);
        self.varint((field_len(k.len()) + field_len(any)) as u64);
        self.key(1, LEN);
        self.varint(k.len() as u64);
        self.buf[self.len..self.len + k.len()].copy_from_slice(k.as_bytes());
        self.len += k.len();
        self.text_any(2, len);
    }
}

/// An OTel attribute value of any kind (the resource's), arrays included; written once per process.
fn otel_any_value(out: &mut Vec<u8>, field: u64, v: &Value) {
    let mut text = String::new();
    let scalar = match v {
        Value::Bool(b) => Scalar::Bool(*b),
        Value::I64(i) => Scalar::Int(*i),
        Value::F64(d) => Scalar::Double(*d),
        Value::String(s) => Scalar::Str(s.as_str()),
        Value::Array(a) => {
            // ArrayValue { values = 1 } as AnyValue's field 5.
            let mut values = Vec::new();
            match a {
                Array::Bool(xs) => xs
                    .iter()
                    .for_each(|x| any_value(&mut values, 1, &Scalar::Bool(*x))),
                Array::I64(xs) => xs
                    .iter()
                    .for_each(|x| any_value(&mut values, 1, &Scalar::Int(*x))),
                Array::F64(xs) => xs
                    .iter()
                    .for_each(|x| any_value(&mut values, 1, &Scalar::Double(*x))),
                Array::String(xs) => xs
                    .iter()
                    .for_each(|x| any_value(&mut values, 1, &Scalar::Str(x.as_str()))),
                _ => {}
            }
            let mut any = Vec::new();
            bytes(&mut any, 5, &values);
            bytes(out, field, &any);
            return;
        }
        other => {
            let _ = write!(text, "{other}");
            Scalar::Str(&text)
        }
    };
    any_value(out, field, &scalar);
}

/// `KeyValue` with an OTel value: scalars written at once, arrays through a buffer.
pub(super) fn otel_key_value(out: &mut Vec<u8>, field: u64, k: &str, v: &Value) {
    let scalar = match v {
        Value::Bool(b) => Scalar::Bool(*b),
        Value::I64(i) => Scalar::Int(*i),
        Value::F64(d) => Scalar::Double(*d),
        Value::String(s) => Scalar::Str(s.as_str()),
        other => {
            let mut kv = Vec::new();
            bytes(&mut kv, 1, k.as_bytes());
            otel_any_value(&mut kv, 2, other);
            bytes(out, field, &kv);
            return;
        }
    };
    key_value(out, field, k, &scalar);
}

/// `Resource { attributes = 1 }`, encoded once when telemetry starts.
pub(super) fn resource<'a>(attributes: impl Iterator<Item = (&'a str, &'a Value)>) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in attributes {
        otel_key_value(&mut out, 1, k, v);
    }
    out
}

/// One export request: `ExportLogsServiceRequest { resource_logs = 1 }` with one `ResourceLogs { resource = 1,
/// scope_logs = 2, schema_url = 3 }` holding one `ScopeLogs { scope = 1, log_records = 2 }` per scope, in the order
/// of `runs`: each run is a scope name and encoded `log_records` fields; consecutive runs of one scope share a
/// `ScopeLogs`.
pub(super) fn request(
    out: &mut Vec<u8>,
    resource: &[u8],
    schema_url: &str,
    runs: &[(&str, &[u8])],
) {
    // InstrumentationScope { name = 1 }: the tracing target, as the SDK's exporter named it.
    let scope_len = |name: &str| field_len(name.len());
    let scopes = || runs.chunk_by(|a, b| a.0 == b.0);
    let records_len = |group: &[(&str, &[u8])]| group.iter().map(|(_, r)| r.len()).sum::<usize>();
    let scope_logs: usize = scopes()
        .map(|g| field_len(field_len(scope_len(g[0].0)) + records_len(g)))
        .sum();
    let schema = if schema_url.is_empty() {
        0
    } else {
        field_len(schema_url.len())
    };
    let resource_logs = field_len(resource.len()) + scope_logs + schema;
    out.reserve(field_len(resource_logs));
    key(out, 1, LEN);
    varint(out, resource_logs as u64);
    bytes(out, 1, resource);
    for group in scopes() {
        let name = group[0].0;
        key(out, 2, LEN);
        varint(
            out,
            (field_len(scope_len(name)) + records_len(group)) as u64,
        );
        key(out, 1, LEN);
        varint(out, scope_len(name) as u64);
        bytes(out, 1, name.as_bytes());
        for (_, records) in group {
            out.extend_from_slice(records);
        }
    }
    if !schema_url.is_empty() {
        bytes(out, 3, schema_url.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1 as otlp;
    use opentelemetry_proto::tonic::logs::v1::LogRecord;
    use prost::Message as _;

    use super::*;

    #[test]
    fn varints_and_their_lengths_agree() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
        }
        let mut out = Vec::new();
        varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
    }

    /// `encoded` (fields of a `LogRecord`) as the generated OTLP types read it.
    fn decoded(encoded: &[u8]) -> LogRecord {
        LogRecord::decode(encoded).expect("a LogRecord's fields")
    }

    fn text_value(text: &[u8]) -> otlp::AnyValue {
        otlp::AnyValue {
            value: Some(otlp::any_value::Value::StringValue(
                String::from_utf8(text.to_vec()).expect("ASCII"),
            )),
        }
    }

    #[test]
    fn text_values_and_heads_read_back_with_the_generated_types() {
        // Around the lengths where a length takes 1, 2 and 3 bytes, inside and around the enclosing message; names
        // short enough for a head, and one too long for it.
        for len in [
            0usize, 1, 100, 107, 108, 127, 128, 16_360, 16_383, 16_384, 2_097_152,
        ] {
            let text: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let mut whole = Vec::new();
            any_value(&mut whole, 5, &Scalar::Text(&text));
            assert_eq!(
                decoded(&whole).body,
                Some(text_value(&text)),
                "AnyValue of {len} bytes"
            );
            let mut head = Head::new();
            head.text_any(5, len);
            assert!(
                [head.as_bytes(), &text].concat() == whole,
                "AnyValue head of {len} bytes"
            );

            for k in [
                "sling_time",
                "",
                "k2345678901234567890",
                "sling_line_events_skipped",
            ] {
                let kv = otlp::KeyValue {
                    key: k.to_owned(),
                    value: Some(text_value(&text)),
                    ..Default::default()
                };
                for v in [
                    Scalar::Text(&text),
                    Scalar::Str(std::str::from_utf8(&text).expect("ASCII")),
                ] {
                    let mut whole = Vec::new();
                    key_value(&mut whole, 6, k, &v);
                    assert_eq!(
                        decoded(&whole).attributes,
                        std::slice::from_ref(&kv),
                        "KeyValue `{k}` of {len} bytes"
                    );
                }
                if k.len() <= Head::MAX_KEY {
                    let mut head = Head::new();
                    head.text_key_value(6, k, len);
                    head.as_bytes().clone_into(&mut whole);
                    whole.extend_from_slice(&text);
                    assert_eq!(
                        decoded(&whole).attributes,
                        [kv],
                        "KeyValue head `{k}` of {len} bytes"
                    );
                }
            }
        }
        // Values other than text take the general path.
        let mut whole = Vec::new();
        key_value(&mut whole, 6, "attempt", &Scalar::Int(3));
        let kv = otlp::KeyValue {
            key: "attempt".into(),
            value: Some(otlp::AnyValue {
                value: Some(otlp::any_value::Value::IntValue(3)),
            }),
            ..Default::default()
        };
        assert_eq!(decoded(&whole).attributes, [kv]);
    }

    #[test]
    fn a_message_written_in_place_is_the_same_as_one_copied_in() {
        // Around the lengths where the length prefix takes 1, 2 and 3 bytes, after earlier bytes in the buffer.
        for len in [
            0usize, 1, 127, 128, 129, 300, 16_383, 16_384, 16_385, 2_097_151, 2_097_152,
        ] {
            let contents: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut copied = vec![7u8, 7];
            bytes(&mut copied, 2, &contents);
            let mut in_place = vec![7u8, 7];
            let r = message_with(&mut in_place, 2, |out| {
                out.extend_from_slice(&contents);
                len
            });
            assert_eq!(r, len);
            assert!(in_place == copied, "length {len}");
        }
    }
}
