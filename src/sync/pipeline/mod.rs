//! Pipelines: one Sling replication file each. Discovery (`discover.rs`), reading the replication
//! (`replication.rs`) and connection resolution (`connections.rs`) are separate rooms; this file holds the
//! `Pipeline` they produce.

mod connections;
mod discover;
mod replication;

use std::path::{Path, PathBuf};

use thiserror::Error;

pub use connections::{
    env_connection, is_inline_url, resolve_connection, sling_env_file, ConnectionRef,
};
pub use discover::{discover, select, DiscoveryError, PipelineSource};
pub use replication::{
    parse_replication, resolved_findings, Finding, ParseError, Replication, StreamSpec,
};

/// Why a pipeline's replication file cannot be used; the pipeline fails on its own while the others run.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReplicationError {
    #[error("{}: cannot read: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{}: {problem}", path.display())]
    Parse { path: PathBuf, problem: ParseError },
    #[error("{}: larger than {limit} bytes; a replication file is expected to be a few kilobytes", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{}: YAML nested deeper than {limit} levels of `[` / `{{`; not parsed", path.display())]
    TooDeep { path: PathBuf, limit: usize },
}

/// Largest replication file read. Real ones are kilobytes; the bound keeps a stray huge file from costing memory.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Deepest flow nesting (`[`, `{`) parsed. The YAML parser's cost grows with the square of unclosed nesting (200 KB
/// of `[` took 49 s), so deeper text is refused before it is parsed; serde_yaml itself stops at 128 levels.
pub const MAX_FLOW_DEPTH: usize = 64;

/// A pipeline: one replication file. `replication` is `Err` when the file cannot be read or parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    pub name: String,
    pub path: PathBuf,
    pub replication: Result<Replication, ReplicationError>,
}

impl Pipeline {
    pub fn load(path: &Path) -> Self {
        let replication = read_bounded(path).and_then(|text| {
            if flow_depth_exceeds(&text, MAX_FLOW_DEPTH) {
                return Err(ReplicationError::TooDeep {
                    path: path.to_owned(),
                    limit: MAX_FLOW_DEPTH,
                });
            }
            parse_replication(&text).map_err(|problem| ReplicationError::Parse {
                path: path.to_owned(),
                problem,
            })
        });
        Self::with(path, replication)
    }

    /// A pipeline whose file cannot be used at all (a link loop, a special file): it is reported as invalid.
    pub fn unusable(path: &Path, reason: String) -> Self {
        Self::with(
            path,
            Err(ReplicationError::Read {
                path: path.to_owned(),
                reason,
            }),
        )
    }

    fn with(path: &Path, replication: Result<Replication, ReplicationError>) -> Self {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self {
            name,
            path: path.to_owned(),
            replication,
        }
    }

    /// Stream names for display; empty when the file did not parse.
    pub fn stream_names(&self) -> Vec<String> {
        self.replication
            .as_ref()
            .map(|r| r.streams.iter().map(|s| s.name.clone()).collect())
            .unwrap_or_default()
    }

    /// A problem found without running Sling that makes a run pointless (reported, not retried). Raw text.
    pub fn blocking_problem(
        &self,
        env: &std::collections::BTreeMap<String, String>,
    ) -> Option<String> {
        match &self.replication {
            Err(e) => Some(e.to_string()),
            Ok(r) => {
                let resolved = resolved_findings(&r.resolved(env));
                let errors: Vec<&str> = r
                    .findings
                    .iter()
                    .chain(&resolved)
                    .filter(|c| !c.passed())
                    .map(|c| c.detail.as_str())
                    .collect();
                (!errors.is_empty())
                    .then(|| format!("{}: {}", self.path.display(), errors.join("; ")))
            }
        }
    }
}

/// The file's text, refused past `MAX_FILE_BYTES` (checked while reading, not only from the metadata).
fn read_bounded(path: &Path) -> Result<String, ReplicationError> {
    use std::io::Read;
    let read_error = |e: std::io::Error| ReplicationError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReplicationError::TooLarge {
            path: path.to_owned(),
            limit: MAX_FILE_BYTES,
        });
    }
    String::from_utf8(bytes).map_err(|e| {
        read_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text: {e}"),
        ))
    })
}

/// True when flow collections (`[`, `{`) nest deeper than `limit`, outside quoted scalars and comments. A cheap,
/// linear pre-scan; a quote counts as one only where YAML can start a quoted scalar (after space or `[{,:`), so an
/// apostrophe inside a plain word does not hide the brackets after it.
fn flow_depth_exceeds(text: &str, limit: usize) -> bool {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut comment = false;
    let mut prev = '\n';
    for c in text.chars() {
        if comment {
            comment = c != '\n';
        } else if let Some(q) = quote {
            if c == q {
                quote = None;
            }
        } else {
            let token_start = prev.is_whitespace() || "[{,:".contains(prev);
            match c {
                '#' if prev.is_whitespace() => comment = true,
                '\'' | '"' if token_start => quote = Some(c),
                '[' | '{' => {
                    depth += 1;
                    if depth > limit {
                        return true;
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        prev = c;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::event::CheckOutcome;

    const GOOD: &str = "source: MISSION\ntarget: COMMAND\ndefaults:\n  mode: incremental\n  object: main.{stream_table}\n  primary_key: [id]\n  update_key: updated_at\nstreams:\n  main.orders:\n  main.customers:\n    mode: full-refresh\n";

    #[test]
    fn flow_depth_is_bounded_outside_quotes_and_comments() {
        assert!(flow_depth_exceeds(&"[".repeat(65), 64));
        assert!(!flow_depth_exceeds(&"[".repeat(64), 64));
        assert!(!flow_depth_exceeds(&"[]".repeat(1000), 64));
        let quoted = format!(
            "a: '{}'\nb: \"{}\"\n# {}\n",
            "[".repeat(100),
            "{".repeat(100),
            "[".repeat(100)
        );
        assert!(!flow_depth_exceeds(&quoted, 64));
        let apostrophe = format!("a: it's {}", "[".repeat(100));
        assert!(flow_depth_exceeds(&apostrophe, 64));
        assert!(!flow_depth_exceeds(GOOD, 64));
    }

    #[test]
    fn bombs_and_huge_files_are_refused_naming_the_file() {
        let d = tempfile::tempdir().expect("tempdir");
        let bomb = d.path().join("bomb.yaml");
        std::fs::write(&bomb, "[".repeat(200 * 1024)).expect("write");
        let e = Pipeline::load(&bomb).replication.expect_err("refused");
        assert!(matches!(e, ReplicationError::TooDeep { .. }), "{e}");
        assert!(e.to_string().contains("bomb.yaml"), "{e}");
        let big = d.path().join("big.yaml");
        std::fs::write(&big, vec![b'#'; MAX_FILE_BYTES as usize + 1]).expect("write");
        let e = Pipeline::load(&big).replication.expect_err("refused");
        assert!(matches!(e, ReplicationError::TooLarge { .. }), "{e}");
    }

    #[test]
    fn parses_source_target_and_streams() {
        let r = parse_replication(GOOD).expect("parses");
        assert_eq!(r.source.as_deref(), Some("MISSION"));
        assert_eq!(r.target.as_deref(), Some("COMMAND"));
        assert_eq!(
            r.streams
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            ["main.orders", "main.customers"]
        );
        assert!(r.findings.is_empty(), "{:?}", r.findings);
    }

    #[test]
    fn shape_errors_are_all_reported() {
        let r = parse_replication("defaults:\n  mode: bogus\nstreams:\n  a.b:\n").expect("parses");
        let resolved = resolved_findings(&r.resolved(&Default::default()));
        let names: Vec<&str> = r
            .findings
            .iter()
            .chain(&resolved)
            .filter(|c| !c.passed())
            .map(|c| c.kind.as_str())
            .collect();
        assert_eq!(names, ["source", "target", "object", "mode"]);
        let r = parse_replication("source: A\ntarget: B\nstreams: {}\n").expect("parses");
        assert!(r
            .findings
            .iter()
            .any(|c| !c.passed() && c.detail.contains("streams")));
    }

    #[test]
    fn incremental_without_keys_is_an_error() {
        let r = parse_replication(
            "source: A\ntarget: B\nstreams:\n  a.b:\n    object: x.y\n    mode: incremental\n",
        )
        .expect("parses");
        assert!(resolved_findings(&r.resolved(&Default::default()))
            .iter()
            .any(|c| !c.passed() && c.detail.contains("update_key")));
    }

    #[test]
    fn placeholders_blank_modes_and_disabled_streams_are_checked_as_sling_runs_them() {
        let r = parse_replication(
            "source: '{s}'\ntarget: B\nenv:\n  s: LOCAL\n  m: ''\n  bad: bogus\ndefaults:\n  mode: '{m}'\n  object: x.{stream_table}\nstreams:\n  a.keyed:\n    primary_key: [id]\n  a.plain:\n  a.off:\n    disabled: true\n    mode: '{bad}'\n    object: null\n  a.bad:\n    mode: '{bad}'\n",
        )
        .expect("parses");
        assert!(r.findings.iter().all(Finding::passed), "{:?}", r.findings);
        let found = resolved_findings(&r.resolved(&Default::default()));
        let failed: Vec<&str> = found
            .iter()
            .filter(|c| !c.passed())
            .map(|c| c.detail.as_str())
            .collect();
        assert_eq!(
            failed,
            ["stream `a.bad`: mode `bogus` is not one of full-refresh, incremental, truncate, snapshot, backfill"]
        );
        assert!(
            found[0].detail.contains("source: `{s}` → `LOCAL`"),
            "{found:?}"
        );
    }

    #[test]
    fn typo_keys_warn_with_a_suggestion() {
        let r = parse_replication(
            "source: A\ntarget: B\nstreams:\n  a.b:\n    object: x.y\n    mode: incremental\n    primary_key: [id]\n    update-key: ts\n",
        )
        .expect("parses");
        let w: Vec<&Finding> = r
            .findings
            .iter()
            .filter(|c| c.outcome == CheckOutcome::Warning)
            .collect();
        assert_eq!(w.len(), 1);
        assert!(
            w[0].detail.contains("`update-key`") && w[0].detail.contains("`update_key`"),
            "{}",
            w[0].detail
        );
        assert!(w[0].passed(), "a warning does not fail validation");
    }

    #[test]
    fn invalid_yaml_is_an_error() {
        assert!(parse_replication("source: [a\n")
            .expect_err("must fail")
            .to_string()
            .contains("invalid YAML"));
        assert!(parse_replication("- a\n- b\n").is_err());
    }

    #[test]
    fn discovery_sorts_filters_and_rejects_duplicates() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join("b.yaml"), GOOD).expect("write");
        std::fs::write(d.path().join("a.yml"), GOOD).expect("write");
        std::fs::write(d.path().join("notes.txt"), "x").expect("write");
        let ps = discover(&PipelineSource::Dir(d.path().into())).expect("discover");
        assert_eq!(
            ps.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        std::fs::write(d.path().join("a.yaml"), GOOD).expect("write");
        assert!(matches!(
            discover(&PipelineSource::Dir(d.path().into())),
            Err(DiscoveryError::DuplicateName { .. })
        ));
        let empty = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            discover(&PipelineSource::Dir(empty.path().into())),
            Err(DiscoveryError::Empty { .. })
        ));
    }

    #[test]
    fn select_keeps_order_and_rejects_unknown_names() {
        let d = tempfile::tempdir().expect("tempdir");
        for n in ["a", "b", "c"] {
            std::fs::write(d.path().join(format!("{n}.yaml")), GOOD).expect("write");
        }
        let all = discover(&PipelineSource::Dir(d.path().into())).expect("discover");
        let sel = select(all.clone(), &["c".into(), "a".into()]).expect("select");
        assert_eq!(
            sel.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["a", "c"]
        );
        let err = select(all, &["zz".into()]).expect_err("unknown");
        assert!(
            err.to_string().contains("zz") && err.to_string().contains("a, b, c"),
            "{err}"
        );
    }
}
