//! The rooms' walls, checked on the source: `src/sync` names nothing terminal- or exporter-specific (it speaks
//! `SyncEvent`s and `tracing`; `src/telemetry` and `src/ui` decide the rest), and only `src/sync/sling/` starts a
//! process. ARCHITECTURE.md says why this is a test and not a separate crate.

use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// Crates and modules `src/sync` must not name.
const NOT_IN_SYNC: &[&str] = &[
    "ratatui",
    "crossterm",
    "tui_logger",
    "opentelemetry",
    "tracing_subscriber",
    "crate::ui",
    "crate::app",
    "crate::telemetry",
];

/// Ways to start a process; only the one spawn module may use them.
const SPAWNS: &[&str] = &[
    "process::Command",
    "posix_spawn",
    "unistd::fork",
    "libc::fork",
];

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The code of a file without its `//` comments (docs may name what the code must not use).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| l.split_once("//").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `file: line: needle` for every forbidden name in the given files.
fn violations(files: &[(String, String)], forbidden: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (name, text) in files {
        for (n, line) in code(text).lines().enumerate() {
            for needle in forbidden.iter().filter(|f| line.contains(**f)) {
                out.push(format!("{name}:{}: `{needle}`", n + 1));
            }
        }
    }
    out
}

fn read(files: Vec<PathBuf>) -> Vec<(String, String)> {
    files
        .into_iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.display().to_string(), text)
        })
        .collect()
}

#[test]
fn sync_names_nothing_terminal_or_exporter_specific() {
    let files = read(rust_files(&Path::new(SRC).join("sync")));
    assert!(files.len() > 10, "the scan found the sync sources");
    let found = violations(&files, NOT_IN_SYNC);
    assert!(
        found.is_empty(),
        "src/sync must speak SyncEvents and tracing only:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_the_spawn_module_starts_processes() {
    let spawn_module = Path::new(SRC).join("sync/sling");
    let files: Vec<PathBuf> = rust_files(Path::new(SRC))
        .into_iter()
        .filter(|p| !p.starts_with(&spawn_module))
        .collect();
    let found = violations(&read(files), SPAWNS);
    assert!(
        found.is_empty(),
        "every Sling process goes through sync::sling::run_attempt:\n{}",
        found.join("\n")
    );
    let own = read(rust_files(&spawn_module));
    assert!(
        !violations(&own, SPAWNS).is_empty(),
        "the spawn module is where the scan expects the spawn"
    );
}

#[test]
fn the_scan_names_the_file_and_line_and_ignores_comments() {
    let files = vec![(
        "src/sync/example.rs".to_string(),
        "// ratatui is named in a comment only\nuse ratatui::Frame;\n".to_string(),
    )];
    assert_eq!(
        violations(&files, NOT_IN_SYNC),
        ["src/sync/example.rs:2: `ratatui`"]
    );
}
