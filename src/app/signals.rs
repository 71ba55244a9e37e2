//! SIGINT / SIGTERM / SIGHUP → one cancellation token, remembering which signal came first for the exit code.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// The first shutdown signal received, if any.
#[derive(Clone, Default)]
pub struct Shutdown {
    pub token: CancellationToken,
    first: Arc<AtomicI32>,
}

impl Shutdown {
    /// Listens for SIGINT, SIGTERM and SIGHUP for the life of the process.
    pub fn install() -> anyhow::Result<Self> {
        let s = Self::default();
        for (kind, num) in [
            (SignalKind::interrupt(), libc_sig::SIGINT),
            (SignalKind::terminate(), libc_sig::SIGTERM),
            (SignalKind::hangup(), libc_sig::SIGHUP),
        ] {
            let mut stream =
                signal(kind).with_context(|| format!("cannot listen for signal {num}"))?;
            let s2 = s.clone();
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    let _ = s2
                        .first
                        .compare_exchange(0, num, Ordering::SeqCst, Ordering::SeqCst);
                    s2.token.cancel();
                }
            });
        }
        Ok(s)
    }

    /// The terminal went away without a SIGHUP reaching us (EOF or EIO on it, or its session ended): the same as
    /// a hang-up, so the exit code is 129 unless another signal came first.
    pub fn hang_up(&self) {
        let _ =
            self.first
                .compare_exchange(0, libc_sig::SIGHUP, Ordering::SeqCst, Ordering::SeqCst);
        self.token.cancel();
    }

    /// The signal number that started the shutdown, if one did.
    pub fn signal(&self) -> Option<i32> {
        match self.first.load(Ordering::SeqCst) {
            0 => None,
            n => Some(n),
        }
    }

    /// 128 + signal number, the shell convention (130 for SIGINT, 143 for SIGTERM).
    pub fn exit_code(&self) -> Option<i32> {
        self.signal().map(|n| 128 + n)
    }
}

mod libc_sig {
    pub const SIGHUP: i32 = 1;
    pub const SIGINT: i32 = 2;
    pub const SIGTERM: i32 = 15;
}
