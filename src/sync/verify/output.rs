//! Reading `SLING_OUTPUT=json sling conns exec|discover` output: one `{"fields":[…],"rows":[[…]]}` line per query on
//! stdout, mixed with Sling's own JSON log lines (`{"lvl":…}`) when `SLING_LOGGING=JSON`. Sling runs the queries of
//! one call in order and stops at the first failing one (exit 1, `fatal:` block on stderr), so the number of result
//! lines tells which query failed.

use serde::Deserialize;
use serde_json::Value;

use crate::sync::sling_log::strip_ansi;

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ResultSet {
    pub fields: Vec<String>,
    #[serde(default)]
    pub rows: Vec<Vec<Value>>,
}

impl ResultSet {
    /// The value of `field` in the first row.
    pub fn first(&self, field: &str) -> Option<&Value> {
        let i = self
            .fields
            .iter()
            .position(|f| f.eq_ignore_ascii_case(field))?;
        self.rows.first()?.get(i)
    }

    /// A count in the first row; drivers give integers (PostgreSQL) or strings (SQLite, MariaDB sums).
    pub fn count(&self, field: &str) -> Option<u64> {
        as_count(self.first(field)?)
    }
}

/// A row count from a JSON value: `2`, `"2"`, `"2.0"`.
pub fn as_count(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                .map(|f| f as u64)
        }),
        Value::String(s) => {
            let t = s.trim();
            t.parse::<u64>().ok().or_else(|| {
                t.parse::<f64>()
                    .ok()
                    .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                    .map(|f| f as u64)
            })
        }
        _ => None,
    }
}

/// Every result line in a call's stdout, in query order. Log lines and blank lines are skipped.
pub fn result_sets(stdout: &str) -> Vec<ResultSet> {
    stdout
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("{\"fields\""))
        .filter_map(|l| serde_json::from_str::<ResultSet>(l).ok())
        .collect()
}

/// The message of Sling's `fatal:` block on stderr, without colours and the banner; the last non-empty stderr line
/// when there is no such block. (Redaction is the caller's job.)
pub fn fatal_message(stderr: &str) -> String {
    let plain = strip_ansi(stderr);
    let body = match plain.find("fatal:") {
        Some(i) => &plain[i + "fatal:".len()..],
        None => plain.as_str(),
    };
    let lines: Vec<&str> = body
        .lines()
        .map(|l| l.trim().trim_start_matches("~ ").trim())
        .filter(|l| !l.is_empty() && !l.starts_with("---"))
        .collect();
    if lines.is_empty() {
        return "no output".into();
    }
    lines.join(" · ")
}

/// What one `conns exec` call with `n` queries produced: results of the queries that ran, and the error of the one
/// that stopped the call. Queries after a failed one did not run.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutcome {
    pub results: Vec<ResultSet>,
    /// (index of the failed query, message) when the call failed.
    pub failed: Option<(usize, String)>,
}

/// Splits a finished call. `success` is exit code 0.
pub fn call_outcome(stdout: &str, stderr: &str, success: bool, queries: usize) -> CallOutcome {
    let results = result_sets(stdout);
    let failed = if success && results.len() >= queries {
        None
    } else if success {
        Some((
            results.len(),
            "Sling printed no result for this query".to_owned(),
        ))
    } else {
        Some((
            results.len().min(queries.saturating_sub(1)),
            fatal_message(stderr),
        ))
    };
    CallOutcome { results, failed }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Captured from Sling 1.4.11 (`SLING_OUTPUT=json SLING_LOGGING=JSON sling conns exec …`).
    const SQLITE_STDOUT: &str = "{\"fields\":[\"s\",\"n\",\"mx\"],\"rows\":[[\"main.orders\",\"2\",\"2026-01-01 00:00:02\"],[\"x\",\"0\",null]]}\n{\"fields\":[\"one\"],\"rows\":[[\"1\"]]}\n{\"lvl\":\"info\",\"time\":\"2026-11-28T07:17:37Z\",\"msg\":\"successful! duration: 0 seconds (1 affected records)\"}\n";
    const PG_STDOUT: &str =
        "{\"fields\":[\"n\",\"mx\",\"mn\"],\"rows\":[[1,\"2026-02-01T00:00:01.123456Z\",5]]}\n";
    const FAILED_STDERR: &str = "\u{1b}[31mfatal:\n~ SQL Error for:\nselect count(*) as n from main.nope\nno such table: main.nope\u{1b}[0m\n";

    #[test]
    fn result_lines_parse_with_driver_types() {
        let sets = result_sets(SQLITE_STDOUT);
        assert_eq!(sets.len(), 2);
        assert_eq!(sets[0].fields, ["s", "n", "mx"]);
        assert_eq!(sets[0].count("n"), Some(2));
        assert_eq!(sets[0].rows[1][2], Value::Null);
        let pg = result_sets(PG_STDOUT);
        assert_eq!(pg[0].count("N"), Some(1));
        assert_eq!(
            pg[0].first("mx"),
            Some(&json!("2026-02-01T00:00:01.123456Z"))
        );
        assert_eq!(pg[0].count("nope"), None);
    }

    #[test]
    fn counts_accept_numbers_and_numeric_strings_only() {
        assert_eq!(as_count(&json!(7)), Some(7));
        assert_eq!(as_count(&json!("7")), Some(7));
        assert_eq!(as_count(&json!("7.0")), Some(7));
        assert_eq!(as_count(&json!(7.5)), None);
        assert_eq!(as_count(&json!("-1")), None);
        assert_eq!(as_count(&json!(null)), None);
    }

    #[test]
    fn a_failed_call_names_the_query_that_stopped_it() {
        let out = call_outcome(
            "{\"fields\":[\"n\"],\"rows\":[[\"2\"]]}\n",
            FAILED_STDERR,
            false,
            3,
        );
        assert_eq!(out.results.len(), 1);
        let (i, msg) = out.failed.expect("failed");
        assert_eq!(i, 1);
        assert_eq!(
            msg,
            "SQL Error for: · select count(*) as n from main.nope · no such table: main.nope"
        );
        let ok = call_outcome(SQLITE_STDOUT, "", true, 2);
        assert_eq!(ok.failed, None);
        let short = call_outcome("", "", true, 1);
        assert_eq!(short.failed.map(|f| f.0), Some(0));
        assert_eq!(fatal_message(""), "no output");
    }
}
