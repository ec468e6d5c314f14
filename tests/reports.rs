//! `shenhe scan --reports DIR` and escalation through the real binary.

mod common;

use common::*;
use serde_json::Value;

#[test]
fn reports_are_written_complete_as_json_csv_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let out = run(
        &[
            "scan",
            "-i",
            "examples/posts.jsonl",
            "-o",
            dir.path().join("d.jsonl").to_str().unwrap(),
            "--reports",
            reports.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let decisions: Vec<Value> = std::fs::read_to_string(dir.path().join("d.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let reported: Vec<&Value> = decisions.iter().filter(|d| d["report"] == true).collect();
    assert!(reported.len() > 10);
    assert!(
        stderr(&out).contains(&format!("reports: {} written", reported.len())),
        "{}",
        stderr(&out)
    );

    let mut files: Vec<_> = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), reported.len(), "one report per reported post");

    let sample: Vec<Value> = include_str!("../examples/posts.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let csv = std::fs::read_to_string(reports.join("index.csv")).unwrap();
    assert!(
        csv.starts_with("\u{feff}post_id,line,detected,deadline,"),
        "UTF-8 BOM and header"
    );
    assert_eq!(csv.lines().count(), reported.len() + 1);
    let html = std::fs::read_to_string(reports.join("index.html")).unwrap();
    assert!(html.contains(&format!("待报告信息：{} 条", reported.len())));

    for (d, file) in reported.iter().zip(&files) {
        let r: Value =
            serde_json::from_str(&std::fs::read_to_string(reports.join(file)).unwrap()).unwrap();
        let post = &sample[d["line"].as_u64().unwrap() as usize - 1];
        assert_eq!(r["post_id"], post["id"]);
        assert_eq!(r["text"], post["text"], "the full original text");
        assert_eq!(r["board"], post["board"]);
        assert_eq!(r["published"], post["time"]);
        assert_eq!(r["poster"]["ip"], post["poster"]["ip"]);
        assert_eq!(r["poster"]["port"], post["poster"]["port"]);
        assert_eq!(r["poster"]["user_id"], post["poster"]["user_id"]);
        assert_eq!(r["poster"]["identity_ref"], post["poster"]["identity_ref"]);
        assert_eq!(r["action"], d["action"]);
        assert_eq!(r["hits"], d["hits"]);
        assert_eq!(r["ruleset"], d["ruleset"]);
        assert!(r["detected"].as_str().unwrap().ends_with("+08:00"));
        assert!(r["deadline"].as_str().unwrap() > r["detected"].as_str().unwrap());
        for c in r["categories"].as_array().unwrap() {
            assert!(c["basis"]
                .as_str()
                .unwrap()
                .starts_with("《互联网信息服务管理办法》第十五条第（"));
            assert!(!c["title"].as_str().unwrap().is_empty());
        }
        assert!(r["duties"][1].as_str().unwrap().contains("网络安全法"));
        // The officer's page shows every report's text, account and address.
        let text_html = post["text"]
            .as_str()
            .unwrap()
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        assert!(html.contains(&text_html), "{}", post["text"]);
        let row_start = html
            .find(&format!("<a href=\"{file}\">"))
            .expect("a row per report");
        let row = &html[row_start..row_start + html[row_start..].find("</tr>").unwrap()];
        for field in ["ip", "user_id", "identity_ref"] {
            if let Some(v) = post["poster"][field].as_str() {
                assert!(row.contains(v), "{field} {v} in {row}");
            }
        }
        assert!(
            row.contains(&format!("port {}", post["poster"]["port"])),
            "{row}"
        );
        assert!(
            row.contains(&format!("verified: {}", post["poster"]["verified"])),
            "{row}"
        );
        for key in ["board", "published", "detected", "deadline"] {
            let v = r[key].as_str().unwrap();
            assert!(row.contains(v), "{key} {v} in {row}");
        }
        if let Some(t) = post["title"].as_str() {
            assert!(row.contains(t), "title {t}");
        }
        for c in r["categories"].as_array().unwrap() {
            assert!(row.contains(c["basis"].as_str().unwrap()), "basis in {row}");
        }
        for h in r["hits"].as_array().unwrap() {
            assert!(row.contains(h["rule"].as_str().unwrap()), "rule in {row}");
        }
        assert!(row.contains(r["action"].as_str().unwrap()));
        assert!(row.contains(&r["ruleset"]["hash"].as_str().unwrap()[..16]));
    }
}

#[test]
fn repeat_offences_escalate_in_input_order_on_several_threads() {
    let mut input = String::new();
    for i in 0..3000 {
        // The same account posts an insult every hour; others post clean text.
        let text = if i % 100 == 0 {
            "你就是个傻逼"
        } else {
            "今天天气不错"
        };
        let user = if i % 100 == 0 { "troll" } else { "u" };
        let hour = i / 100;
        input.push_str(&format!(
            "{{\"id\":{i},\"text\":\"{text}\",\"time\":\"2026-11-20T{:02}:00:00+08:00\",\"poster\":{{\"user_id\":\"{user}\"}}}}\n",
            hour % 24
        ));
    }
    let out = run(&["scan", "--threads", "2", "-q"], input.as_bytes());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let d = json_lines(&out);
    let troll: Vec<&Value> = d
        .iter()
        .filter(|d| d["id"].as_i64().unwrap() % 100 == 0)
        .collect();
    assert_eq!(troll.len(), 30);
    let measures: Vec<String> = troll.iter().map(|d| d["measures"].to_string()).collect();
    assert_eq!(measures[0], "null");
    assert_eq!(measures[1], "null");
    assert_eq!(measures[2], r#"["warn"]"#, "third offence within 24 hours");
    assert_eq!(troll[2]["action"], "review", "mask raised one level");
    assert_eq!(measures[5], r#"["restrict"]"#);
    assert_eq!(measures[8], r#"["suspend"]"#);
}

/// A long-running embedder restarts: its `Pipeline` reopens the reports directory and
/// adds to it, never overwriting a report or losing an index row.
#[test]
fn a_restarted_pipeline_adds_to_its_reports_directory() {
    use shenhe::{Engine, EngineHandle, Pipeline, Post};
    let dir = tempfile::tempdir().unwrap();
    let post = |id: &str| {
        Post::from_json(&format!(
            r#"{{"text":"出售冰毒","poster":{{"user_id":"u-{id}","ip":"203.0.113.5","port":443}}}}"#
        ))
        .unwrap()
    };
    for (run, id) in ["a", "b"].iter().enumerate() {
        let m = Pipeline::builder(EngineHandle::new(Engine::bundled()))
            .reports(dir.path())
            .build()
            .unwrap();
        let d = m.moderate(&post(id)).unwrap();
        assert!(d.report && d.warnings.is_empty(), "{:?}", d.warnings);
        assert_eq!(m.finish().unwrap().reports, Some(run as u64 + 1));
    }
    let mut files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("report-"))
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["report-00000001-noid.json", "report-00000002-noid.json"]
    );
    let csv = std::fs::read_to_string(dir.path().join("index.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "one header, two rows:\n{csv}");
    assert!(csv.contains("u-a") && csv.contains("u-b"), "{csv}");
    let html = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    assert!(
        html.contains("u-a") && html.contains("u-b"),
        "both runs listed"
    );
}

#[test]
fn a_resumed_scan_lists_each_report_once_and_restores_a_lost_row() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let (output, checkpoint) = (dir.path().join("d.jsonl"), dir.path().join("cp"));
    let scan = |resume: bool| {
        let mut args = vec![
            "scan",
            "-i",
            "examples/posts.jsonl",
            "-o",
            output.to_str().unwrap(),
            "--reports",
            reports.to_str().unwrap(),
            "--checkpoint",
            checkpoint.to_str().unwrap(),
        ];
        if resume {
            args.push("--resume");
        }
        let out = run(&args, b"");
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    };
    scan(false);
    let rows = |csv: &str| -> Vec<String> { csv.lines().skip(1).map(str::to_owned).collect() };
    let before = rows(&std::fs::read_to_string(reports.join("index.csv")).unwrap());
    assert!(before.len() > 10);
    // As after a crash: the reports of the second half were written but the checkpoint
    // still says line 150, and the index lost its last row.
    std::fs::write(&checkpoint, "150\n").unwrap();
    let csv = std::fs::read_to_string(reports.join("index.csv")).unwrap();
    let cut = csv.trim_end_matches('\n').rfind('\n').unwrap() + 1;
    std::fs::write(reports.join("index.csv"), &csv[..cut]).unwrap();
    scan(true);

    let reported = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).unwrap()["report"] == true)
        .count();
    let files: Vec<String> = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    let after = rows(&std::fs::read_to_string(reports.join("index.csv")).unwrap());
    assert_eq!(files.len(), reported, "one report file per reported post");
    assert_eq!(
        after.len(),
        reported,
        "one index row per report, none doubled"
    );
    for f in &files {
        let listed = after.iter().filter(|r| r.contains(f.as_str())).count();
        assert_eq!(listed, 1, "{f} listed {listed} times");
    }
    // Rows of reports decided once are as they were.
    assert_eq!(after[..before.len() / 2], before[..before.len() / 2]);
    let html = std::fs::read_to_string(reports.join("index.html")).unwrap();
    assert!(
        html.contains(&format!("待报告信息：{reported} 条")),
        "the page counts each once"
    );
}
