//! The console end to end: the real binary in a real terminal emulator (tmux, 100x30, NO_COLOR) running the real
//! Sling 1.4.11 against the SQLite demo (`scripts/demo.sh`'s databases and `pipelines/`). Keys go in with
//! `send-keys`; the screen comes back with `capture-pane`, polled until the expected text shows.
//!
//! Needs tmux and sqlite3: skipped with a message when either is missing, except in CI (`CI=true`), where it must run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{in_ci, sling_bin, sqlite, WRAPPER};

const TIMEOUT: Duration = Duration::from_secs(60);

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn count(db: &Path, table: &str) -> Option<u64> {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(format!("select count(*) from {table}"))
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// A tmux server on a private socket; killed on drop, whatever happened.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Self {
            socket: format!("sling-console-e2e-{}-{nanos}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            // Inside an outer tmux, $TMUX would make the private server refuse a nested session.
            .env_remove("TMUX")
            .output()
            .expect("run tmux")
    }

    fn send(&self, keys: &str) {
        let out = self.run(&["send-keys", "-t", "console", keys]);
        assert!(
            out.status.success(),
            "send-keys {keys}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "console"]).stdout)
            .into_owned()
    }

    /// Polls the screen until `pred` holds; panics with the last screen and the console's stderr otherwise.
    fn wait(&self, what: &str, world: &World, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            if start.elapsed() > TIMEOUT {
                panic!(
                    "timed out waiting for {what}; screen:\n{screen}\nstderr:\n{}",
                    world.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
        // tmux leaves the socket file behind when the server exits with its last session.
        let dir =
            std::env::var_os("TMUX_TMPDIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
        // Our uid, as the owner of our own /proc entry (Linux, like the pinned Sling).
        if let Ok(meta) = std::fs::metadata("/proc/self") {
            let uid = std::os::unix::fs::MetadataExt::uid(&meta);
            let _ = std::fs::remove_file(dir.join(format!("tmux-{uid}")).join(&self.socket));
        }
    }
}

/// The demo world of `scripts/demo.sh`, in a temporary directory.
struct World {
    dir: tempfile::TempDir,
    command: PathBuf,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let pipelines = dir.path().join("pipelines");
        std::fs::create_dir_all(&pipelines).expect("mkdir pipelines");
        std::fs::create_dir_all(dir.path().join("home")).expect("mkdir home");
        for p in ["orders.yaml", "inventory.yaml"] {
            std::fs::copy(root.join("pipelines").join(p), pipelines.join(p))
                .expect("copy pipeline");
        }
        let seed = std::fs::read_to_string(root.join("scripts/demo-mission.sql"))
            .expect("read the demo seed");
        sqlite(&dir.path().join("mission.db"), &seed);
        let command = dir.path().join("command.db");
        Self { dir, command }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The console under `sh`, which records its exit code in a file when it ends; `extra_env` is `K='v' …`.
    fn script(&self, sling: &Path, extra_env: &str) -> PathBuf {
        let d = self.dir.path().display();
        let script = format!(
            "export NO_COLOR=1 MISSION_CLUSTER_ID=demo-mission OTEL_SDK_DISABLED=true HOME='{d}/home' \\
               DEMO_MISSION='sqlite://{d}/mission.db' DEMO_COMMAND='sqlite://{d}/command.db' {extra_env}
             '{WRAPPER}' --pipeline-dir '{d}/pipelines' --state-path '{d}/state' --sling-bin '{}' 2>'{d}/stderr.txt'
             echo \"EXIT=$?\" > '{d}/exit.txt'\n",
            sling.display()
        );
        let path = self.path("console.sh");
        std::fs::write(&path, script).expect("write script");
        path
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.path("stderr.txt")).unwrap_or_default()
    }
}

fn row<'a>(screen: &'a str, pipeline: &str) -> &'a str {
    screen
        .lines()
        .find(|l| {
            l.strip_prefix('│')
                .is_some_and(|rest| rest.trim_start_matches(['>', ' ']).starts_with(pipeline))
        })
        .unwrap_or("")
}

#[test]
fn console_runs_backfills_and_quits_against_the_sqlite_demo() {
    for tool in ["tmux", "sqlite3"] {
        if !have(tool) {
            assert!(
                !in_ci(),
                "{tool} is required in CI for the console end-to-end test"
            );
            eprintln!("skipping: {tool} is not installed (set CI=true to make this a failure)");
            return;
        }
    }
    let sling = sling_bin();
    let world = World::new();
    let script = world.script(&sling, "");
    let tmux = Tmux::new();
    let out = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "console",
        "-x",
        "100",
        "-y",
        "30",
        &format!("sh '{}'", script.display()),
    ]);
    assert!(
        out.status.success(),
        "tmux new-session: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Both demo pipelines are listed, never run yet.
    tmux.wait("both pipelines", &world, |s| {
        row(s, "inventory").contains("never run") && row(s, "orders").contains("never run")
    });

    // `a` runs all; the rows appear in the table: orders copies 3 orders + 2 customers, inventory 2 products.
    tmux.send("a");
    let screen = tmux.wait("both runs to succeed", &world, |s| {
        row(s, "inventory").contains("success") && row(s, "orders").contains("success")
    });
    assert!(row(&screen, "orders").contains(" 5 "), "{screen}");
    assert!(row(&screen, "inventory").contains(" 2 "), "{screen}");
    assert_eq!(count(&world.command, "orders"), Some(3));
    assert_eq!(count(&world.command, "products"), Some(2));
    tmux.send("j");
    tmux.wait("the orders detail with per-stream rows", &world, |s| {
        s.contains("main.orders") && s.contains("3 rows") && s.contains("main.customers")
    });

    // `?` opens the help overlay built from the key list; Esc closes it and does nothing else.
    tmux.send("?");
    tmux.wait("the help overlay", &world, |s| {
        s.contains("Pipelines and panes") && s.contains("backfill: the target is fully reloaded")
    });
    tmux.send("Escape");
    tmux.wait("the help to close", &world, |s| {
        !s.contains("Pipelines and panes") && s.contains("Sling log")
    });

    // Rows lost on the command side come back with a confirmed backfill of inventory (the products pipeline).
    sqlite(&world.command, "delete from products");
    assert_eq!(count(&world.command, "products"), Some(0));
    tmux.send("g");
    tmux.send("b");
    tmux.wait("the backfill dialog", &world, |s| {
        s.contains("Backfill inventory?") && s.contains("fully reloaded") && s.contains("[ No ]")
    });
    tmux.send("y");
    let start = Instant::now();
    while count(&world.command, "products") != Some(2) {
        assert!(
            start.elapsed() < TIMEOUT,
            "backfill did not restore products; screen:\n{}\nstderr:\n{}",
            tmux.screen(),
            world.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    tmux.wait("the backfill to finish", &world, |s| {
        row(s, "inventory").contains("success") && s.contains("backfill (last run)")
    });

    // No runs are active, so `q` quits without asking, and the process exits 0.
    tmux.send("q");
    let exit = world.path("exit.txt");
    let start = Instant::now();
    while !std::fs::read_to_string(&exit).is_ok_and(|s| s.contains("EXIT=")) {
        assert!(
            start.elapsed() < TIMEOUT,
            "the console did not exit after q; screen:\n{}\nstderr:\n{}",
            tmux.screen(),
            world.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let code = std::fs::read_to_string(&exit).unwrap_or_default();
    assert_eq!(code.trim(), "EXIT=0", "stderr:\n{}", world.stderr());
    // The runs went through the engine: the history journal has the two runs and the backfill.
    let journal = std::fs::read_to_string(world.path("state/history.jsonl")).unwrap_or_default();
    assert_eq!(journal.lines().count(), 3, "{journal}");
    assert!(journal.contains("\"mode\":\"backfill\""), "{journal}");
}

/// `true` while a process group still has a member.
fn group_alive(pgid: i32) -> bool {
    // Signal 0 checks without signalling.
    Command::new("kill")
        .args(["-0", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Kills a process group left behind by a failing run of the test, so nothing outlives it.
struct KillGroupOnDrop(Option<i32>);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        if let Some(g) = self.0 {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{g}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A panic in the console skips every destructor (`process::exit`). The hook must still stop Sling the way a cancel
/// does before the process exits non-zero, so no Sling outlives the run lock. The panic is provoked by a test-only
/// switch that exists in debug builds only; Sling is the shim in `hang` mode, which records the SIGINT it gets.
#[cfg(debug_assertions)]
#[test]
fn a_panic_mid_run_stops_sling_before_the_console_exits() {
    if !have("tmux") || !have("sqlite3") {
        assert!(!in_ci(), "tmux and sqlite3 are required in CI");
        eprintln!("skipping: tmux or sqlite3 is not installed");
        return;
    }
    let world = World::new();
    let shim_dir = world.path("shim");
    std::fs::create_dir_all(&shim_dir).expect("mkdir shim");
    let shim = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sling-shim.sh");
    let script = world.script(
        &shim,
        &format!(
            "SHIM_DIR='{}' SHIM_MODE=hang SYNC_TEST_PANIC_ON_ATTEMPT=1",
            shim_dir.display()
        ),
    );
    let tmux = Tmux::new();
    let out = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "console",
        "-x",
        "100",
        "-y",
        "30",
        &format!("sh '{}'", script.display()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tmux.wait("both pipelines", &world, |s| {
        row(s, "orders").contains("never run")
    });
    tmux.send("g");
    tmux.send("r");

    // The shim writes "<pid> <args>" when it starts; it is its own process group's leader.
    let invocations = shim_dir.join("invocations");
    let start = Instant::now();
    let pgid = loop {
        let text = std::fs::read_to_string(&invocations).unwrap_or_default();
        if let Some(pid) = text
            .split_whitespace()
            .next()
            .and_then(|p| p.parse::<i32>().ok())
        {
            break pid;
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "Sling never started; screen:\n{}\nstderr:\n{}",
            tmux.screen(),
            world.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let _cleanup = KillGroupOnDrop(Some(pgid));
    let exit = world.path("exit.txt");
    let start = Instant::now();
    while !std::fs::read_to_string(&exit).is_ok_and(|s| s.contains("EXIT=")) {
        assert!(
            start.elapsed() < TIMEOUT,
            "the console did not exit after its panic; stderr:\n{}",
            world.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let stderr = world.stderr();
    assert!(
        stderr.contains("SYNC_TEST_PANIC_ON_ATTEMPT"),
        "the panic is reported:\n{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&exit).unwrap_or_default().trim(),
        "EXIT=1"
    );
    // By the time the process has exited, Sling got its SIGINT and its group is gone.
    assert!(
        shim_dir.join("got-sigint").exists(),
        "Sling was not sent SIGINT; stderr:\n{stderr}"
    );
    assert!(
        !group_alive(pgid),
        "Sling's process group {pgid} outlived the console"
    );
}

/// One history-journal record, as the engine writes it.
fn record(pipeline: &str, status: &str, rows: u64) -> String {
    format!(
        r#"{{"sync_job_id":"job-{pipeline}","pipeline":"{pipeline}","mode":"incremental","status":"{status}","rows":{rows},"streams":{{}},"attempts":1,"started_at":"2026-11-27T10:00:00Z","finished_at":"2026-11-27T10:00:01Z","duration_seconds":1.0,"error":null}}"#
    ) + "\n"
}

#[test]
fn one_bad_byte_in_the_journal_hides_only_its_own_line() {
    for tool in ["tmux", "sqlite3"] {
        if !have(tool) {
            assert!(
                !in_ci(),
                "{tool} is required in CI for the console end-to-end test"
            );
            eprintln!("skipping: {tool} is not installed (set CI=true to make this a failure)");
            return;
        }
    }
    let world = World::new();
    std::fs::create_dir_all(world.path("state")).expect("mkdir state");
    let mut journal = record("orders", "success", 5).into_bytes();
    journal.extend_from_slice(b"{\"pipeline\":\"inventory\",\"error\":\"bad byte \xff here\"}\n");
    journal.extend_from_slice(record("inventory", "failed", 0).as_bytes());
    std::fs::write(world.path("state/history.jsonl"), journal).expect("write journal");
    let script = world.script(&sling_bin(), "");
    let tmux = Tmux::new();
    let out = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "console",
        "-x",
        "100",
        "-y",
        "30",
        &format!("sh '{}'", script.display()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let screen = tmux.wait("the history around the bad line", &world, |s| {
        row(s, "orders").contains("success") && row(s, "inventory").contains("failed")
    });
    assert!(row(&screen, "orders").contains(" 5 "), "{screen}");
    assert!(
        screen.contains("1 unreadable line(s)"),
        "the console says how many lines were skipped:\n{screen}"
    );
    tmux.send("q");
    let exit = world.path("exit.txt");
    let start = Instant::now();
    while !std::fs::read_to_string(&exit).is_ok_and(|s| s.contains("EXIT=")) {
        assert!(
            start.elapsed() < TIMEOUT,
            "the console did not exit after q"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
