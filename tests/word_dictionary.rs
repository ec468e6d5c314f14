//! The word-segmentation dictionary loads in the background when an engine that needs it
//! is built, not on the first post near a `boundary = "word"` hit (about 150 ms there).
//! Its own test binary: nothing else in this process loads the dictionary.

use std::time::{Duration, Instant};

use shenhe::{Engine, RuleSet};

fn engine(boundary: &str) -> Engine {
    let toml = format!(
        "[[rule]]\nid = \"drugs\"\ncategory = 7\nseverity = \"high\"\nboundary = \"{boundary}\"\nterms = [\"毒品\"]\n"
    );
    Engine::new(&RuleSet::from_toml_str(&toml).unwrap()).unwrap()
}

#[test]
fn an_engine_with_word_rules_loads_the_dictionary_before_any_post() {
    // Rules without word boundaries never load it.
    let _plain = engine("auto");
    assert!(!shenhe::word_dictionary_loaded());
    // With one, it loads without any post being scanned.
    let _word = engine("word");
    let started = Instant::now();
    while !shenhe::word_dictionary_loaded() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the dictionary did not load in the background"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
