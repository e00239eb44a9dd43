//! UI tests: every case under `tests/ui/` runs the binary and snapshots what
//! a user sees (stderr, stdout and the exit code).
//!
//! - `tests/ui/<stage>/<name>.bangfu` (stages `syntax`, `resolve`, `check`,
//!   `compile`): a policy checked with `tests/ui/schema.bangfu` and no data.
//!   A first line `// ui: ARGS` replaces the command (`{case}` is the case's
//!   path).
//! - `tests/ui/eval/<name>.bangfu` with `<name>.json` beside it: the policy
//!   run on that data.
//! - `tests/ui/data/<name>.{json,yaml}` or a directory `tests/ui/data/<name>/`
//!   of CSV files: data checked with `tests/ui/data/policy.bangfu`.
//! - `tests/ui/cli/<name>.args`: one argument per line; `# exit: N` gives the
//!   expected exit status.
//!
//! A case named after a diagnostic code's name (`unknown-field`, or
//! `unknown-field-several` for a variation) must show that code, and a
//! warning's case must exit 0. [`every_code_has_a_case`] checks that every
//! code a user can trigger appears in some snapshot.
//!
//! Adding a case is adding a file; `cargo insta review` shows its snapshot.

use std::path::{Path, PathBuf};
use std::process::Command;

use bangfu::diag::CODES;

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

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default()
}

/// The code whose name is the longest prefix of a case's name, if any.
fn code_of_case(name: &str) -> Option<&'static str> {
    CODES
        .iter()
        .filter(|info| {
            name == info.name
                || name
                    .strip_prefix(info.name)
                    .is_some_and(|rest| rest.starts_with('-'))
        })
        .max_by_key(|info| info.name.len())
        .map(|info| info.code)
}

/// Asserts the exit status and, for a case named after a code, that the
/// output shows the code.
fn expect(case: &str, name: &str, shown: &str, exit: Option<&str>) {
    let code = code_of_case(name);
    let exit = exit.map(str::to_string).unwrap_or_else(|| match code {
        Some(code) if code.starts_with('W') => "0".into(),
        _ => "2".into(),
    });
    assert!(
        shown.starts_with(&format!("exit: {exit}\n")),
        "{case} should exit with {exit}:\n{shown}"
    );
    if let Some(code) = code {
        assert!(shown.contains(code), "{case} should show {code}:\n{shown}");
    }
}

#[test]
fn policy_cases() {
    let mut n_cases = 0;
    for stage in ["syntax", "resolve", "check", "compile"] {
        for case in cases(&format!("tests/ui/{stage}"), |p| {
            p.extension().is_some_and(|e| e == "bangfu")
        }) {
            let case_path = relative(&case);
            let text = std::fs::read_to_string(&case).unwrap_or_default();
            let args: Vec<String> = match text.lines().next().and_then(|l| l.strip_prefix("// ui:"))
            {
                Some(args) => args
                    .split_whitespace()
                    .map(|arg| arg.replace("{case}", &case_path))
                    .collect(),
                None => ["check", "-p", "tests/ui/schema.bangfu", "-p", &case_path]
                    .map(String::from)
                    .to_vec(),
            };
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let shown = run(&args);
            let name = stem(&case);
            expect(&case_path, &name, &shown, None);
            insta::assert_snapshot!(format!("{stage}__{name}"), shown);
            n_cases += 1;
        }
    }
    assert!(
        n_cases >= 25,
        "expected the policy ui cases, found {n_cases}"
    );
}

#[test]
fn eval_cases() {
    let mut n_cases = 0;
    for case in cases("tests/ui/eval", |p| {
        p.extension().is_some_and(|e| e == "bangfu")
    }) {
        let case_path = relative(&case);
        let data = case.with_extension("json");
        let shown = run(&[
            "check",
            &relative(&data),
            "-p",
            "tests/ui/schema.bangfu",
            "-p",
            &case_path,
        ]);
        let name = stem(&case);
        expect(&case_path, &name, &shown, None);
        insta::assert_snapshot!(format!("eval__{name}"), shown);
        n_cases += 1;
    }
    assert!(n_cases >= 1, "expected the eval ui cases, found {n_cases}");
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
        let name = stem(&case);
        let exit = if name == "ok" { "1" } else { "2" };
        expect(&case_path, &name, &shown, Some(exit));
        let extension = case
            .extension()
            .map(|e| e.to_string_lossy().to_string())
            .unwrap_or_else(|| "csv".into());
        insta::assert_snapshot!(format!("data__{name}_{extension}"), shown);
        n_cases += 1;
    }
    assert!(n_cases >= 20, "expected the data ui cases, found {n_cases}");
}

#[test]
fn cli_cases() {
    let mut n_cases = 0;
    for case in cases("tests/ui/cli", |p| {
        p.extension().is_some_and(|e| e == "args")
    }) {
        let case_path = relative(&case);
        let text = std::fs::read_to_string(&case).unwrap_or_default();
        let exit = text
            .lines()
            .find_map(|line| line.strip_prefix("# exit:"))
            .map(str::trim);
        let args: Vec<&str> = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .collect();
        let shown = run(&args);
        let name = stem(&case);
        expect(&case_path, &name, &shown, exit);
        insta::assert_snapshot!(format!("cli__{name}"), shown);
        n_cases += 1;
    }
    assert!(n_cases >= 10, "expected the cli ui cases, found {n_cases}");
}

/// Codes no user input can trigger today, each with the reason.
const UNREACHABLE: &[(&str, &str)] = &[(
    "E0205",
    "reserved: a --param value of the wrong type is reported as E0304 type-mismatch",
)];

#[test]
fn every_code_has_a_case() {
    let mut shown = String::new();
    for entry in std::fs::read_dir(root().join("tests/snapshots"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let path = entry.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("ui__"))
        {
            shown.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
        }
    }
    let missing: Vec<&str> = CODES
        .iter()
        .map(|info| info.code)
        .filter(|code| !UNREACHABLE.iter().any(|(c, _)| c == code))
        .filter(|code| !shown.contains(&format!("{code}\n")))
        .collect();
    assert!(
        missing.is_empty(),
        "codes with no ui snapshot showing them: {missing:?}"
    );
}
