//! The six benchmark rules agree with the generator's truth file on the
//! committed sample ledger (tiny scale, seed 1) in JSON, YAML and CSV, and,
//! when the shared benchmark generator is next to the repository, on freshly
//! generated tiny ledgers of other seeds.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

type Triple = (String, String, String);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn parse_lines(text: &str) -> BTreeSet<Triple> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let value: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
            let field = |name: &str| {
                value[name]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| value[name].to_string())
            };
            (field("rule"), field("entity"), field("key"))
        })
        .collect()
}

fn check_six(data: &Path) -> BTreeSet<Triple> {
    let output = Command::new(env!("CARGO_BIN_EXE_bangfu"))
        .args([
            "check",
            &data.display().to_string(),
            "--format",
            "jsonl",
            "--rule",
            "three_one.*",
            "--rule",
            "five_ones.*",
            "--rule",
            "exit.*",
        ])
        .output()
        .expect("run bangfu");
    assert_eq!(
        output.status.code(),
        Some(1),
        "violations expected; stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    parse_lines(&String::from_utf8_lossy(&output.stdout))
}

fn assert_agree(data: &Path, truth: &BTreeSet<Triple>) {
    let found = check_six(data);
    let missing: Vec<_> = truth.difference(&found).take(5).collect();
    let extra: Vec<_> = found.difference(truth).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{}: missing {missing:?}, extra {extra:?}",
        data.display()
    );
    assert_eq!(found.len(), truth.len());
}

#[test]
fn sample_agrees_with_truth_in_every_format() {
    let sample = root().join("examples/sample");
    let truth =
        parse_lines(&std::fs::read_to_string(sample.join("truth.jsonl")).expect("truth file"));
    assert!(
        truth.len() > 50,
        "the sample plants violations of every rule"
    );
    let rules: BTreeSet<&str> = truth.iter().map(|(rule, _, _)| rule.as_str()).collect();
    assert_eq!(
        rules.len(),
        6,
        "every benchmark rule fires in the sample: {rules:?}"
    );
    for data in ["ledger.json", "ledger.yaml", "csv"] {
        assert_agree(&sample.join(data), &truth);
    }
}

#[test]
fn generated_tiny_ledgers_agree_with_truth() {
    let generator = root().join("../shared/bench/gen_dataset.py");
    if !generator.exists() {
        eprintln!(
            "note: {} not found; only the committed sample was checked",
            generator.display()
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!("bangfu-agree-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for seed in ["2", "5"] {
        for (format, out) in [
            ("json", format!("t{seed}.json")),
            ("csv", format!("t{seed}-csv")),
        ] {
            let out = dir.join(out);
            let truth_path = dir.join(format!("t{seed}.truth.jsonl"));
            let status = Command::new("python3")
                .arg(&generator)
                .args([
                    "--scale", "tiny", "--seed", seed, "--format", format, "--quiet", "--out",
                ])
                .arg(&out)
                .arg("--truth")
                .arg(&truth_path)
                .status()
                .expect("run the generator");
            assert!(status.success());
            let truth = parse_lines(&std::fs::read_to_string(&truth_path).expect("truth"));
            assert_agree(&out, &truth);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
