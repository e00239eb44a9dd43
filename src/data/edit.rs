//! Changes to a loaded dataset in memory, for what-if sessions: set a field,
//! remove a record, insert one. The data file is never touched.
//!
//! Every change keeps the dataset's invariants: keys indexed, references
//! resolved to rows (rows after a removed record move down by one), nulls
//! marked. Each operation returns what undoes it.

use super::{
    Cell, CellError, Column, ColumnData, DataSchema, Dataset, FieldType, NO_ROW, ScalarType,
    empty_scalar_column, push_scalar,
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

impl OwnedCell {
    fn as_cell(&self) -> Cell<'_> {
        match self {
            OwnedCell::Null | OwnedCell::List(_) => Cell::Null,
            OwnedCell::Bool(b) => Cell::Bool(*b),
            OwnedCell::Int(i) => Cell::Int(*i),
            OwnedCell::Number(n) => Cell::Number(*n),
            OwnedCell::Str(s) => Cell::Str(s),
        }
    }
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

macro_rules! each_vec {
    ($data:expr, $v:ident => $body:expr, $ref_keys:ident, $ref_rows:ident => $ref_body:expr) => {
        match $data {
            ColumnData::Int($v) => $body,
            ColumnData::Number($v) => $body,
            ColumnData::Bool($v) => $body,
            ColumnData::Str($v) => $body,
            ColumnData::Date($v) => $body,
            ColumnData::Enum($v) => $body,
            ColumnData::Ref {
                keys: $ref_keys,
                rows: $ref_rows,
                ..
            } => $ref_body,
            ColumnData::List { .. } | ColumnData::Skipped => {}
        }
    };
}

/// Removes element `idx` of a flat column (lists handled by the caller).
fn remove_flat(data: &mut ColumnData, idx: usize) {
    each_vec!(data, v => { v.remove(idx); }, keys, rows => { keys.remove(idx); rows.remove(idx); });
}

/// Moves the only element of `from` to position `idx` of `data`.
fn insert_flat(data: &mut ColumnData, idx: usize, from: ColumnData) {
    match (data, from) {
        (ColumnData::Int(v), ColumnData::Int(f)) => v.splice(idx..idx, f).for_each(drop),
        (ColumnData::Number(v), ColumnData::Number(f)) => v.splice(idx..idx, f).for_each(drop),
        (ColumnData::Bool(v), ColumnData::Bool(f)) => v.splice(idx..idx, f).for_each(drop),
        (ColumnData::Str(v), ColumnData::Str(f)) => v.splice(idx..idx, f).for_each(drop),
        (ColumnData::Date(v), ColumnData::Date(f)) => v.splice(idx..idx, f).for_each(drop),
        (ColumnData::Enum(v), ColumnData::Enum(f)) => v.splice(idx..idx, f).for_each(drop),
        (ColumnData::Ref { keys, rows, .. }, ColumnData::Ref { keys: fk, .. }) => {
            let n = fk.len();
            keys.splice(idx..idx, fk).for_each(drop);
            rows.splice(idx..idx, std::iter::repeat_n(NO_ROW, n))
                .for_each(drop);
        }
        _ => {}
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
            .key_index
            .get(&sym)
            .map(|row| *row as usize)
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
            ColumnData::Bool(v) => v.get(idx).map_or(OwnedCell::Null, |x| OwnedCell::Bool(*x)),
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
            ColumnData::Ref { keys, .. } => keys.get(idx).map_or(OwnedCell::Null, |x| {
                OwnedCell::Str(self.interner.resolve(x).to_string())
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
        collection.len -= 1;
        self.reindex(schema, coll);
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
        // Build every value first, so a refused one changes nothing.
        let mut built: Vec<(ColumnData, Vec<ColumnData>, bool)> = Vec::new();
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
                built.push((ColumnData::Skipped, Vec::new(), false));
                continue;
            }
            if null && !field.optional && !matches!(field.ty, FieldType::List(_)) {
                return Err(CellError::NullNotAllowed {
                    expected: schema.scalar_name(scalar),
                });
            }
            let mut one = empty_scalar_column(scalar);
            let mut items = Vec::new();
            match (field.ty, value) {
                (FieldType::List(_), OwnedCell::List(values)) => {
                    for item in values {
                        let mut cell = empty_scalar_column(scalar);
                        push_scalar(
                            schema,
                            &mut self.interner,
                            &mut cell,
                            scalar,
                            item.as_cell(),
                        )?;
                        items.push(cell);
                    }
                }
                (FieldType::List(_), OwnedCell::Null) => {}
                (FieldType::List(_), _) => {
                    return Err(CellError::WrongType {
                        expected: schema.field_type_name(field.ty),
                        found: "a single value".into(),
                    });
                }
                (_, OwnedCell::Null) => super::push_default(&mut one),
                (_, value) => push_scalar(
                    schema,
                    &mut self.interner,
                    &mut one,
                    scalar,
                    value.as_cell(),
                )?,
            }
            built.push((one, items, null));
        }
        let collection = &mut self.collections[coll];
        let len = collection.len;
        for (column, (one, items, null)) in collection.columns.iter_mut().zip(built) {
            let mut nulls = bits_to_bools(column, len);
            nulls.insert(row, null && !matches!(column.data, ColumnData::List { .. }));
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
                data => insert_flat(data, row, one),
            }
            bools_to_bits(column, &nulls);
        }
        if row <= collection.positions.len() {
            // Added in a session: no position in any file.
            collection.positions.insert(row, u64::MAX);
        }
        collection.len += 1;
        self.reindex(schema, coll);
        Ok(())
    }

    /// Rebuilds the key index of `coll` and resolves every reference again
    /// (rows move when records are removed or inserted).
    fn reindex(&mut self, schema: &DataSchema, coll: usize) {
        if let Some(key_field) = schema.collections[coll].key {
            let collection = &mut self.collections[coll];
            collection.key_index.clear();
            if let ColumnData::Str(keys) = &collection.columns[key_field].data {
                for (row, key) in keys.iter().enumerate() {
                    collection.key_index.entry(*key).or_insert(row as u32);
                }
            }
        }
        let key_indexes: Vec<_> = self
            .collections
            .iter()
            .map(|c| c.key_index.clone())
            .collect();
        for collection in &mut self.collections {
            for column in &mut collection.columns {
                super::resolve_refs(&mut column.data, &key_indexes);
            }
        }
    }
}
