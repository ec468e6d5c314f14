//! The audit log: every decision recorded in an append-only, tamper-evident SQLite store
//! kept at least six months.
//!
//! * **Store**: SQLite (bundled, no system library), WAL journal, `synchronous=FULL`; any
//!   SQLite tool opens it. One store holds many runs (`scan --audit`, embedders).
//! * **Chain**: each record's hash is SHA-256 over the previous record's hash and a
//!   canonical encoding of the record as stored (its sequence number included), so editing,
//!   deleting, inserting or reordering a row breaks the chain. Records are grouped by
//!   calendar day (UTC+08:00 by default); the `manifest` keeps each day's count and final
//!   hash and is never pruned, so a pruned day still links the chain. The head (last hash)
//!   kept elsewhere by the operator also catches a truncated tail.
//! * **Retention**: whole days older than the maximum (default 190 days) are pruned; never
//!   a day younger than 184 (six calendar months can be 184 days). Held accounts and posts
//!   stay.
//! * **Personal data**: IP, port, real-name reference and display name are sealed with the
//!   operator's key ([`AuditKey`]); without the key records still verify and show those
//!   fields as withheld.

pub mod backup;
mod checkpoint;
mod export;
pub(crate) mod key;
mod runs;

pub use export::{CSV_HEAD, WITHHELD};
pub use key::{AuditKey, KEY_ENV};
pub(crate) use runs::{regular_file_len, tail_hash};
pub use runs::{InputPrint, LastRun};

use std::path::Path;

use jiff::tz::Offset;
use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::post::{Decision, Post, PostId};

/// The hash before the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Days a record is kept at least: six calendar months can be 184 days.
pub const RETENTION_FLOOR_DAYS: u32 = 184;
/// Days after which a day's records are pruned by default.
pub const DEFAULT_RETENTION_DAYS: u32 = 190;
/// Hours east of UTC of the calendar days records are grouped by, by default (China).
pub const DEFAULT_UTC_OFFSET_HOURS: i8 = 8;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    finished TEXT,
    input TEXT,
    output TEXT,
    ruleset TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    day TEXT NOT NULL,
    run INTEGER NOT NULL,
    line INTEGER,
    post_id TEXT,
    post_time TEXT,
    scan_time TEXT NOT NULL,
    user_id TEXT,
    personal TEXT NOT NULL,
    content TEXT NOT NULL,
    categories TEXT NOT NULL,
    action TEXT NOT NULL,
    report INTEGER NOT NULL,
    measures TEXT NOT NULL,
    hits TEXT NOT NULL,
    ruleset TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL,
    caller TEXT,
    event TEXT
);
CREATE TABLE IF NOT EXISTS manifest (
    day TEXT PRIMARY KEY,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    count INTEGER NOT NULL,
    final_hash TEXT NOT NULL,
    pruned_at TEXT,
    pruned_count INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS holds (
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (kind, value)
);
";

/// The personal fields of a record, sealed together when the store has a key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Personal {
    /// IP address as the forum gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Source port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Reference to the real-name record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_ref: Option<String>,
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether the account is real-name verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
}

/// What a post said, as recorded.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Content {
    /// Board or forum section.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub board: Option<String>,
    /// Title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The post text.
    pub text: String,
}

/// One audit record as read back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the store (1-based, in the order recorded).
    pub seq: i64,
    /// Calendar day of the scan (the retention unit), `YYYY-MM-DD`.
    pub day: String,
    /// The run that recorded it.
    pub run: i64,
    /// Input line (scans of a file).
    pub line: Option<i64>,
    /// The post id.
    pub post_id: Option<PostId>,
    /// The post's own time, as given.
    pub post_time: Option<String>,
    /// When it was decided (RFC 3339, UTC).
    pub scan_time: String,
    /// Account id.
    pub user_id: Option<String>,
    /// Personal fields; `None` when sealed and no key was given (withheld).
    pub personal: Option<Personal>,
    /// What the post said.
    pub content: Content,
    /// Categories hit.
    pub categories: Vec<u16>,
    /// The action decided.
    pub action: String,
    /// Whether it was reported.
    pub report: bool,
    /// Account measures from escalation.
    pub measures: Vec<String>,
    /// The hits, as in the decision.
    pub hits: serde_json::Value,
    /// SHA-256 of the rule set that decided.
    pub ruleset: String,
    /// This record's chain hash.
    pub hash: String,
    /// Who asked: the API key or user name of a service's caller (none for a scan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// The act a record that is not a machine decision records, as a JSON object with its
    /// `kind` (a reviewer's verdict: `{"kind":"verdict","review_id":…,"verdict":…,"note":…}`);
    /// none for a decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<serde_json::Value>,
}

/// A decision ready to be recorded: see [`AuditStore::prepare`].
#[derive(Debug)]
pub struct PendingRecord(Row, [u8; 32], Option<crate::review::HoldRow>);

impl PendingRecord {
    /// Writes `hold` in the transaction that records this decision (the two are kept
    /// together or not at all).
    pub(crate) fn with_hold(mut self, hold: crate::review::HoldRow) -> PendingRecord {
        self.2 = Some(hold);
        self
    }
}

/// Prepares records for a store on any thread: what recording a decision takes that does
/// not depend on the records before it (serialising, sealing the personal fields). A scan
/// prepares a chunk's records in parallel, then appends them in order.
#[derive(Clone, Debug)]
pub struct Preparer {
    key: Option<AuditKey>,
    sealed: bool,
}

impl Preparer {
    /// Prepares one decision for [`AuditStore::append_prepared`].
    pub fn prepare(&self, line: Option<u64>, post: &Post, d: &Decision) -> Result<PendingRecord> {
        self.prepare_by(line, post, d, None)
    }

    /// [`prepare`](Preparer::prepare), naming who asked for the decision (a service's API
    /// key or user): the record keeps it, inside the hashed content.
    pub fn prepare_by(
        &self,
        line: Option<u64>,
        post: &Post,
        d: &Decision,
        caller: Option<&str>,
    ) -> Result<PendingRecord> {
        self.prepare_row(line, post, d, caller, None)
    }

    /// A record of an act on a post that is not the machine's decision: a reviewer's
    /// verdict, say. `event` says what was done (a JSON object with its `kind`), `caller`
    /// who did it; `d` is the decision as the act leaves it (its action and report flag),
    /// with the hits that were judged. Offences are never counted from such records.
    pub fn prepare_act(
        &self,
        post: &Post,
        d: &Decision,
        caller: &str,
        event: &serde_json::Value,
    ) -> Result<PendingRecord> {
        self.prepare_row(None, post, d, Some(caller), Some(event.to_string()))
    }

    /// A record of an act on the store itself, not on a post (a read of personal data, a
    /// backup, a change of the service's keys): `event` says what (a JSON object with its
    /// `kind`), `caller` who; `ruleset` is the hash of the rule set in force, or empty when
    /// none is (a command-line tool's act).
    pub fn prepare_event(
        &self,
        caller: &str,
        event: &serde_json::Value,
        ruleset: &str,
    ) -> Result<PendingRecord> {
        let personal = to_json(&Personal::default());
        let personal = match (&self.key, self.sealed) {
            (Some(k), true) => k.seal(&personal),
            (None, true) => {
                return Err(Error::new(
                    ErrorKind::AuditKey,
                    format!("the store seals personal fields: give its key to record in it (--key-file, or {KEY_ENV})"),
                ))
            }
            _ => personal,
        };
        let row = Row {
            seq: 0,
            day: String::new(),
            run: 0,
            line: None,
            post_id: None,
            post_time: None,
            scan_time: String::new(),
            user_id: None,
            personal,
            content: to_json(&Content::default()),
            categories: "[]".to_owned(),
            action: crate::Action::Allow.as_str().to_owned(),
            report: false,
            measures: "[]".to_owned(),
            hits: "[]".to_owned(),
            ruleset: ruleset.to_owned(),
            caller: Some(caller.to_owned()),
            event: Some(event.to_string()),
        };
        let body = row.body_digest();
        Ok(PendingRecord(row, body, None))
    }

    fn prepare_row(
        &self,
        line: Option<u64>,
        post: &Post,
        d: &Decision,
        caller: Option<&str>,
        event: Option<String>,
    ) -> Result<PendingRecord> {
        let poster = post.poster.clone().unwrap_or_default();
        let sealing = self.key.is_some() && self.sealed;
        let personal = to_json(&Personal {
            ip: poster.ip,
            port: poster.port,
            identity_ref: poster.identity_ref,
            name: poster.name,
            verified: poster.verified,
        });
        let personal = match (&self.key, self.sealed) {
            (Some(k), true) => k.seal(&personal),
            (None, true) => {
                return Err(Error::new(
                    ErrorKind::AuditKey,
                    format!("the store seals personal fields: give its key (--audit-key-file, or {KEY_ENV})"),
                ))
            }
            _ => personal,
        };
        let row = Row {
            seq: 0,
            day: String::new(),
            run: 0,
            line: line.map(|l| l as i64),
            post_id: d.id.as_ref().map(to_json),
            post_time: post.time.clone(),
            scan_time: String::new(),
            user_id: poster.user_id,
            personal,
            content: to_json(&Content {
                board: post.board.clone(),
                title: post.title.clone(),
                text: post.text.clone(),
            }),
            categories: to_json(&d.categories),
            action: d.action.as_str().to_owned(),
            report: d.report,
            measures: to_json(&d.measures),
            hits: if sealing {
                to_json(&sealed_hits(&d.hits))
            } else {
                to_json(&d.hits)
            },
            ruleset: d.ruleset.hash.clone(),
            caller: caller.map(str::to_owned),
            event,
        };
        let body = row.body_digest();
        Ok(PendingRecord(row, body, None))
    }
}

/// What a hit in a sealed display name says in the record instead of the matched part:
/// the part is inside the sealed name, at the hit's offsets, for whoever holds the key.
pub const SEALED_MATCH: &str = "(sealed)";

/// The hits as a store that seals personal fields keeps them: a hit in the poster's name
/// (a personal field) keeps its rule and offsets but neither the matched characters nor
/// the term (which can be the same characters).
fn sealed_hits(hits: &[crate::Hit]) -> Vec<crate::Hit> {
    hits.iter()
        .map(|h| {
            let mut h = h.clone();
            if h.field == crate::Field::Name {
                h.matched = SEALED_MATCH.to_owned();
                h.term = SEALED_MATCH.into();
            }
            h
        })
        .collect()
}

/// Puts back the matched part of hits in the poster's name, read from the unsealed name.
fn unseal_hits(hits: &mut serde_json::Value, name: Option<&str>) {
    let (Some(list), Some(name)) = (hits.as_array_mut(), name) else {
        return;
    };
    for h in list {
        if h["field"] == "name" && h["matched"] == SEALED_MATCH {
            let span = (h["start"].as_u64(), h["end"].as_u64());
            if let (Some(a), Some(b)) = span {
                if let Some(part) = name.get(a as usize..b as usize) {
                    h["matched"] = serde_json::Value::String(part.to_owned());
                }
            }
        }
    }
}

/// What `verify` found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verification {
    /// Records checked.
    pub records: u64,
    /// Days in the manifest.
    pub days: u64,
    /// Days pruned (their records gone but for held ones, or going: a prune cut short
    /// leaves a day marked pruned with some of its records, which the next prune deletes).
    pub pruned_days: u64,
    /// The head: the last record's hash (the genesis hash for an empty store).
    pub head: String,
    /// The first problem found, naming the record or day; `None` when everything verifies.
    pub problem: Option<String>,
}

/// What `prune` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Days pruned now.
    pub days: Vec<String>,
    /// Records deleted.
    pub records: u64,
    /// Records kept because of holds.
    pub held: u64,
    /// Decided review items deleted (with their callbacks), when the review queue is in
    /// the store's file.
    pub reviews: u64,
}

/// Records deleted per transaction by [`AuditStore::prune_step`]: a step of the sample
/// posts took 3.5 ms (median; ~15 ms when it crossed a WAL checkpoint) where 400,000
/// records in one transaction took 1.1 s, so the commits of a service that prunes its own
/// store wait no longer than that for a step.
pub const PRUNE_BATCH: i64 = 2_000;

/// A record kept past retention: its account or its post is held. A record without an
/// account or a post id is not held by it: `NULL IN (…)` is NULL, not false, once any hold
/// of that kind exists, and `NOT NULL` would keep the row.
const HELD: &str = "((user_id IS NOT NULL AND user_id IN (SELECT value FROM holds WHERE kind = 'user')) OR (post_id IS NOT NULL AND post_id IN (SELECT value FROM holds WHERE kind = 'post')))";

/// A prune under way ([`AuditStore::start_prune`]): the days left and what was done.
#[derive(Clone, Debug)]
pub struct Pruning {
    now: String,
    cutoff: jiff::civil::Date,
    days: std::collections::VecDeque<PruneDay>,
    reviews_done: bool,
    batch: i64,
    done: Pruned,
}

impl Pruning {
    /// What the steps so far did.
    pub fn done(&self) -> &Pruned {
        &self.done
    }

    /// What the steps did, once they are over.
    pub fn into_done(self) -> Pruned {
        self.done
    }

    /// Deletes at most `records` records per step (tests: a prune of a few records in
    /// several steps).
    #[cfg(test)]
    pub(crate) fn with_batch(mut self, records: i64) -> Pruning {
        self.batch = records.max(1);
        self
    }
}

/// A day of a prune under way.
#[derive(Clone, Debug)]
struct PruneDay {
    day: String,
    /// Not marked pruned when the prune started.
    unpruned: bool,
    /// The record to go on from.
    next: Option<i64>,
    /// Records of the day deleted by this prune.
    deleted: u64,
}

/// Filters of `query` and `export`; all given ones must match.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// IP address or CIDR network (needs the key when the store seals personal fields).
    pub ip: Option<ipnet::IpNet>,
    /// Account id.
    pub user: Option<String>,
    /// Category hit.
    pub category: Option<u16>,
    /// Action decided.
    pub action: Option<String>,
    /// Recorded at or after (scan time).
    pub since: Option<Timestamp>,
    /// Recorded before (scan time).
    pub until: Option<Timestamp>,
    /// Asked for by this caller (API key or user name).
    pub caller: Option<String>,
    /// The post, by its id as the forum gave it (`p1`, or `17` for a number or the
    /// string "17").
    pub post: Option<String>,
}

impl Filter {
    /// Whether a filter that finds a person's records is given: an account, an address or
    /// a post (what a read of personal data names).
    pub fn names_a_subject(&self) -> bool {
        self.user.is_some() || self.ip.is_some() || self.post.is_some()
    }

    /// The filter as a JSON object of the filters given (what a read's audit record keeps).
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                m.insert(k.to_owned(), serde_json::Value::String(v));
            }
        };
        put("user", self.user.clone());
        put("ip", self.ip.map(|n| n.to_string()));
        put("post", self.post.clone());
        put("category", self.category.map(|c| c.to_string()));
        put("action", self.action.clone());
        put("since", self.since.map(|t| t.to_string()));
        put("until", self.until.map(|t| t.to_string()));
        put("caller", self.caller.clone());
        serde_json::Value::Object(m)
    }
}

/// A day of the manifest.
struct DayEntry {
    day: String,
    first: i64,
    last: i64,
    count: i64,
    final_hash: String,
    pruned_at: Option<String>,
    pruned_count: i64,
}

/// The tail of the chain, kept between appends.
#[derive(Clone, Debug)]
struct Tail {
    seq: i64,
    hash: String,
    day: String,
}

/// An audit store: a SQLite file. Not `Sync`: give each thread its own, or put it behind a
/// mutex (a [`Pipeline`](crate::Pipeline) shares one among its callers).
#[derive(Debug)]
pub struct AuditStore {
    /// Copies the log into the database file while records are written, started (or found
    /// not to be had) by the first commit; declared before `conn`: it ends before the
    /// writer's connection closes.
    checkpointer: std::cell::OnceCell<Option<checkpoint::Checkpointer>>,
    conn: Connection,
    key: Option<AuditKey>,
    sealed: bool,
    offset: Offset,
    tail: Tail,
    path: std::path::PathBuf,
    /// The writer's lock on `<store>.lock`, once taken ([`AuditStore::lock_writer`]).
    writer: Option<std::fs::File>,
}

/// Deletes up to `limit` of the review queue's items decided before the day `cutoff` (in
/// `offset`'s days) and their callbacks, when the queue is in this file: they hold the post
/// and the poster's fields, kept as long as the records and no longer. Items of held
/// accounts and posts ([`HELD`]) stay, as their records do; so do undecided items, items
/// whose callback is not delivered yet, and the newest item and the newest callback's item:
/// the queue numbers the next hold after the one, the outbox the next callback (its
/// delivery id, which forums deduplicate by) after the other. Returns how many went.
fn prune_reviews(
    tx: &Connection,
    cutoff: jiff::civil::Date,
    offset: Offset,
    limit: i64,
) -> Result<u64> {
    let what = "pruning the review queue";
    let queue: i64 = tx
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'reviews'",
            [],
            |r| r.get(0),
        )
        .map_err(db_err(what))?;
    if queue == 0 {
        return Ok(0);
    }
    let since = cutoff
        .to_zoned(offset.to_time_zone())
        .map_err(|e| Error::new(ErrorKind::Audit, format!("retention cutoff: {e}")))?
        .timestamp()
        .to_string();
    let ids: Vec<i64> = {
        let mut stmt = tx
            .prepare(&format!(
                "SELECT id FROM reviews WHERE status = 'decided' AND decided_at < ?1 \
                 AND id < (SELECT MAX(id) FROM reviews) AND NOT {HELD} \
                 AND NOT EXISTS (SELECT 1 FROM review_outbox o WHERE o.review_id = reviews.id \
                 AND (o.delivered_at IS NULL OR o.id = (SELECT MAX(id) FROM review_outbox))) \
                 ORDER BY id LIMIT ?2"
            ))
            .map_err(db_err(what))?;
        let rows = stmt
            .query_map(params![since, limit], |r| r.get(0))
            .map_err(db_err(what))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(db_err(what))?
    };
    let mut callbacks = tx
        .prepare_cached("DELETE FROM review_outbox WHERE review_id = ?1")
        .map_err(db_err(what))?;
    let mut items = tx
        .prepare_cached("DELETE FROM reviews WHERE id = ?1")
        .map_err(db_err(what))?;
    for id in &ids {
        callbacks.execute([id]).map_err(db_err(what))?;
        items.execute([id]).map_err(db_err(what))?;
    }
    Ok(ids.len() as u64)
}

/// Makes `conn` wait, when another connection holds the store's write lock, in steps of
/// 50 µs for the first 50 ms, then of 10 ms, about 30 s in all, before it fails busy.
/// SQLite's own handler (`busy_timeout`) sleeps 1, 2, 5, 10, 15… ms between tries: a
/// service's review queue and its group commit, two connections to one store, made each
/// other wait a millisecond or more for transactions of a few hundred microseconds.
pub(crate) fn wait_when_busy(conn: &mut Connection) -> rusqlite::Result<()> {
    fn busy(tries: i32) -> bool {
        const SHORT: i32 = 1_000;
        const LONG: i32 = SHORT + 2_995;
        let pause = match tries {
            0..SHORT => std::time::Duration::from_micros(50),
            SHORT..LONG => std::time::Duration::from_millis(10),
            _ => return false,
        };
        std::thread::sleep(pause);
        true
    }
    conn.busy_handler(Some(busy))
}

/// Keeps `print` as what run `run` saw of its input. The table is made by the first run
/// that keeps one, not when a store is opened: opening a store made before it (to query or
/// export it, perhaps read-only) writes nothing.
fn note_input(tx: &Connection, run: i64, print: &InputPrint) -> Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS run_inputs (
            run INTEGER PRIMARY KEY,
            bytes INTEGER NOT NULL,
            head TEXT NOT NULL,
            output_bytes INTEGER
        );",
    )
    .map_err(db_err("keeping what the run's input was"))?;
    tx.execute(
        "INSERT OR REPLACE INTO run_inputs (run, bytes, head) VALUES (?1, ?2, ?3)",
        params![run, print.bytes as i64, print.head],
    )
    .map_err(db_err("keeping what the run's input was"))?;
    Ok(())
}

/// Whether a run has kept its input's print in this store (the table is made by the first).
fn has_run_inputs(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'run_inputs'",
        [],
        |r| r.get(0),
    )
}

fn db_err(what: &str) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| Error::new(ErrorKind::Audit, format!("{what}: {e}"))
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("audit values serialise")
}

/// The stored columns of a record, in the order they are hashed.
#[derive(Clone, Debug, Serialize)]
struct Row {
    seq: i64,
    day: String,
    run: i64,
    line: Option<i64>,
    post_id: Option<String>,
    post_time: Option<String>,
    scan_time: String,
    user_id: Option<String>,
    personal: String,
    content: String,
    categories: String,
    action: String,
    report: bool,
    measures: String,
    hits: String,
    ruleset: String,
    caller: Option<String>,
    event: Option<String>,
}

impl Row {
    /// The digest of the record's content: SHA-256 over every column that does not
    /// depend on its place in the store, in a fixed order, each as its length (8 bytes,
    /// little-endian; all ones for NULL) and its bytes (numbers in decimal), so no two
    /// different records encode alike. Computed where records are prepared, in parallel.
    /// The caller and event (store format 2) come last, and only when one of them is set:
    /// a record of format 1 keeps its hash, and the field count tells the two apart.
    fn body_digest(&self) -> [u8; 32] {
        fn put(h: &mut Sha256, v: Option<&[u8]>) {
            match v {
                Some(b) => {
                    h.update((b.len() as u64).to_le_bytes());
                    h.update(b);
                }
                None => h.update(u64::MAX.to_le_bytes()),
            }
        }
        let mut h = Sha256::new();
        put(
            &mut h,
            self.line
                .map(|n| n.to_string())
                .as_deref()
                .map(str::as_bytes),
        );
        for v in [&self.post_id, &self.post_time, &self.user_id] {
            put(&mut h, v.as_deref().map(str::as_bytes));
        }
        for v in [
            &self.personal,
            &self.content,
            &self.categories,
            &self.action,
        ] {
            put(&mut h, Some(v.as_bytes()));
        }
        put(&mut h, Some(if self.report { b"1" } else { b"0" }));
        for v in [&self.measures, &self.hits, &self.ruleset] {
            put(&mut h, Some(v.as_bytes()));
        }
        if self.caller.is_some() || self.event.is_some() {
            for v in [&self.caller, &self.event] {
                put(&mut h, v.as_deref().map(str::as_bytes));
            }
        }
        h.finalize().into()
    }

    /// The chain hash: SHA-256 over the previous record's hash, this record's place
    /// (sequence number, day, run, scan time) and the digest of its content.
    fn hash_after(&self, prev: &str, body: &[u8; 32]) -> String {
        let mut h = Sha256::new();
        h.update(b"shenhe-audit-v1\n");
        h.update(prev.as_bytes());
        h.update(format!(
            "\n{}\n{}\n{}\n{}\n",
            self.seq, self.day, self.run, self.scan_time
        ));
        h.update(body);
        hex::encode(h.finalize())
    }

    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Row, String, String)> {
        Ok((
            Row {
                seq: r.get(0)?,
                day: r.get(1)?,
                run: r.get(2)?,
                line: r.get(3)?,
                post_id: r.get(4)?,
                post_time: r.get(5)?,
                scan_time: r.get(6)?,
                user_id: r.get(7)?,
                personal: r.get(8)?,
                content: r.get(9)?,
                categories: r.get(10)?,
                action: r.get(11)?,
                report: r.get(12)?,
                measures: r.get(13)?,
                hits: r.get(14)?,
                ruleset: r.get(15)?,
                caller: r.get(16)?,
                event: r.get(17)?,
            },
            r.get(18)?,
            r.get(19)?,
        ))
    }
}

const ROW_COLUMNS: &str = "seq, day, run, line, post_id, post_time, scan_time, user_id, personal, content, categories, action, report, measures, hits, ruleset, caller, event, prev, hash";
/// The same columns of a store of format 1, which had no caller and event.
const ROW_COLUMNS_V1: &str = "seq, day, run, line, post_id, post_time, scan_time, user_id, personal, content, categories, action, report, measures, hits, ruleset, NULL, NULL, prev, hash";

/// The store format this build writes: 2 added the `caller` and `event` columns (a store
/// of format 1 is brought up to 2 when opened; its records keep their hashes).
const SCHEMA_VERSION: u32 = 2;

/// Brings a store of an older format up to [`SCHEMA_VERSION`]; refuses a newer one (its
/// records could hold what this build would not check, or would drop on reading).
fn upgrade(conn: &Connection, what: &str, schema: Option<String>) -> Result<()> {
    let version: u32 = schema.as_deref().unwrap_or("1").parse().unwrap_or(u32::MAX);
    if version > SCHEMA_VERSION {
        return Err(Error::new(
            ErrorKind::Audit,
            format!("{what} has format {}, newer than this shenhe's ({SCHEMA_VERSION}): use a newer shenhe", schema.as_deref().unwrap_or("?")),
        ));
    }
    if version < 2 {
        // Under the write lock, and looked up again inside it: another process may have
        // upgraded the store since it was read.
        let failed = format!("{what}: upgrading to format 2");
        let tx =
            rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)
                .map_err(db_err(&failed))?;
        let has_caller: bool = tx
            .query_row(
                "SELECT COUNT(*) > 0 FROM pragma_table_info('records') WHERE name = 'caller'",
                [],
                |r| r.get(0),
            )
            .map_err(db_err(&failed))?;
        if !has_caller {
            tx.execute_batch(
                "ALTER TABLE records ADD COLUMN caller TEXT;
                 ALTER TABLE records ADD COLUMN event TEXT;",
            )
            .map_err(db_err(&failed))?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?1)",
            [SCHEMA_VERSION.to_string()],
        )
        .map_err(db_err(&failed))?;
        tx.commit().map_err(db_err(&failed))?;
    }
    Ok(())
}

/// The calendar day of `t` at `offset`, `YYYY-MM-DD`.
fn day_of(t: Timestamp, offset: Offset) -> String {
    t.to_zoned(offset.to_time_zone()).date().to_string()
}

impl AuditStore {
    /// Opens the store at `path`, creating it when missing. With `key`, personal fields of
    /// new records are sealed; a store created with a key refuses to record without it (or
    /// with another), and one created without a key refuses a key.
    pub fn open(path: impl AsRef<Path>, key: Option<AuditKey>) -> Result<AuditStore> {
        let path = path.as_ref();
        let what = format!("audit store {}", path.display());
        // Created private (0600, whatever the umask): it holds personal data. SQLite gives
        // its -wal and -shm files the database file's mode.
        if std::fs::symlink_metadata(path).is_err() {
            match crate::fsx::create_private(path) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::new(ErrorKind::Audit, format!("{what}: {e}"))),
            }
        }
        let mut conn = Connection::open(path).map_err(db_err(&what))?;
        // Before the first table (no effect on an existing store): 4 KiB pages. A commit
        // writes every page it touched whole, and the service commits a few records of
        // ~650 bytes at a time: with 16 KiB pages each commit wrote ~44 KiB for ~4 KiB of
        // records and took ~10% longer (wrk at 16 connections: 4-8% more posts/s with 4
        // KiB; the CLI's batches of hundreds measured the same within noise).
        conn.pragma_update(None, "page_size", 4096)
            .map_err(db_err(&what))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err(&what))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db_err(&what))?;
        // Checkpoint the WAL into the store every 1,000 pages (about 4 MiB, SQLite's
        // default, said here because the checkpoint runs inside the commit that crosses
        // it: every 16 MiB made that commit's callers wait ~10 ms, the service's p99).
        // A writer's checkpointer thread (`checkpoint`) copies most of it meanwhile, so
        // that commit finds little left to copy.
        conn.pragma_update(None, "wal_autocheckpoint", 1000)
            .map_err(db_err(&what))?;
        conn.pragma_update(None, "cache_size", -32768)
            .map_err(db_err(&what))?;
        wait_when_busy(&mut conn).map_err(db_err(&what))?;
        conn.execute_batch(SCHEMA).map_err(db_err(&what))?;
        let meta = |k: &str| -> Result<Option<String>> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
                .optional()
                .map_err(db_err(&what))
        };
        let check = match meta("key_check")? {
            Some(c) => c,
            None => {
                let c = key
                    .as_ref()
                    .map_or("none".to_owned(), AuditKey::check_value);
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('key_check', ?1), ('schema', ?3), ('utc_offset_hours', ?2)",
                    params![c, DEFAULT_UTC_OFFSET_HOURS.to_string(), SCHEMA_VERSION.to_string()],
                )
                .map_err(db_err(&what))?;
                c
            }
        };
        upgrade(&conn, &what, meta("schema")?)?;
        let sealed = check != "none";
        if let Some(k) = &key {
            if !sealed {
                return Err(Error::new(
                    ErrorKind::AuditKey,
                    format!("{what} was created without a key: its personal fields are not sealed; use it without a key"),
                ));
            }
            if k.check_value() != check {
                return Err(Error::new(
                    ErrorKind::AuditKey,
                    format!("{what}: the key given is not the store's key"),
                ));
            }
        }
        let hours: i8 = meta("utc_offset_hours")?
            .and_then(|h| h.parse().ok())
            .unwrap_or(DEFAULT_UTC_OFFSET_HOURS);
        let offset = Offset::from_hours(hours).unwrap_or(Offset::UTC);
        let last = |sql: &str| {
            conn.query_row(sql, [], |r| {
                Ok(Tail {
                    seq: r.get(0)?,
                    hash: r.get(1)?,
                    day: r.get(2)?,
                })
            })
            .optional()
            .map_err(db_err(&what))
        };
        // With the last days pruned, the chain continues from the manifest.
        let tail = match last("SELECT seq, hash, day FROM records ORDER BY seq DESC LIMIT 1")? {
            Some(t) => t,
            None => {
                last("SELECT last_seq, final_hash, day FROM manifest ORDER BY day DESC LIMIT 1")?
                    .unwrap_or(Tail {
                        seq: 0,
                        hash: GENESIS.to_owned(),
                        day: String::new(),
                    })
            }
        };
        Ok(AuditStore {
            checkpointer: std::cell::OnceCell::new(),
            conn,
            key,
            sealed,
            offset,
            tail,
            path: path.to_path_buf(),
            writer: None,
        })
    }

    /// Makes this the store's one writer until it is dropped (or the process ends, however
    /// it ends): an exclusive lock on `<store>.lock`, which names the holder. Another
    /// writer, in this process or another, is refused with that name: two writers would
    /// each chain records after the same head, and one would write decisions it can never
    /// record. Readers (verify, query, export) need no lock.
    pub fn lock_writer(&mut self, who: &str) -> Result<()> {
        use std::io::{Read, Seek, Write};
        if self.writer.is_some() {
            return Ok(());
        }
        let mut lock_path = self.path.clone().into_os_string();
        lock_path.push(".lock");
        let lock_path = std::path::PathBuf::from(lock_path);
        let what = format!("audit store {}", self.path.display());
        let mut file = crate::fsx::open_private_no_follow(&lock_path).map_err(|e| {
            Error::new(
                ErrorKind::Audit,
                format!("{what}: cannot open {}: {e}", lock_path.display()),
            )
        })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(Error::new(
                    ErrorKind::Audit,
                    format!(
                        "{what} is in use by another writer ({}): one writer per store; wait for it to finish, or stop it",
                        if holder.is_empty() { "unknown" } else { holder }
                    ),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::new(
                    ErrorKind::Audit,
                    format!("{what}: cannot lock {}: {e}", lock_path.display()),
                ))
            }
        }
        let note = format!(
            "pid {}, {who}, since {}",
            std::process::id(),
            Timestamp::now()
        );
        let written = file
            .set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(note.as_bytes()));
        if let Err(e) = written {
            return Err(Error::new(
                ErrorKind::Audit,
                format!("{what}: cannot write {}: {e}", lock_path.display()),
            ));
        }
        self.writer = Some(file);
        Ok(())
    }

    /// Whether personal fields are sealed in this store.
    pub fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// Whether records can be added: a sealed store needs its key.
    pub fn can_record(&self) -> Result<()> {
        if self.sealed && self.key.is_none() {
            return Err(Error::new(
                ErrorKind::AuditKey,
                format!("the store seals personal fields: give its key (--audit-key-file, or {KEY_ENV})"),
            ));
        }
        Ok(())
    }

    /// The UTC offset (hours east) of the calendar days records are grouped by.
    pub fn utc_offset_hours(&self) -> i8 {
        (self.offset.seconds() / 3600) as i8
    }

    /// Sets the UTC offset (hours east) of the calendar days records are grouped by.
    /// Allowed only while the store is empty.
    pub fn set_utc_offset_hours(&mut self, hours: i8) -> Result<()> {
        if self.tail.seq != 0 {
            return Err(Error::new(
                ErrorKind::Audit,
                format!(
                    "this store groups records by days of UTC{:+}; that can be changed only before the first record",
                    self.utc_offset_hours()
                ),
            ));
        }
        self.offset = Offset::from_hours(hours)
            .map_err(|e| Error::new(ErrorKind::Audit, format!("UTC offset {hours}: {e}")))?;
        self.conn
            .execute(
                "UPDATE meta SET value = ?1 WHERE key = 'utc_offset_hours'",
                [hours.to_string()],
            )
            .map_err(db_err("setting the UTC offset"))?;
        Ok(())
    }

    /// Starts a run: what `scan` or an embedder records under. Returns its number.
    pub fn begin_run(
        &mut self,
        input: Option<&str>,
        output: Option<&str>,
        ruleset: &str,
    ) -> Result<i64> {
        self.begin_run_over(input, None, output, ruleset)
    }

    /// [`begin_run`](AuditStore::begin_run) over an input file as `print` shows it, kept
    /// with the run (in the same transaction) for [`last_run`](AuditStore::last_run).
    pub fn begin_run_over(
        &mut self,
        input: Option<&str>,
        print: Option<&InputPrint>,
        output: Option<&str>,
        ruleset: &str,
    ) -> Result<i64> {
        let tx = self.conn.transaction().map_err(db_err("starting a run"))?;
        tx.execute(
            "INSERT INTO runs (started, input, output, ruleset) VALUES (?1, ?2, ?3, ?4)",
            params![Timestamp::now().to_string(), input, output, ruleset],
        )
        .map_err(db_err("starting a run"))?;
        let run = tx.last_insert_rowid();
        if let Some(p) = print {
            note_input(&tx, run, p)?;
        }
        tx.commit().map_err(db_err("starting a run"))?;
        Ok(run)
    }

    /// Continues run `run` over its input as `print` now shows it: a finished run is
    /// unfinished again until [`finish_run`](AuditStore::finish_run).
    pub fn reopen_run(&mut self, run: i64, print: Option<&InputPrint>) -> Result<()> {
        let tx = self.conn.transaction().map_err(db_err("reopening a run"))?;
        tx.execute("UPDATE runs SET finished = NULL WHERE run = ?1", [run])
            .map_err(db_err("reopening a run"))?;
        if let Some(p) = print {
            note_input(&tx, run, p)?;
        }
        tx.commit().map_err(db_err("reopening a run"))
    }

    /// The hash of the rule set a run was started with.
    pub fn run_ruleset(&self, run: i64) -> Result<String> {
        self.conn
            .query_row("SELECT ruleset FROM runs WHERE run = ?1", [run], |r| {
                r.get(0)
            })
            .map_err(db_err("reading a run"))
    }

    /// Marks a run finished.
    pub fn finish_run(&mut self, run: i64) -> Result<()> {
        self.finish_run_with_output(run, None)
    }

    /// Marks a run finished, keeping with its input's print (when it kept one) the size its
    /// output file ended with: a finished run is continued only into that output as it
    /// left it ([`last_run`](AuditStore::last_run)).
    pub fn finish_run_with_output(&mut self, run: i64, output_bytes: Option<u64>) -> Result<()> {
        let tx = self.conn.transaction().map_err(db_err("finishing a run"))?;
        tx.execute(
            "UPDATE runs SET finished = ?1 WHERE run = ?2",
            params![Timestamp::now().to_string(), run],
        )
        .map_err(db_err("finishing a run"))?;
        if let Some(bytes) = output_bytes {
            if has_run_inputs(&tx).map_err(db_err("finishing a run"))? {
                tx.execute(
                    "UPDATE run_inputs SET output_bytes = ?1 WHERE run = ?2",
                    params![bytes as i64, run],
                )
                .map_err(db_err("finishing a run"))?;
            }
        }
        tx.commit().map_err(db_err("finishing a run"))
    }

    /// The last run over `input` (finished or not), the last input line it recorded and
    /// the input as it last saw it: where `scan --resume` continues.
    pub fn last_run(&self, input: &str) -> Result<Option<LastRun>> {
        let sql = if has_run_inputs(&self.conn).map_err(db_err("finding the run to resume"))? {
            "SELECT runs.run, finished IS NOT NULL, bytes, head, output, output_bytes FROM runs
             LEFT JOIN run_inputs ON run_inputs.run = runs.run
             WHERE input = ?1 ORDER BY runs.run DESC LIMIT 1"
        } else {
            "SELECT run, finished IS NOT NULL, NULL, NULL, output, NULL FROM runs
             WHERE input = ?1 ORDER BY run DESC LIMIT 1"
        };
        let found = self
            .conn
            .query_row(sql, [input], |r| {
                let print = match (r.get::<_, Option<i64>>(2)?, r.get(3)?) {
                    (Some(bytes), Some(head)) => Some(InputPrint {
                        bytes: bytes.max(0) as u64,
                        head,
                    }),
                    _ => None,
                };
                let output_bytes = r.get::<_, Option<i64>>(5)?.map(|b| b.max(0) as u64);
                Ok((r.get(0)?, r.get(1)?, print, r.get(4)?, output_bytes))
            })
            .optional()
            .map_err(db_err("finding the run to resume"))?;
        let Some((run, finished, print, output, output_bytes)) = found else {
            return Ok(None);
        };
        // The run's last record holds its last line (lines only grow within a run); read
        // from the end, where the latest run's records are, without an index.
        let line: Option<i64> = self
            .conn
            .query_row(
                "SELECT line FROM records WHERE run = ?1 ORDER BY seq DESC LIMIT 1",
                [run],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err("finding the last recorded line"))?
            .flatten();
        Ok(Some(LastRun {
            run,
            line: line.unwrap_or(0).max(0) as u64,
            finished,
            print,
            output,
            output_bytes,
        }))
    }

    /// Records decisions of `run` in one transaction, in order; `line` is each post's
    /// input line when there is one. Either all are recorded or none.
    pub fn append<'a>(
        &mut self,
        run: i64,
        entries: impl IntoIterator<Item = (Option<u64>, &'a Post, &'a Decision)>,
        now: Timestamp,
    ) -> Result<()> {
        let pending = entries
            .into_iter()
            .map(|(line, post, d)| self.prepare(line, post, d))
            .collect::<Result<Vec<_>>>()?;
        self.append_prepared(run, pending, now)
    }

    /// The part of recording a decision that does not depend on the records before it
    /// (serialising, sealing the personal fields); see [`Preparer`].
    pub fn prepare(&self, line: Option<u64>, post: &Post, d: &Decision) -> Result<PendingRecord> {
        self.preparer().prepare(line, post, d)
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What prepares records for this store, to use on other threads.
    pub fn preparer(&self) -> Preparer {
        Preparer {
            key: self.key.clone(),
            sealed: self.sealed,
        }
    }

    /// Records prepared decisions of `run` in one transaction, in order, chained after
    /// the last record. Either all are recorded or none.
    pub fn append_prepared(
        &mut self,
        run: i64,
        pending: Vec<PendingRecord>,
        now: Timestamp,
    ) -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let scan_time = now.to_string();
        // Days never go backwards, even when the clock does.
        let today = day_of(now, self.offset);
        let day = if today < self.tail.day {
            self.tail.day.clone()
        } else {
            today
        };
        let tx = self
            .conn
            .transaction()
            .map_err(db_err("starting a transaction"))?;
        let mut tail = self.tail.clone();
        let mut holds = Vec::new();
        let first_of_day = (tail.day != day).then_some(tail.seq + 1);
        {
            let mut insert = tx
                .prepare_cached(&format!(
                    "INSERT INTO records ({ROW_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)"
                ))
                .map_err(db_err("preparing the insert"))?;
            for PendingRecord(mut row, body, hold) in pending {
                if let Some(hold) = hold {
                    hold.write(&tx)?;
                    // Its reservation ends with the transaction, not before.
                    holds.push(hold);
                }
                row.seq = tail.seq + 1;
                row.day.clone_from(&day);
                row.run = run;
                row.scan_time.clone_from(&scan_time);
                let hash = row.hash_after(&tail.hash, &body);
                insert
                    .execute(params![
                        row.seq,
                        row.day,
                        row.run,
                        row.line,
                        row.post_id,
                        row.post_time,
                        row.scan_time,
                        row.user_id,
                        row.personal,
                        row.content,
                        row.categories,
                        row.action,
                        row.report,
                        row.measures,
                        row.hits,
                        row.ruleset,
                        row.caller,
                        row.event,
                        tail.hash,
                        hash,
                    ])
                    .map_err(db_err("recording a decision"))?;
                tail = Tail {
                    seq: row.seq,
                    hash,
                    day: day.clone(),
                };
            }
        }
        match first_of_day {
            Some(first) => tx.execute(
                "INSERT INTO manifest (day, first_seq, last_seq, count, final_hash) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![day, first, tail.seq, tail.seq - first + 1, tail.hash],
            ),
            None => tx
                .prepare_cached(
                    "UPDATE manifest SET last_seq = ?2, count = count + ?3, final_hash = ?4 WHERE day = ?1",
                )
                .and_then(|mut update| {
                    update.execute(params![day, tail.seq, tail.seq - self.tail.seq, tail.hash])
                }),
        }
        .map_err(db_err("updating the manifest"))?;
        tx.commit().map_err(db_err("committing"))?;
        drop(holds);
        self.tail = tail;
        let checkpointer = self.checkpointer.get_or_init(|| {
            let path = self.conn.path().filter(|p| !p.is_empty())?;
            checkpoint::Checkpointer::start(Path::new(path))
        });
        if let Some(c) = checkpointer {
            c.poke();
        }
        Ok(())
    }

    /// The head: the last record's hash and the number of records ever recorded.
    pub fn head(&self) -> (i64, String) {
        (self.tail.seq, self.tail.hash.clone())
    }

    /// Records an act that concerns no post (a read of personal data, say) from a program
    /// that has no run of its own, such as a command-line tool: under a run of its own,
    /// finished at once. Needs the writer's lock ([`AuditStore::lock_writer`]) and, for a
    /// store that seals personal fields, its key. Returns once the record is committed.
    pub fn record_event(
        &mut self,
        caller: &str,
        event: &serde_json::Value,
        now: Timestamp,
    ) -> Result<()> {
        if self.writer.is_none() {
            return Err(Error::new(
                ErrorKind::Audit,
                format!(
                    "audit store {}: recording needs the writer's lock",
                    self.path.display()
                ),
            ));
        }
        let record = self.preparer().prepare_event(caller, event, "")?;
        let run = self.begin_run(None, None, "")?;
        self.append_prepared(run, vec![record], now)?;
        self.finish_run(run)
    }

    /// The last record of an act of `kind` (an `event` whose `kind` is that), if any.
    pub fn last_event(&self, kind: &str) -> Result<Option<AuditRecord>> {
        let found = self
            .conn
            .query_row(
                &format!("SELECT {ROW_COLUMNS} FROM records WHERE event IS NOT NULL AND json_extract(event, '$.kind') = ?1 ORDER BY seq DESC LIMIT 1"),
                [kind],
                Row::read,
            )
            .optional()
            .map_err(db_err("reading the records"))?;
        Ok(found.map(|(row, _, hash)| self.record(row, hash)))
    }

    /// Checks every record and the manifest; names the first problem found. With
    /// `expect_head` (from `head`, kept elsewhere), a store whose head differs (a truncated
    /// tail, or a rewritten chain) fails too.
    pub fn verify(&self, expect_head: Option<&str>) -> Result<Verification> {
        verify_conn(&self.conn, expect_head)
    }

    /// Deletes the records of every day older than `max_days` calendar days at `now`
    /// (whole days; held accounts and posts stay, and go at the first prune after their
    /// hold is lifted). `max_days` below [`RETENTION_FLOOR_DAYS`] is refused. Runs
    /// [`AuditStore::start_prune`] and its steps to the end.
    pub fn prune(&mut self, now: Timestamp, max_days: u32) -> Result<Pruned> {
        let mut pruning = self.start_prune(now, max_days)?;
        while self.prune_step(&mut pruning)? {}
        Ok(pruning.done)
    }

    /// Plans a prune ([`AuditStore::prune`]) to be done in steps: each
    /// [`AuditStore::prune_step`] is one short transaction (at most [`PRUNE_BATCH`]
    /// records), so a process that shares the store (a service's group commit) records
    /// decisions between steps instead of waiting for the whole prune. The store is
    /// consistent after every step: `verify` passes, and a prune cut short is finished by
    /// the next one.
    pub fn start_prune(&self, now: Timestamp, max_days: u32) -> Result<Pruning> {
        if max_days < RETENTION_FLOOR_DAYS {
            return Err(Error::new(
                ErrorKind::Audit,
                format!("records are kept at least {RETENTION_FLOOR_DAYS} days (six calendar months); {max_days} is too few"),
            ));
        }
        let today = now.to_zoned(self.offset.to_time_zone()).date();
        let cutoff = today
            .checked_sub(jiff::Span::new().days(i64::from(max_days)))
            .map_err(|e| Error::new(ErrorKind::Audit, format!("retention cutoff: {e}")))?;
        // Each day's records are a range of `seq` (the primary key): no index needed. A day
        // pruned before is pruned again when a record in it is no longer held.
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT day, pruned_at IS NULL FROM manifest m WHERE day < ?1 \
                 AND (pruned_at IS NULL OR EXISTS (SELECT 1 FROM records \
                 WHERE seq BETWEEN m.first_seq AND m.last_seq AND NOT {HELD})) ORDER BY day"
            ))
            .map_err(db_err("reading the manifest"))?;
        let days = stmt
            .query_map([cutoff.to_string()], |r| {
                Ok(PruneDay {
                    day: r.get(0)?,
                    unpruned: r.get(1)?,
                    next: None,
                    deleted: 0,
                })
            })
            .map_err(db_err("reading the manifest"))?
            .collect::<rusqlite::Result<_>>()
            .map_err(db_err("reading the manifest"))?;
        Ok(Pruning {
            now: now.to_string(),
            cutoff,
            days,
            reviews_done: false,
            batch: PRUNE_BATCH,
            done: Pruned::default(),
        })
    }

    /// Does the next step of `pruning` in one transaction: deletes up to
    /// [`PRUNE_BATCH`] records of the oldest day left, or, once no day is left, up to as
    /// many decided review items past retention. Returns whether steps remain;
    /// [`Pruning::done`] says what the steps so far did. A plan made on another store
    /// fails here, deleting nothing.
    pub fn prune_step(&mut self, pruning: &mut Pruning) -> Result<bool> {
        if pruning.days.is_empty() && pruning.reviews_done {
            return Ok(false);
        }
        // Immediate: it reads, then writes; another writer on the file (the review queue's
        // connection) between the two would fail it as a stale snapshot.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db_err("starting a transaction"))?;
        let Some(day) = pruning.days.front_mut() else {
            let reviews = prune_reviews(&tx, pruning.cutoff, self.offset, pruning.batch)?;
            tx.commit().map_err(db_err("committing the prune"))?;
            pruning.done.reviews += reviews;
            // A step that deleted fewer than it could was the last.
            pruning.reviews_done = (reviews as i64) < pruning.batch;
            return Ok(!pruning.reviews_done);
        };
        // The day's range as the store has it (a plan applied to another store, or a day
        // that is not past the cutoff, fails here instead of deleting another day's
        // records).
        let (first, last): (i64, i64) = tx
            .query_row(
                "SELECT first_seq, last_seq FROM manifest WHERE day = ?1 AND day < ?2",
                params![day.day, pruning.cutoff.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db_err("pruning"))?
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Audit,
                    format!("pruning: day {} is not in this store's manifest before the cutoff (a prune planned on another store?)", day.day),
                )
            })?;
        // From the first record the day still has that no hold keeps: a day pruned
        // before keeps only held records, and its range is passed over at once.
        let from: Option<i64> = tx
            .query_row(
                &format!("SELECT MIN(seq) FROM records WHERE seq BETWEEN ?1 AND ?2 AND NOT {HELD}"),
                [day.next.unwrap_or(first), last],
                |r| r.get(0),
            )
            .map_err(db_err("pruning"))?;
        let to = from.map_or(last, |f| (f + pruning.batch - 1).min(last));
        let deleted = match from {
            None => 0,
            Some(from) => tx
                .execute(
                    &format!("DELETE FROM records WHERE seq BETWEEN ?1 AND ?2 AND NOT {HELD}"),
                    [from, to],
                )
                .map_err(db_err("pruning"))? as u64,
        };
        // The day is marked pruned with its first step, and its count of pruned records
        // grows with each: `verify` checks that the records left and that count make the
        // day's count, whenever the steps stop.
        tx.execute(
            "UPDATE manifest SET pruned_at = COALESCE(pruned_at, ?2), pruned_count = pruned_count + ?3 WHERE day = ?1",
            params![day.day, pruning.now, deleted as i64],
        )
        .map_err(db_err("pruning"))?;
        let finished = to >= last;
        let kept: i64 = if finished {
            tx.query_row(
                "SELECT COUNT(*) FROM records WHERE seq BETWEEN ?1 AND ?2",
                [first, last],
                |r| r.get(0),
            )
            .map_err(db_err("pruning"))?
        } else {
            0
        };
        tx.commit().map_err(db_err("committing the prune"))?;
        pruning.done.records += deleted;
        day.deleted += deleted;
        day.next = Some(to + 1);
        if finished {
            let day = pruning.days.pop_front().expect("the day just pruned");
            // A day pruned before is reported again only when this prune deleted some of
            // it (records whose hold was lifted since).
            if day.unpruned || day.deleted > 0 {
                pruning.done.days.push(day.day);
                pruning.done.held += kept as u64;
            }
        }
        Ok(true)
    }

    /// Keeps the records of an account (`kind` "user") or a post (`kind` "post", the id as
    /// in the decision: `"p1"` or `17`) past retention.
    pub fn hold(&mut self, kind: HoldKind, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO holds (kind, value, created) VALUES (?1, ?2, ?3)",
                params![
                    kind.as_str(),
                    kind.stored(value),
                    Timestamp::now().to_string()
                ],
            )
            .map_err(db_err("adding a hold"))?;
        Ok(())
    }

    /// Removes a hold; returns whether there was one.
    pub fn unhold(&mut self, kind: HoldKind, value: &str) -> Result<bool> {
        let n = self
            .conn
            .execute(
                "DELETE FROM holds WHERE kind = ?1 AND value = ?2",
                params![kind.as_str(), kind.stored(value)],
            )
            .map_err(db_err("removing a hold"))?;
        Ok(n > 0)
    }

    /// Calls `each` with every record matching `filter`, in the order recorded. Personal
    /// fields are opened with the key; without it they are withheld (`personal: None`),
    /// and an IP filter on a sealed store is refused.
    pub fn query(
        &self,
        filter: &Filter,
        mut each: impl FnMut(AuditRecord) -> Result<()>,
    ) -> Result<u64> {
        if filter.ip.is_some() && self.sealed && self.key.is_none() {
            return Err(Error::new(
                ErrorKind::AuditKey,
                format!("IP addresses are sealed in this store: give its key to search by IP (--key-file, or {KEY_ENV})"),
            ));
        }
        let mut sql = format!("SELECT {ROW_COLUMNS} FROM records WHERE 1 = 1");
        let mut args: Vec<String> = Vec::new();
        if let Some(u) = &filter.user {
            args.push(u.clone());
            sql.push_str(&format!(" AND user_id = ?{}", args.len()));
        }
        if let Some(a) = &filter.action {
            args.push(a.clone());
            sql.push_str(&format!(" AND action = ?{}", args.len()));
        }
        if let Some(c) = &filter.caller {
            args.push(c.clone());
            sql.push_str(&format!(" AND caller = ?{}", args.len()));
        }
        if let Some(p) = &filter.post {
            // Stored as JSON: the string "17" and the number 17 both answer to `17`.
            args.push(to_json(&PostId::Str(p.clone())));
            let n = args.len();
            match p.parse::<i64>() {
                Ok(i) => {
                    args.push(to_json(&PostId::Int(i)));
                    sql.push_str(&format!(" AND post_id IN (?{n}, ?{})", n + 1));
                }
                Err(_) => sql.push_str(&format!(" AND post_id = ?{n}")),
            }
        }
        sql.push_str(" ORDER BY seq");
        let mut stmt = self.conn.prepare(&sql).map_err(db_err("querying"))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), Row::read)
            .map_err(db_err("querying"))?;
        let mut n = 0;
        for r in rows {
            let (row, _, hash) = r.map_err(db_err("querying"))?;
            let record = self.record(row, hash);
            if !matches(filter, &record) {
                continue;
            }
            n += 1;
            each(record)?;
        }
        Ok(n)
    }

    fn record(&self, row: Row, hash: String) -> AuditRecord {
        let personal = if key::is_sealed(&row.personal) {
            self.key.as_ref().and_then(|k| k.open(&row.personal))
        } else {
            Some(row.personal)
        };
        let personal: Option<Personal> = personal.and_then(|p| serde_json::from_str(&p).ok());
        let mut hits = serde_json::from_str(&row.hits).unwrap_or_default();
        unseal_hits(&mut hits, personal.as_ref().and_then(|p| p.name.as_deref()));
        AuditRecord {
            seq: row.seq,
            day: row.day,
            run: row.run,
            line: row.line,
            post_id: row
                .post_id
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok()),
            post_time: row.post_time,
            scan_time: row.scan_time,
            user_id: row.user_id,
            personal,
            content: serde_json::from_str(&row.content).unwrap_or_default(),
            categories: serde_json::from_str(&row.categories).unwrap_or_default(),
            action: row.action,
            report: row.report,
            measures: serde_json::from_str(&row.measures).unwrap_or_default(),
            hits,
            ruleset: row.ruleset,
            hash,
            caller: row.caller,
            event: row
                .event
                .map(|e| serde_json::from_str(&e).unwrap_or(serde_json::Value::String(e))),
        }
    }

    /// The flagged records of the store, oldest first, as (account, IP, post time or scan
    /// time, post id): what rebuilds the escalation counters of a CLI run.
    pub fn offences(
        &self,
        mut each: impl FnMut(Option<&str>, Option<&str>, &str, Option<&str>),
    ) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare("SELECT user_id, personal, COALESCE(post_time, scan_time), post_id FROM records WHERE action != 'allow' AND event IS NULL ORDER BY seq")
            .map_err(db_err("reading offences"))?;
        let mut rows = stmt.query([]).map_err(db_err("reading offences"))?;
        while let Some(r) = rows.next().map_err(db_err("reading offences"))? {
            let user: Option<String> = r.get(0).map_err(db_err("reading offences"))?;
            let personal: String = r.get(1).map_err(db_err("reading offences"))?;
            let time: String = r.get(2).map_err(db_err("reading offences"))?;
            let post: Option<String> = r.get(3).map_err(db_err("reading offences"))?;
            let personal = if key::is_sealed(&personal) {
                self.key.as_ref().and_then(|k| k.open(&personal))
            } else {
                Some(personal)
            };
            let ip = personal
                .and_then(|p| serde_json::from_str::<Personal>(&p).ok())
                .and_then(|p| p.ip);
            each(user.as_deref(), ip.as_deref(), &time, post.as_deref());
        }
        Ok(())
    }
}

/// Verifies the store (or a backup of one) at `path` as [`AuditStore::verify`] does, without
/// writing to it: opened read-only, so checking a copy leaves it byte for byte as it was.
pub fn verify_file(path: &Path, expect_head: Option<&str>) -> Result<Verification> {
    let conn = open_read_only(path)?;
    verify_conn(&conn, expect_head)
}

/// A read-only connection to the audit store at `path`, refusing a file that is not one (or
/// one of a newer format).
pub(crate) fn open_read_only(path: &Path) -> Result<Connection> {
    use rusqlite::OpenFlags;
    let what = format!("audit store {}", path.display());
    match std::fs::metadata(path) {
        Err(_) => {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("{}: no such audit store", path.display()),
            ))
        }
        Ok(m) if !m.is_file() => {
            return Err(Error::new(
                ErrorKind::Audit,
                format!("{}: not a file, so not an audit store", path.display()),
            ))
        }
        Ok(_) => {}
    }
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db_err(&what))?;
    wait_when_busy(&mut conn).map_err(db_err(&what))?;
    let schema: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| {
            Error::new(
                ErrorKind::Audit,
                format!("{}: not an audit store ({e})", path.display()),
            )
        })?;
    let version: u32 = schema.as_deref().unwrap_or("1").parse().unwrap_or(u32::MAX);
    if version > SCHEMA_VERSION {
        return Err(Error::new(
            ErrorKind::Audit,
            format!("{what} has format {}, newer than this shenhe's ({SCHEMA_VERSION}): use a newer shenhe", schema.as_deref().unwrap_or("?")),
        ));
    }
    Ok(conn)
}

/// [`AuditStore::verify`] on any connection to a store: inside one read transaction, so
/// a store another process appends to meanwhile is checked as it stood when it began.
fn verify_conn(conn: &Connection, expect_head: Option<&str>) -> Result<Verification> {
    // A deferred transaction: its first read fixes the snapshot (WAL lets writers go on).
    let tx = conn
        .unchecked_transaction()
        .map_err(db_err("starting a read transaction"))?;
    // A store of format 1 has no caller and event columns (read as NULL, as they hash).
    let has_caller: bool = tx
        .query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('records') WHERE name = 'caller'",
            [],
            |r| r.get(0),
        )
        .map_err(db_err("reading the records"))?;
    let columns = if has_caller {
        ROW_COLUMNS
    } else {
        ROW_COLUMNS_V1
    };
    let mut v = Verification {
        head: GENESIS.to_owned(),
        ..Verification::default()
    };
    let days: Vec<DayEntry> = {
        let mut stmt = tx
            .prepare("SELECT day, first_seq, last_seq, count, final_hash, pruned_at, pruned_count FROM manifest ORDER BY day")
            .map_err(db_err("reading the manifest"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(DayEntry {
                    day: r.get(0)?,
                    first: r.get(1)?,
                    last: r.get(2)?,
                    count: r.get(3)?,
                    final_hash: r.get(4)?,
                    pruned_at: r.get(5)?,
                    pruned_count: r.get(6)?,
                })
            })
            .map_err(db_err("reading the manifest"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(db_err("reading the manifest"))?
    };
    let mut stmt = tx
        .prepare(&format!("SELECT {columns} FROM records ORDER BY seq"))
        .map_err(db_err("reading the records"))?;
    let mut rows = stmt
        .query_map([], Row::read)
        .map_err(db_err("reading the records"))?
        .peekable();
    let mut prev_final = GENESIS.to_owned();
    let mut next_seq = 1;
    for DayEntry {
        day,
        first,
        last,
        count,
        final_hash,
        pruned_at,
        pruned_count,
    } in &days
    {
        v.days += 1;
        if *first != next_seq {
            v.problem = Some(format!("day {day}: the manifest starts at record {first}, expected {next_seq} (a day's entry was removed or altered)"));
            return Ok(v);
        }
        let mut found = 0;
        let mut prev = prev_final.clone();
        let mut expected_seq = *first;
        while let Some(r) = rows.peek() {
            let (row, stored_prev, hash) = match r {
                Ok(x) => x.clone(),
                Err(e) => {
                    return Err(Error::new(
                        ErrorKind::Audit,
                        format!("reading the records: {e}"),
                    ))
                }
            };
            if row.day != *day {
                if row.day < *day || row.seq <= *last {
                    v.problem = Some(format!("record {} (post {}): its day {} is out of order (a record was inserted or moved)", row.seq, row.post_id.as_deref().unwrap_or("-"), row.day));
                    return Ok(v);
                }
                break;
            }
            rows.next();
            v.records += 1;
            found += 1;
            let post = row.post_id.as_deref().unwrap_or("-").to_owned();
            if row.seq < *first || row.seq > *last {
                v.problem = Some(format!("record {} (post {post}): outside the records {first}..{last} the manifest lists for day {day} (inserted)", row.seq));
                return Ok(v);
            }
            if row.hash_after(&stored_prev, &row.body_digest()) != hash {
                v.problem = Some(format!("record {} (post {post}, day {day}): its content does not match its hash (the record was edited)", row.seq));
                return Ok(v);
            }
            if pruned_at.is_none() {
                if row.seq != expected_seq || stored_prev != prev {
                    v.problem = Some(format!("record {} (post {post}, day {day}): the chain is broken before it (a record was deleted, inserted or reordered)", row.seq));
                    return Ok(v);
                }
                expected_seq += 1;
                prev = hash.clone();
            }
        }
        match pruned_at {
            None => {
                if found != *count {
                    v.problem = Some(format!("day {day}: the manifest lists {count} records, the store has {found} (records were deleted or inserted)"));
                    return Ok(v);
                }
                if prev != *final_hash {
                    v.problem = Some(format!("day {day}: its last record does not end in the manifest's final hash (the day's tail was altered)"));
                    return Ok(v);
                }
            }
            Some(_) => {
                v.pruned_days += 1;
                if found + pruned_count != *count {
                    v.problem = Some(format!("day {day} (pruned): {found} held records and {pruned_count} pruned do not make the manifest's {count}"));
                    return Ok(v);
                }
            }
        }
        prev_final = final_hash.clone();
        next_seq = last + 1;
    }
    if let Some(r) = rows.next() {
        let seq = r.map(|r| r.0.seq).unwrap_or(-1);
        v.problem = Some(format!(
            "record {seq}: not in any day of the manifest (inserted)"
        ));
        return Ok(v);
    }
    v.head = prev_final;
    if let Some(expect) = expect_head {
        if expect.trim() != v.head {
            let problem = format!("the head is {}, expected {} (records at the end were removed, or the chain was rewritten)", v.head, expect.trim());
            v.problem = Some(problem);
        }
    }
    Ok(v)
}

fn matches(f: &Filter, r: &AuditRecord) -> bool {
    if let Some(c) = f.category {
        if !r.categories.contains(&c) {
            return false;
        }
    }
    let at = r.scan_time.parse::<Timestamp>().ok();
    if let (Some(since), Some(at)) = (f.since, at) {
        if at < since {
            return false;
        }
    }
    if let (Some(until), Some(at)) = (f.until, at) {
        if at >= until {
            return false;
        }
    }
    if let Some(net) = &f.ip {
        let ip = r
            .personal
            .as_ref()
            .and_then(|p| p.ip.as_deref())
            .and_then(|ip| ip.trim().parse::<std::net::IpAddr>().ok());
        if !ip.is_some_and(|ip| net.contains(&ip)) {
            return false;
        }
    }
    true
}

/// What a hold keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldKind {
    /// Every record of an account.
    User,
    /// The records of one post.
    Post,
}

impl HoldKind {
    fn as_str(self) -> &'static str {
        match self {
            HoldKind::User => "user",
            HoldKind::Post => "post",
        }
    }

    /// The value as the records store it: post ids are stored as JSON (`"p1"`, `17`).
    fn stored(self, value: &str) -> String {
        match self {
            HoldKind::User => value.to_owned(),
            HoldKind::Post => match value.parse::<i64>() {
                Ok(i) => to_json(&PostId::Int(i)),
                Err(_) => to_json(&PostId::Str(value.to_owned())),
            },
        }
    }
}

#[cfg(test)]
mod tests;
