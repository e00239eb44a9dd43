//! CSV loader: a directory with one file per collection, `<collection>.csv`.
//!
//! Takes the directory and the [`DataSchema`]; gives a [`Dataset`] or every
//! error found. Each file is memory-mapped and read with the `csv` crate as
//! byte records; each cell goes straight into a [`Chunk`] as text typed by
//! its field. A record's position is the byte offset where its row starts.
//!
//! Conventions: a header row names the fields (in any order; absent optional
//! fields are null); list cells join their items with `;` (empty items are
//! dropped); an empty cell is null, or an empty list for a list field;
//! booleans are `true`/`false`; a UTF-8 byte order mark is skipped. Files not
//! ending in `.csv` are ignored. Rows are numbered as a spreadsheet does: the
//! header is row 1.
//!
//! Large files are read in parallel: after the header, a file is cut into
//! chunks at line breaks and every chunk is read on its own thread from its
//! first line. A line break inside a quoted cell is not a row boundary, so a
//! chunk is only kept if the chunk before it ended exactly where it starts
//! (the reader of the earlier chunk saw a row end there); otherwise the
//! earlier chunk simply reads on, and the result is the same as reading the
//! file front to back. Row numbers in messages are fixed up when the chunks
//! are put together. Every chunk hands the pages it read back to the kernel.
//!
//! **Invariants:** a problem in one cell or row is reported and loading goes
//! on; cell spans are found by rescanning the row only when a cell is
//! reported. Nothing here panics on any input.

use std::path::{Path, PathBuf};

use csv::ByteRecord;
use miette::SourceSpan;
use rayon::prelude::*;

use crate::data::{
    Cell, CellError, Chunk, DataError, DataFormat, DataSchema, Dataset, DatasetBuilder, FieldType,
    LoadContext, read_file,
};
use crate::source::{SourceId, SourceText};

/// Loads a directory of CSV files.
pub fn load_dir(path: &Path, schema: &DataSchema) -> Result<Dataset, Vec<DataError>> {
    load_dir_with(path, schema, None, true)
}

/// One file to read: its text and collection.
struct FileJob {
    text: SourceText,
    src_id: SourceId,
    coll: usize,
}

/// Loads a directory of CSV files, cutting files into chunks of `chunk`
/// bytes (default: `chunk::chunk_bytes`); without `fast`, every row is read with
/// the `csv` crate (tests compare the two).
pub(crate) fn load_dir_with(
    path: &Path,
    schema: &DataSchema,
    chunk: Option<usize>,
    fast: bool,
) -> Result<Dataset, Vec<DataError>> {
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
    let mut builder = DatasetBuilder::new(schema);
    let mut seen = vec![false; schema.collections.len()];
    // Per file, in order: the errors found before reading it, and the job.
    let mut plan: Vec<(Vec<DataError>, Option<FileJob>)> = Vec::new();
    // (the errors are taken out before the jobs are borrowed)
    for file in files {
        let mut early = Vec::new();
        let text = match read_file(&file) {
            Ok(text) => text,
            Err(error) => {
                plan.push((vec![error], None));
                continue;
            }
        };
        let src_id = builder.add_source(text.clone());
        let name = file
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        let job = match builder.collection_index(&name) {
            Some(coll) if std::mem::replace(&mut seen[coll], true) => {
                early.push(builder.duplicate_collection(&text, SourceSpan::new(0.into(), 0), coll));
                None
            }
            Some(coll) => Some(FileJob { text, src_id, coll }),
            None => {
                early.push(builder.unknown_collection(&text, SourceSpan::new(0.into(), 0), &name));
                None
            }
        };
        plan.push((early, job));
    }
    let (early, jobs): (Vec<Vec<DataError>>, Vec<Option<FileJob>>) = plan.into_iter().unzip();
    let total: usize = jobs
        .iter()
        .filter_map(Option::as_ref)
        .map(|job| job.text.bytes().len())
        .sum();
    let chunk = chunk
        .unwrap_or_else(|| super::chunk::chunk_bytes(total))
        .max(1);
    let context = builder.context().clone();
    // Headers first (each file's chunks need its columns), then every chunk
    // of every file at once.
    let headers: Vec<Option<Header<'_, '_>>> = jobs
        .par_iter()
        .map(|job| job.as_ref().map(|job| read_header(&context, job)))
        .collect();
    let mut tasks: Vec<(usize, usize, usize)> = Vec::new();
    let mut splits: Vec<Vec<usize>> = Vec::new();
    for (file, header) in headers.iter().enumerate() {
        let Some(header) = header else {
            splits.push(Vec::new());
            continue;
        };
        let bytes = header.bytes;
        let mut points = vec![header.end];
        let mut next = header.end + chunk;
        while next < bytes.len() {
            match memchr::memchr(b'\n', &bytes[next..]) {
                Some(newline) if next + newline + 1 < bytes.len() => {
                    points.push(next + newline + 1);
                    next += newline + 1 + chunk;
                }
                _ => break,
            }
        }
        if header.done {
            points.truncate(1);
        }
        for (idx, point) in points.iter().enumerate() {
            tasks.push((file, idx, *point));
        }
        splits.push(points);
    }
    let timing = crate::data::Timing::start(format!("csv: {} chunks", tasks.len()));
    let parts: Vec<Part<'_>> = tasks
        .par_iter()
        .map(|&(file, idx, start)| match (&headers[file], &jobs[file]) {
            (Some(header), Some(job)) => {
                read_part(&context, job, header, start, &splits[file][idx + 1..], fast)
            }
            _ => Part::empty(&context, start),
        })
        .collect();
    drop(timing);
    // Put each file together: from the first chunk, follow where each
    // accepted chunk ended.
    let mut parts = parts.into_iter().peekable();
    // The line of the first record of each file whose records are one line
    // each.
    let mut first_lines: Vec<(SourceId, usize)> = Vec::new();
    for (early, header) in early.into_iter().zip(headers) {
        for error in early {
            builder.report(error);
        }
        let Some(header) = header else { continue };
        builder.push_chunk(header.chunk);
        let mut rows_before = 1u64;
        let mut expect = header.end;
        let mut lines_are_rows = true;
        while let Some(mut part) = parts.next_if(|part| part.header == header.id) {
            if part.start != expect {
                continue;
            }
            part.chunk.settle_rows(rows_before);
            rows_before += part.rows;
            expect = part.end;
            lines_are_rows &= part.lines_are_rows;
            builder.push_chunk(part.chunk);
        }
        if lines_are_rows {
            let header_lines = crate::source::count_newlines(&header.bytes[..header.end]);
            first_lines.push((header.id, header_lines + 1));
        }
    }
    let mut dataset = builder.finish(DataFormat::Csv)?;
    for collection in &mut dataset.collections {
        collection.first_line = first_lines
            .iter()
            .find(|(source, _)| Some(*source) == collection.source)
            .map(|(_, line)| *line);
    }
    Ok(dataset)
}

/// A file's header, read before its chunks.
struct Header<'a, 's> {
    /// Which job it belongs to (the file's source id).
    id: SourceId,
    bytes: &'a [u8],
    /// The chunk holding the header's errors and newline counts.
    chunk: Chunk<'s>,
    /// Where the first data row starts.
    end: usize,
    /// Whether the file ended at (or before) the header.
    done: bool,
    columns: Vec<Option<usize>>,
    lacks: Vec<&'s str>,
}

/// What one chunk read.
struct Part<'s> {
    header: SourceId,
    start: usize,
    /// Where reading stopped: a later chunk's start, or the end of the file.
    end: usize,
    /// Rows read (records, counted as row numbers count them).
    rows: u64,
    /// Whether every line it read was one row: no blank line, no line
    /// break inside a quoted cell.
    lines_are_rows: bool,
    chunk: Chunk<'s>,
}

impl<'s> Part<'s> {
    fn empty(context: &LoadContext<'s>, start: usize) -> Part<'s> {
        Part {
            header: SourceId(u32::MAX),
            start,
            end: start,
            rows: 0,
            lines_are_rows: false,
            chunk: Chunk::new(context),
        }
    }
}

fn bom_len(bytes: &[u8]) -> usize {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    }
}

fn reader_at(bytes: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes)
}

/// Reads the header row of a file.
fn read_header<'a, 's>(context: &LoadContext<'s>, job: &'a FileJob) -> Header<'a, 's> {
    let bytes = job.text.bytes();
    let bom = bom_len(bytes);
    let mut chunk = Chunk::new(context);
    let mut reader = reader_at(bytes.get(bom..).unwrap_or_default());
    let mut record = ByteRecord::new();
    let mut loader = FileLoader {
        text: &job.text,
        bytes,
        chunk: &mut chunk,
        src_id: job.src_id,
        coll: job.coll,
        valid_until: 0,
    };
    let (mut columns, mut lacks, mut end, mut done) = (Vec::new(), Vec::new(), bytes.len(), true);
    match loader.next_row(&mut reader, &mut record, bom, 1) {
        Next::Row(row) => {
            (columns, lacks) = loader.header(&record, row);
            end = bom + reader.position().byte() as usize;
            done = end >= bytes.len();
        }
        Next::End | Next::Failed => {}
    }
    chunk.count_lines(job.src_id, bytes, 0, end);
    Header {
        id: job.src_id,
        bytes,
        chunk,
        end,
        done,
        columns,
        lacks,
    }
}

/// Reads the rows of a file from `start` (a line start after the header)
/// until the reader lands exactly on one of the later chunks' starts
/// `later`, or the file ends.
///
/// Rows without a quote or a carriage return inside are split by hand (a
/// `memchr` for the line end, one for commas): that is what the `csv` crate
/// makes of them, without copying. From the first row that has either, the
/// rest of the chunk is read with the `csv` crate.
fn read_part<'s>(
    context: &LoadContext<'s>,
    job: &FileJob,
    header: &Header<'_, 's>,
    start: usize,
    later: &[usize],
    fast: bool,
) -> Part<'s> {
    let bytes = job.text.bytes();
    let expect = later.first().map_or(bytes.len(), |next| *next) - start;
    let mut chunk = Chunk::with_size_hint(context, expect);
    // The newlines of the bytes the chunk expects to read: as many rows as
    // that, or about (quoted line breaks), so the columns are allocated once.
    job.text.prefetch(start..start + expect);
    let expected_lines = chunk.count_lines(job.src_id, bytes, start, start + expect);
    chunk.reserve(job.coll, expected_lines as usize + 1);
    // One UTF-8 check for the bytes the chunk expects to read, instead of
    // one per row; up to the first invalid byte if there is one.
    let expect_end = start + expect;
    // The SIMD check answers only yes or no; where the bytes are not valid,
    // the standard one finds the first invalid byte.
    let expected = &bytes[start..expect_end];
    let valid_until =
        match simdutf8::basic::from_utf8(expected).map_err(|_| std::str::from_utf8(expected)) {
            Ok(_) | Err(Ok(_)) => expect_end,
            Err(Err(error)) => start + error.valid_up_to(),
        };
    let mut loader = FileLoader {
        text: &job.text,
        bytes,
        chunk: &mut chunk,
        src_id: job.src_id,
        coll: job.coll,
        valid_until,
    };
    let mut rows = 0u64;
    let mut next_split = 0;
    let mut pos = start;
    let mut end = None;
    // The fast path: rows are gathered in batches and stored column by
    // column ([`FileLoader::rows`]).
    let mut batch = Batch::default();
    let stride = header.columns.len();
    // Just after the last row read: where the error limit stops the chunk.
    let mut resume = start;
    while fast && pos < bytes.len() {
        if loader.chunk.too_many_errors() {
            end = Some(pos);
            break;
        }
        let line_end = memchr::memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |i| pos + i);
        let mut content_end = line_end;
        if content_end > pos && bytes[content_end - 1] == b'\r' {
            content_end -= 1;
        }
        let line = &bytes[pos..content_end];
        if memchr::memchr2(b'"', b'\r', line).is_some() {
            break;
        }
        let next = (line_end + 1).min(bytes.len());
        if !line.is_empty() {
            rows += 1;
            let row = Row {
                start: pos,
                end: content_end,
                number: rows,
            };
            let from = batch.cells.len();
            split_commas(line, &mut batch.cells);
            if batch.cells.len() - from == stride && content_end <= loader.valid_until {
                batch.rows.push((row, resume));
                if batch.rows.len() == BATCH_ROWS
                    && let Some(stop) = loader.rows(&mut batch, header)
                {
                    end = Some(stop);
                    break;
                }
            } else {
                // A row with the wrong number of cells, or bytes to check:
                // alone, after the rows before it.
                let own = batch.cells.split_off(from);
                if let Some(stop) = loader.rows(&mut batch, header) {
                    end = Some(stop);
                    break;
                }
                if loader.chunk.too_many_errors() {
                    end = Some(resume);
                    break;
                }
                loader.row(&own, line, row, &header.columns, &header.lacks);
            }
            resume = next;
        }
        pos = next;
        while next_split < later.len() && later[next_split] < pos {
            next_split += 1;
        }
        if later.get(next_split) == Some(&pos) {
            end = Some(pos);
            break;
        }
    }
    if let Some(stop) = loader.rows(&mut batch, header) {
        end = Some(stop);
    }
    let end = match end {
        Some(end) => end,
        None if pos >= bytes.len() => bytes.len(),
        None => read_rest(&mut loader, header, pos, later, &mut rows),
    };
    let newlines = if end == start + expect {
        expected_lines
    } else {
        chunk.recount_lines(job.src_id, bytes, start, end)
    };
    // The last line of a file may have no newline.
    let unterminated = end == bytes.len() && end > start && bytes[end - 1] != b'\n';
    job.text.release(start..end);
    Part {
        header: header.id,
        start,
        end,
        rows,
        lines_are_rows: rows == newlines + u64::from(unterminated),
        chunk,
    }
}

/// Reads from `pos` with the `csv` crate (quoted cells, lone carriage
/// returns); returns where it stopped.
fn read_rest(
    loader: &mut FileLoader<'_, '_, '_>,
    header: &Header<'_, '_>,
    pos: usize,
    later: &[usize],
    rows: &mut u64,
) -> usize {
    let bytes = loader.bytes;
    let mut reader = reader_at(&bytes[pos..]);
    let mut record = ByteRecord::new();
    let mut next_split = 0;
    loop {
        if loader.chunk.too_many_errors() {
            return pos + reader.position().byte() as usize;
        }
        match loader.next_row(&mut reader, &mut record, pos, *rows + 1) {
            Next::Row(row) => {
                *rows += 1;
                let cells: Vec<&[u8]> = record.iter().collect();
                loader.row(
                    &cells,
                    record.as_slice(),
                    row,
                    &header.columns,
                    &header.lacks,
                );
            }
            Next::End | Next::Failed => return bytes.len(),
        }
        let at = pos + reader.position().byte() as usize;
        while next_split < later.len() && later[next_split] < at {
            next_split += 1;
        }
        // A CRLF row leaves the reader on its `\n`.
        let landed = later.get(next_split).is_some_and(|split| {
            *split == at || (*split == at + 1 && bytes.get(at) == Some(&b'\n'))
        });
        if landed {
            return later[next_split];
        }
    }
}

/// Appends the cells of `line`, split at every comma, to `cells`: eight
/// bytes at a time, each word's commas found at once, with no branch per
/// byte (a branch per byte mispredicts at every cell end).
fn split_commas<'a>(line: &'a [u8], cells: &mut Vec<&'a [u8]>) {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const COMMAS: u64 = 0x2c2c_2c2c_2c2c_2c2c;
    let mut from = 0;
    let mut words = line.chunks_exact(8);
    let mut base = 0;
    for word in words.by_ref() {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let x = u64::from_le_bytes(bytes) ^ COMMAS;
        // The high bit of each byte that is a comma: exact, as no carry
        // crosses a byte (seven bits plus 0x7f stay within eight).
        let mut commas = !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7);
        while commas != 0 {
            let at = base + (commas.trailing_zeros() / 8) as usize;
            cells.push(&line[from..at]);
            from = at + 1;
            commas &= commas - 1;
        }
        base += 8;
    }
    for (offset, byte) in words.remainder().iter().enumerate() {
        if *byte == b',' {
            let at = base + offset;
            cells.push(&line[from..at]);
            from = at + 1;
        }
    }
    cells.push(&line[from..]);
}

/// Rows a batch of the fast path gathers before storing them.
const BATCH_ROWS: usize = 256;

/// Rows of the fast path waiting to be stored column by column.
#[derive(Default)]
struct Batch<'a> {
    /// Each row, and where the chunk ends if the error limit stops it
    /// before that row.
    rows: Vec<(Row, usize)>,
    /// The rows' cells, one row after another.
    cells: Vec<&'a [u8]>,
    /// The cells as text, and the rows' offsets (reused buffers).
    texts: Vec<&'a str>,
    offsets: Vec<u64>,
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
    chunk: &'b mut Chunk<'s>,
    src_id: SourceId,
    coll: usize,
    /// The bytes before this offset, from where the loader started, are
    /// known to be valid UTF-8 (checked once for the chunk): a row that
    /// ends before it needs no check of its own.
    valid_until: usize,
}

/// What [`FileLoader::next_row`] found.
enum Next {
    Row(Row),
    End,
    Failed,
}

impl<'a, 's> FileLoader<'a, '_, 's> {
    fn malformed(&mut self, start: usize, end: usize, message: String, help: &str) {
        let error = DataError::MalformedCsv {
            src: self.text.clone(),
            span: span(start, end),
            message,
            help: help.into(),
        };
        self.chunk.report(error);
    }

    fn reject(&mut self, error: impl Into<Box<CellError>>, row: Row, cell: usize, field: usize) {
        let (start, end) = cell_span(self.bytes, row, cell);
        let schema = self.chunk.schema();
        let collection = &schema.collections[self.coll];
        let error = (*error.into()).at(
            self.text,
            span(start, end),
            &collection.name,
            &collection.fields[field].name,
        );
        self.chunk.report(error);
    }

    /// Reports invalid UTF-8 in `row` (at cell `cell`, or anywhere if none).
    fn invalid_utf8(&mut self, row: Row, cell: Option<usize>) {
        let (start, end) = cell.map_or((row.start, row.end), |cell| {
            cell_span(self.bytes, row, cell)
        });
        let offset = invalid_utf8_offset(self.bytes, start, end).unwrap_or(start);
        let src = self.text.clone();
        // The row number counts the rows of earlier chunks: settled later.
        self.chunk.report_row(
            row.number,
            Box::new(move |number| DataError::MalformedCsv {
                src,
                span: span(offset, offset + 1),
                message: format!("invalid UTF-8 at byte {offset} (row {number})"),
                help: "save the file as UTF-8".into(),
            }),
        );
    }

    /// Reads the next record of `reader`, whose input starts at byte `base`
    /// of the file; `number` is its row number within the chunk.
    fn next_row(
        &mut self,
        reader: &mut csv::Reader<&[u8]>,
        record: &mut ByteRecord,
        base: usize,
        number: u64,
    ) -> Next {
        let bytes = self.bytes;
        let start = base + reader.position().byte() as usize;
        match reader.read_byte_record(record) {
            Ok(true) => {}
            Ok(false) => return Next::End,
            Err(error) => {
                // With byte records and flexible rows, only I/O fails.
                let end = base + reader.position().byte() as usize;
                self.malformed(
                    start,
                    end,
                    error.to_string(),
                    "check that the file is a readable CSV file",
                );
                return Next::Failed;
            }
        }
        let mut start = base
            + record
                .position()
                .map_or(start - base, |position| position.byte() as usize);
        // After a CRLF row, csv counts the `\n` as the start of the next.
        while matches!(bytes.get(start), Some(b'\n' | b'\r')) {
            start += 1;
        }
        let mut end = (base + reader.position().byte() as usize).min(bytes.len());
        while end > start && matches!(bytes.get(end - 1), Some(b'\n' | b'\r')) {
            end -= 1;
        }
        Next::Row(Row { start, end, number })
    }

    /// Reads the header: which field each column holds (`None` for a column
    /// that is reported and ignored), and the required fields no column holds.
    fn header(&mut self, record: &ByteRecord, row: Row) -> (Vec<Option<usize>>, Vec<&'s str>) {
        let schema = self.chunk.schema();
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
            match self.chunk.field_index(self.coll, name) {
                Some(field) if std::mem::replace(&mut given[field], true) => {
                    let field = format!("{}.{name}", collection.name);
                    self.chunk.report(DataError::DuplicateField {
                        src: self.text.clone(),
                        span: span(start, end),
                        field,
                    });
                    columns.push(None);
                }
                Some(field) => columns.push(Some(field)),
                None => {
                    let error =
                        self.chunk
                            .unknown_field(self.text, span(start, end), self.coll, name);
                    self.chunk.report(error);
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
                self.chunk
                    .missing_fields(self.text, span(row.start, row.end), self.coll, &lacks);
            self.chunk.report(error);
        }
        (columns, lacks)
    }

    /// Stores the rows of `batch` and empties it: column by column when
    /// every cell is a value its field takes ([`Chunk::try_set_rows`]),
    /// otherwise one by one, reporting errors, until the error limit. If the
    /// limit stopped it, returns where the chunk ends: just after the last
    /// row stored, as one row at a time would have stopped.
    fn rows(&mut self, batch: &mut Batch<'a>, header: &Header<'_, '_>) -> Option<usize> {
        if batch.rows.is_empty() {
            return None;
        }
        let stride = header.columns.len();
        batch.texts.clear();
        batch.offsets.clear();
        // SAFETY: every row of a batch ends before `valid_until`, so its
        // bytes are valid UTF-8, and its cells are split at ASCII commas.
        batch.texts.extend(
            batch
                .cells
                .iter()
                .map(|cell| unsafe { std::str::from_utf8_unchecked(cell) }),
        );
        batch
            .offsets
            .extend(batch.rows.iter().map(|(row, _)| row.start as u64));
        let stored = self.chunk.try_set_rows(
            self.coll,
            self.src_id,
            &batch.offsets,
            &batch.texts,
            &header.columns,
        );
        let mut stop = None;
        if !stored {
            for (idx, (row, resume)) in batch.rows.iter().enumerate() {
                if self.chunk.too_many_errors() {
                    stop = Some(*resume);
                    break;
                }
                let cells = &batch.cells[idx * stride..(idx + 1) * stride];
                let line = &self.bytes[row.start..row.end];
                self.row(cells, line, *row, &header.columns, &header.lacks);
            }
        }
        batch.rows.clear();
        batch.cells.clear();
        stop
    }

    /// Stores one data row: its cells, and `raw`, bytes holding exactly the
    /// cells' bytes (and ASCII delimiters), checked as UTF-8 at once.
    fn row(
        &mut self,
        cells: &[&[u8]],
        raw: &[u8],
        row: Row,
        columns: &[Option<usize>],
        header_lacks: &[&str],
    ) {
        if cells.len() != columns.len() {
            let (cells, expected) = (cells.len(), columns.len());
            let src = self.text.clone();
            // The row number counts the rows of earlier chunks: settled later.
            self.chunk.report_row(
                row.number,
                Box::new(move |number| DataError::MalformedCsv {
                    src,
                    span: span(row.start, row.end),
                    message: format!(
                        "row {number} has {cells} cells, expected {expected} (as in the header)"
                    ),
                    help: "quote cells that contain a comma, and give every row one cell per header column".into(),
                }),
            );
            return;
        }
        self.chunk
            .begin_record(self.coll, self.src_id, row.start as u64);
        // One check for the whole row (none when the chunk's check covered
        // it): cells are split at ASCII bytes, so when the row is valid
        // UTF-8 every cell is.
        let valid = row.end <= self.valid_until || std::str::from_utf8(raw).is_ok();
        for (cell, (value, column)) in cells.iter().zip(columns).enumerate() {
            let Some(field) = *column else { continue };
            let value = if valid {
                // SAFETY: `value` is a cell of the row, whose bytes are
                // valid UTF-8 and split only at ASCII delimiters.
                let value = unsafe { std::str::from_utf8_unchecked(value) };
                // The common cell: stored at once, or left as it was.
                if self.chunk.try_set_text(self.coll, field, value) {
                    continue;
                }
                value
            } else {
                match std::str::from_utf8(value) {
                    Ok(value) => value,
                    Err(_) => {
                        let _ = self.chunk.set_other(self.coll, field, "invalid UTF-8");
                        self.invalid_utf8(row, Some(cell));
                        continue;
                    }
                }
            };
            self.cell(value, row, cell, field);
        }
        let missing = self.chunk.end_record(self.coll);
        let missing: Vec<&str> = missing
            .into_iter()
            .filter(|name| !header_lacks.contains(name))
            .collect();
        if !missing.is_empty() {
            let error =
                self.chunk
                    .missing_fields(self.text, span(row.start, row.end), self.coll, &missing);
            self.chunk.report(error);
        }
    }

    fn cell(&mut self, value: &str, row: Row, cell: usize, field: usize) {
        let is_list = matches!(
            self.chunk.schema().collections[self.coll].fields[field].ty,
            FieldType::List(_)
        );
        if !is_list {
            let result = if value.is_empty() {
                self.chunk.set(self.coll, field, Cell::Null)
            } else {
                self.chunk.set_text(self.coll, field, value)
            };
            if let Err(error) = result {
                self.reject(error, row, cell, field);
            }
            return;
        }
        if let Err(error) = self.chunk.begin_list(self.coll, field) {
            self.reject(error, row, cell, field);
            return;
        }
        for item in value.split(';').filter(|item| !item.is_empty()) {
            if let Err(error) = self.chunk.push_item_text(self.coll, field, item) {
                self.reject(error, row, cell, field);
            }
        }
        self.chunk.end_list(self.coll, field);
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

    /// Lines and columns read off the record index, when every record of
    /// a file is one line, equal the lines and columns found by counting
    /// the file's newlines; a blank line or a line break inside a quoted
    /// cell turns the shortcut off, and chunk splits do not change that.
    #[test]
    fn record_lines_equal_counted_lines() {
        let schema = fixture::schema();
        let header = "id,name,age,score,active,born,role,team,friends\n";
        let row = |n: usize| format!("p{n},N{n},3,1,true,1990-01-01,admin,,\n");
        let plain: String = (0..40).map(row).collect();
        let cases: Vec<(String, bool)> = vec![
            (format!("{header}{plain}"), true),
            (format!("{header}{}", plain.trim_end()), true),
            (
                format!("\u{feff}{header}{}", plain.replace('\n', "\r\n")),
                true,
            ),
            (
                format!("\"id\",name,age,score,active,born,role,team,friends\n{plain}"),
                true,
            ),
            (format!("{header}{}\n{}", row(98), plain), false),
            (
                format!("{header}p99,\"two\nlines\",3,1,true,1990-01-01,admin,,\n{plain}"),
                false,
            ),
        ];
        for (text, by_line) in cases {
            for chunk in [None, Some(16)] {
                let dir = csv_dir(&[("people.csv", text.as_bytes())]);
                let dataset =
                    fixture::expect_dataset(load_dir_with(dir.path(), &schema, chunk, true));
                let people = &dataset.collections[PEOPLE];
                assert_eq!(
                    people.first_line.is_some(),
                    by_line,
                    "{text:?}, chunks of {chunk:?}"
                );
                let records: Vec<(usize, usize)> =
                    (0..people.len).map(|row| (PEOPLE, row)).collect();
                let shortcut: Vec<_> = dataset
                    .positions_of(&records)
                    .into_iter()
                    .map(|at| at.map(|(_, line, col)| (line, col)))
                    .collect();
                let mut counted = dataset;
                counted.collections[PEOPLE].first_line = None;
                let lines: Vec<_> = counted
                    .positions_of(&records)
                    .into_iter()
                    .map(|at| at.map(|(_, line, col)| (line, col)))
                    .collect();
                assert_eq!(shortcut, lines, "{text:?}, chunks of {chunk:?}");
                assert_eq!(
                    counted
                        .position_of(PEOPLE, 7)
                        .map(|(_, line, col)| (line, col)),
                    shortcut[7],
                    "{text:?}"
                );
            }
        }
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
        let starts: Vec<Option<u64>> = ["\np1,", "\np2,", "\np3,"]
            .iter()
            .map(|needle| people_csv.find(needle).map(|at| at as u64 + 1))
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
        assert_eq!(
            dataset.collections[TEAMS].positions.to_vec(),
            [Some(17), Some(35)]
        );
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

    /// Loads `files` with chunks of every size from 1 to 40 bytes and with
    /// the `csv` crate alone; every way must give the same dump, or the same
    /// errors with the same messages.
    fn assert_chunking_agrees(files: &[(&str, &[u8])]) {
        assert_chunking_agrees_with(&fixture::schema(), files);
    }

    fn assert_chunking_agrees_with(schema: &DataSchema, files: &[(&str, &[u8])]) {
        let schema = schema.clone();
        let dir = csv_dir(files);
        let outcome = |chunk: Option<usize>, fast: bool| match load_dir_with(
            dir.path(),
            &schema,
            chunk,
            fast,
        ) {
            Ok(dataset) => fixture::dump(&schema, &dataset),
            Err(errors) => {
                let messages: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                format!("{:?}\n{:?}", fixture::codes_at(&errors), messages)
            }
        };
        let whole = outcome(None, false);
        assert_eq!(outcome(None, true), whole, "fast path");
        for chunk in 1..40 {
            assert_eq!(outcome(Some(chunk), true), whole, "chunks of {chunk} bytes");
        }
        assert_eq!(
            outcome(Some(7), false),
            whole,
            "chunks of 7 bytes, csv crate"
        );
    }

    #[test]
    fn chunks_agree_with_one_pass() {
        let rows = [
            "p1,Ann,30,1.5,true,2000-01-01,admin,t1,p2",
            "p2,\"Bo, \"\"the\"\"\nsecond\",31,2,false,2000-01-02,member,,p1;p3",
            "",
            "p3,Cy,32,3,true,2000-01-03,guest,t9,\r",
            "p4,Di,33,4,true,2000-01-04,guest,t1,p1\r",
            "p5,Ed,34,5,true,2000-01-05,guest,t1,p1",
        ];
        let people = format!("{HEADER}{}\n", rows.join("\n"));
        let teams = "id,size,tags\nt1,3,a;b\nt2,,\n";
        assert_chunking_agrees(&[
            ("people.csv", people.as_bytes()),
            ("teams.csv", teams.as_bytes()),
        ]);
    }

    #[test]
    fn chunks_agree_on_errors_and_row_numbers() {
        let rows = [
            "p1,Ann,thirty,1.5,true,2000-01-01,admin,t1,p2",
            "p2,Bo,31,2,false",
            "p3,\"C\ny\",32,3,true,2000-13-03,guest,,",
            "p1,Di,33,4,true,2000-01-04,guest,,",
            "p5,Ed,34,5,yes,2000-01-05,guest,,",
        ];
        let people = format!("{HEADER}{}\n", rows.join("\n"));
        assert_chunking_agrees(&[("people.csv", people.as_bytes())]);
    }

    /// A collection without list fields, whose rows the fast path stores a
    /// batch at a time, column by column: batches that hold a bad cell
    /// (a malformed int, an empty required cell, an unknown variant, a bad
    /// date, too few cells) are taken back and read row by row, with the
    /// errors and row numbers of a row-by-row read; more bad rows than the
    /// error limit stop it at the same place; fields no column holds get
    /// their defaults and nulls.
    #[test]
    fn batches_stored_column_by_column_agree_with_rows() {
        use crate::data::{CollectionSchema, EnumSchema, FieldSchema, ScalarType};
        let field = |name: &str, ty: FieldType, optional: bool| FieldSchema {
            name: name.into(),
            ty,
            optional,
            keep: true,
            shown: name == "label",
        };
        let schema = DataSchema {
            collections: vec![CollectionSchema {
                name: "things".into(),
                key: Some(0),
                fields: vec![
                    field("id", FieldType::Scalar(ScalarType::String), false),
                    field("n", FieldType::Scalar(ScalarType::Int), false),
                    field("x", FieldType::Scalar(ScalarType::Number), true),
                    field("b", FieldType::Scalar(ScalarType::Bool), false),
                    field("d", FieldType::Scalar(ScalarType::Date), true),
                    field("e", FieldType::Scalar(ScalarType::Enum(0)), true),
                    field("r", FieldType::Scalar(ScalarType::Ref(0)), true),
                    field("label", FieldType::Scalar(ScalarType::String), false),
                    field("absent", FieldType::Scalar(ScalarType::Int), true),
                ],
            }],
            enums: vec![EnumSchema {
                name: "kind".into(),
                variants: vec!["small".into(), "large".into()],
            }],
        };
        let good = |n: usize| {
            let x = if n.is_multiple_of(3) {
                String::new()
            } else {
                format!("{n}.5")
            };
            let d = if n.is_multiple_of(4) {
                ""
            } else {
                "2020-02-29"
            };
            let e = ["small", "large", ""][n % 3];
            let r = if n.is_multiple_of(5) {
                String::new()
            } else {
                format!("t{}", (n * 7) % 700)
            };
            format!(
                "t{n},{n},{x},{},{d},{e},{r},L{}",
                n.is_multiple_of(2),
                n % 11
            )
        };
        let header = "id,n,x,b,d,e,r,label\n";
        let mut rows: Vec<String> = (0..700).map(good).collect();
        rows[300] = "t300,three hundred,1,true,,,,L".into();
        rows[310] = "t310,,1,true,,,,L".into();
        rows[520] = "t520,520,1,true,,medium,,L".into();
        rows[521] = "t521,521,1,true,2020-02-30,,,L".into();
        rows[640] = "t640,640,1".into();
        let text = format!("{header}{}\n", rows.join("\n"));
        assert_chunking_agrees_with(&schema, &[("things.csv", text.as_bytes())]);
        let clean: Vec<String> = (0..700).map(good).collect();
        let text = format!("{header}{}\n", clean.join("\n"));
        assert_chunking_agrees_with(&schema, &[("things.csv", text.as_bytes())]);
        // More bad rows than the error limit, in the second batch.
        let mut rows: Vec<String> = (0..700).map(good).collect();
        for row in rows.iter_mut().skip(260).step_by(3).take(80) {
            *row = format!("{row}0").replacen(',', ",x", 1);
        }
        let text = format!("{header}{}\n", rows.join("\n"));
        assert_chunking_agrees_with(&schema, &[("things.csv", text.as_bytes())]);
    }

    /// A chunk checks UTF-8 once up to its first invalid byte: the rows
    /// before it are read as valid, the row holding it is reported, and the
    /// rows after it are checked one by one, however the file is cut.
    #[test]
    fn chunks_agree_on_invalid_utf8_between_valid_rows() {
        let rows = [
            "p1,名字,30,1.5,true,2000-01-01,admin,,",
            "p2,Bo,31,2,false,2000-01-02,guest,,",
            "p3,Cy,32,3,true,2000-01-03,guest,,",
            "p4,Дмитрий,33,4,true,2000-01-04,member,,",
        ];
        let mut people = format!("{HEADER}{}\n", rows.join("\n")).into_bytes();
        let bad = people
            .windows(2)
            .position(|pair| pair == b"Bo")
            .unwrap_or(0);
        people[bad + 1] = 0xFF;
        assert_chunking_agrees(&[("people.csv", &people)]);
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
        fn commas_split_as_one_byte_at_a_time(line in proptest::collection::vec(prop_oneof![Just(b','), Just(b'-'), Just(0xacu8), Just(0u8), any::<u8>()], 0..80)) {
            let mut cells = Vec::new();
            split_commas(&line, &mut cells);
            let expected: Vec<&[u8]> = line.split(|byte| *byte == b',').collect();
            prop_assert_eq!(cells, expected);
        }

        #[test]
        fn chunks_agree_on_arbitrary_files(text in "(id,size,tags\n)?[tp0-9,;\"\r\nx]{0,60}") {
            assert_chunking_agrees(&[("teams.csv", text.as_bytes())]);
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
