//! Test fixtures shared by the three loaders: a small hand-built schema, a
//! canonical dump of a loaded dataset, and a way to read an error's code and
//! position.

use std::fmt::Write;

use miette::Diagnostic;

use super::{
    CollectionSchema, ColumnData, DataError, DataSchema, Dataset, EnumSchema, FieldSchema,
    FieldType, NO_ROW, ScalarType, format_date,
};
use crate::source::SourceText;

/// Collection index of `people` in [`schema`].
pub const PEOPLE: usize = 0;
/// Collection index of `teams` in [`schema`].
pub const TEAMS: usize = 1;

fn field(name: &str, ty: FieldType, optional: bool) -> FieldSchema {
    FieldSchema {
        name: name.into(),
        ty,
        optional,
        keep: true,
        shown: false,
    }
}

/// `people` (string key, int, number, bool, date, enum, optional ref,
/// list of refs, optional string, a dropped field) and `teams` (string key,
/// optional int, optional list of strings).
pub fn schema() -> DataSchema {
    use FieldType::{List, Scalar};
    use ScalarType::*;
    let people = CollectionSchema {
        name: "people".into(),
        key: Some(0),
        fields: vec![
            field("id", Scalar(String), false),
            field("name", Scalar(String), false),
            field("age", Scalar(Int), false),
            field("score", Scalar(Number), false),
            field("active", Scalar(Bool), false),
            field("born", Scalar(Date), false),
            field("role", Scalar(Enum(0)), false),
            field("team", Scalar(Ref(1)), true),
            field("friends", List(Ref(0)), false),
            field("nick", Scalar(String), true),
            FieldSchema {
                name: "note".into(),
                ty: Scalar(String),
                optional: true,
                keep: false,
                shown: false,
            },
        ],
    };
    let teams = CollectionSchema {
        name: "teams".into(),
        key: Some(0),
        fields: vec![
            field("id", Scalar(String), false),
            field("size", Scalar(Int), true),
            field("tags", List(String), true),
        ],
    };
    DataSchema {
        collections: vec![people, teams],
        enums: vec![EnumSchema {
            name: "role".into(),
            variants: vec!["admin".into(), "member".into(), "guest".into()],
        }],
    }
}

/// Every value of every collection, one line per record, nulls as `null`,
/// references as `key->row`; two loads agree iff their dumps are equal.
pub fn dump(schema: &DataSchema, dataset: &Dataset) -> String {
    let mut out = String::new();
    for (coll_idx, collection) in dataset.collections.iter().enumerate() {
        let _ = writeln!(
            out,
            "{} ({} records)",
            schema.collections[coll_idx].name, collection.len
        );
        for row in 0..collection.len {
            let cells: Vec<String> = collection
                .columns
                .iter()
                .map(|column| match column.data {
                    ColumnData::Skipped => "-".into(),
                    _ if column.is_null(row) => "null".into(),
                    _ => cell_text(schema, dataset, &column.data, row),
                })
                .collect();
            let _ = writeln!(out, "  {}", cells.join(" | "));
        }
    }
    out
}

fn cell_text(schema: &DataSchema, dataset: &Dataset, data: &ColumnData, row: usize) -> String {
    let text = |sym: &crate::data::Sym| dataset.interner.resolve(sym).to_string();
    match data {
        ColumnData::Int(values) => values[row].to_string(),
        ColumnData::Number(values) => values[row].to_string(),
        ColumnData::Bool(values) => values.get(row).unwrap_or_default().to_string(),
        ColumnData::Str(values) => format!("{:?}", text(&values[row])),
        ColumnData::Date(values) => format_date(values[row]),
        ColumnData::Enum(values) => format!("#{}", values[row]),
        ColumnData::Ref { rows, .. } => {
            let key = dataset
                .ref_key(schema, data, row)
                .map(|sym| text(&sym))
                .unwrap_or_default();
            match rows[row] {
                NO_ROW => format!("{key}->none"),
                target => format!("{key}->{target}"),
            }
        }
        ColumnData::List { offsets, items } => {
            let items: Vec<String> = (offsets[row] as usize..offsets[row + 1] as usize)
                .map(|item| cell_text(schema, dataset, items, item))
                .collect();
            format!("[{}]", items.join(", "))
        }
        ColumnData::Skipped => "-".into(),
    }
}

/// The file and primary span of an error, if it has them.
fn located(error: &DataError) -> Option<(&SourceText, usize)> {
    use DataError::*;
    let (src, span) = match error {
        MalformedJson { src, span, .. }
        | MalformedYaml { src, span, .. }
        | MalformedCsv { src, span, .. }
        | WrongType { src, span, .. }
        | DuplicateKey { src, span, .. }
        | MissingField { src, span, .. }
        | UnknownField { src, span, .. }
        | UnknownCollection { src, span, .. }
        | NumberOutOfRange { src, span, .. }
        | InvalidDate { src, span, .. }
        | UnknownVariant { src, span, .. }
        | DuplicateField { src, span, .. }
        | DuplicateCollection { src, span, .. } => (src, span),
        DanglingReference(dangling) => (&dangling.src, &dangling.span),
        Unreadable { .. } => return None,
    };
    Some((src, span.offset()))
}

/// `"E0504 3:12"`: the code and the 1-based line and column of the primary
/// span of each error.
pub fn codes_at(errors: &[DataError]) -> Vec<String> {
    errors
        .iter()
        .map(|error| {
            let code = error
                .code()
                .map(|code| code.to_string())
                .unwrap_or_default();
            match located(error) {
                Some((src, offset)) => {
                    let (line, col) = src.line_col(offset);
                    format!("{code} {line}:{col}")
                }
                None => code,
            }
        })
        .collect()
}

/// The load's errors as [`codes_at`] strings, or a failure naming the dump.
pub fn expect_errors(schema: &DataSchema, result: Result<Dataset, Vec<DataError>>) -> Vec<String> {
    match result {
        Ok(dataset) => vec![format!(
            "loaded without errors:\n{}",
            dump(schema, &dataset)
        )],
        Err(errors) => codes_at(&errors),
    }
}

/// The loaded dataset, or a panic listing every error (tests only).
pub fn expect_dataset(result: Result<Dataset, Vec<DataError>>) -> Dataset {
    match result {
        Ok(dataset) => dataset,
        Err(errors) => {
            let messages: Vec<String> = errors
                .iter()
                .zip(codes_at(&errors))
                .map(|(error, at)| format!("{at}: {error}"))
                .collect();
            panic!("load failed:\n{}", messages.join("\n"))
        }
    }
}

/// The small dataset every loader's happy path and the agreement test load,
/// as JSON. `p2` names a team and a friend that do not exist (dangling
/// references), `p3` has no team (null).
pub const JSON_DOC: &str = r#"{
  "teams": [
    {"id": "t1", "size": 3, "tags": ["x", "y"]},
    {"id": "t2", "size": null, "tags": []}
  ],
  "people": [
    {"id": "p1", "name": "Ann", "age": 30, "score": 1.5, "active": true, "born": "1990-05-01", "role": "admin", "team": "t1", "friends": ["p2"], "nick": null, "note": "dropped"},
    {"id": "p2", "name": "名字", "age": -4, "score": 2, "active": false, "born": "2000-02-29", "role": "guest", "team": "t9", "friends": ["p1", "p9"], "nick": "Bo"},
    {"id": "p3", "name": "Cy", "age": 9223372036854775807, "score": -0.25, "active": true, "born": "1969-12-31", "role": "member", "friends": []}
  ]
}"#;

/// [`JSON_DOC`] as YAML, in both block and flow styles.
pub const YAML_DOC: &str = "# people and teams
teams:
  - id: t1
    size: 3
    tags: [x, y]
  - {id: t2, size: ~, tags: []}
people:
  - id: p1
    name: Ann
    age: 30
    score: 1.5
    active: true
    born: 1990-05-01
    role: admin
    team: t1
    friends:
      - p2
    nick: null
    note: dropped
  - {id: p2, name: 名字, age: -4, score: 2, active: false, born: '2000-02-29', role: guest, team: t9, friends: [p1, p9], nick: \"Bo\"}
  - id: p3
    name: Cy
    age: 9223372036854775807
    score: -0.25
    active: true
    born: 1969-12-31
    role: member
    friends: []
";

/// [`JSON_DOC`] as CSV files: (file name, contents).
pub const CSV_FILES: [(&str, &str); 2] = [
    ("teams.csv", "id,size,tags\nt1,3,x;y\nt2,,\n"),
    (
        "people.csv",
        "id,name,age,score,active,born,role,team,friends,nick,note\n\
         p1,Ann,30,1.5,true,1990-05-01,admin,t1,p2,,dropped\n\
         p2,名字,-4,2,false,2000-02-29,guest,t9,p1;p9,Bo,\n\
         p3,Cy,9223372036854775807,-0.25,true,1969-12-31,member,,,,\n",
    ),
];

/// What [`dump`] gives for the dataset above, whatever the format.
pub const EXPECTED_DUMP: &str = r#"people (3 records)
  "p1" | "Ann" | 30 | 1.5 | true | 1990-05-01 | #0 | t1->0 | [p2->1] | null | -
  "p2" | "名字" | -4 | 2 | false | 2000-02-29 | #2 | t9->none | [p1->0, p9->none] | "Bo" | -
  "p3" | "Cy" | 9223372036854775807 | -0.25 | true | 1969-12-31 | #1 | null | [] | null | -
teams (2 records)
  "t1" | 3 | ["x", "y"]
  "t2" | null | []
"#;

/// 1-based `line:col` of the first occurrence of `needle` in `text`.
pub fn at(text: &str, needle: &str) -> String {
    let offset = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in the text"));
    let (line, col) = crate::source::line_col(text.as_bytes(), offset);
    format!("{line}:{col}")
}

/// Writes `files` into a fresh temporary directory.
pub fn csv_dir(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("tempdir: {error}"));
    for (name, contents) in files {
        std::fs::write(dir.path().join(name), contents)
            .unwrap_or_else(|error| panic!("write {name}: {error}"));
    }
    dir
}
