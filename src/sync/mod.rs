//! The sync engine: runs Sling replications ("pipelines") with retries, locks and history, and reports typed events.
//! It knows nothing about terminals or exporters (`tests/boundaries.rs` checks that no file here names one).

pub mod engine;
pub mod event;
pub(crate) mod metrics;
pub(crate) mod noop;
pub mod pipeline;
pub mod pipeline_name;
pub mod redact;
pub mod resolve;
pub mod retry;
pub mod schema_check;
pub(crate) mod sling;
pub mod sling_log;
pub mod spans;
pub mod state;
pub mod verify;

pub use engine::{Engine, EngineConfig, JobSpec};
pub use event::{
    Command, EventSink, EventStream, JobReport, Mode, PipelineReport, Status, SyncEvent,
};
pub use sling::ChildEnv;
