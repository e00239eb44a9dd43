//! Interned strings, built by many threads at once.
//!
//! Loaders parse a file in chunks on several threads. Each chunk interns its
//! strings into its own small table ([`LocalStrings`]), which stays in cache
//! and needs no lock; the strings land in *segments* (an arena of bytes plus
//! end offsets, at most 2^20 strings each) whose ids come from one atomic
//! counter. When every chunk is done, [`canonicalize`] finds, in parallel over
//! 64 shards of the hash space, the first occurrence (in document order) of
//! every distinct string: that is its canonical [`Sym`], and every other
//! occurrence is remapped to it. After that, two equal strings of a dataset
//! have equal symbols, as with any interner.
//!
//! Strings the plan only shows (a person's name in a message) are the
//! exception: chunks append them to segments of their own, without looking
//! for an earlier equal string, and those segments join the interner for
//! [`Interner::resolve`] but skip [`canonicalize`] (finding their first
//! occurrences was most of its work, for nothing). Their symbols are only
//! ever resolved to text, never compared; [`Interner::get`] does not know
//! them.
//!
//! **Invariants:** segment bytes are only ever appended from `&str`, so every
//! string in a segment is valid UTF-8; symbol 0 is the empty string.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use hashbrown::HashTable;
use rayon::prelude::*;

/// Bits of a symbol that index a string within its segment.
const LOCAL_BITS: u32 = 20;
/// Strings per segment.
const SEGMENT_STRINGS: usize = 1 << LOCAL_BITS;
/// Number of segment ids.
const MAX_SEGMENTS: u32 = 1 << (32 - LOCAL_BITS);
/// Bytes reserved per expected string of a segment (see
/// [`Segment::with_room`]): well above a ledger's ids and names.
const BYTES_PER_STRING: usize = 48;
/// Shards of the hash space the canonical tables are split into: enough
/// that each shard's table stays in cache while it is filled.
const SHARDS: usize = 1024;

/// An interned string of a dataset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sym(u32);

impl Sym {
    fn new(segment: u32, local: usize) -> Sym {
        Sym(segment << LOCAL_BITS | local as u32)
    }

    fn segment(self) -> usize {
        (self.0 >> LOCAL_BITS) as usize
    }

    fn local(self) -> usize {
        (self.0 & ((1 << LOCAL_BITS) - 1)) as usize
    }

    /// The symbol of string `local` of segment `segment`.
    pub(crate) fn at(segment: u32, local: usize) -> Sym {
        Sym::new(segment, local)
    }

    /// Its segment id.
    pub(crate) fn segment_index(self) -> usize {
        self.segment()
    }

    /// Its index within its segment.
    pub(crate) fn local_index(self) -> usize {
        self.local()
    }

    /// The raw value (for compact storage by loaders).
    pub(crate) fn to_raw(self) -> u32 {
        self.0
    }

    /// A symbol from [`Sym::to_raw`].
    pub(crate) fn from_raw(raw: u32) -> Sym {
        Sym(raw)
    }
}

/// Byte equality for the short strings of a ledger (ids, codes, names):
/// two overlapping word compares instead of a call to `memcmp`.
#[inline]
pub(crate) fn eq_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word =
        |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().unwrap_or_default());
    let half =
        |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().unwrap_or_default());
    match n {
        0 => true,
        1..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        4..=8 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        9..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        17..=32 => {
            word(a, 0) == word(b, 0)
                && word(a, 8) == word(b, 8)
                && word(a, n - 16) == word(b, n - 16)
                && word(a, n - 8) == word(b, n - 8)
        }
        _ => a == b,
    }
}

/// The hash every table here uses.
#[inline]
pub(crate) fn hash_str(text: &[u8]) -> u64 {
    rustc_hash::FxBuildHasher.hash_one(text)
}

/// Strings stored back to back; string `i` ends at `ends[i]`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Segment {
    bytes: Vec<u8>,
    ends: Vec<u32>,
}

impl Segment {
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    #[inline]
    pub(crate) fn get(&self, idx: usize) -> &str {
        let end = self.ends[idx] as usize;
        let start = if idx == 0 {
            0
        } else {
            self.ends[idx - 1] as usize
        };
        let bytes = &self.bytes[start..end];
        // SAFETY: `push` only appends the bytes of a `&str`, and `start` and
        // `end` are boundaries between two pushed strings.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    fn fits(&self, text: &str) -> bool {
        self.ends.len() < SEGMENT_STRINGS && self.bytes.len() + text.len() <= u32::MAX as usize
    }

    /// A segment with room for about `strings` strings: the room is only
    /// address space until written, and a segment that never grows is never
    /// copied into fresh pages (growing by doubling was half the page faults
    /// of the JSON load).
    fn with_room(strings: usize) -> Segment {
        Segment {
            bytes: Vec::with_capacity(strings.saturating_mul(BYTES_PER_STRING)),
            ends: Vec::with_capacity(strings),
        }
    }

    fn push(&mut self, text: &str) -> usize {
        self.bytes.extend_from_slice(text.as_bytes());
        self.ends.push(self.bytes.len() as u32);
        self.ends.len() - 1
    }

    fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + self.ends.capacity() * 4
    }
}

/// Hands out segment ids; shared by every chunk of one load.
#[derive(Debug)]
pub(crate) struct SegmentIds(AtomicU32);

impl SegmentIds {
    /// Segment 0 is reserved for the empty string.
    pub(crate) fn new() -> Arc<SegmentIds> {
        Arc::new(SegmentIds(AtomicU32::new(1)))
    }

    fn next(&self) -> u32 {
        let id = self.0.fetch_add(1, Ordering::Relaxed);
        assert!(
            id < MAX_SEGMENTS,
            "more than {MAX_SEGMENTS} string segments in one dataset"
        );
        id
    }
}

/// The strings one chunk has met, deduplicated within the chunk.
#[derive(Debug)]
pub(crate) struct LocalStrings {
    ids: Arc<SegmentIds>,
    /// Table size to start a segment with.
    capacity: usize,
    /// The open segment and its table (local index by content).
    current: Option<(u32, Segment, HashTable<u32>)>,
    /// Full segments, in the order they were filled.
    done: Vec<(u32, Segment)>,
}

impl LocalStrings {
    /// Strings for about `capacity` distinct strings: growing a table
    /// rehashes every string in it, which reads them all again.
    pub(crate) fn with_capacity(ids: Arc<SegmentIds>, capacity: usize) -> LocalStrings {
        LocalStrings {
            ids,
            capacity: capacity.clamp(64, SEGMENT_STRINGS),
            current: None,
            done: Vec::new(),
        }
    }

    /// The symbol of `text`, adding it if this chunk has not met it.
    #[inline]
    pub(crate) fn intern(&mut self, text: &str) -> Sym {
        if text.is_empty() {
            return Sym::default();
        }
        let hash = hash_str(text.as_bytes());
        if let Some((id, segment, table)) = &mut self.current {
            if let Some(&idx) = table.find(hash, |&idx| {
                eq_bytes(segment.get(idx as usize).as_bytes(), text.as_bytes())
            }) {
                return Sym::new(*id, idx as usize);
            }
            if segment.fits(text) {
                let idx = segment.push(text);
                let segment = &*segment;
                let rehash = |&idx: &u32| hash_str(segment.get(idx as usize).as_bytes());
                if table.capacity() == 0 {
                    // A segment `push_unique` opened: its table is made
                    // when first needed.
                    table.reserve(self.capacity, rehash);
                }
                table.insert_unique(hash, idx as u32, rehash);
                return Sym::new(*id, idx);
            }
        }
        // Open a new segment (the first, or the old one is full).
        if let Some((id, segment, _)) = self.current.take() {
            self.done.push((id, segment));
        }
        let id = self.ids.next();
        let mut segment = Segment::with_room(self.capacity);
        let idx = segment.push(text);
        let mut table = HashTable::with_capacity(self.capacity);
        table.insert_unique(hash, idx as u32, |_| hash);
        self.current = Some((id, segment, table));
        Sym::new(id, idx)
    }

    /// A symbol for `text` without looking for an earlier equal string:
    /// for keys, which are distinct anyway (a repeated one still gets its
    /// canonical symbol when chunks are merged), and for strings only shown,
    /// where a repeated name costs its bytes but looking it up cost more.
    #[inline]
    pub(crate) fn push_unique(&mut self, text: &str) -> Sym {
        if text.is_empty() {
            return Sym::default();
        }
        if let Some((id, segment, _)) = &mut self.current
            && segment.fits(text)
        {
            return Sym::new(*id, segment.push(text));
        }
        if let Some((id, segment, _)) = self.current.take() {
            self.done.push((id, segment));
        }
        let id = self.ids.next();
        let mut segment = Segment::with_room(self.capacity);
        let idx = segment.push(text);
        // No table until `intern` needs one: a chunk may hold only keys.
        self.current = Some((id, segment, HashTable::new()));
        Sym::new(id, idx)
    }

    /// The text of a symbol this chunk handed out.
    #[cfg(test)]
    pub(crate) fn resolve(&self, sym: Sym) -> &str {
        if sym == Sym::default() {
            return "";
        }
        let segment = sym.segment() as u32;
        match &self.current {
            Some((id, seg, _)) if *id == segment => seg.get(sym.local()),
            _ => self
                .done
                .iter()
                .find(|(id, _)| *id == segment)
                .map_or("", |(_, seg)| seg.get(sym.local())),
        }
    }

    /// The segments, in the order their strings were first met; the tables
    /// are dropped and the arenas trimmed (they grew by doubling).
    pub(crate) fn into_segments(mut self) -> Vec<(u32, Segment)> {
        if let Some((id, segment, _)) = self.current.take() {
            self.done.push((id, segment));
        }
        for (_, segment) in &mut self.done {
            segment.bytes.shrink_to_fit();
            segment.ends.shrink_to_fit();
        }
        self.done
    }
}

/// Where to find each distinct string: one table per hash shard.
#[derive(Debug)]
struct Lookup {
    shards: Vec<HashTable<Sym>>,
}

impl Lookup {
    /// Bits 40 and up: a shard's table hashes with the low 32 bits only
    /// ([`Lookup::table_hash`]), so the shard must not fix any of those.
    fn shard_of(hash: u64) -> usize {
        (hash >> 40) as usize % SHARDS
    }

    /// The hash a shard's table uses, from the low 32 bits of a string's
    /// hash: hashbrown takes a bucket from the low bits and a 7-bit tag from
    /// the top ones, so the 32 bits go to both ends.
    fn table_hash(low: u32) -> u64 {
        u64::from(low) | u64::from(low) << 32
    }
}

/// Every string of a dataset.
#[derive(Debug)]
pub struct Interner {
    /// Indexed by segment id; ids that never held a kept string are empty.
    segments: Vec<Segment>,
    /// Ids of the segments of canonical strings, in document order: the
    /// first occurrence of a string in this order is its canonical symbol.
    /// Segments of strings only shown are not in it.
    order: Vec<u32>,
    /// Content to canonical symbol, built when first needed.
    lookup: OnceLock<Lookup>,
    /// The segment [`Interner::intern_extra`] appends to.
    extra: Option<usize>,
}

impl Default for Interner {
    fn default() -> Interner {
        let mut empty = Segment::default();
        empty.push("");
        Interner {
            segments: vec![empty],
            order: vec![0],
            lookup: OnceLock::new(),
            extra: None,
        }
    }
}

impl Interner {
    /// The text of a symbol.
    #[inline]
    pub fn resolve(&self, sym: &Sym) -> &str {
        self.segments
            .get(sym.segment())
            .filter(|segment| sym.local() < segment.len())
            .map_or("", |segment| segment.get(sym.local()))
    }

    /// The canonical symbol of `text`, if a canonical string of the dataset
    /// (not one only shown) is `text`.
    pub fn get(&self, text: &str) -> Option<Sym> {
        let hash = hash_str(text.as_bytes());
        let lookup = self.lookup();
        lookup.shards[Lookup::shard_of(hash)]
            .find(Lookup::table_hash(hash as u32), |sym| {
                self.resolve(sym) == text
            })
            .copied()
    }

    /// Number of distinct canonical strings.
    pub fn len(&self) -> usize {
        self.lookup().shards.iter().map(HashTable::len).sum()
    }

    /// Whether the dataset holds no string but the empty one.
    pub fn is_empty(&self) -> bool {
        self.len() <= 1
    }

    /// Bytes of heap the strings take (tables not included).
    pub fn heap_bytes(&self) -> usize {
        self.segments.iter().map(Segment::heap_bytes).sum()
    }

    /// Adds `text` after loading (a dangling reference's key must still be
    /// shown as written); serial, for the rare string no record holds.
    pub(crate) fn intern_extra(&mut self, text: &str) -> Sym {
        if let Some(sym) = self.get(text) {
            return sym;
        }
        let segment_id = match self.extra {
            Some(id) if self.segments[id].fits(text) => id,
            _ => {
                let id = self.segments.len();
                assert!((id as u32) < MAX_SEGMENTS, "too many string segments");
                self.segments.push(Segment::default());
                self.order.push(id as u32);
                self.extra = Some(id);
                id
            }
        };
        let idx = self.segments[segment_id].push(text);
        let sym = Sym::new(segment_id as u32, idx);
        let hash = hash_str(text.as_bytes());
        let segments = &self.segments;
        if let Some(lookup) = self.lookup.get_mut() {
            lookup.shards[Lookup::shard_of(hash)].insert_unique(
                Lookup::table_hash(hash as u32),
                sym,
                |s| Lookup::table_hash(hash_str(resolve_in(segments, *s).as_bytes()) as u32),
            );
        }
        sym
    }

    /// One zeroed bit per string, per segment (for duplicate checks).
    pub(crate) fn empty_bitsets(&self) -> Vec<Vec<u64>> {
        self.segments
            .iter()
            .map(|segment| vec![0u64; segment.len().div_ceil(64)])
            .collect()
    }

    /// Frees the lookup tables; [`Interner::get`] builds them again if it
    /// is ever called. Policies rarely look strings up by content after
    /// loading, and the tables are a fifth of the strings' memory.
    pub(crate) fn drop_lookup(&mut self) {
        self.lookup.take();
    }

    fn lookup(&self) -> &Lookup {
        self.lookup
            .get_or_init(|| build_lookup(&self.segments, &self.order, None).0)
    }
}

fn resolve_in(segments: &[Segment], sym: Sym) -> &str {
    segments
        .get(sym.segment())
        .filter(|segment| sym.local() < segment.len())
        .map_or("", |segment| segment.get(sym.local()))
}

/// Builds the canonical tables over `segments` in `order`; with
/// `want_remaps`, also fills, for every segment holding a string that is not
/// the first occurrence of its text, the canonical symbol of each of its
/// strings (`remaps[segment][local]`; empty for segments with none).
///
/// Two passes. First, per segment (in parallel), every string's hash and
/// index are bucketed by shard, reading the segment front to back. Then per
/// shard (in parallel) the strings are inserted in document order into the
/// shard's table, which is small enough to stay in cache; string bytes are
/// only read to compare candidates with equal hash tags.
fn build_lookup(
    segments: &[Segment],
    order: &[u32],
    want_remaps: Option<()>,
) -> (Lookup, Vec<Vec<u32>>) {
    let timing = super::Timing::start("strings: bucket");
    let buckets: Vec<Bucket> = order
        .par_iter()
        .map(|&id| {
            let segment = &segments[id as usize];
            let hashes: Vec<u64> = (0..segment.len())
                .map(|idx| hash_str(segment.get(idx).as_bytes()))
                .collect();
            let mut starts = vec![0u32; SHARDS + 1];
            for hash in &hashes {
                starts[Lookup::shard_of(*hash) + 1] += 1;
            }
            for shard in 0..SHARDS {
                starts[shard + 1] += starts[shard];
            }
            let mut next = starts.clone();
            let mut sorted = vec![(0u32, 0u32); segment.len()];
            for (idx, hash) in hashes.iter().enumerate() {
                let slot = &mut next[Lookup::shard_of(*hash)];
                sorted[*slot as usize] = (*hash as u32, idx as u32);
                *slot += 1;
            }
            (sorted, starts)
        })
        .collect();
    drop(timing);
    let timing = super::Timing::start("strings: shards");
    let per_shard: Vec<ShardResult> = (0..SHARDS)
        .into_par_iter()
        .map(|shard| {
            let count: usize = buckets
                .iter()
                .map(|(_, starts)| (starts[shard + 1] - starts[shard]) as usize)
                .sum();
            let mut table: HashTable<Sym> = HashTable::with_capacity(count);
            let mut moved = Vec::new();
            for (pos, &id) in order.iter().enumerate() {
                let segment = &segments[id as usize];
                let (sorted, starts) = &buckets[pos];
                for &(hash, idx) in &sorted[starts[shard] as usize..starts[shard + 1] as usize] {
                    let hash = Lookup::table_hash(hash);
                    let found = table.find(hash, |sym| {
                        eq_bytes(
                            resolve_in(segments, *sym).as_bytes(),
                            segment.get(idx as usize).as_bytes(),
                        )
                    });
                    match found {
                        Some(&canonical) => {
                            if want_remaps.is_some() {
                                moved.push((id, idx, canonical));
                            }
                        }
                        None => {
                            table.insert_unique(hash, Sym::new(id, idx as usize), |sym| {
                                Lookup::table_hash(
                                    hash_str(resolve_in(segments, *sym).as_bytes()) as u32
                                )
                            });
                        }
                    }
                }
            }
            (table, moved)
        })
        .collect();
    drop(timing);
    drop(buckets);
    let mut remaps: Vec<Vec<u32>> = Vec::new();
    if want_remaps.is_some() {
        remaps = segments.iter().map(|_| Vec::new()).collect();
        for (_, moved) in &per_shard {
            for (id, _, _) in moved {
                let id = *id as usize;
                if remaps[id].is_empty() {
                    remaps[id] = (0..segments[id].len())
                        .map(|idx| Sym::new(id as u32, idx).0)
                        .collect();
                }
            }
        }
        for (_, moved) in &per_shard {
            for (id, idx, canonical) in moved {
                remaps[*id as usize][*idx as usize] = canonical.0;
            }
        }
    }
    let shards = per_shard.into_iter().map(|(table, _)| table).collect();
    (Lookup { shards }, remaps)
}

/// One segment's strings as (low hash bits, index), sorted by shard, and
/// where each shard's run starts.
type Bucket = (Vec<(u32, u32)>, Vec<u32>);

/// A shard's table and the strings it found repeated: (segment, index,
/// canonical symbol).
type ShardResult = (HashTable<Sym>, Vec<(u32, u32, Sym)>);

/// The canonical form of every chunk's strings.
pub(crate) struct Canonical {
    /// The interner (with its lookup tables built).
    pub(crate) interner: Interner,
    /// Per segment id: the canonical symbol of each local string, or empty
    /// when every string of the segment is canonical already.
    remaps: Vec<Vec<u32>>,
}

impl Canonical {
    /// The canonical symbol of `sym`.
    #[inline]
    pub(crate) fn map(&self, sym: Sym) -> Sym {
        match self.remaps.get(sym.segment()) {
            Some(remap) if !remap.is_empty() => Sym(remap[sym.local()]),
            _ => sym,
        }
    }

    /// Whether no symbol of segment-id space needs remapping.
    pub(crate) fn is_identity(&self) -> bool {
        self.remaps.iter().all(Vec::is_empty)
    }
}

/// Makes one interner of every chunk's kept strings, made canonical, and
/// of its `shown` strings, as they are; `chunks` are in document order,
/// each with its segments in the order they were filled.
pub(crate) fn canonicalize(
    chunks: Vec<Vec<(u32, Segment)>>,
    shown: Vec<Vec<(u32, Segment)>>,
) -> Canonical {
    let mut order = vec![0u32];
    let mut segments: Vec<Segment> = Vec::new();
    let mut empty = Segment::default();
    empty.push("");
    segments.push(empty);
    let mut place = |id: u32, segment: Segment| {
        let id = id as usize;
        if segments.len() <= id {
            segments.resize_with(id + 1, Segment::default);
        }
        segments[id] = segment;
    };
    for (id, segment) in chunks.into_iter().flatten() {
        place(id, segment);
        order.push(id);
    }
    for (id, segment) in shown.into_iter().flatten() {
        place(id, segment);
    }
    let (lookup, remaps) = build_lookup(&segments, &order, Some(()));
    let interner = Interner {
        segments,
        order,
        lookup: OnceLock::from(lookup),
        extra: None,
    };
    Canonical { interner, remaps }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_dedupe_locally_and_canonicalize_in_order() {
        let ids = SegmentIds::new();
        let mut first = LocalStrings::with_capacity(ids.clone(), 16);
        let mut second = LocalStrings::with_capacity(ids.clone(), 16);
        // The second chunk is parsed first, so its segment gets the lower id.
        let b2 = second.intern("b");
        let c2 = second.intern("c");
        let a1 = first.intern("a");
        let b1 = first.intern("b");
        assert_eq!(first.intern("a"), a1);
        assert_eq!(first.resolve(b1), "b");
        assert_eq!(first.intern(""), Sym::default());
        let canonical = canonicalize(
            vec![first.into_segments(), second.into_segments()],
            Vec::new(),
        );
        // "b" first occurs in the first chunk in document order.
        assert_eq!(canonical.map(b2), b1);
        assert_eq!(canonical.map(c2), c2);
        assert_eq!(canonical.map(a1), a1);
        let interner = &canonical.interner;
        assert_eq!(interner.resolve(&canonical.map(b2)), "b");
        assert_eq!(interner.get("c"), Some(c2));
        assert_eq!(interner.get("zzz"), None);
        assert_eq!(interner.get(""), Some(Sym::default()));
        assert_eq!(interner.len(), 4);
    }

    #[test]
    fn full_segments_roll_over() {
        let ids = SegmentIds::new();
        let mut local = LocalStrings::with_capacity(ids, 16);
        let syms: Vec<Sym> = (0..SEGMENT_STRINGS + 10)
            .map(|i| local.intern(&i.to_string()))
            .collect();
        assert_ne!(
            syms[0].segment(),
            syms[SEGMENT_STRINGS + 5].segment(),
            "a second segment"
        );
        assert_eq!(
            local.resolve(syms[SEGMENT_STRINGS + 5]),
            (SEGMENT_STRINGS + 5).to_string()
        );
        let canonical = canonicalize(vec![local.into_segments()], Vec::new());
        assert!(canonical.is_identity());
        assert_eq!(canonical.interner.get("17"), Some(syms[17]));
    }

    #[test]
    fn shown_strings_resolve_but_stay_out_of_the_lookup() {
        let ids = SegmentIds::new();
        let mut kept = LocalStrings::with_capacity(ids.clone(), 16);
        let mut shown = LocalStrings::with_capacity(ids.clone(), 16);
        let a = kept.intern("a");
        let shown_a = shown.intern("a");
        let name = shown.intern("name");
        assert_eq!(shown.intern("name"), name, "deduplicated within the chunk");
        let canonical = canonicalize(vec![kept.into_segments()], vec![shown.into_segments()]);
        assert_eq!(canonical.map(shown_a), shown_a, "never remapped");
        assert_ne!(shown_a, a);
        let interner = &canonical.interner;
        assert_eq!(interner.resolve(&shown_a), "a");
        assert_eq!(interner.resolve(&name), "name");
        assert_eq!(interner.get("a"), Some(a));
        assert_eq!(interner.get("name"), None);
        assert_eq!(interner.len(), 2);
    }
}
