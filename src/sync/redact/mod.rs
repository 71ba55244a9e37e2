//! Secret redaction for everything the wrapper prints, stores or exports.
//!
//! Value-based first: the passwords of every connection the wrapper can resolve (connection URLs in environment
//! variables, `?password=` parameters, key-value DSNs, Sling's `env.yaml` — the file and `SLING_ENV_YAML`) are
//! collected at start, raw, percent-decoded and percent-encoded, and masked wherever they appear. Shape-based as a
//! fallback for secrets it was not told about: the password part of `scheme://user:pass@host` URLs (the password may
//! hold raw `@`, `:` or `/`) and `password=…` / `"password": "…"` pairs.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use super::sling_log::LogLine;

pub const MASK: &str = "***";

/// Literal secrets shorter than this are not masked on their own: a one- or two-character password would turn every
/// occurrence of those characters into `***`. (They are still masked inside URL and key-value shapes.)
const MIN_SECRET_CHARS: usize = 3;

/// `scheme://user:` then the password (lazily, so raw `@` `:` `/` inside it are allowed) up to the `@` that is
/// followed by a host and the end of the authority.
static URL_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?P<pre>[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s]*:)(?P<pw>\S*?)@(?P<host>[A-Za-z0-9._\-\[\]%]*(?::\d+)?)(?P<end>[/?#\s"'<>,;)\]}]|$)"#,
    )
    .expect("static regex")
});
static KV_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(?P<pre>\b(?:password|passwd|pwd)["']?\s*[=:]\s*)(?P<pw>"[^"]*"|'[^']*'|[^\s;&,}]+)"#,
    )
    .expect("static regex")
});
/// Keys of Sling's `env.yaml` connection entries whose values are secrets.
static SECRET_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)password|passwd|pwd|secret|token|private_key|passphrase")
        .expect("static regex")
});

/// Redacts known secret values and secret-shaped text.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Passwords and other secret values in all their forms, longest first so a secret containing another is masked
    /// whole. Masked first, so no shape rule can cut one in half before it is recognised.
    secrets: Vec<String>,
    /// Whole connection strings, masked last (a URL keeps its shape when only its password had to go).
    values: Vec<String>,
}

impl Redactor {
    /// Builds a redactor from the process environment and the Sling env file it points at.
    pub fn from_env() -> Self {
        Self::from_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// Collects the secrets of every connection these variables define or point at: connection-string values,
    /// `SLING_ENV_YAML`, and Sling's env file (`$SLING_HOME_DIR/env.yaml` or `~/.sling/env.yaml`) when it exists.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let vars: BTreeMap<String, String> = vars.into_iter().collect();
        let mut secrets = Secrets::default();
        for (key, value) in &vars {
            if key == "SLING_ENV_YAML" {
                secrets.env_yaml(value);
            } else if looks_like_connection_string(value) {
                secrets.connection(value);
            }
        }
        if let Some(text) = super::pipeline::sling_env_file(&vars)
            .and_then(|path| std::fs::read_to_string(path).ok())
        {
            secrets.env_yaml(&text);
        }
        let (secrets, values) = secrets.into_lists();
        Self { secrets, values }
    }

    /// The text with every secret masked, typed so that it may leave the engine (events, tracing, journal).
    pub fn redacted(&self, text: &str) -> Redacted {
        Redacted(self.redact(text))
    }

    /// A Sling line with its message redacted: the only form in which a line leaves the engine.
    pub fn redact_line(&self, mut line: LogLine) -> RedactedLine {
        line.message = self.redact_owned(std::mem::take(&mut line.message));
        RedactedLine(line)
    }

    pub fn redact(&self, text: &str) -> String {
        self.redact_owned(text.to_owned())
    }

    /// `redact` for a text the caller gives up: returned as it came (no copy) when there is nothing to mask, which
    /// is almost every Sling line.
    pub fn redact_owned(&self, text: String) -> String {
        let mut out = mask_literals(text, &self.secrets);
        // The regexes only where they can match: this runs for every line Sling prints.
        if has_scheme_separator(&out) {
            out = mask_url(&out);
        }
        if might_hold_kv_password(&out) {
            out = KV_PASSWORD
                .replace_all(&out, |c: &Captures| {
                    let quote = match c["pw"].chars().next() {
                        Some(q @ ('"' | '\'')) => q.to_string(),
                        _ => String::new(),
                    };
                    format!("{}{quote}{MASK}{quote}", &c["pre"])
                })
                .into_owned();
        }
        mask_literals(out, &self.values)
    }
}

fn mask_literals(mut text: String, literals: &[String]) -> String {
    for lit in literals {
        if text.contains(lit.as_str()) {
            text = text.replace(lit.as_str(), MASK);
        }
    }
    text
}

/// The secret strings gathered from connection definitions.
#[derive(Default)]
struct Secrets {
    secrets: Vec<String>,
    values: Vec<String>,
}

impl Secrets {
    /// A secret in every form it may be echoed in: as given, percent-decoded and percent-encoded.
    fn secret(&mut self, value: &str) {
        let value = value.trim();
        let decoded = percent_decode(value);
        let encoded = percent_encode(&decoded);
        for form in [value.to_owned(), decoded, encoded] {
            if form.chars().count() >= MIN_SECRET_CHARS {
                self.secrets.push(form);
            }
        }
    }

    /// A connection string: the whole value, its URL password, its `password`-like query parameters, and the
    /// password of a key-value DSN.
    fn connection(&mut self, value: &str) {
        let value = value.trim();
        if value.chars().count() >= MIN_SECRET_CHARS {
            self.values.push(value.to_owned());
        }
        for pw in url_passwords(value) {
            self.secret(&pw);
        }
        if let Some((_, query)) = value.split_once('?') {
            for pair in query.split(['&', ';']) {
                if let Some((k, v)) = pair.split_once('=') {
                    if SECRET_KEY.is_match(&percent_decode(k)) {
                        self.secret(v.split('#').next().unwrap_or(v));
                    }
                }
            }
        }
        for c in KV_PASSWORD.captures_iter(value) {
            self.secret(c["pw"].trim_matches(['"', '\'']));
        }
    }

    /// Sling's env file: every entry of `connections` (a URL string, or a mapping with `url` and secret keys).
    fn env_yaml(&mut self, text: &str) {
        let Ok(doc) = serde_yaml::from_str::<Value>(text) else {
            return;
        };
        let Some(conns) = doc.get("connections").and_then(Value::as_mapping) else {
            return;
        };
        for conn in conns.values() {
            match conn {
                Value::String(url) => self.connection(url),
                Value::Mapping(fields) => {
                    for (k, v) in fields {
                        let (Some(k), Some(v)) = (k.as_str(), scalar(v)) else {
                            continue;
                        };
                        if k.eq_ignore_ascii_case("url") {
                            self.connection(&v);
                        } else if SECRET_KEY.is_match(k) {
                            self.secret(&v);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn into_lists(self) -> (Vec<String>, Vec<String>) {
        let longest_first = |mut v: Vec<String>| {
            v.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
            v.dedup();
            v
        };
        (longest_first(self.secrets), longest_first(self.values))
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `%XX` sequences decoded; anything malformed is kept as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every byte outside RFC 3986's unreserved set as `%XX`, the form a URL library writes a password in.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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

#[cfg(test)]
impl RedactedLine {
    /// A line with nothing in it to mask, as the engine hands lines on (tests of what receives them).
    pub(crate) fn of(
        level: crate::sync::sling_log::Level,
        time: Option<&str>,
        message: &str,
    ) -> Self {
        Self(LogLine {
            pipe: crate::sync::sling_log::Pipe::Stdout,
            level,
            time: time.map(str::to_owned),
            message: message.to_owned(),
        })
    }
}

impl std::ops::Deref for RedactedLine {
    type Target = LogLine;
    fn deref(&self) -> &LogLine {
        &self.0
    }
}

/// `text.contains("://")` without building a substring searcher for every line: a `:` is rare in Sling's lines.
fn has_scheme_separator(text: &str) -> bool {
    let b = text.as_bytes();
    memchr::memchr_iter(b':', b).any(|i| b[i + 1..].starts_with(b"//"))
}

/// Cheap pre-check for the key-value rule: `pas`(sword/swd) or `pwd`, any case. This runs for every line Sling
/// prints: one comparison per byte until a `p`, not a lowercased window per byte (`| 0x20` lowercases exactly the
/// letters compared here and turns no other byte into one of them).
fn might_hold_kv_password(text: &str) -> bool {
    let b = text.as_bytes();
    let lower = |i: usize| b.get(i).map_or(0, |c| c | 0x20);
    (0..b.len()).any(|i| {
        b[i] | 0x20 == b'p' && matches!((lower(i + 1), lower(i + 2)), (b'a', b's') | (b'w', b'd'))
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

/// The password of a connection URL, read both ways: up to the last `@` (the whole value is one URL, so a raw `@`
/// in the password comes before the host's) and, when that `@` is followed by something other than a host, the
/// shortest reading the shape rule would take.
fn url_passwords(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some((scheme, rest)) = value.split_once("://") {
        let userinfo = rest.rfind('@').map(|at| &rest[..at]);
        if let Some((_, pw)) = userinfo.and_then(|u| u.split_once(':')) {
            if !scheme.is_empty() && !pw.is_empty() {
                out.push(pw.to_owned());
            }
        }
    }
    if let Some(c) = URL_PASSWORD.captures(value) {
        out.push(c["pw"].to_owned());
    }
    out
}

/// The URL with its password masked.
fn mask_url(url: &str) -> String {
    URL_PASSWORD
        .replace_all(url, format!("${{pre}}{MASK}@${{host}}${{end}}"))
        .into_owned()
}

#[cfg(test)]
mod tests;
