//! SQL dialects the verification can query through `sling conns exec`, identifier quoting, table names and the
//! connection type behind a connection name.

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml::Value;

/// A database the count queries are written for. Others are skipped with a reason rather than guessed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    DuckDb,
    /// PostgreSQL and Redshift.
    Postgres,
    /// MySQL, MariaDB and StarRocks.
    MySql,
}

impl Dialect {
    /// From Sling's connection type (`postgres`, `sqlite`, …) or URL scheme.
    pub fn from_type(kind: &str) -> Option<Self> {
        match kind.trim().to_ascii_lowercase().as_str() {
            "sqlite" | "d1" => Some(Dialect::Sqlite),
            "duckdb" | "motherduck" => Some(Dialect::DuckDb),
            "postgres" | "postgresql" | "redshift" => Some(Dialect::Postgres),
            "mysql" | "mariadb" | "starrocks" => Some(Dialect::MySql),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::DuckDb => "duckdb",
            Dialect::Postgres => "postgres",
            Dialect::MySql => "mysql",
        }
    }

    /// Quotes one identifier exactly as written (Sling keeps the case of names it is given).
    pub fn quote(self, ident: &str) -> String {
        match self {
            Dialect::MySql => format!("`{}`", ident.replace('`', "``")),
            _ => format!("\"{}\"", ident.replace('"', "\"\"")),
        }
    }

    /// A quoted, dot-joined table name.
    pub fn table(self, t: &TableRef) -> String {
        t.parts
            .iter()
            .map(|p| self.quote(p))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// A string literal.
    pub fn string_literal(self, s: &str) -> String {
        let body = s.replace('\'', "''");
        match self {
            // MySQL treats a backslash in a string as an escape.
            Dialect::MySql => format!("'{}'", body.replace('\\', "\\\\")),
            _ => format!("'{body}'"),
        }
    }
}

/// The supported connection types, for messages.
pub const SUPPORTED: &str = "sqlite, duckdb, postgres, redshift, mysql, mariadb";

/// A table name split into its unquoted parts (`schema`, `table`; or just `table`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    pub parts: Vec<String>,
}

impl TableRef {
    /// Parses `schema.table`, `"schema"."Mixed Case"`, `` `db`.`t` `` or `[s].[t]`. Dots inside quotes stay.
    pub fn parse(name: &str) -> Option<Self> {
        let mut parts = Vec::new();
        let mut cur = String::new();
        let mut chars = name.trim().chars().peekable();
        let mut quoted_part = false;
        while let Some(c) = chars.next() {
            match c {
                '"' | '`' | '[' => {
                    let close = if c == '[' { ']' } else { c };
                    quoted_part = true;
                    loop {
                        match chars.next() {
                            Some(x) if x == close => {
                                // A doubled quote is an escaped quote.
                                if chars.peek() == Some(&close) && close != ']' {
                                    cur.push(close);
                                    chars.next();
                                } else {
                                    break;
                                }
                            }
                            Some(x) => cur.push(x),
                            None => return None,
                        }
                    }
                }
                '.' => {
                    if cur.is_empty() && !quoted_part {
                        return None;
                    }
                    parts.push(std::mem::take(&mut cur));
                    quoted_part = false;
                }
                _ => cur.push(c),
            }
        }
        if cur.is_empty() && !quoted_part {
            return None;
        }
        parts.push(cur);
        if parts.len() > 3 {
            return None;
        }
        Some(Self { parts })
    }

    /// The last part.
    pub fn table(&self) -> &str {
        self.parts.last().map(String::as_str).unwrap_or("")
    }

    /// The part before the table, if any.
    pub fn schema(&self) -> Option<&str> {
        (self.parts.len() >= 2).then(|| self.parts[self.parts.len() - 2].as_str())
    }

    /// `schema.table` for `sling conns discover --pattern`.
    pub fn pattern(&self) -> String {
        self.parts.join(".")
    }
}

/// The connection type of a connection name, found where Sling finds the connection: an inline URL, an environment
/// variable (a URL, or YAML/JSON with `type`/`url`), `SLING_ENV_YAML`, or the env file. Values are read only for their
/// type; nothing from them is returned or logged.
pub fn connection_type(
    name: &str,
    env: &BTreeMap<String, String>,
    env_file: Option<&Path>,
) -> Option<String> {
    if let Some(scheme) = url_scheme(name) {
        return Some(scheme);
    }
    let upper = name.to_ascii_uppercase();
    if let Some(v) = env
        .iter()
        .find(|(k, v)| k.to_ascii_uppercase() == upper && !v.is_empty())
        .map(|(_, v)| v)
    {
        return url_scheme(v).or_else(|| {
            serde_yaml::from_str::<Value>(v)
                .ok()
                .and_then(|d| type_of(&d))
        });
    }
    let from_env_yaml = |text: &str| {
        serde_yaml::from_str::<Value>(text).ok().and_then(|d| {
            d.get("connections")
                .and_then(Value::as_mapping)
                .and_then(|m| {
                    m.iter()
                        .find(|(k, _)| k.as_str().is_some_and(|k| k.to_ascii_uppercase() == upper))
                        .map(|(_, v)| v.clone())
                })
                .and_then(|c| type_of(&c))
        })
    };
    if let Some(t) = env.get("SLING_ENV_YAML").and_then(|t| from_env_yaml(t)) {
        return Some(t);
    }
    env_file
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| from_env_yaml(&t))
}

fn type_of(conn: &Value) -> Option<String> {
    conn.get("type")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| conn.get("url").and_then(Value::as_str).and_then(url_scheme))
}

fn url_scheme(v: &str) -> Option<String> {
    let (scheme, _) = v.trim().split_once("://")?;
    (!scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+'))
    .then(|| scheme.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_per_dialect_keeps_case_and_escapes() {
        let t = TableRef::parse("public.Orders_Copy").expect("parses");
        assert_eq!(Dialect::Postgres.table(&t), r#""public"."Orders_Copy""#);
        assert_eq!(Dialect::MySql.table(&t), "`public`.`Orders_Copy`");
        assert_eq!(Dialect::Sqlite.quote("a\"b"), r#""a""b""#);
        assert_eq!(Dialect::MySql.quote("a`b"), "`a``b`");
        assert_eq!(Dialect::MySql.string_literal(r"it's \x"), r"'it''s \\x'");
        assert_eq!(Dialect::Postgres.string_literal(r"it's \x"), r"'it''s \x'");
    }

    #[test]
    fn table_names_parse_in_every_quoting_style() {
        let p = |s: &str| TableRef::parse(s).map(|t| t.parts);
        assert_eq!(p("main.orders"), Some(vec!["main".into(), "orders".into()]));
        assert_eq!(
            p(r#"public."Mixed Case""#),
            Some(vec!["public".into(), "Mixed Case".into()])
        );
        assert_eq!(
            p(r#""main"."a.b""c""#),
            Some(vec!["main".into(), "a.b\"c".into()])
        );
        assert_eq!(p("`db`.`t`"), Some(vec!["db".into(), "t".into()]));
        assert_eq!(p("[dbo].[t]"), Some(vec!["dbo".into(), "t".into()]));
        assert_eq!(p("orders"), Some(vec!["orders".into()]));
        assert_eq!(p("a..b"), None);
        assert_eq!(p("\"open"), None);
        let t = TableRef::parse("main.orders").expect("parses");
        assert_eq!(
            (t.schema(), t.table(), t.pattern().as_str()),
            (Some("main"), "orders", "main.orders")
        );
    }

    #[test]
    fn connection_types_come_from_urls_env_yaml_and_the_env_file() {
        let env: BTreeMap<String, String> = [
            (
                "mission".to_string(),
                "postgresql://u:secret@h/db".to_string(),
            ),
            (
                "JSONCONN".to_string(),
                r#"{"type": "mysql", "host": "h"}"#.to_string(),
            ),
            (
                "SLING_ENV_YAML".to_string(),
                "connections:\n  inline_c:\n    url: sqlite:///x.db\n".to_string(),
            ),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            connection_type("MISSION", &env, None).as_deref(),
            Some("postgresql")
        );
        assert_eq!(
            connection_type("jsonconn", &env, None).as_deref(),
            Some("mysql")
        );
        assert_eq!(
            connection_type("INLINE_C", &env, None).as_deref(),
            Some("sqlite")
        );
        assert_eq!(
            connection_type("mariadb://r@h/d", &env, None).as_deref(),
            Some("mariadb")
        );
        let d = tempfile::tempdir().expect("tempdir");
        let f = d.path().join("env.yaml");
        std::fs::write(
            &f,
            "connections:\n  COMMAND:\n    type: duckdb\n    instance: /x\n",
        )
        .expect("write");
        assert_eq!(
            connection_type("command", &env, Some(&f)).as_deref(),
            Some("duckdb")
        );
        assert_eq!(connection_type("NOPE", &env, Some(&f)), None);
        assert_eq!(Dialect::from_type("PostgreSQL"), Some(Dialect::Postgres));
        assert_eq!(Dialect::from_type("mariadb"), Some(Dialect::MySql));
        assert_eq!(Dialect::from_type("snowflake"), None);
    }
}
