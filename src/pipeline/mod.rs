//! The pipeline: the one route a post takes after the engine, whichever face it came
//! through (the CLI, the C moderator, the HTTP service, Python, Spark).
//!
//! ```text
//! post ─► size limit ─► Engine::scan ─► escalation (offence ledger, in order)
//!      ─► audit record (group commit, durable before the caller hears back)
//!      ─► report to the authorities (when the decision says so) ─► review hook
//! ```
//!
//! [`Pipeline`] owns what changes: the offence ledger, the audit store and its run, the
//! reports directory. The engine stays pure and replaceable ([`EngineHandle`]). A post gets
//! the same decision, the same audit record and the same report through every face because
//! every face calls this. It does not parse command lines, draw progress or print.

mod commit;
mod ledger;
mod rescan;
#[cfg(test)]
mod tests;

pub use ledger::OffenceLedger;
pub use rescan::{open_resumed_output, ScanSummary, Scanned};

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rayon::prelude::*;

use crate::audit::{regular_file_len, AuditStore, InputPrint, PendingRecord};
use crate::engine::{Engine, EngineHandle, Limits};
use crate::error::{Error, ErrorKind, Result};
use crate::jsonl::{self, LineError};
use crate::matcher::KindTimes;
use crate::post::{Decision, Post, RulesetInfo};
use crate::report::{Report, ReportWriter, DEFAULT_DEADLINE_HOURS};
use crate::review::{HoldRow, ReviewQueue};
use crate::vocab::Action;
use commit::{GroupCommit, Ticket};

/// The pause between two steps of [`Pipeline::prune_audit`]: the commits waiting for the
/// store take it meanwhile (a step takes a few milliseconds).
const PRUNE_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);

/// The decision of [`Pipeline::moderate_json_then`], or the error line to give back.
pub type Moderated = std::result::Result<Decision, LineError>;

/// Called with every post held for review (`review`), in order, before its audit record is
/// committed: where a review queue takes it in, returning the item's id for the decision's
/// `review_id` (or `None`). A post whose record then fails, or that a resumed scan decides
/// again, comes to the hook again: keep it idempotent (by post id). An error fails the
/// post's moderation like a failed record does.
pub type ReviewHook = Arc<dyn Fn(&Post, &Decision) -> Result<Option<i64>> + Send + Sync>;

/// How a [`Pipeline`] is set up; from [`Pipeline::builder`].
#[must_use]
pub struct PipelineBuilder {
    engine: EngineHandle,
    escalation: bool,
    audit: Option<AuditStore>,
    reports: Option<PathBuf>,
    deadline_hours: u32,
    utc_offset_hours: Option<i8>,
    limits: Option<Limits>,
    review: Option<ReviewHook>,
    queue: Option<Arc<ReviewQueue>>,
    input: Option<String>,
    output: Option<String>,
    resume: bool,
    checkpoint: Option<PathBuf>,
}

impl PipelineBuilder {
    /// Repeat-offence escalation (on by default): flagged posts are counted per account and
    /// address as the rule set's `[policy] escalation` says, seeded with the offences the
    /// audit store already holds. Off for rescans where live order means nothing (Spark).
    pub fn escalation(mut self, on: bool) -> Self {
        self.escalation = on;
        self
    }

    /// Records every decision in `store`. The store must be able to record (a sealed store
    /// needs its key: [`AuditStore::open`]).
    pub fn audit(mut self, store: AuditStore) -> Self {
        self.audit = Some(store);
        self
    }

    /// Writes a report for every decision that must be reported into `dir` (created when
    /// missing; reports already there are kept and listed).
    pub fn reports(mut self, dir: impl Into<PathBuf>) -> Self {
        self.reports = Some(dir.into());
        self
    }

    /// Hours after detection by which a report is due (default 24).
    pub fn report_deadline_hours(mut self, hours: u32) -> Self {
        self.deadline_hours = hours;
        self
    }

    /// The UTC offset, in hours, of the calendar: the days audit records are grouped and
    /// kept by (settable only while the store is empty) and the times reports show.
    /// Default: the store's (UTC+8 for a new one).
    pub fn utc_offset_hours(mut self, hours: i8) -> Self {
        self.utc_offset_hours = Some(hours);
        self
    }

    /// Per-post limits in place of the engine's: `max_post_bytes` is checked before the
    /// scan (a larger post is refused, never allowed); a `max_hits` below the engine's cuts
    /// the hit list further (the post is then `truncated` and held at least for review).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Calls `hook` with every post held for review ([`ReviewHook`]).
    pub fn review_hook(mut self, hook: ReviewHook) -> Self {
        self.review = Some(hook);
        self
    }

    /// Holds every post held for review in `queue`, in place of a hook. When the queue is
    /// in the audit store's file (as [`ReviewQueue::open`] on the store's path makes it),
    /// a held post's row is written in the transaction that records its decision: the
    /// two are kept together or not at all, in the same disk flush as the others of the
    /// group. Otherwise it is held at once, as [`ReviewQueue::hook`] does. Replaces a
    /// [`review_hook`](PipelineBuilder::review_hook). The queue numbers the holds it
    /// writes: let no other program hold posts in the same file meanwhile (a clash of
    /// numbers fails the commit, nothing is lost).
    pub fn review_queue(mut self, queue: Arc<ReviewQueue>) -> Self {
        self.queue = Some(queue);
        self
    }

    /// Names the input and output this pipeline's audit run covers (a rescanned file);
    /// what [`resume`](PipelineBuilder::resume) looks for.
    pub fn run_files(mut self, input: impl Into<String>, output: impl Into<String>) -> Self {
        self.input = Some(input.into());
        self.output = Some(output.into());
        self
    }

    /// Continues the interrupted run over the same input (named by
    /// [`run_files`](PipelineBuilder::run_files)) in the audit store, or the one a
    /// checkpoint file tells: [`Pipeline::resume_after`] says after which input line. A
    /// run that finished over the same file (unchanged, or with lines appended since) and
    /// with the same rules is continued after its last line too: nothing is decided or
    /// recorded twice when a scan is resumed that was killed after it finished.
    pub fn resume(mut self, on: bool) -> Self {
        self.resume = on;
        self
    }

    /// After each chunk of a [`rescan`](Pipeline::rescan), writes the last decided input
    /// line to `path` (atomically), for resuming without an audit store.
    pub fn checkpoint(mut self, path: impl Into<PathBuf>) -> Self {
        self.checkpoint = Some(path.into());
        self
    }

    /// Opens what the pipeline writes to: starts (or resumes) the audit run, seeds the
    /// offence ledger from the store, opens the reports directory.
    pub fn build(self) -> Result<Pipeline> {
        let engine = self.engine.load();
        let rules = engine.rules();
        let mut resume_after = None;
        let mut resume_output = None;
        let mut seeded = Ledger {
            offences: OffenceLedger::new(rules.policy().escalation.clone()),
            ruleset: rules.info().clone(),
            counted: HashSet::new(),
        };
        let mut utc_offset_hours = self.utc_offset_hours.unwrap_or(8);
        let (queue, review) = match self.queue {
            Some(q) if self.audit.as_ref().is_some_and(|a| q.is_in(a.path())) => (Some(q), None),
            Some(q) => (None, Some(q.hook())),
            None => (None, self.review),
        };
        // What the run keeps of its input file, to continue it only over the same contents.
        let print = self
            .input
            .as_deref()
            .filter(|_| self.audit.is_some() || self.checkpoint.is_some())
            .and_then(|input| InputPrint::of(Path::new(input)).ok());
        let audit = match self.audit {
            None => None,
            Some(mut store) => {
                let who = match &self.input {
                    Some(input) => format!("{} of {input}", command_line()),
                    None => command_line(),
                };
                store.lock_writer(&who)?;
                store.can_record()?;
                match self.utc_offset_hours {
                    Some(h) if h != store.utc_offset_hours() => store.set_utc_offset_hours(h)?,
                    _ => utc_offset_hours = store.utc_offset_hours(),
                }
                let previous = match (&self.input, self.resume) {
                    (Some(input), true) => {
                        continued_run(&store, input, self.output.as_deref(), rules.hash())?
                    }
                    _ => None,
                };
                let run = match previous {
                    Some((run, line)) => {
                        store.reopen_run(run, print.as_ref())?;
                        resume_after = Some(line);
                        run
                    }
                    None => store.begin_run_over(
                        self.input.as_deref(),
                        print.as_ref(),
                        self.output.as_deref(),
                        rules.hash(),
                    )?,
                };
                if self.escalation {
                    store.offences(|user, ip, time, post| {
                        seeded.offences.record_offence(user, ip, time);
                        if let Some(p) = post {
                            seeded.counted.insert(p.to_owned());
                        }
                    })?;
                }
                Some(Arc::new(GroupCommit::new(store, run)))
            }
        };
        if let (true, None, Some(cp)) = (self.resume, &audit, &self.checkpoint) {
            if let Some(rescan::Checkpoint {
                line,
                print: kept,
                output,
            }) = rescan::read_checkpoint(cp)?
            {
                if let (Some(kept), Some(input)) = (kept, &self.input) {
                    if !still_matches(&kept, input)? {
                        return Err(Error::new(
                            ErrorKind::InvalidValue,
                            format!(
                                "{input} has changed since the checkpoint {} was written (after line {line}): it is not the input that scan decided; scan it again without --resume",
                                cp.display()
                            ),
                        ));
                    }
                }
                resume_after = Some(line);
                resume_output = output;
            }
        }
        let reports = match &self.reports {
            None => None,
            Some(dir) => Some(Mutex::new(ReportWriter::open(dir).map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!("cannot write reports to {}: {e}", dir.display()),
                )
            })?)),
        };
        Ok(Pipeline {
            engine: self.engine,
            limits: self.limits,
            ledger: self.escalation.then(|| Arc::new(Mutex::new(seeded))),
            audit,
            reports,
            deadline_hours: self.deadline_hours,
            utc_offset_hours,
            review,
            queue,
            resume_after,
            resume_output,
            output: self.output,
            checkpoint: self.checkpoint.map(|path| (path, print)),
        })
    }
}

/// The run over `input` that `--resume` continues, and the last line it recorded: the last
/// run over it, unless that run finished over other contents or with other rules than
/// `ruleset` (then none: the scan starts afresh). A finished run over the same file,
/// unchanged or grown, is continued after its last line, so that a scan killed after it
/// finished but before it could say so is not done twice; only into the `output` it left,
/// else refused. An interrupted run is continued only over the same file and with the same
/// rules.
fn continued_run(
    store: &AuditStore,
    input: &str,
    output: Option<&str>,
    ruleset: &str,
) -> Result<Option<(i64, u64)>> {
    let Some(last) = store.last_run(input)? else {
        return Ok(None);
    };
    let same_input = match &last.print {
        Some(p) => still_matches(p, input)?,
        // A run of a shenhe that kept no print: only an interrupted one is continued.
        None => !last.finished,
    };
    let used = store.run_ruleset(last.run)?;
    if last.finished {
        if !same_input || used != ruleset {
            return Ok(None);
        }
        // Into the output as the run left it (the same name, the size it ended with); any
        // other would be cut at the run's last line, and starting afresh would decide and
        // record every post again.
        let same_output = last.output.as_deref() == output
            && last.output_bytes.is_some() // a regular file's size was kept
            && last.output_bytes == output.and_then(output_len);
        if !same_output {
            let into = last.output.as_deref().unwrap_or("no output file");
            return Err(Error::new(
                ErrorKind::InvalidValue,
                format!(
                    "the scan of {input} finished (run {}, {} lines) into {into}, which {}: resume into that output as it was left, or scan again without --resume",
                    last.run,
                    last.line,
                    match last.output.as_deref() == output {
                        true => "has changed since",
                        false => "is not this output",
                    }
                ),
            ));
        }
        return Ok(Some((last.run, last.line)));
    }
    if !same_input {
        return Err(Error::new(
            ErrorKind::InvalidValue,
            format!(
                "{input} has changed since its interrupted scan (run {}, after line {}): it is not the input that scan decided; scan it again without --resume",
                last.run, last.line
            ),
        ));
    }
    if used != ruleset {
        return Err(Error::new(
            ErrorKind::InvalidValue,
            format!(
                "the interrupted scan of {input} used rule set {used}; these rules are {ruleset}: resume with the same rules, or scan again without --resume"
            ),
        ));
    }
    Ok(Some((last.run, last.line)))
}

/// Whether the input file named `input` still starts as `print` says.
fn still_matches(print: &InputPrint, input: &str) -> Result<bool> {
    print
        .matches(Path::new(input))
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot read {input}: {e}")))
}

/// The size of the output file named `output` (`-` is standard output, no file), when it
/// is a regular file.
fn output_len(output: &str) -> Option<u64> {
    if output == "-" {
        return None;
    }
    regular_file_len(Path::new(output)).ok().flatten()
}

impl Ledger {
    /// Whether the store already held this post's offence when the pipeline started.
    fn was_counted(&self, d: &Decision) -> bool {
        !self.counted.is_empty()
            && d.id.as_ref().is_some_and(|id| {
                self.counted
                    .contains(&serde_json::to_string(id).expect("ids serialise"))
            })
    }
}

/// The offence ledger, the rule set whose escalation settings it applies, and the posts
/// whose offences the audit store already held when the pipeline started (not counted twice
/// when decided again, as by a resumed scan).
#[derive(Debug)]
struct Ledger {
    offences: OffenceLedger,
    ruleset: Arc<RulesetInfo>,
    counted: HashSet<String>,
}

/// The whole route for one forum: the engine (replaceable while in use), an offence
/// ledger, and optionally an audit store, a reports directory and a review hook.
///
/// `Send + Sync`: share one per forum. [`moderate`](Pipeline::moderate) returns once the
/// decision's audit record is committed; concurrent callers share commits (group commit),
/// so durability does not cost one disk flush per post. Escalation counts posts in the
/// order callers reach the ledger, and the audit chain keeps that order.
///
/// ```
/// use shenhe::{Action, Engine, EngineHandle, Measure, Pipeline, Post};
///
/// let handle = EngineHandle::new(Engine::bundled());
/// let dir = std::env::temp_dir().join(format!("shenhe-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let pipeline = Pipeline::builder(handle.clone())
///     .audit(shenhe::audit::AuditStore::open(dir.join("audit.db"), None)?)
///     .reports(dir.join("reports"))
///     .build()?;
///
/// let post = |t: &str| Post::from_json(&format!(
///     r#"{{"text":"出售冰毒","time":"{t}","poster":{{"user_id":"u1"}}}}"#)).unwrap();
/// let first = pipeline.moderate(&post("2026-11-20T08:00:00+08:00"))?;
/// assert!(first.is_flagged() && first.measures.is_empty());
/// pipeline.moderate(&post("2026-11-20T09:00:00+08:00"))?;
/// let third = pipeline.moderate(&post("2026-11-20T10:00:00+08:00"))?;
/// assert_eq!(third.measures, [Measure::Warn]); // the third offence within 24 hours
///
/// // A post that cannot be decided is refused, never allowed.
/// assert!(pipeline.moderate_json(b"{\"title\":\"no text\"}").is_err());
/// let finished = pipeline.finish()?;
/// assert_eq!(finished.records, 3);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), shenhe::Error>(())
/// ```
pub struct Pipeline {
    engine: EngineHandle,
    limits: Option<Limits>,
    ledger: Option<Arc<Mutex<Ledger>>>,
    audit: Option<Arc<GroupCommit>>,
    reports: Option<Mutex<ReportWriter>>,
    deadline_hours: u32,
    utc_offset_hours: i8,
    review: Option<ReviewHook>,
    /// The review queue whose holds are written in the audit commits.
    queue: Option<Arc<ReviewQueue>>,
    resume_after: Option<u64>,
    /// The resumed output as the checkpoint kept it.
    resume_output: Option<rescan::OutputMark>,
    /// The output file named by [`PipelineBuilder::run_files`]: its size is kept when the
    /// run finishes.
    output: Option<String>,
    /// The checkpoint file, and what it keeps of the input with each line number.
    checkpoint: Option<(PathBuf, Option<InputPrint>)>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("engine", &self.engine)
            .field("escalation", &self.ledger.is_some())
            .field("audit", &self.audit.as_ref().map(|a| a.run()))
            .field("reports", &self.reports.is_some())
            .field("review_hook", &self.review.is_some())
            .finish_non_exhaustive()
    }
}

/// What [`Pipeline::finish`] closed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finished {
    /// Reports listed in the reports directory, when there is one.
    pub reports: Option<u64>,
    /// Records this pipeline committed to the audit store.
    pub records: u64,
    /// The commits (disk flushes) they took.
    pub commits: u64,
}

/// What the audit store's commits have cost so far: [`Pipeline::audit_figures`].
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct AuditFigures {
    /// Commits (disk flushes) made.
    pub commits: u64,
    /// Records they held.
    pub records: u64,
    /// Time spent committing, in seconds (failed commits included).
    pub commit_seconds: f64,
    /// Why the last commit failed, when it did (cleared by the next that succeeds).
    pub last_error: Option<String>,
}

/// The scan every way in shares before the post is settled: the engine's decision (with
/// its times when `timed`), the reader's `warnings` first, the hit list cut to `limits`.
fn scan_post(
    engine: &Engine,
    limits: &Limits,
    post: &Post,
    warnings: Vec<String>,
    timed: bool,
) -> (Decision, KindTimes) {
    let (mut d, times) = if timed {
        engine.scan_timed(post)
    } else {
        (engine.scan(post), KindTimes::default())
    };
    d.prepend_warnings(warnings);
    crate::policy::limit_hits(&mut d, limits.max_hits);
    (d, times)
}

/// The program and its first arguments, to name a store's writer.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().take(3).collect();
    if args.is_empty() {
        "a program".to_owned()
    } else {
        args.join(" ")
    }
}

/// [`Pipeline::forget`] on the ledger itself, for a commit's callback.
fn forget_in<'p>(
    ledger: &Mutex<Ledger>,
    items: impl Iterator<Item = (&'p Post, &'p Decision)>,
    now: jiff::Timestamp,
) {
    let mut ledger = lock(ledger);
    for (post, d) in items {
        if !ledger.was_counted(d) {
            ledger.offences.forget(post, d, now);
        }
    }
}

/// The error line for `post`, refused with `e`.
fn line_error(post: &Post, e: &Error) -> LineError {
    LineError::new(post.id.clone(), e.to_string(), e.kind())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pipeline {
    /// A builder over `engine`: escalation on, no audit store, no reports.
    pub fn builder(engine: EngineHandle) -> PipelineBuilder {
        PipelineBuilder {
            engine,
            escalation: true,
            audit: None,
            reports: None,
            deadline_hours: DEFAULT_DEADLINE_HOURS,
            utc_offset_hours: None,
            limits: None,
            review: None,
            queue: None,
            input: None,
            output: None,
            resume: false,
            checkpoint: None,
        }
    }

    /// The engine handle: [`EngineHandle::reload`] swaps the rules for every later post; the
    /// ledger keeps its history and takes the new rule set's escalation settings.
    pub fn engine(&self) -> &EngineHandle {
        &self.engine
    }

    /// With [`resume`](PipelineBuilder::resume): the last input line the interrupted run
    /// decided (0 when it decided none), or `None` when there was nothing to resume.
    pub fn resume_after(&self) -> Option<u64> {
        self.resume_after
    }

    /// Opens the output file at `path` to continue it after [`Pipeline::resume_after`]'s
    /// line, as [`open_resumed_output`] does; with a checkpoint that kept the output's size
    /// and last bytes, also refuses (leaving it as it is) an output rewritten since the scan
    /// stopped.
    pub fn open_resumed_output(&self, path: &Path) -> Result<std::fs::File> {
        let kept = self
            .checkpoint
            .as_ref()
            .zip(self.resume_output.as_ref())
            .map(|((cp, _), mark)| (cp.as_path(), mark));
        rescan::open_resumed_output_at(path, self.resume_after.unwrap_or(0), kept)
    }

    /// The per-post limits in force: the pipeline's, else its current engine's.
    pub fn limits(&self) -> Limits {
        self.limits_for(&self.engine.load())
    }

    /// Moderates `n` posts read by `read` (in parallel), as
    /// [`moderate_json_batch`](Pipeline::moderate_json_batch) does: the C batch call.
    pub(crate) fn moderate_entries(
        &self,
        n: usize,
        read: impl Fn(usize) -> std::result::Result<(Post, Vec<String>), LineError> + Sync,
    ) -> Vec<std::result::Result<Decision, LineError>> {
        self.batch(n, None, |i| read(i).map(|(p, w)| (Cow::Owned(p), w)))
    }

    fn limits_for(&self, engine: &Engine) -> Limits {
        self.limits.unwrap_or_else(|| engine.limits())
    }

    /// Scans one post, applies escalation, writes its report when one is due, hands a held
    /// post to the review hook, and records the decision, returning once the record is
    /// durable. Fails, with no decision, when the post is over the size limit or when its
    /// report, hand-over or record cannot be written: the caller must not publish it then
    /// (its offence is not counted, so a retry counts it once).
    pub fn moderate(&self, post: &Post) -> Result<Decision> {
        self.moderate_by(post, None)
    }

    /// [`moderate`](Pipeline::moderate) at the request of `caller` (a service's API key or
    /// user name), whom the audit record names.
    pub fn moderate_by(&self, post: &Post, caller: Option<&str>) -> Result<Decision> {
        let _on_the_way = self.audit.as_ref().map(|a| a.enter());
        let engine = self.engine.load();
        let limits = self.limits_for(&engine);
        limits.check(post)?;
        let (mut d, _) = scan_post(&engine, &limits, post, Vec::new(), false);
        self.settle(&engine, &mut [(post, &mut d)], caller)?;
        Ok(d)
    }

    /// Reads one post as JSON (the line contract: [`jsonl::read_post`], the size limit
    /// included) and moderates it. The error is the error line to give back: the post's id
    /// when it can be read, what was wrong, and a kind (`InvalidPost`, `TooLarge`, or
    /// `Audit`/`Io` when the post was decided but could not be recorded or reported).
    pub fn moderate_json(&self, json: &[u8]) -> std::result::Result<Decision, LineError> {
        self.moderate_json_by(json, None)
    }

    /// [`moderate_json`](Pipeline::moderate_json) at the request of `caller`, whom the
    /// audit record names.
    pub fn moderate_json_by(
        &self,
        json: &[u8],
        caller: Option<&str>,
    ) -> std::result::Result<Decision, LineError> {
        let _on_the_way = self.audit.as_ref().map(|a| a.enter());
        let engine = self.engine.load();
        let limits = self.limits_for(&engine);
        let (post, warnings) = jsonl::read_post(json, &limits)?;
        let (mut d, _) = scan_post(&engine, &limits, &post, warnings, false);
        self.settle(&engine, &mut [(&post, &mut d)], caller)
            .map_err(|e| LineError::new(post.id.clone(), e.to_string(), e.kind()))?;
        Ok(d)
    }

    /// [`moderate_json_by`](Pipeline::moderate_json_by) for a caller that must not wait for
    /// the disk (an async service's task): the scan, escalation, report and review hand-over
    /// happen on this thread, the commit is shared with whoever else is committing, and
    /// `done` gets the outcome once the record is durable, on the thread that committed it
    /// (keep it short: a channel send). Without an audit store, and for a post refused
    /// before the commit, `done` is called here, before this returns. Exactly once either
    /// way; a failed commit gives the error, and the post's offence is not counted.
    pub fn moderate_json_then(
        &self,
        json: &[u8],
        caller: Option<&str>,
        done: impl FnOnce(Moderated) + Send + 'static,
    ) {
        let _on_the_way = self.audit.as_ref().map(|a| a.enter());
        let engine = self.engine.load();
        let limits = self.limits_for(&engine);
        let (post, warnings) = match jsonl::read_post(json, &limits) {
            Ok(read) => read,
            Err(e) => return done(Err(e)),
        };
        let (mut d, _) = scan_post(&engine, &limits, &post, warnings, false);
        let now = jiff::Timestamp::now();
        let ticket = self.escalate(&engine, std::iter::once((&post, &mut d)), now);
        let records = match self.hand_over(&engine, &mut [(&post, &mut d)], now, caller) {
            Ok(records) => records,
            Err(e) => {
                drop(ticket);
                self.forget(&[(&post, &mut d)], now);
                return done(Err(line_error(&post, &e)));
            }
        };
        let (Some(audit), Some(ticket)) = (&self.audit, ticket) else {
            return done(Ok(d));
        };
        let ledger = self.ledger.clone();
        audit.submit(
            ticket,
            records,
            Box::new(move |outcome| match outcome {
                Ok(()) => done(Ok(d)),
                Err(e) => {
                    if let Some(ledger) = &ledger {
                        forget_in(ledger, std::iter::once((&post, &d)), now);
                    }
                    done(Err(line_error(&post, &e)))
                }
            }),
        );
    }

    /// Moderates many posts: scanned in parallel, then escalated, recorded (one commit) and
    /// reported in input order. One result per post, in order; a failed record or report
    /// fails every post of the batch.
    pub fn moderate_batch(&self, posts: &[Post]) -> Vec<Result<Decision>> {
        self.batch(posts.len(), None, |i| {
            Ok((Cow::Borrowed(&posts[i]), Vec::new()))
        })
        .into_iter()
        .map(|r| r.map_err(|e| Error::new(e.kind, e.message)))
        .collect()
    }

    /// [`moderate_batch`](Pipeline::moderate_batch) over posts given as JSON, each read as
    /// [`moderate_json`](Pipeline::moderate_json) reads one.
    pub fn moderate_json_batch(
        &self,
        lines: &[&[u8]],
    ) -> Vec<std::result::Result<Decision, LineError>> {
        self.moderate_json_batch_by(lines, None)
    }

    /// [`moderate_json_batch`](Pipeline::moderate_json_batch) at the request of `caller`,
    /// whom the audit records name.
    pub fn moderate_json_batch_by(
        &self,
        lines: &[&[u8]],
        caller: Option<&str>,
    ) -> Vec<std::result::Result<Decision, LineError>> {
        let engine = self.engine.load();
        let limits = self.limits_for(&engine);
        self.batch(lines.len(), caller, |i| {
            jsonl::read_post(lines[i], &limits).map(|(p, w)| (Cow::Owned(p), w))
        })
    }

    fn batch<'a>(
        &self,
        n: usize,
        caller: Option<&str>,
        read: impl Fn(usize) -> std::result::Result<(Cow<'a, Post>, Vec<String>), LineError> + Sync,
    ) -> Vec<std::result::Result<Decision, LineError>> {
        let _on_the_way = self.audit.as_ref().map(|a| a.enter());
        let engine = self.engine.load();
        let limits = self.limits_for(&engine);
        let mut scanned: Vec<std::result::Result<(Cow<'a, Post>, Decision), LineError>> = (0..n)
            .into_par_iter()
            .map(|i| {
                let (post, warnings) = read(i)?;
                limits
                    .check(&post)
                    .map_err(|e| LineError::new(post.id.clone(), e.message(), e.kind()))?;
                let (d, _) = scan_post(&engine, &limits, &post, warnings, false);
                Ok((post, d))
            })
            .collect();
        let mut items: Vec<(&Post, &mut Decision)> = scanned
            .iter_mut()
            .flatten()
            .map(|(p, d)| (&**p, d))
            .collect();
        let settled = self.settle(&engine, &mut items, caller);
        drop(items);
        scanned
            .into_iter()
            .map(|r| {
                let (post, d) = r?;
                match &settled {
                    Ok(()) => Ok(d),
                    Err(e) => Err(LineError::new(post.id.clone(), e.to_string(), e.kind())),
                }
            })
            .collect()
    }

    /// Everything after the scan, for posts in order: escalation and the place in the
    /// chain, the records (prepared here), the reports and the review hook, then the commit
    /// (shared with whoever else is committing).
    fn settle(
        &self,
        engine: &Engine,
        items: &mut [(&Post, &mut Decision)],
        caller: Option<&str>,
    ) -> Result<()> {
        let now = jiff::Timestamp::now();
        let ticket = self.escalate(engine, items.iter_mut().map(|(p, d)| (*p, &mut **d)), now);
        let kept = self.keep(engine, items, ticket, now, caller);
        if kept.is_err() {
            self.forget(items, now);
        }
        kept
    }

    /// The hand-over, then the commit.
    fn keep(
        &self,
        engine: &Engine,
        items: &mut [(&Post, &mut Decision)],
        ticket: Option<Ticket>,
        now: jiff::Timestamp,
        caller: Option<&str>,
    ) -> Result<()> {
        let records = self.hand_over(engine, items, now, caller)?;
        if let (Some(audit), Some(ticket)) = (&self.audit, ticket) {
            audit.commit(ticket, records)?;
        }
        Ok(())
    }

    /// Everything before the commit: the records (prepared here), the reports and the
    /// review hook. Reports and the hook come before the record: after a crash or a failed
    /// commit the post is decided again and they come again (a report twice, never none).
    /// A review queue's hold instead rides with the record ([`PipelineBuilder::review_queue`]).
    fn hand_over(
        &self,
        engine: &Engine,
        items: &mut [(&Post, &mut Decision)],
        now: jiff::Timestamp,
        caller: Option<&str>,
    ) -> Result<Vec<PendingRecord>> {
        let mut holds = Vec::new();
        for (post, d) in items.iter_mut() {
            self.report(engine, post, d, now)?;
            holds.push(self.hand_to_review(post, d, now)?);
        }
        let records = self.prepare(items.iter().map(|(p, d)| (None, *p, &**d)), caller)?;
        Ok(records
            .into_iter()
            .zip(holds)
            .map(|(record, hold)| match hold {
                Some(hold) => record.with_hold(hold),
                None => record,
            })
            .collect())
    }

    /// Takes back the offences [`escalate`](Pipeline::escalate) counted for posts whose
    /// decisions did not take effect, so that the caller's retry counts them once.
    fn forget(&self, items: &[(&Post, &mut Decision)], now: jiff::Timestamp) {
        if let Some(ledger) = &self.ledger {
            forget_in(ledger, items.iter().map(|(p, d)| (*p, &**d)), now);
        }
    }

    /// Applies escalation to `items` in order, under the ledger's lock, and takes their
    /// place in the audit chain while holding it (so the chain keeps escalation's order).
    fn escalate<'p>(
        &self,
        engine: &Engine,
        items: impl Iterator<Item = (&'p Post, &'p mut Decision)>,
        now: jiff::Timestamp,
    ) -> Option<Ticket> {
        let Some(ledger) = &self.ledger else {
            return self.audit.as_ref().map(|a| a.ticket());
        };
        let mut ledger = lock(ledger);
        if !Arc::ptr_eq(&ledger.ruleset, engine.rules().info()) {
            ledger
                .offences
                .set_escalation(engine.rules().policy().escalation.clone());
            ledger.ruleset = engine.rules().info().clone();
        }
        for (post, d) in items {
            if ledger.was_counted(d) {
                ledger.offences.apply_counted(post, d, now);
            } else {
                ledger.offences.apply(post, d, now);
            }
        }
        self.audit.as_ref().map(|a| a.ticket())
    }

    /// The audit records of decided posts (none without a store); `line` is each post's
    /// input line when it has one.
    fn prepare<'p>(
        &self,
        items: impl Iterator<Item = (Option<u64>, &'p Post, &'p Decision)>,
        caller: Option<&str>,
    ) -> Result<Vec<PendingRecord>> {
        let Some(audit) = &self.audit else {
            return Ok(Vec::new());
        };
        items
            .map(|(line, p, d)| audit.preparer().prepare_by(line, p, d, caller))
            .collect()
    }

    fn report(
        &self,
        engine: &Engine,
        post: &Post,
        d: &Decision,
        now: jiff::Timestamp,
    ) -> Result<()> {
        let (Some(w), true) = (&self.reports, d.report) else {
            return Ok(());
        };
        let report = Report::new(
            post,
            d,
            engine.rules(),
            now,
            self.deadline_hours,
            self.utc_offset_hours,
        );
        lock(w).write(&report).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("the report could not be written: {e}"),
            )
        })?;
        Ok(())
    }

    /// Gives a held post its review id: from the hook, or reserved in the queue whose row
    /// is then written with the post's record (returned here).
    fn hand_to_review(
        &self,
        post: &Post,
        d: &mut Decision,
        now: jiff::Timestamp,
    ) -> Result<Option<HoldRow>> {
        if d.action != Action::Review {
            return Ok(None);
        }
        if let Some(queue) = &self.queue {
            let (id, row) = queue.reserve(post, d, now)?;
            d.review_id = Some(id);
            return Ok(row);
        }
        if let Some(hook) = &self.review {
            d.review_id = hook(post, d)?;
        }
        Ok(None)
    }

    /// Ends the audit run (marks it finished: a later `--resume` over the same input,
    /// unchanged or grown, continues after its last line; over other contents it starts
    /// afresh) and writes
    /// the reports index. Call it once, when no more posts come; moderating afterwards
    /// still records and reports, under the finished run.
    pub fn finish(&self) -> Result<Finished> {
        let mut finished = Finished::default();
        if let Some(a) = &self.audit {
            let output_bytes = self.output.as_deref().and_then(output_len);
            a.store().finish_run_with_output(a.run(), output_bytes)?;
            (finished.commits, finished.records) = a.counts();
        }
        if let Some(w) = &self.reports {
            let n = lock(w).flush().map_err(|e| {
                Error::new(ErrorKind::Io, format!("writing the reports index: {e}"))
            })?;
            finished.reports = Some(n);
        }
        Ok(finished)
    }

    /// Records `reviewer`'s verdict on a held post in the audit chain (who, when, which
    /// verdict, the note: an `event` of kind `verdict`, with the post, the hits judged and
    /// the action the verdict leaves: `approve` → allow, `remove` → delete, `report` →
    /// delete and report), and for `report` writes the report the post now owes, before the
    /// record, as a reporting rule's would be. Returns once the record is durable. The
    /// queue's own state ([`ReviewQueue::decide`](crate::review::ReviewQueue::decide)) comes
    /// after: a crash between the two leaves the verdict in the evidence and the item open,
    /// never the reverse.
    pub fn record_verdict(
        &self,
        item: &crate::review::ReviewItem,
        verdict: crate::review::Verdict,
        reviewer: &str,
        note: Option<&str>,
    ) -> Result<()> {
        use crate::review::Verdict;
        let Some(audit) = &self.audit else {
            return Err(Error::new(
                ErrorKind::Audit,
                "a verdict is recorded in the audit store: this pipeline has none",
            ));
        };
        let now = jiff::Timestamp::now();
        let mut d = item.decision.clone();
        d.measures.clear();
        d.review_id = Some(item.id);
        (d.action, d.report) = match verdict {
            Verdict::Approve => (Action::Allow, false),
            Verdict::Remove => (Action::Delete, false),
            Verdict::Report => (Action::Delete, true),
        };
        if d.report {
            if self.reports.is_none() {
                return Err(Error::new(
                    ErrorKind::InvalidValue,
                    "a report verdict writes a report: give the service a reports directory",
                ));
            }
            self.report(&self.engine.load(), &item.post, &d, now)?;
        }
        let event = serde_json::json!({
            "kind": "verdict",
            "review_id": item.id,
            "verdict": verdict.as_str(),
            "note": note,
            "machine_action": item.decision.action.as_str(),
        });
        let record = audit
            .preparer()
            .prepare_act(&item.post, &d, reviewer, &event)?;
        audit.commit(audit.ticket(), vec![record])
    }

    /// Records an administrative act in the audit chain (a rule reload, say): `event` is a
    /// JSON object with its `kind`, `caller` who did it; the record carries the rule set in
    /// force and no post. Returns once durable; without a store there is nothing to record.
    pub fn record_event(&self, caller: &str, event: &serde_json::Value) -> Result<()> {
        self.record_events(caller, std::slice::from_ref(event))
    }

    /// [`record_event`](Pipeline::record_event) for several acts of one caller, in one
    /// commit: all are recorded or none.
    pub fn record_events(&self, caller: &str, events: &[serde_json::Value]) -> Result<()> {
        let (Some(audit), false) = (&self.audit, events.is_empty()) else {
            return Ok(());
        };
        let post = Post::default();
        let d = self.engine.load().scan(&post);
        let records = events
            .iter()
            .map(|e| audit.preparer().prepare_act(&post, &d, caller, e))
            .collect::<Result<Vec<_>>>()?;
        audit.commit(audit.ticket(), records)
    }

    /// Deletes the audit store's days older than `max_days` at `now`, as
    /// [`AuditStore::prune`](crate::audit::AuditStore::prune) does (whole days, holds kept,
    /// never a day younger than the floor; decided review items in the same file too),
    /// through the pipeline's own connection: for a process that holds the store's writer
    /// lock, as a service does, which `shenhe audit prune` cannot take meanwhile. One step
    /// at a time ([`AuditStore::prune_step`](crate::audit::AuditStore::prune_step)): commits
    /// wait for a step, not for the whole prune. Returns what was deleted and how the prune
    /// ended: a step that fails stops it, and the steps before it stay done (the next prune
    /// goes on from there). `None` without a store.
    pub fn prune_audit(
        &self,
        now: jiff::Timestamp,
        max_days: u32,
    ) -> Option<(crate::audit::Pruned, Result<()>)> {
        let a = self.audit.as_ref()?;
        let mut pruning = match a.store().start_prune(now, max_days) {
            Ok(p) => p,
            Err(e) => return Some((crate::audit::Pruned::default(), Err(e))),
        };
        // The store is locked for one step at a time; the pause lets the commits waiting
        // for it go first (a mutex does not queue its waiters).
        let outcome = loop {
            match a.store().prune_step(&mut pruning) {
                Ok(true) => std::thread::sleep(PRUNE_PAUSE),
                Ok(false) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        Some((pruning.into_done(), outcome))
    }

    /// The last record of an act of `kind` in the audit store (an `event` with that
    /// `kind`), if any; none without a store.
    pub fn last_event(&self, kind: &str) -> Result<Option<crate::audit::AuditRecord>> {
        match &self.audit {
            None => Ok(None),
            Some(a) => a.store().last_event(kind),
        }
    }

    /// The audit store's commit figures, when a store is attached (for metrics and a
    /// service's readiness).
    pub fn audit_figures(&self) -> Option<AuditFigures> {
        self.audit.as_ref().map(|a| a.figures())
    }

    /// The checkpoint file, when one is kept, the input's print it keeps and the output
    /// file whose size it keeps.
    fn checkpoint(&self) -> Option<rescan::CheckpointTo<'_>> {
        let output = self.output.as_deref().filter(|&o| o != "-").map(Path::new);
        self.checkpoint
            .as_ref()
            .map(|(path, print)| (path.as_path(), print.as_ref(), output))
    }
}
