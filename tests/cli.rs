//! End-to-end tests of `bangfu check`'s outputs: every `--format` on the ui
//! sample (`tests/ui/data/ok.json` with `tests/ui/schema.bangfu` and
//! `tests/ui/data/policy.bangfu`), `--output`, `--color`, `--fail-on` and
//! `--max-violations`. Each runs the binary and snapshots exit code, stdout
//! and stderr; the elapsed time on stderr is replaced by `[time]`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const SAMPLE: [&str; 6] = [
    "check",
    "tests/ui/data/ok.json",
    "-p",
    "tests/ui/schema.bangfu",
    "-p",
    "tests/ui/data/policy.bangfu",
];

/// A run of the binary: exit code, stdout bytes, stderr text.
struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).to_string()
    }

    /// What a user sees, with the byte-order mark and the time made visible
    /// and stable.
    fn shown(&self) -> String {
        let stdout = self.stdout_text().replace('\u{feff}', "<BOM>");
        format!(
            "exit: {}\n--- stdout\n{stdout}--- stderr\n{}",
            self.code,
            redact_time(&self.stderr)
        )
    }
}

/// Runs `bangfu` in the repository root, stderr not a terminal, NO_COLOR set.
fn run(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_bangfu"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output();
    match output {
        Ok(output) => Run {
            code: output.status.code().unwrap_or(-1),
            stdout: output.stdout,
            stderr: String::from_utf8_lossy(&output.stderr).to_string(),
        },
        Err(error) => Run {
            code: -1,
            stdout: Vec::new(),
            stderr: format!("cannot run bangfu: {error}"),
        },
    }
}

fn sample(extra: &[&str]) -> Run {
    let mut args: Vec<&str> = SAMPLE.to_vec();
    args.extend_from_slice(extra);
    run(&args)
}

/// ` in 0.01 s` at the end of a line becomes ` in [time]`.
fn redact_time(text: &str) -> String {
    text.lines()
        .map(|line| match line.rfind(" in ") {
            Some(idx)
                if line.ends_with(" s")
                    && line[idx + 4..line.len() - 2]
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == '.') =>
            {
                format!("{} in [time]", &line[..idx])
            }
            _ => line.to_string(),
        })
        .map(|line| line + "\n")
        .collect()
}

#[test]
fn every_text_format_on_the_sample() {
    for format in ["human", "json", "jsonl", "sarif", "junit", "github", "csv"] {
        let shown = sample(&["--format", format]);
        assert_eq!(shown.code, 1, "{format}: {}", shown.shown());
        insta::assert_snapshot!(format!("format_{format}"), shown.shown());
    }
}

#[test]
fn machine_formats_keep_stdout_clean() {
    // stdout parses as the format; the summary line is on stderr only.
    let json = sample(&["--format", "json"]);
    assert!(serde_json::from_slice::<serde_json::Value>(&json.stdout).is_ok());
    assert!(
        json.stderr
            .starts_with("bangfu: 3 records, 1 rule, 1 violation")
    );
    let jsonl = sample(&["--format", "jsonl"]);
    for line in jsonl.stdout_text().lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "{line}"
        );
    }
    // Not a terminal: no spinner, nothing but the summary line.
    assert_eq!(jsonl.stderr.lines().count(), 1, "{}", jsonl.stderr);
    let human = sample(&[]);
    assert_eq!(human.stderr, "", "human prints its own summary on stdout");
}

#[test]
fn sarif_on_the_sample_is_valid() {
    let path = root().join("tests/data/sarif-schema-2.1.0.json");
    let schema: serde_json::Value = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema);
    assert!(validator.is_ok(), "{:?}", validator.err());
    let log: serde_json::Value =
        serde_json::from_slice(&sample(&["--format", "sarif"]).stdout).unwrap_or_default();
    let errors: Vec<String> = validator
        .iter()
        .flat_map(|validator| {
            validator
                .iter_errors(&log)
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(errors, Vec::<String>::new());
    assert_eq!(log["runs"][0]["results"][0]["ruleId"], "p.adult");
}

#[test]
fn xlsx_needs_output() {
    let shown = sample(&["--format", "xlsx"]);
    assert_eq!(shown.code, 2);
    assert!(shown.stdout.is_empty());
    insta::assert_snapshot!(shown.shown());
}

fn temp_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir();
    assert!(dir.is_ok(), "{:?}", dir.as_ref().err());
    dir.unwrap_or_else(|_| unreachable!())
}

#[test]
fn xlsx_to_a_file_reads_back() {
    use calamine::{Reader, Xlsx, open_workbook};
    let dir = temp_dir();
    let output = dir.path().join("report.xlsx");
    let output_arg = output.display().to_string();
    let shown = sample(&["--format", "xlsx", "--output", &output_arg]);
    assert_eq!(shown.code, 1, "{}", shown.shown());
    assert!(shown.stdout.is_empty());
    let workbook: Result<Xlsx<_>, _> = open_workbook(&output);
    let Ok(mut workbook) = workbook else {
        panic!("cannot open {output_arg}");
    };
    assert_eq!(workbook.sheet_names(), vec!["summary", "p"]);
    let ledger = workbook.worksheet_range("p");
    let rows: Vec<Vec<String>> = ledger
        .iter()
        .flat_map(|range| range.rows())
        .map(|row| row.iter().map(|cell| cell.to_string()).collect())
        .collect();
    assert_eq!(
        rows,
        vec![
            vec![
                "entity",
                "key",
                "rule",
                "title",
                "severity",
                "message",
                "suggestion",
                "file",
                "line",
                "waiver"
            ],
            vec![
                "people",
                "b",
                "p.adult",
                "adult",
                "error",
                "Bo is 12",
                "age at least 18 (now 12)",
                "tests/ui/data/ok.json",
                "3",
                ""
            ],
        ]
    );
}

#[test]
fn output_goes_to_the_file_only() {
    let dir = temp_dir();
    let output = dir.path().join("report.json");
    let output_arg = output.display().to_string();
    let shown = sample(&["--format", "json", "-o", &output_arg]);
    assert_eq!(shown.code, 1);
    assert!(shown.stdout.is_empty());
    let written = std::fs::read_to_string(&output).unwrap_or_default();
    assert!(written.contains("\"rule\": \"p.adult\""), "{written}");
    // Human into a file: no colour, and the summary line on stderr.
    let output = dir.path().join("report.txt");
    let output_arg = output.display().to_string();
    let shown = sample(&["--color", "always", "-o", &output_arg]);
    assert!(shown.stderr.starts_with("bangfu: "), "{}", shown.stderr);
    let written = std::fs::read_to_string(&output).unwrap_or_default();
    assert!(
        written.starts_with("\u{1b}["),
        "always means always: {written}"
    );
}

#[test]
fn output_never_overwrites_an_input() {
    let before = std::fs::read(root().join("tests/ui/data/ok.json")).unwrap_or_default();
    let shown = sample(&["--format", "csv", "--output", "tests/ui/data/ok.json"]);
    let after = std::fs::read(root().join("tests/ui/data/ok.json")).unwrap_or_default();
    assert_eq!(before, after, "the data file was changed");
    assert_eq!(shown.code, 2);
    insta::assert_snapshot!(shown.shown());
}

#[test]
fn unwritable_output() {
    let dir = temp_dir();
    let output = dir.path().join("missing-dir").join("report.json");
    let output_arg = output.display().to_string();
    let shown = sample(&["--format", "json", "--output", &output_arg]);
    assert_eq!(shown.code, 2);
    let stderr = shown
        .stderr
        .replace(&dir.path().display().to_string(), "[tmp]");
    insta::assert_snapshot!(stderr);
}

#[test]
fn nothing_is_written_when_the_data_is_bad() {
    let dir = temp_dir();
    let output = dir.path().join("report.json");
    let output_arg = output.display().to_string();
    let shown = run(&[
        "check",
        "tests/ui/data/malformed-json.json",
        "-p",
        "tests/ui/schema.bangfu",
        "-p",
        "tests/ui/data/policy.bangfu",
        "--output",
        &output_arg,
    ]);
    assert_eq!(shown.code, 2);
    assert!(!Path::new(&output).exists());
}

#[test]
fn color_follows_the_flag() {
    let always = sample(&["--color", "always"]);
    assert!(always.stdout_text().contains("\u{1b}[1m"));
    // Under NO_COLOR and into a pipe, auto means no colour.
    let auto = sample(&[]);
    assert!(!auto.stdout_text().contains('\u{1b}'));
    // Only the human format is coloured.
    let json = sample(&["--color", "always", "--format", "json"]);
    assert!(!json.stdout_text().contains('\u{1b}'));
}

fn levels(extra: &[&str]) -> Run {
    let mut args = vec![
        "check",
        "tests/ui/data/ok.json",
        "-p",
        "tests/ui/schema.bangfu",
        "-p",
        "tests/cli/severities.bangfu",
        "--format",
        "jsonl",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn fail_on_sets_the_threshold() {
    // tests/cli/severities.bangfu: one warning and two info violations.
    assert_eq!(levels(&[]).code, 0, "default: errors only");
    assert_eq!(levels(&["--fail-on", "error"]).code, 0);
    assert_eq!(levels(&["--fail-on", "warning"]).code, 1);
    assert_eq!(levels(&["--fail-on", "never"]).code, 0);
    // The sample has an error violation.
    assert_eq!(sample(&["--fail-on", "never"]).code, 0);
    assert_eq!(sample(&["--fail-on", "warning"]).code, 1);
    let bad = sample(&["--fail-on", "sometimes"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

#[test]
fn max_violations_limits_what_is_shown_not_the_exit_code() {
    let limited = levels(&["--max-violations", "1", "--fail-on", "warning"]);
    assert_eq!(limited.code, 1);
    assert_eq!(limited.stdout_text().lines().count(), 1);
    insta::assert_snapshot!("max_violations_jsonl", limited.shown());
    let mut args: Vec<&str> = vec![
        "check",
        "tests/ui/data/ok.json",
        "-p",
        "tests/ui/schema.bangfu",
        "-p",
        "tests/cli/severities.bangfu",
        "--max-violations",
        "1",
    ];
    let human = run(&args);
    insta::assert_snapshot!("max_violations_human", human.shown());
    args[7] = "0";
    args.extend(["--format", "github"]);
    let none = run(&args);
    assert_eq!(none.code, 0);
    assert_eq!(
        none.stdout_text(),
        "::notice title=bangfu::3 more violations not shown\n"
    );
}

#[test]
fn output_codes_are_documented() {
    // The codes of this area (E0905–E0919) each have an entry, headed
    // `## CODE name`, in docs/errors.md, and one of the cases above.
    let docs = std::fs::read_to_string(root().join("docs/errors.md")).unwrap_or_default();
    let tests: String = [
        "cli__xlsx_needs_output.snap",
        "cli__unwritable_output.snap",
        "cli__output_never_overwrites_an_input.snap",
    ]
    .iter()
    .map(|name| {
        std::fs::read_to_string(root().join("tests/snapshots").join(name)).unwrap_or_default()
    })
    .collect();
    let mut n_codes = 0;
    for info in bangfu::diag::CODES {
        if !("E0905"..="E0919").contains(&info.code) {
            continue;
        }
        n_codes += 1;
        let heading = format!("\n## {} {}\n", info.code, info.name);
        assert!(
            docs.contains(&heading),
            "no `{}` in docs/errors.md",
            heading.trim()
        );
        assert!(
            tests.contains(info.code),
            "no test case shows {}",
            info.code
        );
    }
    assert_eq!(n_codes, 3);
}

#[test]
fn waived_violations_are_shown_but_do_not_fail() {
    // tests/cli/waivers.yaml waives the sample's only violation.
    let waived = sample(&[
        "--waivers",
        "tests/cli/waivers.yaml",
        "--fail-on",
        "warning",
    ]);
    assert_eq!(waived.code, 0, "{}", waived.shown());
    insta::assert_snapshot!("waived_human", waived.shown());
    let github = sample(&["--waivers", "tests/cli/waivers.yaml", "--format", "github"]);
    assert_eq!(github.code, 0);
    assert!(
        github.stdout_text().starts_with("::notice "),
        "{}",
        github.stdout_text()
    );
    assert!(github.stderr.contains(", 1 waived"), "{}", github.stderr);
    let sarif = sample(&["--waivers", "tests/cli/waivers.yaml", "--format", "sarif"]);
    assert!(sarif.stdout_text().contains("\"suppressions\""));
}

/// JSON Lines are explained and written a window of 8,192 violations at a
/// time; every other format explains them all at once. On a ledger with
/// three windows' worth of violations, waivers matched in the first and
/// the last window, and `--max-violations` cutting inside the second, the
/// lines are the JSON document's violations, one per line, and the exit
/// code and summary line are the same.
#[test]
fn streamed_json_lines_equal_the_json_document() {
    let dir = std::env::temp_dir().join(format!("bangfu-stream-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let people: Vec<String> = (0..24_000)
        .map(|n| {
            format!(
                r#"{{"id": "p{n}", "name": "N{n}", "age": {}, "score": 1, "active": true, "born": null, "team": null, "kind": "small"}}"#,
                n % 17
            )
        })
        .collect();
    let ledger = dir.join("ledger.json");
    std::fs::write(
        &ledger,
        format!(r#"{{"people": [{}], "teams": []}}"#, people.join(",\n")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let waivers = dir.join("waivers.yaml");
    let waiver = |key: &str| {
        format!(
            "  - rule: p.adult\n    key: {key}\n    reason: r\n    approved_by: a\n    expires: 2099-12-31\n"
        )
    };
    std::fs::write(
        &waivers,
        // `nobody` matches no violation: only it is reported stale, so a
        // waiver matched in any batch counts as matched.
        format!(
            "waivers:\n{}{}{}",
            waiver("p3"),
            waiver("p23999"),
            waiver("nobody")
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let check = |format: &str| {
        run(&[
            "check",
            &ledger.display().to_string(),
            "-p",
            "tests/ui/schema.bangfu",
            "-p",
            "tests/ui/data/policy.bangfu",
            "--waivers",
            &waivers.display().to_string(),
            "--max-violations",
            "10000",
            "--format",
            format,
        ])
    };
    let (json, jsonl) = (check("json"), check("jsonl"));
    let _ = std::fs::remove_dir_all(&dir);
    let document: serde_json::Value =
        serde_json::from_slice(&json.stdout).unwrap_or_else(|e| panic!("{e}: {}", json.stderr));
    let expected: Vec<serde_json::Value> = document["violations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let lines: Vec<serde_json::Value> = jsonl
        .stdout_text()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert_eq!(expected.len(), 10_000, "{}", json.stderr);
    assert_eq!(lines, expected);
    assert!(lines[3].get("waiver").is_some(), "{}", lines[3]);
    assert_eq!((jsonl.code, json.code), (1, 1));
    assert_eq!(redact_time(&jsonl.stderr), redact_time(&json.stderr));
    assert!(
        jsonl.stderr.contains("2 waived") && jsonl.stderr.contains("not shown"),
        "{}",
        jsonl.stderr
    );
    let stale: Vec<&str> = jsonl
        .stderr
        .lines()
        .filter(|line| line.contains("matches no violation"))
        .collect();
    assert_eq!(stale.len(), 1, "{}", jsonl.stderr);
}
