//! The operator console: model, input and views.
