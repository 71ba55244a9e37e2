//! Faults the real Sling cannot be made to show on demand, through `tests/fixtures/sling-shim.sh`: transient
//! failures, hangs past the timeout, death by SIGKILL, configuration errors; plus locks and signals to the wrapper.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{alive, count, Shim, World};

/// What this file reads from the shim's record.
impl Shim {
    fn attempts(&self) -> u32 {
        std::fs::read_to_string(self.dir.path().join("attempts"))
            .map(|s| s.trim().parse().unwrap_or(0))
            .unwrap_or(0)
    }
    fn got_sigint(&self) -> bool {
        self.dir.path().join("got-sigint").exists()
    }
    fn pids(&self) -> Vec<i32> {
        std::fs::read_to_string(self.dir.path().join("invocations"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect()
    }
}

fn ts(line: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    line["timestamp"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("timestamp on every JSON line")
}

#[test]
fn transient_failures_are_retried_with_backoff_in_the_jitter_band() {
    let w = World::new();
    let s = Shim::new();
    let run = common::Run::from(
        s.cmd(&w, "fail_then_real", &["--pipeline", "orders"])
            .env("SHIM_FAILS", "2")
            .env("SYNC_BACKOFF_BASE", "300ms")
            .env("SYNC_MAX_RETRIES", "3")
            .output()
            .expect("run"),
    );
    assert_eq!(run.code, Some(0), "{}", run.explain());
    assert_eq!(s.attempts(), 3);
    assert_eq!(
        count(&w.command, "orders"),
        3,
        "the third attempt ran the real Sling"
    );
    let rec = w.last_record("orders");
    assert_eq!(rec["attempts"], 3);
    assert_eq!(rec["status"], "success");
    assert_eq!(rec["rows"], 5);

    let retries: Vec<&serde_json::Value> = run
        .lines
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("retry scheduled"))
        })
        .collect();
    assert_eq!(retries.len(), 2, "{}", run.explain());
    for (i, (r, nominal)) in retries.iter().zip([0.3, 0.6]).enumerate() {
        let d = r["delay_seconds"].as_f64().expect("delay_seconds");
        assert!(
            (nominal * 0.8..=nominal * 1.2).contains(&d),
            "retry {}: {d}s outside ±20% of {nominal}s",
            i + 1
        );
        assert_eq!(r["next_attempt"], i as u64 + 2);
        // The next attempt's first line comes no earlier than the delay.
        let next_start = run
            .lines
            .iter()
            .filter(|l| l["attempt"] == i as u64 + 2)
            .map(ts)
            .min()
            .expect("next attempt logged");
        let waited = (next_start - ts(r))
            .to_std()
            .unwrap_or_default()
            .as_secs_f64();
        assert!(
            waited >= d - 0.01,
            "attempt {} started {waited}s after a {d}s delay",
            i + 2
        );
    }
    let reasons: Vec<&str> = run
        .lines
        .iter()
        .filter_map(|l| l["message"].as_str())
        .filter(|m| m.contains("connection reset"))
        .collect();
    assert!(!reasons.is_empty(), "the failure reason is shown");
}

#[test]
fn retries_stop_at_the_limit_with_the_reason() {
    let w = World::new();
    let s = Shim::new();
    let run = common::Run::from(
        s.cmd(&w, "fail_then_real", &["--pipeline", "orders"])
            .env("SHIM_FAILS", "99")
            .env("SYNC_MAX_RETRIES", "2")
            .output()
            .expect("run"),
    );
    assert_eq!(run.code, Some(1), "{}", run.explain());
    assert_eq!(s.attempts(), 3, "first attempt plus two retries");
    let rec = w.last_record("orders");
    assert_eq!(rec["status"], "failed");
    assert!(
        rec["error"]
            .as_str()
            .unwrap_or("")
            .contains("connection reset by peer (attempt 3)"),
        "{rec}"
    );
}

#[test]
fn configuration_errors_are_not_retried() {
    let w = World::new();
    let s = Shim::new();
    let run = common::Run::from(
        s.cmd(&w, "permanent", &["--pipeline", "orders"])
            .output()
            .expect("run"),
    );
    assert_eq!(run.code, Some(1), "{}", run.explain());
    assert_eq!(s.attempts(), 1);
    assert!(w.last_record("orders")["error"]
        .as_str()
        .unwrap_or("")
        .contains("could not find connection NOPE"));
}

#[test]
fn a_hang_is_stopped_at_the_timeout_with_sigint_and_retried() {
    let w = World::new();
    let s = Shim::new();
    let started = Instant::now();
    let run = common::Run::from(
        s.cmd(&w, "hang", &["--pipeline", "orders"])
            .env("SLING_TIMEOUT", "700ms")
            .env("SYNC_MAX_RETRIES", "1")
            .output()
            .expect("run"),
    );
    assert_eq!(run.code, Some(1), "{}", run.explain());
    assert_eq!(s.attempts(), 2, "timed-out attempts are retried");
    assert!(
        s.got_sigint(),
        "the child gets SIGINT first (Sling's clean stop)"
    );
    let rec = w.last_record("orders");
    assert!(
        rec["error"].as_str().unwrap_or("").contains("timed out"),
        "{rec}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        s.pids().iter().all(|p| !alive(*p)),
        "no shim process may outlive the wrapper"
    );
}

#[test]
fn a_child_ignoring_sigint_is_killed_after_the_grace_period() {
    let w = World::new();
    let s = Shim::new();
    let started = Instant::now();
    let run = common::Run::from(
        s.cmd(&w, "hang_ignore_int", &["--pipeline", "orders"])
            .env("SLING_TIMEOUT", "500ms")
            .env("SYNC_CANCEL_GRACE", "500ms")
            .env("SYNC_MAX_RETRIES", "0")
            .output()
            .expect("run"),
    );
    assert_eq!(run.code, Some(1), "{}", run.explain());
    assert!(s.got_sigint());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(s.pids().iter().all(|p| !alive(*p)));
}

#[test]
fn death_by_sigkill_mid_stream_is_reported_and_retried() {
    let w = World::new();
    let s = Shim::new();
    let run = common::Run::from(
        s.cmd(&w, "killed", &["--pipeline", "orders"])
            .env("SYNC_MAX_RETRIES", "1")
            .output()
            .expect("run"),
    );
    assert_eq!(run.code, Some(1), "{}", run.explain());
    assert_eq!(s.attempts(), 2);
    let rec = w.last_record("orders");
    assert!(
        rec["error"]
            .as_str()
            .unwrap_or("")
            .contains("killed by signal 9"),
        "{rec}"
    );
}

#[test]
fn sigterm_forwards_sigint_and_exits_143_with_cancelled_status() {
    let w = World::new();
    let s = Shim::new();
    let child = s
        .cmd(&w, "hang", &["--pipeline", "orders"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.attempts() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal wrapper");
    let out = child.wait_with_output().expect("wait");
    let run = common::Run::from(out);
    assert_eq!(run.code, Some(143), "{}", run.explain());
    assert!(
        sent.elapsed() < Duration::from_secs(12),
        "stopped within the grace period: {:?}",
        sent.elapsed()
    );
    assert!(s.got_sigint(), "Sling must get SIGINT, not SIGTERM");
    assert!(s.pids().iter().all(|p| !alive(*p)));
    let rec = w.last_record("orders");
    assert_eq!(rec["status"], "cancelled");
    assert_eq!(rec["attempts"], 1, "a cancelled attempt is not retried");
}

#[test]
fn a_second_run_of_the_same_pipeline_is_refused_by_the_lock() {
    let w = World::new();
    let s = Shim::new();
    let first = s.hold_lock(&w, "orders", "first-job");
    let second = w.run(&["--pipeline", "orders"]);
    assert_eq!(second.code, Some(1), "{}", second.explain());
    let msg = second.finished("orders")["error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        msg.contains("already running") && msg.contains("first-job"),
        "{msg}"
    );
    assert_eq!(
        second.finished("orders")["status"],
        "skipped",
        "busy elsewhere is not a failure of this run"
    );
    assert!(w.journal().is_empty(), "a refused run writes no history");
    assert!(
        !w.command.exists(),
        "a refused run does not touch the target"
    );

    first.stop();
    assert_eq!(w.journal().len(), 1);
    assert_eq!(w.last_record("orders")["status"], "cancelled");
    // The lock is free again.
    assert_eq!(w.run(&["--pipeline", "orders"]).code, Some(0));
}

#[test]
fn missing_sling_binary_is_a_configuration_error_before_any_pipeline() {
    let w = World::new();
    let run = common::Run::from(
        w.cmd(&["--pipeline", "orders"])
            .env("SLING_BIN", "/nonexistent/sling")
            .output()
            .expect("run"),
    );
    assert_eq!(run.code, Some(2), "{}", run.explain());
    assert!(
        run.stderr.contains("SLING_BIN") && run.stderr.contains("/nonexistent/sling"),
        "{}",
        run.explain()
    );
    assert!(w.journal().is_empty(), "no pipeline ran");
}

#[test]
fn unwritable_state_path_is_named_and_nothing_runs() {
    let w = World::new();
    let blocker = w.dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").expect("write");
    let run = common::Run::from(
        w.cmd(&["--pipeline", "orders"])
            .env("SLING_STATE_PATH", blocker.join("state"))
            .output()
            .expect("run"),
    );
    assert_eq!(run.code, Some(2), "{}", run.explain());
    assert!(
        run.stderr.contains("SLING_STATE_PATH") && run.stderr.contains("not-a-dir"),
        "{}",
        run.explain()
    );
    assert!(!w.command.exists(), "nothing ran");
}

#[test]
fn a_flood_of_log_lines_neither_blocks_nor_is_lost_from_the_output() {
    let w = World::new();
    let s = Shim::new();
    let run = common::Run::from(
        s.cmd(&w, "noisy", &["--pipeline", "orders"])
            .env("SHIM_LINES", "20000")
            .output()
            .expect("run"),
    );
    assert_eq!(run.code, Some(0), "{}", run.explain());
    assert_eq!(w.last_record("orders")["rows"], 7);
    // Debug lines are below the batch output level, but every one was read: the count is on the record's span.
    assert!(run.lines.iter().any(|l| l["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("inserted 7 rows"))));
}

#[test]
fn progress_ticks_become_a_bounded_number_of_output_lines_and_the_final_count_comes_from_sling() {
    let w = World::new();
    let s = Shim::new();
    // The shim writes three ticks over about 1.5 s to stderr, without a newline, as Sling does.
    let run = common::Run::from(
        s.cmd(&w, "progress", &["--pipeline", "orders"])
            .output()
            .expect("run"),
    );
    assert_eq!(run.code, Some(0), "{}", run.explain());
    let progress: Vec<&serde_json::Value> = run
        .lines
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("progress:"))
        })
        .collect();
    // At most one line per stream every 10 s: the first tick only, with its rows.
    assert_eq!(progress.len(), 1, "{}", run.explain());
    assert_eq!(progress[0]["rows"], 1000, "{}", run.explain());
    assert_eq!(progress[0]["pipeline"], "orders");
    // The ticks did not end up as a Sling line, and the record has Sling's own final count.
    assert!(
        !run.lines.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.contains("r/s 3.0 MB"))),
        "{}",
        run.explain()
    );
    assert_eq!(w.last_record("orders")["rows"], 3000);
}
