//! The log-record queue: every Sling line reaches the collector while the collector answers.
//!
//! The SDK's `BatchLogProcessor` drops a record whenever its queue is full, which a Sling flood does within
//! milliseconds even with a collector that answers at once (21 % of 100k lines were lost). Here, as with batch stdout,
//! a full queue makes the engine wait — it stops reading Sling's pipe and Sling waits — for as long as exports
//! succeed. When the last export failed, or the one in progress has run longer than `STALL_BOUND`, records that do not
//! fit are dropped at once and counted in `ExportHealth`: a dead or silent collector never holds a sync back by more
//! than that bound.
//!
//! Records arrive in one of two forms (`Form`): the engine's own events as captured (see `log_layer`), which the export
//! thread turns into protobuf (`Transcode`), and Sling's lines already encoded, which go into the request as they are.
//! A batch is a buffer of them in runs of one scope and form, sent as one request.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry_sdk::error::OTelSdkError;

use super::proto;
use crate::telemetry::config::LogQueueConfig;
use crate::telemetry::health::ExportHealth;

/// How long the engine waits on one export in progress before it stops waiting and drops what does not fit.
pub const STALL_BOUND: Duration = Duration::from_secs(1);

/// A batch holds at most this much (besides `max_batch` records): one request stays near 1 MiB whatever the lines'
/// length. 512 Sling lines of a usual length take ~100 KiB; at Sling's 16 KiB line limit a batch of 512 would be
/// 8 MiB, and the queue of 2,048 records 32 MiB.
const MAX_BATCH_BYTES: usize = 1 << 20;
/// The queue holds at most this much (besides `max_queue` records), so that long lines and a slow collector cannot
/// hold tens of MiB: with both (and span events off), the wrapper reached 62 MiB before this bound.
const MAX_QUEUE_BYTES: usize = 4 * MAX_BATCH_BYTES;
/// The largest batch buffer kept for reuse.
const SPARE_BYTES: usize = 2 * MAX_BATCH_BYTES;

/// Sends one encoded `ExportLogsServiceRequest`. Owned bytes: the HTTP and gRPC clients take them as they are (a
/// retry shares them), where a borrowed slice was copied again for every request.
pub trait Export: Send + 'static {
    fn export(&mut self, request: Bytes) -> Result<(), String>;
}

/// Turns the records of a batch, as queued, into encoded `log_records` fields; runs on the export thread, which is
/// idle about half of a flood, not on the engine's, which a flood keeps busy.
pub trait Transcode: Send + 'static {
    fn transcode(&mut self, queued: &[u8], out: &mut Vec<u8>);
}

/// What every request carries besides the records: the encoded resource, its schema URL, the scope names.
pub struct Framing {
    pub resource: Vec<u8>,
    pub schema_url: String,
    pub scopes: &'static [&'static str],
}

/// How a record was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// As `log_layer` captured an event: the export thread transcodes it.
    Captured,
    /// Already a `log_records` field: copied into the request as it is.
    Encoded,
}

/// Up to `max_batch` records (`log_records` fields, or captured records framed as such), in runs of one scope and
/// form each.
#[derive(Default)]
struct Batch {
    records: Vec<u8>,
    count: usize,
    /// (scope, form, end of the run in `records`).
    runs: Vec<(usize, Form, usize)>,
}

impl Batch {
    /// Appends the record that `encode` writes (in place, see `proto::message_with`).
    fn push_with(&mut self, scope: usize, form: Form, encode: impl FnOnce(&mut Vec<u8>)) {
        proto::message_with(&mut self.records, 2, encode);
        match self.runs.last_mut() {
            Some((s, f, end)) if *s == scope && *f == form => *end = self.records.len(),
            _ => self.runs.push((scope, form, self.records.len())),
        }
        self.count += 1;
    }

    fn is_full(&self, cfg: &LogQueueConfig) -> bool {
        self.count >= cfg.max_batch || self.records.len() >= MAX_BATCH_BYTES
    }

    fn clear(&mut self) {
        self.records.clear();
        self.runs.clear();
        self.count = 0;
    }
}

#[derive(Default)]
struct State {
    batches: VecDeque<Batch>,
    /// Records in `batches`, and their bytes.
    queued: usize,
    queued_bytes: usize,
    /// The most `queued_bytes` has been.
    #[cfg(test)]
    peak_queued_bytes: usize,
    /// Emptied batches kept for reuse with their buffers, so that a flood neither allocates nor grows (copying) a
    /// buffer per batch. At most one more than the queue holds.
    spare: Vec<Batch>,
    /// When the export in progress started.
    exporting_since: Option<Instant>,
    last_export_failed: bool,
    /// Flush requests made and served (a flush is served when the queue was empty after an export).
    flushes_wanted: u64,
    flushes_done: u64,
    shutdown: bool,
    worker_done: bool,
}

impl State {
    fn full(&self, cfg: &LogQueueConfig) -> bool {
        self.queued >= cfg.max_queue || self.queued_bytes >= MAX_QUEUE_BYTES
    }

    /// Whether a batch is ready to go: the first is full, or another has begun behind it.
    fn batch_ready(&self, cfg: &LogQueueConfig) -> bool {
        self.batches.len() > 1 || self.batches.front().is_some_and(|b| b.is_full(cfg))
    }

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
pub struct LogQueue {
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl LogQueue {
    /// Starts the export thread, which owns `exporter` and `transcoder`.
    pub fn start<E: Export, T: Transcode>(
        exporter: E,
        transcoder: T,
        framing: Framing,
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
            .spawn(move || export_loop(exporter, transcoder, &framing, &for_worker))?;
        Ok(Self {
            shared,
            worker: Mutex::new(Some(worker)),
        })
    }

    /// Queues one `LogRecord` of scope number `scope`, to be transcoded; waits while the queue is full and the
    /// collector answers, drops (and counts) otherwise.
    #[cfg(test)]
    pub fn push(&self, scope: usize, record: &[u8]) {
        self.push_with(scope, Form::Captured, |out| out.extend_from_slice(record));
    }

    /// Queues the `LogRecord` of scope number `scope` that `encode` writes in `form`, straight into the batch (under
    /// the queue's lock: the export thread takes it once per batch). Waits while the queue is full and the collector
    /// answers; otherwise drops and counts the record, and `encode` is not called.
    pub fn push_with(&self, scope: usize, form: Form, encode: impl FnOnce(&mut Vec<u8>)) {
        let sh = &*self.shared;
        let mut st = sh.lock();
        while st.full(&sh.cfg) {
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
        if st.batches.back().is_none_or(|b| b.is_full(&sh.cfg)) {
            let fresh = st.spare.pop().unwrap_or_default();
            st.batches.push_back(fresh);
        }
        let st = &mut *st;
        if let Some(batch) = st.batches.back_mut() {
            let before = batch.records.len();
            batch.push_with(scope, form, encode);
            st.queued += 1;
            st.queued_bytes += batch.records.len() - before;
            #[cfg(test)]
            {
                st.peak_queued_bytes = st.peak_queued_bytes.max(st.queued_bytes);
            }
            if batch.is_full(&sh.cfg) {
                sh.work.notify_one();
            }
        }
    }

    #[cfg(test)]
    fn peak_queued_bytes(&self) -> usize {
        self.shared.lock().peak_queued_bytes
    }

    /// Waits until `until` holds (or the worker finished), at most `timeout`.
    fn wait_done(&self, until: impl Fn(&State) -> bool, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        while !until(&st) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("log export timed out after {timeout:?}"));
            }
            st = self
                .shared
                .done
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if st.last_export_failed {
            Err("the last log export failed".into())
        } else {
            Ok(())
        }
    }

    /// Exports everything queued so far; waits at most 5 s (as the SDK's processor does).
    pub fn force_flush(&self) -> Result<(), String> {
        let ticket = {
            let mut st = self.shared.lock();
            st.flushes_wanted += 1;
            st.flushes_wanted
        };
        self.shared.work.notify_one();
        self.wait_done(
            |s| s.flushes_done >= ticket || s.worker_done,
            Duration::from_secs(5),
        )
    }

    /// Exports what is queued and stops the worker, waiting at most `timeout`.
    pub fn shutdown_with_timeout(&self, timeout: Duration) -> Result<(), String> {
        {
            let mut st = self.shared.lock();
            if st.shutdown {
                return Err("already shut down".into());
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
}

/// The worker: exports a batch when one is full, every `delay`, on flush and at shutdown (until the queue is empty).
fn export_loop<E: Export, T: Transcode>(
    mut exporter: E,
    mut transcoder: T,
    framing: &Framing,
    sh: &Shared,
) {
    let mut last_export = Instant::now();
    // Transcoded records, kept from batch to batch unless a batch of long lines grew it.
    let mut transcoded = Vec::new();
    loop {
        let mut st = sh.lock();
        loop {
            let due = last_export + sh.cfg.delay;
            let now = Instant::now();
            if st.batch_ready(&sh.cfg)
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
        let Some(mut batch) = st.batches.pop_front() else {
            last_export = Instant::now();
            st.flushes_done = st.flushes_wanted;
            if st.shutdown {
                break;
            }
            drop(st);
            sh.done.notify_all();
            continue;
        };
        st.queued -= batch.count;
        st.queued_bytes -= batch.records.len();
        st.exporting_since = Some(Instant::now());
        drop(st);
        sh.room.notify_all();

        // Captured runs are transcoded first; encoded runs (a Sling flood's every record) are then copied once, from
        // the batch into the request.
        transcoded.clear();
        let mut ends = Vec::with_capacity(batch.runs.len());
        let mut start = 0;
        for (_, form, end) in &batch.runs {
            if *form == Form::Captured {
                transcoder.transcode(&batch.records[start..*end], &mut transcoded);
            }
            ends.push(transcoded.len());
            start = *end;
        }
        let (mut start, mut from) = (0, 0);
        let runs: Vec<(&str, &[u8])> = batch
            .runs
            .iter()
            .zip(&ends)
            .map(|((scope, form, end), upto)| {
                let name = framing.scopes.get(*scope).copied().unwrap_or("");
                let records = match form {
                    Form::Captured => &transcoded[from..*upto],
                    Form::Encoded => &batch.records[start..*end],
                };
                (start, from) = (*end, *upto);
                (name, records)
            })
            .collect();
        let mut request = Vec::new();
        proto::request(&mut request, &framing.resource, &framing.schema_url, &runs);
        drop(runs);
        if transcoded.capacity() > SPARE_BYTES {
            transcoded = Vec::new();
        }
        let result = exporter.export(Bytes::from(request));
        sh.health.observe(
            "logs",
            &result
                .as_ref()
                .map(|_| ())
                .map_err(|e| OTelSdkError::InternalFailure(e.clone())),
        );
        batch.clear();
        last_export = Instant::now();

        let mut st = sh.lock();
        // A batch grown by long lines is let go: kept, it would hold that memory for the rest of the run.
        if batch.records.capacity() <= SPARE_BYTES {
            st.spare.push(batch);
        }
        st.exporting_since = None;
        st.last_export_failed = result.is_err();
        drop(st);
        sh.room.notify_all();
    }
    drop(exporter);
    sh.lock().worker_done = true;
    sh.done.notify_all();
    sh.room.notify_all();
}

#[cfg(test)]
mod tests;
