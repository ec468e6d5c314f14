//! Checkpoints on a thread of their own, so that a commit does not wait for one.
//!
//! A store's records go into SQLite's write-ahead log (WAL) first; a checkpoint copies them
//! into the database file and flushes it, and the log starts again from its beginning once
//! everything in it has been copied. SQLite's own automatic checkpoint runs inside the
//! commit that makes the log long enough (every 1,000 pages here), so that commit's callers
//! wait for copying about 4 MiB and a second flush: under a service's load the writer spent
//! a large part of its time there (without checkpoints at all, for comparison only, 1.2 to
//! 1.7× the posts per second with a sealed store).
//!
//! The [`Checkpointer`] copies the log into the database file from a connection of its
//! own, in SQLite's `PASSIVE` mode, which neither waits for the writer nor makes it wait: a
//! commit appends to the log while the copy is under way. The writer's automatic
//! checkpoint stays as it was; when it comes, nearly everything is copied already, and it
//! copies the few pages left and lets the log start again. Nothing about durability
//! changes: a record is durable when its commit has flushed the log, as before, and a
//! checkpoint cut short (the process killed) is finished by the next one. As with any
//! SQLite connection, a store must not be carried across a `fork` (the child has no
//! checkpointer thread to stop).

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

/// The shortest time between two passes: each pass flushes the database file, and commits
/// come far more often than that is worth.
const PASS_GAP: Duration = Duration::from_millis(5);

#[derive(Default)]
struct State {
    /// A commit came since the last pass began.
    due: bool,
    /// The store is closing.
    stop: bool,
}

/// A thread that checkpoints a store's log while it is written (see the module's notes).
pub(crate) struct Checkpointer {
    shared: Arc<(Mutex<State>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer").finish_non_exhaustive()
    }
}

impl Checkpointer {
    /// Starts the thread with a connection of its own to the store at `path`; `None` when
    /// either cannot be had (the writer's own checkpoints then do all the copying, as they
    /// always did).
    pub(crate) fn start(path: &Path) -> Option<Checkpointer> {
        // SQLite before 3.52.0 (3.7.0-3.51.2) has a rare WAL-reset bug that needs a second
        // connection checkpointing while the writer commits, which is what this is: with an
        // older SQLite (a build linked to the system's), the writer checkpoints alone. The
        // bundled SQLite is newer.
        if rusqlite::version_number() < 3_052_000 {
            return None;
        }
        // The store's file as it was opened (`path` is SQLite's absolute name for it), never
        // created: a store moved or removed since gets no checkpointer, not a new file.
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ok()?;
        // The flushes of the database file it copies into: as the writer's.
        conn.pragma_update(None, "synchronous", "FULL").ok()?;
        let shared = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("shenhe-checkpoint".into())
            .spawn(move || run(&conn, &theirs))
            .ok()?;
        Some(Checkpointer {
            shared,
            thread: Some(thread),
        })
    }

    /// Says that a commit has added to the log.
    pub(crate) fn poke(&self) {
        let (state, wake) = &*self.shared;
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        if !s.due {
            s.due = true;
            wake.notify_one();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        {
            let (state, wake) = &*self.shared;
            state.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
            wake.notify_one();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(conn: &Connection, shared: &(Mutex<State>, Condvar)) {
    let (state, wake) = shared;
    loop {
        {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            while !s.due && !s.stop {
                s = wake.wait(s).unwrap_or_else(|e| e.into_inner());
            }
            if s.stop {
                // The writer's connection, closed after this one, checkpoints what is left.
                return;
            }
            s.due = false;
        }
        // A failure (the disk full, a lock held by another process's checkpoint) leaves the
        // copying to the next pass or to the writer's own checkpoint: nothing is lost.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        // Commits that come during the gap are copied by the next pass, all together.
        let deadline = Instant::now() + PASS_GAP;
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        while !s.stop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            s = wake
                .wait_timeout(s, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}
