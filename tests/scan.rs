//! `shenhe scan`: one decision per input line, in order, with exact offsets.

mod common;

use common::*;
use serde_json::Value;

const SAMPLE: &str = include_str!("../examples/posts.jsonl");

/// Checks the offset contract on every hit of every decision.
fn check_hits(posts: &[Value], decisions: &[Value]) {
    for (post, d) in posts.iter().zip(decisions) {
        let text = post["text"].as_str().unwrap();
        for h in d["hits"].as_array().unwrap() {
            let field = h["field"].as_str().unwrap();
            let src = match field {
                "text" => text,
                "title" => post["title"].as_str().unwrap(),
                other => post["poster"][other].as_str().unwrap(),
            };
            let (s, e) = (
                h["start"].as_u64().unwrap() as usize,
                h["end"].as_u64().unwrap() as usize,
            );
            assert_eq!(&src[s..e], h["matched"].as_str().unwrap(), "{h}");
            let cs = h["char_start"].as_u64().unwrap() as usize;
            let ce = h["char_end"].as_u64().unwrap() as usize;
            assert_eq!(src[..s].chars().count(), cs, "{h}");
            assert_eq!(src[..e].chars().count(), ce, "{h}");
        }
    }
}

#[test]
fn ten_thousand_posts_on_two_threads_keep_order_and_count() {
    let sample: Vec<&str> = SAMPLE.lines().collect();
    let mut input = String::new();
    let mut expected = Vec::new();
    for i in 0..10_000usize {
        if i % 997 == 500 {
            input.push_str("{this is not json\n");
            expected.push(None);
        } else {
            let mut post: Value = serde_json::from_str(sample[i % sample.len()]).unwrap();
            post["id"] = Value::from(format!("n{i}"));
            input.push_str(&post.to_string());
            input.push('\n');
            expected.push(Some(post));
        }
    }
    let out = run(&["scan", "--threads", "2", "-q"], input.as_bytes());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let decisions = json_lines(&out);
    assert_eq!(decisions.len(), 10_000);
    let mut flagged = 0;
    for (i, (d, post)) in decisions.iter().zip(&expected).enumerate() {
        assert_eq!(d["line"], Value::from(i as u64 + 1));
        match post {
            None => {
                assert!(
                    d["error"].as_str().unwrap().contains("not a valid post"),
                    "{d}"
                );
                assert!(d.get("action").is_none());
            }
            Some(p) => {
                assert_eq!(d["id"], p["id"]);
                if d["action"] != "allow" {
                    flagged += 1;
                }
            }
        }
    }
    assert!(flagged > 1000, "the sample has violations: {flagged}");
    let posts: Vec<Value> = expected.iter().flatten().cloned().collect();
    let decided: Vec<Value> = decisions
        .into_iter()
        .filter(|d| d.get("error").is_none())
        .collect();
    check_hits(&posts, &decided);
}

#[test]
fn sample_decisions_have_the_contract_fields() {
    let out = run(&["scan", "-i", "examples/posts.jsonl", "-q"], b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let decisions = json_lines(&out);
    assert_eq!(decisions.len(), SAMPLE.lines().count());
    let d = decisions
        .iter()
        .find(|d| {
            d["hits"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["rule"] == "drugs.trade")
        })
        .expect("the sample sells drugs somewhere");
    assert_eq!(d["action"], "delete");
    assert_eq!(d["report"], true);
    assert_eq!(d["severity"], "critical");
    assert!(d["categories"]
        .as_array()
        .unwrap()
        .contains(&Value::from(7)));
    assert!(d["masked"].as_str().unwrap().contains("＊＊"));
    assert_eq!(d["ruleset"]["name"], "shenhe-bundled");
    assert_eq!(d["ruleset"]["hash"].as_str().unwrap().len(), 64);
    let h = &d["hits"][0];
    for key in [
        "rule",
        "category",
        "severity",
        "field",
        "start",
        "end",
        "char_start",
        "char_end",
        "matched",
        "term",
        "steps",
    ] {
        assert!(h.get(key).is_some(), "hit lacks {key}: {h}");
    }
}

#[test]
fn malformed_lines_blank_lines_and_bad_utf8_each_get_an_error_line() {
    let mut input = Vec::new();
    input.extend_from_slice("{\"id\":\"a\",\"text\":\"出售冰毒\"}\r\n".as_bytes());
    input.extend_from_slice(b"\n");
    input.extend_from_slice(b"{\"id\":\"b\"}\n");
    input.extend_from_slice(b"{\"text\":\"\xff\xfe\"}\n");
    input.extend_from_slice("{\"id\":7,\"text\":\"\"}".as_bytes());
    let out = run(&["scan"], &input);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let d = json_lines(&out);
    assert_eq!(d.len(), 5);
    assert_eq!(d[0]["action"], "delete");
    assert_eq!(
        d[1],
        serde_json::json!({"line": 2, "error": "empty line: expected a JSON post"})
    );
    assert_eq!(d[2]["id"], "b");
    assert!(
        d[2]["error"]
            .as_str()
            .unwrap()
            .contains("missing field `text`"),
        "{}",
        d[2]
    );
    assert!(
        d[3]["error"].as_str().unwrap().contains("UTF-8"),
        "{}",
        d[3]
    );
    assert_eq!(d[4]["id"], 7);
    assert_eq!(d[4]["action"], "allow");
    // The summary counts them.
    assert!(
        stderr(&out).contains("5 lines, 2 decided, 3 errors"),
        "{}",
        stderr(&out)
    );
}

/// A key given twice is read by hosts as either value: the line is refused, never decided
/// on one of them (it was decided `allow` on the last).
#[test]
fn a_post_naming_a_key_twice_gets_an_error_line_not_a_decision() {
    let input = "{\"id\":\"p1\",\"text\":\"出售冰毒\",\"text\":\"ok\"}\n{\"id\":\"p2\",\"text\":\"ok\",\"poster\":{\"port\":\"x\",\"ip\":\"203.0.113.1\",\"ip\":\"198.51.100.1\"}}\n";
    let out = run(&["scan", "-q"], input.as_bytes());
    assert_eq!(code(&out), 0);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    for (line, field) in lines.iter().zip(["text", "ip"]) {
        assert!(line.get("action").is_none(), "{line}");
        let error = line["error"].as_str().unwrap();
        assert!(
            error.contains("duplicate") && error.contains(field),
            "{error}"
        );
    }
    assert_eq!(lines[0]["id"], "p1");
}

#[test]
fn utf8_bom_is_skipped_and_utf16_is_refused() {
    let out = run(&["scan"], "\u{feff}{\"text\":\"约炮\"}\n".as_bytes());
    assert_eq!(code(&out), 0);
    assert_eq!(json_lines(&out)[0]["action"], "delete");
    let out = run(&["scan"], &[0xFF, 0xFE, b'{', 0]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("UTF-16"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}

#[test]
fn files_in_and_out_and_bundled_rules_from_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"id\":1,\"text\":\"刷单兼职日赚千元\"}\n{\"id\":2,\"text\":\"你好\"}\n",
    )
    .unwrap();
    let out = run_in(
        &["scan", "-i", "in.jsonl", "-o", "out.jsonl", "-q"],
        b"",
        Some(dir.path()),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let written = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
    let lines: Vec<Value> = written
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["hits"][0]["rule"], "fraud.scam");
    assert_eq!(lines[1]["action"], "allow");
}

#[test]
fn exit_code_2_for_unreadable_input_bad_usage_and_bad_rules() {
    let out = run(&["scan", "-i", "/nonexistent/posts.jsonl"], b"");
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("/nonexistent/posts.jsonl"),
        "{}",
        stderr(&out)
    );
    let out = run(&["scan", "--no-such-flag"], b"");
    assert_eq!(code(&out), 2);
    let out = run(&["scan", "--threads", "0"], b"");
    assert_eq!(code(&out), 2);
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[(
            "bad.toml",
            "[[rule]]\nid = \"x\"\ncategory = 7\nseverity = \"hihg\"\nterms = [\"a\"]\n",
        )],
    );
    let rules = dir.path().join("bad.toml");
    let out = run(
        &["scan", "--rules", rules.to_str().unwrap()],
        b"{\"text\":\"a\"}\n",
    );
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains("bad.toml:4:12: rule `x`: unknown variant `hihg`"),
        "{err}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing is decided with a broken rule set"
    );
    // A store or a directory that cannot be written is named, before any decision.
    let out = run(
        &["scan", "--reports", "/proc/shenhe-reports"],
        b"{\"text\":\"a\"}\n",
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).starts_with("shenhe: error: cannot write reports to /proc/shenhe-reports:"),
        "{}",
        stderr(&out)
    );
    let out = run(
        &["scan", "--audit", "/proc/shenhe.db"],
        b"{\"text\":\"a\"}\n",
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).starts_with("shenhe: error: audit store /proc/shenhe.db:"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn summary_reports_counts_per_action_and_category() {
    let out = run(&["scan", "-i", "examples/posts.jsonl"], b"");
    let err = stderr(&out);
    assert!(err.contains("300 lines, 300 decided, 0 errors"), "{err}");
    assert!(err.contains("posts/s") && err.contains("MB/s"), "{err}");
    assert!(err.contains("by action: allow"), "{err}");
    assert!(err.contains("（七）"), "{err}");
}

#[test]
fn malformed_metadata_still_gets_a_decision_with_warnings() {
    let input = concat!(
        r#"{"id":"m1","text":"出售冰毒","poster":{"user_id":"u1","port":"abc","ip":"999.0.0.1","verified":"yes"}}"#,
        "\n",
        r#"{"id":"m2","text":"你好","time":"last tuesday","poster":"not an object"}"#,
        "\n"
    );
    let out = run(&["scan", "-q"], input.as_bytes());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let d = json_lines(&out);
    assert_eq!(d.len(), 2);
    assert_eq!(d[0]["action"], "delete", "decided on its text");
    let w: Vec<&str> = d[0]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(
        w[0].starts_with("poster.verified: ") || w[0].starts_with("poster.port: "),
        "{w:?}"
    );
    assert!(
        w.contains(&"poster.ip: `999.0.0.1` is not an IP address"),
        "{w:?}"
    );
    assert_eq!(d[1]["action"], "allow");
    let w: Vec<&str> = d[1]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(
        w,
        vec![
            "poster: expected an object, got \"not an object\"; ignored",
            "time: `last tuesday` is not an RFC 3339 time"
        ]
    );
}

/// `scan` runs without transparent huge pages (a fresh huge page's zeroing cost some runs
/// on virtual machines a second of system time), unless the operator sets
/// MIMALLOC_ALLOW_THP. Read from the kernel's view of the running process.
#[cfg(target_os = "linux")]
#[test]
fn scan_runs_without_transparent_huge_pages() {
    use std::process::Stdio;
    let thp_of = |pid: u32| -> Option<String> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("THP_enabled:"))?;
        Some(line["THP_enabled:".len()..].trim().to_owned())
    };
    let Some(own) = thp_of(std::process::id()) else {
        eprintln!("this kernel does not say whether THP is enabled (THP_enabled); skipped");
        return;
    };
    assert_eq!(own, "1", "the test itself must run with THP allowed");
    // The scan waits for its input, so its flags can be read while it runs.
    let mut child = shenhe()
        .args(["scan", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut seen = thp_of(child.id());
    while seen.as_deref() != Some("0") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        seen = thp_of(child.id());
    }
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    assert_eq!(seen.as_deref(), Some("0"), "THP still enabled for the scan");
}
