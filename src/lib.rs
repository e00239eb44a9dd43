//! bangfu: a declarative policy-rules engine.
//!
//! Policy authors write rule files in the bangfu language; the engine checks
//! structured data (JSON, YAML, a directory of CSV files) against them and
//! returns explained violations.
//!
//! The pipeline, one module per stage:
//!
//! ```text
//! policy text ─syntax─▶ parse tree ─ast─▶ AST ─resolve─▶ ResolvedProgram ─check─▶ CheckedProgram ─compile─▶ Plan
//! data files ─data─▶ Dataset (typed columns, interned strings, resolved references, positions)
//! Plan × Dataset ─eval─▶ Outcomes ─explain─▶ Violations ─render─▶ human | json | jsonl
//! ```
//!
//! ```
//! let files = vec![bangfu::PolicyFile::new("p.bangfu", r#"
//!     schema { collection people key id { id: string  age: int } }
//!     policy adults { rule adult { for p in people  require p.age >= 18 } }
//! "#)];
//! let plan = bangfu::compile_policies(&files, &[]).map_err(|e| e.len())?;
//! assert_eq!(plan.rules[0].id, "adults.adult");
//! # Ok::<(), usize>(())
//! ```
#![warn(missing_docs)]

pub mod analyze;
pub mod ast;
pub mod check;
pub mod cli;
pub mod compile;
pub mod data;
pub mod diag;
pub mod eval;
pub mod explain;
pub mod fmt;
pub mod render;
pub mod resolve;
pub mod source;
pub mod syntax;
pub mod value;

use std::path::Path;

use miette::Diagnostic;
use thiserror::Error;

pub use compile::Plan;
pub use data::Dataset;
pub use explain::{Summary, Violation};

mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
}

/// Any error of any stage.
#[derive(Debug, Error, Diagnostic)]
pub enum Error {
    /// Syntax.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Syntax(#[from] syntax::SyntaxError),
    /// Resolve.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Resolve(#[from] resolve::ResolveError),
    /// Check.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Check(#[from] check::CheckError),
    /// The checks that need a typed program (constant requires, warnings).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Lint(#[from] check::lint::LintError),
    /// Compile.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Compile(#[from] compile::CompileError),
    /// Data.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Data(#[from] data::DataError),
    /// Evaluation.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Eval(#[from] eval::EvalError),
}

/// A policy file: its name (for diagnostics) and text.
#[derive(Clone, Debug)]
pub struct PolicyFile {
    /// Name shown in diagnostics.
    pub name: String,
    /// Text.
    pub text: String,
}

impl PolicyFile {
    /// A policy file.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> PolicyFile {
        PolicyFile {
            name: name.into(),
            text: text.into(),
        }
    }
}

/// The policies bundled with bangfu (`policies/` of the repository).
pub fn bundled_policies() -> Vec<PolicyFile> {
    bundled::BUNDLED
        .iter()
        .map(|(name, text)| PolicyFile::new(*name, *text))
        .collect()
}

/// A `--param` override as written: `POLICY.NAME` and the value's text.
#[derive(Clone, Debug)]
pub struct ParamArg {
    /// The whole argument, for diagnostics.
    pub arg: String,
    /// Byte range of the policy name in `arg`.
    pub policy: std::ops::Range<usize>,
    /// Byte range of the param name in `arg`.
    pub param: std::ops::Range<usize>,
    /// Byte range of the value in `arg`.
    pub value: std::ops::Range<usize>,
}

impl ParamArg {
    /// Splits `POLICY.NAME=VALUE`; `None` when the shape is wrong.
    pub fn parse(arg: &str) -> Option<ParamArg> {
        let eq = arg.find('=')?;
        let dot = arg[..eq].find('.')?;
        if dot == 0 || dot + 1 == eq {
            return None;
        }
        Some(ParamArg {
            arg: arg.to_string(),
            policy: 0..dot,
            param: dot + 1..eq,
            value: eq + 1..arg.len(),
        })
    }
}

/// Parses, resolves, checks and compiles policy files with param overrides.
///
/// Every stage reports all the errors it finds (see [`analyze`]); warnings
/// are dropped here: [`analyze::analyze`] gives them too.
pub fn compile_policies(files: &[PolicyFile], params: &[ParamArg]) -> Result<Plan, Vec<Error>> {
    let analysis = analyze::analyze(files, params, analyze::Options::default());
    match analysis.plan {
        Some(plan) if analysis.errors.is_empty() => Ok(plan),
        _ => Err(analysis.errors),
    }
}

/// Loads the dataset at `path` for `plan`.
pub fn load_data(path: &Path, plan: &Plan) -> Result<Dataset, Vec<Error>> {
    data::load(path, &plan.schema.data)
        .map_err(|errors| errors.into_iter().map(Error::from).collect())
}

/// The result of evaluating a plan.
#[derive(Debug)]
pub struct Evaluation {
    /// Violations, in rule order then record order.
    pub violations: Vec<Violation>,
    /// Counts.
    pub summary: Summary,
    /// Runtime errors (each on one entity; the others were evaluated).
    pub errors: Vec<Error>,
}

/// Evaluates the rules of `plan` for which `selected` holds over `data`.
pub fn evaluate(
    plan: &Plan,
    data: &Dataset,
    selected: &dyn Fn(&compile::RulePlan) -> bool,
) -> Evaluation {
    let evaluator = eval::Evaluator::new(plan, data);
    let (outcomes, errors) = evaluator.run(selected);
    let rules: Vec<usize> = plan
        .rules
        .iter()
        .enumerate()
        .filter(|(_, rule)| selected(rule))
        .map(|(idx, _)| idx)
        .collect();
    let (violations, summary) = explain::explain(plan, data, &evaluator, &outcomes, &rules);
    Evaluation {
        violations,
        summary,
        errors: errors.into_iter().map(Error::from).collect(),
    }
}
