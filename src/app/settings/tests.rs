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
    let given = parse(&["--mission-cluster-id", "m1", "--state-path", "/srv/s"]).expect("valid");
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
    let e = parse(&["--mission-cluster-id", "m", "--backoff-base", "soon"]).expect_err("invalid");
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
        let e = parse(&["--mission-cluster-id", "m", "--job-deadline", bad]).expect_err("invalid");
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
        let e =
            parse(&["--mission-cluster-id", "m", "--verify-timeout", bad]).expect_err("invalid");
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
