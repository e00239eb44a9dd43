//! Dangling references: keys of `ref` fields that name no record.
//!
//! By default a dangling reference reads as null, like a missing one: the
//! rules decide what that means (`require h.helper != null` flags both).
//! With `--strict-refs` every dangling reference is a data diagnostic
//! (E0515), up to [`MAX_ERRORS`], each at the record that holds it.
//!
//! **Invariant:** runs on a loaded [`Dataset`] and changes nothing in it.
//! Only fields loaded into columns can be checked: callers mark every `ref`
//! field kept ([`keep_ref_fields`]) before loading.

use miette::SourceSpan;

use super::{
    ColumnData, DataError, DataSchema, Dataset, FieldType, MAX_ERRORS, NO_ROW, ScalarType,
};
use crate::diag;

/// Marks every `ref` and `list<ref>` field kept, so the loader stores its
/// keys for [`dangling_refs`].
pub fn keep_ref_fields(schema: &mut DataSchema) {
    for collection in &mut schema.collections {
        for field in &mut collection.fields {
            if matches!(
                field.ty,
                FieldType::Scalar(ScalarType::Ref(_)) | FieldType::List(ScalarType::Ref(_))
            ) {
                field.keep = true;
            }
        }
    }
}

/// Target collections with more keys than this get no did-you-mean (the
/// search is linear in their size).
const SUGGEST_LIMIT: usize = 10_000;

/// Every dangling reference of the dataset, up to [`MAX_ERRORS`].
pub fn dangling_refs(schema: &DataSchema, dataset: &Dataset) -> Vec<DataError> {
    let mut errors = Vec::new();
    for (coll_idx, collection) in dataset.collections.iter().enumerate() {
        let Some(source) = collection.source else {
            continue;
        };
        let src = dataset.sources.get(source);
        let coll_schema = &schema.collections[coll_idx];
        for (field_idx, column) in collection.columns.iter().enumerate() {
            let (target, dangling, rows, offsets) = match &column.data {
                ColumnData::Ref {
                    target,
                    dangling,
                    rows,
                } => (*target, dangling, rows, None),
                ColumnData::List { offsets, items } => match items.as_ref() {
                    ColumnData::Ref {
                        target,
                        dangling,
                        rows,
                    } => (*target, dangling, rows, Some(offsets)),
                    _ => continue,
                },
                _ => continue,
            };
            for (item, row) in rows.iter().enumerate() {
                if *row != NO_ROW {
                    continue;
                }
                // A null reference has no key; a dangling one keeps the key written.
                let Some(key) = dangling.get(&(item as u32)) else {
                    continue;
                };
                let record = match offsets {
                    None => item,
                    // The record whose item range holds `item`.
                    Some(offsets) => offsets.partition_point(|o| *o as usize <= item) - 1,
                };
                if offsets.is_none() && column.is_null(record) {
                    continue;
                }
                if errors.len() >= MAX_ERRORS {
                    return errors;
                }
                let key = dataset.interner.resolve(key).to_string();
                let target_name = schema.collections[target as usize].name.clone();
                let target_keys = dataset.collections[target as usize].keys();
                let help = if target_keys.len() <= SUGGEST_LIMIT {
                    let candidates: Vec<&str> = target_keys
                        .iter()
                        .map(|sym| dataset.interner.resolve(sym))
                        .collect();
                    match diag::did_you_mean(&key, candidates.iter().copied()) {
                        Some(close) => format!("did you mean `{close}`?"),
                        None => format!(
                            "add a record of `{target_name}` with this key, or correct the reference"
                        ),
                    }
                } else {
                    format!(
                        "add a record of `{target_name}` with this key, or correct the reference"
                    )
                };
                let offset = collection.positions.get(record).unwrap_or(0) as usize;
                errors.push(DataError::dangling(
                    src.clone(),
                    SourceSpan::new(offset.into(), 1),
                    format!(
                        "{}.{}",
                        coll_schema.name, coll_schema.fields[field_idx].name
                    ),
                    key,
                    target_name,
                    help,
                ));
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::source::SourceText;

    fn check(doc: &str) -> Vec<String> {
        let mut schema = fixture::schema();
        keep_ref_fields(&mut schema);
        let src = SourceText::from_string("d.json", doc);
        let dataset = fixture::expect_dataset(super::super::json::load(src, &schema));
        fixture::codes_at(&dangling_refs(&schema, &dataset))
    }

    fn person(id: &str, team: &str, friends: &str) -> String {
        format!(
            r#"{{"id": "{id}", "name": "n", "age": 1, "score": 1.0, "active": true, "born": "2000-01-01", "role": "admin", "team": {team}, "friends": [{friends}]}}"#
        )
    }

    #[test]
    fn reports_dangling_scalar_and_list_refs_at_their_records() {
        let doc = format!(
            "{{\"people\": [\n{},\n{},\n{}\n], \"teams\": [{{\"id\": \"t1\"}}]}}",
            person("a", "\"t1\"", ""),
            person("b", "\"t2\"", "\"a\""),
            person("c", "null", "\"a\", \"zz\"")
        );
        assert_eq!(check(&doc), ["E0515 3:1", "E0515 4:1"]);
    }

    #[test]
    fn null_and_resolved_refs_are_fine() {
        let doc = format!(
            "{{\"people\": [{}], \"teams\": []}}",
            person("a", "null", "\"a\"")
        );
        assert!(check(&doc).is_empty());
    }
}
