//! Validated, typed configuration. Every error names the environment variable and flag, the value given and what
//! was expected.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use super::cli::{Cli, LogFormat};
use crate::sync::event::Mode;
use crate::sync::pipeline::PipelineSource;
use crate::sync::retry::RetryPolicy;
use crate::sync::verify::VerifyMode;

pub const DEFAULT_PIPELINE_DIR: &str = "/etc/sling/pipelines";
pub const DEFAULT_STATE_PATH: &str = "/var/lib/sling_state";
/// A guard against a typo such as 1000: each running pipeline is a Sling process of its own.
pub const MAX_CONCURRENCY: usize = 64;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("{var} (--{flag}) is required: {expected}")]
    Missing {
        var: &'static str,
        flag: &'static str,
        expected: &'static str,
    },
    #[error("{var} (--{flag}) = `{value}` is not valid: expected {expected}")]
    Invalid {
        var: &'static str,
        flag: &'static str,
        value: String,
        expected: String,
    },
    #[error("{var} (--{flag}) = `{value}` cannot be used: {problem}")]
    Unusable {
        var: &'static str,
        flag: &'static str,
        value: String,
        problem: String,
    },
    #[error("SLING_CONFIG (--config) and PIPELINE_DIR (--pipeline-dir) are both set: use one (a single file or a directory)")]
    BothSources,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub batch: bool,
    pub mission_cluster_id: String,
    pub sync_job_id: String,
    pub pipelines: PipelineSource,
    pub only: Vec<String>,
    pub mode: Mode,
    pub state_path: PathBuf,
    /// `SLING_STATE_PATH` (or `--state-path`) was set; otherwise `state_path` is the default.
    pub state_path_given: bool,
    pub retry: RetryPolicy,
    /// Pipelines of one job running at once (≥ 1).
    pub concurrency: usize,
    /// No pipeline starts after this much of the job has passed.
    pub job_deadline: Option<Duration>,
    pub attempt_timeout: Duration,
    pub cancel_grace: Duration,
    pub sling_bin: PathBuf,
    pub verify: VerifyMode,
    pub verify_timeout: Duration,
    pub log_format: LogFormat,
    pub telemetry_flush_timeout: Duration,
    pub no_color: bool,
}

fn duration(
    var: &'static str,
    flag: &'static str,
    value: Option<&str>,
    default: Duration,
) -> Result<Duration, SettingsError> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(default);
    };
    humantime::parse_duration(v).map_err(|_| SettingsError::Invalid {
        var,
        flag,
        value: v.to_owned(),
        expected: "a duration such as 5s, 200ms or 1m30s".into(),
    })
}

impl Settings {
    pub fn from_cli(cli: &Cli, env: &BTreeMap<String, String>) -> Result<Self, SettingsError> {
        let mission_cluster_id = cli
            .mission_cluster_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(SettingsError::Missing {
                var: "MISSION_CLUSTER_ID",
                flag: "mission-cluster-id",
                expected: "the id of the source (mission) cluster, e.g. mission-01",
            })?
            .to_owned();
        let nonempty = |o: &Option<String>| {
            o.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let pipelines = match (nonempty(&cli.config), nonempty(&cli.pipeline_dir)) {
            (Some(_), Some(_)) => return Err(SettingsError::BothSources),
            (Some(f), None) => PipelineSource::File(f.into()),
            (None, Some(d)) => PipelineSource::Dir(d.into()),
            (None, None) => PipelineSource::Dir(DEFAULT_PIPELINE_DIR.into()),
        };
        let mode = match nonempty(&cli.mode) {
            None => Mode::Incremental,
            Some(m) => m.parse::<Mode>().map_err(|_| SettingsError::Invalid {
                var: "SYNC_MODE",
                flag: "mode",
                value: m.clone(),
                expected: "incremental (or empty), noop or backfill".into(),
            })?,
        };
        let max_retries = match nonempty(&cli.max_retries) {
            None => 3,
            Some(v) => v.parse::<u32>().map_err(|_| SettingsError::Invalid {
                var: "SYNC_MAX_RETRIES",
                flag: "max-retries",
                value: v.clone(),
                expected: "a whole number ≥ 0 (retries after the first attempt)".into(),
            })?,
        };
        let concurrency = match nonempty(&cli.concurrency) {
            None => 1,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_CONCURRENCY).contains(n))
                .ok_or_else(|| SettingsError::Invalid {
                    var: "SYNC_CONCURRENCY",
                    flag: "concurrency",
                    value: v.clone(),
                    expected: format!(
                        "a whole number from 1 to {MAX_CONCURRENCY} (pipelines running at once)"
                    ),
                })?,
        };
        let job_deadline = match nonempty(&cli.job_deadline) {
            None => None,
            Some(v) => {
                let d = duration(
                    "SYNC_JOB_DEADLINE",
                    "job-deadline",
                    Some(&v),
                    Duration::ZERO,
                )?;
                if d.is_zero() {
                    return Err(SettingsError::Invalid {
                        var: "SYNC_JOB_DEADLINE",
                        flag: "job-deadline",
                        value: v,
                        expected: "a duration above zero, e.g. 4m30s (or empty for none)".into(),
                    });
                }
                Some(d)
            }
        };
        let base = duration(
            "SYNC_BACKOFF_BASE",
            "backoff-base",
            cli.backoff_base.as_deref(),
            Duration::from_secs(5),
        )?;
        let max = duration(
            "SYNC_BACKOFF_MAX",
            "backoff-max",
            cli.backoff_max.as_deref(),
            Duration::from_secs(300),
        )?;
        let attempt_timeout = duration(
            "SLING_TIMEOUT",
            "timeout",
            cli.timeout.as_deref(),
            Duration::from_secs(30 * 60),
        )?;
        if attempt_timeout.is_zero() {
            return Err(SettingsError::Invalid {
                var: "SLING_TIMEOUT",
                flag: "timeout",
                value: cli.timeout.clone().unwrap_or_default(),
                expected: "a duration above zero".into(),
            });
        }
        let cancel_grace = duration(
            "SYNC_CANCEL_GRACE",
            "cancel-grace",
            cli.cancel_grace.as_deref(),
            Duration::from_secs(10),
        )?;
        let telemetry_flush_timeout = duration(
            "SYNC_TELEMETRY_FLUSH_TIMEOUT",
            "telemetry-flush-timeout",
            cli.telemetry_flush_timeout.as_deref(),
            Duration::from_secs(5),
        )?;
        let verify = match nonempty(&cli.verify) {
            None => VerifyMode::Report,
            Some(v) => v
                .parse::<VerifyMode>()
                .map_err(|_| SettingsError::Invalid {
                    var: "SYNC_VERIFY",
                    flag: "verify",
                    value: v.clone(),
                    expected: "report (default), strict or off".into(),
                })?,
        };
        let verify_timeout = duration(
            "SYNC_VERIFY_TIMEOUT",
            "verify-timeout",
            cli.verify_timeout.as_deref(),
            Duration::from_secs(60),
        )?;
        if verify_timeout.is_zero() {
            return Err(SettingsError::Invalid {
                var: "SYNC_VERIFY_TIMEOUT",
                flag: "verify-timeout",
                value: cli.verify_timeout.clone().unwrap_or_default(),
                expected: "a duration above zero (use SYNC_VERIFY=off to skip verification)".into(),
            });
        }
        let no_color = cli.no_color || env.get("NO_COLOR").is_some_and(|v| !v.is_empty());
        Ok(Self {
            batch: cli.batch,
            mission_cluster_id,
            sync_job_id: nonempty(&cli.job_id).unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            pipelines,
            only: cli.pipelines.clone(),
            mode,
            state_path: nonempty(&cli.state_path)
                .unwrap_or_else(|| DEFAULT_STATE_PATH.into())
                .into(),
            state_path_given: nonempty(&cli.state_path).is_some(),
            retry: RetryPolicy {
                max_retries,
                base,
                max,
                jitter: 0.2,
            },
            concurrency,
            job_deadline,
            attempt_timeout,
            cancel_grace,
            sling_bin: nonempty(&cli.sling_bin)
                .unwrap_or_else(|| "sling".into())
                .into(),
            verify,
            verify_timeout,
            log_format: cli.log_format,
            telemetry_flush_timeout,
            no_color,
        })
    }
}

/// Checks that `SLING_BIN` names an executable file, looking a bare name up in `path_var` as the spawn will; called
/// once before any pipeline runs, so a typo is a configuration error (exit 2), not a failed run per pipeline.
pub fn check_sling_bin(bin: &Path, path_var: Option<&str>) -> Result<PathBuf, SettingsError> {
    let unusable = |problem: String| SettingsError::Unusable {
        var: "SLING_BIN",
        flag: "sling-bin",
        value: bin.display().to_string(),
        problem,
    };
    let candidates: Vec<PathBuf> = if bin.components().count() > 1 {
        vec![bin.to_owned()]
    } else {
        std::env::split_paths(path_var.unwrap_or_default())
            .map(|dir| dir.join(bin))
            .collect()
    };
    let mut last_problem = None;
    for candidate in candidates {
        match executable(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(problem) => last_problem = Some(problem),
        }
    }
    Err(unusable(
        match (bin.components().count() > 1, last_problem) {
            (true, Some(problem)) => problem,
            _ => "expected an executable file; no such file in any directory of PATH".into(),
        },
    ))
}

fn executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("expected an executable file: {e}"))?;
    if !meta.is_file() {
        return Err("expected an executable file; it is not a regular file".into());
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err("expected an executable file; it has no execute permission".into());
    }
    Ok(())
}

/// The console's state directory. A path that was given is used as it is, and batch always keeps the default (the
/// CronJob's volume). A console started without one uses the default when this user can write it, else the
/// per-user platform state directory (`$XDG_STATE_HOME/sling-sync-wrapper` or
/// `~/.local/state/sling-sync-wrapper` on Linux): an operator on a jump host is rarely root.
pub fn console_state_path(
    settings: &Settings,
    fallback: Option<PathBuf>,
    writable: impl Fn(&std::path::Path) -> bool,
) -> PathBuf {
    if settings.batch || settings.state_path_given || writable(&settings.state_path) {
        return settings.state_path.clone();
    }
    fallback.unwrap_or_else(|| settings.state_path.clone())
}

/// The platform's per-user state directory for this program, if the platform has one.
pub fn user_state_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "sling-sync-wrapper")
        .and_then(|d| d.state_dir().map(std::path::Path::to_path_buf))
}

#[cfg(test)]
mod tests;
