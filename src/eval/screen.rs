//! Column-wise screening of a rule's records, a block of rows at a time.
//!
//! Most records of a large collection pass their rule: the compiled
//! closures of [`super::fast`] then run for every node of every record only
//! to find nothing. A screen evaluates the same expressions a block of rows
//! at a time, one node over the whole block before the next, reading
//! columns in order, and marks each row either *passed* (the filter leaves
//! it out, or every `let` is known and every `require` holds) or *to
//! evaluate*. Only the rows to evaluate go through [`Evaluator::entity`],
//! which decides their outcome, message and errors as before.
//!
//! A screen handles the forms that cannot fail at run time and whose values
//! hold no shared memory: constants, params, the rule's binding, fields of
//! it and of records reached through references, `and`/`or`/`not`, null
//! tests, comparisons, and a map param indexed by an integer. Anything else
//! is *unknown* for the rows it touches, and an unknown row is always
//! evaluated. Values are compared with [`Evaluator::decide`], the function
//! the interpreter uses.
//!
//! **Invariant:** a row the screen passes is one for which
//! [`Evaluator::entity`] gives `Ok(None)`; the tests of `eval` compare the
//! screened evaluation with the interpreter's, and a unit test checks every
//! passed row of every bundled rule.

use rustc_hash::FxHashMap;

use super::{Evaluator, cell_missing};
use crate::ast::BinaryOp;
use crate::compile::{PExpr, RulePlan};
use crate::data::{ColumnData, NO_ROW, Sym};
use crate::value::Value;

/// Rows screened together: enough to pay for each node's dispatch, few
/// enough for the blocks to stay in cache.
pub(super) const BLOCK: u32 = 1024;

/// The state of a condition for one row.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum Truth {
    False,
    True,
    /// Null, or a value that is not a boolean.
    Null,
    /// Not known here: the row is evaluated.
    Unknown,
}

impl Truth {
    fn of(value: Option<bool>) -> Truth {
        match value {
            Some(true) => Truth::True,
            Some(false) => Truth::False,
            None => Truth::Null,
        }
    }

    /// As a condition reads a value: a boolean is itself, anything else null.
    fn of_value(value: &Value) -> Truth {
        match value {
            Value::Bool(value) => Truth::of(Some(*value)),
            _ => Truth::Null,
        }
    }

    /// As a value reads a condition (`Value::Bool` or null); `None` when
    /// unknown.
    fn value(self) -> Option<Value> {
        match self {
            Truth::False => Some(Value::Bool(false)),
            Truth::True => Some(Value::Bool(true)),
            Truth::Null => Some(Value::Null),
            Truth::Unknown => None,
        }
    }
}

/// An expression's value for every row of a block.
enum Block<'e> {
    /// The same value for every row (constants and params).
    Fixed(&'e Value),
    /// Conditions.
    Truths(Vec<Truth>),
    /// Values holding no shared memory; `None` when unknown.
    Values(Vec<Option<Plain>>),
    /// Rows of collection `.0`; [`NO_ROW`] when there is none.
    Rows(u32, Vec<u32>),
    /// Unknown for every row.
    Unknown,
}

impl Block<'_> {
    /// Row `i` as a value, if known.
    fn value(&self, i: usize) -> Option<Value> {
        match self {
            Block::Fixed(value) => Some((*value).clone()),
            Block::Truths(truths) => truths[i].value(),
            Block::Values(values) => values[i].map(Plain::value),
            Block::Rows(coll, rows) => Some(match rows[i] {
                NO_ROW => Value::Null,
                row => Value::Row(*coll, row),
            }),
            Block::Unknown => None,
        }
    }

    /// `f` of row `i`'s value, if known; constants are lent, not cloned
    /// (a shared list or map would have its count bumped by every thread).
    fn with_value<R>(&self, i: usize, f: impl FnOnce(&Value) -> R) -> Option<R> {
        match self {
            Block::Fixed(value) => Some(f(value)),
            Block::Values(values) => values[i].map(|plain| f(&plain.value())),
            other => other.value(i).map(|value| f(&value)),
        }
    }

    /// Row `i` as a condition.
    fn truth(&self, i: usize) -> Truth {
        match self {
            Block::Truths(truths) => truths[i],
            Block::Fixed(value) => Truth::of_value(value),
            Block::Values(values) => match values[i] {
                Some(Plain::Bool(value)) => Truth::of(Some(value)),
                Some(_) => Truth::Null,
                None => Truth::Unknown,
            },
            Block::Rows(..) => Truth::Null,
            Block::Unknown => Truth::Unknown,
        }
    }
}

/// A value that holds no shared memory: copied into a block and out of it
/// without touching a reference count, and freed with the block at once.
#[derive(Clone, Copy, Debug)]
enum Plain {
    Null,
    Bool(bool),
    Int(i64),
    Number(f64),
    Sym(Sym),
    Date(i32),
    Enum(u32, u16),
    Row(u32, u32),
}

impl Plain {
    /// `value`, if it is one of the plain kinds.
    fn of(value: &Value) -> Option<Plain> {
        Some(match value {
            Value::Null => Plain::Null,
            Value::Bool(value) => Plain::Bool(*value),
            Value::Int(value) => Plain::Int(*value),
            Value::Number(value) => Plain::Number(*value),
            Value::Sym(value) => Plain::Sym(*value),
            Value::Date(value) => Plain::Date(*value),
            Value::Enum(idx, variant) => Plain::Enum(*idx, *variant),
            Value::Row(coll, row) => Plain::Row(*coll, *row),
            Value::Text(_) | Value::Rows(..) | Value::List(_) | Value::Map(_) => return None,
        })
    }

    /// As the interpreter holds it.
    fn value(self) -> Value {
        match self {
            Plain::Null => Value::Null,
            Plain::Bool(value) => Value::Bool(value),
            Plain::Int(value) => Value::Int(value),
            Plain::Number(value) => Value::Number(value),
            Plain::Sym(value) => Value::Sym(value),
            Plain::Date(value) => Value::Date(value),
            Plain::Enum(idx, variant) => Value::Enum(idx, variant),
            Plain::Row(coll, row) => Value::Row(coll, row),
        }
    }
}

/// `op` over two plain values when both are numbers, both dates, or one is
/// null, exactly as [`Evaluator::decide`] decides it (`Value::equals` and
/// `Value::compare`); `None` for any other pair, left to `decide`.
fn decide_plain(op: BinaryOp, left: Plain, right: Plain) -> Option<Option<bool>> {
    use std::cmp::Ordering;
    let ordering = match (left, right) {
        // Null equals only null, and orders with nothing.
        (Plain::Null, _) | (_, Plain::Null) => {
            let both = matches!((left, right), (Plain::Null, Plain::Null));
            return Some(match op {
                BinaryOp::Eq => Some(both),
                BinaryOp::Ne => Some(!both),
                _ => None,
            });
        }
        (Plain::Int(a), Plain::Int(b)) => Some(a.cmp(&b)),
        (Plain::Int(a), Plain::Number(b)) => (a as f64).partial_cmp(&b),
        (Plain::Number(a), Plain::Int(b)) => a.partial_cmp(&(b as f64)),
        (Plain::Number(a), Plain::Number(b)) => a.partial_cmp(&b),
        (Plain::Date(a), Plain::Date(b)) => Some(a.cmp(&b)),
        _ => return None,
    };
    Some(match op {
        // Numbers unordered (NaN) are unequal, as `equals` finds them.
        BinaryOp::Eq => Some(ordering == Some(Ordering::Equal)),
        BinaryOp::Ne => Some(ordering != Some(Ordering::Equal)),
        BinaryOp::Lt => ordering.map(|o| o == Ordering::Less),
        BinaryOp::Le => ordering.map(|o| o != Ordering::Greater),
        BinaryOp::Gt => ordering.map(|o| o == Ordering::Greater),
        BinaryOp::Ge => ordering.map(|o| o != Ordering::Less),
        _ => return None,
    })
}

/// Keys beyond 2^53 compare equal to floats they differ from: maps holding
/// them are not screened.
const EXACT: i64 = 1 << 53;

/// A rule's screen: which of its expressions can be screened, and the
/// lookup tables of its map params, built once.
pub(super) struct Screen<'e> {
    rule: &'e RulePlan,
    coll: u32,
    /// Keyed by the address of the `Index` expression.
    tables: FxHashMap<usize, FxHashMap<i64, &'e Value>>,
    /// Every let and require can be screened, not only the filter.
    whole: bool,
}

impl<'a> Evaluator<'a> {
    /// The screen of a rule over collection `coll`, or `None` when neither
    /// its filter nor its conditions can be screened (every row is then
    /// evaluated, as without a screen).
    pub(super) fn screen<'e>(&'e self, rule: &'e RulePlan, coll: u32) -> Option<Screen<'e>> {
        let mut screen = Screen {
            rule,
            coll,
            tables: FxHashMap::default(),
            whole: false,
        };
        let mut lets_known = vec![rule.var_slot];
        let mut body = true;
        for (slot, expr) in &rule.lets {
            body &= self.screenable(expr, &lets_known, &mut screen);
            lets_known.push(*slot);
        }
        for (condition, _) in &rule.requires {
            body &= self.screenable(condition, &lets_known, &mut screen);
        }
        let filter = match &rule.filter {
            Some(filter) => self.screenable(filter, &[rule.var_slot], &mut screen),
            None => false,
        };
        screen.whole = body;
        (filter || body).then_some(screen)
    }

    /// Whether `expr` is of a form the screen handles, reading only the
    /// slots in `slots`; map lookups get their tables.
    fn screenable<'e>(&'e self, expr: &'e PExpr, slots: &[u32], screen: &mut Screen<'e>) -> bool {
        match expr {
            PExpr::Const(_) | PExpr::Invariant(_) => true,
            PExpr::Local(slot) => slots.contains(slot),
            PExpr::Field { base, coll, .. } => self.screen_row(base, *coll, slots),
            PExpr::Not(operand) => self.screenable(operand, slots, screen),
            PExpr::And(left, right) | PExpr::Or(left, right) => {
                self.screenable(left, slots, screen) && self.screenable(right, slots, screen)
            }
            PExpr::Binary {
                op, left, right, ..
            } if op.is_comparison() => {
                self.screenable(left, slots, screen) && self.screenable(right, slots, screen)
            }
            PExpr::Index(base, index) => {
                let map = match &**base {
                    PExpr::Const(value) => value,
                    PExpr::Invariant(idx) => self.invariant_ref(*idx as usize),
                    _ => return false,
                };
                let Value::Map(entries) = map else {
                    return false;
                };
                let mut table = FxHashMap::default();
                for (key, value) in entries.iter() {
                    match key {
                        // The first entry of a key wins, as in the scan.
                        Value::Int(key) if key.abs() < EXACT => {
                            table.entry(*key).or_insert(value);
                        }
                        _ => return false,
                    }
                }
                if !self.screenable(index, slots, screen) {
                    return false;
                }
                screen.tables.insert(address(expr), table);
                true
            }
            _ => false,
        }
    }

    /// Whether `expr` names a record of `coll` the screen can follow: the
    /// rule's binding, or references from it.
    fn screen_row(&self, expr: &PExpr, coll: u32, slots: &[u32]) -> bool {
        match expr {
            PExpr::Local(slot) => slots.first() == Some(slot),
            PExpr::Field {
                base,
                coll: base_coll,
                field,
            } => {
                self.reference(*base_coll, *field, coll).is_some()
                    && self.screen_row(base, *base_coll, slots)
            }
            _ => false,
        }
    }

    /// Marks in `evaluate` the rows of `first..first + evaluate.len()` that
    /// must be evaluated; the others give no outcome and no error.
    pub(super) fn screen_block(&self, screen: &Screen<'_>, first: u32, evaluate: &mut [bool]) {
        let n = evaluate.len();
        let rule = screen.rule;
        let rows: Vec<u32> = (first..first + n as u32).collect();
        let mut slots: Vec<(u32, Block<'_>)> =
            vec![(rule.var_slot, Block::Rows(screen.coll, rows))];
        let filter = match &rule.filter {
            Some(filter) => self.screen_truths(filter, &slots, screen, n),
            None => vec![Truth::True; n],
        };
        for (i, truth) in filter.iter().enumerate() {
            evaluate[i] = match truth {
                Truth::False | Truth::Null => false,
                Truth::True | Truth::Unknown => true,
            };
        }
        if !screen.whole || !filter.contains(&Truth::True) {
            return;
        }
        // Where the filter is known to hold, the row passes when every let
        // is known and every require holds (an unknown filter could fail).
        let mut known: Vec<bool> = filter.iter().map(|truth| *truth == Truth::True).collect();
        for (slot, expr) in &rule.lets {
            let block = self.screen_eval(expr, &slots, screen, n);
            for (i, known) in known.iter_mut().enumerate() {
                *known &= match &block {
                    Block::Values(values) => values[i].is_some(),
                    Block::Truths(truths) => truths[i] != Truth::Unknown,
                    Block::Unknown => false,
                    Block::Fixed(_) | Block::Rows(..) => true,
                };
            }
            slots.push((*slot, block));
        }
        let mut holds = known;
        for (condition, _) in &rule.requires {
            let truths = self.screen_truths(condition, &slots, screen, n);
            for (holds, truth) in holds.iter_mut().zip(truths) {
                *holds &= truth == Truth::True;
            }
        }
        for (evaluate, holds) in evaluate.iter_mut().zip(holds) {
            *evaluate &= !holds;
        }
    }

    /// `expr` as a condition for every row of the block.
    fn screen_truths(
        &self,
        expr: &PExpr,
        slots: &[(u32, Block<'_>)],
        screen: &Screen<'_>,
        n: usize,
    ) -> Vec<Truth> {
        match self.screen_eval(expr, slots, screen, n) {
            Block::Truths(truths) => truths,
            block => (0..n).map(|i| block.truth(i)).collect(),
        }
    }

    /// `expr` for every row of the block; `slots` holds the blocks of the
    /// rule's binding and of the lets before.
    fn screen_eval<'e>(
        &'e self,
        expr: &'e PExpr,
        slots: &[(u32, Block<'e>)],
        screen: &Screen<'e>,
        n: usize,
    ) -> Block<'e> {
        match expr {
            PExpr::Const(value) => Block::Fixed(value),
            PExpr::Invariant(idx) => Block::Fixed(self.invariant_ref(*idx as usize)),
            PExpr::Local(slot) => match slots.iter().find(|(s, _)| s == slot) {
                Some((_, Block::Fixed(value))) => Block::Fixed(value),
                Some((_, Block::Truths(truths))) => Block::Truths(truths.clone()),
                Some((_, Block::Values(values))) => Block::Values(values.clone()),
                Some((_, Block::Rows(coll, rows))) => Block::Rows(*coll, rows.clone()),
                Some((_, Block::Unknown)) | None => Block::Unknown,
            },
            PExpr::Field { base, coll, field } => {
                let Some(rows) = self.screen_rows(base, *coll, slots) else {
                    return Block::Unknown;
                };
                self.screen_field(*coll, *field, &rows)
            }
            PExpr::Not(operand) => {
                let mut truths = self.screen_truths(operand, slots, screen, n);
                for truth in &mut truths {
                    *truth = match *truth {
                        Truth::False => Truth::True,
                        Truth::True => Truth::False,
                        other => other,
                    };
                }
                Block::Truths(truths)
            }
            PExpr::And(..) | PExpr::Or(..) => {
                let conjunction = matches!(expr, PExpr::And(..));
                let mut operands = Vec::new();
                flatten(expr, conjunction, &mut operands);
                // As the compiled chain: operands in order, the first that
                // decides stops it; an unknown one before that is unknown
                // (it could fail). One operand over the whole block at a
                // time; once every row is settled the rest are not read.
                // Per row, a state: 0 while no operand settled it and none
                // was null, 1 while none settled it and one was null, 2
                // settled by an operand that decides, 3 settled unknown. A
                // table gives the next state from the state and the truth,
                // with no branch per row.
                let decides = if conjunction {
                    Truth::False
                } else {
                    Truth::True
                };
                let mut table = [0u8; 16];
                for (state, next) in table.chunks_exact_mut(4).enumerate() {
                    for (truth, slot) in [Truth::False, Truth::True, Truth::Null, Truth::Unknown]
                        .into_iter()
                        .zip(next)
                    {
                        *slot = match (state, truth) {
                            (2 | 3, _) => state as u8,
                            (_, Truth::Unknown) => 3,
                            (_, truth) if truth == decides => 2,
                            (_, Truth::Null) => 1,
                            _ => state as u8,
                        };
                    }
                }
                let mut states = vec![0u8; n];
                for operand in operands {
                    if states.iter().all(|state| *state >= 2) {
                        break;
                    }
                    let truths = self.screen_truths(operand, slots, screen, n);
                    for (state, truth) in states.iter_mut().zip(truths) {
                        *state = table[usize::from(*state) << 2 | truth as usize];
                    }
                }
                let (otherwise, decided) = if conjunction {
                    (Truth::True, Truth::False)
                } else {
                    (Truth::False, Truth::True)
                };
                Block::Truths(
                    states
                        .into_iter()
                        .map(|state| match state {
                            0 => otherwise,
                            1 => Truth::Null,
                            2 => decided,
                            _ => Truth::Unknown,
                        })
                        .collect(),
                )
            }
            PExpr::Binary {
                op: op @ (BinaryOp::Eq | BinaryOp::Ne),
                left,
                right,
                ..
            } if matches!(**right, PExpr::Const(Value::Null)) => {
                let want = *op == BinaryOp::Eq;
                Block::Truths(
                    self.screen_is_null(left, slots, screen, n)
                        .into_iter()
                        .map(|is_null| match is_null {
                            Some(is_null) => Truth::of(Some(is_null == want)),
                            None => Truth::Unknown,
                        })
                        .collect(),
                )
            }
            PExpr::Binary {
                op, left, right, ..
            } if op.is_comparison() => {
                let left = self.screen_eval(left, slots, screen, n);
                let right = self.screen_eval(right, slots, screen, n);
                // Numbers, dates and nulls are compared here, as `decide`
                // would; any other pair goes to `decide`.
                let plain = |block: &Block<'_>, i: usize| match block {
                    Block::Values(values) => values[i],
                    Block::Fixed(value) => Plain::of(value),
                    _ => None,
                };
                Block::Truths(
                    (0..n)
                        .map(|i| {
                            if let (Some(l), Some(r)) = (plain(&left, i), plain(&right, i))
                                && let Some(decided) = decide_plain(*op, l, r)
                            {
                                return Truth::of(decided);
                            }
                            left.with_value(i, |left| {
                                right
                                    .with_value(i, |right| Truth::of(self.decide(*op, left, right)))
                            })
                            .flatten()
                            .unwrap_or(Truth::Unknown)
                        })
                        .collect(),
                )
            }
            PExpr::Index(_, index) => {
                let Some(table) = screen.tables.get(&address(expr)) else {
                    return Block::Unknown;
                };
                let keys = self.screen_eval(index, slots, screen, n);
                Block::Values(
                    (0..n)
                        .map(|i| {
                            let key = keys.with_value(i, |key| match *key {
                                Value::Int(key) => Some(key),
                                Value::Number(key)
                                    if key.fract() == 0.0 && key.abs() < EXACT as f64 =>
                                {
                                    Some(key as i64)
                                }
                                _ => None,
                            })?;
                            match key.and_then(|key| table.get(&key)) {
                                Some(value) => Plain::of(value),
                                None => Some(Plain::Null),
                            }
                        })
                        .collect(),
                )
            }
            _ => Block::Unknown,
        }
    }

    /// The rows of `coll` that `expr` names for each row of the block
    /// ([`NO_ROW`] for none), or `None` when the screen cannot follow it.
    fn screen_rows(&self, expr: &PExpr, coll: u32, slots: &[(u32, Block<'_>)]) -> Option<Vec<u32>> {
        match expr {
            PExpr::Local(slot) => match slots.iter().find(|(s, _)| s == slot) {
                Some((_, Block::Rows(c, rows))) if *c == coll => Some(rows.clone()),
                _ => None,
            },
            PExpr::Field {
                base,
                coll: base_coll,
                field,
            } => {
                let (column, rows) = self.reference(*base_coll, *field, coll)?;
                let mut from = self.screen_rows(base, *base_coll, slots)?;
                for row in &mut from {
                    if *row != NO_ROW {
                        let at = *row as usize;
                        *row = if column.is_null(at) {
                            NO_ROW
                        } else {
                            rows.get(at).copied().unwrap_or(NO_ROW)
                        };
                    }
                }
                Some(from)
            }
            _ => None,
        }
    }

    /// Field `field` of `coll` at each of `rows`, as
    /// [`Evaluator::field_value`] reads it.
    fn screen_field<'e>(&self, coll: u32, field: u32, rows: &[u32]) -> Block<'e> {
        let column = self.column(coll, field);
        macro_rules! values {
            ($values:expr, $make:expr) => {{
                let values = $values;
                let make = $make;
                Block::Values(
                    rows.iter()
                        .map(|&raw| {
                            let row = raw as usize;
                            Some(if raw == NO_ROW || column.is_null(row) {
                                Plain::Null
                            } else {
                                values.get(row).map_or(Plain::Null, make)
                            })
                        })
                        .collect(),
                )
            }};
        }
        match &column.data {
            ColumnData::Bool(bits) => Block::Truths(
                rows.iter()
                    .map(|row| {
                        if *row == NO_ROW || column.is_null(*row as usize) {
                            Truth::Null
                        } else {
                            Truth::of(bits.get(*row as usize))
                        }
                    })
                    .collect(),
            ),
            ColumnData::Int(values) => values!(values, |v: &i64| Plain::Int(*v)),
            ColumnData::Number(values) => values!(values, |v: &f64| Plain::Number(*v)),
            ColumnData::Date(values) => values!(values, |v: &i32| Plain::Date(*v)),
            ColumnData::Str(values) => values!(values, |v: &Sym| Plain::Sym(*v)),
            ColumnData::Enum(values) => {
                let enum_idx = self.enum_of(coll, field);
                values!(values, move |v: &u16| Plain::Enum(enum_idx, *v))
            }
            ColumnData::Ref {
                target, rows: to, ..
            } => {
                let target = *target;
                values!(to, move |v: &u32| match *v {
                    NO_ROW => Plain::Null,
                    row => Plain::Row(target, row),
                })
            }
            ColumnData::List { .. } | ColumnData::Skipped => Block::Unknown,
        }
    }

    /// Whether `expr` is null at each row, as [`Evaluator::is_null`]
    /// decides it; `None` when unknown.
    fn screen_is_null(
        &self,
        expr: &PExpr,
        slots: &[(u32, Block<'_>)],
        screen: &Screen<'_>,
        n: usize,
    ) -> Vec<Option<bool>> {
        if let PExpr::Field { base, coll, field } = expr
            && let Some(rows) = self.screen_rows(base, *coll, slots)
        {
            let column = self.column(*coll, *field);
            return rows
                .iter()
                .map(|row| {
                    let row = *row as usize;
                    Some(
                        row as u32 == NO_ROW
                            || column.is_null(row)
                            || cell_missing(&column.data, row),
                    )
                })
                .collect();
        }
        let block = self.screen_eval(expr, slots, screen, n);
        (0..n)
            .map(|i| block.with_value(i, Value::is_null))
            .collect()
    }
}

/// An expression's identity while the plan is borrowed.
fn address(expr: &PExpr) -> usize {
    std::ptr::from_ref(expr) as usize
}

/// The operands of a chain of `and` (`conjunction`) or `or`, left to right.
fn flatten<'e>(expr: &'e PExpr, conjunction: bool, out: &mut Vec<&'e PExpr>) {
    match (expr, conjunction) {
        (PExpr::And(left, right), true) | (PExpr::Or(left, right), false) => {
            flatten(left, conjunction, out);
            flatten(right, conjunction, out);
        }
        (other, _) => out.push(other),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::{PolicyFile, bundled_policies, compile_policies, load_data};

    /// Every row a screen passes is one the rule's evaluation finds nothing
    /// in, for every bundled rule and the edge cases of `tests/eval`, on
    /// every committed ledger; and the screens do pass rows, so the check
    /// is not empty.
    #[test]
    fn every_passed_row_gives_no_outcome_and_no_error() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let edge = std::fs::read_to_string(root.join("tests/eval/edge.bangfu"))
            .unwrap_or_else(|e| panic!("tests/eval/edge.bangfu: {e}"));
        let mut files = bundled_policies();
        files.push(PolicyFile::new("tests/eval/edge.bangfu", edge));
        let plan = compile_policies(&files, &[]).unwrap_or_else(|e| panic!("policies: {e:?}"));
        let (mut passed, mut evaluated, mut screened_rules) = (0, 0, 0);
        for ledger in [
            "examples/sample/ledger.json",
            "examples/sample/csv",
            "examples/heishui_6plus1/ledger.yaml",
            "examples/yaan_2018/ledger.yaml",
            "examples/shanxi/ledger.json",
            "examples/pairing_2023/ledger.json",
        ] {
            let data =
                load_data(&root.join(ledger), &plan).unwrap_or_else(|e| panic!("{ledger}: {e:?}"));
            let evaluator = Evaluator::new(&plan, &data);
            for (rule_idx, rule) in plan.rules.iter().enumerate() {
                let Some(coll) = rule.entity else { continue };
                let Some(screen) = evaluator.screen(rule, coll) else {
                    continue;
                };
                screened_rules += 1;
                let compiled = evaluator.compile_rule(rule, false);
                let mut env = vec![Value::Null; rule.n_slots as usize];
                let len = data.collections[coll as usize].len as u32;
                // Small blocks too, so that blocks end inside the data.
                for block_len in [BLOCK, 3] {
                    let mut first = 0;
                    while first < len {
                        let end = (first + block_len).min(len);
                        let mut evaluate = vec![true; (end - first) as usize];
                        evaluator.screen_block(&screen, first, &mut evaluate);
                        for (row, evaluate) in (first..end).zip(evaluate) {
                            if evaluate {
                                evaluated += 1;
                                continue;
                            }
                            passed += 1;
                            let result = evaluator.entity(
                                rule_idx,
                                rule,
                                &compiled,
                                Some((coll, row)),
                                &mut env,
                            );
                            assert!(
                                matches!(result, Ok(None)),
                                "{ledger}: rule {} passed row {row}, which gives {}",
                                rule.id,
                                match result {
                                    Ok(Some(outcome)) =>
                                        format!("a violation: {}", outcome.message),
                                    Ok(None) => String::new(),
                                    Err(_) => "an error".to_string(),
                                }
                            );
                        }
                        first = end;
                    }
                }
            }
        }
        assert!(screened_rules > 20, "rules screened: {screened_rules}");
        assert!(
            passed > 1000 && evaluated > 100,
            "passed {passed}, evaluated {evaluated}"
        );
    }

    /// The screen's own comparison of numbers, dates and nulls decides
    /// every pair as the interpreter's `decide` does, under every operator.
    #[test]
    fn plain_comparisons_decide_as_the_interpreter() {
        let plan = compile_policies(&bundled_policies(), &[])
            .unwrap_or_else(|e| panic!("policies: {e:?}"));
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let data = load_data(&root.join("examples/sample/ledger.json"), &plan)
            .unwrap_or_else(|e| panic!("ledger: {e:?}"));
        let evaluator = Evaluator::new(&plan, &data);
        let values = [
            Plain::Null,
            Plain::Int(0),
            Plain::Int(1),
            Plain::Int(-1),
            Plain::Int(i64::MAX),
            Plain::Number(0.0),
            Plain::Number(-0.0),
            Plain::Number(1.0),
            Plain::Number(1.5),
            Plain::Number(f64::NAN),
            Plain::Number(9.223_372_036_854_776e18),
            Plain::Date(0),
            Plain::Date(1),
            Plain::Bool(true),
            Plain::Enum(0, 1),
        ];
        let ops = [
            BinaryOp::Eq,
            BinaryOp::Ne,
            BinaryOp::Lt,
            BinaryOp::Le,
            BinaryOp::Gt,
            BinaryOp::Ge,
        ];
        let mut decided = 0;
        for op in ops {
            for left in values {
                for right in values {
                    let Some(plain) = decide_plain(op, left, right) else {
                        continue;
                    };
                    decided += 1;
                    let expected = evaluator.decide(op, &left.value(), &right.value());
                    assert_eq!(plain, expected, "{left:?} {op:?} {right:?}");
                }
            }
        }
        assert!(decided > 300, "pairs decided here: {decided}");
    }
}
