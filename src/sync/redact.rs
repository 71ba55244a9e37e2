//! Secret redaction for everything the wrapper prints, stores or exports.
//!
//! Three rules: the password part of `scheme://user:pass@host` URLs, `password=...` pairs in key-value DSNs, and the
//! whole value of any environment variable that holds a connection string (so a URL Sling echoes back in another
//! form is caught too).

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::sling_log::LogLine;

pub const MASK: &str = "***";

static URL_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?P<pre>[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s]*:)(?P<pw>[^@\s/]+)@")
        .expect("static regex")
});
static KV_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(?P<pre>\b(?:password|passwd|pwd)\s*[=:]\s*)(?P<pw>"[^"]*"|'[^']*'|[^\s;&,]+)"#,
    )
    .expect("static regex")
});

/// Redacts known secret values and secret-shaped text.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Literal secrets, longest first so a secret containing another is masked whole.
    literals: Vec<String>,
}

impl Redactor {
    /// Builds a redactor that also masks the values of connection-string environment variables.
    pub fn from_env() -> Self {
        Self::from_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut literals = Vec::new();
        for (_, value) in vars {
            if looks_like_connection_string(&value) {
                // The password alone, and the whole value, so partial echoes are caught as well.
                if let Some(pw) = url_password(&value) {
                    if pw.len() >= 3 {
                        literals.push(pw);
                    }
                }
                literals.push(value);
            }
        }
        literals.sort_by_key(|s| std::cmp::Reverse(s.len()));
        literals.dedup();
        Self { literals }
    }

    /// The text with every secret masked, typed so that it may leave the engine (events, tracing, journal).
    pub fn redacted(&self, text: &str) -> Redacted {
        Redacted(self.redact(text))
    }

    /// A Sling line with its message redacted: the only form in which a line leaves the engine.
    pub fn redact_line(&self, mut line: LogLine) -> RedactedLine {
        line.message = self.redact(&line.message);
        RedactedLine(line)
    }

    pub fn redact(&self, text: &str) -> String {
        // The regexes only where they can match: this runs for every line Sling prints.
        let mut out = if text.contains("://") {
            URL_PASSWORD
                .replace_all(text, format!("${{pre}}{MASK}@"))
                .into_owned()
        } else {
            text.to_owned()
        };
        if might_hold_kv_password(&out) {
            out = KV_PASSWORD
                .replace_all(&out, format!("${{pre}}{MASK}"))
                .into_owned();
        }
        for lit in &self.literals {
            if out.contains(lit.as_str()) {
                out = out.replace(lit.as_str(), MASK);
            }
        }
        out
    }
}

/// Text that went through a `Redactor`: the only kind of Sling, connection or error text that may leave the engine
/// (events, tracing, span attributes, the history journal). Only `Redactor::redacted` builds one from a string.
/// Deserialising is the one other way in: it reads back the history journal, which holds only `Redacted` text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Redacted(String);

impl Redacted {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Joins redacted texts; the result is still redacted.
    pub fn join<'a>(parts: impl IntoIterator<Item = &'a Redacted>, sep: &str) -> Redacted {
        Redacted(
            parts
                .into_iter()
                .map(Redacted::as_str)
                .collect::<Vec<_>>()
                .join(sep),
        )
    }

    /// Puts a fixed, secret-free prefix in front (e.g. a check name); the result is still redacted.
    pub fn prefixed(&self, prefix: &str) -> Redacted {
        Redacted(format!("{prefix}{}", self.0))
    }
}

impl std::ops::Deref for Redacted {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Sling line whose message went through a `Redactor` (what `SyncEvent::Log` carries); read it through `Deref`.
#[derive(Debug, Clone, PartialEq)]
pub struct RedactedLine(LogLine);

impl RedactedLine {
    pub fn into_inner(self) -> LogLine {
        self.0
    }
}

impl std::ops::Deref for RedactedLine {
    type Target = LogLine;
    fn deref(&self) -> &LogLine {
        &self.0
    }
}

/// Cheap pre-check for the key-value rule: `pas`(sword/swd) or `pwd`, any case.
fn might_hold_kv_password(text: &str) -> bool {
    text.as_bytes().windows(3).any(|w| {
        let w = [
            w[0].to_ascii_lowercase(),
            w[1].to_ascii_lowercase(),
            w[2].to_ascii_lowercase(),
        ];
        &w == b"pas" || &w == b"pwd"
    })
}

/// A value Sling would treat as a connection: a URL with a scheme and host part, or a key-value DSN with a password.
pub fn looks_like_connection_string(value: &str) -> bool {
    let v = value.trim();
    let is_url = v.split_once("://").is_some_and(|(scheme, rest)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
            && !rest.is_empty()
    });
    is_url && !v.starts_with("http://") && !v.starts_with("https://") || KV_PASSWORD.is_match(v)
}

fn url_password(value: &str) -> Option<String> {
    URL_PASSWORD.captures(value).map(|c| c["pw"].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_url_passwords() {
        let r = Redactor::default();
        assert_eq!(
            r.redact(
                "conn_url=postgres://slinguser:hunter2secret@127.0.0.1:5432/db?sslmode=disable"
            ),
            "conn_url=postgres://slinguser:***@127.0.0.1:5432/db?sslmode=disable"
        );
        assert_eq!(
            r.redact("mysql://root:p%40ss@h/db"),
            "mysql://root:***@h/db"
        );
        assert_eq!(r.redact("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
        assert_eq!(
            r.redact("postgres://user@host/db"),
            "postgres://user@host/db"
        );
    }

    #[test]
    fn masks_key_value_passwords() {
        let r = Redactor::default();
        assert_eq!(
            r.redact("host=db user=u password=s3cret dbname=x"),
            "host=db user=u password=*** dbname=x"
        );
        assert_eq!(
            r.redact("Password='a b'; Server=x"),
            "Password=***; Server=x"
        );
    }

    #[test]
    fn masks_whole_connection_env_values() {
        let r = Redactor::from_vars([
            (
                "PG".to_string(),
                "postgresql://u:hunter2secret@h:5432/d".to_string(),
            ),
            ("HOME".to_string(), "/root".to_string()),
            ("OTEL".to_string(), "http://collector:4317".to_string()),
        ]);
        assert_eq!(
            r.redact("x postgresql://u:hunter2secret@h:5432/d y"),
            "x postgresql://u:***@h:5432/d y"
        );
        // A password echoed on its own is still caught.
        assert_eq!(
            r.redact("auth failed for hunter2secret"),
            "auth failed for ***"
        );
        assert_eq!(
            r.redact("/root http://collector:4317"),
            "/root http://collector:4317"
        );
    }

    #[test]
    fn connection_string_detection() {
        assert!(looks_like_connection_string("postgres://u:p@h/d"));
        assert!(looks_like_connection_string("sqlite:///x.db"));
        assert!(looks_like_connection_string("host=x password=y"));
        assert!(!looks_like_connection_string("http://otel:4317"));
        assert!(!looks_like_connection_string("/etc/sling"));
    }
}
