//! Connection resolution, in Sling's order of lookup, without connecting: the one place that decides which
//! environment variable or env-file entry a connection name means. Noop, the engine and the console's detail pane
//! all ask here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

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

/// A connection written as a URL in the replication itself rather than named.
pub fn is_inline_url(connection: &str) -> bool {
    connection.contains("://")
}

/// The environment variable a connection name means, with its value: the name matched case-insensitively (as Sling
/// does), and an empty value counts as not set (Sling skips it and looks further).
pub fn env_connection<'a>(
    name: &str,
    env: &'a BTreeMap<String, String>,
) -> Option<(&'a str, &'a str)> {
    env.iter()
        .find(|(k, v)| k.eq_ignore_ascii_case(name) && !v.is_empty())
        .map(|(k, v)| (k.as_str(), v.as_str()))
}

/// Resolves a connection name against the environment and Sling's env file, without connecting.
pub fn resolve_connection(
    name: &str,
    env: &BTreeMap<String, String>,
    env_file: Option<&Path>,
) -> ConnectionRef {
    if is_inline_url(name) {
        return ConnectionRef::InlineUrl;
    }
    let upper = name.to_ascii_uppercase();
    if let Some((k, _)) = env_connection(name, env) {
        return ConnectionRef::EnvVar(k.to_owned());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
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
    fn an_empty_variable_is_not_a_connection() {
        let d = tempfile::tempdir().expect("tempdir");
        let f = d.path().join("env.yaml");
        std::fs::write(&f, "connections:\n  command:\n    type: sqlite\n").expect("write");
        // Set but empty: not the connection; the env file's entry of the same name is.
        let e = env(&[("COMMAND", ""), ("mission", "sqlite:///m.db")]);
        assert_eq!(env_connection("command", &e), None);
        assert_eq!(
            resolve_connection("command", &e, Some(&f)),
            ConnectionRef::EnvFile(f.clone())
        );
        assert_eq!(
            resolve_connection("COMMAND", &e, None),
            ConnectionRef::Missing
        );
        assert_eq!(
            env_connection("MISSION", &e),
            Some(("mission", "sqlite:///m.db"))
        );
    }
}
