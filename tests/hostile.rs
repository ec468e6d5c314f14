//! Hostile input through the real binary: every kind of bad line gets an error line or a
//! decision, the run goes on, and output lines equal input lines. Limits are named when hit.

mod common;

use common::*;
use serde_json::Value;

fn lines_of(out: &std::process::Output) -> Vec<Value> {
    json_lines(out)
}

#[test]
fn every_hostile_line_gets_its_own_answer_and_the_run_goes_on() {
    let mut input: Vec<u8> = Vec::new();
    input.extend_from_slice(b"\xEF\xBB\xBF{\"id\":1,\"text\":\"BOM first\"}\r\n"); // 1: BOM, CRLF
    input.extend_from_slice(b"{\"id\":2,\"text\":\"bad \xff\xfe utf-8\"}\n"); // 2
    input.extend_from_slice(b"{\"id\":3,\"text\":\"nul \\u0000 escaped\"}\n"); // 3
    input.extend_from_slice(b"{\"id\":4,\"text\":\"raw \x00 nul\"}\n"); // 4
    input.extend_from_slice(b"{\"id\":5,\"text\":\"lone \\ud800 surrogate\"}\n"); // 5
    input.extend_from_slice(b"\n"); // 6: empty
    input.extend_from_slice(b"   \r\n"); // 7: blank, CRLF
    let nested = "[".repeat(100_000);
    input.extend_from_slice(format!("{{\"id\":8,\"text\":\"x\",\"x\":{nested}}}\n").as_bytes()); // 8
    let combining = "\u{0301}".repeat(5000);
    input.extend_from_slice(format!("{{\"id\":9,\"text\":\"{combining}\"}}\n").as_bytes()); // 9
    let noise = "*#@!~ ".repeat(5000);
    input.extend_from_slice(format!("{{\"id\":10,\"text\":\"{noise}\"}}\n").as_bytes()); // 10
    let big = "赌".repeat(4 << 20); // 12 MiB
    input.extend_from_slice(format!("{{\"id\":11,\"text\":\"{big}\"}}\n").as_bytes()); // 11
    input.extend_from_slice("{\"id\":12,\"text\":\"出售冰毒\"}".as_bytes()); // 12: no newline

    let out = run(&["scan", "-q"], &input);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let d = lines_of(&out);
    assert_eq!(d.len(), 12, "one line out per line in");
    for (i, v) in d.iter().enumerate() {
        assert_eq!(v["line"], i as u64 + 1, "{v}");
    }
    let error = |i: usize| d[i]["error"].as_str().unwrap_or_default().to_owned();
    assert_eq!(d[0]["action"], "allow", "the BOM is skipped, CRLF accepted");
    assert!(error(1).contains("not valid UTF-8"), "{}", error(1));
    assert_eq!(d[2]["action"], "allow", "an escaped NUL is text");
    assert!(!error(3).is_empty(), "a raw NUL is not JSON: {}", d[3]);
    assert!(
        error(4).contains("escape"),
        "a lone surrogate is refused: {}",
        error(4)
    );
    assert!(error(5).contains("empty line"), "{}", error(5));
    assert!(error(6).contains("empty line"), "{}", error(6));
    assert!(
        error(7).contains("recursion"),
        "deep nesting is refused: {}",
        error(7)
    );
    assert_eq!(d[8]["action"], "allow", "only combining marks: {}", d[8]);
    assert_eq!(d[9]["action"], "allow", "only noise: {}", d[9]);
    assert!(
        error(10).contains("limit (max_post_bytes) is 1048576"),
        "{}",
        error(10)
    );
    assert_eq!(d[10]["id"], 11, "the error line keeps the id");
    assert_eq!(
        d[11]["action"], "delete",
        "a last line without newline is read"
    );
}

#[test]
fn a_larger_limit_lets_a_large_post_through_up_to_the_hard_cap() {
    let big = format!("{{\"text\":\"{}出售冰毒\"}}\n", "好".repeat(1 << 20));
    let out = run(
        &["scan", "-q", "--max-post-bytes", "4194304"],
        big.as_bytes(),
    );
    assert_eq!(code(&out), 0);
    assert_eq!(lines_of(&out)[0]["action"], "delete");
    let out = run(&["scan", "-q", "--max-post-bytes", "17000000"], b"");
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("hard cap"), "{}", stderr(&out));
}

#[test]
fn too_many_hits_truncate_the_list_and_hold_the_post_for_review() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[(
            "r.toml",
            "[[rule]]\nid = \"x\"\ncategory = 8\nseverity = \"low\"\naction = \"mask\"\nterms = [\"笨蛋\"]\n",
        )],
    );
    let rules = dir.path().join("r.toml");
    let post = format!("{{\"text\":\"{}\"}}\n", "笨蛋，".repeat(50));
    let out = run(
        &[
            "scan",
            "-q",
            "--rules",
            rules.to_str().unwrap(),
            "--max-hits",
            "10",
        ],
        post.as_bytes(),
    );
    let d = &lines_of(&out)[0];
    assert_eq!(d["hits"].as_array().unwrap().len(), 10);
    assert_eq!(d["truncated"], true);
    assert_eq!(
        d["action"], "review",
        "a mask rule, but 50 hits: held for a person"
    );
    assert_eq!(
        d["masked"].as_str().unwrap().matches('＊').count(),
        100,
        "every hit is masked, listed or not"
    );
}

#[test]
fn a_million_lines_of_random_bytes_get_a_million_answers() {
    let mut x = 0x2545F4914F6CDD1Du64;
    let mut input = Vec::with_capacity(24 << 20);
    let n = 1_000_000;
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 24) as usize;
        for k in 0..len {
            let b = (x >> ((k % 8) * 8)) as u8 ^ (k as u8).wrapping_mul(31);
            input.push(if b == b'\n' { b'{' } else { b });
        }
        input.push(b'\n');
    }
    let out = run(&["scan", "-q"], &input);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), n);
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["line"], n as u64);
}

#[test]
fn rule_file_limits_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let long_term = "长".repeat(200);
    let long_regex = "a".repeat(2000);
    write_files(
        dir.path(),
        &[
            (
                "term.toml",
                &format!("[[rule]]\nid = \"t\"\ncategory = 7\nseverity = \"low\"\nterms = [\"{long_term}\"]\n"),
            ),
            (
                "regex.toml",
                &format!("[[rule]]\nid = \"r\"\ncategory = 7\nseverity = \"low\"\nregex = ['{long_regex}']\n"),
            ),
        ],
    );
    let out = run(
        &[
            "check",
            "--rules",
            dir.path().join("term.toml").to_str().unwrap(),
            "x",
        ],
        b"",
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("term.toml:5:10: rule `t`: the term is 200 characters; the limit (max_term_chars) is 128"),
        "{}",
        stderr(&out)
    );
    let out = run(
        &[
            "check",
            "--rules",
            dir.path().join("regex.toml").to_str().unwrap(),
            "x",
        ],
        b"",
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("the regex is 2000 bytes; the limit (max_regex_len) is 1024"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_line_longer_than_64_mib_is_skipped_without_being_held() {
    let mut input = b"{\"id\":1,\"text\":\"before\"}\n{\"id\":2,\"text\":\"".to_vec();
    input.resize(input.len() + (65 << 20), b'a');
    input.extend_from_slice(
        b"\"}\n{\"id\":3,\"text\":\"\xe5\x87\xba\xe5\x94\xae\xe5\x86\xb0\xe6\xaf\x92\"}\n",
    );
    let out = run(&["scan", "-q"], &input);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let d = lines_of(&out);
    assert_eq!(d.len(), 3);
    assert_eq!(d[0]["action"], "allow");
    assert!(
        d[1]["error"]
            .as_str()
            .unwrap()
            .contains("(max_line_bytes); skipped"),
        "{}",
        d[1]
    );
    assert_eq!(
        (d[1]["line"].clone(), d[2]["action"].clone()),
        (2.into(), "delete".into())
    );
}
