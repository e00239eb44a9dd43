//! GitHub Actions workflow commands: one `::error`, `::warning` or
//! `::notice` annotation per violation, at the record in the data file (or
//! at the policy condition for a violation without a record); a waived
//! violation is a `::notice` whatever its severity.
//!
//! Escaping follows GitHub's rules for workflow commands: in the message
//! `%`, `\r` and `\n` are percent-encoded; in property values `:` and `,`
//! are too.

use std::io::{self, Write};

use super::{Report, path_text, plural};
use crate::diag::Severity;

/// The command for a severity.
pub fn command(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "notice",
    }
}

/// Escapes a command's message.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property value (`file=…`, `title=…`).
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// Writes one command per violation shown, then a notice when some were
/// left out.
pub fn render(report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    for violation in report.shown() {
        let location = violation
            .location
            .as_ref()
            .unwrap_or(&violation.policy_location);
        let title = format!("{} {}", violation.rule, violation.title);
        let mut message = format!(
            "{} {}: {}",
            violation.entity, violation.key, violation.message
        );
        if let Some(path) = path_text(&violation.path) {
            message.push_str(&format!("\npath: {path}"));
        }
        if let Some(terms) = crate::render::terms_text(&violation.terms) {
            message.push_str(&format!("\nvalues: {terms}"));
        }
        if let Some(suggestion) = &violation.suggestion {
            message.push_str(&format!("\nfix: {suggestion}"));
        }
        // A waived violation does not fail the run, so it is only a notice.
        let command = match &violation.waiver {
            Some(waiver) => {
                message.push_str(&format!(
                    "\nwaived until {}: {} (approved by {})",
                    waiver.expires, waiver.reason, waiver.approved_by
                ));
                "notice"
            }
            None => command(violation.severity),
        };
        writeln!(
            out,
            "::{} file={},line={},col={},title={}::{}",
            command,
            escape_property(&location.file),
            location.line,
            location.column,
            escape_property(&title),
            escape_data(&message)
        )?;
    }
    let omitted = report.omitted();
    if omitted > 0 {
        writeln!(
            out,
            "::notice title={}::{}",
            escape_property(&report.tool.name),
            escape_data(&format!("{} not shown", plural(omitted, "more violation")))
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_per_workflow_command_rules() {
        assert_eq!(escape_data("50% a\r\nb: c, d"), "50%25 a%0D%0Ab: c, d");
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
    }
}
