//! The console's key reader: crossterm on its own thread, reading only when the terminal has input.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossterm::event::Event;
use tokio::sync::mpsc;

use crate::app::tty::{self, Readiness};

/// How often the input thread looks up from `poll` to see whether it should stop.
const INPUT_POLL: Duration = Duration::from_millis(200);
/// How long quitting waits for the input thread; one stuck inside crossterm is left to the process exit.
const INPUT_JOIN: Duration = Duration::from_millis(500);

/// What the input thread reports.
pub(super) enum Input {
    Event(Event),
    /// The terminal hung up or was closed.
    Gone(&'static str),
}

/// crossterm's blocking reader on its own thread (the `event-stream` feature is not enabled). The thread waits on
/// the terminal itself and lets crossterm read only when there is input, so a hung-up terminal ends the thread
/// instead of spinning inside crossterm. Idle, it costs a `poll` wake-up every `INPUT_POLL`.
pub(super) struct InputThread {
    pub(super) rx: mpsc::UnboundedReceiver<Input>,
    pub(super) open: bool,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl InputThread {
    pub(super) fn spawn() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("console-input".into())
            .spawn(move || read_keys(&tx, &flag))
            .ok();
        Self {
            open: handle.is_some(),
            rx,
            stop,
            handle,
        }
    }

    /// Stops the reader before the terminal is restored, so it cannot swallow keys meant for the shell. A reader
    /// stuck inside crossterm (input arrived just as the terminal hung up) is not waited for.
    pub(super) async fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let join = tokio::task::spawn_blocking(move || h.join());
            let _ = tokio::time::timeout(INPUT_JOIN, join).await;
        }
    }
}

fn read_keys(tx: &mpsc::UnboundedSender<Input>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match tty::wait_readable(INPUT_POLL) {
            Readiness::Idle => {}
            Readiness::Gone(why) => {
                let _ = tx.send(Input::Gone(why));
                return;
            }
            Readiness::Readable => {
                // One read is safe now; then take whatever crossterm already parsed or can read without waiting.
                let mut next = crossterm::event::read();
                loop {
                    match next {
                        Ok(ev) => {
                            if tx.send(Input::Event(ev)).is_err() {
                                return;
                            }
                        }
                        Err(_) => {
                            let _ = tx.send(Input::Gone(READ_FAILED));
                            return;
                        }
                    }
                    match crossterm::event::poll(Duration::ZERO) {
                        Ok(true) => next = crossterm::event::read(),
                        Ok(false) => break,
                        Err(_) => {
                            let _ = tx.send(Input::Gone(READ_FAILED));
                            return;
                        }
                    }
                }
            }
        }
    }
}

const READ_FAILED: &str = "the terminal cannot be read";
