//! bangfu: a declarative policy-rules engine.
#![warn(missing_docs)]

pub mod data;
pub mod diag;
pub mod source;
