//! `shenhe scan`: JSON Lines posts in, JSON Lines decisions out.
//!
//! A reader thread cuts the input into chunks of whole lines, the rayon pool decides each
//! chunk's lines in parallel, and a writer thread writes the decisions in input order.
//! Channels between them are bounded, so memory stays flat however large the input.
//!
//! Crash safety: the writer writes a chunk's decisions to the output first and then
//! records the chunk in the audit store (one transaction) and the checkpoint, so after a
//! crash the output holds at least every recorded line. `--resume` cuts the output back
//! to the last recorded line and continues the input after it: no decision lost, none
//! written or recorded twice.

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
use shenhe::audit::{AuditKey, AuditStore, PendingRecord};
use shenhe::stats::HitStats;
use shenhe::{Action, Decision, Engine, KindTimes, OffenceLedger, Post, Report, ReportWriter};

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
    /// Largest post, its text fields together, in bytes (at most 16 MiB); a larger post gets
    /// an error line naming the limit.
    #[arg(long, value_name = "BYTES", default_value_t = shenhe::DEFAULT_MAX_POST_BYTES)]
    max_post_bytes: usize,
    /// Write a report for each post that must be reported: one JSON file each, an index
    /// (index.csv, UTF-8 with BOM) and a page for the officer on duty (index.html).
    #[arg(long, value_name = "DIR")]
    reports: Option<PathBuf>,
    /// Hours after detection by which a report is due.
    #[arg(long, value_name = "HOURS", default_value_t = shenhe::report::DEFAULT_DEADLINE_HOURS)]
    report_deadline_hours: u32,
    /// Record every decision in this audit store (SQLite; created when missing; one
    /// store holds many runs). Escalation counts the offences already recorded there.
    #[arg(long, value_name = "DB")]
    audit: Option<PathBuf>,
    /// The key that seals personal fields in the audit store (64 hex digits or 32 bytes);
    /// default: the SHENHE_AUDIT_KEY environment variable.
    #[arg(long, value_name = "FILE", requires = "audit")]
    audit_key_file: Option<PathBuf>,
    /// The UTC offset, in hours, of the calendar days audit records are grouped and kept by
    /// (default +8, China); settable only when the store is created.
    #[arg(
        long,
        value_name = "HOURS",
        requires = "audit",
        allow_hyphen_values = true
    )]
    audit_utc_offset: Option<i8>,
    /// Leave repeat-offence escalation off: each post is decided on its own, as in a Spark
    /// rescan (escalation depends on live order) or a sweep of an old topic.
    #[arg(long)]
    no_escalation: bool,
    /// Continue an interrupted scan of the same input: after the last line recorded in the
    /// audit store (or written to the checkpoint), appending to the output file.
    #[arg(long)]
    resume: bool,
    /// After each chunk, write the last decided input line to FILE (for --resume without
    /// an audit store).
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// Write hit statistics (JSON) here: hits and posts per rule and category, rules that
    /// never fired, suspect rules, scan time per kind of rule.
    #[arg(long, value_name = "FILE")]
    stats: Option<PathBuf>,
    /// With --stats: a rule that hits more than this share of posts is suspect.
    #[arg(long, value_name = "SHARE", default_value_t = shenhe::stats::DEFAULT_SUSPECT_SHARE)]
    suspect_share: f64,
    /// No progress bar and no summary.
    #[arg(short, long)]
    quiet: bool,
}

/// What the writer thread gets per chunk: the output bytes, then the decided posts to
/// record, and the chunk's last input line.
struct Batch {
    bytes: Vec<u8>,
    records: Vec<PendingRecord>,
    last_line: u64,
}

/// The audit store of a scan and the run it records under.
struct Audit {
    store: AuditStore,
    run: i64,
}

/// Lines per chunk, and bytes per chunk: whichever is reached first ends the chunk.
const CHUNK_LINES: usize = 8192;
const CHUNK_BYTES: usize = 4 << 20;

pub(crate) struct Chunk {
    pub(crate) first_line: u64,
    pub(crate) data: Vec<u8>,
    /// End offset of each line in `data` (newline excluded).
    pub(crate) ends: Vec<usize>,
    /// Indices of lines longer than [`MAX_LINE_BYTES`]: not kept (empty in `data`).
    pub(crate) too_long: Vec<usize>,
}

/// Longest input line read (`max_line_bytes`): 64 MiB, room for a post at the 16 MiB cap
/// with every character escaped. A longer line is skipped without being held in memory
/// and gets an error line.
pub(crate) const MAX_LINE_BYTES: usize = 64 << 20;

/// Appends one line (with its newline, if any) to `buf`, keeping at most `cap` bytes of it
/// and consuming the rest. Returns the bytes consumed and whether the line was cut.
fn read_line_capped<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    cap: usize,
) -> io::Result<(usize, bool)> {
    let (mut consumed, mut kept, mut cut) = (0, 0, false);
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok((consumed, cut));
        }
        let (n, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        let room = cap.saturating_sub(kept);
        if n > room {
            cut = true;
        }
        buf.extend_from_slice(&available[..n.min(room)]);
        kept += n.min(room);
        reader.consume(n);
        consumed += n;
        if done {
            return Ok((consumed, cut));
        }
    }
}

impl Chunk {
    /// Line `i` of the chunk (without its newline).
    pub(crate) fn line(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] + 1 };
        &self.data[start..self.ends[i]]
    }
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
    /// A post, its decision (escalation not applied yet) and, with `--stats`, the times.
    Decided(Box<(Post, Decision, KindTimes)>),
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let engine = args.rules.engine()?;
    let limits = shenhe::Limits {
        max_hits: args.max_hits,
        max_post_bytes: args.max_post_bytes,
    };
    let engine = if limits != engine.limits() {
        Engine::with_limits(engine.rules(), limits)?
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

    if args.resume && (args.input == "-" || args.output == "-") {
        bail!("--resume needs an input file (-i) and an output file (-o)");
    }
    if args.resume && args.audit.is_none() && args.checkpoint.is_none() {
        bail!("--resume needs --audit DB or --checkpoint FILE to know where the scan stopped");
    }
    let input_name = if args.input == "-" {
        "-".to_owned()
    } else {
        std::fs::canonicalize(&args.input)
            .with_context(|| format!("cannot read {}", args.input))?
            .display()
            .to_string()
    };
    let mut ledger = OffenceLedger::new(engine.rules().policy().escalation.clone());
    // Post ids whose offences the store already holds: escalation does not count them again.
    let mut counted: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut resume_after = 0u64;
    let audit = match &args.audit {
        None => None,
        Some(db) => {
            let key = match &args.audit_key_file {
                Some(f) => Some(AuditKey::from_file(f)?),
                None => AuditKey::from_env()?,
            };
            let mut store = AuditStore::open(db, key)?;
            if let Some(h) = args.audit_utc_offset {
                if store.utc_offset_hours() != h {
                    store.set_utc_offset_hours(h)?;
                }
            }
            store
                .can_record()
                .with_context(|| db.display().to_string())?;
            let previous = if args.resume {
                store.unfinished_run(&input_name)?
            } else {
                None
            };
            let run = match previous {
                Some((run, line)) => {
                    let used = store.run_ruleset(run)?;
                    if used != engine.rules().hash() {
                        bail!(
                            "the interrupted scan of {} used rule set {used}; these rules are {}: resume with the same rules, or scan again without --resume",
                            args.input,
                            engine.rules().hash()
                        );
                    }
                    resume_after = line;
                    run
                }
                None => {
                    if args.resume && !args.quiet {
                        eprintln!(
                            "shenhe scan: no interrupted scan of {} in {}: scanning from the start",
                            args.input,
                            db.display()
                        );
                    }
                    store.begin_run(Some(&input_name), Some(&args.output), engine.rules().hash())?
                }
            };
            store.offences(|user, ip, time, post| {
                ledger.record_offence(user, ip, time);
                if let Some(p) = post {
                    counted.insert(p.to_owned());
                }
            })?;
            Some(Audit { store, run })
        }
    };
    let preparer = audit.as_ref().map(|a| a.store.preparer());
    if args.resume && args.audit.is_none() {
        if let Some(cp) = &args.checkpoint {
            resume_after = read_checkpoint(cp)?;
        }
    }

    let (reader, input_len) = open_input(&args.input)?;

    let output: Box<dyn Write + Send> = if args.output == "-" {
        Box::new(io::stdout())
    } else if args.resume {
        Box::new(cut_after_lines(&args.output, resume_after)?)
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
            if args.resume {
                ReportWriter::open(dir)
            } else {
                ReportWriter::create(dir)
            }
            .with_context(|| format!("cannot write reports to {}", dir.display()))?,
        ),
        None => None,
    };
    let timed = args.stats.is_some();
    let mut hit_stats = timed.then(|| HitStats::new(engine.rules()));
    let started = Instant::now();
    let (chunk_tx, chunk_rx) = sync_channel::<io::Result<Chunk>>(2);
    let (out_tx, out_rx) = sync_channel::<Batch>(2);

    let reader_thread = std::thread::spawn(move || read_chunks(reader, resume_after, chunk_tx));
    let checkpoint = args.checkpoint.clone();
    let writer_thread = std::thread::spawn(move || -> anyhow::Result<()> {
        write_batches(out_rx, output, audit, checkpoint.as_deref())
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
                    let line_no = chunk.first_line + i as u64;
                    if chunk.too_long.contains(&i) {
                        return LineOutcome::Failed(error_line(
                            line_no,
                            None,
                            &format!("the line is longer than {MAX_LINE_BYTES} bytes (max_line_bytes); skipped"),
                        ));
                    }
                    decide_line(&engine, chunk.line(i), line_no, timed)
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
            let (post, decision, times) = &mut **pd;
            let known = !counted.is_empty()
                && decision
                    .id
                    .as_ref()
                    .is_some_and(|id| counted.contains(&serde_json::to_string(id).expect("JSON")));
            match (args.no_escalation, known) {
                (true, _) => {}
                (false, true) => ledger.apply_counted(post, decision, now),
                (false, false) => ledger.apply(post, decision, now),
            }
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
            if let Some(h) = hit_stats.as_mut() {
                h.add(decision, *times);
            }
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
        // The chunk's audit records, prepared in parallel; the writer chains them in order.
        let records = match &preparer {
            Some(p) => pool.install(|| {
                outcomes
                    .par_iter()
                    .filter_map(|o| match o {
                        LineOutcome::Decided(pd) => Some(p.prepare(pd.1.line, &pd.0, &pd.1)),
                        LineOutcome::Failed(_) => None,
                    })
                    .collect::<shenhe::Result<Vec<PendingRecord>>>()
            })?,
            None => Vec::new(),
        };
        let batch = Batch {
            bytes: buf,
            records,
            last_line: chunk.first_line + chunk.ends.len() as u64 - 1,
        };
        if out_tx.send(batch).is_err() {
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
        if e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
        {
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
    let stats_report = match (&args.stats, &hit_stats) {
        (Some(path), Some(h)) => {
            let report = h.report(args.suspect_share);
            let json = serde_json::to_string_pretty(&report).expect("stats serialise");
            std::fs::write(path, json + "\n")
                .with_context(|| format!("cannot write {}", path.display()))?;
            Some(report)
        }
        _ => None,
    };
    if !args.quiet {
        if resume_after > 0 {
            eprintln!("shenhe scan: resumed after input line {resume_after}");
        }
        eprint!(
            "{}",
            stats.summary(&engine, started.elapsed().as_secs_f64())
        );
        if let Some(db) = &args.audit {
            eprintln!(
                "  audit: {} decisions recorded in {}",
                stats.posts - stats.errors,
                db.display()
            );
        }
        if let (Some(r), Some(path)) = (&stats_report, &args.stats) {
            eprintln!(
                "  stats: {} rules never fired, {} suspect (hit more than {:.1}% of posts){}; written to {}",
                r.never_fired.len(),
                r.suspect.len(),
                r.suspect_share * 100.0,
                if r.suspect.is_empty() {
                    String::new()
                } else {
                    format!(": {}", r.suspect.join(", "))
                },
                path.display()
            );
        }
        if let (Some(n), Some(dir)) = (reported, &args.reports) {
            eprintln!("  reports: {n} written to {}", dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The writer thread: each batch's decisions go to the output and are flushed, then the
/// batch is recorded in the audit store and the checkpoint moves on. In that order, the
/// output always holds every recorded line (see the module's note on crash safety).
fn write_batches(
    rx: std::sync::mpsc::Receiver<Batch>,
    output: Box<dyn Write + Send>,
    mut audit: Option<Audit>,
    checkpoint: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, output);
    for batch in rx {
        w.write_all(&batch.bytes)?;
        if audit.is_some() || checkpoint.is_some() {
            w.flush()?;
        }
        if let Some(a) = audit.as_mut() {
            a.store
                .append_prepared(a.run, batch.records, jiff::Timestamp::now())?;
        }
        if let Some(cp) = checkpoint {
            write_checkpoint(cp, batch.last_line)?;
        }
    }
    w.flush()?;
    if let Some(a) = audit.as_mut() {
        a.store.finish_run(a.run)?;
    }
    Ok(())
}

/// Replaces the checkpoint file atomically with the last decided line.
fn write_checkpoint(path: &std::path::Path, line: u64) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{line}\n"))
        .with_context(|| format!("writing the checkpoint {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("writing the checkpoint {}", path.display()))?;
    Ok(())
}

/// The last decided line in a checkpoint file; 0 when there is none yet.
fn read_checkpoint(path: &std::path::Path) -> anyhow::Result<u64> {
    match std::fs::read_to_string(path) {
        Ok(s) => s.trim().parse().with_context(|| {
            format!(
                "{}: not a checkpoint (expected a line number)",
                path.display()
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e).with_context(|| format!("cannot read the checkpoint {}", path.display())),
    }
}

/// Opens the output for a resumed scan: keeps its first `lines` lines (the decisions of the
/// input lines already done), cuts what follows, and appends from there.
fn cut_after_lines(path: &str, lines: u64) -> anyhow::Result<File> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("cannot write {path}"))?;
    let mut keep = 0u64;
    let mut seen = 0u64;
    if lines > 0 {
        let mut r = BufReader::with_capacity(1 << 20, &mut f);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = r
                .read_until(b'\n', &mut line)
                .with_context(|| format!("reading {path}"))?;
            if n == 0 || line.last() != Some(&b'\n') {
                break;
            }
            keep += n as u64;
            seen += 1;
            if seen == lines {
                break;
            }
        }
    }
    if seen < lines {
        bail!("{path} holds {seen} complete decisions, but {lines} input lines were done: it is not this scan's output");
    }
    f.set_len(keep).with_context(|| format!("cutting {path}"))?;
    use std::io::Seek;
    f.seek(io::SeekFrom::End(0))
        .with_context(|| format!("seeking {path}"))?;
    Ok(f)
}

/// A buffered input of any origin.
pub(crate) type Input = BufReader<Box<dyn Read + Send>>;

/// Opens JSON Lines input (`-` for standard input), buffered, with its size when known;
/// refuses encodings that cannot be read line by line.
pub(crate) fn open_input(name: &str) -> anyhow::Result<(Input, Option<u64>)> {
    let (input, len): (Box<dyn Read + Send>, Option<u64>) = if name == "-" {
        (Box::new(io::stdin()), None)
    } else {
        let f = File::open(name).with_context(|| format!("cannot read {name}"))?;
        let len = f.metadata().ok().map(|m| m.len());
        (Box::new(f), len)
    };
    let mut reader = BufReader::with_capacity(1 << 20, input);
    check_encoding(&mut reader, name)?;
    Ok((reader, len))
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

/// Sends the input in chunks of whole lines, after skipping its first `skip` lines.
pub(crate) fn read_chunks<R: BufRead>(
    mut reader: R,
    skip: u64,
    tx: std::sync::mpsc::SyncSender<io::Result<Chunk>>,
) {
    let mut next_line = 1u64;
    let mut first = true;
    let mut discard = Vec::new();
    while next_line <= skip {
        discard.clear();
        match reader.read_until(b'\n', &mut discard) {
            Ok(0) => return,
            Ok(_) => {
                next_line += 1;
                first = false;
            }
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        }
    }
    loop {
        let mut chunk = Chunk {
            first_line: next_line,
            data: Vec::with_capacity(CHUNK_BYTES + (64 << 10)),
            ends: Vec::with_capacity(CHUNK_LINES),
            too_long: Vec::new(),
        };
        while chunk.ends.len() < CHUNK_LINES && chunk.data.len() < CHUNK_BYTES {
            let before = chunk.data.len();
            match read_line_capped(&mut reader, &mut chunk.data, MAX_LINE_BYTES) {
                Ok((0, _)) => break,
                Ok((_, true)) => {
                    first = false;
                    chunk.data.truncate(before);
                    chunk.too_long.push(chunk.ends.len());
                    chunk.ends.push(chunk.data.len());
                    chunk.data.push(b'\n');
                }
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

fn decide_line(engine: &Engine, line: &[u8], line_no: u64, timed: bool) -> LineOutcome {
    let (post, mut decision, times) = match engine.scan_json_line(line, timed) {
        Ok(pdt) => pdt,
        Err(e) => return LineOutcome::Failed(error_line(line_no, e.id, &e.message)),
    };
    decision.line = Some(line_no);
    LineOutcome::Decided(Box::new((post, decision, times)))
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
