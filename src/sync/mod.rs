//! The sync engine: runs Sling replications ("pipelines") with retries, locks and history, and reports typed events.
//! It knows nothing about terminals or exporters.

pub mod engine;
pub mod event;
pub mod metrics;
pub mod pipeline;
pub mod pipeline_name;
pub mod redact;
pub mod retry;
pub mod sling;
pub mod sling_log;
pub mod state;

pub use engine::{ChildEnv, Engine, EngineConfig, JobSpec};
pub use event::{
    Command, EventSink, EventStream, JobReport, Mode, PipelineReport, Status, SyncEvent,
};
