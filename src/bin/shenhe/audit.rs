//! `shenhe audit`: verify, head, prune, hold, unhold, query, export, backup and keygen over
//! an audit store written by `shenhe scan --audit`, `shenhe serve` or an embedder.
//!
//! A query or export that opens sealed personal fields (the store's key given) is itself
//! recorded in the store, naming `--operator`: that takes the store's one writer lock, so
//! while `shenhe serve` holds it such reads go through the service's
//! `GET /v1/audit/records` instead.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use shenhe::audit::{
    AuditKey, AuditRecord, AuditStore, Filter, HoldKind, DEFAULT_RETENTION_DAYS,
    RETENTION_FLOOR_DAYS,
};
use shenhe::terminal::printable;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

/// The store and, optionally, its key.
#[derive(clap::Args)]
struct Store {
    /// The audit store (SQLite file).
    #[arg(long, value_name = "DB")]
    db: PathBuf,
    /// The key that opens sealed personal fields (64 hex digits or 32 bytes); default: the
    /// SHENHE_AUDIT_KEY environment variable. Without it they are shown as withheld.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
}

impl Store {
    fn open(&self) -> anyhow::Result<AuditStore> {
        Ok(self.open_with_key()?.0)
    }

    /// The store, and whether a key was given (by file or the environment).
    fn open_with_key(&self) -> anyhow::Result<(AuditStore, bool)> {
        if !self.db.exists() {
            bail!("{}: no such audit store", self.db.display());
        }
        let key = match &self.key_file {
            Some(f) => Some(AuditKey::from_file(f)?),
            None => AuditKey::from_env()?,
        };
        let keyed = key.is_some();
        Ok((AuditStore::open(&self.db, key)?, keyed))
    }

    /// The store opened for a read of its records by `operator`: with the key, the read
    /// opens sealed personal fields and must be recorded, so the operator is required and
    /// the writer's lock taken (refused, saying where to read instead, while another
    /// writer such as the service holds it). Returns the store and the operator whose
    /// read is to be recorded, if any.
    fn open_for_reading(
        &self,
        operator: Option<&str>,
        what: &str,
    ) -> anyhow::Result<(AuditStore, Option<String>)> {
        let (mut s, keyed) = self.open_with_key()?;
        let operator = match operator {
            Some(op) => {
                if op.trim().is_empty() || op.chars().any(char::is_control) {
                    bail!("--operator {op:?}: give the name of the person reading (no control characters)");
                }
                Some(op.to_owned())
            }
            None if keyed => bail!(
                "audit {what} with the store's key (--key-file, or {}) opens sealed personal fields: give --operator NAME, the person reading, whom the store records with the read",
                shenhe::audit::KEY_ENV
            ),
            None => None,
        };
        if let Some(op) = &operator {
            if let Err(e) = s.lock_writer(&format!("shenhe audit {what} by {op}")) {
                bail!(
                    "{e}\nA read of personal data is recorded in the store, and only its one writer can record. \
                     When that writer is `shenhe serve`, read through it instead: \
                     GET /v1/audit/records?user=ID (or ?ip=ADDR, ?post=ID) with a key of role audit"
                );
            }
        }
        Ok((s, operator))
    }
}

/// Records `operator`'s read of the records `filter` finds (counted first, under the
/// writer's lock, so the count is what is then shown): before anything is shown, so a read
/// that cannot be recorded shows nothing. Returns the last record the read covers (the
/// read's own record, and nothing after it, is not shown): see [`query_upto`].
fn record_read(
    s: &mut AuditStore,
    operator: Option<&str>,
    via: &str,
    filter: &Filter,
) -> anyhow::Result<i64> {
    let Some(op) = operator else {
        return Ok(i64::MAX);
    };
    let upto = s.head().0;
    let count = s.query(filter, |_| Ok(()))?;
    let event = serde_json::json!({
        "kind": "read",
        "via": via,
        "filter": filter.to_json(),
        "count": count,
    });
    s.record_event(op, &event, jiff::Timestamp::now())
        .context("the read could not be recorded, so nothing is shown")?;
    Ok(upto)
}

/// [`AuditStore::query`] over the records up to `upto` (by sequence number); returns how
/// many matched.
fn query_upto(
    s: &AuditStore,
    filter: &Filter,
    upto: i64,
    mut each: impl FnMut(AuditRecord) -> shenhe::Result<()>,
) -> shenhe::Result<u64> {
    let mut n = 0;
    s.query(filter, |r| {
        if r.seq > upto {
            return Ok(());
        }
        n += 1;
        each(r)
    })?;
    Ok(n)
}

#[derive(clap::Subcommand)]
enum Command {
    /// Check every record, the chain and the manifest; exit 1 naming the first bad record.
    Verify {
        #[command(flatten)]
        store: Store,
        /// The head printed by `audit head` earlier and kept elsewhere: also catches a
        /// truncated tail or a rewritten chain.
        #[arg(long, value_name = "HASH")]
        expect_head: Option<String>,
    },
    /// Print the number of records and the head hash, to keep outside the store.
    Head {
        #[command(flatten)]
        store: Store,
    },
    /// Delete whole days older than the retention period (never younger than 184 days).
    Prune {
        #[command(flatten)]
        store: Store,
        /// Days to keep (at least 184: six calendar months).
        #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_RETENTION_DAYS)]
        max_days: u32,
        /// The time to prune at (RFC 3339), instead of now.
        #[arg(long, value_name = "TIME")]
        now: Option<String>,
    },
    /// Keep an account's or a post's records past retention.
    Hold {
        #[command(flatten)]
        store: Store,
        #[command(flatten)]
        target: HoldTarget,
    },
    /// Remove a hold.
    Unhold {
        #[command(flatten)]
        store: Store,
        #[command(flatten)]
        target: HoldTarget,
    },
    /// Show the records matching every filter given, as a table or JSON Lines.
    Query {
        #[command(flatten)]
        store: Store,
        #[command(flatten)]
        filter: FilterArgs,
        /// JSON Lines instead of a table.
        #[arg(long)]
        json: bool,
        /// Who is reading: required with the key, and recorded in the store with the
        /// filter and the number of records shown.
        #[arg(long, value_name = "NAME")]
        operator: Option<String>,
    },
    /// Write records (all, or those matching the filters) as JSON Lines or CSV.
    Export {
        #[command(flatten)]
        store: Store,
        #[command(flatten)]
        filter: FilterArgs,
        /// Who is exporting: required with the key, and recorded in the store with the
        /// filter and the number of records written.
        #[arg(long, value_name = "NAME")]
        operator: Option<String>,
        /// `jsonl` or `csv` (UTF-8 with BOM).
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Output file; standard output when absent.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// A consistent copy of the store while it is written, verified, named by time and
    /// head (audit-<UTC time>-<head>.db, mode 0600); prints the file and its head.
    Backup {
        #[command(flatten)]
        store: Store,
        /// The directory to write it in (created when missing).
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
        /// Then keep the newest N backups there; an older one is removed only when the
        /// newest continues its chain or it is older than 184 days (else it is the only
        /// copy of records still within retention, and stays).
        #[arg(long, value_name = "N")]
        keep: Option<usize>,
        /// Who takes it, for the record of the backup in the store (default: the command).
        #[arg(long, value_name = "NAME")]
        operator: Option<String>,
    },
    /// A new random key (64 hex digits) for sealing personal fields: printed, or written
    /// to a new file readable by its owner only (key files others can read are refused).
    Keygen {
        /// Write the key to this new file (mode 0600) instead of printing it.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct HoldTarget {
    /// An account id.
    #[arg(long, value_name = "ID")]
    user: Option<String>,
    /// A post id.
    #[arg(long, value_name = "ID")]
    post: Option<String>,
}

impl HoldTarget {
    fn get(&self) -> (HoldKind, &str) {
        match (&self.user, &self.post) {
            (Some(u), _) => (HoldKind::User, u),
            (None, Some(p)) => (HoldKind::Post, p),
            (None, None) => unreachable!("clap requires one"),
        }
    }
}

#[derive(clap::Args)]
struct FilterArgs {
    /// IP address or CIDR network (needs the key when personal fields are sealed).
    #[arg(long, value_name = "ADDR|CIDR")]
    ip: Option<String>,
    /// Account id.
    #[arg(long, value_name = "ID")]
    user: Option<String>,
    /// Category number.
    #[arg(long, value_name = "N")]
    category: Option<u16>,
    /// Action (allow, mask, review, block, delete).
    #[arg(long, value_name = "A")]
    action: Option<String>,
    /// Recorded at or after this time (RFC 3339).
    #[arg(long, value_name = "T")]
    since: Option<String>,
    /// Recorded before this time (RFC 3339).
    #[arg(long, value_name = "T")]
    until: Option<String>,
    /// Asked for by this caller: the name of a service's API key or user.
    #[arg(long, value_name = "NAME")]
    caller: Option<String>,
    /// A post id.
    #[arg(long, value_name = "ID")]
    post: Option<String>,
}

fn time(value: &str, flag: &str) -> anyhow::Result<jiff::Timestamp> {
    value.parse().with_context(|| {
        format!("{flag} `{value}`: expected an RFC 3339 time such as 2026-05-01T00:00:00+08:00")
    })
}

impl FilterArgs {
    fn filter(&self) -> anyhow::Result<Filter> {
        let ip = match &self.ip {
            None => None,
            Some(s) => Some(match s.parse::<ipnet::IpNet>() {
                Ok(net) => net,
                Err(_) => s
                    .parse::<std::net::IpAddr>()
                    .map(ipnet::IpNet::from)
                    .with_context(|| format!("--ip `{s}`: not an IP address or CIDR network"))?,
            }),
        };
        if let Some(a) = &self.action {
            if !shenhe::Action::ALL.iter().any(|x| x.as_str() == a) {
                bail!("--action `{a}`: expected allow, mask, review, block or delete");
            }
        }
        Ok(Filter {
            ip,
            user: self.user.clone(),
            category: self.category,
            action: self.action.clone(),
            since: self
                .since
                .as_deref()
                .map(|t| time(t, "--since"))
                .transpose()?,
            until: self
                .until
                .as_deref()
                .map(|t| time(t, "--until"))
                .transpose()?,
            caller: self.caller.clone(),
            post: self.post.clone(),
        })
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Verify { store, expect_head } => {
            let expect = expect_head.as_deref().map(str::trim);
            if let Some(h) = expect {
                if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    bail!("--expect-head {h:?}: expected the 64 hex digits `audit head` or `audit backup` printed");
                }
            }
            if !store.db.exists() {
                bail!("{}: no such audit store", store.db.display());
            }
            // Verifying needs no key; one given is still checked (a key file others can
            // read is refused wherever it is given).
            let _checked = match &store.key_file {
                Some(f) => Some(AuditKey::from_file(f)?),
                None => AuditKey::from_env()?,
            };
            // Read-only: verifying a backup leaves it as it was.
            let v = shenhe::audit::verify_file(&store.db, None)?;
            if let Some(p) = v.problem {
                println!("TAMPERED: {p}");
                return Ok(ExitCode::from(1));
            }
            if let Some(h) = expect {
                if !h.eq_ignore_ascii_case(&v.head) {
                    println!(
                        "HEAD DIFFERS: {} verifies on its own, but its head is {}, not the expected {h}: it is not the copy whose head was kept (records at its end were removed, its chain was rewritten, or it is another store's copy)",
                        store.db.display(),
                        v.head
                    );
                    return Ok(ExitCode::from(1));
                }
            }
            println!(
                "ok: {} records in {} days ({} pruned), head {}{}",
                v.records,
                v.days,
                v.pruned_days,
                v.head,
                if expect.is_some() {
                    " (as expected)"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup {
            store,
            to,
            keep,
            operator,
        } => backup(&store, &to, keep, operator.as_deref()),
        Command::Head { store } => {
            let (count, head) = store.open()?.head();
            println!("{count} {head}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Prune {
            store,
            max_days,
            now,
        } => {
            if max_days < RETENTION_FLOOR_DAYS {
                bail!("--max-days {max_days}: records are kept at least {RETENTION_FLOOR_DAYS} days (six calendar months)");
            }
            let clock = jiff::Timestamp::now();
            let now = match &now {
                Some(t) => time(t, "--now")?,
                None => clock,
            };
            // Pruning deletes: a date given by hand may look back, never ahead of the clock.
            if now > clock + jiff::SignedDuration::from_mins(5) {
                bail!("--now {now} is after the real clock ({clock}): pruning deletes records, so it cannot run ahead of the present");
            }
            let mut s = store.open()?;
            s.lock_writer("shenhe audit prune")?;
            let p = s.prune(now, max_days)?;
            println!(
                "pruned {} days ({} records deleted, {} kept by holds){}",
                p.days.len(),
                p.records,
                p.held,
                match (p.days.first(), p.days.last()) {
                    (Some(a), Some(b)) => format!(": {a} .. {b}"),
                    _ => String::new(),
                }
            );
            if p.reviews > 0 {
                println!("deleted {} decided review items past retention", p.reviews);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Hold { store, target } => {
            let (kind, value) = target.get();
            let mut s = store.open()?;
            s.lock_writer("shenhe audit hold")?;
            s.hold(kind, value)?;
            println!("held: {kind:?} {value}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Unhold { store, target } => {
            let (kind, value) = target.get();
            let mut s = store.open()?;
            s.lock_writer("shenhe audit unhold")?;
            if s.unhold(kind, value)? {
                println!("released: {kind:?} {value}");
            } else {
                println!("no hold on {kind:?} {value}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Query {
            store,
            filter,
            json,
            operator,
        } => {
            let filter = filter.filter()?;
            let (mut s, operator) = store.open_for_reading(operator.as_deref(), "query")?;
            let upto = record_read(&mut s, operator.as_deref(), "audit query", &filter)?;
            let out = io::stdout();
            let mut out = BufWriter::new(out.lock());
            if !json {
                writeln!(
                    out,
                    "{:>6}  {:<10}  {:<20}  {:<12}  {:<12}  {:<22}  {:<7}  {:<5}  text",
                    "seq", "day", "post", "user", "categories", "ip:port", "action", "rep"
                )?;
            }
            let n = query_upto(&s, &filter, upto, |r| {
                if json {
                    serde_json::to_writer(&mut out, &r).map_err(io::Error::other)?;
                    writeln!(out)?;
                } else {
                    writeln!(out, "{}", table_row(&r))?;
                }
                Ok(())
            })?;
            out.flush()?;
            eprintln!("{n} records");
            Ok(ExitCode::SUCCESS)
        }
        Command::Export {
            store,
            filter,
            format,
            output,
            operator,
        } => {
            let filter = filter.filter()?;
            if !matches!(format.as_str(), "jsonl" | "csv") {
                bail!("--format `{format}`: expected jsonl or csv");
            }
            let (mut s, operator) = store.open_for_reading(operator.as_deref(), "export")?;
            let upto = record_read(&mut s, operator.as_deref(), "audit export", &filter)?;
            let out: Box<dyn Write> = match &output {
                Some(p) => Box::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("cannot write {}", p.display()))?,
                ),
                None => Box::new(io::stdout()),
            };
            let mut out = BufWriter::new(out);
            let n = match format.as_str() {
                "jsonl" => query_upto(&s, &filter, upto, |r| {
                    serde_json::to_writer(&mut out, &r).map_err(io::Error::other)?;
                    writeln!(out)?;
                    Ok(())
                })?,
                "csv" => {
                    out.write_all(shenhe::audit::CSV_HEAD.as_bytes())?;
                    query_upto(&s, &filter, upto, |r| {
                        writeln!(out, "{}", r.csv_row())?;
                        Ok(())
                    })?
                }
                other => bail!("--format `{other}`: expected jsonl or csv"),
            };
            out.flush()?;
            eprintln!("{n} records exported");
            Ok(ExitCode::SUCCESS)
        }
        Command::Keygen { output } => {
            let key = AuditKey::generate();
            match output {
                None => println!("{}", key.to_hex()),
                Some(path) => key.write_new_file(&path).with_context(|| {
                    format!("cannot create {} (it must not exist yet)", path.display())
                })?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn ip_port(r: &AuditRecord) -> String {
    match &r.personal {
        None => shenhe::audit::WITHHELD.to_owned(),
        Some(p) => match (&p.ip, p.port) {
            (Some(ip), Some(port)) => format!("{ip}:{port}"),
            (Some(ip), None) => ip.clone(),
            _ => "-".to_owned(),
        },
    }
}

fn cut(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if s.chars().count() > n {
        out.push('…');
    }
    out.replace(['\n', '\r', '\t'], " ")
}

fn table_row(r: &AuditRecord) -> String {
    let cats: Vec<String> = r.categories.iter().map(u16::to_string).collect();
    format!(
        "{:>6}  {:<10}  {:<20}  {:<12}  {:<12}  {:<22}  {:<7}  {:<5}  {}",
        r.seq,
        r.day,
        printable(&cut(&r.post_id_text(), 20)),
        printable(&cut(r.user_id.as_deref().unwrap_or("-"), 12)),
        cats.join(" "),
        printable(&ip_port(r)),
        r.action,
        if r.report { "yes" } else { "no" },
        printable(&cut(&r.content.text, 40))
    )
}

/// `audit backup`: the copy, then the rotation, then the record of the backup in the store
/// (when the store can be written now: a scan or the service holding it is said on standard
/// error, and the backup stands).
fn backup(
    store: &Store,
    to: &std::path::Path,
    keep: Option<usize>,
    operator: Option<&str>,
) -> anyhow::Result<ExitCode> {
    if keep == Some(0) {
        bail!("--keep 0: keep at least one backup");
    }
    if !store.db.exists() {
        bail!("{}: no such audit store", store.db.display());
    }
    let now = jiff::Timestamp::now();
    let b = shenhe::audit::backup::backup(&store.db, to, now)?;
    println!("backup: {}", b.path.display());
    println!("head: {} records, {}", b.records, b.head);
    if let Some(n) = keep {
        let r = shenhe::audit::backup::rotate(to, n, now)?;
        for p in &r.removed {
            println!("removed: {}", p.display());
        }
        for p in &r.kept_for_floor {
            println!(
                "kept: {} (the newest backup does not continue its chain: it is the only copy of records younger than {RETENTION_FLOOR_DAYS} days)",
                p.display()
            );
        }
    }
    let caller = operator.unwrap_or("shenhe audit backup");
    let event = serde_json::json!({
        "kind": "backup",
        "file": b.path.file_name().map(|n| n.to_string_lossy().into_owned()),
        "head": b.head,
        "records": b.records,
    });
    let recorded = store.open().and_then(|mut s| {
        s.lock_writer("shenhe audit backup")?;
        s.record_event(caller, &event, jiff::Timestamp::now())?;
        Ok(())
    });
    if let Err(e) = recorded {
        eprintln!("shenhe: note: the backup stands, but it is not recorded in the store: {e:#}");
    }
    Ok(ExitCode::SUCCESS)
}
