//! The one way to start Sling: every `sling` process (runs, `conns test`, dry runs, `--version`) goes through
//! `run_attempt`, as a child in its own process group with the environment of `ChildEnv`. It reads both pipes line by
//! line, counts rows, enforces the timeout and forwards cancellation (SIGINT, Sling's clean stop, then SIGKILL of the
//! group after a grace period).

mod children;
mod pipes;

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal as UnixSignal;
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::redact::{RedactedLine, Redactor};
use super::sling_log::{self, LogLine, Pipe, Progress, Signal};
use super::state::RunLock;
use children::{child_setup, signal_group, spawn_registered};
pub use children::{stop_all_children, ChildEnv};
use pipes::{pump, widen_pipe, Piped, BATCHES_IN_FLIGHT};

/// Longest line kept; the rest of a longer line is dropped (Sling can print multi-kilobyte SQL on errors).
const MAX_LINE_BYTES: usize = 16 * 1024;
/// Longest result line of `conns exec|discover` kept.
const RESULT_LINE_BYTES: usize = 8 * 1024 * 1024;
/// How many error lines are kept for the failure reason.
const ERROR_TAIL: usize = 40;

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
    /// The pipeline's run lock, passed to the child (see `child_setup`); the caller holds the lock across the attempt.
    pub inherited_lock: Option<RawFd>,
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
            inherited_lock: None,
        }
    }

    /// `conns exec|discover` with `SLING_OUTPUT=json`: each result is one JSON line on stdout, reported as
    /// `AttemptEvent::Result`. Up to `RESULT_LINE_BYTES` per line (a discover of a large schema is one line).
    pub fn for_results(mut self) -> Self {
        self.env_set.push(("SLING_OUTPUT".into(), "json".into()));
        self.max_line_bytes = RESULT_LINE_BYTES;
        self
    }

    /// The same command, with the child holding `lock` too for as long as it (or anything it starts) lives.
    pub fn holding(mut self, lock: &RunLock) -> Self {
        self.inherited_lock = Some(lock.as_raw_fd());
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
    /// Rows of the running stream so far (a `SLING_SHOW_PROGRESS` tick); the final count still comes from
    /// `inserted N rows`.
    Progress {
        stream: Option<String>,
        rows: u64,
        rows_per_sec: Option<u64>,
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

/// Tracks what the lines say while they stream in.
struct Tally {
    run: AttemptRun,
    current_stream: Option<String>,
}

impl Tally {
    fn progress(&self, p: Progress) -> AttemptEvent {
        AttemptEvent::Progress {
            stream: self.current_stream.clone(),
            rows: p.rows,
            rows_per_sec: p.rows_per_sec,
        }
    }

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
                let Some(total) = self
                    .run
                    .rows
                    .checked_add(rows)
                    .filter(|t| *t <= sling_log::MAX_ROWS)
                else {
                    tracing::warn!(
                        target: "sync",
                        "row count not counted: `{}` would take the attempt's {} rows past {}",
                        line.message,
                        self.run.rows,
                        sling_log::MAX_ROWS
                    );
                    return None;
                };
                // The stream's count is part of the total, so it cannot overflow either.
                *self.run.streams.entry(stream.clone()).or_default() += rows;
                self.run.objects.insert(stream.clone(), object);
                self.run.rows = total;
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
            Signal::UnreadableRows { line } => {
                tracing::warn!(
                    target: "sync",
                    "row count not counted: cannot read the number in `{line}` (at most {})",
                    sling_log::MAX_ROWS
                );
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
    let (parent, lock) = (nix::unistd::getpid(), cmd.inherited_lock);
    // SAFETY: `child_setup` runs between fork and exec and makes only async-signal-safe system calls.
    unsafe {
        command.pre_exec(move || child_setup(parent, lock));
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
    let (tx, mut rx) = mpsc::channel::<Piped>(BATCHES_IN_FLIGHT);
    if let Some(out) = child.stdout.take() {
        widen_pipe(&out);
        tokio::spawn(pump(out, Pipe::Stdout, cmd.max_line_bytes, tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        widen_pipe(&err);
        tokio::spawn(pump(err, Pipe::Stderr, MAX_LINE_BYTES, tx.clone()));
    }
    drop(tx);

    let mut tally = Tally {
        run: AttemptRun::new(Termination::Exited(0)),
        current_stream: None,
    };
    let handle =
        |raw: &str, pipe: Pipe, tally: &mut Tally, on_event: &mut dyn FnMut(AttemptEvent)| {
            if pipe == Pipe::Stdout && raw.starts_with("{\"fields\"") {
                on_event(AttemptEvent::Result(redactor.redact(raw)));
                return;
            }
            if let Some(line) = sling_log::parse_line(raw, pipe) {
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
                Some(Piped::Lines(batch)) => batch.lines().for_each(|raw| handle(raw, batch.pipe, &mut tally, &mut on_event)),
                Some(Piped::Progress(p)) => on_event(tally.progress(p)),
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
            Ok(Some(Piped::Lines(batch))) => batch
                .lines()
                .for_each(|raw| handle(raw, batch.pipe, &mut tally, &mut on_event)),
            Ok(Some(Piped::Progress(_))) => {}
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
