//! One chunk of a load: the records one thread read from one stretch of a
//! file, and the merge of every chunk into a [`Dataset`].
//!
//! A [`Chunk`] is what the old single builder was: begin a record, set its
//! fields, end it; every value is checked against the field's declared type.
//! It owns its columns, its strings ([`LocalStrings`]: one table for kept
//! strings, one for strings only shown, one per referenced collection for
//! reference keys) and its errors, so chunks are filled on different threads
//! without any lock.
//!
//! [`merge`] puts the chunks together in document order: kept strings are
//! made canonical (shown ones are not: see `strings`), columns concatenated,
//! keys checked for duplicates, references
//! resolved to rows (each distinct key once per chunk), newline counts handed
//! to the sources. The reference keys' strings are dropped then: a resolved
//! reference is its row, and only a dangling one keeps its key as written.

use std::sync::Arc;

use hashbrown::HashTable;
use miette::SourceSpan;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::strings::{self, LocalStrings, Segment, SegmentIds, Sym};
use super::{
    Bits, Cell, CellError, Collection, CollectionSchema, Column, ColumnData, DataError, DataFormat,
    DataSchema, Dataset, FieldType, KeyIndex, MAX_ERRORS, NO_ROW, Positions, RecordLines,
    ScalarType, text_cell, text_value,
};
use crate::diag;
use crate::source::{LineIndex, SourceId, SourceMap, SourceText};

/// How one field is stored: the plan for its values, made once per load so
/// that storing a value ([`Chunk::try_set`]) looks nothing else up.
#[derive(Clone, Copy, Debug)]
struct Slot {
    ty: FieldType,
    optional: bool,
    /// Whether its strings are appended as met, not interned (the key, and
    /// fields only shown).
    unique: bool,
    /// Whether its strings go to the table of strings only shown.
    shown: bool,
}

/// Per collection: its fields, precomputed for the per-value path.
#[derive(Debug)]
struct Layout {
    slots: Vec<Slot>,
    /// Whether each field is stored (kept or shown by the plan, or the key).
    store: Vec<bool>,
    /// Words of the "given" bitset.
    words: usize,
    /// Every field, as a bitset.
    all: Vec<u64>,
    /// List fields.
    lists: Vec<usize>,
}

/// What every chunk of one load shares.
#[derive(Clone, Debug)]
pub(crate) struct LoadContext<'s> {
    pub(crate) schema: &'s DataSchema,
    ids: Arc<SegmentIds>,
    layouts: Arc<Vec<Layout>>,
}

impl<'s> LoadContext<'s> {
    pub(crate) fn new(schema: &'s DataSchema) -> LoadContext<'s> {
        let layouts = schema
            .collections
            .iter()
            .map(|coll| {
                let n = coll.fields.len();
                let words = n.div_ceil(64).max(1);
                let mut all = vec![0u64; words];
                for field in 0..n {
                    all[field / 64] |= 1 << (field % 64);
                }
                Layout {
                    slots: coll
                        .fields
                        .iter()
                        .enumerate()
                        .map(|(idx, f)| Slot {
                            ty: f.ty,
                            optional: f.optional,
                            unique: coll.key == Some(idx) || only_shown(coll, idx),
                            shown: only_shown(coll, idx),
                        })
                        .collect(),
                    store: coll
                        .fields
                        .iter()
                        .enumerate()
                        .map(|(idx, f)| f.keep || f.shown || coll.key == Some(idx))
                        .collect(),
                    words,
                    all,
                    lists: coll
                        .fields
                        .iter()
                        .enumerate()
                        .filter(|(_, f)| matches!(f.ty, FieldType::List(_)))
                        .map(|(idx, _)| idx)
                        .collect(),
                }
            })
            .collect();
        LoadContext {
            schema,
            ids: SegmentIds::new(),
            layouts: Arc::new(layouts),
        }
    }
}

/// An error whose message needs a number only the merge knows (a CSV row
/// number counts the rows of every earlier chunk of the file).
type RowError = Box<dyn FnOnce(u64) -> DataError + Send + Sync>;

enum Pending {
    Ready(DataError),
    Row(u64, RowError),
}

/// The records of one collection in one chunk.
#[derive(Debug)]
struct Part {
    columns: Vec<Column>,
    given: Vec<u64>,
    positions: Positions,
    /// Lines of the records, when [`Chunk::record_lines`] found them.
    lines: RecordLines,
    source: Option<SourceId>,
    len: usize,
}

/// Newlines per 4 KiB block over `start..end` of a file.
#[derive(Debug)]
struct LineCount {
    source: SourceId,
    start: usize,
    end: usize,
    first_block: usize,
    counts: Vec<u16>,
}

/// The records one thread reads from one stretch of a file.
pub struct Chunk<'s> {
    schema: &'s DataSchema,
    /// About how many distinct reference keys to expect (table size).
    ref_capacity: usize,
    ids: Arc<SegmentIds>,
    layouts: Arc<Vec<Layout>>,
    strings: LocalStrings,
    /// Strings of the fields the plan only shows: appended as met, like keys
    /// (list items are deduplicated), and never made canonical.
    shown: LocalStrings,
    /// Reference keys, per referenced collection.
    refs: Vec<Option<LocalStrings>>,
    parts: Vec<Part>,
    errors: Vec<Pending>,
    lines: Vec<LineCount>,
}

impl std::fmt::Debug for Chunk<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunk")
            .field("records", &self.parts.iter().map(|p| p.len).sum::<usize>())
            .field("errors", &self.errors.len())
            .finish()
    }
}

fn empty_column(ty: FieldType, store: bool) -> ColumnData {
    if !store {
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
        ScalarType::Bool => ColumnData::Bool(Bits::default()),
        ScalarType::String => ColumnData::Str(Vec::new()),
        ScalarType::Date => ColumnData::Date(Vec::new()),
        ScalarType::Enum(_) => ColumnData::Enum(Vec::new()),
        ScalarType::Ref(target) => ColumnData::Ref {
            target,
            rows: Vec::new(),
            dangling: FxHashMap::default(),
        },
    }
}

impl<'s> Chunk<'s> {
    /// An empty chunk.
    pub(crate) fn new(context: &LoadContext<'s>) -> Chunk<'s> {
        Chunk::with_size_hint(context, 0)
    }

    /// An empty chunk for about `bytes` bytes of input; its string tables
    /// start at a size that rarely needs to grow.
    pub(crate) fn with_size_hint(context: &LoadContext<'s>, bytes: usize) -> Chunk<'s> {
        let schema = context.schema;
        let parts = schema
            .collections
            .iter()
            .zip(context.layouts.iter())
            .map(|(coll, layout)| Part {
                columns: coll
                    .fields
                    .iter()
                    .zip(&layout.store)
                    .map(|(f, store)| Column::new(empty_column(f.ty, *store)))
                    .collect(),
                given: vec![0; layout.words],
                positions: Positions::default(),
                lines: RecordLines::default(),
                source: None,
                len: 0,
            })
            .collect();
        Chunk {
            schema,
            ref_capacity: bytes / 128,
            ids: context.ids.clone(),
            layouts: context.layouts.clone(),
            strings: LocalStrings::with_capacity(context.ids.clone(), bytes / 48),
            shown: LocalStrings::with_capacity(context.ids.clone(), bytes / 48),
            refs: (0..schema.collections.len()).map(|_| None).collect(),
            parts,
            errors: Vec::new(),
            lines: Vec::new(),
        }
    }

    /// The schema being loaded.
    pub fn schema(&self) -> &'s DataSchema {
        self.schema
    }

    /// Errors collected by this chunk.
    pub fn error_count(&self) -> usize {
        self.errors.len()
    }

    /// Whether this chunk has collected as many errors as a load reports.
    pub fn too_many_errors(&self) -> bool {
        self.errors.len() >= MAX_ERRORS
    }

    /// Records an error, unless the limit is already reached.
    pub fn report(&mut self, error: DataError) {
        if !self.too_many_errors() {
            self.errors.push(Pending::Ready(error));
        }
    }

    /// Records an error whose message needs the row number `local` rows
    /// into this chunk; [`Chunk::settle_rows`] makes it.
    pub(crate) fn report_row(&mut self, local: u64, make: RowError) {
        if !self.too_many_errors() {
            self.errors.push(Pending::Row(local, make));
        }
    }

    /// Makes the row-numbered errors, now that the chunk's first row number
    /// is known.
    pub(crate) fn settle_rows(&mut self, base: u64) {
        for pending in &mut self.errors {
            if let Pending::Row(..) = pending {
                let Pending::Row(local, make) = std::mem::replace(
                    pending,
                    Pending::Ready(DataError::Unreadable {
                        path: String::new(),
                        reason: String::new(),
                    }),
                ) else {
                    continue;
                };
                *pending = Pending::Ready(make(base + local));
            }
        }
    }

    /// Counts the newlines of `bytes[start..end]` of file `source` (the
    /// stretch this chunk reads), per 4 KiB block, for its line index;
    /// returns how many there are.
    pub(crate) fn count_lines(
        &mut self,
        source: SourceId,
        bytes: &[u8],
        start: usize,
        end: usize,
    ) -> u64 {
        let end = end.min(bytes.len());
        if start >= end {
            return 0;
        }
        let shift = LineIndex::BLOCK_SHIFT;
        let first_block = start >> shift;
        let last_block = (end - 1) >> shift;
        let mut counts = Vec::with_capacity(last_block - first_block + 1);
        for block in first_block..=last_block {
            let from = (block << shift).max(start);
            let to = ((block + 1) << shift).min(end);
            counts.push(crate::source::count_newlines(&bytes[from..to]) as u16);
        }
        let total = counts.iter().map(|count| u64::from(*count)).sum();
        self.lines.push(LineCount {
            source,
            start,
            end,
            first_block,
            counts,
        });
        total
    }

    /// [`Chunk::count_lines`] again, over `start..end` instead of the
    /// stretch the last count covered (a chunk that read past or stopped
    /// short of where it expected to end).
    pub(crate) fn recount_lines(
        &mut self,
        source: SourceId,
        bytes: &[u8],
        start: usize,
        end: usize,
    ) -> u64 {
        self.lines.pop();
        self.count_lines(source, bytes, start, end)
    }

    /// Makes room in the columns of `coll` for `records` more records
    /// (a CSV chunk knows about how many rows it holds from its newlines):
    /// each column is then allocated once instead of grown by doubling.
    pub(crate) fn reserve(&mut self, coll: usize, records: usize) {
        let part = &mut self.parts[coll];
        for column in &mut part.columns {
            reserve_column(&mut column.data, part.len + records);
        }
        part.positions.reserve(records);
    }

    /// Finds the newlines-in-block and column of every record this chunk
    /// read (see [`RecordLines`]), from the bytes of file `bytes` it read.
    /// Each byte from a record's block start on is read once per
    /// collection; a column stays unknown until a line start is seen.
    pub(crate) fn record_lines(&mut self, bytes: &[u8]) {
        let shift = LineIndex::BLOCK_SHIFT;
        for part in &mut self.parts {
            // The previous record: its offset and newlines in its block;
            // the start of its line, if seen, and characters from there.
            let mut prev: Option<(usize, usize)> = None;
            let mut line_start: Option<usize> = None;
            let mut chars = 0usize;
            for row in part.lines.len()..part.positions.len() {
                let Some(offset) = part.positions.get(row) else {
                    part.lines.push(0, None);
                    continue;
                };
                let offset = (offset as usize).min(bytes.len());
                let block_start = (offset >> shift) << shift;
                let from = match prev {
                    Some((pos, _)) if pos <= offset => pos,
                    _ => {
                        line_start = None;
                        block_start
                    }
                };
                let gap = &bytes[from..offset];
                let in_block = match prev {
                    Some((pos, count)) if pos == from && pos >= block_start => {
                        count + crate::source::count_newlines(gap)
                    }
                    _ => crate::source::count_newlines(&bytes[block_start.max(from)..offset]),
                };
                match memchr::memrchr(b'\n', gap) {
                    Some(last) => {
                        line_start = Some(from + last + 1);
                        chars = crate::source::char_count(&bytes[from + last + 1..offset]);
                    }
                    None if line_start.is_some() => chars += crate::source::char_count(gap),
                    None => {}
                }
                part.lines.push(
                    u16::try_from(in_block).unwrap_or(u16::MAX),
                    line_start.map(|_| chars + 1),
                );
                prev = Some((offset, in_block));
            }
        }
    }

    /// Index of a collection, by name.
    pub fn collection_index(&self, name: &str) -> Option<usize> {
        self.schema.collection_index(name)
    }

    /// Index of a field of collection `coll`, by name.
    pub fn field_index(&self, coll: usize, name: &str) -> Option<usize> {
        self.schema.collections[coll].field_index(name)
    }

    /// Index of a field of collection `coll`, by name, trying field `hint`
    /// first: records usually list their fields in schema order, so a loader
    /// that passes "one after the previous field" rarely compares twice.
    #[inline]
    pub fn field_index_from(&self, coll: usize, name: &str, hint: usize) -> Option<usize> {
        let fields = &self.schema.collections[coll].fields;
        match fields.get(hint) {
            Some(field) if field.name == name => Some(hint),
            _ => fields.iter().position(|f| f.name == name),
        }
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

    /// Starts a record of `coll` at byte `offset` of file `src`.
    #[inline]
    pub fn begin_record(&mut self, coll: usize, src: SourceId, offset: u64) {
        let part = &mut self.parts[coll];
        part.source.get_or_insert(src);
        part.positions.push(Some(offset));
        part.given.iter_mut().for_each(|word| *word = 0);
    }

    /// Marks field `field` given; true if it already was.
    #[inline]
    fn mark_given(&mut self, coll: usize, field: usize) -> bool {
        let word = &mut self.parts[coll].given[field / 64];
        let bit = 1u64 << (field % 64);
        let was = *word & bit != 0;
        *word |= bit;
        was
    }

    /// Sets field `field` of the current record of `coll`.
    ///
    /// On a refused value the slot is filled with a default, so every column
    /// keeps one value per record and later records stay aligned.
    #[inline]
    pub fn set(&mut self, coll: usize, field: usize, cell: Cell<'_>) -> CellResult {
        if self.try_set(coll, field, cell) {
            return Ok(());
        }
        self.set_refused(coll, field, cell)
    }

    /// The records of `coll`, and what storing a value needs (strings going
    /// to the table of strings only shown if `shown`): the chunk split so
    /// that both can be borrowed at once.
    #[inline(always)]
    fn part_and_store(&mut self, coll: usize, shown: bool) -> (&mut Part, Store<'_>) {
        let Chunk {
            schema,
            ids,
            strings,
            shown: shown_strings,
            refs,
            parts,
            ref_capacity,
            ..
        } = self;
        let store = Store {
            schema,
            ids,
            strings: if shown { shown_strings } else { strings },
            refs,
            ref_capacity: *ref_capacity,
        };
        (&mut parts[coll], store)
    }

    /// Stores `cell` in field `field` of the current record of `coll` if it
    /// is a value the field takes (or null for an optional scalar field) and
    /// the field is not given yet; true if so. Otherwise changes nothing and
    /// returns false: the caller then goes the generic way ([`Chunk::set`]
    /// and its kin), which refuses the value with the error and position of
    /// old. Lists always go the generic way.
    ///
    /// This is the common case of every loader, so it reads the field's plan
    /// ([`Slot`]) and pushes to the typed column, nothing more.
    #[inline(always)]
    pub(crate) fn try_set(&mut self, coll: usize, field: usize, cell: Cell<'_>) -> bool {
        let slot = self.layouts[coll].slots[field];
        let FieldType::Scalar(scalar) = slot.ty else {
            return false;
        };
        let (part, mut store) = self.part_and_store(coll, slot.shown);
        let (word, bit) = (field / 64, 1u64 << (field % 64));
        if part.given[word] & bit != 0 {
            return false;
        }
        let column = &mut part.columns[field];
        if let Cell::Null = cell {
            if !slot.optional {
                return false;
            }
            push_default(&mut column.data);
            column.set_null(part.len);
        } else {
            if !store.push(&mut column.data, scalar, slot.unique, cell) {
                return false;
            }
        }
        part.given[word] |= bit;
        true
    }

    /// Stores `offsets.len()` records of `coll` from file `src` at once,
    /// column by column: record `r` starts at byte `offsets[r]`, and its
    /// cell `c`, `cells[r * columns.len() + c]`, holds field `columns[c]`
    /// (`None`: a column that is ignored). Each column's cells go through
    /// one loop, so the branch on the field's type is taken the same way
    /// for every cell of it.
    ///
    /// True if every cell was a value its field takes (or empty for an
    /// optional field), as [`Chunk::try_set_text`] would take it, record by
    /// record. Otherwise nothing is stored (columns, nulls and positions are
    /// as they were; strings already interned stay, unused) and the caller
    /// stores the records one by one, the way that reports errors. The
    /// columns must name distinct fields, and a collection with list fields
    /// always goes that way.
    pub(crate) fn try_set_rows(
        &mut self,
        coll: usize,
        src: SourceId,
        offsets: &[u64],
        cells: &[&str],
        columns: &[Option<usize>],
    ) -> bool {
        let layouts = self.layouts.clone();
        let layout = &layouts[coll];
        let stride = columns.len();
        let n = offsets.len();
        if !layout.lists.is_empty() || cells.len() != n * stride {
            return false;
        }
        let base = self.parts[coll].len;
        let mut present = vec![false; layout.slots.len()];
        let mut stored = true;
        'columns: for (c, field) in columns.iter().enumerate() {
            let Some(field) = *field else { continue };
            present[field] = true;
            let slot = layout.slots[field];
            let FieldType::Scalar(scalar) = slot.ty else {
                stored = false;
                break;
            };
            let (part, mut store) = self.part_and_store(coll, slot.shown);
            let column = &mut part.columns[field];
            for r in 0..n {
                let text = cells[r * stride + c];
                if text.is_empty() {
                    if !slot.optional {
                        stored = false;
                        break 'columns;
                    }
                    push_default(&mut column.data);
                    column.set_null(base + r);
                    continue;
                }
                if !text_value(scalar, text)
                    .is_some_and(|cell| store.push(&mut column.data, scalar, slot.unique, cell))
                {
                    stored = false;
                    break 'columns;
                }
            }
        }
        let part = &mut self.parts[coll];
        if !stored {
            for column in &mut part.columns {
                truncate_column(&mut column.data, base);
                column.clear_nulls_from(base);
            }
            return false;
        }
        // Fields no column holds: defaults, and null where optional.
        for (field, slot) in layout.slots.iter().enumerate() {
            if present[field] {
                continue;
            }
            let column = &mut part.columns[field];
            for r in 0..n {
                if slot.optional {
                    column.set_null(base + r);
                }
                push_default(&mut column.data);
            }
        }
        part.source.get_or_insert(src);
        for offset in offsets {
            part.positions.push(Some(*offset));
        }
        part.len += n;
        true
    }

    /// [`Chunk::try_set`] for text (CSV cells), parsed by the field's type;
    /// the empty text is null.
    #[inline(always)]
    pub(crate) fn try_set_text(&mut self, coll: usize, field: usize, text: &str) -> bool {
        let FieldType::Scalar(scalar) = self.layouts[coll].slots[field].ty else {
            return false;
        };
        let cell = if text.is_empty() {
            Some(Cell::Null)
        } else {
            text_value(scalar, text)
        };
        cell.is_some_and(|cell| self.try_set(coll, field, cell))
    }

    /// The value [`Chunk::try_set`] did not take: why, with the field
    /// counted as given and its slot filled with a default.
    #[cold]
    fn set_refused(&mut self, coll: usize, field: usize, cell: Cell<'_>) -> CellResult {
        if self.mark_given(coll, field) {
            return Err(Box::new(CellError::Duplicate));
        }
        let slot = self.layouts[coll].slots[field];
        let schema = self.schema;
        let row = self.parts[coll].len;
        let column = &mut self.parts[coll].columns[field];
        match slot.ty {
            FieldType::List(_) => match cell {
                Cell::Null if slot.optional => {
                    column.set_null(row);
                    Ok(())
                }
                // A null required list is an empty list, as an absent one is.
                Cell::Null => Ok(()),
                other => Err(Box::new(CellError::WrongType {
                    expected: schema.field_type_name(slot.ty),
                    found: other.kind().into(),
                })),
            },
            FieldType::Scalar(scalar) => {
                push_default(&mut column.data);
                Err(Box::new(refusal(schema, scalar, cell)))
            }
        }
    }

    /// Sets field `field` from text (CSV cells, YAML plain scalars), parsed
    /// by the field's declared type.
    #[inline]
    pub fn set_text(&mut self, coll: usize, field: usize, text: &str) -> CellResult {
        let scalar = match self.layouts[coll].slots[field].ty {
            FieldType::Scalar(scalar) => scalar,
            FieldType::List(_) => return self.set(coll, field, Cell::Str(text)),
        };
        match text_cell(scalar, text) {
            Ok(cell) => self.set(coll, field, cell),
            Err(error) => Err(self.refuse(coll, field, error)),
        }
    }

    /// Starts the list value of field `field` of the current record.
    pub fn begin_list(&mut self, coll: usize, field: usize) -> CellResult {
        if !matches!(self.layouts[coll].slots[field].ty, FieldType::List(_)) {
            return self.set_other(coll, field, "a list");
        }
        if self.mark_given(coll, field) {
            return Err(Box::new(CellError::Duplicate));
        }
        Ok(())
    }

    /// Sets field `field` to a value no [`Cell`] can hold (`found`: "an
    /// object", "a list"). Always an error; see [`Chunk::refuse`].
    pub fn set_other(&mut self, coll: usize, field: usize, found: &str) -> CellResult {
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
    pub fn refuse(&mut self, coll: usize, field: usize, error: CellError) -> Box<CellError> {
        if self.mark_given(coll, field) {
            return Box::new(CellError::Duplicate);
        }
        push_default(&mut self.parts[coll].columns[field].data);
        Box::new(error)
    }

    /// Appends an element to the open list of field `field`. The cell must
    /// already have the element's type (JSON values, quoted YAML scalars).
    pub fn push_item(&mut self, coll: usize, field: usize, cell: Cell<'_>) -> CellResult {
        let FieldType::List(scalar) = self.layouts[coll].slots[field].ty else {
            return Err(Box::new(CellError::WrongType {
                expected: "a list".into(),
                found: cell.kind().into(),
            }));
        };
        if let Cell::Null = cell {
            return Err(Box::new(CellError::NullNotAllowed {
                expected: self.schema.scalar_name(scalar),
            }));
        }
        let (schema, shown) = (self.schema, self.layouts[coll].slots[field].shown);
        let (part, mut store) = self.part_and_store(coll, shown);
        let pushed = match &mut part.columns[field].data {
            ColumnData::List { items, .. } => store.push(items, scalar, false, cell),
            // A dropped field is still checked.
            _ => store.push(&mut ColumnData::Skipped, scalar, false, cell),
        };
        if pushed {
            Ok(())
        } else {
            Err(Box::new(refusal(schema, scalar, cell)))
        }
    }

    /// Appends an element given as text (CSV list cells, YAML plain
    /// scalars), parsed by the list's element type.
    pub fn push_item_text(&mut self, coll: usize, field: usize, text: &str) -> CellResult {
        let FieldType::List(scalar) = self.layouts[coll].slots[field].ty else {
            return Err(Box::new(CellError::WrongType {
                expected: "a list".into(),
                found: "a string".into(),
            }));
        };
        let cell = text_cell(scalar, text).map_err(Box::new)?;
        self.push_item(coll, field, cell)
    }

    /// Closes the open list of field `field`.
    pub fn end_list(&mut self, _coll: usize, _field: usize) {}

    /// Ends the current record of `coll`; returns the names of required
    /// fields it lacks (the record is kept, with defaults, so loading can go on).
    #[inline]
    pub fn end_record(&mut self, coll: usize) -> Vec<&'s str> {
        let layout = &self.layouts[coll];
        let fields = &self.schema.collections[coll].fields;
        let part = &mut self.parts[coll];
        let row = part.len;
        let mut missing = Vec::new();
        for word in 0..layout.words {
            let mut absent = !part.given[word] & layout.all[word];
            while absent != 0 {
                let field = word * 64 + absent.trailing_zeros() as usize;
                absent &= absent - 1;
                let slot = layout.slots[field];
                let column = &mut part.columns[field];
                if !slot.optional && !matches!(slot.ty, FieldType::List(_)) {
                    missing.push(fields[field].name.as_str());
                }
                if slot.optional {
                    column.set_null(row);
                }
                push_default(&mut column.data);
            }
        }
        for &field in &layout.lists {
            if let ColumnData::List { offsets, items } = &mut part.columns[field].data {
                offsets.push(column_len(items) as u32);
            }
        }
        part.len += 1;
        missing
    }
}

/// Bytes per chunk for `total` bytes of input: about eight chunks per
/// thread, between 1 and 4 MiB so a chunk's string tables stay in the core's
/// cache, and never more than [`MAX_CHUNKS`] chunks, so the string segments
/// the chunks take (one each, plus one per million strings) stay well under
/// the symbol space's 4,096 segments whatever the input's size.
pub(crate) fn chunk_bytes(total: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    (total / (threads * 8))
        .clamp(1 << 20, 4 << 20)
        .max(total.div_ceil(MAX_CHUNKS))
}

/// The most chunks one load is cut into.
const MAX_CHUNKS: usize = 1024;

/// Appends a default value (a refused or absent value's slot).
pub(crate) fn push_default(data: &mut ColumnData) {
    match data {
        ColumnData::Int(v) => v.push(0),
        ColumnData::Number(v) => v.push(0.0),
        ColumnData::Bool(v) => v.push(false),
        ColumnData::Str(v) => v.push(Sym::default()),
        ColumnData::Date(v) => v.push(0),
        ColumnData::Enum(v) => v.push(0),
        ColumnData::Ref { rows, .. } => rows.push(Sym::default().to_raw()),
        ColumnData::List { .. } | ColumnData::Skipped => {}
    }
}

pub(crate) fn column_len(data: &ColumnData) -> usize {
    match data {
        ColumnData::Int(v) => v.len(),
        ColumnData::Number(v) => v.len(),
        ColumnData::Bool(v) => v.len(),
        ColumnData::Str(v) => v.len(),
        ColumnData::Date(v) => v.len(),
        ColumnData::Enum(v) => v.len(),
        ColumnData::Ref { rows, .. } => rows.len(),
        ColumnData::List { offsets, .. } => offsets.len().saturating_sub(1),
        ColumnData::Skipped => 0,
    }
}

/// What pushing a value to a column needs besides the column.
struct Store<'a> {
    schema: &'a DataSchema,
    ids: &'a Arc<SegmentIds>,
    /// The string table of the field (kept, or only shown).
    strings: &'a mut LocalStrings,
    refs: &'a mut [Option<LocalStrings>],
    ref_capacity: usize,
}

impl Store<'_> {
    /// Pushes `cell`, a value of a field of type `ty`, to `data` (nothing
    /// for a dropped field, which is still checked); strings are appended
    /// as met if `unique`, else interned. False, with nothing changed, if
    /// `cell` is not a `ty` ([`refusal`] says why); never for null.
    #[inline(always)]
    fn push(
        &mut self,
        data: &mut ColumnData,
        ty: ScalarType,
        unique: bool,
        cell: Cell<'_>,
    ) -> bool {
        match (ty, cell, data) {
            (ScalarType::Int, Cell::Int(value), data) => {
                if let ColumnData::Int(v) = data {
                    v.push(value);
                }
            }
            (ScalarType::Number, Cell::Int(value), data) => {
                if let ColumnData::Number(v) = data {
                    v.push(value as f64);
                }
            }
            (ScalarType::Number, Cell::Number(value), data) => {
                if let ColumnData::Number(v) = data {
                    v.push(value);
                }
            }
            (ScalarType::Bool, Cell::Bool(value), data) => {
                if let ColumnData::Bool(v) = data {
                    v.push(value);
                }
            }
            (ScalarType::String, Cell::Str(text), data) => {
                if let ColumnData::Str(v) = data {
                    v.push(if unique {
                        self.strings.push_unique(text)
                    } else {
                        self.strings.intern(text)
                    });
                }
            }
            (ScalarType::Ref(target), Cell::Str(text), data) => {
                if let ColumnData::Ref { rows, .. } = data {
                    let (ids, capacity) = (self.ids, self.ref_capacity);
                    let table = self.refs[target as usize]
                        .get_or_insert_with(|| LocalStrings::with_capacity(ids.clone(), capacity));
                    rows.push(table.intern(text).to_raw());
                }
            }
            (ScalarType::Date, Cell::Str(text), data) => {
                let Some(days) = super::parse_date(text) else {
                    return false;
                };
                if let ColumnData::Date(v) = data {
                    v.push(days);
                }
            }
            (ScalarType::Enum(idx), Cell::Str(text), data) => {
                let variants = &self.schema.enums[idx as usize].variants;
                let Some(variant) = variants.iter().position(|v| v == text) else {
                    return false;
                };
                if let ColumnData::Enum(v) = data {
                    v.push(variant as u16);
                }
            }
            _ => return false,
        }
        true
    }
}

/// Why `cell` is not a value of type `ty` ([`Store::push`] refused it).
#[cold]
fn refusal(schema: &DataSchema, ty: ScalarType, cell: Cell<'_>) -> CellError {
    match (ty, cell) {
        (_, Cell::Null) => CellError::NullNotAllowed {
            expected: schema.scalar_name(ty),
        },
        (ScalarType::Date, Cell::Str(text)) => CellError::InvalidDate(text.into()),
        (ScalarType::Enum(idx), Cell::Str(text)) => CellError::UnknownVariant {
            value: text.into(),
            variants: schema.enums[idx as usize].variants.clone(),
        },
        (ty, cell) => CellError::WrongType {
            expected: schema.scalar_name(ty),
            found: cell.kind().into(),
        },
    }
}

// ---------------------------------------------------------------- merge

/// What storing a value gives: nothing, or why it was refused (boxed, so
/// the success path returns one register instead of a large enum).
pub type CellResult = Result<(), Box<CellError>>;

/// One collection's pieces, in chunk order.
struct Pieces {
    source: Option<SourceId>,
    lens: Vec<usize>,
    positions: Vec<Positions>,
    lines: Vec<RecordLines>,
    /// Per field, per piece.
    columns: Vec<Vec<Column>>,
}

/// How reference keys of one segment resolve: the row of each, or
/// [`NO_ROW`] with the key's canonical symbol in `dangling`.
#[derive(Default)]
struct RefMap {
    rows: Vec<Vec<u32>>,
    dangling: FxHashMap<u32, Sym>,
}

/// A reference segment resolved: its id, the row of each key, and the
/// keys that name no record (raw symbol and text).
type ResolvedSegment = (u32, Vec<u32>, Vec<(u32, String)>);

/// Puts chunks (in document order) together into a dataset.
pub(crate) fn merge(
    schema: &DataSchema,
    chunks: Vec<Chunk<'_>>,
    sources: SourceMap,
    format: DataFormat,
) -> Result<Dataset, Vec<DataError>> {
    let _timing = super::Timing::start("merge (all)");
    let n_colls = schema.collections.len();
    let mut errors: Vec<DataError> = Vec::new();
    let mut kept: Vec<Vec<(u32, Segment)>> = Vec::with_capacity(chunks.len());
    let mut shown: Vec<Vec<(u32, Segment)>> = Vec::with_capacity(chunks.len());
    let mut ref_segments: Vec<Vec<(u32, Segment)>> = vec![Vec::new(); n_colls];
    let mut lines: Vec<LineCount> = Vec::new();
    let mut pieces: Vec<Pieces> = schema
        .collections
        .iter()
        .map(|coll| Pieces {
            source: None,
            lens: Vec::new(),
            positions: Vec::new(),
            lines: Vec::new(),
            columns: coll.fields.iter().map(|_| Vec::new()).collect(),
        })
        .collect();
    for chunk in chunks {
        for pending in chunk.errors {
            match pending {
                Pending::Ready(error) => errors.push(error),
                Pending::Row(local, make) => errors.push(make(local)),
            }
        }
        kept.push(chunk.strings.into_segments());
        shown.push(chunk.shown.into_segments());
        for (target, refs) in chunk.refs.into_iter().enumerate() {
            if let Some(refs) = refs {
                ref_segments[target].extend(refs.into_segments());
            }
        }
        lines.extend(chunk.lines);
        for (coll, mut part) in chunk.parts.into_iter().enumerate() {
            if part.source.is_none() {
                continue;
            }
            let pieces = &mut pieces[coll];
            pieces.source = pieces.source.or(part.source);
            // A record begun but never ended (a syntax error stopped the
            // load) is dropped, so every column has `len` values.
            let len = part.len;
            part.positions.truncate(len);
            part.lines.truncate(len);
            pieces.lens.push(len);
            pieces.positions.push(part.positions);
            pieces.lines.push(part.lines);
            for (field, mut column) in part.columns.into_iter().enumerate() {
                truncate_column(&mut column.data, len);
                pieces.columns[field].push(column);
            }
        }
    }
    errors.truncate(MAX_ERRORS);
    set_line_indexes(&sources, lines);

    let timing = super::Timing::start("merge: canonical strings");
    let canonical = strings::canonicalize(kept, shown);
    drop(timing);
    let timing = super::Timing::start("merge: columns");
    let interner = &canonical.interner;

    // Columns without references first: keys are needed to resolve them.
    let mut assembled: Vec<Vec<Option<Column>>> = pieces
        .iter()
        .map(|p| p.columns.iter().map(|_| None).collect())
        .collect();
    let mut work: Vec<(usize, usize, Vec<Column>)> = Vec::new();
    for (coll, p) in pieces.iter_mut().enumerate() {
        for (field, columns) in p.columns.iter_mut().enumerate() {
            if !has_refs(schema.collections[coll].fields[field].ty) {
                work.push((coll, field, std::mem::take(columns)));
            }
        }
    }
    let lens: Vec<Vec<usize>> = pieces.iter().map(|p| p.lens.clone()).collect();
    let done: Vec<(usize, usize, Column)> = work
        .into_par_iter()
        .map(|(coll, field, columns)| {
            let remap = !only_shown(&schema.collections[coll], field);
            let column = concat(columns, &lens[coll], &|column| {
                if remap {
                    remap_strings(&mut column.data, &canonical)
                }
            });
            (coll, field, column)
        })
        .collect();
    for (coll, field, column) in done {
        assembled[coll][field] = Some(column);
    }

    drop(timing);
    let timing = super::Timing::start("merge: duplicate keys");
    // Duplicate keys.
    let dup_errors: Vec<Vec<DataError>> = (0..n_colls)
        .into_par_iter()
        .map(|coll| {
            let Some(key) = schema.collections[coll].key else {
                return Vec::new();
            };
            let Some(Column {
                data: ColumnData::Str(keys),
                ..
            }) = &assembled[coll][key]
            else {
                return Vec::new();
            };
            let Some(source) = pieces[coll].source else {
                return Vec::new();
            };
            duplicate_keys(
                schema,
                coll,
                keys,
                &pieces[coll].positions,
                sources.get(source),
                interner,
            )
        })
        .collect();
    for error in dup_errors.into_iter().flatten() {
        if errors.len() < MAX_ERRORS {
            errors.push(error);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    drop(timing);
    let timing = super::Timing::start("merge: resolve references");
    // Resolve every reference key, each distinct key once per chunk.
    let tables: Vec<Option<KeyTable>> = (0..n_colls)
        .into_par_iter()
        .map(|coll| {
            if ref_segments[coll].is_empty() {
                return None;
            }
            let key = schema.collections[coll].key?;
            match &assembled[coll][key] {
                Some(Column {
                    data: ColumnData::Str(keys),
                    ..
                }) => Some(KeyTable::build(keys, interner)),
                _ => Some(KeyTable::build(&[], interner)),
            }
        })
        .collect();
    let mut refmap = RefMap::default();
    let resolved: Vec<ResolvedSegment> = ref_segments
        .iter()
        .enumerate()
        .flat_map(|(target, segments)| segments.iter().map(move |(id, seg)| (target, *id, seg)))
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|(target, id, segment)| {
            let keys = match (&assembled[target], schema.collections[target].key) {
                (columns, Some(key)) => match &columns[key] {
                    Some(Column {
                        data: ColumnData::Str(keys),
                        ..
                    }) => Some(keys.as_slice()),
                    _ => None,
                },
                _ => None,
            };
            let table = tables[target].as_ref();
            let mut rows = Vec::with_capacity(segment.len());
            let mut dangling = Vec::new();
            for idx in 0..segment.len() {
                let text = segment.get(idx);
                let row = match (table, keys) {
                    (Some(table), Some(keys)) => table.get(keys, interner, text).unwrap_or(NO_ROW),
                    _ => NO_ROW,
                };
                if row == NO_ROW {
                    dangling.push((Sym::at(id, idx).to_raw(), text.to_string()));
                }
                rows.push(row);
            }
            (id, rows, dangling)
        })
        .collect();
    drop(tables);
    drop(ref_segments);
    let mut interner = canonical.interner;
    let mut empty_key_rows: Vec<u32> = vec![NO_ROW; n_colls];
    for (coll, row) in empty_key_rows.iter_mut().enumerate() {
        if let Some(key) = schema.collections[coll].key
            && let Some(Column {
                data: ColumnData::Str(keys),
                ..
            }) = &assembled[coll][key]
        {
            // A reference written `""` names the record whose key is `""`.
            if let Some(first) = keys.iter().position(|sym| *sym == Sym::default()) {
                *row = first as u32;
            }
        }
    }
    for (id, rows, dangling) in resolved {
        let id = id as usize;
        if refmap.rows.len() <= id {
            refmap.rows.resize_with(id + 1, Vec::new);
        }
        refmap.rows[id] = rows;
        for (raw, text) in dangling {
            let sym = interner.intern_extra(&text);
            refmap.dangling.insert(raw, sym);
        }
    }
    let mut work: Vec<(usize, usize, Vec<Column>)> = Vec::new();
    for (coll, p) in pieces.iter_mut().enumerate() {
        for (field, columns) in p.columns.iter_mut().enumerate() {
            if has_refs(schema.collections[coll].fields[field].ty) {
                work.push((coll, field, std::mem::take(columns)));
            }
        }
    }
    let done: Vec<(usize, usize, Column)> = work
        .into_par_iter()
        .map(|(coll, field, columns)| {
            let column = concat(columns, &lens[coll], &|column| {
                let Column {
                    data,
                    nulls,
                    any_null,
                } = column;
                let nulls = any_null.then_some(nulls.as_slice());
                resolve_refs(data, nulls, &refmap, &empty_key_rows)
            });
            (coll, field, column)
        })
        .collect();
    for (coll, field, column) in done {
        assembled[coll][field] = Some(column);
    }

    drop(timing);
    let collections: Vec<Collection> = pieces
        .into_iter()
        .zip(assembled)
        .enumerate()
        .map(|(coll, (p, columns))| {
            let len = p.lens.iter().sum();
            let columns: Vec<Column> = columns
                .into_iter()
                .map(|c| c.unwrap_or_else(|| Column::new(ColumnData::Skipped)))
                .collect();
            // Only when every piece found its records' lines.
            let record_lines = p
                .lines
                .iter()
                .zip(&p.lens)
                .all(|(lines, len)| lines.len() == *len)
                .then(|| RecordLines::join(p.lines));
            Collection {
                len,
                record_lines,
                columns,
                positions: Positions::join(p.positions),
                first_line: None,
                source: p.source,
                key_index: KeyIndex::new(schema.collections[coll].key),
            }
        })
        .collect();
    interner.drop_lookup();
    if super::Timing::enabled() {
        for (coll, collection) in collections.iter().enumerate() {
            let bytes: usize = collection.columns.iter().map(|c| c.heap_bytes()).sum();
            eprintln!(
                "[memory] {:<12} {:>9} records {:>7.1} MiB columns {:>7.1} MiB positions",
                schema.collections[coll].name,
                collection.len,
                bytes as f64 / (1 << 20) as f64,
                collection.positions.heap_bytes() as f64 / (1 << 20) as f64,
            );
        }
        eprintln!(
            "[memory] strings {:>7.1} MiB",
            interner.heap_bytes() as f64 / (1 << 20) as f64
        );
    }
    Ok(Dataset {
        collections,
        interner,
        sources,
        format,
    })
}

/// Whether field `field` of `coll` is only shown by the plan: its strings
/// are left as each chunk stored them, not made canonical.
fn only_shown(coll: &CollectionSchema, field: usize) -> bool {
    let f = &coll.fields[field];
    f.shown && !f.keep && coll.key != Some(field)
}

fn has_refs(ty: FieldType) -> bool {
    matches!(
        ty,
        FieldType::Scalar(ScalarType::Ref(_)) | FieldType::List(ScalarType::Ref(_))
    )
}

/// Drops values past `len` (a record begun but not ended).
fn truncate_column(data: &mut ColumnData, len: usize) {
    match data {
        ColumnData::Int(v) => v.truncate(len),
        ColumnData::Number(v) => v.truncate(len),
        ColumnData::Bool(v) => v.truncate(len),
        ColumnData::Str(v) => v.truncate(len),
        ColumnData::Date(v) => v.truncate(len),
        ColumnData::Enum(v) => v.truncate(len),
        ColumnData::Ref { rows, .. } => rows.truncate(len),
        ColumnData::List { offsets, items } => {
            offsets.truncate(len + 1);
            let items_len = offsets.last().copied().unwrap_or(0) as usize;
            truncate_column(items, items_len);
        }
        ColumnData::Skipped => {}
    }
}

/// Concatenates one field's pieces; `map` rewrites each piece's values
/// (canonical strings, resolved references) before it is appended.
fn concat(pieces: Vec<Column>, lens: &[usize], map: &(dyn Fn(&mut Column) + Sync)) -> Column {
    let total: usize = lens.iter().sum();
    let mut pieces = pieces.into_iter();
    let Some(mut first) = pieces.next() else {
        return Column::new(ColumnData::Skipped);
    };
    map(&mut first);
    reserve_column(&mut first.data, total);
    let mut base = lens.first().copied().unwrap_or(0);
    for (mut piece, len) in pieces.zip(lens.iter().skip(1)) {
        map(&mut piece);
        first.append_nulls(&piece, base);
        append_data(&mut first.data, piece.data);
        base += len;
    }
    first
}

fn reserve_column(data: &mut ColumnData, total: usize) {
    match data {
        ColumnData::Int(v) => v.reserve(total.saturating_sub(v.len())),
        ColumnData::Number(v) => v.reserve(total.saturating_sub(v.len())),
        ColumnData::Str(v) => v.reserve(total.saturating_sub(v.len())),
        ColumnData::Date(v) => v.reserve(total.saturating_sub(v.len())),
        ColumnData::Enum(v) => v.reserve(total.saturating_sub(v.len())),
        ColumnData::Ref { rows, .. } => rows.reserve(total.saturating_sub(rows.len())),
        ColumnData::List { offsets, .. } => offsets.reserve(total.saturating_sub(offsets.len())),
        ColumnData::Bool(_) | ColumnData::Skipped => {}
    }
}

fn append_data(into: &mut ColumnData, from: ColumnData) {
    match (into, from) {
        (ColumnData::Int(a), ColumnData::Int(b)) => a.extend_from_slice(&b),
        (ColumnData::Number(a), ColumnData::Number(b)) => a.extend_from_slice(&b),
        (ColumnData::Bool(a), ColumnData::Bool(b)) => a.append(&b),
        (ColumnData::Str(a), ColumnData::Str(b)) => a.extend_from_slice(&b),
        (ColumnData::Date(a), ColumnData::Date(b)) => a.extend_from_slice(&b),
        (ColumnData::Enum(a), ColumnData::Enum(b)) => a.extend_from_slice(&b),
        (
            ColumnData::Ref {
                rows: a,
                dangling: da,
                ..
            },
            ColumnData::Ref {
                rows: b,
                dangling: db,
                ..
            },
        ) => {
            let base = a.len() as u32;
            da.extend(db.into_iter().map(|(row, sym)| (row + base, sym)));
            a.extend_from_slice(&b);
        }
        (
            ColumnData::List { offsets, items },
            ColumnData::List {
                offsets: more,
                items: more_items,
            },
        ) => {
            let base = offsets.last().copied().unwrap_or(0);
            offsets.extend(more.iter().skip(1).map(|offset| offset + base));
            append_data(items, *more_items);
        }
        _ => {}
    }
}

/// Rewrites a piece's strings to their canonical symbols.
fn remap_strings(data: &mut ColumnData, canonical: &strings::Canonical) {
    if canonical.is_identity() {
        return;
    }
    match data {
        ColumnData::Str(values) => {
            for sym in values {
                *sym = canonical.map(*sym);
            }
        }
        ColumnData::List { items, .. } => remap_strings(items, canonical),
        _ => {}
    }
}

/// Rewrites a piece's reference keys to rows (and dangling keys); `nulls`
/// is the null bitmap of a scalar column (list items are never null).
fn resolve_refs(
    data: &mut ColumnData,
    nulls: Option<&[u64]>,
    refmap: &RefMap,
    empty_key_rows: &[u32],
) {
    match data {
        ColumnData::Ref {
            target,
            rows,
            dangling,
        } => {
            for (idx, slot) in rows.iter_mut().enumerate() {
                if nulls.is_some_and(|words| {
                    words
                        .get(idx / 64)
                        .is_some_and(|word| word >> (idx % 64) & 1 == 1)
                }) {
                    *slot = NO_ROW;
                    continue;
                }
                let raw = *slot;
                let sym = Sym::from_raw(raw);
                if sym == Sym::default() {
                    // A key written "": the record whose key is "", if any.
                    *slot = empty_key_rows[*target as usize];
                    if *slot == NO_ROW {
                        dangling.insert(idx as u32, Sym::default());
                    }
                    continue;
                }
                let row = refmap
                    .rows
                    .get(sym.segment_index())
                    .and_then(|rows| rows.get(sym.local_index()))
                    .copied()
                    .unwrap_or(NO_ROW);
                *slot = row;
                if row == NO_ROW
                    && let Some(written) = refmap.dangling.get(&raw)
                {
                    dangling.insert(idx as u32, *written);
                }
            }
        }
        ColumnData::List { items, .. } => resolve_refs(items, None, refmap, empty_key_rows),
        _ => {}
    }
}

/// Row of each key, by content.
/// The keys of one collection by their text, for resolving references. A
/// large collection's keys (millions of cadres on a national ledger) were
/// one table filled on one core while the other waited; the table is now
/// sharded by hash bits that hashbrown uses for neither its bucket index
/// (the low bits) nor its tags (the top seven), and the shards are filled
/// side by side. A key given twice resolves to its first row, as before.
struct KeyTable {
    shards: Vec<HashTable<u32>>,
}

/// Shards of a [`KeyTable`].
const KEY_SHARDS: usize = 16;

fn key_shard(hash: u64) -> usize {
    (hash >> 32) as usize % KEY_SHARDS
}

impl KeyTable {
    fn build(keys: &[Sym], interner: &strings::Interner) -> KeyTable {
        const RUN: usize = 1 << 16;
        // Hashes computed on all cores, grouped by shard, in row order.
        let runs: Vec<Vec<Vec<(u64, u32)>>> = keys
            .par_chunks(RUN)
            .enumerate()
            .map(|(run, chunk)| {
                let mut by_shard: Vec<Vec<(u64, u32)>> = vec![Vec::new(); KEY_SHARDS];
                for (idx, sym) in chunk.iter().enumerate() {
                    let hash = strings::hash_str(interner.resolve(sym).as_bytes());
                    by_shard[key_shard(hash)].push((hash, (run * RUN + idx) as u32));
                }
                by_shard
            })
            .collect();
        let shards = (0..KEY_SHARDS)
            .into_par_iter()
            .map(|shard| {
                let len = runs.iter().map(|run| run[shard].len()).sum();
                let mut table: HashTable<u32> = HashTable::with_capacity(len);
                for &(hash, row) in runs.iter().flat_map(|run| run[shard].iter()) {
                    let sym = keys[row as usize];
                    if table.find(hash, |r| keys[*r as usize] == sym).is_none() {
                        table.insert_unique(hash, row, |r| {
                            strings::hash_str(interner.resolve(&keys[*r as usize]).as_bytes())
                        });
                    }
                }
                table
            })
            .collect();
        KeyTable { shards }
    }

    /// The row whose key is `text`.
    fn get(&self, keys: &[Sym], interner: &strings::Interner, text: &str) -> Option<u32> {
        let hash = strings::hash_str(text.as_bytes());
        self.shards[key_shard(hash)]
            .find(hash, |row| {
                strings::eq_bytes(
                    interner.resolve(&keys[*row as usize]).as_bytes(),
                    text.as_bytes(),
                )
            })
            .copied()
    }
}

/// Errors for keys given twice: the second record, pointing at the first.
fn duplicate_keys(
    schema: &DataSchema,
    coll: usize,
    keys: &[Sym],
    positions: &[Positions],
    src: &SourceText,
    interner: &strings::Interner,
) -> Vec<DataError> {
    let mut seen = interner.empty_bitsets();
    let mut errors = Vec::new();
    let position = |row: usize| -> usize {
        let mut row = row;
        for piece in positions {
            if row < piece.len() {
                return piece.get(row).unwrap_or(0) as usize;
            }
            row -= piece.len();
        }
        0
    };
    for (row, sym) in keys.iter().enumerate() {
        let (segment, local) = (sym.segment_index(), sym.local_index());
        let Some(words) = seen.get_mut(segment) else {
            continue;
        };
        let bit = 1u64 << (local % 64);
        if words[local / 64] & bit == 0 {
            words[local / 64] |= bit;
            continue;
        }
        if errors.len() >= MAX_ERRORS {
            break;
        }
        let first = keys.iter().position(|k| k == sym).unwrap_or(row);
        errors.push(DataError::DuplicateKey {
            src: src.clone(),
            span: SourceSpan::new(position(row).into(), 1),
            first: SourceSpan::new(position(first).into(), 1),
            collection: schema.collections[coll].name.clone(),
            key: interner.resolve(sym).to_string(),
        });
    }
    errors
}

/// Hands each source the newline counts its chunks made, if together they
/// cover the whole file exactly once.
fn set_line_indexes(sources: &SourceMap, lines: Vec<LineCount>) {
    let mut per_source: FxHashMap<SourceId, (Vec<u16>, usize)> = FxHashMap::default();
    for count in lines {
        let (blocks, covered) = per_source.entry(count.source).or_insert_with(|| {
            let len = sources.get(count.source).bytes().len();
            (vec![0u16; len.div_ceil(1 << LineIndex::BLOCK_SHIFT)], 0)
        });
        *covered += count.end - count.start;
        for (offset, n) in count.counts.iter().enumerate() {
            if let Some(block) = blocks.get_mut(count.first_block + offset) {
                *block = block.saturating_add(*n);
            }
        }
    }
    for (source, (counts, covered)) in per_source {
        let text = sources.get(source);
        if covered == text.bytes().len() {
            text.set_line_index(LineIndex::new(counts));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::fixture::{self, PEOPLE};

    /// Values per column of the current part of `coll`.
    fn lens(chunk: &Chunk<'_>, coll: usize) -> Vec<usize> {
        chunk.parts[coll]
            .columns
            .iter()
            .map(|c| column_len(&c.data))
            .collect()
    }

    #[test]
    fn a_refused_value_leaves_the_record_as_it_was() {
        let schema = fixture::schema();
        let context = LoadContext::new(&schema);
        let mut chunk = Chunk::new(&context);
        chunk.begin_record(PEOPLE, SourceId(0), 0);
        // (field, value the plan refuses, the error `set` then gives)
        let refused: [(usize, Cell<'_>, &str); 7] = [
            (2, Cell::Str("30"), "WrongType"),
            (2, Cell::Null, "NullNotAllowed"),
            (3, Cell::Bool(true), "WrongType"),
            (4, Cell::Int(1), "WrongType"),
            (5, Cell::Str("2023-02-30"), "InvalidDate"),
            (6, Cell::Str("admn"), "UnknownVariant"),
            (8, Cell::Null, "list"),
        ];
        for (field, cell, error) in refused {
            let before = lens(&chunk, PEOPLE);
            assert!(!chunk.try_set(PEOPLE, field, cell), "{field}");
            assert_eq!(lens(&chunk, PEOPLE), before, "{field}");
            assert_eq!(chunk.parts[PEOPLE].given[0], 0, "{field}");
            if error != "list" {
                assert!(
                    chunk
                        .set(PEOPLE, field, cell)
                        .is_err_and(|e| format!("{e:?}").starts_with(error)),
                    "{field}"
                );
                chunk.parts[PEOPLE].given[0] = 0;
                chunk.parts[PEOPLE].columns[field].data =
                    empty_column(schema.collections[PEOPLE].fields[field].ty, true);
            }
        }
        // Taken values, and a field given twice.
        assert!(chunk.try_set(PEOPLE, 0, Cell::Str("p1")));
        assert!(chunk.try_set(PEOPLE, 3, Cell::Int(2)));
        assert!(chunk.try_set(PEOPLE, 7, Cell::Null));
        assert!(!chunk.try_set(PEOPLE, 3, Cell::Int(2)));
        assert!(
            chunk
                .set(PEOPLE, 3, Cell::Int(2))
                .is_err_and(|e| *e == CellError::Duplicate)
        );
    }
}
