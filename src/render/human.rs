//! Human-readable text, grouped by rule, with counts.

use std::io::{self, Write};

use crate::explain::{Location, Summary, Violation};

fn place(location: &Location) -> String {
    match location.row {
        Some(row) => format!("{} row {row}", location.file),
        None => format!("{}:{}:{}", location.file, location.line, location.column),
    }
}

/// Writes the violations grouped by rule, then a summary line.
pub fn render(violations: &[Violation], summary: &Summary, out: &mut dyn Write) -> io::Result<()> {
    let mut start = 0;
    while start < violations.len() {
        let rule = &violations[start].rule;
        let end = violations[start..]
            .iter()
            .position(|v| &v.rule != rule)
            .map_or(violations.len(), |n| start + n);
        let first = &violations[start];
        let count = end - start;
        writeln!(
            out,
            "{} {} — {} ({count} violation{})",
            first.severity.as_str(),
            first.rule,
            first.title,
            if count == 1 { "" } else { "s" }
        )?;
        for violation in &violations[start..end] {
            writeln!(
                out,
                "  {} {}: {}",
                violation.entity, violation.key, violation.message
            )?;
            if let Some(waiver) = &violation.waiver {
                writeln!(
                    out,
                    "    waived until {}: {} (approved by {})",
                    waiver.expires, waiver.reason, waiver.approved_by
                )?;
            }
            if let Some(location) = &violation.location {
                writeln!(out, "    at {}", place(location))?;
            }
        }
        writeln!(out)?;
        start = end;
    }
    let rules_with = summary.by_rule.iter().filter(|(_, n)| *n > 0).count();
    writeln!(
        out,
        "{} violation{} ({} error, {} warning, {} info) in {rules_with} of {} rules, {} records checked",
        summary.violations,
        if summary.violations == 1 { "" } else { "s" },
        summary.errors,
        summary.warnings,
        summary.infos,
        summary.rules,
        summary.records
    )
}
