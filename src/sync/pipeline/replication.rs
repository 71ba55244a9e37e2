//! Reading a Sling replication file far enough to list its streams, source and target, with the shape findings
//! (errors and warnings) that `noop` reports. Pure: text in, `Replication` out.

use serde_yaml::Value;
use thiserror::Error;

use crate::sync::event::{CheckKind, CheckOutcome};
use crate::sync::resolve::{resolve, ResolvedReplication};

/// Why a replication file is not usable at all (as opposed to a finding about its content).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("invalid YAML: {0}")]
    InvalidYaml(String),
    #[error("expected a YAML mapping with `source`, `target` and `streams`")]
    NotAMapping,
}

/// One thing found in a replication file without running Sling. Raw text: it becomes a `Check` (redacted) in noop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: CheckKind,
    pub outcome: CheckOutcome,
    pub detail: String,
}

impl Finding {
    pub fn passed(&self) -> bool {
        self.outcome != CheckOutcome::Failed
    }
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
    /// Static findings: errors and warnings.
    pub findings: Vec<Finding>,
    /// The parsed document, for resolving it as Sling does (`resolve::resolve`, which needs the environment).
    pub doc: Value,
}

impl Replication {
    /// The replication as Sling will run it in this environment (`env` is the process environment).
    pub fn resolved(
        &self,
        env: &std::collections::BTreeMap<String, String>,
    ) -> ResolvedReplication {
        resolve(&self.doc, env)
    }
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

fn error(kind: CheckKind, detail: String) -> Finding {
    Finding {
        kind,
        outcome: CheckOutcome::Failed,
        detail,
    }
}

fn warning(kind: CheckKind, detail: String) -> Finding {
    Finding {
        kind,
        outcome: CheckOutcome::Warning,
        detail,
    }
}

/// Sling ignores unknown keys silently, so a typo such as `update-key` goes unnoticed; name the likely intent.
fn unknown_key_warning(place: &str, key: &str, known: &[&str]) -> Option<Finding> {
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
        CheckKind::UnknownKey,
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

/// Findings that need the replication resolved as Sling resolves it (placeholders from `env:`, blank mode = Sling's
/// default): each enabled stream's mode, and what the placeholders resolved to. Disabled streams are not checked.
pub fn resolved_findings(r: &ResolvedReplication) -> Vec<Finding> {
    let mut out = Vec::new();
    if !r.substitutions.is_empty() {
        let said: Vec<String> = r
            .substitutions
            .iter()
            .map(|s| format!("{}: `{{{}}}` → `{}`", s.place, s.name, s.value))
            .collect();
        out.push(Finding {
            kind: CheckKind::Replication,
            outcome: CheckOutcome::Ok,
            detail: format!("placeholders from `env:`: {}", said.join("; ")),
        });
    }
    for u in &r.unresolved {
        out.push(warning(
            CheckKind::Replication,
            format!(
                "{}: placeholder `{{{}}}` is not in the replication's `env:` (Sling does not read the process environment for it; use `{}: ${{VAR}}` in `env:`)",
                u.place, u.name, u.name
            ),
        ));
    }
    for s in r.enabled_streams() {
        let name = &s.name;
        if !VALID_MODES.contains(&s.mode.as_str()) {
            out.push(error(
                CheckKind::Mode,
                format!(
                    "stream `{name}`: mode `{}` is not one of {}",
                    s.mode,
                    VALID_MODES.join(", ")
                ),
            ));
        } else if s.mode == "incremental" && s.primary_key.is_empty() && s.update_key.is_none() {
            out.push(error(
                CheckKind::Mode,
                format!(
                    "stream `{name}`: incremental mode needs `update_key` and/or `primary_key`"
                ),
            ));
        }
    }
    out
}

/// Parses a replication file. A YAML syntax error or a non-mapping document is an `Err`; shape problems become
/// findings so that `noop` can list them all at once.
pub fn parse_replication(text: &str) -> Result<Replication, ParseError> {
    let doc: Value =
        serde_yaml::from_str(text).map_err(|e| ParseError::InvalidYaml(e.to_string()))?;
    let root = doc.as_mapping().ok_or(ParseError::NotAMapping)?;
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
            CheckKind::Source,
            "key `source` is missing or empty: expected a connection name".into(),
        ));
    }
    if target.as_deref().is_none_or(str::is_empty) {
        findings.push(error(
            CheckKind::Target,
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
                        CheckKind::Streams,
                        format!("stream `{name}`: expected a mapping or nothing"),
                    ));
                }
                let mode = body.and_then(|b| b.get("mode")).and_then(as_str);
                let object = body.and_then(|b| b.get("object")).and_then(as_str);
                let disabled = body
                    .and_then(|b| b.get("disabled"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                // Modes are checked after placeholders are resolved (`resolved_findings`): `mode: '{m}'` is valid.
                if !disabled && object.is_none() && !has_key(defaults, "object") {
                    findings.push(error(
                        CheckKind::Object,
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
            if streams.iter().all(|s: &StreamSpec| s.disabled) {
                findings.push(error(
                    CheckKind::Streams,
                    "every stream is `disabled`: nothing would run".into(),
                ));
            }
        }
        Some(Value::Mapping(_)) | Some(Value::Null) | None => {
            findings.push(error(
                CheckKind::Streams,
                "key `streams` is missing or empty: expected at least one stream".into(),
            ));
        }
        Some(_) => findings.push(error(
            CheckKind::Streams,
            "key `streams` must be a mapping of stream name to options".into(),
        )),
    }
    Ok(Replication {
        source,
        target,
        default_mode,
        streams,
        findings,
        doc: doc.clone(),
    })
}
