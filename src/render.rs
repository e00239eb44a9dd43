//! Stage `render`: violations written in one output format.
//!
//! Takes finished [`Violation`]s and a [`Summary`]; writes bytes. One file per
//! format under `render/`.
//!
//! **Invariant:** only `render` knows output formats; it computes nothing
//! about rules or data.

pub mod human;
pub mod json;
pub mod jsonl;

use std::io::{self, Write};

use crate::explain::{Summary, Violation};

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Readable text, grouped by rule.
    Human,
    /// One JSON document: violations and summary.
    Json,
    /// One JSON object per line, one line per violation.
    Jsonl,
}

/// Writes `violations` in `format`.
pub fn render(
    format: Format,
    violations: &[Violation],
    summary: &Summary,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Human => human::render(violations, summary, out),
        Format::Json => json::render(violations, summary, out),
        Format::Jsonl => jsonl::render(violations, out),
    }
}
