//! The wrapper's own state under `SLING_STATE_PATH` (Sling's incremental checkpoint lives in the target, not here):
//!
//! ```text
//! <root>/history.jsonl            one JSON line per pipeline run (the console reads it at start)
//! <root>/<pipeline>/run.lock      held (flock) while the pipeline runs; says who holds it
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use thiserror::Error;

use super::event::{Mode, PipelineReport};

const JOURNAL: &str = "history.jsonl";
const LOCK: &str = "run.lock";
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

/// Held while a pipeline runs; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _lock: Flock<File>,
}

impl StateStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn pipeline_dir(&self, pipeline: &str) -> PathBuf {
        self.root.join(pipeline)
    }

    /// Creates the root if needed and proves it is writable by writing and removing a probe file.
    pub fn check_writable(&self) -> Result<(), StateError> {
        fs::create_dir_all(&self.root).map_err(io(&self.root, "cannot create directory"))?;
        let probe = self
            .root
            .join(format!(".write-probe-{}", std::process::id()));
        fs::write(&probe, b"ok").map_err(io(&self.root, "not writable"))?;
        fs::remove_file(&probe).map_err(io(&probe, "cannot remove probe file"))?;
        Ok(())
    }

    /// Takes the per-pipeline run lock without waiting. A second holder gets `StateError::Locked` and touches nothing.
    pub fn lock(&self, pipeline: &str, job_id: &str) -> Result<RunLock, StateError> {
        let dir = self.pipeline_dir(pipeline);
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
                Ok(RunLock { _lock: lock })
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
            .append(true)
            .open(&path)
            .map_err(io(&path, "cannot open"))?;
        // One write per line: O_APPEND keeps concurrent writers' lines whole.
        let mut line = String::with_capacity(json.len() + 1);
        line.push_str(json);
        line.push('\n');
        file.write_all(line.as_bytes())
            .map_err(io(&path, "cannot append"))
    }

    /// The newest journal record of each pipeline, read at console start. Unreadable lines are skipped.
    pub fn last_runs(&self) -> Vec<PipelineReport> {
        let Ok(text) = fs::read_to_string(self.root.join(JOURNAL)) else {
            return Vec::new();
        };
        let mut latest: std::collections::BTreeMap<String, PipelineReport> = Default::default();
        for line in text.lines() {
            if let Ok(r) = serde_json::from_str::<PipelineReport>(line) {
                latest.insert(r.pipeline.clone(), r);
            }
        }
        latest.into_values().collect()
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
    pub fn history(&self, pipeline: &str, limit: usize) -> Vec<PipelineReport> {
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
        let rows: Vec<u64> = s.history("a", 10).iter().map(|r| r.rows).collect();
        assert_eq!(rows, [0, 2, 1]);
        assert_eq!(s.history("a", 2).len(), 2);
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
