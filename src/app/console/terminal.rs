//! The console's terminal: raw mode on the alternate screen, drawing, and restoring it on every way out (drop,
//! a hung-up terminal, a panic).

use std::io::{self, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::Terminal;

use crate::app::signals::Shutdown;
use crate::ui::model::Model;
use crate::ui::view;

/// Set while the terminal is in raw mode on the alternate screen, so the panic hook knows to restore it.
static TERMINAL_ACTIVE: AtomicBool = AtomicBool::new(false);

pub(super) fn restore_terminal() {
    if TERMINAL_ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = disable_raw_mode();
        let _ = execute!(io::stdout(), LeaveAlternateScreen, crossterm::cursor::Show);
    }
}

/// The terminal in raw mode on the alternate screen; restored on drop, and by the panic hook. No mouse capture:
/// operators must be able to select and copy log text.
pub(super) struct Term {
    terminal: Terminal<CrosstermBackend<Stdout>>,
    /// The terminal hung up: nothing is drawn any more.
    gone: bool,
}

impl Term {
    pub(super) fn enter(cancel_grace: Duration) -> anyhow::Result<Self> {
        install_panic_hook(cancel_grace);
        enable_raw_mode().context("cannot switch the terminal to raw mode")?;
        TERMINAL_ACTIVE.store(true, Ordering::SeqCst);
        let setup = execute!(io::stdout(), EnterAlternateScreen)
            .context("cannot enter the alternate screen")
            .and_then(|()| {
                Terminal::new(CrosstermBackend::new(io::stdout()))
                    .context("cannot set up the terminal")
            });
        match setup {
            Ok(terminal) => Ok(Self {
                terminal,
                gone: false,
            }),
            Err(e) => {
                restore_terminal();
                Err(e)
            }
        }
    }

    /// The operator is gone: stop drawing and stop as if SIGHUP arrived (runs cancelled, exit 129).
    pub(super) fn lost(&mut self, why: &str, shutdown: &Shutdown) {
        if !self.gone {
            self.gone = true;
            tracing::warn!(target: "sync", "{why}: cancelling runs and exiting");
            shutdown.hang_up();
        }
    }

    pub(super) fn draw(&mut self, model: &mut Model) -> anyhow::Result<()> {
        if self.gone {
            return Ok(());
        }
        let size = self
            .terminal
            .size()
            .context("cannot read the terminal size")?;
        let area = Rect::new(0, 0, size.width, size.height);
        model.log_rows = view::log_rows(area, model);
        model.overlay_rows = view::overlay_rows(area, model);
        let now = chrono::Utc::now();
        self.terminal
            .draw(|f| view::render(f, model, now))
            .context("cannot draw the console")?;
        Ok(())
    }
}

impl Term {
    /// Restores the terminal, or, when it is gone, forgets it: there is nothing to restore, and ratatui's drop
    /// would report the failure to show the cursor with `eprintln!`, which panics on a hung-up stderr.
    pub(super) fn close(self) {
        if self.gone {
            TERMINAL_ACTIVE.store(false, Ordering::SeqCst);
            std::mem::forget(self);
        }
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// A panic anywhere (a tokio task included) would leave the terminal raw while the UI keeps drawing: restore it,
/// report the panic as usual, stop every Sling process group as a cancel does (SIGINT, SIGKILL after the grace), and
/// exit 1. `process::exit` runs no destructor: without the stop, Sling would outlive the run lock, and a second run
/// could write to the same target at the same time.
fn install_panic_hook(cancel_grace: Duration) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
        crate::sync::sling::stop_all_children(cancel_grace);
        std::process::exit(1);
    }));
}
