//! Sling's process group: the child's environment, what runs between fork and exec, the registry of live groups
//! that a panic or a dropped terminal stops, and signals to a group.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{BorrowedFd, RawFd};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::signal::{killpg, Signal as UnixSignal};
use nix::unistd::Pid;
use tokio::process::Command;

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
pub(super) fn child_setup(parent: Pid, lock: Option<RawFd>) -> std::io::Result<()> {
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

pub(super) fn signal_group(pgid: Option<u32>, sig: UnixSignal) {
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
pub(super) struct LiveGroup(Option<u32>);

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
pub(super) fn spawn_registered(
    command: &mut Command,
) -> (std::io::Result<tokio::process::Child>, LiveGroup) {
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
