//! Every suggested fix works: applying a violation's `fix` changes to the
//! data and re-running its rule makes that violation disappear.
//!
//! Covers the three forms that get applicable fixes: a comparison with a
//! field (`income_per_capita > line`), a boolean field (`clinic`) and a
//! count (`count(secretaries) == 1` with three secretaries).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn check(data: &Path, rule: Option<&str>) -> Vec<Value> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bangfu"));
    command.arg("check").arg(data).args(["--format", "jsonl"]);
    if let Some(rule) = rule {
        command.args(["--rule", rule]);
    }
    let output = command.output().expect("run bangfu");
    assert!(
        output.status.code().is_some_and(|c| c < 2),
        "bangfu failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

/// The key field of the ledger's collections.
fn key_field(collection: &str) -> &'static str {
    match collection {
        "counties" | "villages" => "code",
        _ => "id",
    }
}

fn apply(document: &mut Value, change: &Value) {
    let collection = change["collection"].as_str().unwrap_or_default();
    let key = change["key"].as_str().unwrap_or_default();
    let field = key_field(collection);
    let records = document[collection]
        .as_array_mut()
        .expect("the collection is in the data");
    let position = records
        .iter()
        .position(|record| record[field] == key)
        .expect("the record is in the data");
    match change["op"].as_str() {
        Some("set") => {
            records[position][change["field"].as_str().unwrap_or_default()] =
                change["value"].clone()
        }
        Some("remove") => {
            records.remove(position);
        }
        other => panic!("unknown change {other:?}"),
    }
}

fn fixes_remove_their_violation(data: &Path, max_per_rule: usize) -> usize {
    let original: Value =
        serde_json::from_str(&std::fs::read_to_string(data).expect("data")).expect("JSON data");
    let violations = check(data, None);
    // One directory per call: the tests run in parallel threads of one
    // process, and one removing a shared directory broke the other's write.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("bangfu-fixes-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut per_rule: std::collections::HashMap<String, usize> = Default::default();
    let mut n_checked = 0;
    for violation in &violations {
        let Some(fix) = violation["fix"].as_array().filter(|fix| !fix.is_empty()) else {
            continue;
        };
        let rule = violation["rule"].as_str().unwrap_or_default().to_string();
        let seen = per_rule.entry(rule.clone()).or_default();
        if *seen >= max_per_rule {
            continue;
        }
        *seen += 1;
        let mut document = original.clone();
        for change in fix {
            apply(&mut document, change);
        }
        let fixed = dir.join("fixed.json");
        std::fs::write(&fixed, serde_json::to_string(&document).expect("serialise"))
            .expect("write temp data");
        let after = check(&fixed, Some(&rule));
        let key = &violation["key"];
        assert!(
            !after
                .iter()
                .any(|v| v["rule"] == violation["rule"] && &v["key"] == key),
            "applying {fix:?} did not remove {rule} on {key} (suggestion: {})",
            violation["suggestion"]
        );
        n_checked += 1;
    }
    let _ = std::fs::remove_dir_all(&dir);
    n_checked
}

#[test]
fn sample_fixes_remove_their_violations() {
    let n_checked = fixes_remove_their_violation(&root().join("examples/sample/ledger.json"), 5);
    assert!(
        n_checked >= 5,
        "expected fixes for comparison and boolean conditions, checked {n_checked}"
    );
}

#[test]
fn count_fix_removes_extra_records() {
    let data = root().join("tests/data/fixes/two_secretaries.json");
    let violations = check(&data, Some("three_one.first_secretary"));
    let fix = violations[0]["fix"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        fix.len(),
        2,
        "three secretaries, one allowed: remove two ({fix:?})"
    );
    assert!(fix.iter().all(|change| change["op"] == "remove"));
    assert!(
        fixes_remove_their_violation(&data, 5) >= 1,
        "the count fix applies"
    );
    // The village fails a condition on a computed value (the incidence), so
    // its suggestion names it and offers no partial fix.
    let village = check(&data, Some("exit.village_standard"));
    let suggestion = village[0]["suggestion"].as_str().unwrap_or_default();
    assert!(suggestion.contains("incidence"), "{suggestion}");
    assert!(
        village[0].get("fix").is_none(),
        "a partial fix would not fix it"
    );
}
