//! Scans a JSONL corpus with one rule holding a lexicon, single-threaded, for profiling:
//! `cargo run --release --example profile_scan -- CORPUS.jsonl LEXICON.txt [exact|all]`
//! (`bundled` for LEXICON.txt: the bundled rule sets; a directory: the rule files in it). `SHENHE_PROFILE_ROUNDS=N` repeats
//! the timed round and prints the best.

use shenhe::{Engine, Post, RuleSet};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let corpus = std::fs::read_to_string(&args[1]).expect("corpus");
    // `bundled` instead of a lexicon scans with the bundled rule sets.
    let bundled = args[2] == "bundled";
    // A directory of rule files instead of a lexicon scans with those rules as they are.
    let rules_dir = std::path::Path::new(&args[2]).is_dir();
    let lexicon = if bundled || rules_dir {
        let rules = RuleSet::bundled();
        let terms: Vec<&str> = rules
            .rules()
            .iter()
            .flat_map(|r| r.terms.iter().map(String::as_str))
            .collect();
        terms.join("\n")
    } else {
        std::fs::read_to_string(&args[2]).expect("lexicon")
    };
    let terms: Vec<&str> = lexicon.lines().filter(|l| !l.trim().is_empty()).collect();
    // `exact`: no steps; `all`: every step, the opt-in ones included; else the default.
    let normalize = match args.get(3).map(String::as_str) {
        Some("exact") => "normalize = []\n".to_owned(),
        Some("all") => {
            let names: Vec<&str> = shenhe::Step::ALL.iter().map(|s| s.as_str()).collect();
            format!("normalize = {}\n", serde_json::to_string(&names).unwrap())
        }
        _ => String::new(),
    };
    let toml = format!(
        "[[rule]]\nid = \"lexicon\"\ncategory = 7\nseverity = \"medium\"\nboundary = \"none\"\n{normalize}terms = {}\n",
        serde_json::to_string(&terms).unwrap()
    );
    let built = std::time::Instant::now();
    let engine = if bundled {
        Engine::bundled()
    } else if rules_dir {
        Engine::new(&RuleSet::from_paths(&[&args[2]]).unwrap()).unwrap()
    } else {
        Engine::new(&RuleSet::from_toml_str(&toml).unwrap()).unwrap()
    };
    println!(
        "engine built in {:.2} s, {:.1} MiB",
        built.elapsed().as_secs_f64(),
        engine.heap_bytes() as f64 / (1 << 20) as f64
    );
    let posts: Vec<Post> = corpus
        .lines()
        .map(|l| Post::from_json(l).unwrap())
        .collect();
    let bytes: usize = posts.iter().map(|p| p.text.len()).sum();
    // `SHENHE_PROFILE_ROUNDS=N` repeats the timed round, so a profiler sees mostly the scan.
    let rounds: usize = std::env::var("SHENHE_PROFILE_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let names = std::iter::once("warm-up").chain(std::iter::repeat_n("timed", rounds));
    let mut best = f64::MAX;
    for round in names {
        let t = std::time::Instant::now();
        let mut hits = 0;
        for p in &posts {
            hits += engine.scan(p).hits.len();
        }
        let s = t.elapsed().as_secs_f64();
        let mb_s = bytes as f64 / 1e6 / s;
        println!("Engine::scan ({round}): {hits} hits, {mb_s:.1} MB/s");
        if round == "timed" {
            best = best.min(s);
        }
    }
    println!("Engine::scan best: {:.1} MB/s", bytes as f64 / 1e6 / best);

    // The pieces, for comparison: the fold alone, and fold + a bare charwise automaton.
    let steps = match args.get(3).map(String::as_str) {
        Some("exact") => vec![],
        Some("all") => shenhe::Step::ALL.to_vec(),
        _ => shenhe::Step::DEFAULT.to_vec(),
    };
    let n = shenhe::normalize::Normalizer::new(&steps);
    let mut f = shenhe::normalize::Folded::default();
    // The fold alone, best of five (it is short, so one run is noisy).
    let mut best = f64::MAX;
    let mut total = 0;
    for _ in 0..5 {
        let t = std::time::Instant::now();
        total = 0;
        for p in &posts {
            n.fold_into(&p.text, &mut f);
            total += f.text().len();
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "fold only: {:.1} MB/s ({total} folded bytes)",
        bytes as f64 / 1e6 / best
    );
    let folded_terms: Vec<String> = terms.iter().map(|t| n.fold(t).text().to_owned()).collect();
    let mut uniq = folded_terms.clone();
    uniq.sort();
    uniq.dedup();
    uniq.retain(|t| !t.is_empty());
    let ac = daachorse::CharwiseDoubleArrayAhoCorasick::<u32>::new(&uniq).unwrap();
    let t = std::time::Instant::now();
    let mut m = 0;
    for p in &posts {
        n.fold_into(&p.text, &mut f);
        m += ac.find_overlapping_iter(f.text()).count();
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "fold + daachorse: {:.1} MB/s ({m} matches)",
        bytes as f64 / 1e6 / s
    );
    let t = std::time::Instant::now();
    let mut m = 0;
    for p in &posts {
        m += ac.find_overlapping_iter(&p.text).count();
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "daachorse alone on the raw text: {:.1} MB/s ({m} matches)",
        bytes as f64 / 1e6 / s
    );
}
