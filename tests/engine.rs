//! The library: bundled rules, policy precedence, conditions, fields, batches.

use shenhe::{Action, Engine, Field, Post, RuleSet, Severity};

fn engine(toml: &str) -> Engine {
    Engine::new(&RuleSet::from_toml_str(toml).unwrap()).unwrap()
}

fn post(json: &str) -> Post {
    Post::from_json(json).unwrap()
}

#[test]
fn bundled_rules_load_and_every_example_passes() {
    let engine = Engine::bundled();
    let (checked, failures) = engine.check_examples();
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(checked > 50);
    let rules = engine.rules();
    for n in 1..=9 {
        assert!(
            rules.rules().iter().any(|r| r.category == n),
            "category {n} has a rule"
        );
    }
    for r in rules.rules() {
        assert!(
            !r.examples.matches.is_empty() && !r.examples.no_match.is_empty(),
            "{} has examples of both kinds",
            r.id
        );
    }
    assert_eq!(rules.info().name, "shenhe-bundled");
    assert!(rules.category(7).unwrap().title.contains("赌博"));
}

#[test]
fn bundled_rules_on_disk_equal_the_compiled_in_ones() {
    let from_disk = RuleSet::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/rules")).unwrap();
    assert_eq!(from_disk.hash(), RuleSet::bundled().hash());
}

const POLICY: &str = r#"
[policy]
severity_actions = { low = "mask", medium = "review", high = "block" }
unverified = "review"
report_categories = [8]
boards.finance = { high = "delete" }

[[rule]]
id = "own-action"
category = 7
severity = "low"
action = "delete"
terms = ["甲甲"]

[[rule]]
id = "by-severity"
category = 7
severity = "high"
terms = ["乙乙"]

[[rule]]
id = "insult"
category = 8
severity = "low"
terms = ["丙丙"]
"#;

#[test]
fn policy_precedence_rule_then_board_then_severity() {
    let e = engine(POLICY);
    assert_eq!(e.scan_text("甲甲").action, Action::Delete);
    assert_eq!(e.scan_text("乙乙").action, Action::Block);
    let p = post(r#"{"text":"乙乙","board":"finance"}"#);
    assert_eq!(e.scan(&p).action, Action::Delete);
    let p = post(r#"{"text":"乙乙","board":"life"}"#);
    assert_eq!(e.scan(&p).action, Action::Block);
}

#[test]
fn unverified_raises_and_report_categories_add() {
    let e = engine(POLICY);
    let d = e.scan_text("丙丙");
    assert_eq!((d.action, d.report), (Action::Mask, true));
    let d = e.scan(&post(r#"{"text":"丙丙","poster":{"verified":false}}"#));
    assert_eq!(d.action, Action::Review);
    // Only raises: a blocked post stays blocked; a clean post stays clean.
    let d = e.scan(&post(r#"{"text":"乙乙","poster":{"verified":false}}"#));
    assert_eq!(d.action, Action::Block);
    let d = e.scan(&post(r#"{"text":"你好","poster":{"verified":false}}"#));
    assert_eq!(d.action, Action::Allow);
    // A poster without a verified field is neither verified nor unverified.
    let d = e.scan(&post(r#"{"text":"丙丙","poster":{"user_id":"u"}}"#));
    assert_eq!(d.action, Action::Mask);
}

const WHEN: &str = r#"
[[rule]]
id = "new-unverified"
category = 9
severity = "medium"
terms = ["加群"]
when = { verified = false, account_age_days_lt = 7 }

[[rule]]
id = "net"
category = 9
severity = "medium"
terms = ["代购"]
when = { ip_in = ["198.51.100.0/24", "2001:db8::/32"], board_in = ["market"] }
"#;

#[test]
fn conditions_hold_only_with_the_metadata_they_need() {
    let e = engine(WHEN);
    let new = r#"{"text":"快来加群","time":"2026-11-20T08:00:00+08:00","poster":{"verified":false,"registered":"2026-11-15T08:00:00+08:00"}}"#;
    assert_eq!(e.scan(&post(new)).hits.len(), 1);
    let old = new.replace("2026-11-15", "2026-11-01");
    assert!(
        e.scan(&post(&old)).hits.is_empty(),
        "registered 19 days before"
    );
    let edge = new.replace("2026-11-15T08", "2026-11-13T08");
    assert!(
        e.scan(&post(&edge)).hits.is_empty(),
        "exactly 7 days is not less than 7"
    );
    let verified = new.replace("false", "true");
    assert!(e.scan(&post(&verified)).hits.is_empty());
    assert!(e.scan_text("快来加群").hits.is_empty(), "no poster: no hit");

    let v4 = r#"{"text":"代购","board":"market","poster":{"ip":"198.51.100.7"}}"#;
    assert_eq!(e.scan(&post(v4)).hits.len(), 1);
    let v6 = v4.replace("198.51.100.7", "2001:db8:1::5");
    assert_eq!(e.scan(&post(&v6)).hits.len(), 1);
    assert!(e
        .scan(&post(&v4.replace("198.51.100.7", "198.51.101.7")))
        .hits
        .is_empty());
    assert!(e.scan(&post(&v4.replace("market", "life"))).hits.is_empty());
    // An address that cannot be read counts as one in the list (the riskier value).
    assert_eq!(
        e.scan(&post(&v4.replace("198.51.100.7", "not-an-ip")))
            .hits
            .len(),
        1
    );
}

#[test]
fn examples_are_checked_as_if_when_held() {
    let toml = format!("{WHEN}examples.match = [\"代购\"]\nexamples.no_match = [\"购物\"]\n");
    let (checked, failures) = engine(&toml).check_examples();
    assert_eq!((checked, failures.len()), (2, 0));
}

#[test]
fn fields_choose_what_a_rule_reads_and_other_fields_are_masked_apart() {
    let e = engine(
        r#"
[[rule]]
id = "name"
category = 8
severity = "low"
terms = ["傻逼"]
fields = ["title", "name", "text"]
"#,
    );
    let d = e.scan(&post(
        r#"{"text":"正文没问题","title":"标题傻逼","poster":{"name":"傻逼本人","bio":"傻逼"}}"#,
    ));
    let fields: Vec<Field> = d.hits.iter().map(|h| h.field).collect();
    assert_eq!(fields, vec![Field::Title, Field::Name]);
    assert_eq!(d.masked.as_deref(), Some("正文没问题"));
    let masked: Vec<(Field, &str)> = d
        .masked_fields
        .iter()
        .map(|m| (m.field, m.masked.as_str()))
        .collect();
    assert_eq!(
        masked,
        vec![(Field::Title, "标题＊＊"), (Field::Name, "＊＊本人")]
    );
    assert_eq!(d.severity, Some(Severity::Low));
}

#[test]
fn scan_batch_keeps_input_order() {
    let e = Engine::bundled();
    let posts: Vec<Post> = (0..2000)
        .map(|i| {
            let mut p = Post::from_text(if i % 3 == 0 {
                "出售冰毒"
            } else {
                "今天天气不错"
            });
            p.id = Some(shenhe::PostId::Int(i));
            p
        })
        .collect();
    let decisions = e.scan_batch(&posts);
    assert_eq!(decisions.len(), posts.len());
    for (i, d) in decisions.iter().enumerate() {
        assert_eq!(d.id, Some(shenhe::PostId::Int(i as i64)));
        assert_eq!(d.is_flagged(), i % 3 == 0);
    }
}

#[test]
fn decisions_round_trip_through_json() {
    let d = Engine::bundled().scan_text("代开增值税发票");
    let json = serde_json::to_string(&d).unwrap();
    let back: shenhe::Decision = serde_json::from_str(&json).unwrap();
    assert_eq!(back, d);
}
