//! `shenhe diff`: what changing the rules would do to an archive. Both rule sets decide
//! every post (in parallel, in chunks, like `scan`); changed posts are written as JSON
//! Lines (`-o`), and a summary per change, rule and category, with samples, is printed.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::sync_channel;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use shenhe::diff::DiffSummary;
use shenhe::{Decision, Engine, RuleSet};

use shenhe::jsonl::{read_chunks, Chunk};

use crate::scan::open_input;

#[derive(clap::Args)]
pub struct Args {
    /// The rules now in force (file or directory; repeatable).
    #[arg(long, value_name = "PATH", required = true)]
    old: Vec<PathBuf>,
    /// The rules proposed (file or directory; repeatable).
    #[arg(long, value_name = "PATH", required = true)]
    new: Vec<PathBuf>,
    /// The archive: JSON Lines posts, `-` for standard input.
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    input: String,
    /// Write each changed post as a JSON line here.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Samples shown per kind of change.
    #[arg(long, value_name = "N", default_value_t = 5)]
    samples: usize,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let old = Engine::new(&RuleSet::from_paths(&args.old)?)?;
    let new = Engine::new(&RuleSet::from_paths(&args.new)?)?;
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(n) = args.threads {
        if n == 0 || n > crate::scan::MAX_THREADS {
            anyhow::bail!("--threads {n}: from 1 to {}", crate::scan::MAX_THREADS);
        }
        pool = pool.num_threads(n);
    }
    let pool = pool.build().context("starting the worker threads")?;
    let (reader, len) = open_input(&args.input)?;
    let mut out = match &args.output {
        Some(p) => Some(BufWriter::new(
            File::create(p).with_context(|| format!("cannot write {}", p.display()))?,
        )),
        None => None,
    };
    let bar = (io::stderr().is_terminal()).then(|| {
        let bar = len.map_or_else(ProgressBar::new_spinner, ProgressBar::new);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
            )
            .expect("valid template"),
        );
        bar
    });
    let (tx, rx) = sync_channel(2);
    let reader_thread = std::thread::spawn(move || read_chunks(reader, 0, tx));
    let mut summary = DiffSummary::default();
    let mut unreadable = 0u64;
    for chunk in rx {
        let chunk: Chunk = chunk.with_context(|| format!("reading {}", args.input))?;
        let decided: Vec<Option<(Decision, Decision, String)>> = pool.install(|| {
            (0..chunk.ends.len())
                .into_par_iter()
                .map(|i| {
                    let (post, mut a, _) =
                        shenhe::jsonl::scan_line(&old, chunk.line(i), false).ok()?;
                    let mut b = new.scan(&post);
                    let n = chunk.first_line + i as u64;
                    a.line = Some(n);
                    b.line = Some(n);
                    Some((a, b, post.text))
                })
                .collect()
        });
        for d in decided {
            let Some((a, b, text)) = d else {
                unreadable += 1;
                continue;
            };
            if let Some(change) = summary.add(&a, &b, &text, args.samples) {
                if let Some(w) = out.as_mut() {
                    serde_json::to_writer(&mut *w, &change)?;
                    writeln!(w)?;
                }
            }
        }
        if let Some(bar) = &bar {
            bar.inc(chunk.data.len() as u64);
        }
    }
    let _ = reader_thread.join();
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    if let Some(mut w) = out {
        w.flush()?;
    }
    print!("{}", summary.render());
    if unreadable > 0 {
        println!("{unreadable} lines were not posts and are not compared");
    }
    Ok(ExitCode::SUCCESS)
}
