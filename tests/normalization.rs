//! The table-driven normalisation cases of `tests/data/*.toml`, run against the rules of
//! `tests/data/rules.toml`. Each case gives a text, the exact list of hits (rule, matched
//! original text, steps, whether pinyin made it) in order, and optionally the masked text.

use std::path::Path;

use serde::Deserialize;
use shenhe::{Engine, Post, RuleSet};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    text: String,
    hits: Vec<ExpectedHit>,
    masked: Option<String>,
}

#[derive(Deserialize, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct ExpectedHit {
    rule: String,
    matched: String,
    steps: Vec<String>,
    #[serde(default)]
    pinyin: bool,
}

#[test]
fn table_driven_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let engine = Engine::new(&RuleSet::from_path(dir.join("rules.toml")).unwrap()).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && !p.ends_with("rules.toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "the case files are there");
    let mut failures = Vec::new();
    let mut count = 0;
    for path in files {
        let file: File = toml::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for case in file.case {
            count += 1;
            let d = engine.scan(&Post::from_text(case.text.as_str()));
            let got: Vec<ExpectedHit> = d
                .hits
                .iter()
                .map(|h| {
                    let mut steps = h.steps.clone();
                    let pinyin = steps.last().is_some_and(|s| s == "pinyin");
                    if pinyin {
                        steps.pop();
                    }
                    ExpectedHit {
                        rule: h.rule.to_string(),
                        matched: h.matched.clone(),
                        steps,
                        pinyin,
                    }
                })
                .collect();
            let name = format!(
                "{}: {}",
                path.file_name().unwrap().to_string_lossy(),
                case.name
            );
            if got != case.hits {
                failures.push(format!(
                    "{name}\n  text {:?}\n  want {:?}\n  got  {:?}",
                    case.text, case.hits, got
                ));
            }
            if let Some(masked) = &case.masked {
                if d.masked.as_deref() != Some(masked.as_str()) {
                    failures.push(format!(
                        "{name}\n  masked: want {masked:?}, got {:?}",
                        d.masked
                    ));
                }
            }
            for h in &d.hits {
                assert_eq!(&case.text[h.start..h.end], h.matched, "{name}");
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
