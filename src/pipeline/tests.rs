//! The pipeline's own behaviour: escalation order and windows, group commit, limits,
//! failures that must not pass as decisions.

use super::*;
use crate::{Measure, RuleSet};

const RULES: &str = r#"
[policy]
escalation = { count = 3, window_hours = 24, by = ["user", "ip"] }

[[rule]]
id = "insult"
category = 8
severity = "low"
terms = ["傻逼"]
"#;

fn engine(rules: &str) -> EngineHandle {
    EngineHandle::new(Engine::new(&RuleSet::from_toml_str(rules).unwrap()).unwrap())
}

fn moderator() -> Pipeline {
    Pipeline::builder(engine(RULES)).build().unwrap()
}

fn post(user: &str, ip: &str, time: &str, text: &str) -> Post {
    Post::from_json(&format!(
        r#"{{"text":"{text}","time":"{time}","poster":{{"user_id":"{user}","ip":"{ip}"}}}}"#
    ))
    .unwrap()
}

#[test]
fn third_offence_within_the_window_escalates() {
    let m = moderator();
    let a = m
        .moderate(&post(
            "u1",
            "203.0.113.1",
            "2026-11-20T00:00:00+08:00",
            "傻逼",
        ))
        .unwrap();
    let b = m
        .moderate(&post(
            "u1",
            "203.0.113.2",
            "2026-11-20T10:00:00+08:00",
            "傻逼",
        ))
        .unwrap();
    let clean = m
        .moderate(&post(
            "u1",
            "203.0.113.3",
            "2026-11-20T11:00:00+08:00",
            "你好",
        ))
        .unwrap();
    let c = m
        .moderate(&post(
            "u1",
            "203.0.113.4",
            "2026-11-20T23:59:59+08:00",
            "傻逼",
        ))
        .unwrap();
    assert_eq!(
        (a.action, b.action, clean.action),
        (Action::Mask, Action::Mask, Action::Allow)
    );
    assert!(a.measures.is_empty() && clean.measures.is_empty());
    assert_eq!(c.action, Action::Review, "raised one level");
    assert_eq!(c.measures, vec![Measure::Warn]);
}

#[test]
fn window_edges_are_exact() {
    let m = moderator();
    m.moderate(&post("u1", "", "2026-11-20T00:00:00+08:00", "傻逼"))
        .unwrap();
    m.moderate(&post("u1", "", "2026-11-20T12:00:00+08:00", "傻逼"))
        .unwrap();
    // Exactly 24 hours after the first: the first is out of (t − 24h, t].
    let d = m
        .moderate(&post("u1", "", "2026-11-21T00:00:00+08:00", "傻逼"))
        .unwrap();
    assert_eq!((d.action, d.measures.len()), (Action::Mask, 0));
    // One second inside the window of the second and third: three in the window.
    let d = m
        .moderate(&post("u1", "", "2026-11-21T11:59:59+08:00", "傻逼"))
        .unwrap();
    assert_eq!(
        (d.action, d.measures.clone()),
        (Action::Review, vec![Measure::Warn])
    );
}

#[test]
fn offences_count_by_ip_across_accounts_and_measures_grow() {
    let m = moderator();
    let mut last = None;
    for (i, user) in ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
        .iter()
        .enumerate()
    {
        let t = format!("2026-11-20T0{}:00:00+08:00", i);
        last = Some(m.moderate(&post(user, "198.51.100.9", &t, "傻逼")).unwrap());
        if i == 5 {
            assert_eq!(last.as_ref().unwrap().measures, vec![Measure::Restrict]);
        }
    }
    assert_eq!(last.unwrap().measures, vec![Measure::Suspend]);
}

#[test]
fn batches_escalate_in_input_order() {
    let m = moderator();
    let posts: Vec<Post> = (0..6)
        .map(|i| post("u9", "", &format!("2026-11-20T0{i}:00:00+08:00"), "傻逼"))
        .collect();
    let d: Vec<Decision> = m
        .moderate_batch(&posts)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let measures: Vec<Vec<Measure>> = d.iter().map(|d| d.measures.clone()).collect();
    assert_eq!(measures[..2], [vec![], vec![]]);
    assert_eq!(measures[2], vec![Measure::Warn]);
    assert_eq!(measures[5], vec![Measure::Restrict]);
}

#[test]
fn the_ledger_forgets_what_no_window_can_reach() {
    let m = moderator();
    for day in 1..=28 {
        for hour in [0, 8, 16] {
            let t = format!("2026-11-{day:02}T{hour:02}:00:00+08:00");
            m.moderate(&post("u1", "203.0.113.1", &t, "傻逼")).unwrap();
        }
    }
    let ledger = m.ledger.as_ref().unwrap().lock().unwrap();
    let kept = ledger.offences.offences_kept();
    assert!(
        kept <= 2 * 3,
        "only the last day's offences are kept: {kept}"
    );
}

#[test]
fn count_zero_turns_escalation_off() {
    let rules = RULES.replace("count = 3", "count = 0");
    let m = Pipeline::builder(engine(&rules)).build().unwrap();
    for i in 0..5 {
        let d = m
            .moderate(&post(
                "u1",
                "",
                &format!("2026-11-20T0{i}:00:00+08:00"),
                "傻逼",
            ))
            .unwrap();
        assert!(d.measures.is_empty());
    }
}

fn store(dir: &std::path::Path) -> crate::audit::AuditStore {
    crate::audit::AuditStore::open(dir.join("audit.db"), None).unwrap()
}

#[test]
fn concurrent_callers_share_commits_and_the_chain_keeps_escalation_order() {
    let dir = tempfile::tempdir().unwrap();
    let m = std::sync::Arc::new(
        Pipeline::builder(engine(RULES))
            .audit(store(dir.path()))
            .build()
            .unwrap(),
    );
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let m = m.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let text = if i % 2 == 0 { "傻逼" } else { "你好" };
                    let p = post(
                        "u1",
                        "203.0.113.9",
                        &format!("2026-11-20T{:02}:{:02}:00+08:00", t, i),
                        text,
                    );
                    m.moderate(&p).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let finished = m.finish().unwrap();
    assert_eq!(finished.records, 200);
    assert!(finished.commits >= 1 && finished.commits <= 200);
    let s = store(dir.path());
    assert_eq!(s.verify(None).unwrap().records, 200);
    // Replaying the chain in its order through a fresh ledger gives every record's
    // measures: the chain's order is the order escalation counted in.
    let mut replay = OffenceLedger::new(
        RuleSet::from_toml_str(RULES)
            .unwrap()
            .policy()
            .escalation
            .clone(),
    );
    let fresh = engine(RULES).load();
    let mut checked = 0;
    s.query(&crate::audit::Filter::default(), |r| {
        let personal = r.personal.clone().unwrap();
        let p = Post {
            text: r.content.text.clone(),
            time: r.post_time.clone(),
            poster: Some(crate::Poster {
                user_id: r.user_id.clone(),
                ip: personal.ip,
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut d = fresh.scan(&p);
        replay.apply(&p, &mut d, jiff::Timestamp::now());
        let measures: Vec<String> = d
            .measures
            .iter()
            .map(|m| format!("{m:?}").to_lowercase())
            .collect();
        assert_eq!(
            (r.action.as_str(), &measures),
            (d.action.as_str(), &r.measures),
            "record {}",
            r.seq
        );
        checked += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(checked, 200);
}

#[test]
fn a_post_that_cannot_be_decided_or_recorded_gets_no_decision() {
    let dir = tempfile::tempdir().unwrap();
    let m = Pipeline::builder(engine(RULES))
        .audit(store(dir.path()))
        .limits(Limits {
            max_hits: 10,
            max_post_bytes: 64,
        })
        .build()
        .unwrap();
    let big = format!(r#"{{"id":"big","text":"{}"}}"#, "傻逼".repeat(20));
    let e = m.moderate_json(big.as_bytes()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooLarge);
    assert_eq!(e.id, Some(crate::PostId::Str("big".into())));
    let e = m.moderate_json(br#"{"title":"x"}"#).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidPost);
    assert_eq!(
        m.moderate(&Post::from_text("傻逼")).unwrap().action,
        Action::Mask
    );
    // The store breaks under the pipeline: the next post is not decided.
    let c = rusqlite::Connection::open(dir.path().join("audit.db")).unwrap();
    c.execute_batch("DROP TABLE records").unwrap();
    let e = m.moderate(&Post::from_text("你好")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Audit, "{e}");
    let batch = m.moderate_batch(&[Post::from_text("a"), Post::from_text("b")]);
    assert!(batch
        .iter()
        .all(|r| r.as_ref().unwrap_err().kind() == ErrorKind::Audit));
}

#[test]
fn a_lower_hit_limit_truncates_and_holds_for_review() {
    let m = Pipeline::builder(engine(RULES))
        .limits(Limits {
            max_hits: 2,
            max_post_bytes: 1 << 20,
        })
        .build()
        .unwrap();
    let d = m.moderate(&Post::from_text("傻逼傻逼傻逼")).unwrap();
    assert_eq!(
        (d.hits.len(), d.truncated, d.action),
        (2, true, Action::Review)
    );
}

#[test]
fn held_posts_reach_the_review_hook_in_order() {
    let rules = RULES.replace("severity = \"low\"", "severity = \"medium\"");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let m = Pipeline::builder(engine(&rules))
        .escalation(false)
        .review_hook(std::sync::Arc::new(move |p: &Post, d: &Decision| {
            let mut seen = sink.lock().unwrap();
            seen.push((p.text.clone(), d.action));
            Ok(Some(seen.len() as i64 * 10))
        }))
        .build()
        .unwrap();
    let posts: Vec<Post> = ["傻逼一", "你好", "傻逼二"].map(Post::from_text).into();
    let ids: Vec<Option<i64>> = m
        .moderate_batch(&posts)
        .into_iter()
        .map(|r| r.unwrap().review_id)
        .collect();
    // The queue's id comes back in the decision of each held post.
    assert_eq!(ids, [Some(10), None, Some(20)]);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("傻逼一".to_owned(), Action::Review),
            ("傻逼二".to_owned(), Action::Review)
        ]
    );
}

#[test]
fn the_pipeline_and_the_engine_handle_can_be_shared_across_threads() {
    fn assert<T: Send + Sync>() {}
    assert::<Pipeline>();
    assert::<EngineHandle>();
    assert::<OffenceLedger>();
}

#[test]
fn a_post_dated_in_the_future_does_not_switch_escalation_off_for_everyone() {
    let m = moderator();
    m.moderate(&post(
        "u0",
        "198.51.100.1",
        "2099-01-01T00:00:00+08:00",
        "傻逼",
    ))
    .unwrap();
    let mut last = None;
    for hour in 1..=3 {
        let t = format!("2026-11-20T0{hour}:00:00+08:00");
        last = Some(m.moderate(&post("u1", "203.0.113.1", &t, "傻逼")).unwrap());
    }
    assert_eq!(last.unwrap().measures, vec![Measure::Warn]);
}

#[test]
fn a_post_retried_after_a_failure_counts_as_one_offence() {
    let rules = RULES.replace("severity = \"low\"", "severity = \"medium\"");
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = calls.clone();
    let m = Pipeline::builder(engine(&rules))
        .review_hook(std::sync::Arc::new(move |_: &Post, _: &Decision| {
            // The second post's first three attempts fail (a queue that is down).
            match seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                1..=3 => Err(Error::new(ErrorKind::Io, "the review queue is down")),
                _ => Ok(None),
            }
        }))
        .build()
        .unwrap();
    let p = |h: u32| post("u1", "", &format!("2026-11-20T0{h}:00:00+08:00"), "傻逼");
    m.moderate(&p(1)).unwrap();
    // Counted twice, the second post would reach three offences and be escalated on its
    // second attempt (blocked, so never held, so never failing).
    for _ in 0..3 {
        assert_eq!(m.moderate(&p(2)).unwrap_err().kind(), ErrorKind::Io);
    }
    let second = m.moderate(&p(2)).unwrap();
    assert_eq!((second.action, second.measures.len()), (Action::Review, 0));
    let third = m.moderate(&p(3)).unwrap();
    assert_eq!(
        third.measures,
        vec![Measure::Warn],
        "the third offence, not the fifth"
    );
}

#[test]
fn async_and_blocking_callers_share_commits_and_each_hears_once() {
    let dir = tempfile::tempdir().unwrap();
    let m = std::sync::Arc::new(
        Pipeline::builder(engine(RULES))
            .audit(store(dir.path()))
            .build()
            .unwrap(),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (m, tx) = (m.clone(), tx.clone());
            std::thread::spawn(move || {
                for i in 0..25 {
                    let text = if i % 2 == 0 { "傻逼" } else { "你好" };
                    let json = format!(
                        r#"{{"id":"t{t}-{i}","text":"{text}","poster":{{"user_id":"u{t}"}}}}"#
                    );
                    if t % 2 == 0 {
                        // Blocking: returns once recorded.
                        let d = m.moderate_json(json.as_bytes()).unwrap();
                        tx.send((d.id, true)).unwrap();
                    } else {
                        // Async: told later, on whichever thread commits.
                        let tx = tx.clone();
                        m.moderate_json_then(json.as_bytes(), Some("forum"), move |r| {
                            tx.send((r.unwrap().id, false)).unwrap();
                        });
                    }
                }
            })
        })
        .collect();
    drop(tx);
    for t in threads {
        t.join().unwrap();
    }
    let heard: Vec<_> = rx.iter().collect();
    assert_eq!(heard.len(), 200, "one answer per post");
    let ids: HashSet<String> = heard.iter().map(|(id, _)| format!("{id:?}")).collect();
    assert_eq!(ids.len(), 200, "no post answered twice");
    let finished = m.finish().unwrap();
    assert_eq!(finished.records, 200);
    let s = store(dir.path());
    assert_eq!(s.verify(None).unwrap().problem, None);
    let mut by_forum = 0;
    s.query(&crate::audit::Filter::default(), |r| {
        let async_caller = r.post_id_text().starts_with(['t'])
            && r.post_id_text()[1..2].parse::<u32>().unwrap() % 2 == 1;
        assert_eq!(r.caller.is_some(), async_caller, "record {}", r.seq);
        by_forum += usize::from(async_caller);
        Ok(())
    })
    .unwrap();
    assert_eq!(by_forum, 100);
}

#[test]
fn an_async_caller_hears_of_a_failed_commit_and_its_offence_is_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let rules = RULES.replace("severity = \"low\"", "severity = \"medium\"");
    let m = Pipeline::builder(engine(&rules))
        .audit(store(dir.path()))
        .build()
        .unwrap();
    let then = |json: &str| {
        let (tx, rx) = std::sync::mpsc::channel();
        m.moderate_json_then(json.as_bytes(), None, move |r| tx.send(r).unwrap());
        rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap()
    };
    let p = |h: u32| {
        format!(
            r#"{{"text":"傻逼","time":"2026-11-20T0{h}:00:00+08:00","poster":{{"user_id":"u1"}}}}"#
        )
    };
    then(&p(1)).unwrap();
    // Not a post: told at once, nothing counted.
    let (tx, rx) = std::sync::mpsc::channel();
    m.moderate_json_then(br#"{"title":"x"}"#, None, move |r| tx.send(r).unwrap());
    assert_eq!(
        rx.try_recv().unwrap().unwrap_err().kind,
        ErrorKind::InvalidPost
    );
    // The store breaks: the commit fails, the caller hears it, the offence is taken back.
    let c = rusqlite::Connection::open(dir.path().join("audit.db")).unwrap();
    c.execute_batch("ALTER TABLE records RENAME TO gone")
        .unwrap();
    for _ in 0..3 {
        assert_eq!(then(&p(2)).unwrap_err().kind, ErrorKind::Audit);
    }
    c.execute_batch("ALTER TABLE gone RENAME TO records")
        .unwrap();
    let second = then(&p(2)).unwrap();
    assert_eq!((second.action, second.measures.len()), (Action::Review, 0));
    let third = then(&p(3)).unwrap();
    assert_eq!(
        third.measures,
        vec![Measure::Warn],
        "the third offence, not the sixth"
    );
}

#[test]
fn without_a_store_an_async_caller_is_told_before_the_call_returns() {
    let m = moderator();
    let (tx, rx) = std::sync::mpsc::channel();
    m.moderate_json_then(
        "{\"text\":\"傻逼\"}".as_bytes(),
        Some("forum"),
        move |r| tx.send(r).unwrap(),
    );
    assert_eq!(rx.try_recv().unwrap().unwrap().action, Action::Mask);
}

#[test]
fn the_first_async_caller_is_answered_even_while_a_blocking_caller_leads() {
    // Fresh pipelines, each with a blocking and an async caller racing for the first
    // commit: the async one must hear back however the race falls.
    for round in 0..40 {
        let dir = tempfile::tempdir().unwrap();
        let m = std::sync::Arc::new(
            Pipeline::builder(engine(RULES))
                .audit(store(dir.path()))
                .build()
                .unwrap(),
        );
        let sync = {
            let m = m.clone();
            std::thread::spawn(move || m.moderate_json(b"{\"text\":\"a\"}").unwrap())
        };
        // Later and later, so that some rounds hand in while the blocking caller commits.
        std::thread::sleep(std::time::Duration::from_micros(round * 60));
        let (tx, rx) = std::sync::mpsc::channel();
        m.moderate_json_then(b"{\"text\":\"b\"}", None, move |r| tx.send(r).unwrap());
        sync.join().unwrap();
        let heard = rx.recv_timeout(std::time::Duration::from_secs(10));
        assert!(heard.is_ok_and(|r| r.is_ok()), "round {round}: no answer");
        assert_eq!(m.finish().unwrap().records, 2);
    }
}

#[test]
fn a_rescan_whose_input_fails_writes_every_chunk_read_before_the_failure() {
    // Three whole chunks of posts, part of a fourth, then the disk fails.
    struct FailingAfter(std::io::Cursor<Vec<u8>>);
    impl std::io::Read for FailingAfter {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.0.read(buf)? {
                0 => Err(std::io::Error::other("the disk is gone")),
                n => Ok(n),
            }
        }
    }
    let whole = 3 * crate::jsonl::CHUNK_LINES;
    let posts: String = (0..whole + 100)
        .map(|i| format!("{{\"id\":{i},\"text\":\"第{i}帖 傻逼\"}}\n"))
        .collect();
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let output = ChannelWriter(tx);
        let input = std::io::BufReader::new(FailingAfter(std::io::Cursor::new(
            posts.clone().into_bytes(),
        )));
        let err = moderator()
            .rescan(input, output, &pool, false, |_, _| {})
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Io, "{err}");
        assert!(err.to_string().contains("the disk is gone"), "{err}");
        let written: Vec<u8> = rx.try_iter().flatten().collect();
        let decisions: Vec<&str> = std::str::from_utf8(&written).unwrap().lines().collect();
        assert_eq!(decisions.len(), whole, "threads {threads}");
        for (i, d) in decisions.iter().enumerate() {
            assert!(d.starts_with(&format!("{{\"id\":{i},")), "{d}");
        }
    }
}

/// An output that hands each write to a channel (it is moved into the writer thread).
struct ChannelWriter(std::sync::mpsc::Sender<Vec<u8>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.send(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_prune_that_fails_partway_says_what_it_deleted_before_the_failure() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(dir.path());
    let e = engine(RULES);
    let run = s.begin_run(None, None, "hash").unwrap();
    // Two old days of three records each (seq 1–3 and 4–6).
    for day in ["2026-01-01T02:00:00Z", "2026-01-02T02:00:00Z"] {
        let posts: Vec<Post> = (0..3)
            .map(|i| post(&format!("u{i}"), "203.0.113.1", day, "你好"))
            .collect();
        let decisions: Vec<Decision> = posts.iter().map(|p| e.load().scan(p)).collect();
        let entries = posts
            .iter()
            .zip(&decisions)
            .map(|(p, d)| (None, p, d))
            .collect::<Vec<_>>();
        s.append(run, entries, day.parse().unwrap()).unwrap();
    }
    drop(s);
    rusqlite::Connection::open(dir.path().join("audit.db"))
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE DELETE ON records WHEN OLD.seq = 5 BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .unwrap();
    let m = Pipeline::builder(e)
        .audit(store(dir.path()))
        .build()
        .unwrap();
    let (done, outcome) = m
        .prune_audit("2027-01-01T00:00:00Z".parse().unwrap(), 190)
        .unwrap();
    assert!(outcome.unwrap_err().to_string().contains("refused"));
    assert_eq!(
        (done.days, done.records),
        (vec!["2026-01-01".to_owned()], 3)
    );
}

#[test]
fn a_rescan_writes_lines_escalation_cannot_change_at_once_and_the_rest_in_order() {
    // Over three chunks: repeat offenders (escalated from their third offence), flagged
    // posts with nobody to count them against (no poster, an address that is not one),
    // clean posts and lines that are not posts, interleaved.
    let n = 2 * crate::jsonl::CHUNK_LINES + 301;
    let input: String = (0..n)
        .map(|i| match i % 7 {
            0 => format!(
                "{{\"id\":{i},\"text\":\"第{i}帖 傻逼\",\"poster\":{{\"user_id\":\"u{}\"}}}}\n",
                i % 5
            ),
            1 => format!("{{\"id\":{i},\"text\":\"第{i}帖 傻逼\"}}\n"),
            2 => format!(
                "{{\"id\":{i},\"text\":\"傻逼{i}\",\"poster\":{{\"ip\":\"not an address\"}}}}\n"
            ),
            3 => format!(
                "{{\"id\":{i},\"text\":\"傻逼\",\"poster\":{{\"ip\":\"198.51.100.{}\"}}}}\n",
                i % 3
            ),
            4 => {
                format!("{{\"id\":{i},\"text\":\"你好 {i}\",\"poster\":{{\"user_id\":\"u1\"}}}}\n")
            }
            5 => "{\"text\": unterminated\n".to_owned(),
            _ => format!("{{\"id\":{i},\"text\":\"今天天气不错\"}}\n"),
        })
        .collect();
    let run = |threads: usize, timed: bool| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let mut seen = Vec::new();
        let summary = moderator()
            .rescan(
                std::io::Cursor::new(input.clone().into_bytes()),
                ChannelWriter(tx),
                &pool,
                timed,
                |_, lines| {
                    seen.extend(lines.iter().map(|l| match l {
                        Scanned::Decided(pd) => pd.1.id.clone(),
                        Scanned::Failed(_) => None,
                    }))
                },
            )
            .unwrap();
        let written: Vec<u8> = rx.try_iter().flatten().collect();
        (String::from_utf8(written).unwrap(), summary, seen)
    };
    // Timed, every line waits for the in-order steps (the hit statistics see them all):
    // the reference.
    let (reference, summary, seen) = run(1, true);
    assert_eq!(reference.lines().count(), n);
    assert_eq!(seen.len(), n);
    assert!(summary.escalated > 0, "{summary:?}");
    assert!(reference.contains("\"warn\"") && reference.contains("\"suspend\""));
    for threads in [1, 2, 3] {
        let (out, s, seen) = run(threads, false);
        assert_eq!(out, reference, "threads {threads}");
        assert_eq!(s, summary, "threads {threads}");
        // Only the offenders' flagged posts (i % 7 == 0 and 3) waited.
        let waited: Vec<_> = (0..n)
            .filter(|i| i % 7 == 0 || i % 7 == 3)
            .map(|i| Some(crate::post::PostId::Int(i as i64)))
            .collect();
        assert_eq!(seen, waited, "threads {threads}");
    }
}

#[test]
fn only_the_posts_the_ledger_concerns_change_it() {
    let e = engine(RULES);
    let engine = e.load();
    let escalation = engine.rules().policy().escalation.clone();
    let mut ledger = ledger::OffenceLedger::new(escalation.clone());
    let now: jiff::Timestamp = "2026-06-01T12:00:00Z".parse().unwrap();
    // Flagged, but nobody to count it against; and clean.
    for json in [
        r#"{"text":"傻逼"}"#,
        r#"{"text":"傻逼","poster":{"ip":"not an address","name":"阿强"}}"#,
        r#"{"text":"你好","poster":{"user_id":"u1"}}"#,
    ] {
        let p = Post::from_json(json).unwrap();
        let mut d = engine.scan(&p);
        assert!(
            !ledger::OffenceLedger::concerns(&escalation, &p, &d),
            "{json}"
        );
        let before = format!("{d:?}");
        ledger.apply(&p, &mut d, now);
        assert_eq!(format!("{d:?}"), before, "{json}");
    }
    assert!(ledger.is_empty());
    // An account, or an address that is one: counted, and the account's third escalates.
    let mut last = None;
    for p in [
        post("u1", "not an address", "2026-06-01T10:00:00Z", "傻逼"),
        post("u1", "203.0.113.9", "2026-06-01T10:01:00Z", "傻逼"),
        post("u1", "203.0.113.9", "2026-06-01T10:02:00Z", "傻逼"),
    ] {
        let mut d = engine.scan(&p);
        assert!(ledger::OffenceLedger::concerns(&escalation, &p, &d));
        ledger.apply(&p, &mut d, now);
        last = Some(d);
    }
    assert_eq!(ledger.len(), 2);
    assert_eq!(last.unwrap().measures, vec![Measure::Warn]);
}
