//! Folding text before matching, and mapping folded offsets back to the original.
//!
//! *Expert module*: the engine applies all of this itself. [`Normalizer`] is public so
//! rule authors and tools can see what the matcher sees (`shenhe check` prints it) and so
//! the offset invariants can be fuzzed from outside the crate.
//!
//! A `Profile` is a set of normalisation steps. For each profile a `FoldTable` is
//! compiled once per process: every char maps to itself, to another char, to a short
//! string, to nothing (invisible, noise) or to a hard break. `FoldTable::fold_into` applies
//! it in one pass, writing the folded text and a compact offset map (runs of bytes that
//! map linearly, and atomic units for chars whose folded form has another length).
//!
//! The matcher never sees the original text, only its fold; every hit it reports is in
//! folded offsets and comes back through [`Folded::to_original`]. This module owns that
//! mapping and must never lose it: a hit's span in the original text is exact.
//!
//! Where each table comes from:
//! - `invisible`: Unicode's Default_Ignorable_Code_Point (ICU4X `icu_properties`), and U+2800.
//! - `width`: NFKC compatibility decomposition, char by char (`unicode-normalization`).
//! - `case`: Unicode lowercase mapping (`char::to_lowercase`).
//! - `variants`: ASCII digits and letters from NFKC decompositions; numbers and enclosed
//!   letters without one from Unicode's numeric values and names (`unicode_tables.rs`,
//!   generated); Latin homoglyphs from Unicode's confusables (`unicode-security` skeletons);
//!   the Chinese numerals from the hand table below (DESIGN.md lists them).
//! - `t2s`: OpenCC's traditional → simplified dictionaries (`ferrous-opencc`), per char.
//! - `noise`: Unicode general categories (spaces, punctuation, symbols and emoji, controls),
//!   from ICU4X; the clause punctuation that is never noise is the hand table `is_break`.
//! - `repeat`: contextual, applied during the fold.

mod table;
#[rustfmt::skip]
mod unicode_tables;

use crate::vocab::Step;

pub(crate) use table::{is_break, table_for, FoldTable};

/// A set of normalisation steps, as a bit set in `Step` order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Profile(u8);

impl Profile {
    /// No step: the identity fold.
    pub(crate) const EXACT: Profile = Profile(0);

    pub(crate) fn from_steps(steps: &[Step]) -> Profile {
        Profile(steps.iter().fold(0, |m, s| m | bit(*s)))
    }

    pub(crate) fn has(self, step: Step) -> bool {
        self.0 & bit(step) != 0
    }

    /// Its steps, in the documented order.
    pub(crate) fn steps(self) -> Vec<Step> {
        steps_of(self.0).collect()
    }

    /// The same profile without the given steps.
    pub(crate) fn without(self, steps: &[Step]) -> Profile {
        Profile(self.0 & !Profile::from_steps(steps).0)
    }
}

pub(crate) fn bit(step: Step) -> u8 {
    // `Step::ALL` lists the steps in declaration order (checked by a test), so the
    // discriminant is the position.
    1 << step as u8
}

/// The steps of a bit mask, in the documented order.
pub(crate) fn steps_of(mask: u8) -> impl Iterator<Item = Step> {
    Step::ALL.into_iter().filter(move |s| mask & bit(*s) != 0)
}

/// A run of the offset map: folded bytes `fs..fs + flen` come from original bytes
/// `os..os + olen`. When `linear`, byte `fs + k` comes from byte `os + k` (then `flen ==
/// olen`); otherwise the run is one unit: any folded byte inside it comes from the whole
/// original span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    fs: u32,
    os: u32,
    flen: u32,
    olen: u32,
    linear: bool,
}

/// A text as the matcher sees it, with the way back to the original. Reusable: folding
/// into it clears it first, so buffers are allocated once.
#[derive(Debug, Default)]
pub struct Folded {
    text: String,
    runs: Vec<Run>,
}

impl Folded {
    /// The folded text.
    pub fn text(&self) -> &str {
        &self.text
    }

    fn clear(&mut self) {
        self.text.clear();
        self.runs.clear();
    }

    fn run_at(&self, f: usize) -> &Run {
        let i = self.runs.partition_point(|r| (r.fs as usize) <= f);
        &self.runs[i.saturating_sub(1)]
    }

    /// The original byte span of the folded span `start..end` (`start < end`, both char
    /// boundaries of the folded text): from the start of the original char that produced
    /// the first folded char to the end of the one that produced the last.
    ///
    /// # Panics
    ///
    /// When `start >= end` or `end` is past the folded text.
    pub fn to_original(&self, start: usize, end: usize) -> (usize, usize) {
        assert!(
            start < end && end <= self.text.len(),
            "span {start}..{end} out of the folded text"
        );
        let r = self.run_at(start);
        let s = if r.linear {
            (r.os + (start as u32 - r.fs)) as usize
        } else {
            r.os as usize
        };
        let r = self.run_at(end - 1);
        let e = if r.linear {
            (r.os + (end as u32 - r.fs)) as usize
        } else {
            (r.os + r.olen) as usize
        };
        (s, e)
    }

    /// Appends a folded unit `out` that came from original bytes `os..os + olen`.
    fn push(&mut self, os: usize, olen: usize, out: &str, linear: bool) {
        let fs = self.text.len() as u32;
        let (os, olen_u, flen) = (os as u32, olen as u32, out.len() as u32);
        self.text.push_str(out);
        if linear {
            if let Some(last) = self.runs.last_mut() {
                if last.linear && last.fs + last.flen == fs && last.os + last.olen == os {
                    last.flen += flen;
                    last.olen += olen_u;
                    return;
                }
            }
        }
        self.runs.push(Run {
            fs,
            os,
            flen,
            olen: olen_u,
            linear,
        });
    }
}

/// What folding a span of original text took: the steps that changed something, and the
/// longest run of noise skipped between two kept characters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SpanStats {
    pub(crate) steps: u8,
    pub(crate) max_noise_gap: usize,
}

/// At most this many noise characters may be skipped between two characters of a term.
pub(crate) const MAX_NOISE_GAP: usize = 3;

/// Folds texts with a set of normalisation steps, exactly as the engine does for a rule
/// with `normalize` set to those steps.
///
/// ```
/// use shenhe::{normalize::Normalizer, Step};
///
/// let n = Normalizer::new(&Step::DEFAULT);
/// let text = "網絡賭＊場";
/// let folded = n.fold(text);
/// assert_eq!(folded.text(), "网络赌场");
/// let (s, e) = folded.to_original(6, 12);
/// assert_eq!(&text[s..e], "賭＊場");
/// // The full-width ＊ is folded to * (width), then skipped (noise).
/// assert_eq!(n.steps_in(&text[s..e]), vec![Step::Width, Step::T2s, Step::Noise]);
/// ```
#[derive(Clone, Debug)]
pub struct Normalizer {
    table: std::sync::Arc<FoldTable>,
}

impl Normalizer {
    /// A normaliser for these steps (applied in the documented order whatever the order
    /// given). The tables are built once per process and shared.
    pub fn new(steps: &[Step]) -> Normalizer {
        Normalizer {
            table: table_for(Profile::from_steps(steps)),
        }
    }

    /// Folds `text`.
    pub fn fold(&self, text: &str) -> Folded {
        let mut out = Folded::default();
        self.table.fold_into(text, &mut out);
        out
    }

    /// Folds `text` into `out`, reusing its buffers.
    pub fn fold_into(&self, text: &str, out: &mut Folded) {
        self.table.fold_into(text, out);
    }

    /// The steps that change something in `text` (in the documented order).
    pub fn steps_in(&self, text: &str) -> Vec<Step> {
        steps_of(self.table.span_stats(text).steps).collect()
    }
}

/// Folds `text` with `profile` into a new string (for terms, allow phrases, examples).
pub(crate) fn fold_str(profile: Profile, text: &str) -> String {
    let mut f = Folded::default();
    table_for(profile).fold_into(text, &mut f);
    f.text
}

#[cfg(test)]
mod tests;
