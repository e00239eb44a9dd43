//! Stage `data`: loads a dataset (one JSON document, one YAML document, or a
//! directory of CSV files) into typed columns, checked against the schema the
//! policies declare.
//!
//! Takes a [`DataSchema`] (from `check`) and files; gives a [`Dataset`]:
//! per collection one typed [`Column`] per field, strings interned into one
//! [`Interner`], references resolved to row indexes, and for every record the
//! byte offset where it starts in its file.
//!
//! Large files are read by several threads at once: a loader splits a file
//! into chunks, each thread fills a [`Chunk`] (columns, strings and errors of
//! its own), and the chunks are merged in document order, so the result and
//! the errors are those of one thread reading front to back
//! (docs/performance.md).
//!
//! **Invariants:** no generic value tree is ever built: loaders push each
//! value straight into its column through a [`Chunk`] (or the
//! [`DatasetBuilder`] around one). Positions are kept as byte offsets and
//! turned into line and column only when reported. Fields no rule reads
//! (neither `FieldSchema::keep` nor `FieldSchema::shown`) are type-checked
//! and dropped. Strings of kept fields and keys are canonical (equal text,
//! equal symbol); strings of fields only shown are not, and are never
//! compared by symbol. This module knows no collection or field by name.

mod chunk;
pub mod csv;
pub mod edit;
pub mod json;
pub mod refs;
mod strings;
pub mod yaml;

#[cfg(test)]
pub(crate) mod fixture;

use std::path::Path;

use miette::{Diagnostic, SourceSpan};
use rustc_hash::FxHashMap;
use thiserror::Error;

use crate::diag;
use crate::source::{LineIndex, SourceId, SourceMap, SourceText};

pub(crate) use chunk::LoadContext;
pub use chunk::{CellResult, Chunk};
pub use strings::{Interner, Sym};

/// Prints how long a phase took to stderr when `BANGFU_TIMINGS` is set
/// (for docs/performance.md and profiling; silent otherwise).
/// Wall time and the CPU time of all threads (from `/proc/self/stat`, in
/// 10 ms ticks), which a busy machine disturbs less than wall time.
pub struct Timing {
    name: std::borrow::Cow<'static, str>,
    start: Option<(std::time::Instant, u64)>,
}

impl Timing {
    /// Whether `BANGFU_TIMINGS` is set.
    pub fn enabled() -> bool {
        static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *ENABLED.get_or_init(|| std::env::var_os("BANGFU_TIMINGS").is_some())
    }

    /// Starts timing `name`.
    pub fn start(name: impl Into<std::borrow::Cow<'static, str>>) -> Timing {
        let enabled = Timing::enabled();
        Timing {
            name: name.into(),
            start: enabled.then(|| (std::time::Instant::now(), cpu_ticks())),
        }
    }
}

/// User plus system time of the process so far, in clock ticks.
fn cpu_ticks() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    // Fields after the command name (which may hold spaces), which ends in ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line.
    let field = |idx: usize| {
        fields
            .get(idx)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

impl Drop for Timing {
    fn drop(&mut self) {
        if let Some((start, ticks)) = self.start {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            let kib = |key: &str| {
                status
                    .lines()
                    .find(|line| line.starts_with(key))
                    .and_then(|line| line.split_whitespace().nth(1))
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            eprintln!(
                "[timing] {:<28} {:>8.1} ms wall {:>6} ms cpu  rss {:>5} MiB (peak {:>5}; file {:>4})",
                self.name,
                start.elapsed().as_secs_f64() * 1e3,
                (cpu_ticks().saturating_sub(ticks)) * 10,
                kib("VmRSS:") / 1024,
                kib("VmHWM:") / 1024,
                kib("RssFile:") / 1024,
            );
        }
    }
}

/// Row index meaning "no row": a null or dangling reference.
pub const NO_ROW: u32 = u32::MAX;

/// The shape of the data, as the checked schema declares it.
#[derive(Clone, Debug, Default)]
pub struct DataSchema {
    /// Collections, in declaration order.
    pub collections: Vec<CollectionSchema>,
    /// Enum types, referred to by index from [`ScalarType::Enum`].
    pub enums: Vec<EnumSchema>,
}

/// An enum type.
#[derive(Clone, Debug)]
pub struct EnumSchema {
    /// Name (for inline enums, `collection.field`).
    pub name: String,
    /// Variant names, in declaration order.
    pub variants: Vec<String>,
}

/// One collection of records.
#[derive(Clone, Debug)]
pub struct CollectionSchema {
    /// Name, as in the data (`"people"`).
    pub name: String,
    /// Index of the key field, if the collection has one.
    pub key: Option<usize>,
    /// Stored fields, in declaration order.
    pub fields: Vec<FieldSchema>,
}

/// One stored field.
#[derive(Clone, Debug)]
pub struct FieldSchema {
    /// Name.
    pub name: String,
    /// Type.
    pub ty: FieldType,
    /// Whether null or absence is allowed.
    pub optional: bool,
    /// Whether the plan reads its values (compares, hashes, indexes or
    /// computes with them): stored, and its strings made canonical, so two
    /// equal strings have equal symbols. Fields neither kept nor
    /// [`shown`](FieldSchema::shown) are checked and dropped.
    pub keep: bool,
    /// Whether the plan only shows its values as text (a field written
    /// directly as a part of a message template, or as a labelled step of a
    /// `path`): stored, but its strings are not made canonical (not even
    /// deduplicated within a chunk), so two equal strings may have different
    /// symbols and must never be compared by symbol. No effect on a kept field or a
    /// key; anything that may read a field otherwise (the REPL's free
    /// expressions) sets `keep`.
    pub shown: bool,
}

/// The type of a scalar value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScalarType {
    /// 64-bit signed integer.
    Int,
    /// 64-bit float.
    Number,
    /// `true` / `false`.
    Bool,
    /// UTF-8 text.
    String,
    /// ISO date `YYYY-MM-DD`.
    Date,
    /// One of the variants of `DataSchema::enums[i]`.
    Enum(u32),
    /// The key of a record of `DataSchema::collections[i]`.
    Ref(u32),
}

/// The type of a stored field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// One value.
    Scalar(ScalarType),
    /// A list of values (never null elements).
    List(ScalarType),
}

impl DataSchema {
    /// Index of the collection named `name`.
    pub fn collection_index(&self, name: &str) -> Option<usize> {
        self.collections.iter().position(|c| c.name == name)
    }

    /// A human name for a scalar type (`int`, `ref people`, `enum role`).
    pub fn scalar_name(&self, ty: ScalarType) -> String {
        match ty {
            ScalarType::Int => "int".into(),
            ScalarType::Number => "number".into(),
            ScalarType::Bool => "bool".into(),
            ScalarType::String => "string".into(),
            ScalarType::Date => "date".into(),
            ScalarType::Enum(idx) => format!("enum `{}`", self.enums[idx as usize].name),
            ScalarType::Ref(idx) => format!("ref `{}`", self.collections[idx as usize].name),
        }
    }

    /// A human name for a field type.
    pub fn field_type_name(&self, ty: FieldType) -> String {
        match ty {
            FieldType::Scalar(scalar) => self.scalar_name(scalar),
            FieldType::List(scalar) => format!("list<{}>", self.scalar_name(scalar)),
        }
    }
}

impl CollectionSchema {
    /// Index of the field named `name`.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }
}

/// Days since 1970-01-01 of a valid ISO date `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<i32> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let year: i32 = text[0..4].parse().ok()?;
    let month: u32 = text[5..7].parse().ok()?;
    let day: u32 = text[8..10].parse().ok()?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's civil-from-days algorithms: exact for the proleptic
// Gregorian calendar, no table, no overflow for four-digit years.
fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = if year >= 0 { year } else { year - 399 } / 400;
    let yoe = (year - era * 400) as u32;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

/// Formats days since 1970-01-01 as `YYYY-MM-DD`.
pub fn format_date(days: i32) -> String {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u32;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe as i32 + era * 400 + i32::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Booleans, one bit each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bits {
    words: Vec<u64>,
    len: usize,
}

impl Bits {
    /// Number of values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Value `idx`.
    #[inline]
    pub fn get(&self, idx: usize) -> Option<bool> {
        if idx >= self.len {
            return None;
        }
        Some(self.words[idx / 64] >> (idx % 64) & 1 == 1)
    }

    /// Appends a value.
    #[inline]
    pub fn push(&mut self, value: bool) {
        if self.len.is_multiple_of(64) {
            self.words.push(0);
        }
        if value {
            self.words[self.len / 64] |= 1 << (self.len % 64);
        }
        self.len += 1;
    }

    /// Appends every value of `other`.
    pub fn append(&mut self, other: &Bits) {
        let shift = self.len % 64;
        if shift == 0 {
            self.words.extend_from_slice(&other.words);
        } else {
            for (idx, word) in other.words.iter().enumerate() {
                let low = word << shift;
                let high = word >> (64 - shift);
                if let Some(last) = self.words.last_mut() {
                    *last |= low;
                }
                let bits_left = other.len - idx * 64;
                if bits_left > 64 - shift {
                    self.words.push(high);
                }
            }
        }
        self.len += other.len;
        self.words.truncate(self.len.div_ceil(64));
    }

    /// Keeps the first `len` values.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        self.len = len;
        self.words.truncate(len.div_ceil(64));
        if !len.is_multiple_of(64)
            && let Some(last) = self.words.last_mut()
        {
            *last &= (1u64 << (len % 64)) - 1;
        }
    }
}

/// A collection's key index: the row of each key, built the first time it
/// is asked for (most runs never look a record up by its key string; the
/// references were resolved while loading). The keys themselves are the
/// key field's column, not a copy of it.
#[derive(Clone, Debug, Default)]
pub struct KeyIndex {
    /// The key field, when it is a string.
    field: Option<usize>,
    map: std::sync::OnceLock<FxHashMap<Sym, u32>>,
}

impl KeyIndex {
    /// The index of a collection whose key is field `field` (`None` for a
    /// collection without a string key).
    pub(crate) fn new(field: Option<usize>) -> KeyIndex {
        KeyIndex {
            field,
            map: std::sync::OnceLock::new(),
        }
    }
}

impl Collection {
    /// The keys, by row (empty for a collection without a string key).
    pub fn keys(&self) -> &[Sym] {
        match self
            .key_index
            .field
            .and_then(|field| self.columns.get(field))
            .map(|column| &column.data)
        {
            Some(ColumnData::Str(keys)) => keys,
            _ => &[],
        }
    }

    fn key_map(&self) -> &FxHashMap<Sym, u32> {
        self.key_index.map.get_or_init(|| {
            let keys = self.keys();
            let mut map = FxHashMap::default();
            map.reserve(keys.len());
            for (row, key) in keys.iter().enumerate() {
                // The first record with a key is the one it names.
                map.entry(*key).or_insert(row as u32);
            }
            map
        })
    }

    /// The row whose key is `key`.
    pub fn key_row(&self, key: &Sym) -> Option<u32> {
        self.key_map().get(key).copied()
    }

    /// Whether a record has this key.
    pub fn has_key(&self, key: &Sym) -> bool {
        self.key_map().contains_key(key)
    }
}

/// Values of one field for every record of a collection.
#[derive(Clone, Debug)]
pub enum ColumnData {
    /// Integers.
    Int(Vec<i64>),
    /// Floats.
    Number(Vec<f64>),
    /// Booleans.
    Bool(Bits),
    /// Interned strings.
    Str(Vec<Sym>),
    /// Days since 1970-01-01.
    Date(Vec<i32>),
    /// Variant indexes.
    Enum(Vec<u16>),
    /// References: the row each names ([`NO_ROW`] when null or dangling).
    /// While a [`Chunk`] loads, `rows` holds the keys' symbols instead;
    /// the merge resolves them.
    Ref {
        /// Target collection.
        target: u32,
        /// Resolved rows.
        rows: Vec<u32>,
        /// The key as written, for each dangling reference (by index).
        dangling: FxHashMap<u32, Sym>,
    },
    /// Lists: record `i` holds `items[offsets[i]..offsets[i + 1]]`.
    List {
        /// `len + 1` offsets into `items`.
        offsets: Vec<u32>,
        /// The flattened elements.
        items: Box<ColumnData>,
    },
    /// A field no rule reads: checked while loading, not stored.
    Skipped,
}

/// One field's values plus which of them are null.
#[derive(Clone, Debug)]
pub struct Column {
    /// The values; a null slot holds a default.
    pub data: ColumnData,
    /// One bit per record, set when the value is null.
    nulls: Vec<u64>,
    any_null: bool,
}

impl Column {
    fn new(data: ColumnData) -> Column {
        Column {
            data,
            nulls: Vec::new(),
            any_null: false,
        }
    }

    /// Whether the value of record `row` is null.
    #[inline]
    pub fn is_null(&self, row: usize) -> bool {
        self.any_null
            && self
                .nulls
                .get(row / 64)
                .is_some_and(|word| word >> (row % 64) & 1 == 1)
    }

    /// Bytes of heap the column takes.
    pub fn heap_bytes(&self) -> usize {
        self.nulls.capacity() * 8 + data_heap_bytes(&self.data)
    }

    /// Whether any value is null.
    pub fn has_nulls(&self) -> bool {
        self.any_null
    }

    fn set_null(&mut self, row: usize) {
        let word = row / 64;
        if self.nulls.len() <= word {
            self.nulls.resize(word + 1, 0);
        }
        self.nulls[word] |= 1 << (row % 64);
        self.any_null = true;
    }

    /// Clears the null flags of rows `row..` (rows taken back).
    pub(crate) fn clear_nulls_from(&mut self, row: usize) {
        let word = row / 64;
        if let Some(first) = self.nulls.get_mut(word) {
            *first &= (1u64 << (row % 64)) - 1;
        }
        self.nulls.truncate(word + 1);
    }

    /// Takes over the null flags of `other`, whose rows follow `base` rows
    /// of this column.
    fn append_nulls(&mut self, other: &Column, base: usize) {
        if !other.any_null {
            return;
        }
        for (idx, word) in other.nulls.iter().enumerate() {
            let mut word = *word;
            while word != 0 {
                let bit = word.trailing_zeros() as usize;
                word &= word - 1;
                self.set_null(base + idx * 64 + bit);
            }
        }
    }
}

fn data_heap_bytes(data: &ColumnData) -> usize {
    match data {
        ColumnData::Int(v) => v.capacity() * 8,
        ColumnData::Number(v) => v.capacity() * 8,
        ColumnData::Bool(v) => v.words.capacity() * 8,
        ColumnData::Str(v) => v.capacity() * 4,
        ColumnData::Date(v) => v.capacity() * 4,
        ColumnData::Enum(v) => v.capacity() * 2,
        ColumnData::Ref { rows, dangling, .. } => rows.capacity() * 4 + dangling.capacity() * 12,
        ColumnData::List { offsets, items } => offsets.capacity() * 4 + data_heap_bytes(items),
        ColumnData::Skipped => 0,
    }
}

/// Where each record starts in its file, as a byte offset: four bytes a
/// record while every offset fits in 32 bits (files under 4 GiB), eight
/// from the first that does not. A record with no position (added by an
/// edit) has `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Positions {
    /// Offsets below `u32::MAX`; `u32::MAX` is "none".
    Narrow(Vec<u32>),
    /// Any offsets; `u64::MAX` is "none".
    Wide(Vec<u64>),
}

impl Default for Positions {
    fn default() -> Positions {
        Positions::Narrow(Vec::new())
    }
}

impl Positions {
    /// The offset of record `row`.
    #[inline]
    pub fn get(&self, row: usize) -> Option<u64> {
        match self {
            Positions::Narrow(offsets) => match *offsets.get(row)? {
                u32::MAX => None,
                offset => Some(u64::from(offset)),
            },
            Positions::Wide(offsets) => match *offsets.get(row)? {
                u64::MAX => None,
                offset => Some(offset),
            },
        }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        match self {
            Positions::Narrow(offsets) => offsets.len(),
            Positions::Wide(offsets) => offsets.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every offset, `None` where a record has none.
    pub fn to_vec(&self) -> Vec<Option<u64>> {
        (0..self.len()).map(|row| self.get(row)).collect()
    }

    /// The offsets as eight bytes each.
    fn into_wide(self) -> Vec<u64> {
        match self {
            Positions::Wide(offsets) => offsets,
            Positions::Narrow(offsets) => offsets
                .iter()
                .map(|offset| match *offset {
                    u32::MAX => u64::MAX,
                    offset => u64::from(offset),
                })
                .collect(),
        }
    }

    /// The stored form of `offset` (`None`: no position) when it is narrow.
    fn narrow(offset: Option<u64>) -> Option<u32> {
        match offset {
            None => Some(u32::MAX),
            Some(offset) => u32::try_from(offset).ok().filter(|o| *o != u32::MAX),
        }
    }

    /// Appends a record's offset.
    #[inline]
    pub fn push(&mut self, offset: Option<u64>) {
        if let Positions::Narrow(offsets) = self
            && let Some(narrow) = Positions::narrow(offset)
        {
            offsets.push(narrow);
            return;
        }
        let mut wide = std::mem::take(self).into_wide();
        wide.push(offset.unwrap_or(u64::MAX));
        *self = Positions::Wide(wide);
    }

    /// Makes room for `more` offsets.
    pub fn reserve(&mut self, more: usize) {
        match self {
            Positions::Narrow(offsets) => offsets.reserve(more),
            Positions::Wide(offsets) => offsets.reserve(more),
        }
    }

    /// Inserts a record's offset at `row`.
    pub fn insert(&mut self, row: usize, offset: Option<u64>) {
        if let Positions::Narrow(offsets) = self
            && let Some(narrow) = Positions::narrow(offset)
        {
            offsets.insert(row, narrow);
            return;
        }
        let mut wide = std::mem::take(self).into_wide();
        wide.insert(row, offset.unwrap_or(u64::MAX));
        *self = Positions::Wide(wide);
    }

    /// Removes record `row`'s offset.
    pub fn remove(&mut self, row: usize) {
        match self {
            Positions::Narrow(offsets) => {
                offsets.remove(row);
            }
            Positions::Wide(offsets) => {
                offsets.remove(row);
            }
        }
    }

    /// Keeps the first `len` offsets.
    pub fn truncate(&mut self, len: usize) {
        match self {
            Positions::Narrow(offsets) => offsets.truncate(len),
            Positions::Wide(offsets) => offsets.truncate(len),
        }
    }

    /// Bytes held.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Positions::Narrow(offsets) => offsets.capacity() * 4,
            Positions::Wide(offsets) => offsets.capacity() * 8,
        }
    }

    /// Pieces end to end, each freed once copied (the whole never sits in
    /// memory twice); narrow unless a piece is wide.
    pub fn join(pieces: Vec<Positions>) -> Positions {
        let total = pieces.iter().map(Positions::len).sum();
        if pieces
            .iter()
            .all(|piece| matches!(piece, Positions::Narrow(_)))
        {
            let mut joined = Vec::with_capacity(total);
            for piece in pieces {
                if let Positions::Narrow(offsets) = piece {
                    joined.extend_from_slice(&offsets);
                }
            }
            return Positions::Narrow(joined);
        }
        let mut joined = Positions::Wide(Vec::with_capacity(total));
        for piece in pieces {
            for row in 0..piece.len() {
                joined.push(piece.get(row));
            }
        }
        joined
    }
}

/// Where each record starts, as the file's line index reads it without
/// the file: the newlines between the start of the record's 4 KiB block and
/// the record, and its 1-based column. Filled by the JSON loader while a
/// piece's bytes are at hand; finding lines afterwards would read every
/// page holding a violation back from the page cache.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordLines {
    in_block: Vec<u16>,
    /// `u32::MAX`: not known (no line start seen before it in its piece).
    cols: Vec<u32>,
}

impl RecordLines {
    /// Appends a record's newlines-in-block and column (`None`: unknown).
    pub fn push(&mut self, in_block: u16, col: Option<usize>) {
        self.in_block.push(in_block);
        self.cols.push(
            col.and_then(|col| u32::try_from(col).ok())
                .unwrap_or(u32::MAX),
        );
    }

    /// Record `row`'s newlines-in-block and column, if known.
    pub fn get(&self, row: usize) -> Option<(usize, usize)> {
        let col = *self.cols.get(row)?;
        (col != u32::MAX).then(|| (usize::from(self.in_block[row]), col as usize))
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.cols.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.cols.is_empty()
    }

    /// Keeps the first `len` records.
    pub fn truncate(&mut self, len: usize) {
        self.in_block.truncate(len);
        self.cols.truncate(len);
    }

    /// Pieces end to end.
    pub fn join(pieces: Vec<RecordLines>) -> RecordLines {
        let total = pieces.iter().map(RecordLines::len).sum();
        let mut joined = RecordLines {
            in_block: Vec::with_capacity(total),
            cols: Vec::with_capacity(total),
        };
        for piece in pieces {
            joined.in_block.extend_from_slice(&piece.in_block);
            joined.cols.extend_from_slice(&piece.cols);
        }
        joined
    }
}

/// One loaded collection.
#[derive(Clone, Debug)]
pub struct Collection {
    /// Number of records.
    pub len: usize,
    /// One column per field of the schema, in schema order.
    pub columns: Vec<Column>,
    /// Byte offset where each record starts in its file.
    pub positions: Positions,
    /// The file the records came from (none for an absent collection).
    pub source: Option<SourceId>,
    /// When every record of the file is one line (a CSV file without blank
    /// lines or line breaks inside cells): the line of the first record.
    /// Record `r` is then on line `first_line + r`, from column 1, with no
    /// need to count the file's newlines.
    pub first_line: Option<usize>,
    /// Lines and columns of the records, when the loader found them (see
    /// [`RecordLines`]).
    pub record_lines: Option<RecordLines>,
    /// Row of each key, built on first use.
    pub key_index: KeyIndex,
}

/// A loaded, indexed dataset.
#[derive(Debug)]
pub struct Dataset {
    /// Collections, indexed like `DataSchema::collections`.
    pub collections: Vec<Collection>,
    /// Every string of the data.
    pub interner: Interner,
    /// The data files read.
    pub sources: SourceMap,
    /// Which format the data came in.
    pub format: DataFormat,
}

/// The format of a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataFormat {
    /// One JSON document.
    Json,
    /// One YAML document.
    Yaml,
    /// A directory of CSV files.
    Csv,
}

impl Dataset {
    /// The key of record `row` of collection `coll`, if the collection has a key.
    pub fn key_of(&self, schema: &DataSchema, coll: usize, row: usize) -> Option<&str> {
        let key_field = schema.collections[coll].key?;
        match &self.collections[coll].columns[key_field].data {
            ColumnData::Str(values) => Some(self.interner.resolve(&values[row])),
            _ => None,
        }
    }

    /// The key a reference was written with: element `idx` of `data` (a
    /// [`ColumnData::Ref`] of a column or of a list's items). `None` for a
    /// null reference, or one to a collection without a string key.
    pub fn ref_key(&self, schema: &DataSchema, data: &ColumnData, idx: usize) -> Option<Sym> {
        let ColumnData::Ref {
            target,
            rows,
            dangling,
        } = data
        else {
            return None;
        };
        match *rows.get(idx)? {
            NO_ROW => dangling.get(&(idx as u32)).copied(),
            row => {
                let key = schema.collections.get(*target as usize)?.key?;
                match &self.collections[*target as usize].columns[key].data {
                    ColumnData::Str(keys) => keys.get(row as usize).copied(),
                    _ => None,
                }
            }
        }
    }

    /// File name, 1-based line and column of record `row` of collection `coll`.
    pub fn position_of(&self, coll: usize, row: usize) -> Option<(&str, usize, usize)> {
        let collection = &self.collections[coll];
        let source = self.sources.get(collection.source?);
        let offset = collection.positions.get(row)? as usize;
        if let Some(first) = collection.first_line {
            return Some((source.name(), first + row, 1));
        }
        if let Some(line_col) = record_line_col(collection, source, row, offset) {
            return Some((source.name(), line_col.0, line_col.1));
        }
        let (line, col) = source.line_cols(&[offset])[0];
        Some((source.name(), line, col))
    }

    /// File name, 1-based line and column of many records at once, one pass
    /// per file (see [`SourceText::line_cols`]).
    pub fn positions_of(&self, records: &[(usize, usize)]) -> Vec<Option<(&str, usize, usize)>> {
        let mut result = vec![None; records.len()];
        let mut by_source: FxHashMap<SourceId, (Vec<usize>, Vec<usize>)> = FxHashMap::default();
        for (idx, (coll, row)) in records.iter().enumerate() {
            let Some(collection) = self.collections.get(*coll) else {
                continue;
            };
            let (Some(source), Some(offset)) = (collection.source, collection.positions.get(*row))
            else {
                continue;
            };
            if let Some(first) = collection.first_line {
                result[idx] = Some((self.sources.get(source).name(), first + row, 1));
                continue;
            }
            let text = self.sources.get(source);
            if let Some((line, col)) = record_line_col(collection, text, *row, offset as usize) {
                result[idx] = Some((text.name(), line, col));
                continue;
            }
            let entry = by_source.entry(source).or_default();
            entry.0.push(idx);
            entry.1.push(offset as usize);
        }
        for (source, (indexes, offsets)) in by_source {
            let text = self.sources.get(source);
            for (idx, (line, col)) in indexes.into_iter().zip(text.line_cols(&offsets)) {
                result[idx] = Some((text.name(), line, col));
            }
        }
        result
    }
}

/// Line and column of record `row` of `collection` (at byte `offset` of
/// `text`) from the lines its loader recorded and the file's line index,
/// without reading the file.
fn record_line_col(
    collection: &Collection,
    text: &SourceText,
    row: usize,
    offset: usize,
) -> Option<(usize, usize)> {
    let (in_block, col) = collection.record_lines.as_ref()?.get(row)?;
    let before = text
        .line_index()?
        .newlines_before_block(offset >> LineIndex::BLOCK_SHIFT)?;
    Some((1 + before + in_block, col))
}

/// Loads the dataset at `path`: a `.json` file, a `.yaml`/`.yml` file, or a
/// directory of CSV files.
pub fn load(path: &Path, schema: &DataSchema) -> Result<Dataset, Vec<DataError>> {
    let _timing = Timing::start("load (all)");
    if path.is_dir() {
        return csv::load_dir(path, schema);
    }
    let text = read_file(path).map_err(|error| vec![error])?;
    match path.extension().and_then(|ext| ext.to_str()) {
        Some("yaml" | "yml") => yaml::load(text, schema),
        _ => json::load(text, schema),
    }
}

/// Reads (memory-maps) a data file.
pub fn read_file(path: &Path) -> Result<SourceText, DataError> {
    let unreadable = |error: std::io::Error| DataError::Unreadable {
        path: path.display().to_string(),
        reason: error.to_string(),
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let len = file.metadata().map_err(unreadable)?.len();
    let name = path.display().to_string();
    if len == 0 {
        return Ok(SourceText::new(name, std::sync::Arc::new(Vec::<u8>::new())));
    }
    // SAFETY: the map is read-only and private; bangfu never writes the
    // user's files, and a file truncated by another process while we read it
    // is outside what any reader can defend against (the same holds for
    // ripgrep and every mmap-based tool).
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(unreadable)?;
    Ok(SourceText::mapped(name, map))
}

/// A value as a loader read it, before it is checked against the field's type.
#[derive(Clone, Copy, Debug)]
pub enum Cell<'a> {
    /// JSON `null`, a YAML null, an empty CSV cell.
    Null,
    /// A boolean token.
    Bool(bool),
    /// An integer token.
    Int(i64),
    /// A float token.
    Number(f64),
    /// A string token.
    Str(&'a str),
}

impl Cell<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Cell::Null => "null",
            Cell::Bool(_) => "a boolean",
            Cell::Int(_) => "an integer",
            Cell::Number(_) => "a number",
            Cell::Str(_) => "a string",
        }
    }
}

/// Why a value was refused; the loader adds the position.
#[derive(Clone, Debug, PartialEq)]
pub enum CellError {
    /// The value has the wrong type.
    WrongType {
        /// What the schema declares.
        expected: String,
        /// What was found.
        found: String,
    },
    /// Null for a required field.
    NullNotAllowed {
        /// What the schema declares.
        expected: String,
    },
    /// Not a valid date.
    InvalidDate(String),
    /// Not a variant of the enum.
    UnknownVariant {
        /// The value.
        value: String,
        /// The variants.
        variants: Vec<String>,
    },
    /// An integer that does not fit in 64 bits.
    OutOfRange(String),
    /// The field was already given in this record.
    Duplicate,
}

impl CellError {
    /// Turns the refusal into a diagnostic at `span` of `src`.
    pub fn at(
        self,
        src: &SourceText,
        span: SourceSpan,
        collection: &str,
        field: &str,
    ) -> DataError {
        let src = src.clone();
        let field = format!("{collection}.{field}");
        match self {
            CellError::WrongType { expected, found } => DataError::WrongType {
                src,
                span,
                field,
                expected,
                found,
            },
            CellError::NullNotAllowed { expected } => DataError::WrongType {
                src,
                span,
                field,
                expected,
                found: "null".into(),
            },
            CellError::InvalidDate(value) => DataError::InvalidDate {
                src,
                span,
                field,
                value,
            },
            CellError::UnknownVariant { value, variants } => {
                let help =
                    diag::help_did_you_mean(&value, "variant", variants.iter().map(String::as_str));
                DataError::UnknownVariant {
                    src,
                    span,
                    field,
                    value,
                    help,
                }
            }
            CellError::OutOfRange(value) => DataError::NumberOutOfRange {
                src,
                span,
                field,
                value,
            },
            CellError::Duplicate => DataError::DuplicateField { src, span, field },
        }
    }
}

/// Every problem the data stage can report.
#[derive(Debug, Error, Diagnostic)]
pub enum DataError {
    /// The JSON text is not well formed.
    #[error("malformed JSON: {message}")]
    #[diagnostic(
        code(E0501),
        help("fix the JSON syntax at the marked position; a truncated file ends early")
    )]
    MalformedJson {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("here")]
        span: SourceSpan,
        /// What the parser said.
        message: String,
    },
    /// The YAML text is not well formed.
    #[error("malformed YAML: {message}")]
    #[diagnostic(code(E0502), help("fix the YAML syntax at the marked position"))]
    MalformedYaml {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("here")]
        span: SourceSpan,
        /// What the parser said.
        message: String,
    },
    /// A CSV file cannot be read, or a row has the wrong number of cells.
    #[error("malformed CSV: {message}")]
    #[diagnostic(code(E0503), help("{help}"))]
    MalformedCsv {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("here")]
        span: SourceSpan,
        /// What is wrong.
        message: String,
        /// How to fix it.
        help: String,
    },
    /// A value has the wrong type.
    #[error("`{field}` should be {expected}, found {found}")]
    #[diagnostic(
        code(E0504),
        help("write {expected} here, or change the field's type in the schema")
    )]
    WrongType {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("{found}")]
        span: SourceSpan,
        /// `collection.field`.
        field: String,
        /// Declared type.
        expected: String,
        /// What was found.
        found: String,
    },
    /// Two records with the same key.
    #[error("duplicate key `{key}` in `{collection}`")]
    #[diagnostic(
        code(E0505),
        help(
            "every record of `{collection}` needs its own key; remove or renumber one of the two"
        )
    )]
    DuplicateKey {
        /// The file.
        #[source_code]
        src: SourceText,
        /// The second record.
        #[label("this record repeats the key")]
        span: SourceSpan,
        /// The first record.
        #[label("first record with this key")]
        first: SourceSpan,
        /// Collection.
        collection: String,
        /// Key.
        key: String,
    },
    /// A required field is absent.
    #[error("record of `{collection}` lacks {fields}")]
    #[diagnostic(
        code(E0506),
        help("add the field, or declare it optional (`T?`) in the schema")
    )]
    MissingField {
        /// The file.
        #[source_code]
        src: SourceText,
        /// The record.
        #[label("this record")]
        span: SourceSpan,
        /// Collection.
        collection: String,
        /// The missing fields, in backticks.
        fields: String,
    },
    /// A field the schema does not declare.
    #[error("unknown field `{field}` in `{collection}`")]
    #[diagnostic(code(E0507), help("{help}"))]
    UnknownField {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("not declared in the schema")]
        span: SourceSpan,
        /// Collection.
        collection: String,
        /// Field.
        field: String,
        /// Did-you-mean.
        help: String,
    },
    /// A collection the schema does not declare.
    #[error("unknown collection `{name}`")]
    #[diagnostic(code(E0508), help("{help}"))]
    UnknownCollection {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("not declared in the schema")]
        span: SourceSpan,
        /// Name.
        name: String,
        /// Did-you-mean.
        help: String,
    },
    /// An integer that does not fit.
    #[error("`{field}`: {value} does not fit in a 64-bit integer")]
    #[diagnostic(
        code(E0509),
        help(
            "integers range from -9223372036854775808 to 9223372036854775807; declare the field `number` for larger values"
        )
    )]
    NumberOutOfRange {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("out of range")]
        span: SourceSpan,
        /// `collection.field`.
        field: String,
        /// The text.
        value: String,
    },
    /// Not a date.
    #[error("`{field}`: `{value}` is not a valid date")]
    #[diagnostic(code(E0510), help("write dates as YYYY-MM-DD, e.g. 2020-06-30"))]
    InvalidDate {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("not a date")]
        span: SourceSpan,
        /// `collection.field`.
        field: String,
        /// The text.
        value: String,
    },
    /// Not a variant.
    #[error("`{field}`: `{value}` is not a variant of the enum")]
    #[diagnostic(code(E0511), help("{help}"))]
    UnknownVariant {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("unknown variant")]
        span: SourceSpan,
        /// `collection.field`.
        field: String,
        /// The text.
        value: String,
        /// Did-you-mean.
        help: String,
    },
    /// The file cannot be read.
    #[error("cannot read `{path}`: {reason}")]
    #[diagnostic(
        code(E0512),
        help(
            "check the path and its permissions; DATA is a .json, .yaml or .yml file, or a directory of .csv files"
        )
    )]
    Unreadable {
        /// Path.
        path: String,
        /// OS error.
        reason: String,
    },
    /// The same field twice in one record.
    #[error("`{field}` is given twice in one record")]
    #[diagnostic(code(E0513), help("keep one of the two values"))]
    DuplicateField {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("second value")]
        span: SourceSpan,
        /// `collection.field`.
        field: String,
    },
    /// The same collection twice in one document.
    ///
    /// `{"people": [], "people": []}` triggers it.
    #[error("collection `{name}` is given twice")]
    #[diagnostic(code(E0514), help("merge the records of both into one list"))]
    DuplicateCollection {
        /// The file.
        #[source_code]
        src: SourceText,
        /// The second occurrence.
        #[label("given again here")]
        span: SourceSpan,
        /// Name.
        name: String,
    },
    /// A reference whose key names no record (only with `--strict-refs`;
    /// otherwise rules read it as null).
    #[error(transparent)]
    #[diagnostic(transparent)]
    DanglingReference(Box<DanglingReference>),
}

/// A reference whose key names no record (only with `--strict-refs`).
///
/// `{"people": [{"id": "a", "team": "t9"}], "teams": []}` triggers it.
#[derive(Debug, Error, Diagnostic)]
#[error("`{field}` refers to `{key}`, but no record of `{target}` has that key")]
#[diagnostic(code(E0515), help("{help}"))]
pub struct DanglingReference {
    /// The file.
    #[source_code]
    pub src: SourceText,
    /// The record holding the reference.
    #[label("this record")]
    pub span: SourceSpan,
    /// `collection.field`.
    pub field: String,
    /// The key as written.
    pub key: String,
    /// The referenced collection.
    pub target: String,
    /// Did-you-mean, or how to fix it.
    pub help: String,
}

impl DataError {
    /// A reference naming no record (`--strict-refs`).
    pub fn dangling(
        src: SourceText,
        span: SourceSpan,
        field: String,
        key: String,
        target: String,
        help: String,
    ) -> DataError {
        DataError::DanglingReference(Box::new(DanglingReference {
            src,
            span,
            field,
            key,
            target,
            help,
        }))
    }
}

/// At most this many data errors are collected before a loader stops.
pub const MAX_ERRORS: usize = 50;

/// The one way the serial loaders store values: begin a record, set its
/// fields, end it (the methods of the [`Chunk`] it derefs to). Loaders that
/// read in parallel fill chunks of their own and hand them over with
/// [`DatasetBuilder::push_chunk`], in document order.
///
/// The builder checks every value against the field's declared type, so the
/// three loaders share one notion of what the schema allows.
pub struct DatasetBuilder<'s> {
    context: LoadContext<'s>,
    current: Chunk<'s>,
    sealed: Vec<Chunk<'s>>,
    sealed_errors: usize,
    sources: SourceMap,
}

impl<'s> std::ops::Deref for DatasetBuilder<'s> {
    type Target = Chunk<'s>;
    fn deref(&self) -> &Chunk<'s> {
        &self.current
    }
}

impl<'s> std::ops::DerefMut for DatasetBuilder<'s> {
    fn deref_mut(&mut self) -> &mut Chunk<'s> {
        &mut self.current
    }
}

impl<'s> DatasetBuilder<'s> {
    /// A builder for data of this schema.
    pub fn new(schema: &'s DataSchema) -> DatasetBuilder<'s> {
        let context = LoadContext::new(schema);
        DatasetBuilder {
            current: Chunk::new(&context),
            context,
            sealed: Vec::new(),
            sealed_errors: 0,
            sources: SourceMap::new(),
        }
    }

    /// A builder for data of this schema read from about `bytes` bytes of
    /// files. (Chunks size their tables as they go; the hint is kept for
    /// callers of the older API.)
    pub fn with_size_hint(schema: &'s DataSchema, _bytes: usize) -> DatasetBuilder<'s> {
        DatasetBuilder::new(schema)
    }

    /// What parallel chunks of this load share.
    pub(crate) fn context(&self) -> &LoadContext<'s> {
        &self.context
    }

    /// Registers a data file; records refer to it by the returned id.
    pub fn add_source(&mut self, text: SourceText) -> SourceId {
        self.sources.add(text)
    }

    /// A registered file.
    pub fn source(&self, id: SourceId) -> &SourceText {
        self.sources.get(id)
    }

    /// Whether the error limit is reached; loaders stop reading then.
    pub fn too_many_errors(&self) -> bool {
        self.sealed_errors + self.current.error_count() >= MAX_ERRORS
    }

    /// Records an error, unless the limit is already reached.
    pub fn report(&mut self, error: DataError) {
        if !self.too_many_errors() {
            self.current.report(error);
        }
    }

    /// Appends a chunk a parallel loader filled; its records and errors
    /// follow everything reported so far.
    pub fn push_chunk(&mut self, chunk: Chunk<'s>) {
        let current = std::mem::replace(&mut self.current, Chunk::new(&self.context));
        self.sealed_errors += current.error_count() + chunk.error_count();
        self.sealed.push(current);
        self.sealed.push(chunk);
    }

    /// Checks keys, resolves references and returns the dataset, or every
    /// error found while loading.
    pub fn finish(mut self, format: DataFormat) -> Result<Dataset, Vec<DataError>> {
        self.sealed.push(self.current);
        chunk::merge(self.context.schema, self.sealed, self.sources, format)
    }
}

/// Reads text as a value of `ty` (CSV cells, YAML plain scalars).
fn text_cell(ty: ScalarType, text: &str) -> Result<Cell<'_>, CellError> {
    if let Some(cell) = text_value(ty, text) {
        return Ok(cell);
    }
    Err(match ty {
        ScalarType::Int if is_integer_text(text) => CellError::OutOfRange(text.into()),
        _ => CellError::WrongType {
            expected: scalar_plain_name(ty).into(),
            found: format!("`{text}`"),
        },
    })
}

/// The value of `text` read as a `ty`, if it is one; [`text_cell`] says why
/// not. Cheap on success: no message is made.
#[inline(always)]
fn text_value(ty: ScalarType, text: &str) -> Option<Cell<'_>> {
    match ty {
        ScalarType::Int => text.parse::<i64>().ok().map(Cell::Int),
        ScalarType::Number => text
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(Cell::Number),
        ScalarType::Bool => match text {
            "true" => Some(Cell::Bool(true)),
            "false" => Some(Cell::Bool(false)),
            _ => None,
        },
        ScalarType::String | ScalarType::Date | ScalarType::Enum(_) | ScalarType::Ref(_) => {
            Some(Cell::Str(text))
        }
    }
}

/// Whether `text` is an optionally signed run of digits (so a failed `i64`
/// parse means it is out of range, not malformed).
fn is_integer_text(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn scalar_plain_name(ty: ScalarType) -> &'static str {
    match ty {
        ScalarType::Int => "int",
        ScalarType::Number => "number",
        ScalarType::Bool => "bool (`true` or `false`)",
        ScalarType::String => "string",
        ScalarType::Date => "date",
        ScalarType::Enum(_) => "enum",
        ScalarType::Ref(_) => "ref",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for text in ["1970-01-01", "2000-02-29", "2023-03-23", "1969-12-31"] {
            let days = parse_date(text);
            assert!(days.is_some(), "{text}");
            assert_eq!(format_date(days.unwrap_or_default()), text);
        }
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("2023-13-01"), None);
        assert_eq!(parse_date("20230101"), None);
    }
}

#[cfg(test)]
mod positions_tests {
    use super::Positions;

    /// Offsets stay four bytes each until one needs more; every offset and
    /// every "none" reads back the same before and after widening, and
    /// joined pieces equal the offsets pushed one by one.
    #[test]
    fn positions_widen_at_the_first_large_offset() {
        let offsets = [
            Some(0),
            None,
            Some(u64::from(u32::MAX) - 1),
            Some(u64::from(u32::MAX)),
            Some(1 << 40),
            None,
            Some(7),
        ];
        let mut positions = Positions::default();
        for (n, offset) in offsets.iter().enumerate() {
            positions.push(*offset);
            assert_eq!(positions.to_vec(), offsets[..=n], "after {n} pushes");
            assert_eq!(
                matches!(positions, Positions::Narrow(_)),
                n < 3,
                "after {n} pushes"
            );
        }
        let mut narrow = Positions::default();
        narrow.push(Some(5));
        narrow.insert(0, None);
        narrow.insert(1, Some(9));
        narrow.remove(2);
        assert_eq!(narrow.to_vec(), [None, Some(9)]);
        let pieces = vec![narrow.clone(), positions.clone(), narrow.clone()];
        let joined = Positions::join(pieces);
        let expected: Vec<Option<u64>> =
            [narrow.to_vec(), positions.to_vec(), narrow.to_vec()].concat();
        assert_eq!(joined.to_vec(), expected);
        let all_narrow = Positions::join(vec![narrow.clone(), narrow.clone()]);
        assert!(matches!(all_narrow, Positions::Narrow(_)));
        assert_eq!(all_narrow.to_vec(), [None, Some(9), None, Some(9)]);
    }
}
