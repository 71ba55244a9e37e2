//! Is the operator's terminal still there? crossterm's reader loops forever on a hung-up terminal (read returns EOF
//! or EIO again and again: crossterm-rs/crossterm#793), so the console asks the terminal itself before it lets
//! crossterm read, and checks again on a slow tick as a backstop.

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// What waiting on the terminal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Bytes to read: crossterm can read them without blocking on a dead terminal.
    Readable,
    /// Nothing yet.
    Idle,
    /// Hung up, closed or in error: the operator is gone.
    Gone(&'static str),
}

/// Waits up to `timeout` for input on stdin (the console requires stdin to be the terminal). A hang-up shows as
/// `POLLHUP` (Linux reports it together with `POLLIN`, and a read would return EOF), so it is checked first.
pub fn wait_readable(timeout: Duration) -> Readiness {
    let stdin = io::stdin();
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    match poll(&mut fds, timeout) {
        Ok(0) => Readiness::Idle,
        Ok(_) => {
            let got = fds[0].revents().unwrap_or(PollFlags::empty());
            if got.contains(PollFlags::POLLNVAL) {
                Readiness::Gone("the terminal was closed")
            } else if got.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
                Readiness::Gone("the terminal hung up")
            } else if got.contains(PollFlags::POLLIN) {
                Readiness::Readable
            } else {
                Readiness::Idle
            }
        }
        Err(nix::errno::Errno::EINTR) => Readiness::Idle,
        Err(_) => Readiness::Gone("the terminal cannot be polled"),
    }
}

/// The slow-tick backstop: the terminal hung up, stdin stopped being a terminal, or the process that started the
/// console died (the shell of a dropped SSH or `kubectl exec` session) and it was re-parented.
pub fn gone(start_parent: i32) -> Option<&'static str> {
    if let Readiness::Gone(why) = wait_readable(Duration::ZERO) {
        return Some(why);
    }
    if !nix::unistd::isatty(io::stdin()).unwrap_or(false) {
        return Some("stdin is no longer a terminal");
    }
    if parent() != start_parent {
        return Some("the session that started the console ended");
    }
    None
}

/// The parent process id now.
pub fn parent() -> i32 {
    nix::unistd::getppid().as_raw()
}
