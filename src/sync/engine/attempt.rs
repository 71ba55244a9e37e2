//! One attempt: one Sling child (through `sling::run_attempt`, the one spawn path) inside a `sling.attempt` span,
//! its lines forwarded as events and tracing events, its end turned into an `AttemptOutcome`.

use std::collections::BTreeMap;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Engine, JobSpec};
use crate::sync::event::{AttemptOutcome, EventSink, Status, SyncEvent};
use crate::sync::pipeline::Pipeline;
use crate::sync::sling::{self, AttemptEvent, AttemptRun, SlingCommand, Termination};
use crate::sync::spans;

/// What every attempt of one pipeline run shares.
pub(super) struct AttemptCtx<'a> {
    pub job: &'a JobSpec,
    pub pipeline: &'a Pipeline,
    pub max_attempts: u32,
    pub sink: &'a EventSink,
    pub cancel: &'a CancellationToken,
}

impl Engine {
    /// Runs one child inside a `sling.attempt` span, forwarding its lines as events and tracing events.
    pub(super) async fn one_attempt(
        &self,
        ctx: &AttemptCtx<'_>,
        cmd: &SlingCommand,
        attempt: u32,
    ) -> (AttemptOutcome, BTreeMap<String, String>) {
        let span = spans::attempt_span(&ctx.pipeline.name, &ctx.job.sync_job_id, attempt);
        let (run, line_events_skipped) = self
            .spawn_and_stream(ctx, cmd, attempt)
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
            run.reason().map(|r| self.redactor.redacted(&r))
        };
        spans::record_outcome(
            &span,
            status,
            run.rows,
            None,
            reason.as_deref().unwrap_or_default(),
        );
        spans::record_attempt_end(&span, run.exit_code(), run.lines, line_events_skipped);
        let outcome = AttemptOutcome {
            attempt,
            exit_code: run.exit_code(),
            status,
            rows: run.rows,
            streams: run.streams,
            reason,
            retryable,
            duration: run.duration,
        };
        (outcome, run.objects)
    }

    /// Also returns how many lines were not made span events (beyond `spans::MAX_EVENTS_PER_SPAN`, or
    /// `spans::MAX_SPAN_EVENT_TEXT_PER_ATTEMPT`).
    async fn spawn_and_stream(
        &self,
        ctx: &AttemptCtx<'_>,
        cmd: &SlingCommand,
        attempt: u32,
    ) -> (AttemptRun, u64) {
        let mut dropped = 0u64;
        let (mut line_events, mut line_events_skipped) = (0u32, 0u64);
        // Text of the line span events so far (see `spans::MAX_SPAN_EVENT_TEXT_PER_ATTEMPT`).
        let mut line_event_text = 0usize;
        let mut last_progress: Option<(Option<String>, std::time::Instant)> = None;
        let (sink, max_attempts) = (ctx.sink, ctx.max_attempts);
        let name = ctx.pipeline.name.as_str();
        let job_id = ctx.job.sync_job_id.as_str();
        // Looked up once: the dispatcher does not change during an attempt.
        let line_outputs = spans::LineOutputs::current();
        let run = sling::run_attempt(cmd, &self.redactor, ctx.cancel, |ev| match ev {
            AttemptEvent::Spawned { pid } => {
                spans::sling_started(name, attempt, max_attempts, pid);
                sink.send(SyncEvent::AttemptStarted {
                    pipeline: name.to_owned(),
                    attempt,
                    max_attempts,
                    pid: Some(pid),
                });
            }
            AttemptEvent::Line(line) => {
                let text = line.message.len().min(spans::MAX_SPAN_EVENT_TEXT);
                let span_event = line_events < spans::MAX_EVENTS_PER_SPAN
                    && line_event_text + text <= spans::MAX_SPAN_EVENT_TEXT_PER_ATTEMPT;
                if span_event {
                    line_events += 1;
                    line_event_text += text;
                } else {
                    line_events_skipped += 1;
                }
                spans::sling_line(
                    line_outputs.as_ref(),
                    name,
                    job_id,
                    attempt,
                    &line,
                    span_event,
                );
                if sink.wants_logs()
                    && !sink.send_log(SyncEvent::Log {
                        pipeline: name.to_owned(),
                        attempt,
                        line,
                    })
                {
                    dropped += 1;
                }
            }
            AttemptEvent::Progress {
                stream,
                rows,
                rows_per_sec,
            } => {
                // Every tick goes to the front-end; tracing (batch output, span events) gets one per stream every
                // PROGRESS_EVERY, so a long copy costs a bounded number of events.
                let due = match &last_progress {
                    Some((s, at)) => *s != stream || at.elapsed() >= spans::PROGRESS_EVERY,
                    None => true,
                };
                if due {
                    spans::progress(name, stream.as_deref(), rows, rows_per_sec);
                    last_progress = Some((stream.clone(), std::time::Instant::now()));
                }
                sink.send(SyncEvent::Progress {
                    pipeline: name.to_owned(),
                    attempt,
                    stream,
                    rows,
                    rows_per_sec,
                });
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
            AttemptEvent::Result(_) => {}
        })
        .await;
        if let Termination::SpawnFailed(e) = &run.termination {
            sink.send(SyncEvent::AttemptStarted {
                pipeline: name.to_owned(),
                attempt,
                max_attempts,
                pid: None,
            });
            spans::pipeline_note(name, tracing::Level::ERROR, &self.redactor.redacted(e));
        }
        if dropped > 0 {
            sink.send(SyncEvent::LinesDropped {
                pipeline: name.to_owned(),
                count: dropped,
            });
        }
        (run, line_events_skipped)
    }
}
