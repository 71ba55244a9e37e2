//! A benchmark's OTLP/HTTP receiver: answers every export with 200 and counts what arrived, at a small fraction of
//! the CPU a collector (or a receiver in Python) would take, so that a benchmark on a 2-vCPU machine measures the
//! wrapper, not the receiver beside it on the same cores.
//!
//! Prints `listening on http://127.0.0.1:PORT` once ready. `POST /v1/logs` and `POST /v1/traces` (protobuf bodies,
//! `Content-Length` framed, keep-alive) are counted: log records; spans, span events and dropped span events; requests and their body bytes.
//! `POST /v1/metrics` is answered and not counted. `GET /counts` answers the counts as JSON and resets them.
//!
//! Usage: `cargo run --release --example otlp_sink` (used by `scripts/bench.py`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

#[derive(Default)]
struct Counts {
    logs: AtomicU64,
    spans: AtomicU64,
    events: AtomicU64,
    dropped_events: AtomicU64,
    requests: AtomicU64,
    /// Body bytes of the counted requests.
    bytes: AtomicU64,
}

fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("listening on http://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let counts = Arc::new(Counts::default());
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let counts = counts.clone();
        std::thread::spawn(move || {
            // A connection that breaks or sends what this does not read just ends.
            let _ = serve(conn, &counts);
        });
    }
    Ok(())
}

fn serve(conn: TcpStream, counts: &Counts) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut out = conn.try_clone()?;
    let mut conn = BufReader::with_capacity(1 << 16, conn);
    let mut line = String::new();
    let mut body = Vec::new();
    loop {
        line.clear();
        if conn.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_owned(),
            parts.next().unwrap_or("").to_owned(),
        );
        let mut length = 0usize;
        loop {
            line.clear();
            if conn.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        body.resize(length, 0);
        conn.read_exact(&mut body)?;
        let answer = match (method.as_str(), path.as_str()) {
            ("GET", "/counts") => {
                let take = |c: &AtomicU64| c.swap(0, Relaxed);
                format!(
                    r#"{{"logs":{},"spans":{},"events":{},"dropped_events":{},"requests":{},"bytes":{}}}"#,
                    take(&counts.logs),
                    take(&counts.spans),
                    take(&counts.events),
                    take(&counts.dropped_events),
                    take(&counts.requests),
                    take(&counts.bytes)
                )
            }
            (_, p) => {
                counts.requests.fetch_add(1, Relaxed);
                counts.bytes.fetch_add(body.len() as u64, Relaxed);
                if p.ends_with("/v1/logs") {
                    counts.logs.fetch_add(count_logs(&body), Relaxed);
                } else if p.ends_with("/v1/traces") {
                    let (s, e, d) = count_spans(&body);
                    counts.spans.fetch_add(s, Relaxed);
                    counts.events.fetch_add(e, Relaxed);
                    counts.dropped_events.fetch_add(d, Relaxed);
                }
                String::new()
            }
        };
        let content_type = if answer.is_empty() {
            "application/x-protobuf"
        } else {
            "application/json"
        };
        // One write: in pieces, Nagle's algorithm would hold the second until the client's delayed ACK (40 ms).
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        out.write_all(response.as_bytes())?;
    }
}

/// The fields of a protobuf message: (field number, value) with length-delimited values as their bytes and the
/// rest as their integer (fixed-size values are skipped as 0). Stops at anything malformed.
fn fields(mut buf: &[u8]) -> impl Iterator<Item = (u64, u64, &[u8])> {
    std::iter::from_fn(move || {
        let key = varint(&mut buf)?;
        let (number, wire) = (key >> 3, key & 7);
        let value = match wire {
            0 => (varint(&mut buf)?, &[][..]),
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                let (_, rest) = buf.split_at_checked(n)?;
                buf = rest;
                (0, &[][..])
            }
            2 => {
                let n = usize::try_from(varint(&mut buf)?).ok()?;
                let (v, rest) = buf.split_at_checked(n)?;
                buf = rest;
                (0, v)
            }
            _ => return None,
        };
        Some((number, value.0, value.1))
    })
}

fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// ExportLogsServiceRequest.resource_logs(1) → ResourceLogs.scope_logs(2) → ScopeLogs.log_records(2).
fn count_logs(body: &[u8]) -> u64 {
    let mut n = 0;
    for (f, _, rl) in fields(body) {
        if f != 1 {
            continue;
        }
        for (g, _, sl) in fields(rl) {
            if g == 2 {
                n += fields(sl).filter(|(h, _, _)| *h == 2).count() as u64;
            }
        }
    }
    n
}

/// ExportTraceServiceRequest.resource_spans(1) → scope_spans(2) → spans(2) → events(11), dropped_events_count(12).
fn count_spans(body: &[u8]) -> (u64, u64, u64) {
    let (mut spans, mut events, mut dropped) = (0, 0, 0);
    for (f, _, rs) in fields(body) {
        if f != 1 {
            continue;
        }
        for (g, _, ss) in fields(rs) {
            if g != 2 {
                continue;
            }
            for (h, _, span) in fields(ss) {
                if h != 2 {
                    continue;
                }
                spans += 1;
                for (k, v, _) in fields(span) {
                    match k {
                        11 => events += 1,
                        12 => dropped += v,
                        _ => {}
                    }
                }
            }
        }
    }
    (spans, events, dropped)
}
