//! Human-readable text: violations grouped by rule, each with its entity,
//! path, message, data position and the policy condition it failed (both
//! quoted from the source), the deciding values and the suggested fix; then
//! counts per policy, per first path step, and overall.
//!
//! Colour is a flag: the caller decides whether the output is a terminal.

use std::io::{self, Write};

use anstyle::{AnsiColor, Effects, Style};
use unicode_width::UnicodeWidthStr;

use super::{Report, Snippet, group_by, path_text, place, plural, severity_counts};
use crate::diag::Severity;
use crate::explain::{Location, Violation};

/// Styles, or none of them when colour is off.
struct Paint {
    color: bool,
}

impl Paint {
    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_string()
        }
    }

    fn severity(&self, severity: Severity, text: &str) -> String {
        self.paint(severity_style(severity).effects(Effects::BOLD), text)
    }

    fn bold(&self, text: &str) -> String {
        self.paint(Style::new().effects(Effects::BOLD), text)
    }

    fn gutter(&self, text: &str) -> String {
        self.paint(AnsiColor::Blue.on_default().effects(Effects::BOLD), text)
    }

    fn dim(&self, text: &str) -> String {
        self.paint(Style::new().effects(Effects::DIMMED), text)
    }

    fn waived(&self, text: &str) -> String {
        self.paint(AnsiColor::Cyan.on_default().effects(Effects::BOLD), text)
    }

    fn fix(&self, text: &str) -> String {
        self.paint(AnsiColor::Green.on_default().effects(Effects::BOLD), text)
    }
}

fn severity_style(severity: Severity) -> Style {
    match severity {
        Severity::Error => AnsiColor::Red.on_default(),
        Severity::Warning => AnsiColor::Yellow.on_default(),
        Severity::Info => AnsiColor::Cyan.on_default(),
    }
}

/// Writes the violations grouped by rule, then the summaries.
pub fn render(report: &Report<'_>, color: bool, out: &mut dyn Write) -> io::Result<()> {
    let paint = Paint { color };
    for (_, group) in group_by(report.shown(), |v| &*v.rule) {
        write_rule(report, &paint, &group, out)?;
    }
    let omitted = report.omitted();
    if omitted > 0 {
        writeln!(out, "… {} not shown\n", plural(omitted, "more violation"))?;
    }
    write_summary(report, &paint, out)
}

fn write_rule(
    report: &Report<'_>,
    paint: &Paint,
    group: &[&Violation],
    out: &mut dyn Write,
) -> io::Result<()> {
    let first = group[0];
    let total = report
        .summary
        .by_rule
        .iter()
        .find(|(id, _)| **id == *first.rule)
        .map_or(group.len(), |(_, n)| (*n).max(group.len()));
    let shown = if total > group.len() {
        format!("{}, {} shown", plural(total, "violation"), group.len())
    } else {
        plural(total, "violation")
    };
    writeln!(
        out,
        "{}{} {} ({shown})",
        paint.severity(first.severity, first.severity.as_str()),
        paint.bold(&format!("[{}]", first.rule)),
        paint.bold(&first.title),
    )?;
    let mut about = format!("  policy {}", first.policy);
    for source in first.sources.iter() {
        about.push_str(" · ");
        about.push_str(source);
    }
    writeln!(out, "{}", paint.dim(&about))?;
    // Params belong to the policy, so they are the same for every violation
    // of the rule: shown once here, and under a violation only if different.
    if !first.params.is_empty() {
        writeln!(
            out,
            "{}",
            paint.dim(&format!("  params {}", params_text(first)))
        )?;
    }
    // Most violations of a rule fail the same condition: quote it once here,
    // and under a violation only when that one failed another.
    let condition = &first.policy_location;
    let condition_snippet = snippet(report, condition);
    let width = condition_snippet.map_or(0, |_| condition.line.to_string().len());
    write_quote(
        paint,
        first.severity,
        condition,
        condition_snippet,
        "condition failed",
        width,
        out,
    )?;
    for violation in group {
        writeln!(out)?;
        write_violation(report, paint, violation, first, out)?;
    }
    writeln!(out)
}

fn write_violation(
    report: &Report<'_>,
    paint: &Paint,
    violation: &Violation,
    first: &Violation,
    out: &mut dyn Write,
) -> io::Result<()> {
    let condition = &first.policy_location;
    let mut entity = format!("{} {}", violation.entity, violation.key);
    if let Some(path) = path_text(&violation.path) {
        entity.push_str(" · ");
        entity.push_str(&path);
    }
    writeln!(out, "  {}", paint.bold(&entity))?;
    for line in violation.message.lines() {
        writeln!(out, "    {line}")?;
    }
    let data_snippet = violation
        .location
        .as_ref()
        .map(|location| (location, snippet(report, location)));
    let policy_snippet = (violation.policy_location != *condition).then(|| {
        (
            &violation.policy_location,
            snippet(report, &violation.policy_location),
        )
    });
    let width = data_snippet
        .iter()
        .chain(policy_snippet.iter())
        .filter(|(_, snippet)| snippet.is_some())
        .map(|(location, _)| location.line.to_string().len())
        .max()
        .unwrap_or(0);
    if let Some((location, snippet)) = data_snippet {
        write_quote(
            paint,
            violation.severity,
            location,
            snippet,
            "record",
            width,
            out,
        )?;
    }
    if let Some((location, snippet)) = policy_snippet {
        write_quote(
            paint,
            violation.severity,
            location,
            snippet,
            "condition failed",
            width,
            out,
        )?;
    }
    if !violation.terms.is_empty() {
        let terms: Vec<String> = violation
            .terms
            .iter()
            .map(|term| match &term.origin {
                Some(origin) => format!("{} = {} ({origin})", term.expr, term.value),
                None => format!("{} = {}", term.expr, term.value),
            })
            .collect();
        writeln!(
            out,
            "    {} values: {}",
            paint.gutter("="),
            terms.join(", ")
        )?;
    }
    if violation.params != first.params && !violation.params.is_empty() {
        writeln!(
            out,
            "    {} params: {}",
            paint.gutter("="),
            params_text(violation)
        )?;
    }
    if let Some(suggestion) = &violation.suggestion {
        writeln!(out, "    {} {suggestion}", paint.fix("fix:"))?;
    }
    if let Some(waiver) = &violation.waiver {
        writeln!(
            out,
            "    {} until {}: {} (approved by {})",
            paint.waived("waived"),
            waiver.expires,
            waiver.reason,
            waiver.approved_by
        )?;
    }
    Ok(())
}

fn params_text(violation: &Violation) -> String {
    violation
        .params
        .iter()
        .map(|param| format!("{} = {} ({})", param.name, param.value, param.origin))
        .collect::<Vec<_>>()
        .join(", ")
}

fn snippet<'a>(report: &Report<'a>, location: &Location) -> Option<&'a Snippet> {
    report
        .snippets
        .get(&location.file, location.line, location.column)
}

/// `--> file:line:col`, then the quoted line with a marker under the
/// position when the line was collected.
fn write_quote(
    paint: &Paint,
    severity: Severity,
    location: &Location,
    snippet: Option<&Snippet>,
    label: &str,
    width: usize,
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(out, "    {} {}", paint.gutter("-->"), place(location))?;
    let Some(snippet) = snippet else {
        return Ok(());
    };
    let blank = " ".repeat(width);
    let number = format!("{:>width$}", location.line);
    writeln!(out, "    {} {}", blank, paint.gutter("|"))?;
    writeln!(
        out,
        "    {} {} {}",
        paint.gutter(&number),
        paint.gutter("|"),
        snippet.text
    )?;
    let before: String = snippet.text.chars().take(snippet.caret).collect();
    let pad = " ".repeat(before.width());
    // The record marker is one caret at the record's start; a condition is
    // underlined to the end of its line, since a violation carries only the
    // condition's start.
    let marked = if label == "record" {
        "^".to_string()
    } else {
        let rest: String = snippet.text.chars().skip(snippet.caret).collect();
        "^".repeat(rest.trim_end().width().max(1))
    };
    writeln!(
        out,
        "    {} {} {pad}{}",
        blank,
        paint.gutter("|"),
        paint.paint(
            severity_style(severity).effects(Effects::BOLD),
            &format!("{marked} {label}")
        )
    )
}

fn write_summary(report: &Report<'_>, paint: &Paint, out: &mut dyn Write) -> io::Result<()> {
    let violations = report.violations;
    // Per policy: every policy that ran, violations or not.
    let mut policies: Vec<&str> = Vec::new();
    for name in report
        .rules
        .iter()
        .map(|rule| rule.policy.as_str())
        .chain(violations.iter().map(|v| &*v.policy))
    {
        if !policies.contains(&name) {
            policies.push(name);
        }
    }
    if !policies.is_empty() {
        writeln!(out, "{}", paint.bold("by policy"))?;
        let width = policies.iter().map(|p| p.width()).max().unwrap_or(0);
        for policy in &policies {
            let counts = severity_counts(violations.iter().filter(|v| &*v.policy == *policy));
            let line = format!(
                "  {}{}  {}",
                policy,
                " ".repeat(width - policy.width()),
                count_line(counts)
            );
            writeln!(out, "{line}")?;
        }
    }
    let with_path: Vec<_> = group_by(violations, |v| v.path.first().map(|step| &*step.label))
        .into_iter()
        .filter_map(|(label, group)| label.map(|label| (label, group)))
        .collect();
    for (label, group) in with_path {
        writeln!(out, "{}", paint.bold(&format!("by {label}")))?;
        let by_value = group_by(group.iter().copied(), |v| {
            v.path.first().map_or("", |step| step.value.as_str())
        });
        let width = by_value.iter().map(|(v, _)| v.width()).max().unwrap_or(0);
        for (value, members) in by_value {
            let counts = severity_counts(members.iter().copied());
            writeln!(
                out,
                "  {value}{}  {}",
                " ".repeat(width - value.width()),
                count_line(counts)
            )?;
        }
    }
    let summary = report.summary;
    let rules_with = summary.by_rule.iter().filter(|(_, n)| *n > 0).count();
    let counts = [summary.errors, summary.warnings, summary.infos];
    let n_waived = violations.iter().filter(|v| v.is_waived()).count();
    let waived = if n_waived > 0 {
        format!("; {n_waived} waived")
    } else {
        String::new()
    };
    let total = format!(
        "{} ({} error, {} warning, {} info{waived}) in {rules_with} of {} rules, {} records checked",
        plural(summary.violations, "violation"),
        counts[0],
        counts[1],
        counts[2],
        summary.rules,
        summary.records
    );
    let worst = if counts[0] > 0 {
        Some(Severity::Error)
    } else if counts[1] > 0 {
        Some(Severity::Warning)
    } else if counts[2] > 0 {
        Some(Severity::Info)
    } else {
        None
    };
    if !policies.is_empty() {
        writeln!(out)?;
    }
    match worst {
        Some(severity) => writeln!(out, "{}", paint.severity(severity, &total)),
        None => writeln!(out, "{}", paint.fix(&total)),
    }
}

fn count_line(counts: [usize; 3]) -> String {
    let total: usize = counts.iter().sum();
    if total == 0 {
        return "no violation".to_string();
    }
    let parts: Vec<String> = [
        ("error", counts[0]),
        ("warning", counts[1]),
        ("info", counts[2]),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(name, n)| {
        if name == "info" {
            format!("{n} info")
        } else {
            plural(n, name)
        }
    })
    .collect();
    format!("{} ({})", plural(total, "violation"), parts.join(", "))
}
