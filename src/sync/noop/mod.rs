//! noop: the pre-run checks. Static checks of every pipeline (shape findings, connection resolution), then what
//! Sling can check without writing: `--version`, `conns test` once per connection per job, and `SLING_DRY_RUN` for
//! pipelines with wildcard streams. Every Sling process goes through `sling::run_attempt`.
//!
//! Findings are raw text while they are worked on; they leave as `Check`s whose detail went through the `Redactor`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::engine::{EngineConfig, JobSpec};
use super::event::{Check, CheckKind, CheckOutcome, EventSink, SyncEvent};
use super::pipeline::{self, ConnectionRef, Finding, Pipeline};
use super::redact::Redactor;
use super::resolve::is_local_connection;
use super::schema_check::{
    compare, discover_patterns, stream_tables, Catalog, Severity, StreamTables,
};
use super::sling::{self, AttemptEvent, Termination};
use super::spans::{self, CheckLevel};
use super::verify::checkpoint::Checkpoint;
use super::verify::dialect::{connection_type, Dialect, TableRef};
use super::verify::run_queries;

mod schema;

/// How long `sling --version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(30);
/// `conns test` and dry runs: the attempt timeout, but never more than this.
const PROBE_TIMEOUT: Duration = Duration::from_secs(120);
/// Sling processes started side by side while preparing noop.
const PARALLEL_PROBES: usize = 4;

/// Shared by the pipelines of one noop job: environment checks and `conns test` results per connection name.
#[derive(Default)]
pub(crate) struct NoopShared {
    env_checks: Vec<Finding>,
    connections: tokio::sync::Mutex<HashMap<String, Finding>>,
    /// Columns per connection, from one `conns discover` per connection and schema for the whole job.
    catalogs: HashMap<String, Result<Catalog, String>>,
    /// `max(update_key)` per (connection, table, key) for streams whose tables exist on both sides.
    checkpoints: HashMap<(String, String, String), Option<Checkpoint>>,
}

/// The noop checker of one engine. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Noop {
    cfg: Arc<EngineConfig>,
    redactor: Arc<Redactor>,
}

fn finding(kind: CheckKind, outcome: CheckOutcome, detail: String) -> Finding {
    Finding {
        kind,
        outcome,
        detail,
    }
}

impl Noop {
    pub(crate) fn new(cfg: Arc<EngineConfig>, redactor: Arc<Redactor>) -> Self {
        Self { cfg, redactor }
    }

    /// Sling's start-up (about 0.3 s) dominates noop, so the version check and one probe per distinct connection
    /// name run side by side (at most four Sling processes) before the pipelines are looked at: `conns discover` of
    /// the tables the job uses (schema validation, and proof the connection works), else `conns test`.
    pub(crate) async fn prepare(&self, job: &JobSpec, cancel: &CancellationToken) -> NoopShared {
        let env_file = pipeline::sling_env_file(&self.cfg.env);
        let names: BTreeSet<String> = job
            .pipelines
            .iter()
            .filter_map(|p| p.replication.as_ref().ok())
            .map(|r| r.resolved(&self.cfg.env))
            .flat_map(|r| [r.source, r.target])
            .flatten()
            .filter(|c| {
                matches!(
                    pipeline::resolve_connection(c, &self.cfg.env, env_file.as_deref()),
                    ConnectionRef::EnvVar(_) | ConnectionRef::EnvFile(_)
                )
            })
            .collect();
        // Schema validation: every table any pipeline reads or writes, one discover per connection and schema.
        let streams: Vec<(String, String, StreamTables)> = job
            .pipelines
            .iter()
            .filter_map(|p| p.replication.as_ref().ok())
            .map(|r| r.resolved(&self.cfg.env))
            .flat_map(|r| {
                let (s, t) = (
                    r.source.clone().unwrap_or_default(),
                    r.target.clone().unwrap_or_default(),
                );
                stream_tables(&r)
                    .into_iter()
                    .filter_map(Result::ok)
                    .map(move |st| (s.clone(), t.clone(), st))
            })
            .filter(|(s, t, _)| names.contains(s) && names.contains(t))
            .collect();
        // A SQLite file that does not exist yet would be created by a discover; there is nothing to compare anyway.
        let missing_file = |conn: &str| {
            pipeline::env_connection(conn, &self.cfg.env)
                .and_then(|(_, url)| url.strip_prefix("sqlite://").map(str::to_owned))
                .is_some_and(|path| !std::path::Path::new(&path).exists())
        };
        let mut by_conn: BTreeMap<String, Vec<TableRef>> = BTreeMap::new();
        for (s, t, st) in &streams {
            by_conn
                .entry(s.clone())
                .or_default()
                .push(st.source.clone());
            by_conn
                .entry(t.clone())
                .or_default()
                .push(st.target.clone());
        }
        by_conn.retain(|conn, _| !missing_file(conn));
        // A discover connects as `conns test` does, so it stands in for the test of its connection: one Sling
        // start per connection either way.
        let limit = Arc::new(tokio::sync::Semaphore::new(PARALLEL_PROBES));
        let mut tests = tokio::task::JoinSet::new();
        for name in names.iter().filter(|n| !by_conn.contains_key(*n)).cloned() {
            let (noop, cancel, limit) = (self.clone(), cancel.clone(), limit.clone());
            tests.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let check = noop.conns_test(&name, &cancel).await;
                (name, check)
            });
        }
        let mut discovers = tokio::task::JoinSet::new();
        for (conn, tables) in by_conn {
            for pattern in discover_patterns(&tables) {
                let (noop, cancel, limit, conn) =
                    (self.clone(), cancel.clone(), limit.clone(), conn.clone());
                discovers.spawn(async move {
                    let _permit = limit.acquire_owned().await;
                    let found = noop.discover(&conn, &pattern, &cancel).await;
                    (conn, found)
                });
            }
        }
        let env_checks = vec![self.sling_runs(cancel).await, self.state_writable()];
        let mut connections = HashMap::new();
        while let Some(Ok((name, check))) = tests.join_next().await {
            connections.insert(name, check);
        }
        let mut catalogs: HashMap<String, Result<Catalog, String>> = HashMap::new();
        while let Some(Ok((conn, found))) = discovers.join_next().await {
            let merged = match (catalogs.remove(&conn), found) {
                (Some(Err(e)), _) | (_, Err(e)) => Err(e),
                (Some(Ok(mut a)), Ok(b)) => {
                    a.extend(b);
                    Ok(a)
                }
                (None, found) => found,
            };
            catalogs.insert(conn, merged);
        }
        for (conn, found) in &catalogs {
            let (outcome, detail) = match found {
                Ok(_) => (
                    CheckOutcome::Ok,
                    format!("`{conn}`: reachable (sling conns discover succeeded)"),
                ),
                Err(e) => (CheckOutcome::Failed, e.clone()),
            };
            connections.insert(
                conn.clone(),
                finding(CheckKind::SourceConnection, outcome, detail),
            );
        }
        let checkpoints = self.checkpoints(&streams, &catalogs, cancel).await;
        NoopShared {
            env_checks,
            connections: tokio::sync::Mutex::new(connections),
            catalogs,
            checkpoints,
        }
    }

    /// `SLING_BIN --version`, through the same spawn path and environment as every run.
    async fn sling_runs(&self, cancel: &CancellationToken) -> Finding {
        let bin = self.cfg.sling_bin.display().to_string();
        let cmd = self.cfg.sling(vec!["--version".into()], VERSION_TIMEOUT);
        let mut version = String::new();
        let run = sling::run_attempt(&cmd, &self.redactor, cancel, |ev| {
            if let AttemptEvent::Line(line) = ev {
                if version.is_empty() && line.message.contains("Version") {
                    version = line.message.trim().to_owned();
                }
            }
        })
        .await;
        let (outcome, detail) = match &run.termination {
            Termination::Exited(0) => {
                (CheckOutcome::Ok, format!("SLING_BIN {bin} runs: {version}"))
            }
            Termination::Exited(c) => (
                CheckOutcome::Failed,
                format!("SLING_BIN {bin} --version exited with code {c}"),
            ),
            Termination::SpawnFailed(e) => (CheckOutcome::Failed, e.clone()),
            Termination::TimedOut => (
                CheckOutcome::Failed,
                format!(
                    "SLING_BIN {bin} --version did not answer in {}s",
                    VERSION_TIMEOUT.as_secs()
                ),
            ),
            Termination::Signalled(_) | Termination::Cancelled => (
                CheckOutcome::Failed,
                format!(
                    "SLING_BIN {bin} --version did not finish: {}",
                    run.reason().unwrap_or_default()
                ),
            ),
        };
        finding(CheckKind::Sling, outcome, detail)
    }

    fn state_writable(&self) -> Finding {
        match self.cfg.state.check_writable() {
            Ok(()) => finding(
                CheckKind::State,
                CheckOutcome::Ok,
                format!(
                    "SLING_STATE_PATH {} is writable",
                    self.cfg.state.root().display()
                ),
            ),
            Err(e) => finding(
                CheckKind::State,
                CheckOutcome::Failed,
                format!("SLING_STATE_PATH: {e}"),
            ),
        }
    }

    /// Every check of one pipeline, each reported as a `CheckDone` event and a tracing event as it is known.
    pub(crate) async fn checks(
        &self,
        p: &Pipeline,
        noop: &NoopShared,
        sink: &EventSink,
        cancel: &CancellationToken,
    ) -> Vec<Check> {
        let mut found: Vec<Finding> = noop.env_checks.clone();
        found.extend(static_checks(p, &self.cfg.env));
        let sling_ok = noop
            .env_checks
            .iter()
            .all(|c| c.kind != CheckKind::Sling || c.passed());
        let statically_ok = found.iter().all(Finding::passed);
        if sling_ok && statically_ok {
            if let Ok(rep) = &p.replication {
                let resolved = rep.resolved(&self.cfg.env);
                let roles = [
                    (CheckKind::SourceConnection, &resolved.source),
                    (CheckKind::TargetConnection, &resolved.target),
                ];
                for (kind, conn) in roles {
                    let Some(conn) = conn
                        .as_deref()
                        .filter(|c| !pipeline::is_inline_url(c) && !is_local_connection(c))
                    else {
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
                    found.push(Finding { kind, ..check });
                }
                if found.iter().all(Finding::passed) {
                    found.extend(self.schema_checks(p, noop));
                }
                let wildcard = rep
                    .streams
                    .iter()
                    .any(|s| !s.disabled && s.name.contains(['*', '?']));
                if wildcard && found.iter().all(Finding::passed) {
                    found.push(self.dry_run(p, cancel).await);
                }
            }
        }
        let checks: Vec<Check> = found
            .into_iter()
            .map(|f| Check {
                detail: self.redactor.redacted(&f.detail),
                kind: f.kind,
                outcome: f.outcome,
            })
            .collect();
        for c in &checks {
            let level = match c.outcome {
                CheckOutcome::Ok => CheckLevel::Ok,
                CheckOutcome::Warning => CheckLevel::Warning,
                CheckOutcome::Failed => CheckLevel::Failed,
            };
            spans::check_done(&p.name, c.kind.as_str(), level, &c.detail);
            sink.send(SyncEvent::CheckDone {
                pipeline: p.name.clone(),
                check: c.clone(),
            });
        }
        checks
    }

    async fn conns_test(&self, conn: &str, cancel: &CancellationToken) -> Finding {
        // A SQLite file that does not exist yet would be created by the test; the first run creates it anyway.
        if let Some(path) = pipeline::env_connection(conn, &self.cfg.env)
            .and_then(|(_, url)| url.strip_prefix("sqlite://"))
        {
            if !std::path::Path::new(path).exists() {
                return finding(
                    CheckKind::SourceConnection,
                    CheckOutcome::Warning,
                    format!("`{conn}`: SQLite file {path} does not exist yet; Sling creates it on the first run"),
                );
            }
        }
        let cmd = self.cfg.sling(
            vec!["conns".into(), "test".into(), conn.into()],
            self.cfg.attempt_timeout.min(PROBE_TIMEOUT),
        );
        let run = sling::run_attempt(&cmd, &self.redactor, cancel, |_| {}).await;
        let ok = run.termination == Termination::Exited(0);
        let (outcome, detail) = if ok {
            (
                CheckOutcome::Ok,
                format!("`{conn}`: sling conns test succeeded"),
            )
        } else {
            (
                CheckOutcome::Failed,
                format!(
                    "`{conn}`: sling conns test failed: {}",
                    run.reason().unwrap_or_default()
                ),
            )
        };
        // The kind is set by the caller (source or target connection).
        finding(CheckKind::SourceConnection, outcome, detail)
    }

    async fn dry_run(&self, p: &Pipeline, cancel: &CancellationToken) -> Finding {
        let mut cmd = self.cfg.sling(
            vec!["run".into(), "-r".into(), p.path.clone().into_os_string()],
            self.cfg.attempt_timeout.min(PROBE_TIMEOUT),
        );
        cmd.env_set.push(("SLING_DRY_RUN".into(), "true".into()));
        let run = sling::run_attempt(&cmd, &self.redactor, cancel, |_| {}).await;
        let ok = run.termination == Termination::Exited(0) && !run.no_streams_matched;
        if ok {
            finding(
                CheckKind::DryRun,
                CheckOutcome::Ok,
                "SLING_DRY_RUN=true sling run compiled the replication".into(),
            )
        } else {
            finding(
                CheckKind::DryRun,
                CheckOutcome::Failed,
                format!(
                    "SLING_DRY_RUN=true sling run failed: {}",
                    run.reason().unwrap_or_default()
                ),
            )
        }
    }
}

/// The static checks of one pipeline: shape findings plus connection resolution.
pub fn static_checks(p: &Pipeline, env: &BTreeMap<String, String>) -> Vec<Finding> {
    let rep = match &p.replication {
        Ok(r) => r,
        Err(e) => {
            return vec![finding(
                CheckKind::Replication,
                CheckOutcome::Failed,
                e.to_string(),
            )]
        }
    };
    let resolved = rep.resolved(env);
    let mut checks = rep.findings.clone();
    checks.extend(pipeline::resolved_findings(&resolved));
    if checks.iter().all(Finding::passed) {
        checks.push(finding(
            CheckKind::Replication,
            CheckOutcome::Ok,
            format!(
                "{} stream(s): {}",
                rep.streams.len(),
                p.stream_names().join(", ")
            ),
        ));
    }
    let env_file = pipeline::sling_env_file(env);
    let roles = [
        ("source", CheckKind::Source, &resolved.source),
        ("target", CheckKind::Target, &resolved.target),
    ];
    for (role, kind, conn) in roles {
        let Some(conn) = conn.as_deref().filter(|c| !c.is_empty()) else {
            continue;
        };
        if is_local_connection(conn) {
            checks.push(finding(
                kind,
                CheckOutcome::Ok,
                format!("`{conn}`: Sling's built-in local file system connection"),
            ));
            continue;
        }
        let (outcome, detail) = match pipeline::resolve_connection(conn, env, env_file.as_deref()) {
            ConnectionRef::InlineUrl => (
                CheckOutcome::Warning,
                format!("{role} is a URL written in the file; Sling prints it, password included: use a connection name"),
            ),
            ConnectionRef::EnvVar(var) => (
                CheckOutcome::Ok,
                format!("`{conn}` from environment variable {var}"),
            ),
            ConnectionRef::EnvFile(path) => (
                CheckOutcome::Ok,
                format!("`{conn}` from {}", path.display()),
            ),
            ConnectionRef::Missing => (
                CheckOutcome::Failed,
                format!(
                    "connection `{conn}` not found: set environment variable {} to its URL, or define it in {}",
                    conn.to_ascii_uppercase(),
                    env_file
                        .as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "Sling's env.yaml".into())
                ),
            ),
        };
        checks.push(finding(kind, outcome, detail));
    }
    checks
}
