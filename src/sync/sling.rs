//! The one way to start Sling: every `sling` process (runs, `conns test`, dry runs, `--version`) goes through
//! `run_attempt`, as a child in its own process group with the environment of `ChildEnv`. It reads both pipes line by
//! line, counts rows, enforces the timeout and forwards cancellation (SIGINT, Sling's clean stop, then SIGKILL of the
//! group after a grace period).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal as UnixSignal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::redact::{RedactedLine, Redactor};
use super::sling_log::{self, LogLine, Pipe, Signal};

/// Longest line kept; the rest of a longer line is dropped (Sling can print multi-kilobyte SQL on errors).
const MAX_LINE_BYTES: usize = 16 * 1024;
/// A read with fewer lines than this is followed by `COALESCE_PAUSE` before the next read.
const COALESCE_BELOW_LINES: usize = 64;
const COALESCE_PAUSE: Duration = Duration::from_millis(2);
/// Longest result line of `conns exec|discover` kept.
const RESULT_LINE_BYTES: usize = 8 * 1024 * 1024;
/// How many error lines are kept for the failure reason.
const ERROR_TAIL: usize = 40;

/// Environment changes for every Sling child.
#[derive(Debug, Clone, Default)]
pub struct ChildEnv {
    pub set: Vec<(String, String)>,
    pub remove: Vec<String>,
}

impl ChildEnv {
    /// The rules from Sling 1.4.11's observed behaviour: JSON logs on stdout, no phoning home, no `DEBUG` (any value
    /// turns on debug output that can carry secrets), no `SLING_STATE` (without a Pro token it makes Sling re-read
    /// whole tables), and no `SLING_TIMEOUT` (ours is a duration, Sling's is minutes; the wrapper enforces it).
    /// `SQLITE_PATH` points at a local sqlite3 when the user set none, which avoids a download attempt.
    pub fn for_sling(env: &BTreeMap<String, String>) -> Self {
        let mut set = vec![
            ("SLING_LOGGING".to_string(), "JSON".to_string()),
            ("SLING_DISABLE_TELEMETRY".to_string(), "true".to_string()),
        ];
        if !env.contains_key("SQLITE_PATH") {
            if let Some(p) = find_on_path("sqlite3", env.get("PATH").map(String::as_str)) {
                set.push(("SQLITE_PATH".to_string(), p.display().to_string()));
            }
        }
        let remove = ["DEBUG", "SLING_STATE", "SLING_TIMEOUT"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        Self { set, remove }
    }
}

fn find_on_path(bin: &str, path: Option<&str>) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// Everything needed to start one child.
#[derive(Debug, Clone)]
pub struct SlingCommand {
    pub bin: PathBuf,
    pub args: Vec<OsString>,
    pub env_set: Vec<(String, String)>,
    pub env_remove: Vec<String>,
    pub timeout: Duration,
    /// Time between SIGINT and SIGKILL when stopping the child.
    pub grace: Duration,
    /// Longest line kept. Query results (`conns exec|discover` with `SLING_OUTPUT=json`) come as one line each and
    /// need more room than log lines.
    pub max_line_bytes: usize,
}

impl SlingCommand {
    /// `bin args…` with the child environment rules applied.
    pub fn new(
        bin: PathBuf,
        args: Vec<OsString>,
        env: &ChildEnv,
        timeout: Duration,
        grace: Duration,
    ) -> Self {
        Self {
            bin,
            args,
            env_set: env.set.clone(),
            env_remove: env.remove.clone(),
            timeout,
            grace,
            max_line_bytes: MAX_LINE_BYTES,
        }
    }

    /// `conns exec|discover` with `SLING_OUTPUT=json`: each result is one JSON line on stdout, reported as
    /// `AttemptEvent::Result`. Up to `RESULT_LINE_BYTES` per line (a discover of a large schema is one line).
    pub fn for_results(mut self) -> Self {
        self.env_set.push(("SLING_OUTPUT".into(), "json".into()));
        self.max_line_bytes = RESULT_LINE_BYTES;
        self
    }
}

/// How the child ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Termination {
    Exited(i32),
    /// Killed by a signal it did not handle (number).
    Signalled(i32),
    TimedOut,
    Cancelled,
    SpawnFailed(String),
}

/// What the engine learns from one attempt as it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptEvent {
    Spawned {
        pid: u32,
    },
    Line(RedactedLine),
    Rows {
        stream: String,
        rows: u64,
        total: u64,
    },
    /// A query result line on stdout (`{"fields":…,"rows":…}`), raw; see `SlingCommand::for_results`.
    Result(String),
}

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRun {
    pub termination: Termination,
    pub rows: u64,
    pub streams: BTreeMap<String, u64>,
    /// The target object Sling named per stream (`inserted N rows into "main"."orders"`).
    pub objects: BTreeMap<String, String>,
    pub failed_streams: u64,
    pub no_streams_matched: bool,
    /// An error line matched a configuration fault that no retry can fix.
    pub permanent_error: bool,
    pub error_tail: VecDeque<String>,
    pub lines: u64,
    pub duration: Duration,
}

impl AttemptRun {
    fn new(termination: Termination) -> Self {
        Self {
            termination,
            rows: 0,
            streams: BTreeMap::new(),
            objects: BTreeMap::new(),
            failed_streams: 0,
            no_streams_matched: false,
            permanent_error: false,
            error_tail: VecDeque::new(),
            lines: 0,
            duration: Duration::ZERO,
        }
    }

    pub fn exit_code(&self) -> Option<i32> {
        match self.termination {
            Termination::Exited(c) => Some(c),
            _ => None,
        }
    }

    /// The failure reason from the last error lines (the fatal block when there is one), or from the termination.
    pub fn reason(&self) -> Option<String> {
        let tail: Vec<&str> = self
            .error_tail
            .iter()
            .map(String::as_str)
            .filter(|l| {
                let t = l.trim();
                !t.is_empty()
                    && t != "fatal:"
                    && !t.starts_with("~ failure running replication")
                    && !t.starts_with("---")
            })
            .collect();
        let from_lines = (!tail.is_empty()).then(|| {
            let start = tail.len().saturating_sub(4);
            let mut s = tail[start..]
                .iter()
                .map(|l| l.trim_start_matches("~ ").trim())
                .collect::<Vec<_>>()
                .join(" | ");
            truncate(&mut s, 600);
            s
        });
        let from_exit = match &self.termination {
            Termination::Exited(0) if self.no_streams_matched => {
                Some("no stream matched: Sling ran nothing".to_string())
            }
            Termination::Exited(0) => None,
            Termination::Exited(c) => Some(format!("sling exited with code {c}")),
            Termination::Signalled(s) => Some(format!("sling was killed by signal {s}")),
            Termination::TimedOut => {
                Some("attempt timed out (SLING_TIMEOUT) and was stopped".to_string())
            }
            Termination::Cancelled => Some("cancelled".to_string()),
            Termination::SpawnFailed(e) => Some(e.clone()),
        };
        match (from_exit, from_lines) {
            (Some(e), Some(l)) if !matches!(self.termination, Termination::Exited(_)) => {
                Some(format!("{e}: {l}"))
            }
            (_, Some(l)) => Some(l),
            (e, None) => e,
        }
    }
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
}

/// Reads `reader` line by line, each line capped at `MAX_LINE_BYTES`, and forwards raw text to `tx` — every
/// complete line of one read as one batch, so a burst of output costs one wake-up of the engine, not one per line.
async fn pump<R: AsyncRead + Unpin>(
    reader: R,
    pipe: Pipe,
    max_line_bytes: usize,
    tx: mpsc::Sender<(Pipe, Vec<String>)>,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let mut line: Vec<u8> = Vec::with_capacity(256);
    let mut overflow = false;
    while let Ok(buf) = reader.fill_buf().await {
        if buf.is_empty() {
            break;
        }
        let mut batch = Vec::new();
        let mut rest = buf;
        while !rest.is_empty() {
            let (chunk, found_newline) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) => (&rest[..i], true),
                None => (rest, false),
            };
            let room = max_line_bytes.saturating_sub(line.len());
            overflow |= chunk.len() > room;
            line.extend_from_slice(&chunk[..chunk.len().min(room)]);
            rest = &rest[chunk.len() + usize::from(found_newline)..];
            if found_newline {
                let mut text = String::from_utf8_lossy(&line).into_owned();
                if overflow {
                    text.push_str(" …[line truncated]");
                }
                line.clear();
                overflow = false;
                batch.push(text);
            }
        }
        let consumed = buf.len();
        reader.consume(consumed);
        let small = batch.len() < COALESCE_BELOW_LINES;
        if !batch.is_empty() && tx.send((pipe, batch)).await.is_err() {
            return;
        }
        // A chatty child writes one line per write(2); reading each as it comes costs a wake-up per line. A short
        // pause after a small read lets lines pile up in the pipe, so a flood is read in large batches. Logs are
        // not latency-critical; 2 ms is invisible to an operator and far below the pipe's 64 KiB of room.
        if small {
            tokio::time::sleep(COALESCE_PAUSE).await;
        }
    }
    if !line.is_empty() {
        let _ = tx
            .send((pipe, vec![String::from_utf8_lossy(&line).into_owned()]))
            .await;
    }
}

fn signal_group(pgid: Option<u32>, sig: UnixSignal) {
    if let Some(pid) = pgid {
        // ESRCH (group already gone) is the normal case after a clean exit.
        let _ = killpg(Pid::from_raw(pid as i32), sig);
    }
}

/// Every Sling process group of this process that has not been seen to end, so that a panic, which skips every
/// destructor, can still stop them (`stop_all_children`). Once `stopping` is set, no new child is started.
struct Children {
    stopping: bool,
    groups: BTreeSet<u32>,
}

static CHILDREN: Mutex<Children> = Mutex::new(Children {
    stopping: false,
    groups: BTreeSet::new(),
});

fn children() -> std::sync::MutexGuard<'static, Children> {
    CHILDREN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes its group from `CHILDREN` when the attempt is over (the child reaped, its group killed).
struct LiveGroup(Option<u32>);

impl Drop for LiveGroup {
    fn drop(&mut self) {
        if let Some(g) = self.0 {
            children().groups.remove(&g);
        }
    }
}

/// Stops every Sling process group still running, the way a cancel does: SIGINT (Sling's clean stop), then SIGKILL
/// to what is left after `grace`. Blocking; for the console's panic path, where destructors never run. Starts no
/// child afterwards: the process is about to exit.
pub fn stop_all_children(grace: Duration) {
    let groups: Vec<u32> = {
        let mut c = children();
        c.stopping = true;
        c.groups.iter().copied().collect()
    };
    for g in &groups {
        signal_group(Some(*g), UnixSignal::SIGINT);
    }
    // The engine's tasks (on the other runtime threads) reap each child and drop it from the set.
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && groups.iter().any(|g| children().groups.contains(g)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for g in groups.iter().filter(|g| children().groups.contains(g)) {
        signal_group(Some(*g), UnixSignal::SIGKILL);
    }
}

/// Spawns and registers the child under one lock, so `stop_all_children` cannot miss a child starting at that moment.
fn spawn_registered(command: &mut Command) -> (std::io::Result<tokio::process::Child>, LiveGroup) {
    let mut registry = children();
    if registry.stopping {
        let refused = std::io::Error::other("not started: the wrapper is stopping");
        return (Err(refused), LiveGroup(None));
    }
    let spawned = command.spawn();
    let group = spawned.as_ref().ok().and_then(tokio::process::Child::id);
    if let Some(g) = group {
        registry.groups.insert(g);
    }
    (spawned, LiveGroup(group))
}

/// Tracks what the lines say while they stream in.
struct Tally {
    run: AttemptRun,
    current_stream: Option<String>,
}

impl Tally {
    fn observe(&mut self, line: &LogLine) -> Option<AttemptEvent> {
        self.run.lines += 1;
        if line.level == sling_log::Level::Error {
            if sling_log::is_permanent_error(&line.message) {
                self.run.permanent_error = true;
            }
            let mut l = line.message.clone();
            truncate(&mut l, 1000);
            if self.run.error_tail.len() == ERROR_TAIL {
                self.run.error_tail.pop_front();
            }
            self.run.error_tail.push_back(l);
        }
        match sling_log::signal(line)? {
            Signal::StreamStarted { stream } => {
                self.current_stream = Some(stream);
                None
            }
            Signal::Rows { rows, object } => {
                let stream = self
                    .current_stream
                    .clone()
                    .unwrap_or_else(|| object.clone());
                *self.run.streams.entry(stream.clone()).or_default() += rows;
                self.run.objects.insert(stream.clone(), object);
                self.run.rows += rows;
                Some(AttemptEvent::Rows {
                    stream,
                    rows,
                    total: self.run.rows,
                })
            }
            Signal::StreamFailed => {
                self.run.failed_streams += 1;
                None
            }
            Signal::Summary { .. } => None,
            Signal::NoStreamsMatched => {
                self.run.no_streams_matched = true;
                None
            }
            Signal::FatalStart => None,
        }
    }
}

/// Runs one attempt to the end. Never panics on anything the child does; spawn failures are reported in the result.
pub async fn run_attempt(
    cmd: &SlingCommand,
    redactor: &Redactor,
    cancel: &CancellationToken,
    mut on_event: impl FnMut(AttemptEvent),
) -> AttemptRun {
    let started = Instant::now();
    let mut command = Command::new(&cmd.bin);
    command
        .args(&cmd.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for k in &cmd.env_remove {
        command.env_remove(k);
    }
    for (k, v) in &cmd.env_set {
        command.env(k, v);
    }
    let (spawned, _live) = spawn_registered(&mut command);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let mut run = AttemptRun::new(Termination::SpawnFailed(format!(
                "cannot run SLING_BIN {}: {e}",
                cmd.bin.display()
            )));
            run.permanent_error = e.kind() == std::io::ErrorKind::NotFound
                || e.kind() == std::io::ErrorKind::PermissionDenied;
            run.duration = started.elapsed();
            return run;
        }
    };
    let pgid = child.id();
    if let Some(pid) = pgid {
        on_event(AttemptEvent::Spawned { pid });
    }
    let (tx, mut rx) = mpsc::channel::<(Pipe, Vec<String>)>(64);
    if let Some(out) = child.stdout.take() {
        tokio::spawn(pump(out, Pipe::Stdout, cmd.max_line_bytes, tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(pump(err, Pipe::Stderr, MAX_LINE_BYTES, tx.clone()));
    }
    drop(tx);

    let mut tally = Tally {
        run: AttemptRun::new(Termination::Exited(0)),
        current_stream: None,
    };
    let handle =
        |raw: String, pipe: Pipe, tally: &mut Tally, on_event: &mut dyn FnMut(AttemptEvent)| {
            if pipe == Pipe::Stdout && raw.starts_with("{\"fields\"") {
                on_event(AttemptEvent::Result(redactor.redact(&raw)));
                return;
            }
            if let Some(line) = sling_log::parse_line(&raw, pipe) {
                let line = redactor.redact_line(line);
                let rows = tally.observe(&line);
                on_event(AttemptEvent::Line(line));
                if let Some(r) = rows {
                    on_event(r);
                }
            }
        };

    let deadline = tokio::time::sleep(cmd.timeout);
    tokio::pin!(deadline);
    let mut pipes_open = true;
    let mut stopping: Option<(Termination, Instant)> = None;
    let status = loop {
        let kill_at = stopping.as_ref().map(|(_, at)| *at + cmd.grace);
        tokio::select! {
            biased;
            msg = rx.recv(), if pipes_open => match msg {
                Some((pipe, batch)) => batch.into_iter().for_each(|raw| handle(raw, pipe, &mut tally, &mut on_event)),
                None => pipes_open = false,
            },
            status = child.wait() => break status,
            _ = cancel.cancelled(), if stopping.is_none() => {
                signal_group(pgid, UnixSignal::SIGINT);
                stopping = Some((Termination::Cancelled, Instant::now()));
            }
            _ = &mut deadline, if stopping.is_none() => {
                signal_group(pgid, UnixSignal::SIGINT);
                stopping = Some((Termination::TimedOut, Instant::now()));
            }
            _ = tokio::time::sleep_until(kill_at.map(tokio::time::Instant::from_std).unwrap_or_else(tokio::time::Instant::now)), if kill_at.is_some() => {
                signal_group(pgid, UnixSignal::SIGKILL);
                // Wait for the exit below; the grace is spent.
                if let Some((_, at)) = stopping.as_mut() { *at = Instant::now() + Duration::from_secs(3600); }
            }
        }
    };
    // Anything the child left in its group (e.g. a sqlite3 helper) goes with it, so the pipes close.
    signal_group(pgid, UnixSignal::SIGKILL);
    // Drain what is already written; bounded in case a stray process still holds a pipe.
    let drain_until = tokio::time::Instant::now() + Duration::from_secs(2);
    while pipes_open {
        match tokio::time::timeout_at(drain_until, rx.recv()).await {
            Ok(Some((pipe, batch))) => batch
                .into_iter()
                .for_each(|raw| handle(raw, pipe, &mut tally, &mut on_event)),
            _ => pipes_open = false,
        }
    }
    let mut run = tally.run;
    run.termination = match (stopping, status) {
        (Some((t, _)), _) => t,
        (None, Ok(s)) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
            (Some(c), _) => Termination::Exited(c),
            (None, Some(sig)) => Termination::Signalled(sig),
            (None, None) => Termination::Exited(-1),
        },
        (None, Err(e)) => Termination::SpawnFailed(format!("waiting for sling failed: {e}")),
    };
    run.duration = started.elapsed();
    run
}
