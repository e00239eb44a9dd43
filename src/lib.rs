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
pub mod policytest;
pub mod program;
pub mod render;
pub mod repl;
pub mod resolve;
pub mod source;
pub mod syntax;
pub mod value;
pub mod waiver;

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

pub use program::{FileOrigin, ParamArg, PolicyFile, TestCase};

/// The policies bundled with bangfu (`policies/` of the repository), except
/// policy tests (`*_test.bangfu`), which `bangfu test` reads.
pub fn bundled_policies() -> Vec<PolicyFile> {
    bundled::BUNDLED
        .iter()
        .filter(|(name, _)| name.ends_with(".bangfu") && !name.ends_with("_test.bangfu"))
        .map(|(name, text)| PolicyFile::new(*name, *text))
        .collect()
}

/// Every bundled `.bangfu` file, tests included.
pub fn bundled_policy_files_with_tests() -> Vec<PolicyFile> {
    bundled::BUNDLED
        .iter()
        .filter(|(name, _)| name.ends_with(".bangfu"))
        .map(|(name, text)| PolicyFile::new(*name, *text))
        .collect()
}

/// The text of a bundled file (policies, rhai scripts, test data) by its
/// path relative to the repository (`policies/…`).
pub fn bundled_file(name: &str) -> Option<&'static str> {
    bundled::BUNDLED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

/// Parses, resolves, checks and compiles policy files (and their imports)
/// with param overrides.
pub fn compile_policies(files: &[PolicyFile], params: &[ParamArg]) -> Result<Plan, Vec<Error>> {
    program::compile(files, params).map(|frontend| frontend.plan)
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
    evaluate_with(
        plan,
        data,
        selected,
        EvalOptions {
            explain: true,
            cache: None,
            interpret: false,
        },
    )
}

/// How much [`evaluate_with`] computes, and what it may reuse.
#[derive(Clone, Default)]
pub struct EvalOptions {
    /// Fill in paths, deciding terms and suggestions (the REPL skips them
    /// and explains one violation on demand).
    pub explain: bool,
    /// Indexes built by earlier evaluations over the same data.
    pub cache: Option<eval::IndexCache>,
    /// Evaluate with the tree-walking interpreter instead of closures
    /// compiled per rule (slower; the reference the compiled form is tested
    /// against).
    pub interpret: bool,
}

/// [`evaluate`] with options.
pub fn evaluate_with(
    plan: &Plan,
    data: &Dataset,
    selected: &dyn Fn(&compile::RulePlan) -> bool,
    options: EvalOptions,
) -> Evaluation {
    let mut pending = evaluate_pending(plan, data, selected, options);
    let violations = pending.explain(0..pending.len());
    Evaluation {
        violations,
        summary: pending.summary,
        errors: pending.errors,
    }
}

/// Rules evaluated, their violations not explained yet: a writer that
/// streams (JSON Lines) explains and writes them a window at a time, so
/// that they never all sit in memory at once.
pub struct Pending<'a> {
    evaluator: eval::Evaluator<'a>,
    explainer: explain::Explainer<'a>,
    outcomes: Vec<eval::Outcome>,
    positions: Vec<Option<(&'a str, usize, usize)>>,
    explain: bool,
    /// Counts.
    pub summary: Summary,
    /// Runtime errors (each on one entity; the others were evaluated).
    pub errors: Vec<Error>,
}

/// Evaluates the rules of `plan` for which `selected` holds over `data`,
/// leaving the violations to [`Pending::explain`].
pub fn evaluate_pending<'a>(
    plan: &'a Plan,
    data: &'a Dataset,
    selected: &dyn Fn(&compile::RulePlan) -> bool,
    options: EvalOptions,
) -> Pending<'a> {
    let mut evaluator = eval::Evaluator::with_cache(plan, data, options.cache.clone());
    if options.interpret {
        evaluator = evaluator.interpreted();
    }
    let (outcomes, errors) = evaluator.run(selected);
    let rules: Vec<usize> = plan
        .rules
        .iter()
        .enumerate()
        .filter(|(_, rule)| selected(rule))
        .map(|(idx, _)| idx)
        .collect();
    let explainer = explain::Explainer::new(plan, data);
    Pending {
        summary: explain::summarize(plan, data, &outcomes, &rules),
        positions: explainer.positions(&outcomes),
        explainer,
        evaluator,
        outcomes,
        explain: options.explain,
        errors: errors.into_iter().map(Error::from).collect(),
    }
}

impl Pending<'_> {
    /// The number of violations.
    pub fn len(&self) -> usize {
        self.outcomes.len()
    }

    /// Whether there is no violation.
    pub fn is_empty(&self) -> bool {
        self.outcomes.is_empty()
    }

    /// Violations `range` (in rule order, then record order), explained.
    /// Each violation can be explained once: its message moves into it.
    pub fn explain(&mut self, range: std::ops::Range<usize>) -> Vec<Violation> {
        let positions = &self.positions[range.clone()];
        let outcomes = &mut self.outcomes[range];
        let mut violations = {
            let _timing = data::Timing::start("explain: violations");
            self.explainer.explain(&self.evaluator, outcomes, positions)
        };
        if self.explain {
            let _timing = data::Timing::start("explain: terms and fixes");
            explain::enrich_all(
                self.evaluator.plan(),
                &self.evaluator,
                outcomes,
                &mut violations,
            );
        }
        violations
    }

    /// Violations `range`, explained `batch` at a time on the worker
    /// threads, each batch handed there to `each` with the index of its first
    /// violation: what `each` gives, in order. Without `enrich`, only what
    /// waivers and the exit status need: no paths, deciding terms or
    /// suggestions (violations past `--max-violations`). A streamed report
    /// serialises and drops each batch where it was explained, with no
    /// pause between explaining and writing.
    pub fn explain_batches<R: Send>(
        &mut self,
        range: std::ops::Range<usize>,
        batch: usize,
        enrich: bool,
        each: &(dyn Fn(usize, Vec<Violation>) -> R + Sync),
    ) -> Vec<R> {
        use rayon::prelude::*;
        let enrich = enrich && self.explain;
        let (explainer, evaluator) = (&self.explainer, &self.evaluator);
        let plan = evaluator.plan();
        let start = range.start;
        let batch = batch.max(1);
        self.outcomes[range.clone()]
            .par_chunks_mut(batch)
            .zip(self.positions[range].par_chunks(batch))
            .enumerate()
            .map(|(idx, (outcomes, positions))| {
                let mut violations: Vec<Violation> = outcomes
                    .iter_mut()
                    .zip(positions)
                    .map(|(outcome, position)| explainer.violation(evaluator, outcome, *position))
                    .collect();
                if enrich {
                    for (violation, outcome) in violations.iter_mut().zip(outcomes.iter()) {
                        explain::enrich(plan, evaluator, outcome, violation);
                    }
                }
                each(start + idx * batch, violations)
            })
            .collect()
    }
}

/// The full explanation of the violation of rule `rule_id` by the entity
/// with key `key`, or `None` when that entity does not violate the rule.
pub fn explain_violation(
    plan: &Plan,
    data: &Dataset,
    rule_id: &str,
    key: &str,
) -> Result<Option<explain::Explanation>, Vec<Error>> {
    let evaluator = eval::Evaluator::new(plan, data);
    let (mut outcomes, errors) = evaluator.run(&|rule| rule.id == rule_id);
    if !errors.is_empty() {
        return Err(errors.into_iter().map(Error::from).collect());
    }
    let rules: Vec<usize> = plan
        .rules
        .iter()
        .enumerate()
        .filter(|(_, rule)| rule.id == rule_id)
        .map(|(idx, _)| idx)
        .collect();
    let (violations, _) = explain::explain(plan, data, &evaluator, &mut outcomes, &rules);
    // Only the violation asked about is explained in full.
    let Some((mut violation, outcome)) = violations
        .into_iter()
        .zip(&outcomes)
        .find(|(violation, _)| violation.key == key)
    else {
        return Ok(None);
    };
    explain::enrich(plan, &evaluator, outcome, &mut violation);
    Ok(explain::explanation(plan, &evaluator, outcome, &violation))
}

/// Whether the entity `key` of rule `rule_id`'s collection exists (for a
/// dataset-level rule, whether `key` names the rule's policy).
pub fn entity_exists(plan: &Plan, data: &Dataset, rule_id: &str, key: &str) -> bool {
    let Some(rule) = plan.rules.iter().find(|rule| rule.id == rule_id) else {
        return false;
    };
    let Some(coll) = rule.entity else {
        return plan.policies[rule.policy].name == key;
    };
    let collection = &data.collections[coll as usize];
    if let Some(sym) = data.interner.get(key)
        && collection.has_key(&sym)
    {
        return true;
    }
    let evaluator = eval::Evaluator::new(plan, data);
    (0..collection.len as u32).any(|row| evaluator.key_text(coll, row) == key)
}
