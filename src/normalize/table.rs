//! The compiled fold table of one profile, and the one-pass fold.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory};
use icu_properties::{CodePointMapData, CodePointSetData};
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use super::han_tables::RADICALS;
use super::unicode_tables::{LETTERS, NUMERIC};
use super::{bit, Folded, Profile, SpanStats};
use crate::vocab::Step;

const BLOCK_BITS: u32 = 7;
const BLOCK: usize = 1 << BLOCK_BITS;
const KIND_SHIFT: u32 = 29;
const STEPS_SHIFT: u32 = 21;
const PAYLOAD: u32 = (1 << STEPS_SHIFT) - 1;

/// RIGHT-TO-LEFT OVERRIDE and POP DIRECTIONAL FORMATTING.
const RLO: char = '\u{202e}';
const PDF: char = '\u{202c}';

/// What a char folds to. `Same` with no steps is 0, so identity blocks are all zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
enum Kind {
    Same = 0,
    Char = 1,
    Multi = 2,
    Noise = 3,
    Invisible = 4,
    Break = 5,
}

/// The steps of a char's fold as a table entry holds them (8 bits): `repeat` is never a
/// char's (it is contextual) and `near_form` and `split` change terms, not text, so
/// `homophone` and `near_homophone` take bits 6 and 7.
fn entry_steps(steps: u16) -> u32 {
    debug_assert_eq!(
        steps & (bit(Step::Repeat) | bit(Step::NearForm) | bit(Step::Split)),
        0
    );
    u32::from(steps & 0x3F) | u32::from(steps >> 1) & 0xC0
}

/// The inverse of [`entry_steps`], from an entry.
fn steps_of_entry(entry: u32) -> u16 {
    let e = ((entry >> STEPS_SHIFT) & 0xFF) as u16;
    e & 0x3F | (e & 0xC0) << 1
}

fn kind(entry: u32) -> Kind {
    match entry >> KIND_SHIFT {
        0 => Kind::Same,
        1 => Kind::Char,
        2 => Kind::Multi,
        3 => Kind::Noise,
        4 => Kind::Invisible,
        _ => Kind::Break,
    }
}

/// A profile's fold, compiled: a two-level table over every code point, and the blocks of
/// [`LATER`] folded when a text first uses them.
pub(crate) struct FoldTable {
    profile: Profile,
    index: Vec<u16>,
    blocks: Vec<[u32; BLOCK]>,
    /// One bit per BMP code point: set when the char is copied as it is (it folds to
    /// itself, or is a hard break). 8 KiB, so the hot loop's check stays in L1.
    copy_bmp: Box<[u64; 1024]>,
    multi: Vec<Box<str>>,
    /// The blocks of [`LATER`], each folded on first use (none for the exact profile).
    later: Box<[OnceLock<Box<LaterBlock>>]>,
}

/// A block of [`LATER`], folded: its entries, and the multi-char forms their payloads
/// number (in code point order).
struct LaterBlock {
    entries: [u32; BLOCK],
    multi: Vec<Box<str>>,
}

impl std::fmt::Debug for FoldTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FoldTable")
            .field("profile", &self.profile)
            .field("blocks", &self.blocks.len())
            .field(
                "later_folded",
                &self.later.iter().filter(|b| b.get().is_some()).count(),
            )
            .finish()
    }
}

/// The table of `profile`, built on first use and shared for the life of the process.
pub(crate) fn table_for(profile: Profile) -> Arc<FoldTable> {
    static TABLES: OnceLock<Mutex<HashMap<Profile, Arc<FoldTable>>>> = OnceLock::new();
    let tables = TABLES.get_or_init(Default::default);
    if let Some(t) = tables.lock().expect("fold tables").get(&profile) {
        return t.clone();
    }
    // Built outside the lock: two threads may both build it; one wins, both are equal.
    let built = Arc::new(FoldTable::build(profile));
    tables
        .lock()
        .expect("fold tables")
        .entry(profile)
        .or_insert(built)
        .clone()
}

/// Code points whose fold is computed; everything else (unassigned planes, private use)
/// folds to itself.
#[cfg(test)]
const RANGES: [(u32, u32); 2] = [(0, LATER.1), (0xE0000, 0xE1000)];

/// Planes 1 to 3 (historic scripts, symbols, mathematical letters, the CJK extensions):
/// folded a block at a time when a text first uses one, not when the table is built. They
/// are three quarters of the code points a table folds (U+0000 to U+3FFFF and the tags
/// U+E0000 to U+E0FFF; everything else, unassigned planes and private use, folds to
/// itself) and about 40% of its build with the default steps (13 of 32 ms); most texts
/// never touch them.
const LATER: (u32, u32) = (0x10000, 0x40000);

/// The rest of the code points whose fold is computed: folded when the table is built.
const EAGER: [(u32, u32); 2] = [(0, LATER.0), (0xE0000, 0xE1000)];

impl FoldTable {
    fn build(profile: Profile) -> FoldTable {
        if profile == Profile::EXACT {
            // The identity: every char is copied (no char needs folding, none breaks).
            return FoldTable {
                profile,
                index: vec![0; (0x110000 >> BLOCK_BITS) as usize],
                blocks: vec![[0; BLOCK]],
                copy_bmp: Box::new([u64::MAX; 1024]),
                multi: Vec::new(),
                later: Box::new([]),
            };
        }
        FoldTable::build_folding(profile)
    }

    /// The table of `profile`, each char folded.
    fn build_folding(profile: Profile) -> FoldTable {
        let data = Data::get();
        // The data the steps draw on, built before the parallel walk (each part once).
        if profile.has(Step::T2s) {
            data.t2s();
        }
        if profile.has(Step::Variants) {
            data.han_of_prototype();
        }
        if profile.has(Step::Homophone) || profile.has(Step::NearHomophone) {
            data.homophone();
        }
        // Every block folded in parallel: its entries, with the multi-char forms to number.
        let starts: Vec<u32> = EAGER
            .into_iter()
            .flat_map(|(lo, hi)| (lo..hi).step_by(BLOCK))
            .collect();
        let folded = in_parallel(&starts, |&block_start| {
            fold_block(profile, block_start, data)
        });
        let mut multi: Vec<Box<str>> = Vec::new();
        let mut multi_index: HashMap<String, u32> = HashMap::new();
        let mut blocks: Vec<[u32; BLOCK]> = vec![[0; BLOCK]];
        let mut dedup: HashMap<[u32; BLOCK], u16> = HashMap::from([([0; BLOCK], 0)]);
        let mut index = vec![0u16; (0x110000 >> BLOCK_BITS) as usize];
        for (block_start, (mut block, multis)) in starts.into_iter().zip(folded) {
            // Numbered in code point order, as a walk one char at a time would.
            for (i, out) in multis {
                block[i] |= *multi_index.entry(out.clone()).or_insert_with(|| {
                    multi.push(out.into_boxed_str());
                    (multi.len() - 1) as u32
                });
            }
            let id = *dedup.entry(block).or_insert_with(|| {
                blocks.push(block);
                (blocks.len() - 1) as u16
            });
            index[(block_start >> BLOCK_BITS) as usize] = id;
        }
        let mut copy_bmp = Box::new([0u64; 1024]);
        for cp in 0..0x10000usize {
            let entry = blocks[index[cp >> BLOCK_BITS] as usize][cp & (BLOCK - 1)];
            if matches!(kind(entry), Kind::Same | Kind::Break) {
                copy_bmp[cp >> 6] |= 1 << (cp & 63);
            }
        }
        let later_blocks = ((LATER.1 - LATER.0) >> BLOCK_BITS) as usize;
        FoldTable {
            profile,
            index,
            blocks,
            copy_bmp,
            multi,
            later: (0..later_blocks).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The folded block of [`LATER`] that `c` is in (folded now when it is the first use),
    /// or `None` when `c` is elsewhere.
    #[inline]
    fn later(&self, c: char) -> Option<&LaterBlock> {
        let at = (c as u32).checked_sub(LATER.0)?;
        let slot = self.later.get((at >> BLOCK_BITS) as usize)?;
        Some(slot.get_or_init(|| {
            let start = c as u32 & !(BLOCK as u32 - 1);
            let (entries, multis) = fold_block(self.profile, start, Data::get());
            let mut block = LaterBlock {
                entries,
                multi: Vec::new(),
            };
            for (i, out) in multis {
                block.entries[i] |= block.multi.len() as u32;
                block.multi.push(out.into_boxed_str());
            }
            Box::new(block)
        }))
    }

    #[inline]
    fn entry(&self, c: char) -> u32 {
        let cp = c as usize;
        if let Some(block) = self.later(c) {
            return block.entries[cp & (BLOCK - 1)];
        }
        self.blocks[self.index[cp >> BLOCK_BITS] as usize][cp & (BLOCK - 1)]
    }

    /// The multi-char form numbered `payload` in `c`'s entry.
    fn multi_of(&self, c: char, payload: u32) -> &str {
        match self.later(c) {
            Some(block) => &block.multi[payload as usize],
            None => &self.multi[payload as usize],
        }
    }

    /// The folded form of a unit, or `None` when the char is skipped.
    #[inline]
    fn unit<'b>(&'b self, c: char, entry: u32, buf: &'b mut [u8; 4]) -> Option<&'b str> {
        match kind(entry) {
            Kind::Same | Kind::Break => Some(c.encode_utf8(buf)),
            Kind::Char => {
                let d = char::from_u32(entry & PAYLOAD).unwrap_or(c);
                Some(d.encode_utf8(buf))
            }
            Kind::Multi => Some(self.multi_of(c, entry & PAYLOAD)),
            Kind::Noise | Kind::Invisible => None,
        }
    }

    /// Folds `text` into `out` (cleared first), in one pass.
    pub(crate) fn fold_into(&self, text: &str, out: &mut Folded) {
        self.fold_with::<true>(text, out);
    }

    /// [`FoldTable::fold_into`], with runs of copied chars skipped in bulk (`SKIP`) or
    /// looked at one by one (to test that skipping changes nothing).
    fn fold_with<const SKIP: bool>(&self, text: &str, out: &mut Folded) {
        out.clear();
        out.text.reserve(text.len());
        if self.profile == Profile::EXACT {
            out.push(0, text.len(), text, true);
            return;
        }
        let repeat = self.profile.has(Step::Repeat);
        let mut last: Option<char> = None;
        let mut buf = [0u8; 4];
        let mut collapsed = String::new();
        // Chars that fold to themselves are copied in bulk: `copy_from..os` is pending.
        let mut copy_from = 0;
        let bytes = text.as_bytes();
        let mut at = 0;
        loop {
            // The common case, a run of chars copied as they are, in a tight loop of its
            // own; the char it stops at goes through every check below.
            if SKIP {
                at = self.skip_copied(bytes, at, repeat, &mut last);
            }
            let Some(c) = text[at..].chars().next() else {
                break;
            };
            let os = at;
            at += c.len_utf8();
            let cp = c as usize;
            if cp < 0x10000 && self.copy_bmp[cp >> 6] & (1 << (cp & 63)) != 0 {
                // Copied as it is, unless `repeat` collapses it into the char before.
                if !repeat {
                    continue;
                }
                if last != Some(c) {
                    last = Some(c);
                    continue;
                }
            }
            let entry = self.entry(c);
            let k = kind(entry);
            if k == Kind::Same || k == Kind::Break {
                if !repeat {
                    continue;
                }
                if last != Some(c) {
                    last = Some(c);
                    continue;
                }
            }
            if copy_from < os {
                out.push(copy_from, os - copy_from, &text[copy_from..os], true);
            }
            copy_from = at;
            if c == RLO && k == Kind::Invisible {
                // After a right-to-left override the walk resumes on the rest of the text.
                copy_from = self.fold_override(text, copy_from, out, &mut last);
                at = copy_from;
                continue;
            }
            let Some(mut unit) = self.unit(c, entry, &mut buf) else {
                continue;
            };
            if repeat {
                match collapse_repeats(unit, &mut last, &mut collapsed) {
                    Collapse::Whole => {}
                    Collapse::Skip => continue,
                    Collapse::Part => unit = &collapsed,
                }
            }
            let olen = c.len_utf8();
            let linear = unit.len() == olen && k != Kind::Multi;
            out.push(os, olen, unit, linear);
        }
        if copy_from < text.len() {
            out.push(copy_from, text.len() - copy_from, &text[copy_from..], true);
        }
    }

    /// Where the run of chars from byte `at` that are copied as they are ends: chars in
    /// `copy_bmp` of one or three bytes in UTF-8 (ASCII and most of the BMP, Han
    /// included), each, with `repeat`, unlike the char before it (`last`, kept up to date).
    /// The first char it cannot pass this way (any other, or the end) is where it stops;
    /// [`FoldTable::fold_into`] looks at that one with every check.
    fn skip_copied(
        &self,
        bytes: &[u8],
        mut at: usize,
        repeat: bool,
        last: &mut Option<char>,
    ) -> usize {
        let mut prev = last.map_or(u32::MAX, u32::from);
        loop {
            let (cp, len) = match bytes.get(at..at + 3) {
                Some(&[b0, b1, b2]) if b0 & 0xF0 == 0xE0 => (
                    u32::from(b0 & 0x0F) << 12 | u32::from(b1 & 0x3F) << 6 | u32::from(b2 & 0x3F),
                    3,
                ),
                _ => match bytes.get(at) {
                    Some(&b0) if b0 < 0x80 => (u32::from(b0), 1),
                    _ => break,
                },
            };
            if self.copy_bmp[(cp >> 6) as usize] & (1 << (cp & 63)) == 0 || (repeat && cp == prev) {
                break;
            }
            prev = cp;
            at += len;
        }
        if repeat {
            *last = char::from_u32(prev);
        }
        at
    }

    /// Folds the text of a right-to-left override that starts at `from` (just after
    /// U+202E) in display order: a reader sees its characters reversed (出售\u{202e}毒冰
    /// shows 出售冰毒), so the matcher must too. The override ends at U+202C, at a hard break
    /// or at the end of the text; returns where it ends (the U+202C itself is folded as
    /// usual, as an invisible char).
    fn fold_override(
        &self,
        text: &str,
        from: usize,
        out: &mut Folded,
        last: &mut Option<char>,
    ) -> usize {
        let end = text[from..]
            .char_indices()
            .find(|&(_, c)| c == PDF || is_break(c))
            .map_or(text.len(), |(i, _)| from + i);
        let mut buf = [0u8; 4];
        let units: Vec<(usize, char)> = text[from..end]
            .char_indices()
            .map(|(i, c)| (from + i, c))
            .collect();
        let repeat = self.profile.has(Step::Repeat);
        let mut collapsed = String::new();
        for &(os, c) in units.iter().rev() {
            let entry = self.entry(c);
            let Some(mut unit) = self.unit(c, entry, &mut buf) else {
                continue;
            };
            if repeat {
                match collapse_repeats(unit, last, &mut collapsed) {
                    Collapse::Whole => {}
                    Collapse::Skip => continue,
                    Collapse::Part => unit = &collapsed,
                }
            }
            let linear = unit.len() == c.len_utf8() && kind(entry) != Kind::Multi;
            out.push(os, c.len_utf8(), unit, linear);
        }
        end
    }

    /// `text` folded, as a new string.
    pub(crate) fn fold_string(&self, text: &str) -> String {
        if self.profile == Profile::EXACT {
            // The identity, without an offset map.
            return text.to_owned();
        }
        let mut out = Folded::default();
        self.fold_into(text, &mut out);
        out.text
    }

    /// The steps that folding `span` used, and its longest run of skipped noise between
    /// kept characters. `span` is the original text of a hit.
    pub(crate) fn span_stats(&self, span: &str) -> SpanStats {
        let mut stats = SpanStats::default();
        if self.profile == Profile::EXACT {
            return stats;
        }
        let repeat = self.profile.has(Step::Repeat);
        let mut gap = 0;
        let mut last: Option<char> = None;
        let mut collapsed = String::new();
        let mut buf = [0u8; 4];
        for c in span.chars() {
            let entry = self.entry(c);
            stats.steps |= steps_of_entry(entry);
            match self.unit(c, entry, &mut buf) {
                None => {
                    if kind(entry) == Kind::Noise && !is_combining_mark(c) {
                        gap += 1;
                        stats.max_noise_gap = stats.max_noise_gap.max(gap);
                    }
                }
                Some(unit) => {
                    if repeat
                        && collapse_repeats(unit, &mut last, &mut collapsed) != Collapse::Whole
                    {
                        stats.steps |= bit(Step::Repeat);
                    }
                    gap = 0;
                }
            }
        }
        stats
    }

    /// Whether the original text just before `at` is a letter as this fold sees it
    /// (invisible chars are passed over; a char the fold skips, such as a space or a
    /// symbol, is a boundary).
    pub(crate) fn letter_before(&self, text: &str, at: usize) -> bool {
        self.first_kept_is_letter(text[..at].chars().rev(), |u| u.chars().next_back())
    }

    /// Whether the original text just after `at` is a letter as this fold sees it (see
    /// [`letter_before`](Self::letter_before)).
    pub(crate) fn letter_after(&self, text: &str, at: usize) -> bool {
        self.first_kept_is_letter(text[at..].chars(), |u| u.chars().next())
    }

    /// Walks `chars` away from a hit past invisible chars: whether the first other char
    /// folds to an ASCII letter on the hit's side (`edge` picks that char of its fold).
    fn first_kept_is_letter(
        &self,
        chars: impl Iterator<Item = char>,
        edge: impl Fn(&str) -> Option<char>,
    ) -> bool {
        let mut buf = [0u8; 4];
        for c in chars {
            let entry = self.entry(c);
            match kind(entry) {
                Kind::Invisible => continue,
                Kind::Noise => return false,
                _ => {
                    return self
                        .unit(c, entry, &mut buf)
                        .and_then(&edge)
                        .is_some_and(|d| d.is_ascii_alphabetic())
                }
            }
        }
        false
    }

    /// With `repeat`, the end of a hit extended over the chars after it that collapse into
    /// its last folded char, with noise between them as inside a term (网络赌场场 and
    /// 赌博*博 are hits on every char).
    pub(crate) fn extend_over_repeats(&self, text: &str, end: usize, last: char) -> usize {
        if !self.profile.has(Step::Repeat) {
            return end;
        }
        let (mut end, mut at, mut noise) = (end, end, 0);
        let mut buf = [0u8; 4];
        for c in text[end..].chars() {
            let entry = self.entry(c);
            at += c.len_utf8();
            match self.unit(c, entry, &mut buf) {
                None if kind(entry) == Kind::Noise && !is_combining_mark(c) => {
                    noise += 1;
                    if noise > super::MAX_NOISE_GAP {
                        break;
                    }
                }
                None => {}
                Some(u) if u.chars().all(|d| d == last) => {
                    end = at;
                    noise = 0;
                }
                Some(_) => break,
            }
        }
        end
    }
}

/// What the `repeat` step leaves of a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Collapse {
    /// Nothing collapsed: the unit as it is.
    Whole,
    /// Every char repeats the one before: nothing is emitted.
    Skip,
    /// Some chars collapsed: the rest is in the buffer.
    Part,
}

/// Drops each char of `unit` equal to the char emitted before it (`last`, updated).
fn collapse_repeats(unit: &str, last: &mut Option<char>, buf: &mut String) -> Collapse {
    let mut chars = unit.chars();
    let first = chars.next();
    if chars.next().is_none() {
        // The common case: a one-char unit.
        if first == *last {
            return Collapse::Skip;
        }
        *last = first;
        return Collapse::Whole;
    }
    buf.clear();
    for c in unit.chars() {
        if Some(c) != *last {
            buf.push(c);
            *last = Some(c);
        }
    }
    match buf.len() {
        0 => Collapse::Skip,
        n if n == unit.len() => Collapse::Whole,
        _ => Collapse::Part,
    }
}

/// Unicode data the profiles draw on, each part built on first use and kept for the life of
/// the process: a profile without `t2s` or `variants` (the exact one) needs none of it.
struct Data {
    t2s: OnceLock<HashMap<char, char>>,
    /// The Han character a confusables prototype stands for, where Unicode's confusables
    /// make a Han character the look-alike of another script's (一 has the prototype ー,
    /// the katakana prolonged sound mark): the way back from ー to 一.
    han_of_prototype: OnceLock<HashMap<char, char>>,
    /// `homophone`: each Han character with a pinyin reading → the representative of its
    /// first toneless syllable.
    homophone: OnceLock<super::homophone::Homophones>,
}

impl Data {
    fn get() -> &'static Data {
        static DATA: Data = Data {
            t2s: OnceLock::new(),
            han_of_prototype: OnceLock::new(),
            homophone: OnceLock::new(),
        };
        &DATA
    }

    fn t2s(&self) -> &HashMap<char, char> {
        self.t2s.get_or_init(t2s_chars)
    }

    fn han_of_prototype(&self) -> &HashMap<char, char> {
        self.han_of_prototype.get_or_init(han_prototypes)
    }

    fn homophone(&self) -> &super::homophone::Homophones {
        self.homophone.get_or_init(|| {
            super::homophone::Homophones::build(|c| {
                chinese_numeral(c).is_none() && !self.t2s().contains_key(&c)
            })
        })
    }
}

/// Traditional → simplified for single characters: OpenCC's t2s conversion of each char
/// alone (`ferrous-opencc`), kept in `t2s_chars.txt`, one pair a line. Converting the
/// 92,000 chars at start-up took 170 M instructions, a tenth of a one-core rescan of
/// 100 MB; the test `traditional_chars_convert_as_they_do_alone` checks the file against
/// the dictionaries, and rewrites it with `SHENHE_BLESS=1`.
fn t2s_chars() -> HashMap<char, char> {
    include_str!("t2s_chars.txt")
        .lines()
        .filter_map(|line| {
            let mut chars = line.chars();
            match (chars.next(), chars.next(), chars.next()) {
                (Some(t), Some(s), None) => Some((t, s)),
                _ => None,
            }
        })
        .collect()
}

/// Threads to build tables with: the cores, at most four.
fn build_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// `f` of each item, in order, the items dealt round-robin to [`build_threads`] threads of
/// their own (neighbouring items cost alike, so each thread gets its share of the dear
/// ones). Not rayon's pool: tables are built on first use, also from a pool's worker while
/// the others wait for the same first use (the word segmenter's dictionary is folded on a
/// thread of its own while the scans wait for it), and a build waiting on those workers
/// would never end. A share whose thread cannot be started (a host at its thread limit)
/// is computed on the calling thread: slower, never a panic.
pub(crate) fn in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    in_parallel_spawning(items, f, |_| true)
}

/// [`in_parallel`], with `may_spawn(t)` false standing for a thread `t` that could not be
/// started (for tests).
fn in_parallel_spawning<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> R + Sync,
    may_spawn: impl Fn(usize) -> bool,
) -> Vec<R> {
    let threads = build_threads().min(items.len()).max(1);
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let share = |t: usize| -> Vec<R> { items.iter().skip(t).step_by(threads).map(&f).collect() };
    let mut parts: Vec<std::vec::IntoIter<R>> = std::thread::scope(|scope| {
        let share = &share;
        let running: Vec<_> = (0..threads)
            .map(|t| match may_spawn(t) {
                true => std::thread::Builder::new()
                    .spawn_scoped(scope, move || share(t))
                    .ok(),
                false => None,
            })
            .collect();
        running
            .into_iter()
            .enumerate()
            .map(|(t, r)| {
                let part: Vec<R> = match r {
                    Some(r) => r.join().expect("a table builder does not panic"),
                    None => share(t),
                };
                part.into_iter()
            })
            .collect()
    });
    (0..items.len())
        .map(|i| parts[i % threads].next().expect("one result per item"))
        .collect()
}

/// A term (folded by every other step of its profile) spelled by every reading of its
/// characters for the `homophone` step.
pub(crate) fn homophone_forms(term: &str) -> Vec<String> {
    Data::get().homophone().forms(term)
}

/// Prototypes of Unicode's confusables that stand for a Han character (ー for 一): those
/// shared by exactly one unified ideograph of the basic block, and not Han themselves.
fn han_prototypes() -> HashMap<char, char> {
    let mut map: HashMap<char, Option<char>> = HashMap::new();
    let mut buf = [0; 4];
    for c in (0x4E00..0xA000).filter_map(char::from_u32) {
        let mut skel = unicode_security::confusable_detection::skeleton(c.encode_utf8(&mut buf));
        if let (Some(p), None) = (skel.next(), skel.next()) {
            if p != c && !is_han(p) {
                map.entry(p).and_modify(|e| *e = None).or_insert(Some(c));
            }
        }
    }
    map.into_iter().filter_map(|(p, c)| Some((p, c?))).collect()
}

/// CJK clause punctuation and line breaks: never skipped as noise (they end a phrase).
/// Decided on the original character, before any folding. Hand table from DESIGN.md.
pub(crate) fn is_break(c: char) -> bool {
    matches!(
        c,
        '，' | '。'
            | '！'
            | '？'
            | '；'
            | '…'
            | '⋯'
            | '\n'
            | '\r'
            | '\u{b}'
            | '\u{c}'
            | '\u{85}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

fn is_invisible(c: char) -> bool {
    c == '\u{2800}' || CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
}

fn is_noise(c: char) -> bool {
    use GeneralCategory as G;
    if c.is_ascii_alphanumeric() {
        return false;
    }
    matches!(
        CodePointMapData::<GeneralCategory>::new().get(c),
        G::SpaceSeparator
            | G::Control
            | G::ConnectorPunctuation
            | G::DashPunctuation
            | G::OpenPunctuation
            | G::ClosePunctuation
            | G::InitialPunctuation
            | G::FinalPunctuation
            | G::OtherPunctuation
            | G::MathSymbol
            | G::CurrencySymbol
            | G::ModifierSymbol
            | G::OtherSymbol
            | G::NonspacingMark
            | G::EnclosingMark
    )
}

/// A Han character (CJK unified ideographs, extensions and compatibility ideographs).
pub(crate) fn is_han(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x3FFFF)
}

/// The Chinese numerals of DESIGN.md (hand table: no Unicode property maps them to
/// digits the way posters use them). Traditional forms reach them through `t2s`.
fn chinese_numeral(c: char) -> Option<char> {
    Some(match c {
        '〇' | '零' => '0',
        '一' | '壹' => '1',
        '二' | '贰' => '2',
        '三' | '叁' => '3',
        '四' | '肆' => '4',
        '五' | '伍' => '5',
        '六' | '陆' => '6',
        '七' | '柒' => '7',
        '八' | '捌' => '8',
        '九' | '玖' => '9',
        _ => return None,
    })
}

/// The ASCII a stylised digit or letter stands for, or the Han character a radical or a
/// look-alike from another script stands for, if any.
fn variant(c: char, data: &Data) -> Option<String> {
    if c.is_ascii() {
        return None;
    }
    if let Some(d) = chinese_numeral(c) {
        return Some(d.into());
    }
    if is_han(c) {
        return None;
    }
    // Compatibility decompositions: ① → 1, ⑴ → (1), ⒈ → 1., 𝒻 → f, Ⓕ → F.
    if let Some(core) = compatibility_ascii(c) {
        return Some(core);
    }
    if let Ok(i) = NUMERIC.binary_search_by_key(&c, |&(k, _)| k) {
        return Some(NUMERIC[i].1.to_string());
    }
    if let Ok(i) = LETTERS.binary_search_by_key(&c, |&(k, _)| k) {
        return Some(LETTERS[i].1.to_string());
    }
    // Latin letters with diacritics, such as pinyin's tone marks: dùbó → dubo.
    if let Some(base) = ascii_base_of_marked_letter(c) {
        return Some(base.into());
    }
    // CJK radicals: ⻩ → 黄 (Unicode's EquivalentUnifiedIdeograph.txt).
    if let Ok(i) = RADICALS.binary_search_by_key(&c, |&(k, _)| k) {
        return Some(RADICALS[i].1.into());
    }
    // Look-alikes from other scripts, from Unicode's confusables: Latin homoglyphs
    // (Cyrillic а, Greek ο, and capitals whose small letter looks different: К, Κ), and
    // kana, Hangul or strokes that look like a Han character (ロ → 口, ー → 一).
    if c.is_alphabetic() {
        let mut buf = [0; 4];
        let forms = std::iter::once(c).chain(c.to_uppercase().filter(|u| *u != c));
        for form in forms {
            let mut skel =
                unicode_security::confusable_detection::skeleton(form.encode_utf8(&mut buf));
            if let (Some(a), None) = (skel.next(), skel.next()) {
                if a.is_ascii_alphabetic() {
                    return Some(
                        if c.is_lowercase() {
                            a.to_ascii_lowercase()
                        } else {
                            a
                        }
                        .into(),
                    );
                }
                if is_han(a) && a != c {
                    return Some(a.into());
                }
                if let Some(h) = data.han_of_prototype().get(&a) {
                    return Some((*h).into());
                }
            }
        }
    }
    None
}

/// The one or two ASCII letters or digits `c` is a compatibility form of, the brackets and
/// dots around them dropped (① → 1, ⑴ → 1, ⒈ → 1, 𝒻 → f): its NFKC form, built without
/// allocating (the table folds every code point). The compatibility decomposition is enough:
/// composing it again, as NFKC does, changes no ASCII sequence and leaves every other one
/// with a char that is not ASCII.
fn compatibility_ascii(c: char) -> Option<String> {
    let mut buf = [0u8; 8];
    let (mut len, mut ascii) = (0, true);
    unicode_normalization::char::decompose_compatible(c, |d| match buf.get_mut(len) {
        Some(slot) if d.is_ascii() => {
            *slot = d as u8;
            len += 1;
        }
        _ => ascii = false,
    });
    if !ascii {
        return None;
    }
    let form = std::str::from_utf8(&buf[..len]).ok()?;
    let core = form.trim_matches(|x| matches!(x, '(' | ')' | '.'));
    (!core.is_empty() && core.len() <= 2 && core.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| core.to_owned())
}

/// The ASCII letter of a Latin letter with diacritics (ù → u, ǚ → u): the first char of its
/// canonical decomposition, when that is an ASCII letter and all the rest are combining
/// marks.
fn ascii_base_of_marked_letter(c: char) -> Option<char> {
    let (mut base, mut marks, mut only_marks) = (None, 0, true);
    unicode_normalization::char::decompose_canonical(c, |d| match base {
        None => base = Some(d),
        Some(_) => {
            marks += 1;
            only_marks &= is_combining_mark(d);
        }
    });
    base.filter(|b| b.is_ascii_alphabetic() && marks > 0 && only_marks)
}

/// One application of the char-by-char steps (width, case, variants, t2s) to `s`.
fn fold_once(p: Profile, s: &str, steps: &mut u16, data: &Data) -> String {
    let mut cur = s.to_owned();
    if p.has(Step::Width) {
        let next: String = cur.nfkc().collect();
        if next != cur {
            *steps |= bit(Step::Width);
            cur = next;
        }
    }
    if p.has(Step::Case) {
        let next = cur.to_lowercase();
        if next != cur {
            *steps |= bit(Step::Case);
            cur = next;
        }
    }
    if p.has(Step::Variants) {
        let next: String = cur
            .chars()
            .map(|c| variant(c, data).unwrap_or_else(|| c.to_string()))
            .collect();
        if next != cur {
            *steps |= bit(Step::Variants);
            cur = next;
        }
    }
    if p.has(Step::T2s) {
        let next: String = cur
            .chars()
            .map(|c| *data.t2s().get(&c).unwrap_or(&c))
            .collect();
        if next != cur {
            *steps |= bit(Step::T2s);
            cur = next;
        }
    }
    cur
}

/// True when [`fold_once`] would give `c` back, known without building its strings: NFKC
/// keeps it (by the quick check), it is its own lower case, and no variant or t2s entry
/// maps it. Most chars the table's build folds the long way (symbols, letters of other
/// scripts, Hangul) are such, and `fold_once` made five strings for each; `false` only
/// sends a char the long way.
fn unchanged_by_steps(p: Profile, c: char, data: &Data) -> bool {
    if p.has(Step::Width)
        && unicode_normalization::is_nfkc_quick(std::iter::once(c))
            != unicode_normalization::IsNormalized::Yes
    {
        return false;
    }
    if p.has(Step::Case) {
        let mut lower = c.to_lowercase();
        if (lower.next(), lower.next()) != (Some(c), None) {
            return false;
        }
    }
    if p.has(Step::Variants) && variant(c, data).is_some_and(|v| v.chars().ne([c])) {
        return false;
    }
    !(p.has(Step::T2s) && data.t2s().get(&c).is_some_and(|&d| d != c))
}

/// The entries of the block of `BLOCK` code points from `block_start` under `p`, with the
/// multi-char forms (by place in the block) for the caller to number into the payloads.
fn fold_block(p: Profile, block_start: u32, data: &Data) -> ([u32; BLOCK], Vec<(usize, String)>) {
    let mut block = [0u32; BLOCK];
    let mut multis = Vec::new();
    for (i, slot) in block.iter_mut().enumerate() {
        let Some(c) = char::from_u32(block_start + i as u32) else {
            continue;
        };
        if folds_to_itself(p, c, data) {
            // `Same` without steps: the zero entry.
            continue;
        }
        let (k, out, steps) = fold_char_slowly(p, c, data);
        let payload = match k {
            Kind::Char => out.chars().next().map_or(0, |c| c as u32),
            Kind::Multi => {
                multis.push((i, out));
                0
            }
            _ => 0,
        };
        *slot = ((k as u32) << KIND_SHIFT) | (entry_steps(steps) << STEPS_SHIFT) | payload;
    }
    (block, multis)
}

/// True for chars that `fold_char` would keep as they are, known without folding them:
/// Han ideographs that no step maps (most of the 160k in the table's range) and unassigned
/// code points (no step maps one, and none is noise). A sound step maps most Han chars,
/// so with one every char takes the long way. Building a table thus takes a fraction
/// of the time (a test checks both ways agree over every such char).
fn folds_to_itself(p: Profile, c: char, data: &Data) -> bool {
    if p.has(Step::Homophone) || p.has(Step::NearHomophone) {
        return false;
    }
    if is_han(c) {
        // Compatibility ideographs decompose; the hexagram symbols are symbols.
        !matches!(c as u32, 0xF900..=0xFAFF | 0x2F800..=0x2FA1F | 0x4DC0..=0x4DFF)
            && chinese_numeral(c).is_none()
            && !(p.has(Step::T2s) && data.t2s().contains_key(&c))
    } else {
        CodePointMapData::<GeneralCategory>::new().get(c) == GeneralCategory::Unassigned
            && !is_invisible(c)
    }
}

/// The fold of one char under `p`: its kind, its folded form and the steps that changed it.
/// The char-by-char steps are applied until nothing changes, so folding is idempotent
/// (陸 → 陆 by t2s → 6 by variants, as 陆 itself folds).
#[cfg(test)]
fn fold_char(p: Profile, c: char, data: &Data) -> (Kind, String, u16) {
    if folds_to_itself(p, c, data) {
        return (Kind::Same, c.into(), 0);
    }
    fold_char_slowly(p, c, data)
}

/// The fold of one char (`fold_char` in the tests), for any char: every step applied in turn.
fn fold_char_slowly(p: Profile, c: char, data: &Data) -> (Kind, String, u16) {
    if p.has(Step::Noise) && is_break(c) {
        return (Kind::Break, c.into(), 0);
    }
    if p.has(Step::Invisible) && is_invisible(c) {
        return (Kind::Invisible, String::new(), bit(Step::Invisible));
    }
    let mut steps = 0u16;
    let mut s = c.to_string();
    if !unchanged_by_steps(p, c, data) {
        for _ in 0..4 {
            let next = fold_once(p, &s, &mut steps, data);
            if next == s {
                break;
            }
            s = next;
        }
    }
    if p.has(Step::Invisible) && s.chars().any(is_invisible) {
        s.retain(|d| !is_invisible(d));
    }
    let near = p.has(Step::NearHomophone);
    if near || p.has(Step::Homophone) {
        let mut chars = s.chars();
        if let (Some(d), None) = (chars.next(), chars.next()) {
            let h = data.homophone();
            let r = if near { h.near(d) } else { h.get(d) };
            if let Some(r) = r {
                if r != d {
                    // The matcher tells which of the two a hit needed (`Matcher::accept`).
                    steps |= bit(if h.get(d) == Some(r) {
                        Step::Homophone
                    } else {
                        Step::NearHomophone
                    });
                }
                s = r.into();
            }
        }
    }
    if p.has(Step::Noise) && s.chars().any(is_noise) {
        s.retain(|d| !is_noise(d));
        steps |= bit(Step::Noise);
    }
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (None, _) => (Kind::Noise, s, steps | bit(Step::Noise)),
        (Some(d), None) if d == c => (Kind::Same, s, 0),
        (Some(_), None) => (Kind::Char, s, steps),
        _ => (Kind::Multi, s, steps),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Texts that mix what the fold copies (Han, ASCII), what it changes (full-width,
    /// traditional, upper case, ① digits), what it drops (punctuation, zero-width,
    /// combining marks), repeats, overrides and anything else.
    fn mixed_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("赌博".to_owned()),
            Just("赌赌博博".to_owned()),
            Just("ｄｕｂｏ".to_owned()),
            Just("賭博".to_owned()),
            Just("aaBB ".to_owned()),
            Just("①②".to_owned()),
            Just("，。！".to_owned()),
            Just("\u{200b}".to_owned()),
            Just("e\u{301}".to_owned()),
            Just("\u{202e}毒冰\u{202c}".to_owned()),
            Just("😀👍🏽".to_owned()),
            any::<char>().prop_map(String::from),
        ];
        prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Skipping runs of copied chars in bulk gives the same folded text and the same
        /// way back to the original as looking at every char, for every profile.
        #[test]
        fn skipping_copied_runs_changes_nothing(text in mixed_text()) {
            let all = Profile::from_steps(&Step::ALL).without(&[Step::Homophone, Step::NearHomophone]);
            let no_repeat = Profile::from_steps(&Step::DEFAULT).without(&[Step::Repeat]);
            for p in [Profile::from_steps(&Step::DEFAULT), all, no_repeat] {
                let table = table_for(p);
                let (mut fast, mut slow) = (Folded::default(), Folded::default());
                table.fold_with::<true>(&text, &mut fast);
                table.fold_with::<false>(&text, &mut slow);
                prop_assert_eq!(fast.text(), slow.text());
                prop_assert_eq!(format!("{:?}", fast), format!("{:?}", slow));
            }
        }
    }

    #[test]
    fn chars_known_to_fold_to_themselves_do() {
        let data = Data::get();
        let all = Profile::from_steps(&Step::ALL).without(&[Step::Homophone, Step::NearHomophone]);
        for p in [Profile::from_steps(&Step::DEFAULT), all, Profile::EXACT] {
            let mut quick = 0;
            for (lo, hi) in RANGES {
                for c in (lo..hi).filter_map(char::from_u32) {
                    if folds_to_itself(p, c, data) {
                        quick += 1;
                        let (kind, out, steps) = fold_char_slowly(p, c, data);
                        assert!(
                            matches!(kind, Kind::Same) && out == c.to_string() && steps == 0,
                            "{c:?} U+{:04X} under {p:?}",
                            c as u32
                        );
                    }
                }
            }
            assert!(quick > 150_000, "{quick}");
        }
    }

    #[test]
    fn chars_no_step_changes_are_those_fold_once_gives_back() {
        let data = Data::get();
        let all = Profile::from_steps(&Step::ALL).without(&[Step::Homophone, Step::NearHomophone]);
        for p in [Profile::from_steps(&Step::DEFAULT), all, Profile::EXACT] {
            let (mut unchanged, mut changed) = (0, 0);
            for (lo, hi) in RANGES {
                for c in (lo..hi).filter_map(char::from_u32) {
                    let once = fold_once(p, &c.to_string(), &mut 0, data);
                    let quick = unchanged_by_steps(p, c, data);
                    if quick {
                        unchanged += 1;
                        assert_eq!(once, c.to_string(), "U+{:04X} under {p:?}", c as u32);
                    } else if once != c.to_string() {
                        changed += 1;
                    }
                }
            }
            assert!(unchanged > 200_000, "{unchanged} under {p:?}");
            if p != Profile::EXACT {
                assert!(changed > 3_000, "{changed} under {p:?}");
            }
        }
    }

    /// A share whose thread cannot be started is computed on the calling thread: every
    /// result still comes, in order.
    #[test]
    fn a_share_whose_thread_cannot_start_is_computed_on_the_caller() {
        let items: Vec<u32> = (0..1000).collect();
        let here = std::thread::current().id();
        let threads = build_threads().min(items.len());
        for refused in [vec![0], (0..threads).collect::<Vec<_>>()] {
            let out = in_parallel_spawning(
                &items,
                |&x| (x * 2, std::thread::current().id()),
                |t| !refused.contains(&t),
            );
            assert_eq!(out.len(), items.len());
            for (i, (x, id)) in out.iter().enumerate() {
                assert_eq!(*x, 2 * i as u32);
                let share = i % threads;
                if threads > 1 {
                    assert_eq!(*id == here, refused.contains(&share), "item {i}");
                }
            }
        }
    }

    #[test]
    fn planes_one_to_three_are_folded_a_block_at_a_time_when_first_used() {
        let table = FoldTable::build(Profile::from_steps(&Step::DEFAULT));
        let folded = |t: &FoldTable| t.later.iter().filter(|b| b.get().is_some()).count();
        assert_eq!(folded(&table), 0);
        // Mathematical bold letters (U+1D400 block) and a CJK extension B char.
        assert_eq!(
            table.fold_string("𝐒𝐇𝐄𝐍𝐇𝐄 你好"),
            table.fold_string("SHENHE 你好")
        );
        assert_eq!(folded(&table), 1);
        assert_eq!(table.fold_string("𠀀"), "𠀀");
        assert_eq!(folded(&table), 2);
        // The exact profile has none to fold.
        let exact = FoldTable::build(Profile::EXACT);
        assert_eq!(exact.fold_string("𝐒𝐇"), "𝐒𝐇");
        assert!(exact.later.is_empty());
    }

    #[test]
    fn every_entry_of_a_table_built_in_parallel_is_its_chars_fold() {
        let data = Data::get();
        let all = Profile::from_steps(&Step::ALL).without(&[Step::Homophone, Step::NearHomophone]);
        for p in [Profile::from_steps(&Step::DEFAULT), all] {
            let table = FoldTable::build(p);
            let mut multis = 0;
            for (lo, hi) in RANGES {
                for c in (lo..hi).filter_map(char::from_u32) {
                    let (k, out, steps) = fold_char(p, c, data);
                    let entry = table.entry(c);
                    let at = format!("U+{:04X} under {p:?}", c as u32);
                    assert_eq!(kind(entry), k, "{at}");
                    assert_eq!(steps_of_entry(entry), steps, "{at}");
                    let payload = entry & PAYLOAD;
                    match k {
                        Kind::Char => assert_eq!(char::from_u32(payload), out.chars().next()),
                        Kind::Multi => {
                            multis += 1;
                            assert_eq!(table.multi_of(c, payload), out, "{at}");
                        }
                        _ => assert_eq!(payload, 0, "{at}"),
                    }
                }
            }
            assert!(multis > 100, "{multis} multi-char folds under {p:?}");
        }
    }

    #[test]
    fn the_forms_read_without_allocating_are_those_of_nfkc_and_nfd() {
        let (mut compat, mut marked) = (0, 0);
        for (lo, hi) in RANGES {
            for c in (lo..hi).filter_map(char::from_u32) {
                let nfkc: String = c.to_string().nfkc().collect();
                let core = nfkc.trim_matches(|x| matches!(x, '(' | ')' | '.'));
                let expected = (!core.is_empty()
                    && core.len() <= 2
                    && core.bytes().all(|b| b.is_ascii_alphanumeric()))
                .then(|| core.to_owned());
                compat += usize::from(expected.is_some());
                assert_eq!(compatibility_ascii(c), expected, "U+{:04X}", c as u32);
                let mut nfd = c.to_string().nfd().collect::<Vec<char>>().into_iter();
                let expected = nfd.next().filter(|base| {
                    base.is_ascii_alphabetic() && nfd.len() > 0 && nfd.all(is_combining_mark)
                });
                marked += usize::from(expected.is_some());
                assert_eq!(
                    ascii_base_of_marked_letter(c),
                    expected,
                    "U+{:04X}",
                    c as u32
                );
            }
        }
        // ①, ⑴, ⒈, Ⓕ, 𝒻 and the like; à, ǚ and the like.
        assert!(compat > 1_000 && marked > 300, "{compat} {marked}");
    }

    #[test]
    fn the_exact_table_is_the_identity_built_without_folding() {
        let (quick, folded) = (
            FoldTable::build(Profile::EXACT),
            FoldTable::build_folding(Profile::EXACT),
        );
        assert_eq!(quick.index, folded.index);
        assert_eq!(quick.blocks, folded.blocks);
        assert_eq!(quick.copy_bmp, folded.copy_bmp);
        assert!(quick.multi.is_empty() && folded.multi.is_empty());
    }

    /// The t2s table the engine reads (`t2s_chars.txt`) is what OpenCC's t2s makes of
    /// each char alone, for every char of the Han blocks. After a ferrous-opencc upgrade,
    /// `SHENHE_BLESS=1 cargo test traditional_chars` rewrites the file.
    #[test]
    fn traditional_chars_convert_as_they_do_alone() {
        use ferrous_opencc::config::BuiltinConfig;
        let cc = ferrous_opencc::OpenCC::from_config(BuiltinConfig::T2s).unwrap();
        let ranges = (0x3400..0xA000)
            .chain(0xF900..0xFB00)
            .chain(0x20000..0x2FA20);
        let mut expected = String::new();
        for c in ranges.filter_map(char::from_u32) {
            let out = cc.convert(&c.to_string());
            let mut outs = out.chars();
            if let (Some(d), None) = (outs.next(), outs.next()) {
                if d != c {
                    expected.extend([c, d, '\n']);
                }
            }
        }
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/normalize/t2s_chars.txt");
        if std::env::var_os("SHENHE_BLESS").is_some() {
            std::fs::write(path, &expected).unwrap();
        }
        assert!(expected.lines().count() > 2_000);
        assert!(
            include_str!("t2s_chars.txt") == expected,
            "{path} is not OpenCC's t2s of each char: rewrite it with SHENHE_BLESS=1"
        );
        let map = Data::get().t2s();
        assert_eq!(map.len(), expected.lines().count());
        assert_eq!(map.get(&'臺'), Some(&'台'));
        assert_eq!(map.get(&'賭'), Some(&'赌'));
        assert_eq!(map.get(&'赌'), None);
    }
}
