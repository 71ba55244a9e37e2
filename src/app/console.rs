//! The interactive console's terminal shell (filled in by the console work).

use anyhow::bail;

pub async fn run() -> anyhow::Result<i32> {
    bail!("the interactive console is not built yet; use --batch")
}
