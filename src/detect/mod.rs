//! Built-in detectors (`detect = [...]` in a rule): contact details and personal data —
//! mobile numbers, QQ and WeChat ids, links, e-mail addresses, IPv4 addresses, ID-card and
//! bank-card numbers, long runs of digits — read through the usual disguises.
//!
//! The detectors read the text as a rule's fold leaves it (`invisible`, `width`, `case`,
//! `variants`, `t2s`): ①③⑧, 壹叁捌, １３８ and ¹³⁸ are all digits there. With `noise` they also
//! skip the spaces, dashes and symbols put between digits (a few at a time) and read the
//! spelled-out dots and at-signs of links and addresses (点, 。, dot, (.), #, (at), 艾特).
//! Every find is validated where the format allows it (mobile prefixes, GB 11643, Luhn, the
//! Public Suffix List, octet ranges) and checked against the numbers that are not contact
//! details (dates, times, prices, amounts, versions, timestamps, ISBNs, order numbers).
//!
//! This module finds, in offsets of the folded text it is given; it does not fold, does not
//! know rules, posts or policy, and never maps offsets back (the matcher does both).

mod cues;
mod hosts;
mod numbers;

use crate::normalize::is_break;
use crate::vocab::Detector;

/// What a group of rules wants detected in one fold of the text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Wanted {
    /// A set of [`Detector::bit`]s.
    pub(crate) set: u16,
    /// The smallest `digits_min` of the rules that want `digits`.
    pub(crate) digits_min: u32,
    /// Whether separators between digits and spelled-out dots and at-signs are read (the
    /// rules' `noise` step).
    pub(crate) noise: bool,
}

impl Wanted {
    fn has(&self, d: Detector) -> bool {
        self.set & d.bit() != 0
    }
}

/// A detected item, in byte offsets of the folded text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Find {
    pub(crate) detector: Detector,
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// The digits a `digits` find has (0 for the others).
    pub(crate) digits: u32,
    /// Separators were skipped or a spelled-out dot or at-sign was read (`noise`).
    pub(crate) noise: bool,
    /// For a `digits` find: the detectors that found a more specific item in the same
    /// number (a rule that has one of them reports that item, not the digits too).
    pub(crate) shadowed_by: u16,
}

/// A char that some style of numeral makes a digit once folded: ASCII and full-width
/// digits, Chinese and financial numerals, and the circled, parenthesised, full-stop,
/// dingbat, superscript and subscript forms.
const fn is_numeral(c: char) -> bool {
    matches!(c,
        '0'..='9' | '０'..='９' | '¹' | '²' | '³' | '\u{2070}'..='\u{2089}'
        | '\u{2460}'..='\u{24ff}' | '\u{2776}'..='\u{2793}' | '\u{3220}'..='\u{3229}'
        | '\u{3280}'..='\u{3289}' | '\u{1d7ce}'..='\u{1d7ff}'
        | '\u{2160}'..='\u{2168}' | '\u{2170}'..='\u{2178}'
        | '〇' | '零' | '一' | '二' | '三' | '四' | '五' | '六' | '七' | '八' | '九'
        | '壹' | '贰' | '貳' | '叁' | '參' | '肆' | '伍' | '陆' | '陸' | '柒' | '捌' | '玖' | '幺')
}

/// `text` with the Roman numerals one to nine (Ⅰ–Ⅸ, ⅰ–ⅸ) written as full-width digits, which
/// have the same length in UTF-8: folding turns them into digits, where it would turn the
/// numerals into Latin letters (Ⅳ → iv), and every offset still points into `text`.
pub(crate) fn roman_as_digits(text: &str) -> std::borrow::Cow<'_, str> {
    let roman = |c: char| match c {
        '\u{2160}'..='\u{2168}' => Some(c as u32 - 0x2160 + 1),
        '\u{2170}'..='\u{2178}' => Some(c as u32 - 0x2170 + 1),
        _ => None,
    };
    if !text.chars().any(|c| roman(c).is_some()) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match roman(c).and_then(|n| char::from_u32('０' as u32 + n)) {
            Some(d) => out.push(d),
            None => out.push(c),
        }
    }
    debug_assert_eq!(out.len(), text.len());
    std::borrow::Cow::Owned(out)
}

/// A char that reads as a dot in a host or an address, plain or spelled out.
const fn is_dot_like(c: char) -> bool {
    matches!(c, '.' | '．' | '。' | '｡' | '点' | '點')
}

/// The Han chars that end a QQ or WeChat cue pair in [`worth_scanning`] (keep the two
/// lists together).
const fn ends_a_cue(c: char) -> bool {
    matches!(c, '号' | '扣' | '抠' | '鹅' | '鵝' | '信' | '芯' | '微')
}

/// The CJK Unified Ideographs block, where almost every char of Chinese text lies.
const HAN: std::ops::Range<u32> = 0x4E00..0xA000;

/// The chars of [`HAN`] that [`worth_scanning`] must look at one by one: numerals, dots
/// and the ends of cue pairs. Every other char there only ends a run of numerals.
static HAN_OF_NOTE: [u64; 328] = {
    let mut set = [0u64; 328];
    let mut cp = HAN.start;
    while cp < HAN.end {
        if let Some(c) = char::from_u32(cp) {
            if is_numeral(c) || is_dot_like(c) || ends_a_cue(c) {
                let k = (cp - HAN.start) as usize;
                set[k / 64] |= 1 << (k % 64);
            }
        }
        cp += 1;
    }
    set
};

/// The cheap look at the original text that decides whether folding it for the detectors
/// can find anything, in one pass: the longest run of numerals (the number detectors need
/// 11 and more, a QQ number 5), a cue character for QQ and WeChat, a dot between a letter or
/// digit and a Latin letter for links and addresses, a dot between numerals for IPv4. Most
/// posts have none of these, Chinese numerals in words (一年级, 九点) included, and are not
/// folded again.
pub(crate) fn worth_scanning(text: &str, w: &Wanted) -> bool {
    let (mut run, mut gap, mut longest, mut latin) = (0u32, 0u32, 0u32, 0u32);
    let mut numerals = 0u32;
    // Dashes and low lines, which a WeChat id may hold (as may their forms that width folds).
    let mut id_marks = 0u32;
    let (mut qq_cue, mut wechat_cue) = (false, false);
    let mut last = '\0';
    let (mut host_dot, mut number_dot) = (false, false);
    // The last char that is not a space, and whether a dot follows it.
    let (mut prev, mut dot_after_alnum, mut dot_after_numeral) = ('\0', false, false);
    for c in text.chars() {
        let cp = c as u32;
        if HAN.contains(&cp) {
            let k = (cp - HAN.start) as usize;
            if HAN_OF_NOTE[k / 64] & (1 << (k % 64)) == 0 {
                // What the full look below does with such a char, in short.
                (run, gap, last, prev) = (0, 0, c, c);
                (dot_after_alnum, dot_after_numeral) = (false, false);
                continue;
            }
        }
        if is_invisible(c) {
            continue;
        }
        let numeral = is_numeral(c);
        let letter = c.is_ascii_alphabetic() || matches!(c, 'Ａ'..='Ｚ' | 'ａ'..='ｚ');
        if numeral {
            numerals += 1;
            run += 1;
            gap = 0;
            longest = longest.max(run);
            number_dot |= dot_after_numeral;
        } else if c.is_whitespace() || !(c.is_alphanumeric() || c.is_control() || is_break(c)) {
            gap += 1;
            if gap > 3 {
                run = 0;
            }
        } else {
            run = 0;
            gap = 0;
        }
        if letter {
            latin += 1;
            host_dot |= dot_after_alnum;
        }
        if matches!(
            c,
            '-' | '_' | '\u{fe33}' | '\u{fe34}' | '\u{fe4d}'
                ..='\u{fe4f}' | '\u{fe63}' | '\u{ff0d}' | '\u{ff3f}'
        ) {
            id_marks += 1;
        }
        // Cues are pairs of chars (QQ, Q号, 扣扣, 企鹅; 微信, VX, wx, 加V, V❤, we…): the
        // look needs the pair, not a common char of it (思维, 微博, 权威 are no cue). A Han
        // char that ends a pair must be in `ends_a_cue`.
        let lower = |c: char| match c {
            'Ａ'..='Ｚ' => char::from_u32(c as u32 - 'Ａ' as u32 + 'a' as u32).unwrap_or(c),
            'ａ'..='ｚ' => char::from_u32(c as u32 - 'ａ' as u32 + 'a' as u32).unwrap_or(c),
            _ => c.to_ascii_lowercase(),
        };
        match (lower(last), lower(c)) {
            ('q', 'q' | '号') | ('扣', '扣') | ('抠', '抠') | ('企', '鹅' | '鵝') => {
                qq_cue = true
            }
            ('微' | '薇' | '威' | '维' | '徽' | 'v', '信' | '芯')
            | ('v' | 'w', 'x' | 'e')
            | ('+' | '＋' | '加' | '➕', 'v' | '微')
            | ('v', '❤' | '♥' | '♡' | '💗')
            | ('❤', 'v') => wechat_cue = true,
            _ => {}
        }
        last = c;
        if is_dot_like(c) {
            dot_after_alnum = prev.is_ascii_alphanumeric()
                || matches!(prev, 'Ａ'..='Ｚ' | 'ａ'..='ｚ')
                || is_numeral(prev);
            dot_after_numeral = is_numeral(prev);
        } else if !(c == ' ' || closing(c)) {
            dot_after_alnum = false;
            dot_after_numeral = false;
        }
        if !(c == ' ' || closing(c)) {
            prev = c;
        }
    }
    let spelled_dot = || latin >= 3 && w.noise && text.to_ascii_lowercase().contains("dot");
    let need = |d: Detector, n: u32| w.has(d) && longest >= n;
    need(Detector::Phone, 11)
        || need(Detector::IdCard, 17)
        || need(Detector::BankCard, 16)
        || need(Detector::Digits, w.digits_min)
        || (w.has(Detector::Ipv4) && number_dot)
        || (w.has(Detector::Qq) && qq_cue && longest >= 5)
        || (w.has(Detector::Wechat) && wechat_cue && latin + numerals + id_marks >= 6)
        || ((w.has(Detector::Url) || w.has(Detector::Email))
            && latin >= 2
            && (host_dot || spelled_dot()))
}

/// The invisible chars the `invisible` step drops (a superset is fine: the look must never
/// count one as a separator where the detectors will not see it).
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{ad}' | '\u{34f}' | '\u{61c}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}'
        | '\u{180b}'..='\u{180f}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}' | '\u{2800}' | '\u{3164}' | '\u{fe00}'..='\u{fe0f}'
        | '\u{feff}' | '\u{ffa0}' | '\u{fff0}'..='\u{fff8}' | '\u{1bca0}'..='\u{1bca3}'
        | '\u{1d173}'..='\u{1d17a}' | '\u{e0000}'..='\u{e0fff}')
}

/// A bracket that may stand around a spelled-out dot: (.) [.] 【.】.
fn closing(c: char) -> bool {
    matches!(
        c,
        '(' | ')' | '[' | ']' | '{' | '}' | '<' | '>' | '【' | '】' | '「' | '」' | '（' | '）'
    )
}

/// Appends every find of the wanted detectors in `folded` to `out`.
pub(crate) fn find(folded: &str, w: &Wanted, out: &mut Vec<Find>) {
    let first = out.len();
    let text = Text::new(folded);
    let runs = numbers::runs(&text, w.noise);
    numbers::find(&text, &runs, w, out);
    cues::find(&text, &runs, w, out);
    hosts::find(&text, w, out);
    // A number that another detector read as something more specific.
    for i in first..out.len() {
        if out[i].detector != Detector::Digits {
            continue;
        }
        let (s, e) = (out[i].start, out[i].end);
        out[i].shadowed_by = out[first..]
            .iter()
            .filter(|f| f.detector != Detector::Digits && f.start < e && s < f.end)
            .fold(0, |m, f| m | f.detector.bit());
    }
}

/// The folded text as chars with their byte offsets, lower-cased (ASCII only, so offsets
/// stay the same).
pub(crate) struct Text {
    lower: String,
    /// (byte offset, char) of every char, and a sentinel at the end.
    chars: Vec<(usize, char)>,
}

impl Text {
    fn new(folded: &str) -> Text {
        let lower = folded.to_ascii_lowercase();
        let mut chars: Vec<(usize, char)> = lower.char_indices().collect();
        chars.push((lower.len(), '\0'));
        Text { lower, chars }
    }

    /// Number of chars.
    fn len(&self) -> usize {
        self.chars.len() - 1
    }

    /// The char at index `i` (`'\0'` past the end).
    fn c(&self, i: usize) -> char {
        self.chars.get(i).map_or('\0', |x| x.1)
    }

    /// The char before index `i` (`'\0'` at the start).
    fn before(&self, i: usize) -> char {
        if i == 0 {
            '\0'
        } else {
            self.c(i - 1)
        }
    }

    /// Byte offset of char index `i`.
    fn at(&self, i: usize) -> usize {
        self.chars[i.min(self.len())].0
    }

    /// Whether the text at char `i` starts with `s` (lower case).
    fn starts_with(&self, i: usize, s: &str) -> bool {
        self.lower[self.at(i)..].starts_with(s)
    }

    /// Up to `n` chars before char `i`, as text.
    fn window_before(&self, i: usize, n: usize) -> &str {
        &self.lower[self.at(i.saturating_sub(n))..self.at(i)]
    }
}

/// The value of a digit of the folded text (幺 is 1 when numbers are read aloud).
fn digit(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        '幺' => Some(1),
        _ => None,
    }
}

/// A char that may stand between the digits of one number (with `noise`): spaces and
/// symbols, but never a clause break, a letter, a digit or an at-sign.
fn is_separator(c: char) -> bool {
    // Width folding turns the clause breaks ，！？； into ASCII: those end a number too.
    if c == '\0' || is_break(c) || matches!(c, '@' | '、' | ',' | ';' | '!' | '?') {
        return false;
    }
    c.is_whitespace() || !(c.is_alphanumeric() || c.is_control())
}

#[cfg(test)]
mod tests;
