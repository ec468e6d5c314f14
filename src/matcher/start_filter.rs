//! A charwise start filter in front of a literal group's automaton.
//!
//! On Chinese text with thousands of terms almost every character is in the automaton's
//! alphabet, so the automaton does a full transition (two random reads in tables of
//! hundreds of kilobytes) for nearly every character, even though only a few positions
//! can start a match. The filter holds the first two characters of every pattern (and the
//! one-character patterns) in a 64 KiB bit set. While the automaton is in its root state,
//! a character whose pair with the next one is not in the set cannot start a match, so it
//! is skipped without touching the automaton; elsewhere the automaton steps as usual. The
//! result is exactly the automaton's own: every match starts at a position whose first two
//! characters (or first character, for a one-character pattern) are in the set, and a
//! false positive of the hash only costs a transition.
//!
//! daachorse has a prefilter of its own (q-grams over bytes); on UTF-8 Chinese the byte
//! pairs of thousands of terms cover nearly every pair in the text, so it does not build.
//! This one works on characters, which is what makes it selective.

use daachorse::charwise::iter::{FindOverlappingStepper, FindOverlappingStepperIterator};
use daachorse::CharwiseDoubleArrayAhoCorasick;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// log2 of the number of bits in the pair set (2^19 bits = 64 KiB).
const PAIR_BITS: u32 = 19;
/// log2 of the number of bits in the one-character set.
const SINGLE_BITS: u32 = 16;
/// The filter is not built when more than this fraction of the pair set is full: it
/// would pass nearly everything and only add work.
const MAX_FILL: f64 = 0.2;
/// Stands for "no next character" at the end of the text (not a char).
const END: u32 = 0x11_0000;
/// Characters scanned through the filter before the gate decides whether it pays (about
/// 800 KB of Chinese text: the share is stable by then, and a filter that does not pay
/// costs little before it is switched off).
const PROBE_CHARS: u64 = 1 << 18;
/// The filter stays on when at most this share of the probed characters reached the
/// automaton. Measured on the peers corpus (one core): 3.5% fed → 1.7× the plain
/// automaton's speed (1,000 terms), 24% → 1.1× (10,000 terms), 56% → 0.85× (50,000 terms).
const MAX_FED_SHARE: f64 = 0.3;

const PROBING: u8 = 0;
const ON: u8 = 1;
const OFF: u8 = 2;

#[inline(always)]
fn pair_bit(a: u32, b: u32) -> usize {
    // Two multiplies and a fold: close to a random spread on runs of neighbouring code
    // points (a single multiply of `a << 21 | b` filled only a quarter of the bits it should).
    let mut x = u64::from(a).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(b);
    x ^= x >> 32;
    (x.wrapping_mul(0xBF58_476D_1CE4_E5B9) >> (64 - PAIR_BITS)) as usize
}

#[inline(always)]
fn single_bit(a: u32) -> usize {
    (a.wrapping_mul(0x9E37_79B1) >> (32 - SINGLE_BITS)) as usize
}

#[inline(always)]
fn test(set: &[u64], bit: usize) -> bool {
    set[bit >> 6] & (1 << (bit & 63)) != 0
}

fn set(set: &mut [u64], bit: usize) {
    set[bit >> 6] |= 1 << (bit & 63);
}

/// The bit sets of a [`StartFilter`]: which character pairs (and single characters) can
/// start a pattern. Read for nearly every character of a scan; cloned into each thread's
/// copy of the automaton (`super::Copies`).
#[derive(Clone)]
pub(super) struct StartBits {
    pairs: Box<[u64]>,
    /// Only when some pattern is one character long.
    singles: Option<Box<[u64]>>,
}

impl StartBits {
    /// Whether some pattern of two or more characters can start with `a`, `b`.
    #[inline(always)]
    fn pair(&self, a: u32, b: u32) -> bool {
        test(&self.pairs, pair_bit(a, b))
    }

    /// Whether a pattern can start with `c` followed by `next` ([`END`] at the end).
    #[inline(always)]
    fn may_start(&self, c: u32, next: u32) -> bool {
        self.pair(c, next)
            || self
                .singles
                .as_deref()
                .is_some_and(|s| test(s, single_bit(c)))
    }

    pub(super) fn heap_bytes(&self) -> usize {
        (self.pairs.len() + self.singles.as_ref().map_or(0, |s| s.len())) * 8
    }
}

/// Which character pairs (and single characters) can start a pattern, and whether looking
/// them up pays on the text this engine sees.
pub(super) struct StartFilter {
    bits: StartBits,
    /// Whether the filter pays on the text this engine sees: decided once, from the first
    /// [`PROBE_CHARS`] characters scanned (by any thread), then left alone. Either way the
    /// matches are the same; only the speed differs.
    gate: AtomicU8,
    probed: AtomicU64,
    fed: AtomicU64,
}

impl StartFilter {
    /// The filter of `patterns`, or `None` when it would not be selective.
    pub(super) fn build<S: AsRef<str>>(patterns: &[S]) -> Option<StartFilter> {
        let mut pairs = vec![0u64; 1 << (PAIR_BITS - 6)].into_boxed_slice();
        let mut singles: Option<Box<[u64]>> = None;
        for p in patterns {
            let mut chars = p.as_ref().chars().map(u32::from);
            match (chars.next(), chars.next()) {
                (Some(a), Some(b)) => set(&mut pairs, pair_bit(a, b)),
                (Some(a), None) => set(
                    singles.get_or_insert_with(|| vec![0u64; 1 << (SINGLE_BITS - 6)].into()),
                    single_bit(a),
                ),
                _ => {}
            }
        }
        let full: u32 = pairs.iter().map(|w| w.count_ones()).sum();
        if f64::from(full) > MAX_FILL * f64::from(1u32 << PAIR_BITS) {
            return None;
        }
        Some(StartFilter {
            bits: StartBits { pairs, singles },
            gate: AtomicU8::new(PROBING),
            probed: AtomicU64::new(0),
            fed: AtomicU64::new(0),
        })
    }

    /// The bit sets (to copy them for another thread).
    pub(super) fn bits(&self) -> &StartBits {
        &self.bits
    }

    /// Whether to use the filter: until the gate has decided, and after if it pays.
    #[inline]
    pub(super) fn pays(&self) -> bool {
        self.gate.load(Ordering::Relaxed) != OFF
    }

    /// Counts a scan towards the gate's decision while it is probing.
    fn record(&self, seen: u64, fed: u64) {
        if self.gate.load(Ordering::Relaxed) != PROBING {
            return;
        }
        let probed = self.probed.fetch_add(seen, Ordering::Relaxed) + seen;
        let fed = self.fed.fetch_add(fed, Ordering::Relaxed) + fed;
        if probed >= PROBE_CHARS {
            let pays = fed as f64 <= MAX_FED_SHARE * probed as f64;
            self.gate
                .store(if pays { ON } else { OFF }, Ordering::Relaxed);
        }
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.bits.heap_bytes()
    }

    /// Overlapping matches of `ac` in `text`, as `ac.find_overlapping_iter(text)` gives
    /// them, looking pairs up in `bits` (this filter's own, or a copy of them). `ac` must
    /// have its depths cached (`cache_depths`).
    pub(super) fn find_overlapping<'a>(
        &'a self,
        bits: &'a StartBits,
        ac: &'a CharwiseDoubleArrayAhoCorasick<u32>,
        text: &'a str,
    ) -> FilteredMatches<'a> {
        let mut chars = text.char_indices();
        let ahead = chars.next();
        FilteredMatches {
            filter: self,
            bits,
            ac,
            stepper: ac.find_overlapping_stepper(),
            chars,
            ahead,
            depth: 0,
            last: 0,
            pending: None,
            seen: 0,
            fed: 0,
        }
    }
}

/// Iterator of [`StartFilter::find_overlapping`]: (start, end, the pattern's value in the
/// automaton) in bytes of the text.
pub(super) struct FilteredMatches<'a> {
    filter: &'a StartFilter,
    bits: &'a StartBits,
    ac: &'a CharwiseDoubleArrayAhoCorasick<u32>,
    /// The automaton's state. Skipped characters are not fed to it, so its own position
    /// lags; match ends are taken from `chars` instead.
    stepper: FindOverlappingStepper<'a, u32>,
    chars: std::str::CharIndices<'a>,
    /// The next character and its offset.
    ahead: Option<(usize, char)>,
    /// The automaton state's depth in characters, and the last character fed to it.
    depth: u32,
    last: u32,
    /// Matches ending at the given offset, not yet returned.
    pending: Option<(FindOverlappingStepperIterator<'a, u32>, usize)>,
    /// Characters looked at and characters fed to the automaton, for the gate.
    seen: u64,
    fed: u64,
}

impl Drop for FilteredMatches<'_> {
    fn drop(&mut self) {
        self.filter.record(self.seen, self.fed);
    }
}

impl Iterator for FilteredMatches<'_> {
    type Item = (usize, usize, usize);

    #[inline]
    fn next(&mut self) -> Option<(usize, usize, usize)> {
        if let Some((outputs, end)) = &mut self.pending {
            if let Some(m) = outputs.next() {
                return Some(ending_at(&m, *end));
            }
            self.pending = None;
        }
        // The walk runs on locals, written back once a match (or the end) is found: kept
        // in the struct, every character stored them to memory.
        let (filter, ac) = (self.bits, self.ac);
        let mut stepper = self.stepper.clone();
        let mut chars = self.chars.clone();
        let mut ahead = self.ahead;
        let (mut depth, mut last, mut seen, mut fed) = (self.depth, self.last, self.seen, self.fed);
        let found = loop {
            let Some((_, c)) = ahead else {
                break None;
            };
            ahead = chars.next();
            seen += 1;
            let code = u32::from(c);
            // At depth 1 the state is the last character alone; unless that character and
            // this one can begin a pattern, the transition falls back to the root, so the
            // root's rule applies (the last character's own matches are already out).
            if depth == 1 && !filter.pair(last, code) {
                stepper = ac.find_overlapping_stepper();
                depth = 0;
            }
            if depth == 0 {
                let next = ahead.map_or(END, |(_, n)| u32::from(n));
                if !filter.may_start(code, next) {
                    continue;
                }
            }
            stepper.consume(c);
            fed += 1;
            depth = stepper.depth().unwrap_or(u32::MAX);
            last = code;
            let mut outputs = stepper.matches();
            if let Some(m) = outputs.next() {
                let end = ahead.map_or(chars.offset(), |(at, _)| at);
                self.pending = Some((outputs, end));
                break Some(ending_at(&m, end));
            }
        };
        self.stepper = stepper;
        self.chars = chars;
        self.ahead = ahead;
        (self.depth, self.last, self.seen, self.fed) = (depth, last, seen, fed);
        found
    }
}

/// A match of the automaton as (start, end, value) in bytes of the text, given where it
/// ends there: the stepper's own offsets lag behind the text by the characters skipped.
fn ending_at(m: &daachorse::Match<u32>, end: usize) -> (usize, usize, usize) {
    (end - (m.end() - m.start()), end, m.value() as usize)
}

/// The pairs of neighbouring Han characters in a group's patterns, as a 64 KiB bit set.
/// A skipping look (`Matcher::find_skipping`) leaves out a lone letter or digit between two
/// Han characters; a match over it has those two characters next to each other in its
/// pattern, so a site whose pair is not in the set cannot yield one and is passed over
/// without a window. (On news text most such sites are dates and counts: 在3月, 第2名.)
/// A false positive of the hash only costs a window.
pub(crate) struct HanPairs {
    set: Box<[u64]>,
}

impl HanPairs {
    /// The set of every pair of neighbouring Han characters in `patterns`.
    pub(crate) fn build<'a>(patterns: impl IntoIterator<Item = &'a String>) -> HanPairs {
        let mut set = vec![0u64; (1 << PAIR_BITS) / 64].into_boxed_slice();
        for p in patterns {
            let mut chars = p.chars().peekable();
            while let (Some(a), Some(&b)) = (chars.next(), chars.peek()) {
                if crate::normalize::is_han(a) && crate::normalize::is_han(b) {
                    let bit = pair_bit(a as u32, b as u32);
                    set[bit >> 6] |= 1 << (bit & 63);
                }
            }
        }
        HanPairs { set }
    }

    /// Whether some pattern may have `a` right before `b`.
    #[inline]
    pub(crate) fn may_have(&self, a: char, b: char) -> bool {
        test(&self.set, pair_bit(a as u32, b as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (start, end, pattern).
    type Found = (usize, usize, usize);

    fn both(patterns: &[&str], text: &str) -> (Vec<Found>, Vec<Found>) {
        let mut ac = CharwiseDoubleArrayAhoCorasick::<u32>::new(patterns).unwrap();
        ac.cache_depths().unwrap();
        let filter = StartFilter::build(patterns).expect("selective");
        let plain = ac
            .find_overlapping_iter(text)
            .map(|m| (m.start(), m.end(), m.value() as usize))
            .collect();
        (
            plain,
            filter.find_overlapping(filter.bits(), &ac, text).collect(),
        )
    }

    #[test]
    fn gives_what_the_automaton_gives() {
        let patterns = ["赌博", "博彩", "赌", "网络赌场", "场", "ab", "b", "冰毒"];
        for text in [
            "",
            "赌",
            "网络赌场赌博彩票",
            "赌赌博博",
            "abab b",
            "今天天气不错",
            "冰毒冰",
            "出售冰毒和网络赌场",
        ] {
            let (plain, filtered) = both(&patterns, text);
            assert_eq!(plain, filtered, "{text}");
        }
    }

    proptest::proptest! {
        /// On any patterns and text (one-char patterns, 4-byte chars, ASCII, a pattern
        /// at the very end included), the filter changes nothing the automaton finds.
        #[test]
        fn never_changes_the_matches(
            patterns in proptest::collection::vec("[赌博彩a-c😀 ]{1,4}", 1..12),
            text in "[赌博彩a-d😀 场]{0,40}",
        ) {
            let patterns: Vec<&str> = {
                let mut p: Vec<&str> = patterns.iter().map(String::as_str).collect();
                p.sort_unstable();
                p.dedup();
                p
            };
            let (plain, filtered) = both(&patterns, &text);
            proptest::prop_assert_eq!(plain, filtered);
        }
    }

    #[test]
    fn the_gate_turns_the_filter_off_only_where_it_does_not_pay() {
        let mut ac = CharwiseDoubleArrayAhoCorasick::<u32>::new(["赌博"]).unwrap();
        ac.cache_depths().unwrap();
        let scan = |text: &str| {
            let filter = StartFilter::build(&["赌博"]).unwrap();
            let n = filter.find_overlapping(filter.bits(), &ac, text).count();
            // Still probing after one short scan.
            let probing = filter.pays();
            let long = text.repeat((PROBE_CHARS as usize).div_ceil(text.chars().count()));
            let m = filter.find_overlapping(filter.bits(), &ac, &long).count();
            assert!(long.chars().count() as u64 >= PROBE_CHARS);
            (n, m * 2 == long.chars().count(), m, probing, filter.pays())
        };
        // Every character reaches the automaton: off, and the matches are all there.
        let (n, all, _, probing, pays) = scan("赌博赌博赌博");
        assert_eq!((n, all, probing, pays), (3, true, true, false));
        // Nothing does: on.
        let (n, _, m, probing, pays) = scan("今天天气不错");
        assert_eq!((n, m, probing, pays), (0, 0, true, true));
    }

    #[test]
    fn a_saturated_set_builds_no_filter() {
        // Every pair of 1,000 characters: far more pairs than the set can tell apart.
        let chars: Vec<char> = ('\u{4e00}'..='\u{9fff}').take(1000).collect();
        let patterns: Vec<String> = chars
            .iter()
            .flat_map(|a| chars.iter().take(200).map(move |b| format!("{a}{b}")))
            .collect();
        assert!(StartFilter::build(&patterns).is_none());
    }
}
