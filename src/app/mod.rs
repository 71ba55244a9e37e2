//! The shell around the engine: flags and settings, batch mode, the console's terminal handling, signals.

pub mod batch;
pub mod cli;
pub mod console;
pub mod settings;
pub mod signals;
pub mod tty;
