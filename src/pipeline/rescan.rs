//! Rescans: JSON Lines posts in, one decision line per input line out, in input order,
//! through the whole pipeline (what `shenhe scan` runs).
//!
//! A reader thread cuts the input into chunks of whole lines, the pool scans each chunk's
//! lines in parallel (and writes at once the decision lines nothing done in order can
//! change: most lines, without an audit store), the calling thread applies escalation and
//! writes reports in input order, the pool serialises the chunk's other decisions, and a
//! writer thread writes them. The stages overlap: the pool scans the next chunk while the
//! calling thread finishes one, and serialises one while the writer writes the one before.
//! Channels between them are bounded (a few chunks in flight), so memory stays flat however
//! large the input.
//!
//! Crash safety: the writer writes a chunk's decisions to the output first (flushed to the
//! operating system) and then records the chunk in the audit store (one commit) and the
//! checkpoint, so after a crash of the process the output holds at least every recorded
//! line. (After a power loss the output may lack lines the store holds, unless it was
//! synced: resume then refuses it as not this scan's output, and it is scanned again.) Resuming cuts the output back to the last recorded
//! line ([`open_resumed_output`]) and continues the input after it: no decision lost, none
//! written or recorded twice.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Seek, Write};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use rayon::prelude::*;

use super::commit::{GroupCommit, Ticket};
use super::{scan_post, Pipeline};
use crate::audit::{InputPrint, PendingRecord};
use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::jsonl::{self, Chunk, LineError, Spare};
use crate::matcher::KindTimes;
use crate::post::{Decision, Post};
use crate::rules::RuleSet;
use crate::vocab::Action;

use super::ledger::OffenceLedger;

/// One input line after the pipeline: a decided post, or the error line of one that could
/// not be decided.
#[derive(Debug)]
pub enum Scanned {
    /// A post and its decision (after escalation), with the scan's times when asked for.
    Decided(Box<(Post, Decision, KindTimes)>),
    /// Not a post, or over a limit: its error line.
    Failed(LineError),
}

/// What the writer thread gets per chunk: the output bytes (in parts, written in order),
/// then the records to commit under the chunk's ticket, and the chunk's last input line.
struct Batch {
    parts: Vec<Vec<u8>>,
    records: Vec<PendingRecord>,
    ticket: Option<Ticket>,
    last_line: u64,
}

/// Counts of a rescan, for its summary.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ScanSummary {
    /// Input lines read after the resume point.
    pub lines: u64,
    /// Lines that were not posts (or over a limit).
    pub errors: u64,
    /// Posts decided anything but `allow`.
    pub flagged: u64,
    /// Posts to report to the authorities.
    pub reported: u64,
    /// Posts escalation added a measure to.
    pub escalated: u64,
    /// Bytes of post text decided.
    pub text_bytes: u64,
    /// Decided posts per action.
    pub by_action: BTreeMap<Action, u64>,
    /// Flagged posts per category.
    pub by_category: BTreeMap<u16, u64>,
    /// With a resumed run: the input line it continued after.
    pub resumed_after: Option<u64>,
}

impl ScanSummary {
    fn add(&mut self, line: &Scanned) {
        match line {
            Scanned::Decided(pd) => self.add_decided(&pd.0, &pd.1),
            Scanned::Failed(_) => self.add_error(),
        }
    }

    fn add_decided(&mut self, post: &Post, d: &Decision) {
        self.lines += 1;
        self.text_bytes += post.text.len() as u64;
        *self.by_action.entry(d.action).or_default() += 1;
        self.flagged += u64::from(d.is_flagged());
        self.reported += u64::from(d.report);
        self.escalated += u64::from(!d.measures.is_empty());
        for &c in &d.categories {
            *self.by_category.entry(c).or_default() += 1;
        }
    }

    fn add_error(&mut self) {
        self.lines += 1;
        self.errors += 1;
    }

    /// Adds the counts of `other` (a part of the same scan).
    fn merge(&mut self, other: &ScanSummary) {
        self.lines += other.lines;
        self.errors += other.errors;
        self.flagged += other.flagged;
        self.reported += other.reported;
        self.escalated += other.escalated;
        self.text_bytes += other.text_bytes;
        for (a, n) in &other.by_action {
            *self.by_action.entry(*a).or_default() += n;
        }
        for (c, n) in &other.by_category {
            *self.by_category.entry(*c).or_default() += n;
        }
    }

    /// Posts decided (lines that were posts).
    pub fn decided(&self) -> u64 {
        self.lines - self.errors
    }

    /// The summary `shenhe scan` prints: lines, throughput over `secs`, flagged, actions,
    /// categories with their titles from `rules`, the rule set.
    pub fn render(&self, rules: &RuleSet, secs: f64) -> String {
        use std::fmt::Write;
        let secs = secs.max(1e-9);
        let mut s = String::new();
        if let Some(line) = self.resumed_after {
            let _ = writeln!(s, "shenhe scan: resumed after input line {line}");
        }
        let _ = writeln!(
            s,
            "shenhe scan: {} lines, {} decided, {} errors in {:.2} s ({:.0} posts/s, {:.1} MB/s of text)",
            self.lines,
            self.decided(),
            self.errors,
            secs,
            self.lines as f64 / secs,
            self.text_bytes as f64 / 1e6 / secs
        );
        let pct = |n: u64| 100.0 * n as f64 / (self.lines.max(1)) as f64;
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
                let (label, title) = rules
                    .category(*c)
                    .map(|c| (c.label(), c.title.clone()))
                    .unwrap_or_else(|| (format!("#{c}"), String::new()));
                let _ = writeln!(s, "    {label:<6} {n:>8}  {title}");
            }
        }
        let _ = writeln!(
            s,
            "  rules: {} {} ({})",
            rules.info().name,
            rules.info().version,
            &rules.hash()[..12]
        );
        s
    }
}

impl Pipeline {
    /// Rescans JSON Lines posts from `input` into decision lines on `output`: exactly one
    /// line per input line, in input order (an error line for a line that is not a post),
    /// each decision escalated, recorded (one commit per chunk, after its lines are written)
    /// and reported as [`moderate`](Pipeline::moderate) does. Scans on `pool`; with `timed`
    /// each decision comes with the scan's times. A resumed pipeline skips the input lines
    /// its interrupted run already decided. `on_chunk` sees each chunk's input bytes and,
    /// in order, the lines that waited for the in-order steps (escalation, records,
    /// reports, review): with `timed`, every line (for hit statistics); without, a line
    /// nothing in order can change is written as soon as it is decided and not seen.
    ///
    /// Fails when the input cannot be read (`Io`), the output cannot be written (`Io`;
    /// `BrokenPipe` when its reader went away), or a record or report cannot be kept (`Audit`,
    /// `Io`): everything written to the output before is recorded or will be decided again
    /// by a resumed run.
    pub fn rescan<R, W>(
        &self,
        input: R,
        output: W,
        pool: &rayon::ThreadPool,
        timed: bool,
        mut on_chunk: impl FnMut(u64, &[&Scanned]),
    ) -> Result<ScanSummary>
    where
        R: BufRead + Send + 'static,
        W: Write + Send,
    {
        let skip = self.resume_after.unwrap_or(0);
        let mut summary = ScanSummary {
            resumed_after: self.resume_after.filter(|&l| l > 0),
            ..ScanSummary::default()
        };
        let (chunk_tx, chunk_rx) = sync_channel::<io::Result<Chunk>>(1);
        // The writer gets one receiver per chunk, in input order; each batch comes when the
        // pool has serialised it.
        let (out_tx, out_rx) = sync_channel::<Receiver<Result<Batch>>>(1);
        let audit = self.audit.as_deref();
        let checkpoint = self.checkpoint();
        // The chunks' buffers go back to the reader once their lines are posts, and the
        // decision lines' buffers back to the serialising jobs once written.
        let spare = Buffers {
            input: Arc::new(Spare::default()),
            output: Spare::default(),
        };
        let spare_input = Arc::clone(&spare.input);
        // The reader is not scoped: stopped early (a closed output, a failed record), the scan
        // returns without waiting for a read that may never end (a live feed on stdin). It
        // ends at its next chunk, when it finds nobody receiving.
        let reader = std::thread::spawn(move || {
            jsonl::read_chunks_reusing(input, skip, chunk_tx, &spare_input)
        });
        let mut stopped_early = false;
        let spare = &spare;
        let result = std::thread::scope(|scope| {
            let writer = scope
                .spawn(move || write_batches(out_rx, output, audit, checkpoint, &spare.output));
            let failure = pool.in_place_scope(|jobs| {
                self.drive(
                    jobs,
                    spare,
                    chunk_rx,
                    out_tx,
                    timed,
                    &mut summary,
                    &mut on_chunk,
                )
            });
            stopped_early = failure.is_some();
            let written = writer.join().expect("the writer thread does not panic");
            match (failure, written) {
                (_, Err(e)) => Err(e),
                (Some(Stop::Failed(e)), Ok(())) => Err(e),
                (None | Some(Stop::OutputClosed), Ok(())) => Ok(summary),
            }
        });
        if !stopped_early {
            // It sent its last chunk (or its error): it is done.
            let _ = reader.join();
        }
        result
    }

    /// The calling thread's part of a rescan: hands each chunk to the pool to be scanned,
    /// takes the scanned chunks back in input order for what must be done in order
    /// (escalation, reports, review), then hands each to the pool again to be serialised,
    /// and the writer a receiver for its batch. One chunk is scanned ahead of the one being
    /// finished, so the pool has work while this thread escalates, and no chunk waits for
    /// the slowest line of the one before. Returns why it stopped before the input's end.
    #[allow(clippy::too_many_arguments)]
    fn drive<'s>(
        &'s self,
        jobs: &rayon::Scope<'s>,
        spare: &'s Buffers,
        chunk_rx: Receiver<io::Result<Chunk>>,
        out_tx: SyncSender<Receiver<Result<Batch>>>,
        timed: bool,
        summary: &mut ScanSummary,
        on_chunk: &mut impl FnMut(u64, &[&Scanned]),
    ) -> Option<Stop> {
        let mut input = chunk_rx.into_iter();
        let mut scanning = VecDeque::with_capacity(2);
        // A failed read ends the reading; the chunks read before it are still finished
        // and written.
        let mut unreadable = None;
        loop {
            while unreadable.is_none() && scanning.len() < 2 {
                match input.next() {
                    None => break,
                    Some(Err(e)) => {
                        let e = Error::new(ErrorKind::Io, format!("reading the input: {e}"));
                        unreadable = Some(Stop::Failed(e));
                    }
                    Some(Ok(chunk)) => {
                        scanning.push_back(self.scan_chunk(jobs, spare, chunk, timed))
                    }
                }
            }
            let Some(scanned) = scanning.pop_front() else {
                // None scanning, and none to read: the input is done, or failed.
                return unreadable;
            };
            let ScannedChunk {
                engine,
                mut parts,
                bytes,
                last_line,
            } = scanned.recv().expect("a scan job does not panic");
            let ticket = match self.finish_in_order(&engine, &mut parts) {
                Ok(t) => t,
                Err(e) => return Some(Stop::Failed(e)),
            };
            let mut waiting = Vec::new();
            for part in &parts {
                summary.merge(&part.written);
                for (_, l) in &part.waiting {
                    summary.add(l);
                    waiting.push(l);
                }
            }
            on_chunk(bytes, &waiting);
            drop(waiting);
            let (batch_tx, batch_rx) = sync_channel(1);
            if out_tx.send(batch_rx).is_err() {
                return Some(Stop::OutputClosed);
            }
            jobs.spawn(move |_| {
                let batch = self.serialise(&spare.output, parts, ticket, last_line);
                let _ = batch_tx.send(batch);
            });
        }
    }

    /// Starts scanning a chunk's lines on the pool, in parts of consecutive lines; the
    /// receiver gets the parts in order. A decision nothing done in input order can change
    /// (no audit store, report or review for it, and escalation has nobody to count it
    /// against) is written into its part's decision lines at once, on the thread that
    /// made it, and its post dropped there: most posts never leave that thread's cache.
    /// The others wait in the part for their turn ([`Part`]).
    fn scan_chunk<'s>(
        &'s self,
        jobs: &rayon::Scope<'s>,
        spare: &'s Buffers,
        chunk: Chunk,
        timed: bool,
    ) -> Receiver<ScannedChunk> {
        let (tx, rx) = sync_channel(1);
        jobs.spawn(move |_| {
            let engine = self.engine.load();
            let limits = self.limits_for(&engine);
            let n = chunk.len();
            // Parts small enough for the pool to share a chunk out evenly (four a thread),
            // large enough that each is one write.
            let per_part = n
                .div_ceil(rayon::current_num_threads() * 4)
                .max(MIN_PART_LINES);
            let parts = (0..n.div_ceil(per_part))
                .into_par_iter()
                .map(|p| {
                    let mut part = Part {
                        out: spare.output.take(0),
                        waiting: Vec::new(),
                        written: ScanSummary::default(),
                    };
                    let mut writer = jsonl::LineWriter::default();
                    for i in p * per_part..((p + 1) * per_part).min(n) {
                        match chunk.post(i, &limits) {
                            Err(e) if timed => {
                                part.waiting.push((part.out.len(), Scanned::Failed(e)));
                            }
                            Err(e) => {
                                part.out.extend_from_slice(&e.to_line());
                                part.written.add_error();
                            }
                            Ok((post, warnings)) => {
                                let (mut d, times) =
                                    scan_post(&engine, &limits, &post, warnings, timed);
                                d.line = Some(chunk.first_line + i as u64);
                                if timed || self.waits(&engine, &post, &d) {
                                    let line = Scanned::Decided(Box::new((post, d, times)));
                                    part.waiting.push((part.out.len(), line));
                                } else {
                                    writer.push(&mut part.out, &d);
                                    part.written.add_decided(&post, &d);
                                }
                            }
                        }
                    }
                    part
                })
                .collect();
            let (bytes, last_line) = (chunk.data.len() as u64, chunk.last_line());
            spare.input.give(chunk.data);
            let _ = tx.send(ScannedChunk {
                engine,
                parts,
                bytes,
                last_line,
            });
        });
        rx
    }

    /// Whether `post`'s decision must wait for what is done in input order: its audit
    /// record (in chain order), its report, its place in the review queue, or escalation.
    fn waits(&self, engine: &Engine, post: &Post, d: &Decision) -> bool {
        self.audit.is_some()
            || (d.report && self.reports.is_some())
            || (d.action == Action::Review && (self.queue.is_some() || self.review.is_some()))
            || (self.ledger.is_some()
                && OffenceLedger::concerns(&engine.rules().policy().escalation, post, d))
    }

    /// What is done in input order on a scanned chunk's waiting lines: escalation (the
    /// commit ticket comes with it), reports and the review queue.
    fn finish_in_order(&self, engine: &Engine, parts: &mut [Part]) -> Result<Option<Ticket>> {
        let now = jiff::Timestamp::now();
        let decided = parts
            .iter_mut()
            .flat_map(|p| p.waiting.iter_mut())
            .filter_map(|(_, l)| match l {
                Scanned::Decided(pd) => {
                    let (post, d, _) = &mut **pd;
                    Some((&*post, d))
                }
                Scanned::Failed(_) => None,
            });
        let ticket = self.escalate(engine, decided, now);
        for (_, l) in parts.iter_mut().flat_map(|p| p.waiting.iter_mut()) {
            if let Scanned::Decided(pd) = l {
                let (post, d, _) = &mut **pd;
                self.report(engine, post, d, now)?;
                // The records are made later, apart: a hold is written at once.
                if let (Some(hold), Some(queue)) = (self.hand_to_review(post, d, now)?, &self.queue)
                {
                    queue.write_hold(hold)?;
                }
            }
        }
        Ok(ticket)
    }

    /// A finished chunk's decision lines and audit records, made in parallel: each part's
    /// waiting lines written into its place among the lines written at scan time, in a
    /// buffer from `spare`. The parts' posts are dropped here, on the pool.
    fn serialise(
        &self,
        spare: &Spare,
        parts: Vec<Part>,
        ticket: Option<Ticket>,
        last_line: u64,
    ) -> Result<Batch> {
        let records = match &self.audit {
            None => Vec::new(),
            Some(a) => parts
                .par_iter()
                .flat_map_iter(|p| p.waiting.iter())
                .filter_map(|(_, l)| match l {
                    Scanned::Decided(pd) => Some(a.preparer().prepare(pd.1.line, &pd.0, &pd.1)),
                    Scanned::Failed(_) => None,
                })
                .collect::<Result<Vec<_>>>()?,
        };
        let parts = parts
            .into_par_iter()
            .map(|part| {
                if part.waiting.is_empty() {
                    return part.out;
                }
                let mut out = spare.take(part.out.len() + 1024 * part.waiting.len());
                let mut writer = jsonl::LineWriter::default();
                let mut from = 0;
                for (at, l) in &part.waiting {
                    out.extend_from_slice(&part.out[from..*at]);
                    from = *at;
                    match l {
                        Scanned::Failed(e) => out.extend_from_slice(&e.to_line()),
                        Scanned::Decided(pd) => writer.push(&mut out, &pd.1),
                    }
                }
                out.extend_from_slice(&part.out[from..]);
                spare.give(part.out);
                out
            })
            .collect();
        Ok(Batch {
            parts,
            records,
            ticket,
            last_line,
        })
    }
}

/// Consecutive lines of a chunk, scanned together on one thread of the pool.
struct Part {
    /// The decision lines written at scan time (and error lines), in input order.
    out: Vec<u8>,
    /// The lines that wait for what is done in input order, each with the place in `out`
    /// where its line goes.
    waiting: Vec<(usize, Scanned)>,
    /// The counts of the lines written at scan time.
    written: ScanSummary,
}

/// Fewest lines in a part (a chunk's last part may have fewer).
const MIN_PART_LINES: usize = 32;

/// The spare buffers of a rescan's stages.
struct Buffers {
    /// Chunk buffers: taken by the reader, given back when the chunk's lines are posts.
    input: Arc<Spare>,
    /// Decision-line buffers: taken to serialise a chunk, given back when written.
    output: Spare,
}

/// A chunk scanned on the pool, on its way back to the calling thread.
struct ScannedChunk {
    /// The engine it was scanned with (escalation and reports use the same one).
    engine: Arc<Engine>,
    parts: Vec<Part>,
    /// The chunk's input bytes (for `on_chunk`).
    bytes: u64,
    last_line: u64,
}

/// Why a rescan's calling thread stopped before the end of its input.
enum Stop {
    /// The writer is gone: it failed (its error is the scan's) or its reader went away.
    OutputClosed,
    /// Reading the input, or what must be done in order, failed.
    Failed(Error),
}

/// The writer thread: each batch's decisions go to the output and are flushed, then the
/// batch is committed to the audit store and the checkpoint moves on. In that order, the
/// output always holds every recorded line (see the module's note on crash safety).
fn write_batches<W: Write>(
    rx: Receiver<Receiver<Result<Batch>>>,
    output: W,
    audit: Option<&GroupCommit>,
    checkpoint: Option<CheckpointTo<'_>>,
    spare: &Spare,
) -> Result<()> {
    let written = |e: io::Error| match e.kind() {
        io::ErrorKind::BrokenPipe => Error::new(ErrorKind::BrokenPipe, "the output was closed"),
        _ => Error::new(ErrorKind::Io, format!("writing the output: {e}")),
    };
    let mut w = BufWriter::with_capacity(1 << 20, output);
    for batch in rx {
        let batch = batch.recv().expect("a serialising job does not panic")?;
        for part in batch.parts {
            if part.len() >= DIRECT_WRITE_BYTES {
                // Written as it is: through the buffer it would be copied once more.
                w.flush().map_err(written)?;
                w.get_mut().write_all(&part).map_err(written)?;
            } else {
                w.write_all(&part).map_err(written)?;
            }
            spare.give(part);
        }
        if audit.is_some() || checkpoint.is_some() {
            w.flush().map_err(written)?;
        }
        if let (Some(a), Some(ticket)) = (audit, batch.ticket) {
            a.commit(ticket, batch.records)?;
        }
        if let Some((cp, print, output)) = checkpoint {
            // The output with this batch's lines, all flushed above: what a resumed scan
            // will find up to this line's end, unless the output was rewritten since.
            let output_mark = output.and_then(|o| OutputMark::of(o).ok().flatten());
            write_checkpoint(cp, batch.last_line, print, output_mark.as_ref())?;
        }
    }
    w.flush().map_err(written)
}

/// A part of at least this many bytes goes to the output in a write of its own.
const DIRECT_WRITE_BYTES: usize = 32 << 10;

/// Where a rescan keeps its checkpoint: the file, the input's print and the output file
/// (when they are known).
pub(super) type CheckpointTo<'a> = (&'a Path, Option<&'a InputPrint>, Option<&'a Path>);

/// What a checkpoint file keeps.
#[derive(Debug)]
pub(super) struct Checkpoint {
    /// The last decided input line.
    pub(super) line: u64,
    /// The input's print (not in a checkpoint of a shenhe before 2026-12-05).
    pub(super) print: Option<InputPrint>,
    /// The output as that line's decision left it, when the output is a regular file.
    pub(super) output: Option<OutputMark>,
}

/// An output file's size and a hash of its last 4 KiB, as a checkpoint keeps them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct OutputMark {
    bytes: u64,
    tail: String,
}

impl OutputMark {
    /// The mark of the file at `path`, when it is a regular file.
    fn of(path: &Path) -> io::Result<Option<OutputMark>> {
        let Some(bytes) = crate::audit::regular_file_len(path)? else {
            return Ok(None);
        };
        let tail = crate::audit::tail_hash(path, bytes)?;
        Ok(Some(OutputMark { bytes, tail }))
    }
}

/// Replaces the checkpoint file atomically with the last decided line and, when known, the
/// input's print and the output's mark: `LINE [BYTES HEAD [OUTPUT_BYTES OUTPUT_TAIL]]`.
fn write_checkpoint(
    path: &Path,
    line: u64,
    print: Option<&InputPrint>,
    output: Option<&OutputMark>,
) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let failed = |e: io::Error| {
        Error::new(
            ErrorKind::Io,
            format!("writing the checkpoint {}: {e}", path.display()),
        )
    };
    let mut f = File::create(&tmp).map_err(failed)?;
    // Synced before the rename: after a power loss the checkpoint is the old one or the
    // new one, never an empty file.
    let text = match (print, output) {
        (Some(p), Some(o)) => format!("{line} {} {} {} {}\n", p.bytes, p.head, o.bytes, o.tail),
        (Some(p), None) => format!("{line} {} {}\n", p.bytes, p.head),
        (None, _) => format!("{line}\n"),
    };
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(failed)?;
    std::fs::rename(&tmp, path).map_err(failed)
}

/// What a checkpoint file keeps (one of an older shenhe holds the line alone, or the line
/// and the input's print); `None` when there is none yet.
pub(super) fn read_checkpoint(path: &Path) -> Result<Option<Checkpoint>> {
    let not_one = || {
        Error::new(
            ErrorKind::InvalidValue,
            format!(
                "{}: not a checkpoint (expected a line number, then the input's size and hash, then the output's)",
                path.display()
            ),
        )
    };
    match std::fs::read_to_string(path) {
        Ok(s) => {
            let mut fields = s.split_ascii_whitespace();
            let line = fields
                .next()
                .and_then(|l| l.parse().ok())
                .ok_or_else(not_one)?;
            let is_hash = |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
            let mark = |bytes: &str, hash: &str| -> Option<(u64, String)> {
                Some((bytes.parse().ok()?, hash.to_owned())).filter(|_| is_hash(hash))
            };
            let rest: Vec<&str> = fields.by_ref().take(4).collect();
            let (print, output) = match rest[..] {
                [] => (None, None),
                [bytes, head] => {
                    let (bytes, head) = mark(bytes, head).ok_or_else(not_one)?;
                    (Some(InputPrint { bytes, head }), None)
                }
                [bytes, head, out_bytes, out_tail] => {
                    let (bytes, head) = mark(bytes, head).ok_or_else(not_one)?;
                    let (bytes_out, tail) = mark(out_bytes, out_tail).ok_or_else(not_one)?;
                    let output = OutputMark {
                        bytes: bytes_out,
                        tail,
                    };
                    (Some(InputPrint { bytes, head }), Some(output))
                }
                _ => return Err(not_one()),
            };
            if fields.next().is_some() {
                return Err(not_one());
            }
            Ok(Some(Checkpoint {
                line,
                print,
                output,
            }))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::new(
            ErrorKind::Io,
            format!("cannot read the checkpoint {}: {e}", path.display()),
        )),
    }
}

/// Opens the output of a resumed rescan: keeps its first `lines` lines (the decisions of
/// the input lines already done), cuts what follows, and appends from there. Refuses a file
/// with fewer complete lines than that: it is not this scan's output.
pub fn open_resumed_output(path: &Path, lines: u64) -> Result<File> {
    open_resumed_output_at(path, lines, None)
}

/// [`open_resumed_output`], refusing (before it cuts anything) an output whose first
/// `lines` lines are not what the checkpoint `kept` says they were (their size, the hash of
/// their last 4 KiB), when it kept that: it was rewritten since the scan stopped (another
/// scan's output in its place).
pub(super) fn open_resumed_output_at(
    path: &Path,
    lines: u64,
    kept: Option<(&Path, &OutputMark)>,
) -> Result<File> {
    let io_err = |what: &str, e: io::Error| {
        Error::new(ErrorKind::Io, format!("{what} {}: {e}", path.display()))
    };
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| io_err("cannot write", e))?;
    let (mut keep, mut seen) = (0u64, 0u64);
    if lines > 0 {
        let mut r = BufReader::with_capacity(1 << 20, &mut f);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = r
                .read_until(b'\n', &mut line)
                .map_err(|e| io_err("reading", e))?;
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
        return Err(Error::new(
            ErrorKind::InvalidValue,
            format!(
                "{} holds {seen} complete decisions, but {lines} input lines were done: it is not this scan's output",
                path.display()
            ),
        ));
    }
    if let Some((cp, mark)) = kept {
        let same = mark.bytes == keep
            && crate::audit::tail_hash(path, keep).map_err(|e| io_err("reading", e))? == mark.tail;
        if !same {
            return Err(Error::new(
                ErrorKind::InvalidValue,
                format!(
                    "{} has changed since the checkpoint {} was written: its first {lines} decisions are not the ones that scan wrote ({} bytes then, {keep} now); it is not this scan's output (left as it is): scan again without --resume",
                    path.display(),
                    cp.display(),
                    mark.bytes
                ),
            ));
        }
    }
    f.set_len(keep).map_err(|e| io_err("cutting", e))?;
    f.seek(io::SeekFrom::End(0))
        .map_err(|e| io_err("seeking", e))?;
    Ok(f)
}
