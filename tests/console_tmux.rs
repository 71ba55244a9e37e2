//! The console end to end: the real binary in a real terminal emulator (tmux, 100x30, NO_COLOR) running the real
//! Sling 1.4.11 against the SQLite demo (`scripts/demo.sh`'s databases and `pipelines/`). Keys go in with
//! `send-keys`; the screen comes back with `capture-pane`, polled until the expected text shows.
//!
//! Needs tmux and sqlite3: skipped with a message when either is missing, except in CI (`CI=true`), where it must run.
//!
//! After each test no console or Sling process of the test may be left: processes are found by the test's
//! temporary directory in their command line.

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

/// How the console is started in the tmux pane.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Launch {
    /// Under `sh`, which records the exit code in `exit.txt` when the console ends.
    Shell,
    /// Under `sh` that survives a hang-up (`trap : HUP`; the console still gets default signal handling), so the
    /// console sees only its terminal go away and `exit.txt` still gets the exit code.
    ShellSurvivingHangup,
    /// `exec`: the console is the session leader, which the kernel sends SIGHUP when the terminal hangs up.
    Exec,
}

/// The demo world of `scripts/demo.sh`, in a temporary directory.
struct World {
    dir: tempfile::TempDir,
    command: PathBuf,
}

impl World {
    fn new() -> Self {
        Self::with(&[("orders", "orders.yaml"), ("inventory", "inventory.yaml")])
    }

    /// The demo databases with the repository's demo pipelines under other names: `(name, file in pipelines/)`.
    fn with(pipelines: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dest = dir.path().join("pipelines");
        std::fs::create_dir_all(&dest).expect("mkdir pipelines");
        std::fs::create_dir_all(dir.path().join("home")).expect("mkdir home");
        for (name, file) in pipelines {
            std::fs::copy(
                root.join("pipelines").join(file),
                dest.join(format!("{name}.yaml")),
            )
            .expect("copy pipeline");
        }
        let seed = std::fs::read_to_string(root.join("scripts/demo-mission.sql"))
            .expect("read the demo seed");
        sqlite(&dir.path().join("mission.db"), &seed);
        let command = dir.path().join("command.db");
        Self { dir, command }
    }

    /// Adds pipeline `big`: a full-refresh copy of `rows` generated rows, long enough to be caught mid-run.
    fn add_big_table(&self, rows: u64) {
        sqlite(
            &self.path("mission.db"),
            &format!(
                "create table big(id integer primary key, name text, amount real, updated_at text);
                 with recursive c(x) as (select 1 union all select x + 1 from c where x < {rows})
                 insert into big select x, 'name-' || x, x * 1.5, '2026-01-01 00:00:00' from c;"
            ),
        );
        std::fs::write(
            self.path("pipelines/big.yaml"),
            "source: DEMO_MISSION\ntarget: DEMO_COMMAND\nstreams:\n  main.big:\n    mode: full-refresh\n    object: main.big\n",
        )
        .expect("write big.yaml");
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The console under `sh`, which records its exit code in a file when it ends; `extra_env` is `K='v' …`.
    fn script(&self, sling: &Path, extra_env: &str) -> PathBuf {
        self.script_for(sling, Launch::Shell, extra_env)
    }

    fn script_for(&self, sling: &Path, launch: Launch, extra_env: &str) -> PathBuf {
        let d = self.dir.path().display();
        let (trap, exec) = match launch {
            Launch::Shell => ("", ""),
            Launch::ShellSurvivingHangup => ("trap : HUP\n", ""),
            Launch::Exec => ("", "exec "),
        };
        let script = format!(
            "{trap}export NO_COLOR=1 MISSION_CLUSTER_ID=demo-mission OTEL_SDK_DISABLED=true HOME='{d}/home' \\
               DEMO_MISSION='sqlite://{d}/mission.db' DEMO_COMMAND='sqlite://{d}/command.db' {extra_env}
             {exec}'{WRAPPER}' --pipeline-dir '{d}/pipelines' --state-path '{d}/state' --sling-bin '{}' 2>'{d}/stderr.txt'
             echo \"EXIT=$?\" > '{d}/exit.txt'\n",
            sling.display()
        );
        let path = self.path("console.sh");
        std::fs::write(&path, script).expect("write script");
        path
    }

    /// Processes of this test (the console, Sling, the shell) still alive: every one names the temporary
    /// directory in its command line. tmux itself is left out (its server keeps the command it was started with).
    fn processes(&self) -> Vec<String> {
        let needle = self.dir.path().display().to_string();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .chars()
                    .all(|c| c.is_ascii_digit())
            })
            .filter_map(|e| {
                let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
                // A zombie has an empty command line and is gone for our purpose.
                (cmdline.contains(&needle) && !comm.trim().starts_with("tmux"))
                    .then(|| format!("{} {cmdline}", e.file_name().to_string_lossy()))
            })
            .collect()
    }

    fn journal(&self) -> String {
        std::fs::read_to_string(self.path("state/history.jsonl")).unwrap_or_default()
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

/// tmux and sqlite3 are there, or the test is skipped (outside CI).
fn tools_present() -> bool {
    for tool in ["tmux", "sqlite3"] {
        if !have(tool) {
            assert!(
                !in_ci(),
                "{tool} is required in CI for the console end-to-end test"
            );
            eprintln!("skipping: {tool} is not installed (set CI=true to make this a failure)");
            return false;
        }
    }
    true
}

/// Starts the console in a new tmux session of the given size.
fn start(tmux: &Tmux, script: &Path, width: u16, height: u16) {
    let out = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "console",
        "-x",
        &width.to_string(),
        "-y",
        &height.to_string(),
        &format!("sh '{}'", script.display()),
    ]);
    assert!(
        out.status.success(),
        "tmux new-session: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Quits with `q`: exit code 0, and once the tmux server is gone no process of the test is left.
fn quit_and_leave_nothing(world: &World, tmux: Tmux) {
    tmux.send("q");
    assert_eq!(
        exit_code(world, &tmux),
        "EXIT=0",
        "stderr:\n{}",
        world.stderr()
    );
    drop(tmux);
    assert!(world.processes().is_empty(), "{:?}", world.processes());
}

/// Waits for the console's `exit.txt`; returns its content.
fn exit_code(world: &World, tmux: &Tmux) -> String {
    let exit = world.path("exit.txt");
    let start = Instant::now();
    while !std::fs::read_to_string(&exit).is_ok_and(|s| s.contains("EXIT=")) {
        assert!(
            start.elapsed() < TIMEOUT,
            "the console did not exit; screen:\n{}\nstderr:\n{}",
            tmux.screen(),
            world.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::read_to_string(&exit)
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn console_runs_backfills_and_quits_against_the_sqlite_demo() {
    if !tools_present() {
        return;
    }
    let sling = sling_bin();
    let world = World::new();
    let script = world.script(&sling, "");
    let tmux = Tmux::new();
    start(&tmux, &script, 100, 30);

    // Both demo pipelines are listed, never run yet.
    tmux.wait("both pipelines", &world, |s| {
        row(s, "inventory").contains("never run") && row(s, "orders").contains("never run")
    });

    // `a` runs all after a confirmation; the rows appear in the table: orders copies 3 orders + 2 customers,
    // inventory 2 products.
    tmux.send("a");
    tmux.wait("the run-all dialog", &world, |s| {
        s.contains("Run 2 pipelines?")
    });
    tmux.send("y");
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
    assert_eq!(
        exit_code(&world, &tmux),
        "EXIT=0",
        "stderr:\n{}",
        world.stderr()
    );
    // The runs went through the engine: the history journal has the two runs and the backfill.
    let journal = std::fs::read_to_string(world.path("state/history.jsonl")).unwrap_or_default();
    assert_eq!(journal.lines().count(), 3, "{journal}");
    assert!(journal.contains("\"mode\":\"backfill\""), "{journal}");
}

/// The issue's limit for a dropped session: the console and Sling gone within 3 s of the terminal going away.
const GONE_WITHIN: Duration = Duration::from_secs(3);

/// Starts a copy of 1M rows, waits until Sling streams, then kills the tmux session as a dropped SSH or
/// `kubectl exec` session would. Returns the world for the checks.
fn drop_the_session_mid_run(launch: Launch) -> World {
    let sling = sling_bin();
    let world = World::with(&[]);
    world.add_big_table(1_000_000);
    let script = world.script_for(&sling, launch, "");
    let tmux = Tmux::new();
    start(&tmux, &script, 80, 24);
    tmux.wait("the big pipeline", &world, |s| {
        row(s, "big").contains("never run")
    });
    tmux.send("r");
    tmux.wait("Sling streaming the 1M rows", &world, |s| {
        row(s, "big").contains("running") && s.contains("streaming data")
    });
    assert!(
        world.processes().iter().any(|p| p.contains(" run -r ")),
        "Sling should be running: {:?}",
        world.processes()
    );

    let out = tmux.run(&["kill-session", "-t", "console"]);
    assert!(out.status.success(), "kill-session failed");
    let killed = Instant::now();
    while !world.processes().is_empty() && killed.elapsed() < GONE_WITHIN {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = world.processes();
    assert!(
        left.is_empty(),
        "still running {:?} after the session was killed: {left:#?}\nstderr:\n{}",
        killed.elapsed(),
        world.stderr()
    );
    let journal = world.journal();
    assert!(
        journal
            .lines()
            .any(|l| l.contains("\"pipeline\":\"big\"") && l.contains("\"status\":\"cancelled\"")),
        "journal: {journal}"
    );
    world
}

#[test]
fn a_dropped_terminal_cancels_the_run_and_ends_the_console() {
    if !tools_present() {
        return;
    }
    // Only the terminal goes away (the shell survives the hang-up): EOF/hang-up on the terminal is enough.
    let world = drop_the_session_mid_run(Launch::ShellSurvivingHangup);
    let start = Instant::now();
    while !std::fs::read_to_string(world.path("exit.txt")).is_ok_and(|s| s.contains("EXIT=")) {
        assert!(
            start.elapsed() < TIMEOUT,
            "the shell did not record the exit code"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let code = std::fs::read_to_string(world.path("exit.txt")).unwrap_or_default();
    assert_eq!(code.trim(), "EXIT=129", "stderr:\n{}", world.stderr());
    assert!(world.processes().is_empty(), "{:?}", world.processes());
}

#[test]
fn sighup_to_the_session_leader_cancels_the_run_and_ends_the_console() {
    if !tools_present() {
        return;
    }
    // The console is the session leader and gets SIGHUP from the kernel.
    let world = drop_the_session_mid_run(Launch::Exec);
    assert!(world.processes().is_empty(), "{:?}", world.processes());
}

#[test]
fn a_24_character_name_is_readable_in_full_at_80x24() {
    if !tools_present() {
        return;
    }
    const ARCHIVE: &str = "mission01-orders-archive";
    const CURRENT: &str = "mission01-orders-current";
    assert_eq!(ARCHIVE.len(), 24);
    let sling = sling_bin();
    let world = World::with(&[(ARCHIVE, "inventory.yaml"), (CURRENT, "orders.yaml")]);
    let script = world.script(&sling, "");
    let tmux = Tmux::new();
    start(&tmux, &script, 80, 24);
    // Whole names, followed by the column gap (not cut with `…`).
    let whole = |s: &str, name: &str| row(s, name).contains(&format!("{name} "));
    tmux.wait("both names in full", &world, |s| {
        whole(s, ARCHIVE) && whole(s, CURRENT)
    });
    // `a` starts both after a confirmation; the names stay whole with counts and durations in the row.
    tmux.send("a");
    tmux.wait("the run-all dialog", &world, |s| {
        s.contains("Run 2 pipelines?")
    });
    tmux.send("y");
    let screen = tmux.wait("both runs to succeed", &world, |s| {
        row(s, ARCHIVE).contains("success") && row(s, CURRENT).contains("success")
    });
    assert!(
        whole(&screen, ARCHIVE) && whole(&screen, CURRENT),
        "{screen}"
    );
    quit_and_leave_nothing(&world, tmux);
}

#[test]
fn term_dumb_is_refused_with_a_clear_message() {
    let world = World::with(&[("orders", "orders.yaml")]);
    let out = Command::new(WRAPPER)
        .args(["--mission-cluster-id", "m1", "--pipeline-dir"])
        .arg(world.path("pipelines"))
        .arg("--state-path")
        .arg(world.path("state"))
        .env("TERM", "dumb")
        .env_remove("SLING_STATE_PATH")
        .output()
        .expect("run the wrapper");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("TERM=dumb") && stderr.contains("--batch"),
        "{stderr}"
    );
    assert!(!stderr.contains('\x1b'), "no escape codes: {stderr:?}");
    assert!(out.stdout.is_empty());
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
    start(&tmux, &script, 100, 30);
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
    start(&tmux, &script, 100, 30);
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

/// The ROWS cell of a pipeline's row, as a number.
fn rows_cell(screen: &str, pipeline: &str) -> Option<u64> {
    row(screen, pipeline)
        .split_whitespace()
        .skip_while(|t| !t.ends_with(pipeline))
        .skip(3) // name, status, last run
        .map(|t| t.replace(',', ""))
        .find_map(|t| t.parse::<u64>().ok())
}

#[test]
fn rows_move_on_screen_while_a_long_stream_copies() {
    if !tools_present() {
        return;
    }
    let sling = sling_bin();
    let world = World::with(&[]);
    world.add_big_table(1_000_000);
    let script = world.script(&sling, "");
    let tmux = Tmux::new();
    start(&tmux, &script, 80, 24);
    tmux.wait("the big pipeline", &world, |s| {
        row(s, "big").contains("never run")
    });
    tmux.send("r");
    // Rows above zero while the one stream is still running: they can only come from Sling's progress ticks,
    // since `inserted N rows` is printed when the stream ends.
    let screen = tmux.wait("rows so far while running", &world, |s| {
        row(s, "big").contains("running") && rows_cell(s, "big").is_some_and(|n| n > 0)
    });
    let live = rows_cell(&screen, "big").unwrap_or_default();
    assert!(live < 1_000_000, "{screen}");
    // From the second tick on, Sling's rate shows too, in the table and the detail pane.
    tmux.wait("the rate while running", &world, |s| {
        row(s, "big").contains("running")
            && row(s, "big").contains(" r/s")
            && s.contains("rows so far ·")
    });
    let screen = tmux.wait("the copy to finish", &world, |s| {
        row(s, "big").contains("success")
    });
    assert_eq!(rows_cell(&screen, "big"), Some(1_000_000), "{screen}");
    quit_and_leave_nothing(&world, tmux);
}

/// Holds a pipeline's run lock from another process (util-linux `flock`), as a CronJob pod's run would; killed on
/// drop.
struct LockHolder(std::process::Child);

impl LockHolder {
    fn hold(lock: &Path) -> Option<Self> {
        if let Some(dir) = lock.parent() {
            std::fs::create_dir_all(dir).expect("mkdir lock dir");
        }
        std::fs::write(lock, "pid 4711 job cron-17 since 2026-11-28T08:00:00Z")
            .expect("write lock");
        // One process holds it: the shell opens the file, flock(1) locks that open file and exits, and the shell
        // becomes `sleep` with the file still open. Killing it frees the lock (a forked child would keep it).
        let ready = lock.with_extension("held");
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "exec 9>>'{}' && flock --nonblock 9 && touch '{}' && exec sleep 600",
                lock.display(),
                ready.display()
            ))
            .spawn()
            .ok()?;
        let start = Instant::now();
        while !ready.exists() {
            if start.elapsed() > TIMEOUT {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self(child))
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_run_refused_by_another_holder_of_the_lock_shows_busy_and_refreshes_when_it_ends() {
    if !tools_present() {
        return;
    }
    if !have("flock") {
        assert!(!in_ci(), "flock (util-linux) is required in CI");
        eprintln!("skipping: flock is not installed");
        return;
    }
    let sling = sling_bin();
    let world = World::new();
    let script = world.script(&sling, "");
    let tmux = Tmux::new();
    start(&tmux, &script, 80, 24);
    tmux.wait("both pipelines", &world, |s| {
        row(s, "orders").contains("never run")
    });
    let holder =
        LockHolder::hold(&world.path("state/pipelines/orders/run.lock")).expect("start flock");
    tmux.send("j");
    tmux.send("r");
    let screen = tmux.wait("the refusal shown as busy", &world, |s| {
        row(s, "orders").contains("busy") && s.contains("pid 4711 job cron-17")
    });
    assert!(screen.contains("failed 0"), "busy is not failed: {screen}");
    assert!(
        world.journal().is_empty(),
        "a refused run writes nothing: {}",
        world.journal()
    );
    // The other holder finishes: the row refreshes by itself (a few seconds at most).
    drop(holder);
    tmux.wait("the row back to its last state", &world, |s| {
        row(s, "orders").contains("never run")
    });
    // And now it runs.
    tmux.send("r");
    tmux.wait("orders to succeed", &world, |s| {
        row(s, "orders").contains("success")
    });
    quit_and_leave_nothing(&world, tmux);
}
