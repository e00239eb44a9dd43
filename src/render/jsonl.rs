//! JSON Lines: one object per violation, fields as in
//! `docs/output-formats.md` (the same objects as the JSON document's
//! `violations`).

use std::io::{self, Write};

use rayon::prelude::*;

use crate::explain::Violation;

/// Violations serialised by one task.
const BATCH: usize = 512;
/// Violations serialised before any is written: bounds the memory held in
/// buffers (about 20 MiB) while both cores serialise.
const WINDOW: usize = 32 * BATCH;

/// Writes one line per violation, in order. Lines are serialised in
/// parallel, a window at a time, and written in sequence.
pub fn render(violations: &[Violation], out: &mut dyn Write) -> io::Result<()> {
    for window in violations.chunks(WINDOW) {
        let buffers: Vec<io::Result<Vec<u8>>> = window
            .par_chunks(BATCH)
            .map(|batch| {
                let mut buffer = Vec::with_capacity(batch.len() * 1024);
                lines(batch, &mut buffer)?;
                Ok(buffer)
            })
            .collect();
        for buffer in buffers {
            out.write_all(&buffer?)?;
        }
    }
    Ok(())
}

/// Appends one line per violation to `buffer`.
pub fn lines(violations: &[Violation], buffer: &mut Vec<u8>) -> io::Result<()> {
    for violation in violations {
        serde_json::to_writer(&mut *buffer, violation).map_err(io::Error::other)?;
        buffer.push(b'\n');
    }
    Ok(())
}
