//! `bangfu test`: policy tests kept next to the policies.
//!
//! A `test` block gives a small dataset (inline records or a data file),
//! param overrides, the rules it looks at, optional waivers and a date, and
//! the exact set of violations expected. The runner compiles the policies
//! with the test's params, loads the data through the same
//! [`DatasetBuilder`] the loaders use (so test data is type-checked against
//! the schema with positions in the test file), evaluates, and compares the
//! violations that count (waived ones excluded) with the expected set.
//!
//! **Invariant:** a test passes only when the two sets are equal; an
//! expectation can fail in both directions.

use std::collections::BTreeSet;
use std::path::Path;

use globset::{Glob, GlobSetBuilder};
use miette::SourceSpan;

use crate::ast::{ExprKind, Record, TestData, UnaryOp};
use crate::data::{Cell, DataFormat, Dataset, DatasetBuilder};
use crate::program::{FileOrigin, ParamArg, PolicyFile, TestCase};
use crate::resolve::ParamOrigin;
use crate::source::SourceText;
use crate::{Error, compile_policies, evaluate, waiver};

/// The outcome of one test.
#[derive(Debug)]
pub struct TestOutcome {
    /// `file::name`.
    pub name: String,
    /// Title.
    pub title: Option<String>,
    /// Expected `(rule, key)` pairs missing from the actual violations.
    pub missing: Vec<(String, String)>,
    /// Actual violations not expected.
    pub unexpected: Vec<(String, String)>,
    /// Errors that kept the test from running (policy, data, evaluation).
    pub errors: Vec<Error>,
    /// Mistakes in the test itself (a bad date, a pattern matching no rule).
    pub problems: Vec<String>,
}

impl TestOutcome {
    /// Whether the test passed.
    pub fn passed(&self) -> bool {
        self.missing.is_empty()
            && self.unexpected.is_empty()
            && self.errors.is_empty()
            && self.problems.is_empty()
    }
}

/// A constant of test data as a loader cell; lists give their items.
enum Literal {
    Cell(Cell<'static>),
    Text(String),
    List(Vec<Literal>),
}

fn literal(expr: &crate::ast::Expr) -> Option<Literal> {
    Some(match &expr.kind {
        ExprKind::Int(value) => Literal::Cell(Cell::Int(*value)),
        ExprKind::Number(value) => Literal::Cell(Cell::Number(*value)),
        ExprKind::Bool(value) => Literal::Cell(Cell::Bool(*value)),
        ExprKind::Null => Literal::Cell(Cell::Null),
        ExprKind::Str(text) => Literal::Text(text.clone()),
        // Enum values may be written bare: `role: first_secretary`.
        ExprKind::Name(name) => Literal::Text(name.clone()),
        ExprKind::Unary(UnaryOp::Neg, inner) => match literal(inner)? {
            Literal::Cell(Cell::Int(value)) => Literal::Cell(Cell::Int(-value)),
            Literal::Cell(Cell::Number(value)) => Literal::Cell(Cell::Number(-value)),
            _ => return None,
        },
        ExprKind::List(items) => Literal::List(
            items
                .iter()
                .map(|item| literal(&item.value))
                .collect::<Option<Vec<_>>>()?,
        ),
        _ => return None,
    })
}

fn bad_literal(
    src: &SourceText,
    span: crate::source::Span,
    collection: &str,
    field: &str,
) -> Error {
    Error::Data(
        crate::data::CellError::WrongType {
            expected: "a literal (number, string, bool, null or list)".into(),
            found: "an expression".into(),
        }
        .at(src, span.into(), collection, field),
    )
}

/// Builds a dataset from the inline records of a test.
fn inline_dataset(
    plan: &crate::Plan,
    src: &SourceText,
    collections: &[(crate::ast::Ident, Vec<Record>)],
) -> Result<Dataset, Vec<Error>> {
    let schema = &plan.schema.data;
    let mut builder = DatasetBuilder::new(schema);
    let src_id = builder.add_source(src.clone());
    let mut errors: Vec<Error> = Vec::new();
    for (name, records) in collections {
        let Some(coll) = builder.collection_index(&name.name) else {
            errors.push(
                builder
                    .unknown_collection(src, name.span.into(), &name.name)
                    .into(),
            );
            continue;
        };
        for record in records {
            builder.begin_record(coll, src_id, u64::from(record.span.start));
            for (field_name, value) in &record.fields {
                let Some(field) = builder.field_index(coll, &field_name.name) else {
                    errors.push(
                        builder
                            .unknown_field(src, field_name.span.into(), coll, &field_name.name)
                            .into(),
                    );
                    continue;
                };
                let span: SourceSpan = value.span.into();
                let result = match literal(value) {
                    None => {
                        errors.push(bad_literal(src, value.span, &name.name, &field_name.name));
                        continue;
                    }
                    Some(Literal::Cell(cell)) => builder.set(coll, field, cell),
                    Some(Literal::Text(text)) => builder.set(coll, field, Cell::Str(&text)),
                    Some(Literal::List(items)) => builder.begin_list(coll, field).and_then(|()| {
                        for item in &items {
                            match item {
                                Literal::Cell(cell) => builder.push_item(coll, field, *cell)?,
                                Literal::Text(text) => {
                                    builder.push_item(coll, field, Cell::Str(text))?
                                }
                                Literal::List(_) => {}
                            }
                        }
                        builder.end_list(coll, field);
                        Ok(())
                    }),
                };
                if let Err(error) = result {
                    errors.push(error.at(src, span, &name.name, &field_name.name).into());
                }
            }
            let missing = builder.end_record(coll);
            if !missing.is_empty() {
                errors.push(Error::Data(crate::data::DataError::MissingField {
                    src: src.clone(),
                    span: record.span.into(),
                    collection: name.name.clone(),
                    fields: missing
                        .iter()
                        .map(|f| format!("`{f}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                }));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    builder
        .finish(DataFormat::Yaml)
        .map_err(|errors| errors.into_iter().map(Error::from).collect())
}

fn test_params(case: &TestCase, src: &SourceText) -> Vec<ParamArg> {
    case.decl
        .params
        .iter()
        .filter_map(|(policy, param, value)| {
            let text = src
                .text()?
                .get(value.span.start as usize..value.span.end as usize)?;
            let mut arg = ParamArg::parse(&format!("{}.{}={}", policy.name, param.name, text))?;
            arg.origin = ParamOrigin::Cli;
            Some(arg)
        })
        .collect()
}

/// Runs one test against `files` (the policies under test).
pub fn run_test(files: &[PolicyFile], case: &TestCase) -> TestOutcome {
    let name = format!("{}::{}", case.file, case.decl.name.name);
    let mut outcome = TestOutcome {
        name,
        title: case.decl.title.clone(),
        missing: Vec::new(),
        unexpected: Vec::new(),
        errors: Vec::new(),
        problems: Vec::new(),
    };
    let file_text = files
        .iter()
        .find(|f| f.name == case.file)
        .map(|f| f.text.clone())
        .unwrap_or_default();
    let src = SourceText::from_string(case.file.as_str(), file_text);
    let params = test_params(case, &src);
    let plan = match compile_policies(files, &params) {
        Ok(plan) => plan,
        Err(errors) => {
            outcome.errors = errors;
            return outcome;
        }
    };
    let data = match &case.decl.data {
        None => inline_dataset(&plan, &src, &[]),
        Some(TestData::Inline(collections)) => inline_dataset(&plan, &src, collections),
        Some(TestData::File(path, _)) => match &case.origin {
            FileOrigin::Disk(file) => {
                crate::load_data(&file.parent().unwrap_or(Path::new(".")).join(path), &plan)
            }
            // A bundled test reads its data from the binary, so `bangfu test`
            // works from any directory.
            FileOrigin::Bundled => bundled_data(&case.file, path, &plan),
        },
    };
    let data = match data {
        Ok(data) => data,
        Err(errors) => {
            outcome.errors = errors;
            return outcome;
        }
    };
    let mut globs = GlobSetBuilder::new();
    for pattern in &case.decl.rules {
        match Glob::new(pattern) {
            Ok(glob) => {
                let matcher = glob.compile_matcher();
                if !(0..plan.rules.len()).any(|idx| {
                    plan.rule_aliases(idx)
                        .iter()
                        .any(|alias| matcher.is_match(alias))
                }) {
                    outcome
                        .problems
                        .push(format!("`rules \"{pattern}\"` matches no rule"));
                }
                globs.add(glob);
            }
            Err(error) => outcome.problems.push(format!(
                "`rules \"{pattern}\"` is not a valid pattern: {error}"
            )),
        }
    }
    let globs = globs.build().ok();
    let as_of = match &case.decl.as_of {
        Some((text, _)) => crate::data::parse_date(text).unwrap_or_else(|| {
            outcome
                .problems
                .push(format!("`as_of \"{text}\"` is not a YYYY-MM-DD date"));
            waiver::today()
        }),
        None => waiver::today(),
    };
    let selected = |rule: &crate::compile::RulePlan| {
        let idx = plan.rules.iter().position(|r| r.id == rule.id).unwrap_or(0);
        plan.policies[rule.policy].in_effect(as_of)
            && (case.decl.rules.is_empty()
                || globs.as_ref().is_some_and(|set| {
                    plan.rule_aliases(idx)
                        .iter()
                        .any(|alias| set.is_match(alias))
                }))
    };
    let mut evaluation = evaluate(&plan, &data, &selected);
    let mut waivers: Vec<waiver::Waiver> = Vec::new();
    for record in &case.decl.waivers {
        match waiver_of(record) {
            Some(waiver) => waivers.push(waiver),
            None => outcome
                .problems
                .push("a `waive` needs `rule`, `key` and `expires` (YYYY-MM-DD) as strings".into()),
        }
    }
    let _warnings = waiver::apply(&waivers, &mut evaluation.violations, as_of);
    outcome.errors.extend(evaluation.errors);
    let actual: BTreeSet<(String, String)> = evaluation
        .violations
        .iter()
        .filter(|v| !v.is_waived())
        .map(|v| (v.rule.to_string(), v.key.clone()))
        .collect();
    let expected: BTreeSet<(String, String)> = case
        .decl
        .expect
        .iter()
        .map(|e| (e.rule.clone(), e.key.clone()))
        .collect();
    outcome.missing = expected.difference(&actual).cloned().collect();
    outcome
        .unexpected
        .extend(actual.difference(&expected).cloned());
    outcome
}

/// Loads a data file bundled next to a bundled test file.
fn bundled_data(test_file: &str, path: &str, plan: &crate::Plan) -> Result<Dataset, Vec<Error>> {
    let dir = Path::new(test_file).parent().unwrap_or(Path::new(""));
    let name = dir.join(path).to_string_lossy().replace('\\', "/");
    let Some(text) = crate::bundled_file(&name) else {
        return Err(vec![Error::Data(crate::data::DataError::Unreadable {
            path: name,
            reason: "no such bundled file (JSON and YAML files under policies/ are bundled)".into(),
        })]);
    };
    let source = SourceText::from_string(name.as_str(), text);
    let schema = &plan.schema.data;
    let loaded = if name.ends_with(".yaml") || name.ends_with(".yml") {
        crate::data::yaml::load(source, schema)
    } else {
        crate::data::json::load(source, schema)
    };
    loaded.map_err(|errors| errors.into_iter().map(Error::from).collect())
}

fn waiver_of(record: &Record) -> Option<waiver::Waiver> {
    let field = |name: &str| {
        record
            .fields
            .iter()
            .find(|(f, _)| f.name == name)
            .and_then(|(_, e)| match &e.kind {
                ExprKind::Str(text) => Some(text.clone()),
                _ => None,
            })
    };
    waiver::waiver(
        &field("rule")?,
        &field("key")?,
        &field("reason").unwrap_or_default(),
        &field("approved_by").unwrap_or_default(),
        &field("expires")?,
    )
}
