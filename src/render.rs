//! Stage `render`: violations written in one output format.
//!
//! Takes a [`Report`] (finished [`Violation`]s, the [`Summary`], the rules
//! that ran and the source lines to quote) and writes bytes. One file per
//! format under `render/`: [`human`], [`json`], [`jsonl`], [`sarif`],
//! [`junit`], [`github`], [`csv`] and [`xlsx`].
//!
//! **Invariant:** only `render` knows output formats; it computes nothing
//! about rules or data, only groupings and counts of what it is given.
//! Renderers never decide about terminals or files: whether to colour and
//! where bytes go are the caller's choice.

pub mod csv;
pub mod github;
pub mod human;
pub mod json;
pub mod jsonl;
pub mod junit;
pub mod sarif;
pub mod xlsx;

use std::collections::HashMap;
use std::hash::Hash;
use std::io::{self, Write};

use crate::diag::Severity;
use crate::explain::{Location, PathStep, Summary, Violation};
use crate::source::SourceMap;

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Readable text, grouped by rule, with snippets and summaries.
    Human,
    /// One JSON document: violations and summary.
    Json,
    /// One JSON object per line, one line per violation.
    Jsonl,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
    /// JUnit XML: a test suite per policy, a test case per rule.
    Junit,
    /// GitHub Actions workflow commands (`::error file=…::…`).
    Github,
    /// The issue ledger as CSV (UTF-8 with a byte-order mark).
    Csv,
    /// The issue ledger as an Excel workbook.
    Xlsx,
}

impl Format {
    /// Whether the format is binary and so unfit for a terminal.
    pub fn is_binary(self) -> bool {
        self == Format::Xlsx
    }
}

/// A rule that ran, for formats that list passing rules too (SARIF's rule
/// table, JUnit's test cases, the workbook's sheets).
#[derive(Clone, Debug, PartialEq)]
pub struct RuleInfo {
    /// Rule id, `policy.rule`.
    pub id: String,
    /// Rule title.
    pub title: String,
    /// Policy name.
    pub policy: String,
    /// Severity.
    pub severity: Severity,
    /// The policy's source citations.
    pub sources: Vec<String>,
    /// Where the rule is declared.
    pub location: Location,
}

/// The program that produced a report, for formats that name it.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolInfo {
    /// Program name.
    pub name: String,
    /// Program version.
    pub version: String,
    /// Where to read about it, if known (an absolute URI).
    pub information_uri: Option<String>,
}

impl Default for ToolInfo {
    fn default() -> ToolInfo {
        let uri = [env!("CARGO_PKG_HOMEPAGE"), env!("CARGO_PKG_REPOSITORY")]
            .into_iter()
            .find(|uri| !uri.is_empty())
            .map(str::to_string);
        ToolInfo {
            name: env!("CARGO_PKG_NAME").to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            information_uri: uri,
        }
    }
}

/// Everything a renderer may show.
#[derive(Clone, Copy, Debug)]
pub struct Report<'a> {
    /// Every violation the run found.
    pub violations: &'a [Violation],
    /// Show at most this many (`--max-violations`); summaries still count
    /// them all.
    pub limit: Option<usize>,
    /// Counts over the whole run.
    pub summary: &'a Summary,
    /// The rules that ran, in rule order.
    pub rules: &'a [RuleInfo],
    /// Source lines to quote.
    pub snippets: &'a Snippets,
    /// The program.
    pub tool: &'a ToolInfo,
}

impl Report<'_> {
    /// The violations to show: the first [`Report::limit`] of them.
    pub fn shown(&self) -> &[Violation] {
        let n_shown = self.limit.map_or(self.violations.len(), |limit| {
            limit.min(self.violations.len())
        });
        &self.violations[..n_shown]
    }

    /// How many violations are not shown.
    pub fn omitted(&self) -> usize {
        self.violations.len() - self.shown().len()
    }
}

/// How to render.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Emit ANSI colours (human format only).
    pub color: bool,
}

/// Writes `report` in `format`.
pub fn render(
    format: Format,
    report: &Report<'_>,
    options: Options,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Human => human::render(report, options.color, out),
        Format::Json => json::render(report, out),
        Format::Jsonl => jsonl::render(report.shown(), out),
        Format::Sarif => sarif::render(report, out),
        Format::Junit => junit::render(report, out),
        Format::Github => github::render(report, out),
        Format::Csv => csv::render(report.shown(), out),
        Format::Xlsx => xlsx::render(report, out),
    }
}

/// One quoted source line, cut to a window around the position it shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snippet {
    /// The text shown, with `…` where the line was cut.
    pub text: String,
    /// 0-based character index in `text` of the position.
    pub caret: usize,
}

/// Source lines to quote, keyed by file, line and column.
///
/// Data files can hold a whole dataset on one line, so a snippet is a window
/// of at most [`Snippets::WIDTH`] characters around the column, never the
/// whole line.
#[derive(Clone, Debug, Default)]
pub struct Snippets {
    lines: HashMap<(String, usize, usize), Snippet>,
}

impl Snippets {
    /// Widest snippet, in characters.
    pub const WIDTH: usize = 100;
    /// Characters kept before the column when a line is cut.
    const BEFORE: usize = 30;

    /// No snippets.
    pub fn new() -> Snippets {
        Snippets::default()
    }

    /// The snippet at `file`:`line`:`column`, if one was collected.
    pub fn get(&self, file: &str, line: usize, column: usize) -> Option<&Snippet> {
        self.lines.get(&(file.to_string(), line, column))
    }

    /// Adds the snippet of `line_text` at `column` (1-based, characters).
    pub fn insert(&mut self, file: &str, line: usize, column: usize, line_text: &str) {
        self.lines.insert(
            (file.to_string(), line, column),
            Snippets::window(line_text, column),
        );
    }

    /// Collects the data and policy lines of `violations` from `sources`,
    /// one pass over each file that holds any.
    pub fn collect(violations: &[Violation], sources: &[&SourceMap]) -> Snippets {
        let mut wanted: HashMap<&str, Vec<(usize, usize)>> = HashMap::new();
        for violation in violations {
            let locations = violation
                .location
                .iter()
                .chain(std::iter::once(&violation.policy_location));
            for location in locations {
                wanted
                    .entry(&*location.file)
                    .or_default()
                    .push((location.line, location.column));
            }
        }
        let mut snippets = Snippets::new();
        for map in sources {
            for (_, text) in map.iter() {
                let Some(positions) = wanted.get_mut(text.name()) else {
                    continue;
                };
                positions.sort_unstable();
                positions.dedup();
                snippets.collect_file(text.name(), text.bytes(), positions);
            }
        }
        snippets
    }

    /// Finds each wanted line of one file in a single scan.
    fn collect_file(&mut self, name: &str, bytes: &[u8], positions: &[(usize, usize)]) {
        let (mut line, mut line_start) = (1usize, 0usize);
        let mut newlines = memchr::memchr_iter(b'\n', bytes);
        for (wanted_line, column) in positions {
            while line < *wanted_line {
                match newlines.next() {
                    Some(newline) => {
                        line += 1;
                        line_start = newline + 1;
                    }
                    None => return,
                }
            }
            let line_end =
                memchr::memchr(b'\n', &bytes[line_start..]).map_or(bytes.len(), |n| line_start + n);
            // Only a window is kept, so decoding a bounded prefix of the
            // line is enough: the column is at most 4 bytes per character in.
            let limit = (line_start + (column + Snippets::WIDTH) * 4).min(line_end);
            let text = String::from_utf8_lossy(&bytes[line_start..limit]);
            let text = text.trim_end_matches(['\r', '\n']);
            self.insert(name, *wanted_line, *column, text);
        }
    }

    fn window(line_text: &str, column: usize) -> Snippet {
        let chars: Vec<char> = line_text.chars().collect();
        let caret = column.saturating_sub(1).min(chars.len());
        let start = if chars.len() <= Snippets::WIDTH || caret < Snippets::BEFORE {
            0
        } else {
            (caret - Snippets::BEFORE).min(chars.len().saturating_sub(Snippets::WIDTH))
        };
        let end = (start + Snippets::WIDTH).min(chars.len());
        let mut text = String::new();
        let mut shown_caret = caret - start;
        if start > 0 {
            text.push('…');
            shown_caret += 1;
        }
        text.extend(&chars[start..end]);
        if end < chars.len() {
            text.push('…');
        }
        Snippet {
            text: text.trim_end().to_string(),
            caret: shown_caret,
        }
    }
}

/// `file:line:column`, or `file row N` for a CSV record.
pub fn place(location: &Location) -> String {
    match location.row {
        Some(row) => format!("{} row {row}", location.file),
        None => format!("{}:{}:{}", location.file, location.line, location.column),
    }
}

/// The deciding values, `a = 1, b = 2`, or `None` when there are none.
pub fn terms_text(terms: &[crate::explain::Term]) -> Option<String> {
    if terms.is_empty() {
        return None;
    }
    Some(
        terms
            .iter()
            .map(|term| format!("{} = {}", term.expr, term.value))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// The readable path, `a/b/c`, or `None` when the violation has none.
pub fn path_text(path: &[PathStep]) -> Option<String> {
    if path.is_empty() {
        return None;
    }
    Some(
        path.iter()
            .map(|step| step.value.as_str())
            .collect::<Vec<_>>()
            .join("/"),
    )
}

/// Path labels in order of first appearance over `violations`; the ledger
/// formats give each its own column.
pub fn path_labels(violations: &[Violation]) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for violation in violations {
        for step in &violation.path {
            if !labels.iter().any(|label| **label == *step.label) {
                labels.push(step.label.to_string());
            }
        }
    }
    labels
}

/// The value of the step labelled `label`, or `""`.
pub fn path_value<'a>(violation: &'a Violation, label: &str) -> &'a str {
    violation
        .path
        .iter()
        .find(|step| &*step.label == label)
        .map_or("", |step| step.value.as_str())
}

/// Violations grouped by a key, groups in order of first appearance.
pub fn group_by<'a, K: Hash + Eq + Clone>(
    violations: impl IntoIterator<Item = &'a Violation>,
    key: impl Fn(&'a Violation) -> K,
) -> Vec<(K, Vec<&'a Violation>)> {
    let mut groups: Vec<(K, Vec<&'a Violation>)> = Vec::new();
    // Index by key: a large run has many groups (one per path step), and
    // a linear search per violation would be quadratic.
    let mut index: HashMap<K, usize> = HashMap::new();
    for violation in violations {
        let k = key(violation);
        match index.get(&k) {
            Some(group_idx) => groups[*group_idx].1.push(violation),
            None => {
                index.insert(k.clone(), groups.len());
                groups.push((k, vec![violation]));
            }
        }
    }
    groups
}

/// `N thing` or `N things`.
pub fn plural(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("{n} {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// Counts per severity: (error, warning, info).
pub fn severity_counts<'a>(violations: impl IntoIterator<Item = &'a Violation>) -> [usize; 3] {
    let mut counts = [0; 3];
    for violation in violations {
        match violation.severity {
            Severity::Error => counts[0] += 1,
            Severity::Warning => counts[1] += 1,
            Severity::Info => counts[2] += 1,
        }
    }
    counts
}

/// The ledger columns after the path labels, shared by CSV and xlsx.
pub const LEDGER_COLUMNS: [&str; 10] = [
    "entity",
    "key",
    "rule",
    "title",
    "severity",
    "message",
    "suggestion",
    "file",
    "line",
    "waiver",
];

/// One ledger row: a cell per path label, then [`LEDGER_COLUMNS`].
pub fn ledger_row(violation: &Violation, labels: &[String]) -> Vec<String> {
    let mut row: Vec<String> = labels
        .iter()
        .map(|label| path_value(violation, label).to_string())
        .collect();
    let (file, line) = match &violation.location {
        Some(location) => (location.file.to_string(), location.line.to_string()),
        None => (String::new(), String::new()),
    };
    row.extend([
        violation.entity.to_string(),
        violation.key.clone(),
        violation.rule.to_string(),
        violation.title.to_string(),
        violation.severity.as_str().to_string(),
        violation.message.clone(),
        violation.suggestion.clone().unwrap_or_default(),
        file,
        line,
        violation
            .waiver
            .as_ref()
            .map(|waiver| {
                format!(
                    "until {}: {} (approved by {})",
                    waiver.expires, waiver.reason, waiver.approved_by
                )
            })
            .unwrap_or_default(),
    ]);
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceText;

    #[test]
    fn short_lines_are_quoted_whole() {
        let snippet = Snippets::window("  {\"id\": \"b\"}", 3);
        assert_eq!(snippet.text, "  {\"id\": \"b\"}");
        assert_eq!(snippet.caret, 2);
    }

    #[test]
    fn long_lines_are_cut_around_the_column() {
        let line = "x".repeat(500);
        let snippet = Snippets::window(&line, 250);
        assert!(snippet.text.starts_with('…') && snippet.text.ends_with('…'));
        assert_eq!(snippet.text.chars().count(), Snippets::WIDTH + 2);
        assert_eq!(snippet.caret, Snippets::BEFORE + 1);
    }

    #[test]
    fn collect_finds_lines_in_one_pass() {
        let mut map = SourceMap::new();
        map.add(SourceText::from_string("d.json", "a\nbb\n名字x\nlast"));
        let at = |line, column| Location {
            file: "d.json".into(),
            line,
            column,
            row: None,
        };
        let violation = Violation {
            rule: "p.r".into(),
            title: "r".into(),
            policy: "p".into(),
            severity: Severity::Error,
            entity: "items".into(),
            key: "k".into(),
            message: "m".into(),
            location: Some(at(3, 3)),
            policy_location: at(4, 1),
            sources: Vec::new().into(),
            path: Vec::new(),
            terms: Vec::new(),
            params: Vec::new().into(),
            suggestion: None,
            fix: Vec::new(),
            waiver: None,
        };
        let snippets = Snippets::collect(&[violation], &[&map]);
        let data = snippets
            .get("d.json", 3, 3)
            .map(|s| (s.text.as_str(), s.caret));
        assert_eq!(data, Some(("名字x", 2)));
        let policy = snippets.get("d.json", 4, 1).map(|s| s.text.as_str());
        assert_eq!(policy, Some("last"));
    }
}
