//! The issue ledger as CSV: one row per violation; a column per path label
//! (in order of first appearance), then the columns of
//! [`LEDGER_COLUMNS`](super::LEDGER_COLUMNS). UTF-8 with a byte-order mark,
//! so spreadsheet programs read non-ASCII text correctly.

use std::io::{self, Write};

use super::{LEDGER_COLUMNS, ledger_row, path_labels};
use crate::explain::Violation;

/// The UTF-8 byte-order mark.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Writes the BOM, the header row and one row per violation.
pub fn render(violations: &[Violation], out: &mut dyn Write) -> io::Result<()> {
    out.write_all(BOM)?;
    let labels = path_labels(violations);
    let mut writer = csv::Writer::from_writer(&mut *out);
    let header: Vec<&str> = labels
        .iter()
        .map(String::as_str)
        .chain(LEDGER_COLUMNS)
        .collect();
    writer.write_record(&header).map_err(io::Error::other)?;
    for violation in violations {
        writer
            .write_record(ledger_row(violation, &labels))
            .map_err(io::Error::other)?;
    }
    writer.flush()
}
