use super::*;
use crate::{Engine, Post};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn post(id: &str, user: &str, text: &str) -> Post {
    Post::from_json(&format!(
        r#"{{"id":"{id}","text":"{text}","poster":{{"user_id":"{user}","ip":"203.0.113.{n}","port":40000,"identity_ref":"RN-{user}"}}}}"#,
        n = id.len()
    ))
    .unwrap()
}

/// A store in a temporary directory with `days` days of three records each, the first
/// on `start`.
fn store_with_days(
    key: Option<AuditKey>,
    start: &str,
    days: i64,
) -> (tempfile::TempDir, AuditStore) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = AuditStore::open(dir.path().join("audit.db"), key).unwrap();
    let engine = Engine::bundled();
    let run = s.begin_run(Some("posts.jsonl"), None, "hash").unwrap();
    let t0 = ts(start);
    let mut line = 0;
    for d in 0..days {
        let now = t0 + jiff::SignedDuration::from_hours(24 * d);
        let posts: Vec<Post> = (0..3)
            .map(|i| {
                post(
                    &format!("p{d}-{i}"),
                    &format!("u{i}"),
                    ["出售冰毒", "今天天气不错", "你这个傻逼"][i],
                )
            })
            .collect();
        let decisions: Vec<Decision> = posts.iter().map(|p| engine.scan(p)).collect();
        let entries: Vec<(Option<u64>, &Post, &Decision)> = posts
            .iter()
            .zip(&decisions)
            .map(|(p, d)| {
                line += 1;
                (Some(line), p, d)
            })
            .collect();
        s.append(run, entries, now).unwrap();
    }
    (dir, s)
}

fn raw(dir: &tempfile::TempDir) -> Connection {
    Connection::open(dir.path().join("audit.db")).unwrap()
}

fn problem(s: &AuditStore) -> String {
    s.verify(None).unwrap().problem.unwrap_or_default()
}

#[test]
fn an_untouched_store_verifies_and_its_head_is_the_last_hash() {
    let (_dir, s) = store_with_days(None, "2026-01-01T02:00:00Z", 3);
    let v = s.verify(None).unwrap();
    assert_eq!(v.problem, None);
    assert_eq!((v.records, v.days), (9, 3));
    let (count, head) = s.head();
    assert_eq!((count, head.clone()), (9, v.head.clone()));
    assert_eq!(s.verify(Some(&head)).unwrap().problem, None);
}

#[test]
fn an_edited_record_is_named() {
    let (dir, s) = store_with_days(None, "2026-01-01T02:00:00Z", 3);
    raw(&dir)
        .execute("UPDATE records SET action = 'allow' WHERE seq = 4", [])
        .unwrap();
    let p = problem(&s);
    assert!(p.starts_with("record 4 (post \"p1-0\""), "{p}");
    assert!(p.contains("edited"), "{p}");
}

#[test]
fn a_deleted_record_breaks_the_chain() {
    let (dir, s) = store_with_days(None, "2026-01-01T02:00:00Z", 3);
    raw(&dir)
        .execute("DELETE FROM records WHERE seq = 5", [])
        .unwrap();
    let p = problem(&s);
    assert!(
        p.starts_with("record 6") && p.contains("chain is broken"),
        "{p}"
    );
}

#[test]
fn an_inserted_record_is_caught() {
    let (dir, s) = store_with_days(None, "2026-01-01T02:00:00Z", 2);
    // A forged record at the end, correctly chained to the last one, manifest untouched.
    let c = raw(&dir);
    let (prev, day): (String, String) = c
        .query_row("SELECT hash, day FROM records WHERE seq = 6", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    c.execute(
        &format!("INSERT INTO records ({ROW_COLUMNS}) SELECT 7, day, run, line, post_id, post_time, scan_time, user_id, personal, content, categories, action, report, measures, hits, ruleset, caller, event, ?1, hash FROM records WHERE seq = 6"),
        [&prev],
    )
    .unwrap();
    assert_eq!(day, "2026-01-02");
    let p = problem(&s);
    assert!(p.contains("record 7"), "{p}");
}

#[test]
fn reordered_records_are_caught() {
    let (dir, s) = store_with_days(None, "2026-01-01T02:00:00Z", 2);
    let c = raw(&dir);
    c.execute_batch(
        "UPDATE records SET seq = 100 WHERE seq = 2;
         UPDATE records SET seq = 2 WHERE seq = 3;
         UPDATE records SET seq = 3 WHERE seq = 100;",
    )
    .unwrap();
    let p = problem(&s);
    assert!(
        p.starts_with("record 2") || p.starts_with("record 3"),
        "{p}"
    );
}

#[test]
fn a_truncated_tail_is_caught_by_the_kept_head() {
    let (dir, s) = store_with_days(None, "2026-01-01T02:00:00Z", 2);
    let (_, head) = s.head();
    // Remove the last record and make the manifest agree: only the head can tell.
    let c = raw(&dir);
    let prev: String = c
        .query_row("SELECT prev FROM records WHERE seq = 6", [], |r| r.get(0))
        .unwrap();
    c.execute("DELETE FROM records WHERE seq = 6", []).unwrap();
    c.execute(
        "UPDATE manifest SET last_seq = 5, count = 2, final_hash = ?1 WHERE day = '2026-01-02'",
        [&prev],
    )
    .unwrap();
    let s = AuditStore::open(dir.path().join("audit.db"), None).unwrap();
    assert_eq!(problem(&s), "");
    let p = s.verify(Some(&head)).unwrap().problem.unwrap();
    assert!(p.contains("expected"), "{p}");
    // Without the manifest edit, the manifest's count catches it.
    let (dir, s) = store_with_days(None, "2026-01-01T02:00:00Z", 2);
    raw(&dir)
        .execute("DELETE FROM records WHERE seq = 6", [])
        .unwrap();
    assert!(problem(&s).contains("lists 3 records"), "{}", problem(&s));
}

#[test]
fn pruning_deletes_whole_old_days_never_younger_than_the_floor() {
    // One day of records every day for 200 days, from 2026-01-01 (UTC+08:00 days).
    let (dir, mut s) = store_with_days(None, "2026-01-01T02:00:00Z", 200);
    // Move the clock: nothing is old enough on the last day.
    let last_day = ts("2026-07-19T12:00:00Z");
    let pruned = s.prune(last_day, 190).unwrap();
    assert!(pruned.days.len() <= 10, "{:?}", pruned.days);
    // Far in the future, with the minimum retention: everything older than 184 days goes.
    let now = ts("2026-07-20T04:00:00Z"); // 2026-07-20 12:00 in UTC+08:00
    let pruned = s.prune(now, 184).unwrap();
    let kept_days: Vec<String> = {
        let c = raw(&dir);
        let mut st = c
            .prepare("SELECT DISTINCT day FROM records ORDER BY day")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(|d| d.unwrap())
            .collect()
    };
    // 2026-07-20 minus 184 days is 2026-01-17: that day and younger are kept.
    assert_eq!(kept_days.first().map(String::as_str), Some("2026-01-17"));
    assert!(pruned.days.iter().all(|d| d.as_str() < "2026-01-17"));
    assert!(s.prune(now, 183).is_err(), "the floor holds");
    let v = s.verify(None).unwrap();
    assert_eq!(v.problem, None, "a pruned store still verifies");
    assert_eq!(v.pruned_days, 16);
}

#[test]
fn held_accounts_outlive_retention_and_still_verify() {
    let (dir, mut s) = store_with_days(None, "2026-01-01T02:00:00Z", 3);
    s.hold(HoldKind::User, "u2").unwrap();
    s.hold(HoldKind::Post, "p0-0").unwrap();
    let pruned = s.prune(ts("2027-01-01T00:00:00Z"), 190).unwrap();
    assert_eq!(pruned.days.len(), 3);
    assert_eq!((pruned.records, pruned.held), (5, 4));
    let users: Vec<Option<String>> = {
        let c = raw(&dir);
        let mut st = c
            .prepare("SELECT user_id FROM records ORDER BY seq")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(|d| d.unwrap())
            .collect()
    };
    assert_eq!(users.len(), 4);
    assert_eq!(s.verify(None).unwrap().problem, None);
    // An edited held record is still caught.
    raw(&dir)
        .execute(
            "UPDATE records SET content = '{\"text\":\"x\"}' WHERE user_id = 'u2' AND day = '2026-01-02'",
            [],
        )
        .unwrap();
    assert!(problem(&s).contains("edited"), "{}", problem(&s));
    assert!(s.unhold(HoldKind::User, "u2").unwrap());
}

#[test]
fn personal_fields_are_sealed_and_withheld_without_the_key() {
    let key = AuditKey::generate();
    let (dir, s) = store_with_days(Some(key.clone()), "2026-01-01T02:00:00Z", 1);
    let stored: String = raw(&dir)
        .query_row("SELECT personal FROM records WHERE seq = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(
        stored.starts_with("enc:v1:") && !stored.contains("RN-u0"),
        "{stored}"
    );
    let mut seen = Vec::new();
    s.query(&Filter::default(), |r| {
        seen.push(r.personal);
        Ok(())
    })
    .unwrap();
    assert_eq!(
        seen[0].as_ref().unwrap().identity_ref.as_deref(),
        Some("RN-u0")
    );
    drop(s);
    let path = dir.path().join("audit.db");
    let without = AuditStore::open(&path, None).unwrap();
    assert_eq!(without.verify(None).unwrap().problem, None);
    let mut withheld = 0;
    without
        .query(&Filter::default(), |r| {
            withheld += usize::from(r.personal.is_none());
            Ok(())
        })
        .unwrap();
    assert_eq!(withheld, 3);
    let ip = Filter {
        ip: Some("203.0.113.0/24".parse().unwrap()),
        ..Filter::default()
    };
    let e = without.query(&ip, |_| Ok(())).unwrap_err();
    assert!(e.to_string().contains("give its key"), "{e}");
    let e = AuditStore::open(&path, Some(AuditKey::generate())).unwrap_err();
    assert!(e.to_string().contains("not the store's key"), "{e}");
}

#[test]
fn queries_filter_by_ip_network_user_category_action_and_time() {
    let (_dir, s) = store_with_days(None, "2026-01-01T02:00:00Z", 2);
    let count = |f: Filter| s.query(&f, |_| Ok(())).unwrap();
    assert_eq!(count(Filter::default()), 6);
    assert_eq!(
        count(Filter {
            user: Some("u0".into()),
            ..Filter::default()
        }),
        2
    );
    assert_eq!(
        count(Filter {
            action: Some("allow".into()),
            ..Filter::default()
        }),
        2
    );
    assert_eq!(
        count(Filter {
            since: Some(ts("2026-01-02T00:00:00Z")),
            ..Filter::default()
        }),
        3
    );
    // Post ids "p0-0" and "p1-0" have 4 chars: 203.0.113.4.
    assert_eq!(
        count(Filter {
            ip: Some("203.0.113.4/32".parse().unwrap()),
            ..Filter::default()
        }),
        6
    );
    assert_eq!(
        count(Filter {
            ip: Some("198.51.100.0/24".parse().unwrap()),
            ..Filter::default()
        }),
        0
    );
}

/// A store written by shenhe before format 2 (5 sample posts, `shenhe scan --audit`), as
/// `sqlite3 .dump` printed it, and the head `audit head` printed then.
const FORMAT1_DUMP: &str = include_str!("../../tests/data/audit/format1.sql");
const FORMAT1_HEAD: &str = "ac904ef41b95c0edb555d53a233220f0bc8bd677566c5ff57424e408da61e5bd";

#[test]
fn a_store_of_format_1_is_upgraded_and_keeps_every_hash() {
    let dir = tempfile::tempdir().unwrap();
    raw(&dir).execute_batch(FORMAT1_DUMP).unwrap();
    let mut s = AuditStore::open(dir.path().join("audit.db"), None).unwrap();
    let v = s.verify(Some(FORMAT1_HEAD)).unwrap();
    assert_eq!((v.problem, v.records), (None, 5));
    let schema: String = raw(&dir)
        .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(schema, "2");
    // New records, named by their caller, chain on after the old ones.
    let engine = Engine::bundled();
    let p = post("p9", "u9", "出售冰毒");
    let d = engine.scan(&p);
    let run = s.begin_run(None, None, "hash").unwrap();
    let pending = s
        .preparer()
        .prepare_by(None, &p, &d, Some("forum"))
        .unwrap();
    s.append_prepared(run, vec![pending], Timestamp::now())
        .unwrap();
    assert_eq!(s.verify(None).unwrap().problem, None);
    let mut callers = Vec::new();
    s.query(&Filter::default(), |r| {
        callers.push(r.caller);
        Ok(())
    })
    .unwrap();
    assert_eq!(
        callers,
        [None, None, None, None, None, Some("forum".into())]
    );
    let only = Filter {
        caller: Some("forum".into()),
        ..Filter::default()
    };
    assert_eq!(s.query(&only, |_| Ok(())).unwrap(), 1);
    // The caller is inside the hash: naming someone else is an edit.
    raw(&dir)
        .execute("UPDATE records SET caller = 'someone' WHERE seq = 6", [])
        .unwrap();
    assert!(
        problem(&s).starts_with("record 6 (post \"p9\""),
        "{}",
        problem(&s)
    );
    raw(&dir)
        .execute("UPDATE records SET caller = NULL WHERE seq = 6", [])
        .unwrap();
    assert!(problem(&s).starts_with("record 6 "), "{}", problem(&s));
}

#[test]
fn a_store_of_a_newer_format_is_refused() {
    let (dir, s) = store_with_days(None, "2026-01-01T02:00:00Z", 1);
    drop(s);
    raw(&dir)
        .execute("UPDATE meta SET value = '3' WHERE key = 'schema'", [])
        .unwrap();
    let e = AuditStore::open(dir.path().join("audit.db"), None).unwrap_err();
    assert!(
        e.to_string()
            .contains("has format 3, newer than this shenhe's (2)"),
        "{e}"
    );
}

#[test]
fn a_commit_waits_for_another_connection_writing_the_store_instead_of_failing() {
    // The service's review queue writes the same store as the group commit, on a
    // connection of its own: a commit that finds the write lock taken waits its turn.
    let (dir, mut s) = store_with_days(None, "2026-06-01T08:00:00Z", 1);
    let mut other = raw(&dir);
    let writing = other.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate);
    let writing = writing.unwrap();
    let (started, go) = std::sync::mpsc::channel();
    let appender = std::thread::spawn(move || {
        let engine = Engine::bundled();
        let p = post("late", "u9", "出售冰毒");
        let d = engine.scan(&p);
        started.send(()).unwrap();
        s.append(1, vec![(Some(4), &p, &d)], ts("2026-06-01T09:00:00Z"))
            .map(|()| s)
    });
    go.recv().unwrap();
    // Hold the lock for a while: the append is waiting on it meanwhile.
    std::thread::sleep(std::time::Duration::from_millis(150));
    writing.commit().unwrap();
    let s = appender
        .join()
        .unwrap()
        .expect("the append waited for the lock");
    assert_eq!(s.verify(None).unwrap().problem, None);
    let n: i64 = raw(&dir)
        .query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 4);
}

#[test]
fn a_record_without_an_account_or_a_post_id_is_pruned_while_others_are_held() {
    let (dir, mut s) = store_with_days(None, "2026-01-01T02:00:00Z", 1);
    let anonymous = Post::from_json(r#"{"text":"出售冰毒"}"#).unwrap();
    let d = Engine::bundled().scan(&anonymous);
    let run = s.begin_run(None, None, "hash").unwrap();
    s.append(
        run,
        vec![(None, &anonymous, &d)],
        ts("2026-01-01T03:00:00Z"),
    )
    .unwrap();
    s.hold(HoldKind::User, "u1").unwrap();
    s.hold(HoldKind::Post, "p0-2").unwrap();
    let pruned = s.prune(ts("2027-01-01T00:00:00Z"), 190).unwrap();
    assert_eq!((pruned.records, pruned.held), (2, 2), "{pruned:?}");
    let left: i64 = raw(&dir)
        .query_row(
            "SELECT COUNT(*) FROM records WHERE user_id IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0, "the record with no account is gone");
}

#[test]
fn a_prune_in_steps_verifies_after_each_step_while_records_are_added_between_them() {
    let (dir, mut s) = store_with_days(None, "2026-01-01T02:00:00Z", 3);
    s.hold(HoldKind::User, "u2").unwrap();
    let now = ts("2027-01-01T00:00:00Z");
    let mut pruning = s.start_prune(now, 190).unwrap().with_batch(1);
    let (engine, run) = (Engine::bundled(), s.begin_run(None, None, "hash").unwrap());
    let mut steps = 0;
    while s.prune_step(&mut pruning).unwrap() {
        steps += 1;
        assert_eq!(problem(&s), "", "after step {steps}");
        // A decision recorded between two steps, as a service's commits are.
        let p = post(&format!("new{steps}"), "u9", "出售冰毒");
        s.append(run, vec![(None, &p, &engine.scan(&p))], now)
            .unwrap();
    }
    // Six records of three days go one per step, and a step a day finds only its held
    // record left.
    assert_eq!(steps, 9, "{:?}", pruning.done());
    let done = pruning.into_done();
    assert_eq!((done.records, done.held, done.days.len()), (6, 3, 3));
    let (_twin_dir, mut twin) = store_with_days(None, "2026-01-01T02:00:00Z", 3);
    twin.hold(HoldKind::User, "u2").unwrap();
    assert_eq!(twin.prune(now, 190).unwrap(), done, "the same as one prune");
    let left: i64 = raw(&dir)
        .query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        left,
        3 + steps,
        "the held records and the ones added meanwhile"
    );
    assert_eq!(s.verify(None).unwrap().pruned_days, 3);
}

#[test]
fn a_prune_cut_short_is_finished_by_the_next_one() {
    let (_dir, mut s) = store_with_days(None, "2026-01-01T02:00:00Z", 2);
    let now = ts("2027-01-01T00:00:00Z");
    let mut pruning = s.start_prune(now, 190).unwrap().with_batch(2);
    assert!(s.prune_step(&mut pruning).unwrap());
    assert_eq!(pruning.done().records, 2);
    // The process stops here (a crash, a restart): the store is consistent.
    drop(pruning);
    let v = s.verify(None).unwrap();
    assert_eq!((v.problem, v.records, v.pruned_days), (None, 4, 1));
    let rest = s.prune(now, 190).unwrap();
    assert_eq!((rest.records, rest.held), (4, 0));
    assert_eq!(rest.days, ["2026-01-01", "2026-01-02"]);
    let v = s.verify(None).unwrap();
    assert_eq!((v.problem, v.records, v.pruned_days), (None, 0, 2));
}

#[test]
fn records_kept_by_a_hold_go_at_the_first_prune_after_it_is_lifted() {
    let (_dir, mut s) = store_with_days(None, "2026-01-01T02:00:00Z", 2);
    s.hold(HoldKind::Post, "p0-1").unwrap();
    let now = ts("2027-01-01T00:00:00Z");
    let first = s.prune(now, 190).unwrap();
    assert_eq!((first.records, first.held), (5, 1));
    // Nothing left to do while the hold stands.
    assert_eq!(s.prune(now, 190).unwrap(), Pruned::default());
    assert!(s.unhold(HoldKind::Post, "p0-1").unwrap());
    let second = s.prune(now, 190).unwrap();
    assert_eq!((second.records, second.held), (1, 0));
    assert_eq!(second.days, ["2026-01-01"]);
    let v = s.verify(None).unwrap();
    assert_eq!((v.problem, v.records, v.pruned_days), (None, 0, 2));
}

#[test]
fn a_prune_planned_on_one_store_deletes_nothing_in_another() {
    let (_a_dir, a) = store_with_days(None, "2026-01-01T02:00:00Z", 2);
    // The other store's days are younger: none of them is past the plan's cutoff.
    let (b_dir, mut b) = store_with_days(None, "2026-09-01T02:00:00Z", 2);
    let now = ts("2027-01-01T00:00:00Z");
    let mut pruning = a.start_prune(now, 190).unwrap();
    let e = b.prune_step(&mut pruning).unwrap_err().to_string();
    assert!(e.contains("not in this store's manifest"), "{e}");
    let n: i64 = raw(&b_dir)
        .query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 6);
    assert_eq!(problem(&b), "");
}

#[test]
fn a_run_keeps_its_inputs_print_and_opening_a_store_writes_nothing_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let tables = |s: &AuditStore| -> i64 {
        s.conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'run_inputs'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    let mut s = AuditStore::open(&path, None).unwrap();
    let old = s.begin_run(Some("in.jsonl"), None, "hash").unwrap();
    assert_eq!(tables(&s), 0, "no run has kept a print");
    let last = s.last_run("in.jsonl").unwrap().unwrap();
    assert_eq!((last.run, last.line, last.finished), (old, 0, false));
    assert_eq!(last.print, None);
    assert!(s.last_run("other.jsonl").unwrap().is_none());

    let print = InputPrint {
        bytes: 42,
        head: "ab".repeat(32),
    };
    let run = s
        .begin_run_over(Some("in.jsonl"), Some(&print), Some("out.jsonl"), "hash")
        .unwrap();
    s.finish_run_with_output(run, Some(4096)).unwrap();
    let last = s.last_run("in.jsonl").unwrap().unwrap();
    assert_eq!((last.run, last.finished), (run, true));
    assert_eq!(last.print.as_ref(), Some(&print));
    assert_eq!(
        (last.output.as_deref(), last.output_bytes),
        (Some("out.jsonl"), Some(4096))
    );
    // Reopened over the file as it is now (grown): unfinished, with the new print.
    let grown = InputPrint { bytes: 84, ..print };
    s.reopen_run(run, Some(&grown)).unwrap();
    let last = s.last_run("in.jsonl").unwrap().unwrap();
    assert_eq!((last.finished, last.print), (false, Some(grown)));
    assert_eq!(
        last.output_bytes, None,
        "reopened: not finished into that size"
    );
    drop(s);
    let s = AuditStore::open(&path, None).unwrap();
    assert_eq!(tables(&s), 1);
}

#[test]
fn the_log_is_copied_into_the_database_file_while_records_are_written() {
    // 60 commits of 3 records: a few hundred pages of log, below the writer's own
    // checkpoint (1,000 pages), so only the checkpointer thread copies them meanwhile.
    let (dir, s) = store_with_days(None, "2026-06-01T08:00:00Z", 60);
    let file = dir.path().join("audit.db");
    let size = || std::fs::metadata(&file).unwrap().len();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // The store as first written is its schema: a few pages.
    while size() < 16 * 4096 {
        assert!(
            std::time::Instant::now() < deadline,
            "the records never reached the database file ({} bytes) while the store was open",
            size()
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(s.verify(None).unwrap().problem, None);
    // Closing ends the thread (no hang) and loses nothing.
    drop(s);
    let s = AuditStore::open(&file, None).unwrap();
    assert_eq!(s.verify(None).unwrap().problem, None);
    assert_eq!(s.head().0, 180);
}
