//! `shenhe scan`: JSON Lines posts in, JSON Lines decisions out, through the library's
//! pipeline ([`shenhe::Pipeline::rescan`]: order, escalation, audit, reports, resume).
//! Here: the flags, the files, the progress bar and the summary.

use std::fs::File;
use std::io::{self, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use shenhe::audit::{AuditKey, AuditStore};
use shenhe::pipeline::Scanned;
use shenhe::stats::HitStats;
use shenhe::{Engine, EngineHandle, ErrorKind, Pipeline};

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
    /// audit store (or written to the checkpoint), appending to the output file. A scan
    /// that finished over the same file (unchanged or appended to since) with the same
    /// rules is continued too; one over other contents is not (the scan starts afresh).
    #[arg(long)]
    resume: bool,
    /// After each chunk, write the last decided input line to FILE, with the input's size
    /// and a hash of its start, and the output's size and a hash of its end (for --resume
    /// without an audit store; a changed input, or an output rewritten since, is refused).
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

/// More worker threads than this only costs memory (each has a stack and a share of the
/// chunks in flight).
pub(crate) const MAX_THREADS: usize = 1024;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let limits = shenhe::Limits {
        max_hits: args.max_hits,
        max_post_bytes: args.max_post_bytes,
    };
    let engine = Engine::with_limits(&args.rules.rule_set()?, limits)?;
    let rules = engine.rules().clone();
    let pool = {
        let mut b = rayon::ThreadPoolBuilder::new();
        if let Some(n) = args.threads {
            if n == 0 || n > MAX_THREADS {
                bail!("--threads {n}: from 1 to {MAX_THREADS}");
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
    if args.resume && !std::fs::metadata(&input_name).is_ok_and(|m| m.is_file()) {
        bail!(
            "--resume needs a file as input: {} is not one (a pipe cannot be read again from where a scan stopped)",
            args.input
        );
    }
    if args.resume && std::fs::metadata(&args.output).is_ok_and(|m| !m.is_file()) {
        bail!(
            "--resume needs a file as output: {} is not one (the decisions a scan wrote cannot be found there again, nor cut at the line it stopped)",
            args.output
        );
    }
    // Named as the store keeps it: the same file however it is spelled or wherever the
    // scan is started from.
    let output_name = match Path::new(&args.output) {
        _ if args.output == "-" => args.output.clone(),
        p => p
            .file_name()
            .and_then(|name| {
                let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
                std::fs::canonicalize(dir.unwrap_or(Path::new(".")))
                    .ok()
                    .map(|d| d.join(name).display().to_string())
            })
            .unwrap_or_else(|| args.output.clone()),
    };
    let pipeline = pipeline(&args, engine, &input_name, &output_name)?;
    if let (true, None, Some(db)) = (
        args.resume && !args.quiet,
        pipeline.resume_after(),
        &args.audit,
    ) {
        eprintln!(
            "shenhe scan: no interrupted scan of {} in {} (nor one that finished over these contents with these rules): scanning from the start",
            args.input,
            db.display()
        );
    }
    let (reader, input_len) = open_input(&args.input)?;
    let output: Box<dyn Write + Send> = if args.output == "-" {
        Box::new(io::stdout())
    } else if args.resume {
        Box::new(pipeline.open_resumed_output(Path::new(&args.output))?)
    } else {
        Box::new(
            File::create(&args.output).with_context(|| format!("cannot write {}", args.output))?,
        )
    };
    let progress = (!args.quiet && io::stderr().is_terminal()).then(|| progress_bar(input_len));
    let timed = args.stats.is_some();
    let mut hit_stats = timed.then(|| HitStats::new(&rules));
    let started = Instant::now();
    let scanned = pipeline.rescan(reader, output, &pool, timed, |bytes, lines| {
        if let Some(h) = hit_stats.as_mut() {
            for l in lines {
                if let Scanned::Decided(pd) = l {
                    h.add(&pd.1, pd.2);
                }
            }
        }
        if let Some(bar) = &progress {
            bar.inc(bytes);
        }
    });
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    let summary = match scanned {
        Ok(s) => s,
        Err(e) if e.kind() == ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(e).context(format!("scanning {} into {}", args.input, args.output)),
    };
    let finished = pipeline.finish()?;
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
    if args.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    eprint!(
        "{}",
        summary.render(&rules, started.elapsed().as_secs_f64())
    );
    if let Some(db) = &args.audit {
        eprintln!(
            "  audit: {} decisions recorded in {}",
            summary.decided(),
            db.display()
        );
    }
    if let (Some(r), Some(path)) = (&stats_report, &args.stats) {
        let suspect = if r.suspect.is_empty() {
            String::new()
        } else {
            format!(": {}", r.suspect.join(", "))
        };
        eprintln!(
            "  stats: {} rules never fired, {} suspect (hit more than {:.1}% of posts){suspect}; written to {}",
            r.never_fired.len(),
            r.suspect.len(),
            r.suspect_share * 100.0,
            path.display()
        );
    }
    if let (Some(n), Some(dir)) = (finished.reports, &args.reports) {
        eprintln!("  reports: {n} written to {}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The pipeline the flags ask for.
fn pipeline(
    args: &Args,
    engine: Engine,
    input_name: &str,
    output_name: &str,
) -> anyhow::Result<Pipeline> {
    let mut b = Pipeline::builder(EngineHandle::new(engine))
        .escalation(!args.no_escalation)
        .report_deadline_hours(args.report_deadline_hours)
        .run_files(input_name, output_name)
        .resume(args.resume);
    if let Some(db) = &args.audit {
        let key = match &args.audit_key_file {
            Some(f) => Some(AuditKey::from_file(f)?),
            None => AuditKey::from_env()?,
        };
        b = b.audit(AuditStore::open(db, key)?);
        if let Some(h) = args.audit_utc_offset {
            b = b.utc_offset_hours(h);
        }
    }
    if let Some(dir) = &args.reports {
        b = b.reports(dir);
    }
    if let Some(cp) = &args.checkpoint {
        b = b.checkpoint(cp);
    }
    match &args.audit {
        // What the store refuses (a missing key, other rules to resume) names the store.
        Some(db) => b.build().with_context(|| db.display().to_string()),
        None => Ok(b.build()?),
    }
}

fn progress_bar(input_len: Option<u64>) -> ProgressBar {
    let template = match input_len {
        Some(_) => "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {msg}",
        None => "{spinner} [{elapsed_precise}] {bytes} ({bytes_per_sec}) {msg}",
    };
    let bar = input_len.map_or_else(ProgressBar::new_spinner, ProgressBar::new);
    bar.set_style(ProgressStyle::with_template(template).expect("valid template"));
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
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
    shenhe::jsonl::check_encoding(&mut reader, name)?;
    Ok((reader, len))
}
