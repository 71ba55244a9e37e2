//! Discovery: which replication files are pipelines (`SLING_CONFIG` file or `PIPELINE_DIR` directory), and
//! `--pipeline` selection.

use std::collections::BTreeMap;
use std::path::PathBuf;

use thiserror::Error;

use super::Pipeline;

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
            Ok(vec![Pipeline::load(path)])
        }
        PipelineSource::Dir(dir) => {
            let entries = std::fs::read_dir(dir).map_err(|e| DiscoveryError::Dir {
                path: dir.clone(),
                reason: format!("cannot list: {e}"),
            })?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.is_file()
                        && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
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
                let p = Pipeline::load(&f);
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

/// Keeps the named pipelines, in discovery order. An unknown name is an error.
pub fn select(all: Vec<Pipeline>, names: &[String]) -> Result<Vec<Pipeline>, DiscoveryError> {
    if names.is_empty() {
        return Ok(all);
    }
    for n in names {
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
