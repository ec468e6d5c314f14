//! Issue 20 (hardening), tried as an attacker or an unlucky operator would: evidence a post
//! cannot destroy, personal data kept private.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn scan_into(dir: &Path, input: &str, reports: &Path, extra: &[&str]) -> std::process::Output {
    let file = dir.join("in.jsonl");
    std::fs::write(&file, input).unwrap();
    let mut args = vec![
        "scan",
        "-q",
        "-i",
        file.to_str().unwrap(),
        "-o",
        "/dev/null",
        "--reports",
        reports.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args, b"")
}

fn report_files(reports: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(reports)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("report-"))
        .collect();
    names.sort();
    names
}

/// The report file `name` in `reports`, as JSON.
fn read_report(reports: &Path, name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(reports.join(name)).unwrap()).unwrap()
}

/// Whether `text` holds a character that acts on a terminal (ESC, BEL, CR, a bidi override).
fn has_terminal_controls(text: &str) -> bool {
    text.chars()
        .any(|c| matches!(c, '\u{1b}' | '\u{7}' | '\r' | '\u{202e}'))
}

/// Item 1: a second scan into the same folder keeps the first scan's reports, even where
/// the names collide (same line, ids that clean to the same name).
#[test]
fn a_second_scan_into_the_same_reports_folder_keeps_the_first_ones() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let out = scan_into(
        dir.path(),
        "{\"id\":\"post.1\",\"text\":\"出售冰毒\"}\n",
        &reports,
        &[],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = scan_into(
        dir.path(),
        "{\"id\":\"post/1\",\"text\":\"网络赌场开业\"}\n",
        &reports,
        &[],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let names = report_files(&reports);
    assert_eq!(names.len(), 2, "{names:?}");
    let texts: Vec<String> = names
        .iter()
        .map(|n| {
            read_report(&reports, n)["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(texts.contains(&"出售冰毒".to_owned()) && texts.contains(&"网络赌场开业".to_owned()));
    let csv = std::fs::read_to_string(reports.join("index.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "header and both rows: {csv}");
}

/// Item 2: an id of 64 four-byte characters gave a file name over 255 bytes: no decision,
/// no record, and `--resume` failed the same way.
#[test]
fn a_long_id_of_four_byte_characters_still_gets_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let id = "𝐩".repeat(64);
    let out = scan_into(
        dir.path(),
        &format!("{{\"id\":\"{id}\",\"text\":\"出售冰毒\"}}\n"),
        &reports,
        &[],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let names = report_files(&reports);
    assert_eq!(names.len(), 1);
    assert!(names[0].len() <= 255);
    let v = read_report(&reports, &names[0]);
    assert_eq!(v["post_id"], id.as_str());
}

/// Item 8: links planted in the reports folder are replaced or passed by, never written
/// through.
#[test]
fn symlinks_in_the_reports_folder_are_never_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    for name in ["index.html", "index.csv", "report-00000001-p1.json"] {
        std::os::unix::fs::symlink(&victim, reports.join(name)).unwrap();
    }
    let out = scan_into(
        dir.path(),
        "{\"id\":\"p1\",\"text\":\"出售冰毒\"}\n",
        &reports,
        &[],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    for name in ["index.html", "index.csv"] {
        let m = std::fs::symlink_metadata(reports.join(name)).unwrap();
        assert!(m.file_type().is_file(), "{name} is still a link");
    }
    // The report went under another name; the planted link is left as it was.
    assert!(report_files(&reports)
        .iter()
        .any(|n| n.starts_with("report-00000001-p1-")
            && !std::fs::symlink_metadata(reports.join(n))
                .unwrap()
                .file_type()
                .is_symlink()));
}

/// Item 14: evidence and personal data are private whatever the umask; a key file others
/// can read is refused.
#[test]
fn evidence_files_are_private_and_a_readable_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let db = dir.path().join("audit.db");
    let key = dir.path().join("audit.key");
    let out = run(&["audit", "keygen", "-o", key.to_str().unwrap()], b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(mode(&key), 0o600);
    let out = scan_into(
        dir.path(),
        "{\"id\":\"p1\",\"text\":\"出售冰毒\",\"poster\":{\"ip\":\"203.0.113.7\"}}\n",
        &reports,
        &[
            "--audit",
            db.to_str().unwrap(),
            "--audit-key-file",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(mode(&reports), 0o700);
    assert_eq!(mode(&db), 0o600);
    for name in report_files(&reports)
        .iter()
        .map(String::as_str)
        .chain(["index.csv", "index.html"])
    {
        assert_eq!(mode(&reports.join(name)), 0o600, "{name}");
    }
    // The key file made readable by others is refused, naming the file and the fix.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(
        &[
            "audit",
            "verify",
            "--db",
            db.to_str().unwrap(),
            "--key-file",
            key.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
    // keygen never overwrites a key.
    let out = run(&["audit", "keygen", "-o", key.to_str().unwrap()], b"");
    assert_eq!(code(&out), 2);
}

/// Item 5: `audit prune --now` after the real clock deleted today's records.
#[test]
fn prune_cannot_run_ahead_of_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"id\":\"p1\",\"text\":\"出售冰毒\"}\n").unwrap();
    let out = run(
        &[
            "scan",
            "-q",
            "-i",
            input.to_str().unwrap(),
            "-o",
            "/dev/null",
            "--audit",
            db.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(
        &[
            "audit",
            "prune",
            "--db",
            db.to_str().unwrap(),
            "--now",
            "2099-01-01T00:00:00Z",
        ],
        b"",
    );
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    assert!(
        stderr(&out).contains("after the real clock"),
        "{}",
        stderr(&out)
    );
    let out = run(
        &["audit", "query", "--db", db.to_str().unwrap(), "--json"],
        b"",
    );
    assert_eq!(stdout(&out).lines().count(), 1, "the record is still there");
}

/// Item 7: post text, ids and user ids reach the terminal with control characters and
/// bidirectional overrides escaped.
#[test]
fn audit_query_and_diff_escape_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let input = dir.path().join("in.jsonl");
    let post = serde_json::json!({
        "id": "p\u{1b}]0;owned\u{7}",
        "text": "出售冰毒\u{1b}[2J\r\u{202e}evil",
        "poster": { "user_id": "u\u{1b}[31m" }
    });
    std::fs::write(&input, format!("{post}\n")).unwrap();
    let out = run(
        &[
            "scan",
            "-q",
            "-i",
            input.to_str().unwrap(),
            "-o",
            "/dev/null",
            "--audit",
            db.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(&["audit", "query", "--db", db.to_str().unwrap()], b"");
    let text = stdout(&out);
    assert!(!has_terminal_controls(&text), "{text:?}");
    assert!(
        text.contains("\\u{1b}") && text.contains("\\u{202e}"),
        "{text}"
    );
    // diff's samples.
    let rules_old = dir.path().join("old.toml");
    let rules_new = dir.path().join("new.toml");
    std::fs::write(
        &rules_old,
        "[[rule]]\nid = \"x.a\"\ncategory = 9\nseverity = \"low\"\nterms = [\"不存在的词\"]\n",
    )
    .unwrap();
    std::fs::write(
        &rules_new,
        "[[rule]]\nid = \"x.a\"\ncategory = 9\nseverity = \"low\"\nterms = [\"出售冰毒\"]\n",
    )
    .unwrap();
    let out = run(
        &[
            "diff",
            "--old",
            rules_old.to_str().unwrap(),
            "--new",
            rules_new.to_str().unwrap(),
            "-i",
            input.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("出售冰毒"), "{text}");
    assert!(!has_terminal_controls(&text), "{text:?}");
}

/// Item 4: a second writer on one store wrote 8,192 decisions it never recorded, then
/// failed. Now it is refused at start, with who holds the store.
#[test]
fn a_second_writer_on_one_audit_store_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"id\":\"p1\",\"text\":\"出售冰毒\"}\n").unwrap();
    let out_file = dir.path().join("out.jsonl");
    let scan = || {
        run(
            &[
                "scan",
                "-q",
                "-i",
                input.to_str().unwrap(),
                "-o",
                out_file.to_str().unwrap(),
                "--audit",
                db.to_str().unwrap(),
            ],
            b"",
        )
    };
    let holder = shenhe::Pipeline::builder(shenhe::EngineHandle::new(shenhe::Engine::bundled()))
        .audit(shenhe::audit::AuditStore::open(&db, None).unwrap())
        .build()
        .unwrap();
    let out = scan();
    assert_eq!(code(&out), 2);
    let e = stderr(&out);
    assert!(
        e.contains("in use by another writer")
            && e.contains(&format!("pid {}", std::process::id())),
        "{e}"
    );
    assert!(!out_file.exists() || std::fs::read(&out_file).unwrap().is_empty());
    // Another pipeline in the same process is refused too; readers are not.
    let second = shenhe::Pipeline::builder(shenhe::EngineHandle::new(shenhe::Engine::bundled()))
        .audit(shenhe::audit::AuditStore::open(&db, None).unwrap())
        .build();
    assert!(second.is_err());
    let out = run(&["audit", "verify", "--db", db.to_str().unwrap()], b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Once the holder is gone, the scan runs and records.
    drop(holder);
    let out = scan();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap().lines().count(),
        1
    );
}

/// Item 13: a numeric id beyond 64 bits was dropped (the report had no post id); a huge
/// `--threads` was spawned; an endless rule file grew until memory ran out.
#[test]
fn huge_ids_threads_and_endless_rule_files_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let out_file = dir.path().join("out.jsonl");
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"id\":12345678901234567890,\"text\":\"出售冰毒\"}\n{\"id\":1.5,\"text\":\"网络赌场\"}\n",
    )
    .unwrap();
    let out = run(
        &[
            "scan",
            "-q",
            "-i",
            input.to_str().unwrap(),
            "-o",
            out_file.to_str().unwrap(),
            "--reports",
            reports.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out_file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["id"], "12345678901234567890");
    assert!(lines[0]["warnings"][0].as_str().unwrap().contains("64-bit"));
    assert_eq!(lines[1]["id"], "1.5");
    let ids: Vec<serde_json::Value> = report_files(&reports)
        .iter()
        .map(|n| read_report(&reports, n)["post_id"].clone())
        .collect();
    assert!(
        ids.contains(&serde_json::json!("12345678901234567890")),
        "{ids:?}"
    );

    let out = run(
        &["scan", "--threads", "99999", "-i", input.to_str().unwrap()],
        b"",
    );
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("from 1 to 1024"), "{}", stderr(&out));

    // An endless rule source is refused at the limit, naming it.
    let out = run(&["check", "--rules", "/dev/zero", "x"], b"");
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("/dev/zero") && stderr(&out).contains("128 MiB"),
        "{}",
        stderr(&out)
    );
}

/// Item 11: the bundled rules read only `text`, so a banned title with an empty text was
/// allowed; spam and insults in a display name or bio went through too.
#[test]
fn the_bundled_rules_read_titles_and_where_it_matters_names_and_bios() {
    let input = concat!(
        "{\"id\":1,\"title\":\"出售冰毒\",\"text\":\"\"}\n",
        "{\"id\":2,\"title\":\"网络赌场\",\"text\":\"看标题\"}\n",
        "{\"id\":3,\"text\":\"大家好\",\"poster\":{\"name\":\"傻逼楼主\"}}\n",
        "{\"id\":4,\"title\":\"周末去爬山\",\"text\":\"天气不错\"}\n",
    );
    let out = run(&["scan", "-q"], input.as_bytes());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let d = json_lines(&out);
    assert_eq!(d[0]["action"], "delete", "{}", d[0]);
    assert_eq!(d[0]["hits"][0]["field"], "title");
    assert_ne!(d[1]["action"], "allow", "{}", d[1]);
    assert_ne!(d[2]["action"], "allow", "{}", d[2]);
    assert_eq!(d[2]["hits"][0]["field"], "name");
    assert_eq!(d[3]["action"], "allow", "{}", d[3]);
    // The bundled examples and tests still pass with the wider fields.
    let out = run(&["test"], b"");
    assert_eq!(code(&out), 0, "{}", stdout(&out));
}

/// Item 15: a rule reading `name` stored the matched part of a sealed display name in clear
/// in the record's hits.
#[test]
fn a_hit_in_a_sealed_display_name_is_not_stored_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let key = dir.path().join("audit.key");
    assert_eq!(
        code(&run(&["audit", "keygen", "-o", key.to_str().unwrap()], b"")),
        0
    );
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"id\":\"n1\",\"text\":\"大家好\",\"poster\":{\"name\":\"傻逼楼主\",\"ip\":\"203.0.113.7\"}}\n").unwrap();
    let (k, d) = (key.to_str().unwrap(), db.to_str().unwrap());
    let out = run(
        &[
            "scan",
            "-q",
            "-i",
            input.to_str().unwrap(),
            "-o",
            "/dev/null",
            "--audit",
            d,
            "--audit-key-file",
            k,
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // What is on disk: no part of the name, no address.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (hits, personal): (String, String) = conn
        .query_row("SELECT hits, personal FROM records", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(hits.contains("\"field\":\"name\""), "{hits}");
    for secret in ["傻逼", "楼主", "203.0.113.7"] {
        assert!(
            !hits.contains(secret) && !personal.contains(secret),
            "{secret} in clear: {hits} {personal}"
        );
    }
    // With the key the record reads whole; without it the part stays sealed.
    let with_key = run(
        &[
            "audit",
            "query",
            "--db",
            d,
            "--key-file",
            k,
            "--operator",
            "审计员",
            "--json",
        ],
        b"",
    );
    let r: serde_json::Value = serde_json::from_str(stdout(&with_key).trim()).unwrap();
    assert_eq!(r["hits"][0]["matched"], "傻逼", "{r}");
    // The first record (the second is the operator's read, recorded before it was shown).
    let without = run(&["audit", "query", "--db", d, "--json"], b"");
    let first = stdout(&without).lines().next().unwrap().to_owned();
    let r: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(r["hits"][0]["matched"], "(sealed)", "{r}");
    let out = run(&["audit", "verify", "--db", d], b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// Item 3: with the disk full, the C moderator answered SHENHE_OK for posts whose record
/// or report was never written. A file-size limit (what a full disk looks like to the
/// writer: every write past it fails) stands in for the full disk here.
#[test]
fn a_full_disk_fails_the_c_moderator_closed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let exe = compile_c("tests/c/moderate_each.c", d);
    let key = d.join("audit.key");
    assert_eq!(
        code(&run(&["audit", "keygen", "-o", key.to_str().unwrap()], b"")),
        0
    );
    let filler = "这是一段很长的帖子内容，用来让审计库和报告尽快写满磁盘。".repeat(20);
    let posts: String = (0..400)
        .map(|i| {
            let text = if i % 2 == 0 { format!("出售冰毒{i}{filler}") } else { format!("{filler}{i}") };
            format!("{}\n", serde_json::json!({ "id": format!("p{i}"), "text": text, "poster": { "user_id": format!("u{}", i % 50) } }))
        })
        .collect();
    std::fs::write(d.join("posts.jsonl"), &posts).unwrap();
    let (db, reports) = (d.join("audit.db"), d.join("reports"));
    // The store is made while there is room; the disk fills while posts come in.
    drop(
        shenhe::audit::AuditStore::open(
            &db,
            Some(shenhe::audit::AuditKey::from_file(&key).unwrap()),
        )
        .unwrap(),
    );
    // Ignored SIGXFSZ stays ignored across exec: writes past the limit fail with EFBIG.
    // The answers go to a pipe, which the limit does not touch.
    let script = format!(
        "trap '' XFSZ; ulimit -f 1024; exec {} {} {} {} < {}",
        exe.display(),
        db.display(),
        key.display(),
        reports.display(),
        d.join("posts.jsonl").display(),
    );
    let run_out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        run_out.status.code().is_some(),
        "killed by a signal: {:?}",
        run_out.status
    );
    let out = String::from_utf8(run_out.stdout).unwrap();
    let err = String::from_utf8_lossy(&run_out.stderr).into_owned();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 400, "one answer per post; stderr: {err}");
    let ok: Vec<serde_json::Value> = lines
        .iter()
        .filter(|l| !l.starts_with("ERROR"))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let refused = lines.len() - ok.len();
    assert!(
        refused > 0 && !ok.is_empty(),
        "{} ok, {refused} refused",
        ok.len()
    );
    eprintln!("full disk: {} answered OK, {refused} refused", ok.len());
    // Every post answered OK is recorded, and its report, when due, is there.
    let store = shenhe::audit::AuditStore::open(
        &db,
        Some(shenhe::audit::AuditKey::from_file(&key).unwrap()),
    )
    .unwrap();
    assert_eq!(store.verify(None).unwrap().problem, None);
    let mut recorded = std::collections::HashSet::new();
    store
        .query(&shenhe::audit::Filter::default(), |r| {
            if let Some(shenhe::PostId::Str(id)) = r.post_id {
                recorded.insert(id);
            }
            Ok(())
        })
        .unwrap();
    let report_names: Vec<String> = std::fs::read_dir(&reports)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    for d in &ok {
        let id = d["id"].as_str().unwrap();
        assert!(recorded.contains(id), "{id} answered OK but not recorded");
        if d["report"] == true {
            let size = report_names
                .iter()
                .find(|n| n.ends_with(&format!("-{id}.json")))
                .map(|n| std::fs::metadata(reports.join(n)).unwrap().len());
            assert!(size > Some(0), "{id} answered OK without its report");
        }
    }
}
