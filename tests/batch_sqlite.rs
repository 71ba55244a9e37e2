//! `--batch` end to end with the real Sling 1.4.11 on SQLite mission and command databases.

mod common;

use common::{count, sqlite, World};

#[test]
fn incremental_copies_everything_then_exactly_the_new_rows() {
    let w = World::new();
    let first = w.run(&[]);
    assert_eq!(first.code, Some(0), "{}", first.explain());
    assert_eq!(count(&w.command, "orders"), 3);
    assert_eq!(count(&w.command, "customers"), 2);
    assert_eq!(count(&w.command, "products"), 3);
    assert_eq!(first.finished("orders")["rows_synced"], 5);

    sqlite(
        &w.mission,
        "insert into orders values (4, 2, 7.25, '2026-01-04 09:00:00'), (5, 1, 3.1, '2026-01-04 10:00:00');
         update orders set amount = 99, updated_at = '2026-01-05 00:00:00' where id = 1;",
    );
    let second = w.run(&["--pipeline", "orders"]);
    assert_eq!(second.code, Some(0), "{}", second.explain());
    assert_eq!(count(&w.command, "orders"), 5);
    assert_eq!(
        sqlite(&w.command, "select amount from orders where id = 1"),
        "99.0"
    );
    // Two new rows and one updated row were read; customers had nothing new.
    let rec = w.last_record("orders");
    assert_eq!(rec["rows"], 3, "{rec}");
    assert_eq!(rec["streams"]["main.orders"], 3, "{rec}");
    assert_eq!(rec["streams"]["main.customers"], 0, "{rec}");
    assert_eq!(rec["status"], "success");
    assert_eq!(rec["attempts"], 1);
    assert_eq!(rec["mode"], "incremental");
    assert!(
        second.lines.iter().all(|l| l["pipeline"] != "products"),
        "--pipeline must run only orders"
    );
}

#[test]
fn noop_validates_without_touching_the_target() {
    let w = World::new();
    assert_eq!(w.run(&[]).code, Some(0));
    sqlite(
        &w.command,
        "insert into products values (99, 'TARGET-ONLY', 0)",
    );
    sqlite(
        &w.mission,
        "insert into orders values (10, 1, 1.0, '2027-01-01 00:00:00')",
    );
    let before = std::fs::metadata(&w.command)
        .expect("command db")
        .modified()
        .expect("mtime");

    let run = w.run(&["--mode", "noop"]);
    assert_eq!(run.code, Some(0), "{}", run.explain());
    assert_eq!(
        count(&w.command, "products"),
        4,
        "noop must not reload products"
    );
    assert_eq!(
        count(&w.command, "orders"),
        3,
        "noop must not copy the new order"
    );
    assert_eq!(
        std::fs::metadata(&w.command)
            .expect("command db")
            .modified()
            .expect("mtime"),
        before
    );
    let msgs = run.messages();
    for expected in [
        "ok: `MISSION` from environment variable MISSION",
        "ok: SLING_BIN",
        "ok: SLING_STATE_PATH",
    ] {
        assert!(
            msgs.iter().any(|m| m.contains(expected)),
            "missing `{expected}` in {msgs:#?}"
        );
    }
    // One probe per connection per job (a `conns discover` of the tables the job uses stands in for `conns test`),
    // reported for each pipeline that uses it.
    let tested = msgs
        .iter()
        .filter(|m| m.contains("`COMMAND`: reachable (sling conns discover succeeded)"))
        .count();
    assert_eq!(tested, 2, "{msgs:#?}");
    assert!(
        !msgs.iter().any(|m| m.contains("SLING_DRY_RUN")),
        "no wildcard streams, no dry run: {msgs:#?}"
    );
}

#[test]
fn noop_dry_runs_wildcard_pipelines_and_catches_one_that_matches_nothing() {
    let w = World::new();
    w.write_pipeline(
        "wild",
        "source: MISSION\ntarget: COMMAND\ndefaults:\n  object: main.{stream_table}\n  mode: full-refresh\nstreams:\n  main.nomatch_*:\n",
    );
    w.write_pipeline(
        "wild_ok",
        "source: MISSION\ntarget: COMMAND\ndefaults:\n  object: main.copy_{stream_table}\n  mode: full-refresh\nstreams:\n  main.prod*:\n",
    );
    let run = w.run(&[
        "--mode",
        "noop",
        "--pipeline",
        "wild",
        "--pipeline",
        "wild_ok",
    ]);
    assert_eq!(run.code, Some(1), "{}", run.explain());
    assert_eq!(run.finished("wild_ok")["status"], "success");
    let wild = run.finished("wild");
    assert_eq!(wild["status"], "failed");
    let error = wild["error"].as_str().unwrap_or("");
    assert!(error.contains("no stream matched"), "{wild}");
    assert!(!w.command.exists(), "dry runs write nothing");
}

#[test]
fn noop_reports_every_problem_and_fails() {
    let w = World::new();
    w.write_pipeline(
        "typo",
        "source: MISSION\ntarget: NOWHERE\nstreams:\n  main.orders:\n    object: main.o\n    mode: incremental\n    primary_key: [id]\n    update-key: updated_at\n",
    );
    let run = w.run(&["--mode", "noop"]);
    assert_eq!(run.code, Some(1), "{}", run.explain());
    assert_eq!(run.finished("typo")["status"], "failed");
    assert_eq!(run.finished("orders")["status"], "success");
    let msgs = run.messages().join("\n");
    assert!(
        msgs.contains("connection `NOWHERE` not found: set environment variable NOWHERE"),
        "{msgs}"
    );
    assert!(
        msgs.contains("`update-key`") && msgs.contains("did you mean `update_key`"),
        "{msgs}"
    );
    assert!(
        !w.command.exists(),
        "noop must not create the command database"
    );
}

#[test]
fn backfill_restores_deleted_target_rows() {
    let w = World::new();
    assert_eq!(w.run(&[]).code, Some(0));
    sqlite(&w.command, "delete from orders where id in (1, 2)");
    // Incremental cannot see the hole: nothing in the source is newer than the target's max(updated_at).
    assert_eq!(w.run(&["--pipeline", "orders"]).code, Some(0));
    assert_eq!(count(&w.command, "orders"), 1);

    let run = w.run(&["--pipeline", "orders", "--mode", "backfill"]);
    assert_eq!(run.code, Some(0), "{}", run.explain());
    assert_eq!(count(&w.command, "orders"), 3);
    assert_eq!(w.last_record("orders")["mode"], "backfill");
    assert!(run
        .messages()
        .iter()
        .any(|m| m.contains("writing to target database [mode: full-refresh]")));
}

#[test]
fn a_broken_pipeline_fails_only_itself() {
    let w = World::new();
    w.write_pipeline("broken", "source: [MISSION\n");
    w.write_pipeline(
        "a_unknown_conn",
        "source: MISSION\ntarget: NOPE\nstreams:\n  main.orders:\n    object: main.x\n",
    );
    let run = w.run(&[]);
    assert_eq!(run.code, Some(1), "{}", run.explain());
    assert_eq!(count(&w.command, "orders"), 3, "good pipelines still ran");
    assert_eq!(count(&w.command, "products"), 3);
    let broken = w.last_record("broken");
    assert_eq!(broken["status"], "failed");
    assert!(
        broken["error"]
            .as_str()
            .unwrap_or("")
            .contains("invalid YAML"),
        "{broken}"
    );
    // Sling's own verdict on an unknown connection is a configuration error: one attempt, no retries.
    let unknown = w.last_record("a_unknown_conn");
    assert_eq!(unknown["status"], "failed");
    assert_eq!(unknown["attempts"], 1, "{unknown}");
    assert!(
        unknown["error"]
            .as_str()
            .unwrap_or("")
            .contains("could not find connection NOPE"),
        "{unknown}"
    );
    assert_eq!(w.last_record("orders")["status"], "success");
}

#[test]
fn no_stream_matched_is_a_failure_not_an_empty_success() {
    let w = World::new();
    w.write_pipeline(
        "wild",
        "source: MISSION\ntarget: COMMAND\ndefaults:\n  object: main.{stream_table}\n  mode: full-refresh\nstreams:\n  main.nomatch_*:\n",
    );
    let run = w.run(&["--pipeline", "wild"]);
    assert_eq!(run.code, Some(1), "{}", run.explain());
    let rec = w.last_record("wild");
    assert_eq!(rec["status"], "failed");
    assert_eq!(rec["attempts"], 1, "not worth retrying: {rec}");
    assert!(
        rec["error"]
            .as_str()
            .unwrap_or("")
            .contains("no stream matched"),
        "{rec}"
    );
}

#[test]
fn single_file_with_sling_config() {
    let w = World::new();
    let file = w.pipelines.join("products.yaml");
    let run = Into::<common::Run>::into(
        w.cmd(&[])
            .env_remove("PIPELINE_DIR")
            .env("SLING_CONFIG", &file)
            .output()
            .expect("run"),
    );
    assert_eq!(run.code, Some(0), "{}", run.explain());
    assert_eq!(count(&w.command, "products"), 3);
    assert!(
        !w.command.exists()
            || sqlite(
                &w.command,
                "select count(*) from sqlite_master where name = 'orders'"
            ) == "0"
    );
}

#[test]
fn usage_errors_exit_2_and_name_the_variable() {
    let w = World::new();
    type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<&'a str>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("MISSION_CLUSTER_ID", "")],
            vec![],
            "MISSION_CLUSTER_ID",
        ),
        (
            vec![("SYNC_BACKOFF_BASE", "fast")],
            vec![],
            "SYNC_BACKOFF_BASE",
        ),
        (
            vec![("SYNC_MAX_RETRIES", "three")],
            vec![],
            "SYNC_MAX_RETRIES",
        ),
        (vec![("SYNC_MODE", "full")], vec![], "SYNC_MODE"),
        (vec![("SLING_CONFIG", "/x.yaml")], vec![], "SLING_CONFIG"),
        (
            vec![],
            vec!["--pipeline", "nope"],
            "unknown pipeline `nope`",
        ),
        (
            vec![("PIPELINE_DIR", "/nonexistent-dir")],
            vec![],
            "PIPELINE_DIR",
        ),
        (
            vec![("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")],
            vec![],
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
    ];
    for (env, args, needle) in cases {
        let mut c = w.cmd(&args);
        for (k, v) in &env {
            c.env(k, v);
        }
        let run = common::Run::from(c.output().expect("run"));
        assert_eq!(run.code, Some(2), "{env:?} {args:?}: {}", run.explain());
        assert!(
            run.stderr.contains(needle),
            "{env:?}: stderr should name {needle}: {}",
            run.stderr
        );
        assert!(
            !w.state.join("history.jsonl").exists(),
            "nothing may run on a usage error"
        );
    }
    let empty = tempfile::tempdir().expect("tempdir");
    let run = common::Run::from(
        w.cmd(&[])
            .env("PIPELINE_DIR", empty.path())
            .output()
            .expect("run"),
    );
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("no pipeline files"), "{}", run.stderr);
}

#[test]
fn console_without_a_terminal_suggests_batch() {
    let w = World::new();
    let mut c = w.cmd(&[]);
    // Rebuild without --batch.
    let out = std::process::Command::new(common::WRAPPER)
        .envs(
            c.get_envs()
                .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
        )
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run");
    let _ = &mut c;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--batch"));
}

#[test]
fn json_lines_carry_job_id_and_sling_lines() {
    let w = World::new();
    let run = Into::<common::Run>::into(
        w.cmd(&["--pipeline", "products"])
            .env("SYNC_JOB_ID", "job-42")
            .output()
            .expect("run"),
    );
    assert_eq!(run.code, Some(0), "{}", run.explain());
    let inserted = run
        .lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("inserted 3 rows into"))
        })
        .expect("Sling's row-count line is passed through");
    assert_eq!(inserted["sync_job_id"], "job-42");
    assert_eq!(inserted["pipeline"], "products");
    assert_eq!(inserted["level"], "INFO");
    let job = run
        .lines
        .iter()
        .find(|l| l["message"] == "job finished")
        .expect("job summary line");
    assert_eq!(job["rows_synced"], 3);
    assert_eq!(job["status"], "success");
    assert_eq!(w.last_record("products")["sync_job_id"], "job-42");
}

/// Text output rounds durations for people; JSON output keeps them exact.
#[test]
fn text_output_rounds_durations_and_json_keeps_them_exact() {
    let w = World::new();
    let json = w.cmd(&["--pipeline", "products"]);
    let mut text = std::process::Command::new(common::WRAPPER);
    text.args(["--batch", "--log-format", "text", "--pipeline", "products"])
        .env_clear()
        .envs(json.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdin(std::process::Stdio::null());
    let out = text.output().expect("run wrapper");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let finished = stdout
        .lines()
        .find(|l| l.contains("pipeline finished"))
        .unwrap_or_else(|| panic!("no pipeline finished line:\n{stdout}"));
    let duration = finished
        .split_whitespace()
        .find_map(|f| f.strip_prefix("duration_seconds="))
        .unwrap_or_else(|| panic!("no duration in: {finished}"));
    let (number, unit) = duration.split_at(duration.len() - 1);
    assert_eq!(unit, "s", "{finished}");
    let decimals = number.split_once('.').map_or(0, |(_, d)| d.len());
    assert!(decimals <= 2, "not rounded: {finished}");

    let exact = w.run(&["--pipeline", "products"]);
    let d = exact.finished("products")["duration_seconds"]
        .as_f64()
        .expect("a number");
    assert!(
        d > 0.0 && d.to_string().len() > 5,
        "JSON keeps full precision: {d}"
    );
}
