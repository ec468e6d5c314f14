//! The review queue: posts held for people (`review`), the verdicts people give, and the
//! callbacks that tell the forum.
//!
//! The queue lives beside the audit records, in the same SQLite file (its own tables: the
//! records stay append-only and chained; the queue's rows change as items are claimed and
//! decided). A held post enters through the pipeline's review hook ([`ReviewQueue::hook`]),
//! once per post id however often it is decided again; the decision then carries its
//! `review_id`. A verdict is made once ([`ReviewQueue::decide`]; a second is a conflict),
//! and when the forum has a callback address, the verdict's callback is queued in the same
//! transaction (an outbox that survives restarts) for whoever delivers callbacks.
//!
//! The verdict's audit record (who, when, which verdict, why) and the report a `report`
//! verdict owes go through the pipeline ([`Pipeline::record_verdict`](crate::Pipeline::record_verdict)),
//! so this module only keeps the queue: it writes no audit records and no files of its own.
//! Personal fields of the poster are sealed with the store's key, as in the records.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::audit::AuditKey;
use crate::error::{Error, ErrorKind, Result};
use crate::pipeline::ReviewHook;
use crate::post::{Decision, Post, PostId};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS reviews (
    id INTEGER PRIMARY KEY,
    post_key TEXT UNIQUE,
    post_id TEXT,
    board TEXT,
    user_id TEXT,
    categories TEXT NOT NULL,
    action TEXT NOT NULL,
    post TEXT NOT NULL,
    decision TEXT NOT NULL,
    created TEXT NOT NULL,
    deadline TEXT NOT NULL,
    status TEXT NOT NULL,
    claimed_by TEXT,
    claimed_at TEXT,
    verdict TEXT,
    reviewer TEXT,
    note TEXT,
    decided_at TEXT
);
CREATE INDEX IF NOT EXISTS reviews_status ON reviews (status, id);
CREATE TABLE IF NOT EXISTS review_outbox (
    id INTEGER PRIMARY KEY,
    review_id INTEGER NOT NULL,
    body TEXT NOT NULL,
    created TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at TEXT NOT NULL,
    delivered_at TEXT,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS review_outbox_due ON review_outbox (delivered_at, next_at);
";

/// Hours a held post may wait for a verdict by default.
pub const DEFAULT_REVIEW_HOURS: u32 = 24;

/// Where an item of the queue stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting for a reviewer.
    Pending,
    /// A reviewer has taken it.
    Claimed,
    /// A verdict was given.
    Decided,
}

impl Status {
    /// The status as the API and the store spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Claimed => "claimed",
            Status::Decided => "decided",
        }
    }

    /// Reads `pending`, `claimed` or `decided`.
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "pending" => Some(Status::Pending),
            "claimed" => Some(Status::Claimed),
            "decided" => Some(Status::Decided),
            _ => None,
        }
    }
}

/// A reviewer's verdict on a held post.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Publish it.
    Approve,
    /// Delete it.
    Remove,
    /// Delete it and report it to the authorities.
    Report,
}

impl Verdict {
    /// The verdict as the API and the store spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Remove => "remove",
            Verdict::Report => "report",
        }
    }

    /// Reads `approve`, `remove` or `report`.
    pub fn parse(s: &str) -> Option<Verdict> {
        match s {
            "approve" => Some(Verdict::Approve),
            "remove" => Some(Verdict::Remove),
            "report" => Some(Verdict::Report),
            _ => None,
        }
    }
}

/// One item of the queue, as read back. The post's personal fields are in `post.poster`
/// only when the queue could open them (see [`ReviewQueue::open`]).
#[derive(Clone, Debug, Serialize)]
pub struct ReviewItem {
    /// The review id (what the decision's `review_id` says).
    pub id: i64,
    /// The post as held.
    pub post: Post,
    /// The machine's decision.
    pub decision: Decision,
    /// Where it stands.
    pub status: Status,
    /// When it was held (RFC 3339).
    pub created: String,
    /// By when a verdict is due (RFC 3339).
    pub deadline: String,
    /// Who claimed it, and when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    /// When it was claimed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<String>,
    /// The verdict, once given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Who gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reviewer: Option<String>,
    /// The reviewer's note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When it was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
}

/// Filters of [`ReviewQueue::list`]; all given ones must match.
#[derive(Clone, Debug, Default)]
pub struct ReviewFilter {
    /// Items in this state.
    pub status: Option<Status>,
    /// Items whose decision hit this category.
    pub category: Option<u16>,
    /// Items posted on this board.
    pub board: Option<String>,
    /// At most this many, oldest first (default 100).
    pub limit: Option<usize>,
}

/// A callback waiting to be delivered: the body to POST and how often it was tried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Callback {
    /// The outbox entry.
    pub id: i64,
    /// The review it tells of.
    pub review_id: i64,
    /// The JSON body.
    pub body: String,
    /// Attempts so far.
    pub attempts: u32,
}

/// The review queue over an audit store's file. `Send + Sync`: one per service, shared.
pub struct ReviewQueue {
    conn: Mutex<Connection>,
    /// The file, to tell whether an audit store is in the same one.
    path: std::path::PathBuf,
    key: Option<AuditKey>,
    hours: u32,
    callbacks: bool,
    /// Ids handed out for holds not yet written (see [`ReviewQueue::reserve`]).
    reserved: Arc<Mutex<Reserved>>,
}

/// Review ids handed out ahead of their rows: the last one, and those of post ids whose
/// rows are on their way, with how many are.
#[derive(Default)]
struct Reserved {
    last: i64,
    pending: std::collections::HashMap<String, (i64, usize)>,
}

/// A held post's row in the queue, written in the same transaction as the post's audit
/// record (see [`ReviewQueue::reserve`]). Dropping it, written or not, ends its
/// reservation: write it, then drop it once the transaction is over.
pub(crate) struct HoldRow {
    reserved: Arc<Mutex<Reserved>>,
    id: i64,
    post_key: Option<String>,
    board: Option<String>,
    user_id: Option<String>,
    categories: String,
    action: &'static str,
    post: String,
    decision: String,
    created: String,
    deadline: String,
}

impl HoldRow {
    /// Writes the row on `conn` (inside the caller's transaction). A row for the same post
    /// id already there (another decision of it, committed first) is left as it is when
    /// it has this id; any other clash is an error, which fails the transaction (another
    /// writer numbered a hold of its own with this id, or held the post under another).
    pub(crate) fn write(&self, conn: &Connection) -> Result<()> {
        let written = conn
            .prepare_cached(
                "INSERT INTO reviews (id, post_key, post_id, board, user_id, categories, action, post, decision, created, deadline, status)
                 VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending') ON CONFLICT (post_key) DO NOTHING",
            )
        .and_then(|mut insert| {
            insert.execute(params![
                self.id,
                self.post_key,
                self.board,
                self.user_id,
                self.categories,
                self.action,
                self.post,
                self.decision,
                self.created,
                self.deadline,
            ])
        })
        .map_err(db_err("holding a post"))?;
        if written == 0 {
            let held: i64 = conn
                .prepare_cached("SELECT id FROM reviews WHERE post_key = ?1")
                .and_then(|mut held| held.query_row([&self.post_key], |r| r.get(0)))
                .map_err(db_err("holding a post"))?;
            if held != self.id {
                return Err(Error::new(
                    ErrorKind::Audit,
                    format!(
                        "review queue: post {} is held as review {held} already, not {}: another program holds posts in this file",
                        self.post_key.as_deref().unwrap_or("?"),
                        self.id
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl Drop for HoldRow {
    fn drop(&mut self) {
        let Some(key) = &self.post_key else { return };
        let mut r = lock(&self.reserved);
        if let Some((_, waiting)) = r.pending.get_mut(key) {
            *waiting -= 1;
            if *waiting == 0 {
                r.pending.remove(key);
            }
        }
    }
}

impl std::fmt::Debug for HoldRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HoldRow")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl std::fmt::Debug for ReviewQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReviewQueue")
            .field("sealed", &self.key.is_some())
            .field("hours", &self.hours)
            .field("callbacks", &self.callbacks)
            .finish_non_exhaustive()
    }
}

fn db_err(what: &str) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| Error::new(ErrorKind::Audit, format!("review queue: {what}: {e}"))
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serialises")
}

impl ReviewQueue {
    /// Opens the queue in the audit store at `path` (made when missing). With `key` (the
    /// store's key), the held posts are sealed: whoever reads the file without the key sees
    /// neither the posts' personal fields nor their text. `callbacks`: queue a callback
    /// with every verdict.
    pub fn open(
        path: impl AsRef<Path>,
        key: Option<AuditKey>,
        callbacks: bool,
    ) -> Result<ReviewQueue> {
        let path = path.as_ref();
        let mut conn = Connection::open(path).map_err(db_err("opening"))?;
        crate::audit::wait_when_busy(&mut conn).map_err(db_err("opening"))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err("opening"))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db_err("opening"))?;
        conn.execute_batch(SCHEMA)
            .map_err(db_err("making its tables"))?;
        Ok(ReviewQueue {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            key,
            hours: DEFAULT_REVIEW_HOURS,
            callbacks,
            reserved: Arc::default(),
        })
    }

    /// Hours a held post may wait for its verdict (default 24).
    pub fn with_deadline_hours(mut self, hours: u32) -> Self {
        self.hours = hours;
        self
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn seal(&self, plain: String) -> String {
        match &self.key {
            Some(k) => k.seal(&plain),
            None => plain,
        }
    }

    fn unseal(&self, stored: &str) -> Option<String> {
        if crate::audit::key::is_sealed(stored) {
            self.key.as_ref().and_then(|k| k.open(stored))
        } else {
            Some(stored.to_owned())
        }
    }

    /// The hook that puts held posts into this queue: give it to
    /// [`PipelineBuilder::review_hook`](crate::PipelineBuilder::review_hook).
    pub fn hook(self: &Arc<Self>) -> ReviewHook {
        let queue = self.clone();
        Arc::new(move |post: &Post, d: &Decision| queue.hold(post, d, Timestamp::now()).map(Some))
    }

    /// Holds `post` with its decision; returns its review id. A post id already held
    /// returns the id it has (a post decided again, after a failed commit or a resume).
    pub fn hold(&self, post: &Post, d: &Decision, now: Timestamp) -> Result<i64> {
        let (id, row) = self.reserve(post, d, now)?;
        if let Some(row) = row {
            self.write_hold(row)?;
        }
        Ok(id)
    }

    /// Writes a reserved hold in a transaction of its own.
    pub(crate) fn write_hold(&self, row: HoldRow) -> Result<()> {
        row.write(&self.conn())
    }

    /// The review id `post` is held under, and the row that holds it when it has to be
    /// written: by a pipeline, in the transaction that records the post's decision (the
    /// hold and its record are kept together or not at all, in one disk flush). A post id
    /// held already gives the id it has and no row; one whose row is on its way (another
    /// decision of it, not yet committed) gives that id and a row of its own, which is
    /// left out when the first is written. The row's reservation ends when it is dropped.
    pub(crate) fn reserve(
        &self,
        post: &Post,
        d: &Decision,
        now: Timestamp,
    ) -> Result<(i64, Option<HoldRow>)> {
        let post_key = d.id.as_ref().map(to_json);
        let conn = self.conn();
        let mut reserved = lock(&self.reserved);
        let id = match post_key
            .as_ref()
            .and_then(|key| reserved.pending.get_mut(key))
        {
            Some((id, waiting)) => {
                *waiting += 1;
                *id
            }
            None => {
                if let Some(key) = &post_key {
                    let known: Option<i64> = conn
                        .prepare_cached("SELECT id FROM reviews WHERE post_key = ?1")
                        .and_then(|mut known| known.query_row([key], |r| r.get(0)))
                        .optional()
                        .map_err(db_err("looking up a post"))?;
                    if let Some(id) = known {
                        return Ok((id, None));
                    }
                }
                let last: i64 = conn
                    .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM reviews")
                    .and_then(|mut last| last.query_row([], |r| r.get(0)))
                    .map_err(db_err("numbering a hold"))?;
                let id = reserved.last.max(last) + 1;
                reserved.last = id;
                if let Some(key) = &post_key {
                    reserved.pending.insert(key.clone(), (id, 1));
                }
                id
            }
        };
        drop((reserved, conn));
        let deadline = now + jiff::SignedDuration::from_hours(i64::from(self.hours));
        let mut held = d.clone();
        held.review_id = None;
        Ok((
            id,
            Some(HoldRow {
                reserved: self.reserved.clone(),
                id,
                post_key,
                board: post.board.clone(),
                user_id: post.poster.as_ref().and_then(|p| p.user_id.clone()),
                categories: to_json(&d.categories),
                action: d.action.as_str(),
                post: self.seal(to_json(post)),
                decision: self.seal(to_json(&held)),
                created: now.to_string(),
                deadline: deadline.to_string(),
            }),
        ))
    }

    /// Whether this queue is in the file at `path`.
    pub(crate) fn is_in(&self, path: &Path) -> bool {
        match (self.path.canonicalize(), path.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => self.path == path,
        }
    }

    /// The items matching `filter`, oldest first.
    pub fn list(&self, filter: &ReviewFilter) -> Result<Vec<ReviewItem>> {
        let mut sql = format!("SELECT {COLUMNS} FROM reviews WHERE 1 = 1");
        let mut args: Vec<String> = Vec::new();
        if let Some(s) = filter.status {
            args.push(s.as_str().to_owned());
            sql.push_str(&format!(" AND status = ?{}", args.len()));
        }
        if let Some(b) = &filter.board {
            args.push(b.clone());
            sql.push_str(&format!(" AND board = ?{}", args.len()));
        }
        if let Some(c) = filter.category {
            // categories is a JSON array of numbers: match the number as an element.
            args.push(c.to_string());
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM json_each(reviews.categories) WHERE value = CAST(?{} AS INTEGER))",
                args.len()
            ));
        }
        sql.push_str(&format!(
            " ORDER BY id LIMIT {}",
            filter.limit.unwrap_or(100)
        ));
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql).map_err(db_err("listing"))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), Stored::read)
            .map_err(db_err("listing"))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(self.item(r.map_err(db_err("listing"))?)?);
        }
        Ok(out)
    }

    /// One item, or `None` when there is no such review.
    pub fn get(&self, id: i64) -> Result<Option<ReviewItem>> {
        let stored = self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM reviews WHERE id = ?1"),
                [id],
                Stored::read,
            )
            .optional()
            .map_err(db_err("reading an item"))?;
        stored.map(|s| self.item(s)).transpose()
    }

    /// Items waiting for a verdict (pending or claimed).
    pub fn open_count(&self) -> Result<u64> {
        self.conn()
            .query_row(
                "SELECT COUNT(*) FROM reviews WHERE status != 'decided'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(db_err("counting"))
    }

    /// `who` takes the item: it is theirs until decided (another reviewer may take it over:
    /// the last claim counts). A decided item cannot be claimed.
    pub fn claim(&self, id: i64, who: &str, now: Timestamp) -> Result<ReviewItem> {
        let changed = self
            .conn()
            .execute(
                "UPDATE reviews SET status = 'claimed', claimed_by = ?2, claimed_at = ?3 WHERE id = ?1 AND status != 'decided'",
                params![id, who, now.to_string()],
            )
            .map_err(db_err("claiming"))?;
        let item = self.get(id)?.ok_or_else(|| not_found(id))?;
        if changed == 0 {
            return Err(already_decided(&item));
        }
        Ok(item)
    }

    /// The item `id` when a verdict can still be given: not found and already decided are
    /// errors (kinds `NotFound` and `Conflict`).
    pub fn undecided(&self, id: i64) -> Result<ReviewItem> {
        let item = self.get(id)?.ok_or_else(|| not_found(id))?;
        if item.status == Status::Decided {
            return Err(already_decided(&item));
        }
        Ok(item)
    }

    /// Records `who`'s verdict on `id`, and queues its callback when callbacks are on (in
    /// the same transaction: a verdict without its callback cannot be left behind). Only
    /// once: a decided item gives a `Conflict` error.
    pub fn decide(
        &self,
        id: i64,
        who: &str,
        verdict: Verdict,
        note: Option<&str>,
        now: Timestamp,
    ) -> Result<ReviewItem> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(db_err("deciding"))?;
        let changed = tx
            .execute(
                "UPDATE reviews SET status = 'decided', verdict = ?2, reviewer = ?3, note = ?4, decided_at = ?5 WHERE id = ?1 AND status != 'decided'",
                params![id, verdict.as_str(), who, note, now.to_string()],
            )
            .map_err(db_err("deciding"))?;
        if changed == 1 && self.callbacks {
            let post_id: Option<String> = tx
                .query_row("SELECT post_id FROM reviews WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .map_err(db_err("deciding"))?;
            let post_id: Option<PostId> = post_id.and_then(|p| serde_json::from_str(&p).ok());
            let body = serde_json::json!({
                "event": "review.decided",
                "review_id": id,
                "post_id": post_id,
                "verdict": verdict.as_str(),
                "reviewer": who,
                "note": note,
                "decided_at": now.to_string(),
            });
            tx.execute(
                "INSERT INTO review_outbox (review_id, body, created, next_at) VALUES (?1, ?2, ?3, ?3)",
                params![id, body.to_string(), now.to_string()],
            )
            .map_err(db_err("queueing the callback"))?;
        }
        tx.commit().map_err(db_err("deciding"))?;
        drop(conn);
        let item = self.get(id)?.ok_or_else(|| not_found(id))?;
        if changed == 0 {
            return Err(already_decided(&item));
        }
        Ok(item)
    }

    /// Callbacks due at `now` (never delivered, next attempt reached), oldest first.
    pub fn due_callbacks(&self, now: Timestamp, limit: usize) -> Result<Vec<Callback>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT id, review_id, body, attempts FROM review_outbox
                 WHERE delivered_at IS NULL AND next_at <= ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(db_err("reading the outbox"))?;
        let rows = stmt
            .query_map(params![now.to_string(), limit as i64], |r| {
                Ok(Callback {
                    id: r.get(0)?,
                    review_id: r.get(1)?,
                    body: r.get(2)?,
                    attempts: r.get::<_, i64>(3)? as u32,
                })
            })
            .map_err(db_err("reading the outbox"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(db_err("reading the outbox"))
    }

    /// The earliest next attempt of a callback not yet delivered.
    pub fn next_callback_at(&self) -> Result<Option<Timestamp>> {
        let next: Option<String> = self
            .conn()
            .query_row(
                "SELECT MIN(next_at) FROM review_outbox WHERE delivered_at IS NULL",
                [],
                |r| r.get(0),
            )
            .map_err(db_err("reading the outbox"))?;
        Ok(next.and_then(|t| t.parse().ok()))
    }

    /// Callbacks not yet delivered.
    pub fn undelivered(&self) -> Result<u64> {
        self.conn()
            .query_row(
                "SELECT COUNT(*) FROM review_outbox WHERE delivered_at IS NULL",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(db_err("reading the outbox"))
    }

    /// Marks a callback delivered.
    pub fn delivered(&self, id: i64, now: Timestamp) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE review_outbox SET delivered_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
                params![id, now.to_string()],
            )
            .map_err(db_err("marking a callback delivered"))?;
        Ok(())
    }

    /// Notes a failed delivery; the next attempt waits `retry_in`.
    pub fn failed(&self, id: i64, error: &str, next: Timestamp) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE review_outbox SET attempts = attempts + 1, last_error = ?2, next_at = ?3 WHERE id = ?1",
                params![id, error, next.to_string()],
            )
            .map_err(db_err("noting a failed callback"))?;
        Ok(())
    }

    /// Decided items, oldest verdict first: what `review export` turns into test cases.
    pub fn decided(&self) -> Result<Vec<ReviewItem>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM reviews WHERE status = 'decided' ORDER BY decided_at, id"
            ))
            .map_err(db_err("listing"))?;
        let rows = stmt
            .query_map([], Stored::read)
            .map_err(db_err("listing"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db_err("listing"))?;
        drop(stmt);
        drop(conn);
        rows.into_iter().map(|s| self.item(s)).collect()
    }

    fn item(&self, s: Stored) -> Result<ReviewItem> {
        let sealed = || {
            Error::new(
                ErrorKind::AuditKey,
                format!(
                    "review {}: the held post is sealed: give the store's key",
                    s.id
                ),
            )
        };
        let post = self.unseal(&s.post).ok_or_else(sealed)?;
        let decision = self.unseal(&s.decision).ok_or_else(sealed)?;
        let broken = |what: &str, e: serde_json::Error| {
            Error::new(
                ErrorKind::Audit,
                format!("review {}: its {what} cannot be read: {e}", s.id),
            )
        };
        let post: Post = serde_json::from_str(&post).map_err(|e| broken("post", e))?;
        let mut decision: Decision =
            serde_json::from_str(&decision).map_err(|e| broken("decision", e))?;
        decision.review_id = Some(s.id);
        Ok(ReviewItem {
            id: s.id,
            post,
            decision,
            status: Status::parse(&s.status).unwrap_or(Status::Pending),
            created: s.created,
            deadline: s.deadline,
            claimed_by: s.claimed_by,
            claimed_at: s.claimed_at,
            verdict: s.verdict.as_deref().and_then(Verdict::parse),
            reviewer: s.reviewer,
            note: s.note,
            decided_at: s.decided_at,
        })
    }
}

const COLUMNS: &str = "id, post, decision, status, created, deadline, claimed_by, claimed_at, verdict, reviewer, note, decided_at";

/// A row as stored (post and decision possibly sealed).
struct Stored {
    id: i64,
    post: String,
    decision: String,
    status: String,
    created: String,
    deadline: String,
    claimed_by: Option<String>,
    claimed_at: Option<String>,
    verdict: Option<String>,
    reviewer: Option<String>,
    note: Option<String>,
    decided_at: Option<String>,
}

impl Stored {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Stored> {
        Ok(Stored {
            id: r.get(0)?,
            post: r.get(1)?,
            decision: r.get(2)?,
            status: r.get(3)?,
            created: r.get(4)?,
            deadline: r.get(5)?,
            claimed_by: r.get(6)?,
            claimed_at: r.get(7)?,
            verdict: r.get(8)?,
            reviewer: r.get(9)?,
            note: r.get(10)?,
            decided_at: r.get(11)?,
        })
    }
}

/// What reviewers made of the posts one rule held.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RuleStats {
    /// The rule id.
    pub rule: String,
    /// Items it hit.
    pub held: u64,
    /// Of those, approved (the rule was wrong to hold them).
    pub approved: u64,
    /// Removed.
    pub removed: u64,
    /// Reported.
    pub reported: u64,
}

impl RuleStats {
    /// Items with a verdict.
    pub fn decided(&self) -> u64 {
        self.approved + self.removed + self.reported
    }

    /// Removed or reported ÷ decided: how often the rule was right to hold a post; `None`
    /// before any verdict.
    pub fn precision(&self) -> Option<f64> {
        let decided = self.decided();
        (decided > 0).then(|| (self.removed + self.reported) as f64 / decided as f64)
    }
}

/// Per rule, the items it hit and their verdicts; most held first.
pub fn rule_statistics(items: &[ReviewItem]) -> Vec<RuleStats> {
    let mut by_rule: std::collections::BTreeMap<&str, RuleStats> = Default::default();
    for item in items {
        let mut rules: Vec<&str> = item.decision.hits.iter().map(|h| &*h.rule).collect();
        rules.sort_unstable();
        rules.dedup();
        for rule in rules {
            let s = by_rule.entry(rule).or_insert_with(|| RuleStats {
                rule: rule.to_owned(),
                ..RuleStats::default()
            });
            s.held += 1;
            match item.verdict {
                Some(Verdict::Approve) => s.approved += 1,
                Some(Verdict::Remove) => s.removed += 1,
                Some(Verdict::Report) => s.reported += 1,
                None => {}
            }
        }
    }
    let mut out: Vec<RuleStats> = by_rule.into_values().collect();
    out.sort_by(|a, b| b.held.cmp(&a.held).then_with(|| a.rule.cmp(&b.rule)));
    out
}

/// Decided items as a test file for `shenhe test` (`*.test.toml`, see
/// [`crate::rules::parse_tests`]): an approved post must hit no rule (the rules held it by
/// mistake: the test fails until they are fixed), a removed or reported one must hit
/// exactly the rules that held it. The post's text, title and board are kept; the poster's
/// fields are not (test files go where rule authors work, and hold no personal data).
pub fn to_test_toml(items: &[ReviewItem]) -> String {
    let quote = |s: &str| serde_json::to_string(s).expect("strings serialise");
    let mut out = String::from(
        "# Verdicts of the review queue as tests (`shenhe review export --format test-toml`).\n",
    );
    for item in items {
        let Some(verdict) = item.verdict else {
            continue;
        };
        out.push_str(&format!(
            "\n# review {}: {} by {} at {}{}\n[[test]]\ntext = {}\n",
            item.id,
            verdict.as_str(),
            item.reviewer.as_deref().unwrap_or("?"),
            item.decided_at.as_deref().unwrap_or("?"),
            item.note
                .as_deref()
                .map(|n| format!(": {}", n.replace(['\n', '\r'], " ")))
                .unwrap_or_default(),
            quote(&item.post.text)
        ));
        for (k, v) in [("title", &item.post.title), ("board", &item.post.board)] {
            if let Some(v) = v {
                out.push_str(&format!("{k} = {}\n", quote(v)));
            }
        }
        let mut rules: Vec<&str> = match verdict {
            Verdict::Approve => Vec::new(),
            Verdict::Remove | Verdict::Report => {
                item.decision.hits.iter().map(|h| &*h.rule).collect()
            }
        };
        rules.sort_unstable();
        rules.dedup();
        let listed: Vec<String> = rules.iter().map(|r| quote(r)).collect();
        out.push_str(&format!("rules = [{}]\n", listed.join(", ")));
    }
    out
}

fn not_found(id: i64) -> Error {
    Error::new(ErrorKind::NotFound, format!("no review {id}"))
}

fn already_decided(item: &ReviewItem) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!(
            "review {} was already decided: {} by {} at {}",
            item.id,
            item.verdict.map_or("?", Verdict::as_str),
            item.reviewer.as_deref().unwrap_or("?"),
            item.decided_at.as_deref().unwrap_or("?")
        ),
    )
}

#[cfg(test)]
mod tests;
