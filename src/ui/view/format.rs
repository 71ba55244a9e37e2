//! Number, duration and time text for the views. All relative times are computed from a `now` passed in.

use chrono::{DateTime, Utc};

/// `1234567` → `1,234,567`: exact, just easier to read.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `0.4s`, `12.3s`, `4m05s`, `2h03m`.
pub fn duration(secs: f64) -> String {
    let secs = if secs.is_finite() { secs.max(0.0) } else { 0.0 };
    if secs < 60.0 {
        return format!("{secs:.1}s");
    }
    let whole = secs as u64;
    if whole < 3600 {
        format!("{}m{:02}s", whole / 60, whole % 60)
    } else {
        format!("{}h{:02}m", whole / 3600, (whole % 3600) / 60)
    }
}

/// How long ago, coarse: `just now`, `42s ago`, `5m ago`, `3h ago`, `2d ago`.
pub fn ago(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let s = (now - then).num_seconds();
    match s {
        ..=4 => "just now".into(),
        5..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86_399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

/// Time left until `at`, rounded up so it never shows 0s before the deadline: `7s`, `1m05s`; `None` once it is due.
pub fn countdown(at: DateTime<Utc>, now: DateTime<Utc>) -> Option<String> {
    let ms = (at - now).num_milliseconds();
    if ms <= 0 {
        return None;
    }
    let s = (ms + 999) / 1000;
    Some(if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    })
}

/// Cuts `s` to `width` characters, marking the cut with `…`.
pub fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push('…');
    out
}

/// Splits `text` into rows: the first at most `first` characters, the others at most `rest`. Breaks after the last
/// space that fits, else mid-word (paths and URLs have no spaces). Always at least one row.
pub fn wrap(text: &str, first: usize, rest: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let room = if out.is_empty() { first } else { rest }.max(1);
        let left = chars.len() - start;
        let cut = if left <= room {
            left
        } else {
            chars[start..start + room]
                .iter()
                .rposition(|c| *c == ' ')
                .filter(|&i| i > 0)
                .map_or(room, |i| i + 1)
        };
        let chunk: String = chars[start..start + cut].iter().collect();
        out.push(chunk.trim_end().to_string());
        start += cut;
        if start >= chars.len() {
            return out;
        }
    }
}

/// Text safe for one terminal row: control characters (newlines of multi-line errors, tabs, stray escapes) become
/// spaces, so a message can never move the cursor or break the layout.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The first 8 characters of a job id (a UUID): enough to find it in traces.
pub fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn numbers_and_durations() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(duration(0.42), "0.4s");
        assert_eq!(duration(65.0), "1m05s");
        assert_eq!(duration(7380.0), "2h03m");
        assert_eq!(truncate("inventory", 5), "inve…");
    }

    #[test]
    fn wrap_breaks_at_spaces_and_mid_word_when_it_must() {
        assert_eq!(wrap("short", 10, 10), ["short"]);
        assert_eq!(wrap("", 10, 10), [""]);
        assert_eq!(wrap("one two three", 8, 8), ["one two", "three"]);
        assert_eq!(
            wrap("/a/very/long/path", 6, 4),
            ["/a/ver", "y/lo", "ng/p", "ath"]
        );
    }

    #[test]
    fn countdown_rounds_up() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let at = now + chrono::Duration::milliseconds(6_200);
        assert_eq!(countdown(at, now).as_deref(), Some("7s"));
        assert_eq!(countdown(now, now), None);
        assert_eq!(
            countdown(now + chrono::Duration::seconds(65), now).as_deref(),
            Some("1m05s")
        );
        assert_eq!(ago(now - chrono::Duration::seconds(300), now), "5m ago");
    }
}
