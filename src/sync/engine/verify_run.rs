//! Verification of one successful pipeline run: the pure plan and verdicts of `sync::verify`, with each query call
//! a `sling conns exec` through the one spawn path, inside a `sync.verify` span.

use std::collections::BTreeMap;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Engine, EngineConfig};
use crate::sync::event::{Mode, PipelineReport};
use crate::sync::pipeline::{self, Pipeline};
use crate::sync::redact::Redactor;
use crate::sync::resolve::resolve;
use crate::sync::sling::{self, AttemptEvent, Termination};
use crate::sync::verify::dialect::connection_type;
use crate::sync::verify::output::result_sets;
use crate::sync::verify::{
    verify_within, CallOutcome, Plan, StreamHistory, VerifyMode, VerifyReport,
};
use crate::sync::{metrics, spans};

impl Engine {
    /// Verifies a successful run; `objects` are the target objects Sling named per stream. `off` runs no query.
    pub(super) async fn verify_run(
        &self,
        p: &Pipeline,
        report: &PipelineReport,
        objects: &BTreeMap<String, String>,
        cancel: &CancellationToken,
    ) -> VerifyReport {
        if self.cfg.verify == VerifyMode::Off {
            return VerifyReport::off();
        }
        let span = spans::verify_span(&p.name, &report.sync_job_id);
        let mut result = self
            .verify_inner(p, report, objects, cancel)
            .instrument(span.clone())
            .await;
        // Notes carry Sling's error text and checkpoint values: redacted before they leave the engine.
        for v in result.streams.values_mut() {
            v.note = v.note.as_deref().map(|n| self.redactor.redact(n));
        }
        result.note = result.note.as_deref().map(|n| self.redactor.redact(n));
        spans::record_verify(&span, &result);
        span.in_scope(|| {
            for (stream, v) in &result.streams {
                spans::verify_stream(&p.name, stream, v);
                if let Some(d) = v.drift_rows {
                    metrics::stream_drift(&self.cfg.mission_cluster_id, &p.name, stream, d);
                }
            }
            spans::verify_finished(
                &p.name,
                &result,
                &self.redactor.redacted(&result.summary_line()),
            );
        });
        result
    }

    async fn verify_inner(
        &self,
        p: &Pipeline,
        report: &PipelineReport,
        objects: &BTreeMap<String, String>,
        cancel: &CancellationToken,
    ) -> VerifyReport {
        let Ok(rep) = &p.replication else {
            return VerifyReport::failed(
                report.streams.keys().cloned(),
                "the replication file did not parse",
            );
        };
        let resolved = resolve(&rep.doc, &self.cfg.env);
        let env_file = pipeline::sling_env_file(&self.cfg.env);
        let kind = |c: &Option<String>| {
            c.as_deref()
                .and_then(|c| connection_type(c, &self.cfg.env, env_file.as_deref()))
        };
        let plan = Plan::new(
            &resolved,
            kind(&resolved.source).as_deref(),
            kind(&resolved.target).as_deref(),
            objects,
        );
        let previous = self
            .cfg
            .state
            .last_verification(&p.name)
            .map(|v| v.streams)
            .unwrap_or_default();
        let history: BTreeMap<String, StreamHistory> = plan
            .streams
            .iter()
            .map(|(name, _)| {
                let h = StreamHistory {
                    // A backfill reloads everything on purpose: not a re-copy.
                    copied_now: (report.mode == Mode::Incremental)
                        .then(|| report.streams.get(name).copied())
                        .flatten(),
                    previous: previous.get(name).cloned(),
                };
                (name.clone(), h)
            })
            .collect();
        let exec = |conn: String, queries: Vec<String>| {
            conns_exec(
                &self.cfg,
                &self.redactor,
                conn,
                queries,
                self.cfg.verify_timeout,
                cancel,
            )
        };
        verify_within(&plan, exec, &history, self.cfg.verify_timeout).await
    }
}

/// One `sling conns exec CONN Q1 Q2 …` call with `SLING_OUTPUT=json`: each query's result set, or where the call
/// failed. Used by verification and by noop's checkpoint probe. Dropping the future (time limit) kills the child.
pub(crate) async fn conns_exec(
    cfg: &EngineConfig,
    redactor: &Redactor,
    conn: String,
    queries: Vec<String>,
    timeout: std::time::Duration,
    cancel: &CancellationToken,
) -> Result<CallOutcome, String> {
    let n = queries.len();
    let mut args: Vec<std::ffi::OsString> = vec!["conns".into(), "exec".into(), conn.into()];
    args.extend(queries.into_iter().map(Into::into));
    let cmd = cfg.sling(args, timeout).for_results();
    let mut lines = Vec::new();
    let run = sling::run_attempt(&cmd, redactor, cancel, |ev| {
        if let AttemptEvent::Result(line) = ev {
            lines.push(line);
        }
    })
    .await;
    let results = result_sets(&lines.join("\n"));
    match &run.termination {
        Termination::Exited(0) if results.len() >= n => Ok(CallOutcome {
            results,
            failed: None,
        }),
        Termination::Exited(_) => {
            let at = results.len().min(n.saturating_sub(1));
            let why = run
                .reason()
                .unwrap_or_else(|| "Sling printed no result for this query".into());
            Ok(CallOutcome {
                results,
                failed: Some((at, why)),
            })
        }
        _ => Err(run
            .reason()
            .unwrap_or_else(|| "sling conns exec did not finish".into())),
    }
}
