//! Command-line flags. Every flag falls back to its environment variable, so the CronJob can be configured with
//! plain `env:` entries. Values are kept as text here and validated in `settings`, which names the variable in
//! every error.

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// Text on a terminal, JSON lines otherwise.
    #[default]
    Auto,
    Text,
    Json,
}

/// Copies database tables from a mission cluster to the command cluster with Sling, with retries, an operator
/// console and OpenTelemetry.
#[derive(Debug, Clone, Parser)]
#[command(name = "sling-sync-wrapper", version, about, long_about = None)]
pub struct Cli {
    /// Run headless (for the CronJob and scripts): progress on stdout, exit code per outcome.
    #[arg(long)]
    pub batch: bool,

    /// Source cluster identifier (required).
    #[arg(long, env = "MISSION_CLUSTER_ID")]
    pub mission_cluster_id: Option<String>,

    /// One id for the whole run (one job = one trace). Default: a new UUID.
    #[arg(long = "job-id", env = "SYNC_JOB_ID")]
    pub job_id: Option<String>,

    /// One pipeline file (a Sling replication YAML). Not together with --pipeline-dir.
    #[arg(long = "config", env = "SLING_CONFIG")]
    pub config: Option<String>,

    /// Directory of pipeline files (*.yaml, *.yml). Default: /etc/sling/pipelines.
    #[arg(long = "pipeline-dir", env = "PIPELINE_DIR")]
    pub pipeline_dir: Option<String>,

    /// Run only these pipelines (file stems); repeatable.
    #[arg(long = "pipeline", value_name = "NAME")]
    pub pipelines: Vec<String>,

    /// incremental (default), noop or backfill.
    #[arg(long, env = "SYNC_MODE")]
    pub mode: Option<String>,

    /// The wrapper's state directory (locks, history). Default: /var/lib/sling_state.
    #[arg(long = "state-path", env = "SLING_STATE_PATH")]
    pub state_path: Option<String>,

    /// How many pipelines of a job run at once. Default: 1 (one after another).
    #[arg(long, env = "SYNC_CONCURRENCY")]
    pub concurrency: Option<String>,

    /// After this long, no new pipeline starts; the ones not started are reported skipped. Default: none.
    #[arg(long = "job-deadline", env = "SYNC_JOB_DEADLINE")]
    pub job_deadline: Option<String>,

    /// Retries after the first attempt (0 = one attempt). Default: 3.
    #[arg(long = "max-retries", env = "SYNC_MAX_RETRIES")]
    pub max_retries: Option<String>,

    /// Delay before the first retry; doubles each retry. Default: 5s.
    #[arg(long = "backoff-base", env = "SYNC_BACKOFF_BASE")]
    pub backoff_base: Option<String>,

    /// Upper bound of the retry delay. Default: 5m.
    #[arg(long = "backoff-max", env = "SYNC_BACKOFF_MAX")]
    pub backoff_max: Option<String>,

    /// Per-attempt time limit; the child is stopped when it passes. Default: 30m.
    #[arg(long = "timeout", env = "SLING_TIMEOUT")]
    pub timeout: Option<String>,

    /// Time between SIGINT and SIGKILL when stopping Sling. Default: 10s.
    #[arg(long = "cancel-grace", env = "SYNC_CANCEL_GRACE")]
    pub cancel_grace: Option<String>,

    /// The Sling executable. Default: sling (from PATH).
    #[arg(long = "sling-bin", env = "SLING_BIN")]
    pub sling_bin: Option<String>,

    /// Check each successful pipeline run by counting rows on both sides: report (default), strict (drift fails
    /// the pipeline) or off.
    #[arg(long = "verify", env = "SYNC_VERIFY")]
    pub verify: Option<String>,

    /// Time limit for verifying one pipeline; past it the verification is reported as `error`. Default: 60s.
    #[arg(long = "verify-timeout", env = "SYNC_VERIFY_TIMEOUT")]
    pub verify_timeout: Option<String>,

    /// Batch output format.
    #[arg(long = "log-format", env = "SYNC_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,

    /// Longest wait for telemetry at exit, in all. Default: 5s.
    #[arg(long = "telemetry-flush-timeout", env = "SYNC_TELEMETRY_FLUSH_TIMEOUT")]
    pub telemetry_flush_timeout: Option<String>,

    /// Console: no colours (also when NO_COLOR is set).
    #[arg(long = "no-color")]
    pub no_color: bool,
}
