//! Stage `compile`: a checked program turned into an evaluation [`Plan`].
//!
//! Takes a [`CheckedProgram`]; gives a [`Plan`]: per rule a scan of the
//! quantified collection, a filter, `let` bindings, conditions and a message,
//! all as [`PExpr`] trees over slots, columns and hash indexes. The plan is a
//! relational description (scans, filters, key lookups, projections,
//! aggregates), not closures, so a later stage can lower it to SQL.
//!
//! Two planning decisions are made here:
//! - a filter over a collection (`xs where field == outer` or `outer in
//!   list_field`, and back-references) becomes a [`PExpr::Lookup`] in a hash
//!   index built once per run ([`IndexSpec`]); the other conjuncts stay as a
//!   residual filter over the matching rows only;
//! - an expression that depends on no binding (`count(xs where flag)` in a
//!   per-entity rule) becomes a [`PExpr::Invariant`], evaluated once per run.
//!
//! The plan also marks which fields any rule reads, so loaders skip the rest.
//!
//! **Invariant:** a filter inside a quantifier scans a whole collection only
//! when none of its conjuncts is an equality or membership test an index can
//! serve; everything else is a hash lookup, so no planned rule is quadratic
//! in the data for the filter forms documented in docs/language.md.

use miette::{Diagnostic, SourceSpan};
use thiserror::Error;

use crate::ast::{BinaryOp, Expr, ExprKind, TemplatePart, UnaryOp};
use crate::check::{Access, Builtin, CheckedProgram, CheckedSchema, FnBody, Member, NameRes, Type};
use crate::data::{FieldType, ScalarType};
use crate::diag::Severity;
use crate::resolve::ParamOrigin;
use crate::source::{SourceId, SourceMap, SourceText, Span};
use crate::value::Value;

/// A key part of a hash index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IndexKey {
    /// The field.
    pub field: u32,
    /// Whether the field is a list: each element is a key.
    pub list: bool,
}

/// A hash index to build once per run: rows of `coll` by the values of `keys`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IndexSpec {
    /// Collection.
    pub coll: u32,
    /// Key parts, in probe order.
    pub keys: Vec<IndexKey>,
}

/// An expression of the plan.
#[derive(Clone, Debug)]
pub enum PExpr {
    /// A constant.
    Const(Value),
    /// A binding.
    Local(u32),
    /// A value computed once per run.
    Invariant(u32),
    /// A field of the record `base`.
    Field {
        /// A record.
        base: Box<PExpr>,
        /// Its collection.
        coll: u32,
        /// The field.
        field: u32,
    },
    /// A field of every record of `source`: a list.
    Project {
        /// Records.
        source: Box<PExpr>,
        /// Their collection.
        coll: u32,
        /// The field.
        field: u32,
    },
    /// `base[index]`
    Index(Box<PExpr>, Box<PExpr>),
    /// `not x`
    Not(Box<PExpr>),
    /// `-x`
    Neg(Box<PExpr>),
    /// `a and b` (three-valued).
    And(Box<PExpr>, Box<PExpr>),
    /// `a or b` (three-valued).
    Or(Box<PExpr>, Box<PExpr>),
    /// Other binary operators.
    Binary {
        /// Operator.
        op: BinaryOp,
        /// Left operand.
        left: Box<PExpr>,
        /// Right operand.
        right: Box<PExpr>,
        /// For runtime errors.
        span: Span,
    },
    /// `if c then a else b`
    If(Box<PExpr>, Box<PExpr>, Box<PExpr>),
    /// A builtin call.
    Call {
        /// Function.
        builtin: Builtin,
        /// Arguments.
        args: Vec<PExpr>,
        /// For runtime errors.
        span: Span,
    },
    /// A call of a function of the program (`Plan::functions`).
    CallFn {
        /// Function index.
        func: u32,
        /// Arguments.
        args: Vec<PExpr>,
        /// For runtime errors.
        span: Span,
    },
    /// A list literal; elements with a condition are kept when it holds.
    List(Vec<(PExpr, Option<PExpr>)>),
    /// A string template: the parts' texts concatenated. The parts' values
    /// are only shown, never compared: a field written directly as a part
    /// is marked `shown`, and its strings are not canonical.
    Template(Vec<PExpr>),
    /// Every record of a collection.
    Scan(u32),
    /// The records whose index key equals the probes.
    Lookup {
        /// Index into `Plan::indexes`.
        index: u32,
        /// One value per key part.
        probes: Vec<PExpr>,
    },
    /// The records (or list elements) of `source` for which `cond` holds,
    /// with each bound to `slot`.
    Filter {
        /// Records or a list.
        source: Box<PExpr>,
        /// Slot of the element.
        slot: u32,
        /// Condition.
        cond: Box<PExpr>,
    },
}

impl PExpr {
    /// Calls `visit` on each direct sub-expression.
    pub fn for_each_child(&self, visit: &mut dyn FnMut(&PExpr)) {
        match self {
            PExpr::Const(_) | PExpr::Local(_) | PExpr::Invariant(_) | PExpr::Scan(_) => {}
            PExpr::Field { base: a, .. }
            | PExpr::Project { source: a, .. }
            | PExpr::Not(a)
            | PExpr::Neg(a) => visit(a),
            PExpr::Index(a, b)
            | PExpr::And(a, b)
            | PExpr::Or(a, b)
            | PExpr::Binary {
                left: a, right: b, ..
            }
            | PExpr::Filter {
                source: a, cond: b, ..
            } => {
                visit(a);
                visit(b);
            }
            PExpr::If(a, b, c) => {
                visit(a);
                visit(b);
                visit(c);
            }
            PExpr::Call { args, .. }
            | PExpr::CallFn { args, .. }
            | PExpr::Template(args)
            | PExpr::Lookup { probes: args, .. } => args.iter().for_each(visit),
            PExpr::List(elems) => {
                for (value, condition) in elems {
                    visit(value);
                    if let Some(condition) = condition {
                        visit(condition);
                    }
                }
            }
        }
    }
}

/// A param as the plan uses it.
#[derive(Clone, Debug)]
pub struct ParamValue {
    /// Name.
    pub name: String,
    /// Value in force.
    pub value: Value,
    /// Where it came from.
    pub origin: ParamOrigin,
}

/// A policy as the plan and the output know it.
#[derive(Clone, Debug)]
pub struct PolicyInfo {
    /// Name.
    pub name: String,
    /// Title.
    pub title: Option<String>,
    /// The prefix of its rule ids.
    pub prefix: String,
    /// Source citations.
    pub sources: Vec<String>,
    /// Params.
    pub params: Vec<ParamValue>,
    /// The policy it extends.
    pub parent: Option<usize>,
    /// First day in effect (days since 1970-01-01).
    pub effective_from: Option<i32>,
    /// Last day in effect.
    pub effective_until: Option<i32>,
}

impl PolicyInfo {
    /// Whether the policy is in effect on `day` (days since 1970-01-01).
    pub fn in_effect(&self, day: i32) -> bool {
        self.effective_from.is_none_or(|from| day >= from)
            && self.effective_until.is_none_or(|until| day <= until)
    }
}

/// How a function is evaluated.
#[derive(Clone, Debug)]
pub enum FnKind {
    /// Its body over a frame of `n_slots` slots, arguments first.
    Bangfu {
        /// Body.
        body: PExpr,
        /// Frame size.
        n_slots: u32,
    },
    /// By the rhai engine, from `Plan::scripts[script]`.
    Script {
        /// Script index.
        script: u32,
    },
}

/// A function, planned.
#[derive(Clone, Debug)]
pub struct FnPlan {
    /// Name.
    pub name: String,
    /// Number of parameters.
    pub n_params: u32,
    /// Result type, to convert script results.
    pub ret: Type,
    /// Body.
    pub kind: FnKind,
    /// The declaration's name.
    pub span: Span,
}

/// A rhai script.
#[derive(Clone, Debug)]
pub struct ScriptPlan {
    /// Its text in `Plan::sources`.
    pub source: SourceId,
}

/// One rule, planned.
#[derive(Clone, Debug)]
pub struct RulePlan {
    /// `prefix.rule`, the prefix being the policy's name unless it declares
    /// another.
    pub id: String,
    /// The rule's name within its policy.
    pub name: String,
    /// The params it reads: (policy, param).
    pub params_used: Vec<(u32, u32)>,
    /// Title.
    pub title: String,
    /// Index into `Plan::policies`.
    pub policy: usize,
    /// Severity.
    pub severity: Severity,
    /// Quantified collection; `None` for a dataset-level rule.
    pub entity: Option<u32>,
    /// Slot of the entity.
    pub var_slot: u32,
    /// The `where` of the `for`.
    pub filter: Option<PExpr>,
    /// `let` bindings, in order.
    pub lets: Vec<(u32, PExpr)>,
    /// Conditions, each with its span.
    pub requires: Vec<(PExpr, Span)>,
    /// Message.
    pub message: Option<PExpr>,
    /// Slots needed.
    pub n_slots: u32,
    /// The rule's declaration.
    pub span: Span,
    /// How to explain the `for … where` filter.
    pub filter_explain: Option<ExplainNode>,
    /// How to explain each `require`, parallel to `requires`.
    pub require_explains: Vec<ExplainNode>,
}

/// What kind of sub-term an [`ExplainNode`] is, for the tree and for the
/// smallest-change suggestion.
#[derive(Clone, Debug)]
pub enum Shape {
    /// `a and b and …`: all children must hold.
    And,
    /// `a or b or …`: one child must hold.
    Or,
    /// `not a`.
    Not,
    /// A comparison; children are the two operands.
    Compare(BinaryOp),
    /// A stored field of the record `record` evaluates to.
    Field {
        /// The record.
        record: PExpr,
        /// Its collection.
        coll: u32,
        /// The field.
        field: u32,
    },
    /// `count(x)`; the child is `x`.
    Count,
    /// `any(x)`; the child is `x`.
    Any,
    /// A `let` binding; the child is its definition.
    Let,
    /// A param of a policy.
    Param {
        /// Policy.
        policy: u32,
        /// Param.
        param: u32,
    },
    /// A literal.
    Literal,
    /// Anything else.
    Other,
}

/// A sub-term of a condition: as written, how to compute it, its parts.
#[derive(Clone, Debug)]
pub struct ExplainNode {
    /// The source text of the sub-term.
    pub text: std::sync::Arc<str>,
    /// The sub-term, over the rule's slots.
    pub expr: PExpr,
    /// What kind of term.
    pub shape: Shape,
    /// Its parts.
    pub children: Vec<ExplainNode>,
}

/// One step of a collection's readable path.
#[derive(Clone, Debug)]
pub struct PathStepPlan {
    /// Label; `None` for a reference expanded to its target's path.
    pub label: Option<std::sync::Arc<str>>,
    /// The value, over slot 0 holding the record.
    pub expr: PExpr,
}

/// The evaluation plan of a program.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The schema, with `keep` set on every field the plan reads and `shown`
    /// on every field it only shows (see `mark_kept_fields`).
    pub schema: CheckedSchema,
    /// Policies.
    pub policies: Vec<PolicyInfo>,
    /// Rules, in policy and declaration order.
    pub rules: Vec<RulePlan>,
    /// Hash indexes to build.
    pub indexes: Vec<IndexSpec>,
    /// Expressions to evaluate once per run.
    pub invariants: Vec<PExpr>,
    /// Functions, indexed by [`PExpr::CallFn`].
    pub functions: Vec<FnPlan>,
    /// rhai scripts.
    pub scripts: Vec<ScriptPlan>,
    /// Readable path of each collection's records.
    pub paths: Vec<Vec<PathStepPlan>>,
    /// Slots any expression of the plan needs (environments for invariants
    /// and paths are this large).
    pub max_slots: u32,
    /// The policy files, for diagnostics.
    pub sources: SourceMap,
}

impl Plan {
    /// The ids a rule answers to in `--rule` patterns: its own id, its
    /// name under its policy's name when the policy declares another
    /// `prefix`, and its name under every policy that extends its policy (a
    /// child selects the rules it inherits, which are still reported under
    /// the parent's id).
    pub fn rule_aliases(&self, rule_idx: usize) -> Vec<String> {
        let rule = &self.rules[rule_idx];
        let mut aliases = vec![rule.id.clone()];
        for (idx, policy) in self.policies.iter().enumerate() {
            if idx == rule.policy || self.extends(idx, rule.policy) {
                for prefix in [&policy.prefix, &policy.name] {
                    let alias = format!("{prefix}.{}", rule.name);
                    if !aliases.contains(&alias) {
                        aliases.push(alias);
                    }
                }
            }
        }
        aliases
    }

    /// Whether policy `child` extends `ancestor`, directly or not.
    pub fn extends(&self, child: usize, ancestor: usize) -> bool {
        let mut current = self.policies.get(child).and_then(|p| p.parent);
        for _ in 0..self.policies.len() {
            match current {
                Some(idx) if idx == ancestor => return true,
                Some(idx) => current = self.policies.get(idx).and_then(|p| p.parent),
                None => return false,
            }
        }
        false
    }

    /// The params a rule can read: its policy's, then its ancestors'.
    pub fn params_in_scope(&self, policy: usize) -> Vec<&ParamValue> {
        let mut params: Vec<&ParamValue> = Vec::new();
        let mut current = Some(policy);
        for _ in 0..=self.policies.len() {
            let Some(idx) = current else { break };
            for param in &self.policies[idx].params {
                if !params.iter().any(|p| p.name == param.name) {
                    params.push(param);
                }
            }
            current = self.policies[idx].parent;
        }
        params
    }
}

/// Problems the compile stage reports.
#[derive(Debug, Error, Diagnostic)]
pub enum CompileError {
    /// A `for` over something that is not a collection.
    #[error("`for` must range over a collection, optionally with `where`")]
    #[diagnostic(
        code(E0401),
        help("write `for x in COLLECTION where CONDITION`; filter sub-collections with `let`")
    )]
    UnsupportedForSource {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("not a collection name")]
        span: SourceSpan,
    },
    /// A rhai script that does not compile.
    #[error("rhai script does not compile: {message}")]
    #[diagnostic(
        code(E0402),
        help("fix the script; see https://rhai.rs/book/ for the language")
    )]
    ScriptSyntax {
        /// The script.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("here")]
        span: SourceSpan,
        /// What rhai said.
        message: String,
    },
}

/// Compiles a checked program.
///
/// rhai scripts are compiled here too, so their syntax errors are reported
/// before any data is read.
pub fn compile(program: &CheckedProgram, sources: &SourceMap) -> Result<Plan, Vec<CompileError>> {
    let all_params: Vec<Vec<ParamValue>> = program
        .policies
        .iter()
        .map(|policy| {
            policy
                .params
                .iter()
                .map(|p| ParamValue {
                    name: p.name.clone(),
                    value: const_value(program, &p.value),
                    origin: p.origin.clone(),
                })
                .collect()
        })
        .collect();
    let mut compiler = Compiler {
        program,
        indexes: Vec::new(),
        invariants: Vec::new(),
        params: all_params
            .iter()
            .map(|params| params.iter().map(|p| p.value.clone()).collect())
            .collect(),
        errors: Vec::new(),
        sources,
        lets: Vec::new(),
        explaining: false,
    };
    let mut functions = Vec::new();
    for function in &program.functions {
        let kind = match &function.body {
            FnBody::Bangfu { body, n_slots } => FnKind::Bangfu {
                body: compiler.expr(body),
                n_slots: *n_slots,
            },
            FnBody::Script { script } => FnKind::Script { script: *script },
        };
        functions.push(FnPlan {
            name: function.name.clone(),
            n_params: function.params.len() as u32,
            ret: function.ret.clone(),
            kind,
            span: function.span,
        });
    }
    let mut policies = Vec::new();
    let mut rules = Vec::new();
    for (policy_idx, policy) in program.policies.iter().enumerate() {
        let scope_value = policy
            .scope_param
            .map(|(p, q)| all_params[p as usize][q as usize].value.clone());
        for rule in &policy.rules {
            let (entity, var_slot) = rule
                .entity
                .map_or((None, 0), |(coll, slot)| (Some(coll), slot));
            let mut filter = match &rule.source {
                Some(Expr {
                    kind:
                        ExprKind::Where {
                            source, condition, ..
                        },
                    ..
                }) if is_collection_name(program, source) => Some(compiler.expr(condition)),
                Some(source) if is_collection_name(program, source) => None,
                Some(source) => {
                    compiler.errors.push(CompileError::UnsupportedForSource {
                        src: sources.get(source.span.src).clone(),
                        span: source.span.into(),
                    });
                    None
                }
                None => None,
            };
            // The policy's scope narrows the quantified records first.
            if let (Some(coll), Some(scope_value)) = (entity, &scope_value)
                && let Some((_, place)) = policy.scope.iter().find(|(c, _)| *c == coll)
            {
                let test = PExpr::Call {
                    builtin: Builtin::StartsWithAny,
                    args: vec![compiler.expr(place), PExpr::Const(scope_value.clone())],
                    span: place.span,
                };
                filter = Some(match filter {
                    Some(filter) => PExpr::And(Box::new(test), Box::new(filter)),
                    None => test,
                });
            }
            let lets = rule
                .lets
                .iter()
                .map(|(slot, _, value)| (*slot, compiler.expr(value)))
                .collect();
            compiler.lets = rule
                .lets
                .iter()
                .map(|(slot, _, value)| (*slot, value.clone()))
                .collect();
            let filter_explain = match &rule.source {
                Some(Expr {
                    kind: ExprKind::Where { condition, .. },
                    ..
                }) => Some(compiler.explain(condition, 0)),
                _ => None,
            };
            let require_explains = rule
                .requires
                .iter()
                .map(|e| compiler.explain(e, 0))
                .collect();
            let requires = rule
                .requires
                .iter()
                .map(|e| (compiler.expr(e), e.span))
                .collect();
            let message = rule.message.as_ref().map(|e| compiler.expr(e));
            rules.push(RulePlan {
                params_used: rule.params_used.clone(),
                name: rule.name.clone(),
                id: rule.id.clone(),
                title: rule.title.clone(),
                policy: policy_idx,
                severity: rule.severity,
                entity,
                var_slot,
                filter,
                lets,
                requires,
                message,
                n_slots: rule.n_slots,
                span: rule.span,
                filter_explain,
                require_explains,
            });
        }
        policies.push(PolicyInfo {
            prefix: policy.prefix.clone(),
            name: policy.name.clone(),
            title: policy.title.clone(),
            sources: policy.sources.clone(),
            params: all_params[policy_idx].clone(),
            parent: policy.parent,
            effective_from: policy.effective_from,
            effective_until: policy.effective_until,
        });
    }
    let engine = crate::eval::script::sandboxed_engine();
    for script in &program.scripts {
        let text = sources.get(script.source);
        if let Err((message, line, column)) =
            crate::eval::script::compile_script(&engine, text.text().unwrap_or(""))
        {
            let offset = text.offset_of(line, column.saturating_sub(1));
            compiler.errors.push(CompileError::ScriptSyntax {
                src: text.clone(),
                span: SourceSpan::new(offset.into(), 1),
                message,
            });
        }
    }
    if !compiler.errors.is_empty() {
        return Err(compiler.errors);
    }
    // Paths are compiled last, with their own index and invariant tables
    // appended to the plan's.
    let mut compiler_paths = compiler;
    compiler_paths.lets.clear();
    let paths_plan: Vec<Vec<PathStepPlan>> = program
        .schema
        .collections
        .iter()
        .map(|info| {
            info.path
                .iter()
                .map(|(label, expr)| PathStepPlan {
                    label: label.as_deref().map(std::sync::Arc::from),
                    expr: compiler_paths.expr(expr),
                })
                .collect()
        })
        .collect();
    let Compiler {
        indexes,
        invariants,
        ..
    } = compiler_paths;
    let scripts = program
        .scripts
        .iter()
        .map(|script| ScriptPlan {
            source: script.source,
        })
        .collect();
    let mut plan = Plan {
        max_slots: 0,
        paths: paths_plan,
        schema: program.schema.clone(),
        policies,
        rules,
        indexes,
        invariants,
        functions,
        scripts,
        sources: sources.clone(),
    };
    mark_kept_fields(&mut plan);
    plan.max_slots = plan_slots(&plan);
    Ok(plan)
}

/// How the plan uses the value of an expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Use {
    /// Compared, hashed, indexed or computed with.
    Read,
    /// Only shown as text.
    Shown,
}

/// Every plan expression: rules (with their explanations), functions,
/// invariants and paths, each with how its value is used (a labelled path
/// step is only shown).
/// Only the rules for which `rules` holds (by index) are visited; the
/// shared parts (invariants, functions, paths) always are.
fn for_each_expr(plan: &Plan, rules: &dyn Fn(usize) -> bool, visit: &mut dyn FnMut(&PExpr, Use)) {
    fn explain_nodes(node: &ExplainNode, visit: &mut dyn FnMut(&PExpr, Use)) {
        visit(&node.expr, Use::Read);
        if let Shape::Field { record, .. } = &node.shape {
            visit(record, Use::Read);
        }
        for child in &node.children {
            explain_nodes(child, visit);
        }
    }
    for (_, rule) in plan.rules.iter().enumerate().filter(|(idx, _)| rules(*idx)) {
        for expr in rule
            .filter
            .iter()
            .chain(rule.lets.iter().map(|(_, e)| e))
            .chain(rule.requires.iter().map(|(e, _)| e))
            .chain(rule.message.iter())
        {
            visit(expr, Use::Read);
        }
        for node in rule
            .filter_explain
            .iter()
            .chain(rule.require_explains.iter())
        {
            explain_nodes(node, visit);
        }
    }
    for expr in &plan.invariants {
        visit(expr, Use::Read);
    }
    for function in &plan.functions {
        if let FnKind::Bangfu { body, .. } = &function.kind {
            visit(body, Use::Read);
        }
    }
    // The paths of the rules' collections, and of the collections their
    // unlabelled steps lead to (`explain::path_of` follows them).
    let mut wanted = vec![false; plan.paths.len()];
    let mut pending: Vec<u32> = plan
        .rules
        .iter()
        .enumerate()
        .filter(|(idx, _)| rules(*idx))
        .filter_map(|(_, rule)| rule.entity)
        .collect();
    while let Some(coll) = pending.pop() {
        let Some(seen) = wanted.get_mut(coll as usize) else {
            continue;
        };
        if std::mem::replace(seen, true) {
            continue;
        }
        for step in &plan.paths[coll as usize] {
            if step.label.is_none()
                && let PExpr::Field { coll, field, .. } = &step.expr
                && let Some(FieldType::Scalar(ScalarType::Ref(target))) = plan
                    .schema
                    .data
                    .collections
                    .get(*coll as usize)
                    .and_then(|c| c.fields.get(*field as usize))
                    .map(|f| f.ty)
            {
                pending.push(target);
            }
        }
    }
    for (_, steps) in plan
        .paths
        .iter()
        .enumerate()
        .filter(|(coll, _)| wanted[*coll])
    {
        for step in steps {
            // `explain::path_of` shows a labelled step's value; an unlabelled
            // one is a reference it follows.
            let how = if step.label.is_some() {
                Use::Shown
            } else {
                Use::Read
            };
            visit(&step.expr, how);
        }
    }
}

/// One more than the largest slot any expression reads or binds.
fn plan_slots(plan: &Plan) -> u32 {
    fn slots(expr: &PExpr) -> u32 {
        let own = match expr {
            PExpr::Local(slot) | PExpr::Filter { slot, .. } => slot + 1,
            _ => 0,
        };
        let mut max = own;
        expr.for_each_child(&mut |child| max = max.max(slots(child)));
        max
    }
    let mut max = plan.rules.iter().map(|r| r.n_slots).max().unwrap_or(0);
    for function in &plan.functions {
        if let FnKind::Bangfu { n_slots, .. } = function.kind {
            max = max.max(n_slots);
        }
    }
    for_each_expr(plan, &|_| true, &mut |expr, _| max = max.max(slots(expr)));
    max.max(1)
}

fn is_collection_name(program: &CheckedProgram, expr: &Expr) -> bool {
    matches!(program.names.get(&expr.id), Some(NameRes::Collection(_)))
}

/// The value of a constant expression (param defaults and overrides; the
/// checker has made sure they are constants).
fn const_value(program: &CheckedProgram, expr: &Expr) -> Value {
    match &expr.kind {
        ExprKind::Int(value) => Value::Int(*value),
        ExprKind::Number(value) => Value::Number(*value),
        ExprKind::Str(text) => Value::Text(text.as_str().into()),
        ExprKind::Bool(value) => Value::Bool(*value),
        ExprKind::Null => Value::Null,
        ExprKind::Name(_) => match program.names.get(&expr.id) {
            Some(NameRes::Variant(enum_idx, variant)) => Value::Enum(*enum_idx, *variant),
            _ => Value::Null,
        },
        ExprKind::List(elems) => Value::List(
            elems
                .iter()
                .map(|e| const_value(program, &e.value))
                .collect(),
        ),
        ExprKind::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(k, v)| (const_value(program, k), const_value(program, v)))
                .collect(),
        ),
        ExprKind::Call(_, args) if matches!(program.calls.get(&expr.id), Some(Builtin::Date)) => {
            match args.first().map(|a| &a.kind) {
                Some(ExprKind::Str(text)) => {
                    crate::data::parse_date(text).map_or(Value::Null, Value::Date)
                }
                _ => Value::Null,
            }
        }
        ExprKind::Unary(UnaryOp::Neg, operand) => match const_value(program, operand) {
            Value::Int(value) => Value::Int(value.wrapping_neg()),
            Value::Number(value) => Value::Number(-value),
            _ => Value::Null,
        },
        _ => Value::Null,
    }
}

struct Compiler<'a> {
    program: &'a CheckedProgram,
    indexes: Vec<IndexSpec>,
    invariants: Vec<PExpr>,
    /// Param values by policy, then param.
    params: Vec<Vec<Value>>,
    errors: Vec<CompileError>,
    sources: &'a SourceMap,
    /// The `let`s of the rule being compiled: slot and definition.
    lets: Vec<(u32, Expr)>,
    /// Compiling explanation terms: they are evaluated only for violations,
    /// so nothing is hoisted into the run's invariants for them.
    explaining: bool,
}

impl Compiler<'_> {
    fn index(&mut self, spec: IndexSpec) -> u32 {
        match self.indexes.iter().position(|existing| *existing == spec) {
            Some(idx) => idx as u32,
            None => {
                self.indexes.push(spec);
                self.indexes.len() as u32 - 1
            }
        }
    }

    /// Hoists `expr` into an invariant if it depends on no binding and is
    /// worth computing once (it touches a collection).
    fn hoist(&mut self, expr: PExpr) -> PExpr {
        if !self.explaining && is_relational(&expr) && !uses_outer(&expr, &mut Vec::new()) {
            self.invariants.push(expr);
            PExpr::Invariant(self.invariants.len() as u32 - 1)
        } else {
            expr
        }
    }

    /// The explanation tree of a condition: its boolean structure, the
    /// operands of comparisons, fields, counts and `let`s, each with the
    /// text the author wrote.
    fn explain(&mut self, expr: &Expr, depth: usize) -> ExplainNode {
        let was_explaining = std::mem::replace(&mut self.explaining, true);
        let node = self.explain_inner(expr, depth);
        self.explaining = was_explaining;
        node
    }

    fn explain_inner(&mut self, expr: &Expr, depth: usize) -> ExplainNode {
        let text = self
            .sources
            .get(expr.span.src)
            .text()
            .and_then(|t| t.get(expr.span.start as usize..expr.span.end as usize))
            .unwrap_or("");
        // Spans of optional tails include the whitespace pest tried them on.
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let compiled = self.expr(expr);
        let mut children = Vec::new();
        let shape = match &expr.kind {
            ExprKind::Binary(BinaryOp::And, _, _) | ExprKind::Binary(BinaryOp::Or, _, _) => {
                let op = if matches!(expr.kind, ExprKind::Binary(BinaryOp::And, _, _)) {
                    BinaryOp::And
                } else {
                    BinaryOp::Or
                };
                let mut parts = Vec::new();
                flatten(expr, op, &mut parts);
                children = parts
                    .into_iter()
                    .map(|part| self.explain(part, depth + 1))
                    .collect();
                if op == BinaryOp::And {
                    Shape::And
                } else {
                    Shape::Or
                }
            }
            ExprKind::Unary(UnaryOp::Not, operand) => {
                children.push(self.explain(operand, depth + 1));
                Shape::Not
            }
            ExprKind::Binary(op, left, right) if !matches!(op, BinaryOp::Coalesce) => {
                children.push(self.explain(left, depth + 1));
                children.push(self.explain(right, depth + 1));
                Shape::Compare(*op)
            }
            ExprKind::Int(_)
            | ExprKind::Number(_)
            | ExprKind::Str(_)
            | ExprKind::Bool(_)
            | ExprKind::Null => Shape::Literal,
            ExprKind::Call(_, args) => match (self.program.calls.get(&expr.id), args.as_slice()) {
                (Some(Builtin::Count), [arg]) => {
                    children.push(self.explain(arg, depth + 1));
                    Shape::Count
                }
                (Some(Builtin::Any), [arg]) => {
                    children.push(self.explain(arg, depth + 1));
                    Shape::Any
                }
                _ => Shape::Other,
            },
            ExprKind::Field(_, _) | ExprKind::Name(_) => match (
                self.program.names.get(&expr.id),
                self.program.accesses.get(&expr.id),
                &compiled,
            ) {
                (Some(NameRes::Param { policy, param }), _, _) => Shape::Param {
                    policy: *policy,
                    param: *param,
                },
                (Some(NameRes::Local(slot)), _, _) => match self
                    .lets
                    .iter()
                    .find(|(s, _)| s == slot)
                    .map(|(_, e)| e.clone())
                {
                    Some(definition) if depth < 4 => {
                        children.push(self.explain(&definition, depth + 1));
                        Shape::Let
                    }
                    _ => Shape::Other,
                },
                (_, _, PExpr::Field { base, coll, field }) => Shape::Field {
                    record: base.as_ref().clone(),
                    coll: *coll,
                    field: *field,
                },
                _ => Shape::Other,
            },
            _ => Shape::Other,
        };
        ExplainNode {
            text: text.into(),
            expr: compiled,
            shape,
            children,
        }
    }

    fn member(&mut self, base: PExpr, member: Member) -> PExpr {
        match member {
            Member::Field { coll, field } => PExpr::Field {
                base: Box::new(base),
                coll,
                field,
            },
            Member::Backref {
                source,
                field,
                list,
            } => {
                let index = self.index(IndexSpec {
                    coll: source,
                    keys: vec![IndexKey { field, list }],
                });
                PExpr::Lookup {
                    index,
                    probes: vec![base],
                }
            }
        }
    }

    fn expr(&mut self, expr: &Expr) -> PExpr {
        match &expr.kind {
            ExprKind::Int(value) => PExpr::Const(Value::Int(*value)),
            ExprKind::Number(value) => PExpr::Const(Value::Number(*value)),
            ExprKind::Str(text) => PExpr::Const(Value::Text(text.as_str().into())),
            ExprKind::Bool(value) => PExpr::Const(Value::Bool(*value)),
            ExprKind::Null => PExpr::Const(Value::Null),
            ExprKind::Template(parts) => PExpr::Template(
                parts
                    .iter()
                    .map(|part| match part {
                        TemplatePart::Text(text) => PExpr::Const(Value::Text(text.as_str().into())),
                        TemplatePart::Expr(inner) => self.expr(inner),
                    })
                    .collect(),
            ),
            ExprKind::Name(_) => match self.program.names.get(&expr.id).copied() {
                Some(NameRes::Local(slot)) => PExpr::Local(slot),
                Some(NameRes::Implicit { slot, member }) => {
                    let compiled = self.member(PExpr::Local(slot), member);
                    self.hoist(compiled)
                }
                Some(NameRes::Param { policy, param }) => PExpr::Const(
                    self.params
                        .get(policy as usize)
                        .and_then(|params| params.get(param as usize))
                        .cloned()
                        .unwrap_or(Value::Null),
                ),
                Some(NameRes::Collection(coll)) => self.hoist(PExpr::Scan(coll)),
                Some(NameRes::Variant(enum_idx, variant)) => {
                    PExpr::Const(Value::Enum(enum_idx, variant))
                }
                None => PExpr::Const(Value::Null),
            },
            ExprKind::Field(base, _) => {
                let compiled_base = self.expr(base);
                let compiled = match self.program.accesses.get(&expr.id).copied() {
                    Some(Access::Member(member)) => self.member(compiled_base, member),
                    Some(Access::Project { coll, field }) => PExpr::Project {
                        source: Box::new(compiled_base),
                        coll,
                        field,
                    },
                    None => PExpr::Const(Value::Null),
                };
                self.hoist(compiled)
            }
            ExprKind::Index(base, index) => {
                PExpr::Index(Box::new(self.expr(base)), Box::new(self.expr(index)))
            }
            ExprKind::Call(_, args) => {
                let compiled_args: Vec<PExpr> = args.iter().map(|arg| self.expr(arg)).collect();
                if let Some(func) = self.program.fn_calls.get(&expr.id).copied() {
                    return self.hoist(PExpr::CallFn {
                        func,
                        args: compiled_args,
                        span: expr.span,
                    });
                }
                let Some(builtin) = self.program.calls.get(&expr.id).copied() else {
                    return PExpr::Const(Value::Null);
                };
                let compiled = PExpr::Call {
                    builtin,
                    args: compiled_args,
                    span: expr.span,
                };
                self.hoist(compiled)
            }
            ExprKind::List(elems) => PExpr::List(
                elems
                    .iter()
                    .map(|elem| {
                        (
                            self.expr(&elem.value),
                            elem.condition.as_ref().map(|c| self.expr(c)),
                        )
                    })
                    .collect(),
            ),
            ExprKind::Map(entries) => {
                // Map literals in rules are constant tables.
                PExpr::Const(Value::Map(
                    entries
                        .iter()
                        .map(|(k, v)| (const_value(self.program, k), const_value(self.program, v)))
                        .collect(),
                ))
            }
            ExprKind::Unary(UnaryOp::Not, operand) => PExpr::Not(Box::new(self.expr(operand))),
            ExprKind::Unary(UnaryOp::Neg, operand) => PExpr::Neg(Box::new(self.expr(operand))),
            ExprKind::Binary(BinaryOp::And, left, right) => {
                PExpr::And(Box::new(self.expr(left)), Box::new(self.expr(right)))
            }
            ExprKind::Binary(BinaryOp::Or, left, right) => {
                PExpr::Or(Box::new(self.expr(left)), Box::new(self.expr(right)))
            }
            ExprKind::Binary(op, left, right) => PExpr::Binary {
                op: *op,
                left: Box::new(self.expr(left)),
                right: Box::new(self.expr(right)),
                span: expr.span,
            },
            ExprKind::If(condition, then, otherwise) => PExpr::If(
                Box::new(self.expr(condition)),
                Box::new(self.expr(then)),
                Box::new(self.expr(otherwise)),
            ),
            ExprKind::Where {
                source, condition, ..
            } => {
                let compiled = self.filter(expr, source, condition);
                self.hoist(compiled)
            }
        }
    }

    /// Plans `source where condition`: index lookups for the conjuncts that
    /// compare an element field with a value not depending on the element,
    /// a residual filter for the rest.
    fn filter(&mut self, expr: &Expr, source: &Expr, condition: &Expr) -> PExpr {
        let Some(slot) = self.program.binders.get(&expr.id).copied() else {
            return PExpr::Const(Value::Null);
        };
        // The base: a whole collection, or a back-reference (already a lookup).
        let (coll, mut keys, mut probes) = match (
            &source.kind,
            self.program.names.get(&source.id),
            self.program.accesses.get(&source.id),
        ) {
            (ExprKind::Name(_), Some(NameRes::Collection(coll)), _) => {
                (Some(*coll), Vec::new(), Vec::new())
            }
            (
                ExprKind::Name(_),
                Some(NameRes::Implicit {
                    slot: outer,
                    member:
                        Member::Backref {
                            source,
                            field,
                            list,
                        },
                }),
                _,
            ) => (
                Some(*source),
                vec![IndexKey {
                    field: *field,
                    list: *list,
                }],
                vec![PExpr::Local(*outer)],
            ),
            (
                ExprKind::Field(base, _),
                _,
                Some(Access::Member(Member::Backref {
                    source,
                    field,
                    list,
                })),
            ) => (
                Some(*source),
                vec![IndexKey {
                    field: *field,
                    list: *list,
                }],
                vec![self.expr(base)],
            ),
            _ => (None, Vec::new(), Vec::new()),
        };
        let Some(coll) = coll else {
            let compiled_source = self.expr(source);
            let cond = self.expr(condition);
            return PExpr::Filter {
                source: Box::new(compiled_source),
                slot,
                cond: Box::new(cond),
            };
        };
        let mut residual = Vec::new();
        let mut conjuncts = Vec::new();
        split_and(condition, &mut conjuncts);
        for conjunct in conjuncts {
            match self.key_of(conjunct, slot, coll, keys.iter().any(|k| k.list)) {
                Some((key, probe)) => {
                    keys.push(key);
                    probes.push(probe);
                }
                None => residual.push(self.expr(conjunct)),
            }
        }
        let base = if keys.is_empty() {
            PExpr::Scan(coll)
        } else {
            let index = self.index(IndexSpec { coll, keys });
            PExpr::Lookup { index, probes }
        };
        match residual
            .into_iter()
            .reduce(|a, b| PExpr::And(Box::new(a), Box::new(b)))
        {
            None => base,
            Some(cond) => PExpr::Filter {
                source: Box::new(base),
                slot,
                cond: Box::new(cond),
            },
        }
    }

    /// If `conjunct` is `element.field == value` or `value in element.list`
    /// with `value` independent of the element, the index key and the probe.
    fn key_of(
        &mut self,
        conjunct: &Expr,
        slot: u32,
        coll: u32,
        have_list_key: bool,
    ) -> Option<(IndexKey, PExpr)> {
        let ExprKind::Binary(op, left, right) = &conjunct.kind else {
            return None;
        };
        let candidates: &[(&Expr, &Expr)] = match op {
            BinaryOp::Eq => &[(left, right), (right, left)],
            BinaryOp::In => &[(right, left)],
            _ => return None,
        };
        for (field_side, value_side) in candidates.iter().copied() {
            let Some(field) = self.element_field(field_side, slot, coll) else {
                continue;
            };
            let field_ty =
                self.program.schema.data.collections[coll as usize].fields[field as usize].ty;
            let list = matches!(field_ty, FieldType::List(_));
            // `==` needs a scalar field, `in` a list field; numbers are not
            // keyed (int/number equality would need normalising both sides).
            let usable = match (op, field_ty) {
                (BinaryOp::Eq, FieldType::Scalar(scalar)) => !matches!(scalar, ScalarType::Number),
                (BinaryOp::In, FieldType::List(_)) => !have_list_key,
                _ => false,
            };
            if !usable
                || mentions_slot(self.program, value_side, slot)
                || matches!(value_side.kind, ExprKind::Null)
            {
                continue;
            }
            let probe = self.expr(value_side);
            return Some((IndexKey { field, list }, probe));
        }
        None
    }

    /// The field index if `expr` reads a stored field of the element in `slot`.
    fn element_field(&self, expr: &Expr, slot: u32, coll: u32) -> Option<u32> {
        match &expr.kind {
            ExprKind::Name(_) => match self.program.names.get(&expr.id) {
                Some(NameRes::Implicit {
                    slot: s,
                    member: Member::Field { coll: c, field },
                }) if *s == slot && *c == coll => Some(*field),
                _ => None,
            },
            ExprKind::Field(base, _) => match (
                self.program.names.get(&base.id),
                self.program.accesses.get(&expr.id),
            ) {
                (
                    Some(NameRes::Local(s)),
                    Some(Access::Member(Member::Field { coll: c, field })),
                ) if *s == slot && *c == coll => Some(*field),
                _ => None,
            },
            _ => None,
        }
    }
}

/// The operands of a chain of `op` (`a and b and c` → a, b, c).
fn flatten<'e>(expr: &'e Expr, op: BinaryOp, out: &mut Vec<&'e Expr>) {
    match &expr.kind {
        ExprKind::Binary(inner, left, right) if *inner == op => {
            flatten(left, op, out);
            flatten(right, op, out);
        }
        _ => out.push(expr),
    }
}

fn split_and<'e>(expr: &'e Expr, out: &mut Vec<&'e Expr>) {
    match &expr.kind {
        ExprKind::Binary(BinaryOp::And, left, right) => {
            split_and(left, out);
            split_and(right, out);
        }
        _ => out.push(expr),
    }
}

/// Whether `expr` refers to the binding in `slot` (directly or through an
/// implicit field).
fn mentions_slot(program: &CheckedProgram, expr: &Expr, slot: u32) -> bool {
    let mut found = false;
    crate::check::walk(expr, &mut |e| match program.names.get(&e.id) {
        Some(NameRes::Local(s)) | Some(NameRes::Implicit { slot: s, .. }) if *s == slot => {
            found = true
        }
        _ => {}
    });
    found
}

fn is_relational(expr: &PExpr) -> bool {
    match expr {
        PExpr::Scan(_) | PExpr::Lookup { .. } | PExpr::Filter { .. } | PExpr::Project { .. } => {
            true
        }
        PExpr::Call { args, .. } | PExpr::CallFn { args, .. } => args.iter().any(is_relational),
        _ => false,
    }
}

/// Whether `expr` reads a slot it does not bind itself.
fn uses_outer(expr: &PExpr, bound: &mut Vec<u32>) -> bool {
    match expr {
        PExpr::Const(_) | PExpr::Invariant(_) | PExpr::Scan(_) => false,
        PExpr::Local(slot) => !bound.contains(slot),
        PExpr::Field { base, .. } => uses_outer(base, bound),
        PExpr::Project { source, .. } => uses_outer(source, bound),
        PExpr::Index(a, b)
        | PExpr::And(a, b)
        | PExpr::Or(a, b)
        | PExpr::Binary {
            left: a, right: b, ..
        } => uses_outer(a, bound) || uses_outer(b, bound),
        PExpr::Not(a) | PExpr::Neg(a) => uses_outer(a, bound),
        PExpr::If(a, b, c) => uses_outer(a, bound) || uses_outer(b, bound) || uses_outer(c, bound),
        PExpr::Call { args, .. } | PExpr::CallFn { args, .. } | PExpr::Template(args) => {
            args.iter().any(|a| uses_outer(a, bound))
        }
        PExpr::List(elems) => elems
            .iter()
            .any(|(v, c)| uses_outer(v, bound) || c.as_ref().is_some_and(|c| uses_outer(c, bound))),
        PExpr::Lookup { probes, .. } => probes.iter().any(|p| uses_outer(p, bound)),
        PExpr::Filter { source, slot, cond } => {
            if uses_outer(source, bound) {
                return true;
            }
            bound.push(*slot);
            let result = uses_outer(cond, bound);
            bound.pop();
            result
        }
    }
}

/// Marks the fields the plan reads, so loaders store them and drop the
/// others: `keep` on every field whose values the plan reads (compares,
/// hashes, indexes, computes with), every index key and every key field;
/// `shown` on every field it only shows as text, i.e. a field written
/// directly as a part of a template or as a labelled path step. Anything
/// else around a field (a call, a comparison, an `if`, a `let`) reads it.
fn mark_kept_fields(plan: &mut Plan) {
    plan.schema.data = plan.data_schema_for(&|_| true);
}

impl Plan {
    /// The data schema marked for the rules for which `rules` holds (by
    /// index): the fields they, the invariants, the functions, the indexes,
    /// the keys and the paths read (`keep`) or only show (`shown`). A run
    /// of some rules loads only what those rules need; a field no marked
    /// use reaches is checked and dropped.
    pub fn data_schema_for(&self, rules: &dyn Fn(usize) -> bool) -> crate::data::DataSchema {
        let mut schema = self.schema.data.clone();
        for field in schema
            .collections
            .iter_mut()
            .flat_map(|c| c.fields.iter_mut())
        {
            field.keep = false;
            field.shown = false;
        }
        mark_fields(self, rules, &mut schema);
        schema
    }
}

fn mark_fields(plan: &Plan, rules: &dyn Fn(usize) -> bool, schema: &mut crate::data::DataSchema) {
    let mut used: Vec<(u32, u32, Use)> = Vec::new();
    fn visit(expr: &PExpr, how: Use, used: &mut Vec<(u32, u32, Use)>) {
        if let PExpr::Field { coll, field, .. } | PExpr::Project { coll, field, .. } = expr {
            used.push((*coll, *field, how));
        }
        // A template only shows its parts; any other expression reads its
        // children (a field's record included).
        let child = if matches!(expr, PExpr::Template(_)) {
            Use::Shown
        } else {
            Use::Read
        };
        expr.for_each_child(&mut |part| visit(part, child, used));
    }
    let mut exprs_used = Vec::new();
    for_each_expr(plan, rules, &mut |expr, how| {
        visit(expr, how, &mut exprs_used)
    });
    used.extend(exprs_used);
    for spec in &plan.indexes {
        used.extend(
            spec.keys
                .iter()
                .map(|key| (spec.coll, key.field, Use::Read)),
        );
    }
    for (coll, info) in plan.schema.collections.iter().enumerate() {
        used.extend(
            info.key_fields
                .iter()
                .map(|field| (coll as u32, *field, Use::Read)),
        );
    }
    for (coll, field, how) in used {
        if let Some(field) = schema
            .collections
            .get_mut(coll as usize)
            .and_then(|c| c.fields.get_mut(field as usize))
        {
            match how {
                Use::Read => field.keep = true,
                Use::Shown => field.shown = true,
            }
        }
    }
}
