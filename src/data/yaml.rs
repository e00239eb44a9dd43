//! YAML loader: one document `{ collection: [ {record}, ... ], ... }`.
//!
//! Takes the file's text and the [`DataSchema`]; gives a [`Dataset`] or every
//! error found. The text is read as a stream of `saphyr-parser` events and
//! each scalar goes straight into the [`DatasetBuilder`]; no value tree is
//! built. A record's position is the byte offset where its mapping starts
//! (its first key for a block mapping, its `{` for a flow mapping).
//!
//! Scalars are typed by the schema, not by YAML's own resolution rules: a
//! plain scalar is read as text of the field's type (`code: 510822` under a
//! string field is the string `"510822"`, `age: 30` under an int field is
//! 30), except that a plain `null`, `Null`, `NULL`, `~` or empty value is
//! null. A quoted or block scalar, or one tagged `!!str`, is always a string.
//!
//! Anchors are ignored and aliases (`*name`) are refused (E0502): resolving
//! them would mean keeping values around, and a data export has no use for
//! them. A stream holding more than one document is refused too (E0502).
//!
//! **Invariants:** saphyr's markers count characters; every position stored
//! or reported here is a byte offset, converted by a cursor that only moves
//! as far as the events do, so conversion is O(n) over the whole file. A
//! value-level problem is reported and loading goes on; a syntax error stops
//! it. Nothing here panics on any input.

use std::borrow::Cow;

use miette::SourceSpan;
use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Span, StrInput, Tag};

use crate::data::{
    Cell, CellError, DataError, DataFormat, DataSchema, Dataset, DatasetBuilder, FieldType,
};
use crate::source::{SourceId, SourceText};

/// Loads one YAML document.
pub fn load(text: SourceText, schema: &DataSchema) -> Result<Dataset, Vec<DataError>> {
    let mut builder = DatasetBuilder::with_size_hint(schema, text.bytes().len());
    let src_id = builder.add_source(text.clone());
    let str_text = match std::str::from_utf8(text.bytes()) {
        Ok(str_text) => str_text,
        Err(error) => {
            let offset = error.valid_up_to();
            let message = format!("invalid UTF-8 at byte {offset}");
            builder.report(DataError::MalformedYaml {
                src: text.clone(),
                span: SourceSpan::new(offset.into(), 1),
                message,
            });
            return builder.finish(DataFormat::Yaml);
        }
    };
    let mut loader = Loader {
        text: &text,
        parser: Parser::new_from_str(str_text),
        builder,
        src_id,
        cursor: CharCursor::new(text.bytes()),
    };
    if let Err(Halt::Syntax(error)) = loader.stream() {
        let offset = loader.cursor.byte_of(error.marker().index());
        let message = error.info().to_string();
        let len = usize::from(offset < text.bytes().len());
        loader.builder.report(DataError::MalformedYaml {
            src: text.clone(),
            span: SourceSpan::new(offset.into(), len),
            message,
        });
    }
    loader.builder.finish(DataFormat::Yaml)
}

/// Why reading stopped before the end of the stream.
enum Halt {
    /// The text is not well-formed YAML.
    Syntax(ScanError),
    /// The error limit is reached, or the document's shape is wrong at the top.
    Stop,
}

/// Converts character indexes (saphyr's markers) to byte offsets.
///
/// It remembers where it last was and walks from there, so a sequence of
/// nearly increasing indexes costs O(n) in all; a step back is walked back.
struct CharCursor<'a> {
    bytes: &'a [u8],
    char_idx: usize,
    byte_idx: usize,
}

impl<'a> CharCursor<'a> {
    fn new(bytes: &'a [u8]) -> CharCursor<'a> {
        CharCursor {
            bytes,
            char_idx: 0,
            byte_idx: 0,
        }
    }

    fn is_continuation(&self, idx: usize) -> bool {
        self.bytes.get(idx).is_some_and(|byte| byte & 0xC0 == 0x80)
    }

    fn byte_of(&mut self, char_idx: usize) -> usize {
        while self.char_idx < char_idx && self.byte_idx < self.bytes.len() {
            self.byte_idx += 1;
            while self.is_continuation(self.byte_idx) {
                self.byte_idx += 1;
            }
            self.char_idx += 1;
        }
        while self.char_idx > char_idx && self.byte_idx > 0 {
            self.byte_idx -= 1;
            while self.byte_idx > 0 && self.is_continuation(self.byte_idx) {
                self.byte_idx -= 1;
            }
            self.char_idx -= 1;
        }
        self.byte_idx
    }
}

/// How a scalar is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ScalarKind {
    /// A null value.
    Null,
    /// Plain text, typed by the field.
    Plain,
    /// Always a string.
    Quoted,
}

fn scalar_kind(value: &str, style: ScalarStyle, tag: Option<&Tag>) -> ScalarKind {
    if let Some(tag) = tag.filter(|tag| tag.is_yaml_core_schema()) {
        match tag.suffix.as_str() {
            "str" => return ScalarKind::Quoted,
            "null" => return ScalarKind::Null,
            _ => {}
        }
    }
    match style {
        ScalarStyle::Plain if matches!(value, "" | "~" | "null" | "Null" | "NULL") => {
            ScalarKind::Null
        }
        ScalarStyle::Plain => ScalarKind::Plain,
        _ => ScalarKind::Quoted,
    }
}

/// Whether the event is a null scalar.
fn is_null(event: &Event<'_>) -> bool {
    matches!(event, Event::Scalar(value, style, _, tag) if scalar_kind(value, *style, tag.as_deref()) == ScalarKind::Null)
}

/// What an event's node is, in words.
fn kind_of(event: &Event<'_>) -> &'static str {
    match event {
        Event::Scalar(..) if is_null(event) => "null",
        Event::Scalar(..) => "a scalar",
        Event::SequenceStart(..) => "a sequence",
        Event::MappingStart(..) => "a mapping",
        Event::Alias(_) => "an alias",
        _ => "the end of a node",
    }
}

fn span(start: usize, end: usize) -> SourceSpan {
    SourceSpan::new(start.into(), end.saturating_sub(start))
}

struct Loader<'a, 's> {
    text: &'a SourceText,
    parser: Parser<'a, StrInput<'a>>,
    builder: DatasetBuilder<'s>,
    src_id: SourceId,
    cursor: CharCursor<'a>,
}

impl<'a> Loader<'a, '_> {
    fn next(&mut self) -> Result<(Event<'a>, Span), Halt> {
        match self.parser.next_event() {
            Some(Ok(event)) => Ok(event),
            Some(Err(error)) => Err(Halt::Syntax(error)),
            None => Ok((Event::StreamEnd, Span::empty(Marker::new(usize::MAX, 0, 0)))),
        }
    }

    fn byte(&mut self, marker: Marker) -> usize {
        self.cursor.byte_of(marker.index())
    }

    /// Byte offsets of the start and end of an event.
    fn bytes_of(&mut self, event_span: Span) -> (usize, usize) {
        let start = self.byte(event_span.start);
        let end = self.byte(event_span.end);
        (start, end.max(start))
    }

    /// Records an error; stops reading once the limit is reached.
    fn report(&mut self, error: DataError) -> Result<(), Halt> {
        self.builder.report(error);
        if self.builder.too_many_errors() {
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
        end: usize,
        coll: usize,
        field: usize,
    ) -> Result<(), Halt> {
        let schema = self.builder.schema();
        let collection = &schema.collections[coll];
        let error = (*error.into()).at(
            self.text,
            span(start, end),
            &collection.name,
            &collection.fields[field].name,
        );
        self.report(error)
    }

    fn malformed(&mut self, start: usize, end: usize, message: String) -> Result<(), Halt> {
        let error = DataError::MalformedYaml {
            src: self.text.clone(),
            span: span(start, end),
            message,
        };
        self.report(error)
    }

    /// Reports an alias at `start..end`.
    fn alias(&mut self, start: usize, end: usize) -> Result<(), Halt> {
        self.malformed(
            start,
            end,
            "aliases (`*name`) are not supported; write the value out in full".into(),
        )
    }

    /// Reports an event the parser should not have produced here and stops:
    /// the parser, not the data, would be at fault, but the load must still
    /// fail with a diagnostic rather than return partial data.
    fn unexpected(&mut self, event_span: Span) -> Halt {
        let (start, end) = self.bytes_of(event_span);
        let error = DataError::MalformedYaml {
            src: self.text.clone(),
            span: span(start, end),
            message: "unexpected YAML structure".into(),
        };
        self.builder.report(error);
        Halt::Stop
    }

    /// Consumes the rest of the node `event` starts; returns its end offset.
    fn skip_node(&mut self, event: &Event<'_>, event_span: Span) -> Result<usize, Halt> {
        let (_, end) = self.bytes_of(event_span);
        if matches!(event, Event::SequenceStart(..) | Event::MappingStart(..)) {
            self.skip_open()
        } else {
            Ok(end)
        }
    }

    /// Consumes events up to the end of the sequence or mapping just opened;
    /// returns its end offset.
    fn skip_open(&mut self) -> Result<usize, Halt> {
        let mut depth = 1usize;
        loop {
            let (event, event_span) = self.next()?;
            match event {
                Event::SequenceStart(..) | Event::MappingStart(..) => depth += 1,
                Event::SequenceEnd | Event::MappingEnd => depth -= 1,
                Event::StreamEnd
                | Event::DocumentEnd
                | Event::DocumentStart(_)
                | Event::StreamStart => return Err(self.unexpected(event_span)),
                _ => {}
            }
            if depth == 0 {
                return Ok(self.bytes_of(event_span).1);
            }
        }
    }

    /// Consumes the next node whole; returns its end offset.
    fn skip_next_node(&mut self) -> Result<usize, Halt> {
        let (event, event_span) = self.next()?;
        self.skip_node(&event, event_span)
    }

    fn stream(&mut self) -> Result<(), Halt> {
        let (event, event_span) = self.next()?;
        if event != Event::StreamStart {
            return Err(self.unexpected(event_span));
        }
        let (event, event_span) = self.next()?;
        match event {
            Event::StreamEnd => return Ok(()),
            Event::DocumentStart(_) => {}
            _ => return Err(self.unexpected(event_span)),
        }
        let (event, event_span) = self.next()?;
        match event {
            Event::MappingStart(..) => self.collections()?,
            // An empty document is an empty dataset.
            Event::Scalar(..) if is_null(&event) => {}
            other => {
                let (start, _) = self.bytes_of(event_span);
                let message = format!(
                    "the document should be a mapping of collection names to lists of records, found {}",
                    kind_of(&other)
                );
                self.malformed(start, start + 1, message)?;
                return Err(Halt::Stop);
            }
        }
        loop {
            let (event, event_span) = self.next()?;
            match event {
                Event::DocumentEnd => {}
                Event::StreamEnd => return Ok(()),
                _ => {
                    let (start, end) = self.bytes_of(event_span);
                    self.malformed(
                        start,
                        end.max(start + 1),
                        "a second document: the data must be one YAML document".into(),
                    )?;
                    return Err(Halt::Stop);
                }
            }
        }
    }

    fn collections(&mut self) -> Result<(), Halt> {
        let mut seen = vec![false; self.builder.schema().collections.len()];
        loop {
            let (event, event_span) = self.next()?;
            let (start, end) = self.bytes_of(event_span);
            let name = match event {
                Event::MappingEnd => return Ok(()),
                Event::Scalar(name, ..) => name,
                other => {
                    let key_end = self.skip_node(&other, event_span)?;
                    self.malformed(
                        start,
                        key_end,
                        format!(
                            "a collection name should be a plain string, found {}",
                            kind_of(&other)
                        ),
                    )?;
                    self.skip_next_node()?;
                    continue;
                }
            };
            match self.builder.collection_index(&name) {
                Some(coll) if std::mem::replace(&mut seen[coll], true) => {
                    let error =
                        self.builder
                            .duplicate_collection(self.text, span(start, end), coll);
                    self.report(error)?;
                    self.skip_next_node()?;
                }
                Some(coll) => self.collection(coll)?,
                None => {
                    let error = self
                        .builder
                        .unknown_collection(self.text, span(start, end), &name);
                    self.report(error)?;
                    self.skip_next_node()?;
                }
            }
        }
    }

    fn collection(&mut self, coll: usize) -> Result<(), Halt> {
        let (event, event_span) = self.next()?;
        match event {
            Event::SequenceStart(..) => {}
            // A null collection is an absent one.
            Event::Scalar(..) if is_null(&event) => return Ok(()),
            other => {
                let (start, _) = self.bytes_of(event_span);
                let end = self.skip_node(&other, event_span)?;
                let name = self.builder.schema().collections[coll].name.clone();
                let error = DataError::WrongType {
                    src: self.text.clone(),
                    span: span(start, end),
                    field: name,
                    expected: "a list of records".into(),
                    found: kind_of(&other).into(),
                };
                return self.report(error);
            }
        }
        let mut record_idx = 0usize;
        loop {
            let (event, event_span) = self.next()?;
            match event {
                Event::SequenceEnd => return Ok(()),
                Event::MappingStart(..) => self.record(coll, event_span)?,
                other => {
                    let (start, _) = self.bytes_of(event_span);
                    let end = self.skip_node(&other, event_span)?;
                    let name = format!(
                        "{}[{record_idx}]",
                        self.builder.schema().collections[coll].name
                    );
                    let error = DataError::WrongType {
                        src: self.text.clone(),
                        span: span(start, end),
                        field: name,
                        expected: "a record (a mapping)".into(),
                        found: kind_of(&other).into(),
                    };
                    self.report(error)?;
                }
            }
            record_idx += 1;
        }
    }

    fn record(&mut self, coll: usize, start_span: Span) -> Result<(), Halt> {
        let (start, mut last_end) = self.bytes_of(start_span);
        self.builder.begin_record(coll, self.src_id, start as u64);
        let mut hint = 0;
        loop {
            let (event, event_span) = self.next()?;
            let (key_start, key_end) = self.bytes_of(event_span);
            let key = match event {
                Event::MappingEnd => break,
                Event::Scalar(key, ..) => key,
                other => {
                    let end = self.skip_node(&other, event_span)?;
                    self.malformed(
                        key_start,
                        end,
                        format!(
                            "a field name should be a plain string, found {}",
                            kind_of(&other)
                        ),
                    )?;
                    last_end = self.skip_next_node()?;
                    continue;
                }
            };
            match self.builder.field_index_from(coll, &key, hint) {
                Some(field) => {
                    last_end = self.value(coll, field)?;
                    hint = field + 1;
                }
                None => {
                    let error =
                        self.builder
                            .unknown_field(self.text, span(key_start, key_end), coll, &key);
                    self.report(error)?;
                    last_end = self.skip_next_node()?;
                }
            }
        }
        let missing = self.builder.end_record(coll);
        if !missing.is_empty() {
            let error =
                self.builder
                    .missing_fields(self.text, span(start, last_end), coll, &missing);
            self.report(error)?;
        }
        Ok(())
    }

    /// Reads the value of field `field` of the current record; returns its
    /// end offset.
    fn value(&mut self, coll: usize, field: usize) -> Result<usize, Halt> {
        let (event, event_span) = self.next()?;
        let (start, end) = self.bytes_of(event_span);
        let result = match &event {
            Event::Scalar(value, style, _, tag) => self.set_scalar(coll, field, value, *style, tag),
            Event::SequenceStart(..) => return self.list(coll, field, start),
            Event::MappingStart(..) => {
                let end = self.skip_node(&event, event_span)?;
                let result = self.builder.set_other(coll, field, "a mapping");
                if let Err(error) = result {
                    self.reject(error, start, end, coll, field)?;
                }
                return Ok(end);
            }
            Event::Alias(_) => {
                let _ = self.builder.set_other(coll, field, "an alias");
                self.alias(start, end)?;
                return Ok(end);
            }
            // The parser emits a node after every key.
            _ => return Err(self.unexpected(event_span)),
        };
        if let Err(error) = result {
            self.reject(error, start, end, coll, field)?;
        }
        Ok(end)
    }

    fn set_scalar(
        &mut self,
        coll: usize,
        field: usize,
        value: &str,
        style: ScalarStyle,
        tag: &Option<Cow<'_, Tag>>,
    ) -> crate::data::CellResult {
        match scalar_kind(value, style, tag.as_deref()) {
            ScalarKind::Null => self.builder.set(coll, field, Cell::Null),
            ScalarKind::Plain => self.builder.set_text(coll, field, value),
            ScalarKind::Quoted => self.builder.set(coll, field, Cell::Str(value)),
        }
    }

    /// Reads a sequence value; `start` is its offset. Returns its end offset.
    fn list(&mut self, coll: usize, field: usize, start: usize) -> Result<usize, Halt> {
        if let Err(error) = self.builder.begin_list(coll, field) {
            let end = self.skip_open()?;
            self.reject(error, start, end, coll, field)?;
            return Ok(end);
        }
        let element = match self.builder.schema().collections[coll].fields[field].ty {
            FieldType::List(scalar) | FieldType::Scalar(scalar) => scalar,
        };
        loop {
            let (event, event_span) = self.next()?;
            let (item_start, item_end) = self.bytes_of(event_span);
            let result = match &event {
                Event::SequenceEnd => {
                    self.builder.end_list(coll, field);
                    return Ok(item_end);
                }
                Event::Scalar(value, style, _, tag) => {
                    match scalar_kind(value, *style, tag.as_deref()) {
                        ScalarKind::Null => self.builder.push_item(coll, field, Cell::Null),
                        ScalarKind::Plain => self.builder.push_item_text(coll, field, value),
                        ScalarKind::Quoted => self.builder.push_item(coll, field, Cell::Str(value)),
                    }
                }
                Event::Alias(_) => {
                    self.alias(item_start, item_end)?;
                    continue;
                }
                Event::SequenceStart(..) | Event::MappingStart(..) => {
                    let end = self.skip_node(&event, event_span)?;
                    let error = CellError::WrongType {
                        expected: self.builder.schema().scalar_name(element),
                        found: kind_of(&event).into(),
                    };
                    self.reject(error, item_start, end, coll, field)?;
                    continue;
                }
                _ => return Err(self.unexpected(event_span)),
            };
            if let Err(error) = result {
                self.reject(error, item_start, item_end, coll, field)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::data::fixture::{self, EXPECTED_DUMP, PEOPLE, TEAMS, YAML_DOC, at};

    fn load_str(doc: &str) -> Result<Dataset, Vec<DataError>> {
        load(SourceText::from_string("t.yaml", doc), &fixture::schema())
    }

    /// The errors of loading `doc`, as `"E0504 3:12"`.
    fn check(doc: &str) -> Vec<String> {
        fixture::expect_errors(&fixture::schema(), load_str(doc))
    }

    /// A document with one block-style person per entry of `extras` (each
    /// the lines after `id`, `name` and `age`), starting on line 2.
    fn people(persons: &[(&str, &str)]) -> String {
        let mut doc = String::from("people:\n");
        for (id, extra) in persons {
            doc.push_str(&format!("  - id: {id}\n    name: A\n    score: 1\n    active: true\n    born: 2000-01-01\n    role: admin\n{extra}"));
        }
        doc
    }

    #[test]
    fn loads_values_nulls_refs_lists_and_positions() {
        let schema = fixture::schema();
        let dataset = fixture::expect_dataset(load_str(YAML_DOC));
        assert_eq!(fixture::dump(&schema, &dataset), EXPECTED_DUMP);
        assert_eq!(dataset.format, DataFormat::Yaml);
        // A block record starts at its first key, a flow record at its `{`.
        let starts: Vec<Option<u64>> = ["id: p1", "{id: p2", "id: p3"]
            .iter()
            .map(|needle| YAML_DOC.find(needle).map(|at| at as u64))
            .collect();
        assert_eq!(dataset.collections[PEOPLE].positions.to_vec(), starts);
        assert_eq!(dataset.position_of(PEOPLE, 2), Some(("t.yaml", 21, 5)));
        assert_eq!(dataset.position_of(TEAMS, 1), Some(("t.yaml", 6, 5)));
    }

    #[test]
    fn plain_scalars_are_typed_by_the_schema() {
        let schema = fixture::schema();
        let doc =
            "teams:\n  - id: 510822\n    size: '3'\n  - id: true\n    tags: [1, 'null', null]\n";
        assert_eq!(
            check(doc),
            [
                format!("E0504 {}", at(doc, "'3'")),
                format!("E0504 {}", at(doc, "null]"))
            ]
        );
        let doc = "teams:\n  - id: 510822\n    tags: [1, 'null', 2.5, \"x\"]\n  - id: true\n    size: 007\n";
        let dataset = fixture::expect_dataset(load_str(doc));
        assert_eq!(
            fixture::dump(&schema, &dataset),
            "people (0 records)\nteams (2 records)\n  \"510822\" | null | [\"1\", \"null\", \"2.5\", \"x\"]\n  \"true\" | 7 | null\n"
        );
    }

    #[test]
    fn empty_documents_and_null_collections_are_empty() {
        for doc in [
            "",
            "# nothing\n",
            "---\n",
            "---\n...\n",
            "people:\nteams: ~\n",
        ] {
            let dataset = fixture::expect_dataset(load_str(doc));
            assert!(
                dataset
                    .collections
                    .iter()
                    .all(|collection| collection.len == 0),
                "{doc:?}"
            );
        }
    }

    #[test]
    fn broken_yaml_stops_at_the_syntax_error() {
        let doc = people(&[("p1", "    friends: [p2\n")]);
        let errors = check(&doc);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("E0502 "), "{errors:?}");
        // An unterminated quote is reported where it opens.
        let doc = "people:\n  - id: \"p1\n";
        assert_eq!(check(doc), ["E0502 2:9"]);
    }

    #[test]
    fn wrong_type_points_at_the_value() {
        let doc = people(&[("p1", "    age: thirty\n    friends: []\n    nick: {a: 1}\n")]);
        assert_eq!(
            check(&doc),
            [
                format!("E0504 {}", at(&doc, "thirty")),
                format!("E0504 {}", at(&doc, "{a: 1}"))
            ]
        );
    }

    #[test]
    fn duplicate_key_field_and_collection() {
        let doc = people(&[("p1", "    age: 1\n"), ("p1", "    age: 2\n    age: 3\n")]);
        assert_eq!(
            check(&doc),
            [format!("E0513 {}", at(&doc, "3\n")), "E0505 9:5".into()]
        );
        let doc = "people: []\nteams: []\npeople: []\n";
        assert_eq!(check(doc), ["E0514 3:1"]);
    }

    #[test]
    fn missing_field_points_at_the_record() {
        let doc = people(&[("p1", "    nick: x\n")]);
        assert_eq!(check(&doc), ["E0506 2:5"]);
    }

    #[test]
    fn unknown_field_and_collection_suggest_a_name() {
        let doc = people(&[("p1", "    age: 1\n    nmae: x\n")]);
        assert_eq!(check(&doc), [format!("E0507 {}", at(&doc, "nmae"))]);
        let doc = "teams: []\npeeple:\n  - x: 1\n";
        assert_eq!(check(doc), ["E0508 2:1"]);
    }

    #[test]
    fn bad_date_unknown_variant_and_overflow() {
        let doc = people(&[("p1", "    age: 99999999999999999999\n")])
            .replace("2000-01-01", "2023-02-30")
            .replace("admin", "admn");
        assert_eq!(
            check(&doc),
            [
                format!("E0510 {}", at(&doc, "2023-02-30")),
                format!("E0511 {}", at(&doc, "admn")),
                format!("E0509 {}", at(&doc, "9999"))
            ]
        );
    }

    #[test]
    fn invalid_utf8_gives_the_byte_offset() {
        let mut bytes = people(&[("p1", "    age: 1\n")]).into_bytes();
        let offset = bytes
            .iter()
            .position(|byte| *byte == b'A')
            .unwrap_or_default();
        bytes[offset] = 0xC3;
        let result = load(
            SourceText::new("t.yaml", std::sync::Arc::new(bytes)),
            &fixture::schema(),
        );
        let errors = result.err().unwrap_or_default();
        assert_eq!(fixture::codes_at(&errors), ["E0502 3:11"]);
        assert_eq!(
            errors[0].to_string(),
            format!("malformed YAML: invalid UTF-8 at byte {offset}")
        );
    }

    #[test]
    fn positions_after_multibyte_text_are_bytes() {
        let doc = "teams:\n  - {id: 名字名字, size: x}\n";
        assert_eq!(check(doc), [format!("E0504 {}", at(doc, "x}"))]);
        let errors = load_str(doc).err().unwrap_or_default();
        let DataError::WrongType { span, .. } = &errors[0] else {
            panic!("{errors:?}")
        };
        assert_eq!(span.offset(), doc.find("x}").unwrap_or_default());
    }

    #[test]
    fn aliases_shapes_and_second_documents_are_refused() {
        let doc = people(&[("p1", "    age: &a 1\n    nick: *a\n")]);
        assert_eq!(check(&doc), [format!("E0502 {}", at(&doc, "*a"))]);
        assert_eq!(check("- 1\n"), ["E0502 1:1"]);
        assert_eq!(check("people: 3\n"), ["E0504 1:9"]);
        assert_eq!(check("people:\n  - [1]\n"), ["E0504 2:5"]);
        assert_eq!(check("people: []\n---\nteams: []\n"), ["E0502 2:1"]);
        assert_eq!(check("? [a]\n: 1\n"), ["E0502 1:3"]);
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        // saphyr refuses nesting deeper than its limit as a syntax error.
        let doc = format!(
            "teams:\n  - id: x\n    tags: {}{}\n",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let errors = load_str(&doc).err().unwrap_or_default();
        assert_eq!(fixture::codes_at(&errors), ["E0502 3:266"]);
        let doc = format!(
            "teams:\n  - id: x\n    tags: {}{}\n",
            "[".repeat(100),
            "]".repeat(100)
        );
        // The outer list is the field's; its first item is a nested list.
        assert_eq!(check(&doc), ["E0504 3:12"]);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = load(SourceText::new("t.yaml", std::sync::Arc::new(bytes)), &fixture::schema());
        }

        #[test]
        fn arbitrary_text_never_panics(text in "[a-z:\\-\\[\\]{}&*!|>'\" \n#,?~0-9]{0,120}") {
            let _ = load_str(&text);
        }

        #[test]
        fn mutations_of_a_valid_document_never_panic(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6)) {
            let mut bytes = YAML_DOC.as_bytes().to_vec();
            for (idx, byte, op) in edits {
                let pos = idx.index(bytes.len() + 1);
                match op {
                    0 => bytes.insert(pos, byte),
                    1 if pos < bytes.len() => { bytes.remove(pos); }
                    _ if pos < bytes.len() => bytes[pos] = byte,
                    _ => {}
                }
            }
            let _ = load(SourceText::new("t.yaml", std::sync::Arc::new(bytes)), &fixture::schema());
        }
    }
}
