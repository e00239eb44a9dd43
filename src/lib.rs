//! bangfu: a declarative policy-rules engine.
#![warn(missing_docs)]

pub mod data;
pub mod diag;
pub mod source;
pub mod ast;
pub mod syntax;
pub mod check;
pub mod resolve;
pub mod value;
