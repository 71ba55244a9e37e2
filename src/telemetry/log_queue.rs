//! The log-record processor: every Sling line reaches the collector while the collector answers.
//!
//! The SDK's `BatchLogProcessor` drops a record whenever its queue is full, which a Sling flood does within
//! milliseconds even with a collector that answers at once (21 % of 100k lines were lost). Here, as with batch stdout,
//! a full queue makes the engine wait — it stops reading Sling's pipe and Sling waits — for as long as exports
//! succeed. When the last export failed, or the one in progress has run longer than `STALL_BOUND`, records that do not
//! fit are dropped at once and counted in `ExportHealth`: a dead or silent collector never holds a sync back by more
//! than that bound.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogBatch, LogExporter, LogProcessor, SdkLogRecord};
use opentelemetry_sdk::Resource;

use super::config::LogQueueConfig;
use super::health::ExportHealth;

/// How long the engine waits on one export in progress before it stops waiting and drops what does not fit.
pub const STALL_BOUND: Duration = Duration::from_secs(1);

type Item = (SdkLogRecord, InstrumentationScope);

#[derive(Default)]
struct State {
    queue: VecDeque<Item>,
    /// When the export in progress started.
    exporting_since: Option<Instant>,
    last_export_failed: bool,
    /// Flush requests made and served (a flush is served when the queue was empty after an export).
    flushes_wanted: u64,
    flushes_done: u64,
    shutdown: bool,
    worker_done: bool,
    new_resource: Option<Resource>,
}

impl State {
    /// Whether a full queue should hold the caller back rather than drop: only while the collector answers.
    fn worth_waiting(&self) -> bool {
        !self.shutdown
            && !self.last_export_failed
            && self
                .exporting_since
                .is_none_or(|t| t.elapsed() < STALL_BOUND)
    }
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when the queue has room or the export state changed.
    room: Condvar,
    /// Wakes the worker: a full batch, a flush, shutdown.
    work: Condvar,
    /// Signalled when a flush is served or the worker has finished.
    done: Condvar,
    cfg: LogQueueConfig,
    health: Arc<ExportHealth>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// See the module documentation.
pub struct BackPressureLogProcessor {
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for BackPressureLogProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackPressureLogProcessor")
            .field("cfg", &self.shared.cfg)
            .finish()
    }
}

impl BackPressureLogProcessor {
    pub fn new<E: LogExporter + 'static>(
        exporter: E,
        cfg: LogQueueConfig,
        health: Arc<ExportHealth>,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            room: Condvar::new(),
            work: Condvar::new(),
            done: Condvar::new(),
            cfg,
            health,
        });
        let for_worker = shared.clone();
        let worker = std::thread::Builder::new()
            .name("otel-logs".into())
            .spawn(move || export_loop(exporter, &for_worker))?;
        Ok(Self {
            shared,
            worker: Mutex::new(Some(worker)),
        })
    }

    /// Waits until the worker has served flush number `ticket` (or finished), at most `timeout`.
    fn wait_done(&self, until: impl Fn(&State) -> bool, timeout: Duration) -> OTelSdkResult {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        while !until(&st) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(OTelSdkError::Timeout(timeout));
            }
            st = self
                .shared
                .done
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if st.last_export_failed {
            Err(OTelSdkError::InternalFailure(
                "the last log export failed".into(),
            ))
        } else {
            Ok(())
        }
    }
}

impl LogProcessor for BackPressureLogProcessor {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        let item = (record.clone(), scope.clone());
        let sh = &*self.shared;
        let mut st = sh.lock();
        while st.queue.len() >= sh.cfg.max_queue {
            if !st.worth_waiting() {
                drop(st);
                sh.health.log_records_dropped(1);
                return;
            }
            sh.work.notify_one();
            // A timeout, so that an export running past STALL_BOUND is noticed without a signal.
            st = sh
                .room
                .wait_timeout(st, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        st.queue.push_back(item);
        if st.queue.len() == sh.cfg.max_batch {
            sh.work.notify_one();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        let ticket = {
            let mut st = self.shared.lock();
            st.flushes_wanted += 1;
            st.flushes_wanted
        };
        self.shared.work.notify_one();
        // The SDK's own processor waits 5 s as well; the caller's shutdown bound still applies on top.
        self.wait_done(
            |s| s.flushes_done >= ticket || s.worker_done,
            Duration::from_secs(5),
        )
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        {
            let mut st = self.shared.lock();
            if st.shutdown {
                return Err(OTelSdkError::AlreadyShutdown);
            }
            st.shutdown = true;
        }
        self.shared.work.notify_one();
        self.shared.room.notify_all();
        let result = self.wait_done(|s| s.worker_done, timeout);
        if result.is_ok() {
            if let Some(h) = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take() {
                let _ = h.join();
            }
        }
        result
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.shared.lock().new_resource = Some(resource.clone());
    }
}

/// The worker: exports a batch when one is full, every `delay`, on flush and at shutdown (until the queue is empty).
fn export_loop<E: LogExporter>(mut exporter: E, sh: &Shared) {
    let mut last_export = Instant::now();
    let mut batch: Vec<Item> = Vec::with_capacity(sh.cfg.max_batch);
    loop {
        let mut st = sh.lock();
        loop {
            let due = last_export + sh.cfg.delay;
            let now = Instant::now();
            if st.queue.len() >= sh.cfg.max_batch
                || st.flushes_wanted > st.flushes_done
                || st.shutdown
                || now >= due
            {
                break;
            }
            st = sh
                .work
                .wait_timeout(st, due - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if let Some(r) = st.new_resource.take() {
            exporter.set_resource(&r);
        }
        if st.queue.is_empty() {
            last_export = Instant::now();
            st.flushes_done = st.flushes_wanted;
            if st.shutdown {
                break;
            }
            drop(st);
            sh.done.notify_all();
            continue;
        }
        let n = st.queue.len().min(sh.cfg.max_batch);
        batch.extend(st.queue.drain(..n));
        st.exporting_since = Some(Instant::now());
        drop(st);
        sh.room.notify_all();

        let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
            batch.iter().map(|(r, s)| (r, s)).collect();
        let result = futures_executor::block_on(exporter.export(LogBatch::new(&refs)));
        drop(refs);
        batch.clear();
        last_export = Instant::now();

        let mut st = sh.lock();
        st.exporting_since = None;
        st.last_export_failed = result.is_err();
        drop(st);
        sh.room.notify_all();
    }
    let _ = exporter.shutdown();
    sh.lock().worker_done = true;
    sh.done.notify_all();
    sh.room.notify_all();
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
    use opentelemetry_sdk::logs::{LogBatch, SdkLoggerProvider};

    use super::*;

    /// Counts what it is given; fails every export when `fail` is set; takes `pause` per export.
    #[derive(Debug, Clone, Default)]
    struct Counting {
        received: Arc<AtomicUsize>,
        fail: bool,
        pause: Duration,
    }

    impl LogExporter for Counting {
        async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
            std::thread::sleep(self.pause);
            if self.fail {
                return Err(OTelSdkError::InternalFailure("refused".into()));
            }
            self.received
                .fetch_add(batch.iter().count(), Ordering::Relaxed);
            Ok(())
        }
    }

    fn emit_all(exporter: Counting, n: usize) -> (Arc<ExportHealth>, Duration, OTelSdkResult) {
        let health = Arc::new(ExportHealth::default());
        let cfg = LogQueueConfig {
            max_queue: 8,
            max_batch: 4,
            delay: Duration::from_millis(50),
        };
        let processor =
            BackPressureLogProcessor::new(exporter, cfg, health.clone()).expect("worker");
        let provider = SdkLoggerProvider::builder()
            .with_log_processor(processor)
            .build();
        let logger = provider.logger("test");
        let start = Instant::now();
        for i in 0..n {
            let mut r = logger.create_log_record();
            r.set_body(format!("line {i}").into());
            logger.emit(r);
        }
        let took = start.elapsed();
        (health, took, provider.shutdown())
    }

    #[test]
    fn a_slow_exporter_that_answers_gets_every_record() {
        let exporter = Counting {
            pause: Duration::from_millis(2),
            ..Counting::default()
        };
        let received = exporter.received.clone();
        let (health, _, shutdown) = emit_all(exporter, 500);
        assert!(shutdown.is_ok(), "{shutdown:?}");
        assert_eq!(received.load(Ordering::Relaxed), 500);
        assert_eq!(health.logs_dropped(), 0);
    }

    #[test]
    fn a_failing_exporter_drops_and_counts_instead_of_holding_the_caller() {
        let exporter = Counting {
            fail: true,
            pause: Duration::from_millis(20),
            ..Counting::default()
        };
        let (health, took, shutdown) = emit_all(exporter, 500);
        assert!(shutdown.is_err(), "the failure is reported at shutdown");
        // Waiting for every export of 4 records would take 500 / 4 × 20 ms = 2.5 s: the caller stops waiting once
        // an export has failed (this bounds the count, not a duration).
        assert!(health.logs_dropped() > 0, "nothing dropped in {took:?}");
        assert!(health.logs_dropped() <= 500 - 8);
    }
}
