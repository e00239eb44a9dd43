//! The hand-made ledgers under `examples/` give exactly the violations
//! committed next to them (`expected.jsonl`, one `{rule, entity, key}` per
//! line), with the bundled policies, and between them every rule of the
//! catalog outside the six benchmark rules fires at least once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

type Triple = (String, String, String);

/// Example directory, data file, and the rules it is about (`--rule` globs).
/// A ledger of one place also breaks rules about other places (a ledger
/// without pairings fails the dataset-level pairing rules), so each example
/// is checked against its own policies.
const EXAMPLES: &[(&str, &str, &[&str])] = &[
    ("heishui_6plus1", "ledger.yaml", &["six_plus_one.*"]),
    ("yaan_2018", "ledger.yaml", &["yaan.*"]),
    ("shanxi", "ledger.json", &["shanxi.*"]),
    ("pairing_2023", "ledger.json", &[]),
    ("pairing_2023_without_qingchuan", "ledger.json", &[]),
];

/// The catalog's rules outside the six benchmark rules.
const NON_BENCHMARK: &[&str] = &[
    "six_plus_one.supervision",
    "six_plus_one.party_contact",
    "yaan.leader_households",
    "yaan.continued_support",
    "yaan.helper_coverage",
    "shanxi.training",
    "shanxi.two_packs_three_arrivals",
    "pairing.recipient_underdeveloped",
    "pairing.every_county_paired",
    "pairing.round_totals",
    "pairing.qingchuan_included",
];

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn field(value: &serde_json::Value, name: &str) -> String {
    value[name]
        .as_str()
        .map_or_else(|| value[name].to_string(), str::to_string)
}

fn triples(text: &str) -> BTreeSet<Triple> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let value: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
            (
                field(&value, "rule"),
                field(&value, "entity"),
                field(&value, "key"),
            )
        })
        .collect()
}

fn check(data: &Path, rules: &[&str], extra: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bangfu"));
    command.arg("check").arg(data).args(["--format", "jsonl"]);
    for rule in rules {
        command.args(["--rule", rule]);
    }
    command.args(extra);
    command.output().expect("run bangfu")
}

fn messages(output: &Output, rule: &str) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| v["rule"] == rule)
        .map(|v| field(&v, "message"))
        .collect()
}

#[test]
fn every_example_gives_exactly_its_expected_violations() {
    let mut fired: BTreeSet<String> = BTreeSet::new();
    for (dir, data, rules) in EXAMPLES {
        let dir = examples().join(dir);
        let output = check(&dir.join(data), rules, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            matches!(output.status.code(), Some(0 | 1)),
            "{}: exit {:?}; stderr: {stderr}",
            dir.display(),
            output.status.code()
        );
        let found = triples(&String::from_utf8_lossy(&output.stdout));
        let expected =
            triples(&std::fs::read_to_string(dir.join("expected.jsonl")).expect("expected.jsonl"));
        let missing: Vec<_> = expected.difference(&found).collect();
        let extra: Vec<_> = found.difference(&expected).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{}: missing {missing:?}, extra {extra:?}",
            dir.display()
        );
        fired.extend(found.into_iter().map(|(rule, _, _)| rule));
    }
    let silent: Vec<_> = NON_BENCHMARK
        .iter()
        .filter(|rule| !fired.contains(**rule))
        .collect();
    assert!(silent.is_empty(), "no example makes these fire: {silent:?}");
}

#[test]
fn round_totals_message_gives_every_expected_and_actual_figure() {
    let data = examples().join("pairing_2023_without_qingchuan/ledger.json");
    let output = check(&data, &["pairing.round_totals"], &[]);
    // A warning alone does not fail the run.
    assert_eq!(output.status.code(), Some(0));
    let messages = messages(&output, "pairing.round_totals");
    assert_eq!(messages.len(), 1, "{messages:?}");
    for figure in [
        "受扶县55个(通报56个)",
        "帮扶县(市、区)35个(通报35个)",
        "市(州)13个(通报13个)",
        "选派干部人才1522名(通报1554名)",
    ] {
        assert!(messages[0].contains(figure), "{figure} in {}", messages[0]);
    }
}

#[test]
fn pairing_params_are_set_under_the_catalog_policy_name() {
    // `pairing_2023.NAME` is the catalog's interface for the params of the
    // `pairing.*` rules: with the figures of the ledger, the round agrees.
    let data = examples().join("pairing_2023_without_qingchuan/ledger.json");
    let output = check(
        &data,
        &["pairing.round_totals"],
        &[
            "--param",
            "pairing_2023.recipients=55",
            "--param",
            "pairing_2023.cadres_sent=1522",
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(messages(&output, "pairing.round_totals").is_empty());
}

#[test]
fn heishui_scope_leaves_other_counties_to_the_provincial_rule() {
    // Widening six_plus_one's scope to 阿坝州 (5132) brings 若尔盖县's
    // village and household into the Heishui rules.
    let data = examples().join("heishui_6plus1/ledger.yaml");
    let output = check(
        &data,
        &["six_plus_one.*"],
        &["--param", r#"six_plus_one.scope=["5132"]"#],
    );
    let found = triples(&String::from_utf8_lossy(&output.stdout));
    for (rule, entity, key) in [
        ("six_plus_one.supervision", "villages", "513232101101"),
        (
            "six_plus_one.party_contact",
            "households",
            "H5132321011010001",
        ),
    ] {
        assert!(
            found.contains(&(rule.into(), entity.into(), key.into())),
            "{rule} {key} with the scope widened: {found:?}"
        );
    }
}
