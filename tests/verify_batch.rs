//! Verification after each successful run, end to end: the wrapper in `--batch` with the real Sling 1.4.11 on
//! SQLite (the shim only where a verification query must hang or fail).

mod common;

use std::path::{Path, PathBuf};

use common::{sqlite, Run, World};

fn verify_of(w: &World, pipeline: &str) -> serde_json::Value {
    w.last_record(pipeline)["verify"].clone()
}

fn verify_line(run: &Run, pipeline: &str) -> String {
    run.lines
        .iter()
        .find(|l| l["pipeline"] == pipeline && l["verify_status"].is_string())
        .and_then(|l| l["message"].as_str())
        .unwrap_or_else(|| panic!("no verify line for {pipeline}:\n{}", run.explain()))
        .to_owned()
}

#[test]
fn deleted_source_rows_are_drift_strict_fails_report_does_not() {
    let w = World::new();
    let first = w.run(&[]);
    assert_eq!(first.code, Some(0), "{}", first.explain());
    let v = verify_of(&w, "orders");
    assert_eq!(v["status"], "match", "{v}");
    assert_eq!(v["streams"]["main.orders"]["source_rows"], 3, "{v}");
    assert_eq!(v["streams"]["main.orders"]["drift_rows"], 0, "{v}");
    assert_eq!(verify_line(&first, "orders"), "verify: match");
    assert_eq!(verify_of(&w, "products")["status"], "match");

    // Incremental mode never deletes: two rows gone on the mission side stay in the command database. (Deleting
    // the newest row as well would add `checkpoint_ahead`: the target then holds a key the source no longer has.)
    sqlite(&w.mission, "delete from orders where id in (1, 2)");
    let report = w.run(&["--pipeline", "orders"]);
    assert_eq!(
        report.code,
        Some(0),
        "report mode keeps the sync result: {}",
        report.explain()
    );
    let v = verify_of(&w, "orders");
    let o = &v["streams"]["main.orders"];
    assert_eq!(v["status"], "drift", "{v}");
    assert_eq!(
        (o["source_rows"].as_u64(), o["target_rows"].as_u64()),
        (Some(1), Some(3)),
        "{v}"
    );
    assert_eq!(o["drift_rows"], 2);
    assert_eq!(o["warnings"], serde_json::json!(["deletes_not_propagated"]));
    assert_eq!(w.last_record("orders")["status"], "success");
    assert_eq!(
        verify_line(&report, "orders"),
        "verify: drift main.orders +2 (deletes_not_propagated)"
    );
    // Each stream's line names its pipeline too: batch output shows event fields, not the span's.
    let stream_line = report
        .lines
        .iter()
        .find(|l| l["message"] == "verify stream" && l["stream"] == "main.orders")
        .unwrap_or_else(|| panic!("no verify stream line:\n{}", report.explain()));
    assert_eq!(stream_line["pipeline"], "orders", "{stream_line}");
    assert_eq!(stream_line["drift_rows"], 2, "{stream_line}");

    let strict = w.run(&["--pipeline", "orders", "--verify", "strict"]);
    assert_eq!(strict.code, Some(1), "{}", strict.explain());
    let rec = w.last_record("orders");
    assert_eq!(rec["status"], "failed");
    assert!(
        rec["error"]
            .as_str()
            .is_some_and(|e| e.contains("SYNC_VERIFY=strict")),
        "{rec}"
    );

    // Rows lost on the command side.
    sqlite(&w.command, "delete from customers where id = 1");
    let run = w.run(&["--pipeline", "orders"]);
    assert_eq!(run.code, Some(0));
    let c = &verify_of(&w, "orders")["streams"]["main.customers"];
    assert_eq!(c["drift_rows"], -1, "{c}");
    assert_eq!(c["warnings"], serde_json::json!(["rows_missing"]));

    // A backfill reloads everything: the drift is gone, and copying everything is not an `incremental_recopy`.
    let backfill = w.run(&["--pipeline", "orders", "--mode", "backfill"]);
    assert_eq!(backfill.code, Some(0), "{}", backfill.explain());
    let v = verify_of(&w, "orders");
    assert_eq!(v["status"], "match", "{v}");
    assert_eq!(
        v["streams"]["main.orders"]["warnings"],
        serde_json::json!([]),
        "{v}"
    );
}

#[test]
fn timestamp_update_key_is_seen_recopying_by_the_second_unchanged_run() {
    let w = World::new();
    std::fs::remove_file(w.pipelines.join("products.yaml")).expect("rm");
    sqlite(
        &w.mission,
        "create table events (id integer primary key, updated_at timestamp);
         insert into events values (1, '2024-01-03T07:33:20Z'), (2, '2024-01-03T07:33:21Z');",
    );
    w.write_pipeline(
        "orders",
        "source: MISSION\ntarget: COMMAND\ndefaults:\n  mode: incremental\n  object: main.{stream_table}\n  primary_key: [id]\n  update_key: updated_at\nstreams:\n  main.events:\n",
    );
    for _ in 0..2 {
        assert_eq!(w.run(&[]).code, Some(0));
    }
    let rec = w.last_record("orders");
    assert_eq!(
        rec["streams"]["main.events"], 2,
        "Sling copied both rows again: {rec}"
    );
    let e = &rec["verify"]["streams"]["main.events"];
    assert_eq!(
        e["status"], "match",
        "whole tables, never a bogus drift: {e}"
    );
    assert_eq!(
        e["warnings"],
        serde_json::json!(["incremental_recopy", "checkpoint_mismatch"]),
        "{e}"
    );
}

fn shim() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sling-shim.sh")
}

/// The wrapper with the shim as Sling; the shim records every call (runs and queries) and passes runs to the real Sling.
fn shim_run(w: &World, mode: &str, args: &[&str]) -> (Run, Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = w
        .cmd(args)
        .env("SLING_BIN", shim())
        .env("SHIM_DIR", dir.path())
        .env("SHIM_MODE", mode)
        .env("SHIM_FAILS", "0")
        .env("SHIM_REAL", common::sling_bin())
        .output()
        .expect("run wrapper");
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let calls = (read("invocations") + &read("queries"))
        .lines()
        .map(|l| {
            l.split_once(' ')
                .map(|(_, a)| a.to_owned())
                .unwrap_or_default()
        })
        .collect();
    (Run::from(out), calls)
}

#[test]
fn off_runs_no_query_and_report_one_call_per_connection() {
    let w = World::new();
    let (run, calls) = shim_run(
        &w,
        "fail_then_real",
        &["--pipeline", "orders", "--verify", "off"],
    );
    assert_eq!(run.code, Some(0), "{}", run.explain());
    assert!(calls.iter().all(|c| !c.starts_with("conns")), "{calls:?}");
    assert_eq!(
        verify_of(&w, "orders"),
        serde_json::json!({"status": "off", "streams": {}})
    );

    let (run, calls) = shim_run(&w, "fail_then_real", &["--pipeline", "orders"]);
    assert_eq!(run.code, Some(0), "{}", run.explain());
    let execs: Vec<&String> = calls
        .iter()
        .filter(|c| c.starts_with("conns exec"))
        .collect();
    assert_eq!(
        execs.len(),
        2,
        "one call per side, nothing new so no as-of call: {calls:?}"
    );
    assert!(
        execs.iter().any(|c| c.starts_with("conns exec MISSION ")),
        "{execs:?}"
    );
    assert!(
        execs.iter().any(|c| c.starts_with("conns exec COMMAND ")),
        "{execs:?}"
    );
    assert_eq!(verify_of(&w, "orders")["status"], "match");
}

#[test]
fn a_hanging_or_failing_verification_is_an_error_and_changes_nothing() {
    let w = World::new();
    let (run, _) = shim_run(
        &w,
        "exec_hang",
        &[
            "--pipeline",
            "orders",
            "--verify",
            "strict",
            "--verify-timeout",
            "1s",
        ],
    );
    assert_eq!(
        run.code,
        Some(0),
        "an error never fails the sync: {}",
        run.explain()
    );
    let rec = w.last_record("orders");
    assert_eq!(rec["status"], "success");
    let v = &rec["verify"];
    assert_eq!(v["status"], "error", "{v}");
    assert_eq!(v["streams"]["main.orders"]["status"], "error");
    assert!(
        v["streams"]["main.orders"]["drift_rows"].is_null(),
        "never drift: {v}"
    );
    assert!(
        v["note"]
            .as_str()
            .is_some_and(|n| n.contains("SYNC_VERIFY_TIMEOUT")),
        "{v}"
    );

    let (run, _) = shim_run(&w, "exec_fail", &["--pipeline", "orders"]);
    assert_eq!(run.code, Some(0), "{}", run.explain());
    let v = verify_of(&w, "orders");
    assert_eq!(v["status"], "error", "{v}");
    assert!(v.to_string().contains("connection refused"), "{v}");
    let journal = std::fs::read_to_string(w.state.join("history.jsonl")).expect("journal");
    for (what, text) in [
        ("stdout", &run.stdout),
        ("stderr", &run.stderr),
        ("journal", &journal),
    ] {
        assert!(!text.contains("s3cret-pw"), "password in {what}:\n{text}");
    }
}

#[test]
fn noop_names_added_dropped_retyped_columns_missing_keys_and_a_checkpoint_ahead() {
    let w = World::new();
    assert_eq!(w.run(&[]).code, Some(0));
    sqlite(
        &w.mission,
        "create table o2 (id integer primary key, amount text, updated_at text, extra int);
         insert into o2 select id, amount, updated_at, 0 from orders; drop table orders; alter table o2 rename to orders;",
    );
    sqlite(
        &w.command,
        "update customers set updated_at = '2030-01-01 00:00:00' where id = 2",
    );
    w.write_pipeline(
        "products",
        "source: MISSION\ntarget: COMMAND\nstreams:\n  main.products:\n    mode: incremental\n    object: main.products\n    primary_key: [id]\n    update_key: modified_at\n",
    );
    let run = w.run(&["--mode", "noop"]);
    assert_eq!(
        run.code,
        Some(1),
        "a retyped column and a missing key fail noop: {}",
        run.explain()
    );
    let details = |p: &str| -> Vec<(bool, bool, String)> {
        w.last_record(p)["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["name"] == "schema" || c["name"] == "checkpoint")
            .map(|c| {
                (
                    c["ok"].as_bool().unwrap_or(false),
                    c["warning"].as_bool().unwrap_or(false),
                    c["detail"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    let orders = details("orders");
    let has = |list: &[(bool, bool, String)], ok: bool, warning: bool, text: &str| {
        list.iter()
            .any(|(o, w, d)| *o == ok && *w == warning && d.contains(text))
    };
    assert!(
        has(
            &orders,
            false,
            false,
            "column `amount` changed type: source text, target real / decimal"
        ),
        "{orders:#?}"
    );
    assert!(
        has(
            &orders,
            true,
            true,
            "source column `extra` (int / integer) is not in the target"
        ),
        "{orders:#?}"
    );
    assert!(
        has(
            &orders,
            true,
            true,
            "target column `customer_id` (bigint) is no longer in the source"
        ),
        "{orders:#?}"
    );
    assert!(
        has(
            &orders,
            true,
            true,
            "stream `main.customers`: checkpoint_ahead"
        ),
        "{orders:#?}"
    );
    assert!(
        has(
            &orders,
            true,
            false,
            "stream `main.customers`: source and target agree"
        ),
        "{orders:#?}"
    );
    let products = details("products");
    assert!(
        has(
            &products,
            false,
            false,
            "update_key column `modified_at` is not in the source table"
        ),
        "{products:#?}"
    );
}

#[test]
fn postgres_deletes_are_drift_and_strict_fails() {
    let (Some(mission), Some(command)) = (
        common::PgDb::create("ssw_vb_m"),
        common::PgDb::create("ssw_vb_c"),
    ) else {
        return;
    };
    mission.sql(
        "create table orders (id int primary key, note text, updated_at timestamptz not null);
         insert into orders select g, 'n' || g, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second'
           from generate_series(1, 500) g;",
    );
    let mut w = World::new();
    std::fs::remove_file(w.pipelines.join("orders.yaml")).expect("rm");
    std::fs::remove_file(w.pipelines.join("products.yaml")).expect("rm");
    w.env.insert("MISSION_PG".into(), mission.url());
    w.env.insert("COMMAND_PG".into(), command.url());
    w.write_pipeline(
        "pg",
        "source: MISSION_PG\ntarget: COMMAND_PG\ndefaults:\n  mode: incremental\n  object: public.{stream_table}\n  primary_key: [id]\n  update_key: updated_at\nstreams:\n  public.orders:\n",
    );
    assert_eq!(w.run(&[]).code, Some(0));
    assert_eq!(verify_of(&w, "pg")["status"], "match");

    mission.sql("delete from orders where id between 10 and 16");
    let run = w.run(&["--verify", "strict"]);
    assert_eq!(run.code, Some(1), "{}", run.explain());
    let o = &verify_of(&w, "pg")["streams"]["public.orders"];
    assert_eq!(
        (o["source_rows"].as_u64(), o["target_rows"].as_u64()),
        (Some(493), Some(500)),
        "{o}"
    );
    assert_eq!(o["drift_rows"], 7);
    assert_eq!(o["warnings"], serde_json::json!(["deletes_not_propagated"]));
    assert_eq!(
        verify_line(&run, "pg"),
        "verify: drift public.orders +7 (deletes_not_propagated)"
    );
}
