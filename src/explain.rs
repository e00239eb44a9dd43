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

use crate::ast::BinaryOp;
use crate::compile::{ExplainNode, PExpr, Plan, Shape};
use crate::data::{DataFormat, Dataset};
use crate::data::{FieldType, ScalarType};
use crate::diag::Severity;
use crate::eval::{Evaluator, Outcome};
use crate::source::Span;
use crate::value::Value;

/// A position in a file, for output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Location {
    /// File name as given (shared by the locations in one file).
    pub file: std::sync::Arc<str>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub column: usize,
    /// For CSV: the row as a spreadsheet numbers it (the header is row 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<usize>,
}

/// A sub-term of a failed condition with the value it had.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Term {
    /// The sub-term as written in the policy (`count(secretaries)`),
    /// shared with the plan.
    pub expr: std::sync::Arc<str>,
    /// Its value, as a message would show it (`2`).
    pub value: String,
    /// Where the value came from, for params: `default` or `cli`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<&'static str>,
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

/// One labelled step of an entity's readable path (`region` → `North`),
/// from the schema's `path` declarations.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PathStep {
    /// Label, shared with the plan.
    pub label: std::sync::Arc<str>,
    /// Value.
    pub value: String,
}

/// One explained violation.
#[derive(Clone, Debug, Serialize)]
pub struct Violation {
    /// Rule id, `policy.rule`.
    pub rule: std::sync::Arc<str>,
    /// Rule title.
    pub title: std::sync::Arc<str>,
    /// Policy name.
    pub policy: std::sync::Arc<str>,
    /// Severity.
    pub severity: Severity,
    /// Collection of the entity, or `dataset`.
    pub entity: std::sync::Arc<str>,
    /// The entity's key.
    pub key: String,
    /// The message.
    pub message: String,
    /// Where the record is in the data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Where the failed condition is in the policy.
    pub policy_location: Location,
    /// The policy's source citations (shared by the rule's violations).
    pub sources: std::sync::Arc<[String]>,
    /// The entity's readable path, outermost first (empty when the schema
    /// declares none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<PathStep>,
    /// The values that decided the failed condition.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub terms: Vec<Term>,
    /// The params of the rule's policy (shared by the rule's violations).
    #[serde(skip_serializing_if = "<[ParamUse]>::is_empty")]
    pub params: std::sync::Arc<[ParamUse]>,
    /// The smallest change that would satisfy the rule, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
    /// The suggestion as changes a program can apply to the data.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fix: Vec<Change>,
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
        file: src.name().into(),
        line,
        column,
        row: None,
    }
}

/// What every violation of one rule shares: computed once per rule, not
/// once per violation (a rule can have hundreds of thousands).
struct RuleParts {
    rule: std::sync::Arc<str>,
    title: std::sync::Arc<str>,
    policy: std::sync::Arc<str>,
    entity: std::sync::Arc<str>,
    params: std::sync::Arc<[ParamUse]>,
    sources: std::sync::Arc<[String]>,
    /// The location of each `require`, by index; the rule's own last.
    policy_locations: Vec<Location>,
}

impl RuleParts {
    fn new(plan: &Plan, rule_idx: usize) -> RuleParts {
        let rule = &plan.rules[rule_idx];
        let entity = match rule.entity {
            Some(coll) => plan.schema.data.collections[coll as usize].name.as_str(),
            None => "dataset",
        };
        let params = plan
            .params_in_scope(rule.policy)
            .into_iter()
            .map(|param| ParamUse {
                name: param.name.clone(),
                value: crate::value::literal(&param.value, &plan.schema.data.enums),
                origin: param.origin.as_str().to_string(),
            })
            .collect();
        let policy_locations = rule
            .requires
            .iter()
            .map(|(_, span)| *span)
            .chain(std::iter::once(rule.span))
            .map(|span| location(plan, span))
            .collect();
        RuleParts {
            rule: rule.id.as_str().into(),
            title: rule.title.as_str().into(),
            policy: plan.policies[rule.policy].name.as_str().into(),
            entity: entity.into(),
            params,
            sources: plan.policies[rule.policy].sources.clone().into(),
            policy_locations,
        }
    }
}

/// The counts of a run: records, rules, and violations by severity and by
/// rule (`rules` are the evaluated rule indexes, in order).
pub fn summarize(plan: &Plan, data: &Dataset, outcomes: &[Outcome], rules: &[usize]) -> Summary {
    let mut summary = Summary {
        records: data.collections.iter().map(|c| c.len).sum(),
        rules: rules.len(),
        violations: outcomes.len(),
        ..Summary::default()
    };
    let mut per_rule = vec![0usize; plan.rules.len()];
    for outcome in outcomes {
        per_rule[outcome.rule] += 1;
        match plan.rules[outcome.rule].severity {
            Severity::Error => summary.errors += 1,
            Severity::Warning => summary.warnings += 1,
            Severity::Info => summary.infos += 1,
        }
    }
    summary.by_rule = rules
        .iter()
        .map(|idx| (plan.rules[*idx].id.clone(), per_rule[*idx]))
        .collect();
    summary
}

/// Turns outcomes into violations, any number at a time: what every
/// violation of a rule shares, and each data file's name, are built once.
pub struct Explainer<'p> {
    plan: &'p Plan,
    data: &'p Dataset,
    parts: Vec<RuleParts>,
    files: rustc_hash::FxHashMap<&'p str, std::sync::Arc<str>>,
}

impl<'p> Explainer<'p> {
    /// An explainer of the outcomes of `plan`'s rules over `data`.
    pub fn new(plan: &'p Plan, data: &'p Dataset) -> Explainer<'p> {
        Explainer {
            plan,
            data,
            parts: (0..plan.rules.len())
                .map(|idx| RuleParts::new(plan, idx))
                .collect(),
            // One shared name per data file, not one copy per violation.
            files: data
                .sources
                .iter()
                .map(|(_, text)| (text.name(), std::sync::Arc::from(text.name())))
                .collect(),
        }
    }

    /// Where the record of each outcome is in its data file, as file
    /// name, line and column: found for all outcomes at once, in one pass
    /// over each file (windows explained one after another would read the
    /// same pages again).
    pub fn positions(&self, outcomes: &[Outcome]) -> Vec<Option<(&'p str, usize, usize)>> {
        let plan = self.plan;
        let records: Vec<(usize, usize)> = outcomes
            .iter()
            .map(
                |outcome| match (plan.rules[outcome.rule].entity, outcome.row) {
                    (Some(coll), Some(row)) => (coll as usize, row as usize),
                    _ => (usize::MAX, 0),
                },
            )
            .collect();
        let _timing = crate::data::Timing::start("explain: positions");
        self.data.positions_of(&records)
    }

    /// The violations of `outcomes`, in order, built in parallel, each
    /// independent of the others; `positions` are theirs (see
    /// [`Explainer::positions`]). Each takes its outcome's message (the
    /// outcome keeps its bindings, for [`enrich`]).
    pub fn explain(
        &self,
        evaluator: &Evaluator<'_>,
        outcomes: &mut [Outcome],
        positions: &[Option<(&str, usize, usize)>],
    ) -> Vec<Violation> {
        use rayon::prelude::*;
        outcomes
            .par_iter_mut()
            .zip(positions.par_iter())
            .with_min_len(256)
            .map(|(outcome, position)| self.violation(evaluator, outcome, *position))
            .collect()
    }

    /// The violation of one outcome, whose record is at `position`; takes
    /// the outcome's message.
    pub fn violation(
        &self,
        evaluator: &Evaluator<'_>,
        outcome: &mut Outcome,
        position: Option<(&str, usize, usize)>,
    ) -> Violation {
        let plan = self.plan;
        let rule = &plan.rules[outcome.rule];
        let policy = &plan.policies[rule.policy];
        let parts = &self.parts[outcome.rule];
        let (key, record_location) = match (rule.entity, outcome.row) {
            (Some(coll), Some(row)) => {
                let key = evaluator.key_text(coll, row);
                let record_location = position.map(|(file, line, column)| Location {
                    file: self.files.get(file).cloned().unwrap_or_else(|| file.into()),
                    line,
                    column,
                    // As a spreadsheet numbers it: the header is row 1.
                    row: (self.data.format == DataFormat::Csv).then_some(row as usize + 2),
                });
                (key, record_location)
            }
            _ => (policy.name.clone(), None),
        };
        let policy_location = parts
            .policy_locations
            .get(outcome.failed)
            .or(parts.policy_locations.last())
            .cloned()
            .unwrap_or_else(|| location(plan, rule.span));
        Violation {
            rule: parts.rule.clone(),
            title: parts.title.clone(),
            policy: parts.policy.clone(),
            severity: rule.severity,
            entity: parts.entity.clone(),
            key,
            message: std::mem::take(&mut outcome.message),
            location: record_location,
            policy_location,
            sources: parts.sources.clone(),
            path: Vec::new(),
            terms: Vec::new(),
            params: parts.params.clone(),
            suggestion: None,
            fix: Vec::new(),
            waiver: None,
        }
    }
}

/// Explains every outcome; `rules` are the evaluated rule indexes.
pub fn explain(
    plan: &Plan,
    data: &Dataset,
    evaluator: &Evaluator<'_>,
    outcomes: &mut [Outcome],
    rules: &[usize],
) -> (Vec<Violation>, Summary) {
    let summary = summarize(plan, data, outcomes, rules);
    let explainer = Explainer::new(plan, data);
    let positions = explainer.positions(outcomes);
    let violations = explainer.explain(evaluator, outcomes, &positions);
    (violations, summary)
}

/// Fills in paths, deciding terms and suggestions, in parallel: each
/// violation is independent of the others.
pub fn enrich_all(
    plan: &Plan,
    evaluator: &Evaluator<'_>,
    outcomes: &[Outcome],
    violations: &mut [Violation],
) {
    use rayon::prelude::*;
    violations
        .par_iter_mut()
        .zip(outcomes.par_iter())
        .for_each(|(violation, outcome)| enrich(plan, evaluator, outcome, violation));
}

/// A change to the data that would make a violation disappear, in a form a
/// program can apply.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Change {
    /// Set a field of a record.
    Set {
        /// Collection.
        collection: String,
        /// Record key.
        key: String,
        /// Field.
        field: String,
        /// New value.
        value: serde_json::Value,
    },
    /// Remove a record (or change it so it no longer matches).
    Remove {
        /// Collection.
        collection: String,
        /// Record key.
        key: String,
    },
}

/// A node of an explanation tree: a sub-term, its value, whether it holds
/// (for conditions) and its parts.
#[derive(Clone, Debug, Serialize)]
pub struct TreeNode {
    /// The sub-term as written.
    pub text: String,
    /// Its value.
    pub value: String,
    /// For a param, where its value came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Whether it is a condition that must hold (the whole condition or a
    /// part of an `and`/`or`), as opposed to a value inside one.
    pub condition: bool,
    /// Its parts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<TreeNode>,
}

/// The full explanation of one violation, for `bangfu explain`.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    /// The violation.
    pub violation: Violation,
    /// The `for … where` filter, which held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<TreeNode>,
    /// The `require` that failed.
    pub condition: TreeNode,
}

/// Items of a list or set shown before `…`.
pub const MAX_SHOWN: usize = 10;

/// A value as an explanation shows it: long lists and sets cut to [`MAX_SHOWN`] items.
pub fn show(evaluator: &Evaluator<'_>, value: &Value) -> String {
    match value {
        Value::Rows(coll, rows) if rows.len() > MAX_SHOWN => {
            let keys: Vec<String> = rows
                .iter()
                .take(MAX_SHOWN)
                .map(|row| evaluator.key_text(*coll, row))
                .collect();
            format!("[{}, … ({} in all)]", keys.join(", "), rows.len())
        }
        Value::List(items) if items.len() > MAX_SHOWN => {
            let shown: Vec<String> = items
                .iter()
                .take(MAX_SHOWN)
                .map(|item| item.to_display(evaluator))
                .collect();
            format!("[{}, … ({} in all)]", shown.join(", "), items.len())
        }
        other => other.to_display(evaluator),
    }
}

fn param_origin(plan: &Plan, shape: &Shape) -> Option<&'static str> {
    match shape {
        Shape::Param { policy, param } => plan
            .policies
            .get(*policy as usize)
            .and_then(|p| p.params.get(*param as usize))
            .map(|p| p.origin.as_str()),
        _ => None,
    }
}

/// The value tree of an explanation node in `env`.
pub fn tree(
    plan: &Plan,
    evaluator: &Evaluator<'_>,
    node: &ExplainNode,
    env: &mut [Value],
) -> TreeNode {
    tree_node(plan, evaluator, node, env, true)
}

fn tree_node(
    plan: &Plan,
    evaluator: &Evaluator<'_>,
    node: &ExplainNode,
    env: &mut [Value],
    condition: bool,
) -> TreeNode {
    let value = evaluator.value_of(&node.expr, env);
    let parts_are_conditions = matches!(node.shape, Shape::And | Shape::Or);
    TreeNode {
        text: node.text.to_string(),
        value: show(evaluator, &value),
        origin: param_origin(plan, &node.shape).map(str::to_string),
        condition,
        children: node
            .children
            .iter()
            .filter(|child| !matches!(child.shape, Shape::Literal))
            .map(|child| {
                tree_node(
                    plan,
                    evaluator,
                    child,
                    env,
                    parts_are_conditions || (matches!(node.shape, Shape::Let) && condition),
                )
            })
            .collect(),
    }
}

/// The deciding terms of a node: every sub-term that is not boolean
/// structure or a literal, once each.
fn collect_terms(
    plan: &Plan,
    evaluator: &Evaluator<'_>,
    node: &ExplainNode,
    env: &mut [Value],
    out: &mut Vec<Term>,
) {
    match node.shape {
        Shape::And | Shape::Or | Shape::Not | Shape::Compare(_) => {
            for child in &node.children {
                collect_terms(plan, evaluator, child, env, out);
            }
        }
        Shape::Literal => {}
        _ => {
            if !out.iter().any(|term| term.expr == node.text) {
                let value = evaluator.value_of(&node.expr, env);
                out.push(Term {
                    expr: node.text.clone(),
                    value: show(evaluator, &value),
                    origin: param_origin(plan, &node.shape),
                });
            }
            if matches!(node.shape, Shape::Count | Shape::Any) {
                for child in &node.children {
                    collect_terms(plan, evaluator, child, env, out);
                }
            }
        }
    }
}

fn json_number(value: f64, integral: bool) -> serde_json::Value {
    if integral && value.fract() == 0.0 {
        serde_json::Value::from(value as i64)
    } else {
        serde_json::Number::from_f64(value)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

fn op_flipped(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::Le => BinaryOp::Ge,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::Ge => BinaryOp::Le,
        other => other,
    }
}

struct Suggester<'p, 'e> {
    plan: &'p Plan,
    evaluator: &'e Evaluator<'p>,
}

/// A suggestion: the text and the changes that carry it out (empty when
/// the engine cannot say which record to add).
type Suggestion = (String, Vec<Change>);

impl Suggester<'_, '_> {
    fn holds(&self, node: &ExplainNode, env: &mut [Value]) -> bool {
        matches!(self.evaluator.value_of(&node.expr, env), Value::Bool(true))
    }

    fn record_key(&self, record: &PExpr, env: &mut [Value]) -> Option<(u32, String)> {
        match self.evaluator.value_of(record, env) {
            Value::Row(coll, row) => Some((coll, self.evaluator.key_text(coll, row))),
            _ => None,
        }
    }

    fn field_name(&self, coll: u32, field: u32) -> String {
        self.plan.schema.data.collections[coll as usize].fields[field as usize]
            .name
            .clone()
    }

    fn coll_name(&self, coll: u32) -> String {
        self.plan.schema.data.collections[coll as usize]
            .name
            .clone()
    }

    /// What would make `node` true.
    fn suggest(&self, node: &ExplainNode, env: &mut [Value]) -> Option<Suggestion> {
        if self.holds(node, env) {
            return None;
        }
        match &node.shape {
            Shape::And => {
                // Every failing part must be fixed; if one has no applicable
                // change, the others alone would not fix the violation, so
                // no changes are offered, only the text.
                let mut texts = Vec::new();
                let mut changes = Vec::new();
                let mut complete = true;
                for child in &node.children {
                    if self.holds(child, env) {
                        continue;
                    }
                    match self.suggest(child, env) {
                        Some((text, child_changes)) => {
                            complete &= !child_changes.is_empty();
                            texts.push(text);
                            changes.extend(child_changes);
                        }
                        None => {
                            complete = false;
                            let now = self
                                .evaluator
                                .value_of(&child.expr, env)
                                .to_display(self.evaluator);
                            texts.push(format!("make `{}` hold (now {now})", child.text));
                        }
                    }
                }
                if texts.is_empty() {
                    return None;
                }
                Some((
                    texts.join("; "),
                    if complete { changes } else { Vec::new() },
                ))
            }
            Shape::Or => {
                let parts: Vec<Suggestion> = node
                    .children
                    .iter()
                    .filter_map(|child| self.suggest(child, env))
                    .collect();
                let first = parts
                    .iter()
                    .find(|(_, changes)| !changes.is_empty())
                    .map(|(_, changes)| changes.clone())
                    .unwrap_or_default();
                (!parts.is_empty()).then(|| {
                    (
                        parts
                            .iter()
                            .map(|(t, _)| t.clone())
                            .collect::<Vec<_>>()
                            .join(", or "),
                        first,
                    )
                })
            }
            Shape::Let => node
                .children
                .first()
                .and_then(|child| self.suggest(child, env)),
            Shape::Not => match node.children.first().map(|child| &child.shape) {
                Some(Shape::Field {
                    record,
                    coll,
                    field,
                }) => self.set_bool(record, *coll, *field, false, env),
                _ => None,
            },
            Shape::Field {
                record,
                coll,
                field,
            } => self.set_bool(record, *coll, *field, true, env),
            Shape::Compare(op) => {
                let [left, right] = node.children.as_slice() else {
                    return None;
                };
                self.compare(*op, left, right, env)
                    .or_else(|| self.compare(op_flipped(*op), right, left, env))
            }
            Shape::Any => {
                let child = node.children.first()?;
                Some((
                    format!("add a record so that `{}` is not empty", child.text),
                    Vec::new(),
                ))
            }
            _ => None,
        }
    }

    fn set_bool(
        &self,
        record: &PExpr,
        coll: u32,
        field: u32,
        want: bool,
        env: &mut [Value],
    ) -> Option<Suggestion> {
        let (coll_of_record, key) = self.record_key(record, env)?;
        let name = self.field_name(coll, field);
        let now = self
            .evaluator
            .field_value(coll, field, self.row_of(record, env)?)
            .to_display(self.evaluator);
        Some((
            format!("{name} = {want} (now {now})"),
            vec![Change::Set {
                collection: self.coll_name(coll_of_record),
                key,
                field: name,
                value: serde_json::Value::Bool(want),
            }],
        ))
    }

    fn row_of(&self, record: &PExpr, env: &mut [Value]) -> Option<u32> {
        match self.evaluator.value_of(record, env) {
            Value::Row(_, row) => Some(row),
            _ => None,
        }
    }

    /// `left op right` with `left` the part to change.
    fn compare(
        &self,
        op: BinaryOp,
        left: &ExplainNode,
        right: &ExplainNode,
        env: &mut [Value],
    ) -> Option<Suggestion> {
        let bound = self.evaluator.value_of(&right.expr, env);
        if op == BinaryOp::Ne && bound.is_null() {
            let Shape::Field { coll, field, .. } = &left.shape else {
                return None;
            };
            let name = self.field_name(*coll, *field);
            let text = match self.plan.schema.data.collections[*coll as usize].fields
                [*field as usize]
                .ty
            {
                FieldType::Scalar(ScalarType::Ref(target)) => format!(
                    "set {name} to the key of an existing record of `{}`",
                    self.coll_name(target)
                ),
                _ => format!("give {name} a value"),
            };
            return Some((text, Vec::new()));
        }
        match &left.shape {
            Shape::Field {
                record,
                coll,
                field,
            } => {
                let target = bound.as_f64()?;
                let field_ty =
                    self.plan.schema.data.collections[*coll as usize].fields[*field as usize].ty;
                let integral = matches!(field_ty, FieldType::Scalar(ScalarType::Int));
                if !matches!(
                    field_ty,
                    FieldType::Scalar(ScalarType::Int | ScalarType::Number)
                ) {
                    return None;
                }
                let (value, words) = match op {
                    BinaryOp::Ge => (target, "at least"),
                    BinaryOp::Gt => (
                        if integral {
                            target.floor() + 1.0
                        } else {
                            target + 1.0
                        },
                        "above",
                    ),
                    BinaryOp::Le => (target, "at most"),
                    BinaryOp::Lt => (
                        if integral {
                            target.ceil() - 1.0
                        } else {
                            target - 1.0
                        },
                        "below",
                    ),
                    BinaryOp::Eq => (target, "equal to"),
                    _ => return None,
                };
                let row = self.row_of(record, env)?;
                let (coll_of_record, key) = self.record_key(record, env)?;
                let now = self
                    .evaluator
                    .field_value(*coll, *field, row)
                    .to_display(self.evaluator);
                let name = self.field_name(*coll, *field);
                Some((
                    format!(
                        "{name} {words} {} (now {now})",
                        bound.to_display(self.evaluator)
                    ),
                    vec![Change::Set {
                        collection: self.coll_name(coll_of_record),
                        key,
                        field: name,
                        value: json_number(value, integral),
                    }],
                ))
            }
            Shape::Count => {
                let needed = match bound {
                    Value::Int(n) => n,
                    _ => return None,
                };
                let rows = left
                    .children
                    .first()
                    .map(|child| self.evaluator.value_of(&child.expr, env));
                let Some(Value::Rows(coll, rows)) = rows else {
                    return None;
                };
                let n = rows.len() as i64;
                let (remove, add) = match op {
                    BinaryOp::Eq => ((n - needed).max(0), (needed - n).max(0)),
                    BinaryOp::Le => ((n - needed).max(0), 0),
                    BinaryOp::Lt => ((n - needed + 1).max(0), 0),
                    BinaryOp::Ge => (0, (needed - n).max(0)),
                    BinaryOp::Gt => (0, (needed - n + 1).max(0)),
                    _ => return None,
                };
                let what = left
                    .children
                    .first()
                    .map_or(String::new(), |c| c.text.to_string());
                if remove > 0 {
                    let keys: Vec<String> = rows
                        .iter()
                        .map(|row| self.evaluator.key_text(coll, row))
                        .collect();
                    let changes = keys
                        .iter()
                        .take(remove as usize)
                        .map(|key| Change::Remove {
                            collection: self.coll_name(coll),
                            key: key.clone(),
                        })
                        .collect();
                    Some((
                        format!(
                            "remove {remove} of {} from `{what}` (now {n}, needs {} {needed})",
                            keys.join(", "),
                            op.as_str()
                        ),
                        changes,
                    ))
                } else if add > 0 {
                    Some((
                        format!(
                            "add {add} record{} to `{what}` (now {n}, needs {} {needed})",
                            if add == 1 { "" } else { "s" },
                            op.as_str()
                        ),
                        Vec::new(),
                    ))
                } else {
                    None
                }
            }
            Shape::Let => left
                .children
                .first()
                .and_then(|child| self.compare(op, child, right, env)),
            _ => None,
        }
    }
}

/// Fills the path, the deciding terms and the suggestion of a violation.
pub fn enrich(
    plan: &Plan,
    evaluator: &Evaluator<'_>,
    outcome: &Outcome,
    violation: &mut Violation,
) {
    let rule = &plan.rules[outcome.rule];
    let mut env = outcome.env.clone();
    if let (Some(coll), Some(row)) = (rule.entity, outcome.row) {
        violation.path = path_of(plan, evaluator, coll, row, 0);
    }
    let mut terms = Vec::new();
    if let Some(filter) = &rule.filter_explain {
        collect_terms(plan, evaluator, filter, &mut env, &mut terms);
    }
    if let Some(condition) = rule.require_explains.get(outcome.failed) {
        collect_terms(plan, evaluator, condition, &mut env, &mut terms);
        let suggester = Suggester { plan, evaluator };
        if let Some((text, changes)) = suggester.suggest(condition, &mut env) {
            violation.suggestion = Some(text);
            violation.fix = changes;
        }
    }
    violation.terms = terms;
}

/// The full explanation of one violation.
pub fn explanation(
    plan: &Plan,
    evaluator: &Evaluator<'_>,
    outcome: &Outcome,
    violation: &Violation,
) -> Option<Explanation> {
    let rule = &plan.rules[outcome.rule];
    let mut env = outcome.env.clone();
    let filter = rule
        .filter_explain
        .as_ref()
        .map(|node| tree(plan, evaluator, node, &mut env));
    let condition = tree(
        plan,
        evaluator,
        rule.require_explains.get(outcome.failed)?,
        &mut env,
    );
    Some(Explanation {
        violation: violation.clone(),
        filter,
        condition,
    })
}

/// The readable path of a record, from the schema's `path` declarations.
pub fn path_of(
    plan: &Plan,
    evaluator: &Evaluator<'_>,
    coll: u32,
    row: u32,
    depth: usize,
) -> Vec<PathStep> {
    let mut steps = Vec::new();
    // One environment for every step of every record on the path: a step
    // reads slot 0 only.
    let mut env = vec![Value::Null; plan.max_slots.max(1) as usize];
    path_steps(plan, evaluator, coll, row, depth, &mut env, &mut steps);
    steps
}

fn path_steps(
    plan: &Plan,
    evaluator: &Evaluator<'_>,
    coll: u32,
    row: u32,
    depth: usize,
    env: &mut [Value],
    steps: &mut Vec<PathStep>,
) {
    let Some(plan_steps) = plan.paths.get(coll as usize) else {
        return;
    };
    for step in plan_steps {
        env[0] = Value::Row(coll, row);
        let value = evaluator.value_of(&step.expr, env);
        match (&step.label, value) {
            (None, Value::Row(target, target_row)) if depth < 8 => {
                path_steps(plan, evaluator, target, target_row, depth + 1, env, steps)
            }
            (None, _) => {}
            (Some(label), value) => steps.push(PathStep {
                label: label.clone(),
                value: value.to_display(evaluator),
            }),
        }
    }
}

/// An explanation tree as indented text: conditions marked `✓` or `✗`,
/// params with where their value came from.
pub fn render_tree(node: &TreeNode, depth: usize, out: &mut String) {
    use std::fmt::Write as _;
    let mark = match (node.condition, node.value.as_str()) {
        (true, "true") => "✓ ",
        (true, _) => "✗ ",
        _ => "",
    };
    let origin = node
        .origin
        .as_ref()
        .map_or(String::new(), |o| format!(" ({o})"));
    let _ = writeln!(
        out,
        "{}{mark}{} = {}{origin}",
        "  ".repeat(depth),
        node.text,
        node.value
    );
    for child in &node.children {
        render_tree(child, depth + 1, out);
    }
}
