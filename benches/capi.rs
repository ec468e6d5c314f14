//! The price of the C boundary: the same sample posts decided through the C API (the
//! `extern "C"` functions a C host calls, called here directly) and through the Rust API,
//! and the batch call against one C call per text, in the same run.
//!
//! Run: `cargo bench --bench capi` (add `-- --quick` for a fast look). Criterion reports
//! each case's time for all the sample posts; the ratios are what to quote.

use std::ffi::c_char;
use std::hint::black_box;

use criterion::{criterion_group, Criterion, Throughput};
use shenhe::ffi::*;
use shenhe::{Engine, Post};

fn texts() -> Vec<(String, String)> {
    include_str!("../examples/posts.jsonl")
        .lines()
        .map(|l| (l.to_owned(), Post::from_json(l).expect("sample post").text))
        .collect()
}

fn capi(c: &mut Criterion) {
    let posts = texts();
    let bytes: usize = posts.iter().map(|(_, t)| t.len()).sum();
    let engine = Engine::bundled();
    let mut handle: *mut shenhe_engine = std::ptr::null_mut();
    // SAFETY: `handle` is valid for a write.
    assert_eq!(
        unsafe { shenhe_engine_new_bundled(&mut handle) },
        shenhe_status::SHENHE_OK
    );

    let mut g = c.benchmark_group("per-post-json");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("Rust Engine::scan_json + serde_json (baseline)", |b| {
        b.iter(|| {
            let mut n = 0;
            for (json, _) in &posts {
                let (_, d) = engine.scan_json(json).unwrap();
                n += serde_json::to_string(&d).unwrap().len();
            }
            black_box(n)
        })
    });
    g.bench_function("C shenhe_scan_json + shenhe_string_free", |b| {
        b.iter(|| {
            let mut n = 0;
            for (json, _) in &posts {
                let mut out: *mut c_char = std::ptr::null_mut();
                // SAFETY: live engine, valid JSON bytes, `out` valid for a write.
                let s = unsafe { shenhe_scan_json(handle, json.as_ptr(), json.len(), &mut out) };
                assert_eq!(s, shenhe_status::SHENHE_OK);
                n += out as usize & 1;
                // SAFETY: a string from shenhe, freed once.
                unsafe { shenhe_string_free(out) };
            }
            black_box(n)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("per-post-text");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("Rust Engine::scan_text (baseline)", |b| {
        b.iter(|| {
            let mut n = 0;
            for (_, text) in &posts {
                n += engine.scan_text(text).hits.len();
            }
            black_box(n)
        })
    });
    g.bench_function("C shenhe_scan_text, one call per text", |b| {
        b.iter(|| {
            let mut n = 0;
            for (_, text) in &posts {
                n += scan_text(handle, text);
            }
            black_box(n)
        })
    });
    let mut data = Vec::new();
    let mut offsets = vec![0usize];
    for (_, text) in &posts {
        data.extend_from_slice(text.as_bytes());
        offsets.push(data.len());
    }
    let count = posts.len();
    let mut actions = vec![shenhe_action::SHENHE_ACTION_ALLOW; count];
    let mut reports = vec![false; count];
    let mut statuses = vec![shenhe_status::SHENHE_OK; count];
    // The engine is thread-safe; its address crosses into the pool's thread as a number.
    let address = handle as usize;
    let mut batch = || {
        // SAFETY: the arrays hold `count` (+1 for offsets) elements.
        let s = unsafe {
            shenhe_scan_batch(
                address as *const shenhe_engine,
                data.as_ptr(),
                offsets.as_ptr(),
                count,
                actions.as_mut_ptr(),
                reports.as_mut_ptr(),
                statuses.as_mut_ptr(),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(s, shenhe_status::SHENHE_OK);
    };
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    g.bench_function("C shenhe_scan_batch, one call, 1 thread", |b| {
        // The whole timing loop runs on the pool's thread: no thread hop per call.
        one_thread.install(|| b.iter(&mut batch))
    });
    g.bench_function("C shenhe_scan_batch, one call, all cores", |b| {
        b.iter(&mut batch)
    });
    g.finish();
    // SAFETY: created above, freed once.
    unsafe { shenhe_engine_free(handle) };
}

fn scan_text(handle: *mut shenhe_engine, text: &str) -> usize {
    let (mut action, mut report, mut hits) = (shenhe_action::SHENHE_ACTION_ALLOW, false, 0);
    // SAFETY: live engine; the out-pointers are valid; no hits handle asked for.
    let s = unsafe {
        shenhe_scan_text(
            handle,
            text.as_ptr(),
            text.len(),
            &mut action,
            &mut report,
            &mut hits,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(s, shenhe_status::SHENHE_OK);
    hits
}

criterion_group!(benches, capi);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
