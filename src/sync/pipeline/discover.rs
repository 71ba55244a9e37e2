//! Discovery: which replication files are pipelines (`SLING_CONFIG` file or `PIPELINE_DIR` directory), and
//! `--pipeline` selection.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::Pipeline;
use crate::sync::pipeline_name::{self, NameError};

/// Where pipelines come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipelineSource {
    /// `SLING_CONFIG`: exactly one replication file.
    File(PathBuf),
    /// `PIPELINE_DIR`: every `*.yaml` / `*.yml` in it (not recursive), sorted by file name.
    Dir(PathBuf),
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DiscoveryError {
    #[error("SLING_CONFIG: {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("PIPELINE_DIR: {path}: {reason}")]
    Dir { path: PathBuf, reason: String },
    #[error("PIPELINE_DIR: {path}: no pipeline files (*.yaml or *.yml) found")]
    Empty { path: PathBuf },
    #[error("PIPELINE_DIR: two files give pipeline name `{name}`: {a} and {b}; rename one")]
    DuplicateName {
        name: String,
        a: PathBuf,
        b: PathBuf,
    },
    #[error("--pipeline: unknown pipeline `{name}`; known: {known}")]
    UnknownPipeline { name: String, known: String },
    #[error("{var}: {path}: cannot be a pipeline: {reason}; rename the file")]
    BadName {
        var: &'static str,
        path: PathBuf,
        reason: NameError,
    },
    #[error("--pipeline `{name}`: {reason}")]
    BadSelection { name: String, reason: NameError },
}

fn checked_name(var: &'static str, path: &Path) -> Result<(), DiscoveryError> {
    pipeline_name::from_path(path)
        .map(drop)
        .map_err(|reason| DiscoveryError::BadName {
            var,
            path: path.to_owned(),
            reason,
        })
}

/// Finds the pipelines. Files are read here once; parse errors stay with their pipeline.
pub fn discover(source: &PipelineSource) -> Result<Vec<Pipeline>, DiscoveryError> {
    match source {
        PipelineSource::File(path) => {
            let meta = std::fs::metadata(path).map_err(|e| DiscoveryError::File {
                path: path.clone(),
                reason: format!("cannot read: {e}"),
            })?;
            if !meta.is_file() {
                return Err(DiscoveryError::File {
                    path: path.clone(),
                    reason: "is not a file".into(),
                });
            }
            checked_name("SLING_CONFIG", path)?;
            Ok(vec![Pipeline::load(path)])
        }
        PipelineSource::Dir(dir) => {
            let entries = std::fs::read_dir(dir).map_err(|e| DiscoveryError::Dir {
                path: dir.clone(),
                reason: format!("cannot list: {e}"),
            })?;
            // Every `*.yaml` / `*.yml` entry is a pipeline: one that cannot be read as a file (a link loop, a dangling
            // link, a FIFO) is reported as invalid rather than skipped, so `--pipeline NAME` never calls it unknown.
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                        && !p
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(DiscoveryError::Empty { path: dir.clone() });
            }
            let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
            let mut out = Vec::with_capacity(files.len());
            for f in files {
                checked_name("PIPELINE_DIR", &f)?;
                let p = match unusable_entry(&f) {
                    None => Pipeline::load(&f),
                    Some(why) => Pipeline::unusable(&f, why),
                };
                if let Some(prev) = seen.insert(p.name.clone(), f.clone()) {
                    return Err(DiscoveryError::DuplicateName {
                        name: p.name,
                        a: prev,
                        b: f,
                    });
                }
                out.push(p);
            }
            Ok(out)
        }
    }
}

/// Why a directory entry cannot be read as a replication file, or `None` when it is a regular file (directly or
/// through a symbolic link). Checked before anything is opened: reading a FIFO would block discovery.
fn unusable_entry(path: &Path) -> Option<String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => None,
        Ok(m) if m.is_dir() => Some("it is a directory, not a replication file".into()),
        Ok(m) => {
            use std::os::unix::fs::FileTypeExt;
            let t = m.file_type();
            let kind = if t.is_fifo() {
                "a FIFO"
            } else if t.is_socket() {
                "a socket"
            } else {
                "a device"
            };
            Some(format!("it is not a regular file ({kind})"))
        }
        Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32) => {
            Some("too many levels of symbolic links (a link loop)".into())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let target = std::fs::read_link(path)
                .map(|t| t.display().to_string())
                .unwrap_or_else(|_| "?".into());
            Some(format!(
                "it is a symbolic link to {target}, which does not exist"
            ))
        }
        Err(e) => Some(format!("cannot inspect: {e}")),
    }
}

/// Keeps the named pipelines, in discovery order. An unknown name is an error.
pub fn select(all: Vec<Pipeline>, names: &[String]) -> Result<Vec<Pipeline>, DiscoveryError> {
    if names.is_empty() {
        return Ok(all);
    }
    for n in names {
        pipeline_name::validate(n).map_err(|reason| DiscoveryError::BadSelection {
            name: n.clone(),
            reason,
        })?;
        if !all.iter().any(|p| &p.name == n) {
            let known = all
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(DiscoveryError::UnknownPipeline {
                name: n.clone(),
                known,
            });
        }
    }
    Ok(all
        .into_iter()
        .filter(|p| names.contains(&p.name))
        .collect())
}
