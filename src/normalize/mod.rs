//! Folding text before matching, and mapping folded offsets back to the original.
//!
//! The matcher never sees the original text, only its fold; every hit it reports is in
//! folded offsets and comes back through [`Folded::to_original`]. This module owns that
//! mapping and must never lose it: a hit's span in the original text is exact.
//!
//! This version folds with the identity (exact matching); the normalisation steps of
//! DESIGN.md plug in here, producing the folded text and its offset map in one pass.

use std::borrow::Cow;

/// A field's text as the matcher sees it, with the way back to the original.
#[derive(Debug)]
pub(crate) struct Folded<'a> {
    text: Cow<'a, str>,
    /// `map[i]` is the original byte offset of folded byte `i` (at char boundaries), with
    /// one extra entry for the end. `None` means the fold is the identity.
    map: Option<Vec<u32>>,
}

impl<'a> Folded<'a> {
    /// The folded text.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The original byte span of the folded span `start..end`: it covers every original
    /// character that folded into the span.
    pub(crate) fn to_original(&self, start: usize, end: usize) -> (usize, usize) {
        match &self.map {
            None => (start, end),
            Some(map) => (map[start] as usize, map[end] as usize),
        }
    }
}

/// Folds a field's text for matching.
pub(crate) fn fold(text: &str) -> Folded<'_> {
    Folded {
        text: Cow::Borrowed(text),
        map: None,
    }
}

/// Folds a term (or allow phrase) the way text is folded, so both meet in the automaton.
pub(crate) fn fold_term(term: &str) -> String {
    fold(term).text().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_fold_maps_offsets_to_themselves() {
        let f = fold("网络赌场");
        assert_eq!(f.text(), "网络赌场");
        assert_eq!(f.to_original(6, 12), (6, 12));
        assert_eq!(fold_term("赌博"), "赌博");
    }
}
