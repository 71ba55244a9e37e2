//! Console rendering with ratatui's TestBackend at a fixed time and fixed ids: insta snapshots at 80x24 and 120x40,
//! the too-small message, and the NO_COLOR theme checked cell by cell (snapshots ignore styles).

#[path = "console_fixture.rs"]
mod fixture;

use crossterm::event::KeyCode;
use fixture::*;
use ratatui::style::{Color, Modifier};
use sling_sync_wrapper::sync::event::{Mode, SyncEvent};
use sling_sync_wrapper::sync::event::{PipelineReport, Status};
use sling_sync_wrapper::sync::redact::Redactor;
use sling_sync_wrapper::sync::sling_log::Level;
use sling_sync_wrapper::telemetry::HealthSnapshot;
use sling_sync_wrapper::ui::logbuf::LOG_CAPACITY;
use sling_sync_wrapper::ui::model::{self, Model, ModelInit};

/// `orders` retrying with a countdown, `products` running with output, `inventory` never run; export failing.
fn busy() -> Model {
    let mut m = model();
    m.now = t0() - secs(15);
    started(&mut m, "orders", Mode::Incremental);
    model::apply(
        &mut m,
        SyncEvent::Rows {
            pipeline: "orders".into(),
            attempt: 1,
            stream: "main.orders".into(),
            rows: 12_345,
            total: 12_345,
        },
    );
    log(&mut m, "orders", Level::Error, "execution failed");
    model::apply(
        &mut m,
        SyncEvent::AttemptFinished {
            pipeline: "orders".into(),
            outcome: sling_sync_wrapper::sync::event::AttemptOutcome {
                attempt: 1,
                exit_code: Some(1),
                status: sling_sync_wrapper::sync::event::Status::Failed,
                rows: 12_345,
                streams: Default::default(),
                reason: Some(Redactor::default().redacted("could not connect to command-db:5432")),
                retryable: true,
                duration: std::time::Duration::from_secs(3),
            },
        },
    );
    retry_in(&mut m, "orders", 7);
    m.now = t0() - secs(40);
    started(&mut m, "products", Mode::Incremental);
    m.now = t0();
    for (lvl, msg) in [
        (Level::Info, "connecting to source database (postgres)"),
        (Level::Info, "reading from source database"),
        (Level::Warn, "column \"note\" is empty in every row"),
        (
            Level::Info,
            "inserted 1500 rows into \"public\".\"products\" in 2 secs [750 r/s]",
        ),
    ] {
        log(&mut m, "products", lvl, msg);
    }
    model::apply(
        &mut m,
        SyncEvent::Rows {
            pipeline: "products".into(),
            attempt: 1,
            stream: "public.products".into(),
            rows: 1500,
            total: 1500,
        },
    );
    m.health = Some(HealthSnapshot {
        exports_ok: 10,
        exports_failed: 3,
        failing_since: Some(t0() - secs(95)),
        last_error: Some("traces: connection refused".into()),
    });
    select(&mut m, "products");
    m
}

#[test]
fn idle_80x24() {
    let m = model();
    insta::assert_snapshot!("idle_80x24", render(&m, 80, 24, t0()).backend());
}

#[test]
fn busy_80x24() {
    insta::assert_snapshot!("busy_80x24", render(&busy(), 80, 24, t0()).backend());
}

#[test]
fn busy_120x40() {
    let mut m = busy();
    select(&mut m, "orders");
    insta::assert_snapshot!("busy_120x40", render(&m, 120, 40, t0()).backend());
}

#[test]
fn backfill_dialog_80x24() {
    let mut m = model();
    select(&mut m, "orders");
    press(&mut m, key('b'));
    let screen = render(&m, 80, 24, t0());
    let t = text(&screen);
    assert!(
        t.contains("Backfill orders?") && t.contains("fully reloaded"),
        "{t}"
    );
    insta::assert_snapshot!("backfill_dialog_80x24", screen.backend());
}

#[test]
fn help_80x24() {
    let mut m = model();
    press(&mut m, key('?'));
    insta::assert_snapshot!("help_80x24", render(&m, 80, 24, t0()).backend());
}

#[test]
fn filter_prompt_80x24() {
    let mut m = model();
    press(&mut m, key('/'));
    press(&mut m, key('d'));
    let t = text(&render(&m, 80, 24, t0()));
    assert!(t.contains("filter: d"), "{t}");
    assert!(
        t.contains("orders") && t.contains("products") && !t.contains("inventory"),
        "{t}"
    );
}

#[test]
fn too_small_says_so_instead_of_a_broken_layout() {
    let m = busy();
    for (w, h) in [(79, 24), (80, 23), (40, 10)] {
        let t = text(&render(&m, w, h, t0()));
        assert!(
            t.contains("terminal too small (need 80x24)"),
            "{w}x{h}:\n{t}"
        );
        assert!(!t.contains("Pipelines"), "{w}x{h}:\n{t}");
    }
    insta::assert_snapshot!("too_small_60x12", render(&m, 60, 12, t0()).backend());
}

#[test]
fn no_color_uses_only_reset_colours_and_keeps_the_selection_visible() {
    let mut m = busy();
    m.no_color = true;
    let screen = render(&m, 100, 30, t0());
    let buf = screen.backend().buffer();
    let allowed = Modifier::BOLD | Modifier::REVERSED;
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            let c = &buf[(x, y)];
            assert_eq!(c.fg, Color::Reset, "fg at {x},{y} {:?}", c.symbol());
            assert_eq!(c.bg, Color::Reset, "bg at {x},{y} {:?}", c.symbol());
            assert!(
                allowed.contains(c.modifier),
                "modifier {:?} at {x},{y}",
                c.modifier
            );
        }
    }
    // The selected row (products) starts with the `>` symbol and is reverse video across the table.
    let t = text(&screen);
    let row = t
        .lines()
        .position(|l| l.contains("> products"))
        .expect("selected row with > symbol") as u16;
    for x in 1..buf.area.width - 1 {
        assert!(
            buf[(x, row)].modifier.contains(Modifier::REVERSED),
            "selection not reversed at {x},{row}"
        );
    }
    // And with colour on, colour is actually used (the test above would pass vacuously otherwise).
    m.no_color = false;
    let coloured = render(&m, 100, 30, t0());
    let cbuf = coloured.backend().buffer();
    assert!(cbuf.content.iter().any(|c| c.fg != Color::Reset));
}

#[test]
fn a_full_log_buffer_renders_only_its_tail() {
    let mut m = model();
    select(&mut m, "orders");
    for i in 0..LOG_CAPACITY * 2 {
        log(&mut m, "orders", Level::Info, &format!("line {i:05}"));
    }
    let started = std::time::Instant::now();
    for _ in 0..50 {
        render(&m, 120, 40, t0());
    }
    let t = text(&render(&m, 120, 40, t0()));
    assert!(
        t.contains(&format!("line {:05}", LOG_CAPACITY * 2 - 1)),
        "{t}"
    );
    assert!(!t.contains("line 00000"));
    // Generous bound: formatting the whole buffer every frame would be far slower in debug builds.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn focus_and_overlay_keys_change_what_is_drawn() {
    let mut m = busy();
    for i in 0..40 {
        log(&mut m, "products", Level::Info, &format!("more {i}"));
    }
    m.log_rows = 6;
    press(&mut m, code(KeyCode::Tab));
    press(&mut m, code(KeyCode::Tab));
    press(&mut m, key('k'));
    let t = text(&render(&m, 80, 24, t0()));
    assert!(t.contains("lines up (G follows)"), "{t}");
}

#[test]
fn multi_line_errors_stay_on_their_rows() {
    let mut m = model();
    select(&mut m, "products");
    if let Some(p) = m.pipelines.iter_mut().find(|p| p.info.name == "products") {
        if let Some(r) = p.last.as_mut() {
            r.error = Some(
                Redactor::default()
                    .redacted("fatal:\n\tcould not connect\r\n\x1b[31mto command-db"),
            );
        }
    }
    let t = text(&render(&m, 80, 24, t0()));
    assert!(
        t.contains("fatal:  could not connect   [31mto command-db"),
        "{t}"
    );
}

const LONG_A: &str = "mission01-orders-archive";
const LONG_B: &str = "mission01-orders-current";

/// Two 24-character names that share their first 17 characters, one of them retrying.
fn long_names() -> Model {
    let mut m = Model::new(ModelInit {
        mission_cluster_id: "mission-01".into(),
        pipelines: vec![
            info(LONG_A, &[("main.orders", "incremental")]),
            info(LONG_B, &[("main.orders", "incremental")]),
        ],
        history: vec![report(LONG_A, Status::Success, 1_234_567, &[], 300, None)],
        state_root: "/var/lib/sling_state".into(),
        max_attempts: 4,
        telemetry_enabled: true,
        no_color: false,
        now: t0(),
    });
    started(&mut m, LONG_B, Mode::Incremental);
    retry_in(&mut m, LONG_B, 65);
    m
}

#[test]
fn a_24_character_name_is_readable_in_full_at_80x24() {
    assert_eq!(LONG_A.len(), 24);
    let m = long_names();
    let t = text(&render(&m, 80, 24, t0()));
    for name in [LONG_A, LONG_B] {
        assert!(
            t.lines().any(|l| l.contains(&format!(" {name} "))),
            "{name} cut:\n{t}"
        );
    }
    // At 80 columns the countdown leaves out the attempt it leads to; TRY shows the attempt that failed.
    let row = t.lines().find(|l| l.contains(LONG_B)).unwrap_or_default();
    assert!(
        row.contains("retrying") && row.contains(" 1/3 in 1m05s"),
        "{t}"
    );
}

#[test]
fn wide_terminals_do_not_stretch_the_name_column() {
    let m = long_names();
    let t = text(&render(&m, 160, 40, t0()));
    let header = t
        .lines()
        .find(|l| l.contains("PIPELINE"))
        .expect("header row");
    let name_at = header.find("PIPELINE").expect("PIPELINE");
    let status_at = header.find("STATUS").expect("STATUS");
    // PIPELINE and STATUS are character offsets apart by the name width plus one space.
    assert_eq!(
        header[name_at..status_at].chars().count(),
        LONG_A.len() + 1,
        "{header}"
    );
}

#[test]
fn a_status_message_never_pushes_key_hints_out() {
    let mut m = model();
    select(&mut m, "orders");
    m.warn(
        "orders is already running: a long message that would have eaten the whole hint bar before",
    );
    let t = text(&render(&m, 80, 24, t0()));
    let footer = t.lines().last().unwrap_or_default().to_string();
    for hint in ["r run", "c cancel", "? help", "q quit"] {
        assert!(footer.contains(hint), "{hint} missing: {footer}");
    }
    assert!(t.contains("orders is already running"), "{t}");

    // The quit dialog keeps its `n/Esc no` hint while a message is up.
    started(&mut m, "orders", Mode::Incremental);
    press(&mut m, key('q'));
    m.warn("another long message that is up while the quit dialog is open, as after a key");
    let t = text(&render(&m, 80, 24, t0()));
    let footer = t.lines().last().unwrap_or_default().to_string();
    assert!(
        footer.contains("n/Esc no") && footer.contains("y yes"),
        "{footer}"
    );
}

#[test]
fn long_sling_lines_wrap_instead_of_being_cut() {
    let mut m = model();
    select(&mut m, "orders");
    let long = format!(
        "could not write to target: {} END-OF-LINE",
        "column mismatch in \"main\".\"orders\" ".repeat(4)
    );
    log(&mut m, "orders", Level::Error, &long);
    let t = text(&render(&m, 80, 24, t0()));
    assert!(t.contains("END-OF-LINE"), "{t}");
    assert!(t.contains("11:59:58 ERR could not write to target"), "{t}");
}

#[test]
fn the_detail_pane_says_when_there_is_more_below() {
    let mut m = busy();
    select(&mut m, "products");
    let t = text(&render(&m, 80, 24, t0()));
    assert!(t.contains("↓ 1 more"), "{t}");
    m.focus = sling_sync_wrapper::ui::model::Pane::Detail;
    m.detail_scroll = 5;
    let t = text(&render(&m, 80, 24, t0()));
    assert!(!t.contains("↓"), "{t}");
    assert!(t.contains("↑ 1 more"), "{t}");
}

#[test]
fn while_running_last_run_does_not_show_the_previous_age() {
    let mut m = model();
    started(&mut m, "orders", Mode::Incremental);
    let t = text(&render(&m, 80, 24, t0()));
    let row = t
        .lines()
        .find(|l| l.contains(" orders "))
        .unwrap_or_default();
    assert!(!row.contains("5m ago"), "{row}");
    assert!(row.contains(" now "), "{row}");
    select(&mut m, "orders");
    let t = text(&render(&m, 80, 24, t0()));
    assert!(t.contains("previous incremental success · 5m ago"), "{t}");
}

fn history_runs() -> Vec<PipelineReport> {
    let mut runs = vec![
        products_failed(),
        report("products", Status::Success, 1500, &[], 90_000, None),
    ];
    runs[1].mode = Mode::Backfill;
    runs[1].verify = Some(
        serde_json::from_value(serde_json::json!({"status": "match", "streams": {}}))
            .expect("journal verify object"),
    );
    runs
}

#[test]
fn history_80x24() {
    let mut m = model();
    select(&mut m, "products");
    model::show_history(&mut m, "products".into(), history_runs());
    let screen = render(&m, 80, 24, t0());
    let t = text(&screen);
    assert!(t.contains("History · products"), "{t}");
    assert!(t.contains("table public.products does not exist"), "{t}");
    insta::assert_snapshot!("history_80x24", screen.backend());
}

/// `orders` verified with drift on one stream, `products` verified clean, both read back from the journal's
/// `verify` object (the contract form).
fn verified() -> Model {
    let mut orders = report(
        "orders",
        Status::Success,
        14,
        &[("main.orders", 12), ("main.customers", 2)],
        300,
        None,
    );
    orders.verify = Some(
        serde_json::from_value(serde_json::json!({
            "status": "drift",
            "streams": {
                "main.orders": {"source_rows": 1198, "target_rows": 1200, "drift_rows": 2, "status": "drift",
                                "warnings": ["deletes_not_propagated"]},
                "main.customers": {"source_rows": 40, "target_rows": 40, "drift_rows": 0, "status": "match",
                                   "warnings": []}
            }
        }))
        .expect("journal verify object"),
    );
    let mut products = report("products", Status::Success, 1500, &[], 7200, None);
    products.verify = Some(
        serde_json::from_value(serde_json::json!({
            "status": "match",
            "streams": {"public.products": {"source_rows": 1500, "target_rows": 1500, "drift_rows": 0,
                                            "status": "match", "warnings": []}}
        }))
        .expect("journal verify object"),
    );
    let mut m = model_with(vec![orders, products]);
    select(&mut m, "orders");
    m
}

#[test]
fn verification_shows_as_a_mark_per_pipeline_and_a_table_per_stream() {
    let screen = render(&verified(), 80, 24, t0());
    let t = text(&screen);
    let row = |name: &str| {
        t.lines()
            .find(|l| l.contains(&format!(" {name} ")))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(row("orders").contains(" Δ+2 "), "{t}");
    assert!(row("products").contains(" ✓ "), "{t}");
    assert!(
        t.contains("verify   drift · 2 row(s) off"),
        "the detail pane's headline:\n{t}"
    );
    assert!(
        t.contains("main.orders    1,198 → 1,200 +2 drift   deletes_not_propagated"),
        "{t}"
    );
    insta::assert_snapshot!("verified_80x24", screen.backend());
}
