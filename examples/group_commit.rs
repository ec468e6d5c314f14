//! Group commit, measured: records per second into a durable audit store (WAL,
//! `synchronous=FULL`) for one thread calling `Pipeline::moderate` (a commit per post) and
//! for N threads sharing one pipeline (callers that arrive during a commit go into the
//! next), in the same run; then every record is verified.
//!
//! ```sh
//! cargo run --release --example group_commit -- [POSTS_PER_THREAD] [THREADS] [ROUNDS]
//! ```
//! Defaults: 300 posts per thread, 8 threads, 3 rounds (best round of each kept).

use std::sync::Arc;
use std::time::Instant;

use shenhe::audit::AuditStore;
use shenhe::{Engine, EngineHandle, Pipeline, Post};

fn post(i: usize) -> Post {
    let text = if i.is_multiple_of(3) {
        "出售冰毒，量大从优"
    } else {
        "楼主说得对，周末一起去爬山"
    };
    Post::from_json(&format!(
        r#"{{"id":"p{i}","text":"{text}","poster":{{"user_id":"u{}","ip":"203.0.113.{}","port":{}}}}}"#,
        i % 50,
        i % 200,
        40000 + i % 20000
    ))
    .expect("a post")
}

/// Records per second with `threads` callers moderating `per_thread` posts each into a
/// fresh store; verifies the store afterwards.
fn measure(engine: &EngineHandle, threads: usize, per_thread: usize) -> (f64, u64) {
    let dir = tempfile_dir();
    let db = dir.join("audit.db");
    let pipeline = Arc::new(
        Pipeline::builder(engine.clone())
            .audit(AuditStore::open(&db, None).expect("store"))
            .build()
            .expect("pipeline"),
    );
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let p = pipeline.clone();
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    p.moderate(&post(t * per_thread + i)).expect("recorded");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    let secs = started.elapsed().as_secs_f64();
    let finished = pipeline.finish().expect("finish");
    let records = (threads * per_thread) as u64;
    assert_eq!(finished.records, records);
    let check = AuditStore::open(&db, None)
        .expect("store")
        .verify(None)
        .expect("verify");
    assert_eq!((check.records, check.problem.as_deref()), (records, None));
    std::fs::remove_dir_all(&dir).ok();
    (records as f64 / secs, finished.commits)
}

fn tempfile_dir() -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("shenhe-group-commit-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("a number"))
        .collect();
    let per_thread = args.first().copied().unwrap_or(300);
    let threads = args.get(1).copied().unwrap_or(8);
    let rounds = args.get(2).copied().unwrap_or(3);
    let engine = EngineHandle::new(Engine::bundled());
    let (mut one, mut many, mut commits) = (0f64, 0f64, 0);
    for round in 1..=rounds {
        let (a, _) = measure(&engine, 1, per_thread * threads / 4);
        let (b, c) = measure(&engine, threads, per_thread);
        println!(
            "round {round}: 1 thread {a:.0} records/s; {threads} threads {b:.0} records/s ({c} commits for {} records): {:.2}x",
            threads * per_thread,
            b / a
        );
        one = one.max(a);
        if b > many {
            many = b;
            commits = c;
        }
    }
    println!(
        "best: 1 thread {one:.0} records/s, {threads} threads {many:.0} records/s ({commits} commits): {:.2}x; every record verified",
        many / one
    );
}
