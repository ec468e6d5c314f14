//! The audit log through the real binary: `scan --audit`, tampering with the sqlite3 tool,
//! retention under a moved clock, sealed personal fields, and scans killed with SIGKILL
//! and resumed until done.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// An archive of `n` posts made from the sample posts, each with its own id.
fn archive(dir: &Path, n: usize) -> std::path::PathBuf {
    let sample: Vec<serde_json::Value> = include_str!("../examples/posts.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut out = String::new();
    for i in 0..n {
        let mut p = sample[i % sample.len()].clone();
        p["id"] = serde_json::json!(format!("a{i}"));
        out.push_str(&p.to_string());
        out.push('\n');
        // Some lines that are not posts: they get an error line and no record.
        if i % 997 == 5 {
            out.push_str("{\"id\":\"broken\"\n");
        }
    }
    let path = dir.join("archive.jsonl");
    std::fs::write(&path, out).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs SQL on the store with the sqlite3 tool (as an intruder would), or with rusqlite
/// where the tool is not installed.
fn sqlite(db: &Path, sql: &str) {
    match Command::new("sqlite3").arg(db).arg(sql).output() {
        Ok(out) => assert!(
            out.status.success(),
            "sqlite3: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => rusqlite::Connection::open(db)
            .unwrap()
            .execute_batch(sql)
            .unwrap(),
    }
}

fn verify(db: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["audit", "verify", "--db", s(db)];
    args.extend_from_slice(extra);
    let out = run(&args, b"");
    (code(&out), stdout(&out) + &stderr(&out))
}

/// A scanned store: (dir, db path).
fn scanned(n: usize) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let input = archive(dir.path(), n);
    let db = dir.path().join("audit.db");
    let out = run(
        &[
            "scan",
            "-q",
            "-i",
            s(&input),
            "-o",
            s(&dir.path().join("d.jsonl")),
            "--audit",
            s(&db),
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    (dir, db)
}

#[test]
fn every_kind_of_tampering_is_caught_and_named() {
    let cases = [
        (
            "UPDATE records SET action = CASE action WHEN 'allow' THEN 'delete' ELSE 'allow' END WHERE seq = 40;",
            "record 40",
            "edited",
        ),
        ("DELETE FROM records WHERE seq = 40;", "record 41", "chain is broken"),
        (
            "INSERT INTO records SELECT seq + 1000, day, run, line, post_id, post_time, scan_time, user_id, personal, content, categories, action, report, measures, hits, ruleset, prev, hash, caller, event FROM records WHERE seq = 40;",
            "record 1040",
            "inserted",
        ),
        (
            "UPDATE records SET seq = -1 WHERE seq = 40; UPDATE records SET seq = 40 WHERE seq = 41; UPDATE records SET seq = 41 WHERE seq = -1;",
            "record 40",
            "",
        ),
        (
            "UPDATE manifest SET count = count - 1;",
            "lists",
            "records",
        ),
    ];
    for (sql, names, says) in cases {
        let (_dir, db) = scanned(200);
        let (code_before, text) = verify(&db, &[]);
        assert_eq!(code_before, 0, "{text}");
        assert!(text.starts_with("ok: 200 records in 1 days"), "{text}");
        sqlite(&db, sql);
        let (code, text) = verify(&db, &[]);
        assert_eq!(code, 1, "{sql}: {text}");
        assert!(
            text.starts_with("TAMPERED: ") && text.contains(names) && text.contains(says),
            "{sql}: {text}"
        );
    }
}

#[test]
fn a_truncated_tail_is_caught_with_the_head_kept_elsewhere() {
    let (_dir, db) = scanned(100);
    let head = stdout(&run(&["audit", "head", "--db", s(&db)], b""));
    let head = head.split_whitespace().nth(1).unwrap().to_owned();
    // Remove the last record and make the manifest agree.
    sqlite(
        &db,
        "UPDATE manifest SET count = count - 1, last_seq = last_seq - 1, final_hash = (SELECT prev FROM records WHERE seq = 100); DELETE FROM records WHERE seq = 100;",
    );
    assert_eq!(verify(&db, &[]).0, 0, "the store alone cannot tell");
    let (code, text) = verify(&db, &["--expect-head", &head]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("expected"), "{text}");
}

/// A store whose records (the 50-post archive) were decided `days_ago` days before now,
/// written through the library: the command line cannot date a record, or a prune, in the
/// future.
fn past_store(days_ago: i64) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let input = std::fs::read_to_string(archive(dir.path(), 50)).unwrap();
    let db = dir.path().join("audit.db");
    let engine = shenhe::Engine::bundled();
    let posts: Vec<shenhe::Post> = input
        .lines()
        .filter_map(|l| shenhe::jsonl::read_post(l.as_bytes(), &engine.limits()).ok())
        .map(|(p, _)| p)
        .collect();
    let decisions: Vec<shenhe::Decision> = posts.iter().map(|p| engine.scan(p)).collect();
    let mut store = shenhe::audit::AuditStore::open(&db, None).unwrap();
    let run = store
        .begin_run(Some("archive"), None, engine.rules().hash())
        .unwrap();
    let then = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * days_ago);
    let entries = posts.iter().zip(&decisions).map(|(p, d)| (None, p, d));
    store.append(run, entries, then).unwrap();
    (dir, db)
}

#[test]
fn retention_never_prunes_younger_than_184_days_and_holds_keep_records() {
    let prune = |db: &Path, max: &str| {
        let out = run(&["audit", "prune", "--db", s(db), "--max-days", max], b"");
        (code(&out), stdout(&out) + &stderr(&out))
    };
    // Records 183 days old are not old enough, even at the minimum retention.
    let (_young_dir, young) = past_store(183);
    let (c, text) = prune(&young, "184");
    assert_eq!((c, text.starts_with("pruned 0 days")), (0, true), "{text}");
    let (c, text) = prune(&young, "183");
    assert_eq!(c, 2, "below the floor is refused: {text}");
    assert!(text.contains("at least 184 days"), "{text}");
    // Records 192 days old: hold one account's, then prune at 190 days.
    let (_old_dir, db) = past_store(192);
    let held = run(&["audit", "hold", "--db", s(&db), "--user", "u31"], b"");
    assert_eq!(code(&held), 0, "{}", stderr(&held));
    let (c, text) = prune(&db, "190");
    assert_eq!(c, 0, "{text}");
    assert!(text.starts_with("pruned 1 days"), "{text}");
    let q = run(&["audit", "query", "--db", s(&db), "--json"], b"");
    let left = json_lines(&q);
    assert!(
        !left.is_empty() && left.iter().all(|r| r["user_id"] == "u31"),
        "{left:?}"
    );
    let (c, text) = verify(&db, &[]);
    assert_eq!(c, 0, "a pruned store verifies: {text}");
    assert!(text.contains("(1 pruned)"), "{text}");
}

#[test]
fn personal_fields_are_sealed_with_the_operators_key() {
    let dir = tempfile::tempdir().unwrap();
    let input = archive(dir.path(), 30);
    let db = dir.path().join("sealed.db");
    let key = stdout(&run(&["audit", "keygen"], b""));
    let key_file = dir.path().join("key.hex");
    std::fs::write(&key_file, &key).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = shenhe()
        .args([
            "scan",
            "-q",
            "-i",
            s(&input),
            "-o",
            "/dev/null",
            "--audit",
            s(&db),
        ])
        .env("SHENHE_AUDIT_KEY", key.trim())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw = std::fs::read(&db).unwrap();
    assert!(
        !raw.windows(10).any(|w| w == b"kyc-000031"),
        "real-name references are not stored in clear"
    );
    assert_eq!(verify(&db, &[]).0, 0, "verifies without the key");
    let q = run(&["audit", "query", "--db", s(&db), "--json"], b"");
    assert!(
        json_lines(&q).iter().all(|r| r["personal"].is_null()),
        "withheld"
    );
    let q = run(
        &["audit", "query", "--db", s(&db), "--ip", "203.0.113.0/24"],
        b"",
    );
    assert_eq!(code(&q), 2);
    assert!(stderr(&q).contains("give its key"), "{}", stderr(&q));
    let q = run(
        &[
            "audit",
            "query",
            "--db",
            s(&db),
            "--json",
            "--key-file",
            s(&key_file),
            "--operator",
            "auditor",
            "--ip",
            "203.0.113.0/24",
        ],
        b"",
    );
    let records = json_lines(&q);
    assert!(!records.is_empty());
    assert!(records[0]["personal"]["identity_ref"]
        .as_str()
        .unwrap()
        .starts_with("kyc-"));
    // Recording without the key is refused rather than leaving fields in clear.
    let out = run(
        &[
            "scan",
            "-q",
            "-i",
            s(&input),
            "-o",
            "/dev/null",
            "--audit",
            s(&db),
        ],
        b"",
    );
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("give its key"), "{}", stderr(&out));
}

/// Scans `input` with `extra` flags, killing the process with SIGKILL after each delay in
/// turn and resuming, until a run finishes. Returns the number of kills that landed.
fn scan_killed_and_resumed(
    input: &Path,
    output: &Path,
    extra: &[&str],
    delays_ms: &[u64],
) -> usize {
    let mut kills = 0;
    let mut resume = false;
    let mut delays = delays_ms.iter();
    loop {
        let mut cmd = shenhe();
        cmd.args([
            "scan",
            "-q",
            "--threads",
            "2",
            "-i",
            s(input),
            "-o",
            s(output),
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        if resume {
            cmd.arg("--resume");
        }
        let mut child = cmd.spawn().unwrap();
        match delays.next() {
            Some(&ms) => {
                std::thread::sleep(Duration::from_millis(ms));
                if child.try_wait().unwrap().is_none() {
                    child.kill().unwrap();
                    kills += 1;
                }
                let status = child.wait().unwrap();
                if status.success() {
                    return kills;
                }
            }
            None => {
                let out = child.wait_with_output().unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                return kills;
            }
        }
        resume = true;
    }
}

/// Deterministic delays: xorshift over a fixed seed.
fn delays(n: usize, max_ms: u64) -> Vec<u64> {
    let mut x = 0x9e3779b97f4a7c15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            20 + x % max_ms
        })
        .collect()
}

#[test]
fn a_scan_killed_at_random_points_and_resumed_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let n = 60_000;
    let input = archive(dir.path(), n);
    let lines = std::fs::read_to_string(&input).unwrap().lines().count();
    // The reference: one uninterrupted run.
    let reference = dir.path().join("reference.jsonl");
    let out = run(
        &[
            "scan",
            "-q",
            "-i",
            s(&input),
            "-o",
            s(&reference),
            "--audit",
            s(&dir.path().join("ref.db")),
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let db = dir.path().join("audit.db");
    let output = dir.path().join("decisions.jsonl");
    let kills = scan_killed_and_resumed(&input, &output, &["--audit", s(&db)], &delays(12, 400));
    assert!(
        kills >= 3,
        "only {kills} kills landed: the scan was too quick to interrupt"
    );

    let got = std::fs::read_to_string(&output).unwrap();
    assert_eq!(got.lines().count(), lines, "one decision per input line");
    assert!(
        got == std::fs::read_to_string(&reference).unwrap(),
        "the resumed output equals an uninterrupted run's, escalation included"
    );
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (records, distinct): (i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), COUNT(DISTINCT line) FROM records",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (records, distinct),
        (n as i64, n as i64),
        "one record per post"
    );
    let (c, text) = verify(&db, &[]);
    assert_eq!(c, 0, "{text}");
}

#[test]
fn a_checkpoint_resumes_without_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let input = archive(dir.path(), 40_000);
    let reference = dir.path().join("reference.jsonl");
    let out = run(&["scan", "-q", "-i", s(&input), "-o", s(&reference)], b"");
    assert_eq!(code(&out), 0);
    let output = dir.path().join("decisions.jsonl");
    let cp = dir.path().join("scan.checkpoint");
    scan_killed_and_resumed(&input, &output, &["--checkpoint", s(&cp)], &delays(6, 300));
    let got = std::fs::read_to_string(&output).unwrap();
    let want = std::fs::read_to_string(&reference).unwrap();
    assert_eq!(got.lines().count(), want.lines().count());
    // Escalation restarts at the resume point without a store; the lines and ids match.
    for (g, w) in got.lines().zip(want.lines()) {
        let g: serde_json::Value = serde_json::from_str(g).unwrap();
        let w: serde_json::Value = serde_json::from_str(w).unwrap();
        assert_eq!((&g["line"], &g["id"]), (&w["line"], &w["id"]));
    }
}

#[test]
fn a_checkpoint_keeps_what_the_input_was_and_resumes_only_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let (output, cp) = (
        dir.path().join("d.jsonl"),
        dir.path().join("scan.checkpoint"),
    );
    let scan = |input: &Path, extra: &[&str]| {
        let mut args = vec![
            "scan",
            "-i",
            s(input),
            "-o",
            s(&output),
            "--checkpoint",
            s(&cp),
        ];
        args.extend_from_slice(extra);
        run(&args, b"")
    };
    let input = archive(dir.path(), 1200);
    let out = scan(&input, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let first = std::fs::read_to_string(&output).unwrap();
    let kept = std::fs::read_to_string(&cp).unwrap();
    let fields: Vec<&str> = kept.split_whitespace().collect();
    let lines = std::fs::read_to_string(&input).unwrap().lines().count();
    assert_eq!(fields.len(), 5, "{kept}");
    assert_eq!(fields[0], lines.to_string());
    assert_eq!(
        fields[1],
        std::fs::metadata(&input).unwrap().len().to_string()
    );
    // The output's size with the last line's decision (and a hash of its last 4 KiB).
    assert_eq!(fields[3], first.len().to_string());
    assert_eq!(fields[4].len(), 64, "{kept}");

    // Resumed when it had finished: nothing is decided again.
    let out = scan(&input, &["--resume"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&output).unwrap(), first);

    // Posts appended since: only they are decided, after the others.
    let input = archive(dir.path(), 2000);
    let out = scan(&input, &["--resume"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let got = std::fs::read_to_string(&output).unwrap();
    assert!(got.starts_with(&first));
    let ids: Vec<serde_json::Value> = got
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["line"].clone())
        .collect();
    let want: Vec<serde_json::Value> =
        (1..=std::fs::read_to_string(&input).unwrap().lines().count())
            .map(serde_json::Value::from)
            .collect();
    assert_eq!(ids, want, "one decision per input line, in order");

    // The output rewritten by another scan (other posts, as many lines or more): refused
    // before anything is cut, the other scan's output left as it was.
    let other = dir.path().join("other.jsonl");
    let text = std::fs::read_to_string(&input).unwrap();
    std::fs::write(&other, text.replace("\"id\":\"a", "\"id\":\"other-")).unwrap();
    let out = run(&["scan", "-q", "-i", s(&other), "-o", s(&output)], b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rewritten = std::fs::read_to_string(&output).unwrap();
    let out = scan(&input, &["--resume"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "has changed since the checkpoint {} was written",
            cp.display()
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&output).unwrap(), rewritten);
    // The same size, another post in its last line: refused as well.
    let at = got.rfind("\"id\":\"a").unwrap() + 6;
    let same_size = format!("{}b{}", &got[..at], &got[at + 1..]);
    assert_eq!(same_size.len(), got.len());
    std::fs::write(&output, &same_size).unwrap();
    let out = scan(&input, &["--resume"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&output).unwrap(), same_size);
    std::fs::write(&output, &got).unwrap();

    // Rewritten under the same name: refused, the output left as it was.
    let text = std::fs::read_to_string(&input).unwrap();
    let reversed: String = text.lines().rev().map(|l| format!("{l}\n")).collect();
    std::fs::write(&input, reversed).unwrap();
    let out = scan(&input, &["--resume"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("has changed since the checkpoint"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&output).unwrap(), got);
}

#[test]
fn a_scan_with_a_store_reads_a_named_pipe_whole() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("posts.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let text = std::fs::read_to_string(archive(dir.path(), 500)).unwrap();
    let lines = text.lines().count();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(&fifo, text))
    };
    let output = dir.path().join("d.jsonl");
    let mut child = shenhe()
        .args(["scan", "-q", "-i", s(&fifo), "-o", s(&output), "--audit"])
        .arg(dir.path().join("a.db"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The pipe is opened once, by the scan's read: a writer never sees it closed early (a
    // scan that opened it before would wait for a writer that is gone).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the scan of a named pipe did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    writer.join().unwrap().expect("the writer wrote every post");
    // A pipe cannot be read again from where a scan stopped: no --resume over one.
    let db = dir.path().join("a.db");
    let out = run(
        &[
            "scan",
            "--resume",
            "-i",
            s(&fifo),
            "-o",
            s(&output),
            "--audit",
            s(&db),
        ],
        b"",
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("--resume needs a file as input"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&output).unwrap().lines().count(),
        lines
    );
}

#[test]
fn resume_needs_files_and_a_place_to_resume_from() {
    let out = run(&["scan", "--resume", "-o", "x.jsonl"], b"");
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("--resume needs an input file"),
        "{}",
        stderr(&out)
    );
    let dir = tempfile::tempdir().unwrap();
    let input = archive(dir.path(), 10);
    let out = run(
        &[
            "scan",
            "--resume",
            "-i",
            s(&input),
            "-o",
            s(&dir.path().join("o.jsonl")),
        ],
        b"",
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("--audit DB or --checkpoint FILE"),
        "{}",
        stderr(&out)
    );
    // Decisions written to /dev/null cannot be found there again: a scan into it is not
    // resumed (said before anything is read or recorded).
    let db = dir.path().join("a.db");
    let scan = |resume: bool| {
        let mut args = vec![
            "scan",
            "-q",
            "-i",
            s(&input),
            "-o",
            "/dev/null",
            "--audit",
            s(&db),
        ];
        if resume {
            args.insert(1, "--resume");
        }
        run(&args, b"")
    };
    assert_eq!(code(&scan(false)), 0);
    let out = scan(true);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("--resume needs a file as output: /dev/null is not one"),
        "{}",
        stderr(&out)
    );
    let head = run(&["audit", "head", "--db", s(&db)], b"");
    // The ten posts, recorded once.
    assert!(
        String::from_utf8_lossy(&head.stdout).starts_with("10 "),
        "{}",
        String::from_utf8_lossy(&head.stdout)
    );
}

#[test]
fn the_day_boundary_is_utc_plus_8_unless_configured_when_the_store_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let input = archive(dir.path(), 5);
    let db = dir.path().join("west.db");
    let scan = |offset: &str| {
        run(
            &[
                "scan",
                "-q",
                "-i",
                s(&input),
                "-o",
                "/dev/null",
                "--audit",
                s(&db),
                "--audit-utc-offset",
                offset,
            ],
            b"",
        )
    };
    let out = scan("-5");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let now = jiff::Timestamp::now();
    let expected_day = now
        .to_zoned(jiff::tz::Offset::constant(-5).to_time_zone())
        .date()
        .to_string();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let day: String = conn
        .query_row("SELECT day FROM manifest", [], |r| r.get(0))
        .unwrap();
    assert_eq!(day, expected_day);
    let out = scan("8");
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("days of UTC-5"), "{}", stderr(&out));
}

#[test]
fn a_scan_resumes_only_with_the_rules_it_started_with() {
    let dir = tempfile::tempdir().unwrap();
    let input = archive(dir.path(), 20);
    let db = dir.path().join("a.db");
    let out_file = dir.path().join("d.jsonl");
    // An interrupted run: started, never finished (as after kill -9 before the first chunk).
    {
        let mut store = shenhe::audit::AuditStore::open(&db, None).unwrap();
        let input_name = std::fs::canonicalize(&input).unwrap();
        store
            .begin_run(
                Some(&input_name.display().to_string()),
                Some(s(&out_file)),
                "0123",
            )
            .unwrap();
    }
    let out = run(
        &[
            "scan",
            "-i",
            s(&input),
            "-o",
            s(&out_file),
            "--audit",
            s(&db),
            "--resume",
        ],
        b"",
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("used rule set 0123")
            && stderr(&out).contains("resume with the same rules"),
        "{}",
        stderr(&out)
    );
    // Nothing interrupted over another input: --resume starts from the start, saying so.
    let other = dir.path().join("other.jsonl");
    std::fs::copy(&input, &other).unwrap();
    let out = run(
        &[
            "scan",
            "-i",
            s(&other),
            "-o",
            s(&out_file),
            "--audit",
            s(&db),
            "--resume",
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no interrupted scan of"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap().lines().count(),
        21,
        "20 posts and 1 bad line"
    );
}

#[test]
fn a_finished_scan_resumed_continues_over_the_same_file_and_starts_afresh_over_another() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let output = dir.path().join("d.jsonl");
    let scan = |input: &Path, output: &Path, db: &Path, extra: &[&str]| {
        let mut args = vec!["scan", "-i", s(input), "-o", s(output), "--audit", s(db)];
        args.extend_from_slice(extra);
        run(&args, b"")
    };
    let store = |sql: &str| -> i64 {
        rusqlite::Connection::open(&db)
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    };
    let input = archive(dir.path(), 1500);
    let out = scan(&input, &output, &db, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let first = std::fs::read_to_string(&output).unwrap();

    // Resumed after it finished, as a scan killed before it could exit is retried: nothing
    // is decided, written or recorded again (the output named another way is the same).
    let same_output = dir.path().join(".").join("d.jsonl");
    let out = scan(&input, &same_output, &db, &["--resume"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("from the start"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&output).unwrap(), first);
    assert_eq!(store("SELECT COUNT(*) FROM records"), 1500);
    assert_eq!(store("SELECT COUNT(*) FROM runs"), 1);
    assert_eq!(store("SELECT COUNT(*) FROM runs WHERE finished IS NULL"), 0);

    // Posts appended since: only they are decided, in the same run, and the output is an
    // uninterrupted scan's of the whole file (escalation counting the earlier posts).
    let input = archive(dir.path(), 2500);
    let reference = dir.path().join("reference.jsonl");
    let out = scan(&input, &reference, &dir.path().join("ref.db"), &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = scan(&input, &output, &db, &["--resume"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let got = std::fs::read_to_string(&output).unwrap();
    assert!(got.starts_with(&first));
    assert!(got == std::fs::read_to_string(&reference).unwrap());
    assert_eq!(
        store("SELECT COUNT(DISTINCT line) FROM records WHERE run = 1"),
        2500
    );
    assert_eq!(store("SELECT COUNT(*) FROM records"), 2500);
    assert_eq!(store("SELECT COUNT(*) FROM runs WHERE finished IS NULL"), 0);
    let (c, text) = verify(&db, &[]);
    assert_eq!(c, 0, "{text}");

    // Rewritten under the same name: a new run from the start, saying so.
    let text = std::fs::read_to_string(&input).unwrap();
    let reversed: String = text.lines().rev().map(|l| format!("{l}\n")).collect();
    std::fs::write(&input, &reversed).unwrap();
    let out = scan(&input, &output, &db, &["--resume"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no interrupted scan of"),
        "{}",
        stderr(&out)
    );
    assert_eq!(store("SELECT COUNT(*) FROM runs"), 2);
    assert_eq!(
        std::fs::read_to_string(&output).unwrap().lines().count(),
        reversed.lines().count()
    );

    // A finished run whose output another scan has written since is not continued into it,
    // nor scanned again from the start (recording every post twice): refused, the output
    // left as the other scan wrote it.
    let other = dir.path().join("other.jsonl");
    let head: String = text.lines().take(500).map(|l| format!("{l}\n")).collect();
    std::fs::write(&other, head).unwrap();
    let out = scan(&other, &output, &db, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let others = std::fs::read_to_string(&output).unwrap();
    let out = scan(&input, &output, &db, &["--resume"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("finished (run 2, ") && stderr(&out).contains("has changed since"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&output).unwrap(), others);
    assert_eq!(store("SELECT COUNT(*) FROM runs"), 3);

    // An interrupted run over a file that changed since is not continued.
    sqlite(&db, "UPDATE runs SET finished = NULL WHERE run = 2");
    std::fs::write(&input, &text).unwrap();
    let out = scan(&input, &output, &db, &["--resume"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("has changed since its interrupted scan (run 2"),
        "{}",
        stderr(&out)
    );
}

/// The lines of `audit backup`'s output: the backup file and its head.
fn backed_up(out: &std::process::Output) -> (std::path::PathBuf, String) {
    assert_eq!(code(out), 0, "{}", stderr(out));
    let text = stdout(out);
    let file = text
        .lines()
        .find_map(|l| l.strip_prefix("backup: "))
        .unwrap_or_else(|| panic!("no backup line: {text}"));
    let head = text
        .lines()
        .find_map(|l| l.strip_prefix("head: "))
        .and_then(|l| l.split(", ").nth(1))
        .unwrap_or_else(|| panic!("no head line: {text}"));
    (file.into(), head.to_owned())
}

fn backup(db: &Path, to: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["audit", "backup", "--db", s(db), "--to", s(to)];
    args.extend_from_slice(extra);
    run(&args, b"")
}

/// (seq, hash) of every record of the store at `db` up to `upto`.
fn chain(db: &Path, upto: i64) -> Vec<(i64, String)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT seq, hash FROM records WHERE seq <= ?1 ORDER BY seq")
        .unwrap();
    stmt.query_map([upto], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn a_backup_taken_while_a_scan_writes_verifies_and_holds_every_record_committed_before_it() {
    let (dir, db) = scanned(300);
    let input = archive(dir.path(), 100_000);
    let mut scan = shenhe()
        .args([
            "scan",
            "-q",
            "--threads",
            "2",
            "-i",
            s(&input),
            "-o",
            "/dev/null",
        ])
        .args(["--audit", s(&db)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the scan has committed records of its own (or finished).
    let count = || -> i64 {
        let h = stdout(&run(&["audit", "head", "--db", s(&db)], b""));
        h.split_whitespace()
            .next()
            .unwrap_or("0")
            .parse()
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while count() <= 300 && scan.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the scan recorded nothing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let committed = count();
    let backups = dir.path().join("backups");
    let out = backup(&db, &backups, &[]);
    let (file, head) = backed_up(&out);
    eprintln!(
        "backup after {committed} records; the scan {}",
        if scan.try_wait().unwrap().is_none() {
            "was still writing"
        } else {
            "had finished"
        }
    );
    // Named by UTC time and head, private.
    let name = file.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.starts_with("audit-") && name.ends_with(&format!("Z-{}.db", &head[..12])),
        "{name}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // The copy verifies, ends at the head printed, and holds every record committed before
    // the backup began, as the store has them.
    let (c, text) = verify(&file, &["--expect-head", &head]);
    assert_eq!(c, 0, "{text}");
    assert_eq!(chain(&file, committed), chain(&db, committed));
    let out = scan.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(verify(&db, &[]).0, 0, "the store verifies after the scan");
    // Only backups sit in the directory: no temporary left behind.
    let names: Vec<String> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, [name]);
}

#[test]
fn backup_keep_removes_the_oldest_but_never_the_only_copy_of_records_within_retention() {
    let (dir, db) = scanned(50);
    let backups = dir.path().join("backups");
    // A backup of another store (its own chain), dated a day ago, and one dated 200 days
    // ago: what an operator has after replacing a store.
    let (_other_dir, other) = scanned(20);
    let (foreign, foreign_head) = backed_up(&backup(&other, &backups, &[]));
    let day_ago = backups.join(format!(
        "audit-{}-{}.db",
        (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24)).strftime("%Y%m%dT%H%M%SZ"),
        &foreign_head[..12]
    ));
    std::fs::rename(&foreign, &day_ago).unwrap();
    let (foreign, _) = backed_up(&backup(&other, &backups, &[]));
    let old = backups.join(format!(
        "audit-{}-{}.db",
        (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * 200))
            .strftime("%Y%m%dT%H%M%SZ"),
        "0123456789ab"
    ));
    std::fs::rename(&foreign, &old).unwrap();
    // Three backups of this store: each records the one before in the store, so each has
    // a head (and a name) of its own.
    let mut ours = Vec::new();
    for _ in 0..3 {
        ours.push(backed_up(&backup(&db, &backups, &[])).0);
    }
    let out = backup(&db, &backups, &["--keep", "2"]);
    let (newest, _) = backed_up(&out);
    let text = stdout(&out);
    let mut left: Vec<std::path::PathBuf> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    left.sort();
    let mut want = vec![day_ago.clone(), ours[2].clone(), newest.clone()];
    want.sort();
    assert_eq!(left, want, "{text}");
    // The foreign backup a day old stays, saying why; the one past 184 days goes.
    assert!(
        text.contains(&format!("kept: {}", day_ago.display())) && text.contains("only copy"),
        "{text}"
    );
    for gone in [&old, &ours[0], &ours[1]] {
        assert!(
            text.contains(&format!("removed: {}", gone.display())),
            "{text}"
        );
    }
    // Each backup is recorded in the store it copies.
    let q = run(&["audit", "query", "--db", s(&db), "--json"], b"");
    let events: Vec<serde_json::Value> = json_lines(&q)
        .into_iter()
        .filter_map(|r| r.get("event").cloned())
        .collect();
    assert_eq!(events.len(), 4, "{events:?}");
    assert!(events.iter().all(|e| e["kind"] == "backup"));
    assert_eq!(
        events[3]["file"],
        newest.file_name().unwrap().to_str().unwrap()
    );
    assert_eq!(verify(&db, &[]).0, 0);
    // At least one is kept.
    let out = backup(&db, &backups, &["--keep", "0"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("at least one"), "{}", stderr(&out));
}

#[test]
fn verify_with_expect_head_proves_a_copy_and_names_a_different_head() {
    let (dir, db) = scanned(40);
    let backups = dir.path().join("backups");
    let (file, head) = backed_up(&backup(&db, &backups, &[]));
    let (c, text) = verify(&file, &["--expect-head", &head]);
    assert_eq!(c, 0, "{text}");
    assert!(text.contains("as expected"), "{text}");
    // The store has moved on since (the backup was recorded in it): its head is not the
    // copy's, and the copy is not the store.
    let now = stdout(&run(&["audit", "head", "--db", s(&db)], b""));
    let now = now.split_whitespace().nth(1).unwrap().to_owned();
    assert_ne!(now, head);
    let (c, text) = verify(&file, &["--expect-head", &now]);
    assert_eq!(c, 1, "{text}");
    assert!(
        text.starts_with("HEAD DIFFERS: ") && text.contains(&head) && text.contains(&now),
        "{text}"
    );
    // Verifying leaves the copy as it was.
    let bytes = std::fs::read(&file).unwrap();
    verify(&file, &[]);
    assert_eq!(std::fs::read(&file).unwrap(), bytes);
    // A head that is not one is bad usage.
    let (c, text) = verify(&file, &["--expect-head", &head[..12]]);
    assert_eq!(c, 2, "{text}");
    assert!(text.contains("64 hex digits"), "{text}");
}

#[test]
fn a_query_or_export_with_the_key_needs_an_operator_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let input = archive(dir.path(), 30);
    let db = dir.path().join("sealed.db");
    let key_file = dir.path().join("key.hex");
    assert_eq!(code(&run(&["audit", "keygen", "-o", s(&key_file)], b"")), 0);
    let out = run(
        &[
            "scan",
            "-q",
            "-i",
            s(&input),
            "-o",
            "/dev/null",
            "--audit",
            s(&db),
            "--audit-key-file",
            s(&key_file),
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let keyed = |cmd: &str, extra: &[&str]| {
        let mut args = vec!["audit", cmd, "--db", s(&db), "--key-file", s(&key_file)];
        args.extend_from_slice(extra);
        run(&args, b"")
    };
    for cmd in ["query", "export"] {
        let out = keyed(cmd, &["--user", "u1"]);
        assert_eq!(code(&out), 2, "{cmd}");
        assert!(stderr(&out).contains("--operator"), "{}", stderr(&out));
        assert!(stdout(&out).is_empty(), "nothing shown");
    }
    let out = keyed(
        "query",
        &["--json", "--ip", "203.0.113.0/24", "--operator", "张三"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let shown = json_lines(&out);
    assert!(!shown.is_empty() && shown.iter().all(|r| r["personal"]["ip"].is_string()));
    let out = keyed("export", &["--format", "csv", "--operator", "李四"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Both reads are in the chain: who, which filter, how many records were shown.
    let q = run(&["audit", "query", "--db", s(&db), "--json"], b"");
    let reads: Vec<serde_json::Value> = json_lines(&q)
        .into_iter()
        .filter(|r| r["event"]["kind"] == "read")
        .collect();
    assert_eq!(reads.len(), 2, "{reads:?}");
    assert_eq!(reads[0]["caller"], "张三");
    assert_eq!(reads[0]["event"]["filter"]["ip"], "203.0.113.0/24");
    assert_eq!(reads[0]["event"]["count"], shown.len());
    assert_eq!(reads[1]["caller"], "李四");
    assert_eq!(reads[1]["event"]["via"], "audit export");
    assert_eq!(verify(&db, &[]).0, 0);
}
