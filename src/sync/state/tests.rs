use super::*;
use crate::sync::event::Status;

fn report(p: &str, rows: u64) -> PipelineReport {
    let now = chrono::Utc::now();
    PipelineReport {
        sync_job_id: "j".into(),
        pipeline: p.into(),
        mode: Mode::Incremental,
        status: Status::Success,
        rows,
        streams: Default::default(),
        attempts: 1,
        started_at: now,
        finished_at: now,
        duration_seconds: 0.5,
        error: None,
        checks: vec![],
        verify: None,
    }
}

#[test]
fn second_lock_is_refused_and_names_the_holder() {
    let d = tempfile::tempdir().expect("tempdir");
    let s = StateStore::new(d.path());
    let held = s.lock("orders", "job-1").expect("first lock");
    match s.lock("orders", "job-2") {
        Err(StateError::Locked { holder, .. }) => assert!(holder.contains("job-1"), "{holder}"),
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(held);
    s.lock("orders", "job-3").expect("free again after drop");
}

#[test]
fn record_appends_to_the_journal_and_history_keeps_the_newest() {
    let d = tempfile::tempdir().expect("tempdir");
    let s = StateStore::new(d.path().join("state"));
    s.record(&report("a", 1)).expect("record");
    s.record(&report("a", 2)).expect("record");
    s.record(&report("b", 5)).expect("record");
    let last: Vec<(String, u64)> = s
        .history()
        .latest
        .into_iter()
        .map(|r| (r.pipeline, r.rows))
        .collect();
    assert_eq!(last, vec![("a".into(), 2), ("b".into(), 5)]);
    let journal = fs::read_to_string(s.root().join(JOURNAL)).expect("journal");
    assert_eq!(journal.lines().count(), 3);
    // The journal is the only file a run writes.
    let files: Vec<String> = fs::read_dir(s.root())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, [JOURNAL]);
}

#[test]
fn last_successes_come_from_both_journals_and_ignore_failures_and_noop() {
    let d = tempfile::tempdir().expect("tempdir");
    let s = StateStore::new(d.path());
    let at = |secs: i64| chrono::DateTime::from_timestamp(secs, 0).expect("time");
    let run = |p: &str, mode: Mode, status: Status, secs: i64| PipelineReport {
        mode,
        status,
        finished_at: at(secs),
        ..report(p, 1)
    };
    s.record(&run("a", Mode::Incremental, Status::Success, 100))
        .expect("record");
    s.record(&run("b", Mode::Backfill, Status::Success, 150))
        .expect("record");
    fs::rename(
        d.path().join(JOURNAL),
        d.path().join(format!("{JOURNAL}.1")),
    )
    .expect("rotate");
    s.record(&run("a", Mode::Incremental, Status::Failed, 300))
        .expect("record");
    s.record(&run("b", Mode::Incremental, Status::Success, 200))
        .expect("record");
    s.record(&run("b", Mode::Noop, Status::Success, 400))
        .expect("record");
    s.record(&run("c", Mode::Incremental, Status::Cancelled, 500))
        .expect("record");
    fs::write(
        d.path().join(JOURNAL),
        fs::read_to_string(d.path().join(JOURNAL)).expect("read") + "not json \"success\"\n",
    )
    .expect("append garbage");
    let last = s.last_successes();
    assert_eq!(
        last.get("a"),
        Some(&at(100)),
        "a failure keeps the last success"
    );
    assert_eq!(last.get("b"), Some(&at(200)), "noop is not a sync");
    assert_eq!(last.get("c"), None, "never succeeded");
}

#[test]
fn hostile_names_take_no_lock_and_create_nothing() {
    let d = tempfile::tempdir().expect("tempdir");
    let root = d.path().join("state");
    let s = StateStore::new(&root);
    for name in ["..", ".", "a/../..", "", "x\ny"] {
        assert!(
            matches!(s.lock(name, "j"), Err(StateError::BadName { .. })),
            "{name:?}"
        );
    }
    assert!(!root.exists());
}

#[test]
fn a_record_after_a_torn_line_starts_a_line_of_its_own() {
    let d = tempfile::tempdir().expect("tempdir");
    let s = StateStore::new(d.path());
    s.record(&report("a", 1)).expect("record");
    let journal = d.path().join(JOURNAL);
    let mut f = OpenOptions::new()
        .append(true)
        .open(&journal)
        .expect("open");
    f.write_all(br#"{"sync_job_id":"j","pipeline":"a","ro"#)
        .expect("tear");
    drop(f);
    s.record(&report("a", 3)).expect("record");
    let text = fs::read_to_string(&journal).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        serde_json::from_str::<PipelineReport>(lines[2]).is_ok(),
        "{text}"
    );
    assert_eq!(s.history().latest.first().map(|r| r.rows), Some(3));
}

#[test]
fn bad_bytes_and_torn_lines_are_skipped_and_counted_and_hide_nothing_else() {
    let d = tempfile::tempdir().expect("tempdir");
    let s = StateStore::new(d.path());
    s.record(&report("a", 1)).expect("record");
    let journal = d.path().join(JOURNAL);
    let mut f = OpenOptions::new()
        .append(true)
        .open(&journal)
        .expect("open");
    f.write_all(b"{\"pipeline\":\"\xff\"}\nnot json\n\n")
        .expect("write");
    drop(f);
    s.record(&report("b", 2)).expect("record");
    fs::write(
        d.path().join(format!("{JOURNAL}.1")),
        serde_json::to_string(&report("old", 9)).expect("json") + "\n",
    )
    .expect("write");
    let h = s.history();
    assert_eq!(h.skipped_lines, 2);
    let rows: Vec<(String, u64)> = h.latest.into_iter().map(|r| (r.pipeline, r.rows)).collect();
    assert_eq!(
        rows,
        vec![("a".into(), 1), ("b".into(), 2), ("old".into(), 9)]
    );
}

#[test]
fn history_is_newest_first_per_pipeline_and_skips_torn_lines() {
    let d = tempfile::tempdir().expect("tempdir");
    let s = StateStore::new(d.path());
    s.record(&report("a", 1)).expect("record");
    s.record(&report("ab", 7)).expect("record");
    // A torn line, as a crash mid-write leaves it.
    fs::OpenOptions::new()
        .append(true)
        .open(d.path().join(JOURNAL))
        .and_then(|mut f| f.write_all(b"{\"sync_job_id\":\"j\",\"pipeline\":\"a\",\"mo\n"))
        .expect("append");
    s.record(&report("a", 2)).expect("record");
    let mut noop = report("a", 0);
    noop.mode = Mode::Noop;
    s.record(&noop).expect("record");
    let rows: Vec<u64> = s.pipeline_history("a", 10).iter().map(|r| r.rows).collect();
    assert_eq!(rows, [0, 2, 1]);
    assert_eq!(s.pipeline_history("a", 2).len(), 2);
    let latest: Vec<(String, Mode, u64)> = s
        .history()
        .latest
        .into_iter()
        .map(|r| (r.pipeline, r.mode, r.rows))
        .collect();
    assert_eq!(
        latest,
        [
            ("a".into(), Mode::Incremental, 2),
            ("a".into(), Mode::Noop, 0),
            ("ab".into(), Mode::Incremental, 7)
        ]
    );
}

#[test]
fn pipeline_names_cannot_meet_the_journal() {
    let d = tempfile::tempdir().expect("tempdir");
    let s = StateStore::new(d.path());
    for name in ["history.jsonl", "history.jsonl.1", "pipelines"] {
        let _lock = s.lock(name, "j").expect("lock");
        s.record(&report(name, 1)).expect("record");
    }
    s.record(&report("orders", 2)).expect("record");
    assert!(d.path().join(JOURNAL).is_file());
    assert_eq!(s.history().latest.len(), 4);
}

#[test]
fn legacy_layout_is_moved_and_a_held_lock_still_excludes() {
    let d = tempfile::tempdir().expect("tempdir");
    for name in ["orders", "pipelines", "history.jsonl"] {
        let old = d.path().join(name);
        fs::create_dir_all(&old).expect("mkdir");
        fs::write(old.join(LEGACY_LAST_RUN), "{}").expect("write");
    }
    // An older version's run holds the orders lock while the new version migrates.
    let held = File::create(d.path().join("orders").join(LOCK)).expect("create");
    let held = Flock::lock(held, FlockArg::LockExclusiveNonblock).expect("flock");
    fs::create_dir_all(d.path().join("not-state")).expect("mkdir");
    let s = StateStore::new(d.path());
    let mut moved = s.migrate_legacy_layout().expect("migrate");
    moved.sort();
    assert_eq!(moved, ["history.jsonl", "orders", "pipelines"]);
    assert!(
        d.path().join("not-state").is_dir(),
        "other directories stay"
    );
    for name in ["orders", "pipelines", "history.jsonl"] {
        assert!(
            s.pipeline_dir(name).join(LEGACY_LAST_RUN).is_file(),
            "{name}"
        );
    }
    assert!(matches!(
        s.lock("orders", "new"),
        Err(StateError::Locked { .. })
    ));
    drop(held);
    s.lock("orders", "new")
        .expect("free after the old run ends");
    s.record(&report("x", 1))
        .expect("the journal can be written again");
    assert_eq!(
        s.migrate_legacy_layout().expect("again"),
        Vec::<String>::new()
    );
}

#[test]
fn lock_held_is_seen_without_taking_the_lock() {
    let d = tempfile::tempdir().expect("tempdir");
    let s = StateStore::new(d.path());
    assert_eq!(s.lock_held("orders"), Some(false), "no lock file yet");
    let held = s.lock("orders", "job-1").expect("lock");
    if std::path::Path::new("/proc/locks").exists() {
        assert_eq!(s.lock_held("orders"), Some(true));
        // Looking did not take it: a second process would still be refused, and the holder keeps it.
        assert!(matches!(
            s.lock("orders", "job-2"),
            Err(StateError::Locked { .. })
        ));
        drop(held);
        assert_eq!(s.lock_held("orders"), Some(false));
    }
}

#[test]
fn unwritable_root_is_an_error_naming_the_path() {
    let d = tempfile::tempdir().expect("tempdir");
    let file = d.path().join("not-a-dir");
    fs::write(&file, b"x").expect("write");
    let err = StateStore::new(file.join("state"))
        .check_writable()
        .expect_err("must fail");
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}
