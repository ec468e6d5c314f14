//! What the pipeline adds to a scan: the sample posts through `Engine::scan` (the
//! baseline) and through `Pipeline::moderate` without a store (escalation), with an audit
//! store on a memory file system when one is there (preparing, chaining, committing each
//! post: SQLite's work without the disk's), and as one `moderate_batch` call, in the same
//! run. Group commit against the disk is measured whole by `examples/group_commit.rs`.
//!
//! Run: `cargo bench --bench pipeline` (add `-- --quick` for a fast look); quote ratios.

use std::hint::black_box;

use criterion::{criterion_group, Criterion, Throughput};
use shenhe::audit::AuditStore;
use shenhe::{Engine, EngineHandle, Pipeline, Post};

fn pipeline(c: &mut Criterion) {
    let posts: Vec<Post> = include_str!("../examples/posts.jsonl")
        .lines()
        .map(|l| Post::from_json(l).expect("sample post"))
        .collect();
    let bytes: usize = posts.iter().map(|p| p.text.len()).sum();
    let handle = EngineHandle::new(Engine::bundled());
    let engine = handle.load();
    let plain = Pipeline::builder(handle.clone()).build().expect("pipeline");
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let db = dir.join(format!("shenhe-bench-{}.db", std::process::id()));
    let audited = Pipeline::builder(handle.clone())
        .audit(AuditStore::open(&db, None).expect("store"))
        .build()
        .expect("pipeline");

    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("Engine::scan (baseline)", |b| {
        b.iter(|| {
            posts
                .iter()
                .map(|p| engine.scan(p).hits.len())
                .sum::<usize>()
        })
    });
    g.bench_function("Pipeline::moderate, escalation", |b| {
        b.iter(|| {
            let n: usize = posts
                .iter()
                .map(|p| plain.moderate(p).unwrap().hits.len())
                .sum();
            black_box(n)
        })
    });
    g.bench_function("Pipeline::moderate_batch, escalation", |b| {
        b.iter(|| black_box(plain.moderate_batch(&posts).len()))
    });
    g.bench_function("Pipeline::moderate, audit store in memory", |b| {
        b.iter(|| {
            let n: usize = posts
                .iter()
                .map(|p| audited.moderate(p).unwrap().hits.len())
                .sum();
            black_box(n)
        })
    });
    g.finish();
    drop(audited);
    for suffix in ["", "-wal", "-shm"] {
        std::fs::remove_file(format!("{}{suffix}", db.display())).ok();
    }
}

criterion_group!(benches, pipeline);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
