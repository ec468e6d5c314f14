use super::*;

fn default() -> Profile {
    Profile::from_steps(&Step::DEFAULT)
}

fn with_repeat() -> Profile {
    let mut steps = Step::DEFAULT.to_vec();
    steps.push(Step::Repeat);
    Profile::from_steps(&steps)
}

#[test]
fn each_step_folds_what_it_names() {
    let p = default();
    assert_eq!(fold_str(p, "赌\u{200b}博"), "赌博", "invisible");
    assert_eq!(fold_str(p, "ｄｕｂｏ"), "dubo", "width");
    assert_eq!(fold_str(p, "DuBo"), "dubo", "case");
    assert_eq!(fold_str(p, "①②③❶⑴⒈⁹₈"), "12311198", "variants: numbers");
    assert_eq!(
        fold_str(p, "壹贰叁〇九"),
        "12309",
        "variants: Chinese numerals"
    );
    assert_eq!(fold_str(p, "Ⓕ𝒻🅵"), "fff", "variants: stylised letters");
    assert_eq!(
        fold_str(p, "сasinо"),
        "casino",
        "variants: Cyrillic homoglyphs"
    );
    assert_eq!(fold_str(p, "賭博臺獨"), "赌博台独", "t2s");
    assert_eq!(fold_str(p, "赌*博 赌😀博"), "赌博赌博", "noise");
    assert_eq!(fold_str(with_repeat(), "赌赌博博"), "赌博", "repeat");
    assert_eq!(
        fold_str(default(), "赌赌博博"),
        "赌赌博博",
        "repeat is opt-in"
    );
}

#[test]
fn clause_punctuation_and_line_breaks_are_never_noise() {
    let p = default();
    assert_eq!(fold_str(p, "赌，博"), "赌，博");
    assert_eq!(fold_str(p, "赌\n博"), "赌\n博");
    assert_eq!(fold_str(p, "赌……博"), "赌……博");
    // Without the noise step they are ordinary characters, folded like the rest.
    assert_eq!(
        fold_str(Profile::from_steps(&[Step::Width]), "赌，博"),
        "赌,博"
    );
}

#[test]
fn offsets_map_back_to_the_original_chars() {
    let text = "网络賭＊博，ＡＢ①";
    let mut f = Folded::default();
    table_for(default()).fold_into(text, &mut f);
    assert_eq!(f.text(), "网络赌博，ab1");
    let fs = f.text().find("赌博").unwrap();
    let (s, e) = f.to_original(fs, fs + "赌博".len());
    assert_eq!(&text[s..e], "賭＊博");
    let fs = f.text().find("ab1").unwrap();
    let (s, e) = f.to_original(fs, fs + 3);
    assert_eq!(&text[s..e], "ＡＢ①");
    let (s, e) = f.to_original(fs + 1, fs + 2);
    assert_eq!(&text[s..e], "Ｂ");
}

#[test]
fn multi_char_folds_map_as_one_unit() {
    let text = "x㈱y";
    let p = Profile::from_steps(&[Step::Width]);
    let mut f = Folded::default();
    table_for(p).fold_into(text, &mut f);
    assert_eq!(f.text(), "x(株)y");
    let fs = f.text().find('株').unwrap();
    let (s, e) = f.to_original(fs, fs + 3);
    assert_eq!(&text[s..e], "㈱");
}

#[test]
fn exact_profile_is_the_identity() {
    let mut f = Folded::default();
    table_for(Profile::EXACT).fold_into("賭 博", &mut f);
    assert_eq!(f.text(), "賭 博");
    assert_eq!(f.to_original(4, 7), (4, 7));
}

#[test]
fn span_stats_name_the_steps_and_the_noise_gaps() {
    let t = table_for(with_repeat());
    let s = t.span_stats("賭**博");
    let names: Vec<&str> = steps_of(s.steps).map(Step::as_str).collect();
    assert_eq!(names, vec!["t2s", "noise"]);
    assert_eq!(s.max_noise_gap, 2);
    let s = t.span_stats("赌赌博");
    assert_eq!(
        steps_of(s.steps).map(Step::as_str).collect::<Vec<_>>(),
        vec!["repeat"]
    );
    assert_eq!(t.span_stats("赌 * * 博").max_noise_gap, 5);
}

#[test]
fn folding_twice_equals_folding_once() {
    let p = with_repeat();
    for s in [
        "大陸",
        "貳拾",
        "ⅫⅣ",
        "Ｑ币",
        "İstanbul",
        "ß",
        "賭賭博博",
        "㈠㈡",
    ] {
        let once = fold_str(p, s);
        assert_eq!(fold_str(p, &once), once, "{s}");
    }
}

#[test]
fn a_steps_bit_is_its_place_in_the_documented_order() {
    for (i, step) in Step::ALL.into_iter().enumerate() {
        assert_eq!(bit(step), 1 << i, "{step:?}");
    }
}
