//! Params, scopes, effective dates, waivers and the rhai sandbox from the
//! command line, on `tests/policy/` (a neutral schema and policies), with
//! snapshots of what a user sees.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `bangfu check tests/policy/places.json -p tests/policy/features.bangfu ARGS`.
fn check(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_bangfu"))
        .args([
            "check",
            "tests/policy/places.json",
            "-p",
            "tests/policy/features.bangfu",
        ])
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("run bangfu");
    let stderr = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|line| !line.starts_with("bangfu: "))
        .collect::<Vec<_>>()
        .join("\n");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).to_string(),
        stderr,
    )
}

fn keys(stdout: &str) -> Vec<String> {
    let mut keys: Vec<String> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .map(|v| {
            format!(
                "{} {}{}",
                v["rule"].as_str().unwrap_or(""),
                v["key"].as_str().unwrap_or(""),
                if v.get("waiver").is_some() {
                    " (waived)"
                } else {
                    ""
                }
            )
        })
        .collect();
    keys.sort();
    keys
}

#[test]
fn scope_and_default_params() {
    let (code, stdout, _) = check(&["--rule", "regional.*", "--format", "jsonl"]);
    assert_eq!(code, 1);
    // 2201 is outside the default scope ["11"]; 1103 is big enough.
    assert_eq!(
        keys(&stdout),
        ["regional.big_enough 1101", "regional.big_enough 1102"]
    );
    assert!(stdout.contains(r#""params":[{"name":"scope","value":"[\"11\"]","origin":"default"},{"name":"min_size","value":"10","origin":"default"}]"#), "{stdout}");
}

#[test]
fn params_from_a_file_and_the_command_line() {
    let (_, stdout, _) = check(&[
        "--rule",
        "regional.*",
        "--format",
        "jsonl",
        "--params",
        "tests/policy/params.yaml",
    ]);
    // min_size 5 and scope 11, 22: only South (3) fails.
    assert_eq!(keys(&stdout), ["regional.big_enough 2201"]);
    assert!(stdout.contains(r#""origin":"file""#), "{stdout}");
    let (_, stdout, _) = check(&[
        "--rule",
        "regional.*",
        "--format",
        "jsonl",
        "--params",
        "tests/policy/params.yaml",
        "--param",
        "regional.min_size=10",
    ]);
    // The command line wins over the file.
    assert_eq!(
        keys(&stdout),
        [
            "regional.big_enough 1101",
            "regional.big_enough 1102",
            "regional.big_enough 2201"
        ]
    );
    assert!(
        stdout.contains(r#"{"name":"min_size","value":"10","origin":"cli"}"#),
        "{stdout}"
    );
}

#[test]
fn param_errors_teach() {
    let (code, _, stderr) = check(&["--param", "regional.min_sise=3"]);
    assert_eq!(code, 2);
    insta::assert_snapshot!("unknown_param", stderr);
    let (code, _, stderr) = check(&["--param", "regional.min_size=\"big\""]);
    assert_eq!(code, 2);
    insta::assert_snapshot!("param_of_the_wrong_type", stderr);
}

#[test]
fn effective_dates_and_as_of() {
    let (_, stdout, stderr) = check(&[
        "--rule",
        "old.*",
        "--format",
        "jsonl",
        "--as-of",
        "2020-06-01",
        "-v",
    ]);
    assert_eq!(keys(&stdout), ["old.open 1102"]);
    assert!(!stderr.contains("skipped"), "{stderr}");
    let (code, stdout, stderr) = check(&[
        "--rule",
        "old.*",
        "--format",
        "jsonl",
        "--as-of",
        "2024-06-01",
        "-v",
    ]);
    assert_eq!(code, 0);
    assert!(stdout.is_empty());
    insta::assert_snapshot!("skipped_policy", stderr);
    let (code, _, stderr) = check(&["--as-of", "2024-13-01"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("E0942"), "{stderr}");
}

#[test]
fn waivers_waive_expire_and_go_stale() {
    let (code, stdout, stderr) = check(&[
        "--rule",
        "regional.*",
        "--waivers",
        "tests/policy/waivers.yaml",
        "--as-of",
        "2025-01-01",
    ]);
    // 1101 is waived; 1102's waiver expired, so it counts and the run fails.
    assert_eq!(code, 1);
    insta::assert_snapshot!("waivers_human", format!("{stdout}--- stderr\n{stderr}"));
    let (_, stdout, _) = check(&[
        "--rule",
        "regional.*",
        "--waivers",
        "tests/policy/waivers.yaml",
        "--as-of",
        "2025-01-01",
        "--format",
        "jsonl",
    ]);
    assert_eq!(
        keys(&stdout),
        [
            "regional.big_enough 1101 (waived)",
            "regional.big_enough 1102"
        ]
    );
    let (code, _, _) = check(&[
        "--rule",
        "regional.*",
        "--waivers",
        "tests/policy/waivers.yaml",
        "--as-of",
        "2018-01-01",
    ]);
    // Before 1102's waiver expired, every violation is waived: exit 0.
    assert_eq!(code, 0);
}

#[test]
fn a_looping_script_is_stopped_and_the_run_goes_on() {
    let started = Instant::now();
    let (code, stdout, stderr) = check(&["--rule", "scripted.*", "--format", "jsonl"]);
    let elapsed = started.elapsed();
    assert_eq!(code, 2, "a failing script is an evaluation error");
    // The sandbox stops `loop {}` on its first call and disables the
    // function, so four entities cost far less than four seconds.
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
    assert!(
        stderr.contains("E0650") && stderr.contains("spin"),
        "{stderr}"
    );
    assert!(
        stderr.contains("features.bangfu"),
        "the diagnostic points at the policy: {stderr}"
    );
    // The working function still runs for every entity.
    assert_eq!(keys(&stdout), ["scripted.halves 1103"]);
}
