//! Numbers without a cue: mobile numbers, ID-card and bank-card numbers, long digit runs;
//! and the runs of digits the cue-led detectors read too.

use std::sync::OnceLock;

use regex::Regex;

use super::{digit, is_separator, Find, Text, Wanted};
use crate::vocab::Detector;

/// At most this many separators between two digits of one number (with `noise`).
const MAX_GAP: usize = 3;

/// Digits with nothing between them: char indices `start..end`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Group {
    pub(super) start: usize,
    pub(super) end: usize,
}

/// Groups of digits joined by separators: one number, as far as the text shows.
#[derive(Debug, Default)]
pub(super) struct Run {
    pub(super) groups: Vec<Group>,
    /// Every digit's value, in order.
    pub(super) digits: Vec<u8>,
    /// For group `g`, its first digit is `digits[offsets[g]]`; one more entry at the end.
    pub(super) offsets: Vec<usize>,
    /// The run written the way a reader writes numbers: digits, and between two groups one
    /// char for what separates them (' ' for spaces only, else the first other symbol).
    pub(super) shape: String,
}

impl Run {
    pub(super) fn start(&self) -> usize {
        self.groups[0].start
    }

    pub(super) fn end(&self) -> usize {
        self.groups[self.groups.len() - 1].end
    }

    /// The char `shape` shows between group `k` and the next.
    fn shape_separator(&self, k: usize) -> char {
        // In `shape`, group k's separator follows its digits and the k separators before.
        self.shape
            .chars()
            .nth(self.offsets[k + 1] + k)
            .unwrap_or(' ')
    }

    /// Digits of groups `g..h`.
    pub(super) fn digits_of(&self, g: usize, h: usize) -> &[u8] {
        &self.digits[self.offsets[g]..self.offsets[h]]
    }

    /// The separator chars between group `g` and the next.
    fn separator(&self, text: &Text, g: usize) -> String {
        (self.groups[g].end..self.groups[g + 1].start)
            .map(|i| text.c(i))
            .collect()
    }
}

/// The runs of digits of `text`. Without `noise` only a single space or dash may stand
/// between two groups (the way numbers are written); with it, up to [`MAX_GAP`] separators.
pub(super) fn runs(text: &Text, noise: bool) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut run = Run::default();
    let mut i = 0;
    let n = text.len();
    while i < n {
        if digit(text.c(i)).is_none() {
            i += 1;
            continue;
        }
        let start = i;
        while i < n && digit(text.c(i)).is_some() {
            i += 1;
        }
        push_group(text, &mut run, Group { start, end: i });
        // Is the next group part of this run?
        let mut j = i;
        while j < n && j - i < MAX_GAP && is_separator(text.c(j)) {
            j += 1;
        }
        let gap = j - i;
        let joins = gap > 0
            && digit(text.c(j)).is_some()
            && (noise || (gap == 1 && matches!(text.c(i), ' ' | '-')));
        if joins {
            let sep: String = (i..j).map(|k| text.c(k)).collect();
            let shown = sep.chars().find(|c| !c.is_whitespace()).unwrap_or(' ');
            run.shape.push(shown);
            i = j;
        } else {
            runs.push(std::mem::take(&mut run));
        }
    }
    if !run.groups.is_empty() {
        runs.push(run);
    }
    runs
}

fn push_group(text: &Text, run: &mut Run, g: Group) {
    if run.offsets.is_empty() {
        run.offsets.push(0);
    }
    for k in g.start..g.end {
        let d = digit(text.c(k)).unwrap_or(0);
        run.digits.push(d);
        run.shape.push((b'0' + d) as char);
    }
    run.offsets.push(run.digits.len());
    run.groups.push(g);
}

/// Words before a number that say it is not a contact detail or personal data: order,
/// tracking, serial and model numbers, ISBNs, postcodes, versions, amounts.
const NOT_CONTACT_CUES: [&str; 36] = [
    "订单",
    "单号",
    "编号",
    "流水",
    "运单",
    "快递",
    "物流",
    "工号",
    "学号",
    "批号",
    "型号",
    "货号",
    "序列号",
    "序号",
    "isbn",
    "书号",
    "issn",
    "邮编",
    "邮政编码",
    "发票",
    "合同",
    "车次",
    "航班",
    "条码",
    "交易号",
    "票号",
    "案号",
    "考号",
    "准考证",
    "版本",
    "ver",
    "人民币",
    "rmb",
    "金额",
    "价格",
    "order",
];

/// Chars right after a number that make it an amount, a quantity, a date or a time.
fn is_unit(c: char) -> bool {
    matches!(
        c,
        '元' | '块'
            | '万'
            | '亿'
            | '千'
            | '百'
            | '%'
            | '‰'
            | '年'
            | '月'
            | '日'
            | '时'
            | '分'
            | '秒'
            | '岁'
            | '倍'
            | '吨'
            | '斤'
            | '克'
            | '米'
            | '亩'
            | '股'
            | '届'
            | '期'
            | '次'
            | '个'
            | '人'
            | '张'
            | '条'
            | '篇'
            | '页'
            | '位'
            | '名'
            | '户'
            | '台'
            | '辆'
            | '件'
            | '套'
            | '度'
            | '号'
    )
}

fn traps() -> &'static [Regex; 5] {
    static TRAPS: OnceLock<[Regex; 5]> = OnceLock::new();
    TRAPS.get_or_init(|| {
        let re = |p: &str| Regex::new(p).expect("trap patterns compile");
        [
            // Dates, with or without a time.
            re(r"^(?:19|20)\d\d[-/. ]\d{1,2}[-/. ]\d{1,2}(?:[ -]\d{1,2}:\d\d(?::\d\d)?)?$"),
            re(r"^\d{1,2}[-/.]\d{1,2}[-/.](?:19|20)\d\d$"),
            re(r"^(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])$"),
            // Amounts with thousands separators, prices.
            re(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$"),
            re(r"^\d+\.\d{1,2}$"),
        ]
    })
}

/// Whether the number of `run` is something else by its context or its shape; checked for
/// the detectors that have no cue of their own.
fn is_trap(text: &Text, run: &Run) -> bool {
    let (s, e) = (run.start(), run.end());
    let before = text.window_before(s, 10);
    if NOT_CONTACT_CUES.iter().any(|c| before.contains(c)) {
        return true;
    }
    // A currency sign, or a version's v, right before.
    let mut p = s;
    while p > 0 && text.c(p - 1) == ' ' {
        p -= 1;
    }
    let prev = text.before(p);
    if matches!(prev, '¥' | '$' | '€' | '£' | '₩' | '￥') {
        return true;
    }
    if prev == 'v' && run.shape.contains('.') {
        return true;
    }
    let mut q = e;
    while text.c(q) == ' ' {
        q += 1;
    }
    if is_unit(text.c(q)) {
        return true;
    }
    traps().iter().any(|t| t.is_match(&run.shape))
}

/// A separator that makes the digits around it one decimal figure or list of figures.
fn is_decimal_separator(c: char) -> bool {
    matches!(c, '.' | '·' | ',' | ':')
}

/// Whether `d` is a mainland mobile number: 11 digits, 1[3-9]….
fn is_mobile(d: &[u8]) -> bool {
    d.len() == 11 && d[0] == 1 && (3..=9).contains(&d[1])
}

/// The mobile number at the start of `d`, with its country code: digits it takes.
pub(super) fn mobile_with_prefix(d: &[u8]) -> bool {
    is_mobile(d)
        || (d.len() == 13 && d[..2] == [8, 6] && is_mobile(&d[2..]))
        || (d.len() == 14 && d[..4] == [0, 0, 8, 6] && is_mobile(&d[4..]))
}

/// GB 11643: 17 digits, a check character (0–9 or X, here 10), a birth date that exists.
fn is_id_card(d: &[u8], check: u8) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    if d.len() != 17 || !(1..=8).contains(&d[0]) {
        return false;
    }
    let num = |r: std::ops::Range<usize>| d[r].iter().fold(0u32, |n, &x| n * 10 + u32::from(x));
    let (year, month, day) = (num(6..10), num(10..12), num(12..14));
    let Ok(date) = jiff::civil::Date::new(year as i16, month as i8, day as i8) else {
        return false;
    };
    if !(1900..=2100).contains(&year) || date > jiff::Zoned::now().date() {
        return false;
    }
    let sum: u32 = d.iter().zip(WEIGHTS).map(|(&x, w)| u32::from(x) * w).sum();
    let expected = (12 - (sum % 11)) % 11;
    u32::from(check) == expected
}

/// The Luhn check of bank cards.
fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = u32::from(x);
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// An ISBN-13 (978/979 and a valid check digit): a book, not a number to hide.
fn is_isbn13(d: &[u8]) -> bool {
    if d.len() != 13 || d[..2] != [9, 7] || !matches!(d[2], 8 | 9) {
        return false;
    }
    let sum: u32 = d
        .iter()
        .enumerate()
        .map(|(i, &x)| u32::from(x) * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    sum.is_multiple_of(10)
}

/// A Unix time in seconds or milliseconds between 2000 and 2038.
fn is_timestamp(d: &[u8]) -> bool {
    let n = d.iter().fold(0u64, |n, &x| n * 10 + u64::from(x));
    match d.len() {
        10 => (946_684_800..=2_147_483_647).contains(&n),
        13 => (946_684_800_000..=2_147_483_647_999).contains(&n),
        _ => false,
    }
}

/// Whether the separators of groups `g..h` of `run` hold anything but single spaces or
/// dashes (the way numbers are written), i.e. noise was skipped.
fn skipped_noise(text: &Text, run: &Run, g: usize, h: usize) -> bool {
    (g..h.saturating_sub(1)).any(|k| !matches!(run.separator(text, k).as_str(), " " | "-"))
}

pub(super) fn find(text: &Text, runs: &[Run], w: &Wanted, out: &mut Vec<Find>) {
    let phone = w.has(Detector::Phone);
    let id = w.has(Detector::IdCard);
    let bank = w.has(Detector::BankCard);
    let digits = w.has(Detector::Digits);
    let shortest = [
        (phone, 11),
        (bank, 16),
        (id, 17),
        (digits, w.digits_min as usize),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|&(_, n)| n)
    .min();
    let Some(shortest) = shortest else {
        return;
    };
    for run in runs {
        if run.digits.len() < shortest || is_trap(text, run) {
            continue;
        }
        let find = |detector, g: usize, h: usize, end: usize, digits: u32| Find {
            detector,
            start: text.at(run.groups[g].start),
            end: text.at(end),
            digits,
            noise: skipped_noise(text, run, g, h),
            shadowed_by: 0,
        };
        let n = run.groups.len();
        let mut g = 0;
        while g < n {
            // The finds that start at group `g`: the first mobile and ID-card number, the
            // longest bank card; a clock time or a thousands separator inside is none.
            let mut found: Vec<Find> = Vec::new();
            let mut bank_card = None;
            let mut next = g + 1;
            // A number inside a dotted or comma-separated sequence (a table of figures)
            // does not start there.
            if g > 0 && is_decimal_separator(run.shape_separator(g - 1)) {
                g += 1;
                continue;
            }
            for h in g + 1..=n {
                if h > g + 1 && matches!(run.shape_separator(h - 2), ':' | ',') {
                    break;
                }
                let d = run.digits_of(g, h);
                if d.len() > 19 {
                    break;
                }
                if h < n && is_decimal_separator(run.shape_separator(h - 1)) {
                    continue;
                }
                let end = run.groups[h - 1].end;
                // Bank-card and ID-card numbers are written plain or grouped by spaces or
                // dashes; a mobile number with dots between its digits is grouped as one.
                let plain = (g..h - 1).all(|k| matches!(run.shape_separator(k), ' ' | '-'));
                let dotted = (g..h - 1).any(|k| is_decimal_separator(run.shape_separator(k)));
                let phone_grouped = !dotted || {
                    let sizes: Vec<usize> = (g..h)
                        .map(|k| run.offsets[k + 1] - run.offsets[k])
                        .collect();
                    sizes.iter().all(|&n| n == 1)
                        || matches!(
                            sizes.as_slice(),
                            [3, 4, 4] | [3, 8] | [2, 3, 4, 4] | [4, 3, 4]
                        )
                };
                let (id, bank) = (id && plain, bank && plain);
                if phone && phone_grouped && mobile_with_prefix(d) && found.is_empty() {
                    let mut f = find(Detector::Phone, g, h, end, 0);
                    if d.len() == 13 && text.before(run.groups[g].start) == '+' {
                        f.start = text.at(run.groups[g].start - 1);
                    }
                    found.push(f);
                    next = next.max(h);
                }
                if id && d.len() == 18 && is_id_card(&d[..17], d[17]) {
                    found.push(find(Detector::IdCard, g, h, end, 0));
                    next = next.max(h);
                }
                if id && d.len() == 17 && text.c(end) == 'x' && is_id_card(d, 10) {
                    found.push(find(Detector::IdCard, g, h, end + 1, 0));
                    next = next.max(h);
                }
                if bank && (16..=19).contains(&d.len()) && d[0] != 0 && luhn(d) {
                    bank_card = Some((h, find(Detector::BankCard, g, h, end, 0)));
                }
            }
            if let Some((h, f)) = bank_card {
                found.push(f);
                next = next.max(h);
            }
            if found.is_empty() {
                g += 1;
            } else {
                out.append(&mut found);
                g = next;
            }
        }
        if digits
            && run.digits.len() >= w.digits_min as usize
            && !run.shape.contains(':')
            && !(n == 1 && is_timestamp(&run.digits))
            && !is_isbn13(&run.digits)
        {
            out.push(find(
                Detector::Digits,
                0,
                n,
                run.end(),
                run.digits.len() as u32,
            ));
        }
    }
}

#[cfg(test)]
pub(super) fn check_id_card(s: &str) -> bool {
    let d: Vec<u8> = s
        .bytes()
        .map(|b| if b == b'X' { 10 } else { b - b'0' })
        .collect();
    d.len() == 18 && is_id_card(&d[..17], d[17])
}

#[cfg(test)]
pub(super) fn check_luhn(s: &str) -> bool {
    luhn(&s.bytes().map(|b| b - b'0').collect::<Vec<_>>())
}
