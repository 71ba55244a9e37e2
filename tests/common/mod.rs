//! Shared helpers for the integration tests: the real Sling binary, SQLite fixtures, running the wrapper, and real
//! PostgreSQL / MariaDB databases created per test and dropped afterwards.
#![allow(dead_code)]

pub mod otlp;
pub mod sling_exec;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use sling_sync_wrapper::sync::verify::VerifyMode;

pub const WRAPPER: &str = env!("CARGO_BIN_EXE_sling-sync-wrapper");

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The pinned Sling binary, installed once per test binary by the project's script (a no-op when present).
pub fn sling_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = Command::new("bash")
            .arg(root.join("scripts/install-sling.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/install-sling.sh");
        assert!(out.status.success(), "scripts/install-sling.sh failed");
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string())
    })
    .clone()
}

pub fn sqlite(db: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("run sqlite3");
    assert!(
        out.status.success(),
        "sqlite3 {}: {}",
        db.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn count(db: &Path, table: &str) -> u64 {
    sqlite(db, &format!("select count(*) from {table}"))
        .parse()
        .expect("count is a number")
}

/// A temporary world: mission and command SQLite databases, a pipeline directory, a state directory and a HOME.
pub struct World {
    pub dir: tempfile::TempDir,
    pub mission: PathBuf,
    pub command: PathBuf,
    pub pipelines: PathBuf,
    pub state: PathBuf,
    pub home: PathBuf,
    pub env: BTreeMap<String, String>,
}

pub const ORDERS_PIPELINE: &str = "source: MISSION\ntarget: COMMAND\ndefaults:\n  mode: incremental\n  object: main.{stream_table}\n  primary_key: [id]\n  update_key: updated_at\nstreams:\n  main.orders:\n  main.customers:\n";
pub const PRODUCTS_PIPELINE: &str =
    "source: MISSION\ntarget: COMMAND\nstreams:\n  main.products:\n    mode: full-refresh\n    object: main.products\n";

impl World {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mission = dir.path().join("mission.db");
        let command = dir.path().join("command.db");
        let pipelines = dir.path().join("pipelines");
        let state = dir.path().join("state");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&pipelines).expect("mkdir");
        std::fs::create_dir_all(&home).expect("mkdir");
        sqlite(
            &mission,
            "create table orders (id integer primary key, customer_id integer, amount real, updated_at text);
             create table customers (id integer primary key, name text, updated_at text);
             create table products (id integer primary key, sku text, price real);
             insert into customers values (1, 'Ada', '2026-01-01 08:00:00'), (2, 'Grace', '2026-01-01 09:00:00');
             insert into orders values (1, 1, 19.9, '2026-01-02 10:00:00'), (2, 2, 5.0, '2026-01-02 11:00:00'),
                                       (3, 1, 42.0, '2026-01-03 12:00:00');
             insert into products values (1, 'SKU-1', 9.5), (2, 'SKU-2', 12.0), (3, 'SKU-3', 1.25);",
        );
        let mut env = BTreeMap::new();
        env.insert("MISSION".into(), format!("sqlite://{}", mission.display()));
        env.insert("COMMAND".into(), format!("sqlite://{}", command.display()));
        let w = Self {
            dir,
            mission,
            command,
            pipelines,
            state,
            home,
            env,
        };
        w.write_pipeline("orders", ORDERS_PIPELINE);
        w.write_pipeline("products", PRODUCTS_PIPELINE);
        w
    }

    pub fn write_pipeline(&self, name: &str, yaml: &str) -> PathBuf {
        let p = self.pipelines.join(format!("{name}.yaml"));
        std::fs::write(&p, yaml).expect("write pipeline");
        p
    }

    /// The wrapper command with this world's settings; `args` come after `--batch --log-format json`.
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_in_format("json", args)
    }

    /// The same with another `--log-format` (`text`, `json`).
    pub fn cmd_in_format(&self, format: &str, args: &[&str]) -> Command {
        let mut c = Command::new(WRAPPER);
        c.args(["--batch", "--log-format", format])
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("MISSION_CLUSTER_ID", "test-mission")
            .env("PIPELINE_DIR", &self.pipelines)
            .env("SLING_STATE_PATH", &self.state)
            .env("SLING_BIN", sling_bin())
            .env("SYNC_BACKOFF_BASE", "100ms")
            .env("OTEL_SDK_DISABLED", "true")
            .envs(&self.env)
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().expect("run wrapper"))
    }

    /// Journal records, oldest first.
    pub fn journal(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.state.join("history.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("journal line is JSON"))
            .collect()
    }

    pub fn last_record(&self, pipeline: &str) -> serde_json::Value {
        self.journal()
            .into_iter()
            .rev()
            .find(|r| r["pipeline"] == pipeline)
            .expect("pipeline has a journal record")
    }
}

/// A finished wrapper process with its JSON output lines parsed.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub lines: Vec<serde_json::Value>,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        let lines = stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        Self {
            code: o.status.code(),
            stdout,
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            lines,
        }
    }
}

impl Run {
    /// The `pipeline finished` line of a pipeline.
    pub fn finished(&self, pipeline: &str) -> &serde_json::Value {
        self.lines
            .iter()
            .find(|l| l["message"] == "pipeline finished" && l["pipeline"] == pipeline)
            .unwrap_or_else(|| {
                panic!(
                    "no `pipeline finished` for {pipeline}:\n{}\n{}",
                    self.stdout, self.stderr
                )
            })
    }

    pub fn messages(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter_map(|l| l["message"].as_str().map(str::to_owned))
            .collect()
    }

    pub fn explain(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `psql` against the local PostgreSQL as `postgres`.
pub fn psql(db: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            db,
            "-v",
            "ON_ERROR_STOP=1",
            "-qAt",
            "-c",
            sql,
        ])
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Runs the `mysql` client against the local MariaDB as root.
pub fn mysql(db: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("mysql")
        .args([
            "-h",
            "127.0.0.1",
            "-P",
            "3306",
            "-u",
            "root",
            "-N",
            "-B",
            "-e",
            sql,
        ])
        .args((!db.is_empty()).then_some(db))
        .output()
        .map_err(|e| format!("mysql: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}_{}", std::process::id(), uuid_like())
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}", n % 0xffff_ffff)
}

/// A PostgreSQL database that exists for one test.
pub struct PgDb {
    pub name: String,
}

impl PgDb {
    /// `None` (skip) when PostgreSQL is not reachable outside CI; in CI the test must run.
    pub fn create(prefix: &str) -> Option<Self> {
        let name = unique(prefix);
        match psql("postgres", &format!("create database {name}")) {
            Ok(_) => Some(Self { name }),
            Err(e) if !in_ci() => {
                eprintln!("skipping: PostgreSQL on 127.0.0.1:5432 is not usable: {e}");
                None
            }
            Err(e) => panic!("PostgreSQL on 127.0.0.1:5432 is required in CI: {e}"),
        }
    }

    pub fn url(&self) -> String {
        format!(
            "postgresql://postgres@127.0.0.1:5432/{}?sslmode=disable",
            self.name
        )
    }

    pub fn sql(&self, sql: &str) -> String {
        psql(&self.name, sql).unwrap_or_else(|e| panic!("psql {}: {e}", self.name))
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = psql(
            "postgres",
            &format!("drop database if exists {} with (force)", self.name),
        );
    }
}

/// A MariaDB database that exists for one test.
pub struct MariaDb {
    pub name: String,
}

impl MariaDb {
    pub fn create(prefix: &str) -> Option<Self> {
        let name = unique(prefix);
        match mysql("", &format!("create database {name}")) {
            Ok(_) => Some(Self { name }),
            Err(e) if !in_ci() => {
                eprintln!("skipping: MariaDB on 127.0.0.1:3306 is not usable: {e}");
                None
            }
            Err(e) => panic!("MariaDB on 127.0.0.1:3306 is required in CI: {e}"),
        }
    }

    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:3306/{}", self.name)
    }

    pub fn sql(&self, sql: &str) -> String {
        mysql(&self.name, sql).unwrap_or_else(|e| panic!("mysql {}: {e}", self.name))
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = mysql("", &format!("drop database if exists {}", self.name));
    }
}

/// The engine as a library over this world's pipelines, with `sling_bin` (the real Sling or the shim). The world's
/// connection variables and `extra` reach every Sling child; the test process's own environment is left alone.
pub fn engine(
    w: &World,
    sling_bin: PathBuf,
    extra: &[(&str, String)],
) -> sling_sync_wrapper::sync::Engine {
    use sling_sync_wrapper::sync::{redact::Redactor, retry::RetryPolicy, state::StateStore};
    use sling_sync_wrapper::sync::{ChildEnv, Engine, EngineConfig};
    let mut env = w.env.clone();
    env.insert("HOME".into(), w.home.display().to_string());
    env.insert("PATH".into(), std::env::var("PATH").unwrap_or_default());
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let mut child_env = ChildEnv::for_sling(&env);
    child_env.set.extend(
        env.iter()
            .filter(|(k, _)| *k != "PATH")
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    Engine::new(
        EngineConfig {
            mission_cluster_id: "test".into(),
            sling_bin,
            state: StateStore::new(&w.state),
            retry: RetryPolicy {
                max_retries: 0,
                base: std::time::Duration::from_millis(50),
                max: std::time::Duration::from_secs(1),
                jitter: 0.2,
            },
            attempt_timeout: std::time::Duration::from_secs(120),
            cancel_grace: std::time::Duration::from_secs(2),
            concurrency: 1,
            job_deadline: None,
            child_env,
            verify: VerifyMode::Report,
            verify_timeout: std::time::Duration::from_secs(60),
            env,
        },
        Redactor::default(),
    )
}

/// The fake Sling of `tests/fixtures`.
pub fn shim() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sling-shim.sh"
    ))
}

/// A directory the Sling shim writes its record into (`SHIM_DIR`): attempts, invocations, signals seen.
pub struct Shim {
    pub dir: tempfile::TempDir,
}

impl Shim {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// The wrapper command for `w` with the shim as `SLING_BIN` in `mode`, the real Sling behind it as `SHIM_REAL`.
    pub fn cmd(&self, w: &World, mode: &str, args: &[&str]) -> Command {
        let mut c = w.cmd(args);
        c.env("SLING_BIN", shim())
            .env("SHIM_DIR", self.dir.path())
            .env("SHIM_MODE", mode)
            .env("SHIM_REAL", sling_bin());
        c
    }
}

/// Another wrapper whose Sling hangs while it holds a pipeline's run lock (see `Shim::hold_lock`).
pub struct LockHolder(std::process::Child);

impl Shim {
    /// Starts a wrapper running `pipeline` as job `job_id` with a Sling that hangs, and returns once that Sling has
    /// started: from then until `LockHolder::stop` the pipeline's run lock is held by another process.
    pub fn hold_lock(&self, w: &World, pipeline: &str, job_id: &str) -> LockHolder {
        let child = self
            .cmd(w, "hang", &["--pipeline", pipeline])
            .env("SYNC_JOB_ID", job_id)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn the lock holder");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !self.dir.path().join("attempts").exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the lock holder's Sling never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        LockHolder(child)
    }
}

impl LockHolder {
    /// Stops the holder as an operator's Ctrl-C would: it must exit 130.
    pub fn stop(mut self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .expect("signal the lock holder");
        assert_eq!(self.0.wait().expect("wait").code(), Some(130));
    }
}

impl Default for Shim {
    fn default() -> Self {
        Self::new()
    }
}

/// The process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}
