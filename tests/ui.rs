//! UI tests: every case under `tests/ui/` runs the binary and snapshots what
//! a user sees (stderr, stdout and the exit code).
//!
//! - `tests/ui/<stage>/<code-name>.bangfu`: a policy checked with
//!   `tests/ui/schema.bangfu` and no data;
//! - `tests/ui/data/<name>.{json,yaml}` or a directory `tests/ui/data/<name>/`
//!   of CSV files: data checked with `tests/ui/data/policy.bangfu`.
//!
//! Adding a case is adding a file; `cargo insta review` shows its snapshot.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `bangfu` in the repository root and renders what a user sees.
fn run(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_bangfu"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output();
    let output = match output {
        Ok(output) => output,
        Err(error) => return format!("cannot run bangfu: {error}"),
    };
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        output
            .status
            .code()
            .map_or("signal".to_string(), |c| c.to_string()),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn cases(dir: &str, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| keep(p))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn policy_cases() {
    let mut n_cases = 0;
    for stage in ["syntax", "check"] {
        for case in cases(&format!("tests/ui/{stage}"), |p| {
            p.extension().is_some_and(|e| e == "bangfu")
        }) {
            let case_path = relative(&case);
            let shown = run(&["check", "-p", "tests/ui/schema.bangfu", "-p", &case_path]);
            assert!(
                shown.starts_with("exit: 2"),
                "{case_path} should fail with exit 2:\n{shown}"
            );
            let name = format!(
                "{stage}__{}",
                case.file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_default()
            );
            insta::assert_snapshot!(name, shown);
            n_cases += 1;
        }
    }
    assert!(
        n_cases >= 4,
        "expected the policy ui cases, found {n_cases}"
    );
}

#[test]
fn data_cases() {
    let mut n_cases = 0;
    for case in cases("tests/ui/data", |p| {
        p.is_dir() || p.extension().is_some_and(|e| e == "json" || e == "yaml")
    }) {
        let case_path = relative(&case);
        let shown = run(&[
            "check",
            &case_path,
            "-p",
            "tests/ui/schema.bangfu",
            "-p",
            "tests/ui/data/policy.bangfu",
        ]);
        let stem = case
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let expected_exit = if stem == "ok" { "exit: 1" } else { "exit: 2" };
        assert!(
            shown.starts_with(expected_exit),
            "{case_path} should give {expected_exit}:\n{shown}"
        );
        let extension = case
            .extension()
            .map(|e| e.to_string_lossy().to_string())
            .unwrap_or_else(|| "csv".into());
        insta::assert_snapshot!(format!("data__{stem}_{extension}"), shown);
        n_cases += 1;
    }
    assert!(n_cases >= 6, "expected the data ui cases, found {n_cases}");
}
