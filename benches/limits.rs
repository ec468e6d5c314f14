//! Scale and hostile-input benches (a report, not criterion samples: the sizes are too
//! large for repeated sampling):
//!
//! 1. Time per byte of `Engine::scan` on the bundled rules over posts of 1 KB to 10 MB,
//!    benign and adversarial (runs of noise, one repeated character, partial terms), so a
//!    single hostile post cannot stall a submit path: the ns/byte column should stay flat.
//! 2. A rule set of 1,000,000 terms: build time and peak memory, and scanning time per byte
//!    with it.
//!
//! Run: `cargo bench --bench limits` (add `-- quick` to skip the 1,000,000-term part).

use std::hint::black_box;
use std::time::Instant;

use shenhe::{Engine, Post, RuleSet};

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Makes a post text of about the given number of bytes.
type MakePost<'a> = Box<dyn Fn(usize) -> String + 'a>;

/// `unit` repeated to `bytes` bytes (whole chars).
fn fill(unit: &str, bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + unit.len());
    while s.len() < bytes {
        s.push_str(unit);
    }
    s
}

/// Median seconds of `reps` scans of `post`.
fn time(engine: &Engine, post: &Post, reps: usize) -> f64 {
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            black_box(engine.scan(black_box(post)));
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn linearity() {
    let engine = Engine::bundled();
    let sample: String = include_str!("../examples/posts.jsonl")
        .lines()
        .map(|l| Post::from_json(l).unwrap().text)
        .collect::<Vec<_>>()
        .join("\n");
    let kinds: [(&str, MakePost<'_>); 4] = [
        ("benign (sample posts)", Box::new(|n| fill(&sample, n))),
        ("noise run (*#@ ~)", Box::new(|n| fill("*#@ ~", n))),
        ("one repeated char (赌)", Box::new(|n| fill("赌", n))),
        (
            "partial terms (网络赌 出售冰)",
            Box::new(|n| fill("网络赌 出售冰 ", n)),
        ),
    ];
    println!("ns per byte of Engine::scan, bundled rules (flat = linear):");
    println!(
        "{:<30} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "post", "1 KB", "10 KB", "100 KB", "1 MB", "10 MB"
    );
    for (name, make) in &kinds {
        let mut row = format!("{name:<30}");
        for &size in &[1_000usize, 10_000, 100_000, 1_000_000, 10_000_000] {
            let post = Post::from_text(make(size));
            let reps = (20_000_000 / size).clamp(3, 200);
            let secs = time(&engine, &post, reps);
            row.push_str(&format!(" {:>10.2}", secs * 1e9 / post.text.len() as f64));
        }
        println!("{row}");
    }
}

fn million_terms() {
    let mut x = 0x9E3779B97F4A7C15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut seen = std::collections::HashSet::new();
    let mut terms = Vec::with_capacity(1_000_000);
    while terms.len() < 1_000_000 {
        let len = 2 + (next() % 5) as usize;
        let t: String = (0..len)
            .map(|_| char::from_u32(0x4E00 + (next() % 0x5000) as u32).unwrap())
            .collect();
        if seen.insert(t.clone()) {
            terms.push(t);
        }
    }
    drop(seen);
    let before = peak_rss_mb();
    let start = Instant::now();
    let toml = format!(
        "[[rule]]\nid = \"huge\"\ncategory = 9\nseverity = \"low\"\nboundary = \"none\"\nterms = {}\n",
        serde_json::to_string(&terms).unwrap()
    );
    drop(terms);
    let rules = RuleSet::from_toml_str(&toml).unwrap();
    drop(toml);
    let loaded = start.elapsed().as_secs_f64();
    let engine = Engine::new(&rules).unwrap();
    let built = start.elapsed().as_secs_f64();
    println!(
        "1,000,000 terms: rule set loaded in {loaded:.1} s, engine built in {built:.1} s in all; peak RSS {:.0} MB (before: {before:.0} MB)",
        peak_rss_mb()
    );
    let sample: String = include_str!("../examples/posts.jsonl")
        .lines()
        .map(|l| Post::from_json(l).unwrap().text)
        .collect();
    for &size in &[10_000usize, 100_000, 1_000_000] {
        let post = Post::from_text(fill(&sample, size));
        let secs = time(&engine, &post, 5);
        println!(
            "  scan with 1,000,000 terms, {:>9} bytes: {:.2} ns/byte",
            post.text.len(),
            secs * 1e9 / post.text.len() as f64
        );
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    linearity();
    if !quick {
        million_terms();
    }
}
