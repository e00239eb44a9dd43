//! JSON loader (to be written).

use crate::data::{DataError, DataSchema, Dataset};
use crate::source::SourceText;

/// Loads one JSON document.
pub fn load(_text: SourceText, _schema: &DataSchema) -> Result<Dataset, Vec<DataError>> {
    Err(Vec::new())
}
