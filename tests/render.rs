//! Renderer tests: every format on hand-built violations that fill every
//! field the model has (path, deciding terms, params, suggestion), with
//! Chinese text, a CSV record (a row number), a dataset-level violation
//! (no record) and all three severities.
//!
//! Snapshots live in `tests/snapshots/render__*.snap`; the SARIF output is
//! validated against the official 2.1.0 schema, the JUnit output and the
//! workbook are read back with an XML parser and an xlsx reader.

use bangfu::diag::Severity;
use bangfu::explain::{Change, Location, ParamUse, PathStep, Summary, Term, Violation};
use bangfu::render::{self, Format, Options, Report, RuleInfo, Snippets, ToolInfo};
use bangfu::waiver;

fn at(file: &str, line: usize, column: usize) -> Location {
    Location {
        file: file.into(),
        line,
        column,
        row: None,
    }
}

fn step(label: &str, value: &str) -> PathStep {
    PathStep {
        label: label.into(),
        value: value.into(),
    }
}

fn term(expr: &str, value: &str, origin: Option<&'static str>) -> Term {
    Term {
        expr: expr.into(),
        value: value.into(),
        origin,
    }
}

fn rule(id: &str, title: &str, severity: Severity, line: usize) -> RuleInfo {
    let policy = id.split('.').next().unwrap_or(id);
    RuleInfo {
        id: id.into(),
        title: title.into(),
        policy: policy.into(),
        severity,
        sources: if policy == "staffing" {
            vec!["内部通知 2024-01-01".into()]
        } else {
            Vec::new()
        },
        location: at(&format!("policies/{policy}.bangfu"), line, 3),
    }
}

/// The rules that ran: three with violations, one passing.
fn rules() -> Vec<RuleInfo> {
    vec![
        rule("staffing.lead", "每个站点配备1名负责人", Severity::Error, 4),
        rule("staffing.deputy", "deputy named", Severity::Error, 11),
        rule("ages.adult", "members are adults", Severity::Warning, 2),
        rule("ages.total", "at least 3 teams", Severity::Info, 8),
    ]
}

fn violation(
    rule: &RuleInfo,
    entity: &str,
    key: &str,
    message: &str,
    location: Option<Location>,
    policy_line: usize,
) -> Violation {
    Violation {
        rule: rule.id.as_str().into(),
        title: rule.title.as_str().into(),
        policy: rule.policy.as_str().into(),
        severity: rule.severity,
        entity: entity.into(),
        key: key.into(),
        message: message.into(),
        location,
        policy_location: at(&rule.location.file, policy_line, 13),
        sources: rule.sources.clone().into(),
        path: Vec::new(),
        terms: Vec::new(),
        params: Vec::new().into(),
        suggestion: None,
        fix: Vec::new(),
        waiver: None,
    }
}

fn violations(rules: &[RuleInfo]) -> Vec<Violation> {
    let mut lead_east = violation(
        &rules[0],
        "sites",
        "S-01",
        "站点一号站有23名成员, 负责人2名, 应为1名",
        Some(at("data/ledger.json", 12, 5)),
        7,
    );
    lead_east.path = vec![
        step("region", "北区"),
        step("district", "东城"),
        step("site", "一号站"),
    ];
    lead_east.terms = vec![
        term("count(leads)", "2", None),
        term("s.members", "23", None),
        term("threshold", "20", Some("default")),
    ];
    lead_east.params = vec![ParamUse {
        name: "threshold".into(),
        value: "20".into(),
        origin: "default".into(),
    }]
    .into();
    lead_east.suggestion = Some("remove one of P-07, P-09 from leads".into());
    lead_east.fix = vec![Change::Set {
        collection: "people".into(),
        key: "P-09".into(),
        field: "lead".into(),
        value: serde_json::Value::Bool(false),
    }];

    let mut lead_west = violation(
        &rules[0],
        "sites",
        "S-02",
        "站点二号站有21名成员, 负责人0名, 应为1名",
        Some(at("data/ledger.json", 30, 5)),
        7,
    );
    lead_west.path = vec![
        step("region", "南区"),
        step("district", "西城"),
        step("site", "二号站"),
    ];
    lead_west.terms = vec![term("count(leads)", "0", None)];
    lead_west.suggestion = Some("add a lead: full_time = true".into());
    lead_west.waiver = waiver::waiver(
        "staffing.lead",
        "S-02",
        "站点正在调整, 负责人下月到任",
        "审核组",
        "2027-06-30",
    );

    // The same rule failing its second condition.
    let mut lead_empty = violation(
        &rules[0],
        "sites",
        "S-03",
        "站点三号站没有成员",
        Some(at("data/ledger.json", 41, 5)),
        8,
    );
    lead_empty.path = vec![
        step("region", "北区"),
        step("district", "北城"),
        step("site", "三号站"),
    ];
    lead_empty.terms = vec![term("s.members", "0", None)];

    // A CSV record: a row number, and text that needs quoting and escaping.
    let mut csv_row = violation(
        &rules[2],
        "people",
        "P-3",
        "Bo, aged 12: \"minor\"\n50% of the way",
        Some(Location {
            file: "data/csv/people.csv".into(),
            line: 4,
            column: 1,
            row: Some(4),
        }),
        3,
    );
    csv_row.path = vec![step("region", "北区"), step("team", "甲组")];
    csv_row.terms = vec![term("p.age", "12", None)];
    csv_row.suggestion = Some("age at least 18 (now 12)".into());

    // A dataset-level rule: no record, no path.
    let mut total = violation(&rules[3], "dataset", "ages", "only 2 teams", None, 9);
    total.terms = vec![term("count(teams)", "2", None)];
    // Every violation of this rule is waived: its test case passes.
    total.waiver = waiver::waiver(
        "ages.total",
        "ages",
        "a third team starts in June",
        "reviewers",
        "2027-01-31",
    );
    vec![lead_east, lead_west, lead_empty, csv_row, total]
}

fn summary(violations: &[Violation], rules: &[RuleInfo]) -> Summary {
    let count = |severity| violations.iter().filter(|v| v.severity == severity).count();
    Summary {
        records: 120,
        rules: rules.len(),
        violations: violations.len(),
        errors: count(Severity::Error),
        warnings: count(Severity::Warning),
        infos: count(Severity::Info),
        by_rule: rules
            .iter()
            .map(|rule| {
                let n = violations.iter().filter(|v| *v.rule == *rule.id).count();
                (rule.id.clone(), n)
            })
            .collect(),
    }
}

fn snippets() -> Snippets {
    let mut snippets = Snippets::new();
    snippets.insert(
        "data/ledger.json",
        12,
        5,
        r#"    {"id": "S-01", "name": "一号站", "members": 23, "leads": ["P-07", "P-09"]},"#,
    );
    snippets.insert(
        "policies/staffing.bangfu",
        7,
        13,
        "    require count(leads) == 1   ",
    );
    snippets.insert(
        "policies/staffing.bangfu",
        8,
        13,
        "    require s.members > 0",
    );
    snippets.insert("data/csv/people.csv", 4, 1, "P-3,Bo,12,t1");
    snippets
}

fn tool() -> ToolInfo {
    ToolInfo {
        name: "bangfu".into(),
        version: "0.0.0-test".into(),
        information_uri: Some("https://example.invalid/bangfu".into()),
    }
}

/// Renders the fixture in `format`: five violations of three rules, one
/// passing rule; S-02 and the dataset violation are waived.
fn check(format: Format, limit: Option<usize>, color: bool) -> Vec<u8> {
    let rules = rules();
    let violations = violations(&rules);
    let summary = summary(&violations, &rules);
    let snippets = snippets();
    let tool = tool();
    let report = Report {
        violations: &violations,
        limit,
        summary: &summary,
        rules: &rules,
        snippets: &snippets,
        tool: &tool,
    };
    let mut out = Vec::new();
    let rendered = render::render(format, &report, Options { color }, &mut out);
    assert!(rendered.is_ok(), "{rendered:?}");
    out
}

/// Renders a run that found nothing.
fn check_empty(format: Format) -> Vec<u8> {
    let rules = rules();
    let summary = summary(&[], &rules);
    let snippets = Snippets::new();
    let tool = tool();
    let report = Report {
        violations: &[],
        limit: None,
        summary: &summary,
        rules: &rules,
        snippets: &snippets,
        tool: &tool,
    };
    let mut out = Vec::new();
    let rendered = render::render(format, &report, Options::default(), &mut out);
    assert!(rendered.is_ok(), "{rendered:?}");
    out
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| format!("not UTF-8: {e}"))
}

#[test]
fn human() {
    insta::assert_snapshot!(text(check(Format::Human, None, false)));
}

#[test]
fn human_color() {
    let shown = text(check(Format::Human, None, true)).replace('\u{1b}', "␛");
    assert!(shown.contains("␛[1m"), "no bold escape in:\n{shown}");
    insta::assert_snapshot!(shown);
}

#[test]
fn human_limited() {
    insta::assert_snapshot!(text(check(Format::Human, Some(1), false)));
}

#[test]
fn human_empty() {
    insta::assert_snapshot!(text(check_empty(Format::Human)));
}

#[test]
fn json() {
    let shown = text(check(Format::Json, Some(4), false));
    let parsed: Result<serde_json::Value, _> = serde_json::from_str(&shown);
    assert!(parsed.is_ok(), "{shown}");
    insta::assert_snapshot!(shown);
}

#[test]
fn jsonl() {
    let shown = text(check(Format::Jsonl, None, false));
    assert_eq!(shown.lines().count(), 5);
    for line in shown.lines() {
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(line);
        assert!(parsed.is_ok(), "{line}");
    }
    insta::assert_snapshot!(shown);
}

#[test]
fn github() {
    insta::assert_snapshot!(text(check(Format::Github, None, false)));
}

#[test]
fn github_limited() {
    insta::assert_snapshot!(text(check(Format::Github, Some(2), false)));
}

#[test]
fn csv() {
    let bytes = check(Format::Csv, None, false);
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "no BOM");
    let shown = text(bytes[3..].to_vec());
    // The csv crate reads it back: a header and one row per violation, each
    // with the same number of cells.
    let mut reader = ::csv::Reader::from_reader(shown.as_bytes());
    let header = reader.headers().map(|h| h.len()).unwrap_or_default();
    assert_eq!(header, 14, "region, district, site, team + 10 columns");
    let rows: Vec<_> = reader.records().flatten().collect();
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|row| row.len() == header));
    assert_eq!(&rows[3][9], "Bo, aged 12: \"minor\"\n50% of the way");
    insta::assert_snapshot!(shown);
}

#[test]
fn csv_empty() {
    let bytes = check_empty(Format::Csv);
    insta::assert_snapshot!(text(bytes[3..].to_vec()));
}

fn sarif_validator() -> jsonschema::Validator {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/sarif-schema-2.1.0.json"
    );
    let schema_text = std::fs::read_to_string(path).unwrap_or_default();
    let schema: serde_json::Value =
        serde_json::from_str(&schema_text).unwrap_or(serde_json::Value::Null);
    assert!(schema.is_object(), "cannot read {path}");
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema);
    assert!(validator.is_ok(), "{:?}", validator.err());
    validator.unwrap_or_else(|_| unreachable!())
}

/// Validates `text` against the SARIF 2.1.0 schema; returns the errors.
fn sarif_errors(text: &str) -> Vec<String> {
    let instance: serde_json::Value = match serde_json::from_str(text) {
        Ok(instance) => instance,
        Err(error) => return vec![format!("not JSON: {error}")],
    };
    sarif_validator()
        .iter_errors(&instance)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect()
}

#[test]
fn sarif() {
    let shown = text(check(Format::Sarif, None, false));
    assert_eq!(sarif_errors(&shown), Vec::<String>::new());
    let log: serde_json::Value = serde_json::from_str(&shown).unwrap_or_default();
    let run = &log["runs"][0];
    assert_eq!(
        run["tool"]["driver"]["rules"].as_array().map(Vec::len),
        Some(4)
    );
    assert_eq!(run["results"].as_array().map(Vec::len), Some(5));
    // Each result's ruleIndex points at its rule.
    for result in run["results"].as_array().into_iter().flatten() {
        let index = result["ruleIndex"].as_u64().unwrap_or(99) as usize;
        assert_eq!(
            run["tool"]["driver"]["rules"][index]["id"],
            result["ruleId"]
        );
    }
    insta::assert_snapshot!(shown);
}

#[test]
fn sarif_limited_and_empty_are_valid() {
    let limited = text(check(Format::Sarif, Some(1), false));
    assert_eq!(sarif_errors(&limited), Vec::<String>::new());
    assert!(limited.contains("\"omitted\": 4"));
    let empty = text(check_empty(Format::Sarif));
    assert_eq!(sarif_errors(&empty), Vec::<String>::new());
}

#[test]
fn sarif_schema_rejects_a_broken_log() {
    // The validator is not vacuous: a result without a message and with a
    // level SARIF does not know fails.
    let broken = r#"{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}},
        "results": [{"ruleId": "r", "level": "fatal"}]}]}"#;
    assert_eq!(sarif_errors(broken).len(), 2, "{:?}", sarif_errors(broken));
}

/// Counts of a JUnit document read back with quick-xml: (suites, cases,
/// failures, the `failures` attributes added up over suites).
fn junit_counts(xml: &str) -> (usize, usize, usize, usize) {
    use quick_xml::Reader;
    use quick_xml::events::Event;
    let mut reader = Reader::from_str(xml);
    let (mut suites, mut cases, mut failures, mut declared) = (0, 0, 0, 0);
    loop {
        match reader.read_event() {
            Ok(Event::Start(element) | Event::Empty(element)) => match element.name().as_ref() {
                "testsuite" => {
                    suites += 1;
                    for attribute in element.attributes().flatten() {
                        if attribute.key.as_ref() == "failures" {
                            let value = attribute.value.to_string();
                            declared += value.parse::<usize>().unwrap_or(999);
                        }
                    }
                }
                "testcase" => cases += 1,
                "failure" => failures += 1,
                _ => {}
            },
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(error) => panic!("not XML: {error}\n{xml}"),
        }
    }
    (suites, cases, failures, declared)
}

#[test]
fn junit() {
    let shown = text(check(Format::Junit, None, false));
    assert_eq!(junit_counts(&shown), (2, 4, 2, 2));
    insta::assert_snapshot!(shown);
}

#[test]
fn junit_limited_still_fails_every_violated_rule() {
    // Only one violation is shown, but both rules with unwaived violations
    // fail.
    let shown = text(check(Format::Junit, Some(1), false));
    assert_eq!(junit_counts(&shown), (2, 4, 2, 2));
    insta::assert_snapshot!(shown);
}

#[test]
fn junit_empty() {
    let shown = text(check_empty(Format::Junit));
    assert_eq!(junit_counts(&shown), (2, 4, 0, 0));
}

/// Every sheet of a workbook as text: `## name` then one line per row.
fn workbook_text(bytes: Vec<u8>) -> String {
    use calamine::{Reader, Xlsx};
    let mut workbook = match Xlsx::new(std::io::Cursor::new(bytes)) {
        Ok(workbook) => workbook,
        Err(error) => return format!("not a workbook: {error}"),
    };
    let mut shown = String::new();
    for name in workbook.sheet_names() {
        shown.push_str(&format!("## {name}\n"));
        let range = match workbook.worksheet_range(&name) {
            Ok(range) => range,
            Err(error) => return format!("cannot read {name}: {error}"),
        };
        for row in range.rows() {
            let cells: Vec<String> = row.iter().map(|cell| cell.to_string()).collect();
            shown.push_str(&cells.join(" | "));
            shown.push('\n');
        }
    }
    shown
}

#[test]
fn xlsx() {
    let bytes = check(Format::Xlsx, None, false);
    assert!(bytes.starts_with(b"PK"), "not a zip file");
    let shown = workbook_text(bytes);
    assert!(shown.starts_with("## summary\n"), "{shown}");
    assert!(shown.contains("## staffing\n") && shown.contains("## ages\n"));
    insta::assert_snapshot!(shown);
}

#[test]
fn xlsx_empty() {
    insta::assert_snapshot!(workbook_text(check_empty(Format::Xlsx)));
}
