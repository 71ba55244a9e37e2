use std::sync::atomic::{AtomicUsize, Ordering};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message as _;

use super::*;

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
        let req = ExportLogsServiceRequest::decode(request).map_err(|e| e.to_string())?;
        let n: usize = req
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len())
            .sum();
        self.received.fetch_add(n, Ordering::Relaxed);
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
    let health = Arc::new(ExportHealth::default());
    let cfg = LogQueueConfig {
        max_queue: 8,
        max_batch: 4,
        delay: Duration::from_millis(50),
    };
    let framing = Framing {
        resource: Vec::new(),
        schema_url: String::new(),
        scopes: &["sling"],
    };
    let queue = LogQueue::start(exporter, Verbatim, framing, cfg, health.clone()).expect("worker");
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
