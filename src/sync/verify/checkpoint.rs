//! Checkpoint values (`max(update_key)`) as Sling's JSON output gives them, made comparable across databases.
//!
//! Sling renders values per driver: SQLite gives strings (`"2"`, `"2026-01-01 00:00:02"`), PostgreSQL and MariaDB give
//! numbers and RFC 3339 times (`"2026-01-01T00:00:02Z"`). A value is read as a number, then as a time, else kept as
//! text; a target checkpoint of another kind than the source's (SLING_FACTS §10: `"\"2024-01-03T07:33:20Z\""`, with
//! the quotes) cannot be read back as a source value.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::Value;

use super::dialect::Dialect;

#[derive(Debug, Clone, PartialEq)]
pub enum Checkpoint {
    /// A number, kept as its canonical text (integers compare exactly).
    Number(String),
    /// A time in UTC (or wall-clock time when the value carried no offset).
    Time(NaiveDateTime),
    Text(String),
}

impl Checkpoint {
    /// `None` for SQL NULL.
    pub fn from_json(v: &Value) -> Option<Self> {
        match v {
            Value::Null => None,
            Value::Number(n) => Some(Checkpoint::Number(n.to_string())),
            Value::Bool(b) => Some(Checkpoint::Text(b.to_string())),
            Value::String(s) => Some(Self::from_text(s)),
            other => Some(Checkpoint::Text(other.to_string())),
        }
    }

    pub fn from_text(s: &str) -> Self {
        let t = s.trim();
        if is_number(t) {
            return Checkpoint::Number(t.to_owned());
        }
        if let Some(time) = parse_time(t) {
            return Checkpoint::Time(time);
        }
        Checkpoint::Text(s.to_owned())
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Checkpoint::Number(_) => "number",
            Checkpoint::Time(_) => "time",
            Checkpoint::Text(_) => "text",
        }
    }

    /// Orders two checkpoints of the same kind; `None` across kinds (not comparable).
    pub fn compare(&self, other: &Self) -> Option<Ordering> {
        match (self, other) {
            (Checkpoint::Number(a), Checkpoint::Number(b)) => {
                match (a.parse::<i128>(), b.parse::<i128>()) {
                    (Ok(x), Ok(y)) => Some(x.cmp(&y)),
                    _ => a.parse::<f64>().ok()?.partial_cmp(&b.parse::<f64>().ok()?),
                }
            }
            (Checkpoint::Time(a), Checkpoint::Time(b)) => Some(a.cmp(b)),
            (Checkpoint::Text(a), Checkpoint::Text(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// Shown in notes.
    pub fn display(&self) -> String {
        match self {
            Checkpoint::Number(n) => n.clone(),
            Checkpoint::Time(t) => t.format("%Y-%m-%d %H:%M:%S%.f").to_string(),
            Checkpoint::Text(s) => format!("{s:?}"),
        }
    }

    /// The SQL condition `column <= self` on the source. Times go through `julianday` in SQLite, so text stored as
    /// `2026-01-01 00:00:02` or `2026-01-01T00:00:02Z` compares as the same instant (to the millisecond).
    pub fn at_or_before(&self, dialect: Dialect, column: &str) -> String {
        let col = dialect.quote(column);
        match self {
            Checkpoint::Number(n) => format!("{col} <= {n}"),
            Checkpoint::Text(s) => format!("{col} <= {}", dialect.string_literal(s)),
            Checkpoint::Time(t) => {
                let text = t.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
                match dialect {
                    Dialect::Sqlite => format!("julianday({col}) <= julianday('{text}')"),
                    // `+00` is the instant for timestamptz; PostgreSQL ignores it for timestamp columns.
                    Dialect::Postgres => format!("{col} <= '{text}+00'"),
                    Dialect::DuckDb | Dialect::MySql => format!("{col} <= '{text}'"),
                }
            }
        }
    }
}

fn is_number(t: &str) -> bool {
    let digits = t.strip_prefix('-').unwrap_or(t);
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.chars().filter(|c| *c == '.').count() <= 1
        && digits.chars().next().is_some_and(|c| c.is_ascii_digit())
        && digits.chars().last().is_some_and(|c| c.is_ascii_digit())
}

fn parse_time(t: &str) -> Option<NaiveDateTime> {
    if t.len() < 10 || !t.as_bytes()[..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    if t.len() == 10 {
        return NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0));
    }
    // One form: `T` between date and time; `+00` offsets (PostgreSQL text) get their minutes.
    let mut s = t.to_owned();
    if s.as_bytes().get(10) == Some(&b' ') {
        s.replace_range(10..11, "T");
    }
    let s = s.replace(' ', "");
    let s = match s.rfind(['+', '-']) {
        Some(i) if i > 18 && s.len() - i == 3 => format!("{s}:00"),
        _ => s,
    };
    if let Ok(dt) = DateTime::parse_from_rfc3339(&s) {
        return Some(dt.naive_utc());
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%.f%:z"] {
        if let Ok(dt) = DateTime::parse_from_str(&s, f) {
            return Some(dt.naive_utc());
        }
    }
    NaiveDateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M:%S%.f").ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cp(v: Value) -> Checkpoint {
        Checkpoint::from_json(&v).expect("not null")
    }

    #[test]
    fn values_from_each_driver_parse_to_the_same_kind() {
        // SQLite strings, PostgreSQL numbers and RFC 3339, PostgreSQL text cast, MariaDB fractional.
        assert_eq!(cp(json!("2")), cp(json!(2)));
        let sqlite = cp(json!("2026-01-01 00:00:02"));
        let pg = cp(json!("2026-01-01T00:00:02Z"));
        let pg_text = cp(json!("2026-01-01 00:00:02+00"));
        let offset = cp(json!("2026-01-01T02:00:02+02:00"));
        assert_eq!(sqlite, pg);
        assert_eq!(pg, pg_text);
        assert_eq!(pg, offset);
        assert_eq!(
            cp(json!("2026-01-01T00:00:01.5Z")).display(),
            "2026-01-01 00:00:01.500"
        );
        assert_eq!(cp(json!("2026-01-01")).kind(), "time");
        assert_eq!(Checkpoint::from_json(&Value::Null), None);
    }

    #[test]
    fn the_quoted_sqlite_timestamp_is_text_and_not_comparable_with_a_time() {
        let target = cp(json!("\"2024-01-03T07:33:20Z\""));
        let source = cp(json!("2024-01-03T07:33:20Z"));
        assert_eq!(target.kind(), "text");
        assert_eq!(source.kind(), "time");
        assert_eq!(target.compare(&source), None);
    }

    #[test]
    fn comparisons_are_exact_for_integers_and_instants() {
        let big = cp(json!("9007199254740993"));
        let bigger = cp(json!(9007199254740994u64));
        assert_eq!(big.compare(&bigger), Some(Ordering::Less));
        assert_eq!(
            cp(json!("1.5")).compare(&cp(json!(1.25))),
            Some(Ordering::Greater)
        );
        assert_eq!(
            cp(json!("2026-01-01T00:00:01.000001Z")).compare(&cp(json!("2026-01-01 00:00:01"))),
            Some(Ordering::Greater)
        );
        assert_eq!(
            cp(json!("b")).compare(&cp(json!("a"))),
            Some(Ordering::Greater)
        );
        assert_eq!(cp(json!("-3")).kind(), "number");
        assert_eq!(cp(json!("1.2.3")).kind(), "text");
        assert_eq!(cp(json!("12345678901")).kind(), "number");
    }

    #[test]
    fn conditions_per_dialect() {
        let t = cp(json!("2026-01-01T00:00:01.5Z"));
        assert_eq!(
            t.at_or_before(Dialect::Sqlite, "updated_at"),
            r#"julianday("updated_at") <= julianday('2026-01-01 00:00:01.500000')"#
        );
        assert_eq!(
            t.at_or_before(Dialect::Postgres, "Upd"),
            r#""Upd" <= '2026-01-01 00:00:01.500000+00'"#
        );
        assert_eq!(
            t.at_or_before(Dialect::MySql, "ts"),
            "`ts` <= '2026-01-01 00:00:01.500000'"
        );
        assert_eq!(
            cp(json!(42)).at_or_before(Dialect::Postgres, "v"),
            r#""v" <= 42"#
        );
        assert_eq!(
            cp(json!("o'k")).at_or_before(Dialect::Sqlite, "v"),
            r#""v" <= 'o''k'"#
        );
    }
}
