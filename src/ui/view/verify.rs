//! How the console shows a run's verification: the VERIFY column's mark and the detail pane's per-stream table.

use ratatui::style::Style;

use super::format::thousands;
use super::theme::Theme;
use crate::sync::verify::{StreamStatus, StreamVerify, VerifyReport, VerifyStatus};

/// The VERIFY column: `✓` every counted stream matches, `Δ+3` drift (target minus source over the drifting streams;
/// `Δ±6` when they drift both ways), `err` verification failed, `–` nothing was verified (off, skipped, no run yet,
/// runs from before verification existed).
pub fn mark(v: Option<&VerifyReport>) -> String {
    let Some(v) = v else {
        return "–".into();
    };
    match v.status {
        VerifyStatus::Match => "✓".into(),
        VerifyStatus::Error => "err".into(),
        VerifyStatus::Skipped | VerifyStatus::Off => "–".into(),
        VerifyStatus::Drift => {
            let drifts: Vec<i64> = v
                .streams
                .values()
                .filter(|s| s.status == StreamStatus::Drift)
                .filter_map(|s| s.drift_rows)
                .collect();
            let size = thousands(drifts.iter().map(|d| d.unsigned_abs()).sum());
            if drifts.iter().all(|d| *d >= 0) {
                format!("Δ+{size}")
            } else if drifts.iter().all(|d| *d <= 0) {
                format!("Δ-{size}")
            } else {
                format!("Δ±{size}")
            }
        }
    }
}

pub fn style(v: Option<&VerifyReport>, theme: &Theme) -> Style {
    match v.map(|v| v.status) {
        Some(VerifyStatus::Match) => theme.ok(),
        Some(VerifyStatus::Drift) => theme.warning(),
        Some(VerifyStatus::Error) => theme.error(),
        _ => theme.dim(),
    }
}

fn stream_style(s: &StreamVerify, theme: &Theme) -> Style {
    match s.status {
        StreamStatus::Match => theme.base(),
        StreamStatus::Drift => theme.warning(),
        StreamStatus::Error => theme.error(),
        StreamStatus::Skipped => theme.dim(),
    }
}

/// The detail pane's verification rows: a headline, then one aligned row per stream with both counts, the drift,
/// its status and what to act on (warning codes, or the note of a skipped or failed stream).
pub fn detail(v: &VerifyReport, theme: &Theme) -> Vec<(String, Style)> {
    let headline = match (v.status, &v.note) {
        (VerifyStatus::Off, _) => "off (SYNC_VERIFY=off)".to_string(),
        (status, Some(note)) => format!("{status}: {note}"),
        (VerifyStatus::Drift, None) => format!("drift · {} row(s) off", thousands(v.drift_rows())),
        (status, None) => status.to_string(),
    };
    let mut out = vec![(headline, style(Some(v), theme))];
    if v.note.is_some() && v.streams.values().all(|s| s.note == v.note) {
        // One note for the whole verification (the time limit, Sling missing): no need to repeat it per stream.
        return out;
    }
    let count = |n: Option<u64>| n.map_or_else(|| "-".to_string(), thousands);
    let rows: Vec<[String; 4]> = v
        .streams
        .iter()
        .map(|(name, s)| {
            let drift = match s.drift_rows {
                Some(d) if d > 0 => format!("+{}", thousands(d.unsigned_abs())),
                Some(d) if d < 0 => format!("-{}", thousands(d.unsigned_abs())),
                Some(_) => "0".into(),
                None => String::new(),
            };
            [
                name.clone(),
                count(s.source_rows),
                count(s.target_rows),
                drift,
            ]
        })
        .collect();
    let w = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let (wn, ws, wt, wd) = (w(0), w(1), w(2), w(3));
    for ((_, s), [name, source, target, drift]) in v.streams.iter().zip(rows) {
        let act = if s.warnings.is_empty() {
            s.note.clone().unwrap_or_default()
        } else {
            s.warnings
                .iter()
                .map(|w| w.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let text = format!(
            "{name:<wn$} {source:>ws$} → {target:>wt$} {drift:>wd$} {:<7} {act}",
            s.status.as_str()
        );
        out.push((text.trim_end().to_string(), stream_style(s, theme)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::verify::Warning;
    use std::collections::BTreeMap;

    fn stream(source: u64, target: u64, warnings: Vec<Warning>) -> StreamVerify {
        StreamVerify::counted(source, target, warnings, None)
    }

    fn report(streams: Vec<(&str, StreamVerify)>) -> VerifyReport {
        VerifyReport::from_streams(
            streams
                .into_iter()
                .map(|(n, s)| (n.to_string(), s))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    #[test]
    fn the_mark_says_match_drift_with_its_sign_error_or_nothing() {
        assert_eq!(mark(None), "–");
        assert_eq!(mark(Some(&VerifyReport::off())), "–");
        assert_eq!(mark(Some(&report(vec![("a", stream(5, 5, vec![]))]))), "✓");
        let plus = report(vec![
            ("a", stream(5, 8, vec![Warning::DeletesNotPropagated])),
            ("b", stream(2, 2, vec![])),
        ]);
        assert_eq!(mark(Some(&plus)), "Δ+3");
        let minus = report(vec![(
            "a",
            stream(5_000, 1_000, vec![Warning::RowsMissing]),
        )]);
        assert_eq!(mark(Some(&minus)), "Δ-4,000");
        let both = report(vec![
            ("a", stream(5, 8, vec![])),
            ("b", stream(5, 2, vec![])),
        ]);
        assert_eq!(mark(Some(&both)), "Δ±6");
        let failed = VerifyReport::failed(["a".to_string()], "timed out after 60s");
        assert_eq!(mark(Some(&failed)), "err");
    }

    #[test]
    fn the_detail_lists_each_stream_aligned_with_what_to_act_on() {
        let mut skipped = StreamVerify::skipped("custom sql: source, no table to count");
        skipped.status = StreamStatus::Skipped;
        let v = report(vec![
            (
                "main.orders",
                stream(1, 3, vec![Warning::DeletesNotPropagated]),
            ),
            ("main.customers", stream(1_200, 1_200, vec![])),
            ("main.report", skipped),
        ]);
        let theme = Theme::new(true);
        let text: Vec<String> = detail(&v, &theme).into_iter().map(|(t, _)| t).collect();
        assert_eq!(
            text,
            [
                "drift · 2 row(s) off",
                "main.customers 1,200 → 1,200  0 match",
                "main.orders        1 →     3 +2 drift   deletes_not_propagated",
                "main.report        - →     -    skipped custom sql: source, no table to count",
            ]
        );
    }

    #[test]
    fn a_whole_verification_error_is_said_once() {
        let v = VerifyReport::failed(
            ["a".to_string(), "b".to_string()],
            "verification timed out after 60s",
        );
        let text: Vec<String> = detail(&v, &Theme::new(true))
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(text, ["error: verification timed out after 60s"]);
    }
}
