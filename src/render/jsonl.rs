//! JSON Lines: one object per violation, fields as in
//! `docs/output-formats.md` (the same objects as the JSON document's
//! `violations`).

use std::io::{self, Write};

use crate::explain::Violation;

/// Writes one line per violation.
pub fn render(violations: &[Violation], out: &mut dyn Write) -> io::Result<()> {
    for violation in violations {
        serde_json::to_writer(&mut *out, violation).map_err(io::Error::other)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
