//! From counts to a verdict per stream: which basis the counts are compared on, the drift, and the warnings.

use std::cmp::Ordering;

use super::checkpoint::Checkpoint;
use super::output::ResultSet;
use super::plan::{Comparison, Counted};
use super::report::{StreamVerify, Warning};

/// One side's first-round result: `count(*)` and `max(update_key)`.
#[derive(Debug, Clone, PartialEq)]
pub struct SideCounts {
    pub rows: u64,
    pub max: Option<Checkpoint>,
}

impl SideCounts {
    /// From a result set of `select count(*) as n, max(…) as mx`.
    pub fn from_result(r: &ResultSet) -> Result<Self, String> {
        let rows = r
            .count("n")
            .ok_or_else(|| format!("unexpected result from Sling: fields {:?}", r.fields))?;
        Ok(Self {
            rows,
            max: r.first("mx").and_then(Checkpoint::from_json),
        })
    }
}

/// How the source count is taken, decided from both sides' first-round results.
#[derive(Debug, Clone, PartialEq)]
pub enum Basis {
    /// Whole tables.
    Whole,
    /// The target has no checkpoint yet (no keyed rows): whole tables.
    NoCheckpoint,
    /// The target's checkpoint equals the source's: every source row is at or before it.
    CaughtUp,
    /// The target's checkpoint is past the source's (`checkpoint_ahead`): every source row is at or before it.
    Ahead,
    /// The source has rows past the target's checkpoint: count the source as of it (second round).
    AsOf(Checkpoint),
    /// The checkpoint cannot be read back as a source value (`checkpoint_mismatch`): whole tables.
    Mismatch {
        target: Checkpoint,
        source: Checkpoint,
    },
}

pub fn basis(c: &Counted, source: &SideCounts, target: &SideCounts) -> Basis {
    if !matches!(c.comparison, Comparison::AsOfCheckpoint { .. }) {
        return Basis::Whole;
    }
    let Some(t) = &target.max else {
        return Basis::NoCheckpoint;
    };
    let Some(s) = &source.max else {
        // No keyed source row at all: nothing is at or before the checkpoint except rows without a key.
        return Basis::AsOf(t.clone());
    };
    match t.compare(s) {
        None => Basis::Mismatch {
            target: t.clone(),
            source: s.clone(),
        },
        Some(Ordering::Equal) => Basis::CaughtUp,
        Some(Ordering::Greater) => Basis::Ahead,
        Some(Ordering::Less) => Basis::AsOf(t.clone()),
    }
}

/// What the journal knows about this stream from earlier runs and this one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamHistory {
    /// Rows this run copied for the stream (Sling's `inserted N rows`).
    pub copied_now: Option<u64>,
    /// The verification of the stream in the pipeline's previous run, if it had one.
    pub previous: Option<StreamVerify>,
}

/// A run that copies at least this share of the source's rows "copied about the whole source".
const RECOPY_SHARE: f64 = 0.9;

fn recopied(c: &Counted, source_total: u64, h: &StreamHistory) -> bool {
    let (Some(copied), Some(prev)) = (h.copied_now, &h.previous) else {
        return false;
    };
    let (Some(prev_source), Some(prev_target)) = (prev.source_rows, prev.target_rows) else {
        return false;
    };
    let whole = |part: u64, of: u64| of > 0 && part as f64 >= RECOPY_SHARE * of as f64;
    c.incremental
        && copied > 0
        // About the whole source copied again …
        && whole(copied, source_total)
        // … into a target that already held it after the previous run …
        && whole(prev_target, prev_source)
        // … while most of the copied rows cannot be new ones.
        && source_total.saturating_sub(prev_source) < copied / 2
}

/// The verdict for one counted stream. `as_of` is the second-round source count when `basis` asked for one.
pub fn interpret(
    c: &Counted,
    source: &SideCounts,
    target: &SideCounts,
    basis: &Basis,
    as_of: Option<Result<u64, String>>,
    history: &StreamHistory,
) -> StreamVerify {
    let mut warnings = Vec::new();
    let mut notes = Vec::new();
    let source_rows = match basis {
        Basis::Whole => source.rows,
        Basis::NoCheckpoint => {
            notes.push("the target has no checkpoint yet: whole tables compared".to_owned());
            source.rows
        }
        Basis::CaughtUp => source.rows,
        Basis::Ahead => {
            warnings.push(Warning::CheckpointAhead);
            notes.push(format!(
                "target checkpoint {} is past the source's {}",
                target
                    .max
                    .as_ref()
                    .map(Checkpoint::display)
                    .unwrap_or_default(),
                source
                    .max
                    .as_ref()
                    .map(Checkpoint::display)
                    .unwrap_or_default()
            ));
            source.rows
        }
        Basis::Mismatch {
            target: t,
            source: s,
        } => {
            warnings.push(Warning::CheckpointMismatch);
            notes.push(format!(
                "target checkpoint {} ({}) cannot be read back as a source value like {} ({}): whole tables compared",
                t.display(),
                t.kind(),
                s.display(),
                s.kind()
            ));
            source.rows
        }
        Basis::AsOf(cp) => match as_of {
            Some(Ok(n)) => {
                notes.push(format!(
                    "compared as of checkpoint {} ({} source rows in all)",
                    cp.display(),
                    source.rows
                ));
                n
            }
            Some(Err(e)) => {
                return StreamVerify::error(format!("as-of-checkpoint count failed: {e}"))
            }
            None => return StreamVerify::error("as-of-checkpoint count did not run"),
        },
    };
    match target.rows.cmp(&source_rows) {
        Ordering::Greater if c.incremental => warnings.push(Warning::DeletesNotPropagated),
        Ordering::Greater => notes.push("the target has rows the source no longer has".to_owned()),
        Ordering::Less => warnings.push(Warning::RowsMissing),
        Ordering::Equal => {}
    }
    if recopied(c, source.rows, history) {
        warnings.push(Warning::IncrementalRecopy);
        notes.push(format!(
            "this incremental run copied {} rows of {} again",
            history.copied_now.unwrap_or(0),
            source.rows
        ));
    }
    warnings.sort();
    warnings.dedup();
    StreamVerify::counted(
        source_rows,
        target.rows,
        warnings,
        (!notes.is_empty()).then(|| notes.join("; ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::verify::dialect::TableRef;
    use crate::sync::verify::report::StreamStatus;
    use serde_json::json;

    fn counted(incremental: bool, key: Option<&str>) -> Counted {
        Counted {
            source: TableRef::parse("main.t").expect("t"),
            target: TableRef::parse("main.t").expect("t"),
            filter: None,
            comparison: match key {
                Some(k) => Comparison::AsOfCheckpoint {
                    update_key: k.into(),
                },
                None => Comparison::Whole,
            },
            incremental,
        }
    }

    fn side(rows: u64, max: serde_json::Value) -> SideCounts {
        SideCounts {
            rows,
            max: Checkpoint::from_json(&max),
        }
    }

    fn verdict(
        c: &Counted,
        s: SideCounts,
        t: SideCounts,
        as_of: Option<u64>,
        h: &StreamHistory,
    ) -> StreamVerify {
        let b = basis(c, &s, &t);
        interpret(c, &s, &t, &b, as_of.map(Ok), h)
    }

    #[test]
    fn deleted_source_rows_are_drift_with_deletes_not_propagated() {
        let c = counted(true, Some("ts"));
        let v = verdict(
            &c,
            side(7, json!(10)),
            side(10, json!(10)),
            None,
            &StreamHistory::default(),
        );
        assert_eq!(
            (v.source_rows, v.target_rows, v.drift_rows),
            (Some(7), Some(10), Some(3))
        );
        assert_eq!(v.status, StreamStatus::Drift);
        assert_eq!(v.warnings, [Warning::DeletesNotPropagated]);
    }

    #[test]
    fn rows_arriving_after_the_copy_do_not_count_as_drift() {
        let c = counted(true, Some("ts"));
        let s = side(12, json!("2026-01-01T00:00:12Z"));
        let t = side(10, json!("2026-01-01 00:00:10"));
        let b = basis(&c, &s, &t);
        assert!(matches!(&b, Basis::AsOf(cp) if cp.display() == "2026-01-01 00:00:10"));
        let v = interpret(&c, &s, &t, &b, Some(Ok(10)), &StreamHistory::default());
        assert_eq!(v.status, StreamStatus::Match);
        assert!(
            v.note
                .as_deref()
                .is_some_and(|n| n.contains("12 source rows in all")),
            "{v:?}"
        );
        let failed = interpret(
            &c,
            &s,
            &t,
            &b,
            Some(Err("boom".into())),
            &StreamHistory::default(),
        );
        assert_eq!(failed.status, StreamStatus::Error);
        assert_eq!(failed.drift_rows, None, "an error is never drift");
    }

    #[test]
    fn target_rows_lost_are_rows_missing_in_any_mode() {
        for c in [counted(true, Some("ts")), counted(false, None)] {
            let v = verdict(
                &c,
                side(10, json!(10)),
                side(8, json!(10)),
                None,
                &StreamHistory::default(),
            );
            assert_eq!(v.drift_rows, Some(-2));
            assert_eq!(v.warnings, [Warning::RowsMissing]);
        }
        let full = verdict(
            &counted(false, None),
            side(5, json!(null)),
            side(6, json!(null)),
            None,
            &StreamHistory::default(),
        );
        assert!(
            full.warnings.is_empty(),
            "deletes are propagated by full-refresh"
        );
        assert_eq!(full.status, StreamStatus::Drift);
    }

    #[test]
    fn quoted_checkpoint_falls_back_to_whole_tables_never_a_bogus_drift() {
        let c = counted(true, Some("updated_at"));
        let v = verdict(
            &c,
            side(2, json!("2024-01-03T07:33:20Z")),
            side(2, json!("\"2024-01-03T07:33:20Z\"")),
            None,
            &StreamHistory::default(),
        );
        assert_eq!(v.status, StreamStatus::Match);
        assert_eq!(v.warnings, [Warning::CheckpointMismatch]);
        assert!(v
            .note
            .as_deref()
            .is_some_and(|n| n.contains("whole tables")));
    }

    #[test]
    fn checkpoint_ahead_is_a_warning() {
        let c = counted(true, Some("ts"));
        let v = verdict(
            &c,
            side(3, json!(5)),
            side(3, json!(9)),
            None,
            &StreamHistory::default(),
        );
        assert_eq!(v.warnings, [Warning::CheckpointAhead]);
        assert_eq!(v.status, StreamStatus::Match);
    }

    #[test]
    fn source_without_keyed_rows_needs_the_as_of_count() {
        let c = counted(true, Some("ts"));
        let b = basis(&c, &side(0, json!(null)), &side(4, json!(9)));
        assert!(matches!(b, Basis::AsOf(_)));
        assert_eq!(
            basis(&c, &side(4, json!(9)), &side(0, json!(null))),
            Basis::NoCheckpoint
        );
    }

    #[test]
    fn recopy_needs_a_full_target_before_and_a_source_that_did_not_grow() {
        let c = counted(true, Some("updated_at"));
        let prev = StreamVerify {
            source_rows: Some(2),
            target_rows: Some(2),
            drift_rows: Some(0),
            status: StreamStatus::Match,
            warnings: vec![],
            note: None,
        };
        let h = |copied: u64, previous: Option<StreamVerify>| StreamHistory {
            copied_now: Some(copied),
            previous,
        };
        let run = |source: u64, h: &StreamHistory| {
            verdict(
                &c,
                side(source, json!("a")),
                side(source, json!("b\"")),
                None,
                h,
            )
        };
        assert!(run(2, &h(2, Some(prev.clone())))
            .warnings
            .contains(&Warning::IncrementalRecopy));
        assert!(
            !run(2, &h(2, None))
                .warnings
                .contains(&Warning::IncrementalRecopy),
            "first run"
        );
        assert!(!run(2, &h(0, Some(prev.clone())))
            .warnings
            .contains(&Warning::IncrementalRecopy));
        assert!(
            !run(4, &h(2, Some(prev.clone())))
                .warnings
                .contains(&Warning::IncrementalRecopy),
            "grew"
        );
        let empty_before = StreamVerify {
            target_rows: Some(0),
            ..prev.clone()
        };
        assert!(!run(2, &h(2, Some(empty_before)))
            .warnings
            .contains(&Warning::IncrementalRecopy));
        let full_refresh = counted(false, None);
        let v = verdict(
            &full_refresh,
            side(2, json!(null)),
            side(2, json!(null)),
            None,
            &h(2, Some(prev)),
        );
        assert!(
            v.warnings.is_empty(),
            "full-refresh copies everything by design"
        );
    }
}
