//! Folding engine events into the console model: one `SyncEvent` in, the model changed. Plain data, no clock.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::logbuf::LogEntry;
use super::model::{outcome_text, Activity, LiveProgress, Locked, Model, Overlay, Retry, Run};
use crate::sync::event::{CheckOutcome, Mode, PipelineReport, SyncEvent};
use crate::sync::sling_log::LogLine;

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn time_of(line: &LogLine) -> Option<String> {
    // Sling's JSON time is RFC 3339; keep the wall-clock part only.
    let t = line.time.as_deref()?;
    let clock = t.split_once('T').map_or(t, |(_, c)| c);
    Some(clock.get(..8).unwrap_or(clock).to_string())
}

/// Folds one engine event into the model. Events for unknown pipelines are ignored.
pub fn apply(model: &mut Model, ev: SyncEvent) {
    let now = model.now;
    match ev {
        SyncEvent::JobStarted {
            sync_job_id,
            mode,
            pipelines,
        } => {
            for name in &pipelines {
                if let Some(p) = model.pipeline_mut(name) {
                    if !matches!(p.activity, Activity::Active(_)) {
                        p.activity = Activity::Queued {
                            job_id: Some(sync_job_id.clone()),
                            mode,
                        };
                    }
                }
            }
            model.active_jobs.push(sync_job_id);
        }
        SyncEvent::PipelineStarted {
            sync_job_id,
            pipeline,
            mode,
            max_attempts,
        } => {
            if let Some(p) = model.pipeline_mut(&pipeline) {
                // A new try: whoever held the lock may be gone (PipelineLocked says so again if not).
                p.locked = None;
                p.log.push(LogEntry::marker(format!(
                    "── {mode} run started · job {} ──",
                    short(&sync_job_id)
                )));
                p.activity = Activity::Active(Box::new(Run {
                    job_id: sync_job_id,
                    mode,
                    attempt: 0,
                    max_attempts,
                    started_at: now,
                    retry: None,
                    rows_before: 0,
                    rows: 0,
                    streams: BTreeMap::new(),
                    error: None,
                    checks: Vec::new(),
                    cancel_requested: false,
                    progress: None,
                }));
            }
        }
        SyncEvent::AttemptStarted {
            pipeline,
            attempt,
            max_attempts,
            pid,
        } => {
            if let Some(p) = model.pipeline_mut(&pipeline) {
                if let Activity::Active(run) = &mut p.activity {
                    run.attempt = attempt;
                    run.max_attempts = max_attempts;
                    run.retry = None;
                    run.rows_before = run.rows;
                    run.progress = None;
                }
                let pid = pid.map_or_else(|| "not started".to_string(), |p| format!("pid {p}"));
                p.log.push(LogEntry::marker(format!(
                    "── attempt {attempt}/{max_attempts} ({pid}) ──"
                )));
            }
        }
        SyncEvent::Log { pipeline, line, .. } => {
            if let Some(p) = model.pipeline_mut(&pipeline) {
                let time = time_of(&line);
                let line = line.into_inner();
                p.log.push(LogEntry {
                    level: line.level,
                    time,
                    text: line.message,
                    marker: false,
                });
            }
        }
        SyncEvent::Rows {
            pipeline,
            stream,
            rows,
            total,
            ..
        } => {
            if let Some(Activity::Active(run)) =
                model.pipeline_mut(&pipeline).map(|p| &mut p.activity)
            {
                run.rows = run.rows_before + total;
                *run.streams.entry(stream).or_default() += rows;
                // The stream is counted now; its progress would count it twice.
                run.progress = None;
            }
        }
        SyncEvent::Progress {
            pipeline,
            stream,
            rows,
            rows_per_sec,
            ..
        } => {
            if let Some(Activity::Active(run)) =
                model.pipeline_mut(&pipeline).map(|p| &mut p.activity)
            {
                run.progress = Some(LiveProgress {
                    stream,
                    rows,
                    rows_per_sec,
                });
            }
        }
        SyncEvent::AttemptFinished { pipeline, outcome } => {
            if let Some(p) = model.pipeline_mut(&pipeline) {
                let text = format!(
                    "── attempt {} {} ──",
                    outcome.attempt,
                    outcome_text(outcome.status, outcome.reason.as_deref())
                );
                p.log.push(LogEntry::marker(text));
                if let Activity::Active(run) = &mut p.activity {
                    run.progress = None;
                    run.error = outcome.reason;
                }
            }
        }
        SyncEvent::RetryScheduled {
            pipeline,
            next_attempt,
            max_attempts,
            at,
            ..
        } => {
            if let Some(Activity::Active(run)) =
                model.pipeline_mut(&pipeline).map(|p| &mut p.activity)
            {
                run.retry = Some(Retry {
                    next_attempt,
                    max_attempts,
                    at: DateTime::<Utc>::from(at),
                });
            }
        }
        SyncEvent::CheckDone { pipeline, check } => {
            if let Some(p) = model.pipeline_mut(&pipeline) {
                let verdict = match check.outcome {
                    CheckOutcome::Ok => "ok",
                    CheckOutcome::Warning => "warning",
                    CheckOutcome::Failed => "FAILED",
                };
                p.log.push(LogEntry::marker(format!(
                    "check {}: {verdict}: {}",
                    check.kind, check.detail
                )));
                if let Activity::Active(run) = &mut p.activity {
                    run.checks.push(check);
                }
            }
        }
        SyncEvent::PipelineLocked {
            pipeline,
            sync_job_id,
            holder,
        } => {
            if let Some(p) = model.pipeline_mut(&pipeline) {
                p.log.push(LogEntry::marker(format!(
                    "── not started: another process holds the run lock ({holder}) ──"
                )));
                p.locked = Some(Locked {
                    holder,
                    refused_job: sync_job_id,
                });
            }
        }
        SyncEvent::RunRefused { pipeline, reason } => {
            // The key press set the row to queued; the engine did not take it, so it goes back to what it was.
            let handed_over = model.pipeline_mut(&pipeline).is_some_and(|p| {
                let waiting = matches!(p.activity, Activity::Queued { job_id: None, .. });
                if waiting {
                    p.activity = Activity::Idle;
                }
                waiting
            });
            if handed_over {
                model.warn(format!("{pipeline} was not started: {reason}"));
            }
        }
        SyncEvent::PipelineFinished { report } => finish(model, report),
        SyncEvent::JobFinished { report } => {
            model.active_jobs.retain(|j| *j != report.sync_job_id);
            // Every pipeline of the job has had its PipelineFinished (cancelled-before-start ones too); this only
            // settles a row still queued for this job, so a lost event cannot leave it queued forever.
            for r in report.pipelines {
                let queued_here = model.pipeline(&r.pipeline).is_some_and(|p| {
                    matches!(&p.activity, Activity::Queued { job_id: Some(j), .. } if *j == report.sync_job_id)
                });
                if queued_here {
                    finish(model, r);
                }
            }
            model.last_job = Some(report.sync_job_id);
        }
        SyncEvent::LinesDropped { pipeline, count } => {
            if let Some(p) = model.pipeline_mut(&pipeline) {
                p.log.dropped += count;
            }
        }
    }
}

fn finish(model: &mut Model, report: PipelineReport) {
    // A run refused by another process's lock is not a run: it changes neither the last result, the counts nor the
    // history view.
    if let Some(p) = model.pipeline_mut(&report.pipeline) {
        if p.locked
            .as_ref()
            .is_some_and(|l| l.refused_job == report.sync_job_id)
        {
            p.activity = Activity::Idle;
            return;
        }
    }
    if let Some(Overlay::History {
        pipeline,
        runs,
        selected,
    }) = &mut model.overlay
    {
        if *pipeline == report.pipeline {
            runs.insert(0, report.clone());
            // The operator keeps looking at the same run.
            if *selected > 0 {
                *selected += 1;
            }
        }
    }
    let Some(p) = model.pipeline_mut(&report.pipeline) else {
        return;
    };
    let text = match &report.error {
        Some(e) => format!(
            "── {} {} ──",
            report.mode,
            outcome_text(report.status, Some(e))
        ),
        None => format!(
            "── {} {}: {} rows in {:.1}s ──",
            report.mode, report.status, report.rows, report.duration_seconds
        ),
    };
    p.log.push(LogEntry::marker(text));
    p.activity = Activity::Idle;
    // A noop validates; it never replaces the last sync's result.
    if report.mode == Mode::Noop {
        p.last_noop = Some(report);
    } else {
        p.last = Some(report);
    }
}
