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
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Settings, SettingsError> {
        let mut full = vec!["sling-sync-wrapper"];
        full.extend_from_slice(args);
        let cli = Cli::try_parse_from(full).expect("clap parses");
        Settings::from_cli(&cli, &BTreeMap::new())
    }

    #[test]
    fn console_falls_back_to_the_user_state_dir_only_when_the_default_is_not_writable() {
        let fallback = Some(PathBuf::from("/home/op/.local/state/sling-sync-wrapper"));
        let console = parse(&["--mission-cluster-id", "m1"]).expect("valid");
        assert_eq!(
            console_state_path(&console, fallback.clone(), |_| false),
            fallback.clone().expect("set")
        );
        assert_eq!(
            console_state_path(&console, fallback.clone(), |_| true),
            PathBuf::from(DEFAULT_STATE_PATH)
        );
        let given =
            parse(&["--mission-cluster-id", "m1", "--state-path", "/srv/s"]).expect("valid");
        assert_eq!(
            console_state_path(&given, fallback.clone(), |_| false),
            PathBuf::from("/srv/s")
        );
        let batch = parse(&["--mission-cluster-id", "m1", "--batch"]).expect("valid");
        assert_eq!(
            console_state_path(&batch, fallback, |_| false),
            PathBuf::from(DEFAULT_STATE_PATH)
        );
    }

    #[test]
    fn user_state_dir_is_named_after_the_program() {
        // On Linux: $XDG_STATE_HOME/sling-sync-wrapper or ~/.local/state/sling-sync-wrapper.
        if let Some(dir) = user_state_dir() {
            assert!(dir.ends_with("sling-sync-wrapper"), "{}", dir.display());
        }
    }

    #[test]
    fn defaults() {
        let s = parse(&["--mission-cluster-id", "m1"]).expect("valid");
        assert_eq!(s.mode, Mode::Incremental);
        assert_eq!(
            s.pipelines,
            PipelineSource::Dir(DEFAULT_PIPELINE_DIR.into())
        );
        assert_eq!(s.state_path, PathBuf::from(DEFAULT_STATE_PATH));
        assert_eq!(s.retry.max_retries, 3);
        assert_eq!(s.retry.base, Duration::from_secs(5));
        assert_eq!(s.retry.max, Duration::from_secs(300));
        assert_eq!(s.attempt_timeout, Duration::from_secs(1800));
        assert_eq!(s.cancel_grace, Duration::from_secs(10));
        assert_eq!(s.sling_bin, PathBuf::from("sling"));
        assert_eq!(s.concurrency, 1);
        assert_eq!(s.job_deadline, None);
        assert_eq!(s.verify, VerifyMode::Report);
        assert_eq!(s.verify_timeout, Duration::from_secs(60));
        assert_eq!(
            uuid::Uuid::parse_str(&s.sync_job_id).map(|u| u.get_version_num()),
            Ok(4)
        );
    }

    #[test]
    fn missing_cluster_id_names_the_variable() {
        let e = parse(&[]).expect_err("required");
        assert!(e.to_string().contains("MISSION_CLUSTER_ID"), "{e}");
    }

    #[test]
    fn durations_accept_compound_forms() {
        let s = parse(&[
            "--mission-cluster-id",
            "m",
            "--backoff-base",
            "200ms",
            "--timeout",
            "1m30s",
        ])
        .expect("valid");
        assert_eq!(s.retry.base, Duration::from_millis(200));
        assert_eq!(s.attempt_timeout, Duration::from_secs(90));
    }

    #[test]
    fn bad_values_name_variable_value_and_expectation() {
        let e =
            parse(&["--mission-cluster-id", "m", "--backoff-base", "soon"]).expect_err("invalid");
        let msg = e.to_string();
        assert!(
            msg.contains("SYNC_BACKOFF_BASE") && msg.contains("`soon`") && msg.contains("1m30s"),
            "{msg}"
        );
        let e = parse(&["--mission-cluster-id", "m", "--max-retries=-1"]).expect_err("invalid");
        assert!(e.to_string().contains("SYNC_MAX_RETRIES"), "{e}");
        let e = parse(&["--mission-cluster-id", "m", "--mode", "full"]).expect_err("invalid");
        assert!(e.to_string().contains("SYNC_MODE"), "{e}");
        let e = parse(&["--mission-cluster-id", "m", "--timeout", "0s"]).expect_err("invalid");
        assert!(e.to_string().contains("SLING_TIMEOUT"), "{e}");
    }

    #[test]
    fn concurrency_and_deadline_parse_and_bad_values_name_the_variable() {
        let s = parse(&[
            "--mission-cluster-id",
            "m",
            "--concurrency",
            "8",
            "--job-deadline",
            "4m30s",
        ])
        .expect("valid");
        assert_eq!(s.concurrency, 8);
        assert_eq!(s.job_deadline, Some(Duration::from_secs(270)));
        for bad in ["0", "-1", "many", "65"] {
            let flag = format!("--concurrency={bad}");
            let e = parse(&["--mission-cluster-id", "m", &flag]).expect_err("invalid");
            assert!(
                e.to_string().contains("SYNC_CONCURRENCY") && e.to_string().contains(bad),
                "{e}"
            );
        }
        for bad in ["soon", "0s"] {
            let e =
                parse(&["--mission-cluster-id", "m", "--job-deadline", bad]).expect_err("invalid");
            assert!(e.to_string().contains("SYNC_JOB_DEADLINE"), "{e}");
        }
    }

    #[test]
    fn verify_settings_parse_and_errors_name_the_variable() {
        let s = parse(&[
            "--mission-cluster-id",
            "m",
            "--verify",
            "strict",
            "--verify-timeout",
            "2s",
        ])
        .expect("valid");
        assert_eq!(
            (s.verify, s.verify_timeout),
            (VerifyMode::Strict, Duration::from_secs(2))
        );
        assert_eq!(
            parse(&["--mission-cluster-id", "m", "--verify", "OFF"])
                .expect("valid")
                .verify,
            VerifyMode::Off
        );
        let e = parse(&["--mission-cluster-id", "m", "--verify", "loose"]).expect_err("invalid");
        let msg = e.to_string();
        assert!(
            msg.contains("SYNC_VERIFY") && msg.contains("`loose`") && msg.contains("strict"),
            "{msg}"
        );
        for bad in ["soon", "0s"] {
            let e = parse(&["--mission-cluster-id", "m", "--verify-timeout", bad])
                .expect_err("invalid");
            assert!(e.to_string().contains("SYNC_VERIFY_TIMEOUT"), "{e}");
        }
    }

    #[test]
    fn config_and_dir_together_are_refused() {
        let e = parse(&[
            "--mission-cluster-id",
            "m",
            "--config",
            "a.yaml",
            "--pipeline-dir",
            "d",
        ])
        .expect_err("both");
        assert_eq!(e, SettingsError::BothSources);
        let s = parse(&["--mission-cluster-id", "m", "--config", "a.yaml"]).expect("valid");
        assert_eq!(s.pipelines, PipelineSource::File("a.yaml".into()));
    }

    #[test]
    fn sling_bin_must_be_an_executable_file() {
        let d = tempfile::tempdir().expect("tempdir");
        let exe = d.path().join("sling");
        std::fs::write(&exe, "#!/bin/sh\n").expect("write");
        let plain = d.path().join("plain");
        std::fs::write(&plain, "x").expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(check_sling_bin(&exe, None), Ok(exe.clone()));
        let dir = d.path().to_str().expect("utf-8 temp path");
        assert_eq!(check_sling_bin(Path::new("sling"), Some(dir)), Ok(exe));
        for (bin, path, needle) in [
            (plain.clone(), None, "no execute permission"),
            (d.path().to_owned(), None, "not a regular file"),
            (d.path().join("missing"), None, "No such file"),
            ("nosuch".into(), Some(dir), "PATH"),
        ] {
            let e = check_sling_bin(&bin, path)
                .expect_err("unusable")
                .to_string();
            assert!(e.contains("SLING_BIN") && e.contains(needle), "{e}");
        }
    }

    #[test]
    fn modes_parse() {
        for (m, want) in [
            ("noop", Mode::Noop),
            ("backfill", Mode::Backfill),
            ("incremental", Mode::Incremental),
        ] {
            assert_eq!(
                parse(&["--mission-cluster-id", "x", "--mode", m])
                    .expect("valid")
                    .mode,
                want
            );
        }
    }
}
