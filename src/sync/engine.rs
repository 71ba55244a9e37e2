//! Runs jobs: pipelines one after another in a mode, with the retry loop, locks, history, events and tracing spans.
//! Knows nothing about terminals or exporters: it reports through `SyncEvent`s and `tracing`.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::{field::Empty, Instrument, Span};

use super::event::{
    AttemptOutcome, Check, Command, EventSink, JobReport, Mode, PipelineReport, Status, SyncEvent,
};
use super::metrics;
use super::pipeline::{self, Pipeline};
use super::redact::Redactor;
use super::retry::RetryPolicy;
use super::sling::{self, AttemptEvent, AttemptRun, SlingCommand, Termination};
use super::sling_log::Level;
use super::state::StateStore;

/// Environment changes for every Sling child.
#[derive(Debug, Clone, Default)]
pub struct ChildEnv {
    pub set: Vec<(String, String)>,
    pub remove: Vec<String>,
}

impl ChildEnv {
    /// The rules from Sling 1.4.11's observed behaviour: JSON logs on stdout, no phoning home, no `DEBUG` (any value
    /// turns on debug output that can carry secrets), no `SLING_STATE` (without a Pro token it makes Sling re-read
    /// whole tables), and no `SLING_TIMEOUT` (ours is a duration, Sling's is minutes; the wrapper enforces it).
    /// `SQLITE_PATH` points at a local sqlite3 when the user set none, which avoids a download attempt.
    pub fn for_sling(env: &BTreeMap<String, String>) -> Self {
        let mut set = vec![
            ("SLING_LOGGING".to_string(), "JSON".to_string()),
            ("SLING_DISABLE_TELEMETRY".to_string(), "true".to_string()),
        ];
        if !env.contains_key("SQLITE_PATH") {
            if let Some(p) = find_on_path("sqlite3", env.get("PATH").map(String::as_str)) {
                set.push(("SQLITE_PATH".to_string(), p.display().to_string()));
            }
        }
        let remove = ["DEBUG", "SLING_STATE", "SLING_TIMEOUT"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        Self { set, remove }
    }
}

fn find_on_path(bin: &str, path: Option<&str>) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

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
    /// The process environment, for resolving connection names in noop.
    pub env: BTreeMap<String, String>,
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

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
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
                        let selected: Vec<Pipeline> =
                            pipelines.iter().filter(|p| names.contains(&p.name) && !self.is_running(&p.name)).cloned().collect();
                        if selected.is_empty() {
                            continue;
                        }
                        let job = JobSpec { sync_job_id: uuid::Uuid::new_v4().to_string(), mode, pipelines: selected };
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

    /// Runs one job to the end: one trace, pipelines one after another.
    pub async fn run_job(
        &self,
        job: JobSpec,
        sink: &EventSink,
        cancel: CancellationToken,
    ) -> JobReport {
        let started = Instant::now();
        let span = tracing::info_span!(
            parent: None,
            "sync.job",
            sync_job_id = %job.sync_job_id,
            mission_cluster_id = %self.cfg.mission_cluster_id,
            sync_mode = job.mode.as_str(),
            pipelines = job.pipelines.len() as i64,
            status = Empty,
            rows_synced = Empty,
            duration_seconds = Empty,
            otel.status_code = Empty,
            otel.status_description = Empty,
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
                self.prepare_noop(&job, &cancel).await
            } else {
                NoopShared {
                    env_checks: Vec::new(),
                    connections: Default::default(),
                }
            };
            let mut reports = Vec::with_capacity(job.pipelines.len());
            let mut last_success = self.cfg.state.last_successes();
            for (p, token) in job.pipelines.iter().zip(tokens) {
                let r = if token.is_cancelled() {
                    let r = self.cancelled_before_start(&job, p);
                    self.record(&r);
                    sink.send(SyncEvent::PipelineFinished { report: r.clone() });
                    r
                } else {
                    self.run_pipeline(&job, p, &noop, sink, token).await
                };
                self.running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&p.name);
                metrics::pipeline_gauges(&self.cfg.mission_cluster_id, &r, &mut last_success);
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
            record_outcome(
                &Span::current(),
                status,
                rows,
                Some(duration_seconds),
                &format!("{status}: {}", failed.join(", ")),
            );
            tracing::info!(
                target: "sync",
                sync_job_id = %job.sync_job_id,
                status = status.as_str(),
                rows_synced = rows as i64,
                duration_seconds,
                "job finished"
            );
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
            error: Some("cancelled before it started".into()),
            checks: Vec::new(),
        }
    }

    /// Sling's start-up (about 0.3 s) dominates noop, so the version check and one `conns test` per distinct
    /// connection name run side by side (at most four Sling processes) before the pipelines are looked at.
    async fn prepare_noop(&self, job: &JobSpec, cancel: &CancellationToken) -> NoopShared {
        let env_file = pipeline::sling_env_file(&self.cfg.env);
        let names: std::collections::BTreeSet<String> = job
            .pipelines
            .iter()
            .filter_map(|p| p.replication.as_ref().ok())
            .flat_map(|r| [r.source.clone(), r.target.clone()])
            .flatten()
            .filter(|c| {
                matches!(
                    pipeline::resolve_connection(c, &self.cfg.env, env_file.as_deref()),
                    pipeline::ConnectionRef::EnvVar(_) | pipeline::ConnectionRef::EnvFile(_)
                )
            })
            .collect();
        let limit = Arc::new(tokio::sync::Semaphore::new(4));
        let mut tests = tokio::task::JoinSet::new();
        for name in names {
            let (engine, cancel, limit) = (self.clone(), cancel.clone(), limit.clone());
            tests.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let check = engine.conns_test(&name, &cancel).await;
                (name, check)
            });
        }
        let env_checks = self.environment_checks().await;
        let mut connections = HashMap::new();
        while let Some(Ok((name, check))) = tests.join_next().await {
            connections.insert(name, check);
        }
        NoopShared {
            env_checks,
            connections: tokio::sync::Mutex::new(connections),
        }
    }

    /// Checks shared by every pipeline in noop: Sling runnable, state path writable.
    async fn environment_checks(&self) -> Vec<Check> {
        let mut checks = Vec::new();
        let version = tokio::process::Command::new(&self.cfg.sling_bin)
            .arg("--version")
            .stdin(std::process::Stdio::null())
            .env("SLING_DISABLE_TELEMETRY", "true")
            .kill_on_drop(true)
            .output();
        let check = match tokio::time::timeout(Duration::from_secs(30), version).await {
            Ok(Ok(out)) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stdout).to_string()
                    + &String::from_utf8_lossy(&out.stderr);
                let v = text
                    .lines()
                    .find(|l| l.contains("Version"))
                    .unwrap_or("")
                    .trim()
                    .to_string();
                Check {
                    name: "sling".into(),
                    ok: true,
                    warning: false,
                    detail: format!("SLING_BIN {} runs: {v}", self.cfg.sling_bin.display()),
                }
            }
            Ok(Ok(out)) => Check {
                name: "sling".into(),
                ok: false,
                warning: false,
                detail: format!(
                    "SLING_BIN {} --version exited with {}",
                    self.cfg.sling_bin.display(),
                    out.status
                ),
            },
            Ok(Err(e)) => Check {
                name: "sling".into(),
                ok: false,
                warning: false,
                detail: format!("SLING_BIN {} cannot run: {e}", self.cfg.sling_bin.display()),
            },
            Err(_) => Check {
                name: "sling".into(),
                ok: false,
                warning: false,
                detail: format!(
                    "SLING_BIN {} --version did not answer in 30s",
                    self.cfg.sling_bin.display()
                ),
            },
        };
        checks.push(check);
        checks.push(match self.cfg.state.check_writable() {
            Ok(()) => Check {
                name: "state".into(),
                ok: true,
                warning: false,
                detail: format!(
                    "SLING_STATE_PATH {} is writable",
                    self.cfg.state.root().display()
                ),
            },
            Err(e) => Check {
                name: "state".into(),
                ok: false,
                warning: false,
                detail: format!("SLING_STATE_PATH: {e}"),
            },
        });
        checks
    }

    async fn run_pipeline(
        &self,
        job: &JobSpec,
        p: &Pipeline,
        noop: &NoopShared,
        sink: &EventSink,
        cancel: CancellationToken,
    ) -> PipelineReport {
        let span = tracing::info_span!(
            "sync.pipeline",
            pipeline = %p.name,
            sync_job_id = %job.sync_job_id,
            mission_cluster_id = %self.cfg.mission_cluster_id,
            sync_mode = job.mode.as_str(),
            status = Empty,
            rows_synced = Empty,
            duration_seconds = Empty,
            attempts = Empty,
            otel.status_code = Empty,
            otel.status_description = Empty,
        );
        let report = self
            .run_pipeline_inner(job, p, noop, sink, &cancel)
            .instrument(span.clone())
            .await;

        record_outcome(
            &span,
            report.status,
            report.rows,
            Some(report.duration_seconds),
            report.error.as_deref().unwrap_or(report.status.as_str()),
        );
        span.record("attempts", i64::from(report.attempts));
        span.in_scope(|| {
            tracing::info!(
                target: "sync",
                pipeline = %p.name,
                status = report.status.as_str(),
                rows_synced = report.rows as i64,
                attempts = report.attempts,
                duration_seconds = report.duration_seconds,
                error = report.error.as_deref().unwrap_or(""),
                "pipeline finished"
            );
            metrics::pipeline_finished(
                &self.cfg.mission_cluster_id,
                &p.name,
                report.status.as_str(),
                job.mode.as_str(),
                report.rows,
                report.duration_seconds,
            );
        });
        sink.send(SyncEvent::PipelineFinished {
            report: report.clone(),
        });
        report
    }

    async fn run_pipeline_inner(
        &self,
        job: &JobSpec,
        p: &Pipeline,
        noop: &NoopShared,
        sink: &EventSink,
        cancel: &CancellationToken,
    ) -> PipelineReport {
        let started_at = chrono::Utc::now();
        let started = Instant::now();
        let max_attempts = if job.mode == Mode::Noop {
            1
        } else {
            self.cfg.retry.max_attempts()
        };
        sink.send(SyncEvent::PipelineStarted {
            sync_job_id: job.sync_job_id.clone(),
            pipeline: p.name.clone(),
            mode: job.mode,
            max_attempts,
        });
        let mut report = PipelineReport {
            sync_job_id: job.sync_job_id.clone(),
            pipeline: p.name.clone(),
            mode: job.mode,
            status: Status::Failed,
            rows: 0,
            streams: BTreeMap::new(),
            attempts: 0,
            started_at,
            finished_at: started_at,
            duration_seconds: 0.0,
            error: None,
            checks: Vec::new(),
        };
        let finish = |mut r: PipelineReport| {
            r.finished_at = chrono::Utc::now();
            r.duration_seconds = started.elapsed().as_secs_f64();
            r.error = r.error.map(|e| self.redactor.redact(&e));
            r
        };

        // The lock comes first: a refused run must not touch state or history.
        let _lock = match self.cfg.state.lock(&p.name, &job.sync_job_id) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(target: "sync", pipeline = %p.name, "{e}");
                report.error = Some(e.to_string());
                return finish(report);
            }
        };

        match job.mode {
            Mode::Noop => {
                report.checks = self.noop_checks(p, noop, sink, cancel).await;
                report.attempts = 1;
                let failed: Vec<String> = report
                    .checks
                    .iter()
                    .filter(|c| !c.ok)
                    .map(|c| format!("{}: {}", c.name, c.detail))
                    .collect();
                report.status = if cancel.is_cancelled() {
                    Status::Cancelled
                } else if failed.is_empty() {
                    Status::Success
                } else {
                    Status::Failed
                };
                if !failed.is_empty() {
                    report.error = Some(failed.join("; "));
                }
            }
            Mode::Incremental | Mode::Backfill => {
                if let Some(problem) = blocking_problem(p) {
                    report.error = Some(problem);
                } else {
                    if job.mode == Mode::Backfill {
                        if let Err(e) = self.cfg.state.reset(&p.name) {
                            report.error = Some(format!("backfill: cannot clear state: {e}"));
                            let r = finish(report);
                            self.record(&r);
                            return r;
                        }
                        tracing::info!(target: "sync", pipeline = %p.name, "backfill: pipeline state cleared; every stream will be fully reloaded");
                    }
                    self.run_attempts(job, p, max_attempts, sink, cancel, &mut report)
                        .await;
                }
            }
        }
        let r = finish(report);
        self.record(&r);
        r
    }

    fn record(&self, r: &PipelineReport) {
        if let Err(e) = self.cfg.state.record(r) {
            tracing::error!(target: "sync", pipeline = %r.pipeline, "cannot record the run in the history journal: {e}");
        }
    }

    async fn run_attempts(
        &self,
        job: &JobSpec,
        p: &Pipeline,
        max_attempts: u32,
        sink: &EventSink,
        cancel: &CancellationToken,
        report: &mut PipelineReport,
    ) {
        let mut args: Vec<OsString> =
            vec!["run".into(), "-r".into(), p.path.clone().into_os_string()];
        if job.mode == Mode::Backfill {
            args.extend(["--mode".into(), "full-refresh".into()]);
        }
        let cmd = self.command(args, self.cfg.attempt_timeout);
        for attempt in 1..=max_attempts {
            report.attempts = attempt;
            let outcome = self
                .one_attempt(job, p, &cmd, attempt, max_attempts, sink, cancel)
                .await;
            report.rows += outcome.rows;
            for (s, n) in &outcome.streams {
                *report.streams.entry(s.clone()).or_default() += n;
            }
            report.status = outcome.status;
            report.error = outcome.reason.clone();
            let again =
                outcome.status == Status::Failed && outcome.retryable && attempt < max_attempts;
            sink.send(SyncEvent::AttemptFinished {
                pipeline: p.name.clone(),
                outcome,
            });
            if !again {
                break;
            }
            let delay = self.cfg.retry.next_delay(attempt);
            let at = SystemTime::now() + delay;
            tracing::warn!(
                target: "sync",
                pipeline = %p.name,
                next_attempt = attempt + 1,
                max_attempts,
                delay_seconds = delay.as_secs_f64(),
                "retry scheduled in {:.1}s",
                delay.as_secs_f64()
            );
            metrics::retry_scheduled(&self.cfg.mission_cluster_id, &p.name);
            sink.send(SyncEvent::RetryScheduled {
                pipeline: p.name.clone(),
                next_attempt: attempt + 1,
                max_attempts,
                delay,
                at,
            });
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = cancel.cancelled() => {
                    report.status = Status::Cancelled;
                    report.error = Some("cancelled while waiting to retry".into());
                    break;
                }
            }
        }
    }

    fn command(&self, args: Vec<OsString>, timeout: Duration) -> SlingCommand {
        SlingCommand {
            bin: self.cfg.sling_bin.clone(),
            args,
            env_set: self.cfg.child_env.set.clone(),
            env_remove: self.cfg.child_env.remove.clone(),
            timeout,
            grace: self.cfg.cancel_grace,
        }
    }

    /// Runs one child inside a `sling.attempt` span, forwarding its lines as events and tracing events.
    #[allow(clippy::too_many_arguments)]
    async fn one_attempt(
        &self,
        job: &JobSpec,
        p: &Pipeline,
        cmd: &SlingCommand,
        attempt: u32,
        max_attempts: u32,
        sink: &EventSink,
        cancel: &CancellationToken,
    ) -> AttemptOutcome {
        let span = tracing::info_span!(
            "sling.attempt",
            pipeline = %p.name,
            sync_job_id = %job.sync_job_id,
            attempt = i64::from(attempt),
            exit_code = Empty,
            status = Empty,
            rows_synced = Empty,
            sling_log_lines = Empty,
            otel.status_code = Empty,
            otel.status_description = Empty,
        );
        let run = self
            .spawn_and_stream(job, p, cmd, attempt, max_attempts, sink, cancel)
            .instrument(span.clone())
            .await;
        let status = match run.termination {
            Termination::Cancelled => Status::Cancelled,
            Termination::Exited(0) if !run.no_streams_matched && run.failed_streams == 0 => {
                Status::Success
            }
            _ => Status::Failed,
        };
        let retryable = status == Status::Failed && !run.permanent_error && !run.no_streams_matched;
        let reason = if status == Status::Success {
            None
        } else {
            run.reason()
        };
        if let Some(code) = run.exit_code() {
            span.record("exit_code", i64::from(code));
        }
        record_outcome(
            &span,
            status,
            run.rows,
            None,
            reason.as_deref().unwrap_or_default(),
        );
        span.record("sling_log_lines", run.lines as i64);
        AttemptOutcome {
            attempt,
            exit_code: run.exit_code(),
            status,
            rows: run.rows,
            streams: run.streams,
            reason,
            retryable,
            duration: run.duration,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn spawn_and_stream(
        &self,
        job: &JobSpec,
        p: &Pipeline,
        cmd: &SlingCommand,
        attempt: u32,
        max_attempts: u32,
        sink: &EventSink,
        cancel: &CancellationToken,
    ) -> AttemptRun {
        let mut dropped = 0u64;
        let name = p.name.as_str();
        let job_id = job.sync_job_id.as_str();
        let run = sling::run_attempt(cmd, &self.redactor, cancel, |ev| match ev {
            AttemptEvent::Spawned { pid } => {
                tracing::info!(target: "sync", pipeline = name, attempt, max_attempts, pid, "sling started");
                sink.send(SyncEvent::AttemptStarted {
                    pipeline: name.to_owned(),
                    attempt,
                    max_attempts,
                    pid: Some(pid),
                });
            }
            AttemptEvent::Line(line) => {
                emit_sling_line(
                    name,
                    job_id,
                    attempt,
                    line.level,
                    line.time.as_deref(),
                    &line.message,
                );
                if sink.wants_logs()
                    && !sink.send_log(SyncEvent::Log {
                    pipeline: name.to_owned(),
                    attempt,
                    line,
                }) {
                    dropped += 1;
                }
            }
            AttemptEvent::Rows {
                stream,
                rows,
                total,
            } => {
                sink.send(SyncEvent::Rows {
                    pipeline: name.to_owned(),
                    attempt,
                    stream,
                    rows,
                    total,
                });
            }
        })
        .await;
        if let Termination::SpawnFailed(e) = &run.termination {
            sink.send(SyncEvent::AttemptStarted {
                pipeline: name.to_owned(),
                attempt,
                max_attempts,
                pid: None,
            });
            tracing::error!(target: "sync", pipeline = name, "{e}");
        }
        if dropped > 0 {
            sink.send(SyncEvent::LinesDropped {
                pipeline: name.to_owned(),
                count: dropped,
            });
        }
        run
    }

    /// noop: static checks for every pipeline, then what Sling can check without writing: `conns test` once per
    /// connection per job (every Sling start costs about 0.3 s), and `SLING_DRY_RUN` for pipelines with wildcard
    /// streams, the one thing Sling's compile knows that the static checks do not (it lists the source to expand them).
    async fn noop_checks(
        &self,
        p: &Pipeline,
        noop: &NoopShared,
        sink: &EventSink,
        cancel: &CancellationToken,
    ) -> Vec<Check> {
        let mut checks: Vec<Check> = noop.env_checks.clone();
        checks.extend(pipeline::static_checks(p, &self.cfg.env));
        let sling_ok = noop.env_checks.iter().all(|c| c.name != "sling" || c.ok);
        let statically_ok = checks.iter().all(|c| c.ok);
        if sling_ok && statically_ok {
            if let Ok(rep) = &p.replication {
                for (role, conn) in [("source", &rep.source), ("target", &rep.target)] {
                    let Some(conn) = conn.as_deref().filter(|c| !c.contains("://")) else {
                        continue;
                    };
                    let mut cache = noop.connections.lock().await;
                    let check = match cache.get(conn) {
                        Some(c) => c.clone(),
                        None => {
                            let c = self.conns_test(conn, cancel).await;
                            cache.insert(conn.to_owned(), c.clone());
                            c
                        }
                    };
                    checks.push(Check {
                        name: format!("{role} connection"),
                        ..check
                    });
                }
                let wildcard = rep.streams.iter().any(|s| s.name.contains(['*', '?']));
                if wildcard && checks.iter().all(|c| c.ok) {
                    checks.push(self.dry_run(p, cancel).await);
                }
            }
        }
        for c in &checks {
            let detail = self.redactor.redact(&c.detail);
            if c.ok && !c.warning {
                tracing::info!(target: "sync", pipeline = %p.name, check = %c.name, "ok: {detail}");
            } else if c.ok {
                tracing::warn!(target: "sync", pipeline = %p.name, check = %c.name, "warning: {detail}");
            } else {
                tracing::error!(target: "sync", pipeline = %p.name, check = %c.name, "failed: {detail}");
            }
            sink.send(SyncEvent::CheckDone {
                pipeline: p.name.clone(),
                check: Check {
                    detail,
                    ..c.clone()
                },
            });
        }
        checks
    }

    async fn conns_test(&self, conn: &str, cancel: &CancellationToken) -> Check {
        // A SQLite file that does not exist yet would be created by the test; the first run creates it anyway.
        if let Some(path) = self
            .cfg
            .env
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(conn))
            .and_then(|(_, v)| v.strip_prefix("sqlite://"))
        {
            if !std::path::Path::new(path).exists() {
                return Check {
                    name: "connection".into(),
                    ok: true,
                    warning: true,
                    detail: format!("`{conn}`: SQLite file {path} does not exist yet; Sling creates it on the first run"),
                };
            }
        }
        let cmd = self.command(
            vec!["conns".into(), "test".into(), conn.into()],
            self.cfg.attempt_timeout.min(Duration::from_secs(120)),
        );
        let run = sling::run_attempt(&cmd, &self.redactor, cancel, |_| {}).await;
        let ok = run.termination == Termination::Exited(0);
        Check {
            name: "connection".into(),
            ok,
            warning: false,
            detail: if ok {
                format!("`{conn}`: sling conns test succeeded")
            } else {
                format!(
                    "`{conn}`: sling conns test failed: {}",
                    run.reason().unwrap_or_default()
                )
            },
        }
    }

    async fn dry_run(&self, p: &Pipeline, cancel: &CancellationToken) -> Check {
        let mut cmd = self.command(
            vec!["run".into(), "-r".into(), p.path.clone().into_os_string()],
            self.cfg.attempt_timeout.min(Duration::from_secs(120)),
        );
        cmd.env_set.push(("SLING_DRY_RUN".into(), "true".into()));
        let run = sling::run_attempt(&cmd, &self.redactor, cancel, |_| {}).await;
        let ok = run.termination == Termination::Exited(0) && !run.no_streams_matched;
        Check {
            name: "dry run".into(),
            ok,
            warning: false,
            detail: if ok {
                "SLING_DRY_RUN=true sling run compiled the replication".into()
            } else {
                format!(
                    "SLING_DRY_RUN=true sling run failed: {}",
                    run.reason().unwrap_or_default()
                )
            },
        }
    }
}

/// Shared by the pipelines of one noop job: environment checks and `conns test` results per connection name.
struct NoopShared {
    env_checks: Vec<Check>,
    connections: tokio::sync::Mutex<HashMap<String, Check>>,
}

/// A replication problem found without running Sling that makes a run pointless (reported, not retried).
fn blocking_problem(p: &Pipeline) -> Option<String> {
    match &p.replication {
        Err(e) => Some(e.clone()),
        Ok(r) => {
            let errors: Vec<String> = r
                .findings
                .iter()
                .filter(|c| !c.ok)
                .map(|c| c.detail.clone())
                .collect();
            (!errors.is_empty()).then(|| format!("{}: {}", p.path.display(), errors.join("; ")))
        }
    }
}

/// The outcome attributes every span of the job carries; a span that did not succeed gets status Error with `reason`.
fn record_outcome(
    span: &Span,
    status: Status,
    rows: u64,
    duration_seconds: Option<f64>,
    reason: &str,
) {
    span.record("status", status.as_str());
    span.record("rows_synced", rows as i64);
    if let Some(d) = duration_seconds {
        span.record("duration_seconds", d);
    }
    if status != Status::Success {
        span.record("otel.status_code", "ERROR");
        span.record("otel.status_description", reason);
    }
}

/// One Sling line as a tracing event inside the attempt span: a span event and a log record downstream.
fn emit_sling_line(
    pipeline: &str,
    job_id: &str,
    attempt: u32,
    level: Level,
    time: Option<&str>,
    msg: &str,
) {
    let time = time.unwrap_or("");
    macro_rules! line {
        ($lvl:expr) => {
            tracing::event!(target: "sling", $lvl, pipeline, sync_job_id = job_id, attempt, sling_time = time, "{msg}")
        };
    }
    match level {
        Level::Trace => line!(tracing::Level::TRACE),
        Level::Debug => line!(tracing::Level::DEBUG),
        Level::Info => line!(tracing::Level::INFO),
        Level::Warn => line!(tracing::Level::WARN),
        Level::Error => line!(tracing::Level::ERROR),
    }
}
