//! The issue ledger as an Excel workbook: a `summary` sheet first (counts
//! per first path step and rule, then overall counts), then one sheet per
//! policy with the same columns as the CSV ledger.
//!
//! The workbook is built in memory and written as one buffer; it is binary,
//! so the command line only writes it to a file.

use std::collections::HashMap;
use std::io::{self, Write};

use rust_xlsxwriter::{Format as CellFormat, Workbook, Worksheet, XlsxError};

use super::{LEDGER_COLUMNS, Report, ledger_row, path_labels, plural};
use crate::explain::Violation;

/// Name of the summary sheet.
pub const SUMMARY_SHEET: &str = "summary";

/// Row label for violations whose entity has no path.
pub const NO_PATH: &str = "(no path)";

/// Excel's last row index (1,048,576 rows).
const MAX_ROW: u32 = 1_048_575;

/// Writes the workbook.
pub fn render(report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    let bytes = workbook(report)
        .and_then(|mut workbook| workbook.save_to_buffer())
        .map_err(io::Error::other)?;
    out.write_all(&bytes)
}

fn workbook(report: &Report<'_>) -> Result<Workbook, XlsxError> {
    let mut workbook = Workbook::new();
    let bold = CellFormat::new().set_bold();
    let mut names: Vec<String> = vec![SUMMARY_SHEET.to_string()];
    write_summary(report, workbook.add_worksheet(), &bold)?;

    let mut policies: Vec<&str> = Vec::new();
    for policy in report
        .rules
        .iter()
        .map(|rule| rule.policy.as_str())
        .chain(report.violations.iter().map(|v| &*v.policy))
    {
        if !policies.contains(&policy) {
            policies.push(policy);
        }
    }
    let shown = report.shown();
    let labels = path_labels(shown);
    for policy in policies {
        let name = sheet_name(policy, &names);
        names.push(name.clone());
        let sheet = workbook.add_worksheet();
        sheet.set_name(name)?;
        let rows: Vec<&Violation> = shown.iter().filter(|v| &*v.policy == policy).collect();
        write_ledger(sheet, &labels, &rows, &bold)?;
    }
    Ok(workbook)
}

fn write_ledger(
    sheet: &mut Worksheet,
    labels: &[String],
    rows: &[&Violation],
    bold: &CellFormat,
) -> Result<(), XlsxError> {
    let header: Vec<&str> = labels
        .iter()
        .map(String::as_str)
        .chain(LEDGER_COLUMNS)
        .collect();
    for (col, name) in header.iter().enumerate() {
        sheet.write_string_with_format(0, col as u16, *name, bold)?;
    }
    let line_col = header.len() - 2;
    let last_col = header.len() - 1;
    let mut row_idx = 0u32;
    for violation in rows {
        if row_idx + 1 == MAX_ROW {
            let left = rows.len() - row_idx as usize;
            sheet.write_string(
                MAX_ROW,
                0,
                format!(
                    "… {} not shown: the sheet is full",
                    plural(left, "more violation")
                ),
            )?;
            break;
        }
        row_idx += 1;
        for (col, cell) in ledger_row(violation, labels).into_iter().enumerate() {
            // Line numbers are numbers, so the ledger sorts by them.
            match cell.parse::<f64>() {
                Ok(number) if col == line_col => {
                    sheet.write_number(row_idx, col as u16, number)?;
                }
                _ => {
                    sheet.write_string(row_idx, col as u16, cell)?;
                }
            }
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    sheet.autofilter(0, 0, row_idx, last_col as u16)?;
    sheet.autofit();
    Ok(())
}

fn write_summary(
    report: &Report<'_>,
    sheet: &mut Worksheet,
    bold: &CellFormat,
) -> Result<(), XlsxError> {
    sheet.set_name(SUMMARY_SHEET)?;
    let violations = report.violations;
    let mut rules: Vec<&str> = report.rules.iter().map(|rule| rule.id.as_str()).collect();
    for violation in violations {
        if !rules.contains(&&*violation.rule) {
            rules.push(&violation.rule);
        }
    }
    let mut first_labels: Vec<&str> = Vec::new();
    let mut steps: Vec<&str> = Vec::new();
    let mut step_index: HashMap<&str, usize> = HashMap::new();
    let rule_index: HashMap<&str, usize> = rules
        .iter()
        .enumerate()
        .map(|(idx, rule)| (*rule, idx))
        .collect();
    // counts[step][rule], filled in one pass over the violations.
    let mut counts: Vec<Vec<usize>> = Vec::new();
    for violation in violations {
        let step = match violation.path.first() {
            Some(step) => {
                if !first_labels.contains(&&*step.label) {
                    first_labels.push(&step.label);
                }
                step.value.as_str()
            }
            None => NO_PATH,
        };
        let step_idx = *step_index.entry(step).or_insert_with(|| {
            steps.push(step);
            counts.push(vec![0; rules.len()]);
            steps.len() - 1
        });
        counts[step_idx][rule_index[&*violation.rule]] += 1;
    }
    let corner = match first_labels.as_slice() {
        [label] => *label,
        _ => "path",
    };
    sheet.write_string_with_format(0, 0, corner, bold)?;
    for (col, rule) in rules.iter().enumerate() {
        sheet.write_string_with_format(0, col as u16 + 1, *rule, bold)?;
    }
    let total_col = rules.len() as u16 + 1;
    sheet.write_string_with_format(0, total_col, "total", bold)?;
    let mut rule_totals = vec![0usize; rules.len()];
    for (step_idx, step) in steps.iter().enumerate() {
        let row = step_idx as u32 + 1;
        sheet.write_string(row, 0, *step)?;
        for (col, n) in counts[step_idx].iter().enumerate() {
            rule_totals[col] += n;
            sheet.write_number(row, col as u16 + 1, *n as f64)?;
        }
        let total: usize = counts[step_idx].iter().sum();
        sheet.write_number(row, total_col, total as f64)?;
    }
    let totals_row = steps.len() as u32 + 1;
    sheet.write_string_with_format(totals_row, 0, "total", bold)?;
    for (col, n) in rule_totals.iter().enumerate() {
        sheet.write_number_with_format(totals_row, col as u16 + 1, *n as f64, bold)?;
    }
    sheet.write_number_with_format(totals_row, total_col, violations.len() as f64, bold)?;

    let summary = report.summary;
    let overall = [
        ("records", summary.records),
        ("rules", summary.rules),
        ("violations", summary.violations),
        ("errors", summary.errors),
        ("warnings", summary.warnings),
        ("infos", summary.infos),
        (
            "waived",
            violations.iter().filter(|v| v.is_waived()).count(),
        ),
        ("not shown", report.omitted()),
    ];
    for (idx, (name, n)) in overall.iter().enumerate() {
        let row = totals_row + 2 + idx as u32;
        sheet.write_string_with_format(row, 0, *name, bold)?;
        sheet.write_number(row, 1, *n as f64)?;
    }
    sheet.set_freeze_panes(1, 1)?;
    sheet.autofit();
    Ok(())
}

/// A valid, unused sheet name for a policy: Excel forbids `[]:*?/\`, names
/// longer than 31 characters, and repeats regardless of case.
pub fn sheet_name(policy: &str, used: &[String]) -> String {
    let cleaned: String = policy
        .chars()
        .map(|c| if "[]:*?/\\".contains(c) { '_' } else { c })
        .collect();
    let cleaned = cleaned.trim_matches('\'');
    let base: String = if cleaned.is_empty() || cleaned.eq_ignore_ascii_case("history") {
        format!("policy {cleaned}").chars().take(31).collect()
    } else {
        cleaned.chars().take(31).collect()
    };
    let taken = |name: &str| used.iter().any(|u| u.to_lowercase() == name.to_lowercase());
    if !taken(&base) {
        return base;
    }
    (2..)
        .map(|n| {
            let suffix = format!(" ({n})");
            let keep = 31 - suffix.chars().count();
            format!("{}{suffix}", base.chars().take(keep).collect::<String>())
        })
        .find(|name| !taken(name))
        .unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::sheet_name;

    #[test]
    fn sheet_names_are_valid_and_unique() {
        let used = vec!["summary".to_string()];
        assert_eq!(sheet_name("Summary", &used), "Summary (2)");
        assert_eq!(sheet_name("a/b:c", &used), "a_b_c");
        assert_eq!(sheet_name("History", &used), "policy History");
        assert_eq!(sheet_name(&"x".repeat(40), &used).chars().count(), 31);
        assert_eq!(sheet_name("规则", &used), "规则");
    }
}
