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

/// What a length-delimited field of `len` bytes takes, key (fields below 16) and length included.
#[inline]
fn field_len(len: usize) -> usize {
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
    let inner = field_len(k.len()) + field_len(any_len(v));
    out.reserve(field_len(inner));
    key(out, field, LEN);
    varint(out, inner as u64);
    bytes(out, 1, k.as_bytes());
    any_value(out, 2, v);
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
/// scope_logs = 2, schema_url = 3 }` holding one `ScopeLogs { scope = 1, log_records = 2 }` per run of records of one
/// scope. `records` holds encoded `log_records` fields; `runs` gives each run's scope name and where it ends.
pub(super) fn request(
    out: &mut Vec<u8>,
    resource: &[u8],
    schema_url: &str,
    records: &[u8],
    runs: &[(&str, usize)],
) {
    // InstrumentationScope { name = 1 }: the tracing target, as the SDK's exporter named it.
    let scope_len = |name: &str| field_len(name.len());
    let mut start = 0;
    let mut scope_logs = 0;
    for (name, end) in runs {
        scope_logs += field_len(field_len(scope_len(name)) + (end - start));
        start = *end;
    }
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
    let mut start = 0;
    for (name, end) in runs {
        let run = &records[start..*end];
        key(out, 2, LEN);
        varint(out, (field_len(scope_len(name)) + run.len()) as u64);
        key(out, 1, LEN);
        varint(out, scope_len(name) as u64);
        bytes(out, 1, name.as_bytes());
        out.extend_from_slice(run);
        start = *end;
    }
    if !schema_url.is_empty() {
        bytes(out, 3, schema_url.as_bytes());
    }
}

#[cfg(test)]
mod tests {
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
