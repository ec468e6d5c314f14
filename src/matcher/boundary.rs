//! `boundary = "word"`: a hit is dropped when a word of the text straddles its start or
//! end (台独 in 这个平台独立运营, 毒品 in 这种病毒品种).
//!
//! Segmentation is jieba-rs with HMM off and its default dictionary, built once per
//! process and only when some rule asks for it. It runs only around candidate hits of
//! such rules, never over whole posts, on a window of the text folded with `invisible`,
//! `width`, `case`, `t2s`, `noise` and `repeat` (not `variants`: numerals stay hanzi).

use std::sync::{Arc, OnceLock};

use jieba_rs::Jieba;

use crate::normalize::{is_break, table_for, FoldTable, Folded, Profile};
use crate::vocab::Step;

/// How many chars of context on each side of a hit the segmenter sees.
const CONTEXT_CHARS: usize = 12;

pub(crate) struct Segmenter {
    jieba: Jieba,
    table: Arc<FoldTable>,
}

static SEGMENTER: OnceLock<Segmenter> = OnceLock::new();

impl Segmenter {
    /// The process-wide segmenter (the dictionary is loaded on first use).
    pub(crate) fn get() -> &'static Segmenter {
        SEGMENTER.get_or_init(|| Segmenter {
            jieba: Jieba::new(),
            table: table_for(Profile::from_steps(&[
                Step::Invisible,
                Step::Width,
                Step::Case,
                Step::T2s,
                Step::Noise,
                Step::Repeat,
            ])),
        })
    }

    /// Starts loading the dictionary on a thread of its own, once per process, so that the
    /// first post with a candidate hit does not wait for it (about 150 ms) in a forum's
    /// submit path: an engine whose rules need it calls this when it is built. A post that
    /// comes sooner waits for the load in [`get`](Self::get), as without this. If no
    /// thread can be started, the dictionary is loaded on first use.
    pub(crate) fn load_in_background() {
        static STARTED: std::sync::Once = std::sync::Once::new();
        STARTED.call_once(|| {
            let _ = std::thread::Builder::new()
                .name("shenhe-jieba".into())
                .spawn(|| {
                    Segmenter::get();
                });
        });
    }

    /// Whether the dictionary is loaded.
    pub(crate) fn loaded() -> bool {
        SEGMENTER.get().is_some()
    }

    /// Whether a word of `text` straddles the start or the end of the hit `start..end`.
    pub(crate) fn straddles(&self, text: &str, start: usize, end: usize) -> bool {
        let before = context_before(text, start);
        let after = context_after(text, end);
        let mut scratch = Folded::default();
        let mut window = String::with_capacity(before.len() + (end - start) + after.len());
        for piece in [before, &text[start..end], after] {
            self.table.fold_into(piece, &mut scratch);
            window.push_str(scratch.text());
        }
        self.table.fold_into(before, &mut scratch);
        let s = scratch.text().len();
        self.table.fold_into(&text[start..end], &mut scratch);
        let e = s + scratch.text().len();
        let mut at = 0;
        for word in self.jieba.cut(&window, false) {
            let (ws, we) = (at, at + word.len());
            if (ws < s && s < we) || (ws < e && e < we) {
                return true;
            }
            at = we;
        }
        false
    }
}

/// Up to `CONTEXT_CHARS` chars before `at`, stopping at a clause break.
fn context_before(text: &str, at: usize) -> &str {
    let mut from = at;
    for (n, (i, c)) in text[..at].char_indices().rev().enumerate() {
        if n == CONTEXT_CHARS || is_break(c) {
            break;
        }
        from = i;
    }
    &text[from..at]
}

/// Up to `CONTEXT_CHARS` chars after `at`, stopping at a clause break.
fn context_after(text: &str, at: usize) -> &str {
    let mut to = at;
    for (n, (i, c)) in text[at..].char_indices().enumerate() {
        if n == CONTEXT_CHARS || is_break(c) {
            break;
        }
        to = at + i + c.len_utf8();
    }
    &text[at..to]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_straddling_a_hit_are_found() {
        let seg = Segmenter::get();
        let t = "这个平台独立运营";
        let s = t.find("台独").unwrap();
        assert!(seg.straddles(t, s, s + 6));
        let t = "这种病毒品种";
        let s = t.find("毒品").unwrap();
        assert!(seg.straddles(t, s, s + 6));
        let t = "有人出售毒品。";
        let s = t.find("毒品").unwrap();
        assert!(!seg.straddles(t, s, s + 6));
        let t = "有人出售毒 品";
        let s = t.find("毒").unwrap();
        assert!(
            !seg.straddles(t, s, s + "毒 品".len()),
            "noise inside the hit is folded away"
        );
    }
}
