//! A replication as Sling 1.4.11 will run it: `{name}` placeholders resolved, `defaults` merged into each stream and
//! the effective mode worked out. Pure (the process environment is passed in), so noop's static checks, the schema
//! validation and the verification all see the same streams Sling sees.
//!
//! Observed with Sling 1.4.11 (see the replication corpus under `tests/fixtures/replications/`):
//! - `{name}` in `source`, `target`, `mode`, `object` (and the other stream keys) is looked up in the replication's own
//!   `env:` block, by exact (case-sensitive) name. The process environment is not consulted for `{name}` directly;
//!   it reaches placeholders through `$VAR` / `${VAR}` inside `env:` values, which Sling expands (unset → empty).
//! - A name that is neither in `env:` nor a runtime variable (`{stream_table}`, …) stays as written in
//!   `source`/`target`/`mode` (so the connection is "not found") and becomes empty in `object`.
//! - A blank mode means `incremental` when the stream has a `primary_key` or `update_key`, else `full-refresh`.
//! - The connection `LOCAL` (any case) is built in; streams with `disabled: true` are not run.

use std::collections::BTreeMap;

use serde_yaml::{Mapping, Value};

/// Runtime variables Sling fills per stream while running; they are left for Sling.
const RUNTIME_VARS: &[&str] = &[
    "stream_schema",
    "stream_schema_lower",
    "stream_schema_upper",
    "stream_table",
    "stream_table_lower",
    "stream_table_upper",
    "stream_name",
    "stream_full_name",
    "stream_file_folder",
    "stream_file_name",
    "stream_file_ext",
    "stream_file_path",
    "object_schema",
    "object_name",
    "object_full_name",
    "source_name",
    "target_name",
    "target_schema",
    "run_timestamp",
    "incremental_where_cond",
    "incremental_value",
    "update_key",
    "date_string",
    "datetime_string",
    "YYYY",
    "YY",
    "MM",
    "DD",
    "HH",
    "ISO_WEEK",
];

/// One placeholder that was replaced, for the noop report ("`{source}` → `LOCAL` from `env:`").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substitution {
    /// Where it was found, e.g. `source` or `stream main.orders: object`.
    pub place: String,
    pub name: String,
    pub value: String,
}

/// A placeholder neither in `env:` nor a Sling runtime variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    pub place: String,
    pub name: String,
}

/// Go's `os.ExpandEnv`, which Sling applies to `env:` values: `$VAR` and `${VAR}`, unset → empty.
pub fn expand_env(value: &str, process_env: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let rest = &value[i + 1..];
        if let Some(body) = rest.strip_prefix('{') {
            if let Some(end) = body.find('}') {
                let name = &body[..end];
                out.push_str(process_env.get(name).map(String::as_str).unwrap_or(""));
                // Skip `{name}`.
                for _ in 0..end + 2 {
                    chars.next();
                }
                continue;
            }
            out.push(c);
            continue;
        }
        let len = rest
            .char_indices()
            .find(|(_, ch)| !(ch.is_ascii_alphanumeric() || *ch == '_'))
            .map(|(j, _)| j)
            .unwrap_or(rest.len());
        if len == 0 {
            out.push(c);
            continue;
        }
        let name = &rest[..len];
        out.push_str(process_env.get(name).map(String::as_str).unwrap_or(""));
        for _ in 0..len {
            chars.next();
        }
    }
    out
}

/// The variables of a replication's `env:` block, with `$VAR` expanded from the process environment.
pub fn env_block_vars(
    root: &Mapping,
    process_env: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    root.get("env")
        .and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    let key = scalar(k)?;
                    let value = if v.is_null() {
                        String::new()
                    } else {
                        scalar(v)?
                    };
                    Some((key, expand_env(&value, process_env)))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a placeholder name is one Sling fills at run time (left alone here).
pub fn is_runtime_var(name: &str) -> bool {
    RUNTIME_VARS.contains(&name)
        || name.starts_with("stream_")
        || name.starts_with("object_")
        || name.starts_with("source_")
        || name.starts_with("target_")
}

/// What to do with a placeholder that is neither in `env:` nor a runtime variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// Keep `{name}` as written (Sling does this for connections and modes).
    Keep,
    /// Replace with nothing (Sling does this in `object`).
    Empty,
}

/// Replaces `{name}` placeholders from `vars`; runtime variables are kept for Sling.
pub fn substitute(
    text: &str,
    place: &str,
    vars: &BTreeMap<String, String>,
    unknown: Unknown,
    subs: &mut Vec<Substitution>,
    unresolved: &mut Vec<Unresolved>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = &after[..close];
        let is_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if !is_name || is_runtime_var(name) {
            out.push_str(&rest[open..open + close + 2]);
        } else if let Some(v) = vars.get(name) {
            subs.push(Substitution {
                place: place.to_owned(),
                name: name.to_owned(),
                value: v.clone(),
            });
            out.push_str(v);
        } else {
            unresolved.push(Unresolved {
                place: place.to_owned(),
                name: name.to_owned(),
            });
            if unknown == Unknown::Keep {
                out.push_str(&rest[open..open + close + 2]);
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Sequence(items)) => items.iter().filter_map(scalar).collect(),
        Some(other) => scalar(other)
            .map(|s| {
                s.split(',')
                    .map(|p| p.trim().to_owned())
                    .filter(|p| !p.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        None => Vec::new(),
    }
}

/// Sling's built-in local file system connection.
pub fn is_local_connection(name: &str) -> bool {
    name.eq_ignore_ascii_case("LOCAL")
}

/// The effective settings of one stream (its own keys over `defaults`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedStream {
    pub name: String,
    /// The mode Sling will use: explicit, else `incremental` when keys are given, else `full-refresh`.
    pub mode: String,
    /// True when the mode was blank (absent or empty after resolution).
    pub mode_defaulted: bool,
    pub object: Option<String>,
    pub primary_key: Vec<String>,
    pub update_key: Option<String>,
    /// A custom `sql:` source query.
    pub sql: bool,
    pub where_clause: Option<String>,
    pub disabled: bool,
    /// A wildcard stream name (`*` or `?`), expanded by Sling at run time.
    pub wildcard: bool,
    /// A file stream: `file://…` name, a `files:` list, or a file-system source connection.
    pub file: bool,
}

/// The whole replication after resolution.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedReplication {
    pub source: Option<String>,
    pub target: Option<String>,
    pub streams: Vec<ResolvedStream>,
    pub substitutions: Vec<Substitution>,
    pub unresolved: Vec<Unresolved>,
}

impl ResolvedReplication {
    /// Streams Sling runs (not `disabled`).
    pub fn enabled_streams(&self) -> impl Iterator<Item = &ResolvedStream> {
        self.streams.iter().filter(|s| !s.disabled)
    }
}

fn text_key(
    body: Option<&Mapping>,
    defaults: Option<&Mapping>,
    key: &str,
) -> Option<(String, &'static str)> {
    if let Some(v) = body.and_then(|b| b.get(key)).filter(|v| !v.is_null()) {
        return scalar(v).map(|s| (s, "stream"));
    }
    defaults
        .and_then(|d| d.get(key))
        .filter(|v| !v.is_null())
        .and_then(scalar)
        .map(|s| (s, "defaults"))
}

fn value_key<'a>(
    body: Option<&'a Mapping>,
    defaults: Option<&'a Mapping>,
    key: &str,
) -> Option<&'a Value> {
    body.and_then(|b| b.get(key))
        .filter(|v| !v.is_null())
        .or_else(|| defaults.and_then(|d| d.get(key)).filter(|v| !v.is_null()))
}

/// Resolves a parsed replication document. Shape errors are the static checks' business; this takes what it can.
pub fn resolve(doc: &Value, process_env: &BTreeMap<String, String>) -> ResolvedReplication {
    let Some(root) = doc.as_mapping() else {
        return ResolvedReplication::default();
    };
    let vars = env_block_vars(root, process_env);
    let mut subs = Vec::new();
    let mut unresolved = Vec::new();
    let conn = |key: &str, subs: &mut Vec<Substitution>, un: &mut Vec<Unresolved>| {
        root.get(key)
            .and_then(scalar)
            .map(|s| substitute(&s, key, &vars, Unknown::Keep, subs, un))
    };
    let source = conn("source", &mut subs, &mut unresolved);
    let target = conn("target", &mut subs, &mut unresolved);
    let source_is_files = source.as_deref().is_some_and(is_file_connection);
    let defaults = root.get("defaults").and_then(Value::as_mapping);
    let mut streams = Vec::new();
    if let Some(m) = root.get("streams").and_then(Value::as_mapping) {
        for (k, v) in m {
            let Some(name) = scalar(k) else { continue };
            let body = v.as_mapping();
            let place = |key: &str| format!("stream {name}: {key}");
            let mode_raw = text_key(body, defaults, "mode").map(|(s, _)| {
                substitute(
                    &s,
                    &place("mode"),
                    &vars,
                    Unknown::Keep,
                    &mut subs,
                    &mut unresolved,
                )
            });
            let object = text_key(body, defaults, "object").map(|(s, _)| {
                substitute(
                    &s,
                    &place("object"),
                    &vars,
                    Unknown::Empty,
                    &mut subs,
                    &mut unresolved,
                )
            });
            let sub_list = |key: &str, subs: &mut Vec<Substitution>| {
                string_list(value_key(body, defaults, key))
                    .into_iter()
                    .map(|s| {
                        substitute(&s, &place(key), &vars, Unknown::Keep, subs, &mut Vec::new())
                    })
                    .collect::<Vec<_>>()
            };
            let primary_key = sub_list("primary_key", &mut subs);
            let update_key = sub_list("update_key", &mut subs).into_iter().next();
            let sql = body
                .and_then(|b| b.get("sql"))
                .is_some_and(|v| !v.is_null());
            let where_clause = text_key(body, defaults, "where").map(|(s, _)| s);
            let disabled = body
                .and_then(|b| b.get("disabled"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let files = value_key(body, defaults, "files").is_some();
            let (mode, mode_defaulted) = match mode_raw.map(|m| m.trim().to_owned()) {
                Some(m) if !m.is_empty() => (m, false),
                _ if !primary_key.is_empty() || update_key.is_some() => {
                    ("incremental".to_owned(), true)
                }
                _ => ("full-refresh".to_owned(), true),
            };
            streams.push(ResolvedStream {
                wildcard: name.contains('*') || name.contains('?'),
                file: files || source_is_files || name.contains("://"),
                name,
                mode,
                mode_defaulted,
                object,
                primary_key,
                update_key,
                sql,
                where_clause,
                disabled,
            });
        }
    }
    ResolvedReplication {
        source,
        target,
        streams,
        substitutions: subs,
        unresolved,
    }
}

/// File-system connections (built-in `LOCAL`, or URL-looking file locations written in the file).
fn is_file_connection(name: &str) -> bool {
    is_local_connection(name)
        || ["file://", "s3://", "gs://", "azure://", "sftp://", "ftp://"]
            .iter()
            .any(|p| name.to_ascii_lowercase().starts_with(p))
}

#[cfg(test)]
mod tests;
