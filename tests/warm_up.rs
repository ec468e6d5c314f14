//! `Engine::warm_up` returns only once what the engine's scans would load on first use is
//! loaded (jieba's dictionary), so a service that calls it before taking traffic has no
//! first post that waits. Its own test binary: nothing else in this process loads the
//! dictionary.

use shenhe::{Engine, RuleSet};

fn engine(extra: &str) -> Engine {
    let toml = format!(
        "[[rule]]\nid = \"gambling\"\ncategory = 7\nseverity = \"high\"\nterms = [\"赌博\"]\n{extra}"
    );
    Engine::new(&RuleSet::from_toml_str(&toml).unwrap()).unwrap()
}

#[test]
fn warm_up_loads_the_dictionary_only_for_rules_that_need_it() {
    // Rules with neither word boundaries nor a step that changes chars never need it.
    engine("").warm_up();
    assert!(!shenhe::word_dictionary_loaded());
    // A step that changes chars (its hits are checked against the text's own words) does:
    // loaded when warm_up returns, not some time after.
    let changing = engine("normalize = [\"width\", \"homophone\"]\n");
    changing.warm_up();
    assert!(shenhe::word_dictionary_loaded());
    // And the engine finds the evasion the step is for.
    let (_, d) = changing
        .scan_json(r#"{"id":"1","text":"来堵博吧"}"#)
        .unwrap();
    assert_eq!(d.hits.len(), 1, "{d:?}");
    assert_eq!(
        (d.hits[0].matched.as_str(), d.hits[0].term.as_ref()),
        ("堵博", "赌博")
    );
    assert_eq!(d.hits[0].steps, ["homophone"]);
}
