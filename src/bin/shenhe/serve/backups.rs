//! Backups of the audit store on a schedule (`[audit] backup_dir`, `backup_every`,
//! `backup_keep`): a thread of their own takes one at start and then every interval, as
//! `shenhe audit backup` does, records each in the audit chain, and keeps the figures
//! `/metrics` reports. And its pruning (`[audit] prune_max_days`): at start and daily, as
//! `shenhe audit prune` does, which cannot run beside the service (one writer per store).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::App;

/// The last backup's figures, for `/metrics`.
#[derive(Debug, Default, Clone)]
pub struct Figures {
    /// When the last backup that succeeded was taken (seconds since the Unix epoch).
    pub last_timestamp: Option<i64>,
    /// Records it holds.
    pub last_records: Option<u64>,
    /// Backups that failed (not written, not verified, or not recorded).
    pub failures: u64,
}

/// The schedule's state, shared with the metrics route.
#[derive(Debug, Default)]
pub struct Backups {
    figures: Mutex<Figures>,
}

impl Backups {
    pub fn figures(&self) -> Figures {
        self.figures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn update(&self, f: impl FnOnce(&mut Figures)) {
        f(&mut self.figures.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// Starts the schedule when `[audit] backup_dir` is set.
pub fn start(app: &Arc<App>) -> anyhow::Result<()> {
    let (Some(dir), Some(store)) = (
        app.config.backups.backup_dir.clone(),
        app.config.audit.clone(),
    ) else {
        return Ok(());
    };
    let every = app.config.backups.every()?;
    let keep = app.config.backups.backup_keep;
    let app = app.clone();
    std::thread::Builder::new()
        .name("shenhe-backups".into())
        .spawn(move || loop {
            take(&app, &store, &dir, keep);
            std::thread::sleep(every);
        })?;
    Ok(())
}

/// How often the store is pruned when `[audit] prune_max_days` is set (and once at start).
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Starts the daily prune when `[audit] prune_max_days` is set.
pub fn start_prune(app: &Arc<App>) -> anyhow::Result<()> {
    // Checked with the rest of the config, before anything was opened.
    let Some(days) = app.config.backups.prune_days()? else {
        return Ok(());
    };
    let app = app.clone();
    std::thread::Builder::new()
        .name("shenhe-prune".into())
        .spawn(move || loop {
            prune(&app, days);
            std::thread::sleep(PRUNE_EVERY);
        })?;
    Ok(())
}

/// One prune, recorded in the audit chain when it deleted anything, also when it stopped
/// on a failure after some steps (the record then says why); failures are logged, never
/// fatal (the next day tries again and goes on from where this one stopped).
fn prune(app: &App, days: u32) {
    let Some((p, outcome)) = app.pipeline.prune_audit(jiff::Timestamp::now(), days) else {
        return;
    };
    let mut failure = outcome.err().map(|e| e.to_string());
    if !p.days.is_empty() || p.records > 0 || p.reviews > 0 {
        let mut event = serde_json::json!({
            "kind": "prune",
            "max_days": days,
            "days": p.days,
            "records": p.records,
            "held": p.held,
            "reviews": p.reviews,
        });
        if let Some(f) = &failure {
            event["error"] = serde_json::Value::from(format!("stopped before the end: {f}"));
        }
        if let Err(e) = app.pipeline.record_event("schedule", &event) {
            let recorded = format!("the store was pruned but the prune could not be recorded: {e}");
            failure = Some(match failure {
                Some(f) => format!("{f}; {recorded}"),
                None => recorded,
            });
        }
    }
    match failure {
        None => {
            tracing::info!(target: "shenhe::prune", days = p.days.len(), records = p.records, held = p.held, reviews = p.reviews, "audit store pruned");
        }
        Some(f) => {
            tracing::error!(target: "shenhe::prune", error = %f, days = p.days.len(), records = p.records, held = p.held, reviews = p.reviews, "audit store prune failed");
        }
    }
}

/// One backup, its rotation and its record; failures are logged and counted, never fatal.
fn take(app: &App, store: &std::path::Path, dir: &std::path::Path, keep: Option<usize>) {
    let now = jiff::Timestamp::now();
    let done = (|| -> anyhow::Result<(shenhe::audit::backup::Backup, Vec<PathBuf>)> {
        let b = shenhe::audit::backup::backup(store, dir, now)?;
        let mut removed = Vec::new();
        if let Some(n) = keep {
            let r = shenhe::audit::backup::rotate(dir, n, now)?;
            for p in &r.kept_for_floor {
                tracing::warn!(target: "shenhe::backup", file = %p.display(), "old backup kept: the newest does not continue its chain, and it is younger than the retention floor");
            }
            removed = r.removed;
        }
        let event = serde_json::json!({
            "kind": "backup",
            "file": b.path.file_name().map(|n| n.to_string_lossy().into_owned()),
            "head": b.head,
            "records": b.records,
            "removed": removed.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect::<Vec<_>>(),
        });
        app.pipeline.record_event("schedule", &event).map_err(|e| {
            anyhow::anyhow!(
                "the backup {} was written but could not be recorded: {e}",
                b.path.display()
            )
        })?;
        Ok((b, removed))
    })();
    match done {
        Ok((b, removed)) => {
            tracing::info!(target: "shenhe::backup", file = %b.path.display(), records = b.records, head = %b.head, removed = removed.len(), "audit store backed up");
            app.backups.update(|f| {
                f.last_timestamp = Some(b.taken.as_second());
                f.last_records = Some(b.records);
            });
        }
        Err(e) => {
            tracing::error!(target: "shenhe::backup", error = %format!("{e:#}"), "audit store backup failed");
            app.backups.update(|f| f.failures += 1);
        }
    }
}

/// The backup lines of `/metrics` (none when no schedule is configured).
pub fn render(app: &App) -> String {
    if app.config.backups.backup_dir.is_none() {
        return String::new();
    }
    let f = app.backups.figures();
    let mut out = String::new();
    let mut row = |name: &str, kind: &str, help: &str, value: Option<String>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        if let Some(v) = value {
            out.push_str(&format!("{name} {v}\n"));
        }
    };
    row(
        "shenhe_audit_backup_last_timestamp_seconds",
        "gauge",
        "When the last successful backup of the audit store was taken (Unix time).",
        f.last_timestamp.map(|t| t.to_string()),
    );
    row(
        "shenhe_audit_backup_last_records",
        "gauge",
        "Records in the last successful backup.",
        f.last_records.map(|n| n.to_string()),
    );
    row(
        "shenhe_audit_backup_failures_total",
        "counter",
        "Scheduled backups that failed (not written, not verified or not recorded).",
        Some(f.failures.to_string()),
    );
    out
}
