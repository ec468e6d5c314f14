//! `shenhe review`: the review queue from the command line. `export` writes the verdicts as
//! test cases for `shenhe test`, so that what reviewers decided keeps the rules honest.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use shenhe::audit::AuditKey;
use shenhe::review::ReviewQueue;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Write the decided items: approved → must hit no rule, removed or reported → must hit
    /// the rules that held them.
    Export {
        /// The audit store the queue is kept in.
        #[arg(long, value_name = "DB")]
        db: PathBuf,
        /// The store's key, when it seals (default: SHENHE_AUDIT_KEY).
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// What to write: test-toml (a `*.test.toml` file for `shenhe test`).
        #[arg(long, value_name = "FORMAT", default_value = "test-toml")]
        format: String,
        /// Where to write (default: standard output). Put it beside the rules, named
        /// `NAME.test.toml`, for `shenhe test --rules DIR` to run it.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Command::Export {
        db,
        key_file,
        format,
        output,
    } = args.command;
    if format != "test-toml" {
        bail!("--format {format:?}: expected test-toml");
    }
    if !db.exists() {
        bail!("{}: no such audit store", db.display());
    }
    let key = match &key_file {
        Some(f) => Some(AuditKey::from_file(f)?),
        None => AuditKey::from_env()?,
    };
    let queue = ReviewQueue::open(&db, key, false).with_context(|| db.display().to_string())?;
    let items = queue.decided()?;
    let text = shenhe::review::to_test_toml(&items);
    match output {
        None => std::io::stdout().write_all(text.as_bytes())?,
        Some(path) => std::fs::write(&path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
    }
    eprintln!("{} decided items exported", items.len());
    Ok(ExitCode::SUCCESS)
}
