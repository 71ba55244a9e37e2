//! The interactive console's terminal shell (filled in by the console work).

use std::sync::Arc;

use anyhow::bail;

use super::settings::Settings;
use super::signals::Shutdown;
use crate::sync::pipeline::Pipeline;
use crate::sync::Engine;
use crate::telemetry::ExportHealth;

/// Everything the console needs from `main`.
pub struct ConsoleContext {
    pub engine: Engine,
    pub pipelines: Vec<Pipeline>,
    pub settings: Settings,
    pub health: Arc<ExportHealth>,
    pub shutdown: Shutdown,
}

/// Runs the console until the operator quits; returns the process exit code.
pub async fn run(ctx: ConsoleContext) -> anyhow::Result<i32> {
    let _ = ctx;
    bail!("the interactive console is not built yet; use --batch")
}
