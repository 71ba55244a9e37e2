//! The operator console: model (plain data), keys and input (keys → actions → commands), views (pure rendering).
//! The terminal and the event loop live in `app::console`.

pub mod describe;
mod fold;
pub mod input;
pub mod keys;
pub mod logbuf;
pub mod model;
pub mod view;
