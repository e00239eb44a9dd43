//! JSON: one document with the violations shown, how many were left out,
//! and the summary of the whole run. Field names are stable and documented
//! in `docs/output-formats.md`.

use std::io::{self, Write};

use serde::Serialize;

use super::Report;
use crate::explain::{Summary, Violation};

/// Version of the document's shape; raised when a field changes meaning or
/// goes away (new fields may appear without it).
pub const DOCUMENT_VERSION: u32 = 1;

#[derive(Serialize)]
struct Document<'a> {
    version: u32,
    violations: &'a [Violation],
    omitted: usize,
    summary: &'a Summary,
}

/// Writes the document, pretty-printed, with a final newline.
pub fn render(report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(
        &mut *out,
        &Document {
            version: DOCUMENT_VERSION,
            violations: report.shown(),
            omitted: report.omitted(),
            summary: report.summary,
        },
    )
    .map_err(io::Error::other)?;
    out.write_all(b"\n")
}
