//! Evaluation cases: each `tests/cases/*.yaml` file holds cases with a
//! schema and policy (bangfu text), data (YAML text), optional params, and
//! either the violations wanted (`want: ["rule key", …]`) or the diagnostic
//! code wanted (`want_code: E0601`). Cases assert by code, never by message.
//!
//! Adding a case is adding an entry to a file; the runner names the failing
//! case by file and `note`.

use std::path::{Path, PathBuf};

use saphyr::{LoadableYamlNode, Yaml};

struct Case {
    note: String,
    policy: String,
    data: String,
    params: Vec<String>,
    want: Option<Vec<String>>,
    want_code: Option<String>,
}

fn text(node: &Yaml, key: &str) -> Option<String> {
    node.as_mapping_get(key)
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

fn list(node: &Yaml, key: &str) -> Option<Vec<String>> {
    node.as_mapping_get(key)
        .and_then(|v| v.as_sequence())
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect()
        })
}

fn read_cases(path: &Path) -> Vec<Case> {
    let source = std::fs::read_to_string(path).expect("case file");
    let docs = Yaml::load_from_str(&source).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cases = docs
        .first()
        .and_then(|d| d.as_sequence())
        .cloned()
        .unwrap_or_default();
    cases
        .iter()
        .map(|case| Case {
            note: text(case, "note").unwrap_or_default(),
            policy: text(case, "policy").unwrap_or_default(),
            data: text(case, "data").unwrap_or_default(),
            params: list(case, "params").unwrap_or_default(),
            want: list(case, "want"),
            want_code: text(case, "want_code"),
        })
        .collect()
}

/// Runs one case; `Err` describes the mismatch.
fn run(case: &Case, dir: &Path) -> Result<(), String> {
    use miette::Diagnostic;
    let code_of = |errors: &[bangfu::Error]| {
        errors
            .iter()
            .map(|e| e.code().map(|c| c.to_string()).unwrap_or_default())
            .collect::<Vec<_>>()
    };
    let files = vec![bangfu::PolicyFile::new("case.bangfu", case.policy.as_str())];
    let params: Vec<bangfu::ParamArg> = case
        .params
        .iter()
        .filter_map(|p| bangfu::ParamArg::parse(p))
        .collect();
    let plan = match bangfu::compile_policies(&files, &params) {
        Ok(plan) => plan,
        Err(errors) => {
            let codes = code_of(&errors);
            return match &case.want_code {
                Some(code) if codes.contains(code) => Ok(()),
                _ => Err(format!(
                    "policy errors {codes:?}: {:?}",
                    errors.iter().map(|e| e.to_string()).collect::<Vec<_>>()
                )),
            };
        }
    };
    let data_path = dir.join("data.yaml");
    std::fs::write(&data_path, &case.data).map_err(|e| e.to_string())?;
    let data = match bangfu::load_data(&data_path, &plan) {
        Ok(data) => data,
        Err(errors) => {
            let codes = code_of(&errors);
            return match &case.want_code {
                Some(code) if codes.contains(code) => Ok(()),
                _ => Err(format!(
                    "data errors {codes:?}: {:?}",
                    errors.iter().map(|e| e.to_string()).collect::<Vec<_>>()
                )),
            };
        }
    };
    let evaluation = bangfu::evaluate(&plan, &data, &|_| true);
    let codes = code_of(&evaluation.errors);
    if let Some(code) = &case.want_code {
        return if codes.contains(code) {
            Ok(())
        } else {
            Err(format!("wanted {code}, got {codes:?}"))
        };
    }
    if !codes.is_empty() {
        return Err(format!("evaluation errors {codes:?}"));
    }
    let mut got: Vec<String> = evaluation
        .violations
        .iter()
        .map(|v| format!("{} {}", v.rule, v.key))
        .collect();
    got.sort();
    let mut want = case.want.clone().unwrap_or_default();
    want.sort();
    if got == want {
        Ok(())
    } else {
        Err(format!("wanted {want:?}, got {got:?}"))
    }
}

#[test]
fn evaluation_cases() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/cases")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let dir = std::env::temp_dir().join(format!("bangfu-cases-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut failures = Vec::new();
    let mut n_cases = 0;
    for file in &files {
        for case in read_cases(file) {
            n_cases += 1;
            if let Err(problem) = run(&case, &dir) {
                failures.push(format!(
                    "{}: {}: {problem}",
                    file.file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default(),
                    case.note
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        n_cases >= 20,
        "expected the evaluation cases, found {n_cases}"
    );
    assert!(
        failures.is_empty(),
        "{} of {n_cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
