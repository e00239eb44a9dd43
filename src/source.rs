//! Sources and spans: the text of every policy and data file the run reads,
//! and the small `Copy` positions that point into it.
//!
//! Takes file names and bytes; gives [`SourceId`]s, [`Span`]s and a
//! [`SourceMap`] that turns byte offsets into line and column only when a
//! diagnostic or a violation is reported.
//!
//! **Invariant:** no stage logic lives here; this module knows nothing about
//! policies, schemas or data formats.

use std::fmt;
use std::sync::{Arc, OnceLock};

use miette::{MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

/// Index of a file in the [`SourceMap`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceId(pub u32);

/// A byte range in one source file.
///
/// Spans are compared and hashed like any value; the AST wraps them so that
/// structural equality of nodes can ignore them where that matters (tests of
/// `fmt` compare trees up to spans).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// The file.
    pub src: SourceId,
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Span {
    /// A span over `start..end` in `src`.
    pub fn new(src: SourceId, start: usize, end: usize) -> Span {
        Span {
            src,
            start: start as u32,
            end: end as u32,
        }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            src: self.src,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// Length in bytes.
    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    /// Whether the span is empty.
    pub fn is_empty(self) -> bool {
        self.end == self.start
    }
}

impl From<Span> for SourceSpan {
    fn from(span: Span) -> SourceSpan {
        SourceSpan::new((span.start as usize).into(), span.len())
    }
}

/// The bytes of one file, shared cheaply between diagnostics.
///
/// Data files can be large and memory-mapped; policy files are small strings.
/// Both are read through this one type so a diagnostic can quote either.
#[derive(Clone)]
pub struct SourceText {
    name: Arc<str>,
    /// One pointer, so diagnostics that carry a `SourceText` stay small.
    inner: Arc<Backing>,
}

struct Backing {
    bytes: Arc<dyn AsRef<[u8]> + Send + Sync>,
    /// The same bytes when they are a memory map, so pages already read can
    /// be handed back to the kernel ([`SourceText::release`]).
    map: Option<Arc<memmap2::Mmap>>,
    /// Newline counts, when a loader has counted them.
    lines: OnceLock<LineIndex>,
}

/// Newlines per 4 KiB block of a file, so the line of any offset is found
/// without reading the file from its start (and without faulting in every
/// page of a memory-mapped file again after a loader released them).
#[derive(Clone, Debug, Default)]
pub struct LineIndex {
    /// Newlines in block `b` (bytes `b << BLOCK_SHIFT ..`).
    counts: Vec<u16>,
    /// Newlines before block `g * GROUP`.
    groups: Vec<u64>,
}

impl LineIndex {
    /// Bytes per block, as a shift.
    pub const BLOCK_SHIFT: u32 = 12;
    const GROUP: usize = 256;

    /// An index from per-block newline counts (`counts[b]` counts block `b`).
    pub fn new(counts: Vec<u16>) -> LineIndex {
        let mut groups = Vec::with_capacity(counts.len() / Self::GROUP + 1);
        let mut total = 0u64;
        for (idx, count) in counts.iter().enumerate() {
            if idx % Self::GROUP == 0 {
                groups.push(total);
            }
            total += u64::from(*count);
        }
        LineIndex { counts, groups }
    }

    /// Newlines in `bytes[..offset]`, reading at most one block of `bytes`.
    /// Newlines before block `block`, if the index covers it.
    pub fn newlines_before_block(&self, block: usize) -> Option<usize> {
        if block > self.counts.len() {
            return None;
        }
        let group = block / Self::GROUP;
        let total = *self.groups.get(group)? as usize;
        Some(
            total
                + self.counts[group * Self::GROUP..block]
                    .iter()
                    .map(|count| *count as usize)
                    .sum::<usize>(),
        )
    }

    fn newlines_before(&self, bytes: &[u8], offset: usize) -> usize {
        let block = offset >> Self::BLOCK_SHIFT;
        let group = block / Self::GROUP;
        let mut total = self.groups.get(group).copied().unwrap_or_default() as usize;
        total += self
            .counts
            .get(group * Self::GROUP..block.min(self.counts.len()))
            .unwrap_or_default()
            .iter()
            .map(|count| *count as usize)
            .sum::<usize>();
        let start = (block << Self::BLOCK_SHIFT).min(offset);
        total + count_newlines(&bytes[start..offset])
    }
}

/// Characters in `bytes`: the bytes that are not UTF-8 continuation bytes.
/// Additive over any split (even inside a character), so a pass can count
/// from where it stopped; for valid text it is the number of characters.
pub fn char_count(bytes: &[u8]) -> usize {
    bytes.iter().filter(|byte| (**byte as i8) >= -0x40).count()
}

/// Newlines in `bytes`. `memchr` counts with AVX2 when the CPU has it
/// (selected at run time): about 15 times the speed of a plain loop
/// compiled for the baseline x86-64 target.
pub fn count_newlines(bytes: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', bytes).count()
}

impl fmt::Debug for SourceText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceText")
            .field("name", &self.name)
            .field("len", &self.bytes().len())
            .finish()
    }
}

impl SourceText {
    /// A file named `name` holding `bytes`.
    pub fn new(name: impl Into<Arc<str>>, bytes: Arc<dyn AsRef<[u8]> + Send + Sync>) -> SourceText {
        SourceText {
            name: name.into(),
            inner: Arc::new(Backing {
                bytes,
                map: None,
                lines: OnceLock::new(),
            }),
        }
    }

    /// A memory-mapped file.
    pub fn mapped(name: impl Into<Arc<str>>, map: memmap2::Mmap) -> SourceText {
        let map = Arc::new(map);
        SourceText {
            name: name.into(),
            inner: Arc::new(Backing {
                bytes: map.clone(),
                map: Some(map),
                lines: OnceLock::new(),
            }),
        }
    }

    /// Hands the pages of `range` back to the kernel if the file is memory
    /// mapped: a loader calls this behind itself, so a large file never sits
    /// in the process's memory all at once. The bytes stay readable; a later
    /// read faults them in again from the page cache.
    pub fn release(&self, range: std::ops::Range<usize>) {
        let Some(map) = &self.inner.map else { return };
        const PAGE: usize = 4096;
        let start = range.start.div_ceil(PAGE) * PAGE;
        let end = (range.end.min(map.len()) / PAGE) * PAGE;
        if start >= end {
            return;
        }
        // SAFETY: the map is a read-only shared mapping of a file. Dropping
        // its resident pages does not change what the bytes read as: the
        // next access reloads them from the file. (Writes to the file by
        // another process while bangfu runs are outside what any reader of a
        // mapped file can defend against; see `data::read_file`.)
        let _ = unsafe {
            map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
        };
    }

    /// Maps the pages of `range` in one call if the file is memory mapped
    /// (a loader about to read them): one call instead of a fault per few
    /// pages. Nothing changes if the kernel cannot.
    pub fn prefetch(&self, range: std::ops::Range<usize>) {
        let Some(map) = &self.inner.map else { return };
        const PAGE: usize = 4096;
        let start = (range.start / PAGE) * PAGE;
        let end = range.end.min(map.len());
        if start >= end {
            return;
        }
        #[cfg(target_os = "linux")]
        let _ = map.advise_range(memmap2::Advice::PopulateRead, start, end - start);
    }

    /// Records the newline counts a loader made while reading the file.
    pub fn set_line_index(&self, index: LineIndex) {
        let _ = self.inner.lines.set(index);
    }

    /// The newline counts, if a loader recorded them.
    pub fn line_index(&self) -> Option<&LineIndex> {
        self.inner.lines.get()
    }

    /// A file held as a string (policy files, test inputs).
    pub fn from_string(name: impl Into<Arc<str>>, text: impl Into<String>) -> SourceText {
        let text: String = text.into();
        SourceText::new(name, Arc::new(text.into_bytes()))
    }

    /// The file's name as the user gave it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        (*self.inner.bytes).as_ref()
    }

    /// The file's text, if it is valid UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(self.bytes()).ok()
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(self.bytes(), offset)
    }

    /// 1-based lines and columns of many byte offsets, in one pass over the
    /// file: reporting thousands of violations in a large file must not scan
    /// it once per violation. With a [`LineIndex`], only the bytes between
    /// each offset and the newline before it are read, the pages read are
    /// handed back as the pass goes on, and runs of offsets are read on all
    /// cores (each run starts from the index, not from the run before it).
    pub fn line_cols(&self, offsets: &[usize]) -> Vec<(usize, usize)> {
        use rayon::prelude::*;
        const RUN: usize = 2048;
        let mut order: Vec<usize> = (0..offsets.len()).collect();
        order.sort_unstable_by_key(|idx| offsets[*idx]);
        let mut result = vec![(1, 1); offsets.len()];
        let index = self.line_index();
        let runs: Vec<Vec<(usize, usize)>> = match index {
            Some(_) if order.len() > RUN => order
                .par_chunks(RUN)
                .map(|run| self.line_cols_run(run, offsets, index))
                .collect(),
            _ => vec![self.line_cols_run(&order, offsets, index)],
        };
        for (idx, line_col) in order.iter().zip(runs.into_iter().flatten()) {
            result[*idx] = line_col;
        }
        result
    }

    /// Lines and columns of `offsets[idx]` for each `idx` of `run` (in
    /// increasing offset order). Without an index the run must start the
    /// file's first line.
    fn line_cols_run(
        &self,
        run: &[usize],
        offsets: &[usize],
        index: Option<&LineIndex>,
    ) -> Vec<(usize, usize)> {
        const RELEASE_EVERY: usize = 1 << 22;
        let bytes = self.bytes();
        let mut result = Vec::with_capacity(run.len());
        // At `pos`: its line, and its column (in characters).
        let (mut pos, mut line, mut col) = (0usize, 1usize, 1usize);
        let first = run.first().map_or(0, |idx| offsets[*idx].min(bytes.len()));
        let mut released = first;
        for idx in run {
            let offset = offsets[*idx].min(bytes.len());
            let gap = &bytes[pos..offset];
            match memchr::memrchr(b'\n', gap) {
                Some(last) => {
                    line = match index {
                        Some(index) => 1 + index.newlines_before(bytes, offset),
                        None => line + count_newlines(gap),
                    };
                    col = char_count(&gap[last + 1..]) + 1;
                }
                None => col += char_count(gap),
            }
            pos = offset;
            result.push((line, col));
            if offset - released >= RELEASE_EVERY {
                self.release(released..offset);
                released = offset;
            }
        }
        if pos > released {
            self.release(released..pos);
        }
        result
    }

    /// Byte offset of a 1-based line and 0-based character column.
    pub fn offset_of(&self, line: usize, col: usize) -> usize {
        let bytes = self.bytes();
        let mut current_line = 1;
        let mut line_start = 0;
        if line > 1 {
            for (idx, byte) in bytes.iter().enumerate() {
                if *byte == b'\n' {
                    current_line += 1;
                    if current_line == line {
                        line_start = idx + 1;
                        break;
                    }
                }
            }
        }
        let rest = &bytes[line_start.min(bytes.len())..];
        let text = String::from_utf8_lossy(&rest[..rest.len().min(col * 4 + 4)]);
        let byte_col: usize = text.chars().take(col).map(char::len_utf8).sum();
        (line_start + byte_col).min(bytes.len())
    }
}

/// 1-based line and column (in characters) of `offset` in `bytes`.
pub fn line_col(bytes: &[u8], offset: usize) -> (usize, usize) {
    let offset = offset.min(bytes.len());
    let before = &bytes[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    let col = String::from_utf8_lossy(&bytes[line_start..offset])
        .chars()
        .count()
        + 1;
    (line, col)
}

impl SourceCode for SourceText {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let contents = self
            .bytes()
            .read_span(span, context_lines_before, context_lines_after)?;
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.to_string(),
            contents.data(),
            *contents.span(),
            contents.line(),
            contents.column(),
            contents.line_count(),
        )))
    }
}

/// Every file a run has read, by [`SourceId`].
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceText>,
}

impl SourceMap {
    /// An empty map.
    pub fn new() -> SourceMap {
        SourceMap::default()
    }

    /// Adds a file and returns its id.
    pub fn add(&mut self, text: SourceText) -> SourceId {
        self.files.push(text);
        SourceId(self.files.len() as u32 - 1)
    }

    /// The file with this id.
    pub fn get(&self, id: SourceId) -> &SourceText {
        &self.files[id.0 as usize]
    }

    /// All files, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = (SourceId, &SourceText)> {
        self.files
            .iter()
            .enumerate()
            .map(|(idx, text)| (SourceId(idx as u32), text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_cols_agree_with_line_col() {
        let text = "a\nbb\n名字x\n\nlast";
        let source = SourceText::from_string("t", text);
        let offsets: Vec<usize> = vec![9, 0, 3, 2, text.len(), 12, 5];
        let expected: Vec<(usize, usize)> = offsets
            .iter()
            .map(|o| line_col(text.as_bytes(), *o))
            .collect();
        assert_eq!(source.line_cols(&offsets), expected);
    }

    /// With a line index and more offsets than one run, runs are read on
    /// several threads, each from the index: the same lines and columns.
    #[test]
    fn line_cols_in_parallel_runs_agree_with_line_col() {
        let mut text = String::new();
        for n in 0..20_000 {
            text.push_str(&format!("行{n},x\n"));
            if n % 7 == 0 {
                text.push('\n');
            }
        }
        let source = SourceText::from_string("t", text.clone());
        let bytes = text.as_bytes();
        let counts: Vec<u16> = bytes
            .chunks(1 << LineIndex::BLOCK_SHIFT)
            .map(|block| count_newlines(block) as u16)
            .collect();
        source.set_line_index(LineIndex::new(counts));
        // Offsets at character boundaries, unsorted, some repeated.
        let offsets: Vec<usize> = (0..9_000)
            .map(|i| (i * 7919) % bytes.len())
            .map(|o| {
                (0..=o)
                    .rev()
                    .find(|o| text.is_char_boundary(*o))
                    .unwrap_or(0)
            })
            .collect();
        let expected: Vec<(usize, usize)> = offsets.iter().map(|o| line_col(bytes, *o)).collect();
        assert_eq!(source.line_cols(&offsets), expected);
    }

    #[test]
    fn line_col_counts_characters_not_bytes() {
        let text = "ab\n名字x\n";
        assert_eq!(line_col(text.as_bytes(), 0), (1, 1));
        let x = text.find('x').unwrap_or_default();
        assert_eq!(line_col(text.as_bytes(), x), (2, 3));
        let source = SourceText::from_string("t", text);
        assert_eq!(source.offset_of(2, 2), x);
    }
}
