//! The C API, driven from C: the committed header is current, and real C programs compiled
//! with `cc` against the static library behave as the header promises.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::manifest;

/// `include/shenhe.h` as cbindgen generates it now.
fn generated_header() -> String {
    let config = cbindgen::Config::from_file(manifest().join("cbindgen.toml")).unwrap();
    let mut out = Vec::new();
    // Only src/ffi.rs: the crate's other public items are not the C API.
    cbindgen::Builder::new()
        .with_src(manifest().join("src/ffi.rs"))
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn header_is_current() {
    let path = manifest().join("include/shenhe.h");
    let now = generated_header();
    if std::env::var_os("SHENHE_WRITE_HEADER").is_some() {
        std::fs::write(&path, &now).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == now,
        "include/shenhe.h is stale: regenerate it with SHENHE_WRITE_HEADER=1 cargo test --test capi header_is_current"
    );
}

/// Compiles `tests/c/NAME.c` against the static library and runs it with `args`.
fn run_c(name: &str, args: &[&str]) -> (i32, String, String) {
    run_c_file(&format!("tests/c/{name}.c"), args, None)
}

/// Compiles the C file `source` (relative to the crate) against the static library and
/// runs it with `args`, feeding it `stdin`.
fn run_c_file(source: &str, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let exe = common::compile_c(source, dir.path());
    let mut child = Command::new(&exe)
        .args(args)
        .current_dir(manifest())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        input
            .write_all(stdin.unwrap_or_default().as_bytes())
            .unwrap();
    }
    let run = child.wait_with_output().unwrap();
    (
        run.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&run.stdout).into_owned(),
        String::from_utf8_lossy(&run.stderr).into_owned(),
    )
}

#[test]
fn a_c_program_scans_posts_and_handles_every_error() {
    let (code, stdout, stderr) = run_c("smoke", &[]);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    insta::assert_snapshot!(stdout);
}

#[test]
fn reload_swaps_rules_while_threads_scan() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.toml");
    let b = dir.path().join("b.toml");
    std::fs::write(
        &a,
        "[[rule]]\nid = \"a\"\ncategory = 7\nseverity = \"high\"\nterms = [\"甲甲\"]\n",
    )
    .unwrap();
    std::fs::write(
        &b,
        "[[rule]]\nid = \"b\"\ncategory = 7\nseverity = \"high\"\nterms = [\"乙乙\"]\n",
    )
    .unwrap();
    let (code, stdout, stderr) = run_c("reload", &[a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("reload ok: 1001 reloads"), "{stdout}");
    assert!(
        stdout.contains("decisions with a mixed or wrong rule set: 0"),
        "{stdout}"
    );
    assert!(stdout.contains("bad reload kept the old rules"), "{stdout}");
}

/// The sample posts' texts, one per line (newlines inside a text become spaces), plus a
/// line that is not UTF-8.
fn sample_texts(dir: &Path) -> PathBuf {
    let mut out = Vec::new();
    for line in include_str!("../examples/posts.jsonl").lines() {
        let post = shenhe::Post::from_json(line).unwrap();
        out.extend_from_slice(post.text.replace(['\n', '\r'], " ").as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"\xff\xfe broken\n");
    let path = dir.join("texts.txt");
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn the_batch_call_equals_one_call_per_text() {
    let dir = tempfile::tempdir().unwrap();
    let texts = sample_texts(dir.path());
    // The sample posts, then lines that cannot be decided: not JSON, no string text.
    let mut posts = std::fs::read_to_string(manifest().join("examples/posts.jsonl")).unwrap();
    posts.push_str("{\"id\":\"cut\"\n{\"text\":5}\n");
    let posts_file = dir.path().join("posts.jsonl");
    std::fs::write(&posts_file, posts).unwrap();
    let (code, stdout, stderr) = run_c(
        "batch",
        &[texts.to_str().unwrap(), posts_file.to_str().unwrap()],
    );
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("301 texts") && stdout.contains("1 failed alike, 0 mismatches"),
        "{stdout}"
    );
    // Null entries are not posts (an error each, never allow); the invalid line fails alone.
    assert!(
        stdout.contains("jsonl texts: 200 decided, 0 mismatches"),
        "{stdout}"
    );
    for threads in 0..3 {
        assert!(
            stdout.contains(&format!(
                "jsonl posts on {threads} threads: 300 of 302 decided, 0 mismatches"
            )),
            "{stdout}"
        );
    }
}

/// The threads example (scripts/bench-c-threads.sh) scans every post on one thread and on
/// two sharing one engine, and names a post it could not decide.
#[test]
fn the_threads_example_scans_on_one_and_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let posts = dir.path().join("posts.jsonl");
    std::fs::write(
        &posts,
        "{\"id\":1,\"text\":\"今天天气不错\"}\n{\"id\":2,\"text\":\"出售冰毒\"}\n\n{\"text\":\"网络赌场\"}\n",
    )
    .unwrap();
    let (code, stdout, stderr) = run_c_file(
        "examples/c/threads.c",
        &[posts.to_str().unwrap(), "2", "1"],
        None,
    );
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.starts_with("3 posts x 2 passes: one thread ") && stdout.contains("x\n"),
        "{stdout}"
    );
    std::fs::write(&posts, "{\"id\":1,\"text\":\"好\"}\n{\"id\":2}\n").unwrap();
    let (code, _, stderr) = run_c_file(
        "examples/c/threads.c",
        &[posts.to_str().unwrap(), "1", "1"],
        None,
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("post 2 (counting non-empty lines) was not decided"),
        "{stderr}"
    );
}

#[test]
fn the_submit_hook_example_publishes_holds_rejects_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let posts = [
        r#"{"id":"t1","text":"今天天气不错"}"#,
        r#"{"id":"t2","text":"你这个傻逼","poster":{"user_id":"u1"}}"#,
        r#"{"id":"t3","text":"出售冰毒，有意私聊","poster":{"user_id":"u2","ip":"203.0.113.7","port":51234,"identity_ref":"RN-1"}}"#,
        r#"{"id":"t4""#,
        "#reload",
    ]
    .join("\n");
    let audit = dir.path().join("audit.db");
    let (code, stdout, stderr) = run_c_file(
        "examples/c/submit_hook.c",
        &["-", reports.to_str().unwrap(), audit.to_str().unwrap()],
        Some(&posts),
    );
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "post 1: publish",
            "post 2: publish masked",
            "post 3: reject, reported",
            "post 4: reject (unreadable)",
        ],
        "stderr:\n{stderr}"
    );
    assert!(stderr.contains("reload failed"), "{stderr}");
    let written: Vec<_> = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("report-"))
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");
    let index = std::fs::read_to_string(reports.join("index.csv")).unwrap();
    assert!(
        index.contains("203.0.113.7") && index.contains("51234"),
        "{index}"
    );
    assert!(reports.join("index.html").exists());
    // Every readable post is in the audit store, and the store verifies.
    let conn = rusqlite::Connection::open(&audit).unwrap();
    let ids: Vec<String> = conn
        .prepare("SELECT post_id FROM records ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(ids, ["\"t1\"", "\"t2\"", "\"t3\""]);
    let store = shenhe::audit::AuditStore::open(&audit, None).unwrap();
    assert_eq!(store.verify(None).unwrap().problem, None);
}
