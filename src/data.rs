//! Stage `data`: loads a dataset (one JSON document, one YAML document, or a
//! directory of CSV files) into typed columns, checked against the schema the
//! policies declare.
//!
//! Takes a [`DataSchema`] (from `check`) and files; gives a [`Dataset`]:
//! per collection one typed [`Column`] per field, strings interned into one
//! [`Interner`], references resolved to row indexes, and for every record the
//! byte offset where it starts in its file.
//!
//! **Invariants:** no generic value tree is ever built: loaders push each
//! value straight into its column through [`DatasetBuilder`]. Positions are
//! kept as byte offsets and turned into line and column only when reported.
//! Fields no rule reads (`FieldSchema::keep == false`) are type-checked and
//! dropped. This module knows no collection or field by name.

pub mod csv;
pub mod edit;
pub mod json;
pub mod refs;
pub mod yaml;

#[cfg(test)]
mod fixture;

use std::path::Path;

use miette::{Diagnostic, SourceSpan};
use rustc_hash::FxHashMap;
use thiserror::Error;

use crate::diag;
use crate::source::{SourceId, SourceMap, SourceText};

/// An interned string.
pub type Sym = lasso::Spur;

/// The string interner of a dataset.
///
/// Hashed with Fx rather than SipHash: interning is a third of a JSON load
/// with SipHash, and the strings come from the user's own data files, so
/// hash flooding is not a threat worth paying for.
pub type Interner = lasso::Rodeo<Sym, std::hash::BuildHasherDefault<rustc_hash::FxHasher>>;

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
    /// Whether a rule reads it; unread fields are checked and dropped.
    pub keep: bool,
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

/// Values of one field for every record of a collection.
#[derive(Clone, Debug)]
pub enum ColumnData {
    /// Integers.
    Int(Vec<i64>),
    /// Floats.
    Number(Vec<f64>),
    /// Booleans.
    Bool(Vec<bool>),
    /// Interned strings.
    Str(Vec<Sym>),
    /// Days since 1970-01-01.
    Date(Vec<i32>),
    /// Variant indexes.
    Enum(Vec<u16>),
    /// References: the key as written, and the row it names ([`NO_ROW`] when
    /// null or dangling; filled in by [`DatasetBuilder::finish`]).
    Ref {
        /// Target collection.
        target: u32,
        /// Keys as written.
        keys: Vec<Sym>,
        /// Resolved rows.
        rows: Vec<u32>,
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

    fn set_null(&mut self, row: usize) {
        let word = row / 64;
        if self.nulls.len() <= word {
            self.nulls.resize(word + 1, 0);
        }
        self.nulls[word] |= 1 << (row % 64);
        self.any_null = true;
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
    pub positions: Vec<u64>,
    /// The file the records came from (none for an absent collection).
    pub source: Option<SourceId>,
    /// Row of each key (empty for a collection without a key).
    pub key_index: FxHashMap<Sym, u32>,
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

    /// File name, 1-based line and column of record `row` of collection `coll`.
    pub fn position_of(&self, coll: usize, row: usize) -> Option<(&str, usize, usize)> {
        let collection = &self.collections[coll];
        let source = self.sources.get(collection.source?);
        let offset = *collection.positions.get(row)? as usize;
        let (line, col) = source.line_col(offset);
        Some((source.name(), line, col))
    }
}

impl Dataset {
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
            let entry = by_source.entry(source).or_default();
            entry.0.push(idx);
            entry.1.push(*offset as usize);
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

/// Loads the dataset at `path`: a `.json` file, a `.yaml`/`.yml` file, or a
/// directory of CSV files.
pub fn load(path: &Path, schema: &DataSchema) -> Result<Dataset, Vec<DataError>> {
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
    Ok(SourceText::new(name, std::sync::Arc::new(map)))
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

struct CollectionBuilder {
    columns: Vec<Column>,
    list_open: Vec<bool>,
    given: Vec<bool>,
    positions: Vec<u64>,
    source: Option<SourceId>,
    len: usize,
}

/// The one way loaders store values: begin a record, set its fields, end it.
///
/// The builder checks every value against the field's declared type, so the
/// three loaders share one notion of what the schema allows.
pub struct DatasetBuilder<'s> {
    schema: &'s DataSchema,
    interner: Interner,
    collections: Vec<CollectionBuilder>,
    sources: SourceMap,
    /// Errors collected so far (loaders push theirs here too).
    pub errors: Vec<DataError>,
}

fn empty_column(ty: FieldType, keep: bool) -> ColumnData {
    if !keep {
        return ColumnData::Skipped;
    }
    match ty {
        FieldType::Scalar(scalar) => empty_scalar_column(scalar),
        FieldType::List(scalar) => ColumnData::List {
            offsets: vec![0],
            items: Box::new(empty_scalar_column(scalar)),
        },
    }
}

fn empty_scalar_column(ty: ScalarType) -> ColumnData {
    match ty {
        ScalarType::Int => ColumnData::Int(Vec::new()),
        ScalarType::Number => ColumnData::Number(Vec::new()),
        ScalarType::Bool => ColumnData::Bool(Vec::new()),
        ScalarType::String => ColumnData::Str(Vec::new()),
        ScalarType::Date => ColumnData::Date(Vec::new()),
        ScalarType::Enum(_) => ColumnData::Enum(Vec::new()),
        ScalarType::Ref(target) => ColumnData::Ref {
            target,
            keys: Vec::new(),
            rows: Vec::new(),
        },
    }
}

impl<'s> DatasetBuilder<'s> {
    /// A builder for data of this schema.
    pub fn new(schema: &'s DataSchema) -> DatasetBuilder<'s> {
        DatasetBuilder::with_size_hint(schema, 0)
    }

    /// A builder for data of this schema read from about `bytes` bytes of
    /// files: the interner is sized up front, so it is not rehashed again and
    /// again while a large file loads.
    pub fn with_size_hint(schema: &'s DataSchema, bytes: usize) -> DatasetBuilder<'s> {
        // About one distinct string per 128 bytes of ledger-like data; a
        // wrong guess only costs a rehash or a few unused slots.
        let strings = (bytes / 128).max(16);
        let capacity = lasso::Capacity::new(
            strings,
            std::num::NonZeroUsize::MIN.saturating_add(bytes / 8),
        );
        let mut interner = Interner::with_capacity_and_hasher(capacity, Default::default());
        interner.get_or_intern_static("");
        let collections = schema
            .collections
            .iter()
            .map(|coll| CollectionBuilder {
                columns: coll
                    .fields
                    .iter()
                    .map(|f| {
                        Column::new(empty_column(
                            f.ty,
                            f.keep || coll.field_index(&f.name) == coll.key,
                        ))
                    })
                    .collect(),
                list_open: vec![false; coll.fields.len()],
                given: vec![false; coll.fields.len()],
                positions: Vec::new(),
                source: None,
                len: 0,
            })
            .collect();
        DatasetBuilder {
            schema,
            interner,
            collections,
            sources: SourceMap::new(),
            errors: Vec::new(),
        }
    }

    /// The schema being loaded.
    pub fn schema(&self) -> &'s DataSchema {
        self.schema
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
        self.errors.len() >= MAX_ERRORS
    }

    /// Index of a collection, by name.
    pub fn collection_index(&self, name: &str) -> Option<usize> {
        self.schema.collection_index(name)
    }

    /// Index of a field of collection `coll`, by name.
    pub fn field_index(&self, coll: usize, name: &str) -> Option<usize> {
        self.schema.collections[coll].field_index(name)
    }

    /// An error for an unknown collection name, with did-you-mean.
    pub fn unknown_collection(&self, src: &SourceText, span: SourceSpan, name: &str) -> DataError {
        let help = diag::help_did_you_mean(
            name,
            "collection",
            self.schema.collections.iter().map(|c| c.name.as_str()),
        );
        DataError::UnknownCollection {
            src: src.clone(),
            span,
            name: name.to_string(),
            help,
        }
    }

    /// An error for an unknown field name, with did-you-mean.
    pub fn unknown_field(
        &self,
        src: &SourceText,
        span: SourceSpan,
        coll: usize,
        name: &str,
    ) -> DataError {
        let collection = &self.schema.collections[coll];
        let help = diag::help_did_you_mean(
            name,
            "field",
            collection.fields.iter().map(|f| f.name.as_str()),
        );
        DataError::UnknownField {
            src: src.clone(),
            span,
            collection: collection.name.clone(),
            field: name.to_string(),
            help,
        }
    }

    /// Index of a field of collection `coll`, by name, trying field `hint`
    /// first: records usually list their fields in schema order, so a loader
    /// that passes "one after the previous field" rarely compares twice.
    pub fn field_index_from(&self, coll: usize, name: &str, hint: usize) -> Option<usize> {
        let fields = &self.schema.collections[coll].fields;
        match fields.get(hint) {
            Some(field) if field.name == name => Some(hint),
            _ => fields.iter().position(|f| f.name == name),
        }
    }

    /// An error for a record of `coll` that lacks the required fields `names`.
    pub fn missing_fields(
        &self,
        src: &SourceText,
        span: SourceSpan,
        coll: usize,
        names: &[&str],
    ) -> DataError {
        let fields = names
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ");
        DataError::MissingField {
            src: src.clone(),
            span,
            collection: self.schema.collections[coll].name.clone(),
            fields,
        }
    }

    /// An error for a collection given a second time.
    pub fn duplicate_collection(
        &self,
        src: &SourceText,
        span: SourceSpan,
        coll: usize,
    ) -> DataError {
        DataError::DuplicateCollection {
            src: src.clone(),
            span,
            name: self.schema.collections[coll].name.clone(),
        }
    }

    /// Records an error, unless the limit is already reached.
    pub fn report(&mut self, error: DataError) {
        if !self.too_many_errors() {
            self.errors.push(error);
        }
    }

    /// Starts a record of `coll` at byte `offset` of file `src`.
    pub fn begin_record(&mut self, coll: usize, src: SourceId, offset: u64) {
        let builder = &mut self.collections[coll];
        builder.source.get_or_insert(src);
        builder.positions.push(offset);
        builder.given.iter_mut().for_each(|given| *given = false);
    }

    /// Sets field `field` of the current record of `coll`.
    ///
    /// On a refused value the slot is filled with a default, so every column
    /// keeps one value per record and later records stay aligned.
    pub fn set(&mut self, coll: usize, field: usize, cell: Cell<'_>) -> Result<(), CellError> {
        let field_schema = &self.schema.collections[coll].fields[field];
        let builder = &mut self.collections[coll];
        if std::mem::replace(&mut builder.given[field], true) {
            return Err(CellError::Duplicate);
        }
        let row = builder.len;
        let column = &mut builder.columns[field];
        let scalar = match field_schema.ty {
            FieldType::Scalar(scalar) => scalar,
            FieldType::List(_) => {
                return match cell {
                    Cell::Null if field_schema.optional => {
                        column.set_null(row);
                        Ok(())
                    }
                    // A null required list is an empty list, as an absent one is.
                    Cell::Null => Ok(()),
                    other => Err(CellError::WrongType {
                        expected: self.schema.field_type_name(field_schema.ty),
                        found: other.kind().into(),
                    }),
                };
            }
        };
        if let Cell::Null = cell {
            if !field_schema.optional {
                push_default(&mut column.data);
                return Err(CellError::NullNotAllowed {
                    expected: self.schema.scalar_name(scalar),
                });
            }
            column.set_null(row);
            push_default(&mut column.data);
            return Ok(());
        }
        let result = push_scalar(
            self.schema,
            &mut self.interner,
            &mut column.data,
            scalar,
            cell,
        );
        if result.is_err() {
            push_default(&mut column.data);
        }
        result
    }

    /// Sets field `field` from text (CSV cells, YAML plain scalars), parsed
    /// by the field's declared type.
    pub fn set_text(&mut self, coll: usize, field: usize, text: &str) -> Result<(), CellError> {
        let scalar = match self.schema.collections[coll].fields[field].ty {
            FieldType::Scalar(scalar) => scalar,
            FieldType::List(_) => return self.set(coll, field, Cell::Str(text)),
        };
        match text_cell(scalar, text) {
            Ok(cell) => self.set(coll, field, cell),
            Err(error) => Err(self.refuse(coll, field, error)),
        }
    }

    /// Starts the list value of field `field` of the current record.
    pub fn begin_list(&mut self, coll: usize, field: usize) -> Result<(), CellError> {
        if !matches!(
            self.schema.collections[coll].fields[field].ty,
            FieldType::List(_)
        ) {
            return self.set_other(coll, field, "a list");
        }
        let builder = &mut self.collections[coll];
        if std::mem::replace(&mut builder.given[field], true) {
            return Err(CellError::Duplicate);
        }
        builder.list_open[field] = true;
        Ok(())
    }

    /// Sets field `field` to a value no [`Cell`] can hold (`found`: "an
    /// object", "a list"). Always an error; see [`DatasetBuilder::refuse`].
    pub fn set_other(&mut self, coll: usize, field: usize, found: &str) -> Result<(), CellError> {
        let expected = self
            .schema
            .field_type_name(self.schema.collections[coll].fields[field].ty);
        Err(self.refuse(
            coll,
            field,
            CellError::WrongType {
                expected,
                found: found.into(),
            },
        ))
    }

    /// Counts field `field` as given although its value was refused with
    /// `error` before reaching the builder: the column gets a default, so it
    /// stays aligned, and the record is not also reported as lacking the
    /// field. Returns `error`, or [`CellError::Duplicate`] if the field was
    /// already given.
    pub fn refuse(&mut self, coll: usize, field: usize, error: CellError) -> CellError {
        let builder = &mut self.collections[coll];
        if std::mem::replace(&mut builder.given[field], true) {
            return CellError::Duplicate;
        }
        push_default(&mut builder.columns[field].data);
        error
    }

    /// Appends an element to the open list of field `field`. The cell must
    /// already have the element's type (JSON values, quoted YAML scalars).
    pub fn push_item(
        &mut self,
        coll: usize,
        field: usize,
        cell: Cell<'_>,
    ) -> Result<(), CellError> {
        let FieldType::List(scalar) = self.schema.collections[coll].fields[field].ty else {
            return Err(CellError::WrongType {
                expected: "a list".into(),
                found: cell.kind().into(),
            });
        };
        if let Cell::Null = cell {
            return Err(CellError::NullNotAllowed {
                expected: self.schema.scalar_name(scalar),
            });
        }
        match &mut self.collections[coll].columns[field].data {
            ColumnData::List { items, .. } => {
                push_scalar(self.schema, &mut self.interner, items, scalar, cell)
            }
            // A dropped field is still checked.
            _ => push_scalar(
                self.schema,
                &mut self.interner,
                &mut ColumnData::Skipped,
                scalar,
                cell,
            ),
        }
    }

    /// Appends an element given as text (CSV list cells, YAML plain
    /// scalars), parsed by the list's element type.
    pub fn push_item_text(
        &mut self,
        coll: usize,
        field: usize,
        text: &str,
    ) -> Result<(), CellError> {
        let FieldType::List(scalar) = self.schema.collections[coll].fields[field].ty else {
            return Err(CellError::WrongType {
                expected: "a list".into(),
                found: "a string".into(),
            });
        };
        let cell = text_cell(scalar, text)?;
        self.push_item(coll, field, cell)
    }

    /// Closes the open list of field `field`.
    pub fn end_list(&mut self, coll: usize, field: usize) {
        let builder = &mut self.collections[coll];
        builder.list_open[field] = false;
    }

    /// Ends the current record of `coll`; returns the names of required
    /// fields it lacks (the record is kept, with defaults, so loading can go on).
    pub fn end_record(&mut self, coll: usize) -> Vec<&'s str> {
        let schema = &self.schema.collections[coll];
        let builder = &mut self.collections[coll];
        let row = builder.len;
        let mut missing = Vec::new();
        for (field, field_schema) in schema.fields.iter().enumerate() {
            let column = &mut builder.columns[field];
            if !builder.given[field] {
                if !field_schema.optional && !matches!(field_schema.ty, FieldType::List(_)) {
                    missing.push(field_schema.name.as_str());
                }
                if field_schema.optional {
                    column.set_null(row);
                }
                push_default(&mut column.data);
            }
            if let ColumnData::List { offsets, items } = &mut column.data {
                offsets.push(column_len(items) as u32);
            }
        }
        builder.len += 1;
        missing
    }

    /// Checks keys, resolves references and returns the dataset, or every
    /// error found while loading.
    pub fn finish(mut self, format: DataFormat) -> Result<Dataset, Vec<DataError>> {
        let mut collections: Vec<Collection> = Vec::with_capacity(self.collections.len());
        for (coll, builder) in self.collections.into_iter().enumerate() {
            let mut key_index = FxHashMap::default();
            if let Some(key_field) = self.schema.collections[coll].key
                && let ColumnData::Str(keys) = &builder.columns[key_field].data
            {
                key_index.reserve(keys.len());
                for (row, key) in keys.iter().enumerate() {
                    if let Some(first) = key_index.insert(*key, row as u32) {
                        key_index.insert(*key, first);
                        if self.errors.len() < MAX_ERRORS
                            && let Some(src) = builder.source
                        {
                            let text = self.sources.get(src);
                            self.errors.push(DataError::DuplicateKey {
                                src: text.clone(),
                                span: SourceSpan::new((builder.positions[row] as usize).into(), 1),
                                first: SourceSpan::new(
                                    (builder.positions[first as usize] as usize).into(),
                                    1,
                                ),
                                collection: self.schema.collections[coll].name.clone(),
                                key: self.interner.resolve(key).to_string(),
                            });
                        }
                    }
                }
            }
            collections.push(Collection {
                len: builder.len,
                columns: builder.columns,
                positions: builder.positions,
                source: builder.source,
                key_index,
            });
        }
        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        // Resolve references to rows now that every key is known.
        let key_indexes: Vec<FxHashMap<Sym, u32>> =
            collections.iter().map(|c| c.key_index.clone()).collect();
        for collection in &mut collections {
            for column in &mut collection.columns {
                resolve_refs(&mut column.data, &key_indexes);
            }
        }
        Ok(Dataset {
            collections,
            interner: self.interner,
            sources: self.sources,
            format,
        })
    }
}

fn resolve_refs(data: &mut ColumnData, key_indexes: &[FxHashMap<Sym, u32>]) {
    match data {
        ColumnData::Ref { target, keys, rows } => {
            let index = &key_indexes[*target as usize];
            *rows = keys
                .iter()
                .map(|key| index.get(key).copied().unwrap_or(NO_ROW))
                .collect();
        }
        ColumnData::List { items, .. } => resolve_refs(items, key_indexes),
        _ => {}
    }
}

fn column_len(data: &ColumnData) -> usize {
    match data {
        ColumnData::Int(v) => v.len(),
        ColumnData::Number(v) => v.len(),
        ColumnData::Bool(v) => v.len(),
        ColumnData::Str(v) => v.len(),
        ColumnData::Date(v) => v.len(),
        ColumnData::Enum(v) => v.len(),
        ColumnData::Ref { keys, .. } => keys.len(),
        ColumnData::List { offsets, .. } => offsets.len() - 1,
        ColumnData::Skipped => 0,
    }
}

fn push_default(data: &mut ColumnData) {
    match data {
        ColumnData::Int(v) => v.push(0),
        ColumnData::Number(v) => v.push(0.0),
        ColumnData::Bool(v) => v.push(false),
        ColumnData::Str(v) => v.push(Sym::default()),
        ColumnData::Date(v) => v.push(0),
        ColumnData::Enum(v) => v.push(0),
        ColumnData::Ref { keys, .. } => keys.push(Sym::default()),
        ColumnData::List { .. } | ColumnData::Skipped => {}
    }
}

/// Reads text as a value of `ty` (CSV cells, YAML plain scalars).
fn text_cell(ty: ScalarType, text: &str) -> Result<Cell<'_>, CellError> {
    let wrong = |found: &str| CellError::WrongType {
        expected: scalar_plain_name(ty).into(),
        found: found.into(),
    };
    match ty {
        ScalarType::Int => match text.parse::<i64>() {
            Ok(value) => Ok(Cell::Int(value)),
            Err(_) if is_integer_text(text) => Err(CellError::OutOfRange(text.into())),
            Err(_) => Err(wrong(&format!("`{text}`"))),
        },
        ScalarType::Number => text
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(Cell::Number)
            .ok_or_else(|| wrong(&format!("`{text}`"))),
        ScalarType::Bool => match text {
            "true" => Ok(Cell::Bool(true)),
            "false" => Ok(Cell::Bool(false)),
            _ => Err(wrong(&format!("`{text}`"))),
        },
        ScalarType::String | ScalarType::Date | ScalarType::Enum(_) | ScalarType::Ref(_) => {
            Ok(Cell::Str(text))
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

fn push_scalar(
    schema: &DataSchema,
    interner: &mut Interner,
    data: &mut ColumnData,
    ty: ScalarType,
    cell: Cell<'_>,
) -> Result<(), CellError> {
    let wrong = || CellError::WrongType {
        expected: schema.scalar_name(ty),
        found: cell.kind().into(),
    };
    match (ty, cell) {
        (ScalarType::Int, Cell::Int(value)) => push_if(data, |d| {
            if let ColumnData::Int(v) = d {
                v.push(value)
            }
        }),
        (ScalarType::Number, Cell::Int(value)) => push_if(data, |d| {
            if let ColumnData::Number(v) = d {
                v.push(value as f64)
            }
        }),
        (ScalarType::Number, Cell::Number(value)) => push_if(data, |d| {
            if let ColumnData::Number(v) = d {
                v.push(value)
            }
        }),
        (ScalarType::Bool, Cell::Bool(value)) => push_if(data, |d| {
            if let ColumnData::Bool(v) = d {
                v.push(value)
            }
        }),
        (ScalarType::String, Cell::Str(text)) => {
            if let ColumnData::Str(v) = data {
                v.push(interner.get_or_intern(text));
            }
            Ok(())
        }
        (ScalarType::Ref(_), Cell::Str(text)) => {
            if let ColumnData::Ref { keys, .. } = data {
                keys.push(interner.get_or_intern(text));
            }
            Ok(())
        }
        (ScalarType::Date, Cell::Str(text)) => {
            let days = parse_date(text).ok_or_else(|| CellError::InvalidDate(text.into()))?;
            push_if(data, |d| {
                if let ColumnData::Date(v) = d {
                    v.push(days)
                }
            })
        }
        (ScalarType::Enum(idx), Cell::Str(text)) => {
            let variants = &schema.enums[idx as usize].variants;
            let variant = variants.iter().position(|v| v == text).ok_or_else(|| {
                CellError::UnknownVariant {
                    value: text.into(),
                    variants: variants.clone(),
                }
            })?;
            push_if(data, |d| {
                if let ColumnData::Enum(v) = d {
                    v.push(variant as u16)
                }
            })
        }
        _ => Err(wrong()),
    }
}

fn push_if(data: &mut ColumnData, push: impl FnOnce(&mut ColumnData)) -> Result<(), CellError> {
    push(data);
    Ok(())
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
