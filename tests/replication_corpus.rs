//! A corpus of replication files covering what Sling 1.4.11 documents (env, placeholders, blank mode, LOCAL and file
//! streams, disabled streams, tags, `sql:`, wildcards, options, hooks). Each is run with the real Sling against SQLite,
//! then resolved and verified by the wrapper: what Sling runs, the wrapper must understand.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::sling_exec::Env;
use common::sqlite;
use sling_sync_wrapper::sync::resolve::resolve;
use sling_sync_wrapper::sync::verify::{StreamStatus, VerifyStatus};

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/replications");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "corpus present: {files:?}");
    files
}

fn world() -> (tempfile::TempDir, Env) {
    let d = tempfile::tempdir().expect("tempdir");
    let m = d.path().join("mission.db");
    let c = d.path().join("command.db");
    sqlite(
        &m,
        "create table orders (id integer primary key, customer_id integer, amount real, updated_at text);
         create table customers (id integer primary key, name text, updated_at text);
         create table products (id integer primary key, sku text, price real);
         insert into customers values (1, 'Ada', '2026-01-01 08:00:00');
         insert into orders values (1, 1, 19.9, '2026-01-02 10:00:00'), (2, 1, 5.0, '2026-01-02 11:00:00');
         insert into products values (1, 'SKU-1', 9.5), (2, 'SKU-2', 1.0);",
    );
    let env = Env::new(&[
        ("MISSION", format!("sqlite://{}", m.display())),
        ("COMMAND", format!("sqlite://{}", c.display())),
        ("CORPUS_TARGET", "COMMAND".to_string()),
    ]);
    (d, env)
}

#[tokio::test]
async fn every_corpus_file_runs_in_sling_and_verifies_without_drift_or_error() {
    let (_d, env) = world();
    let cwd = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/replications");
    let mut matched = Vec::new();
    for file in corpus() {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let yaml = std::fs::read_to_string(&file).expect("read");
        let out = env.run_file(&file, &cwd);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if name.contains("hooks") {
            // Sling parses hooks but runs them only with a CLI Pro token.
            assert!(
                !out.status.success() && text.contains("to enable hooks"),
                "{name}: {text}"
            );
            continue;
        }
        assert!(out.status.success(), "{name}: Sling failed:\n{text}");
        let report = env.verify(&yaml, &BTreeMap::new()).await;
        assert!(
            matches!(report.status, VerifyStatus::Match | VerifyStatus::Skipped),
            "{name}: {report:#?}"
        );
        for (stream, v) in &report.streams {
            if v.status == StreamStatus::Match {
                matched.push(format!("{name} {stream}"));
            }
            if v.status == StreamStatus::Skipped {
                assert!(
                    v.note.as_deref().is_some_and(|n| !n.is_empty()),
                    "{name} {stream}: a skip says why"
                );
            }
        }
    }
    // env (2) + blank mode (2) + tags/where (2; sql: skipped) + options (2); file and wildcard streams are skipped.
    assert_eq!(matched.len(), 8, "{matched:#?}");
}

#[test]
fn corpus_resolves_as_sling_ran_it() {
    let process: BTreeMap<String, String> =
        [("CORPUS_TARGET".to_string(), "COMMAND".to_string())].into();
    let load = |n: &str| {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/replications")
            .join(n);
        resolve(
            &serde_yaml::from_str(&std::fs::read_to_string(p).expect("read")).expect("yaml"),
            &process,
        )
    };
    let env = load("01-env-placeholders.yaml");
    assert_eq!(
        (env.source.as_deref(), env.target.as_deref()),
        (Some("MISSION"), Some("COMMAND"))
    );
    assert_eq!(env.streams[0].mode, "incremental");
    assert_eq!(
        env.streams[0].object.as_deref(),
        Some("main.env_{stream_table}")
    );
    let blank = load("02-blank-mode.yaml");
    let modes: Vec<&str> = blank.streams.iter().map(|s| s.mode.as_str()).collect();
    assert_eq!(
        modes,
        ["incremental", "full-refresh"],
        "what Sling logged: [mode: incremental], [mode: full-refresh]"
    );
    let files = load("03-local-files.yaml");
    assert!(files.streams.iter().all(|s| s.file));
    let tagged = load("04-disabled-tags-sql.yaml");
    assert_eq!(tagged.enabled_streams().count(), 3);
    assert!(load("05-wildcard.yaml").streams[0].wildcard);
}

#[test]
fn every_corpus_file_passes_noop() {
    let w = common::World::new();
    let corpus_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/replications");
    let out = w
        .cmd(&["--mode", "noop"])
        .env("PIPELINE_DIR", &corpus_dir)
        .env("CORPUS_TARGET", "COMMAND")
        .current_dir(&corpus_dir)
        .output()
        .expect("run wrapper");
    let run = common::Run::from(out);
    assert_eq!(run.code, Some(0), "{}", run.explain());
    let journal = w.journal();
    assert_eq!(journal.len(), corpus().len());
    for rec in &journal {
        let failed: Vec<&serde_json::Value> = rec["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["ok"] == false)
            .collect();
        assert!(failed.is_empty(), "{}: {failed:#?}", rec["pipeline"]);
    }
    let checks = |p: &str| {
        journal
            .iter()
            .find(|r| r["pipeline"] == p)
            .map(|r| r["checks"].to_string())
            .unwrap_or_default()
    };
    assert!(
        checks("01-env-placeholders").contains("source: `{source}` → `MISSION`"),
        "{}",
        checks("01-env-placeholders")
    );
    assert!(checks("03-local-files").contains("built-in local file system connection"));
}
