//! The Rust side of the Python-call overhead (`python/bench/overhead.py` runs it): the
//! posts of a JSON Lines file scanned with `Engine::scan`, bundled rules, one thread, best
//! of `ROUNDS` rounds. Prints nanoseconds per post twice: `Engine::scan` on posts read
//! before timing (a Rust caller holds posts, a Python caller holds dicts), then
//! `jsonl::scan_line` on each JSON line (reading the post as `shenhe scan` does, then the
//! scan: the route a dict from Python takes once it is written out as its line).
//!
//! `cargo run --release --example scan_rust -- POSTS.jsonl [ROUNDS]`

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: scan_rust POSTS.jsonl [ROUNDS]");
        std::process::exit(2);
    };
    let rounds: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(20);
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(2);
    });
    let posts: Vec<shenhe::Post> = text
        .lines()
        .filter_map(|l| shenhe::Post::from_json_lenient(l).ok().map(|(p, _)| p))
        .collect();
    let engine = shenhe::Engine::bundled();
    let mut best = f64::MAX;
    let mut hits = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        for p in &posts {
            hits += std::hint::black_box(engine.scan(p)).hits.len();
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut best_lines = f64::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        for l in &lines {
            if let Ok((_, d, _)) = shenhe::jsonl::scan_line(&engine, l.as_bytes(), false) {
                hits += std::hint::black_box(d).hits.len();
            }
        }
        best_lines = best_lines.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{:.0} {:.0}",
        best * 1e9 / posts.len() as f64,
        best_lines * 1e9 / lines.len() as f64
    );
    std::hint::black_box(hits);
}
