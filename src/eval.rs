//! Stage `eval`: a [`Plan`] run over a [`Dataset`].
//!
//! Takes the plan and the loaded columns; builds the hash indexes and
//! invariants a rule needs the first time it needs them, then evaluates
//! every selected rule for every entity of its
//! collection, in parallel with rayon, and gives [`Outcome`]s (the entities
//! that failed a `require`, with their messages) in a deterministic order:
//! rule order, then row order.
//!
//! **Invariants:** `eval` never sees policy text, only the plan and its spans.
//! Entities are evaluated independently. Nulls follow three-valued logic: a
//! comparison with null is null, `and`/`or` are Kleene, and a `require`
//! holds only when its condition is `true`.

mod fast;
mod screen;
pub mod script;

use std::borrow::Cow;
use std::sync::Arc;

use miette::{Diagnostic, SourceSpan};
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use thiserror::Error;

use crate::ast::BinaryOp;
use crate::check::Builtin;
use crate::compile::{FnKind, IndexSpec, PExpr, Plan, RulePlan};
use crate::data::{Column, ColumnData, Dataset, FieldType, NO_ROW, ScalarType, Sym};
use crate::source::{SourceText, Span};
use crate::value::{Resolver, RowSet, Value};

/// A runtime problem while evaluating one entity.
#[derive(Debug, Error, Diagnostic)]
pub enum EvalError {
    /// A rhai function failed.
    #[error("rhai function `{function}` failed in rule `{rule}` for `{key}`: {message}")]
    #[diagnostic(
        code(E0650),
        help(
            "the sandbox allows 1,000,000 operations and one second per call, and no file, network or module access; a function that exceeds a limit is disabled for the rest of the run"
        )
    )]
    ScriptFailed {
        /// The policy file.
        #[source_code]
        src: SourceText,
        /// The call.
        #[label("called here")]
        span: SourceSpan,
        /// Function.
        function: String,
        /// What went wrong.
        message: String,
        /// Rule id.
        rule: String,
        /// Entity key.
        key: String,
    },
    /// Division by zero.
    #[error("division by zero in rule `{rule}` for `{key}`")]
    #[diagnostic(
        code(E0601),
        help("guard the division: `if d != 0 then n / d else null`")
    )]
    DivisionByZero {
        /// The policy file.
        #[source_code]
        src: SourceText,
        /// The division.
        #[label("divides by zero")]
        span: SourceSpan,
        /// Rule id.
        rule: String,
        /// Entity key.
        key: String,
    },
}

/// Bytes reserved for the text of a template: a message with a few names
/// and numbers fits without growing.
const TEMPLATE_CAPACITY: usize = 128;

/// An entity that failed a rule.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Index into `Plan::rules`.
    pub rule: usize,
    /// The entity's row; `None` for a dataset-level rule.
    pub row: Option<u32>,
    /// Index of the first `require` that did not hold.
    pub failed: usize,
    /// The message.
    pub message: String,
    /// The rule's bindings when the condition failed, for explanations.
    pub env: Vec<Value>,
}

/// A value that can be hashed as (part of) an index key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum KeyAtom {
    Null,
    Bool(bool),
    Int(i64),
    Sym(Sym),
    Date(i32),
    Enum(u16),
}

enum Index {
    Single(FxHashMap<KeyAtom, Arc<[u32]>>),
    Multi(FxHashMap<Vec<KeyAtom>, Arc<[u32]>>),
    Dense(Dense),
}

/// An index whose key parts each take one of few values: a reference's
/// target row, an enum's variant or a boolean, each with one value more
/// for null. Every key combination has a place in the product of those
/// domains; the rows are grouped by it with a counting sort, no hashing,
/// and a probe finds its group by arithmetic. It answers every probe as the
/// hash index of the same spec would.
struct Dense {
    parts: Vec<DensePart>,
    /// Where the rows of each place start in `rows`; one more at the end.
    starts: Vec<u32>,
    rows: Arc<[u32]>,
}

/// The domain of one key part of a [`Dense`] index; its last value is null.
#[derive(Clone, Copy, Debug)]
enum DensePart {
    /// A reference into collection `target`, of `len` records (a dangling
    /// reference counts as null, as in the hash index).
    Ref {
        target: u32,
        len: u32,
    },
    /// An enum of `variants` variants.
    Enum {
        variants: u32,
    },
    Bool,
}

impl DensePart {
    fn size(self) -> u64 {
        match self {
            DensePart::Ref { len, .. } => u64::from(len) + 1,
            DensePart::Enum { variants } => u64::from(variants) + 1,
            DensePart::Bool => 3,
        }
    }

    fn null(self) -> u64 {
        self.size() - 1
    }
}

/// A probe of an index being put together, one key part at a time.
enum Probe {
    Atoms(Vec<KeyAtom>),
    Place(u64),
}

impl Probe {
    fn new(index: &Index, parts: usize) -> Probe {
        match index {
            Index::Dense(_) => Probe::Place(0),
            _ => Probe::Atoms(Vec::with_capacity(parts)),
        }
    }

    /// The rows of `index` whose key is the probe's.
    fn rows(&self, index: &Index) -> RowSet {
        let found = match (index, self) {
            (Index::Single(map), Probe::Atoms(atoms)) => {
                atoms.first().and_then(|atom| map.get(atom)).cloned()
            }
            (Index::Multi(map), Probe::Atoms(atoms)) => map.get(atoms).cloned(),
            (Index::Dense(dense), Probe::Place(place)) => {
                let place = usize::try_from(*place).unwrap_or(usize::MAX);
                if let (Some(&start), Some(&end)) = (
                    dense.starts.get(place),
                    dense.starts.get(place.saturating_add(1)),
                ) {
                    return RowSet::Slice(dense.rows.clone(), start, end);
                }
                None
            }
            _ => None,
        };
        RowSet::Some(found.unwrap_or_else(|| Arc::from(Vec::new())))
    }
}

enum Failure {
    DivisionByZero(Span),
    Script(Span, u32, String),
}

type EvalResult<T> = Result<T, Failure>;

/// Hash indexes built over one dataset, shared between evaluations of
/// different plans over the same data (the REPL recompiles the plan on every
/// `:set`; the indexes depend only on the data). Clear it when the data
/// changes.
#[derive(Clone, Default)]
pub struct IndexCache {
    built: Arc<std::sync::Mutex<FxHashMap<IndexSpec, Arc<Index>>>>,
}

impl IndexCache {
    /// An empty cache.
    pub fn new() -> IndexCache {
        IndexCache::default()
    }

    /// Forgets every index (after the data changed).
    pub fn clear(&self) {
        if let Ok(mut built) = self.built.lock() {
            built.clear();
        }
    }

    fn get(&self, spec: &IndexSpec) -> Option<Arc<Index>> {
        self.built.lock().ok()?.get(spec).cloned()
    }

    fn put(&self, spec: &IndexSpec, index: Arc<Index>) {
        if let Ok(mut built) = self.built.lock() {
            built.insert(spec.clone(), index);
        }
    }
}

/// A plan bound to a dataset. Indexes and once-per-run values are computed
/// the first time a rule needs them, so rules left out by `--rule` cost
/// nothing.
pub struct Evaluator<'a> {
    plan: &'a Plan,
    data: &'a Dataset,
    indexes: Vec<std::sync::OnceLock<Arc<Index>>>,
    invariants: Vec<std::sync::OnceLock<Value>>,
    cache: Option<IndexCache>,
    scripts: script::ScriptHost,
    /// Evaluate with the tree-walking interpreter only (see [`fast`]).
    interpret: bool,
}

impl Resolver for Evaluator<'_> {
    fn resolve(&self, sym: Sym) -> &str {
        self.data.interner.resolve(&sym)
    }

    fn row_key(&self, coll: u32, row: u32) -> String {
        self.key_text(coll, row)
    }

    fn variant_name(&self, enum_idx: u32, variant: u16) -> &str {
        self.plan
            .schema
            .data
            .enums
            .get(enum_idx as usize)
            .and_then(|e| e.variants.get(variant as usize))
            .map_or("?", String::as_str)
    }

    fn row_key_sym(&self, coll: u32, row: u32) -> Option<Sym> {
        let key_field = self.plan.schema.data.collections[coll as usize].key?;
        match &self.data.collections[coll as usize].columns[key_field].data {
            ColumnData::Str(values) => values.get(row as usize).copied(),
            _ => None,
        }
    }
}

impl<'a> Evaluator<'a> {
    /// Builds the plan's indexes and invariants over `data`.
    pub fn new(plan: &'a Plan, data: &'a Dataset) -> Evaluator<'a> {
        Evaluator::with_cache(plan, data, None)
    }

    /// An evaluator that takes indexes from `cache` and leaves the ones it
    /// builds there.
    pub fn with_cache(
        plan: &'a Plan,
        data: &'a Dataset,
        cache: Option<IndexCache>,
    ) -> Evaluator<'a> {
        Evaluator {
            plan,
            data,
            indexes: plan
                .indexes
                .iter()
                .map(|_| std::sync::OnceLock::new())
                .collect(),
            invariants: plan
                .invariants
                .iter()
                .map(|_| std::sync::OnceLock::new())
                .collect(),
            cache,
            scripts: script::ScriptHost::new(plan),
            interpret: false,
        }
    }

    /// The column of field `field` of collection `coll`.
    fn column(&self, coll: u32, field: u32) -> &'a Column {
        &self.data.collections[coll as usize].columns[field as usize]
    }

    /// The column of field `field` of `coll` and the rows it names, when it
    /// is a reference to collection `target`.
    fn reference(&self, coll: u32, field: u32, target: u32) -> Option<(&'a Column, &'a [u32])> {
        let column = self.column(coll, field);
        match &column.data {
            ColumnData::Ref {
                target: to, rows, ..
            } if *to == target => Some((column, rows)),
            _ => None,
        }
    }

    /// The plan evaluated.
    pub fn plan(&self) -> &'a Plan {
        self.plan
    }

    /// Rules are evaluated by the tree-walking interpreter alone, not by
    /// closures compiled from their expressions: the reference the compiled
    /// form is tested against, and a way to rule it out when a result looks
    /// wrong.
    pub fn interpreted(mut self) -> Evaluator<'a> {
        self.interpret = true;
        self
    }

    fn index(&self, idx: usize) -> &Index {
        self.indexes[idx].get_or_init(|| {
            let spec = &self.plan.indexes[idx];
            if let Some(index) = self.cache.as_ref().and_then(|cache| cache.get(spec)) {
                return index;
            }
            let index = Arc::new(build_index(spec, self.data, &self.plan.schema.data));
            if let Some(cache) = &self.cache {
                cache.put(spec, index.clone());
            }
            index
        })
    }

    /// An invariant's value, computed on first use, borrowed.
    fn invariant_ref(&self, idx: usize) -> &Value {
        static NULL: Value = Value::Null;
        match self.invariants.get(idx) {
            Some(cell) => cell.get_or_init(|| {
                // Invariants read no slot; a Filter inside one binds its own.
                let mut env = vec![Value::Null; self.plan.max_slots as usize];
                self.eval(&self.plan.invariants[idx], &mut env)
                    .unwrap_or(Value::Null)
            }),
            None => &NULL,
        }
    }

    fn invariant(&self, idx: usize) -> Value {
        self.invariants
            .get(idx)
            .map(|cell| {
                cell.get_or_init(|| {
                    // Invariants read no slot; a Filter inside one binds its own.
                    let mut env = vec![Value::Null; self.plan.max_slots as usize];
                    self.eval(&self.plan.invariants[idx], &mut env)
                        .unwrap_or(Value::Null)
                })
                .clone()
            })
            .unwrap_or(Value::Null)
    }

    /// The key of a record as reported: its key field, the key fields joined
    /// with `/` for a composite key, or `#row` without a key.
    pub fn key_text(&self, coll: u32, row: u32) -> String {
        let info = &self.plan.schema.collections[coll as usize];
        if info.key_fields.is_empty() {
            return format!("#{}", row + 1);
        }
        // The common key, one string field: its text, with no parts to join.
        if let [field] = info.key_fields[..] {
            let column = &self.data.collections[coll as usize].columns[field as usize];
            if let ColumnData::Str(keys) = &column.data
                && !column.is_null(row as usize)
                && let Some(key) = keys.get(row as usize)
            {
                return self.resolve(*key).to_string();
            }
        }
        let mut parts = Vec::with_capacity(info.key_fields.len());
        for field in &info.key_fields {
            let value = self.field_value(coll, *field, row);
            let text = match &value {
                Value::Row(target, target_row) => self
                    .row_key_sym(*target, *target_row)
                    .map(|s| self.resolve(s).to_string())
                    .unwrap_or_default(),
                // A dangling reference is null when read, but its key was
                // written; filled in below.
                Value::Null
                    if matches!(
                        self.data.collections[coll as usize].columns[*field as usize].data,
                        ColumnData::Ref { .. }
                    ) =>
                {
                    String::new()
                }
                other => other.to_display(self),
            };
            parts.push(text);
        }
        // A dangling reference in a composite key still shows what was written.
        for (part, field) in parts.iter_mut().zip(&info.key_fields) {
            if part.is_empty()
                && let Some(sym) = self.data.ref_key(
                    &self.plan.schema.data,
                    &self.data.collections[coll as usize].columns[*field as usize].data,
                    row as usize,
                )
            {
                *part = self.resolve(sym).to_string();
            }
        }
        parts.join("/")
    }

    /// Evaluates the rules for which `selected` holds; gives the outcomes in
    /// rule and row order, and every runtime error.
    pub fn run(&self, selected: &dyn Fn(&RulePlan) -> bool) -> (Vec<Outcome>, Vec<EvalError>) {
        let _timing = crate::data::Timing::start("eval: rules (and their indexes)");
        let mut outcomes = Vec::new();
        let mut errors = Vec::new();
        for (rule_idx, rule) in self.plan.rules.iter().enumerate() {
            if !selected(rule) {
                continue;
            }
            let _rule_timing = crate::data::Timing::start(format!("  rule {}", rule.id));
            // The indexes the rule probes, built side by side before its
            // records are (built on first use by one record, they would
            // hold the other threads up one after another).
            let mut needed = Vec::new();
            for expr in rule
                .filter
                .iter()
                .chain(rule.lets.iter().map(|(_, expr)| expr))
                .chain(rule.requires.iter().map(|(expr, _)| expr))
            {
                lookups_in(expr, &mut needed);
            }
            needed.sort_unstable();
            needed.dedup();
            let index_timing = crate::data::Timing::start("    indexes");
            needed.par_iter().for_each(|idx| {
                self.index(*idx);
            });
            drop(index_timing);
            let compiled = self.compile_rule(rule, self.interpret);
            let compiled = &compiled;
            match rule.entity {
                Some(coll) => {
                    let len = self.data.collections[coll as usize].len as u32;
                    // Blocks of rows are screened column-wise first; only
                    // the rows the screen cannot pass are evaluated.
                    let screen = if self.interpret {
                        None
                    } else {
                        self.screen(rule, coll)
                    };
                    let screen = screen.as_ref();
                    let blocks = len.div_ceil(screen::BLOCK);
                    let results: Vec<Vec<(Option<Outcome>, Option<EvalError>)>> = (0..blocks)
                        .into_par_iter()
                        .map_init(
                            || vec![Value::Null; rule.n_slots as usize],
                            |env, block| {
                                let first = block * screen::BLOCK;
                                let end = (first + screen::BLOCK).min(len);
                                let mut evaluate = vec![true; (end - first) as usize];
                                if let Some(screen) = screen {
                                    self.screen_block(screen, first, &mut evaluate);
                                }
                                (first..end)
                                    .zip(evaluate)
                                    .filter(|(_, evaluate)| *evaluate)
                                    .filter_map(|(row, _)| {
                                        match self.entity(
                                            rule_idx,
                                            rule,
                                            compiled,
                                            Some((coll, row)),
                                            env,
                                        ) {
                                            Ok(None) => None,
                                            Ok(outcome) => Some((outcome, None)),
                                            Err(failure) => Some((
                                                None,
                                                Some(self.error(rule, Some((coll, row)), failure)),
                                            )),
                                        }
                                    })
                                    .collect()
                            },
                        )
                        .collect();
                    for (outcome, error) in results.into_iter().flatten() {
                        outcomes.extend(outcome);
                        errors.extend(error);
                    }
                }
                None => {
                    let mut env = vec![Value::Null; rule.n_slots as usize];
                    match self.entity(rule_idx, rule, compiled, None, &mut env) {
                        Ok(outcome) => outcomes.extend(outcome),
                        Err(failure) => errors.push(self.error(rule, None, failure)),
                    }
                }
            }
        }
        (outcomes, errors)
    }

    fn error(&self, rule: &RulePlan, entity: Option<(u32, u32)>, failure: Failure) -> EvalError {
        let key = entity.map_or_else(
            || "dataset".to_string(),
            |(coll, row)| self.key_text(coll, row),
        );
        match failure {
            Failure::DivisionByZero(span) => EvalError::DivisionByZero {
                src: self.plan.sources.get(span.src).clone(),
                span: span.into(),
                rule: rule.id.clone(),
                key,
            },
            Failure::Script(span, func, message) => EvalError::ScriptFailed {
                src: self.plan.sources.get(span.src).clone(),
                span: span.into(),
                function: self
                    .plan
                    .functions
                    .get(func as usize)
                    .map_or_else(String::new, |f| f.name.clone()),
                message,
                rule: rule.id.clone(),
                key,
            },
        }
    }

    fn entity(
        &self,
        rule_idx: usize,
        rule: &RulePlan,
        compiled: &fast::CompiledRule<'_>,
        entity: Option<(u32, u32)>,
        env: &mut [Value],
    ) -> EvalResult<Option<Outcome>> {
        if let Some((coll, row)) = entity {
            env[rule.var_slot as usize] = Value::Row(coll, row);
            if let Some(filter) = &compiled.filter
                && filter(env)? != Some(true)
            {
                return Ok(None);
            }
        }
        for (slot, value) in &compiled.lets {
            env[*slot] = value(env)?;
        }
        for (failed, condition) in compiled.requires.iter().enumerate() {
            if condition(env)? != Some(true) {
                let message = match &compiled.message {
                    Some(message) => message(env)?,
                    None => rule.title.clone(),
                };
                return Ok(Some(Outcome {
                    rule: rule_idx,
                    row: entity.map(|(_, row)| row),
                    failed,
                    message,
                    env: env.to_vec(),
                }));
            }
        }
        Ok(None)
    }

    /// `expr` as text, as `eval` then `to_display` give it; a template is
    /// written straight into one string (a message per violation).
    fn text_of(&self, expr: &PExpr, env: &mut [Value]) -> EvalResult<String> {
        let PExpr::Template(parts) = expr else {
            return Ok(self.eval(expr, env)?.to_display(self));
        };
        let mut text = String::with_capacity(TEMPLATE_CAPACITY);
        for part in parts {
            self.operand(part, env)?.display(self, &mut text);
        }
        Ok(text)
    }

    fn truthy(&self, expr: &PExpr, env: &mut [Value]) -> EvalResult<bool> {
        Ok(self.logic(expr, env)? == Some(true))
    }

    /// The value of an operand, borrowed when it is a constant or an
    /// invariant: cloning those would bump the reference count of a map or
    /// a row set that every thread shares, and the cache line bouncing
    /// between cores costs more than the rest of the expression.
    #[inline]
    fn operand<'e>(&'e self, expr: &'e PExpr, env: &mut [Value]) -> EvalResult<Cow<'e, Value>> {
        Ok(match expr {
            PExpr::Const(value) => Cow::Borrowed(value),
            PExpr::Invariant(idx) => Cow::Borrowed(self.invariant_ref(*idx as usize)),
            other => Cow::Owned(self.eval(other, env)?),
        })
    }

    /// The value of a plan expression in `env` (explanations); a runtime
    /// error gives null.
    pub fn value_of(&self, expr: &PExpr, env: &mut [Value]) -> Value {
        self.eval(expr, env).unwrap_or(Value::Null)
    }

    /// The value of a field of one record.
    #[inline]
    pub fn field_value(&self, coll: u32, field: u32, row: u32) -> Value {
        let column = &self.data.collections[coll as usize].columns[field as usize];
        let row = row as usize;
        if column.is_null(row) {
            return Value::Null;
        }
        match &column.data {
            // Columns store variant numbers only; the schema knows the enum.
            ColumnData::Enum(values) => match values.get(row) {
                Some(variant) => Value::Enum(self.enum_of(coll, field), *variant),
                None => Value::Null,
            },
            ColumnData::List { .. } => self.list_value(coll, field, column, row),
            data => scalar_value(data, row).unwrap_or(Value::Null),
        }
    }

    /// The enum type of an enum field (or of a list field's elements).
    fn enum_of(&self, coll: u32, field: u32) -> u32 {
        match self.plan.schema.data.collections[coll as usize].fields[field as usize].ty {
            FieldType::Scalar(ScalarType::Enum(idx)) | FieldType::List(ScalarType::Enum(idx)) => {
                idx
            }
            _ => u32::MAX,
        }
    }

    #[inline(never)]
    fn list_value(&self, coll: u32, field: u32, column: &Column, row: usize) -> Value {
        match column_value(column, row) {
            Value::List(items) if items.iter().any(|item| matches!(item, Value::Enum(..))) => {
                let enum_idx = self.enum_of(coll, field);
                Value::List(
                    items
                        .iter()
                        .map(|item| match item {
                            Value::Enum(_, v) => Value::Enum(enum_idx, *v),
                            other => other.clone(),
                        })
                        .collect(),
                )
            }
            other => other,
        }
    }

    /// The value of an expression. The forms every per-record rule uses are
    /// here; the rest (calls, lists, templates, lookups, filters) are in
    /// [`Evaluator::eval_cold`], so this function's frame stays small.
    #[inline]
    fn eval(&self, expr: &PExpr, env: &mut [Value]) -> EvalResult<Value> {
        Ok(match expr {
            PExpr::Const(value) => value.clone(),
            PExpr::Local(slot) => env[*slot as usize].clone(),
            PExpr::Field { base, coll, field } => {
                let record = match &**base {
                    // The common case, `x.field`: no clone of the binding.
                    PExpr::Local(slot) => match &env[*slot as usize] {
                        Value::Row(c, row) => Some((*c, *row)),
                        _ => None,
                    },
                    other => match self.eval(other, env)? {
                        Value::Row(c, row) => Some((c, row)),
                        _ => None,
                    },
                };
                match record {
                    Some((c, row)) if c == *coll => self.field_value(*coll, *field, row),
                    _ => Value::Null,
                }
            }
            PExpr::And(..) | PExpr::Or(..) | PExpr::Not(..) => match self.logic(expr, env)? {
                Some(value) => Value::Bool(value),
                None => Value::Null,
            },
            PExpr::Binary {
                op,
                left,
                right,
                span,
            } => {
                let left = self.operand(left, env)?;
                let right = self.operand(right, env)?;
                self.binary(*op, &left, &right, *span)?
            }
            PExpr::If(condition, then, otherwise) => {
                if self.truthy(condition, env)? {
                    self.eval(then, env)?
                } else {
                    self.eval(otherwise, env)?
                }
            }
            other => self.eval_cold(other, env)?,
        })
    }

    /// Three-valued logic without building values: `Some(b)` for a boolean,
    /// `None` for null (or a non-boolean).
    fn logic(&self, expr: &PExpr, env: &mut [Value]) -> EvalResult<Option<bool>> {
        Ok(match expr {
            PExpr::And(left, right) => match self.logic(left, env)? {
                Some(false) => Some(false),
                left_value => match (left_value, self.logic(right, env)?) {
                    (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                },
            },
            PExpr::Or(left, right) => match self.logic(left, env)? {
                Some(true) => Some(true),
                left_value => match (left_value, self.logic(right, env)?) {
                    (_, Some(true)) => Some(true),
                    (Some(false), Some(false)) => Some(false),
                    _ => None,
                },
            },
            PExpr::Not(operand) => self.logic(operand, env)?.map(|value| !value),
            PExpr::Local(slot) => match &env[*slot as usize] {
                Value::Bool(value) => Some(*value),
                _ => None,
            },
            // Comparisons give a boolean or null; deciding them here saves
            // building and dropping the value, and a test against the
            // literal null needs no value of the other side at all.
            PExpr::Binary {
                op: op @ (BinaryOp::Eq | BinaryOp::Ne),
                left,
                right,
                ..
            } if matches!(**right, PExpr::Const(Value::Null)) => {
                Some(self.is_null(left, env)? == (*op == BinaryOp::Eq))
            }
            PExpr::Binary {
                op, left, right, ..
            } if op.is_comparison() => {
                let left = self.operand(left, env)?;
                let right = self.operand(right, env)?;
                self.decide(*op, &left, &right)
            }
            other => match self.eval(other, env)? {
                Value::Bool(value) => Some(value),
                _ => None,
            },
        })
    }

    /// A comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`) of two values:
    /// `None` when they do not compare (a null, or different kinds).
    #[inline]
    fn decide(&self, op: BinaryOp, left: &Value, right: &Value) -> Option<bool> {
        use std::cmp::Ordering;
        match op {
            BinaryOp::Eq => Some(left.equals(right, self)),
            BinaryOp::Ne => Some(!left.equals(right, self)),
            _ => left.compare(right, self).map(|ordering| match op {
                BinaryOp::Lt => ordering == Ordering::Less,
                BinaryOp::Le => ordering != Ordering::Greater,
                BinaryOp::Gt => ordering == Ordering::Greater,
                _ => ordering != Ordering::Less,
            }),
        }
    }

    /// Whether an expression is null; for `x.field` read from the column's
    /// null flags (and a reference's row) without building the value.
    #[inline]
    fn is_null(&self, expr: &PExpr, env: &mut [Value]) -> EvalResult<bool> {
        if let PExpr::Field { base, coll, field } = expr
            && let PExpr::Local(slot) = &**base
        {
            return Ok(match &env[*slot as usize] {
                Value::Row(c, row) if c == coll => {
                    let column = &self.data.collections[*coll as usize].columns[*field as usize];
                    let row = *row as usize;
                    column.is_null(row) || cell_missing(&column.data, row)
                }
                _ => true,
            });
        }
        Ok(self.eval(expr, env)?.is_null())
    }

    #[inline(never)]
    fn eval_cold(&self, expr: &PExpr, env: &mut [Value]) -> EvalResult<Value> {
        Ok(match expr {
            // `eval` decides these itself and never passes them here.
            PExpr::Const(_)
            | PExpr::Local(_)
            | PExpr::Field { .. }
            | PExpr::And(..)
            | PExpr::Or(..)
            | PExpr::Not(..)
            | PExpr::Binary { .. }
            | PExpr::If(..) => return self.eval(expr, env),
            PExpr::Invariant(idx) => self.invariant(*idx as usize),
            PExpr::Project {
                source,
                coll,
                field,
            } => match self.eval(source, env)? {
                Value::Rows(_, rows) => Value::List(
                    rows.iter()
                        .map(|row| self.field_value(*coll, *field, row))
                        .collect(),
                ),
                _ => Value::Null,
            },
            PExpr::Index(base, index) => {
                let base = self.operand(base, env)?;
                let index = self.operand(index, env)?;
                match (&*base, &*index) {
                    (Value::Map(entries), index) => entries
                        .iter()
                        .find(|(k, _)| k.equals(index, self))
                        .map_or(Value::Null, |(_, v)| v.clone()),
                    (Value::List(items), Value::Int(i)) if *i >= 0 => {
                        items.get(*i as usize).cloned().unwrap_or(Value::Null)
                    }
                    _ => Value::Null,
                }
            }
            PExpr::Neg(operand) => match self.eval(operand, env)? {
                Value::Int(value) => value
                    .checked_neg()
                    .map_or(Value::Number(-(value as f64)), Value::Int),
                Value::Number(value) => Value::Number(-value),
                _ => Value::Null,
            },
            PExpr::Call {
                builtin,
                args,
                span,
            } => {
                let mut values = Vec::with_capacity(args.len());
                for arg in args {
                    values.push(self.eval(arg, env)?);
                }
                self.call(*builtin, values, *span)?
            }
            PExpr::CallFn { func, args, span } => {
                let mut values = Vec::with_capacity(args.len());
                for arg in args {
                    values.push(self.eval(arg, env)?);
                }
                let Some(function) = self.plan.functions.get(*func as usize) else {
                    return Ok(Value::Null);
                };
                match &function.kind {
                    FnKind::Bangfu { body, n_slots } => {
                        let mut frame = vec![Value::Null; (*n_slots as usize).max(values.len())];
                        for (slot, value) in values.into_iter().enumerate() {
                            frame[slot] = value;
                        }
                        self.eval(body, &mut frame)?
                    }
                    FnKind::Script { script } => self
                        .scripts
                        .call(self.plan, *func as usize, *script as usize, &values, self)
                        .map_err(|message| Failure::Script(*span, *func, message))?,
                }
            }
            PExpr::List(elems) => {
                let mut items = Vec::with_capacity(elems.len());
                for (value, condition) in elems {
                    if let Some(condition) = condition
                        && !self.truthy(condition, env)?
                    {
                        continue;
                    }
                    items.push(self.eval(value, env)?);
                }
                Value::List(items.into())
            }
            PExpr::Template(parts) => {
                let mut text = String::with_capacity(TEMPLATE_CAPACITY);
                for part in parts {
                    self.operand(part, env)?.display(self, &mut text);
                }
                Value::Text(text.into())
            }
            PExpr::Scan(coll) => Value::Rows(
                *coll,
                RowSet::All(self.data.collections[*coll as usize].len as u32),
            ),
            PExpr::Lookup { index, probes } => {
                let spec = &self.plan.indexes[*index as usize];
                let built = self.index(*index as usize);
                let mut probe = Probe::new(built, probes.len());
                for (part, value) in probes.iter().enumerate() {
                    let value = self.eval(value, env)?;
                    if !self.probe_part(built, &mut probe, part, &value) {
                        return Ok(Value::Rows(spec.coll, RowSet::Some(Arc::from(Vec::new()))));
                    }
                }
                Value::Rows(spec.coll, probe.rows(built))
            }
            PExpr::Filter { source, slot, cond } => {
                let source = self.eval(source, env)?;
                let saved = env[*slot as usize].clone();
                let result = match source {
                    Value::Rows(coll, rows) => {
                        let mut kept = Vec::new();
                        for row in rows.iter() {
                            env[*slot as usize] = Value::Row(coll, row);
                            if self.truthy(cond, env)? {
                                kept.push(row);
                            }
                        }
                        Value::Rows(coll, RowSet::Some(kept.into()))
                    }
                    Value::List(items) => {
                        let mut kept = Vec::new();
                        for item in items.iter() {
                            env[*slot as usize] = item.clone();
                            if self.truthy(cond, env)? {
                                kept.push(item.clone());
                            }
                        }
                        Value::List(kept.into())
                    }
                    _ => Value::Null,
                };
                env[*slot as usize] = saved;
                result
            }
        })
    }

    /// Adds `value`, the probe of key part `part`, to `probe`; false when
    /// no key of `index` can equal it (the lookup finds nothing).
    fn probe_part(&self, index: &Index, probe: &mut Probe, part: usize, value: &Value) -> bool {
        match (index, probe) {
            (Index::Dense(dense), Probe::Place(place)) => {
                let Some(&domain) = dense.parts.get(part) else {
                    return false;
                };
                match self.dense_value(domain, value) {
                    Some(at) => {
                        *place = *place * domain.size() + at;
                        true
                    }
                    None => false,
                }
            }
            (_, Probe::Atoms(atoms)) => match self.probe_atom(value) {
                Some(atom) => {
                    atoms.push(atom);
                    true
                }
                None => false,
            },
            _ => false,
        }
    }

    /// The place of `value` in the domain of a key part of a [`Dense`]
    /// index: the hash index's key equal to `value`'s atom ([`probe_atom`]),
    /// or `None` if none can be.
    ///
    /// [`probe_atom`]: Evaluator::probe_atom
    fn dense_value(&self, domain: DensePart, value: &Value) -> Option<u64> {
        if let Value::Null = value {
            return Some(domain.null());
        }
        match domain {
            DensePart::Ref { target, .. } => {
                // A reference's key is its target's key string: a record or
                // a string equal to that key finds it.
                let sym = match value {
                    Value::Row(coll, row) => self.row_key_sym(*coll, *row)?,
                    Value::Sym(sym) => *sym,
                    Value::Text(text) => self.data.interner.get(text)?,
                    _ => return None,
                };
                self.data.collections[target as usize]
                    .key_row(&sym)
                    .map(u64::from)
            }
            DensePart::Enum { variants } => match value {
                Value::Enum(_, variant) if u32::from(*variant) < variants => {
                    Some(u64::from(*variant))
                }
                _ => None,
            },
            DensePart::Bool => match value {
                Value::Bool(b) => Some(u64::from(*b)),
                _ => None,
            },
        }
    }

    fn probe_atom(&self, value: &Value) -> Option<KeyAtom> {
        Some(match value {
            Value::Null => KeyAtom::Null,
            Value::Bool(b) => KeyAtom::Bool(*b),
            Value::Int(i) => KeyAtom::Int(*i),
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => KeyAtom::Int(*n as i64),
            Value::Number(_) => return None,
            Value::Sym(sym) => KeyAtom::Sym(*sym),
            Value::Text(text) => KeyAtom::Sym(self.data.interner.get(text)?),
            Value::Date(days) => KeyAtom::Date(*days),
            Value::Enum(_, variant) => KeyAtom::Enum(*variant),
            Value::Row(coll, row) => KeyAtom::Sym(self.row_key_sym(*coll, *row)?),
            Value::Rows(..) | Value::List(_) | Value::Map(_) => return None,
        })
    }

    fn binary(&self, op: BinaryOp, left: &Value, right: &Value, span: Span) -> EvalResult<Value> {
        Ok(match op {
            BinaryOp::Eq
            | BinaryOp::Ne
            | BinaryOp::Lt
            | BinaryOp::Le
            | BinaryOp::Gt
            | BinaryOp::Ge => self
                .decide(op, left, right)
                .map_or(Value::Null, Value::Bool),
            BinaryOp::In | BinaryOp::NotIn => {
                let found = match (left, right) {
                    (_, Value::Null) => return Ok(Value::Null),
                    (_, Value::List(items)) => items.iter().any(|item| item.equals(left, self)),
                    (Value::Row(c, r), Value::Rows(coll, rows)) => {
                        c == coll && rows.iter().any(|row| row == *r)
                    }
                    // A key string is in a set of records when its record is.
                    (Value::Sym(_) | Value::Text(_), Value::Rows(coll, rows)) => {
                        let key = left
                            .as_str(self)
                            .and_then(|text| self.data.interner.get(text));
                        let row =
                            key.and_then(|key| self.data.collections[*coll as usize].key_row(&key));
                        row.is_some_and(|row| rows.iter().any(|r| r == row))
                    }
                    (_, Value::Map(entries)) => {
                        entries.iter().any(|(key, _)| key.equals(left, self))
                    }
                    (Value::Sym(_) | Value::Text(_), Value::Sym(_) | Value::Text(_)) => {
                        match (right.as_str(self), left.as_str(self)) {
                            (Some(haystack), Some(needle)) => haystack.contains(needle),
                            _ => false,
                        }
                    }
                    _ => false,
                };
                Value::Bool(found == (op == BinaryOp::In))
            }
            BinaryOp::Add
                if matches!(left, Value::Sym(_) | Value::Text(_))
                    || matches!(right, Value::Sym(_) | Value::Text(_)) =>
            {
                if left.is_null() || right.is_null() {
                    Value::Null
                } else {
                    Value::Text(
                        format!("{}{}", left.to_display(self), right.to_display(self)).into(),
                    )
                }
            }
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => {
                arithmetic(op, left, right, span)?
            }
            BinaryOp::Coalesce => {
                if left.is_null() {
                    right.clone()
                } else {
                    left.clone()
                }
            }
            BinaryOp::And | BinaryOp::Or => Value::Null,
        })
    }

    fn call(&self, builtin: Builtin, mut args: Vec<Value>, _span: Span) -> EvalResult<Value> {
        let first = if args.is_empty() {
            Value::Null
        } else {
            args.swap_remove(0)
        };
        Ok(match builtin {
            Builtin::Count | Builtin::Len => match &first {
                Value::Rows(_, rows) => Value::Int(rows.len() as i64),
                Value::List(items) => Value::Int(items.len() as i64),
                Value::Sym(_) | Value::Text(_) => {
                    Value::Int(first.as_str(self).map_or(0, |s| s.chars().count()) as i64)
                }
                _ => Value::Null,
            },
            Builtin::Any => match &first {
                Value::Rows(_, rows) => Value::Bool(!rows.is_empty()),
                Value::List(items) => {
                    Value::Bool(items.iter().any(|item| matches!(item, Value::Bool(true))))
                }
                _ => Value::Null,
            },
            Builtin::All => match &first {
                Value::List(items) => {
                    Value::Bool(items.iter().all(|item| matches!(item, Value::Bool(true))))
                }
                _ => Value::Null,
            },
            Builtin::Sum | Builtin::Avg | Builtin::Min | Builtin::Max => match &first {
                Value::List(items) => aggregate(builtin, items, self),
                _ => Value::Null,
            },
            Builtin::Distinct => match first {
                Value::List(items) => {
                    let mut seen: Vec<Value> = Vec::new();
                    let mut atoms = rustc_hash::FxHashSet::default();
                    for item in items.iter() {
                        match self.probe_atom(item) {
                            Some(atom) => {
                                if atoms.insert(atom) {
                                    seen.push(item.clone());
                                }
                            }
                            None => {
                                if !seen.iter().any(|s| s.equals(item, self)) {
                                    seen.push(item.clone());
                                }
                            }
                        }
                    }
                    Value::List(seen.into())
                }
                rows @ Value::Rows(..) => rows,
                _ => Value::Null,
            },
            Builtin::Join => {
                let separator = args
                    .first()
                    .and_then(|s| s.as_str(self))
                    .unwrap_or(", ")
                    .to_string();
                let mut text = String::new();
                let push = |item: &Value, text: &mut String, first_item: bool| {
                    if !first_item {
                        text.push_str(&separator);
                    }
                    item.display(self, text);
                };
                match &first {
                    Value::List(items) => items
                        .iter()
                        .enumerate()
                        .for_each(|(idx, item)| push(item, &mut text, idx == 0)),
                    Value::Rows(coll, rows) => rows
                        .iter()
                        .enumerate()
                        .for_each(|(idx, row)| push(&Value::Row(*coll, row), &mut text, idx == 0)),
                    _ => return Ok(Value::Null),
                }
                Value::Text(text.into())
            }
            Builtin::Percent => match first.as_f64() {
                Some(value) => Value::Text(format!("{:.2}%", value * 100.0).into()),
                None => Value::Null,
            },
            Builtin::Abs => match first {
                Value::Int(value) => Value::Int(value.saturating_abs()),
                Value::Number(value) => Value::Number(value.abs()),
                _ => Value::Null,
            },
            Builtin::Round => {
                let digits = match args.first() {
                    Some(Value::Int(d)) => (*d).clamp(0, 15) as i32,
                    _ => 0,
                };
                match first.as_f64() {
                    Some(value) => {
                        let scale = 10f64.powi(digits);
                        Value::Number((value * scale).round() / scale)
                    }
                    None => Value::Null,
                }
            }
            Builtin::StartsWithAny => {
                let text = match &first {
                    Value::Row(coll, row) => Some(self.key_text(*coll, *row)),
                    other => other.as_str(self).map(str::to_string),
                };
                match (text, args.first()) {
                    (Some(text), Some(Value::List(prefixes))) => Value::Bool(
                        prefixes
                            .iter()
                            .any(|p| p.as_str(self).is_some_and(|p| text.starts_with(p))),
                    ),
                    _ => Value::Null,
                }
            }
            Builtin::StartsWith | Builtin::EndsWith | Builtin::Contains => {
                let other = args.first().cloned().unwrap_or(Value::Null);
                match (first.as_str(self), other.as_str(self)) {
                    (Some(text), Some(part)) => Value::Bool(match builtin {
                        Builtin::StartsWith => text.starts_with(part),
                        Builtin::EndsWith => text.ends_with(part),
                        _ => text.contains(part),
                    }),
                    _ => Value::Null,
                }
            }
            Builtin::Date => match first.as_str(self).and_then(crate::data::parse_date) {
                Some(days) => Value::Date(days),
                None => Value::Null,
            },
            Builtin::Year => match first {
                Value::Date(days) => crate::data::format_date(days)
                    .get(0..4)
                    .and_then(|y| y.parse().ok())
                    .map_or(Value::Null, Value::Int),
                _ => Value::Null,
            },
        })
    }
}

fn arithmetic(op: BinaryOp, left: &Value, right: &Value, span: Span) -> EvalResult<Value> {
    if let (Value::Int(a), Value::Int(b)) = (left, right) {
        let (a, b) = (*a, *b);
        let exact = match op {
            BinaryOp::Add => a.checked_add(b),
            BinaryOp::Sub => a.checked_sub(b),
            BinaryOp::Mul => a.checked_mul(b),
            BinaryOp::Rem if b == 0 => return Err(Failure::DivisionByZero(span)),
            BinaryOp::Rem => a.checked_rem(b),
            _ => None,
        };
        if let Some(value) = exact {
            return Ok(Value::Int(value));
        }
    }
    let (Some(a), Some(b)) = (left.as_f64(), right.as_f64()) else {
        return Ok(Value::Null);
    };
    Ok(Value::Number(match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div | BinaryOp::Rem if b == 0.0 => return Err(Failure::DivisionByZero(span)),
        BinaryOp::Div => a / b,
        _ => a % b,
    }))
}

fn aggregate(builtin: Builtin, items: &[Value], resolver: &dyn Resolver) -> Value {
    let present: Vec<&Value> = items.iter().filter(|item| !item.is_null()).collect();
    match builtin {
        Builtin::Sum => {
            if present.iter().all(|item| matches!(item, Value::Int(_))) {
                let mut total: i64 = 0;
                for item in &present {
                    if let Value::Int(value) = item {
                        match total.checked_add(*value) {
                            Some(sum) => total = sum,
                            None => {
                                return Value::Number(
                                    present.iter().filter_map(|v| v.as_f64()).sum(),
                                );
                            }
                        }
                    }
                }
                Value::Int(total)
            } else {
                Value::Number(present.iter().filter_map(|v| v.as_f64()).sum())
            }
        }
        Builtin::Avg => {
            if present.is_empty() {
                return Value::Null;
            }
            Value::Number(
                present.iter().filter_map(|v| v.as_f64()).sum::<f64>() / present.len() as f64,
            )
        }
        _ => {
            let mut best: Option<&Value> = None;
            for item in present {
                best = match best {
                    None => Some(item),
                    Some(current) => {
                        let ordering = item.compare(current, resolver);
                        let better = match builtin {
                            Builtin::Min => ordering == Some(std::cmp::Ordering::Less),
                            _ => ordering == Some(std::cmp::Ordering::Greater),
                        };
                        Some(if better { item } else { current })
                    }
                };
            }
            best.cloned().unwrap_or(Value::Null)
        }
    }
}

/// The value of one cell of a column.
fn column_value(column: &Column, row: usize) -> Value {
    if column.is_null(row) {
        return Value::Null;
    }
    scalar_value(&column.data, row).unwrap_or_else(|| match &column.data {
        ColumnData::List { offsets, items } => {
            let (Some(start), Some(end)) = (offsets.get(row), offsets.get(row + 1)) else {
                return Value::Null;
            };
            Value::List(
                (*start as usize..*end as usize)
                    .filter_map(|idx| scalar_value(items, idx))
                    .collect(),
            )
        }
        _ => Value::Null,
    })
}

/// Whether row `row` of a column holds no value (beyond its end, a
/// reference that names no row, a dropped field), without building it.
#[inline]
fn cell_missing(data: &ColumnData, row: usize) -> bool {
    match data {
        ColumnData::Ref { rows, .. } => rows.get(row).is_none_or(|target| *target == NO_ROW),
        ColumnData::Skipped => true,
        ColumnData::List { offsets, .. } => offsets.get(row + 1).is_none(),
        ColumnData::Int(values) => row >= values.len(),
        ColumnData::Number(values) => row >= values.len(),
        ColumnData::Str(values) => row >= values.len(),
        ColumnData::Date(values) => row >= values.len(),
        ColumnData::Enum(values) => row >= values.len(),
        ColumnData::Bool(bits) => row >= bits.len(),
    }
}

fn scalar_value(data: &ColumnData, idx: usize) -> Option<Value> {
    Some(match data {
        ColumnData::Int(values) => Value::Int(*values.get(idx)?),
        ColumnData::Number(values) => Value::Number(*values.get(idx)?),
        ColumnData::Bool(values) => Value::Bool(values.get(idx)?),
        ColumnData::Str(values) => Value::Sym(*values.get(idx)?),
        ColumnData::Date(values) => Value::Date(*values.get(idx)?),
        ColumnData::Enum(values) => Value::Enum(u32::MAX, *values.get(idx)?),
        ColumnData::Ref { target, rows, .. } => match rows.get(idx)? {
            &NO_ROW => Value::Null,
            row => Value::Row(*target, *row),
        },
        ColumnData::List { .. } | ColumnData::Skipped => return None,
    })
}

/// The key atoms of one cell (several for a list cell).
fn cell_atoms(
    keys: &KeyReader<'_>,
    column: &Column,
    row: usize,
    list: bool,
    out: &mut Vec<KeyAtom>,
) {
    out.clear();
    if column.is_null(row) {
        if !list {
            out.push(KeyAtom::Null);
        }
        return;
    }
    match &column.data {
        ColumnData::List { offsets, items } if list => {
            let (Some(start), Some(end)) = (offsets.get(row), offsets.get(row + 1)) else {
                return;
            };
            for idx in *start as usize..*end as usize {
                if let Some(atom) = data_atom(keys, items, idx) {
                    out.push(atom);
                }
            }
        }
        data => out.extend(data_atom(keys, data, row)),
    }
}

/// The indexes an expression probes (not those of invariants, which are
/// computed once anyway).
fn lookups_in(expr: &PExpr, out: &mut Vec<usize>) {
    match expr {
        PExpr::Lookup { index, probes } => {
            out.push(*index as usize);
            probes.iter().for_each(|probe| lookups_in(probe, out));
        }
        PExpr::Field { base, .. } => lookups_in(base, out),
        PExpr::Project { source, .. } => lookups_in(source, out),
        PExpr::Index(a, b)
        | PExpr::And(a, b)
        | PExpr::Or(a, b)
        | PExpr::Binary {
            left: a, right: b, ..
        } => {
            lookups_in(a, out);
            lookups_in(b, out);
        }
        PExpr::Not(a) | PExpr::Neg(a) => lookups_in(a, out),
        PExpr::If(a, b, c) => {
            lookups_in(a, out);
            lookups_in(b, out);
            lookups_in(c, out);
        }
        PExpr::Call { args, .. } | PExpr::CallFn { args, .. } | PExpr::Template(args) => {
            args.iter().for_each(|arg| lookups_in(arg, out));
        }
        PExpr::List(elems) => {
            for (value, condition) in elems {
                lookups_in(value, out);
                if let Some(condition) = condition {
                    lookups_in(condition, out);
                }
            }
        }
        PExpr::Filter { source, cond, .. } => {
            lookups_in(source, out);
            lookups_in(cond, out);
        }
        _ => {}
    }
}

/// What reading index keys needs: a reference is keyed by its target's
/// key, which lives in the target collection's key column.
struct KeyReader<'a> {
    data: &'a Dataset,
    schema: &'a crate::data::DataSchema,
}

fn data_atom(keys: &KeyReader<'_>, data: &ColumnData, idx: usize) -> Option<KeyAtom> {
    Some(match data {
        ColumnData::Int(values) => KeyAtom::Int(*values.get(idx)?),
        ColumnData::Bool(values) => KeyAtom::Bool(values.get(idx)?),
        ColumnData::Str(values) => KeyAtom::Sym(*values.get(idx)?),
        ColumnData::Date(values) => KeyAtom::Date(*values.get(idx)?),
        ColumnData::Enum(values) => KeyAtom::Enum(*values.get(idx)?),
        // A reference is keyed by its target's key, so a probe with the
        // record or its key string finds it; a dangling reference counts as
        // missing, as it does when the field is read (`x.ref == null`).
        ColumnData::Ref { rows, .. } => match rows.get(idx)? {
            &NO_ROW => KeyAtom::Null,
            _ => KeyAtom::Sym(keys.data.ref_key(keys.schema, data, idx)?),
        },
        ColumnData::Number(_) | ColumnData::List { .. } | ColumnData::Skipped => return None,
    })
}

fn build_index(spec: &IndexSpec, data: &Dataset, schema: &crate::data::DataSchema) -> Index {
    match dense_index(spec, data, schema, 1 << 16) {
        Some(dense) => Index::Dense(dense),
        None => build_index_in_runs(spec, data, schema, 1 << 16),
    }
}

/// The [`Dense`] form of `spec`'s index, when every key part is a
/// reference, an enum or a boolean and their product is small beside the
/// collection (at most four places per record, or 65,536); rows are read
/// in runs of `run_len` on all cores.
fn dense_index(
    spec: &IndexSpec,
    data: &Dataset,
    schema: &crate::data::DataSchema,
    run_len: usize,
) -> Option<Dense> {
    let collection = &data.collections[spec.coll as usize];
    let fields = &schema.collections[spec.coll as usize].fields;
    let mut parts = Vec::with_capacity(spec.keys.len());
    let mut columns = Vec::with_capacity(spec.keys.len());
    for key in &spec.keys {
        let column = &collection.columns[key.field as usize];
        let scalar = match (fields.get(key.field as usize)?.ty, key.list) {
            (crate::data::FieldType::Scalar(scalar), false)
            | (crate::data::FieldType::List(scalar), true) => scalar,
            _ => return None,
        };
        let values = match (&column.data, key.list) {
            (ColumnData::List { items, .. }, true) => items.as_ref(),
            (data, false) => data,
            _ => return None,
        };
        let part = match (scalar, values) {
            // A reference is keyed by its target's key, which needs one.
            (ScalarType::Ref(_), ColumnData::Ref { target, .. })
                if schema.collections.get(*target as usize)?.key.is_some() =>
            {
                DensePart::Ref {
                    target: *target,
                    len: u32::try_from(data.collections.get(*target as usize)?.len).ok()?,
                }
            }
            (ScalarType::Enum(idx), ColumnData::Enum(_)) => DensePart::Enum {
                variants: u32::try_from(schema.enums.get(idx as usize)?.variants.len()).ok()?,
            },
            (ScalarType::Bool, ColumnData::Bool(_)) => DensePart::Bool,
            _ => return None,
        };
        parts.push(part);
        columns.push((column, values, key.list));
    }
    let places = parts
        .iter()
        .try_fold(1u64, |n, part| n.checked_mul(part.size()))?;
    let limit = (collection.len as u64).saturating_mul(4).max(1 << 16);
    if places > limit || places >= u64::from(u32::MAX) {
        return None;
    }
    // Each record's places (several when a part is a list), in runs of
    // rows on all cores.
    let len = collection.len;
    let run_len = run_len.max(1);
    let runs: Vec<Vec<(u32, u32)>> = (0..len.div_ceil(run_len))
        .into_par_iter()
        .map(|run| {
            let rows = run * run_len..((run + 1) * run_len).min(len);
            let mut pairs = Vec::with_capacity(rows.len());
            // The record's places so far, and the next part's: two buffers
            // swapped, so a record allocates nothing.
            let mut record: Vec<u64> = Vec::new();
            let mut extended: Vec<u64> = Vec::new();
            let mut values: Vec<u64> = Vec::new();
            for row in rows {
                record.clear();
                record.push(0);
                for (part, (column, data, list)) in parts.iter().zip(&columns) {
                    dense_cell(*part, column, data, *list, row, &mut values);
                    extended.clear();
                    for place in &record {
                        extended.extend(values.iter().map(|value| place * part.size() + value));
                    }
                    std::mem::swap(&mut record, &mut extended);
                }
                // A list naming the same key twice still yields the row once.
                if record.len() > 1 {
                    record.sort_unstable();
                    record.dedup();
                }
                pairs.extend(record.iter().map(|place| (*place as u32, row as u32)));
            }
            pairs
        })
        .collect();
    let total: usize = runs.iter().map(Vec::len).sum();
    if total >= u32::MAX as usize {
        return None;
    }
    // A counting sort by place: rows stay ascending within each place.
    let mut starts = vec![0u32; places as usize + 1];
    for (place, _) in runs.iter().flatten() {
        starts[*place as usize + 1] += 1;
    }
    for place in 0..places as usize {
        starts[place + 1] += starts[place];
    }
    let mut next = starts.clone();
    let mut rows = vec![0u32; starts[places as usize] as usize];
    for (place, row) in runs.iter().flatten() {
        let slot = &mut next[*place as usize];
        rows[*slot as usize] = *row;
        *slot += 1;
    }
    Some(Dense {
        parts,
        starts,
        rows: rows.into(),
    })
}

/// The places in `part`'s domain of one cell of `column` (whose values, or
/// list items, are `data`): none for a null list, null's for a null value.
fn dense_cell(
    part: DensePart,
    column: &Column,
    data: &ColumnData,
    list: bool,
    row: usize,
    out: &mut Vec<u64>,
) {
    out.clear();
    if column.is_null(row) {
        if !list {
            out.push(part.null());
        }
        return;
    }
    let place = |idx: usize| -> Option<u64> {
        Some(match data {
            ColumnData::Ref { rows, .. } => match *rows.get(idx)? {
                NO_ROW => part.null(),
                target => u64::from(target),
            },
            ColumnData::Enum(values) => u64::from(*values.get(idx)?),
            ColumnData::Bool(values) => u64::from(values.get(idx)?),
            _ => return None,
        })
    };
    if list {
        if let ColumnData::List { offsets, .. } = &column.data
            && let (Some(start), Some(end)) = (offsets.get(row), offsets.get(row + 1))
        {
            out.extend((*start as usize..*end as usize).filter_map(place));
        }
    } else {
        out.extend(place(row));
    }
}

/// [`build_index`] with runs of `run` rows for a single key.
fn build_index_in_runs(
    spec: &IndexSpec,
    data: &Dataset,
    schema: &crate::data::DataSchema,
    run_len: usize,
) -> Index {
    let reader = KeyReader { data, schema };
    let collection = &data.collections[spec.coll as usize];
    let columns: Vec<&Column> = spec
        .keys
        .iter()
        .map(|key| &collection.columns[key.field as usize])
        .collect();
    if let ([key], [column]) = (spec.keys.as_slice(), columns.as_slice()) {
        // Runs of rows are indexed on all cores, then joined in row order:
        // every key's rows stay ascending, as one pass would leave them.
        let map = index_over_runs(collection.len, run_len, |rows| {
            let mut map: FxHashMap<KeyAtom, Vec<u32>> = FxHashMap::default();
            let mut atoms = Vec::new();
            for row in rows {
                cell_atoms(&reader, column, row, key.list, &mut atoms);
                for atom in &atoms {
                    let rows = map.entry(*atom).or_default();
                    // A list naming the same key twice still yields the row once.
                    if rows.last() != Some(&(row as u32)) {
                        rows.push(row as u32);
                    }
                }
            }
            map
        });
        return Index::Single(map.into_iter().map(|(k, v)| (k, Arc::from(v))).collect());
    }
    // Composite keys: runs of rows on all cores too, joined the same way.
    let map = index_over_runs(collection.len, run_len, |rows| {
        index_composite(spec, &reader, &columns, rows)
    });
    Index::Multi(map.into_iter().map(|(k, v)| (k, Arc::from(v))).collect())
}

/// `index_run` over runs of `run_len` of `len` rows on all cores, the
/// runs' tables joined in row order: every key's rows stay ascending, as
/// one pass over all rows would leave them.
fn index_over_runs<K: Eq + std::hash::Hash + Send>(
    len: usize,
    run_len: usize,
    index_run: impl Fn(std::ops::Range<usize>) -> FxHashMap<K, Vec<u32>> + Sync,
) -> FxHashMap<K, Vec<u32>> {
    let run_len = run_len.max(1);
    let runs: Vec<FxHashMap<K, Vec<u32>>> = (0..len.div_ceil(run_len))
        .into_par_iter()
        .map(|run| {
            let end = run.saturating_add(1).saturating_mul(run_len).min(len);
            index_run(run * run_len..end)
        })
        .collect();
    let mut runs = runs.into_iter();
    let mut map = runs.next().unwrap_or_default();
    for run in runs {
        for (key, rows) in run {
            map.entry(key).or_default().extend(rows);
        }
    }
    map
}

/// The composite-key index of `rows` of `spec`'s collection, whose key
/// columns are `columns`: each combination of key atoms with its rows, in
/// ascending order.
fn index_composite(
    spec: &IndexSpec,
    reader: &KeyReader<'_>,
    columns: &[&Column],
    rows: std::ops::Range<usize>,
) -> FxHashMap<Vec<KeyAtom>, Vec<u32>> {
    let mut map: FxHashMap<Vec<KeyAtom>, Vec<u32>> = FxHashMap::default();
    let mut per_key: Vec<Vec<KeyAtom>> = vec![Vec::new(); spec.keys.len()];
    let mut scratch: Vec<KeyAtom> = Vec::with_capacity(spec.keys.len());
    for row in rows {
        for ((key, column), atoms) in spec.keys.iter().zip(columns).zip(per_key.iter_mut()) {
            cell_atoms(reader, column, row, key.list, atoms);
        }
        // The common case, one atom per part: no allocation unless the key
        // is new.
        if per_key.iter().all(|atoms| atoms.len() == 1) {
            scratch.clear();
            scratch.extend(per_key.iter().map(|atoms| atoms[0]));
            match map.get_mut(scratch.as_slice()) {
                Some(rows) => {
                    if rows.last() != Some(&(row as u32)) {
                        rows.push(row as u32);
                    }
                }
                None => {
                    map.insert(scratch.clone(), vec![row as u32]);
                }
            }
            continue;
        }
        // At most one key part is a list, so the combinations are the
        // elements of that list, each with the scalar parts.
        let mut combos: Vec<Vec<KeyAtom>> = vec![Vec::new()];
        for atoms in &per_key {
            combos = combos
                .into_iter()
                .flat_map(|prefix| {
                    atoms
                        .iter()
                        .map(move |atom| [prefix.as_slice(), &[*atom]].concat())
                })
                .collect();
        }
        for combo in combos {
            let rows = map.entry(combo).or_default();
            if rows.last() != Some(&(row as u32)) {
                rows.push(row as u32);
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::IndexKey;
    use crate::data::fixture;

    /// An index's entries as text, keys sorted: single and composite alike.
    fn sorted(index: &Index) -> Vec<(String, Vec<u32>)> {
        let mut entries: Vec<(String, Vec<u32>)> = match index {
            Index::Single(map) => map
                .iter()
                .map(|(k, v)| (format!("{k:?}"), v.to_vec()))
                .collect(),
            Index::Multi(map) => map
                .iter()
                .map(|(k, v)| (format!("{k:?}"), v.to_vec()))
                .collect(),
            Index::Dense(dense) => dense
                .starts
                .windows(2)
                .enumerate()
                .map(|(place, run)| {
                    let rows = dense.rows[run[0] as usize..run[1] as usize].to_vec();
                    (format!("{place}"), rows)
                })
                .collect(),
        };
        entries.sort();
        entries
    }

    /// Every probe of a [`Dense`] index finds what the hash index of the
    /// same spec finds: references (with nulls, dangling keys and lists
    /// naming a key twice), enums and booleans, alone and combined, probed
    /// with records of either collection, key strings, nulls and values of
    /// other types; and built over runs of a few rows, the same groups.
    #[test]
    fn a_dense_index_answers_as_the_hash_index() {
        let policy = r#"
schema s {
  enum kind { small, large, huge }
  collection people key id {
    id: string
    team: ref teams?
    friends: list<ref people>
    kind: kind?
    active: bool
    fans: backref people.friends
    pals: list<ref people>?
    pal_of: backref people.pals
  }
  collection teams key id {
    id: string
    members: backref people.team
  }
}
policy p {
  rule r "r" {
    for t in teams
    require count(t.members where kind == small and active) >= 0
  }
  rule f "f" {
    for x in people
    require count(x.fans where kind == large) >= 0 and count(x.fans) >= 0
    require count(x.pal_of) >= 0
  }
  rule g "g" {
    for t in teams
    require count(t.members where active == true and kind == huge) >= 0 and count(t.members) >= 0
  }
}
"#;
        let plan = crate::compile_policies(&[crate::PolicyFile::new("p.bangfu", policy)], &[])
            .unwrap_or_else(|e| panic!("policy: {e:?}"));
        let mut people = Vec::new();
        for n in 0..60 {
            let team = match n % 7 {
                0 => "null".to_string(),
                1 => "\"t9\"".to_string(),
                _ => format!("\"t{}\"", n % 3),
            };
            let kind = ["\"small\"", "\"large\"", "null", "\"huge\""][n % 4];
            let friend = format!("p{}", (n * 7) % 60);
            people.push(format!(
                r#"{{"id": "p{n}", "team": {team}, "friends": ["{friend}", "{friend}", "p{}", "ghost"], "kind": {kind}, "active": {}, "pals": {}}}"#,
                (n + 1) % 60,
                n % 3 == 0,
                if n % 2 == 0 { "null" } else { r#"["p1", "p2"]"# }
            ));
        }
        let doc = format!(
            r#"{{"teams": [{{"id": "t0"}}, {{"id": "t1"}}, {{"id": "t2"}}], "people": [{}]}}"#,
            people.join(",")
        );
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("d.json");
        std::fs::write(&path, doc).unwrap_or_else(|e| panic!("{e}"));
        let data = crate::load_data(&path, &plan).unwrap_or_else(|e| panic!("data: {e:?}"));
        let evaluator = Evaluator::new(&plan, &data);
        let schema = &plan.schema.data;
        let (people_coll, teams_coll) = (0u32, 1u32);
        // Candidate probes of every kind.
        let mut probes = vec![
            Value::Null,
            Value::Text("t1".into()),
            Value::Text("p5".into()),
            Value::Text("ghost".into()),
            Value::Text("nobody".into()),
            Value::Int(1),
            Value::Number(0.5),
            Value::Bool(true),
            Value::Bool(false),
            Value::Date(3),
        ];
        probes.extend((0..4).map(|variant| Value::Enum(0, variant)));
        probes.extend((0..3).map(|row| Value::Row(teams_coll, row)));
        probes.extend((0..60).step_by(3).map(|row| Value::Row(people_coll, row)));
        let mut dense_specs = 0;
        let mut found = 0;
        for spec in &plan.indexes {
            let hash = build_index_in_runs(spec, &data, schema, usize::MAX);
            let Some(dense) = dense_index(spec, &data, schema, usize::MAX) else {
                continue;
            };
            dense_specs += 1;
            for run_len in [1, 7] {
                let runs = dense_index(spec, &data, schema, run_len)
                    .unwrap_or_else(|| panic!("{spec:?}: dense over runs"));
                assert_eq!((&runs.starts, &runs.rows), (&dense.starts, &dense.rows));
            }
            let dense = Index::Dense(dense);
            let mut combos: Vec<Vec<&Value>> = vec![Vec::new()];
            for _ in &spec.keys {
                combos = combos
                    .into_iter()
                    .flat_map(|prefix| {
                        probes.iter().map(move |probe| {
                            let mut combo = prefix.clone();
                            combo.push(probe);
                            combo
                        })
                    })
                    .collect();
            }
            for combo in combos {
                let lookup = |index: &Index| {
                    let mut probe = Probe::new(index, combo.len());
                    for (part, value) in combo.iter().enumerate() {
                        if !evaluator.probe_part(index, &mut probe, part, value) {
                            return RowSet::Some(Arc::from(Vec::new()));
                        }
                    }
                    probe.rows(index)
                };
                let expected = lookup(&hash);
                found += usize::from(!expected.is_empty());
                assert_eq!(lookup(&dense), expected, "{spec:?} probed with {combo:?}");
            }
        }
        assert_eq!(dense_specs, plan.indexes.len(), "{:?}", plan.indexes);
        assert!(found > 20, "the probes find rows");
    }

    /// An index built over runs of a few rows, joined, is the index built in
    /// one pass: the same keys, each with its rows in ascending order, and a
    /// row named twice by one list once.
    #[test]
    fn an_index_over_runs_equals_one_over_all_rows() {
        let schema = fixture::schema();
        let mut people = Vec::new();
        for n in 0..200 {
            let team = if n % 5 == 0 {
                "null".to_string()
            } else {
                format!("\"t{}\"", n % 2 + 1)
            };
            let friend = format!("p{}", (n * 7) % 200);
            people.push(format!(
                r#"{{"id": "p{n}", "name": "n", "age": {}, "score": 1, "active": true, "born": "2000-01-01", "role": "member", "team": {team}, "friends": ["{friend}", "{friend}", "p{}"]}}"#,
                n % 13,
                (n + 1) % 200
            ));
        }
        let doc = format!(
            r#"{{"teams": [{{"id": "t1", "tags": []}}, {{"id": "t2", "tags": []}}], "people": [{}]}}"#,
            people.join(",")
        );
        let data = fixture::expect_dataset(crate::data::json::load(
            SourceText::from_string("d.json", doc),
            &schema,
        ));
        let field = |name: &str| {
            schema.collections[fixture::PEOPLE]
                .field_index(name)
                .unwrap_or(0) as u32
        };
        let key = |name: &str, list: bool| IndexKey {
            field: field(name),
            list,
        };
        let cases = [
            ("team", vec![key("team", false)]),
            ("friends", vec![key("friends", true)]),
            ("age", vec![key("age", false)]),
            ("team, age", vec![key("team", false), key("age", false)]),
            (
                "friends, age",
                vec![key("friends", true), key("age", false)],
            ),
        ];
        for (name, keys) in cases {
            let spec = IndexSpec {
                coll: fixture::PEOPLE as u32,
                keys,
            };
            let whole = sorted(&build_index_in_runs(&spec, &data, &schema, usize::MAX));
            assert!(whole.len() > 1, "{name}: the index has keys");
            for run_len in [1, 3, 64] {
                let runs = sorted(&build_index_in_runs(&spec, &data, &schema, run_len));
                assert_eq!(runs, whole, "{name}, runs of {run_len}");
            }
        }
    }
}
