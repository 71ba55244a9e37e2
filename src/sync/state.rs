//! The wrapper's own state under `SLING_STATE_PATH` (Sling's incremental checkpoint lives in the target, not here):
//!
//! ```text
//! <root>/history.jsonl                  one JSON line per pipeline run (the console reads it at start)
//! <root>/pipelines/<pipeline>/run.lock  held (flock) while the pipeline runs; says who holds it
//! ```
//!
//! Per-pipeline directories live in their own namespace, so no pipeline name (`history.jsonl`, `history.jsonl.1`)
//! can meet the journal. Older versions kept them directly under the root; `migrate_legacy_layout` moves them.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use thiserror::Error;

use super::event::{Mode, PipelineReport, Status};
use super::pipeline_name::{self, NameError};
use super::verify::VerifyReport;

const JOURNAL: &str = "history.jsonl";
/// The namespace of per-pipeline directories.
const PIPELINES: &str = "pipelines";
const LOCK: &str = "run.lock";
/// Written by older versions next to the lock; still recognises (and moves) a directory of the old layout.
const LEGACY_LAST_RUN: &str = "last_run.json";
/// The journal is rotated to `history.jsonl.1` past this size, so it cannot grow without bound.
const JOURNAL_ROTATE_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Debug, Error)]
pub enum StateError {
    #[error("pipeline `{pipeline}` is already running ({holder}); lock file {path}")]
    Locked {
        pipeline: String,
        holder: String,
        path: PathBuf,
    },
    #[error("state path: pipeline `{pipeline}`: {reason}")]
    BadName { pipeline: String, reason: NameError },
    #[error("state path {path}: {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
}

fn io<'a>(path: &'a Path, action: &'static str) -> impl FnOnce(std::io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        path: path.to_owned(),
        action,
        source,
    }
}

/// The state root, shared by all pipelines.
#[derive(Debug, Clone)]
pub struct StateStore {
    root: PathBuf,
}

/// What the journal says, for the console's start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// The newest record of each pipeline, by pipeline name.
    pub latest: Vec<PipelineReport>,
    /// Lines that were not a record and were skipped.
    pub skipped_lines: u64,
}

/// Held while a pipeline runs; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    lock: Flock<File>,
}

impl std::os::fd::AsRawFd for RunLock {
    /// The lock file's descriptor, for a child that must hold the lock too (`SlingCommand::holding`).
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.lock.as_raw_fd()
    }
}

impl StateStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn pipeline_dir(&self, pipeline: &str) -> PathBuf {
        self.root.join(PIPELINES).join(pipeline)
    }

    /// Moves per-pipeline directories of the old layout (`<root>/<pipeline>/`, recognised by a `run.lock` or
    /// `last_run.json` inside) to `<root>/pipelines/<pipeline>/`, and returns the names moved. A rename keeps the lock
    /// file's inode, so a run of an older version that holds the lock across the move still excludes a new one. A
    /// directory whose new place is taken already is left where it is.
    pub fn migrate_legacy_layout(&self) -> Result<Vec<String>, StateError> {
        let namespace = self.root.join(PIPELINES);
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.root, "cannot read directory")(e)),
        };
        let mut legacy = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io(&self.root, "cannot read directory"))?;
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let holds_state = [LOCK, LEGACY_LAST_RUN]
                .iter()
                .any(|f| fs::symlink_metadata(entry.path().join(f)).is_ok_and(|m| m.is_file()));
            if is_dir && holds_state && pipeline_name::validate(&name).is_ok() {
                legacy.push(name);
            }
        }
        let mut moved = Vec::new();
        for name in legacy {
            let from = self.root.join(&name);
            let to = namespace.join(&name);
            if fs::symlink_metadata(&to).is_ok() {
                continue;
            }
            fs::create_dir_all(&namespace).map_err(io(&namespace, "cannot create directory"))?;
            if name == PIPELINES {
                // A pipeline once named `pipelines`: its files sit in the namespace directory itself.
                fs::create_dir_all(&to).map_err(io(&to, "cannot create directory"))?;
                for f in [LOCK, LEGACY_LAST_RUN] {
                    match fs::rename(from.join(f), to.join(f)) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                            return Err(io(&from.join(f), "cannot move to the new layout")(e))
                        }
                        _ => {}
                    }
                }
            } else {
                match fs::rename(&from, &to) {
                    Ok(()) => {}
                    // Another process migrated it first.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io(&from, "cannot move to the new layout")(e)),
                }
            }
            moved.push(name);
        }
        Ok(moved)
    }

    /// Creates the root if needed and proves files can be created in it with an empty probe file. A full disk
    /// passes: that is a run-time failure of the record that cannot be written, not a configuration error.
    pub fn check_writable(&self) -> Result<(), StateError> {
        fs::create_dir_all(&self.root).map_err(io(&self.root, "cannot create directory"))?;
        let probe = self
            .root
            .join(format!(".write-probe-{}", std::process::id()));
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
            .map_err(io(&self.root, "not writable"))?;
        fs::remove_file(&probe).map_err(io(&probe, "cannot remove probe file"))?;
        Ok(())
    }

    /// The pipeline's directory, for a name that is one safe path component.
    fn checked_dir(&self, pipeline: &str) -> Result<PathBuf, StateError> {
        pipeline_name::validate(pipeline).map_err(|reason| StateError::BadName {
            pipeline: pipeline.to_owned(),
            reason,
        })?;
        Ok(self.pipeline_dir(pipeline))
    }

    /// Takes the per-pipeline run lock without waiting. A second holder gets `StateError::Locked` and touches nothing.
    pub fn lock(&self, pipeline: &str, job_id: &str) -> Result<RunLock, StateError> {
        let dir = self.checked_dir(pipeline)?;
        fs::create_dir_all(&dir).map_err(io(&dir, "cannot create directory"))?;
        let path = dir.join(LOCK);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path, "cannot open lock file"))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut lock) => {
                let holder = format!(
                    "pid {} job {} since {}",
                    std::process::id(),
                    job_id,
                    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
                // Best effort: the lock itself is the flock, the text only helps the operator who is refused.
                let _ = lock.set_len(0);
                let _ = lock.seek(SeekFrom::Start(0));
                let _ = lock.write_all(holder.as_bytes());
                Ok(RunLock { lock })
            }
            Err((mut file, errno)) if errno == nix::errno::Errno::EWOULDBLOCK => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = if holder.trim().is_empty() {
                    "held by another process".into()
                } else {
                    holder
                };
                Err(StateError::Locked {
                    pipeline: pipeline.to_owned(),
                    holder,
                    path,
                })
            }
            Err((_, errno)) => Err(StateError::Io {
                path,
                action: "cannot lock",
                source: std::io::Error::from_raw_os_error(errno as i32),
            }),
        }
    }

    /// Is the pipeline's run lock held by anyone right now? Read from `/proc/locks` (Linux), so looking never takes
    /// the lock and can never make another process's run be refused. `None` when it cannot be told.
    pub fn lock_held(&self, pipeline: &str) -> Option<bool> {
        use std::os::unix::fs::MetadataExt;
        let meta = match fs::metadata(self.pipeline_dir(pipeline).join(LOCK)) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(false),
            Err(_) => return None,
        };
        let locks = fs::read_to_string("/proc/locks").ok()?;
        Some(flock_listed(&locks, meta.dev(), meta.ino()))
    }

    /// Records a finished run: one line in the journal.
    pub fn record(&self, report: &PipelineReport) -> Result<(), StateError> {
        let json = serde_json::to_string(report).map_err(|e| StateError::Io {
            path: self.root.clone(),
            action: "cannot serialise run record",
            source: std::io::Error::other(e),
        })?;
        fs::create_dir_all(&self.root).map_err(io(&self.root, "cannot create directory"))?;
        self.append_journal(&json)
    }

    fn append_journal(&self, json: &str) -> Result<(), StateError> {
        let path = self.root.join(JOURNAL);
        if fs::metadata(&path)
            .map(|m| m.len() > JOURNAL_ROTATE_BYTES)
            .unwrap_or(false)
        {
            let _ = fs::rename(&path, self.root.join(format!("{JOURNAL}.1")));
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io(&path, "cannot open"))?;
        // One write per line: O_APPEND keeps concurrent writers' lines whole. After a torn last line (a crash or a
        // full disk mid-write) the record starts a line of its own, so the torn one is skipped by readers, not
        // glued onto this one.
        let mut line = String::with_capacity(json.len() + 2);
        if ends_torn(&file).map_err(io(&path, "cannot read"))? {
            line.push('\n');
        }
        line.push_str(json);
        line.push('\n');
        file.write_all(line.as_bytes())
            .map_err(io(&path, "cannot append"))
    }

    /// The most recent verification of `pipeline` in the journal (for `incremental_recopy`), newest line first,
    /// then the rotated journal. Read as bytes: a torn line or a bad byte hides only itself.
    pub fn last_verification(&self, pipeline: &str) -> Option<VerifyReport> {
        let needle = format!("\"pipeline\":{}", serde_json::to_string(pipeline).ok()?);
        [
            self.root.join(JOURNAL),
            self.root.join(format!("{JOURNAL}.1")),
        ]
        .iter()
        .find_map(|path| {
            let bytes = fs::read(path).ok()?;
            bytes
                .split(|b| *b == b'\n')
                .rev()
                .filter(|l| {
                    let l = String::from_utf8_lossy(l);
                    l.contains(&needle) && l.contains("\"verify\"")
                })
                .filter_map(|l| serde_json::from_slice::<PipelineReport>(l).ok())
                .find_map(|r| r.verify.filter(|v| !v.streams.is_empty()))
        })
    }

    /// The newest journal record of each pipeline, read at console start (`history` with the count dropped).
    pub fn last_runs(&self) -> Vec<PipelineReport> {
        self.history().latest
    }

    /// The newest journal record of each pipeline, from the rotated journal and then the current one. The files are
    /// read line by line as bytes: a line that is not a record (a torn write, a bad byte) is skipped and counted,
    /// and hides nothing else.
    pub fn history(&self) -> History {
        let mut latest: std::collections::BTreeMap<String, PipelineReport> = Default::default();
        let mut skipped = 0;
        for path in [
            self.root.join(format!("{JOURNAL}.1")),
            self.root.join(JOURNAL),
        ] {
            let Ok(file) = File::open(&path) else {
                continue;
            };
            let mut reader = std::io::BufReader::new(file);
            let mut line = Vec::new();
            loop {
                line.clear();
                match std::io::BufRead::read_until(&mut reader, b'\n', &mut line) {
                    Ok(0) => break,
                    Ok(_) => {}
                    // A read error (e.g. the journal is a directory) ends this file; it is not a line to count.
                    Err(_) => break,
                }
                if line.trim_ascii().is_empty() {
                    continue;
                }
                match serde_json::from_slice::<PipelineReport>(&line) {
                    Ok(r) => {
                        latest.insert(r.pipeline.clone(), r);
                    }
                    Err(_) => skipped += 1,
                }
            }
        }
        History {
            latest: latest.into_values().collect(),
            skipped_lines: skipped,
        }
    }

    /// When each pipeline last synced successfully (noop runs check, they do not sync), from the rotated journal and
    /// the current one. Read once per job: the journal can hold megabytes.
    pub fn last_successes(
        &self,
    ) -> std::collections::BTreeMap<String, chrono::DateTime<chrono::Utc>> {
        #[derive(serde::Deserialize)]
        struct Entry {
            pipeline: String,
            mode: Mode,
            status: Status,
            finished_at: chrono::DateTime<chrono::Utc>,
        }
        let mut out = std::collections::BTreeMap::new();
        for file in [format!("{JOURNAL}.1"), JOURNAL.to_owned()] {
            let Ok(text) = fs::read_to_string(self.root.join(file)) else {
                continue;
            };
            let entries = text
                .lines()
                .filter(|l| l.contains("\"success\""))
                .filter_map(|l| serde_json::from_str::<Entry>(l).ok())
                .filter(|e| e.status == Status::Success && e.mode != Mode::Noop);
            for e in entries {
                let newest = out.entry(e.pipeline).or_insert(e.finished_at);
                *newest = (*newest).max(e.finished_at);
            }
        }
        out
    }

    /// Every journal record, oldest first: the rotated file, then the current one. Read line by line; lines that
    /// do not parse (a torn write, an older format) are skipped.
    pub fn for_each_record(&self, filter: Option<&str>, mut f: impl FnMut(PipelineReport)) {
        // A cheap text test before parsing, for reading one pipeline's lines out of a large journal.
        let needle = filter.and_then(|p| {
            serde_json::to_string(p)
                .ok()
                .map(|q| format!("\"pipeline\":{q}"))
        });
        for path in [
            self.root.join(format!("{JOURNAL}.1")),
            self.root.join(JOURNAL),
        ] {
            let Ok(file) = File::open(&path) else {
                continue;
            };
            for line in BufReader::new(file).split(b'\n') {
                let Ok(line) = line else { break };
                if needle
                    .as_deref()
                    .is_some_and(|n| !line.windows(n.len()).any(|w| w == n.as_bytes()))
                {
                    continue;
                }
                if let Ok(r) = serde_json::from_slice::<PipelineReport>(&line) {
                    f(r);
                }
            }
        }
    }

    /// For each pipeline, its newest sync run (incremental or backfill) and its newest noop: the console's starting
    /// point, so a noop never hides how the last sync went.
    pub fn latest_runs(&self) -> Vec<PipelineReport> {
        let mut latest: std::collections::BTreeMap<(String, bool), PipelineReport> =
            Default::default();
        self.for_each_record(None, |r| {
            latest.insert((r.pipeline.clone(), r.mode == Mode::Noop), r);
        });
        latest.into_values().collect()
    }

    /// One pipeline's runs, newest first, at most `limit`.
    pub fn pipeline_history(&self, pipeline: &str, limit: usize) -> Vec<PipelineReport> {
        let mut runs = std::collections::VecDeque::with_capacity(limit.min(64));
        self.for_each_record(Some(pipeline), |r| {
            if r.pipeline == pipeline {
                if runs.len() == limit {
                    runs.pop_front();
                }
                runs.push_back(r);
            }
        });
        runs.into_iter().rev().collect()
    }
}

/// True when the file is not empty and its last byte is not a newline.
fn ends_torn(file: &File) -> std::io::Result<bool> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    Ok(last[0] != b'\n')
}

/// Whether `/proc/locks` lists a FLOCK on the file with this device and inode (`MAJ:MIN:INODE`, hex device).
fn flock_listed(locks: &str, dev: u64, ino: u64) -> bool {
    // glibc's major()/minor() encoding of a dev_t.
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let id = format!("{major:02x}:{minor:02x}:{ino}");
    locks.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // `1: FLOCK  ADVISORY  WRITE 10226 fe:00:5554242 0 EOF`; a waiter's line starts with `->`.
        f.get(1) == Some(&"FLOCK") && f.get(5) == Some(&id.as_str())
    })
}

#[cfg(test)]
mod tests {
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
    fn record_appends_to_the_journal_and_last_runs_keeps_the_newest() {
        let d = tempfile::tempdir().expect("tempdir");
        let s = StateStore::new(d.path().join("state"));
        s.record(&report("a", 1)).expect("record");
        s.record(&report("a", 2)).expect("record");
        s.record(&report("b", 5)).expect("record");
        let last: Vec<(String, u64)> = s
            .last_runs()
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
        assert_eq!(s.last_runs().first().map(|r| r.rows), Some(3));
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
            .latest_runs()
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
        assert_eq!(s.last_runs().len(), 4);
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
}
