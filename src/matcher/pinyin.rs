//! Pinyin spellings of a term, from the `pinyin` crate's readings.
//!
//! Only terms are spelled out; text is never turned into pinyin (读博 is not 赌博).

use pinyin::ToPinyinMulti;

/// At most this many spellings per term (mixes of hanzi and syllables, heteronyms).
const MAX_SPELLINGS: usize = 64;

/// Every reading of each char of `term` (toneless, or with the tone number after the
/// syllable), or `None` when a char has no pinyin.
fn readings(term: &str, tone_numbers: bool) -> Option<Vec<Vec<String>>> {
    let mut out = Vec::new();
    for multi in term.to_pinyin_multi() {
        let multi = multi?;
        let mut list: Vec<String> = multi
            .into_iter()
            .map(|p| {
                if tone_numbers {
                    p.with_tone_num_end().to_owned()
                } else {
                    p.plain().to_owned()
                }
            })
            .collect();
        list.dedup();
        if list.is_empty() {
            return None;
        }
        out.push(list);
    }
    Some(out)
}

/// The term written with some or all of its chars as pinyin syllables (赌博 → dubo, du博,
/// 赌bo), never all hanzi (that is the term itself). Empty when a char has no reading.
pub(crate) fn spellings(term: &str) -> Vec<String> {
    let Some(readings) = readings(term, false) else {
        return Vec::new();
    };
    let chars: Vec<char> = term.chars().collect();
    let mut acc: Vec<(String, bool)> = vec![(String::new(), false)];
    for (c, list) in chars.iter().zip(&readings) {
        let mut next = Vec::new();
        for (prefix, has_pinyin) in &acc {
            let mut keep = prefix.clone();
            keep.push(*c);
            next.push((keep, *has_pinyin));
            for r in list {
                next.push((format!("{prefix}{r}"), true));
            }
            if next.len() > MAX_SPELLINGS * 4 {
                break;
            }
        }
        acc = next;
    }
    // Prefer full spellings: they are what posters type.
    acc.sort_by_key(|(s, _)| s.chars().filter(|c| !c.is_ascii()).count());
    acc.into_iter()
        .filter(|(_, p)| *p)
        .map(|(s, _)| s)
        .take(MAX_SPELLINGS)
        .collect()
}

/// The term in syllables with tone numbers, for every mix of readings (赌博 → du3bo2):
/// tone marks need no spelling of their own (`variants` folds dùbó to dubo).
pub(crate) fn tone_numbers(term: &str) -> Vec<String> {
    let Some(readings) = readings(term, true) else {
        return Vec::new();
    };
    let mut acc = vec![String::new()];
    for list in &readings {
        acc = acc
            .iter()
            .flat_map(|prefix| list.iter().map(move |r| format!("{prefix}{r}")))
            .take(MAX_SPELLINGS)
            .collect();
    }
    acc
}

/// The first letter of the first reading of each char (赌博 → db), if every char has one.
pub(crate) fn initials(term: &str) -> Option<String> {
    let readings = readings(term, false)?;
    readings.iter().map(|l| l[0].chars().next()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_mix_hanzi_and_syllables() {
        let s = spellings("赌博");
        assert_eq!(s[0], "dubo");
        assert!(s.contains(&"赌bo".to_owned()) && s.contains(&"du博".to_owned()));
        assert!(!s.contains(&"赌博".to_owned()));
        assert_eq!(initials("傻逼").as_deref(), Some("sb"));
        assert!(spellings("q币").is_empty(), "not every char has a reading");
        assert!(tone_numbers("赌博").contains(&"du3bo2".to_owned()));
        assert!(spellings("六合彩").contains(&"liuhecai".to_owned()));
    }
}
