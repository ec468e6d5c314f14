//! The service's configuration file (`shenhe.toml`, table `[server]`) and the flags that
//! override it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

use super::auth::{KeyConfig, UserConfig};
use super::review::ReviewConfig;

/// The whole file: everything the service reads is under `[server]`.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    server: ServerConfig,
    #[serde(default)]
    review: ReviewConfig,
    #[serde(default)]
    audit: AuditConfig,
}

/// `[audit]`: backups and pruning of the audit store on a schedule.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Where backups go (as `shenhe audit backup --to DIR`); no scheduled backups without.
    pub backup_dir: Option<PathBuf>,
    /// How often: a duration such as "6h" or "30m" (default 6h). The first is taken at
    /// start.
    pub backup_every: Option<String>,
    /// Keep the newest N (as `--keep N`, with its retention-floor rule); all when absent.
    pub backup_keep: Option<usize>,
    /// Prune the store at start and then daily, as `shenhe audit prune --max-days N` would
    /// (which cannot run while the service holds the store); no pruning when absent.
    pub prune_max_days: Option<u32>,
}

impl AuditConfig {
    /// The days to keep, when pruning is on; refuses fewer than the retention floor.
    pub fn prune_days(&self) -> anyhow::Result<Option<u32>> {
        match self.prune_max_days {
            Some(n) if n < shenhe::audit::RETENTION_FLOOR_DAYS => bail!(
                "[audit] prune_max_days = {n}: records are kept at least {} days (six calendar months)",
                shenhe::audit::RETENTION_FLOOR_DAYS
            ),
            days => Ok(days),
        }
    }

    /// The interval between backups; refuses what is not a positive duration.
    pub fn every(&self) -> anyhow::Result<std::time::Duration> {
        let text = self.backup_every.as_deref().unwrap_or("6h");
        let d: jiff::SignedDuration = text.parse().map_err(|e| {
            anyhow::anyhow!(
                "[audit] backup_every = {text:?} is not a duration such as \"6h\" or \"30m\": {e}"
            )
        })?;
        if d < jiff::SignedDuration::from_secs(1) {
            bail!("[audit] backup_every = {text:?}: at least one second");
        }
        Ok(d.unsigned_abs())
    }
}

/// `[server]`: where to listen, what to load, what to record, who may call.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub listen: String,
    /// Rule files or directories; the bundled rules when empty.
    pub rules: Vec<PathBuf>,
    /// Audit store (SQLite): every decision is recorded before it is answered.
    pub audit: Option<PathBuf>,
    /// The key that seals personal fields in the audit store (else `SHENHE_AUDIT_KEY`).
    pub audit_key_file: Option<PathBuf>,
    /// Reports directory.
    pub reports: Option<PathBuf>,
    /// Hours after detection by which a report is due.
    pub report_deadline_hours: u32,
    /// Repeat-offence escalation.
    pub escalation: bool,
    /// TLS certificate chain and private key (PEM); plain HTTP without them.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Largest post, its text fields together, in bytes; a request body may be twice this
    /// (JSON escapes) plus 64 KiB of metadata.
    pub max_post_bytes: usize,
    /// Most hits listed per decision.
    pub max_hits: usize,
    /// Largest body of `/v1/moderate/batch`.
    pub max_batch_bytes: usize,
    /// A request (headers and body read, decision made) that takes longer gets 408.
    pub request_timeout_secs: u64,
    /// Requests per second each key may make (bursts up to the same number); 0: no limit.
    pub rate_limit: u32,
    /// The API keys.
    pub keys: Vec<KeyConfig>,
    /// People who log in to the review console by password.
    pub users: Vec<UserConfig>,
    /// `[review]`: the review queue's callbacks and deadline (a table of its own in the
    /// file).
    #[serde(skip)]
    pub review: ReviewConfig,
    /// `[audit]`: scheduled backups of the store (a table of its own in the file).
    #[serde(skip)]
    pub backups: AuditConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            rules: Vec::new(),
            audit: None,
            audit_key_file: None,
            reports: None,
            report_deadline_hours: shenhe::report::DEFAULT_DEADLINE_HOURS,
            escalation: true,
            tls_cert: None,
            tls_key: None,
            max_post_bytes: shenhe::DEFAULT_MAX_POST_BYTES,
            max_hits: shenhe::DEFAULT_MAX_HITS,
            max_batch_bytes: 64 << 20,
            request_timeout_secs: 30,
            rate_limit: 0,
            keys: Vec::new(),
            users: Vec::new(),
            review: ReviewConfig::default(),
            backups: AuditConfig::default(),
        }
    }
}

impl ServerConfig {
    /// Reads `path`; a syntax error or an unknown key names file:line:column. Relative paths
    /// inside are taken from the file's directory.
    pub fn load(path: &Path) -> anyhow::Result<ServerConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        ServerConfig::parse(path, &text)
    }

    /// [`load`](ServerConfig::load) of `text`, the content of `path`.
    pub fn parse(path: &Path, text: &str) -> anyhow::Result<ServerConfig> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            let loc = shenhe::Location::from_offset(path, text, at);
            anyhow::anyhow!("{loc}: {}", e.message())
        })?;
        let mut c = file.server;
        c.review = file.review;
        c.backups = file.audit;
        let base = path.parent().unwrap_or(Path::new("."));
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        c.rules.iter_mut().for_each(rebase);
        for p in [
            &mut c.audit,
            &mut c.audit_key_file,
            &mut c.reports,
            &mut c.tls_cert,
            &mut c.tls_key,
            &mut c.backups.backup_dir,
        ]
        .into_iter()
        .flatten()
        {
            rebase(p);
        }
        Ok(c)
    }

    /// Refuses what cannot work, before anything is opened.
    pub fn check(&self) -> anyhow::Result<SocketAddr> {
        let addr: SocketAddr = self
            .listen
            .parse()
            .with_context(|| format!("listen = {:?} is not an address:port", self.listen))?;
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            bail!("TLS needs both a certificate (tls_cert) and its key (tls_key)");
        }
        if self.keys.is_empty() {
            bail!(
                "no API keys: add [[server.keys]] blocks to the config \
                 (`shenhe serve key new --name NAME --role moderate` prints one)"
            );
        }
        // Keys may share a name: a rotation leaves the old key beside the new one until
        // the old one expires (one caller, two values). Digests may not repeat.
        let mut names = std::collections::HashSet::new();
        let mut digests = std::collections::HashSet::new();
        for k in &self.keys {
            k.check()?;
            if !digests.insert(k.sha256.trim().to_ascii_lowercase()) {
                bail!("key {:?}: its sha256 is another key's too", k.name);
            }
        }
        for k in &self.keys {
            names.insert(k.name.as_str());
        }
        if self.max_post_bytes == 0 || self.max_batch_bytes == 0 {
            bail!("max_post_bytes and max_batch_bytes must be at least 1");
        }
        for u in &self.users {
            u.check()?;
            if !names.insert(u.name.as_str()) {
                bail!(
                    "a user and a key, or two users, are named {:?}: names must be unique",
                    u.name
                );
            }
        }
        self.review.check()?;
        if self.backups.backup_dir.is_some() {
            if self.audit.is_none() {
                bail!("[audit] backup_dir: backups are of the audit store; give one ([server] audit or --audit)");
            }
            self.backups.every()?;
            if self.backups.backup_keep == Some(0) {
                bail!("[audit] backup_keep = 0: keep at least one backup");
            }
        } else if self.backups.backup_every.is_some() || self.backups.backup_keep.is_some() {
            bail!("[audit] backup_every and backup_keep need backup_dir (where backups go)");
        }
        if self.backups.prune_days()?.is_some() && self.audit.is_none() {
            bail!("[audit] prune_max_days: pruning is of the audit store; give one ([server] audit or --audit)");
        }
        if self.review.callback_url.is_some() && self.audit.is_none() {
            bail!("[review] callbacks need the review queue, which needs an audit store");
        }
        Ok(addr)
    }
}
