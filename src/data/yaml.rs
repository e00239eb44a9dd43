//! YAML loader (to be written).

use crate::data::{DataError, DataSchema, Dataset};
use crate::source::SourceText;

/// Loads one YAML document.
pub fn load(_text: SourceText, _schema: &DataSchema) -> Result<Dataset, Vec<DataError>> {
    Err(Vec::new())
}
