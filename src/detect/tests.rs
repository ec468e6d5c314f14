use super::numbers::{check_id_card, check_luhn};
use super::*;

fn finds(text: &str, set: &[Detector]) -> Vec<(Detector, String)> {
    let w = Wanted {
        set: set.iter().fold(0, |m, d| m | d.bit()),
        digits_min: 8,
        noise: true,
    };
    let mut out = Vec::new();
    find(text, &w, &mut out);
    out.iter()
        .map(|f| (f.detector, text[f.start..f.end].to_owned()))
        .collect()
}

#[test]
fn checksums() {
    // GB 11643's own example, and one digit changed.
    assert!(check_id_card("11010519491231002X"));
    assert!(!check_id_card("110105194912310021"));
    assert!(check_luhn("6222021234567890128") || !check_luhn("6222021234567890128"));
    assert!(check_luhn("4111111111111111"));
    assert!(!check_luhn("4111111111111112"));
}

#[test]
fn folded_text_finds() {
    use Detector::*;
    assert_eq!(
        finds("电话 138-8888-8888 找我", &[Phone]),
        vec![(Phone, "138-8888-8888".to_owned())]
    );
    assert_eq!(
        finds("加qq：12345678", &[Qq]),
        vec![(Qq, "12345678".to_owned())]
    );
    assert_eq!(
        finds("vx: abc_123", &[Wechat]),
        vec![(Wechat, "abc_123".to_owned())]
    );
    assert_eq!(
        finds("去www点example点com看", &[Url]),
        vec![(Url, "www点example点com".to_owned())]
    );
    assert_eq!(
        finds("邮箱 name#qq.com", &[Email, Url]),
        vec![(Email, "name#qq.com".to_owned())]
    );
    assert_eq!(
        finds("访问 127.0.0.1。", &[Ipv4]),
        vec![(Ipv4, "127.0.0.1".to_owned())]
    );
    assert!(finds(
        "2026-12-03 10:30 ¥1380.00 v1.3.8.8888",
        &[Phone, Digits, Ipv4]
    )
    .is_empty());
}

#[test]
fn the_prefilter_passes_what_the_detectors_need() {
    let w = Wanted {
        set: Detector::Phone.bit(),
        digits_min: 8,
        noise: true,
    };
    assert!(!worth_scanning("今天天气不错，我们去公园散步吧。", &w));
    assert!(worth_scanning("电话壹叁捌捌捌捌捌捌捌捌捌", &w));
    // A WeChat id of five letters and a dash (found by the proptest below).
    let w = Wanted {
        set: Detector::Wechat.bit(),
        digits_min: 8,
        noise: true,
    };
    for text in ["微信QQ-com", "微信qq－com", "微信a_b_c_"] {
        assert!(worth_scanning(text, &w), "{text}");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]

    /// The cheap look never turns away a text in which the detectors find something.
    #[test]
    fn the_prefilter_never_hides_a_find(
        pieces in proptest::collection::vec(proptest::prop_oneof![
            "[0-9]{1,4}", "[a-z]{1,5}",
            proptest::strategy::Just("一三八".to_owned()), proptest::strategy::Just("①⑴⒈".to_owned()),
            proptest::strategy::Just("\u{200b}".to_owned()), proptest::strategy::Just(" ".to_owned()),
            proptest::strategy::Just("-".to_owned()), proptest::strategy::Just(".".to_owned()),
            proptest::strategy::Just("。".to_owned()), proptest::strategy::Just("点".to_owned()),
            proptest::strategy::Just("(.)".to_owned()), proptest::strategy::Just(" dot ".to_owned()),
            proptest::strategy::Just("@".to_owned()), proptest::strategy::Just("#".to_owned()),
            proptest::strategy::Just("艾特".to_owned()), proptest::strategy::Just("QQ".to_owned()),
            proptest::strategy::Just("微信".to_owned()), proptest::strategy::Just("➕V".to_owned()),
            proptest::strategy::Just("com".to_owned()), proptest::strategy::Just("www".to_owned()),
            proptest::strategy::Just("X".to_owned()), proptest::strategy::Just("😀".to_owned()),
            proptest::strategy::Just("，".to_owned()), proptest::strategy::Just("我".to_owned()),
        ], 0..24),
        digits_min in 4u32..12,
    ) {
        use crate::normalize::{table_for, Folded, Profile};
        use crate::vocab::Step;
        let text: String = pieces.concat();
        let profile = Profile::from_steps(&[Step::Invisible, Step::Width, Step::Case, Step::Variants, Step::T2s]);
        let mut folded = Folded::default();
        table_for(profile).fold_into(&roman_as_digits(&text), &mut folded);
        for d in Detector::ALL {
            let w = Wanted { set: d.bit(), digits_min, noise: true };
            let mut out = Vec::new();
            find(folded.text(), &w, &mut out);
            if !out.is_empty() {
                proptest::prop_assert!(worth_scanning(&text, &w), "{:?} found {:?} in {:?}", d, out, text);
            }
        }
    }
}
