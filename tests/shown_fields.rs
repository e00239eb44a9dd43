//! Fields the plan only shows (message template parts, labelled path steps)
//! are loaded without canonical strings; every other use keeps them
//! canonical, and so does the REPL, whose expressions may compare anything.

use std::path::{Path, PathBuf};

use bangfu::PolicyFile;
use bangfu::data::FieldSchema;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn field<'a>(plan: &'a bangfu::Plan, coll: &str, name: &str) -> &'a FieldSchema {
    let schema = &plan.schema.data;
    let coll = &schema.collections[schema.collection_index(coll).expect("collection")];
    &coll.fields[coll.field_index(name).expect("field")]
}

#[test]
fn only_template_parts_and_path_steps_are_shown() {
    let files = vec![PolicyFile::new(
        "p.bangfu",
        r#"
        schema {
          collection people key id {
            id: string
            name: string
            nick: string
            city: string
            town: string
            note: string
            age: int
            path { 城: city, 镇: town }
          }
        }
        policy adults {
          rule adult {
            for p in people where p.city != "x"
            require p.age >= 18
            message "{p.name}({p.id}, {p.town}) {p.nick == "bob"} {p.age}"
          }
        }
        "#,
    )];
    let plan = bangfu::compile_policies(&files, &[]).expect("compiles");
    let marks = |name: &str| {
        let f = field(&plan, "people", name);
        (f.keep, f.shown)
    };
    // Shown only: a template part, a labelled path step, or both.
    assert_eq!(marks("name"), (false, true));
    assert_eq!(marks("town"), (false, true));
    // Read somewhere, shown or not: canonical.
    assert_eq!(marks("city"), (true, true), "filtered on and a path step");
    assert_eq!(marks("nick"), (true, false), "compared inside a template");
    assert_eq!(marks("id"), (true, true), "the key");
    assert_eq!(marks("age"), (true, true));
    // Not read at all: dropped.
    assert_eq!(marks("note"), (false, false));
}

#[test]
fn the_repl_compares_fields_the_rules_only_show() {
    let ledger = root().join("examples/sample/ledger.json");
    let plan = bangfu::compile_policies(&bangfu::bundled_policies(), &[]).expect("compiles");
    let head = field(&plan, "households", "head");
    assert!(
        head.shown && !head.keep,
        "the bundled rules only show a household's head, so this test means something"
    );
    let text = std::fs::read_to_string(&ledger).expect("the sample ledger");
    let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let heads: std::collections::BTreeSet<&str> = json["households"]
        .as_array()
        .expect("households")
        .iter()
        .filter_map(|h| h["head"].as_str())
        .collect();
    assert!(heads.len() < json["households"].as_array().map_or(0, Vec::len));
    let mut session =
        bangfu::repl::Session::load(bangfu::bundled_policies(), Path::new(&ledger), Vec::new())
            .expect("the session loads");
    let answer = session.execute("count(distinct(households.head))");
    assert_eq!(answer.trim(), heads.len().to_string());
}

/// `check --rule` loads only what the chosen rules read or show (and keys,
/// index keys, and the paths of their collections); the rest is checked and
/// dropped.
#[test]
fn a_run_of_some_rules_loads_only_their_fields() {
    let plan =
        bangfu::compile_policies(&bangfu::bundled_policies(), &[]).expect("bundled policies");
    let only = |id: &str| {
        let idx = plan.rules.iter().position(|r| r.id == id).expect("rule");
        plan.data_schema_for(&move |rule| rule == idx)
    };
    let schema = only("exit.household_standard");
    let marks = |coll: &str, name: &str| {
        let c = &schema.collections[schema.collection_index(coll).expect("collection")];
        let f = &c.fields[c.field_index(name).expect("field")];
        (f.keep, f.shown)
    };
    // Read (and also shown in the message).
    assert!(marks("households", "income_per_capita").0);
    assert!(marks("households", "id").0, "keys stay");
    assert!(marks("households", "village").0, "its path follows it");
    assert_eq!(
        marks("households", "head"),
        (false, true),
        "shown in the message"
    );
    assert_eq!(
        marks("households", "members"),
        (false, false),
        "read by no chosen rule"
    );
    assert_eq!(
        marks("cadres", "name"),
        (false, false),
        "no chosen rule is about cadres"
    );
    assert_eq!(
        marks("villages", "name"),
        (false, true),
        "on the households' path"
    );
    // All rules: what the plan's own schema marks.
    let all = plan.data_schema_for(&|_| true);
    for (a, b) in all.collections.iter().zip(&plan.schema.data.collections) {
        for (x, y) in a.fields.iter().zip(&b.fields) {
            assert_eq!(
                (x.keep, x.shown),
                (y.keep, y.shown),
                "{}.{}",
                a.name,
                x.name
            );
        }
    }
}

/// A chosen rule's run reports what the full run reports for it, and a
/// wrong value in a field no chosen rule reads is still an error.
#[test]
fn a_run_of_some_rules_still_checks_every_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sample =
        std::fs::read_to_string(root().join("examples/sample/ledger.json")).expect("sample");
    let mut ledger: serde_json::Value = serde_json::from_str(&sample).expect("JSON");
    ledger["cadres"][0]["trainings"] = serde_json::json!("many");
    let broken = dir.path().join("ledger.json");
    std::fs::write(&broken, ledger.to_string()).expect("write");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bangfu"))
        .args([
            "check",
            &broken.display().to_string(),
            "--rule",
            "exit.household_standard",
        ])
        .output()
        .expect("bangfu runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("trainings"), "{stderr}");
}
