//! The scan hot path: `Engine::scan` over realistic posts with a 10,000-term rule set,
//! beside a bare `aho-corasick` overlapping scan of the same posts and terms in the same
//! run, so the engine's overhead reads as a ratio. Also prints the p50/p99 latency of one
//! 300-character post through `Engine::scan` (what a forum's submit path pays), and the
//! time to build an engine over the same terms beside daachorse's bare build.
//!
//! Run: `cargo bench --bench scan` (add `-- --quick` for a fast look). With
//! `SHENHE_BENCH_DATA=../shared/peers/work/data` (after the peer harness has generated its
//! workload) the posts and the 10k lexicon are the harness's real ones.

use std::hint::black_box;
use std::time::Instant;

use aho_corasick::AhoCorasick;
use criterion::{criterion_group, Criterion, Throughput};
use shenhe::{Engine, Post, RuleSet, Step};

/// Deterministic xorshift, so every run builds the same lexicon.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The posts to scan: the peer harness's real corpus when `SHENHE_BENCH_DATA` names its
/// data directory (`../shared/peers/work/data`; the first 20 MB of posts), else the
/// sample posts and longer posts made by joining several of them.
fn posts() -> Vec<String> {
    if let Some(dir) = std::env::var_os("SHENHE_BENCH_DATA") {
        let corpus = std::path::Path::new(&dir).join("corpus.jsonl");
        let text = std::fs::read_to_string(&corpus).expect("SHENHE_BENCH_DATA/corpus.jsonl");
        let mut out = Vec::new();
        let mut bytes = 0;
        for line in text.lines() {
            let p = Post::from_json(line).expect("corpus post");
            bytes += p.text.len();
            out.push(p.text);
            if bytes > 20_000_000 {
                break;
            }
        }
        return out;
    }
    let sample = include_str!("../examples/posts.jsonl");
    let texts: Vec<String> = sample
        .lines()
        .map(|l| Post::from_json(l).expect("sample post").text)
        .collect();
    let mut rng = Rng(0x5eed);
    let mut out = texts.clone();
    for _ in 0..texts.len() {
        let n = 2 + rng.below(6);
        out.push(
            (0..n)
                .map(|_| texts[rng.below(texts.len())].as_str())
                .collect(),
        );
    }
    out
}

/// 10,000 distinct terms: the bundled lexicons, then 2–4 character words drawn from the
/// Han characters of the sample (so terms occur in the posts at a realistic rate).
fn lexicon(posts: &[String], size: usize) -> Vec<String> {
    if let Some(dir) = std::env::var_os("SHENHE_BENCH_DATA") {
        let path = std::path::Path::new(&dir).join(format!("lexicon_{}k.txt", size / 1000));
        let text = std::fs::read_to_string(path).expect("the peer lexicon");
        return text
            .lines()
            .map(str::to_owned)
            .filter(|t| !t.trim().is_empty())
            .collect();
    }
    let mut terms: Vec<String> = RuleSet::bundled()
        .rules()
        .iter()
        .flat_map(|r| r.terms.iter().cloned())
        .collect();
    let mut han: Vec<char> = posts
        .iter()
        .flat_map(|p| p.chars())
        .filter(|c| ('\u{4e00}'..='\u{9fff}').contains(c))
        .collect();
    han.sort_unstable();
    han.dedup();
    let mut seen: std::collections::HashSet<String> = terms.iter().cloned().collect();
    let mut rng = Rng(0x1e8c);
    while terms.len() < size {
        let len = 2 + rng.below(3);
        let t: String = (0..len).map(|_| han[rng.below(han.len())]).collect();
        if seen.insert(t.clone()) {
            terms.push(t);
        }
    }
    terms.truncate(size);
    terms
}

/// One rule holding every term, with the default normalisation steps, or none (`exact`).
fn rule_file(terms: &[String], exact: bool) -> String {
    let json = serde_json::to_string(terms).expect("JSON");
    let normalize = if exact { "normalize = []\n" } else { "" };
    format!("[[rule]]\nid = \"bench\"\ncategory = 7\nseverity = \"medium\"\n{normalize}terms = {json}\n")
}

/// The hits `engine` finds in all `posts`.
fn hits(engine: &Engine, posts: &[Post]) -> usize {
    posts.iter().map(|p| engine.scan(p).hits.len()).sum()
}

/// An engine over one rule holding `terms`.
fn engine_with(terms: &[String], exact: bool) -> Engine {
    Engine::new(&RuleSet::from_toml_str(&rule_file(terms, exact)).unwrap()).unwrap()
}

fn scan(c: &mut Criterion) {
    let posts = posts();
    let bytes: usize = posts.iter().map(String::len).sum();
    let terms = lexicon(&posts, 10_000);
    let engine = engine_with(&terms, false);
    let exact = engine_with(&terms, true);
    let bare = AhoCorasick::new(&terms).unwrap();
    let posts_as_posts: Vec<Post> = posts.iter().map(|t| Post::from_text(t.as_str())).collect();

    let mut g = c.benchmark_group("scan-10k-terms");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("aho-corasick bare (baseline)", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for p in &posts {
                n += bare.find_overlapping_iter(p.as_str()).count();
            }
            black_box(n)
        })
    });
    g.bench_function("shenhe Engine::scan, default steps", |b| {
        b.iter(|| black_box(hits(&engine, &posts_as_posts)))
    });
    g.bench_function("shenhe Engine::scan, exact (normalize = [])", |b| {
        b.iter(|| black_box(hits(&exact, &posts_as_posts)))
    });
    g.finish();

    let bundled = Engine::bundled();
    let mut g = c.benchmark_group("scan-bundled-rules");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("shenhe Engine::scan", |b| {
        b.iter(|| black_box(hits(&bundled, &posts_as_posts)))
    });
    // The same rules without the file whose rules use `detect` (issue 22): what the
    // detectors cost on these posts, measured in the same run.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(".toml") && !name.ends_with(".test.toml") && !name.starts_with("10-")
        })
        .collect();
    files.sort();
    let without_detect = Engine::new(&RuleSet::from_paths(&files).unwrap()).unwrap();
    assert!(without_detect
        .rules()
        .rules()
        .iter()
        .all(|r| r.detect.is_empty()));
    g.bench_function("shenhe Engine::scan, without the detect rules", |b| {
        b.iter(|| black_box(hits(&without_detect, &posts_as_posts)))
    });
    // The same rules with every step on every rule, the opt-in ones included (issue 15:
    // at most 1.5× the time of the rules as shipped).
    let every_step = Engine::new(&every_step_rules(&dir)).unwrap();
    g.bench_function("shenhe Engine::scan, every step on every rule", |b| {
        b.iter(|| black_box(hits(&every_step, &posts_as_posts)))
    });
    g.finish();
}

/// The rule files of `dir` with `normalize` set to every step (the opt-in `repeat`,
/// `homophone`, `near_homophone`, `near_form` and `split` included) on every rule, loaded
/// from a copy in the temporary directory (the lexicons they name are copied too).
fn every_step_rules(dir: &std::path::Path) -> RuleSet {
    let names: Vec<&str> = Step::ALL.iter().map(|s| s.as_str()).collect();
    let normalize = format!("normalize = {}\n", serde_json::to_string(&names).unwrap());
    let copy = std::env::temp_dir().join(format!("shenhe-bench-every-step-{}", std::process::id()));
    std::fs::create_dir_all(copy.join("lexicons")).unwrap();
    for entry in std::fs::read_dir(dir.join("lexicons")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, copy.join("lexicons").join(path.file_name().unwrap())).unwrap();
    }
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".toml") || name.ends_with(".test.toml") {
            continue;
        }
        let text: String = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("normalize = "))
            .map(|l| match l {
                "[[rule]]" => format!("{l}\n{normalize}"),
                _ => format!("{l}\n"),
            })
            .collect();
        std::fs::write(copy.join(&name), text).unwrap();
    }
    let rules = RuleSet::from_paths(&[&copy]).unwrap();
    std::fs::remove_dir_all(&copy).unwrap();
    rules
}

/// p50/p99 of single `Engine::scan` calls on 300-character posts, with the baseline's
/// figures measured alongside.
fn latency_report() {
    let posts = posts();
    let terms = lexicon(&posts, 10_000);
    let engine = engine_with(&terms, false);
    let bare = AhoCorasick::new(&terms).unwrap();
    let joined: String = posts.concat();
    let chars: Vec<char> = joined.chars().collect();
    let mut rng = Rng(0x300);
    let samples: Vec<Post> = (0..2000)
        .map(|_| {
            let at = rng.below(chars.len() - 300);
            Post::from_text(chars[at..at + 300].iter().collect::<String>())
        })
        .collect();
    let mut engine_ns = Vec::with_capacity(20_000);
    let mut bare_ns = Vec::with_capacity(20_000);
    for round in 0..10 {
        for p in &samples {
            let t = Instant::now();
            black_box(engine.scan(black_box(p)));
            let e = t.elapsed().as_nanos() as u64;
            let t = Instant::now();
            black_box(
                bare.find_overlapping_iter(black_box(p.text.as_str()))
                    .count(),
            );
            let b = t.elapsed().as_nanos() as u64;
            if round > 0 {
                engine_ns.push(e);
                bare_ns.push(b);
            }
        }
    }
    let pct = |v: &mut Vec<u64>, p: f64| {
        v.sort_unstable();
        v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
    };
    let (e50, e99) = (pct(&mut engine_ns, 0.50), pct(&mut engine_ns, 0.99));
    let (b50, b99) = (pct(&mut bare_ns, 0.50), pct(&mut bare_ns, 0.99));
    println!(
        "latency, one 300-char post, 10k terms: Engine::scan p50 {:.1} µs p99 {:.1} µs; \
         bare aho-corasick p50 {:.1} µs p99 {:.1} µs; p99 ratio engine/bare {:.2}",
        e50 as f64 / 1e3,
        e99 as f64 / 1e3,
        b50 as f64 / 1e3,
        b99 as f64 / 1e3,
        e99 as f64 / b99.max(1) as f64
    );
}

/// Building an engine (what `shenhe scan` starts with and what a reload costs): the 10k
/// lexicon with the default steps and exact, beside daachorse's bare charwise build of the
/// same terms. The process-wide tables (fold tables, OpenCC's dictionaries) are built by
/// the first engine and shared, so these are the per-engine costs.
fn build(c: &mut Criterion) {
    let posts = posts();
    let terms = lexicon(&posts, 10_000);
    let default = RuleSet::from_toml_str(&rule_file(&terms, false)).unwrap();
    let exact = RuleSet::from_toml_str(&rule_file(&terms, true)).unwrap();
    let mut g = c.benchmark_group("build-10k-terms");
    g.sample_size(20);
    g.bench_function("daachorse charwise bare (baseline)", |b| {
        b.iter(|| black_box(daachorse::CharwiseDoubleArrayAhoCorasick::<u32>::new(&terms).unwrap()))
    });
    g.bench_function("shenhe Engine::new, default steps", |b| {
        b.iter(|| black_box(Engine::new(&default).unwrap()))
    });
    g.bench_function("shenhe Engine::new, exact (normalize = [])", |b| {
        b.iter(|| black_box(Engine::new(&exact).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, scan, build);

fn main() {
    latency_report();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
