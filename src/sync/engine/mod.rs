//! Runs jobs: pipelines one after another in a mode. This file holds the engine handle, the command loop (`serve`)
//! with the registry of running pipelines (any clone can cancel), and the job loop; one pipeline run lives in
//! `pipeline_run.rs`, one Sling attempt in `attempt.rs`, the noop checks in `../noop.rs`.
//! Knows nothing about terminals or exporters: it reports through `SyncEvent`s and `tracing` (names in `../spans.rs`).

mod attempt;
mod pipeline_run;
mod verify_run;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span};

use super::event::{Command, EventSink, JobReport, Mode, PipelineReport, Status, SyncEvent};
use super::metrics;
use super::noop::{Noop, NoopShared};
use super::pipeline::Pipeline;
use super::redact::Redactor;
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
        pipelines: Vec<Pipeline>,
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

    /// Runs one job to the end: one trace, pipelines one after another.
    pub async fn run_job(
        &self,
        job: JobSpec,
        sink: &EventSink,
        cancel: CancellationToken,
    ) -> JobReport {
        let started = Instant::now();
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
        let report = async {
            let noop = if job.mode == Mode::Noop {
                self.noop().prepare(&job, &cancel).await
            } else {
                NoopShared::default()
            };
            let mut reports = Vec::with_capacity(job.pipelines.len());
            for (p, token) in job.pipelines.iter().zip(tokens) {
                let r = if token.is_cancelled() {
                    let r = self.cancelled_before_start(&job, p);
                    self.record(&r);
                    r
                } else {
                    self.run_pipeline(&job, p, &noop, sink, token).await
                };
                // Out of the registry before the front-end hears the pipeline ended, so a `Run` sent in answer to
                // `PipelineFinished` is never refused as "already running".
                self.running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&p.name);
                sink.send(SyncEvent::PipelineFinished { report: r.clone() });
                reports.push(r);
            }
            let status =
                if reports.iter().any(|r| r.status == Status::Cancelled) || cancel.is_cancelled() {
                    Status::Cancelled
                } else if reports.iter().all(|r| r.status == Status::Success) {
                    Status::Success
                } else {
                    Status::Failed
                };
            let rows = reports.iter().map(|r| r.rows).sum();
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
            metrics::job_finished(status.as_str(), job.mode.as_str(), duration_seconds);
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

    fn noop(&self) -> Noop {
        Noop::new(self.cfg.clone(), self.redactor.clone())
    }

    fn cancelled_before_start(&self, job: &JobSpec, p: &Pipeline) -> PipelineReport {
        let now = chrono::Utc::now();
        PipelineReport {
            sync_job_id: job.sync_job_id.clone(),
            pipeline: p.name.clone(),
            mode: job.mode,
            status: Status::Cancelled,
            rows: 0,
            streams: BTreeMap::new(),
            attempts: 0,
            started_at: now,
            finished_at: now,
            duration_seconds: 0.0,
            error: Some(self.redactor.redacted("cancelled before it started")),
            checks: Vec::new(),
            verify: None,
        }
    }

    fn record(&self, r: &PipelineReport) {
        if let Err(e) = self.cfg.state.record(r) {
            let text = format!("cannot record the run in the history journal: {e}");
            spans::pipeline_note(
                &r.pipeline,
                tracing::Level::ERROR,
                &self.redactor.redacted(&text),
            );
        }
    }
}
