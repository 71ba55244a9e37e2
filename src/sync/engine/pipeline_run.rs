//! One pipeline in one job: the run lock, noop checks or attempts with backoff between them, the history line.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::{Instant, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::attempt::AttemptCtx;
use super::{Engine, JobSpec};
use crate::sync::event::{EventSink, Mode, PipelineReport, Status, SyncEvent};
use crate::sync::metrics;
use crate::sync::noop::NoopShared;
use crate::sync::pipeline::Pipeline;
use crate::sync::redact::Redacted;
use crate::sync::spans;
use crate::sync::state::{RunLock, StateError};
use crate::sync::verify::{VerifyMode, VerifyStatus};

impl Engine {
    /// Runs one pipeline inside its `sync.pipeline` span and records it; the caller reports `PipelineFinished`.
    pub(super) async fn run_pipeline(
        &self,
        job: &JobSpec,
        p: &Pipeline,
        noop: &NoopShared,
        sink: &EventSink,
        cancel: CancellationToken,
    ) -> PipelineReport {
        let span = spans::pipeline_span(
            &p.name,
            &job.sync_job_id,
            &self.cfg.mission_cluster_id,
            job.mode,
        );
        let report = self
            .run_pipeline_inner(job, p, noop, sink, &cancel)
            .instrument(span.clone())
            .await;

        self.report_pipeline(job, &span, &report);
        report
    }

    /// The end of a pipeline in telemetry and output: its span's outcome, the `pipeline finished` line, the counters.
    pub(super) fn report_pipeline(
        &self,
        job: &JobSpec,
        span: &tracing::Span,
        report: &PipelineReport,
    ) {
        spans::record_outcome(
            span,
            report.status,
            report.rows,
            Some(report.duration_seconds),
            report.error.as_deref().unwrap_or(report.status.as_str()),
        );
        spans::record_attempts(span, report.attempts);
        span.in_scope(|| {
            spans::pipeline_finished(
                &report.pipeline,
                report.status,
                report.rows,
                report.attempts,
                report.duration_seconds,
                report.error.as_ref(),
            );
            metrics::pipeline_finished(
                &self.cfg.mission_cluster_id,
                &report.pipeline,
                report.status.as_str(),
                job.mode.as_str(),
                report.rows,
                report.duration_seconds,
            );
        });
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
            verify: None,
        };
        let finish = |mut r: PipelineReport| {
            r.finished_at = chrono::Utc::now();
            r.duration_seconds = started.elapsed().as_secs_f64();
            r
        };

        // The lock comes first: a refused run must not touch state or history.
        let lock = match self.cfg.state.lock(&p.name, &job.sync_job_id) {
            Ok(l) => l,
            Err(e) => {
                if let StateError::Locked { holder, .. } = &e {
                    sink.send(SyncEvent::PipelineLocked {
                        pipeline: p.name.clone(),
                        sync_job_id: job.sync_job_id.clone(),
                        holder: self.redactor.redact(holder.trim()),
                    });
                    // Not started because another process runs it: `skipped` (as at the job deadline), so the
                    // span, the runs counter and the failure alert do not count a busy pipeline as a failed one.
                    report.status = Status::Skipped;
                }
                let error = self.redactor.redacted(&e.to_string());
                spans::pipeline_note(&p.name, tracing::Level::WARN, &error);
                report.error = Some(error);
                return finish(report);
            }
        };

        match job.mode {
            Mode::Noop => {
                report.checks = self.noop().checks(p, noop, sink, cancel).await;
                report.attempts = 1;
                let failed: Vec<Redacted> = report
                    .checks
                    .iter()
                    .filter(|c| !c.passed())
                    .map(|c| c.detail.prefixed(&format!("{}: ", c.kind)))
                    .collect();
                report.status = if cancel.is_cancelled() {
                    Status::Cancelled
                } else if failed.is_empty() {
                    Status::Success
                } else {
                    Status::Failed
                };
                if !failed.is_empty() {
                    report.error = Some(Redacted::join(&failed, "; "));
                }
            }
            Mode::Incremental | Mode::Backfill => {
                if let Some(problem) = p.blocking_problem(&self.cfg.env) {
                    report.error = Some(self.redactor.redacted(&problem));
                } else {
                    if job.mode == Mode::Backfill {
                        spans::pipeline_note(
                            &p.name,
                            tracing::Level::INFO,
                            &self.redactor.redacted(
                                "backfill: every stream will be fully reloaded (sling run --mode full-refresh)",
                            ),
                        );
                    }
                    let ctx = AttemptCtx {
                        job,
                        pipeline: p,
                        max_attempts,
                        sink,
                        cancel,
                    };
                    let objects = self.run_attempts(&ctx, &lock, &mut report).await;
                    // Still under the run lock and inside the pipeline span; before the history line is written.
                    if report.status == Status::Success {
                        self.verify_and_judge(p, &mut report, &objects, cancel)
                            .await;
                    }
                }
            }
        }
        let mut r = finish(report);
        self.record(&mut r);
        drop(lock);
        r
    }

    /// Verifies a successful run into the report; under `strict`, drift fails the pipeline.
    async fn verify_and_judge(
        &self,
        p: &Pipeline,
        report: &mut PipelineReport,
        objects: &BTreeMap<String, String>,
        cancel: &CancellationToken,
    ) {
        let v = self.verify_run(p, report, objects, cancel).await;
        if self.cfg.verify == VerifyMode::Strict && v.status == VerifyStatus::Drift {
            report.status = Status::Failed;
            report.error = Some(
                self.redactor
                    .redacted(&format!("SYNC_VERIFY=strict: {}", v.summary_line())),
            );
        }
        report.verify = Some(v);
    }

    /// The attempts; returns the target object Sling named per stream in the last attempt.
    async fn run_attempts(
        &self,
        ctx: &AttemptCtx<'_>,
        lock: &RunLock,
        report: &mut PipelineReport,
    ) -> BTreeMap<String, String> {
        let mut objects = BTreeMap::new();
        let p = ctx.pipeline;
        let mut args: Vec<OsString> =
            vec!["run".into(), "-r".into(), p.path.clone().into_os_string()];
        if ctx.job.mode == Mode::Backfill {
            args.extend(["--mode".into(), "full-refresh".into()]);
        }
        // Sling holds the lock too: if this process is killed outright, no new run starts until Sling is gone.
        let cmd = self.cfg.sling(args, self.cfg.attempt_timeout).holding(lock);
        for attempt in 1..=ctx.max_attempts {
            report.attempts = attempt;
            let (outcome, named) = self.one_attempt(ctx, &cmd, attempt).await;
            objects.extend(named);
            // Each attempt's count is at most `sling_log::MAX_ROWS`; saturate rather than wrap over many attempts.
            report.rows = report.rows.saturating_add(outcome.rows);
            for (s, n) in &outcome.streams {
                let total = report.streams.entry(s.clone()).or_default();
                *total = total.saturating_add(*n);
            }
            report.status = outcome.status;
            report.error = outcome.reason.clone();
            let again =
                outcome.status == Status::Failed && outcome.retryable && attempt < ctx.max_attempts;
            ctx.sink.send(SyncEvent::AttemptFinished {
                pipeline: p.name.clone(),
                outcome,
            });
            if !again {
                break;
            }
            let delay = self.cfg.retry.next_delay(attempt);
            let at = SystemTime::now() + delay;
            spans::retry_scheduled(&p.name, attempt + 1, ctx.max_attempts, delay.as_secs_f64());
            metrics::retry_scheduled(&self.cfg.mission_cluster_id, &p.name);
            ctx.sink.send(SyncEvent::RetryScheduled {
                pipeline: p.name.clone(),
                next_attempt: attempt + 1,
                max_attempts: ctx.max_attempts,
                delay,
                at,
            });
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = ctx.cancel.cancelled() => {
                    report.status = Status::Cancelled;
                    report.error = Some(self.redactor.redacted("cancelled while waiting to retry"));
                    break;
                }
            }
        }
        objects
    }
}
