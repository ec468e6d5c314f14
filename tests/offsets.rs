//! Property tests: every hit's span is valid and exact; masking touches only hit spans.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use shenhe::{Engine, Post, RuleSet, MASK_CHAR};

const TERMS: [&str; 6] = ["赌博", "网络赌场", "中国", "国人", "gun", "👨‍👩‍👧"];

/// The test rules with the given `normalize` steps (TOML array).
fn engine_with(normalize: &str) -> Engine {
    let toml = format!(
        "[[rule]]\nid = \"t\"\ncategory = 7\nseverity = \"low\"\nterms = {}\nallow = [\"打击赌博\"]\nnormalize = {normalize}\n\
         [[rule]]\nid = \"r\"\ncategory = 9\nseverity = \"high\"\nregex = ['代开.{{0,4}}发票']\nnormalize = {normalize}\n",
        serde_json::to_string(&TERMS).unwrap()
    );
    Engine::new(&RuleSet::from_toml_str(&toml).unwrap()).unwrap()
}

/// The test rules and every built-in detector (`detect`), with the default steps.
fn detecting_engine() -> Engine {
    let toml = format!(
        "[[rule]]\nid = \"t\"\ncategory = 7\nseverity = \"low\"\nterms = {}\n\
         [[rule]]\nid = \"d\"\ncategory = 9\nseverity = \"low\"\naction = \"mask\"\n\
         detect = [\"phone\", \"qq\", \"wechat\", \"url\", \"email\", \"ipv4\", \"id_card\", \"bank_card\", \"digits\"]\n\
         digits_min = 6\nallow = [\"客服\"]\n",
        serde_json::to_string(&TERMS).unwrap()
    );
    Engine::new(&RuleSet::from_toml_str(&toml).unwrap()).unwrap()
}

/// Text made of the pieces detectors read: numerals of every style, separators, cues,
/// spelled-out dots and at-signs, emoji and combining marks, and arbitrary characters.
fn detector_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[0-9]{1,4}",
        Just("１３８".to_owned()),
        Just("壹叁捌".to_owned()),
        Just("①⑧⑴⒏".to_owned()),
        Just("幺〇".to_owned()),
        Just("ⅣⅨ".to_owned()),
        Just("¹₈".to_owned()),
        Just(" ".to_owned()),
        Just("-".to_owned()),
        Just(".".to_owned()),
        Just("。".to_owned()),
        Just("点".to_owned()),
        Just("(.)".to_owned()),
        Just(" dot ".to_owned()),
        Just("@".to_owned()),
        Just("#".to_owned()),
        Just("(at)".to_owned()),
        Just("艾特".to_owned()),
        Just("QQ".to_owned()),
        Just("微信".to_owned()),
        Just("➕V".to_owned()),
        Just("V❤\u{fe0f}".to_owned()),
        Just("www".to_owned()),
        Just("https://".to_owned()),
        Just("com".to_owned()),
        Just("qq".to_owned()),
        Just("X".to_owned()),
        Just("+86".to_owned()),
        Just("\u{200b}".to_owned()),
        Just("\u{301}".to_owned()),
        Just("👨‍👩‍👧".to_owned()),
        Just("客服".to_owned()),
        "[a-z_]{1,6}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..32).prop_map(|v| v.concat())
}

/// Exact matching: every occurrence of every term is a hit.
fn engine() -> Engine {
    engine_with("[]")
}

/// Every step, `repeat` included.
fn folding_engine() -> Engine {
    engine_with(r#"["invisible", "width", "case", "variants", "t2s", "noise", "repeat"]"#)
}

/// Every step, the opt-in ones that change characters included.
fn changing_engine() -> Engine {
    engine_with(
        r#"["invisible", "width", "case", "variants", "t2s", "noise", "repeat", "homophone", "near_homophone", "near_form", "split"]"#,
    )
}

fn check_spans(text: &str, d: &shenhe::Decision) -> Result<(), TestCaseError> {
    for h in &d.hits {
        prop_assert!(text.is_char_boundary(h.start) && text.is_char_boundary(h.end));
        prop_assert!(h.start < h.end);
        prop_assert_eq!(&text[h.start..h.end], h.matched.as_str());
        prop_assert_eq!(text[..h.start].chars().count(), h.char_start);
        prop_assert_eq!(text[..h.end].chars().count(), h.char_end);
    }
    Ok(())
}

/// The masked text a decision must give: outside the hits' spans copied, inside (spans
/// merged where they overlap) one mask char per grapheme.
fn expected_masking(text: &str, d: &shenhe::Decision) -> String {
    use unicode_segmentation::UnicodeSegmentation;
    let mut spans: Vec<(usize, usize)> = d.hits.iter().map(|h| (h.start, h.end)).collect();
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (s, e) in spans {
        match merged.last_mut() {
            Some(l) if s <= l.1 => l.1 = l.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    let mut expected = String::new();
    let mut pos = 0;
    for (s, e) in merged {
        expected.push_str(&text[pos..s]);
        expected.extend(std::iter::repeat_n(
            MASK_CHAR,
            text[s..e].graphemes(true).count(),
        ));
        pos = e;
    }
    expected.push_str(&text[pos..]);
    expected
}

/// Text made of pieces that often form or break terms, plus arbitrary characters.
fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("赌".to_owned()),
        Just("博".to_owned()),
        Just("网络".to_owned()),
        Just("赌场".to_owned()),
        Just("中国人".to_owned()),
        Just("打击赌博".to_owned()),
        Just("gun".to_owned()),
        Just("be".to_owned()),
        Just("\u{301}".to_owned()),
        Just("\u{200d}".to_owned()),
        Just("👨‍👩‍👧".to_owned()),
        Just("代开".to_owned()),
        Just("发票".to_owned()),
        Just("堵".to_owned()),
        Just("睹".to_owned()),
        Just("贝者".to_owned()),
        Just("a".to_owned()),
        Just("7".to_owned()),
        Just("\u{202e}".to_owned()),
        Just("\u{202c}".to_owned()),
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn spans_are_char_boundaries_and_map_back_exactly(text in text()) {
        check_spans(&text, &folding_engine().scan(&Post::from_text(text.clone())))?;
        check_spans(&text, &changing_engine().scan(&Post::from_text(text.clone())))?;
        let e = engine();
        let d = e.scan(&Post::from_text(text.clone()));
        check_spans(&text, &d)?;
        // Every occurrence of every term not inside 打击赌博 is reported.
        for term in TERMS {
            for (at, _) in text.match_indices(term) {
                let in_allow = term == "赌博" && text[..at].ends_with("打击");
                let guarded = term == "gun" && (text[..at].chars().next_back().is_some_and(|c| c.is_ascii_alphabetic())
                    || text[at + 3..].chars().next().is_some_and(|c| c.is_ascii_alphabetic()));
                if !in_allow && !guarded {
                    prop_assert!(d.hits.iter().any(|h| h.start <= at && at + term.len() <= h.end),
                        "{} at {} not reported in {:?}", term, at, text);
                }
            }
        }
    }

    #[test]
    fn masking_changes_nothing_outside_hit_spans(text in text(), fold in 0..3u8) {
        let e = match fold {
            0 => engine(),
            1 => folding_engine(),
            _ => changing_engine(),
        };
        let d = e.scan(&Post::from_text(text.clone()));
        let Some(masked) = d.masked.clone() else {
            prop_assert!(d.hits.is_empty());
            return Ok(());
        };
        prop_assert_eq!(masked, expected_masking(&text, &d));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Detector hits map to char boundaries of the original text, their matched text is
    /// the original span, and masking changes exactly the hits' graphemes.
    #[test]
    fn detector_hits_map_back_exactly_and_mask_only_their_spans(text in detector_text()) {
        let d = detecting_engine().scan(&Post::from_text(text.clone()));
        check_spans(&text, &d)?;
        for h in &d.hits {
            if h.term.starts_with('$') {
                use unicode_segmentation::UnicodeSegmentation;
                // Widened to whole graphemes: the span starts and ends on a boundary.
                let starts: Vec<usize> = text.grapheme_indices(true).map(|(i, _)| i).chain([text.len()]).collect();
                prop_assert!(starts.contains(&h.start) && starts.contains(&h.end), "{:?} in {:?}", h, text);
            }
        }
        let Some(masked) = d.masked.clone() else {
            prop_assert!(d.hits.is_empty());
            return Ok(());
        };
        prop_assert_eq!(masked, expected_masking(&text, &d));
    }

    /// A mobile number planted in random text, its digits in random numeral styles and with
    /// random separators, is found, and its span is exactly the planted characters.
    #[test]
    fn planted_mobile_number_is_found_exactly(
        before in "[我你他的了是 ]{0,8}",
        after in "[我你他的了是 ]{0,8}",
        styles in prop::collection::vec(0u8..6, 11),
        seps in prop::collection::vec(0u8..4, 10),
    ) {
        const DIGITS: [&str; 11] = ["1", "3", "9", "1", "2", "3", "4", "5", "6", "7", "8"];
        const FULL: [&str; 10] = ["０", "１", "２", "３", "４", "５", "６", "７", "８", "９"];
        const CIRCLED: [&str; 10] = ["⓪", "①", "②", "③", "④", "⑤", "⑥", "⑦", "⑧", "⑨"];
        const HANZI: [&str; 10] = ["〇", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
        const FINANCIAL: [&str; 10] = ["零", "壹", "贰", "叁", "肆", "伍", "陆", "柒", "捌", "玖"];
        const SUPER: [&str; 10] = ["⁰", "¹", "²", "³", "⁴", "⁵", "⁶", "⁷", "⁸", "⁹"];
        let mut planted = String::new();
        for (i, d) in DIGITS.iter().enumerate() {
            let n: usize = d.parse().unwrap();
            planted.push_str(match styles[i] {
                0 => d,
                1 => FULL[n],
                2 => CIRCLED[n],
                3 => HANZI[n],
                4 => FINANCIAL[n],
                _ => SUPER[n],
            });
            if i < 10 {
                planted.push_str(match seps[i] { 0 | 1 => "", 2 => " ", _ => "*" });
            }
        }
        let text = format!("{before}{planted}{after}");
        let d = detecting_engine().scan(&Post::from_text(text.clone()));
        check_spans(&text, &d)?;
        let hit = d.hits.iter().find(|h| &*h.term == "$PHONE");
        prop_assert!(hit.is_some(), "{:?} not found in {:?}: {:?}", planted, text, d.hits);
        let hit = hit.unwrap();
        prop_assert_eq!((hit.start, hit.end), (before.len(), before.len() + planted.len()), "{:?}", text);
    }
}

/// One evasion of one character of a planted term.
fn evade(c: char, how: u8) -> String {
    const TRAD: [(char, char); 4] = [('赌', '賭'), ('络', '絡'), ('场', '場'), ('网', '網')];
    match how % 8 {
        0 => c.to_string(),
        1 => TRAD
            .iter()
            .find(|(s, _)| *s == c)
            .map_or(c, |(_, t)| *t)
            .to_string(),
        2 => format!("{c}\u{200b}"),
        3 => format!("{c}*"),
        4 => format!("{c}{c}"),
        5 => format!("{c} 😀"),
        // A lone Latin letter or digit between two Han characters is noise too.
        6 => format!("{c}x"),
        _ => format!("{c}-7 "),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A term planted in random text under random evasions is found, and its span covers
    /// exactly the planted characters.
    #[test]
    fn planted_term_under_evasions_is_found(
        before in "[a-z我你他的了是 ]{0,12}",
        after in "[a-z我你他的了是 ]{0,12}",
        hows in prop::collection::vec(any::<u8>(), 4),
    ) {
        let term = "网络赌场";
        let chars: Vec<char> = term.chars().collect();
        let mut planted = String::new();
        for (i, c) in chars.iter().enumerate() {
            let piece = evade(*c, hows[i]);
            // The last char's trailing noise is outside the term: keep only the char.
            if i + 1 == chars.len() { planted.push_str(&piece.chars().take(if hows[i] % 8 == 4 { 2 } else { 1 }).collect::<String>()); }
            else { planted.push_str(&piece); }
        }
        // Neighbours that repeat the term's first or last char would legitimately widen it.
        prop_assume!(!before.ends_with('网') && !after.starts_with('场'));
        let text = format!("{before}{planted}{after}");
        let d = folding_engine().scan(&Post::from_text(text.clone()));
        check_spans(&text, &d)?;
        let at = before.len();
        let hit = d.hits.iter().find(|h| &*h.term == term);
        prop_assert!(hit.is_some(), "{:?} not found in {:?}", planted, text);
        let hit = hit.unwrap();
        prop_assert_eq!((hit.start, hit.end), (at, at + planted.len()), "{:?}", text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The normaliser's offset map, for any text and any set of steps: every folded char
    /// maps to a non-empty span on char boundaries, spans never go backwards (except in a
    /// right-to-left override, folded in display order), and folding the folded text
    /// changes nothing (the fuzz target `normalize` checks the same).
    #[test]
    fn offset_map_is_monotonic_and_folding_idempotent(text in text(), mask in 0u16..(1 << 11)) {
        use shenhe::{normalize::Normalizer, Step};
        let steps: Vec<Step> = Step::ALL.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, s)| *s).collect();
        let n = Normalizer::new(&steps);
        let folded = n.fold(&text);
        let f = folded.text();
        let bounds: Vec<usize> = f.char_indices().map(|(i, _)| i).chain([f.len()]).collect();
        let (mut ps, mut pe) = (0, 0);
        for w in bounds.windows(2) {
            let (s, e) = folded.to_original(w[0], w[1]);
            prop_assert!(s < e && text.is_char_boundary(s) && text.is_char_boundary(e));
            if !(steps.contains(&Step::Invisible) && text.contains('\u{202e}')) {
                prop_assert!(s >= ps && e >= pe);
            }
            (ps, pe) = (s, e);
        }
        let again = n.fold(f);
        prop_assert_eq!(again.text(), f);
    }
}
