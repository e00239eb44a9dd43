//! JSON loader: one document `{ "collection": [ {record}, ... ], ... }`.
//!
//! Takes the file's text and the [`DataSchema`]; gives a [`Dataset`] or every
//! error found. The document is walked with `jiter` one token at a time and
//! each value goes straight into a [`Chunk`]; no value tree is built. A
//! record's position is the byte offset of its `{`.
//!
//! Large documents are read in parallel, speculatively. The file is cut at
//! places that look like the start of a record in the middle of a list
//! (`}` `,` `{`, whitespace allowed), and each piece is read on its own
//! thread from there, as records of the collection its first record's field
//! names fit. A piece is kept only if the reader of the piece before it
//! arrives exactly there, between two records of that same collection;
//! otherwise that reader just reads on. So a cut inside a string, or a wrong
//! guess, costs time but never changes the result, which is always that of
//! one reader going through the document from its start. Each piece hands
//! the pages it read back to the kernel and counts its newlines.
//!
//! **Invariants:** a value-level problem (wrong type, unknown field, bad
//! date, ...) is reported and loading goes on with the next value; a syntax
//! error stops loading, since nothing after it can be trusted. Nothing here
//! panics on any input.

use jiter::{Jiter, JiterError, JiterErrorType, JsonErrorType, Peek};
use miette::SourceSpan;
use rayon::prelude::*;

use crate::data::{
    Cell, CellError, Chunk, DataError, DataFormat, DataSchema, Dataset, DatasetBuilder, FieldType,
    LoadContext, ScalarType,
};
use crate::source::{SourceId, SourceText};

/// Loads one JSON document.
pub fn load(text: SourceText, schema: &DataSchema) -> Result<Dataset, Vec<DataError>> {
    load_with(text, schema, None, true)
}

/// Loads one JSON document in pieces of about `chunk` bytes (default:
/// `chunk::chunk_bytes`); without `fast`, every record is read with jiter (tests
/// compare the two).
pub(crate) fn load_with(
    text: SourceText,
    schema: &DataSchema,
    chunk: Option<usize>,
    fast: bool,
) -> Result<Dataset, Vec<DataError>> {
    let mut builder = DatasetBuilder::new(schema);
    let src_id = builder.add_source(text.clone());
    let context = builder.context().clone();
    let bytes = text.bytes();
    let chunk = chunk
        .unwrap_or_else(|| super::chunk::chunk_bytes(bytes.len()))
        .max(1);
    let splits = split_points(bytes, chunk);
    let timing = crate::data::Timing::start(format!("json: {} pieces", splits.len() + 1));
    let mut parts: Vec<Option<Part<'_>>> = (0..=splits.len())
        .into_par_iter()
        .map(|idx| {
            if idx == 0 {
                return Some(read_part(
                    &context,
                    &text,
                    src_id,
                    0,
                    Start::Document,
                    &splits,
                    fast,
                ));
            }
            let start = splits[idx - 1];
            let coll = guess_collection(schema, bytes, start)?;
            Some(read_part(
                &context,
                &text,
                src_id,
                start,
                Start::Element(coll),
                &splits,
                fast,
            ))
        })
        .collect();
    drop(timing);
    // Follow the pieces from the start: each kept piece says where the next
    // one must start, and in which collection.
    let mut kept: Vec<Part<'_>> = Vec::new();
    let mut part = parts[0].take();
    let mut seen = vec![false; schema.collections.len()];
    let mut elements = 0u64;
    let mut serial = false;
    while let Some(mut current) = part {
        for coll in &current.opened {
            // A collection given twice across pieces: read it all in one
            // pass, which reports it where a single reader would.
            serial |= std::mem::replace(&mut seen[*coll], true);
        }
        if current.start_coll.is_some() {
            current.chunk.settle_rows(elements);
        }
        elements = if current.tail_is_start {
            elements + current.tail_elements
        } else {
            current.tail_elements
        };
        let end = current.end;
        kept.push(current);
        part = match end {
            End::Split { at, coll } => match parts[at + 1].take() {
                Some(next) if next.start_coll == Some(coll) => Some(next),
                _ => Some(read_part(
                    &context,
                    &text,
                    src_id,
                    splits[at],
                    Start::Element(coll),
                    &splits,
                    fast,
                )),
            },
            End::Finished | End::Halted => None,
        };
    }
    if serial {
        kept = vec![read_part(
            &context,
            &text,
            src_id,
            0,
            Start::Document,
            &[],
            fast,
        )];
    }
    for part in kept {
        builder.push_chunk(part.chunk);
    }
    builder.finish(DataFormat::Json)
}

/// Places that look like the start of a record inside a list: a `{` after a
/// `,` after a `}` (whitespace between them allowed), about `chunk` bytes
/// apart.
fn split_points(bytes: &[u8], chunk: usize) -> Vec<usize> {
    let mut points = Vec::new();
    let mut at = chunk;
    while at < bytes.len() {
        let window = &bytes[at..bytes.len().min(at + (1 << 20))];
        let found = memchr::memchr_iter(b'{', window)
            .map(|offset| at + offset)
            .find(|&brace| {
                let before = bytes[..brace]
                    .iter()
                    .rev()
                    .find(|b| !b.is_ascii_whitespace());
                let comma = bytes[..brace]
                    .iter()
                    .rposition(|b| !b.is_ascii_whitespace());
                before == Some(&b',')
                    && comma.is_some_and(|comma| {
                        bytes[..comma]
                            .iter()
                            .rev()
                            .find(|b| !b.is_ascii_whitespace())
                            == Some(&b'}')
                    })
            });
        match found {
            Some(brace) => {
                points.push(brace);
                at = brace + chunk;
            }
            None => at += 1 << 20,
        }
    }
    points
}

/// The collection a record starting at `start` belongs to, judged by its
/// field names: the first whose fields include them all.
fn guess_collection(schema: &DataSchema, bytes: &[u8], start: usize) -> Option<usize> {
    let mut jiter = Jiter::new(&bytes[start..]);
    let mut names: Vec<String> = Vec::new();
    let mut key = jiter.next_object().ok()?;
    while let Some(name) = key {
        names.push(name.to_string());
        jiter.next_skip().ok()?;
        key = jiter.next_key().ok()?;
    }
    schema.collections.iter().position(|coll| {
        names
            .iter()
            .all(|name| coll.fields.iter().any(|field| field.name == *name))
    })
}

/// A number token as a cell: an integer that fits is [`Cell::Int`], any
/// other number [`Cell::Number`]; an integer too large for `i64` is out of
/// range unless the field wants a float anyway.
fn number_cell(text: &str, wants_float: bool) -> Result<Cell<'static>, CellError> {
    let is_float = text.bytes().any(|byte| matches!(byte, b'.' | b'e' | b'E'));
    if !is_float && let Ok(value) = text.parse::<i64>() {
        return Ok(Cell::Int(value));
    }
    if !is_float && !wants_float {
        return Err(CellError::OutOfRange(text.into()));
    }
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(Cell::Number(value)),
        _ => Err(CellError::WrongType {
            expected: "a number within the range of a 64-bit float".into(),
            found: format!("`{text}`"),
        }),
    }
}

// ------------------------------------------------------------ fast records
//
// Nearly every record of a ledger is a flat object of scalars and lists of
// scalars, with plain keys in schema order. Such a record is scanned here
// with a few byte comparisons per key and a `memchr` per string, and its
// values are buffered; only when the whole record scanned cleanly are they
// handed to the chunk, through the same calls the jiter path makes. Anything
// else (an escape, a nested value, an unknown key, a syntax error) leaves
// the chunk untouched and the record is read again with jiter, which then
// reports exactly what a single jiter pass would.

/// A scalar as scanned.
#[derive(Clone, Copy)]
enum Scalar<'a> {
    Null,
    Bool(bool),
    Str(&'a str),
    /// A number token, checked against the JSON grammar.
    Num(&'a str),
}

/// One scanned piece of a record, with its byte span.
#[derive(Clone, Copy)]
enum Token<'a> {
    Value {
        field: usize,
        start: usize,
        end: usize,
        value: Scalar<'a>,
    },
    ListStart {
        field: usize,
        start: usize,
        end: usize,
    },
    Item {
        field: usize,
        start: usize,
        end: usize,
        value: Scalar<'a>,
    },
    ListEnd {
        field: usize,
    },
}

#[inline]
fn skip_ws(bytes: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(pos) {
        pos += 1;
    }
    pos
}

/// The string whose opening quote is at `pos`, if it has no escape and is
/// valid; and the offset after its closing quote.
#[inline]
fn scan_str(bytes: &[u8], pos: usize) -> Option<(&str, usize)> {
    let start = pos + 1;
    let end = start + memchr::memchr2(b'"', b'\\', bytes.get(start..)?)?;
    if bytes[end] != b'"' {
        return None;
    }
    let body = &bytes[start..end];
    // The smallest byte and the union of all: one pass the compiler
    // vectorises (no early exit), deciding both checks below.
    let (lowest, union) = body.iter().fold((u8::MAX, 0u8), |(lowest, union), byte| {
        (lowest.min(*byte), union | *byte)
    });
    if lowest < 0x20 {
        return None;
    }
    let text = if union < 0x80 {
        // SAFETY: every byte is below 0x80, so the bytes are ASCII, which
        // is valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(body) }
    } else {
        std::str::from_utf8(body).ok()?
    };
    Some((text, end + 1))
}

/// The end of the JSON number starting at `pos`, if it follows the grammar
/// (`-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?`) and is short.
#[inline]
fn scan_number(bytes: &[u8], pos: usize) -> Option<usize> {
    let digits = |mut at: usize| {
        let from = at;
        while bytes.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        (at > from).then_some(at)
    };
    let mut at = pos;
    if bytes.get(at) == Some(&b'-') {
        at += 1;
    }
    at = match bytes.get(at) {
        Some(b'0') => at + 1,
        Some(b'1'..=b'9') => digits(at)?,
        _ => return None,
    };
    if bytes.get(at) == Some(&b'.') {
        at = digits(at + 1)?;
    }
    if let Some(b'e' | b'E') = bytes.get(at) {
        at += 1;
        if let Some(b'+' | b'-') = bytes.get(at) {
            at += 1;
        }
        at = digits(at)?;
    }
    // Long numbers (jiter bounds digit runs) take the jiter path.
    (at - pos <= 64).then_some(at)
}

/// The scalar at `pos` and the offset after it; `None` for anything else.
/// Always inlined: returned through memory, the pair cost a stalled load
/// per value.
#[inline(always)]
fn scan_scalar(bytes: &[u8], pos: usize) -> Option<(Scalar<'_>, usize)> {
    match *bytes.get(pos)? {
        b'"' => scan_str(bytes, pos).map(|(text, end)| (Scalar::Str(text), end)),
        b't' if bytes.get(pos..pos + 4) == Some(b"true") => Some((Scalar::Bool(true), pos + 4)),
        b'f' if bytes.get(pos..pos + 5) == Some(b"false") => Some((Scalar::Bool(false), pos + 5)),
        b'n' if bytes.get(pos..pos + 4) == Some(b"null") => Some((Scalar::Null, pos + 4)),
        b'-' | b'0'..=b'9' => {
            let end = scan_number(bytes, pos)?;
            // SAFETY: the grammar above only admits ASCII bytes.
            let text = unsafe { std::str::from_utf8_unchecked(&bytes[pos..end]) };
            Some((Scalar::Num(text), end))
        }
        _ => None,
    }
}

/// Scans the record whose `{` is at `pos` into `tokens`; returns the offset
/// after its `}`, or `None` if it needs the jiter path.
fn scan_record<'a>(
    bytes: &'a [u8],
    pos: usize,
    fields: &[crate::data::FieldSchema],
    tokens: &mut Vec<Token<'a>>,
) -> Option<usize> {
    tokens.clear();
    let mut at = skip_ws(bytes, pos + 1);
    if bytes.get(at) == Some(&b'}') {
        return Some(at + 1);
    }
    let mut hint = 0;
    loop {
        if bytes.get(at) != Some(&b'"') {
            return None;
        }
        // The key: most often the field after the previous one, verbatim.
        let expected = fields.get(hint).map(|f| f.name.as_bytes());
        let (field, after_key) = match expected {
            Some(name)
                if bytes
                    .get(at + 1..at + 1 + name.len())
                    .is_some_and(|key| crate::data::strings::eq_bytes(key, name))
                    && bytes.get(at + 1 + name.len()) == Some(&b'"') =>
            {
                (hint, at + 2 + name.len())
            }
            _ => {
                let (key, after) = scan_str(bytes, at)?;
                (fields.iter().position(|f| f.name == key)?, after)
            }
        };
        at = skip_ws(bytes, after_key);
        if bytes.get(at) != Some(&b':') {
            return None;
        }
        at = skip_ws(bytes, at + 1);
        if bytes.get(at) == Some(&b'[') {
            let start = at;
            let list_at = tokens.len();
            tokens.push(Token::ListStart {
                field,
                start,
                end: start,
            });
            at = skip_ws(bytes, at + 1);
            if bytes.get(at) == Some(&b']') {
                at += 1;
            } else {
                loop {
                    let (value, end) = scan_scalar(bytes, at)?;
                    tokens.push(Token::Item {
                        field,
                        start: at,
                        end,
                        value,
                    });
                    at = skip_ws(bytes, end);
                    match bytes.get(at) {
                        Some(b',') => at = skip_ws(bytes, at + 1),
                        Some(b']') => {
                            at += 1;
                            break;
                        }
                        _ => return None,
                    }
                }
            }
            tokens[list_at] = Token::ListStart {
                field,
                start,
                end: at,
            };
            tokens.push(Token::ListEnd { field });
        } else {
            let (value, end) = scan_scalar(bytes, at)?;
            tokens.push(Token::Value {
                field,
                start: at,
                end,
                value,
            });
            at = end;
        }
        hint = field + 1;
        at = skip_ws(bytes, at);
        match bytes.get(at) {
            Some(b',') => at = skip_ws(bytes, at + 1),
            Some(b'}') => return Some(at + 1),
            _ => return None,
        }
    }
}

/// Where a piece starts reading.
#[derive(Clone, Copy)]
enum Start {
    /// At the start of the document.
    Document,
    /// At a record of this collection, inside its list.
    Element(usize),
}

/// Where a piece stopped.
#[derive(Clone, Copy)]
enum End {
    /// At the end of the document.
    Finished,
    /// At a syntax error, or the error limit.
    Halted,
    /// Exactly at `splits[at]`, between two records of `coll`.
    Split { at: usize, coll: usize },
}

/// What one piece read.
struct Part<'s> {
    chunk: Chunk<'s>,
    /// The collection it started in, for a piece that started at a record.
    start_coll: Option<usize>,
    /// Collections whose name it read.
    opened: Vec<usize>,
    end: End,
    /// Records (list elements) read in the collection it stopped in...
    tail_elements: u64,
    /// ...which is the one it started in, not opened again.
    tail_is_start: bool,
}

/// Reads from `start` until landing exactly on a split point between two
/// records, or the end of the document.
fn read_part<'s>(
    context: &LoadContext<'s>,
    text: &SourceText,
    src_id: SourceId,
    start: usize,
    how: Start,
    splits: &[usize],
    fast: bool,
) -> Part<'s> {
    let bytes = text.bytes();
    let next_split = splits.partition_point(|split| *split <= start);
    let size_hint = splits.get(next_split).map_or(bytes.len(), |next| *next) - start;
    let mut loader = Loader {
        text,
        jiter: Jiter::new(&bytes[start..]),
        base: start,
        chunk: Chunk::with_size_hint(context, size_hint),
        src_id,
        splits,
        next_split,
        opened: Vec::new(),
        elements: 0,
        in_start: true,
        fast,
        tokens: Vec::new(),
    };
    let end = match loader.document(how) {
        Ok(end) => end,
        Err(Halt::Syntax(error)) => {
            let error = loader.syntax_error(error);
            loader.chunk.report(error);
            End::Halted
        }
        Err(Halt::Stop) => End::Halted,
    };
    let stop = match end {
        End::Split { at, .. } => splits[at],
        End::Finished => bytes.len(),
        End::Halted => loader.index().min(bytes.len()),
    };
    let mut chunk = loader.chunk;
    chunk.count_lines(src_id, bytes, start, stop);
    // While the piece's pages are still mapped in: each record's line.
    chunk.record_lines(bytes);
    text.release(start..stop);
    Part {
        chunk,
        start_coll: match how {
            Start::Document => None,
            Start::Element(coll) => Some(coll),
        },
        opened: loader.opened,
        end,
        tail_elements: loader.elements,
        tail_is_start: loader.in_start && matches!(how, Start::Element(_)),
    }
}

/// Why reading stopped before the end of the document.
enum Halt {
    /// The text is not well-formed JSON.
    Syntax(JiterError),
    /// The error limit is reached, or the document's shape is wrong at the top.
    Stop,
}

impl From<JiterError> for Halt {
    fn from(error: JiterError) -> Halt {
        Halt::Syntax(error)
    }
}

struct Loader<'a, 's> {
    text: &'a SourceText,
    jiter: Jiter<'a>,
    /// Offset of the jiter's input in the file.
    base: usize,
    chunk: Chunk<'s>,
    src_id: SourceId,
    splits: &'a [usize],
    /// The first split point not passed yet.
    next_split: usize,
    opened: Vec<usize>,
    /// List elements read in the current collection.
    elements: u64,
    /// Whether the current collection is the one the piece started in.
    in_start: bool,
    /// Whether flat records take the fast path (tests turn it off).
    fast: bool,
    /// The fast path's buffer.
    tokens: Vec<Token<'a>>,
}

/// What a value is, in words, from its first byte.
fn kind_of(peek: Peek) -> &'static str {
    match peek {
        Peek::Null => "null",
        Peek::True | Peek::False => "a boolean",
        Peek::String => "a string",
        Peek::Array => "a list",
        Peek::Object => "an object",
        _ => "a number",
    }
}

fn span(start: usize, end: usize) -> SourceSpan {
    SourceSpan::new(start.into(), end.saturating_sub(start))
}

impl Loader<'_, '_> {
    /// The offset in the file of the jiter's position.
    fn index(&self) -> usize {
        self.base + self.jiter.current_index()
    }

    /// Records an error; stops reading once the limit is reached.
    fn report(&mut self, error: DataError) -> Result<(), Halt> {
        self.chunk.report(error);
        if self.chunk.too_many_errors() {
            Err(Halt::Stop)
        } else {
            Ok(())
        }
    }

    /// Records a refused value of field `field` of `coll` at `start..end`.
    fn reject(
        &mut self,
        error: impl Into<Box<CellError>>,
        start: usize,
        coll: usize,
        field: usize,
    ) -> Result<(), Halt> {
        let schema = self.chunk.schema();
        let collection = &schema.collections[coll];
        let error = (*error.into()).at(
            self.text,
            span(start, self.index()),
            &collection.name,
            &collection.fields[field].name,
        );
        self.report(error)
    }

    /// The span of the key just read, given the index before it: from the
    /// first `"` after `before` to the last `"` before the colon. Only
    /// computed when a key is reported, so the happy path never rescans.
    fn key_span(&self, before: usize) -> SourceSpan {
        let bytes = self.text.bytes();
        let after = self.index().min(bytes.len());
        let before = before.min(after);
        let start = bytes[before..after]
            .iter()
            .position(|byte| *byte == b'"')
            .map_or(before, |pos| before + pos);
        let end = bytes[start..after]
            .iter()
            .rposition(|byte| *byte == b'"')
            .map_or(after, |pos| start + pos + 1);
        span(start, end)
    }

    fn document(&mut self, how: Start) -> Result<End, Halt> {
        let mut seen = vec![false; self.chunk.schema().collections.len()];
        let mut before;
        let mut key = match how {
            Start::Element(coll) => {
                seen[coll] = true;
                let first = self.jiter.peek()?;
                if let Some(end) = self.elements(coll, Some(first))? {
                    return Ok(end);
                }
                before = self.index();
                self.jiter.next_key()?.map(|name| {
                    self.chunk
                        .collection_index(name)
                        .ok_or_else(|| name.to_string())
                })
            }
            Start::Document => {
                let peek = self.jiter.peek()?;
                if peek != Peek::Object {
                    let start = self.index();
                    let message = format!(
                        "the document should be an object mapping collection names to lists of records, found {}",
                        kind_of(peek)
                    );
                    self.chunk.report(DataError::MalformedJson {
                        src: self.text.clone(),
                        span: span(start, start + 1),
                        message,
                    });
                    return Err(Halt::Stop);
                }
                before = self.index();
                self.jiter.known_object()?.map(|name| {
                    self.chunk
                        .collection_index(name)
                        .ok_or_else(|| name.to_string())
                })
            }
        };
        while let Some(found) = key {
            match found {
                Ok(coll) if std::mem::replace(&mut seen[coll], true) => {
                    self.opened.push(coll);
                    let error =
                        self.chunk
                            .duplicate_collection(self.text, self.key_span(before), coll);
                    self.report(error)?;
                    self.jiter.next_skip()?;
                }
                Ok(coll) => {
                    self.opened.push(coll);
                    self.in_start = false;
                    self.elements = 0;
                    if let Some(end) = self.collection(coll)? {
                        return Ok(end);
                    }
                }
                Err(name) => {
                    let error =
                        self.chunk
                            .unknown_collection(self.text, self.key_span(before), &name);
                    self.report(error)?;
                    self.jiter.next_skip()?;
                }
            }
            before = self.index();
            key = self.jiter.next_key()?.map(|name| {
                self.chunk
                    .collection_index(name)
                    .ok_or_else(|| name.to_string())
            });
        }
        self.jiter.finish()?;
        Ok(End::Finished)
    }

    fn collection(&mut self, coll: usize) -> Result<Option<End>, Halt> {
        let peek = self.jiter.peek()?;
        let start = self.index();
        match peek {
            Peek::Array => {}
            // A null collection is an absent one.
            Peek::Null => {
                self.jiter.known_null()?;
                return Ok(None);
            }
            _ => {
                self.jiter.known_skip(peek)?;
                let name = self.chunk.schema().collections[coll].name.clone();
                let error = DataError::WrongType {
                    src: self.text.clone(),
                    span: span(start, self.index()),
                    field: name,
                    expected: "a list of records".into(),
                    found: kind_of(peek).into(),
                };
                self.report(error)?;
                return Ok(None);
            }
        }
        let first = self.jiter.known_array()?;
        self.elements(coll, first)
    }

    /// Moves the reader to byte `pos` of the file.
    fn seek(&mut self, pos: usize) {
        let bytes = self.text.bytes();
        self.base = pos.min(bytes.len());
        self.jiter = Jiter::new(&bytes[self.base..]);
    }

    /// Reads the records of a list from its element `item` on; stops early
    /// (with the split point) when it lands exactly on one.
    fn elements(&mut self, coll: usize, item: Option<Peek>) -> Result<Option<End>, Halt> {
        if item.is_none() {
            return Ok(None);
        }
        let bytes = self.text.bytes();
        let mut pos = self.index();
        loop {
            let fast_end = match bytes.get(pos) {
                Some(b'{') if self.fast => self.fast_record(coll, pos)?,
                _ => None,
            };
            match fast_end {
                Some(end) => pos = end,
                None => {
                    self.seek(pos);
                    let peek = self.jiter.peek()?;
                    self.element(coll, peek)?;
                    pos = self.index();
                }
            }
            self.elements += 1;
            // The step to the next element, by hand where it is plain.
            let at = skip_ws(bytes, pos);
            let next = match bytes.get(at) {
                Some(b']') => {
                    self.seek(at + 1);
                    return Ok(None);
                }
                Some(b',') => {
                    let next = skip_ws(bytes, at + 1);
                    match bytes.get(next) {
                        Some(b'{') => Some(next),
                        _ => None,
                    }
                }
                _ => None,
            };
            pos = match next {
                Some(next) => next,
                None => {
                    // Anything else: jiter steps (and reports what is wrong).
                    self.seek(pos);
                    if self.jiter.array_step()?.is_none() {
                        return Ok(None);
                    }
                    self.index()
                }
            };
            while self
                .splits
                .get(self.next_split)
                .is_some_and(|split| *split < pos)
            {
                self.next_split += 1;
            }
            if self.splits.get(self.next_split) == Some(&pos) {
                self.seek(pos);
                return Ok(Some(End::Split {
                    at: self.next_split,
                    coll,
                }));
            }
        }
    }

    /// One list element, read with jiter: a record, or an error.
    fn element(&mut self, coll: usize, peek: Peek) -> Result<(), Halt> {
        if peek == Peek::Object {
            return self.record(coll);
        }
        let start = self.index();
        self.jiter.known_skip(peek)?;
        let (src, end) = (self.text.clone(), self.index());
        let name = self.chunk.schema().collections[coll].name.clone();
        let found = kind_of(peek);
        // The element's number counts those of earlier pieces when the
        // piece started inside this list: settled later.
        let make = move |idx: u64| DataError::WrongType {
            src,
            span: span(start, end),
            field: format!("{name}[{idx}]"),
            expected: "a record (an object)".into(),
            found: found.into(),
        };
        if self.in_start {
            self.chunk.report_row(self.elements, Box::new(make));
        } else {
            self.chunk.report(make(self.elements));
        }
        if self.chunk.too_many_errors() {
            return Err(Halt::Stop);
        }
        Ok(())
    }

    /// The fast path for the record at `pos`: the offset after it, or
    /// `None` (nothing stored) when it needs jiter.
    fn fast_record(&mut self, coll: usize, pos: usize) -> Result<Option<usize>, Halt> {
        let bytes: &[u8] = self.text.bytes();
        // The buffer is reused; its tokens borrow the file's bytes.
        let mut tokens = std::mem::take(&mut self.tokens);
        let fields = &self.chunk.schema().collections[coll].fields;
        let Some(end) = scan_record(bytes, pos, fields, &mut tokens) else {
            self.tokens = tokens;
            return Ok(None);
        };
        let result = self.commit(coll, pos, end, &tokens);
        self.tokens = tokens;
        result.map(|()| Some(end))
    }

    /// Stores a scanned record, with the calls (and the error spans) of the
    /// jiter path.
    fn commit(
        &mut self,
        coll: usize,
        start: usize,
        end: usize,
        tokens: &[Token<'_>],
    ) -> Result<(), Halt> {
        let schema = self.chunk.schema();
        let fields = &schema.collections[coll].fields;
        self.chunk.begin_record(coll, self.src_id, start as u64);
        let mut skip_list = false;
        for token in tokens {
            match *token {
                Token::Value {
                    field,
                    start,
                    end,
                    value,
                } => {
                    let result = match value {
                        Scalar::Null => self.chunk.set(coll, field, Cell::Null),
                        Scalar::Bool(value) => self.chunk.set(coll, field, Cell::Bool(value)),
                        Scalar::Str(text) => self.chunk.set(coll, field, Cell::Str(text)),
                        Scalar::Num(text) => {
                            let wants_float =
                                matches!(fields[field].ty, FieldType::Scalar(ScalarType::Number));
                            match number_cell(text, wants_float) {
                                Ok(cell) => self.chunk.set(coll, field, cell),
                                Err(error) => Err(self.chunk.refuse(coll, field, error)),
                            }
                        }
                    };
                    if let Err(error) = result {
                        self.reject_at(error, start, end, coll, field)?;
                    }
                }
                Token::ListStart { field, start, end } => {
                    if let Err(error) = self.chunk.begin_list(coll, field) {
                        skip_list = true;
                        self.reject_at(error, start, end, coll, field)?;
                    }
                }
                Token::Item {
                    field,
                    start,
                    end,
                    value,
                } => {
                    if skip_list {
                        continue;
                    }
                    let element = match fields[field].ty {
                        FieldType::List(scalar) | FieldType::Scalar(scalar) => scalar,
                    };
                    let result = match value {
                        Scalar::Null => self.chunk.push_item(coll, field, Cell::Null),
                        Scalar::Bool(value) => self.chunk.push_item(coll, field, Cell::Bool(value)),
                        Scalar::Str(text) => self.chunk.push_item(coll, field, Cell::Str(text)),
                        Scalar::Num(text) => {
                            match number_cell(text, element == ScalarType::Number) {
                                Ok(cell) => self.chunk.push_item(coll, field, cell),
                                Err(error) => Err(Box::new(error)),
                            }
                        }
                    };
                    if let Err(error) = result {
                        self.reject_at(error, start, end, coll, field)?;
                    }
                }
                Token::ListEnd { field } => {
                    if !std::mem::replace(&mut skip_list, false) {
                        self.chunk.end_list(coll, field);
                    }
                }
            }
        }
        let missing = self.chunk.end_record(coll);
        if !missing.is_empty() {
            let error = self
                .chunk
                .missing_fields(self.text, span(start, end), coll, &missing);
            self.report(error)?;
        }
        Ok(())
    }

    /// Records a refused value of field `field` of `coll` at `start..end`.
    fn reject_at(
        &mut self,
        error: impl Into<Box<CellError>>,
        start: usize,
        end: usize,
        coll: usize,
        field: usize,
    ) -> Result<(), Halt> {
        let schema = self.chunk.schema();
        let collection = &schema.collections[coll];
        let error = (*error.into()).at(
            self.text,
            span(start, end),
            &collection.name,
            &collection.fields[field].name,
        );
        self.report(error)
    }

    fn record(&mut self, coll: usize) -> Result<(), Halt> {
        let start = self.index();
        self.chunk.begin_record(coll, self.src_id, start as u64);
        let mut hint = 0;
        let mut before = start;
        let mut key = self.jiter.known_object()?.map(|name| {
            self.chunk
                .field_index_from(coll, name, hint)
                .ok_or_else(|| name.to_string())
        });
        while let Some(found) = key {
            match found {
                Ok(field) => {
                    self.value(coll, field)?;
                    hint = field + 1;
                }
                Err(name) => {
                    let error =
                        self.chunk
                            .unknown_field(self.text, self.key_span(before), coll, &name);
                    self.report(error)?;
                    self.jiter.next_skip()?;
                }
            }
            before = self.index();
            key = self.jiter.next_key()?.map(|name| {
                self.chunk
                    .field_index_from(coll, name, hint)
                    .ok_or_else(|| name.to_string())
            });
        }
        let missing = self.chunk.end_record(coll);
        if !missing.is_empty() {
            let error =
                self.chunk
                    .missing_fields(self.text, span(start, self.index()), coll, &missing);
            self.report(error)?;
        }
        Ok(())
    }

    /// Reads the value of field `field` of the current record.
    fn value(&mut self, coll: usize, field: usize) -> Result<(), Halt> {
        let peek = self.jiter.peek()?;
        let start = self.index();
        let result = match peek {
            Peek::Null => {
                self.jiter.known_null()?;
                self.chunk.set(coll, field, Cell::Null)
            }
            Peek::True | Peek::False => {
                let value = self.jiter.known_bool(peek)?;
                self.chunk.set(coll, field, Cell::Bool(value))
            }
            Peek::String => {
                let text = self.jiter.known_str()?;
                self.chunk.set(coll, field, Cell::Str(text))
            }
            Peek::Array => return self.list(coll, field, start),
            Peek::Object => {
                self.jiter.known_skip(peek)?;
                self.chunk.set_other(coll, field, "an object")
            }
            _ => {
                let wants_float = matches!(
                    self.chunk.schema().collections[coll].fields[field].ty,
                    FieldType::Scalar(ScalarType::Number)
                );
                match self.number(peek, wants_float)? {
                    Ok(cell) => self.chunk.set(coll, field, cell),
                    Err(error) => Err(self.chunk.refuse(coll, field, error)),
                }
            }
        };
        match result {
            Ok(()) => Ok(()),
            Err(error) => self.reject(error, start, coll, field),
        }
    }

    /// Reads a list value; `start` is the offset of its `[`.
    fn list(&mut self, coll: usize, field: usize, start: usize) -> Result<(), Halt> {
        if let Err(error) = self.chunk.begin_list(coll, field) {
            self.jiter.known_skip(Peek::Array)?;
            return self.reject(error, start, coll, field);
        }
        let element = match self.chunk.schema().collections[coll].fields[field].ty {
            FieldType::List(scalar) | FieldType::Scalar(scalar) => scalar,
        };
        let mut item = self.jiter.known_array()?;
        while let Some(peek) = item {
            let item_start = self.index();
            let result = match peek {
                Peek::Null => {
                    self.jiter.known_null()?;
                    self.chunk.push_item(coll, field, Cell::Null)
                }
                Peek::True | Peek::False => {
                    let value = self.jiter.known_bool(peek)?;
                    self.chunk.push_item(coll, field, Cell::Bool(value))
                }
                Peek::String => {
                    let text = self.jiter.known_str()?;
                    self.chunk.push_item(coll, field, Cell::Str(text))
                }
                Peek::Array | Peek::Object => {
                    self.jiter.known_skip(peek)?;
                    Err(Box::new(CellError::WrongType {
                        expected: self.chunk.schema().scalar_name(element),
                        found: kind_of(peek).into(),
                    }))
                }
                _ => match self.number(peek, element == ScalarType::Number)? {
                    Ok(cell) => self.chunk.push_item(coll, field, cell),
                    Err(error) => Err(Box::new(error)),
                },
            };
            if let Err(error) = result {
                self.reject(error, item_start, coll, field)?;
            }
            item = self.jiter.array_step()?;
        }
        self.chunk.end_list(coll, field);
        Ok(())
    }

    /// Reads a number token: an integer that fits is [`Cell::Int`], any
    /// other number [`Cell::Number`]; an integer too large for `i64` is
    /// out of range unless the field wants a float anyway.
    fn number(
        &mut self,
        peek: Peek,
        wants_float: bool,
    ) -> Result<Result<Cell<'static>, CellError>, Halt> {
        let bytes = self.jiter.known_number_bytes(peek)?;
        // jiter has checked the number grammar, so the token is ASCII.
        let text = std::str::from_utf8(bytes).unwrap_or("");
        Ok(number_cell(text, wants_float))
    }

    /// The diagnostic for a jiter error.
    fn syntax_error(&self, error: JiterError) -> DataError {
        let bytes = self.text.bytes();
        let index = (self.base + error.index).min(bytes.len());
        let invalid_utf8 = bytes
            .get(index..bytes.len().min(index + 4))
            .is_some_and(|head| {
                std::str::from_utf8(head)
                    .is_err_and(|e| e.valid_up_to() == 0 && e.error_len().is_some())
            });
        let message = if invalid_utf8 {
            format!("invalid UTF-8 at byte {index}")
        } else {
            match error.error_type {
                JiterErrorType::JsonError(JsonErrorType::NumberOutOfRange) => {
                    "number too long".into()
                }
                JiterErrorType::JsonError(error_type) => error_type.to_string(),
                JiterErrorType::WrongType { expected, actual } => {
                    format!("expected {expected}, found {actual}")
                }
            }
        };
        let len = usize::from(index < bytes.len());
        DataError::MalformedJson {
            src: self.text.clone(),
            span: span(index, index + len),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use miette::Diagnostic;
    use proptest::prelude::*;

    use super::*;
    use crate::data::fixture::{self, EXPECTED_DUMP, JSON_DOC, PEOPLE, TEAMS, at};

    fn load_str(doc: &str) -> Result<Dataset, Vec<DataError>> {
        load(SourceText::from_string("t.json", doc), &fixture::schema())
    }

    /// The errors of loading `doc`, as `"E0504 3:12"`.
    fn check(doc: &str) -> Vec<String> {
        fixture::expect_errors(&fixture::schema(), load_str(doc))
    }

    const PERSON: &str = r#""name": "A", "age": 1, "score": 1, "active": true, "born": "2000-01-01", "role": "admin", "friends": []"#;

    /// A document holding one person per entry of `records` (each the text
    /// between the braces), one per line from line 3.
    fn people(records: &[&str]) -> String {
        let records: Vec<String> = records
            .iter()
            .map(|record| format!("  {{{record}}}"))
            .collect();
        format!("{{\n\"people\": [\n{}\n]\n}}", records.join(",\n"))
    }

    fn person(id: &str, extra: &str) -> String {
        format!(r#""id": "{id}", {PERSON}{extra}"#)
    }

    #[test]
    fn loads_values_nulls_refs_lists_and_positions() {
        let schema = fixture::schema();
        let dataset =
            fixture::expect_dataset(load(SourceText::from_string("t.json", JSON_DOC), &schema));
        assert_eq!(fixture::dump(&schema, &dataset), EXPECTED_DUMP);
        assert_eq!(dataset.format, DataFormat::Json);
        let people = &dataset.collections[PEOPLE];
        let starts: Vec<Option<u64>> = ["{\"id\": \"p1\"", "{\"id\": \"p2\"", "{\"id\": \"p3\""]
            .iter()
            .map(|needle| JSON_DOC.find(needle).map(|at| at as u64))
            .collect();
        assert_eq!(people.positions.to_vec(), starts);
        assert_eq!(dataset.position_of(PEOPLE, 1), Some(("t.json", 8, 5)));
        assert_eq!(dataset.position_of(TEAMS, 0), Some(("t.json", 3, 5)));
        assert_eq!(dataset.key_of(&schema, PEOPLE, 2), Some("p3"));
        assert_eq!(people.keys().len(), 3);
    }

    #[test]
    fn absent_and_null_collections_are_empty() {
        let schema = fixture::schema();
        let dataset = fixture::expect_dataset(load_str(r#"{"teams": null}"#));
        assert!(
            dataset
                .collections
                .iter()
                .all(|collection| collection.len == 0)
        );
        assert_eq!(
            fixture::dump(&schema, &dataset),
            "people (0 records)\nteams (0 records)\n"
        );
    }

    #[test]
    fn broken_json_stops_at_the_syntax_error() {
        let doc = people(&[&person("p1", ",, ")]);
        assert_eq!(check(&doc), [format!("E0501 {}", at(&doc, ", }"))]);
    }

    #[test]
    fn truncated_file_is_reported_at_its_end() {
        let doc = "{\n\"people\": [\n  {\"id\": \"p1\"";
        assert_eq!(check(doc), ["E0501 3:14"]);
    }

    #[test]
    fn wrong_type_points_at_the_value() {
        let doc = people(&[
            &person("p1", r#", "nick": 5"#),
            &person("p2", "").replace(r#""age": 1"#, r#""age": "thirty""#),
        ]);
        assert_eq!(
            check(&doc),
            [
                format!("E0504 {}", at(&doc, "5}")),
                format!("E0504 {}", at(&doc, "\"thirty\""))
            ]
        );
    }

    #[test]
    fn objects_and_lists_where_a_scalar_belongs_are_wrong_types() {
        let doc = people(&[&person("p1", r#", "nick": {"a": [1]}, "team": ["t1"]"#)]);
        assert_eq!(
            check(&doc),
            [
                format!("E0504 {}", at(&doc, "{\"a\"")),
                format!("E0504 {}", at(&doc, "[\"t1\"]"))
            ]
        );
        let doc =
            people(&[&person("p1", "")
                .replace(r#""friends": []"#, r#""friends": ["p1", 7, null, ["x"]]"#)]);
        assert_eq!(
            check(&doc),
            [
                format!("E0504 {}", at(&doc, "7,")),
                format!("E0504 {}", at(&doc, "null,")),
                format!("E0504 {}", at(&doc, "[\"x\"]"))
            ]
        );
    }

    #[test]
    fn duplicate_key_points_at_the_second_record() {
        let doc = people(&[&person("p1", ""), &person("p1", "")]);
        assert_eq!(check(&doc), ["E0505 4:3"]);
    }

    #[test]
    fn duplicate_field_and_duplicate_collection() {
        let doc = people(&[&person("p1", r#", "age": 2"#)]);
        assert_eq!(check(&doc), [format!("E0513 {}", at(&doc, "2}"))]);
        let doc = "{\"people\": [],\n \"people\": []}";
        assert_eq!(check(doc), ["E0514 2:2"]);
    }

    #[test]
    fn missing_field_points_at_the_record() {
        let doc = people(&[&person("p1", "").replace(r#""age": 1, "#, "")]);
        assert_eq!(check(&doc), ["E0506 3:3"]);
        let errors = load_str(&doc).err().unwrap_or_default();
        assert_eq!(errors[0].to_string(), "record of `people` lacks `age`");
    }

    #[test]
    fn unknown_field_and_collection_suggest_a_name() {
        let doc = people(&[&person("p1", r#", "nmae": "x""#)]);
        let errors = load_str(&doc).err().unwrap_or_default();
        assert_eq!(
            fixture::codes_at(&errors),
            [format!("E0507 {}", at(&doc, "\"nmae\""))]
        );
        assert_eq!(
            errors[0].help().map(|help| help.to_string()),
            Some("did you mean `name`?".into())
        );
        let doc = "{\"teams\": [],\n  \"peeple\": [{\"x\": 1}]}";
        let errors = load_str(doc).err().unwrap_or_default();
        assert_eq!(fixture::codes_at(&errors), ["E0508 2:3"]);
        assert_eq!(
            errors[0].help().map(|help| help.to_string()),
            Some("did you mean `people`?".into())
        );
    }

    #[test]
    fn bad_date_and_unknown_variant() {
        let doc = people(&[&person("p1", "")
            .replace("2000-01-01", "2023-02-30")
            .replace(r#""admin""#, r#""admn""#)]);
        let errors = load_str(&doc).err().unwrap_or_default();
        assert_eq!(
            fixture::codes_at(&errors),
            [
                format!("E0510 {}", at(&doc, "\"2023-02-30\"")),
                format!("E0511 {}", at(&doc, "\"admn\""))
            ]
        );
        assert_eq!(
            errors[1].help().map(|help| help.to_string()),
            Some("did you mean `admin`?".into())
        );
    }

    #[test]
    fn integer_overflow_is_out_of_range_not_a_panic() {
        let doc =
            people(&[&person("p1", "").replace(r#""age": 1"#, r#""age": 9223372036854775808"#)]);
        assert_eq!(
            check(&doc),
            [format!("E0509 {}", at(&doc, "9223372036854775808"))]
        );
        let doc = people(&[
            &person("p1", "").replace(r#""score": 1"#, r#""score": 99999999999999999999999"#)
        ]);
        assert_eq!(
            check(&doc),
            [
                "loaded without errors:\npeople (1 records)\n  \"p1\" | \"A\" | 1 | 100000000000000000000000 | true | 2000-01-01 | #0 | null | [] | null | -\nteams (0 records)\n"
            ]
        );
        let doc = people(&[&person("p1", "").replace(r#""score": 1"#, r#""score": 1e999"#)]);
        assert_eq!(check(&doc), [format!("E0504 {}", at(&doc, "1e999"))]);
    }

    #[test]
    fn invalid_utf8_gives_the_byte_offset() {
        let mut bytes = people(&[&person("p1", "")]).into_bytes();
        let offset = bytes
            .windows(3)
            .position(|window| window == b"\"A\"")
            .unwrap_or_default()
            + 1;
        bytes[offset] = 0xFF;
        let result = load(
            SourceText::new("t.json", std::sync::Arc::new(bytes)),
            &fixture::schema(),
        );
        let errors = result.err().unwrap_or_default();
        assert_eq!(fixture::codes_at(&errors), ["E0501 3:25"]);
        assert_eq!(
            errors[0].to_string(),
            format!("malformed JSON: invalid UTF-8 at byte {offset}")
        );
    }

    #[test]
    fn wrong_shapes_are_reported() {
        assert_eq!(check("[1]"), ["E0501 1:1"]);
        assert_eq!(check("{\"people\": {}}"), ["E0504 1:12"]);
        let doc =
            people(&["x\": 1, \"y", &person("p1", "")]).replace("  {x\": 1, \"y}", "  [1, 2]");
        let errors = load_str(&doc).err().unwrap_or_default();
        assert_eq!(fixture::codes_at(&errors), ["E0504 3:3"]);
        assert_eq!(
            errors[0].to_string(),
            "`people[0]` should be a record (an object), found a list"
        );
    }

    #[test]
    fn errors_stop_at_the_limit() {
        let records: Vec<String> = (0..80)
            .map(|idx| person(&format!("p{idx}"), "").replace(r#""age": 1"#, r#""age": "x""#))
            .collect();
        let records: Vec<&str> = records.iter().map(String::as_str).collect();
        assert_eq!(check(&people(&records)).len(), crate::data::MAX_ERRORS);
    }

    /// Loads `doc` in pieces of every size from 1 to 60 bytes, with and
    /// without the fast path; every way must give the dump (or the errors,
    /// with their messages) of one jiter pass.
    fn assert_pieces_agree(doc: &str) {
        assert_pieces_agree_at(doc, &(1..60).collect::<Vec<_>>());
    }

    fn assert_pieces_agree_at(doc: &str, sizes: &[usize]) {
        let schema = fixture::schema();
        let outcome = |chunk: Option<usize>, fast: bool| match load_with(
            SourceText::from_string("t.json", doc),
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
        for &chunk in sizes {
            assert_eq!(outcome(Some(chunk), true), whole, "pieces of {chunk} bytes");
            assert_eq!(
                outcome(Some(chunk), false),
                whole,
                "pieces of {chunk} bytes, jiter"
            );
        }
    }

    /// Lines and columns from the lines the loader recorded equal the ones
    /// counted in the file afterwards: pretty, minified (one line), CRLF,
    /// multi-byte text before a record on its line, records across 4 KiB
    /// blocks, in pieces of many sizes; and the recorded lines are used.
    #[test]
    fn recorded_lines_equal_counted_lines() {
        let person = |n: usize, pad: usize| {
            format!(
                r#"{{"id": "p{n}", "name": "名字{}", "age": 3, "score": 1, "active": true, "born": "1990-01-01", "role": "admin", "friends": []}}"#,
                "长".repeat(pad)
            )
        };
        let many: Vec<String> = (0..60).map(|n| person(n, n * 7 % 300)).collect();
        let docs = [
            JSON_DOC.to_string(),
            JSON_DOC.replace('\n', ""),
            JSON_DOC.replace('\n', "\r\n"),
            format!(r#"{{"teams": [], "people": [{}]}}"#, many.join(",\n  ")),
            format!("{{\"teams\": [],\n\"people\": [{}]}}", many.join(", ")),
        ];
        let schema = fixture::schema();
        let mut recorded = 0;
        for doc in &docs {
            for chunk in [None, Some(40), Some(700), Some(5000)] {
                let Ok(dataset) = load_with(
                    SourceText::from_string("t.json", doc.as_str()),
                    &schema,
                    chunk,
                    true,
                ) else {
                    panic!("{doc}")
                };
                let records: Vec<(usize, usize)> = (0..dataset.collections.len())
                    .flat_map(|coll| (0..dataset.collections[coll].len).map(move |row| (coll, row)))
                    .collect();
                let found: Vec<_> = dataset
                    .positions_of(&records)
                    .into_iter()
                    .map(|at| at.map(|(_, line, col)| (line, col)))
                    .collect();
                let mut counted = dataset;
                for collection in &mut counted.collections {
                    if let Some(lines) = collection.record_lines.take() {
                        recorded += (0..lines.len())
                            .filter(|row| lines.get(*row).is_some())
                            .count();
                    }
                }
                let expected: Vec<_> = counted
                    .positions_of(&records)
                    .into_iter()
                    .map(|at| at.map(|(_, line, col)| (line, col)))
                    .collect();
                assert_eq!(found, expected, "pieces of {chunk:?} bytes: {doc}");
            }
        }
        assert!(recorded > 350, "records with recorded lines: {recorded}");
    }

    #[test]
    fn pieces_agree_with_one_pass() {
        assert_pieces_agree(JSON_DOC);
        // Cuts that look like record starts inside strings, a record of
        // another shape, escapes, nested values and lists.
        let tricky = people(&[
            &person("p1", r#", "nick": "},{\"id\": \"x\"}""#),
            &person("p2", r#", "nick": "a\nb""#),
            &person("p3", r#", "team": {"a": [1, {"b": 2}]}"#),
            &person("p4", "").replace(r#""friends": []"#, r#""friends": ["p1", "p2"]"#),
            &person("p5", "").replace(r#""age": 1"#, r#""age": 1e2"#),
        ]);
        assert_pieces_agree(&tricky);
    }

    #[test]
    fn pieces_agree_on_errors() {
        let doc = people(&[
            &person("p1", r#", "nick": 5"#),
            &person("p2", "").replace(r#""age": 1"#, r#""age": "thirty""#),
            &person("p1", ""),
            "\"id\": \"p4\"",
            &person("p5", r#", "bogus": true"#),
        ]);
        assert_pieces_agree(&doc);
        assert_pieces_agree(&format!("{doc}trailing"));
        assert_pieces_agree(&doc.replace("p5", "p5\u{1}"));
    }

    proptest! {
        /// The fast string scan takes exactly the strings a plain check
        /// takes: no escape, no control character, valid UTF-8 (ASCII,
        /// multi-byte text, broken sequences, bytes around 0x20 and 0x80).
        #[test]
        fn strings_scan_as_a_plain_check(body in proptest::collection::vec(prop_oneof![
            Just(b' '), Just(0x1fu8), Just(0x7fu8), Just(0x80u8), Just(b'\\'), Just(b'"'),
            Just(0xe4u8), Just(0xb8u8), Just(0xadu8), any::<u8>(), 0x20u8..0x7f,
        ], 0..40)) {
            let mut bytes = vec![b'"'];
            bytes.extend_from_slice(&body);
            bytes.push(b'"');
            let expected = memchr::memchr2(b'"', b'\\', &bytes[1..]).and_then(|at| {
                let end = 1 + at;
                let text = &bytes[1..end];
                (bytes[end] == b'"' && text.iter().all(|byte| *byte >= 0x20))
                    .then(|| std::str::from_utf8(text).ok().map(|text| (text, end + 1)))
                    .flatten()
            });
            prop_assert_eq!(scan_str(&bytes, 0), expected);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = load(SourceText::new("t.json", std::sync::Arc::new(bytes)), &fixture::schema());
        }

        #[test]
        fn pieces_agree_on_mutated_documents(edits in proptest::collection::vec((any::<prop::sample::Index>(), "[{},:\\[\\]\"0-9a-z ]"), 1..4)) {
            let mut doc = JSON_DOC.to_string();
            for (idx, text) in edits {
                let mut at = idx.index(doc.len() + 1);
                while !doc.is_char_boundary(at) {
                    at -= 1;
                }
                doc.insert_str(at, &text);
            }
            assert_pieces_agree_at(&doc, &[1, 2, 3, 5, 8, 13, 21, 34, 55]);
        }

        #[test]
        fn mutations_of_a_valid_document_never_panic(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6)) {
            let mut bytes = JSON_DOC.as_bytes().to_vec();
            for (idx, byte, op) in edits {
                let pos = idx.index(bytes.len() + 1);
                match op {
                    0 => bytes.insert(pos, byte),
                    1 if pos < bytes.len() => { bytes.remove(pos); }
                    _ if pos < bytes.len() => bytes[pos] = byte,
                    _ => {}
                }
            }
            let _ = load(SourceText::new("t.json", std::sync::Arc::new(bytes)), &fixture::schema());
        }
    }
}
