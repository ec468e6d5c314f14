//! Ids that only a cue word makes contact details: QQ numbers and WeChat ids.

use super::numbers::{mobile_with_prefix, Run};
use super::{is_separator, Find, Text, Wanted};
use crate::vocab::Detector;

/// Words that announce a QQ number (lower case, as folded).
const QQ_CUES: [&str; 6] = ["qq", "q号", "扣扣", "抠抠", "企鹅", "企鹅号"];

/// Words that announce a WeChat id: the name, its homophones and look-alikes, the Latin
/// abbreviations, and "add V" written with a plus or a heart.
const WECHAT_CUES: [&str; 20] = [
    "微信", "薇信", "威信", "维信", "徽信", "微芯", "v信", "vx", "wx", "weixin", "wechat", "加v",
    "加微", "+v", "➕v", "v❤", "v♥", "v♡", "v💗", "❤v",
];

/// At most this many chars between a cue and its id (号码是：).
const MAX_FILLER: usize = 6;

/// Chars that may stand between a cue and its id.
fn is_filler(c: char) -> bool {
    is_separator(c)
        || matches!(
            c,
            '号' | '码' | '是' | '为' | '群' | '账' | '搜' | '加' | '我' | '的'
        )
}

/// Whether cue `cue` stands at char `i` as a word: a Latin cue neither starts after a Latin
/// letter or digit nor ends before a Latin letter.
fn cue_at(text: &Text, i: usize, cue: &str) -> Option<usize> {
    if !text.starts_with(i, cue) {
        return None;
    }
    let len = cue.chars().count();
    let first = cue.chars().next()?;
    let last = cue.chars().next_back()?;
    if first.is_ascii_alphabetic() && text.before(i).is_ascii_alphanumeric() {
        return None;
    }
    if last.is_ascii_alphabetic() && text.c(i + len).is_ascii_alphabetic() {
        return None;
    }
    Some(i + len)
}

pub(super) fn find(text: &Text, runs: &[Run], w: &Wanted, out: &mut Vec<Find>) {
    let qq = w.has(Detector::Qq);
    let wechat = w.has(Detector::Wechat);
    if !(qq || wechat) {
        return;
    }
    let run_at = |i: usize| runs.iter().find(|r| r.start() == i);
    let mut i = 0;
    while i < text.len() {
        let mut next = i + 1;
        // Most chars start no cue: one look at the char before the cue lists.
        if !matches!(
            text.c(i),
            'q' | '扣'
                | '抠'
                | '企'
                | '微'
                | '薇'
                | '威'
                | '维'
                | '徽'
                | 'v'
                | 'w'
                | '加'
                | '+'
                | '➕'
                | '❤'
        ) {
            i = next;
            continue;
        }
        if qq {
            if let Some(end) = QQ_CUES.iter().rev().find_map(|c| cue_at(text, i, c)) {
                let (id, _) = skip_filler(text, end);
                if let Some(f) = run_at(id).and_then(|r| qq_number(text, r)) {
                    next = next.max(id);
                    out.push(f);
                }
            }
        }
        if wechat {
            if let Some(end) = WECHAT_CUES.iter().find_map(|c| cue_at(text, i, c)) {
                let (id, explicit) = skip_filler(text, end);
                let f = match run_at(id) {
                    Some(r) => wechat_phone(text, r),
                    None => wechat_id(text, id, explicit),
                };
                if let Some(f) = f {
                    next = next.max(id);
                    out.push(f);
                }
            }
        }
        i = next;
    }
}

/// The char index after the filler that follows a cue ending at `i`, and whether the
/// filler says an id follows (a colon, 号, 是).
fn skip_filler(text: &Text, mut i: usize) -> (usize, bool) {
    let mut explicit = false;
    for _ in 0..MAX_FILLER {
        let c = text.c(i);
        if !is_filler(c) {
            break;
        }
        explicit |= matches!(c, ':' | '号' | '是' | '=');
        i += 1;
    }
    (i, explicit)
}

/// A QQ number: the run's leading groups, 5–11 digits, not starting with 0.
fn qq_number(text: &Text, run: &Run) -> Option<Find> {
    let mut h = 0;
    while h < run.groups.len() && run.offsets[h + 1] <= 11 {
        h += 1;
    }
    let d = run.digits_of(0, h);
    if !(5..=11).contains(&d.len()) || d[0] == 0 {
        return None;
    }
    // 扣扣 12345元 is a price, not a number.
    let mut q = run.groups[h - 1].end;
    while text.c(q) == ' ' {
        q += 1;
    }
    if matches!(
        text.c(q),
        '元' | '块' | '万' | '%' | '年' | '月' | '日' | '岁'
    ) {
        return None;
    }
    Some(Find {
        detector: Detector::Qq,
        start: text.at(run.start()),
        end: text.at(run.groups[h - 1].end),
        digits: 0,
        noise: h > 1,
        shadowed_by: 0,
    })
}

/// A WeChat id that is a mobile number.
fn wechat_phone(text: &Text, run: &Run) -> Option<Find> {
    let h = (1..=run.groups.len()).find(|&h| mobile_with_prefix(run.digits_of(0, h)))?;
    Some(Find {
        detector: Detector::Wechat,
        start: text.at(run.start()),
        end: text.at(run.groups[h - 1].end),
        digits: 0,
        noise: h > 1,
        shadowed_by: 0,
    })
}

/// A WeChat id: a letter, then 5–19 letters, digits, `_` or `-`. A word of letters only
/// counts when the filler announced it (微信号：abcdef), so 微信 wechat is no id.
fn wechat_id(text: &Text, start: usize, explicit: bool) -> Option<Find> {
    if !text.c(start).is_ascii_lowercase() {
        return None;
    }
    let mut end = start;
    let mut marked = false;
    while matches!(text.c(end), 'a'..='z' | '0'..='9' | '_' | '-') {
        marked |= !text.c(end).is_ascii_lowercase();
        end += 1;
    }
    // A trailing dash is punctuation.
    while end > start && text.c(end - 1) == '-' {
        end -= 1;
    }
    let len = end - start;
    if !(6..=20).contains(&len) || !(marked || explicit) {
        return None;
    }
    Some(Find {
        detector: Detector::Wechat,
        start: text.at(start),
        end: text.at(end),
        digits: 0,
        noise: false,
        shadowed_by: 0,
    })
}
