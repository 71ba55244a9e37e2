use std::sync::atomic::{AtomicUsize, Ordering};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message as _;

use super::*;

/// How many records a request holds.
fn records_in(request: bytes::Bytes) -> Result<usize, String> {
    let req = ExportLogsServiceRequest::decode(request).map_err(|e| e.to_string())?;
    Ok(req
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum())
}

/// A queue of scope `sling` with an empty resource, exporting to `exporter`.
fn start<E: Export>(exporter: E, cfg: LogQueueConfig) -> (LogQueue, Arc<ExportHealth>) {
    let health = Arc::new(ExportHealth::default());
    let framing = Framing {
        resource: Vec::new(),
        schema_url: String::new(),
        scopes: &["sling"],
    };
    let queue = LogQueue::start(exporter, Verbatim, framing, cfg, health.clone()).expect("worker");
    (queue, health)
}

/// Counts the records it is given; fails every export when `fail` is set; takes `pause` per export.
#[derive(Debug, Clone, Default)]
struct Counting {
    received: Arc<AtomicUsize>,
    fail: bool,
    pause: Duration,
}

impl Export for Counting {
    fn export(&mut self, request: bytes::Bytes) -> Result<(), String> {
        std::thread::sleep(self.pause);
        if self.fail {
            return Err("refused".into());
        }
        self.received
            .fetch_add(records_in(request)?, Ordering::Relaxed);
        Ok(())
    }
}

/// Records queued already encoded, as these tests push them.
struct Verbatim;

impl Transcode for Verbatim {
    fn transcode(&mut self, queued: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(queued);
    }
}

fn push_all(exporter: Counting, n: usize) -> (Arc<ExportHealth>, Duration, Result<(), String>) {
    let cfg = LogQueueConfig {
        max_queue: 8,
        max_batch: 4,
        delay: Duration::from_millis(50),
    };
    let (queue, health) = start(exporter, cfg);
    let start = Instant::now();
    let mut record = Vec::new();
    for i in 0..n {
        record.clear();
        proto::any_value(&mut record, 5, &proto::Scalar::Str(&format!("line {i}")));
        queue.push(0, &record);
    }
    let took = start.elapsed();
    (
        health,
        took,
        queue.shutdown_with_timeout(Duration::from_secs(10)),
    )
}

#[test]
fn a_slow_exporter_that_answers_gets_every_record() {
    let exporter = Counting {
        pause: Duration::from_millis(2),
        ..Counting::default()
    };
    let received = exporter.received.clone();
    let (health, _, shutdown) = push_all(exporter, 500);
    assert!(shutdown.is_ok(), "{shutdown:?}");
    assert_eq!(received.load(Ordering::Relaxed), 500);
    assert_eq!(health.logs_dropped(), 0);
    assert_eq!(health.snapshot().exports_failed, 0);
}

#[test]
fn a_failing_exporter_drops_and_counts_instead_of_holding_the_caller() {
    let exporter = Counting {
        fail: true,
        pause: Duration::from_millis(20),
        ..Counting::default()
    };
    let (health, took, shutdown) = push_all(exporter, 500);
    assert!(shutdown.is_err(), "the failure is reported at shutdown");
    // Waiting for every export of 4 records would take 500 / 4 × 20 ms = 2.5 s: the caller stops waiting once
    // an export has failed (this bounds the count, not a duration).
    assert!(health.logs_dropped() > 0, "nothing dropped in {took:?}");
    assert!(health.logs_dropped() <= 500 - 8);
    let snap = health.snapshot();
    assert!(snap.exports_failed > 0);
    assert!(snap
        .last_error
        .is_some_and(|e| e.contains("logs") && e.contains("refused")));
}

/// Long lines and a slow collector: every record arrives, no request holds much more than `MAX_BATCH_BYTES`, and the
/// queue never much more than `MAX_QUEUE_BYTES` — not the 2,048 records × 16 KiB it would hold by count alone.
#[test]
fn long_records_are_bounded_by_bytes_in_batches_and_in_the_queue() {
    #[derive(Clone, Default)]
    struct Sizes(Arc<std::sync::Mutex<Vec<(usize, usize)>>>);
    impl Export for Sizes {
        fn export(&mut self, request: bytes::Bytes) -> Result<(), String> {
            std::thread::sleep(Duration::from_millis(5));
            let len = request.len();
            let n = records_in(request)?;
            self.0.lock().expect("lock").push((n, len));
            Ok(())
        }
    }
    const RECORD: usize = 20_000;
    const RECORDS: usize = 400;
    let sizes = Sizes::default();
    let cfg = LogQueueConfig {
        max_queue: 2048,
        max_batch: 512,
        delay: Duration::from_secs(60),
    };
    let (queue, health) = start(sizes.clone(), cfg);
    let body = "x".repeat(RECORD);
    let mut record = Vec::new();
    for _ in 0..RECORDS {
        record.clear();
        proto::any_value(&mut record, 5, &proto::Scalar::Str(&body));
        queue.push(0, &record);
    }
    let peak = queue.peak_queued_bytes();
    assert!(queue.shutdown_with_timeout(Duration::from_secs(10)).is_ok());
    let sizes = sizes.0.lock().expect("lock").clone();
    assert_eq!(
        sizes.iter().map(|(n, _)| n).sum::<usize>(),
        RECORDS,
        "every record arrives"
    );
    assert!(
        sizes
            .iter()
            .all(|(_, bytes)| *bytes <= MAX_BATCH_BYTES + RECORD + 64),
        "{sizes:?}"
    );
    assert_eq!(health.logs_dropped(), 0);
    // 400 × 20 kB = 8 MB went through; by count alone one batch would have held them all.
    assert!(
        sizes.len() >= RECORDS * RECORD / MAX_BATCH_BYTES,
        "{sizes:?}"
    );
    assert!(peak <= MAX_QUEUE_BYTES + RECORD + 16, "peak {peak}");
    assert!(
        peak >= MAX_QUEUE_BYTES,
        "the slow exporter should have filled the queue: peak {peak}"
    );
}

/// Records queued encoded and records to transcode, of two scopes and interleaved: one request holds them in the
/// order they were pushed, one `ScopeLogs` per run of a scope, the encoded ones as they were and the captured ones
/// as the transcoder wrote them.
#[test]
fn encoded_and_captured_records_keep_their_order_and_scopes() {
    #[derive(Clone, Default)]
    struct Keep(Arc<std::sync::Mutex<Vec<ExportLogsServiceRequest>>>);
    impl Export for Keep {
        fn export(&mut self, request: bytes::Bytes) -> Result<(), String> {
            let req = ExportLogsServiceRequest::decode(request).map_err(|e| e.to_string())?;
            self.0.lock().expect("lock").push(req);
            Ok(())
        }
    }
    /// Marks what it transcodes, so that a captured record cannot pass for an encoded one.
    struct Marking;
    impl Transcode for Marking {
        fn transcode(&mut self, queued: &[u8], out: &mut Vec<u8>) {
            let mut rest = queued;
            while let [_, len, tail @ ..] = rest {
                let (record, tail) = tail.split_at(usize::from(*len));
                proto::message_with(out, 2, |out| {
                    out.extend_from_slice(record);
                    proto::uint(out, 2, 17);
                });
                rest = tail;
            }
        }
    }
    let keep = Keep::default();
    let framing = Framing {
        resource: Vec::new(),
        schema_url: String::new(),
        scopes: &["sling", "engine"],
    };
    let cfg = LogQueueConfig {
        max_queue: 64,
        max_batch: 64,
        delay: Duration::from_secs(60),
    };
    let health = Arc::new(ExportHealth::default());
    let queue = LogQueue::start(keep.clone(), Marking, framing, cfg, health).expect("worker");
    // (scope, form, body)
    let pushed = [
        (0, Form::Encoded, "line 1"),
        (0, Form::Captured, "event a"),
        (0, Form::Encoded, "line 2"),
        (1, Form::Captured, "event b"),
        (1, Form::Captured, "event c"),
        (0, Form::Encoded, "line 3"),
    ];
    for (scope, form, body) in pushed {
        queue.push_with(scope, form, |out| {
            proto::any_value(out, 5, &proto::Scalar::Str(body));
        });
    }
    assert!(queue.shutdown_with_timeout(Duration::from_secs(10)).is_ok());
    let requests = keep.0.lock().expect("lock").clone();
    assert_eq!(requests.len(), 1, "one batch, one request");
    let scopes: Vec<(String, Vec<(String, i32)>)> = requests[0].resource_logs[0]
        .scope_logs
        .iter()
        .map(|s| {
            let name = s.scope.as_ref().map(|x| x.name.clone()).unwrap_or_default();
            let records = s
                .log_records
                .iter()
                .map(|r| {
                    (
                        format!("{:?}", r.body.as_ref().and_then(|b| b.value.clone())),
                        r.severity_number,
                    )
                })
                .collect();
            (name, records)
        })
        .collect();
    let text = |s: &str| {
        format!(
            "{:?}",
            Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s.into()))
        )
    };
    assert_eq!(
        scopes,
        [
            (
                "sling".to_owned(),
                vec![
                    (text("line 1"), 0),
                    (text("event a"), 17),
                    (text("line 2"), 0)
                ]
            ),
            (
                "engine".to_owned(),
                vec![(text("event b"), 17), (text("event c"), 17)]
            ),
            ("sling".to_owned(), vec![(text("line 3"), 0)]),
        ]
    );
}
