//! `homophone`: Han characters compared by their toneless pinyin syllable (堵博 = 赌博);
//! `near_homophone`: by that syllable with the usual confusions merged (z/zh, c/ch, s/sh,
//! n/l, an/ang, en/eng, in/ing: 后果资负 = 后果自负, 赌 and 度 stay apart by tone only).
//!
//! Readings come from the `pinyin` crate (mozillazg's pinyin-data, drawn from Unihan's
//! readings). Each Han character folds to the representative of the syllable of its first
//! (most common) reading; a term is also spelled with every reading of its polyphonic
//! characters, so a text char is compared by its first reading and a term's by all.

use std::collections::HashMap;

use pinyin::{ToPinyin, ToPinyinMulti};

/// At most this many spellings of a term by the readings of its polyphonic characters.
const MAX_FORMS: usize = 16;

/// The Han ranges with readings: the basic block first, so representatives come from it.
const RANGES: [(u32, u32); 3] = [(0x4E00, 0xA000), (0x3400, 0x4DC0), (0x20000, 0x2FA20)];

/// The position of `c` in GB2312 (its two-byte GBK code when both bytes are in GB2312's
/// range), if it is there.
fn gb2312_rank(c: char) -> Option<u32> {
    let mut buf = [0u8; 4];
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(c.encode_utf8(&mut buf));
    match (&*bytes, unmappable) {
        (&[a @ 0xB0..=0xF7, b @ 0xA1..=0xFE], false) => Some(u32::from(a) << 8 | u32::from(b)),
        _ => None,
    }
}

fn syllable(c: char) -> Option<&'static str> {
    c.to_pinyin().map(|p| p.plain())
}

/// The homophone classes of every Han char with a reading.
pub(crate) struct Homophones {
    /// A char → the representative of its first syllable.
    of_char: HashMap<char, char>,
    /// A toneless syllable → its representative.
    of_syllable: HashMap<&'static str, char>,
    /// A char → the representative of its first syllable's near class (`near_key`).
    near_of_char: HashMap<char, char>,
}

/// A syllable with the confusions of `near_homophone` merged: zh, ch, sh → z, c, s; an
/// initial n → l; a final -ng after a, e or i → -n (ong and iong stay).
fn near_key(s: &str) -> String {
    let mut k = s.to_owned();
    for (from, to) in [("zh", "z"), ("ch", "c"), ("sh", "s")] {
        if k.starts_with(from) {
            k.replace_range(..2, to);
        }
    }
    if k.len() > 1 && k.starts_with('n') && !k.starts_with("ng") {
        k.replace_range(..1, "l");
    }
    if k.len() > 2 && k.ends_with("ng") && !k.ends_with("ong") {
        k.pop();
    }
    k
}

impl Homophones {
    /// Builds the classes. The representative of a syllable is, among the chars whose
    /// first reading it is and that `keep` accepts (chars another step folds, such as the
    /// numeral 一 or a traditional form, are never representatives, so folding stays
    /// idempotent), the first in GB2312's order (its first level holds the 3,755 most
    /// common characters: `shenhe check` shows a readable fold), else the first by code
    /// point.
    pub(crate) fn build(keep: impl Fn(char) -> bool) -> Homophones {
        let mut best: HashMap<&'static str, (u32, char)> = HashMap::new();
        let mut chars = Vec::new();
        for (lo, hi) in RANGES {
            for c in (lo..hi).filter_map(char::from_u32) {
                if let Some(s) = syllable(c) {
                    if keep(c) {
                        let rank = gb2312_rank(c).unwrap_or(0x1_0000 + c as u32);
                        let e = best.entry(s).or_insert((rank, c));
                        if rank < e.0 {
                            *e = (rank, c);
                        }
                    }
                    chars.push((c, s));
                }
            }
        }
        // A near class's representative: the best of its syllables' representatives.
        let mut near_best: HashMap<String, (u32, char)> = HashMap::new();
        for (s, &(rank, c)) in &best {
            let e = near_best.entry(near_key(s)).or_insert((rank, c));
            if rank < e.0 {
                *e = (rank, c);
            }
        }
        let near_of_char = chars
            .iter()
            .filter_map(|&(c, s)| Some((c, near_best.get(&near_key(s))?.1)))
            .collect();
        let of_syllable: HashMap<&'static str, char> =
            best.into_iter().map(|(s, (_, c))| (s, c)).collect();
        let of_char = chars
            .into_iter()
            .filter_map(|(c, s)| Some((c, *of_syllable.get(s)?)))
            .collect();
        Homophones {
            of_char,
            of_syllable,
            near_of_char,
        }
    }

    /// The representative of `c`'s first syllable's near class.
    pub(crate) fn near(&self, c: char) -> Option<char> {
        self.near_of_char.get(&c).copied()
    }

    /// The representative of `c`'s first syllable.
    pub(crate) fn get(&self, c: char) -> Option<char> {
        self.of_char.get(&c).copied()
    }

    /// The term (already folded by the other steps) spelled by every mix of its
    /// characters' readings, each as the representative of that reading's syllable; at
    /// most [`MAX_FORMS`].
    pub(crate) fn forms(&self, term: &str) -> Vec<String> {
        let mut acc = vec![String::new()];
        for c in term.chars() {
            let mut options: Vec<char> = Vec::new();
            for p in c.to_pinyin_multi().into_iter().flatten() {
                if let Some(&r) = self.of_syllable.get(p.plain()) {
                    if !options.contains(&r) {
                        options.push(r);
                    }
                }
            }
            if options.is_empty() {
                options.push(self.get(c).unwrap_or(c));
            }
            acc = acc
                .iter()
                .flat_map(|prefix| options.iter().map(move |r| format!("{prefix}{r}")))
                .take(MAX_FORMS)
                .collect();
        }
        acc
    }
}
