//! SARIF 2.1.0: one run whose driver lists every rule that ran, and one
//! result per violation with the data position as its location and the
//! failed policy condition as a related location.
//!
//! The log is built from our own serde structs holding only the subset of
//! SARIF we fill (see `docs/decisions.md`); a test validates the
//! output against the official schema.

use std::io::{self, Write};

use serde::Serialize;

use super::{Report, path_text};
use crate::diag::Severity;
use crate::explain::{Change, Location, ParamUse, PathStep, Term, Violation};

const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

#[derive(Serialize)]
struct Log<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: Vec<Run<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run<'a> {
    tool: Tool<'a>,
    results: Vec<SarifResult<'a>>,
    /// Columns count characters, as bangfu's positions do.
    column_kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<RunProperties>,
}

#[derive(Serialize)]
struct RunProperties {
    /// Violations found but left out by a limit.
    omitted: usize,
}

#[derive(Serialize)]
struct Tool<'a> {
    driver: Driver<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver<'a> {
    name: &'a str,
    version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    information_uri: Option<&'a str>,
    rules: Vec<Rule<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule<'a> {
    id: &'a str,
    name: &'a str,
    short_description: Text,
    full_description: Text,
    help: Text,
    default_configuration: Configuration,
    properties: RuleProperties<'a>,
}

#[derive(Serialize)]
struct RuleProperties<'a> {
    policy: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    sources: &'a [String],
}

#[derive(Serialize)]
struct Configuration {
    level: &'static str,
}

#[derive(Serialize)]
struct Text {
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'a str,
    rule_index: usize,
    level: &'static str,
    message: Text,
    locations: Vec<SarifLocation>,
    related_locations: Vec<SarifLocation>,
    partial_fingerprints: Fingerprints,
    /// A waiver, as SARIF's external, accepted suppression.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    suppressions: Vec<Suppression>,
    properties: ResultProperties<'a>,
}

#[derive(Serialize)]
struct Suppression {
    kind: &'static str,
    status: &'static str,
    justification: String,
}

#[derive(Serialize)]
struct Fingerprints {
    /// The rule and the entity: stable when the record moves in the file.
    #[serde(rename = "bangfuEntity/v1")]
    entity: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResultProperties<'a> {
    entity: &'a str,
    key: &'a str,
    #[serde(skip_serializing_if = "<[PathStep]>::is_empty")]
    path: &'a [PathStep],
    #[serde(skip_serializing_if = "<[Term]>::is_empty")]
    terms: &'a [Term],
    #[serde(skip_serializing_if = "<[ParamUse]>::is_empty")]
    params: &'a [ParamUse],
    #[serde(skip_serializing_if = "Option::is_none")]
    suggestion: Option<&'a str>,
    /// Record edits, not text edits, so not SARIF's own `fixes`.
    #[serde(skip_serializing_if = "<[Change]>::is_empty")]
    fix: &'a [Change],
    #[serde(skip_serializing_if = "Option::is_none")]
    row: Option<usize>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifLocation {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<usize>,
    physical_location: PhysicalLocation,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    logical_locations: Vec<LogicalLocation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<Text>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: ArtifactLocation,
    region: Region,
}

#[derive(Serialize)]
struct ArtifactLocation {
    uri: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: usize,
    start_column: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LogicalLocation {
    name: String,
    fully_qualified_name: String,
    kind: &'static str,
}

/// SARIF's level for a severity.
pub fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// A file name as a SARIF URI reference: `/` separators, percent-encoded
/// bytes outside the unreserved set, `file://` for absolute paths.
pub fn uri(file: &str) -> String {
    let slashed = file.replace('\\', "/");
    let mut encoded = String::with_capacity(slashed.len());
    for byte in slashed.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    let bytes = slashed.as_bytes();
    let drive = bytes.len() > 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if slashed.starts_with('/') {
        format!("file://{encoded}")
    } else if drive {
        // `C%3A/…` back to `C:/…`: the drive colon is part of the path.
        format!("file:///{}:{}", &slashed[..1], &encoded[4..])
    } else {
        encoded
    }
}

fn physical(location: &Location) -> PhysicalLocation {
    PhysicalLocation {
        artifact_location: ArtifactLocation {
            uri: uri(&location.file),
        },
        region: Region {
            start_line: location.line.max(1),
            start_column: location.column.max(1),
        },
    }
}

fn message_text(violation: &Violation) -> String {
    let mut text = violation.message.clone();
    if let Some(terms) = crate::render::terms_text(&violation.terms) {
        text.push_str(&format!("\nvalues: {terms}"));
    }
    if let Some(suggestion) = &violation.suggestion {
        text.push_str(&format!("\nfix: {suggestion}"));
    }
    text
}

/// Writes the log, pretty-printed, with a final newline.
pub fn render(report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    // The rule table: every rule that ran, then any rule only a violation
    // names (a caller may render violations without the rule list).
    struct RuleRow<'a> {
        id: &'a str,
        title: &'a str,
        policy: &'a str,
        severity: Severity,
        sources: &'a [String],
    }
    let mut rule_rows: Vec<RuleRow<'_>> = report
        .rules
        .iter()
        .map(|rule| RuleRow {
            id: &rule.id,
            title: &rule.title,
            policy: &rule.policy,
            severity: rule.severity,
            sources: &rule.sources,
        })
        .collect();
    for violation in report.shown() {
        if !rule_rows.iter().any(|row| *row.id == *violation.rule) {
            rule_rows.push(RuleRow {
                id: &violation.rule,
                title: &violation.title,
                policy: &violation.policy,
                severity: violation.severity,
                sources: &violation.sources,
            });
        }
    }
    let rules = rule_rows
        .iter()
        .map(|row| {
            let cited = if row.sources.is_empty() {
                row.title.to_string()
            } else {
                format!("{} (source: {})", row.title, row.sources.join("; "))
            };
            Rule {
                id: row.id,
                name: row.id.rsplit('.').next().unwrap_or(row.id),
                short_description: Text {
                    text: row.title.to_string(),
                },
                full_description: Text {
                    text: cited.clone(),
                },
                help: Text {
                    text: format!("{cited}\npolicy: {}", row.policy),
                },
                default_configuration: Configuration {
                    level: level(row.severity),
                },
                properties: RuleProperties {
                    policy: row.policy,
                    sources: row.sources,
                },
            }
        })
        .collect();
    let results = report
        .shown()
        .iter()
        .map(|violation| {
            let rule_index = rule_rows
                .iter()
                .position(|row| *row.id == *violation.rule)
                .unwrap_or_default();
            let qualified = path_text(&violation.path)
                .unwrap_or_else(|| format!("{}/{}", violation.entity, violation.key));
            let logical = vec![LogicalLocation {
                name: violation.key.clone(),
                fully_qualified_name: qualified,
                kind: "object",
            }];
            // A dataset-level violation has no record: its location is the
            // policy condition, so dashboards still have somewhere to point.
            let primary = violation
                .location
                .as_ref()
                .unwrap_or(&violation.policy_location);
            SarifResult {
                rule_id: &violation.rule,
                rule_index,
                level: level(violation.severity),
                message: Text {
                    text: message_text(violation),
                },
                locations: vec![SarifLocation {
                    id: None,
                    physical_location: physical(primary),
                    logical_locations: logical,
                    message: None,
                }],
                related_locations: vec![SarifLocation {
                    id: Some(1),
                    physical_location: physical(&violation.policy_location),
                    logical_locations: Vec::new(),
                    message: Some(Text {
                        text: format!("condition of `{}`", violation.rule),
                    }),
                }],
                suppressions: violation
                    .waiver
                    .iter()
                    .map(|waiver| Suppression {
                        kind: "external",
                        status: "accepted",
                        justification: format!(
                            "{} (approved by {}, until {})",
                            waiver.reason, waiver.approved_by, waiver.expires
                        ),
                    })
                    .collect(),
                partial_fingerprints: Fingerprints {
                    entity: format!("{}:{}:{}", violation.rule, violation.entity, violation.key),
                },
                properties: ResultProperties {
                    entity: &violation.entity,
                    key: &violation.key,
                    path: &violation.path,
                    terms: &violation.terms,
                    params: &violation.params,
                    suggestion: violation.suggestion.as_deref(),
                    fix: &violation.fix,
                    row: violation.location.as_ref().and_then(|l| l.row),
                },
            }
        })
        .collect();
    let omitted = report.omitted();
    let log = Log {
        schema: SCHEMA,
        version: "2.1.0",
        runs: vec![Run {
            tool: Tool {
                driver: Driver {
                    name: &report.tool.name,
                    version: &report.tool.version,
                    information_uri: report.tool.information_uri.as_deref(),
                    rules,
                },
            },
            results,
            column_kind: "unicodeCodePoints",
            properties: (omitted > 0).then_some(RunProperties { omitted }),
        }],
    };
    serde_json::to_writer_pretty(&mut *out, &log).map_err(io::Error::other)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::uri;

    #[test]
    fn file_names_become_uri_references() {
        assert_eq!(uri("tests/data/a.json"), "tests/data/a.json");
        assert_eq!(uri("data dir/名.csv"), "data%20dir/%E5%90%8D.csv");
        assert_eq!(uri("/tmp/a b.json"), "file:///tmp/a%20b.json");
        assert_eq!(uri("C:\\data\\a.json"), "file:///C:/data/a.json");
    }
}
