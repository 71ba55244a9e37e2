//! The one way to start Sling: every `sling` process (runs, `conns test`, dry runs, `--version`) goes through
//! `run_attempt`, as a child in its own process group with the environment of `ChildEnv`. It reads both pipes line by
//! line, counts rows, enforces the timeout and forwards cancellation (SIGINT, Sling's clean stop, then SIGKILL of the
//! group after a grace period).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ffi::OsString;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::signal::{killpg, Signal as UnixSignal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::redact::{RedactedLine, Redactor};
use super::sling_log::{self, LogLine, Pipe, Progress, Signal};
use super::state::RunLock;

/// Longest line kept; the rest of a longer line is dropped (Sling can print multi-kilobyte SQL on errors).
const MAX_LINE_BYTES: usize = 16 * 1024;
/// How much one read of a pipe takes at most.
const READ_BYTES: usize = 64 * 1024;
/// A read with fewer lines and fewer bytes than these is followed by `COALESCE_PAUSE` before the next read.
const COALESCE_BELOW_LINES: usize = 64;
const COALESCE_BELOW_BYTES: usize = READ_BYTES / 4;
/// Batches in flight between the pipe readers and the engine. Small, so that when the engine waits (a slow
/// stdout) the readers soon stop reading and Sling waits too, instead of lines piling up here.
const BATCHES_IN_FLIGHT: usize = 4;
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
            // A rows-so-far tick per second on stderr, read as it arrives (SLING_FACTS §9).
            ("SLING_SHOW_PROGRESS".to_string(), "true".to_string()),
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

/// Runs in the forked child just before exec, so that a wrapper killed with SIGKILL (no handler, no cleanup) cannot
/// leave Sling copying while the next run starts:
/// - Parent-death signal SIGINT (Linux): when the wrapper dies, Sling gets its clean stop — it drops its `_tmp` table
///   and exits within about 0.2 s (SLING_FACTS §8). SIGKILL here would leave the `_tmp` table and temp files behind
///   (the next run drops a stale `_tmp` first). The signal follows the *thread* that spawned the child; attempts are
///   spawned from runtime worker threads, which live as long as the runtime.
/// - The run lock's descriptor stays open across exec (close-on-exec cleared), so the flock is held until the last
///   process holding it exits: while the interrupted Sling cleans up, a new run is refused as "already running".
///   (On a normal end the wrapper unlocks explicitly, after the group is gone.)
///
/// Only async-signal-safe system calls (prctl, getppid, fcntl), no allocation.
fn child_setup(parent: Pid, lock: Option<RawFd>) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        nix::sys::prctl::set_pdeathsig(UnixSignal::SIGINT)?;
        // The wrapper may have died between fork and prctl; then the signal would never come.
        if nix::unistd::getppid() != parent {
            return Err(std::io::Error::from(nix::errno::Errno::ESRCH));
        }
    }
    if let Some(fd) = lock {
        // SAFETY: `fd` is the run lock's descriptor, open in the parent for the whole attempt and so in this child.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))?;
    }
    Ok(())
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

/// Complete lines of one read, each ending in `\n`: one allocation per read, not per line.
struct Batch {
    pipe: Pipe,
    text: String,
}

impl Batch {
    fn lines(&self) -> impl Iterator<Item = &str> {
        self.text.split_terminator('\n')
    }
}

/// What the pipe readers hand to the attempt loop.
enum Piped {
    Lines(Batch),
    /// The newest `SLING_SHOW_PROGRESS` tick, read from stderr before its line ends.
    Progress(Progress),
}

/// Reads `reader` line by line, each line capped at `max_line_bytes`, and forwards raw text to `tx` — every
/// complete line of one read as one batch, so a burst of output costs one wake-up of the engine, not one per line.
/// On stderr, progress ticks are taken out of the unfinished line as they arrive (Sling ends that line only when
/// the stream ends).
async fn pump<R: AsyncRead + Unpin>(
    reader: R,
    pipe: Pipe,
    max_line_bytes: usize,
    tx: mpsc::Sender<Piped>,
) {
    let mut reader = BufReader::with_capacity(READ_BYTES, reader);
    // The line being read, carried over between reads until its newline comes.
    let mut line: Vec<u8> = Vec::with_capacity(256);
    let mut overflow = false;
    while let Ok(buf) = reader.fill_buf().await {
        if buf.is_empty() {
            break;
        }
        let mut batch: Vec<u8> = Vec::new();
        let mut lines = 0usize;
        let mut rest = buf;
        while !rest.is_empty() {
            let (chunk, found_newline) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) => (&rest[..i], true),
                None => (rest, false),
            };
            rest = &rest[chunk.len() + usize::from(found_newline)..];
            if !found_newline {
                let room = max_line_bytes.saturating_sub(line.len());
                overflow |= chunk.len() > room;
                line.extend_from_slice(&chunk[..chunk.len().min(room)]);
                break;
            }
            if batch.is_empty() {
                batch.reserve(buf.len() + line.len());
            }
            // The start carried over from earlier reads, then this read's part, capped together.
            let room = max_line_bytes.saturating_sub(line.len());
            batch.extend_from_slice(&line);
            batch.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if overflow || chunk.len() > room {
                batch.extend_from_slice(" …[line truncated]".as_bytes());
            }
            batch.push(b'\n');
            line.clear();
            overflow = false;
            lines += 1;
        }
        let consumed = buf.len();
        reader.consume(consumed);
        // A chatty child writes one line per write(2); reading each as it comes costs a wake-up per line. A short
        // pause after a small read lets lines pile up in the pipe, so a flood is read in large batches. Logs are
        // not latency-critical; 2 ms is invisible to an operator and far below the pipe's 64 KiB of room. A read
        // that brought many bytes (long lines) is not small: pausing there would only slow the child down.
        let small = lines < COALESCE_BELOW_LINES && consumed < COALESCE_BELOW_BYTES;
        if lines > 0 {
            let text = String::from_utf8(batch)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            if tx.send(Piped::Lines(Batch { pipe, text })).await.is_err() {
                return;
            }
        }
        if pipe == Pipe::Stderr && line.first().is_some_and(u8::is_ascii_digit) {
            if let Some((used, p)) = sling_log::parse_progress(&String::from_utf8_lossy(&line)) {
                // The ticks are ASCII, so `used` counts bytes of `line` too.
                line.drain(..used.min(line.len()));
                if tx.send(Piped::Progress(p)).await.is_err() {
                    return;
                }
            }
        }
        if small {
            tokio::time::sleep(COALESCE_PAUSE).await;
        }
    }
    if !line.is_empty() {
        let mut text = String::from_utf8_lossy(&line).into_owned();
        text.push('\n');
        let _ = tx.send(Piped::Lines(Batch { pipe, text })).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::ReadBuf;

    /// Hands out its bytes a few at a time, as a pipe does when the writer is slow.
    struct Chunked {
        data: Vec<u8>,
        at: usize,
        step: usize,
    }

    impl AsyncRead for Chunked {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            let end = (self.at + self.step)
                .min(self.data.len())
                .min(self.at + buf.remaining());
            buf.put_slice(&self.data[self.at..end]);
            self.at = end;
            Poll::Ready(Ok(()))
        }
    }

    async fn lines_of(data: Vec<u8>, step: usize) -> Vec<String> {
        let (tx, mut rx) = mpsc::channel(BATCHES_IN_FLIGHT);
        tokio::spawn(pump(
            Chunked { data, at: 0, step },
            Pipe::Stdout,
            MAX_LINE_BYTES,
            tx,
        ));
        let mut out = Vec::new();
        while let Some(piped) = rx.recv().await {
            let Piped::Lines(b) = piped else {
                panic!("stdout carries no progress ticks")
            };
            assert!(b.text.ends_with('\n'), "a batch holds whole lines");
            out.extend(b.lines().map(str::to_owned));
        }
        out
    }

    #[tokio::test]
    async fn lines_survive_any_read_size_and_long_ones_are_capped() {
        let long = "x".repeat(MAX_LINE_BYTES + 10);
        let mut data = format!("first\nsecond line\n{long}\nafter\n").into_bytes();
        data.extend_from_slice(b"bad \xff byte\nno newline at the end");
        // (Every small read is followed by the coalescing pause: read sizes that keep this test quick.)
        for step in [3000, 4096, READ_BYTES] {
            let got = lines_of(data.clone(), step).await;
            assert_eq!(got.len(), 6, "step {step}: {got:?}");
            assert_eq!(got[0], "first");
            assert_eq!(got[1], "second line");
            assert_eq!(
                got[2],
                format!("{} …[line truncated]", "x".repeat(MAX_LINE_BYTES))
            );
            assert_eq!(got[3], "after");
            assert_eq!(got[4], "bad \u{fffd} byte");
            assert_eq!(got[5], "no newline at the end");
        }
        let got = lines_of(b"a\nbc\n\nd".to_vec(), 1).await;
        assert_eq!(got, ["a", "bc", "", "d"]);
    }
}
