//! JUnit XML: `<testsuites>` holding one `<testsuite>` per policy and one
//! `<testcase>` per rule that ran; a rule with violations fails, and its
//! `<failure>` lists them. Waived violations do not fail a rule; they are
//! listed in the test case's `<system-out>`. CI systems show this as a test
//! report.

use std::io::{self, Write};

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use super::{Report, path_text, place, plural};
use crate::diag::Severity;
use crate::explain::{Location, Violation};

/// One test case: a rule, with its violations (all of them, and those shown).
struct Case<'a> {
    id: &'a str,
    policy: &'a str,
    severity: Severity,
    location: Option<&'a Location>,
    n_violations: usize,
    n_waived: usize,
    shown: Vec<&'a Violation>,
}

impl Case<'_> {
    fn fails(&self) -> bool {
        self.n_violations > self.n_waived
    }
}

/// XML 1.0 cannot hold most control characters even escaped; data text can.
fn xml_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

fn cases<'a>(report: &Report<'a>) -> Vec<Case<'a>> {
    let mut cases: Vec<Case<'a>> = report
        .rules
        .iter()
        .map(|rule| Case {
            id: &rule.id,
            policy: &rule.policy,
            severity: rule.severity,
            location: Some(&rule.location),
            n_violations: 0,
            n_waived: 0,
            shown: Vec::new(),
        })
        .collect();
    let n_shown = report.shown().len();
    for (idx, violation) in report.violations.iter().enumerate() {
        let case_idx = match cases.iter().position(|case| *case.id == *violation.rule) {
            Some(case_idx) => case_idx,
            None => {
                cases.push(Case {
                    id: &violation.rule,
                    policy: &violation.policy,
                    severity: violation.severity,
                    location: None,
                    n_violations: 0,
                    n_waived: 0,
                    shown: Vec::new(),
                });
                cases.len() - 1
            }
        };
        cases[case_idx].n_violations += 1;
        if violation.is_waived() {
            cases[case_idx].n_waived += 1;
        }
        if idx < n_shown {
            cases[case_idx].shown.push(violation);
        }
    }
    cases
}

/// The shown violations that are waived (`waived`) or not, one block each,
/// and how many of that kind were left out.
fn violations_text(case: &Case<'_>, waived: bool) -> String {
    let mut text = String::from("\n");
    let mut n_shown = 0;
    for violation in case.shown.iter().filter(|v| v.is_waived() == waived) {
        n_shown += 1;
        text.push_str(&format!(
            "{} {}: {}\n",
            violation.entity, violation.key, violation.message
        ));
        if let Some(path) = path_text(&violation.path) {
            text.push_str(&format!("  path: {path}\n"));
        }
        if let Some(location) = &violation.location {
            text.push_str(&format!("  at {}\n", place(location)));
        }
        text.push_str(&format!(
            "  condition {}\n",
            place(&violation.policy_location)
        ));
        if let Some(terms) = crate::render::terms_text(&violation.terms) {
            text.push_str(&format!("  values: {terms}\n"));
        }
        if let Some(suggestion) = &violation.suggestion {
            text.push_str(&format!("  fix: {suggestion}\n"));
        }
        if let Some(waiver) = &violation.waiver {
            text.push_str(&format!(
                "  waived until {}: {} (approved by {})\n",
                waiver.expires, waiver.reason, waiver.approved_by
            ));
        }
    }
    let n_total = if waived {
        case.n_waived
    } else {
        case.n_violations - case.n_waived
    };
    let n_omitted = n_total - n_shown;
    if n_omitted > 0 {
        let what = if waived {
            "more waived violation"
        } else {
            "more violation"
        };
        text.push_str(&format!("… {} not shown\n", plural(n_omitted, what)));
    }
    xml_text(&text)
}

/// Writes the report, indented, with an XML declaration.
pub fn render(report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    let cases = cases(report);
    let mut policies: Vec<&str> = Vec::new();
    for case in &cases {
        if !policies.contains(&case.policy) {
            policies.push(case.policy);
        }
    }
    let n_failures = cases.iter().filter(|case| case.fails()).count();
    let mut writer = Writer::new_with_indent(&mut *out, b' ', 2);
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let n_tests = cases.len().to_string();
    let n_failures = n_failures.to_string();
    writer
        .create_element("testsuites")
        .with_attributes([
            ("name", report.tool.name.as_str()),
            ("tests", n_tests.as_str()),
            ("failures", n_failures.as_str()),
            ("errors", "0"),
        ])
        .write_inner_content(|writer| {
            for policy in &policies {
                let members: Vec<&Case<'_>> =
                    cases.iter().filter(|case| case.policy == *policy).collect();
                let n_tests = members.len().to_string();
                let n_failures = members
                    .iter()
                    .filter(|case| case.fails())
                    .count()
                    .to_string();
                let policy_name = xml_text(policy);
                writer
                    .create_element("testsuite")
                    .with_attributes([
                        ("name", policy_name.as_str()),
                        ("tests", n_tests.as_str()),
                        ("failures", n_failures.as_str()),
                        ("errors", "0"),
                        ("skipped", "0"),
                    ])
                    .write_inner_content(|writer| {
                        for case in &members {
                            write_case(writer, case)?;
                        }
                        Ok(())
                    })?;
            }
            Ok(())
        })?;
    out.write_all(b"\n")
}

fn write_case<W: Write>(writer: &mut Writer<W>, case: &Case<'_>) -> io::Result<()> {
    let id = xml_text(case.id);
    let policy = xml_text(case.policy);
    let file = case.location.map(|location| xml_text(&location.file));
    let line = case.location.map(|location| location.line.to_string());
    let mut element = writer
        .create_element("testcase")
        .with_attributes([("name", id.as_str()), ("classname", policy.as_str())]);
    if let (Some(file), Some(line)) = (&file, &line) {
        element = element.with_attributes([("file", file.as_str()), ("line", line.as_str())]);
    }
    if case.n_violations == 0 {
        element.write_empty()?;
        return Ok(());
    }
    let n_failing = case.n_violations - case.n_waived;
    let message = plural(n_failing, "violation");
    element.write_inner_content(|writer| {
        if case.fails() {
            writer
                .create_element("failure")
                .with_attributes([
                    ("message", message.as_str()),
                    ("type", case.severity.as_str()),
                ])
                .write_text_content(BytesText::new(&violations_text(case, false)))?;
        }
        if case.n_waived > 0 {
            let waived = format!(
                "{}{}",
                plural(case.n_waived, "waived violation"),
                violations_text(case, true)
            );
            writer
                .create_element("system-out")
                .write_text_content(BytesText::new(&waived))?;
        }
        Ok(())
    })?;
    Ok(())
}
