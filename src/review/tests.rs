//! The queue on its own, and with a pipeline: held once per post, one verdict, callbacks
//! kept until delivered, verdicts in the audit chain.

use super::*;
use crate::audit::{AuditStore, Filter};
use crate::{Action, Engine, EngineHandle, Pipeline, RuleSet};

const RULES: &str = r#"
[[rule]]
id = "insult"
category = 8
severity = "medium"
terms = ["傻逼"]

[[rule]]
id = "gambling"
category = 7
severity = "medium"
terms = ["赌场"]
"#;

fn engine() -> EngineHandle {
    EngineHandle::new(Engine::new(&RuleSet::from_toml_str(RULES).unwrap()).unwrap())
}

fn post(id: &str, board: &str, text: &str) -> Post {
    Post::from_json(&format!(
        r#"{{"id":"{id}","board":"{board}","text":"{text}","poster":{{"user_id":"u1","ip":"203.0.113.7","port":4242}}}}"#
    ))
    .unwrap()
}

fn now() -> Timestamp {
    "2026-12-01T08:00:00Z".parse().unwrap()
}

fn held(q: &ReviewQueue, id: &str, board: &str, text: &str) -> i64 {
    let p = post(id, board, text);
    let d = engine().load().scan(&p);
    assert_eq!(d.action, Action::Review);
    q.hold(&p, &d, now()).unwrap()
}

#[test]
fn a_post_is_held_once_and_listed_by_status_category_and_board() {
    let dir = tempfile::tempdir().unwrap();
    let q = ReviewQueue::open(dir.path().join("audit.db"), None, false).unwrap();
    let a = held(&q, "p1", "chat", "你这个傻逼");
    assert_eq!(
        held(&q, "p1", "chat", "你这个傻逼"),
        a,
        "decided again: same item"
    );
    let b = held(&q, "p2", "sports", "网络赌场");
    assert_ne!(a, b);
    let ids = |f: ReviewFilter| -> Vec<i64> { q.list(&f).unwrap().iter().map(|i| i.id).collect() };
    assert_eq!(ids(ReviewFilter::default()), [a, b]);
    let of = |c| ReviewFilter {
        category: Some(c),
        ..ReviewFilter::default()
    };
    assert_eq!(ids(of(8)), [a]);
    assert_eq!(ids(of(7)), [b]);
    assert_eq!(ids(of(1)), Vec::<i64>::new());
    let on = ReviewFilter {
        board: Some("sports".into()),
        ..ReviewFilter::default()
    };
    assert_eq!(ids(on), [b]);
    let item = q.get(a).unwrap().unwrap();
    assert_eq!(item.status, Status::Pending);
    assert_eq!(item.decision.review_id, Some(a));
    assert_eq!(item.post.text, "你这个傻逼");
    assert_eq!(item.deadline, "2026-12-02T08:00:00Z");
    assert_eq!(q.open_count().unwrap(), 2);
    assert!(q.get(999).unwrap().is_none());
}

#[test]
fn a_verdict_is_given_once_and_queues_one_callback() {
    let dir = tempfile::tempdir().unwrap();
    let q = ReviewQueue::open(dir.path().join("audit.db"), None, true).unwrap();
    let a = held(&q, "p1", "chat", "你这个傻逼");
    let claimed = q.claim(a, "alice", now()).unwrap();
    assert_eq!(
        (claimed.status, claimed.claimed_by.as_deref()),
        (Status::Claimed, Some("alice"))
    );
    let decided = q
        .decide(a, "alice", Verdict::Remove, Some("辱骂"), now())
        .unwrap();
    assert_eq!(decided.status, Status::Decided);
    assert_eq!(decided.verdict, Some(Verdict::Remove));
    let again = q
        .decide(a, "bob", Verdict::Approve, None, now())
        .unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Conflict);
    assert!(again.to_string().contains("remove by alice"), "{again}");
    assert_eq!(
        q.claim(a, "bob", now()).unwrap_err().kind(),
        ErrorKind::Conflict
    );
    assert_eq!(q.undecided(a).unwrap_err().kind(), ErrorKind::Conflict);
    assert_eq!(q.undecided(77).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        q.decide(77, "bob", Verdict::Approve, None, now())
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    // One callback, kept until delivered, retried later after a failure.
    let due = q.due_callbacks(now(), 10).unwrap();
    assert_eq!(due.len(), 1);
    let body: serde_json::Value = serde_json::from_str(&due[0].body).unwrap();
    assert_eq!(body["post_id"], "p1");
    assert_eq!(body["review_id"], a);
    assert_eq!(body["verdict"], "remove");
    assert_eq!(body["reviewer"], "alice");
    let later = now() + jiff::SignedDuration::from_secs(30);
    q.failed(due[0].id, "connection refused", later).unwrap();
    assert!(q.due_callbacks(now(), 10).unwrap().is_empty());
    assert_eq!(q.next_callback_at().unwrap(), Some(later));
    let retry = q.due_callbacks(later, 10).unwrap();
    assert_eq!(retry[0].attempts, 1);
    q.delivered(retry[0].id, later).unwrap();
    assert!(q.due_callbacks(later, 10).unwrap().is_empty());
    assert_eq!(q.undelivered().unwrap(), 0);
}

#[test]
fn with_a_key_the_held_post_is_sealed_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = crate::audit::AuditKey::generate();
    let q = ReviewQueue::open(dir.path().join("audit.db"), Some(key), false).unwrap();
    let a = held(&q, "p1", "chat", "你这个傻逼");
    assert_eq!(q.get(a).unwrap().unwrap().post.text, "你这个傻逼");
    drop(q);
    let raw = rusqlite::Connection::open(dir.path().join("audit.db")).unwrap();
    let (post, decision): (String, String) = raw
        .query_row("SELECT post, decision FROM reviews", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    for stored in [post, decision] {
        assert!(
            !stored.contains("傻逼") && !stored.contains("203.0.113.7"),
            "{stored}"
        );
    }
    let without = ReviewQueue::open(dir.path().join("audit.db"), None, false).unwrap();
    assert_eq!(without.get(a).unwrap_err().kind(), ErrorKind::AuditKey);
}

#[test]
fn held_decisions_carry_their_review_id_and_verdicts_are_in_the_audit_chain() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let key = crate::audit::AuditKey::generate();
    let queue = Arc::new(ReviewQueue::open(&db, Some(key.clone()), true).unwrap());
    let pipeline = Pipeline::builder(engine())
        .audit(AuditStore::open(&db, Some(key.clone())).unwrap())
        .reports(dir.path().join("reports"))
        .review_queue(queue.clone())
        .build()
        .unwrap();
    let d = pipeline
        .moderate(&post("p1", "chat", "你这个傻逼"))
        .unwrap();
    let id = d.review_id.expect("held posts carry their review id");
    assert!(pipeline
        .moderate(&post("p2", "chat", "你好"))
        .unwrap()
        .review_id
        .is_none());
    let d2 = pipeline.moderate(&post("p3", "chat", "网络赌场")).unwrap();
    let item = queue.undecided(id).unwrap();
    pipeline
        .record_verdict(&item, Verdict::Remove, "alice", Some("辱骂"))
        .unwrap();
    queue
        .decide(id, "alice", Verdict::Remove, Some("辱骂"), Timestamp::now())
        .unwrap();
    let item3 = queue.undecided(d2.review_id.unwrap()).unwrap();
    pipeline
        .record_verdict(&item3, Verdict::Report, "bob", None)
        .unwrap();
    let finished = pipeline.finish().unwrap();
    assert_eq!(
        finished.reports,
        Some(1),
        "the report verdict wrote its report"
    );
    let store = AuditStore::open(&db, Some(key)).unwrap();
    assert_eq!(store.verify(None).unwrap().problem, None);
    let mut verdicts = Vec::new();
    store
        .query(&Filter::default(), |r| {
            if let Some(e) = &r.event {
                verdicts.push((
                    r.post_id_text(),
                    r.caller.clone().unwrap(),
                    e["kind"].as_str().unwrap().to_owned(),
                    e["verdict"].as_str().unwrap().to_owned(),
                    r.action.clone(),
                    r.report,
                    r.personal.as_ref().and_then(|p| p.ip.clone()),
                ));
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(
        verdicts,
        [
            (
                "p1".into(),
                "alice".into(),
                "verdict".into(),
                "remove".into(),
                "delete".into(),
                false,
                Some("203.0.113.7".into())
            ),
            (
                "p3".into(),
                "bob".into(),
                "verdict".into(),
                "report".into(),
                "delete".into(),
                true,
                Some("203.0.113.7".into())
            ),
        ]
    );
    // A verdict is not an offence: the ledger seeded from the store counts posts only.
    let mut offences = 0;
    store.offences(|_, _, _, _| offences += 1).unwrap();
    assert_eq!(offences, 2);
}

#[test]
fn rule_statistics_count_verdicts_per_rule() {
    let dir = tempfile::tempdir().unwrap();
    let q = ReviewQueue::open(dir.path().join("audit.db"), None, false).unwrap();
    let a = held(&q, "p1", "chat", "你这个傻逼");
    let b = held(&q, "p2", "chat", "傻逼赌场");
    held(&q, "p3", "chat", "网络赌场");
    q.decide(a, "alice", Verdict::Approve, None, now()).unwrap();
    q.decide(b, "alice", Verdict::Report, None, now()).unwrap();
    let all = q
        .list(&ReviewFilter {
            limit: Some(1000),
            ..ReviewFilter::default()
        })
        .unwrap();
    let stats = rule_statistics(&all);
    let row = |r: &str| stats.iter().find(|s| s.rule == r).unwrap().clone();
    let insult = row("insult");
    assert_eq!((insult.held, insult.approved, insult.reported), (2, 1, 1));
    assert_eq!(insult.precision(), Some(0.5));
    let gambling = row("gambling");
    assert_eq!((gambling.held, gambling.decided()), (2, 1));
    assert_eq!(gambling.precision(), Some(1.0));
}

/// The review ids in the file, by post id.
fn rows(db: &std::path::Path) -> Vec<(i64, String)> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, post_id FROM reviews ORDER BY id")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap();
    rows
}

#[test]
fn a_hold_is_written_with_its_record_or_not_at_all_and_once_per_post() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let queue = Arc::new(ReviewQueue::open(&db, None, false).unwrap());
    // Without escalation: the same poster's offences stay `review`.
    let pipeline = Arc::new(
        Pipeline::builder(engine())
            .escalation(false)
            .audit(AuditStore::open(&db, None).unwrap())
            .review_queue(queue.clone())
            .build()
            .unwrap(),
    );
    let a = pipeline
        .moderate(&post("p1", "chat", "你这个傻逼"))
        .unwrap();
    let a = a.review_id.expect("held: a review id");
    assert_eq!(
        rows(&db),
        [(a, "\"p1\"".to_owned())],
        "in the file on return"
    );

    // The record cannot be written (a trigger refuses it): neither is the hold.
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER refuse BEFORE INSERT ON records WHEN NEW.post_id = '\"p2\"'
         BEGIN SELECT RAISE(ABORT, 'refused'); END;",
    )
    .unwrap();
    let e = pipeline
        .moderate(&post("p2", "chat", "网络赌场"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Audit, "{e}");
    assert_eq!(rows(&db).len(), 1, "no hold without its record");
    conn.execute_batch("DROP TRIGGER refuse").unwrap();
    let b = pipeline.moderate(&post("p2", "chat", "网络赌场")).unwrap();
    let b = b.review_id.unwrap();
    assert!(b > a);
    assert_eq!(rows(&db).len(), 2);

    // The same new post decided by many callers at once: one hold, one id for all.
    let ids: Vec<Option<i64>> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    pipeline
                        .moderate(&post("p3", "chat", "傻逼"))
                        .unwrap()
                        .review_id
                })
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let c = ids[0].unwrap();
    assert!(ids.iter().all(|i| *i == Some(c)), "{ids:?}");
    assert!(c > b);
    assert_eq!(rows(&db).len(), 3);
    // Decided again later: the id it has, still one row; the queue lists it.
    let again = pipeline.moderate(&post("p3", "chat", "傻逼")).unwrap();
    assert_eq!(again.review_id, Some(c));
    assert_eq!(rows(&db).len(), 3);
    assert_eq!(queue.get(c).unwrap().unwrap().status, Status::Pending);
    // p1, p2 once (the refused one is not recorded), p3 nine times.
    assert_eq!(pipeline.finish().unwrap().records, 11);
}

#[test]
fn a_queue_in_another_file_holds_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(ReviewQueue::open(dir.path().join("queue.db"), None, false).unwrap());
    let pipeline = Pipeline::builder(engine())
        .audit(AuditStore::open(dir.path().join("audit.db"), None).unwrap())
        .review_queue(queue.clone())
        .build()
        .unwrap();
    let d = pipeline
        .moderate(&post("p1", "chat", "你这个傻逼"))
        .unwrap();
    assert_eq!(
        rows(&dir.path().join("queue.db")),
        [(d.review_id.unwrap(), "\"p1\"".to_owned())]
    );
}

#[test]
fn two_reservations_of_one_post_share_an_id_and_either_can_write_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let q = ReviewQueue::open(&db, None, false).unwrap();
    let mut store = AuditStore::open(&db, None).unwrap();
    store.lock_writer("test").unwrap();
    let run = store.begin_run(None, None, "rules").unwrap();
    let p = post("p1", "chat", "你这个傻逼");
    let d = engine().load().scan(&p);
    let (a, first) = q.reserve(&p, &d, now()).unwrap();
    let (b, second) = q.reserve(&p, &d, now()).unwrap();
    assert_eq!(a, b, "one post, one id while both are on their way");

    // The first one's group fails: no row; the second's commits and writes it, same id.
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER refuse BEFORE INSERT ON records BEGIN SELECT RAISE(ABORT, 'refused'); END;",
    )
    .unwrap();
    let failed = store_record(&store, &p, &d).with_hold(first.unwrap());
    assert!(store.append_prepared(run, vec![failed], now()).is_err());
    assert!(rows(&db).is_empty());
    conn.execute_batch("DROP TRIGGER refuse").unwrap();
    let kept = store_record(&store, &p, &d).with_hold(second.unwrap());
    store.append_prepared(run, vec![kept], now()).unwrap();
    assert_eq!(rows(&db), [(a, "\"p1\"".to_owned())]);
    // Both reservations are over: decided again, the post has its row's id and no new row.
    let (again, row) = q.reserve(&p, &d, now()).unwrap();
    assert_eq!((again, row.is_none()), (a, true));

    // Another queue on the file numbers a hold of its own with the id this one reserved:
    // the commit fails, loudly, instead of leaving a decision whose review id is not its.
    let p2 = post("p2", "chat", "网络赌场");
    let d2 = engine().load().scan(&p2);
    let (c, hold) = q.reserve(&p2, &d2, now()).unwrap();
    let other = ReviewQueue::open(&db, None, false).unwrap();
    let p3 = post("p3", "chat", "傻逼");
    assert_eq!(
        other.hold(&p3, &engine().load().scan(&p3), now()).unwrap(),
        c
    );
    let clash = store_record(&store, &p2, &d2).with_hold(hold.unwrap());
    let e = store.append_prepared(run, vec![clash], now()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Audit, "{e}");
    let (retry, hold) = q.reserve(&p2, &d2, now()).unwrap();
    assert!(retry > c);
    let record = store_record(&store, &p2, &d2).with_hold(hold.unwrap());
    store.append_prepared(run, vec![record], now()).unwrap();
    assert_eq!(
        rows(&db),
        [
            (a, "\"p1\"".to_owned()),
            (c, "\"p3\"".to_owned()),
            (retry, "\"p2\"".to_owned())
        ]
    );
}

fn store_record(store: &AuditStore, p: &Post, d: &Decision) -> crate::audit::PendingRecord {
    store.prepare(None, p, d).unwrap()
}

#[test]
fn pruning_the_store_deletes_decided_items_past_retention_with_their_callbacks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let mut store = AuditStore::open(&path, None).unwrap();
    let q = ReviewQueue::open(&path, None, true).unwrap();
    let at = |t: &str| -> Timestamp { t.parse().unwrap() };
    let hold = |q: &ReviewQueue, id: &str| {
        let p = post(id, "chat", "你这个傻逼");
        let d = engine().load().scan(&p);
        q.hold(&p, &d, at("2026-01-02T08:00:00Z")).unwrap()
    };
    let [old, held_post, pending, recent, undelivered, last_callback, newest] =
        ["p1", "p2", "p3", "p4", "p5", "p6", "p7"].map(|id| hold(&q, id));
    // Decided in this order: the last callback queued is `last_callback`'s.
    for (id, when) in [
        (old, "2026-01-03T08:00:00Z"),
        (held_post, "2026-01-03T08:00:00Z"),
        (recent, "2026-09-01T08:00:00Z"),
        (undelivered, "2026-01-03T08:00:00Z"),
        (newest, "2026-01-03T09:00:00Z"),
        (last_callback, "2026-01-03T10:00:00Z"),
    ] {
        q.decide(id, "alice", Verdict::Remove, None, at(when))
            .unwrap();
    }
    for cb in q.due_callbacks(at("2026-09-02T00:00:00Z"), 100).unwrap() {
        if cb.review_id != undelivered {
            q.delivered(cb.id, at("2026-09-02T00:00:00Z")).unwrap();
        }
    }
    store.hold(crate::audit::HoldKind::Post, "p2").unwrap();
    let callbacks = |id: i64| -> i64 {
        rusqlite::Connection::open(&path)
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FROM review_outbox WHERE review_id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(callbacks(old), 1);

    let pruned = store.prune(at("2026-10-01T00:00:00Z"), 190).unwrap();
    assert_eq!(pruned.reviews, 1, "{pruned:?}");
    assert!(
        q.get(old).unwrap().is_none(),
        "decided before the cutoff: gone"
    );
    assert_eq!(callbacks(old), 0, "and its callback");
    let kept = |id: i64, why: &str| {
        assert!(q.get(id).unwrap().is_some(), "{why}");
        assert!(
            id == pending || callbacks(id) == 1,
            "{why}: its callback stays"
        );
    };
    kept(held_post, "a held post's item stays");
    kept(pending, "an undecided item stays");
    kept(recent, "decided within retention");
    kept(undelivered, "its callback is not delivered yet");
    kept(
        newest,
        "the newest item: the next hold is numbered after it",
    );
    kept(
        last_callback,
        "the newest callback: the next is numbered after it",
    );
    // A queue opened afresh numbers from the store, after the newest item.
    drop(q);
    let q = ReviewQueue::open(&path, None, true).unwrap();
    let next = hold(&q, "p8");
    assert_eq!(next, newest + 1);
}

#[test]
fn decided_items_past_retention_are_pruned_a_batch_per_step() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let mut store = AuditStore::open(&path, None).unwrap();
    let q = ReviewQueue::open(&path, None, true).unwrap();
    let at = |t: &str| -> Timestamp { t.parse().unwrap() };
    let ids: Vec<i64> = (1..=6)
        .map(|n| {
            let p = post(&format!("p{n}"), "chat", "你这个傻逼");
            let d = engine().load().scan(&p);
            let id = q.hold(&p, &d, at("2026-01-02T08:00:00Z")).unwrap();
            q.decide(
                id,
                "alice",
                Verdict::Approve,
                None,
                at("2026-01-03T08:00:00Z"),
            )
            .unwrap();
            id
        })
        .collect();
    for cb in q.due_callbacks(at("2026-01-04T00:00:00Z"), 100).unwrap() {
        q.delivered(cb.id, at("2026-01-04T00:00:00Z")).unwrap();
    }
    let mut pruning = store
        .start_prune(at("2026-10-01T00:00:00Z"), 190)
        .unwrap()
        .with_batch(2);
    let mut steps = Vec::new();
    while store.prune_step(&mut pruning).unwrap() {
        steps.push(pruning.done().reviews);
    }
    // Five items can go (the newest stays): two, two, then one, which ends the prune.
    assert_eq!(steps, [2, 4], "{:?}", pruning.done());
    assert_eq!(pruning.done().reviews, 5);
    let left: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| q.get(*id).unwrap().is_some())
        .collect();
    assert_eq!(left, [ids[5]], "only the newest item is left");
}
