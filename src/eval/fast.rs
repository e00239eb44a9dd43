//! Plan expressions compiled to closures, once per rule, before its records
//! are evaluated.
//!
//! The tree-walking [`Evaluator::eval`] dispatches on every node of every
//! record and looks each column up through the dataset (collection, then
//! field, then the column's kind). Here each node is matched once: a field of
//! the rule's record becomes a closure holding that column's slice, typed;
//! `and`/`or`/`not` and comparisons are decided without building values; a
//! map param indexed by an integer becomes a hash lookup. Forms not handled
//! here fall back to [`Evaluator::eval`] for that sub-tree, so every
//! expression is compiled and the results are those of the interpreter,
//! runtime errors included (the tests of `eval` run both).
//!
//! **Invariant:** a compiled expression gives exactly what
//! [`Evaluator::eval`] (for values) or [`Evaluator::logic`] (for
//! conditions) gives on the same environment.

use rustc_hash::FxHashMap;

use super::{EvalResult, Evaluator, cell_missing};
use crate::ast::BinaryOp;
use crate::compile::PExpr;
use crate::data::{ColumnData, NO_ROW};
use crate::value::Value;

/// A compiled condition: `Some(b)` for a boolean, `None` for null or a
/// non-boolean (three-valued, as [`Evaluator::logic`]).
pub(super) type Pred<'e> = Box<dyn Fn(&mut [Value]) -> EvalResult<Option<bool>> + Send + Sync + 'e>;
/// A compiled value.
pub(super) type Val<'e> = Box<dyn Fn(&mut [Value]) -> EvalResult<Value> + Send + Sync + 'e>;
/// The row of one collection an expression names, if it names one: the
/// rule's binding itself is read in place (the common case, `x.field`), a
/// chain of references through a closure.
enum RowOf<'e> {
    Slot(usize, u32),
    Chain(RowChain<'e>),
}

/// A row reached through references.
type RowChain<'e> = Box<dyn Fn(&[Value]) -> Option<u32> + Send + Sync + 'e>;

impl RowOf<'_> {
    #[inline(always)]
    fn get(&self, env: &[Value]) -> Option<u32> {
        match self {
            RowOf::Slot(slot, coll) => match env[*slot] {
                Value::Row(c, row) if c == *coll => Some(row),
                _ => None,
            },
            RowOf::Chain(row_of) => row_of(env),
        }
    }
}
/// Whether an expression is null.
type IsNull<'e> = Box<dyn Fn(&mut [Value]) -> EvalResult<bool> + Send + Sync + 'e>;

/// An operand of a comparison: borrowed when it is fixed for the run (no
/// reference count bouncing between cores), computed otherwise.
enum Operand<'e> {
    Fixed(&'e Value),
    Computed(Val<'e>),
}

/// A rule's filter, bindings and conditions, compiled.
pub(super) struct CompiledRule<'e> {
    pub(super) filter: Option<Pred<'e>>,
    pub(super) lets: Vec<(usize, Val<'e>)>,
    pub(super) requires: Vec<Pred<'e>>,
    /// The message as text.
    pub(super) message: Option<Text<'e>>,
}

/// A compiled text (a message), as [`Evaluator::text_of`] gives it.
pub(super) type Text<'e> = Box<dyn Fn(&mut [Value]) -> EvalResult<String> + Send + Sync + 'e>;

impl<'a> Evaluator<'a> {
    /// Compiles the filter, lets and requires of a rule; with `interpret`,
    /// each is left whole to the interpreter (the reference the compiled
    /// form is tested against).
    pub(super) fn compile_rule<'e>(
        &'e self,
        rule: &'e crate::compile::RulePlan,
        interpret: bool,
    ) -> CompiledRule<'e> {
        if interpret {
            let logic =
                |expr: &'e PExpr| -> Pred<'e> { Box::new(move |env| self.logic(expr, env)) };
            return CompiledRule {
                filter: rule.filter.as_ref().map(logic),
                lets: rule
                    .lets
                    .iter()
                    .map(|(slot, expr)| (*slot as usize, self.by_interpreter(expr)))
                    .collect(),
                requires: rule
                    .requires
                    .iter()
                    .map(|(condition, _)| logic(condition))
                    .collect(),
                message: rule
                    .message
                    .as_ref()
                    .map(|message| -> Text<'e> { Box::new(move |env| self.text_of(message, env)) }),
            };
        }
        CompiledRule {
            filter: rule.filter.as_ref().map(|filter| self.compile_pred(filter)),
            lets: rule
                .lets
                .iter()
                .map(|(slot, expr)| (*slot as usize, self.compile_value(expr)))
                .collect(),
            requires: rule
                .requires
                .iter()
                .map(|(condition, _)| self.compile_pred(condition))
                .collect(),
            message: rule
                .message
                .as_ref()
                .map(|message| self.compile_text(message)),
        }
    }

    /// A text, as [`Evaluator::text_of`] gives it: a template's parts
    /// written into one string.
    fn compile_text<'e>(&'e self, expr: &'e PExpr) -> Text<'e> {
        let PExpr::Template(parts) = expr else {
            let value = self.compile_value(expr);
            return Box::new(move |env| Ok(value(env)?.to_display(self)));
        };
        let parts: Vec<Operand<'e>> = parts
            .iter()
            .map(|part| self.compile_operand(part))
            .collect();
        Box::new(move |env| {
            let mut text = String::with_capacity(super::TEMPLATE_CAPACITY);
            for part in &parts {
                match part {
                    Operand::Fixed(value) => value.display(self, &mut text),
                    Operand::Computed(compute) => compute(env)?.display(self, &mut text),
                }
            }
            Ok(text)
        })
    }

    /// A condition, as [`Evaluator::logic`] decides it.
    pub(super) fn compile_pred<'e>(&'e self, expr: &'e PExpr) -> Pred<'e> {
        match expr {
            // A chain `a and b and c` is one loop over its operands, in
            // order, stopping at the first that decides it; the same operands
            // are evaluated as by the nested form.
            PExpr::And(..) => {
                let operands = self.chain(expr, true);
                Box::new(move |env| {
                    let mut all_true = true;
                    for operand in &operands {
                        match operand(env)? {
                            Some(false) => return Ok(Some(false)),
                            Some(true) => {}
                            None => all_true = false,
                        }
                    }
                    Ok(all_true.then_some(true))
                })
            }
            PExpr::Or(..) => {
                let operands = self.chain(expr, false);
                Box::new(move |env| {
                    let mut all_false = true;
                    for operand in &operands {
                        match operand(env)? {
                            Some(true) => return Ok(Some(true)),
                            Some(false) => {}
                            None => all_false = false,
                        }
                    }
                    Ok(all_false.then_some(false))
                })
            }
            PExpr::Not(operand) => {
                let operand = self.compile_pred(operand);
                Box::new(move |env| Ok(operand(env)?.map(|value| !value)))
            }
            PExpr::Local(slot) => {
                let slot = *slot as usize;
                Box::new(move |env| {
                    Ok(match &env[slot] {
                        Value::Bool(value) => Some(*value),
                        _ => None,
                    })
                })
            }
            PExpr::Binary {
                op: op @ (BinaryOp::Eq | BinaryOp::Ne),
                left,
                right,
                ..
            } if matches!(**right, PExpr::Const(Value::Null)) => {
                let is_null = self.compile_is_null(left);
                let want = *op == BinaryOp::Eq;
                Box::new(move |env| Ok(Some(is_null(env)? == want)))
            }
            PExpr::Binary {
                op, left, right, ..
            } if op.is_comparison() => self.compile_comparison(*op, left, right),
            PExpr::Field { base, coll, field } => {
                let column = self.column(*coll, *field);
                match (&column.data, self.compile_row(base, *coll)) {
                    (ColumnData::Bool(bits), Some(row_of)) => Box::new(move |env| {
                        Ok(match row_of.get(env) {
                            Some(row) if !column.is_null(row as usize) => bits.get(row as usize),
                            _ => None,
                        })
                    }),
                    _ => self.pred_of_value(expr),
                }
            }
            _ => self.pred_of_value(expr),
        }
    }

    /// The operands of a chain of `and` (`conjunction`) or `or`, compiled,
    /// left to right.
    fn chain<'e>(&'e self, expr: &'e PExpr, conjunction: bool) -> Vec<Pred<'e>> {
        let mut operands = Vec::new();
        let mut pending = vec![expr];
        while let Some(next) = pending.pop() {
            match (next, conjunction) {
                (PExpr::And(left, right), true) | (PExpr::Or(left, right), false) => {
                    pending.push(right);
                    pending.push(left);
                }
                (other, _) => operands.push(self.compile_pred(other)),
            }
        }
        operands
    }

    /// A condition from the compiled value of `expr`: true and false are
    /// themselves, anything else is null.
    fn pred_of_value<'e>(&'e self, expr: &'e PExpr) -> Pred<'e> {
        let value = self.compile_value(expr);
        Box::new(move |env| {
            Ok(match value(env)? {
                Value::Bool(value) => Some(value),
                _ => None,
            })
        })
    }

    fn compile_comparison<'e>(
        &'e self,
        op: BinaryOp,
        left: &'e PExpr,
        right: &'e PExpr,
    ) -> Pred<'e> {
        let (left, right) = (self.compile_operand(left), self.compile_operand(right));
        Box::new(move |env| {
            let (left_value, right_value);
            let left = match &left {
                Operand::Fixed(value) => *value,
                Operand::Computed(compute) => {
                    left_value = compute(env)?;
                    &left_value
                }
            };
            let right = match &right {
                Operand::Fixed(value) => *value,
                Operand::Computed(compute) => {
                    right_value = compute(env)?;
                    &right_value
                }
            };
            Ok(self.decide(op, left, right))
        })
    }

    fn compile_operand<'e>(&'e self, expr: &'e PExpr) -> Operand<'e> {
        match expr {
            PExpr::Const(value) => Operand::Fixed(value),
            PExpr::Invariant(idx) => Operand::Fixed(self.invariant_ref(*idx as usize)),
            other => Operand::Computed(self.compile_value(other)),
        }
    }

    /// A value, as [`Evaluator::eval`] computes it.
    pub(super) fn compile_value<'e>(&'e self, expr: &'e PExpr) -> Val<'e> {
        match expr {
            PExpr::Const(value) => Box::new(move |_| Ok(value.clone())),
            PExpr::Local(slot) => {
                let slot = *slot as usize;
                Box::new(move |env| Ok(env[slot].clone()))
            }
            PExpr::Field { base, coll, field } => match self.compile_row(base, *coll) {
                Some(row_of) => self.compile_field(*coll, *field, row_of),
                None => self.by_interpreter(expr),
            },
            PExpr::And(..)
            | PExpr::Or(..)
            | PExpr::Not(..)
            | PExpr::Binary {
                op:
                    BinaryOp::Eq
                    | BinaryOp::Ne
                    | BinaryOp::Lt
                    | BinaryOp::Le
                    | BinaryOp::Gt
                    | BinaryOp::Ge,
                ..
            } => {
                let condition = self.compile_pred(expr);
                Box::new(move |env| {
                    Ok(match condition(env)? {
                        Some(value) => Value::Bool(value),
                        None => Value::Null,
                    })
                })
            }
            PExpr::If(condition, then, otherwise) => {
                let condition = self.compile_pred(condition);
                let (then, otherwise) = (self.compile_value(then), self.compile_value(otherwise));
                Box::new(move |env| {
                    if condition(env)? == Some(true) {
                        then(env)
                    } else {
                        otherwise(env)
                    }
                })
            }
            PExpr::Index(base, index) => self
                .compile_int_lookup(base, index)
                .unwrap_or_else(|| self.by_interpreter(expr)),
            PExpr::Template(_) => {
                let text = self.compile_text(expr);
                Box::new(move |env| Ok(Value::Text(text(env)?.into())))
            }
            // Items in order, each kept if its condition holds.
            PExpr::List(elems) => {
                let elems: Vec<(Val<'e>, Option<Pred<'e>>)> = elems
                    .iter()
                    .map(|(value, condition)| {
                        (
                            self.compile_value(value),
                            condition
                                .as_ref()
                                .map(|condition| self.compile_pred(condition)),
                        )
                    })
                    .collect();
                Box::new(move |env| {
                    let mut items = Vec::with_capacity(elems.len());
                    for (value, condition) in &elems {
                        if let Some(condition) = condition
                            && condition(env)? != Some(true)
                        {
                            continue;
                        }
                        items.push(value(env)?);
                    }
                    Ok(Value::List(items.into()))
                })
            }
            // Arguments in order, then the builtin, as the interpreter.
            PExpr::Call {
                builtin,
                args,
                span,
            } => {
                let args: Vec<Val<'e>> = args.iter().map(|arg| self.compile_value(arg)).collect();
                let (builtin, span) = (*builtin, *span);
                Box::new(move |env| {
                    let mut values = Vec::with_capacity(args.len());
                    for arg in &args {
                        values.push(arg(env)?);
                    }
                    self.call(builtin, values, span)
                })
            }
            _ => self.by_interpreter(expr),
        }
    }

    /// `expr` left to the interpreter.
    fn by_interpreter<'e>(&'e self, expr: &'e PExpr) -> Val<'e> {
        Box::new(move |env| self.eval(expr, env))
    }

    /// Field `field` of the record of `coll` that `row_of` names, as
    /// [`Evaluator::field_value`] reads it; the column's kind is matched
    /// here, once.
    fn compile_field<'e>(&'e self, coll: u32, field: u32, row_of: RowOf<'e>) -> Val<'e> {
        let column = self.column(coll, field);
        macro_rules! typed {
            ($values:expr, $make:expr) => {{
                let values = $values;
                let make = $make;
                Box::new(move |env: &mut [Value]| {
                    Ok(match row_of.get(env) {
                        Some(row) if !column.is_null(row as usize) => {
                            values.get(row as usize).map_or(Value::Null, make)
                        }
                        _ => Value::Null,
                    })
                })
            }};
        }
        match &column.data {
            ColumnData::Int(values) => typed!(values, |v: &i64| Value::Int(*v)),
            ColumnData::Number(values) => typed!(values, |v: &f64| Value::Number(*v)),
            ColumnData::Date(values) => typed!(values, |v: &i32| Value::Date(*v)),
            ColumnData::Str(values) => typed!(values, |v: &crate::data::Sym| Value::Sym(*v)),
            ColumnData::Enum(values) => {
                let enum_idx = self.enum_of(coll, field);
                typed!(values, move |v: &u16| Value::Enum(enum_idx, *v))
            }
            ColumnData::Ref { target, rows, .. } => {
                let target = *target;
                typed!(rows, move |v: &u32| match *v {
                    NO_ROW => Value::Null,
                    row => Value::Row(target, row),
                })
            }
            ColumnData::Bool(bits) => Box::new(move |env| {
                Ok(match row_of.get(env) {
                    Some(row) if !column.is_null(row as usize) => {
                        bits.get(row as usize).map_or(Value::Null, Value::Bool)
                    }
                    _ => Value::Null,
                })
            }),
            ColumnData::List { .. } | ColumnData::Skipped => Box::new(move |env| {
                Ok(match row_of.get(env) {
                    Some(row) => self.field_value(coll, field, row),
                    None => Value::Null,
                })
            }),
        }
    }

    /// The row of `coll` that `expr` names: a binding, or a chain of
    /// references from one (`h.village`, `h.village.county`). `None` when
    /// `expr` is of another form (the interpreter then reads it).
    fn compile_row<'e>(&'e self, expr: &'e PExpr, coll: u32) -> Option<RowOf<'e>> {
        match expr {
            PExpr::Local(slot) => Some(RowOf::Slot(*slot as usize, coll)),
            PExpr::Field {
                base,
                coll: base_coll,
                field,
            } => {
                let (column, rows) = self.reference(*base_coll, *field, coll)?;
                let base_row = self.compile_row(base, *base_coll)?;
                Some(RowOf::Chain(Box::new(move |env| {
                    let row = base_row.get(env)? as usize;
                    if column.is_null(row) {
                        return None;
                    }
                    rows.get(row).copied().filter(|target| *target != NO_ROW)
                })))
            }
            _ => None,
        }
    }

    /// Whether `expr` is null, as [`Evaluator::is_null`] decides it: for a
    /// field, from the column's null flags without building the value.
    fn compile_is_null<'e>(&'e self, expr: &'e PExpr) -> IsNull<'e> {
        if let PExpr::Field { base, coll, field } = expr
            && let Some(row_of) = self.compile_row(base, *coll)
        {
            let column = self.column(*coll, *field);
            return Box::new(move |env| {
                Ok(match row_of.get(env) {
                    None => true,
                    Some(row) => {
                        column.is_null(row as usize) || cell_missing(&column.data, row as usize)
                    }
                })
            });
        }
        let value = self.compile_value(expr);
        Box::new(move |env| Ok(value(env)?.is_null()))
    }

    /// `map[i]` where `map` is fixed for the run and every key is an
    /// integer: a hash lookup instead of a scan comparing each key. `None`
    /// for any other index expression.
    fn compile_int_lookup<'e>(&'e self, base: &'e PExpr, index: &'e PExpr) -> Option<Val<'e>> {
        let map = match base {
            PExpr::Const(value) => value,
            PExpr::Invariant(idx) => self.invariant_ref(*idx as usize),
            _ => return None,
        };
        let Value::Map(entries) = map else {
            return None;
        };
        // Keys beyond 2^53 compare equal to floats they differ from; the
        // scan decides those.
        const EXACT: i64 = 1 << 53;
        let mut table: FxHashMap<i64, &'e Value> = FxHashMap::default();
        for (key, value) in entries.iter() {
            match key {
                // The first entry of a key wins, as in the scan.
                Value::Int(key) if key.abs() < EXACT => {
                    table.entry(*key).or_insert(value);
                }
                _ => return None,
            }
        }
        let index = self.compile_value(index);
        Some(Box::new(move |env| {
            let key = match index(env)? {
                Value::Int(key) => Some(key),
                Value::Number(key) if key.fract() == 0.0 && key.abs() < EXACT as f64 => {
                    Some(key as i64)
                }
                _ => None,
            };
            Ok(key
                .and_then(|key| table.get(&key))
                .map_or(Value::Null, |value| (*value).clone()))
        }))
    }
}
