//! Property tests: the parser, the static checks, `fmt` and the loaders on
//! generated input.
//!
//! Each property runs `PROPTEST_CASES` cases (256 by default, so
//! `cargo test` stays fast); `docs/testing.md` lists the large runs and
//! their counts. A failure found here becomes a unit test next to the code
//! it broke.
//!
//! - `parse_*`: no input makes the parser, the syntax-error recovery or the
//!   static checks panic.
//! - `fmt_*`: on generated valid programs with comments and odd whitespace,
//!   `fmt(fmt(x)) == fmt(x)`, `parse(fmt(x))` equals `parse(x)` up to spans,
//!   the `//` and `///` comment texts are kept in order, and no line ends in
//!   whitespace.
//! - `load_*`: no bytes make the JSON, YAML or CSV loader panic, and a
//!   dataset that loads can be evaluated and its violations serialised
//!   without panicking.

use std::sync::OnceLock;

use bangfu::analyze::{Options, analyze};
use bangfu::fmt::{comments, format_str, normalize};
use bangfu::source::SourceText;
use bangfu::{Plan, PolicyFile};
use proptest::prelude::*;

// ------------------------------------------------------------ generators

/// A token of generated policy text; a doc comment must sit on its own line.
#[derive(Clone, Debug)]
enum Tok {
    Word(String),
    Doc(String),
}

fn word(text: &str) -> Tok {
    Tok::Word(text.to_string())
}

const RESERVED: &[&str] = &[
    "and", "or", "not", "in", "where", "as", "if", "then", "else", "true", "false", "null", "let",
    "require", "message", "severity", "for",
];

fn ident() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z_][a-z0-9_]{0,5}",
        1 => prop::sample::select(vec!["人口", "村名", "门槛", "x_1", "rule", "key", "policy", "list"])
            .prop_map(String::from),
    ]
    .prop_filter("not a keyword", |name| !RESERVED.contains(&name.as_str()))
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof!["[0-9]{1,5}", "[0-9]{1,3}\\.[0-9]{1,3}", "[1-9]_[0-9]{3}"]
}

fn string() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => "[a-z 中文,.!/]{1,6}",
        1 => Just("{{".to_string()),
        1 => Just("}}".to_string()),
        1 => Just("\\n".to_string()),
        1 => Just("\\\"".to_string()),
        2 => ident().prop_map(|name| format!("{{{name}}}")),
        1 => (ident(), ident()).prop_map(|(a, b)| format!("{{ {a}.{b} ?? 0 }}")),
    ];
    prop::collection::vec(piece, 0..4).prop_map(|pieces| format!("\"{}\"", pieces.concat()))
}

fn expr() -> impl Strategy<Value = Vec<Tok>> {
    let leaf = prop_oneof![
        3 => ident().prop_map(|n| vec![Tok::Word(n)]),
        2 => number().prop_map(|n| vec![Tok::Word(n)]),
        1 => string().prop_map(|s| vec![Tok::Word(s)]),
        1 => prop::sample::select(vec!["true", "false", "null"]).prop_map(|w| vec![word(w)]),
    ];
    leaf.prop_recursive(4, 48, 4, |inner| {
        let binop = prop::sample::select(vec![
            "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "and", "or", "??",
        ]);
        prop_oneof![
            (inner.clone(), binop, inner.clone()).prop_map(|(a, op, b)| {
                let mut out = vec![word("(")];
                out.extend(a);
                out.push(word(op));
                out.extend(b);
                out.push(word(")"));
                out
            }),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| {
                let mut out = vec![word("(")];
                out.extend(a);
                out.extend([word("not"), word("in")]);
                out.extend(b);
                out.push(word(")"));
                out
            }),
            inner.clone().prop_map(|a| {
                let mut out = vec![word("("), word("not"), word("(")];
                out.extend(a);
                out.extend([word(")"), word(")")]);
                out
            }),
            inner.clone().prop_map(|a| {
                let mut out = vec![word("-"), word("(")];
                out.extend(a);
                out.push(word(")"));
                out
            }),
            (ident(), prop::collection::vec(ident(), 1..3)).prop_map(|(base, fields)| {
                let mut out = vec![Tok::Word(base)];
                for field in fields {
                    out.push(word("."));
                    out.push(Tok::Word(field));
                }
                out
            }),
            (ident(), inner.clone()).prop_map(|(base, index)| {
                let mut out = vec![Tok::Word(base), word("[")];
                out.extend(index);
                out.push(word("]"));
                out
            }),
            (
                ident(),
                prop::collection::vec(inner.clone(), 0..3),
                any::<bool>()
            )
                .prop_map(|(name, args, trailing)| {
                    let mut out = vec![Tok::Word(name), word("(")];
                    for (idx, arg) in args.iter().enumerate() {
                        if idx > 0 {
                            out.push(word(","));
                        }
                        out.extend(arg.iter().cloned());
                    }
                    if trailing && !args.is_empty() {
                        out.push(word(","));
                    }
                    out.push(word(")"));
                    out
                }),
            (prop::collection::vec((inner.clone(), prop::option::of(inner.clone())), 0..4))
                .prop_map(|elems| {
                    let mut out = vec![word("[")];
                    for (idx, (value, condition)) in elems.into_iter().enumerate() {
                        if idx > 0 {
                            out.push(word(","));
                        }
                        out.extend(value);
                        if let Some(condition) = condition {
                            out.push(word("if"));
                            out.extend(condition);
                        }
                    }
                    out.push(word("]"));
                    out
                }),
            (prop::collection::vec((inner.clone(), inner.clone()), 0..3)).prop_map(|entries| {
                let mut out = vec![word("{")];
                for (idx, (key, value)) in entries.into_iter().enumerate() {
                    if idx > 0 {
                        out.push(word(","));
                    }
                    out.extend(key);
                    out.push(word(":"));
                    out.extend(value);
                }
                out.push(word("}"));
                out
            }),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(c, a, b)| {
                let mut out = vec![word("("), word("if")];
                out.extend(c);
                out.push(word("then"));
                out.extend(a);
                out.push(word("else"));
                out.extend(b);
                out.push(word(")"));
                out
            }),
            (inner.clone(), prop::option::of(ident()), inner).prop_map(|(source, binder, c)| {
                let mut out = vec![word("(")];
                out.extend(source);
                if let Some(binder) = binder {
                    out.push(word("as"));
                    out.push(Tok::Word(binder));
                }
                out.push(word("where"));
                out.extend(c);
                out.push(word(")"));
                out
            }),
        ]
    })
}

fn docs() -> impl Strategy<Value = Vec<Tok>> {
    prop::collection::vec("[a-z 中]{0,8}", 0..2).prop_map(|lines| {
        lines
            .into_iter()
            .map(|l| Tok::Doc(format!("/// {l}")))
            .collect()
    })
}

fn type_expr() -> impl Strategy<Value = Vec<Tok>> {
    let base = prop_oneof![
        ident().prop_map(|n| vec![Tok::Word(n)]),
        ident().prop_map(|n| vec![word("list"), word("<"), Tok::Word(n), word(">")]),
        (ident(), ident()).prop_map(|(k, v)| vec![
            word("map"),
            word("<"),
            Tok::Word(k),
            word(","),
            Tok::Word(v),
            word(">")
        ]),
        ident().prop_map(|n| vec![word("ref"), Tok::Word(n)]),
        prop::collection::vec(ident(), 0..3).prop_map(|vs| {
            let mut out = vec![word("enum"), word("{")];
            for (idx, v) in vs.into_iter().enumerate() {
                if idx > 0 {
                    out.push(word(","));
                }
                out.push(Tok::Word(v));
            }
            out.push(word("}"));
            out
        }),
    ];
    (base, any::<bool>()).prop_map(|(mut tokens, optional)| {
        if optional {
            tokens.push(word("?"));
        }
        tokens
    })
}

fn statement() -> impl Strategy<Value = Vec<Tok>> {
    prop_oneof![
        (docs(), ident(), expr()).prop_map(|(d, v, e)| {
            let mut out = d;
            out.extend([word("for"), Tok::Word(v), word("in")]);
            out.extend(e);
            out
        }),
        (docs(), ident(), expr()).prop_map(|(d, v, e)| {
            let mut out = d;
            out.extend([word("let"), Tok::Word(v), word("=")]);
            out.extend(e);
            out
        }),
        (docs(), expr()).prop_map(|(d, e)| {
            let mut out = d;
            out.push(word("require"));
            out.extend(e);
            out
        }),
        (docs(), expr()).prop_map(|(d, e)| {
            let mut out = d;
            out.push(word("message"));
            out.extend(e);
            out
        }),
        ident().prop_map(|level| vec![word("severity"), Tok::Word(level)]),
    ]
}

fn entries(
    open: &'static str,
    close: &'static str,
    labelled: bool,
) -> impl Strategy<Value = Vec<Tok>> {
    prop::collection::vec((ident(), expr()), 0..3).prop_map(move |entries| {
        let mut out = vec![word(open)];
        for (idx, (label, value)) in entries.into_iter().enumerate() {
            if idx > 0 {
                out.push(word(","));
            }
            if labelled || idx % 2 == 0 {
                out.extend([Tok::Word(label), word(":")]);
            }
            out.extend(value);
        }
        out.push(word(close));
        out
    })
}

fn policy_item() -> impl Strategy<Value = Vec<Tok>> {
    prop_oneof![
        string().prop_map(|s| vec![word("source"), Tok::Word(s)]),
        (string(), prop::option::of(string())).prop_map(|(from, until)| {
            let mut out = vec![word("effective"), word("from"), Tok::Word(from)];
            if let Some(until) = until {
                out.extend([word("until"), Tok::Word(until)]);
            }
            out
        }),
        entries("{", "}", true).prop_map(|body| {
            let mut out = vec![word("scope")];
            out.extend(body);
            out
        }),
        (docs(), ident(), type_expr(), expr()).prop_map(|(d, name, ty, e)| {
            let mut out = d;
            out.extend([word("param"), Tok::Word(name), word(":")]);
            out.extend(ty);
            out.push(word("="));
            out.extend(e);
            out
        }),
        (
            docs(),
            ident(),
            prop::option::of(string()),
            prop::collection::vec(statement(), 0..4)
        )
            .prop_map(|(d, name, title, stmts)| {
                let mut out = d;
                out.extend([word("rule"), Tok::Word(name)]);
                out.extend(title.map(Tok::Word));
                out.push(word("{"));
                out.extend(stmts.into_iter().flatten());
                out.push(word("}"));
                out
            }),
    ]
}

fn schema_item() -> impl Strategy<Value = Vec<Tok>> {
    let field = (
        docs(),
        ident(),
        prop_oneof![
            type_expr(),
            (ident(), ident()).prop_map(|(c, f)| vec![
                word("backref"),
                Tok::Word(c),
                word("."),
                Tok::Word(f)
            ]),
        ],
        prop::option::of(string()),
    )
        .prop_map(|(d, name, kind, title)| {
            let mut out = d;
            out.extend([Tok::Word(name), word(":")]);
            out.extend(kind);
            out.extend(title.map(Tok::Word));
            out
        });
    let field = prop_oneof![
        4 => field,
        1 => entries("{", "}", false).prop_map(|body| {
            let mut out = vec![word("path")];
            out.extend(body);
            out
        }),
    ];
    prop_oneof![
        (
            docs(),
            ident(),
            prop::collection::vec(ident(), 0..3),
            prop::option::of(string()),
            prop::collection::vec(field, 0..4)
        )
            .prop_map(|(d, name, key, title, fields)| {
                let mut out = d;
                out.extend([word("collection"), Tok::Word(name)]);
                match key.len() {
                    0 => {}
                    1 => out.extend([word("key"), Tok::Word(key[0].clone())]),
                    _ => {
                        out.extend([word("key"), word("(")]);
                        for (idx, k) in key.into_iter().enumerate() {
                            if idx > 0 {
                                out.push(word(","));
                            }
                            out.push(Tok::Word(k));
                        }
                        out.push(word(")"));
                    }
                }
                out.extend(title.map(Tok::Word));
                out.push(word("{"));
                out.extend(fields.into_iter().flatten());
                out.push(word("}"));
                out
            }),
        (docs(), ident(), prop::collection::vec(ident(), 0..4)).prop_map(|(d, name, vs)| {
            let mut out = d;
            out.extend([word("enum"), Tok::Word(name), word("{")]);
            for (idx, v) in vs.into_iter().enumerate() {
                if idx > 0 {
                    out.push(word(","));
                }
                out.push(Tok::Word(v));
            }
            out.push(word("}"));
            out
        }),
    ]
}

fn fn_signature() -> impl Strategy<Value = Vec<Tok>> {
    (
        ident(),
        prop::collection::vec((ident(), type_expr()), 0..3),
        type_expr(),
    )
        .prop_map(|(name, params, ret)| {
            let mut out = vec![word("fn"), Tok::Word(name), word("(")];
            for (idx, (param, ty)) in params.into_iter().enumerate() {
                if idx > 0 {
                    out.push(word(","));
                }
                out.extend([Tok::Word(param), word(":")]);
                out.extend(ty);
            }
            out.extend([word(")"), word("->")]);
            out.extend(ret);
            out
        })
}

fn test_item() -> impl Strategy<Value = Vec<Tok>> {
    let record = || entries("{", "}", true);
    prop_oneof![
        prop::collection::vec(string(), 1..3).prop_map(|rules| {
            let mut out = vec![word("rules")];
            for (idx, rule) in rules.into_iter().enumerate() {
                if idx > 0 {
                    out.push(word(","));
                }
                out.push(Tok::Word(rule));
            }
            out
        }),
        (ident(), ident(), expr()).prop_map(|(p, n, e)| {
            let mut out = vec![
                word("param"),
                Tok::Word(p),
                word("."),
                Tok::Word(n),
                word("="),
            ];
            out.extend(e);
            out
        }),
        string().prop_map(|s| vec![word("data"), Tok::Word(s)]),
        string().prop_map(|s| vec![word("as_of"), Tok::Word(s)]),
        record().prop_map(|r| {
            let mut out = vec![word("waive")];
            out.extend(r);
            out
        }),
        prop::collection::vec((ident(), prop::collection::vec(record(), 0..3)), 0..3).prop_map(
            |collections| {
                let mut out = vec![word("data"), word("{")];
                for (name, records) in collections {
                    out.extend([Tok::Word(name), word("[")]);
                    for (idx, record) in records.into_iter().enumerate() {
                        if idx > 0 {
                            out.push(word(","));
                        }
                        out.extend(record);
                    }
                    out.push(word("]"));
                }
                out.push(word("}"));
                out
            }
        ),
        prop::collection::vec((ident(), ident(), string()), 0..3).prop_map(|expected| {
            let mut out = vec![word("expect"), word("{")];
            for (policy, rule, key) in expected {
                out.extend([
                    Tok::Word(policy),
                    word("."),
                    Tok::Word(rule),
                    Tok::Word(key),
                ]);
            }
            out.push(word("}"));
            out
        }),
    ]
}

fn item() -> impl Strategy<Value = Vec<Tok>> {
    prop_oneof![
        1 => string().prop_map(|s| vec![word("import"), Tok::Word(s)]),
        1 => (docs(), fn_signature(), expr()).prop_map(|(d, sig, body)| {
            let mut out = d;
            out.extend(sig);
            out.push(word("="));
            out.extend(body);
            out
        }),
        1 => (string(), prop::collection::vec((docs(), fn_signature()), 0..3)).prop_map(|(path, fns)| {
            let mut out = vec![word("script"), Tok::Word(path), word("{")];
            for (d, sig) in fns {
                out.extend(d);
                out.extend(sig);
            }
            out.push(word("}"));
            out
        }),
        1 => (ident(), prop::option::of(string()), prop::collection::vec(test_item(), 0..4)).prop_map(|(name, title, items)| {
            let mut out = vec![word("test"), Tok::Word(name)];
            out.extend(title.map(Tok::Word));
            out.push(word("{"));
            out.extend(items.into_iter().flatten());
            out.push(word("}"));
            out
        }),
        3 => (docs(), ident(), prop::option::of(string()), prop::option::of(ident()),
              prop::collection::vec(policy_item(), 0..4))
            .prop_map(|(d, name, title, parent, items)| {
                let mut out = d;
                out.extend([word("policy"), Tok::Word(name)]);
                out.extend(title.map(Tok::Word));
                if let Some(parent) = parent {
                    out.extend([word("extends"), Tok::Word(parent)]);
                }
                out.push(word("{"));
                out.extend(items.into_iter().flatten());
                out.push(word("}"));
                out
            }),
        1 => (docs(), prop::option::of(ident()), prop::collection::vec(schema_item(), 0..3))
            .prop_map(|(d, name, items)| {
                let mut out = d;
                out.push(word("schema"));
                out.extend(name.map(Tok::Word));
                out.push(word("{"));
                out.extend(items.into_iter().flatten());
                out.push(word("}"));
                out
            }),
    ]
}

/// What goes between two tokens: whitespace of every kind the grammar
/// allows, and comments.
fn separator() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => Just(" ".to_string()),
        2 => Just("\n".to_string()),
        1 => Just("\n\n\n".to_string()),
        1 => Just("\t ".to_string()),
        1 => Just(" \u{3000}".to_string()),
        1 => "[ a-z中]{0,6}".prop_map(|c| format!(" //{c}\n")),
        1 => "[ a-z]{0,6}".prop_map(|c| format!("\n  // {c}  \n\n")),
        1 => Just(" ////\n".to_string()),
    ]
}

/// A whole file: items joined by random separators.
fn program() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(item(), 1..3),
        prop::collection::vec(separator(), 256),
    )
        .prop_map(|(items, separators)| {
            let mut text = String::new();
            for (idx, tok) in items.into_iter().flatten().enumerate() {
                match tok {
                    Tok::Word(w) => {
                        text.push_str(&separators[idx % separators.len()]);
                        text.push_str(&w);
                    }
                    Tok::Doc(d) => {
                        text.push('\n');
                        text.push_str(&d);
                        text.push('\n');
                    }
                }
            }
            text.push_str(&separators[0]);
            text
        })
}

/// Policy-language token soup: mostly not a program, often close to one.
fn token_soup() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        prop::sample::select(vec![
            "policy",
            "schema",
            "rule",
            "for",
            "in",
            "where",
            "require",
            "message",
            "let",
            "param",
            "collection",
            "key",
            "enum",
            "ref",
            "list",
            "map",
            "backref",
            "extends",
            "source",
            "severity",
            "{",
            "}",
            "(",
            ")",
            "[",
            "]",
            "<",
            ">",
            ",",
            ":",
            "=",
            "==",
            ".",
            "?",
            "??",
            "+",
            "-",
            "/",
            "*",
            "%",
            "and",
            "or",
            "not",
            "if",
            "then",
            "else",
            "null",
            "\"",
            "\"{",
            "}\"",
            "///",
            "//",
            "\n",
            "1",
            "2.5",
            "x",
            "y",
        ])
        .prop_map(String::from),
        ident(),
        string(),
    ];
    prop::collection::vec(token, 0..40).prop_map(|tokens| tokens.join(" "))
}

// ------------------------------------------------------------ helpers

fn comment_texts(text: &str) -> Vec<String> {
    let src = SourceText::from_string("t", text);
    match bangfu::syntax::parse_file(&src) {
        Ok(mut pairs) => pairs
            .next()
            .map(|file| comments::all_comment_texts(text, file))
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

fn test_plan() -> &'static Plan {
    static PLAN: OnceLock<Plan> = OnceLock::new();
    PLAN.get_or_init(|| {
        let root = env!("CARGO_MANIFEST_DIR");
        let read =
            |path: &str| std::fs::read_to_string(format!("{root}/{path}")).unwrap_or_default();
        let files = [
            PolicyFile::new("schema.bangfu", read("tests/ui/schema.bangfu")),
            PolicyFile::new("policy.bangfu", read("tests/ui/data/policy.bangfu")),
        ];
        match bangfu::compile_policies(&files, &[]) {
            Ok(plan) => plan,
            Err(errors) => panic!("the ui test policies do not compile: {errors:?}"),
        }
    })
}

const VALID_JSON: &str = r#"{"people": [
  {"id": "a", "name": "Ann", "age": 30, "score": 1.5, "active": true, "born": null, "team": "t1", "kind": "small"},
  {"id": "b", "name": "Bo", "age": 12, "score": 2, "active": false, "born": "2014-05-01", "team": null, "kind": "large"}
], "teams": [{"id": "t1", "label": "one"}]}"#;

const VALID_YAML: &str = "people:\n  - id: a\n    name: Ann\n    age: 30\n    score: 1.5\n    active: true\n    team: t1\n    kind: small\n  - {id: b, name: Bo, age: 12, score: 2, active: false, born: 2014-05-01, kind: large}\nteams:\n  - id: t1\n    label: one\n";

const VALID_CSV: &str = "id,name,age,score,active,born,team,kind\na,Ann,30,1.5,true,,t1,small\nb,\"Bo, Jr\",12,2,false,2014-05-01,,large\n";

fn mutate(base: &str, edits: &[(prop::sample::Index, u8, u8)]) -> Vec<u8> {
    let mut bytes = base.as_bytes().to_vec();
    for (at, byte, kind) in edits {
        if bytes.is_empty() {
            bytes.push(*byte);
            continue;
        }
        let idx = at.index(bytes.len());
        match kind % 3 {
            0 => bytes[idx] = *byte,
            1 => bytes.insert(idx, *byte),
            _ => {
                bytes.remove(idx);
            }
        }
    }
    bytes
}

/// Loads and, when the data loads, evaluates: neither may panic.
fn load_and_run(kind: &str, bytes: Vec<u8>) {
    let plan = test_plan();
    let schema = &plan.schema.data;
    let loaded = match kind {
        "json" => bangfu::data::json::load(
            SourceText::new("d.json", std::sync::Arc::new(bytes)),
            schema,
        ),
        "yaml" => bangfu::data::yaml::load(
            SourceText::new("d.yaml", std::sync::Arc::new(bytes)),
            schema,
        ),
        _ => {
            let dir = match tempfile::tempdir() {
                Ok(dir) => dir,
                Err(_) => return,
            };
            if std::fs::write(dir.path().join("people.csv"), &bytes).is_err() {
                return;
            }
            bangfu::data::csv::load_dir(dir.path(), schema)
        }
    };
    if let Ok(dataset) = loaded {
        let evaluation = bangfu::evaluate(plan, &dataset, &|_| true);
        // Every violation must render: the JSON shape is the one all formats share.
        let _ = serde_json::to_string(&evaluation.violations);
    }
}

// ------------------------------------------------------------ properties

proptest! {
    #[test]
    fn parse_never_panics_on_any_text(text in "\\PC{0,200}") {
        let src = SourceText::from_string("t.bangfu", text.as_str());
        let _ = bangfu::syntax::recover::syntax_errors(&src);
        let _ = format_str(&text);
        let _ = analyze(&[PolicyFile::new("t.bangfu", text)], &[], Options::default());
    }

    #[test]
    fn parse_never_panics_on_token_soup(text in token_soup()) {
        let src = SourceText::from_string("t.bangfu", text.as_str());
        let _ = bangfu::syntax::recover::syntax_errors(&src);
        let _ = format_str(&text);
        let _ = analyze(&[PolicyFile::new("t.bangfu", text)], &[], Options::default());
    }

    #[test]
    fn parse_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let src = SourceText::new("t.bangfu", std::sync::Arc::new(bytes));
        let _ = bangfu::syntax::recover::syntax_errors(&src);
        let _ = bangfu::fmt::format(&src);
    }

    #[test]
    fn checks_never_panic_on_valid_programs(text in program()) {
        let schema = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ui/schema.bangfu")).unwrap_or_default();
        let files = [PolicyFile::new("schema.bangfu", schema), PolicyFile::new("t.bangfu", text)];
        let _ = analyze(&files, &[], Options { bundled_schema_fallback: true });
    }

    #[test]
    fn fmt_keeps_programs_and_comments_and_is_idempotent(text in program()) {
        let formatted = match format_str(&text) {
            Ok(formatted) => formatted,
            Err(error) => return Err(TestCaseError::fail(format!("generated text does not parse: {error}\n{text}"))),
        };
        let again = format_str(&formatted).map_err(|e| TestCaseError::fail(format!("fmt output does not parse: {e}\n{formatted}")))?;
        prop_assert_eq!(&again, &formatted, "not idempotent; input:\n{}", text);
        prop_assert_eq!(
            normalize::shape_of(&formatted).ok(),
            normalize::shape_of(&text).ok(),
            "the AST changed; input:\n{}\noutput:\n{}", text, formatted
        );
        prop_assert_eq!(comment_texts(&formatted), comment_texts(&text), "comments changed; output:\n{}", formatted);
        prop_assert!(formatted.lines().all(|l| l == l.trim_end()), "trailing whitespace:\n{}", formatted);
    }

    #[test]
    fn fmt_of_edited_bundled_policies(
        file in 0usize..4,
        edits in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(b" \n/{}()\"x1.,:=".to_vec()), 0u8..3), 1..4),
    ) {
        let bundled = bangfu::bundled_policies();
        let base = &bundled[file % bundled.len()].text;
        let Ok(text) = String::from_utf8(mutate(base, &edits)) else { return Ok(()) };
        if let Ok(formatted) = format_str(&text) {
            prop_assert_eq!(format_str(&formatted).ok(), Some(formatted.clone()));
            prop_assert_eq!(normalize::shape_of(&formatted).ok(), normalize::shape_of(&text).ok());
            prop_assert_eq!(comment_texts(&formatted), comment_texts(&text));
        }
    }

    #[test]
    fn load_json_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        load_and_run("json", bytes);
    }

    #[test]
    fn load_json_edited_never_panics(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8)) {
        load_and_run("json", mutate(VALID_JSON, &edits));
    }

    #[test]
    fn load_yaml_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        load_and_run("yaml", bytes);
    }

    #[test]
    fn load_yaml_edited_never_panics(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8)) {
        load_and_run("yaml", mutate(VALID_YAML, &edits));
    }

    #[test]
    fn load_csv_edited_never_panics(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8)) {
        load_and_run("csv", mutate(VALID_CSV, &edits));
    }
}
