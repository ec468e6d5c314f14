//! Group commit: many callers, one audit store, one disk flush per group.
//!
//! Each caller takes a [`Ticket`] at the moment its decision's place in the chain is fixed
//! (under the offence ledger's lock, so the chain's order is the order escalation counted),
//! prepares its records on its own thread (serialising, sealing), and hands them in. Whoever
//! hands in the next ticket due while nobody is committing becomes the leader: it takes every
//! ticket ready in order, commits them in one transaction, tells each owner the outcome, and
//! steps down. Callers that arrive while a commit is under way wait and go into the next
//! one, so N concurrent callers share about one flush instead of paying N. A caller returns
//! only when its own records are committed (or their commit failed).
//!
//! Two things make the groups large on a machine with few cores. Callers sleep on their own
//! (parked) and are woken one by one: the owners of the tickets just committed, and one
//! caller to lead the next group; a condition variable woke all of them at every commit.
//! And a leader that knows other callers are on their way (inside the pipeline, scanning
//! or preparing: [`GroupCommit::enter`]) waits for them, at most [`GATHER`], as
//! PostgreSQL's `commit_delay` does; never when it is the only caller, so a lone caller
//! pays one flush as before. Without the wait, callers fall into two cohorts that
//! alternate, each half of them per commit (measured: 4.2 records per commit with 8
//! threads; with it, 7.9).
//!
//! A caller that must not block (an async service's task) hands its records in with
//! [`GroupCommit::submit`] and a callback instead: a committer thread, started with the
//! first such call, leads the groups nobody else leads and calls each callback with its
//! ticket's outcome. Sync and async callers share the same queue and the same commits.
//!
//! A ticket dropped without being handed in (a panic between taking and handing in) is
//! handed in empty by its `Drop`, so the tickets after it never wait forever.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::audit::{AuditStore, PendingRecord, Preparer};
use crate::error::{Error, ErrorKind, Result};

/// The audit store of a pipeline, the run it records under, and the queue in front of it.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    store: Mutex<AuditStore>,
    preparer: Preparer,
    run: i64,
    queue: Mutex<Queue>,
    /// Callers inside the pipeline now ([`GroupCommit::enter`]).
    in_flight: AtomicUsize,
}

/// The longest a leader waits for callers on their way before it commits: about one
/// flush on the disks this was measured on (300 µs), the best of 0, 150 and 300 µs there.
const GATHER: Duration = Duration::from_micros(300);

/// What an async caller is told when its ticket's group is committed (or failed).
pub(crate) type Done = Box<dyn FnOnce(Result<()>) + Send>;

/// How long an idle committer thread sleeps before it looks whether its pipeline is gone.
const COMMITTER_IDLE: Duration = Duration::from_millis(250);

/// A caller inside the pipeline, counted until dropped.
pub(crate) struct InFlight<'a>(&'a GroupCommit);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Queue {
    /// Tickets handed out so far (the next ticket's number).
    issued: u64,
    /// Every ticket below this one is committed (or failed).
    done: u64,
    /// Records handed in, waiting for the tickets before them.
    ready: BTreeMap<u64, Vec<PendingRecord>>,
    /// Outcomes not yet picked up by their owners.
    outcomes: HashMap<u64, Result<()>>,
    /// Tickets handed in empty by `Drop`: nobody picks up their outcome.
    abandoned: HashSet<u64>,
    /// Callers asleep until their outcome is posted, by ticket.
    parked: HashMap<u64, std::thread::Thread>,
    /// Callbacks of async callers ([`GroupCommit::submit`]), by ticket.
    callbacks: HashMap<u64, Done>,
    /// The committer thread, when it is idle (asleep until woken).
    committer: Option<std::thread::Thread>,
    /// Whether the committer thread has been started.
    committer_started: bool,
    /// A caller about to lead, waiting a moment for callers on their way.
    gathering: Option<std::thread::Thread>,
    /// Someone is committing.
    leading: bool,
    /// Commits made and records committed (for figures and tests).
    commits: u64,
    records: u64,
    /// Time spent in commits, and the last commit's failure (cleared by a success).
    commit_time: Duration,
    last_error: Option<String>,
}

/// A place in the chain, taken in order, handed in with [`GroupCommit::commit`].
#[derive(Debug)]
pub(crate) struct Ticket {
    number: u64,
    owner: Option<Arc<GroupCommit>>,
}

impl GroupCommit {
    pub(crate) fn new(store: AuditStore, run: i64) -> GroupCommit {
        GroupCommit {
            preparer: store.preparer(),
            store: Mutex::new(store),
            run,
            queue: Mutex::new(Queue::default()),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// What prepares records on any thread.
    pub(crate) fn preparer(&self) -> &Preparer {
        &self.preparer
    }

    /// The run records are written under.
    pub(crate) fn run(&self) -> i64 {
        self.run
    }

    /// The store, for what is not a record (finishing the run, reading offences). Waits for
    /// a commit under way.
    pub(crate) fn store(&self) -> MutexGuard<'_, AuditStore> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a caller as on its way to a commit until the guard is dropped.
    pub(crate) fn enter(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// The next place in the chain.
    pub(crate) fn ticket(self: &Arc<Self>) -> Ticket {
        let mut q = self.queue();
        let number = q.issued;
        q.issued += 1;
        Ticket {
            number,
            owner: Some(self.clone()),
        }
    }

    /// Hands in `records` for `ticket` and returns once they are committed, in ticket order
    /// after every earlier ticket's records: `Ok` when they are durable, the store's error
    /// when their group's commit failed (none of that group is recorded then).
    pub(crate) fn commit(&self, mut ticket: Ticket, records: Vec<PendingRecord>) -> Result<()> {
        ticket.owner = None;
        let number = ticket.number;
        let mut q = self.queue();
        q.ready.insert(number, records);
        if let Some(g) = &q.gathering {
            g.unpark();
        }
        loop {
            if let Some(outcome) = q.outcomes.remove(&number) {
                q.parked.remove(&number);
                return outcome;
            }
            if !q.leading && q.ready.contains_key(&q.done) {
                q = self.gather(q);
                if !q.leading {
                    q = self.lead(q);
                }
                continue;
            }
            // Asleep until a leader posts this ticket's outcome or hands this thread the
            // lead: woken one by one, never all at once (on two cores a herd of woken
            // callers was what kept the next group small).
            q.parked.insert(number, std::thread::current());
            drop(q);
            std::thread::park();
            q = self.queue();
        }
    }

    /// Hands in `records` for `ticket` without waiting: `done` is called with their outcome
    /// once their group is committed, on the thread that committed it (keep it short: it
    /// runs before the next group starts).
    pub(crate) fn submit(
        self: &Arc<Self>,
        mut ticket: Ticket,
        records: Vec<PendingRecord>,
        done: Done,
    ) {
        ticket.owner = None;
        let number = ticket.number;
        let mut q = self.queue();
        q.ready.insert(number, records);
        q.callbacks.insert(number, done);
        if let Some(g) = &q.gathering {
            g.unpark();
        }
        if !q.committer_started {
            // Started whoever leads now: a leader that finds no committer to hand the next
            // group to (all its tickets async) would leave it waiting.
            q.committer_started = true;
            let weak = Arc::downgrade(self);
            let spawned = std::thread::Builder::new()
                .name("shenhe-commit".into())
                .spawn(move || committer(weak));
            if spawned.is_ok() {
                // Its first look at the queue finds this ticket.
                return;
            }
            // No thread to be had (the system is out of them): lead this group here when
            // nobody else does, as a sync caller would.
            q.committer_started = false;
            if !q.leading && q.ready.contains_key(&q.done) {
                drop(self.lead(q));
            }
            return;
        }
        if q.leading {
            // The leader wakes the committer after its commit when this group is due.
            return;
        }
        if let Some(c) = q.committer.take() {
            c.unpark();
        }
    }

    /// Waits, at most [`GATHER`], while callers inside the pipeline have not handed in yet
    /// (they will be in this group); returns at once for a lone caller.
    fn gather<'a>(&'a self, mut q: MutexGuard<'a, Queue>) -> MutexGuard<'a, Queue> {
        let deadline = Instant::now() + GATHER;
        q.leading = true;
        while q.ready.len() < self.in_flight.load(Ordering::Relaxed) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            q.gathering = Some(std::thread::current());
            drop(q);
            std::thread::park_timeout(left);
            q = self.queue();
            q.gathering = None;
        }
        q.leading = false;
        q
    }

    /// Commits every ticket ready in order, as one transaction; returns the queue locked.
    fn lead<'a>(&'a self, mut q: MutexGuard<'a, Queue>) -> MutexGuard<'a, Queue> {
        q.leading = true;
        let (mut numbers, mut records) = (Vec::new(), Vec::new());
        loop {
            let next = q.done;
            let Some(r) = q.ready.remove(&next) else {
                break;
            };
            numbers.push(q.done);
            records.extend(r);
            q.done += 1;
        }
        drop(q);
        let count = records.len() as u64;
        let started = Instant::now();
        // A panic inside the store must not leave the queue led forever: it fails the group.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.store()
                .append_prepared(self.run, records, jiff::Timestamp::now())
        }))
        .unwrap_or_else(|_| {
            Err(Error::new(
                ErrorKind::Audit,
                "internal error while committing (a panic, caught): these records are not stored",
            ))
        });
        let mut q = self.queue();
        q.commit_time += started.elapsed();
        match &outcome {
            Ok(()) => {
                q.last_error = None;
                if count > 0 {
                    q.commits += 1;
                    q.records += count;
                }
            }
            Err(e) => q.last_error = Some(e.to_string()),
        }
        let mut told = Vec::new();
        for n in numbers {
            if let Some(done) = q.callbacks.remove(&n) {
                told.push(done);
            } else if !q.abandoned.remove(&n) {
                q.outcomes.insert(n, outcome.clone());
                if let Some(owner) = q.parked.remove(&n) {
                    owner.unpark();
                }
            }
        }
        q.leading = false;
        // The next group is ready to go: wake one of its callers to lead it, or the
        // committer when its callers are async.
        if q.ready.contains_key(&q.done) {
            if let Some(next) = q.ready.keys().find_map(|n| q.parked.get(n)) {
                next.unpark();
            } else if let Some(c) = q.committer.take() {
                c.unpark();
            }
        }
        if told.is_empty() {
            return q;
        }
        drop(q);
        for done in told {
            done(outcome.clone());
        }
        self.queue()
    }

    /// Hands in an abandoned ticket: nothing to record, and nobody waits for the outcome.
    fn abandon(&self, number: u64) {
        let mut q = self.queue();
        q.ready.insert(number, Vec::new());
        q.abandoned.insert(number);
        if !q.leading && q.ready.contains_key(&q.done) {
            drop(self.lead(q));
        }
    }

    /// Commits made so far and the records they held.
    pub(crate) fn counts(&self) -> (u64, u64) {
        let q = self.queue();
        (q.commits, q.records)
    }

    /// Commits, records, time spent committing and the last failure, for a service's
    /// metrics and readiness.
    pub(crate) fn figures(&self) -> super::AuditFigures {
        let q = self.queue();
        super::AuditFigures {
            commits: q.commits,
            records: q.records,
            commit_seconds: q.commit_time.as_secs_f64(),
            last_error: q.last_error.clone(),
        }
    }
}

/// The committer thread: leads every group that is due while nobody else does, and sleeps
/// otherwise. It holds its pipeline's queue only while working, and ends once the pipeline
/// is gone.
fn committer(gc: Weak<GroupCommit>) {
    loop {
        let Some(gc) = gc.upgrade() else { return };
        let mut q = gc.queue();
        if !q.leading && q.ready.contains_key(&q.done) {
            q = gc.gather(q);
            if !q.leading {
                drop(gc.lead(q));
            }
            continue;
        }
        q.committer = Some(std::thread::current());
        drop(q);
        drop(gc);
        std::thread::park_timeout(COMMITTER_IDLE);
    }
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("issued", &self.issued)
            .field("done", &self.done)
            .field("ready", &self.ready.len())
            .field("commits", &self.commits)
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.take() {
            owner.abandon(self.number);
        }
    }
}
