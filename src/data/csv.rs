//! CSV loader: a directory with one file per collection, `<collection>.csv`.
//!
//! Takes the directory and the [`DataSchema`]; gives a [`Dataset`] or every
//! error found. Each file is memory-mapped and read with the `csv` crate as
//! byte records; each cell goes straight into the [`DatasetBuilder`] as text
//! typed by its field. A record's position is the byte offset where its row
//! starts.
//!
//! Conventions: a header row names the fields (in any order; absent optional
//! fields are null); list cells join their items with `;` (empty items are
//! dropped); an empty cell is null, or an empty list for a list field;
//! booleans are `true`/`false`; a UTF-8 byte order mark is skipped. Files not
//! ending in `.csv` are ignored. Rows are numbered as a spreadsheet does: the
//! header is row 1.
//!
//! **Invariants:** a problem in one cell or row is reported and loading goes
//! on; cell spans are found by rescanning the row only when a cell is
//! reported. Nothing here panics on any input.

use std::path::{Path, PathBuf};

use csv::ByteRecord;
use miette::SourceSpan;

use crate::data::{
    Cell, CellError, DataError, DataFormat, DataSchema, Dataset, DatasetBuilder, FieldType,
    read_file,
};
use crate::source::{SourceId, SourceText};

/// Loads a directory of CSV files.
pub fn load_dir(path: &Path, schema: &DataSchema) -> Result<Dataset, Vec<DataError>> {
    let unreadable = |error: std::io::Error| {
        vec![DataError::Unreadable {
            path: path.display().to_string(),
            reason: error.to_string(),
        }]
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(path).map_err(unreadable)? {
        let file = entry.map_err(unreadable)?.path();
        if file
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"))
            && file.is_file()
        {
            files.push(file);
        }
    }
    // Directory order is arbitrary; sorted, the source ids and the order of
    // the errors are the same on every machine.
    files.sort();
    let total_bytes = files
        .iter()
        .filter_map(|file| file.metadata().ok())
        .map(|metadata| metadata.len() as usize)
        .sum();
    let mut builder = DatasetBuilder::with_size_hint(schema, total_bytes);
    let mut seen = vec![false; schema.collections.len()];
    for file in files {
        if builder.too_many_errors() {
            break;
        }
        let text = match read_file(&file) {
            Ok(text) => text,
            Err(error) => {
                builder.report(error);
                continue;
            }
        };
        let src_id = builder.add_source(text.clone());
        let name = file
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        match builder.collection_index(&name) {
            Some(coll) if std::mem::replace(&mut seen[coll], true) => {
                let error = builder.duplicate_collection(&text, SourceSpan::new(0.into(), 0), coll);
                builder.report(error);
            }
            Some(coll) => FileLoader {
                text: &text,
                bytes: text.bytes(),
                builder: &mut builder,
                src_id,
                coll,
            }
            .load(),
            None => {
                let error = builder.unknown_collection(&text, SourceSpan::new(0.into(), 0), &name);
                builder.report(error);
            }
        }
    }
    builder.finish(DataFormat::Csv)
}

fn span(start: usize, end: usize) -> SourceSpan {
    SourceSpan::new(start.into(), end.saturating_sub(start))
}

/// Where a row is in its file: `start..end` are its bytes without the line
/// break; `number` counts rows from the header, which is row 1.
#[derive(Clone, Copy)]
struct Row {
    start: usize,
    end: usize,
    number: u64,
}

/// The span of cell `index` of `row`, quotes included, found by rescanning
/// the row's bytes.
fn cell_span(bytes: &[u8], row: Row, index: usize) -> (usize, usize) {
    let mut pos = row.start;
    let mut cell = 0;
    loop {
        let cell_start = pos;
        if bytes.get(pos) == Some(&b'"') {
            pos += 1;
            loop {
                match bytes.get(pos) {
                    None => break,
                    Some(b'"') if bytes.get(pos + 1) == Some(&b'"') => pos += 2,
                    Some(b'"') => {
                        pos += 1;
                        break;
                    }
                    Some(_) => pos += 1,
                }
            }
        }
        while bytes
            .get(pos)
            .is_some_and(|byte| !matches!(byte, b',' | b'\n' | b'\r'))
        {
            pos += 1;
        }
        if cell == index || pos >= row.end || bytes.get(pos) != Some(&b',') {
            return (cell_start, pos);
        }
        pos += 1;
        cell += 1;
    }
}

/// The offset of the first byte of `bytes[start..end]` that is not valid UTF-8.
fn invalid_utf8_offset(bytes: &[u8], start: usize, end: usize) -> Option<usize> {
    let slice = bytes.get(start..end)?;
    std::str::from_utf8(slice)
        .err()
        .map(|error| start + error.valid_up_to())
}

struct FileLoader<'a, 'b, 's> {
    text: &'a SourceText,
    bytes: &'a [u8],
    builder: &'b mut DatasetBuilder<'s>,
    src_id: SourceId,
    coll: usize,
}

impl<'s> FileLoader<'_, '_, 's> {
    fn malformed(&mut self, start: usize, end: usize, message: String, help: &str) {
        let error = DataError::MalformedCsv {
            src: self.text.clone(),
            span: span(start, end),
            message,
            help: help.into(),
        };
        self.builder.report(error);
    }

    fn reject(&mut self, error: CellError, row: Row, cell: usize, field: usize) {
        let (start, end) = cell_span(self.bytes, row, cell);
        let schema = self.builder.schema();
        let collection = &schema.collections[self.coll];
        let error = error.at(
            self.text,
            span(start, end),
            &collection.name,
            &collection.fields[field].name,
        );
        self.builder.report(error);
    }

    /// Reports invalid UTF-8 in `row` (at cell `cell`, or anywhere if none).
    fn invalid_utf8(&mut self, row: Row, cell: Option<usize>) {
        let (start, end) = cell.map_or((row.start, row.end), |cell| {
            cell_span(self.bytes, row, cell)
        });
        let offset = invalid_utf8_offset(self.bytes, start, end).unwrap_or(start);
        let message = format!("invalid UTF-8 at byte {offset} (row {})", row.number);
        self.malformed(offset, offset + 1, message, "save the file as UTF-8");
    }

    fn load(mut self) {
        let bytes = self.bytes;
        let bom = if bytes.starts_with(b"\xEF\xBB\xBF") {
            3
        } else {
            0
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes.get(bom..).unwrap_or_default());
        let mut record = ByteRecord::new();
        let mut number = 0;
        let mut columns: Vec<Option<usize>> = Vec::new();
        let mut header_lacks: Vec<&'s str> = Vec::new();
        loop {
            if self.builder.too_many_errors() {
                return;
            }
            let start = bom + reader.position().byte() as usize;
            match reader.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => return,
                Err(error) => {
                    // With byte records and flexible rows, only I/O fails.
                    let end = bom + reader.position().byte() as usize;
                    self.malformed(
                        start,
                        end,
                        error.to_string(),
                        "check that the file is a readable CSV file",
                    );
                    return;
                }
            }
            number += 1;
            let mut start = bom
                + record
                    .position()
                    .map_or(start, |position| position.byte() as usize);
            // After a CRLF row, csv counts the `\n` as the start of the next.
            while matches!(bytes.get(start), Some(b'\n' | b'\r')) {
                start += 1;
            }
            let mut end = (bom + reader.position().byte() as usize).min(bytes.len());
            while end > start && matches!(bytes.get(end - 1), Some(b'\n' | b'\r')) {
                end -= 1;
            }
            let row = Row { start, end, number };
            if number == 1 {
                (columns, header_lacks) = self.header(&record, row);
            } else {
                self.row(&record, row, &columns, &header_lacks);
            }
        }
    }

    /// Reads the header: which field each column holds (`None` for a column
    /// that is reported and ignored), and the required fields no column holds.
    fn header(&mut self, record: &ByteRecord, row: Row) -> (Vec<Option<usize>>, Vec<&'s str>) {
        let schema = self.builder.schema();
        let collection = &schema.collections[self.coll];
        let mut given = vec![false; collection.fields.len()];
        let mut columns = Vec::with_capacity(record.len());
        for (cell, name) in record.iter().enumerate() {
            let Ok(name) = std::str::from_utf8(name) else {
                self.invalid_utf8(row, Some(cell));
                columns.push(None);
                continue;
            };
            let (start, end) = cell_span(self.bytes, row, cell);
            match self.builder.field_index(self.coll, name) {
                Some(field) if std::mem::replace(&mut given[field], true) => {
                    let field = format!("{}.{name}", collection.name);
                    self.builder.report(DataError::DuplicateField {
                        src: self.text.clone(),
                        span: span(start, end),
                        field,
                    });
                    columns.push(None);
                }
                Some(field) => columns.push(Some(field)),
                None => {
                    let error =
                        self.builder
                            .unknown_field(self.text, span(start, end), self.coll, name);
                    self.builder.report(error);
                    columns.push(None);
                }
            }
        }
        // A required column that is absent is reported once, at the header,
        // not once per row.
        let lacks: Vec<&str> = collection
            .fields
            .iter()
            .zip(&given)
            .filter(|(field, given)| {
                !**given && !field.optional && !matches!(field.ty, FieldType::List(_))
            })
            .map(|(field, _)| field.name.as_str())
            .collect();
        if !lacks.is_empty() {
            let error =
                self.builder
                    .missing_fields(self.text, span(row.start, row.end), self.coll, &lacks);
            self.builder.report(error);
        }
        (columns, lacks)
    }

    fn row(
        &mut self,
        record: &ByteRecord,
        row: Row,
        columns: &[Option<usize>],
        header_lacks: &[&str],
    ) {
        if record.len() != columns.len() {
            let message = format!(
                "row {} has {} cells, expected {} (as in the header)",
                row.number,
                record.len(),
                columns.len()
            );
            self.malformed(
                row.start,
                row.end,
                message,
                "quote cells that contain a comma, and give every row one cell per header column",
            );
            return;
        }
        self.builder
            .begin_record(self.coll, self.src_id, row.start as u64);
        for (cell, (value, column)) in record.iter().zip(columns).enumerate() {
            let Some(field) = *column else { continue };
            let Ok(value) = std::str::from_utf8(value) else {
                let _ = self.builder.set_other(self.coll, field, "invalid UTF-8");
                self.invalid_utf8(row, Some(cell));
                continue;
            };
            self.cell(value, row, cell, field);
        }
        let missing = self.builder.end_record(self.coll);
        let missing: Vec<&str> = missing
            .into_iter()
            .filter(|name| !header_lacks.contains(name))
            .collect();
        if !missing.is_empty() {
            let error = self.builder.missing_fields(
                self.text,
                span(row.start, row.end),
                self.coll,
                &missing,
            );
            self.builder.report(error);
        }
    }

    fn cell(&mut self, value: &str, row: Row, cell: usize, field: usize) {
        let is_list = matches!(
            self.builder.schema().collections[self.coll].fields[field].ty,
            FieldType::List(_)
        );
        if !is_list {
            let result = if value.is_empty() {
                self.builder.set(self.coll, field, Cell::Null)
            } else {
                self.builder.set_text(self.coll, field, value)
            };
            if let Err(error) = result {
                self.reject(error, row, cell, field);
            }
            return;
        }
        if let Err(error) = self.builder.begin_list(self.coll, field) {
            self.reject(error, row, cell, field);
            return;
        }
        for item in value.split(';').filter(|item| !item.is_empty()) {
            if let Err(error) = self.builder.push_item_text(self.coll, field, item) {
                self.reject(error, row, cell, field);
            }
        }
        self.builder.end_list(self.coll, field);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::data::fixture::{
        self, CSV_FILES, EXPECTED_DUMP, JSON_DOC, PEOPLE, TEAMS, YAML_DOC, csv_dir,
    };

    const HEADER: &str = "id,name,age,score,active,born,role,team,friends\n";

    /// The errors of loading `people.csv` holding `people` (after the
    /// standard header) and any `other` files, as `"E0504 3:12"`.
    fn check(people: &str, other: &[(&str, &[u8])]) -> Vec<String> {
        let text = format!("{HEADER}{people}");
        let mut files: Vec<(&str, &[u8])> = vec![("people.csv", text.as_bytes())];
        files.extend_from_slice(other);
        let dir = csv_dir(&files);
        fixture::expect_errors(&fixture::schema(), load_dir(dir.path(), &fixture::schema()))
    }

    fn files_of(files: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static [u8])> {
        files
            .iter()
            .map(|(name, text)| (*name, text.as_bytes()))
            .collect()
    }

    #[test]
    fn loads_values_nulls_refs_lists_and_positions() {
        let schema = fixture::schema();
        let mut files = files_of(&CSV_FILES);
        files.push(("notes.txt", b"not data"));
        let dir = csv_dir(&files);
        let dataset = fixture::expect_dataset(load_dir(dir.path(), &schema));
        assert_eq!(fixture::dump(&schema, &dataset), EXPECTED_DUMP);
        assert_eq!(dataset.format, DataFormat::Csv);
        let people_csv = CSV_FILES[1].1;
        let starts: Vec<u64> = ["\np1,", "\np2,", "\np3,"]
            .iter()
            .map(|needle| people_csv.find(needle).unwrap_or_default() as u64 + 1)
            .collect();
        assert_eq!(dataset.collections[PEOPLE].positions.to_vec(), starts);
        let (file, line, col) = dataset.position_of(TEAMS, 1).unwrap_or_default();
        assert!(file.ends_with("teams.csv"), "{file}");
        assert_eq!((line, col), (3, 1));
    }

    #[test]
    fn quoted_cells_bom_and_crlf() {
        let schema = fixture::schema();
        let dir = csv_dir(&[(
            "teams.csv",
            b"\xEF\xBB\xBFid,tags,size\r\n\"t,1\",\"a;\"\"b\"\"\",\r\nt2,,4\r\n",
        )]);
        let dataset = fixture::expect_dataset(load_dir(dir.path(), &schema));
        assert_eq!(
            fixture::dump(&schema, &dataset),
            "people (0 records)\nteams (2 records)\n  \"t,1\" | null | [\"a\", \"\\\"b\\\"\"]\n  \"t2\" | 4 | []\n"
        );
        assert_eq!(dataset.collections[TEAMS].positions.to_vec(), [17, 35]);
    }

    #[test]
    fn wrong_cell_count_names_the_row_and_counts() {
        let dir = csv_dir(&[("teams.csv", b"id,size\nt1,1\nt2,2,3\nt3\n")]);
        let errors = load_dir(dir.path(), &fixture::schema())
            .err()
            .unwrap_or_default();
        assert_eq!(fixture::codes_at(&errors), ["E0503 3:1", "E0503 4:1"]);
        assert_eq!(
            errors[0].to_string(),
            "malformed CSV: row 3 has 3 cells, expected 2 (as in the header)"
        );
        assert_eq!(
            errors[1].to_string(),
            "malformed CSV: row 4 has 1 cells, expected 2 (as in the header)"
        );
    }

    #[test]
    fn wrong_type_points_at_the_cell() {
        assert_eq!(
            check("p1,A,thirty,1,yes,2000-01-01,admin,,\n", &[]),
            ["E0504 2:6", "E0504 2:15"]
        );
        assert_eq!(
            check("p1,A,\"3 0\",1,true,2000-01-01,admin,,\n", &[]),
            ["E0504 2:6"]
        );
    }

    #[test]
    fn duplicate_key_and_missing_value() {
        assert_eq!(
            check(
                "p1,A,1,1,true,2000-01-01,admin,,\np1,B,1,1,true,2000-01-01,admin,,\n",
                &[]
            ),
            ["E0505 3:1"]
        );
        assert_eq!(
            check("p1,A,,1,true,2000-01-01,admin,,\n", &[]),
            ["E0504 2:6"]
        );
    }

    #[test]
    fn missing_column_is_reported_once_at_the_header() {
        let dir = csv_dir(&[("people.csv", b"id,name,score,active,born,role\np1,A,1,true,2000-01-01,admin\np2,B,1,true,2000-01-01,admin\n")]);
        let errors = load_dir(dir.path(), &fixture::schema())
            .err()
            .unwrap_or_default();
        assert_eq!(fixture::codes_at(&errors), ["E0506 1:1"]);
        assert_eq!(errors[0].to_string(), "record of `people` lacks `age`");
    }

    #[test]
    fn unknown_field_duplicate_column_and_unknown_file() {
        let dir = csv_dir(&[
            ("teams.csv", b"id,szie,id\nt1,1,t1\n"),
            ("peeple.csv", b"id\n"),
            ("people.csv", b""),
        ]);
        let errors = load_dir(dir.path(), &fixture::schema())
            .err()
            .unwrap_or_default();
        assert_eq!(
            fixture::codes_at(&errors),
            ["E0508 1:1", "E0507 1:4", "E0513 1:9"]
        );
        let helps: Vec<String> = errors
            .iter()
            .filter_map(|error| miette::Diagnostic::help(error).map(|help| help.to_string()))
            .collect();
        assert_eq!(
            helps[..2],
            [
                "did you mean `people`?".to_string(),
                "did you mean `size`?".to_string()
            ]
        );
    }

    #[test]
    fn bad_date_unknown_variant_and_overflow() {
        let errors = check("p1,A,9223372036854775808,1,true,2023-02-30,admn,,\n", &[]);
        assert_eq!(errors, ["E0509 2:6", "E0510 2:33", "E0511 2:44"]);
    }

    #[test]
    fn empty_list_items_are_dropped() {
        let people = format!("{HEADER}p1,A,1,1,true,2000-01-01,admin,,p1;;p1;\n");
        let dir = csv_dir(&[("people.csv", people.as_bytes())]);
        let dataset = fixture::expect_dataset(load_dir(dir.path(), &fixture::schema()));
        assert!(fixture::dump(&fixture::schema(), &dataset).contains("| [p1->0, p1->0] |"));
    }

    #[test]
    fn invalid_utf8_gives_the_byte_offset() {
        let mut text = format!("{HEADER}p1,Ann,1,1,true,2000-01-01,admin,,\n").into_bytes();
        let offset = HEADER.len() + 4;
        text[offset] = 0xFF;
        let dir = csv_dir(&[("people.csv", &text)]);
        let errors = load_dir(dir.path(), &fixture::schema())
            .err()
            .unwrap_or_default();
        assert_eq!(fixture::codes_at(&errors), ["E0503 2:5"]);
        assert_eq!(
            errors[0].to_string(),
            format!("malformed CSV: invalid UTF-8 at byte {offset} (row 2)")
        );
    }

    #[test]
    fn unreadable_directory() {
        let errors = load_dir(Path::new("/nonexistent/bangfu-data"), &fixture::schema())
            .err()
            .unwrap_or_default();
        assert_eq!(fixture::codes_at(&errors), ["E0512"]);
    }

    #[test]
    fn json_yaml_and_csv_agree() {
        let schema = fixture::schema();
        let json = fixture::expect_dataset(crate::data::json::load(
            SourceText::from_string("t.json", JSON_DOC),
            &schema,
        ));
        let yaml = fixture::expect_dataset(crate::data::yaml::load(
            SourceText::from_string("t.yaml", YAML_DOC),
            &schema,
        ));
        let dir = csv_dir(&files_of(&CSV_FILES));
        let csv = fixture::expect_dataset(load_dir(dir.path(), &schema));
        let json = fixture::dump(&schema, &json);
        assert_eq!(json, fixture::dump(&schema, &yaml));
        assert_eq!(json, fixture::dump(&schema, &csv));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn arbitrary_bytes_never_panic(people in proptest::collection::vec(any::<u8>(), 0..200), teams in "[a-z0-9,;\"\n\r]{0,80}") {
            let dir = csv_dir(&[("people.csv", &people), ("teams.csv", teams.as_bytes())]);
            let _ = load_dir(dir.path(), &fixture::schema());
        }

        #[test]
        fn mutations_of_valid_files_never_panic(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6)) {
            let mut bytes = CSV_FILES[1].1.as_bytes().to_vec();
            for (idx, byte, op) in edits {
                let pos = idx.index(bytes.len() + 1);
                match op {
                    0 => bytes.insert(pos, byte),
                    1 if pos < bytes.len() => { bytes.remove(pos); }
                    _ if pos < bytes.len() => bytes[pos] = byte,
                    _ => {}
                }
            }
            let dir = csv_dir(&[("people.csv", &bytes), ("teams.csv", CSV_FILES[0].1.as_bytes())]);
            let _ = load_dir(dir.path(), &fixture::schema());
        }
    }
}
