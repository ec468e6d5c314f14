//! Rule authors: `check`, `test`, and rule-file errors with `file:line:column`.

mod common;

use common::*;

#[test]
fn check_explains_hits_and_exits_1_when_flagged() {
    let out = run(&["check", "这里有网络赌场", "今天天气不错"], b"");
    assert_eq!(code(&out), 1);
    let s = stdout(&out);
    assert!(s.contains("marked:  这里有⟦网络赌场⟧"), "{s}");
    assert!(s.contains("hit gambling.promotion"), "{s}");
    assert!(
        s.contains("（七） 散布淫秽、色情、赌博、暴力、凶杀、恐怖或者教唆犯罪的"),
        "{s}"
    );
    assert!(s.contains("result:  delete · report"), "{s}");
    assert!(s.contains("result:  no hit (allow)"), "{s}");

    let out = run(&["check", "今天天气不错"], b"");
    assert_eq!(code(&out), 0);
}

#[test]
fn check_json_prints_one_decision_per_text_from_stdin() {
    let out = run(&["check", "--json"], "出售冰毒\n周末去溜冰场\n".as_bytes());
    assert_eq!(code(&out), 1);
    let d = json_lines(&out);
    assert_eq!(d.len(), 2);
    let matched: Vec<&str> = d[0]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["matched"].as_str().unwrap())
        .collect();
    assert_eq!(
        matched,
        vec!["出售冰毒", "冰毒"],
        "overlapping terms both reported, by position"
    );
    assert_eq!(
        d[1]["hits"].as_array().unwrap().len(),
        0,
        "the allow phrase 溜冰场 holds"
    );
}

#[test]
fn test_runs_every_bundled_example() {
    let out = run(&["test"], b"");
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let s = stdout(&out);
    let last = s.lines().last().unwrap();
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
    let passed: usize = last.split_whitespace().next().unwrap().parse().unwrap();
    assert!(passed > 50, "{last}");
}

#[test]
fn test_reports_failing_examples_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[(
            "r.toml",
            "[[rule]]\nid = \"g\"\ncategory = 7\nseverity = \"high\"\nterms = [\"赌博\"]\n\
             examples.match = [\"赌场\"]\nexamples.no_match = [\"打击赌博\"]\n",
        )],
    );
    let out = run(&["test", "--rules", dir.path().to_str().unwrap()], b"");
    assert_eq!(code(&out), 1);
    let s = stdout(&out);
    assert!(
        s.contains("r.toml:1:1: rule `g`: examples.match \"赌场\" (as text) gave no hit"),
        "{s}"
    );
    assert!(
        s.contains("examples.no_match \"打击赌博\" (as text) was hit"),
        "{s}"
    );
    assert!(s.contains("\"赌博\" at chars 2..4"), "{s}");
    assert!(s.trim_end().ends_with("0 passed, 2 failed"), "{s}");
}

/// Loads a broken rule directory and returns the error line.
fn load_error(files: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), files);
    let out = run(
        &["check", "--rules", dir.path().to_str().unwrap(), "x"],
        b"",
    );
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    let err = stderr(&out);
    let prefix = dir.path().to_str().unwrap().to_owned() + "/";
    err.trim().replace(&prefix, "")
}

const HEAD: &str = "[[rule]]\nid = \"a\"\ncategory = 7\nseverity = \"high\"\n";

#[test]
fn rule_errors_name_file_line_column_and_rule() {
    assert_eq!(
        load_error(&[("r.toml", &format!("{HEAD}terms = [\"赌博\"]\nterm = [\"x\"]\n"))]),
        "shenhe: error: r.toml:6:1: rule `a`: unknown field `term`, expected one of `id`, `category`, `severity`, `action`, `report`, `terms`, `terms_file`, `regex`, `detect`, `digits_min`, `allow`, `boundary`, `normalize`, `pinyin`, `fields`, `when`, `examples`"
    );
    assert_eq!(
        load_error(&[("r.toml", &format!("{HEAD}detect = [\"phone\", \"vx\"]\n"))]),
        "shenhe: error: r.toml:5:20: rule `a`: unknown detector `vx` in detect (known: phone, qq, wechat, url, email, ipv4, id_card, bank_card, digits)"
    );
    assert_eq!(
        load_error(&[("r.toml", &format!("{HEAD}terms = [\"赌博\", \" \"]\n"))]),
        "shenhe: error: r.toml:5:16: rule `a`: empty or whitespace-only term"
    );
    assert_eq!(
        load_error(&[("r.toml", &format!("{HEAD}terms_file = \"lexicons/none.txt\"\n"))]),
        "shenhe: error: r.toml:5:14: rule `a`: terms_file `lexicons/none.txt`: No such file or directory (os error 2)"
    );
    let e = load_error(&[("r.toml", &format!("{HEAD}regex = ['(?P<x>a']\n"))]);
    assert!(
        e.starts_with("shenhe: error: r.toml:5:10: rule `a`: invalid regex:"),
        "{e}"
    );
    assert_eq!(
        load_error(&[("r.toml", "[[rule]]\nid = \"a\"\ncategory = 55\nseverity = \"high\"\nterms = [\"x\"]\n")]),
        "shenhe: error: r.toml:3:12: rule `a`: unknown category 55 (1–9 are Article 15's; declare custom ones, numbered from 100, in [categories])"
    );
    assert_eq!(
        load_error(&[
            ("a.toml", &format!("{HEAD}terms = [\"x\"]\n")),
            ("b.toml", &format!("# second file\n{HEAD}terms = [\"y\"]\n")),
        ]),
        "shenhe: error: b.toml:2:1: rule `a`: duplicate rule id (first defined at a.toml:1:1)"
    );
    assert_eq!(
        load_error(&[(
            "r.toml",
            "[[rule]]\nid = \"a\"\ncategory = 7\nseverity = \"high\"\nterms = [\"x\"\n"
        )]),
        "shenhe: error: r.toml:5:13: rule `a`: unclosed array, expected `]`"
    );
}

#[test]
fn terms_files_resolve_relative_to_the_rule_file() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            (
                "sub/r.toml",
                &format!("{HEAD}terms_file = \"../lists/g.txt\"\n"),
            ),
            ("lists/g.txt", "\u{feff}# gambling\n百家乐\n\n  六合彩  \n"),
            ("sub/r.test.toml", "this is not a rule file and is skipped"),
        ],
    );
    let rules = dir.path().join("sub");
    let out = run(
        &[
            "check",
            "--json",
            "--rules",
            rules.to_str().unwrap(),
            "百家乐和六合彩",
        ],
        b"",
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let d = &json_lines(&out)[0];
    let terms: Vec<&str> = d["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["term"].as_str().unwrap())
        .collect();
    assert_eq!(terms, vec!["百家乐", "六合彩"]);
}

#[test]
fn several_rules_paths_combine() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("one.toml", &format!("{HEAD}terms = [\"甲\"]\n")),
            (
                "two.toml",
                "[[rule]]\nid = \"b\"\ncategory = 8\nseverity = \"low\"\nterms = [\"乙\"]\n",
            ),
        ],
    );
    let one = dir.path().join("one.toml");
    let two = dir.path().join("two.toml");
    let out = run(
        &[
            "check",
            "--json",
            "--rules",
            one.to_str().unwrap(),
            "--rules",
            two.to_str().unwrap(),
            "甲乙",
        ],
        b"",
    );
    let d = &json_lines(&out)[0];
    assert_eq!(d["categories"], serde_json::json!([7, 8]));
}

#[test]
fn lint_reports_every_mistake_with_its_place_and_a_fix() {
    let out = run(
        &["lint", "--rules", "tests/data/authoring/broken.toml"],
        b"",
    );
    assert_eq!(code(&out), 1, "errors found");
    insta::assert_snapshot!(stdout(&out));
    let out = run(&["lint", "--rules", "tests/data/authoring/clean.toml"], b"");
    assert_eq!(
        (code(&out), stdout(&out)),
        (0, "0 errors, 0 warnings\n".into())
    );
    let out = run(&["lint"], b"");
    assert_eq!(
        (code(&out), stdout(&out)),
        (0, "0 errors, 0 warnings\n".into()),
        "the bundled rules lint clean"
    );
}

#[test]
fn lint_warnings_fail_only_when_strict() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[(
            "r.toml",
            "[[rule]]\nid = \"x\"\ncategory = 8\nseverity = \"low\"\nterms = [\"笨\"]\n",
        )],
    );
    let rules = dir.path().join("r.toml");
    let out = run(&["lint", "--rules", rules.to_str().unwrap()], b"");
    assert_eq!(code(&out), 0);
    let s = stdout(&out);
    assert!(
        s.contains("r.toml:5:10: warning: rule `x`: single-character Chinese term `笨`"),
        "{s}"
    );
    assert!(
        s.contains("r.toml:1:1: warning: rule `x`: no examples"),
        "{s}"
    );
    assert!(s.ends_with("0 errors, 2 warnings\n"), "{s}");
    let out = run(
        &["lint", "--strict", "--rules", rules.to_str().unwrap()],
        b"",
    );
    assert_eq!(code(&out), 1);
}

#[test]
fn test_runs_the_test_files_beside_the_rules_and_says_what_happened() {
    let out = run(&["test", "--rules", "tests/data/authoring/clean.toml"], b"");
    assert_eq!(
        (code(&out), stdout(&out)),
        (0, "5 passed, 0 failed\n".into())
    );
    let dir = tempfile::tempdir().unwrap();
    let rules = std::fs::read_to_string("tests/data/authoring/clean.toml").unwrap();
    write_files(
        dir.path(),
        &[
            ("insults.toml", rules.as_str()),
            (
                "insults.test.toml",
                "[[test]]\ntext = \"蠢 货\"\naction = \"delete\"\nmasked = \"蠢 货\"\n\n[[test]]\ntext = \"你好\"\nrules = [\"insult.sample\"]\n",
            ),
        ],
    );
    // A directory: its *.test.toml files run too.
    let out = run(&["test", "--rules", dir.path().to_str().unwrap()], b"");
    assert_eq!(code(&out), 1);
    let s = stdout(&out);
    let lines: Vec<&str> = s.lines().collect();
    assert!(
        lines[0].ends_with(
            "insults.test.toml:1:1: test \"蠢 货\": action mask, expected delete; masked \"＊＊＊\", expected \"蠢 货\""
        ),
        "{s}"
    );
    assert_eq!(
        lines[1],
        "     hit insult.sample \"蠢 货\" at chars 0..3 (bytes 0..7) by term \"蠢货\", noise"
    );
    assert!(
        lines[2].ends_with(
            "insults.test.toml:6:1: test \"你好\": rules [], expected [\"insult.sample\"]"
        ),
        "{s}"
    );
    assert_eq!(lines[3], "     no hits");
    assert_eq!(lines[4], "2 passed, 2 failed");
}

#[test]
fn diff_shows_what_a_rule_change_does_to_an_archive() {
    let dir = tempfile::tempdir().unwrap();
    let old = "[[rule]]\nid = \"insult\"\ncategory = 8\nseverity = \"low\"\naction = \"mask\"\nterms = [\"傻逼\", \"脑残\"]\n";
    let new = "[[rule]]\nid = \"insult\"\ncategory = 8\nseverity = \"low\"\naction = \"review\"\nterms = [\"傻逼\"]\n\n[[rule]]\nid = \"weather\"\ncategory = 9\nseverity = \"low\"\naction = \"mask\"\nterms = [\"天气\"]\n";
    let posts = "{\"id\":\"a\",\"text\":\"你这个傻逼\"}\n{\"id\":\"b\",\"text\":\"楼主脑残\"}\n{\"id\":\"c\",\"text\":\"今天天气不错\"}\n{\"id\":\"d\",\"text\":\"你好\"}\nnot json\n";
    write_files(
        dir.path(),
        &[("old.toml", old), ("new.toml", new), ("posts.jsonl", posts)],
    );
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    let out = run(
        &[
            "diff",
            "--old",
            &p("old.toml"),
            "--new",
            &p("new.toml"),
            "-i",
            &p("posts.jsonl"),
            "-o",
            &p("changes.jsonl"),
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let s = stdout(&out);
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(
        lines[..8],
        [
            "shenhe diff: 4 posts, 3 changed; flagged 2 -> 2",
            "  newly_flagged       1",
            "  cleared             1",
            "  action_changed      1",
            "  categories_changed  0",
            "  rules_changed       0",
            "by rule (posts newly hit / no longer hit):",
            "  insult                       +0 -1",
        ]
    );
    assert!(s.contains("  weather                      +1 -0"), "{s}");
    assert!(
        s.contains("  line 3: allow [] -> mask [\"weather\"]  今天天气不错"),
        "{s}"
    );
    assert!(
        s.ends_with("1 lines were not posts and are not compared\n"),
        "{s}"
    );
    let changes: Vec<serde_json::Value> = std::fs::read_to_string(p("changes.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<(&str, &str)> = changes
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c["change"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("a", "action_changed"),
            ("b", "cleared"),
            ("c", "newly_flagged")
        ]
    );
}

#[test]
fn import_converts_a_gbk_word_list_into_a_rule_file_that_loads() {
    let dir = tempfile::tempdir().unwrap();
    // "赌博\n賭博\n# 注释\n网络赌场\n！！\n" in GBK.
    let gbk: &[u8] = b"\xb6\xc4\xb2\xa9\n\xd9\x80\xb2\xa9\n# \xd7\xa2\xca\xcd\n\xcd\xf8\xc2\xe7\xb6\xc4\xb3\xa1\n\xa3\xa1\xa3\xa1\n";
    std::fs::write(dir.path().join("list.txt"), gbk).unwrap();
    let list = dir.path().join("list.txt");
    let rules = dir.path().join("imported.toml");
    let out = run(
        &[
            "import",
            list.to_str().unwrap(),
            "--category",
            "7",
            "--id",
            "gambling.imported",
            "--severity",
            "high",
            "-o",
            rules.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let e = stderr(&out);
    let lines: Vec<&str> = e.lines().collect();
    assert!(lines[0].starts_with("imported 2 terms from "), "{e}");
    assert!(
        lines[0].ends_with(
            "(GBK, converted to UTF-8); dropped 1 duplicates and 1 terms that normalise to nothing"
        ),
        "{e}"
    );
    assert!(
        lines[1].ends_with("list.txt:2: duplicate `賭博` (as line 1)"),
        "{e}"
    );
    assert!(
        lines[2].ends_with("list.txt:5: `！！` normalises to nothing"),
        "{e}"
    );
    // The rule file loads and catches its terms.
    let out = run(
        &["check", "--rules", rules.to_str().unwrap(), "网络赌场"],
        b"",
    );
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    let out = run(&["test", "--rules", rules.to_str().unwrap()], b"");
    assert_eq!(stdout(&out), "1 passed, 0 failed\n");
    // Bytes that are neither UTF-8 nor GBK are refused, naming the line.
    std::fs::write(&list, b"ok\n\x80\xff\n").unwrap();
    let out = run(
        &[
            "import",
            list.to_str().unwrap(),
            "--category",
            "7",
            "--id",
            "x",
        ],
        b"",
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("list.txt: line 2: neither UTF-8 nor GBK"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn scan_stats_names_rules_that_never_fire_and_rules_that_flag_too_much() {
    let dir = tempfile::tempdir().unwrap();
    let rules = "[[rule]]\nid = \"everywhere\"\ncategory = 9\nseverity = \"low\"\nboundary = \"none\"\nterms = [\"的\"]\n\n[[rule]]\nid = \"nowhere\"\ncategory = 7\nseverity = \"high\"\nterms = [\"这个词不会出现\"]\n\n[[rule]]\nid = \"drugs\"\ncategory = 7\nseverity = \"high\"\nregex = ['冰.毒']\n";
    write_files(dir.path(), &[("r.toml", rules)]);
    let stats = dir.path().join("stats.json");
    let out = run(
        &[
            "scan",
            "--rules",
            dir.path().join("r.toml").to_str().unwrap(),
            "-i",
            "examples/posts.jsonl",
            "-o",
            "/dev/null",
            "--stats",
            stats.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "stats: 1 rules never fired, 1 suspect (hit more than 5.0% of posts): everywhere;"
        ),
        "{}",
        stderr(&out)
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    assert_eq!(r["posts"], 300);
    assert_eq!(r["never_fired"], serde_json::json!(["nowhere"]));
    assert_eq!(r["suspect"], serde_json::json!(["everywhere"]));
    let first = &r["rules"][0];
    assert_eq!(first["rule"], "everywhere");
    assert!(
        first["share"].as_f64().unwrap() > 0.3 && first["hits"].as_u64() > first["posts"].as_u64()
    );
    for kind in [
        "literal",
        "regex",
        "word_boundary",
        "policy_and_decision",
        "total",
    ] {
        assert!(
            r["time_ms"][kind].as_f64().is_some(),
            "{kind}: {}",
            r["time_ms"]
        );
    }
    assert!(r["time_ms"]["total"].as_f64().unwrap() > 0.0);
}
