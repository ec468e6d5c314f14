//! Builds an engine from N generated terms (default 200,000), for profiling the build:
//! `cargo run --release --example profile_build -- 1000000`.

use std::time::Instant;

use shenhe::{Engine, RuleSet};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let mut x = 0x9E3779B97F4A7C15u64;
    let mut seen = std::collections::HashSet::new();
    let mut terms = Vec::with_capacity(n);
    while terms.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = 2 + (x % 5) as usize;
        let t: String = (0..len)
            .map(|k| char::from_u32(0x4E00 + ((x >> (k * 9)) % 0x5000) as u32).unwrap())
            .collect();
        if seen.insert(t.clone()) {
            terms.push(t);
        }
    }
    let toml = format!(
        "[[rule]]\nid = \"huge\"\ncategory = 9\nseverity = \"low\"\nboundary = \"none\"\nterms = {}\n",
        serde_json::to_string(&terms).unwrap()
    );
    let t = Instant::now();
    let rules = RuleSet::from_toml_str(&toml).unwrap();
    println!("loaded {n} terms in {:.2} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let engine = Engine::new(&rules).unwrap();
    println!("built the engine in {:.2} s", t.elapsed().as_secs_f64());
    std::hint::black_box(engine);
}
