//! One route for every face: the same 3,000 posts (poster metadata, times, repeat offenders
//! inside escalation windows) through `shenhe scan --audit --reports`, through the C
//! moderator one call per post, and through `Pipeline` from Rust give the same decisions,
//! the same audit records and the same reports.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use shenhe::audit::{AuditKey, AuditStore, Filter};
use shenhe::{Engine, EngineHandle, Pipeline, Post};

/// 3,000 posts from 40 accounts on 20 addresses over about two weeks: flagged texts of
/// several categories (reported ones among them), evasions, clean texts, titles, boards,
/// metadata with a field of the wrong type now and then.
fn posts() -> Vec<String> {
    let texts = [
        "出售冰毒，量大从优",
        "今天天气不错，大家出来走走",
        "这里有网络赌场，欢迎来玩",
        "你就是个傻逼",
        "周末一起去爬山吗？",
        "賭 博 網 站 開 業",
        "代开发票，联系我",
        "楼主说得对，支持一下",
        "傻 逼 楼主",
        "新版本的更新日志在这里",
    ];
    let mut seed: u64 = 0x5eed;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    (0..3000)
        .map(|i| {
            let minutes = i * 7;
            let time = format!(
                "2026-11-{:02}T{:02}:{:02}:00+08:00",
                1 + minutes / (24 * 60),
                minutes / 60 % 24,
                minutes % 60
            );
            let user = next() % 40;
            let ip = next() % 20;
            let text = texts[next() % texts.len()];
            let mut post = serde_json::json!({
                "id": format!("p{i}"),
                "text": text,
                "time": time,
                "board": if i % 3 == 0 { "finance" } else { "tech" },
                "poster": {
                    "user_id": format!("u{user}"),
                    "name": format!("用户{user}"),
                    "verified": user % 4 != 0,
                    "identity_ref": format!("rn-{user}"),
                    "ip": format!("203.0.113.{ip}"),
                    "port": 40000 + i % 20000,
                    "registered": "2025-01-01T00:00:00+08:00"
                }
            });
            if i % 5 == 0 {
                post["title"] = Value::from(texts[next() % texts.len()]);
            }
            if i % 97 == 0 {
                post["poster"]["port"] = Value::from("not a port");
            }
            post.to_string()
        })
        .collect()
}

/// Decision lines as values, without the input line number (only a file scan has one).
fn decisions(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| {
            let mut v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not a decision: {l}: {e}"));
            v.as_object_mut().unwrap().remove("line");
            v
        })
        .collect()
}

/// The content of every record in the store, in chain order: everything but where and when
/// it was stored (sequence, day, run, input line, scan time, chain hash).
fn records(db: &Path, key: &AuditKey) -> Vec<Value> {
    let store = AuditStore::open(db, Some(key.clone())).unwrap();
    assert_eq!(store.verify(None).unwrap().problem, None);
    let mut out = Vec::new();
    store
        .query(&Filter::default(), |r| {
            let mut v = serde_json::to_value(&r).unwrap();
            for k in ["seq", "day", "run", "line", "scan_time", "hash"] {
                v.as_object_mut().unwrap().remove(k);
            }
            out.push(v);
            Ok(())
        })
        .unwrap();
    out
}

/// Every report in `dir`, without its input line and times, sorted by post id; and the
/// number of index rows.
fn reports(dir: &Path) -> (Vec<Value>, usize) {
    let mut out: Vec<Value> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let mut v: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            for k in ["line", "detected", "deadline"] {
                v.as_object_mut().unwrap().remove(k);
            }
            v
        })
        .collect();
    out.sort_by_key(|v| v["post_id"].as_str().unwrap().to_owned());
    let rows = std::fs::read_to_string(dir.join("index.csv"))
        .unwrap()
        .lines()
        .count()
        - 1;
    (out, rows)
}

#[test]
fn the_cli_the_c_moderator_and_the_rust_pipeline_decide_record_and_report_alike() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let posts = posts();
    let input = posts.join("\n") + "\n";
    std::fs::write(d.join("posts.jsonl"), &input).unwrap();
    let key = AuditKey::generate();
    std::fs::write(d.join("key"), key.to_hex()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d.join("key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let path = |name: &str| d.join(name).to_str().unwrap().to_owned();

    // 1. The command line, over the file.
    let out = common::run(
        &[
            "scan",
            "-q",
            "-i",
            &path("posts.jsonl"),
            "-o",
            &path("cli.jsonl"),
            "--audit",
            &path("cli.db"),
            "--audit-key-file",
            &path("key"),
            "--reports",
            &path("cli-reports"),
        ],
        b"",
    );
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    let cli = decisions(&std::fs::read_to_string(d.join("cli.jsonl")).unwrap());

    // 2. C, one shenhe_moderate_json call per post.
    let exe = common::compile_c("tests/c/moderate_each.c", d);
    let mut child = Command::new(&exe)
        .args([path("c.db"), path("key"), path("c-reports")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(input.as_bytes()).unwrap();
    });
    let run = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let c = decisions(&String::from_utf8(run.stdout).unwrap());

    // 3. Rust, one Pipeline::moderate call per post.
    let pipeline = Pipeline::builder(EngineHandle::new(Engine::bundled()))
        .audit(AuditStore::open(d.join("rust.db"), Some(key.clone())).unwrap())
        .reports(d.join("rust-reports"))
        .build()
        .unwrap();
    let rust: Vec<Value> = posts
        .iter()
        .map(|p| {
            // A well-formed post as a Rust caller holds it; one with a field of the wrong
            // type as JSON, which the line contract reads leniently.
            let decision = match Post::from_json(p) {
                Ok(post) => pipeline.moderate(&post).unwrap(),
                Err(_) => pipeline.moderate_json(p.as_bytes()).unwrap(),
            };
            serde_json::to_value(&decision).unwrap()
        })
        .collect();
    pipeline.finish().unwrap();

    // The run means something: every kind of outcome is in it.
    let count = |f: &dyn Fn(&Value) -> bool| cli.iter().filter(|v| f(v)).count();
    assert_eq!(cli.len(), 3000);
    let reported = count(&|v| v["report"] == true);
    assert!(reported > 100, "{reported} reported");
    assert!(count(&|v| v.get("measures").is_some()) > 100, "escalations");
    assert!(count(&|v| v["action"] == "allow") > 500, "clean posts");
    assert!(count(&|v| v.get("warnings").is_some()) > 10, "warnings");

    for (i, ((a, b), r)) in cli.iter().zip(&c).zip(&rust).enumerate() {
        assert_eq!(a, b, "post {i}: the CLI and C disagree");
        assert_eq!(a, r, "post {i}: the CLI and the Rust pipeline disagree");
    }
    assert_eq!((c.len(), rust.len()), (3000, 3000));

    let key = &key;
    let cli_records = records(&d.join("cli.db"), key);
    assert_eq!(cli_records.len(), 3000);
    assert_eq!(cli_records, records(&d.join("c.db"), key), "C's records");
    assert_eq!(
        cli_records,
        records(&d.join("rust.db"), key),
        "Rust's records"
    );

    let (cli_reports, cli_rows) = reports(&d.join("cli-reports"));
    assert_eq!((cli_reports.len(), cli_rows), (reported, reported));
    assert_eq!(
        reports(&d.join("c-reports")),
        (cli_reports.clone(), reported)
    );
    assert_eq!(reports(&d.join("rust-reports")), (cli_reports, reported));
}
