//! The wrapper's own state under `SLING_STATE_PATH` (Sling's incremental checkpoint lives in the target, not here):
//!
//! ```text
//! <root>/history.jsonl            one JSON line per pipeline run (the console reads it at start)
//! <root>/<pipeline>/run.lock      held (flock) while the pipeline runs; says who holds it
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use thiserror::Error;

use super::event::PipelineReport;
use super::verify::VerifyReport;

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
    /// The most recent verification of `pipeline` in the journal (for `incremental_recopy`), newest line first.
    pub fn last_verification(&self, pipeline: &str) -> Option<VerifyReport> {
        let text = fs::read_to_string(self.root.join(JOURNAL)).ok()?;
        let needle = format!("\"pipeline\":{}", serde_json::to_string(pipeline).ok()?);
        text.lines()
            .rev()
            .filter(|l| l.contains(&needle) && l.contains("\"verify\""))
            .filter_map(|l| serde_json::from_str::<PipelineReport>(l).ok())
            .find_map(|r| r.verify.filter(|v| !v.streams.is_empty()))
    }

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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::event::{Mode, Status};

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
