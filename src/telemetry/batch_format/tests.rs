use super::*;
use std::sync::{Arc, Mutex};
use tracing_subscriber::layer::SubscriberExt;

struct Capture(Arc<Mutex<Vec<u8>>>);
impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture(format: Format, emit: impl FnOnce()) -> String {
    let got = Arc::new(Mutex::new(Vec::new()));
    let (w, guard) = super::super::stdout::spawn(Capture(got.clone())).unwrap();
    let subscriber = tracing_subscriber::registry().with(BatchLayer::new(w, format));
    tracing::subscriber::with_default(subscriber, emit);
    drop(guard);
    let text = String::from_utf8(got.lock().unwrap().clone()).unwrap();
    text
}

#[test]
fn json_lines_carry_every_field_in_order_and_escape_like_serde_json() {
    let msg = "quote \" backslash \\ tab \t bell \u{7} é ✓";
    let out = capture(Format::Json, || {
        // A Sling line takes pipeline, job id and attempt from its attempt span (see `line_context`).
        let span = crate::sync::spans::attempt_span("orders", "j-1", 2);
        span.in_scope(|| tracing::info!(target: "sling", sling_time = "", "{msg}"));
        tracing::warn!(target: "sync", rows = -3i64, ok = true, ratio = 0.25, bad = f64::NAN, what = ?vec![1, 2], "done");
    });
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect(l))
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    let a = &lines[0];
    assert_eq!(a["message"], msg);
    assert_eq!(a["level"], "INFO");
    assert_eq!(a["target"], "sling");
    assert_eq!(a["pipeline"], "orders");
    assert_eq!(a["sync_job_id"], "j-1");
    assert_eq!(a["attempt"], 2);
    assert_eq!(a["sling_time"], "");
    let first = out.lines().next().unwrap();
    let order = [
        "timestamp",
        "level",
        "message",
        "pipeline",
        "sync_job_id",
        "attempt",
        "sling_time",
        "target",
    ]
    .map(|k| first.find(&format!("\"{k}\":")).expect(k));
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{first}");
    let ts = a["timestamp"].as_str().unwrap();
    assert!(
        ts.parse::<chrono::DateTime<chrono::Utc>>().is_ok() && ts.len() == 27,
        "{ts}"
    );
    let b = &lines[1];
    assert_eq!(b["level"], "WARN");
    assert_eq!(b["rows"], -3);
    assert_eq!(b["ok"], true);
    assert_eq!(b["ratio"], 0.25);
    assert!(b["bad"].is_null());
    assert_eq!(b["what"], "[1, 2]");
    // Escapes as serde_json writes them, so the bytes match what the JSON format printed before.
    assert!(out.contains(&serde_json::to_string(msg).unwrap()), "{out}");
}

#[test]
fn control_characters_become_visible_escapes() {
    assert_eq!(escape_control("plain text ünï"), "plain text ünï");
    assert_eq!(
        escape_control("a\nb\rc\td\x1b[31me\x1b]0;t\x07f\u{85}"),
        "a\\nb\\rc\\td\\x1b[31me\\x1b]0;t\\x07f\\u{85}"
    );
}

#[test]
fn durations_are_rounded_for_people() {
    assert_eq!(human_seconds(0.221936841), "0.22s");
    assert_eq!(human_seconds(0.0), "0.00s");
    assert_eq!(human_seconds(12.345), "12.3s");
    assert_eq!(human_seconds(59.94), "59.9s");
    assert_eq!(human_seconds(59.97), "1m00s");
    assert_eq!(human_seconds(9.999), "10.0s");
    assert_eq!(human_seconds(65.2), "1m05s");
    assert_eq!(human_seconds(3599.6), "1h00m");
    assert_eq!(human_seconds(7385.0), "2h03m");
}

#[test]
fn text_lines_lead_with_the_pipeline_and_hide_what_every_sling_line_carries() {
    let out = capture(Format::Text { ansi: false }, || {
        let span = crate::sync::spans::attempt_span("orders", "j-1", 1);
        span.in_scope(|| tracing::info!(target: "sling", sling_time = "t", "copied"));
        tracing::error!(target: "sync", pipeline = "orders", status = "failed", note = "", duration_seconds = 65.2, "pipeline finished");
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(&lines[0][8..], " INFO  [orders] copied");
    assert_eq!(
        &lines[1][8..],
        " ERROR [orders] pipeline finished status=failed duration_seconds=1m05s"
    );
    assert_eq!(lines[0].as_bytes()[2], b':');
}
