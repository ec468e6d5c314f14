//! Property tests: every hit's span is valid and exact; masking touches only hit spans.

use proptest::prelude::*;
use shenhe::{Engine, Post, RuleSet, MASK_CHAR};

const TERMS: [&str; 6] = ["赌博", "网络赌场", "中国", "国人", "gun", "👨‍👩‍👧"];

fn engine() -> Engine {
    let toml = format!(
        "[[rule]]\nid = \"t\"\ncategory = 7\nseverity = \"low\"\nterms = {}\nallow = [\"打击赌博\"]\n\
         [[rule]]\nid = \"r\"\ncategory = 9\nseverity = \"high\"\nregex = ['代开.{{0,4}}发票']\n",
        serde_json::to_string(&TERMS).unwrap()
    );
    Engine::new(&RuleSet::from_toml_str(&toml).unwrap()).unwrap()
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
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn spans_are_char_boundaries_and_map_back_exactly(text in text()) {
        let e = engine();
        let d = e.scan(&Post::from_text(text.clone()));
        for h in &d.hits {
            prop_assert!(text.is_char_boundary(h.start) && text.is_char_boundary(h.end));
            prop_assert!(h.start < h.end);
            prop_assert_eq!(&text[h.start..h.end], h.matched.as_str());
            prop_assert_eq!(text[..h.start].chars().count(), h.char_start);
            prop_assert_eq!(text[..h.end].chars().count(), h.char_end);
        }
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
    fn masking_changes_nothing_outside_hit_spans(text in text()) {
        let e = engine();
        let d = e.scan(&Post::from_text(text.clone()));
        let Some(masked) = d.masked else {
            prop_assert!(d.hits.is_empty());
            return Ok(());
        };
        let mut spans: Vec<(usize, usize)> = d.hits.iter().map(|h| (h.start, h.end)).collect();
        spans.sort_unstable();
        // Rebuild the expected masked text: outside spans copied, inside one mark per grapheme.
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
            use unicode_segmentation::UnicodeSegmentation;
            expected.extend(std::iter::repeat_n(MASK_CHAR, text[s..e].graphemes(true).count()));
            pos = e;
        }
        expected.push_str(&text[pos..]);
        prop_assert_eq!(masked, expected);
    }
}
