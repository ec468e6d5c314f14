//! Backups of an audit store: consistent copies taken while scans and the service keep
//! writing, verified before they are kept, named by time and head, and rotated without
//! losing the only copy of records the retention floor still needs.
//!
//! * **Consistent**: SQLite's online backup copies every page in one step, inside one read
//!   transaction: the copy is the store as it stood at one commit, holding every record
//!   committed before the backup began. The store's journal is WAL, so writers are never
//!   blocked meanwhile.
//! * **Verified**: the copy's chain and manifest are checked (as `audit verify` does)
//!   before it gets its name; a copy that does not verify is deleted, never kept.
//! * **Named** `audit-<UTC time>-<first 12 hex digits of the head>.db`, written private
//!   (0600) under a temporary name, synced, then renamed into place: a reader of the
//!   directory (a standby copying it) never sees half a backup under a backup's name. The
//!   copy is a plain SQLite file (rollback journal, not WAL): one file says it all.
//! * **Rotated** ([`rotate`]): the newest N are kept; an older backup is removed only when
//!   the newest continues its chain (holds its head record, so every record of the older
//!   one still within retention is in the newest too), or when it was taken more than
//!   [`RETENTION_FLOOR_DAYS`] days ago (then each of its records is past the six-month
//!   floor). The backup of a store that was since replaced or rewritten is thus kept: it
//!   is the only copy of its records.
//!
//! This module reads the store and writes the backup directory; it never writes the store
//! (recording that a backup was taken is the caller's act).

use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;
use jiff::Timestamp;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::{db_err, open_read_only, verify_conn, GENESIS, RETENTION_FLOOR_DAYS};
use crate::error::{Error, ErrorKind, Result};

/// What [`backup`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backup {
    /// The backup file.
    pub path: PathBuf,
    /// When it was taken (its name says the same, to the second, in UTC).
    pub taken: Timestamp,
    /// Records the copy holds (pruned ones not counted).
    pub records: u64,
    /// Its head: the last record's hash (the genesis hash for an empty store). `audit
    /// verify --db BACKUP --expect-head HEAD` proves a copy of it later.
    pub head: String,
}

/// A backup file found in a directory, by its name.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupFile {
    /// The file.
    pub path: PathBuf,
    /// When it was taken, from its name.
    pub taken: Timestamp,
    /// When it was last written (orders backups taken within the same second).
    modified: Option<std::time::SystemTime>,
}

/// What [`rotate`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rotation {
    /// Backups removed, oldest first.
    pub removed: Vec<PathBuf>,
    /// Backups beyond the number to keep that stay, because the newest backup does not
    /// continue their chain and they are younger than the retention floor: the only copy
    /// of some of their records.
    pub kept_for_floor: Vec<PathBuf>,
}

const PREFIX: &str = "audit-";
const SUFFIX: &str = ".db";
const TIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// The name of a backup taken at `taken` whose head is `head`.
fn file_name(taken: Timestamp, head: &str) -> String {
    let time = taken.to_zoned(TimeZone::UTC).strftime(TIME_FORMAT);
    format!("{PREFIX}{time}-{}{SUFFIX}", &head[..12.min(head.len())])
}

/// The time in a backup's file name, when the name is one of ours.
fn parse_name(name: &str) -> Option<Timestamp> {
    let middle = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let (time, head) = middle.split_once('-')?;
    if head.len() != 12 || !head.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let civil = jiff::civil::DateTime::strptime(TIME_FORMAT, time).ok()?;
    civil.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp())
}

/// Takes a backup of the audit store at `store` into `dir` (created private when missing):
/// a consistent copy while others write to the store, verified, then renamed into place as
/// `audit-<UTC time>-<head>.db`. Reads the store only: no lock is needed and none is taken.
pub fn backup(store: &Path, dir: &Path, now: Timestamp) -> Result<Backup> {
    let source = open_read_only(store)?;
    let what = format!("audit store {}", store.display());
    let has_caller: bool = source
        .query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('records') WHERE name = 'caller'",
            [],
            |r| r.get(0),
        )
        .map_err(db_err(&what))?;
    if !has_caller {
        return Err(Error::new(
            ErrorKind::Audit,
            format!("{what} has format 1: open it once with this shenhe (`shenhe audit head --db {}` upgrades it), then back it up", store.display()),
        ));
    }
    crate::fsx::private_dir_all(dir).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("backup directory {}: {e}", dir.display()),
        )
    })?;
    let tmp = temporary(dir)?;
    let taken = copy_and_verify(&source, &tmp, store).and_then(|(records, head)| {
        let path = dir.join(file_name(now, &head));
        std::fs::rename(&tmp, &path).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cannot name the backup {}: {e}", path.display()),
            )
        })?;
        // The rename is durable only once the directory is.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(Backup {
            path,
            taken: now,
            records,
            head,
        })
    });
    if taken.is_err() {
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(journal_of(&tmp));
    }
    taken
}

/// A new private file in `dir` for a backup being written.
fn temporary(dir: &Path) -> Result<PathBuf> {
    for attempt in 0u32..100 {
        let tmp = dir.join(format!(
            ".audit-backup.{}.{attempt}.tmp",
            std::process::id()
        ));
        match crate::fsx::create_private(&tmp) {
            Ok(_) => return Ok(tmp),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::Io,
                    format!("cannot write in {}: {e}", dir.display()),
                ))
            }
        }
    }
    Err(Error::new(
        ErrorKind::Io,
        format!(
            "cannot write in {}: too many temporary files",
            dir.display()
        ),
    ))
}

fn journal_of(path: &Path) -> PathBuf {
    let mut j = path.as_os_str().to_owned();
    j.push("-journal");
    PathBuf::from(j)
}

/// Copies `source` into the empty file `tmp` in one step, makes the copy a one-file
/// database, verifies it and syncs it. Returns its records and head.
fn copy_and_verify(source: &Connection, tmp: &Path, store: &Path) -> Result<(u64, String)> {
    let failed = format!("backing up {}", store.display());
    let mut copy = Connection::open_with_flags(
        tmp,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db_err(&failed))?;
    {
        let b = rusqlite::backup::Backup::new(source, &mut copy).map_err(db_err(&failed))?;
        // -1: every page in one step, one read transaction on the source: a snapshot.
        // Smaller steps would restart whenever another process commits in between.
        let mut busy = 0;
        loop {
            use rusqlite::backup::StepResult;
            match b.step(-1).map_err(db_err(&failed))? {
                StepResult::Done => break,
                StepResult::More => {}
                // A writer recovering the journal, or a lock on the copy: wait a little.
                _ if busy < 300 => {
                    busy += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                _ => {
                    return Err(Error::new(
                        ErrorKind::Audit,
                        format!("{failed}: the store stayed locked for 30 seconds"),
                    ))
                }
            }
        }
    }
    let mode: String = copy
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .map_err(db_err(&failed))?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(Error::new(
            ErrorKind::Audit,
            format!("{failed}: the copy stayed in journal mode {mode}"),
        ));
    }
    let v = verify_conn(&copy, None)?;
    if let Some(problem) = v.problem {
        return Err(Error::new(
            ErrorKind::Audit,
            format!("the copy of {} does not verify, so it was not kept: {problem} (run `shenhe audit verify --db {}`)", store.display(), store.display()),
        ));
    }
    copy.close().map_err(|(_, e)| db_err(&failed)(e))?;
    std::fs::File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::new(ErrorKind::Io, format!("{failed}: {e}")))?;
    Ok((v.records, v.head))
}

/// The backups in `dir` (files named as [`backup`] names them), oldest first.
pub fn list(dir: &Path) -> Result<Vec<BackupFile>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("backup directory {}: {e}", dir.display()),
        )
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("backup directory {}: {e}", dir.display()),
            )
        })?;
        let name = entry.file_name();
        let Some(taken) = name.to_str().and_then(parse_name) else {
            continue;
        };
        let meta = entry.metadata().ok();
        if meta.as_ref().is_some_and(|m| m.is_file()) {
            out.push(BackupFile {
                path: entry.path(),
                taken,
                modified: meta.and_then(|m| m.modified().ok()),
            });
        }
    }
    // Names tell the second; backups taken within one second are ordered by when they
    // were written (the head in the name would order them at random).
    out.sort_by(|a, b| {
        (a.taken, a.modified)
            .cmp(&(b.taken, b.modified))
            .then_with(|| a.path.cmp(&b.path))
    });
    Ok(out)
}

/// Keeps the newest `keep` backups in `dir` (at least one) and removes older ones, except
/// those that are the only copy of records younger than the retention floor (see the
/// module's documentation for the rule). `now` dates the backups' ages.
pub fn rotate(dir: &Path, keep: usize, now: Timestamp) -> Result<Rotation> {
    if keep == 0 {
        return Err(Error::new(
            ErrorKind::InvalidValue,
            "keep at least one backup (--keep 1 or more)",
        ));
    }
    let all = list(dir)?;
    let mut out = Rotation::default();
    if all.len() <= keep {
        return Ok(out);
    }
    let newest = open_read_only(&all[all.len() - 1].path)?;
    let floor = jiff::SignedDuration::from_hours(24 * i64::from(RETENTION_FLOOR_DAYS));
    for old in &all[..all.len() - keep] {
        let past_floor = now.duration_since(old.taken) >= floor;
        if past_floor || continues(&newest, &old.path)? {
            std::fs::remove_file(&old.path).map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!("cannot remove the old backup {}: {e}", old.path.display()),
                )
            })?;
            out.removed.push(old.path.clone());
        } else {
            out.kept_for_floor.push(old.path.clone());
        }
    }
    Ok(out)
}

/// Whether the store `newest` continues the chain of the backup at `older`: it holds the
/// older one's head record with the same hash, or that record lies in a day `newest` has
/// pruned (past retention: nothing there to lose).
fn continues(newest: &Connection, older: &Path) -> Result<bool> {
    let what = format!("backup {}", older.display());
    let old = open_read_only(older)?;
    let tail = |sql: &str| {
        old.query_row(sql, [], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .optional()
        .map_err(db_err(&what))
    };
    let (seq, head) = match tail("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1")? {
        Some(t) => t,
        None => tail("SELECT last_seq, final_hash FROM manifest ORDER BY day DESC LIMIT 1")?
            .unwrap_or((0, GENESIS.to_owned())),
    };
    if seq == 0 {
        return Ok(true);
    }
    let what = "reading the newest backup";
    let hash: Option<String> = newest
        .query_row("SELECT hash FROM records WHERE seq = ?1", [seq], |r| {
            r.get(0)
        })
        .optional()
        .map_err(db_err(what))?;
    if let Some(hash) = hash {
        return Ok(hash == head);
    }
    let day: Option<(bool, i64, String)> = newest
        .query_row(
            "SELECT pruned_at IS NOT NULL, last_seq, final_hash FROM manifest WHERE first_seq <= ?1 AND last_seq >= ?1",
            [seq],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(db_err(what))?;
    Ok(match day {
        Some((pruned, last, final_hash)) => pruned && (last != seq || final_hash == head),
        None => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_utc_time_and_the_head() {
        let t: Timestamp = "2026-12-03T14:15:00+08:00".parse().unwrap();
        let name = file_name(t, "abcdef0123456789");
        assert_eq!(name, "audit-20261203T061500Z-abcdef012345.db");
        assert_eq!(parse_name(&name), Some(t));
        for other in [
            "audit-20261203T061500Z-abcdef01234.db",
            "audit-2026-12-03-abcdef012345.db",
            ".audit-backup.1.0.tmp",
            "audit.db",
        ] {
            assert_eq!(parse_name(other), None, "{other}");
        }
    }
}
