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
