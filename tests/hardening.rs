//! Hostile input, as an untrusting operator would try it (issue 13): odd pipeline names, a state directory on a
//! full or broken disk, forged log lines, secrets in unusual shapes, overflowing counts, a killed wrapper. Every test
//! runs the built binary; faults the real Sling cannot show come from `tests/fixtures/sling-shim.sh`.

mod common;

use std::path::{Path, PathBuf};

use common::{alive, Run, World};

fn shim() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sling-shim.sh")
}

/// `sling-shim.sh` in `say` mode: prints the given stdout and stderr text, then exits with `code`.
struct Say {
    dir: tempfile::TempDir,
}

impl Say {
    fn new(stdout: &str, stderr: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("say.out"), stdout).expect("write");
        std::fs::write(dir.path().join("say.err"), stderr).expect("write");
        Self { dir }
    }

    fn cmd(&self, w: &World, args: &[&str]) -> std::process::Command {
        self.cmd_in_format(w, "json", args)
    }

    fn cmd_in_format(&self, w: &World, format: &str, args: &[&str]) -> std::process::Command {
        let mut c = w.cmd_in_format(format, args);
        c.env("SLING_BIN", shim())
            .env("SHIM_DIR", self.dir.path())
            .env("SHIM_MODE", "say")
            .env("SHIM_SAY_OUT", self.dir.path().join("say.out"))
            .env("SHIM_SAY_ERR", self.dir.path().join("say.err"));
        c
    }
}

/// Everything under `dir`, as paths relative to it, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap_or(&p).display().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

// ---- 1. Pipeline names are single safe path components ------------------------------------------------------------

#[test]
fn a_pipeline_named_dot_dot_is_refused_and_backfill_touches_nothing_outside_the_state_directory() {
    let w = World::new();
    // The state directory's parent holds something that must survive: with the default path that is /var/lib.
    let parent = w.dir.path().join("var-lib");
    let state = parent.join("sling_state");
    std::fs::create_dir_all(&state).expect("mkdir");
    std::fs::write(parent.join("precious"), b"keep me").expect("write");
    for file in ["...yaml", "..yaml"] {
        let path = w.dir.path().join(file);
        std::fs::write(&path, common::ORDERS_PIPELINE).expect("write");
        let run = Run::from(
            w.cmd(&["--mode", "backfill"])
                .env_remove("PIPELINE_DIR")
                .env("SLING_CONFIG", &path)
                .env("SLING_STATE_PATH", &state)
                .output()
                .expect("run"),
        );
        assert_eq!(run.code, Some(2), "{file}: {}", run.explain());
        assert!(
            run.stderr.contains("SLING_CONFIG") && run.stderr.contains(file),
            "{file}: the error names the variable and the file: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("relative directory"),
            "{file}: says which rule: {}",
            run.stderr
        );
        assert_eq!(
            std::fs::read(parent.join("precious")).ok().as_deref(),
            Some(&b"keep me"[..]),
            "{file}: the parent of the state directory is untouched"
        );
        assert_eq!(tree(&parent), ["precious", "sling_state"], "{file}");
    }
    assert!(!w.command.exists(), "nothing ran");
}

#[test]
fn hostile_names_from_the_directory_and_from_pipeline_flags_are_usage_errors() {
    let w = World::new();
    let run = w.run(&["--pipeline", "../orders"]);
    assert_eq!(run.code, Some(2), "{}", run.explain());
    assert!(
        run.stderr.contains("--pipeline") && run.stderr.contains("`/`"),
        "{}",
        run.stderr
    );
    let run = w.run(&["--pipeline", ".."]);
    assert_eq!(run.code, Some(2), "{}", run.explain());
    w.write_pipeline("bad\nname", common::PRODUCTS_PIPELINE);
    let run = w.run(&[]);
    assert_eq!(run.code, Some(2), "{}", run.explain());
    assert!(
        run.stderr.contains("PIPELINE_DIR") && run.stderr.contains("control character"),
        "{}",
        run.stderr
    );
    assert!(!w.command.exists(), "nothing ran");
    assert!(!w.state.exists(), "no state was written");
}

// ---- 10. Text-mode output cannot be forged or repainted by what Sling prints ---------------------------------------

#[test]
fn control_characters_from_sling_are_escaped_in_text_output() {
    let w = World::new();
    let say = Say::new(
        concat!(
            r#"{"lvl":"info","time":"2026-11-27T00:00:00Z","msg":"copying\n12:00:00 INFO  [orders] FORGED job finished status=success"}"#,
            "\n",
            r#"{"lvl":"info","time":"2026-11-27T00:00:00Z","msg":"title\u001b]0;owned\u0007 erase\u001b[2K\r done"}"#,
            "\n",
        ),
        "progress 50%\rFORGED-BY-CR \x1b]8;;http://x\x07link\x1b]8;;\x07\n",
    );
    let out = say
        .cmd_in_format(&w, "text", &["--pipeline", "orders"])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for bad in ['\x1b', '\r', '\x07'] {
        assert!(
            !stdout.contains(bad),
            "no raw {bad:?} reaches the terminal:\n{stdout:?}"
        );
    }
    for line in stdout.lines() {
        assert!(
            starts_with_time_and_level(line),
            "every line is one event of ours: {line:?}"
        );
        assert!(
            !line.starts_with("12:00:00 INFO  [orders] FORGED"),
            "a forged line: {line:?}"
        );
    }
    assert!(
        stdout.contains("copying\\n12:00:00 INFO  [orders] FORGED"),
        "the text is kept, escaped: {stdout}"
    );
    assert!(stdout.contains("progress 50%\\rFORGED-BY-CR"), "{stdout}");
}

/// `HH:MM:SS LEVEL ` at the start of a line.
fn starts_with_time_and_level(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 15
        && b[..8].iter().enumerate().all(|(i, c)| {
            if i == 2 || i == 5 {
                *c == b':'
            } else {
                c.is_ascii_digit()
            }
        })
        && ["INFO ", "WARN ", "ERROR", "DEBUG", "TRACE"]
            .iter()
            .any(|l| line[9..].starts_with(l))
}

// ---- 9. Row counts that do not fit are a parse problem of their line, never a wrong number -------------------------

fn rows_line(n: &str, table: &str) -> String {
    format!(
        r#"{{"lvl":"info","time":"2026-11-27T00:00:00Z","msg":"inserted {n} rows into \"main\".\"{table}\" in 1 secs [1 r/s]"}}"#
    ) + "\n"
}

#[test]
fn overflowing_row_counts_are_reported_and_never_wrap() {
    let w = World::new();
    let say = Say::new(
        &[
            rows_line("99999999999999999999", "orders"), // beyond u64
            rows_line("9223372036854775808", "orders"),  // beyond i64: would flip sign in telemetry
            rows_line("9223372036854775000", "orders"),  // counted
            rows_line("1000", "customers"),              // would take the sum past i64::MAX
            rows_line("5", "products"),                  // counted
        ]
        .concat(),
        "",
    );
    let run = Run::from(
        say.cmd(&w, &["--pipeline", "orders"])
            .output()
            .expect("run"),
    );
    assert_eq!(run.code, Some(0), "{}", run.explain());
    let want = 9_223_372_036_854_775_005u64;
    assert_eq!(
        run.finished("orders")["rows_synced"].as_u64(),
        Some(want),
        "{}",
        run.explain()
    );
    assert_eq!(w.last_record("orders")["rows"].as_u64(), Some(want));
    let warnings: Vec<&str> = run
        .lines
        .iter()
        .filter(|l| l["level"] == "WARN")
        .filter_map(|l| l["message"].as_str())
        .filter(|m| m.starts_with("row count not counted"))
        .collect();
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    for (warning, number) in warnings.iter().zip([
        "99999999999999999999",
        "9223372036854775808",
        "inserted 1000 rows",
    ]) {
        assert!(warning.contains(number), "{warning}");
    }
    assert!(
        !run.stdout.contains("\"rows_synced\":-"),
        "no negative count anywhere: {}",
        run.stdout
    );
}

// ---- 11. A wrong SLING_BIN or SLING_STATE_PATH is a configuration error, before any pipeline runs ------------------

#[test]
fn an_unusable_sling_bin_is_exit_2_naming_the_variable() {
    let w = World::new();
    let not_executable = w.dir.path().join("sling-not-executable");
    std::fs::write(&not_executable, "#!/bin/sh\nexit 0\n").expect("write");
    let cases = [
        (
            not_executable.display().to_string(),
            "no execute permission",
        ),
        (w.dir.path().display().to_string(), "not a regular file"),
        ("no-such-sling-anywhere".to_string(), "PATH"),
    ];
    for (bin, why) in cases {
        let run = Run::from(w.cmd(&[]).env("SLING_BIN", &bin).output().expect("run"));
        assert_eq!(run.code, Some(2), "{bin}: {}", run.explain());
        assert!(
            run.stderr.contains("SLING_BIN")
                && run.stderr.contains(&bin)
                && run.stderr.contains(why),
            "{bin}: {}",
            run.stderr
        );
        assert!(w.journal().is_empty(), "{bin}: no pipeline ran");
    }
}

/// A tmpfs mounted for one test and unmounted on drop, whatever happened; `None` (with the reason printed) where
/// mounting is not permitted.
struct TinyFs {
    dir: tempfile::TempDir,
}

impl TinyFs {
    fn mount(options: &str) -> Option<Self> {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Self { dir }),
            Ok(o) => {
                eprintln!(
                    "skipping: cannot mount a tmpfs ({options}): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipping: cannot run mount: {e}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_state_path_that_cannot_take_files_is_exit_2_naming_the_variable() {
    let w = World::new();
    let Some(ro) = TinyFs::mount("ro,size=64k") else {
        return;
    };
    let run = Run::from(
        w.cmd(&["--pipeline", "orders"])
            .env("SLING_STATE_PATH", ro.path())
            .output()
            .expect("run"),
    );
    assert_eq!(run.code, Some(2), "{}", run.explain());
    assert!(
        run.stderr.contains("SLING_STATE_PATH")
            && run.stderr.contains(&ro.path().display().to_string())
            && run.stderr.contains("Read-only file system"),
        "{}",
        run.stderr
    );
    assert!(!w.command.exists(), "nothing ran");
}

// ---- 4. Pipeline names cannot collide with the state layout --------------------------------------------------------

#[test]
fn pipelines_named_like_the_journal_leave_the_journal_working() {
    let w = World::new();
    w.write_pipeline("history.jsonl", common::PRODUCTS_PIPELINE);
    w.write_pipeline("history.jsonl.1", common::PRODUCTS_PIPELINE);
    for round in 1..=2 {
        let run = w.run(&[]);
        assert_eq!(run.code, Some(0), "round {round}: {}", run.explain());
        let mut names: Vec<String> = w
            .journal()
            .iter()
            .filter_map(|r| r["pipeline"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        names.dedup();
        assert_eq!(
            names,
            ["history.jsonl", "history.jsonl.1", "orders", "products"],
            "round {round}"
        );
        assert_eq!(w.journal().len(), 4 * round);
    }
    let top: Vec<String> = tree(&w.state)
        .into_iter()
        .filter(|p| !p.contains('/'))
        .collect();
    assert_eq!(top, ["history.jsonl", "pipelines"]);
}

#[test]
fn state_of_the_old_layout_is_migrated_and_its_held_lock_still_counts() {
    let w = World::new();
    let old = w.state.join("orders");
    std::fs::create_dir_all(&old).expect("mkdir");
    // A run of an older version holds the lock in the old place while the new version starts.
    let lock = std::fs::File::create(old.join("run.lock")).expect("create");
    let held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| e)
        .expect("flock");
    let run = w.run(&["--pipeline", "orders"]);
    assert_eq!(run.code, Some(1), "refused while held: {}", run.explain());
    assert!(
        run.finished("orders")["error"]
            .as_str()
            .is_some_and(|e| e.contains("already running")),
        "{}",
        run.explain()
    );
    assert!(!old.exists(), "moved to the new layout");
    assert!(w.state.join("pipelines/orders/run.lock").is_file());
    drop(held);
    let run = w.run(&["--pipeline", "orders"]);
    assert_eq!(run.code, Some(0), "{}", run.explain());
    assert_eq!(common::count(&w.command, "orders"), 3);
}

// ---- 3. State-write failures do not pass quietly -------------------------------------------------------------------

#[test]
fn a_record_after_a_torn_journal_line_is_a_whole_line() {
    let w = World::new();
    std::fs::create_dir_all(&w.state).expect("mkdir");
    let torn = r#"{"sync_job_id":"crashed","pipeline":"orders","mode":"incremental","sta"#;
    std::fs::write(w.state.join("history.jsonl"), torn).expect("write");
    let run = w.run(&["--pipeline", "orders"]);
    assert_eq!(run.code, Some(0), "{}", run.explain());
    let text = std::fs::read_to_string(w.state.join("history.jsonl")).expect("journal");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&torn),
        "the torn line is left alone: {text}"
    );
    assert_eq!(lines.len(), 2, "{text}");
    let rec: serde_json::Value =
        serde_json::from_str(lines[1]).expect("the new record is valid JSON");
    assert_eq!(rec["pipeline"], "orders");
    assert_eq!(rec["status"], "success");
}

/// All the wrapper said, stdout and stderr.
fn said(run: &Run) -> String {
    format!("{}\n{}", run.stdout, run.stderr)
}

#[test]
fn a_journal_that_cannot_be_written_fails_the_run_naming_the_path() {
    let w = World::new();
    let journal = w.state.join("history.jsonl");
    std::fs::create_dir_all(&journal).expect("a directory where the journal belongs");
    let run = w.run(&["--pipeline", "orders"]);
    assert_eq!(run.code, Some(1), "{}", run.explain());
    let all = said(&run);
    assert!(
        all.contains(&journal.display().to_string()) && all.contains("Is a directory"),
        "names the path and the OS error: {all}"
    );
}

#[test]
fn a_full_disk_fails_the_run_naming_the_path_and_leaves_no_temp_files() {
    let w = World::new();
    let Some(fs) = TinyFs::mount("size=64k") else {
        return;
    };
    let state = fs.path().join("state");
    std::fs::create_dir_all(&state).expect("mkdir");
    let mut filler = std::fs::File::create(fs.path().join("filler")).expect("create");
    let page = vec![0u8; 4096];
    while std::io::Write::write_all(&mut filler, &page).is_ok() {}
    drop(filler);
    let run = Run::from(
        w.cmd(&["--pipeline", "orders"])
            .env("SLING_STATE_PATH", &state)
            .output()
            .expect("run"),
    );
    assert_eq!(run.code, Some(1), "{}", run.explain());
    let all = said(&run);
    assert!(
        all.contains(&state.display().to_string()) && all.contains("No space left on device"),
        "names the path and the OS error: {all}"
    );
    let temps: Vec<String> = tree(&state)
        .into_iter()
        .filter(|p| p.ends_with(".tmp"))
        .collect();
    assert!(temps.is_empty(), "temp files left behind: {temps:?}");
}

// ---- 7. Redaction masks the secret values themselves, not only URL shapes ------------------------------------------

#[test]
fn secrets_are_masked_by_value_in_every_form_sling_might_echo() {
    let w = World::new();
    std::fs::create_dir_all(w.home.join(".sling")).expect("mkdir");
    std::fs::write(
        w.home.join(".sling/env.yaml"),
        "connections:\n  WAREHOUSE:\n    type: postgres\n    host: 127.0.0.1\n    password: envYamlS3cret\n",
    )
    .expect("write env.yaml");
    let secrets = [
        "p@ss:w/rd",       // raw @ : / in a URL password
        "ss:w/rd",         // what a shape rule cutting at the first @ would leave
        "p%40ss%3Aw%2Frd", // the same password percent-encoded
        "envYamlS3cret",   // from ~/.sling/env.yaml
        "inlineYamlPw9",   // from SLING_ENV_YAML
        "uery-Secret9",    // a ?password= parameter, raw and decoded
        "jsonShapeS3cret", // {"password": "..."} that no connection defines
    ];
    let say = Say::new(
        concat!(
            r#"{"lvl":"info","time":"2026-11-27T00:00:00Z","msg":"connecting with {\"user\":\"reader\",\"password\":\"jsonShapeS3cret\"}"}"#,
            "\n",
            r#"{"lvl":"info","time":"2026-11-27T00:00:00Z","msg":"url postgresql://reader:p@ss:w/rd@127.0.0.1:5432/app"}"#,
            "\n",
        ),
        "fatal:\n~ password authentication failed: p@ss:w/rd (encoded p%40ss%3Aw%2Frd)\n\
         warehouse login with envYamlS3cret refused; lake said inlineYamlPw9\n\
         audit q uery-Secret9 / q%20uery-Secret9\n",
    );
    let run = Run::from(
        say.cmd(&w, &["--pipeline", "orders"])
            .env("SHIM_EXIT", "1")
            .env("SYNC_MAX_RETRIES", "0")
            .env(
                "MISSION_PG",
                "postgresql://reader:p@ss:w/rd@127.0.0.1:5432/app?sslmode=disable",
            )
            .env(
                "AUDIT_DB",
                "postgres://auditor@127.0.0.1:5432/audit?sslmode=disable&password=q%20uery-Secret9",
            )
            .env(
                "SLING_ENV_YAML",
                "connections:\n  LAKE:\n    url: mysql://u:inlineYamlPw9@127.0.0.1/lake\n",
            )
            .output()
            .expect("run"),
    );
    assert_eq!(run.code, Some(1), "{}", run.explain());
    let journal = std::fs::read_to_string(w.state.join("history.jsonl")).expect("journal");
    assert!(
        journal.contains("password authentication failed"),
        "{journal}"
    );
    for place in [&run.stdout, &run.stderr, &journal] {
        for secret in secrets {
            assert!(!place.contains(secret), "{secret} leaked:\n{place}");
        }
    }
    assert!(
        run.stdout.contains("\"password\\\":\\\"***\\\""),
        "{}",
        run.stdout
    );
}

// ---- The items below need the engine and spawn changes that follow the engine restructuring -------------------------

fn pids_in(file: &Path) -> Vec<i32> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Waits (bounded) until `pred` holds; panics with `what` otherwise. A bound on a wait, not a timed assertion.
fn wait_for(what: &str, pred: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !pred() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Kills what a test left running, by pid, whatever happened.
struct Reaper(Vec<PathBuf>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for file in &self.0 {
            for pid in pids_in(file) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

// ---- 2. A SIGKILLed wrapper never leaves two Sling processes on one pipeline ---------------------------------------

#[test]
fn after_kill_9_of_the_wrapper_a_new_run_never_overlaps_the_old_sling() {
    let w = World::new();
    let shim_dir = tempfile::tempdir().expect("tempdir");
    let live = shim_dir.path().join("live");
    let _reaper = Reaper(vec![live.clone()]);
    let cmd = |steps: &str| {
        let mut c = w.cmd(&["--pipeline", "orders"]);
        c.env("SLING_BIN", shim())
            .env("SHIM_DIR", shim_dir.path())
            .env("SHIM_MODE", "slow")
            .env("SHIM_STEPS", steps)
            .env("SYNC_MAX_RETRIES", "0");
        c
    };
    let mut first = cmd("100")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    wait_for("the first Sling to start copying", || {
        pids_in(&live).len() == 1
    });
    first.kill().expect("kill -9 the wrapper");
    first.wait().expect("reap");
    // At once: the old Sling may still be alive; the new run must not start a second one beside it.
    let second = Run::from(cmd("2").output().expect("second run"));
    let overlap = std::fs::read_to_string(shim_dir.path().join("overlap")).unwrap_or_default();
    assert!(
        overlap.is_empty(),
        "two Sling processes on one pipeline: {overlap}"
    );
    match second.code {
        Some(0) => {}
        Some(1) => assert!(
            second.finished("orders")["error"]
                .as_str()
                .is_some_and(|e| e.contains("already running")),
            "{}",
            second.explain()
        ),
        _ => panic!("{}", second.explain()),
    }
    // The orphan does not copy on unsupervised: it was told to stop (SIGINT, Sling's clean stop).
    let old = pids_in(&live)[0];
    wait_for("the orphaned Sling to stop", || !alive(old));
    assert!(
        pids_in(&shim_dir.path().join("got-sigint")).contains(&old),
        "the orphan got SIGINT"
    );
}

// ---- 6. A YAML bomb is refused at once, naming the file --------------------------------------------------------------

#[test]
fn deeply_nested_yaml_is_refused_with_a_clear_error_naming_the_file() {
    let w = World::new();
    let bomb = w.write_pipeline("bomb", &"[".repeat(200 * 1024));
    let run = w.run(&[]);
    assert_eq!(run.code, Some(1), "{}", run.explain());
    let error = run.finished("bomb")["error"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(
        error.contains(&bomb.display().to_string()) && error.contains("nested deeper than"),
        "{error}"
    );
    assert_eq!(run.finished("orders")["status"], "success");
    let big = w.write_pipeline("big", &format!("# {}\n", "x".repeat(5 * 1024 * 1024)));
    let run = w.run(&["--pipeline", "big"]);
    assert_eq!(run.code, Some(1), "{}", run.explain());
    let error = run.finished("big")["error"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(
        error.contains(&big.display().to_string()) && error.contains("larger than"),
        "{error}"
    );
}

// ---- 8. Entries of the pipeline directory that cannot be read are reported, not skipped -----------------------------

#[test]
fn symlink_loops_dangling_links_and_special_files_are_invalid_pipelines() {
    let w = World::new();
    let d = &w.pipelines;
    std::os::unix::fs::symlink(d.join("loop2.yaml"), d.join("loop1.yaml")).expect("symlink");
    std::os::unix::fs::symlink(d.join("loop1.yaml"), d.join("loop2.yaml")).expect("symlink");
    std::os::unix::fs::symlink("/nonexistent/x.yaml", d.join("dangling.yaml")).expect("symlink");
    let fifo = std::process::Command::new("mkfifo")
        .arg(d.join("fifo.yaml"))
        .status()
        .expect("mkfifo");
    assert!(fifo.success());
    let run = w.run(&[]);
    assert_eq!(run.code, Some(1), "{}", run.explain());
    for (name, why) in [
        ("loop1", "symbolic links"),
        ("loop2", "symbolic links"),
        ("dangling", "does not exist"),
        ("fifo", "not a regular file"),
    ] {
        let f = run.finished(name);
        let error = f["error"].as_str().unwrap_or("");
        assert_eq!(f["status"], "failed", "{name}");
        assert!(
            error.contains(&d.join(format!("{name}.yaml")).display().to_string())
                && error.contains(why),
            "{name}: {error}"
        );
    }
    assert_eq!(run.finished("orders")["status"], "success");
    let run = w.run(&["--pipeline", "loop1"]);
    assert_eq!(
        run.code,
        Some(1),
        "an invalid pipeline, not an unknown one: {}",
        run.explain()
    );
}

// ---- 12. A pipeline cancelled before it started writes nothing while another process holds its lock -----------------

#[test]
fn a_pipeline_cancelled_before_start_leaves_a_lock_held_elsewhere_alone() {
    let w = World::new();
    // Another process (a CronJob pod, a console) is running `products`.
    let dir = w.state.join("pipelines/products");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let lock = std::fs::File::create(dir.join("run.lock")).expect("create");
    let _held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| e)
        .expect("flock");
    let shim_dir = tempfile::tempdir().expect("tempdir");
    let mut child = w
        .cmd(&["--pipeline", "orders", "--pipeline", "products"])
        .env("SLING_BIN", shim())
        .env("SHIM_DIR", shim_dir.path())
        .env("SHIM_MODE", "hang")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    wait_for("orders' Sling to start", || {
        shim_dir.path().join("invocations").exists()
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid")),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    assert_eq!(child.wait().expect("wait").code(), Some(143));
    let pipelines: Vec<String> = w
        .journal()
        .iter()
        .filter_map(|r| r["pipeline"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        pipelines,
        ["orders"],
        "nothing recorded for the pipeline another process runs"
    );
}

// ---- 13. A grandchild that leaves Sling's process group: the documented limit --------------------------------------

/// Sling 1.4.11 starts no such process (its sqlite3 helper stays in the group), and in Kubernetes the container's end
/// takes everything with it; README ("How Sling is run") documents the limit. This test keeps that text true: the
/// escaped process survives the run, and the run still ends and unlocks normally.
#[test]
fn a_grandchild_in_its_own_session_escapes_the_group_stop_as_documented() {
    let w = World::new();
    let shim_dir = tempfile::tempdir().expect("tempdir");
    let grandchild = shim_dir.path().join("grandchild");
    let _reaper = Reaper(vec![grandchild.clone()]);
    let cmd = |mode: &str| {
        let mut c = w.cmd(&["--pipeline", "orders"]);
        c.env("SLING_BIN", shim())
            .env("SHIM_DIR", shim_dir.path())
            .env("SHIM_MODE", mode)
            .env("SHIM_REAL", common::sling_bin());
        c
    };
    let first = Run::from(cmd("setsid_child").output().expect("run"));
    assert_eq!(first.code, Some(0), "{}", first.explain());
    let pid = pids_in(&grandchild)[0];
    assert!(
        alive(pid),
        "a setsid grandchild outlives the process-group stop"
    );
    let second = Run::from(
        cmd("fail_then_real")
            .env("SHIM_FAILS", "0")
            .output()
            .expect("run"),
    );
    assert_eq!(
        second.code,
        Some(0),
        "after a normal end the lock is released: {}",
        second.explain()
    );
}
