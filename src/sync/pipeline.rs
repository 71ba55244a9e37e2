//! Pipelines: discovery (one file or a directory), reading the Sling replication YAML far enough to list streams,
//! source and target, and the static checks that `noop` reports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;
use thiserror::Error;

use super::event::Check;
use super::pipeline_name::{self, NameError};

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

/// One stream of a replication, as far as the wrapper needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    pub name: String,
    pub mode: Option<String>,
    pub object: Option<String>,
    pub disabled: bool,
}

/// The parts of a Sling replication file the wrapper reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replication {
    pub source: Option<String>,
    pub target: Option<String>,
    pub default_mode: Option<String>,
    pub streams: Vec<StreamSpec>,
    /// Static findings: errors (`ok == false`) and warnings.
    pub findings: Vec<Check>,
}

/// A pipeline: one replication file. `replication` is `Err` when the file cannot be read or parsed; such a pipeline
/// fails on its own while the others run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    pub name: String,
    pub path: PathBuf,
    pub replication: Result<Replication, String>,
}

impl Pipeline {
    pub fn load(path: &Path) -> Self {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let replication = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))
            .and_then(|text| {
                parse_replication(&text).map_err(|e| format!("{}: {e}", path.display()))
            });
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
                checked_name("PIPELINE_DIR", &f)?;
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

const VALID_MODES: &[&str] = &[
    "full-refresh",
    "incremental",
    "truncate",
    "snapshot",
    "backfill",
];
const ROOT_KEYS: &[&str] = &["source", "target", "defaults", "streams", "env", "hooks"];
const STREAM_KEYS: &[&str] = &[
    "id",
    "description",
    "mode",
    "object",
    "select",
    "files",
    "where",
    "primary_key",
    "update_key",
    "sql",
    "tags",
    "source_options",
    "target_options",
    "schedule",
    "disabled",
    "single",
    "transforms",
    "columns",
    "hooks",
];

fn error(name: &str, detail: String) -> Check {
    Check {
        name: name.into(),
        ok: false,
        warning: false,
        detail,
    }
}

fn warning(name: &str, detail: String) -> Check {
    Check {
        name: name.into(),
        ok: true,
        warning: true,
        detail,
    }
}

/// Sling ignores unknown keys silently, so a typo such as `update-key` goes unnoticed; name the likely intent.
fn unknown_key_warning(place: &str, key: &str, known: &[&str]) -> Option<Check> {
    if known.contains(&key) {
        return None;
    }
    let normalised = key.replace('-', "_").to_ascii_lowercase();
    let hint = known
        .iter()
        .find(|k| **k == normalised)
        .map(|k| format!("; did you mean `{k}`?"))
        .unwrap_or_default();
    Some(warning(
        "unknown key",
        format!("{place}: key `{key}` is not a Sling key and would be ignored{hint}"),
    ))
}

fn as_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn has_key(map: Option<&serde_yaml::Mapping>, key: &str) -> bool {
    map.and_then(|m| m.get(key)).is_some_and(|v| !v.is_null())
}

/// Parses a replication file. A YAML syntax error or a non-mapping document is an `Err`; shape problems become
/// findings so that `noop` can list them all at once.
pub fn parse_replication(text: &str) -> Result<Replication, String> {
    let doc: Value = serde_yaml::from_str(text).map_err(|e| format!("invalid YAML: {e}"))?;
    let root = doc.as_mapping().ok_or_else(|| {
        "expected a YAML mapping with `source`, `target` and `streams`".to_string()
    })?;
    let mut findings = Vec::new();
    for key in root.keys() {
        if let Some(k) = key.as_str() {
            findings.extend(unknown_key_warning("replication", k, ROOT_KEYS));
        }
    }
    let source = root.get("source").and_then(as_str);
    let target = root.get("target").and_then(as_str);
    if source.as_deref().is_none_or(str::is_empty) {
        findings.push(error(
            "source",
            "key `source` is missing or empty: expected a connection name".into(),
        ));
    }
    if target.as_deref().is_none_or(str::is_empty) {
        findings.push(error(
            "target",
            "key `target` is missing or empty: expected a connection name".into(),
        ));
    }
    let defaults = root.get("defaults").and_then(Value::as_mapping);
    if let Some(d) = defaults {
        for key in d.keys().filter_map(Value::as_str) {
            findings.extend(unknown_key_warning("defaults", key, STREAM_KEYS));
        }
    }
    let default_mode = defaults.and_then(|d| d.get("mode")).and_then(as_str);
    let mut streams = Vec::new();
    match root.get("streams") {
        Some(Value::Mapping(m)) if !m.is_empty() => {
            for (k, v) in m {
                let name = as_str(k).unwrap_or_default();
                let body = v.as_mapping();
                if let Some(b) = body {
                    for key in b.keys().filter_map(Value::as_str) {
                        findings.extend(unknown_key_warning(
                            &format!("stream `{name}`"),
                            key,
                            STREAM_KEYS,
                        ));
                    }
                } else if !v.is_null() {
                    findings.push(error(
                        "streams",
                        format!("stream `{name}`: expected a mapping or nothing"),
                    ));
                }
                let mode = body.and_then(|b| b.get("mode")).and_then(as_str);
                let object = body.and_then(|b| b.get("object")).and_then(as_str);
                let disabled = body
                    .and_then(|b| b.get("disabled"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let effective = mode
                    .clone()
                    .or_else(|| default_mode.clone())
                    .unwrap_or_else(|| "full-refresh".into());
                if !VALID_MODES.contains(&effective.as_str()) {
                    findings.push(error(
                        "mode",
                        format!(
                            "stream `{name}`: mode `{effective}` is not one of {}",
                            VALID_MODES.join(", ")
                        ),
                    ));
                } else if effective == "incremental"
                    && !(has_key(body, "primary_key")
                        || has_key(body, "update_key")
                        || has_key(defaults, "primary_key")
                        || has_key(defaults, "update_key"))
                {
                    findings.push(error(
                        "mode",
                        format!("stream `{name}`: incremental mode needs `update_key` and/or `primary_key`"),
                    ));
                }
                if object.is_none() && !has_key(defaults, "object") {
                    findings.push(error(
                        "object",
                        format!(
                            "stream `{name}`: no `object` (target table) here or in `defaults`"
                        ),
                    ));
                }
                streams.push(StreamSpec {
                    name,
                    mode,
                    object,
                    disabled,
                });
            }
            if streams.iter().all(|s| s.disabled) {
                findings.push(error(
                    "streams",
                    "every stream is `disabled`: nothing would run".into(),
                ));
            }
        }
        Some(Value::Mapping(_)) | Some(Value::Null) | None => {
            findings.push(error(
                "streams",
                "key `streams` is missing or empty: expected at least one stream".into(),
            ));
        }
        Some(_) => findings.push(error(
            "streams",
            "key `streams` must be a mapping of stream name to options".into(),
        )),
    }
    Ok(Replication {
        source,
        target,
        default_mode,
        streams,
        findings,
    })
}

/// How a connection name resolves, in Sling's order of lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionRef {
    /// A URL written in the replication itself (works, but Sling logs it with its password).
    InlineUrl,
    /// An environment variable of that name (case-insensitive, as Sling does).
    EnvVar(String),
    /// A `connections:` entry in Sling's env file.
    EnvFile(PathBuf),
    Missing,
}

/// Resolves a connection name against the environment and Sling's env file, without connecting.
pub fn resolve_connection(
    name: &str,
    env: &BTreeMap<String, String>,
    env_file: Option<&Path>,
) -> ConnectionRef {
    if name.contains("://") {
        return ConnectionRef::InlineUrl;
    }
    let upper = name.to_ascii_uppercase();
    if let Some((k, _)) = env
        .iter()
        .find(|(k, v)| k.to_ascii_uppercase() == upper && !v.is_empty())
    {
        return ConnectionRef::EnvVar(k.clone());
    }
    if let Some(inline) = env.get("SLING_ENV_YAML") {
        if env_yaml_has(inline, &upper) {
            return ConnectionRef::EnvVar("SLING_ENV_YAML".into());
        }
    }
    if let Some(path) = env_file {
        if std::fs::read_to_string(path).is_ok_and(|t| env_yaml_has(&t, &upper)) {
            return ConnectionRef::EnvFile(path.to_owned());
        }
    }
    ConnectionRef::Missing
}

fn env_yaml_has(text: &str, upper: &str) -> bool {
    serde_yaml::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.get("connections").and_then(Value::as_mapping).cloned())
        .is_some_and(|m| {
            m.keys()
                .filter_map(Value::as_str)
                .any(|k| k.to_ascii_uppercase() == upper)
        })
}

/// Sling's env file: `$SLING_HOME_DIR/env.yaml`, else `~/.sling/env.yaml`.
pub fn sling_env_file(env: &BTreeMap<String, String>) -> Option<PathBuf> {
    env.get("SLING_HOME_DIR")
        .map(PathBuf::from)
        .or_else(|| env.get("HOME").map(|h| Path::new(h).join(".sling")))
        .map(|d| d.join("env.yaml"))
}

/// The static checks of one pipeline: shape findings plus connection resolution.
pub fn static_checks(pipeline: &Pipeline, env: &BTreeMap<String, String>) -> Vec<Check> {
    let rep = match &pipeline.replication {
        Ok(r) => r,
        Err(e) => return vec![error("replication", e.clone())],
    };
    let mut checks = rep.findings.clone();
    if checks.iter().all(|c| c.ok) {
        checks.push(Check {
            name: "replication".into(),
            ok: true,
            warning: false,
            detail: format!(
                "{} stream(s): {}",
                rep.streams.len(),
                pipeline.stream_names().join(", ")
            ),
        });
    }
    let env_file = sling_env_file(env);
    for (role, conn) in [("source", &rep.source), ("target", &rep.target)] {
        let Some(conn) = conn.as_deref().filter(|c| !c.is_empty()) else {
            continue;
        };
        let check = match resolve_connection(conn, env, env_file.as_deref()) {
            ConnectionRef::InlineUrl => warning(
                role,
                format!("{role} is a URL written in the file; Sling prints it, password included: use a connection name"),
            ),
            ConnectionRef::EnvVar(var) => {
                Check { name: role.into(), ok: true, warning: false, detail: format!("`{conn}` from environment variable {var}") }
            }
            ConnectionRef::EnvFile(p) => {
                Check { name: role.into(), ok: true, warning: false, detail: format!("`{conn}` from {}", p.display()) }
            }
            ConnectionRef::Missing => error(
                role,
                format!(
                    "connection `{conn}` not found: set environment variable {} to its URL, or define it in {}",
                    conn.to_ascii_uppercase(),
                    env_file.as_deref().map(|p| p.display().to_string()).unwrap_or_else(|| "Sling's env.yaml".into())
                ),
            ),
        };
        checks.push(check);
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "source: MISSION\ntarget: COMMAND\ndefaults:\n  mode: incremental\n  object: main.{stream_table}\n  primary_key: [id]\n  update_key: updated_at\nstreams:\n  main.orders:\n  main.customers:\n    mode: full-refresh\n";

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
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
        let names: Vec<&str> = r
            .findings
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["source", "target", "mode", "object"]);
        let r = parse_replication("source: A\ntarget: B\nstreams: {}\n").expect("parses");
        assert!(r
            .findings
            .iter()
            .any(|c| !c.ok && c.detail.contains("streams")));
    }

    #[test]
    fn incremental_without_keys_is_an_error() {
        let r = parse_replication(
            "source: A\ntarget: B\nstreams:\n  a.b:\n    object: x.y\n    mode: incremental\n",
        )
        .expect("parses");
        assert!(r
            .findings
            .iter()
            .any(|c| !c.ok && c.detail.contains("update_key")));
    }

    #[test]
    fn typo_keys_warn_with_a_suggestion() {
        let r = parse_replication(
            "source: A\ntarget: B\nstreams:\n  a.b:\n    object: x.y\n    mode: incremental\n    primary_key: [id]\n    update-key: ts\n",
        )
        .expect("parses");
        let w: Vec<&Check> = r.findings.iter().filter(|c| c.warning).collect();
        assert_eq!(w.len(), 1);
        assert!(
            w[0].detail.contains("`update-key`") && w[0].detail.contains("`update_key`"),
            "{}",
            w[0].detail
        );
        assert!(w[0].ok, "a warning does not fail validation");
    }

    #[test]
    fn invalid_yaml_is_an_error() {
        assert!(parse_replication("source: [a\n")
            .expect_err("must fail")
            .contains("invalid YAML"));
        assert!(parse_replication("- a\n- b\n").is_err());
    }

    #[test]
    fn connections_resolve_from_env_case_insensitively_and_env_file() {
        let e = env(&[("mission", "sqlite:///x.db")]);
        assert_eq!(
            resolve_connection("MISSION", &e, None),
            ConnectionRef::EnvVar("mission".into())
        );
        assert_eq!(
            resolve_connection("postgres://u:p@h/d", &e, None),
            ConnectionRef::InlineUrl
        );
        assert_eq!(resolve_connection("NOPE", &e, None), ConnectionRef::Missing);
        let d = tempfile::tempdir().expect("tempdir");
        let f = d.path().join("env.yaml");
        std::fs::write(
            &f,
            "connections:\n  command:\n    type: sqlite\n    instance: /x.db\n",
        )
        .expect("write");
        assert_eq!(
            resolve_connection("COMMAND", &e, Some(&f)),
            ConnectionRef::EnvFile(f.clone())
        );
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
