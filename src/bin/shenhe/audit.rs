//! `shenhe audit`: verify, head, prune, hold, unhold, query, export and keygen over an
//! audit store written by `shenhe scan --audit` or by an embedder.

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
        if !self.db.exists() {
            bail!("{}: no such audit store", self.db.display());
        }
        let key = match &self.key_file {
            Some(f) => Some(AuditKey::from_file(f)?),
            None => AuditKey::from_env()?,
        };
        Ok(AuditStore::open(&self.db, key)?)
    }
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
    },
    /// Write records (all, or those matching the filters) as JSON Lines or CSV.
    Export {
        #[command(flatten)]
        store: Store,
        #[command(flatten)]
        filter: FilterArgs,
        /// `jsonl` or `csv` (UTF-8 with BOM).
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Output file; standard output when absent.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
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
        })
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Verify { store, expect_head } => {
            let s = store.open()?;
            let v = s.verify(expect_head.as_deref())?;
            match v.problem {
                None => {
                    println!(
                        "ok: {} records in {} days ({} pruned), head {}",
                        v.records, v.days, v.pruned_days, v.head
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Some(p) => {
                    println!("TAMPERED: {p}");
                    Ok(ExitCode::from(1))
                }
            }
        }
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
        } => {
            let s = store.open()?;
            let filter = filter.filter()?;
            let out = io::stdout();
            let mut out = BufWriter::new(out.lock());
            if !json {
                writeln!(
                    out,
                    "{:>6}  {:<10}  {:<20}  {:<12}  {:<12}  {:<22}  {:<7}  {:<5}  text",
                    "seq", "day", "post", "user", "categories", "ip:port", "action", "rep"
                )?;
            }
            let n = s.query(&filter, |r| {
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
        } => {
            let s = store.open()?;
            let filter = filter.filter()?;
            let out: Box<dyn Write> = match &output {
                Some(p) => Box::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("cannot write {}", p.display()))?,
                ),
                None => Box::new(io::stdout()),
            };
            let mut out = BufWriter::new(out);
            let n = match format.as_str() {
                "jsonl" => s.query(&filter, |r| {
                    serde_json::to_writer(&mut out, &r).map_err(io::Error::other)?;
                    writeln!(out)?;
                    Ok(())
                })?,
                "csv" => {
                    out.write_all(shenhe::audit::CSV_HEAD.as_bytes())?;
                    s.query(&filter, |r| {
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
