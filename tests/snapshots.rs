//! Snapshot tests (insta) of what people read: `check`'s explanation, rule-file error
//! messages, `test`'s failure report, and a report record. Review changes with
//! `cargo insta review` (or set INSTA_UPDATE=always and read the diff).

mod common;

use common::*;

#[test]
fn check_explains_an_evasive_post() {
    let out = run(
        &[
            "check",
            "最新網絡賭＊場上線，注册送彩金",
            "楼主是个傻\u{200b}逼",
        ],
        b"",
    );
    assert_eq!(code(&out), 1);
    insta::assert_snapshot!(stdout(&out));
}

#[test]
fn rule_file_errors_read_well() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("unknown-key.toml", "[[rule]]\nid = \"a\"\ncategory = 7\nseverity = \"high\"\nterms = [\"x\"]\nregexp = ['y']\n"),
        ("bad-severity.toml", "[[rule]]\nid = \"a\"\ncategory = 7\nseverity = \"severe\"\nterms = [\"x\"]\n"),
        ("bad-cidr.toml", "[[rule]]\nid = \"a\"\ncategory = 7\nseverity = \"high\"\nterms = [\"x\"]\nwhen = { ip_in = [\"10.0.0.0/33\"] }\n"),
        ("no-terms.toml", "[[rule]]\nid = \"a\"\ncategory = 7\nseverity = \"high\"\n"),
    ];
    let mut all = String::new();
    for (name, content) in cases {
        write_files(dir.path(), &[(name, content)]);
        let path = dir.path().join(name);
        let out = run(&["check", "--rules", path.to_str().unwrap(), "x"], b"");
        assert_eq!(code(&out), 2);
        let prefix = format!("{}/", dir.path().display());
        all.push_str(&stderr(&out).replace(&prefix, ""));
    }
    insta::assert_snapshot!(all);
}

#[test]
fn a_report_record() {
    let engine = shenhe::Engine::bundled();
    let post = shenhe::Post::from_json(
        r#"{"id":"p42","text":"出售冰毒，同城当面交易","title":"好货","board":"life","time":"2026-11-20T08:00:00+08:00",
            "poster":{"user_id":"u7","name":"夜猫子","verified":false,"identity_ref":"kyc-000007","ip":"203.0.113.7","port":51234,"registered":"2026-11-18T08:00:00+08:00"}}"#,
    )
    .unwrap();
    let d = engine.scan(&post);
    let detected: jiff::Timestamp = "2026-11-25T07:30:00Z".parse().unwrap();
    let report = shenhe::Report::new(&post, &d, engine.rules(), detected, 24, 8);
    let mut json = serde_json::to_value(&report).unwrap();
    json["ruleset"]["hash"] = "(the bundled rule set's hash)".into();
    insta::assert_snapshot!(serde_json::to_string_pretty(&json).unwrap());
}
