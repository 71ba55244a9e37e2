//! Runs jobs: pipelines in a mode, up to `concurrency` at once, stalest first, none started after the job deadline.
//! This file holds the engine handle, the command loop (`serve`) with the registry of running pipelines (any clone
//! can cancel), and the job loop; the start order lives in `schedule.rs`, one pipeline run in `pipeline_run.rs`, one
//! Sling attempt in `attempt.rs`, the noop checks in `../noop.rs`.
//! Knows nothing about terminals or exporters: it reports through `SyncEvent`s and `tracing` (names in `../spans.rs`).

mod attempt;
mod pipeline_run;
mod schedule;
pub(crate) mod verify_run;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Waits until the job deadline, or forever when there is none.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span};

use super::event::{Command, EventSink, JobReport, Mode, PipelineReport, Status, SyncEvent};
use super::metrics;
use super::noop::{Noop, NoopShared};
use super::pipeline::Pipeline;
use super::redact::{Redacted, Redactor};
use super::retry::RetryPolicy;
use super::sling::{ChildEnv, SlingCommand};
use super::spans;
use super::state::StateStore;
use super::verify::VerifyMode;

/// Everything the engine needs, already validated.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub mission_cluster_id: String,
    pub sling_bin: PathBuf,
    pub state: StateStore,
    pub retry: RetryPolicy,
    pub attempt_timeout: Duration,
    pub cancel_grace: Duration,
    /// Pipelines of one job running at once (≥ 1; 1 = one after another).
    pub concurrency: usize,
    /// After this much of a job, no pipeline starts; the ones not started are reported skipped.
    pub job_deadline: Option<Duration>,
    pub child_env: ChildEnv,
    /// `SYNC_VERIFY`: reconcile each successful pipeline run.
    pub verify: VerifyMode,
    /// `SYNC_VERIFY_TIMEOUT`: bound of one pipeline's verification.
    pub verify_timeout: Duration,
    /// The process environment, for resolving connection names in noop.
    pub env: BTreeMap<String, String>,
}

impl EngineConfig {
    /// A Sling command with this configuration's binary, child environment and cancel grace.
    pub(crate) fn sling(&self, args: Vec<OsString>, timeout: Duration) -> SlingCommand {
        SlingCommand::new(
            self.sling_bin.clone(),
            args,
            &self.child_env,
            timeout,
            self.cancel_grace,
        )
    }
}

/// One job to run.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub sync_job_id: String,
    pub mode: Mode,
    pub pipelines: Vec<Pipeline>,
}

/// The engine. Cheap to clone; clones share the table of running pipelines, so any clone can cancel.
#[derive(Clone)]
pub struct Engine {
    cfg: Arc<EngineConfig>,
    redactor: Arc<Redactor>,
    running: Arc<Mutex<HashMap<String, CancellationToken>>>,
}

impl Engine {
    pub fn new(cfg: EngineConfig, redactor: Redactor) -> Self {
        Self {
            cfg: Arc::new(cfg),
            redactor: Arc::new(redactor),
            running: Default::default(),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Cancels a running pipeline; `false` when it is not running in this process.
    pub fn cancel(&self, pipeline: &str) -> bool {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running
            .get(pipeline)
            .map(CancellationToken::cancel)
            .is_some()
    }

    pub fn cancel_all(&self) {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.values().for_each(CancellationToken::cancel);
    }

    pub fn is_running(&self, pipeline: &str) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(pipeline)
    }

    /// Serves front-end commands until `shutdown`: each `Run` becomes a job of its own (new job id, new trace).
    /// Every pipeline a `Run` names is answered: by the events of its job, or by `RunRefused`.
    pub async fn serve(
        self,
        mut commands: tokio::sync::mpsc::UnboundedReceiver<Command>,
        mut pipelines: Vec<Pipeline>,
        sink: EventSink,
        shutdown: CancellationToken,
    ) {
        let mut jobs = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                cmd = commands.recv() => match cmd {
                    None => break,
                    Some(Command::Run { pipelines: names, mode }) => {
                        let Some(job) = self.accept_run(&pipelines, &names, mode, &sink) else {
                            continue;
                        };
                        let (engine, sink, cancel) = (self.clone(), sink.clone(), shutdown.child_token());
                        jobs.spawn(async move { engine.run_job(job, &sink, cancel).await });
                    }
                    Some(Command::Cancel { pipeline }) => { self.cancel(&pipeline); }
                    Some(Command::CancelAll) => self.cancel_all(),
                    Some(Command::SetPipelines(list)) => pipelines = list,
                },
                Some(_) = jobs.join_next(), if !jobs.is_empty() => {}
            }
        }
        self.cancel_all();
        while jobs.join_next().await.is_some() {}
    }

    /// The job for a `Run`, or `None` when nothing of it can start; every name left out gets a `RunRefused`.
    fn accept_run(
        &self,
        known: &[Pipeline],
        names: &[String],
        mode: Mode,
        sink: &EventSink,
    ) -> Option<JobSpec> {
        let mut selected = Vec::new();
        for name in names {
            let reason = match known.iter().find(|p| &p.name == name) {
                None => "unknown pipeline".to_string(),
                Some(_) if self.is_running(name) => {
                    "already queued or running in this process".to_string()
                }
                Some(p) => {
                    selected.push(p.clone());
                    continue;
                }
            };
            sink.send(SyncEvent::RunRefused {
                pipeline: name.clone(),
                reason,
            });
        }
        (!selected.is_empty()).then(|| JobSpec {
            sync_job_id: uuid::Uuid::new_v4().to_string(),
            mode,
            pipelines: selected,
        })
    }

    /// Runs one job to the end: one trace, up to `concurrency` pipelines at once (each in a task of its own, its
    /// span a child of the job span), stalest first; after the job deadline nothing new starts. The report lists the
    /// pipelines in the job's order, whatever order they ran in.
    pub async fn run_job(
        &self,
        job: JobSpec,
        sink: &EventSink,
        cancel: CancellationToken,
    ) -> JobReport {
        let started = Instant::now();
        let deadline = self
            .cfg
            .job_deadline
            .map(|d| tokio::time::Instant::now() + d);
        let span = spans::job_span(
            &job.sync_job_id,
            &self.cfg.mission_cluster_id,
            job.mode,
            job.pipelines.len(),
        );
        // Every pipeline of the job gets its cancel token before anyone hears of the job, so a queued one can be
        // cancelled too.
        let tokens: Vec<CancellationToken> = {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            job.pipelines
                .iter()
                .map(|p| {
                    running
                        .entry(p.name.clone())
                        .or_insert_with(|| cancel.child_token())
                        .clone()
                })
                .collect()
        };
        sink.send(SyncEvent::JobStarted {
            sync_job_id: job.sync_job_id.clone(),
            mode: job.mode,
            pipelines: job.pipelines.iter().map(|p| p.name.clone()).collect(),
        });
        let job = Arc::new(job);
        let report = async {
            let noop = Arc::new(if job.mode == Mode::Noop {
                self.noop().prepare(&job, &cancel).await
            } else {
                NoopShared::default()
            });
            // Read once per job: the start order and the gauges' last success both come from it.
            let last_success = Arc::new(Mutex::new(self.cfg.state.last_successes()));
            let order = {
                let known = last_success.lock().unwrap_or_else(|e| e.into_inner());
                schedule::stalest_first(&job.pipelines, &known)
            };
            let slots = Arc::new(tokio::sync::Semaphore::new(self.cfg.concurrency.max(1)));
            let mut running = tokio::task::JoinSet::new();
            let mut reports: Vec<Option<PipelineReport>> = vec![None; job.pipelines.len()];
            let mut past_deadline = false;
            for i in order {
                let (p, token) = (&job.pipelines[i], tokens[i].clone());
                let slot = if past_deadline {
                    None
                } else {
                    tokio::select! {
                        biased;
                        _ = token.cancelled() => None,
                        _ = sleep_until(deadline) => {
                            past_deadline = true;
                            None
                        }
                        slot = slots.clone().acquire_owned() => slot.ok(),
                    }
                };
                let Some(slot) = slot else {
                    let r = if past_deadline && !token.is_cancelled() {
                        self.skipped(&job, p)
                    } else {
                        self.cancelled_before_start(&job, p)
                    };
                    self.pipeline_done(&r, sink, &last_success);
                    reports[i] = Some(r);
                    continue;
                };
                let (engine, job, noop, sink, last_success) = (
                    self.clone(),
                    job.clone(),
                    noop.clone(),
                    sink.clone(),
                    last_success.clone(),
                );
                running.spawn(
                    async move {
                        let r = engine
                            .run_pipeline(&job, &job.pipelines[i], &noop, &sink, token)
                            .await;
                        drop(slot);
                        engine.pipeline_done(&r, &sink, &last_success);
                        (i, r)
                    }
                    .instrument(Span::current()),
                );
            }
            while let Some(done) = running.join_next().await {
                if let Ok((i, r)) = done {
                    reports[i] = Some(r);
                }
            }
            // A task that panicked left no report: say so rather than drop the pipeline from the job.
            let reports: Vec<PipelineReport> = reports
                .into_iter()
                .zip(job.pipelines.iter())
                .map(|(r, p)| r.unwrap_or_else(|| self.lost(&job, p)))
                .collect();
            let status =
                if reports.iter().any(|r| r.status == Status::Cancelled) || cancel.is_cancelled() {
                    Status::Cancelled
                } else if reports.iter().all(|r| r.status == Status::Success) {
                    Status::Success
                } else {
                    Status::Failed
                };
            let rows = reports
                .iter()
                .fold(0u64, |sum, r| sum.saturating_add(r.rows));
            let duration_seconds = started.elapsed().as_secs_f64();
            let failed: Vec<&str> = reports
                .iter()
                .filter(|r| r.status != Status::Success)
                .map(|r| r.pipeline.as_str())
                .collect();
            spans::record_outcome(
                &Span::current(),
                status,
                rows,
                Some(duration_seconds),
                &format!("{status}: {}", failed.join(", ")),
            );
            spans::job_finished(&job.sync_job_id, status, rows, duration_seconds);
            metrics::job_finished(
                &self.cfg.mission_cluster_id,
                status.as_str(),
                job.mode.as_str(),
                duration_seconds,
            );
            JobReport {
                sync_job_id: job.sync_job_id.clone(),
                mode: job.mode,
                status,
                rows,
                duration_seconds,
                pipelines: reports,
            }
        }
        .instrument(span)
        .await;
        sink.send(SyncEvent::JobFinished {
            report: report.clone(),
        });
        report
    }

    /// A pipeline is done with in this job: out of the registry before the front-end hears it ended (so a `Run` sent
    /// in answer to `PipelineFinished` is never refused as "already running"), then its batch-job gauges.
    fn pipeline_done(
        &self,
        r: &PipelineReport,
        sink: &EventSink,
        last_success: &Mutex<BTreeMap<String, chrono::DateTime<chrono::Utc>>>,
    ) {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&r.pipeline);
        sink.send(SyncEvent::PipelineFinished { report: r.clone() });
        let mut known = last_success.lock().unwrap_or_else(|e| e.into_inner());
        metrics::pipeline_gauges(&self.cfg.mission_cluster_id, r, &mut known);
    }

    fn noop(&self) -> Noop {
        Noop::new(self.cfg.clone(), self.redactor.clone())
    }

    /// The report of a pipeline the job never started. It is recorded only under the pipeline's lock: when another
    /// process holds it, that process is running the pipeline and its journal line is the one that counts.
    fn not_started(
        &self,
        job: &JobSpec,
        p: &Pipeline,
        status: Status,
        why: &str,
    ) -> PipelineReport {
        let now = chrono::Utc::now();
        let mut r = PipelineReport {
            sync_job_id: job.sync_job_id.clone(),
            pipeline: p.name.clone(),
            mode: job.mode,
            status,
            rows: 0,
            streams: BTreeMap::new(),
            attempts: 0,
            started_at: now,
            finished_at: now,
            duration_seconds: 0.0,
            error: Some(self.redactor.redacted(why)),
            checks: Vec::new(),
            verify: None,
        };
        match self.cfg.state.lock(&p.name, &job.sync_job_id) {
            Ok(_lock) => self.record(&mut r),
            Err(e) => {
                r.error = Some(self.redactor.redacted(&format!("{why}; not recorded: {e}")));
            }
        }
        r
    }

    fn cancelled_before_start(&self, job: &JobSpec, p: &Pipeline) -> PipelineReport {
        self.not_started(job, p, Status::Cancelled, "cancelled before it started")
    }

    /// Not started because the job deadline passed: reported like a pipeline run (span, output line, counter) so
    /// the trace and the dashboards show what was left for the next job.
    fn skipped(&self, job: &JobSpec, p: &Pipeline) -> PipelineReport {
        let after = self
            .cfg
            .job_deadline
            .map(|d| humantime::format_duration(d).to_string())
            .unwrap_or_default();
        let r = self.not_started(
            job,
            p,
            Status::Skipped,
            &format!(
                "deadline: not started within SYNC_JOB_DEADLINE ({after}); it goes first next time"
            ),
        );
        let span = spans::pipeline_span(
            &p.name,
            &job.sync_job_id,
            &self.cfg.mission_cluster_id,
            job.mode,
        );
        self.report_pipeline(job, &span, &r);
        r
    }

    /// A pipeline whose task ended without a report (a bug): failed, so the job does not claim success.
    fn lost(&self, job: &JobSpec, p: &Pipeline) -> PipelineReport {
        self.not_started(
            job,
            p,
            Status::Failed,
            "internal error: the pipeline's task ended without a report",
        )
    }

    /// Appends the run's history line. A run whose record cannot be written is not a success: it fails (unless it
    /// was cancelled) with an error naming the path and the OS error, so the exit code says so.
    fn record(&self, r: &mut PipelineReport) {
        if let Err(e) = self.cfg.state.record(r) {
            let text = self.redactor.redacted(&format!(
                "cannot record the run in the history journal: {e}"
            ));
            spans::pipeline_note(&r.pipeline, tracing::Level::ERROR, &text);
            if r.status != Status::Cancelled {
                r.status = Status::Failed;
            }
            r.error = Some(match &r.error {
                Some(before) => Redacted::join([&text, before], "; "),
                None => text,
            });
        }
    }
}
