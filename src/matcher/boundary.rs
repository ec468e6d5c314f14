//! `boundary = "word"`: a hit is dropped when a word of the text straddles its start or
//! end (台独 in 这个平台独立运营, 毒品 in 这种病毒品种).
//!
//! A word straddles only when the segmenter is sure of it: jieba's best segmentation of
//! the window is compared with the best one that keeps the term whole (the context on each
//! side segmented alone, the term as one word at jieba's suggested frequency, which is the
//! likelihood of its own best split when the dictionary does not know it). The hit is
//! dropped when the first is at least [`MARGIN`] times likelier. So a term the dictionary
//! does not know (刷单返利 in 评论区发刷单返利, where jieba's best path has the rare word 发刷)
//! and a weak neighbour (发傻 before 傻逼) no longer drop a hit, while 平台|独立 against 台独
//! (about 54,000 times likelier) and 病毒|品种 against 毒品 (about 9,000 times) still do.
//! The window holds the term as the rule wrote it in place of the text's spelling of it
//! (陆合彩 is judged as 六合彩: an evader's substitution must not make up a word with a
//! neighbour, such as 着陆 in 写着陆合彩).
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

/// How much likelier the best segmentation must be than the best that keeps the hit
/// whole for the hit to be dropped (e^4.6). Measured on the cases of tests/data: the
/// traps that must be dropped are 9,000 (病毒品种) to 160,000,000 (一套现代化) times
/// likelier; the hits that must stay are at most 1.3 times (发傻逼).
const MARGIN_LN: f64 = 4.6;

/// A dictionary word seen fewer times than this is no proof that a text means it (jieba's
/// dictionary holds rare entries that are evasions themselves).
const MIN_WORD_FREQUENCY: usize = 10;

/// A single char seen this often in the dictionary is a function word (see
/// [`Segmenter::is_common_char`]).
const COMMON_CHAR_FREQUENCY: usize = 50_000;

pub(crate) struct Segmenter {
    jieba: Jieba,
    table: Arc<FoldTable>,
    /// ln of the dictionary's total frequency (the probability of a word is its
    /// frequency over the total).
    ln_total: f64,
}

static SEGMENTER: OnceLock<Segmenter> = OnceLock::new();

impl Segmenter {
    /// The process-wide segmenter (the dictionary is loaded on first use).
    pub(crate) fn get() -> &'static Segmenter {
        SEGMENTER.get_or_init(|| {
            let jieba = Jieba::new();
            let ln_total = total_frequency(&jieba).ln();
            Segmenter {
                jieba,
                table: table_for(Profile::from_steps(&[
                    Step::Invisible,
                    Step::Width,
                    Step::Case,
                    Step::T2s,
                    Step::Noise,
                    Step::Repeat,
                ])),
                ln_total,
            }
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

    /// Whether a word of `text` straddles the start or the end of the hit `start..end`
    /// (see the module's documentation). `term` is the rule's term as written, judged in
    /// place of the text's spelling of it; `None` judges the text as it is.
    pub(crate) fn straddles(
        &self,
        text: &str,
        start: usize,
        end: usize,
        term: Option<&str>,
    ) -> bool {
        self.straddled(text, start, end, term, false)
    }

    /// Whether the text's own best segmentation puts a word across the start or the end of
    /// `start..end`, however likely the hit would be whole: for hits that only a
    /// character-changing step found (是财 in 这是财富 is no 时时彩), where the text's words,
    /// not the term's, are what the poster wrote.
    pub(crate) fn splits_words(&self, text: &str, start: usize, end: usize) -> bool {
        self.straddled(text, start, end, None, true)
    }

    fn straddled(
        &self,
        text: &str,
        start: usize,
        end: usize,
        term: Option<&str>,
        strict: bool,
    ) -> bool {
        let mut scratch = Folded::default();
        let mut fold = |s: &str| {
            self.table.fold_into(s, &mut scratch);
            scratch.text().to_owned()
        };
        let before = fold(context_before(text, start));
        let after = fold(context_after(text, end));
        let middle = fold(term.unwrap_or(&text[start..end]));
        if middle.is_empty() {
            return false;
        }
        let window = format!("{before}{middle}{after}");
        let (s, e) = (before.len(), before.len() + middle.len());
        let best = self.jieba.cut(&window, false);
        let mut at = 0;
        let mut straddled = false;
        for word in &best {
            let (ws, we) = (at, at + word.len());
            straddled |= (ws < s && s < we) || (ws < e && e < we);
            at = we;
        }
        if !straddled || strict {
            return straddled;
        }
        let whole = self.ln_likelihood(&self.jieba.cut(&before, false))
            + self.ln_likelihood(&[middle.as_str()])
            + self.ln_likelihood(&self.jieba.cut(&after, false));
        self.ln_likelihood(&best) - whole > MARGIN_LN
    }

    /// Whether `text` (folded as the segmenter folds) is a word of the dictionary that is
    /// used: seen at least [`MIN_WORD_FREQUENCY`] times (博采, 62; not 搏彩, 3, which is how
    /// gambling ads spell 博彩).
    pub(crate) fn is_word(&self, text: &str) -> bool {
        let mut scratch = Folded::default();
        self.table.fold_into(text, &mut scratch);
        let word = scratch.text();
        self.jieba.has_word(word) && self.jieba.suggest_freq(word) >= MIN_WORD_FREQUENCY
    }

    /// Whether `c` is one of the most common words of the dictionary (了 是 的 时 去 它 见:
    /// about the 90 seen at least [`COMMON_CHAR_FREQUENCY`] times). A homophone or a
    /// look-alike that is such a char is chance, not an evasion (去时 is no 去死).
    pub(crate) fn is_common_char(&self, c: char) -> bool {
        let mut buf = [0u8; 4];
        let word = c.encode_utf8(&mut buf);
        self.jieba.has_word(word) && self.jieba.suggest_freq(word) >= COMMON_CHAR_FREQUENCY
    }

    /// ln of the probability jieba gives a sequence of words: each word's frequency (as
    /// jieba suggests it: a known word's own, else the likelihood of its best split) over
    /// the total.
    fn ln_likelihood(&self, words: &[&str]) -> f64 {
        words
            .iter()
            .map(|w| (self.jieba.suggest_freq(w).max(1) as f64).ln() - self.ln_total)
            .sum()
    }
}

/// The total frequency of jieba's dictionary, which jieba-rs does not expose: recovered
/// from `suggest_freq`, which for two known words that are not a word together gives
/// `f(a)·f(b)/total + 1` (是, 796,991 times in the default dictionary: the total comes
/// back within 0.01%). Falls back to the default dictionary's total.
fn total_frequency(jieba: &Jieba) -> f64 {
    const DEFAULT_TOTAL: f64 = 60_101_964.0;
    let f = jieba.suggest_freq("是") as f64;
    let pair = jieba.suggest_freq("是是") as f64;
    if jieba.has_word("是是") || !jieba.has_word("是") || pair < 2.0 {
        return DEFAULT_TOTAL;
    }
    f * f / (pair - 1.0)
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
        let at = |t: &str, m: &str| {
            let s = t.find(m).unwrap();
            (s, s + m.len())
        };
        let t = "这个平台独立运营";
        let (s, e) = at(t, "台独");
        assert!(seg.straddles(t, s, e, None));
        let t = "这种病毒品种";
        let (s, e) = at(t, "毒品");
        assert!(seg.straddles(t, s, e, None));
        let t = "推进一套现代化的管理";
        let (s, e) = at(t, "套现");
        assert!(seg.straddles(t, s, e, None));
        let t = "有人出售毒品。";
        let (s, e) = at(t, "毒品");
        assert!(!seg.straddles(t, s, e, None));
        let t = "有人出售毒 品";
        let (s, e) = at(t, "毒 品");
        assert!(
            !seg.straddles(t, s, e, None),
            "noise inside the hit is folded away"
        );
    }

    #[test]
    fn terms_the_dictionary_does_not_know_keep_their_hits() {
        let seg = Segmenter::get();
        let t = "怎么又有人在评论区发刷单返利？";
        let s = t.find("刷单返利").unwrap();
        assert!(!seg.straddles(t, s, s + "刷单返利".len(), None));
        let t = "发傻傻傻逼";
        let s = t.find("傻").unwrap();
        assert!(!seg.straddles(t, s, t.len(), Some("傻逼")));
        let t = "标题写着：陆合彩。";
        let s = t.find("陆").unwrap();
        assert!(!seg.straddles(t, s, s + "陆合彩".len(), Some("六合彩")));
    }

    #[test]
    fn the_dictionary_total_is_recovered() {
        let seg = Segmenter::get();
        let total = seg.ln_total.exp();
        assert!(
            (total - 60_101_964.0).abs() / 60_101_964.0 < 1e-3,
            "{total}"
        );
    }
}
