//! Rules are evaluated by closures compiled per rule (`src/eval/fast.rs`);
//! the tree-walking interpreter is the reference. Both must give the same
//! violations — messages, deciding terms, fixes and all — and the same
//! runtime errors, for every bundled rule on every committed ledger, and
//! for `tests/eval/edge.bangfu`, which exercises the specialised forms
//! (chains of references through optional ones, map params indexed by
//! integers, null tests, three-valued logic, enums and dates).

use std::path::{Path, PathBuf};

use bangfu::{
    EvalOptions, PolicyFile, bundled_policies, compile_policies, evaluate_with, load_data,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The violations and errors of every rule, as JSON text, evaluated one way.
fn run(files: &[PolicyFile], data: &Path, interpret: bool) -> (Vec<String>, Vec<String>) {
    let plan = compile_policies(files, &[]).unwrap_or_else(|e| panic!("policies: {e:?}"));
    let dataset = load_data(data, &plan).unwrap_or_else(|e| panic!("{}: {e:?}", data.display()));
    let evaluation = evaluate_with(
        &plan,
        &dataset,
        &|_| true,
        EvalOptions {
            explain: true,
            cache: None,
            interpret,
        },
    );
    let violations = evaluation
        .violations
        .iter()
        .map(|violation| serde_json::to_string(violation).unwrap_or_default())
        .collect();
    let errors = evaluation.errors.iter().map(|e| format!("{e:?}")).collect();
    (violations, errors)
}

#[test]
fn compiled_rules_agree_with_the_interpreter_on_every_ledger() {
    let edge = std::fs::read_to_string(root().join("tests/eval/edge.bangfu"))
        .unwrap_or_else(|e| panic!("tests/eval/edge.bangfu: {e}"));
    let mut files = bundled_policies();
    files.push(PolicyFile::new("tests/eval/edge.bangfu", edge));
    let ledgers = [
        "examples/sample/ledger.json",
        "examples/sample/ledger.yaml",
        "examples/sample/csv",
        "examples/heishui_6plus1/ledger.yaml",
        "examples/yaan_2018/ledger.yaml",
        "examples/shanxi/ledger.json",
        "examples/pairing_2023/ledger.json",
        "examples/pairing_2023_without_qingchuan/ledger.json",
    ];
    let mut total = 0;
    for ledger in ledgers {
        let data = root().join(ledger);
        let compiled = run(&files, &data, false);
        let interpreted = run(&files, &data, true);
        assert_eq!(compiled.1, interpreted.1, "{ledger}: runtime errors differ");
        assert_eq!(
            compiled.0.len(),
            interpreted.0.len(),
            "{ledger}: numbers of violations differ"
        );
        for (a, b) in compiled.0.iter().zip(&interpreted.0) {
            assert_eq!(a, b, "{ledger}: a violation differs");
        }
        total += compiled.0.len();
    }
    // The edge policy alone breaks thousands of times on the sample: the
    // comparison above is not vacuous.
    assert!(total > 3000, "only {total} violations compared");
}
