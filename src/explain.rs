//! Stage `explain`: outcomes turned into [`Violation`]s a person or a CI job
//! can act on.
//!
//! Takes the plan, the dataset and the evaluator's [`Outcome`]s; gives
//! violations carrying the rule, its policy and citation, the entity and its
//! key, the message, the record's position in the data file and the span of
//! the failed condition in the policy.
//!
//! **Invariant:** this is the only place that turns byte offsets into lines
//! and columns for violations; renderers receive finished values.

use serde::Serialize;

use crate::compile::Plan;
use crate::data::{DataFormat, Dataset};
use crate::diag::Severity;
use crate::eval::{Evaluator, Outcome};
use crate::source::Span;

/// A position in a file, for output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Location {
    /// File name as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub column: usize,
    /// For CSV: the 1-based data row (the header is row 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<usize>,
}

/// A sub-term of a failed condition with the value it had.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Term {
    /// The sub-term as written in the policy (`count(secretaries)`).
    pub expr: String,
    /// Its value, as a message would show it (`2`).
    pub value: String,
    /// Where the value came from, for params: `default` or `cli`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// A param a rule used, with its value and where the value came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParamUse {
    /// Param name.
    pub name: String,
    /// Value, as written in bangfu syntax.
    pub value: String,
    /// `default` or `cli`.
    pub origin: String,
}

/// One labelled step of an entity's readable path (`county` → `黑水县`),
/// from the schema's `path` declarations.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PathStep {
    /// Label.
    pub label: String,
    /// Value.
    pub value: String,
}

/// One explained violation.
#[derive(Clone, Debug, Serialize)]
pub struct Violation {
    /// Rule id, `policy.rule`.
    pub rule: String,
    /// Rule title.
    pub title: String,
    /// Policy name.
    pub policy: String,
    /// Severity.
    pub severity: Severity,
    /// Collection of the entity, or `dataset`.
    pub entity: String,
    /// The entity's key.
    pub key: String,
    /// The message.
    pub message: String,
    /// Where the record is in the data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Where the failed condition is in the policy.
    pub policy_location: Location,
    /// The policy's source citations.
    pub sources: Vec<String>,
    /// The entity's readable path, outermost first (empty when the schema
    /// declares none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<PathStep>,
    /// The values that decided the failed condition.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub terms: Vec<Term>,
    /// The params of the rule's policy.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<ParamUse>,
    /// The smallest change that would satisfy the rule, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
    /// The waiver in force for this violation, if any: a waived violation
    /// is reported but does not count for the exit code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiver: Option<crate::waiver::Waiver>,
}

impl Violation {
    /// Whether a waiver covers it.
    pub fn is_waived(&self) -> bool {
        self.waiver.is_some()
    }
}

/// Counts over a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Records in the dataset.
    pub records: usize,
    /// Rules evaluated.
    pub rules: usize,
    /// Violations in all.
    pub violations: usize,
    /// Violations of severity error.
    pub errors: usize,
    /// Violations of severity warning.
    pub warnings: usize,
    /// Violations of severity info.
    pub infos: usize,
    /// Violations per rule id, in rule order (rules without any included).
    pub by_rule: Vec<(String, usize)>,
}

fn location(plan: &Plan, span: Span) -> Location {
    let src = plan.sources.get(span.src);
    let (line, column) = src.line_col(span.start as usize);
    Location {
        file: src.name().to_string(),
        line,
        column,
        row: None,
    }
}

/// Explains every outcome; `rules` are the evaluated rule indexes.
pub fn explain(
    plan: &Plan,
    data: &Dataset,
    evaluator: &Evaluator<'_>,
    outcomes: &[Outcome],
    rules: &[usize],
) -> (Vec<Violation>, Summary) {
    let mut violations = Vec::with_capacity(outcomes.len());
    let mut summary = Summary {
        records: data.collections.iter().map(|c| c.len).sum(),
        rules: rules.len(),
        ..Summary::default()
    };
    let mut per_rule = vec![0usize; plan.rules.len()];
    let records: Vec<(usize, usize)> = outcomes
        .iter()
        .map(
            |outcome| match (plan.rules[outcome.rule].entity, outcome.row) {
                (Some(coll), Some(row)) => (coll as usize, row as usize),
                _ => (usize::MAX, 0),
            },
        )
        .collect();
    let positions = data.positions_of(&records);
    for (outcome, position) in outcomes.iter().zip(positions) {
        let rule = &plan.rules[outcome.rule];
        let policy = &plan.policies[rule.policy];
        let (entity, key, record_location) = match (rule.entity, outcome.row) {
            (Some(coll), Some(row)) => {
                let name = plan.schema.data.collections[coll as usize].name.clone();
                let key = evaluator.key_text(coll, row);
                let record_location = position.map(|(file, line, column)| Location {
                    file: file.to_string(),
                    line,
                    column,
                    row: (data.format == DataFormat::Csv).then_some(row as usize + 1),
                });
                (name, key, record_location)
            }
            _ => ("dataset".to_string(), policy.name.clone(), None),
        };
        let condition_span = rule
            .requires
            .get(outcome.failed)
            .map_or(rule.span, |(_, span)| *span);
        per_rule[outcome.rule] += 1;
        match rule.severity {
            Severity::Error => summary.errors += 1,
            Severity::Warning => summary.warnings += 1,
            Severity::Info => summary.infos += 1,
        }
        violations.push(Violation {
            rule: rule.id.clone(),
            title: rule.title.clone(),
            policy: policy.name.clone(),
            severity: rule.severity,
            entity,
            key,
            message: outcome.message.clone(),
            location: record_location,
            policy_location: location(plan, condition_span),
            sources: policy.sources.clone(),
            path: Vec::new(),
            terms: Vec::new(),
            params: plan
                .params_in_scope(rule.policy)
                .into_iter()
                .map(|param| ParamUse {
                    name: param.name.clone(),
                    value: crate::value::literal(&param.value),
                    origin: param.origin.as_str().to_string(),
                })
                .collect(),
            suggestion: None,
            waiver: None,
        });
    }
    summary.violations = violations.len();
    summary.by_rule = rules
        .iter()
        .map(|idx| (plan.rules[*idx].id.clone(), per_rule[*idx]))
        .collect();
    (violations, summary)
}
