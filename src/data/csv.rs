//! CSV loader (to be written).

use std::path::Path;

use crate::data::{DataError, DataSchema, Dataset};

/// Loads a directory of CSV files.
pub fn load_dir(_path: &Path, _schema: &DataSchema) -> Result<Dataset, Vec<DataError>> {
    Err(Vec::new())
}
