//! JSON: one document with the violations and the summary.

use std::io::{self, Write};

use serde::Serialize;

use crate::explain::{Summary, Violation};

#[derive(Serialize)]
struct Document<'a> {
    violations: &'a [Violation],
    summary: &'a Summary,
}

/// Writes the document, pretty-printed, with a final newline.
pub fn render(violations: &[Violation], summary: &Summary, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(
        &mut *out,
        &Document {
            violations,
            summary,
        },
    )
    .map_err(io::Error::other)?;
    out.write_all(b"\n")
}
