//! The verification result as the journal stores it. The names are a contract (journal readers, telemetry,
//! dashboards): `status`, `streams`, `source_rows`, `target_rows`, `drift_rows`, `warnings`, `note`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The verification of one pipeline run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyStatus {
    Match,
    Drift,
    Skipped,
    Error,
    Off,
}

/// The verification of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamStatus {
    Match,
    Drift,
    Skipped,
    Error,
}

/// What an operator can act on, per stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Warning {
    /// Incremental: the target has more rows than the source as of the checkpoint (Sling never deletes).
    DeletesNotPropagated,
    /// The target has fewer rows than the source.
    RowsMissing,
    /// An incremental run copied about the whole source again although the source did not grow.
    IncrementalRecopy,
    /// The target's checkpoint is greater than the source's.
    CheckpointAhead,
    /// The target's checkpoint cannot be read back as a source value; whole tables were compared.
    CheckpointMismatch,
}

impl VerifyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyStatus::Match => "match",
            VerifyStatus::Drift => "drift",
            VerifyStatus::Skipped => "skipped",
            VerifyStatus::Error => "error",
            VerifyStatus::Off => "off",
        }
    }
}

impl StreamStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamStatus::Match => "match",
            StreamStatus::Drift => "drift",
            StreamStatus::Skipped => "skipped",
            StreamStatus::Error => "error",
        }
    }
}

impl Warning {
    pub fn as_str(self) -> &'static str {
        match self {
            Warning::DeletesNotPropagated => "deletes_not_propagated",
            Warning::RowsMissing => "rows_missing",
            Warning::IncrementalRecopy => "incremental_recopy",
            Warning::CheckpointAhead => "checkpoint_ahead",
            Warning::CheckpointMismatch => "checkpoint_mismatch",
        }
    }
}

impl fmt::Display for VerifyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamVerify {
    /// Source rows compared (as of the target's checkpoint for incremental streams).
    pub source_rows: Option<u64>,
    pub target_rows: Option<u64>,
    /// `target_rows - source_rows`.
    pub drift_rows: Option<i64>,
    pub status: StreamStatus,
    #[serde(default)]
    pub warnings: Vec<Warning>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl StreamVerify {
    /// Both sides counted: the drift and the status follow from the counts.
    pub fn counted(
        source_rows: u64,
        target_rows: u64,
        warnings: Vec<Warning>,
        note: Option<String>,
    ) -> Self {
        let drift = i128::from(target_rows) - i128::from(source_rows);
        let drift = i64::try_from(drift).unwrap_or(if drift > 0 { i64::MAX } else { i64::MIN });
        Self {
            source_rows: Some(source_rows),
            target_rows: Some(target_rows),
            drift_rows: Some(drift),
            status: if drift == 0 {
                StreamStatus::Match
            } else {
                StreamStatus::Drift
            },
            warnings,
            note,
        }
    }

    pub fn skipped(note: impl Into<String>) -> Self {
        Self {
            source_rows: None,
            target_rows: None,
            drift_rows: None,
            status: StreamStatus::Skipped,
            warnings: Vec::new(),
            note: Some(note.into()),
        }
    }

    pub fn error(note: impl Into<String>) -> Self {
        Self {
            status: StreamStatus::Error,
            ..Self::skipped(note)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub status: VerifyStatus,
    /// Keyed by the same stream names as the run's `streams`.
    #[serde(default)]
    pub streams: BTreeMap<String, StreamVerify>,
    /// Why the whole verification was skipped or failed (e.g. the time limit), when not per stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl VerifyReport {
    pub fn off() -> Self {
        Self {
            status: VerifyStatus::Off,
            streams: BTreeMap::new(),
            note: None,
        }
    }

    /// Builds the report; the pipeline status follows from the streams: any drift → `drift`, else any error →
    /// `error`, else any match → `match`, else `skipped`.
    pub fn from_streams(streams: BTreeMap<String, StreamVerify>) -> Self {
        let has = |s: StreamStatus| streams.values().any(|v| v.status == s);
        let status = if has(StreamStatus::Drift) {
            VerifyStatus::Drift
        } else if has(StreamStatus::Error) {
            VerifyStatus::Error
        } else if has(StreamStatus::Match) {
            VerifyStatus::Match
        } else {
            VerifyStatus::Skipped
        };
        Self {
            status,
            streams,
            note: None,
        }
    }

    /// The whole verification failed before any stream had a result (time limit, Sling missing, …).
    pub fn failed(streams: impl IntoIterator<Item = String>, note: &str) -> Self {
        Self {
            status: VerifyStatus::Error,
            streams: streams
                .into_iter()
                .map(|s| (s, StreamVerify::error(note)))
                .collect(),
            note: Some(note.to_owned()),
        }
    }

    /// Sum of |drift| over the streams.
    pub fn drift_rows(&self) -> u64 {
        self.streams
            .values()
            .filter_map(|s| s.drift_rows)
            .map(i64::unsigned_abs)
            .sum()
    }

    /// The batch output line: `verify: match`, `verify: drift orders +3 (deletes_not_propagated)`.
    pub fn summary_line(&self) -> String {
        let mut line = format!("verify: {}", self.status);
        let tagged = |s: &StreamVerify| {
            if s.warnings.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    s.warnings
                        .iter()
                        .map(|w| w.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        };
        let parts: Vec<String> = match self.status {
            VerifyStatus::Drift => self
                .streams
                .iter()
                .filter(|(_, s)| s.status == StreamStatus::Drift)
                .map(|(n, s)| format!("{n} {:+}{}", s.drift_rows.unwrap_or(0), tagged(s)))
                .collect(),
            VerifyStatus::Error => self
                .streams
                .iter()
                .filter(|(_, s)| s.status == StreamStatus::Error)
                .map(|(n, s)| format!("{n}: {}", s.note.as_deref().unwrap_or("error")))
                .take(1)
                .collect(),
            VerifyStatus::Match => self
                .streams
                .iter()
                .filter(|(_, s)| !s.warnings.is_empty())
                .map(|(n, s)| format!("{n}{}", tagged(s)))
                .collect(),
            VerifyStatus::Skipped | VerifyStatus::Off => Vec::new(),
        };
        if !parts.is_empty() {
            line.push(' ');
            line.push_str(&parts.join(", "));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(status: StreamStatus, drift: i64, warnings: &[Warning]) -> StreamVerify {
        StreamVerify {
            source_rows: Some(10),
            target_rows: Some((10 + drift) as u64),
            drift_rows: Some(drift),
            status,
            warnings: warnings.to_vec(),
            note: None,
        }
    }

    #[test]
    fn journal_shape_uses_the_contract_names() {
        let r = VerifyReport::from_streams(
            [(
                "main.orders".to_string(),
                stream(StreamStatus::Drift, 3, &[Warning::DeletesNotPropagated]),
            )]
            .into(),
        );
        let v = serde_json::to_value(&r).expect("serialises");
        assert_eq!(
            v,
            serde_json::json!({"status": "drift", "streams": {"main.orders": {
                "source_rows": 10, "target_rows": 13, "drift_rows": 3, "status": "drift",
                "warnings": ["deletes_not_propagated"]}}})
        );
        let back: VerifyReport = serde_json::from_value(v).expect("reads back");
        assert_eq!(back, r);
        assert_eq!(
            serde_json::to_value(VerifyReport::off()).expect("off"),
            serde_json::json!({"status": "off", "streams": {}})
        );
    }

    #[test]
    fn pipeline_status_prefers_drift_then_error_then_match() {
        let mk = |ss: &[StreamStatus]| {
            VerifyReport::from_streams(
                ss.iter()
                    .enumerate()
                    .map(|(i, s)| (format!("s{i}"), stream(*s, 0, &[])))
                    .collect(),
            )
            .status
        };
        use StreamStatus as S;
        assert_eq!(mk(&[S::Match, S::Error, S::Drift]), VerifyStatus::Drift);
        assert_eq!(mk(&[S::Match, S::Error]), VerifyStatus::Error);
        assert_eq!(mk(&[S::Skipped, S::Match]), VerifyStatus::Match);
        assert_eq!(mk(&[S::Skipped]), VerifyStatus::Skipped);
        assert_eq!(mk(&[]), VerifyStatus::Skipped);
    }

    #[test]
    fn summary_lines() {
        let drift = VerifyReport::from_streams(
            [
                (
                    "orders".to_string(),
                    stream(StreamStatus::Drift, 3, &[Warning::DeletesNotPropagated]),
                ),
                (
                    "items".to_string(),
                    stream(StreamStatus::Drift, -2, &[Warning::RowsMissing]),
                ),
                ("ok".to_string(), stream(StreamStatus::Match, 0, &[])),
            ]
            .into(),
        );
        assert_eq!(
            drift.summary_line(),
            "verify: drift items -2 (rows_missing), orders +3 (deletes_not_propagated)"
        );
        assert_eq!(drift.drift_rows(), 5);
        let m = VerifyReport::from_streams(
            [(
                "t".to_string(),
                stream(StreamStatus::Match, 0, &[Warning::IncrementalRecopy]),
            )]
            .into(),
        );
        assert_eq!(m.summary_line(), "verify: match t (incremental_recopy)");
        let e = VerifyReport::failed(["a".to_string()], "timed out after 60s");
        assert_eq!(e.summary_line(), "verify: error a: timed out after 60s");
        assert_eq!(VerifyReport::off().summary_line(), "verify: off");
    }
}
