//! The built-in detectors (`detect`), through the engine: the table of
//! `tests/data/detect/cases.toml` (each detector plain, disguised, and the numbers that are
//! not contact details), and the peers' own test cases for the same checks
//! (`tests/data/detect/peers.toml`, recall and specificity).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use shenhe::{Engine, ErrorKind, Post, RuleSet};

/// Every detector but `digits`, which would also report every number the others find.
const CONTACT: &[&str] = &[
    "phone",
    "qq",
    "wechat",
    "url",
    "email",
    "ipv4",
    "id_card",
    "bank_card",
];

fn engine(detect: &[String], digits_min: Option<u32>) -> Engine {
    let mut toml = format!(
        "[[rule]]\nid = \"d\"\ncategory = 9\nseverity = \"low\"\naction = \"mask\"\ndetect = {}\n",
        serde_json::to_string(detect).unwrap()
    );
    if let Some(n) = digits_min {
        toml.push_str(&format!("digits_min = {n}\n"));
    }
    Engine::new(&RuleSet::from_toml_str(&toml).unwrap()).unwrap()
}

fn read<T: for<'de> Deserialize<'de>>(name: &str) -> T {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/detect")
        .join(name);
    toml::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Cases {
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    text: String,
    /// The rule's detectors; all but `digits` when absent.
    detect: Option<Vec<String>>,
    digits_min: Option<u32>,
    hits: Vec<ExpectedHit>,
    masked: Option<String>,
}

#[derive(Deserialize, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct ExpectedHit {
    term: String,
    matched: String,
    /// Checked when given.
    steps: Option<Vec<String>>,
}

#[test]
fn table_driven_cases() {
    let cases: Cases = read("cases.toml");
    let mut engines: BTreeMap<(Vec<String>, Option<u32>), Engine> = BTreeMap::new();
    let mut failures = Vec::new();
    let count = cases.case.len();
    for case in cases.case {
        let detect = case
            .detect
            .clone()
            .unwrap_or_else(|| CONTACT.iter().map(|s| s.to_string()).collect());
        let key = (detect.clone(), case.digits_min);
        let e = engines
            .entry(key)
            .or_insert_with(|| engine(&detect, case.digits_min));
        let d = e.scan(&Post::from_text(case.text.as_str()));
        for h in &d.hits {
            assert_eq!(&case.text[h.start..h.end], h.matched, "{}", case.name);
        }
        let got: Vec<ExpectedHit> = d
            .hits
            .iter()
            .zip(&case.hits)
            .map(|(h, want)| ExpectedHit {
                term: h.term.to_string(),
                matched: h.matched.clone(),
                steps: want.steps.as_ref().map(|_| h.steps.clone()),
            })
            .collect();
        if got != case.hits || d.hits.len() != case.hits.len() {
            let all: Vec<(String, String, Vec<String>)> = d
                .hits
                .iter()
                .map(|h| (h.term.to_string(), h.matched.clone(), h.steps.clone()))
                .collect();
            failures.push(format!(
                "{}\n  text {:?}\n  want {:?}\n  got  {:?}",
                case.name, case.text, case.hits, all
            ));
        }
        if let Some(masked) = &case.masked {
            if d.masked.as_deref() != Some(masked.as_str()) {
                failures.push(format!(
                    "{}\n  masked: want {masked:?}, got {:?}",
                    case.name, d.masked
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Peers {
    case: Vec<PeerCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerCase {
    source: String,
    text: String,
    detect: Vec<String>,
    digits_min: Option<u32>,
    /// What the peer's test expects its check to find; empty: nothing.
    finds: Vec<String>,
}

/// houbb/sensitive-word's own tests for its e-mail, URL, IPv4 and number checks: each
/// expected find must lie inside a hit (shenhe may report more around it: the scheme of a
/// link, the whole of an address the peer splits), and a case that expects nothing must
/// give no hit.
#[test]
fn peers_cases_recall_and_specificity() {
    let peers: Peers = read("peers.toml");
    let (mut found, mut expected, mut clean, mut negatives) = (0, 0, 0, 0);
    let mut missed = Vec::new();
    for case in &peers.case {
        let e = engine(&case.detect, case.digits_min);
        let d = e.scan(&Post::from_text(case.text.as_str()));
        if case.finds.is_empty() {
            negatives += 1;
            if d.hits.is_empty() {
                clean += 1;
            } else {
                missed.push(format!("{}: {:?} hit {:?}", case.source, case.text, d.hits));
            }
            continue;
        }
        // Expected finds in order, each at or after the previous one.
        let mut from = 0;
        for want in &case.finds {
            expected += 1;
            let at = case.text[from..].find(want.as_str()).map(|i| i + from);
            let hit = at.filter(|&at| {
                d.hits
                    .iter()
                    .any(|h| h.start <= at && at + want.len() <= h.end)
            });
            match hit {
                Some(at) => {
                    found += 1;
                    from = at + want.len();
                }
                None => missed.push(format!("{}: {want:?} in {:?}", case.source, case.text)),
            }
        }
    }
    let recall = f64::from(found) / f64::from(expected);
    let specificity = f64::from(clean) / f64::from(negatives.max(1));
    println!(
        "peers: {found} of {expected} expected finds (recall {recall:.3}), {clean} of {negatives} \
         clean cases clean (specificity {specificity:.3}); missed: {missed:#?}"
    );
    assert!(recall >= 0.95, "recall {recall:.3}: {missed:#?}");
    assert!(
        specificity >= 0.99,
        "specificity {specificity:.3}: {missed:#?}"
    );
}

#[test]
fn unknown_detector_is_a_located_error() {
    let e = RuleSet::from_toml_str(
        "[[rule]]\nid = \"c\"\ncategory = 9\nseverity = \"low\"\ndetect = [\"phone\", \"wechat_id\"]\n",
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidValue);
    assert_eq!(
        e.to_string(),
        "<input>:5:20: rule `c`: unknown detector `wechat_id` in detect (known: phone, qq, \
         wechat, url, email, ipv4, id_card, bank_card, digits)"
    );
}

#[test]
fn detectors_combine_with_when_allow_and_fields() {
    let rs = RuleSet::from_toml_str(
        r#"
[[rule]]
id = "contact"
category = 9
severity = "medium"
action = "review"
detect = ["phone"]
allow = ["客服电话"]
fields = ["text", "title"]
when = { verified = false }
examples.match = ["电话13912345678"]
examples.no_match = ["电话号码"]
"#,
    )
    .unwrap();
    let e = Engine::new(&rs).unwrap();
    assert!(e.check_examples().1.is_empty());
    let post = |json: &str| Post::from_json(json).unwrap();
    let unverified = r#"{"text":"电话13912345678","title":"加我１３９ １２３４ ５６７８","poster":{"verified":false}}"#;
    let d = e.scan(&post(unverified));
    assert_eq!(d.hits.len(), 2, "{:?}", d.hits);
    assert_eq!(d.masked.as_deref(), Some("电话＊＊＊＊＊＊＊＊＊＊＊"));
    assert_eq!(d.masked_fields[0].masked, "加我＊＊＊＊＊＊＊＊＊＊＊＊＊");
    assert!(e
        .scan(&post(&unverified.replace("false", "true")))
        .hits
        .is_empty());
    // The allow phrase covers the number only when it covers its whole span.
    let d = e.scan(&post(
        r#"{"text":"客服电话13912345678","poster":{"verified":false}}"#,
    ));
    assert_eq!(d.hits.len(), 1);
}

#[test]
fn bundled_rules_catch_a_disguised_number_and_mask_personal_data() {
    let e = Engine::bundled();
    let d = e.scan_text("有意者加我 １３８ ８８８８ ８８８８");
    assert_eq!(d.action, shenhe::Action::Review);
    assert!(d
        .hits
        .iter()
        .any(|h| &*h.rule == "spam.contact" && &*h.term == "$PHONE"));
    let d = e.scan_text("他的身份证号是11010519491231002X");
    assert_eq!(d.action, shenhe::Action::Mask);
    assert_eq!(
        d.masked.as_deref(),
        Some("他的身份证号是＊＊＊＊＊＊＊＊＊＊＊＊＊＊＊＊＊＊")
    );
}
