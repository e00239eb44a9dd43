//! Changes to a loaded dataset in memory, for what-if sessions: set a field,
//! remove a record, insert one. The data file is never touched.
//!
//! Every change keeps the dataset's invariants: keys indexed, references
//! resolved to rows (rows after a removed record move down by one), nulls
//! marked. Each operation returns what undoes it.

use rustc_hash::FxHashMap;

use super::{
    Bits, CellError, Column, ColumnData, DataSchema, Dataset, FieldType, KeyIndex, NO_ROW,
    ScalarType, Sym,
};

/// A value written in a session, before it is checked against the schema.
#[derive(Clone, Debug, PartialEq)]
pub enum OwnedCell {
    /// `null`
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A number.
    Number(f64),
    /// A string (also dates, enum variants and reference keys).
    Str(String),
    /// A list.
    List(Vec<OwnedCell>),
}

/// A value checked against a field's type, ready to store.
#[derive(Clone, Copy, Debug)]
enum Stored {
    Int(i64),
    Number(f64),
    Bool(bool),
    Sym(Sym),
    Date(i32),
    Enum(u16),
    /// A reference: the key, resolved when the row is placed.
    RefKey(Sym),
    /// A null or default slot.
    Default,
}

fn bits_to_bools(column: &Column, len: usize) -> Vec<bool> {
    (0..len).map(|row| column.is_null(row)).collect()
}

fn bools_to_bits(column: &mut Column, nulls: &[bool]) {
    column.nulls = vec![0; nulls.len().div_ceil(64)];
    column.any_null = false;
    for (row, null) in nulls.iter().enumerate() {
        if *null {
            column.set_null(row);
        }
    }
}

fn rebuild_bits(bits: &mut Bits, change: impl FnOnce(&mut Vec<bool>)) {
    let mut values: Vec<bool> = (0..bits.len())
        .map(|idx| bits.get(idx).unwrap_or(false))
        .collect();
    change(&mut values);
    let mut rebuilt = Bits::default();
    for value in values {
        rebuilt.push(value);
    }
    *bits = rebuilt;
}

/// Removes element `idx` of a flat column.
fn remove_flat(data: &mut ColumnData, idx: usize) {
    match data {
        ColumnData::Int(v) => {
            v.remove(idx);
        }
        ColumnData::Number(v) => {
            v.remove(idx);
        }
        ColumnData::Bool(bits) => rebuild_bits(bits, |v| {
            v.remove(idx);
        }),
        ColumnData::Str(v) => {
            v.remove(idx);
        }
        ColumnData::Date(v) => {
            v.remove(idx);
        }
        ColumnData::Enum(v) => {
            v.remove(idx);
        }
        ColumnData::Ref { rows, dangling, .. } => {
            rows.remove(idx);
            let idx = idx as u32;
            *dangling = dangling
                .drain()
                .filter(|(i, _)| *i != idx)
                .map(|(i, key)| (if i > idx { i - 1 } else { i }, key))
                .collect();
        }
        ColumnData::List { .. } | ColumnData::Skipped => {}
    }
}

/// Inserts a value at element `idx` of a flat column.
fn insert_flat(data: &mut ColumnData, idx: usize, value: Stored) {
    match (data, value) {
        (ColumnData::Int(v), value) => {
            v.insert(idx, if let Stored::Int(x) = value { x } else { 0 })
        }
        (ColumnData::Number(v), value) => v.insert(
            idx,
            if let Stored::Number(x) = value {
                x
            } else {
                0.0
            },
        ),
        (ColumnData::Bool(bits), value) => {
            rebuild_bits(bits, |v| v.insert(idx, matches!(value, Stored::Bool(true))))
        }
        (ColumnData::Str(v), value) => v.insert(
            idx,
            if let Stored::Sym(x) = value {
                x
            } else {
                Sym::default()
            },
        ),
        (ColumnData::Date(v), value) => {
            v.insert(idx, if let Stored::Date(x) = value { x } else { 0 })
        }
        (ColumnData::Enum(v), value) => {
            v.insert(idx, if let Stored::Enum(x) = value { x } else { 0 })
        }
        (ColumnData::Ref { rows, dangling, .. }, value) => {
            rows.insert(idx, NO_ROW);
            let at = idx as u32;
            let mut shifted: FxHashMap<u32, Sym> = dangling
                .drain()
                .map(|(i, key)| (if i >= at { i + 1 } else { i }, key))
                .collect();
            // Placed as dangling; `resolve_into` turns the key into its row.
            if let Stored::RefKey(key) = value {
                shifted.insert(at, key);
            }
            *dangling = shifted;
        }
        (ColumnData::List { .. } | ColumnData::Skipped, _) => {}
    }
}

fn scalar_of(ty: FieldType) -> ScalarType {
    match ty {
        FieldType::Scalar(scalar) | FieldType::List(scalar) => scalar,
    }
}

impl Dataset {
    /// The row of the record of `coll` whose single key is `key`.
    pub fn find_row(&self, coll: usize, key: &str) -> Option<usize> {
        let sym = self.interner.get(key)?;
        self.collections
            .get(coll)?
            .key_row(&sym)
            .map(|row| row as usize)
    }

    /// The value of one field of one record, as written.
    pub fn cell(&self, schema: &DataSchema, coll: usize, row: usize, field: usize) -> OwnedCell {
        let column = &self.collections[coll].columns[field];
        if column.is_null(row) {
            return OwnedCell::Null;
        }
        let ty = scalar_of(schema.collections[coll].fields[field].ty);
        match &column.data {
            ColumnData::List { offsets, items } => {
                let (Some(start), Some(end)) = (offsets.get(row), offsets.get(row + 1)) else {
                    return OwnedCell::Null;
                };
                OwnedCell::List(
                    (*start as usize..*end as usize)
                        .map(|idx| self.flat_cell(schema, ty, items, idx))
                        .collect(),
                )
            }
            data => self.flat_cell(schema, ty, data, row),
        }
    }

    fn flat_cell(
        &self,
        schema: &DataSchema,
        ty: ScalarType,
        data: &ColumnData,
        idx: usize,
    ) -> OwnedCell {
        match data {
            ColumnData::Int(v) => v.get(idx).map_or(OwnedCell::Null, |x| OwnedCell::Int(*x)),
            ColumnData::Number(v) => v
                .get(idx)
                .map_or(OwnedCell::Null, |x| OwnedCell::Number(*x)),
            ColumnData::Bool(v) => v.get(idx).map_or(OwnedCell::Null, OwnedCell::Bool),
            ColumnData::Str(v) => v.get(idx).map_or(OwnedCell::Null, |x| {
                OwnedCell::Str(self.interner.resolve(x).to_string())
            }),
            ColumnData::Date(v) => v
                .get(idx)
                .map_or(OwnedCell::Null, |x| OwnedCell::Str(super::format_date(*x))),
            ColumnData::Enum(v) => match ty {
                ScalarType::Enum(e) => v
                    .get(idx)
                    .and_then(|x| schema.enums.get(e as usize)?.variants.get(*x as usize))
                    .map_or(OwnedCell::Null, |name| OwnedCell::Str(name.clone())),
                _ => OwnedCell::Null,
            },
            ColumnData::Ref { .. } => self
                .ref_key(schema, data, idx)
                .map_or(OwnedCell::Null, |x| {
                    OwnedCell::Str(self.interner.resolve(&x).to_string())
                }),
            ColumnData::List { .. } | ColumnData::Skipped => OwnedCell::Null,
        }
    }

    /// Every field of one record, as written.
    pub fn record(&self, schema: &DataSchema, coll: usize, row: usize) -> Vec<OwnedCell> {
        (0..schema.collections[coll].fields.len())
            .map(|field| self.cell(schema, coll, row, field))
            .collect()
    }

    /// Sets one field; returns the value it had.
    pub fn set_cell(
        &mut self,
        schema: &DataSchema,
        coll: usize,
        row: usize,
        field: usize,
        value: &OwnedCell,
    ) -> Result<OwnedCell, CellError> {
        let old = self.cell(schema, coll, row, field);
        let mut record = self.record(schema, coll, row);
        record[field] = value.clone();
        self.remove_row(schema, coll, row);
        if let Err(error) = self.insert_row(schema, coll, row, &record) {
            let mut restore = record;
            restore[field] = old.clone();
            let _ = self.insert_row(schema, coll, row, &restore);
            return Err(error);
        }
        Ok(old)
    }

    /// Removes a record; returns it, for undo.
    pub fn remove_row(&mut self, schema: &DataSchema, coll: usize, row: usize) -> Vec<OwnedCell> {
        let record = self.record(schema, coll, row);
        let references = self.references_into(schema, coll);
        let collection = &mut self.collections[coll];
        let len = collection.len;
        for column in &mut collection.columns {
            let mut nulls = bits_to_bools(column, len);
            nulls.remove(row);
            match &mut column.data {
                ColumnData::List { offsets, items } => {
                    let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
                    for _ in start..end {
                        remove_flat(items, start);
                    }
                    offsets.remove(row + 1);
                    for offset in offsets.iter_mut().skip(row + 1) {
                        *offset -= (end - start) as u32;
                    }
                }
                data => remove_flat(data, row),
            }
            bools_to_bits(column, &nulls);
        }
        if row < collection.positions.len() {
            collection.positions.remove(row);
        }
        // Rows after it moved up: lines are found from positions again.
        collection.first_line = None;
        collection.record_lines = None;
        collection.len -= 1;
        self.reindex(schema, coll, references);
        record
    }

    /// Inserts a record at `row` (the end: `len`), checked against the schema.
    pub fn insert_row(
        &mut self,
        schema: &DataSchema,
        coll: usize,
        row: usize,
        record: &[OwnedCell],
    ) -> Result<(), CellError> {
        let fields = &schema.collections[coll].fields;
        // Check every value first, so a refused one changes nothing.
        let mut built: Vec<(Stored, Vec<Stored>, bool)> = Vec::new();
        for (field_idx, (field, value)) in fields
            .iter()
            .zip(record.iter().chain(std::iter::repeat(&OwnedCell::Null)))
            .enumerate()
        {
            let scalar = scalar_of(field.ty);
            let null = matches!(value, OwnedCell::Null);
            // Fields no rule reads were not kept: nothing to store or check.
            if matches!(
                self.collections[coll].columns[field_idx].data,
                ColumnData::Skipped
            ) {
                built.push((Stored::Default, Vec::new(), false));
                continue;
            }
            if null && !field.optional && !matches!(field.ty, FieldType::List(_)) {
                return Err(CellError::NullNotAllowed {
                    expected: schema.scalar_name(scalar),
                });
            }
            match (field.ty, value) {
                (FieldType::List(_), OwnedCell::List(values)) => {
                    let items = values
                        .iter()
                        .map(|item| self.stored(schema, scalar, item))
                        .collect::<Result<Vec<_>, _>>()?;
                    built.push((Stored::Default, items, false));
                }
                (FieldType::List(_), OwnedCell::Null) => {
                    built.push((Stored::Default, Vec::new(), false))
                }
                (FieldType::List(_), _) => {
                    return Err(CellError::WrongType {
                        expected: schema.field_type_name(field.ty),
                        found: "a single value".into(),
                    });
                }
                (_, OwnedCell::Null) => built.push((Stored::Default, Vec::new(), true)),
                (_, value) => built.push((self.stored(schema, scalar, value)?, Vec::new(), false)),
            }
        }
        let references = self.references_into(schema, coll);
        let collection = &mut self.collections[coll];
        let len = collection.len;
        for (column, (value, items, null)) in collection.columns.iter_mut().zip(built) {
            let mut nulls = bits_to_bools(column, len);
            nulls.insert(row, null);
            match &mut column.data {
                ColumnData::List {
                    offsets,
                    items: flat,
                } => {
                    let start = offsets[row];
                    let n = items.len() as u32;
                    for (offset, item) in items.into_iter().enumerate() {
                        insert_flat(flat, start as usize + offset, item);
                    }
                    offsets.insert(row + 1, start + n);
                    for later in offsets.iter_mut().skip(row + 2) {
                        *later += n;
                    }
                }
                ColumnData::Skipped => {}
                data => insert_flat(data, row, value),
            }
            bools_to_bits(column, &nulls);
        }
        if row <= collection.positions.len() {
            // Added in a session: no position in any file.
            collection.positions.insert(row, None);
        }
        // Rows after it moved down: lines are found from positions again.
        collection.first_line = None;
        collection.record_lines = None;
        collection.len += 1;
        self.reindex(schema, coll, references);
        self.resolve_own_refs(coll);
        Ok(())
    }

    /// Resolves the dangling references of `coll`'s own fields whose key a
    /// record now has (the references of a record just inserted).
    fn resolve_own_refs(&mut self, coll: usize) {
        let targets: Vec<(usize, usize)> = self.collections[coll]
            .columns
            .iter()
            .enumerate()
            .filter_map(|(field, column)| match &column.data {
                ColumnData::Ref { target, .. } => Some((field, *target as usize)),
                ColumnData::List { items, .. } => match items.as_ref() {
                    ColumnData::Ref { target, .. } => Some((field, *target as usize)),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        for (field, target) in targets {
            let found: Vec<(u32, u32)> = {
                let data = match &self.collections[coll].columns[field].data {
                    ColumnData::List { items, .. } => items.as_ref(),
                    data => data,
                };
                let ColumnData::Ref { dangling, .. } = data else {
                    continue;
                };
                dangling
                    .iter()
                    .filter_map(|(idx, key)| {
                        self.collections[target].key_row(key).map(|row| (*idx, row))
                    })
                    .collect()
            };
            let data = match &mut self.collections[coll].columns[field].data {
                ColumnData::List { items, .. } => items.as_mut(),
                data => data,
            };
            if let ColumnData::Ref { rows, dangling, .. } = data {
                for (idx, row) in found {
                    rows[idx as usize] = row;
                    dangling.remove(&idx);
                }
            }
        }
    }

    /// `value` checked against `ty`, strings interned.
    fn stored(
        &mut self,
        schema: &DataSchema,
        ty: ScalarType,
        value: &OwnedCell,
    ) -> Result<Stored, CellError> {
        let wrong = |found: &str| CellError::WrongType {
            expected: schema.scalar_name(ty),
            found: found.into(),
        };
        Ok(match (ty, value) {
            (ScalarType::Int, OwnedCell::Int(x)) => Stored::Int(*x),
            (ScalarType::Number, OwnedCell::Int(x)) => Stored::Number(*x as f64),
            (ScalarType::Number, OwnedCell::Number(x)) => Stored::Number(*x),
            (ScalarType::Bool, OwnedCell::Bool(x)) => Stored::Bool(*x),
            (ScalarType::String, OwnedCell::Str(text)) => {
                Stored::Sym(self.interner.intern_extra(text))
            }
            (ScalarType::Ref(_), OwnedCell::Str(text)) => {
                Stored::RefKey(self.interner.intern_extra(text))
            }
            (ScalarType::Date, OwnedCell::Str(text)) => Stored::Date(
                super::parse_date(text).ok_or_else(|| CellError::InvalidDate(text.clone()))?,
            ),
            (ScalarType::Enum(idx), OwnedCell::Str(text)) => {
                let variants = &schema.enums[idx as usize].variants;
                Stored::Enum(variants.iter().position(|v| v == text).ok_or_else(|| {
                    CellError::UnknownVariant {
                        value: text.clone(),
                        variants: variants.clone(),
                    }
                })? as u16)
            }
            (_, OwnedCell::Null) => Stored::Default,
            (_, OwnedCell::Bool(_)) => return Err(wrong("a boolean")),
            (_, OwnedCell::Int(_)) => return Err(wrong("an integer")),
            (_, OwnedCell::Number(_)) => return Err(wrong("a number")),
            (_, OwnedCell::Str(_)) => return Err(wrong("a string")),
            (_, OwnedCell::List(_)) => return Err(wrong("a list")),
        })
    }

    /// The key each reference into `coll` names, by collection, field and
    /// element, taken before rows move.
    fn references_into(
        &self,
        schema: &DataSchema,
        coll: usize,
    ) -> Vec<(usize, usize, Vec<Option<Sym>>)> {
        let mut found = Vec::new();
        for (source, collection) in self.collections.iter().enumerate() {
            for (field, column) in collection.columns.iter().enumerate() {
                let data = match &column.data {
                    ColumnData::List { items, .. } => items.as_ref(),
                    data => data,
                };
                if let ColumnData::Ref { target, rows, .. } = data
                    && *target as usize == coll
                {
                    let keys = (0..rows.len())
                        .map(|idx| self.ref_key(schema, data, idx))
                        .collect();
                    found.push((source, field, keys));
                }
            }
        }
        found
    }

    /// Rebuilds the key index of `coll` and resolves the references into it
    /// again from the keys they named (rows move when records are removed or
    /// inserted; a reference may start or stop dangling).
    fn reindex(
        &mut self,
        schema: &DataSchema,
        coll: usize,
        references: Vec<(usize, usize, Vec<Option<Sym>>)>,
    ) {
        if let Some(key_field) = schema.collections[coll].key {
            self.collections[coll].key_index = KeyIndex::new(Some(key_field));
        }
        let mut rows_of: FxHashMap<Sym, u32> = FxHashMap::default();
        for (source, field, keys) in references {
            for (idx, key) in keys.iter().enumerate() {
                if let Some(key) = key
                    && !rows_of.contains_key(key)
                {
                    let row = self.collections[coll].key_row(key).unwrap_or(NO_ROW);
                    rows_of.insert(*key, row);
                }
                let _ = idx;
            }
            let column = &mut self.collections[source].columns[field];
            let data = match &mut column.data {
                ColumnData::List { items, .. } => items.as_mut(),
                data => data,
            };
            let (len, known) = (keys.len(), &rows_of);
            if let ColumnData::Ref { rows, dangling, .. } = data
                && rows.len() == len
            {
                dangling.clear();
                for (idx, key) in keys.into_iter().enumerate() {
                    match key.map(|k| (k, known.get(&k).copied().unwrap_or(NO_ROW))) {
                        Some((_, row)) if row != NO_ROW => rows[idx] = row,
                        Some((key, _)) => {
                            rows[idx] = NO_ROW;
                            dangling.insert(idx as u32, key);
                        }
                        None => rows[idx] = NO_ROW,
                    }
                }
            }
        }
    }
}
