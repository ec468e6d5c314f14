//! `shenhe scan`: JSON Lines posts in, JSON Lines decisions out.
//!
//! A reader thread cuts the input into chunks of whole lines, the rayon pool decides each
//! chunk's lines in parallel, and a writer thread writes the decisions in input order.
//! Channels between them are bounded, so memory stays flat however large the input.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use shenhe::{Action, Decision, Engine, OffenceLedger, Post, Report, ReportWriter};

use crate::RulesArg;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    rules: RulesArg,
    /// Input JSON Lines file, `-` for standard input.
    #[arg(short = 'i', long = "input", value_name = "FILE", default_value = "-")]
    input: String,
    /// Output file for the decisions, `-` for standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE", default_value = "-")]
    output: String,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Most hits listed per post (the decision still counts them all).
    #[arg(long, value_name = "N", default_value_t = shenhe::DEFAULT_MAX_HITS)]
    max_hits: usize,
    /// Write a report for each post that must be reported: one JSON file each, an index
    /// (index.csv, UTF-8 with BOM) and a page for the officer on duty (index.html).
    #[arg(long, value_name = "DIR")]
    reports: Option<PathBuf>,
    /// Hours after detection by which a report is due.
    #[arg(long, value_name = "HOURS", default_value_t = shenhe::report::DEFAULT_DEADLINE_HOURS)]
    report_deadline_hours: u32,
    /// No progress bar and no summary.
    #[arg(short, long)]
    quiet: bool,
}

/// Lines per chunk, and bytes per chunk: whichever is reached first ends the chunk.
const CHUNK_LINES: usize = 8192;
const CHUNK_BYTES: usize = 4 << 20;

struct Chunk {
    first_line: u64,
    data: Vec<u8>,
    /// End offset of each line in `data` (newline excluded).
    ends: Vec<usize>,
}

#[derive(Default)]
struct Stats {
    posts: u64,
    errors: u64,
    flagged: u64,
    reported: u64,
    escalated: u64,
    text_bytes: u64,
    by_action: BTreeMap<Action, u64>,
    by_category: BTreeMap<u16, u64>,
}

/// One input line after the parallel stage.
enum LineOutcome {
    /// Not a post: its error line, ready to write.
    Failed(Vec<u8>),
    /// A post and its decision (escalation not applied yet).
    Decided(Box<(Post, Decision)>),
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let engine = args.rules.engine()?;
    let engine = if args.max_hits != shenhe::DEFAULT_MAX_HITS {
        Engine::with_max_hits(engine.rules(), args.max_hits)?
    } else {
        engine
    };
    let pool = {
        let mut b = rayon::ThreadPoolBuilder::new();
        if let Some(n) = args.threads {
            if n == 0 {
                bail!("--threads must be at least 1");
            }
            b = b.num_threads(n);
        }
        b.build().context("starting the worker threads")?
    };

    let (input, input_len): (Box<dyn Read + Send>, Option<u64>) = if args.input == "-" {
        (Box::new(io::stdin()), None)
    } else {
        let f = File::open(&args.input).with_context(|| format!("cannot read {}", args.input))?;
        let len = f.metadata().ok().map(|m| m.len());
        (Box::new(f), len)
    };
    let mut reader = BufReader::with_capacity(1 << 20, input);
    check_encoding(&mut reader, &args.input)?;

    let output: Box<dyn Write + Send> = if args.output == "-" {
        Box::new(io::stdout())
    } else {
        let path = PathBuf::from(&args.output);
        Box::new(File::create(&path).with_context(|| format!("cannot write {}", path.display()))?)
    };

    let progress = (!args.quiet && io::stderr().is_terminal()).then(|| {
        let bar = match input_len {
            Some(len) => ProgressBar::new(len).with_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {msg}",
                )
                .expect("valid template"),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bytes} ({bytes_per_sec}) {msg}")
                    .expect("valid template"),
            ),
        };
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        bar
    });

    let mut reports = match &args.reports {
        Some(dir) => Some(
            ReportWriter::create(dir)
                .with_context(|| format!("cannot write reports to {}", dir.display()))?,
        ),
        None => None,
    };
    let mut ledger = OffenceLedger::new(engine.rules().policy().escalation.clone());
    let started = Instant::now();
    let (chunk_tx, chunk_rx) = sync_channel::<io::Result<Chunk>>(2);
    let (out_tx, out_rx) = sync_channel::<Vec<u8>>(2);

    let reader_thread = std::thread::spawn(move || read_chunks(reader, chunk_tx));
    let writer_thread = std::thread::spawn(move || -> io::Result<()> {
        let mut w = BufWriter::with_capacity(1 << 20, output);
        for buf in out_rx {
            w.write_all(&buf)?;
        }
        w.flush()
    });

    let mut stats = Stats::default();
    let mut read_error = None;
    let mut write_failed = false;
    for chunk in chunk_rx {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                read_error = Some(e);
                break;
            }
        };
        let mut outcomes: Vec<LineOutcome> = pool.install(|| {
            (0..chunk.ends.len())
                .into_par_iter()
                .map(|i| {
                    let start = if i == 0 { 0 } else { chunk.ends[i - 1] + 1 };
                    let line = &chunk.data[start..chunk.ends[i]];
                    decide_line(&engine, line, chunk.first_line + i as u64)
                })
                .collect()
        });
        // Escalation and reports in input order.
        let now = jiff::Timestamp::now();
        for outcome in &mut outcomes {
            let LineOutcome::Decided(pd) = outcome else {
                stats.errors += 1;
                stats.posts += 1;
                continue;
            };
            let (post, decision) = &mut **pd;
            ledger.apply(post, decision, now);
            if let (Some(w), true) = (reports.as_mut(), decision.report) {
                let report = Report::new(
                    post,
                    decision,
                    engine.rules(),
                    now,
                    args.report_deadline_hours,
                );
                w.write(&report).context("writing a report")?;
            }
            stats.add(post, decision);
        }
        let buf: Vec<u8> = pool.install(|| {
            outcomes
                .par_iter()
                .map(|o| match o {
                    LineOutcome::Failed(bytes) => bytes.clone(),
                    LineOutcome::Decided(pd) => {
                        let mut v = serde_json::to_vec(&pd.1).expect("decisions serialise");
                        v.push(b'\n');
                        v
                    }
                })
                .collect::<Vec<Vec<u8>>>()
                .concat()
        });
        if let Some(bar) = &progress {
            bar.inc(chunk.data.len() as u64);
            bar.set_message(format!("{} posts, {} flagged", stats.posts, stats.flagged));
        }
        if out_tx.send(buf).is_err() {
            write_failed = true;
            break;
        }
    }
    drop(out_tx);
    let write_result = writer_thread.join().expect("writer thread");
    // The reader may be blocked on a full channel if we stopped early: it ends when its
    // channel's receiver is dropped, which happened when the loop ended.
    let _ = reader_thread.join();
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    if let Err(e) = write_result {
        if e.kind() == io::ErrorKind::BrokenPipe {
            return Ok(ExitCode::SUCCESS);
        }
        return Err(e).context(format!("writing {}", args.output));
    }
    if write_failed {
        bail!("writing {}: the writer stopped", args.output);
    }
    if let Some(e) = read_error {
        return Err(e).context(format!("reading {}", args.input));
    }
    let reported = match reports {
        Some(w) => Some(w.finish().context("writing the report index")?),
        None => None,
    };
    if !args.quiet {
        eprint!(
            "{}",
            stats.summary(&engine, started.elapsed().as_secs_f64())
        );
        if let (Some(n), Some(dir)) = (reported, &args.reports) {
            eprintln!("  reports: {n} written to {}", dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Refuses encodings the scan cannot read line by line (UTF-16, UTF-32).
fn check_encoding<R: BufRead>(reader: &mut R, name: &str) -> anyhow::Result<()> {
    let head = reader
        .fill_buf()
        .with_context(|| format!("cannot read {name}"))?;
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        bail!("{name}: the input is UTF-16 (byte-order mark found); convert it to UTF-8");
    }
    if head.starts_with(&[0, 0, 0xFE, 0xFF]) {
        bail!("{name}: the input is UTF-32; convert it to UTF-8");
    }
    Ok(())
}

fn read_chunks<R: BufRead>(mut reader: R, tx: std::sync::mpsc::SyncSender<io::Result<Chunk>>) {
    let mut next_line = 1u64;
    let mut first = true;
    loop {
        let mut chunk = Chunk {
            first_line: next_line,
            data: Vec::with_capacity(CHUNK_BYTES + (64 << 10)),
            ends: Vec::with_capacity(CHUNK_LINES),
        };
        while chunk.ends.len() < CHUNK_LINES && chunk.data.len() < CHUNK_BYTES {
            let before = chunk.data.len();
            match reader.read_until(b'\n', &mut chunk.data) {
                Ok(0) => break,
                Ok(_) => {
                    if chunk.data.last() == Some(&b'\n') {
                        chunk.data.pop();
                    }
                    if first {
                        first = false;
                        if chunk.data[before..].starts_with(b"\xEF\xBB\xBF") {
                            chunk.data.drain(before..before + 3);
                        }
                    }
                    chunk.ends.push(chunk.data.len());
                    // The newline's place: the next line starts one byte after the end.
                    chunk.data.push(b'\n');
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
        if chunk.ends.is_empty() {
            return;
        }
        next_line += chunk.ends.len() as u64;
        if tx.send(Ok(chunk)).is_err() {
            return;
        }
    }
}

#[derive(serde::Deserialize)]
struct IdOnly {
    id: Option<shenhe::PostId>,
}

/// The line of a post that could not be decided: `{"id":…,"line":N,"error":"…"}`.
#[derive(serde::Serialize)]
struct ErrorLine<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<shenhe::PostId>,
    line: u64,
    error: &'a str,
}

fn error_line(line: u64, id: Option<shenhe::PostId>, error: &str) -> Vec<u8> {
    let mut v = serde_json::to_vec(&ErrorLine { id, line, error }).expect("JSON");
    v.push(b'\n');
    v
}

fn decide_line(engine: &Engine, line: &[u8], line_no: u64) -> LineOutcome {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let fail = |id, msg: String| LineOutcome::Failed(error_line(line_no, id, &msg));
    let text = match std::str::from_utf8(line) {
        Ok(t) => t,
        Err(e) => return fail(None, format!("not valid UTF-8 at byte {}", e.valid_up_to())),
    };
    if text.trim().is_empty() {
        return fail(None, "empty line: expected a JSON post".into());
    }
    let (post, mut decision) = match engine.scan_json(text) {
        Ok(pd) => pd,
        Err(e) => {
            let id = serde_json::from_str::<IdOnly>(text).ok().and_then(|x| x.id);
            return fail(id, format!("not a valid post: {}", e.message()));
        }
    };
    decision.line = Some(line_no);
    LineOutcome::Decided(Box::new((post, decision)))
}

impl Stats {
    fn add(&mut self, post: &Post, d: &Decision) {
        self.posts += 1;
        self.text_bytes += post.text.len() as u64;
        *self.by_action.entry(d.action).or_default() += 1;
        if d.is_flagged() {
            self.flagged += 1;
        }
        if d.report {
            self.reported += 1;
        }
        if !d.measures.is_empty() {
            self.escalated += 1;
        }
        for &c in &d.categories {
            *self.by_category.entry(c).or_default() += 1;
        }
    }

    fn summary(&self, engine: &Engine, secs: f64) -> String {
        use std::fmt::Write;
        let secs = secs.max(1e-9);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "shenhe scan: {} lines, {} decided, {} errors in {:.2} s ({:.0} posts/s, {:.1} MB/s of text)",
            self.posts,
            self.posts - self.errors,
            self.errors,
            secs,
            self.posts as f64 / secs,
            self.text_bytes as f64 / 1e6 / secs
        );
        let pct = |n: u64| 100.0 * n as f64 / (self.posts.max(1)) as f64;
        let _ = writeln!(
            s,
            "  flagged {} ({:.1}%), to report {}, escalated {}",
            self.flagged,
            pct(self.flagged),
            self.reported,
            self.escalated
        );
        let actions: Vec<String> = Action::ALL
            .iter()
            .map(|a| {
                format!(
                    "{} {}",
                    a.as_str(),
                    self.by_action.get(a).copied().unwrap_or(0)
                )
            })
            .collect();
        let _ = writeln!(s, "  by action: {}", actions.join(", "));
        if !self.by_category.is_empty() {
            let _ = writeln!(s, "  by category:");
            for (c, n) in &self.by_category {
                let (label, title) = engine
                    .rules()
                    .category(*c)
                    .map(|c| (c.label(), c.title.clone()))
                    .unwrap_or_else(|| (format!("#{c}"), String::new()));
                let _ = writeln!(s, "    {label:<6} {n:>8}  {title}");
            }
        }
        let _ = writeln!(
            s,
            "  rules: {} {} ({})",
            engine.rules().info().name,
            engine.rules().info().version,
            &engine.rules().hash()[..12]
        );
        s
    }
}
