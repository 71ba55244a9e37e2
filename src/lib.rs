//! sling-sync-wrapper: copies database tables from a mission cluster to the command cluster with the Sling CLI,
//! headless (`--batch`) or from an operator console, and reports every job to OpenTelemetry.

pub mod app;
pub mod sync;
pub mod telemetry;
pub mod ui;
