//! Runtime values, shared by `compile` (constants) and `eval`.
//!
//! A [`Value`] is small and cheap to clone: records are `(collection, row)`
//! pairs into the columnar dataset, sets of records are shared row lists, and
//! strings from the data are interned symbols.
//!
//! **Invariant:** a value never owns a copy of a record.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::data::Sym;

/// A set of rows of one collection.
#[derive(Clone, Debug)]
pub enum RowSet {
    /// Every row, `0..len`.
    All(u32),
    /// These rows, in ascending order.
    Some(Arc<[u32]>),
    /// Rows `start..end` of a shared list (a group of an index), in
    /// ascending order.
    Slice(Arc<[u32]>, u32, u32),
}

/// Equal when the rows are, however they are held.
impl PartialEq for RowSet {
    fn eq(&self, other: &RowSet) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl RowSet {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            RowSet::All(len) => *len as usize,
            RowSet::Some(rows) => rows.len(),
            RowSet::Slice(_, start, end) => (end - start) as usize,
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows, in order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = u32> + '_> {
        match self {
            RowSet::All(len) => Box::new(0..*len),
            RowSet::Some(rows) => Box::new(rows.iter().copied()),
            RowSet::Slice(rows, start, end) => {
                Box::new(rows[*start as usize..*end as usize].iter().copied())
            }
        }
    }
}

/// A value during evaluation.
#[derive(Clone, Debug)]
pub enum Value {
    /// Absent.
    Null,
    /// Boolean.
    Bool(bool),
    /// Integer.
    Int(i64),
    /// Float.
    Number(f64),
    /// A string of the data (interned).
    Sym(Sym),
    /// A string made by the policy (literals, templates).
    Text(Arc<str>),
    /// Days since 1970-01-01.
    Date(i32),
    /// Variant `variant` of enum `enum_idx`.
    Enum(u32, u16),
    /// Record `row` of collection `coll`.
    Row(u32, u32),
    /// Records of collection `coll`.
    Rows(u32, RowSet),
    /// A list.
    List(Arc<[Value]>),
    /// A map literal, as ordered pairs.
    Map(Arc<[(Value, Value)]>),
}

/// What a value needs from the dataset to be compared or printed.
pub trait Resolver {
    /// The text of an interned string.
    fn resolve(&self, sym: Sym) -> &str;
    /// The key of a record, as text.
    fn row_key(&self, coll: u32, row: u32) -> String;
    /// The name of an enum variant.
    fn variant_name(&self, enum_idx: u32, variant: u16) -> &str;
    /// The interned symbol of the key of a record, if the key is one string.
    fn row_key_sym(&self, coll: u32, row: u32) -> Option<Sym>;
}

/// A resolver with no data: symbols print as `#n` (used before data is loaded).
pub struct NoData<'a> {
    /// Variant names by enum.
    pub enums: &'a [Vec<String>],
}

impl Resolver for NoData<'_> {
    fn resolve(&self, _sym: Sym) -> &str {
        "?"
    }
    fn row_key(&self, coll: u32, row: u32) -> String {
        format!("{coll}#{row}")
    }
    fn variant_name(&self, enum_idx: u32, variant: u16) -> &str {
        self.enums
            .get(enum_idx as usize)
            .and_then(|e| e.get(variant as usize))
            .map_or("?", String::as_str)
    }
    fn row_key_sym(&self, _coll: u32, _row: u32) -> Option<Sym> {
        None
    }
}

impl Value {
    /// Whether the value is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as a number, for arithmetic and ordering.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(value) => Some(*value as f64),
            Value::Number(value) => Some(*value),
            _ => None,
        }
    }

    /// The text of a string value.
    pub fn as_str<'a>(&'a self, resolver: &'a dyn Resolver) -> Option<&'a str> {
        match self {
            Value::Sym(sym) => Some(resolver.resolve(*sym)),
            Value::Text(text) => Some(text),
            _ => None,
        }
    }

    /// Equality as the language defines it: `null == null`; ints equal
    /// numbers of the same value; a record equals its key.
    pub fn equals(&self, other: &Value, resolver: &dyn Resolver) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Null, _) | (_, Value::Null) => false,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Int(_) | Value::Number(_), Value::Int(_) | Value::Number(_)) => {
                self.as_f64() == other.as_f64()
            }
            (Value::Sym(a), Value::Sym(b)) => a == b,
            (Value::Sym(_) | Value::Text(_), Value::Sym(_) | Value::Text(_)) => {
                self.as_str(resolver) == other.as_str(resolver)
            }
            (Value::Date(a), Value::Date(b)) => a == b,
            (Value::Enum(ea, va), Value::Enum(eb, vb)) => ea == eb && va == vb,
            (Value::Row(ca, ra), Value::Row(cb, rb)) => ca == cb && ra == rb,
            (Value::Row(coll, row), Value::Sym(sym)) | (Value::Sym(sym), Value::Row(coll, row)) => {
                resolver.row_key_sym(*coll, *row) == Some(*sym)
            }
            (Value::Row(coll, row), Value::Text(text))
            | (Value::Text(text), Value::Row(coll, row)) => resolver.row_key(*coll, *row) == **text,
            (Value::List(a), Value::List(b)) => {
                a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.equals(y, resolver))
            }
            _ => false,
        }
    }

    /// Ordering for `<`, `<=`, `>`, `>=`; `None` when the values do not compare
    /// (a null, or different kinds).
    pub fn compare(&self, other: &Value, resolver: &dyn Resolver) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
            (Value::Int(_) | Value::Number(_), Value::Int(_) | Value::Number(_)) => {
                self.as_f64()?.partial_cmp(&other.as_f64()?)
            }
            (Value::Sym(_) | Value::Text(_), Value::Sym(_) | Value::Text(_)) => {
                Some(self.as_str(resolver)?.cmp(other.as_str(resolver)?))
            }
            (Value::Date(a), Value::Date(b)) => Some(a.cmp(b)),
            (Value::Enum(ea, va), Value::Enum(eb, vb)) if ea == eb => Some(va.cmp(vb)),
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// Appends the value as a message shows it.
    pub fn display(&self, resolver: &dyn Resolver, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
            Value::Int(value) => {
                let _ = write!(out, "{value}");
            }
            Value::Number(value) => format_number(*value, out),
            Value::Sym(sym) => out.push_str(resolver.resolve(*sym)),
            Value::Text(text) => out.push_str(text),
            Value::Date(days) => out.push_str(&crate::data::format_date(*days)),
            Value::Enum(enum_idx, variant) => {
                out.push_str(resolver.variant_name(*enum_idx, *variant))
            }
            Value::Row(coll, row) => out.push_str(&resolver.row_key(*coll, *row)),
            Value::Rows(coll, rows) => {
                out.push('[');
                for (idx, row) in rows.iter().enumerate() {
                    if idx > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&resolver.row_key(*coll, row));
                }
                out.push(']');
            }
            Value::List(items) => {
                out.push('[');
                for (idx, item) in items.iter().enumerate() {
                    if idx > 0 {
                        out.push_str(", ");
                    }
                    item.display(resolver, out);
                }
                out.push(']');
            }
            Value::Map(entries) => {
                out.push('{');
                for (idx, (key, value)) in entries.iter().enumerate() {
                    if idx > 0 {
                        out.push_str(", ");
                    }
                    key.display(resolver, out);
                    out.push_str(": ");
                    value.display(resolver, out);
                }
                out.push('}');
            }
        }
    }

    /// The value as a message shows it.
    pub fn to_display(&self, resolver: &dyn Resolver) -> String {
        let mut out = String::new();
        self.display(resolver, &mut out);
        out
    }
}

/// Formats a float the way a ledger shows it: integral values without a
/// fraction (`3410`), others with the shortest exact digits (`10790.84`).
pub fn format_number(value: f64, out: &mut String) {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        let _ = write!(out, "{}", value as i64);
    } else {
        let _ = write!(out, "{value}");
    }
}

/// A constant written back as a bangfu literal (params in output): strings
/// quoted, lists and maps in brackets, enum variants by name.
pub fn literal(value: &Value, enums: &[crate::data::EnumSchema]) -> String {
    let again = |item: &Value| literal(item, enums);
    match value {
        Value::Text(text) => format!("{text:?}"),
        Value::List(items) => format!(
            "[{}]",
            items.iter().map(again).collect::<Vec<_>>().join(", ")
        ),
        Value::Map(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, v)| format!("{}: {}", again(k), again(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Number(n) if n.fract() == 0.0 && n.is_finite() => format!("{n:.1}"),
        Value::Number(n) => n.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Date(days) => format!("date({:?})", crate::data::format_date(*days)),
        Value::Enum(enum_idx, variant) => enums
            .get(*enum_idx as usize)
            .and_then(|e| e.variants.get(*variant as usize))
            .cloned()
            .unwrap_or_else(|| format!("#{variant}")),
        other => format!("{other:?}"),
    }
}
