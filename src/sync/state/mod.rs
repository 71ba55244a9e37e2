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
    /// The newest sync and the newest noop record of each pipeline, by pipeline name.
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

    /// What the journal says at console start: for each pipeline its newest sync run (incremental or backfill) and
    /// its newest noop, so a noop never hides how the last sync went; and how many lines were not records (a torn
    /// write, a bad byte), each skipped without hiding anything else. One pass over both files.
    pub fn history(&self) -> History {
        let mut latest: std::collections::BTreeMap<(String, bool), PipelineReport> =
            Default::default();
        let skipped_lines = self.for_each_record(None, |r| {
            latest.insert((r.pipeline.clone(), r.mode == Mode::Noop), r);
        });
        History {
            latest: latest.into_values().collect(),
            skipped_lines,
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

    /// Every journal record, oldest first: the rotated file, then the current one. Read line by line as bytes;
    /// lines that do not parse (a torn write, a bad byte, an older format) are skipped and counted (the count is
    /// returned); a read error ends that file.
    pub fn for_each_record(&self, filter: Option<&str>, mut f: impl FnMut(PipelineReport)) -> u64 {
        let mut skipped = 0;
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
                if line.trim_ascii().is_empty() {
                    continue;
                }
                match serde_json::from_slice::<PipelineReport>(&line) {
                    Ok(r) => f(r),
                    Err(_) => skipped += 1,
                }
            }
        }
        skipped
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
mod tests;
