//! Turns a discovered pipeline into the redacted text the detail pane shows, once at start.

use std::collections::BTreeMap;

use super::model::{PipelineInfo, StreamInfo};
use crate::sync::pipeline::{env_connection, is_inline_url, Pipeline};
use crate::sync::redact::Redactor;
use crate::sync::state::StateStore;

pub fn pipeline_info(
    p: &Pipeline,
    env: &BTreeMap<String, String>,
    state: &StateStore,
) -> PipelineInfo {
    let (source, target, streams, problem) = match &p.replication {
        Ok(r) => (
            connection(r.source.as_deref(), env),
            connection(r.target.as_deref(), env),
            r.streams
                .iter()
                .map(|s| StreamInfo {
                    name: s.name.clone(),
                    mode: s.mode.clone().or_else(|| r.default_mode.clone()),
                })
                .collect(),
            None,
        ),
        Err(e) => (
            "?".into(),
            "?".into(),
            Vec::new(),
            Some(redact(&e.to_string())),
        ),
    };
    PipelineInfo {
        name: p.name.clone(),
        source,
        target,
        streams,
        state_path: state.pipeline_dir(&p.name).display().to_string(),
        problem,
    }
}

/// Pattern redaction only (URL passwords, `password=` pairs): the literal-value rules of the engine's redactor would
/// mask a whole connection URL, and the operator should see which host and database a pipeline points at.
fn redact(text: &str) -> String {
    Redactor::default().redact(text)
}

/// `NAME (url)` for a connection named after an environment variable, the masked URL for an inline one.
fn connection(name: Option<&str>, env: &BTreeMap<String, String>) -> String {
    let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
        return "(not set)".into();
    };
    if is_inline_url(name) {
        return redact(name);
    }
    match env_connection(name, env) {
        Some((_, url)) => format!("{name} ({})", redact(url)),
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_shows_host_but_not_password() {
        let env = BTreeMap::from([(
            "MISSION".to_string(),
            "postgres://u:hunter2@db:5432/m".to_string(),
        )]);
        assert_eq!(
            connection(Some("MISSION"), &env),
            "MISSION (postgres://u:***@db:5432/m)"
        );
        assert_eq!(
            connection(Some("mysql://r:pw@h/db"), &env),
            "mysql://r:***@h/db"
        );
        assert_eq!(connection(Some("OTHER"), &env), "OTHER");
        assert_eq!(connection(None, &env), "(not set)");
    }
}
