//! The Rust API under concurrent reloads: four threads moderate posts while the rules are
//! swapped 1,000 times. No decision mixes two rule sets, nothing panics, and memory comes
//! back to within 10% of where it started.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use shenhe::{Engine, EngineHandle, Pipeline, Post, RuleSet};

fn engine(id: &str, term: &str) -> Arc<Engine> {
    let toml = format!(
        "[[rule]]\nid = \"{id}\"\ncategory = 7\nseverity = \"high\"\nterms = [\"{term}\"]\n"
    );
    Arc::new(Engine::new(&RuleSet::from_toml_str(&toml).unwrap()).unwrap())
}

/// Resident memory of this process, in bytes (Linux).
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn reload_under_load(reloads: usize) -> usize {
    let a = engine("a", "甲甲");
    let b = engine("b", "乙乙");
    let (hash_a, hash_b) = (a.rules().hash().to_owned(), b.rules().hash().to_owned());
    let m = Arc::new(
        Pipeline::builder(EngineHandle::from_arc(a.clone()))
            .build()
            .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let bad = Arc::new(AtomicUsize::new(0));
    let scans = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (m, stop, bad, scans) = (m.clone(), stop.clone(), bad.clone(), scans.clone());
            let (ha, hb) = (hash_a.clone(), hash_b.clone());
            std::thread::spawn(move || {
                let post = Post::from_text("甲甲乙乙");
                while !stop.load(Ordering::Relaxed) {
                    let d = m.moderate(&post).unwrap();
                    let rules: Vec<&str> = d.hits.iter().map(|h| &*h.rule).collect();
                    let ok = (d.ruleset.hash == ha && rules == ["a"])
                        || (d.ruleset.hash == hb && rules == ["b"]);
                    if !ok {
                        bad.fetch_add(1, Ordering::Relaxed);
                    }
                    scans.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    while scans.load(Ordering::Relaxed) == 0 {
        std::thread::yield_now();
    }
    for i in 0..reloads {
        // Let the scanners see every rule set: wait for a scan between reloads.
        let seen = scans.load(Ordering::Relaxed);
        while scans.load(Ordering::Relaxed) == seen {
            std::thread::yield_now();
        }
        // A freshly built engine each time, as a reload from disk would be.
        m.engine().reload_arc(if i % 2 == 0 {
            engine("b", "乙乙")
        } else {
            engine("a", "甲甲")
        });
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("no scanning thread panicked");
    }
    assert_eq!(bad.load(Ordering::Relaxed), 0, "a decision mixed rule sets");
    assert!(scans.load(Ordering::Relaxed) > 0);
    scans.load(Ordering::Relaxed)
}

#[test]
fn four_threads_scan_while_the_rules_reload_a_thousand_times() {
    // Warm up: shared tables, thread pools and allocator arenas exist before measuring.
    reload_under_load(50);
    let before = rss();
    let scans = reload_under_load(1000);
    let after = rss();
    eprintln!("rss before {before} after {after} bytes, {scans} scans during 1,000 reloads");
    assert!(
        (after as f64) <= before as f64 * 1.10,
        "memory grew from {before} to {after} bytes over 1,000 reloads ({scans} scans)"
    );
}
