//! The `shenhe` command line: glue over the library, no logic of its own.

mod audit;
mod check;
mod diff;
mod import;
mod lint;
mod review;
mod scan;
#[cfg(feature = "serve")]
mod serve;
mod test_examples;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The binary allocates from many threads and frees on others (posts are parsed on the
/// pool, written and recorded on the writer thread): mimalloc handles that far better
/// than glibc's malloc (measured in the commit that chose it).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use shenhe::{Engine, RuleSet};

/// shenhe (审核): moderate Chinese-language posts against the nine categories of Article 15.
#[derive(Parser)]
#[command(name = "shenhe", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scan JSON Lines posts; write one JSON decision per input line, in input order.
    Scan(scan::Args),
    /// Explain what the rules make of texts: hits, rules, categories, highlighted text.
    Check(check::Args),
    /// Run every rule's examples (examples.match / examples.no_match).
    Test(test_examples::Args),
    /// Errors and warnings in rule files, each with file:line:column and a fix.
    Lint(lint::Args),
    /// What changing the rules would do to an archive: posts newly flagged, cleared, changed.
    Diff(diff::Args),
    /// Write a rule file from a plain word list (UTF-8 or GBK).
    Import(import::Args),
    /// The audit store: verify, head, prune, hold, unhold, query, export, keygen.
    Audit(audit::Args),
    /// The review queue: export verdicts as test cases.
    Review(review::Args),
    /// The HTTP moderation service (and `serve key new` for its API keys).
    #[cfg(feature = "serve")]
    Serve(serve::Args),
}

/// Where the rules come from: `--rules PATH` (repeatable) or the bundled rule sets.
#[derive(clap::Args, Clone, Debug)]
pub struct RulesArg {
    /// Rule file or directory of rule files (repeatable); the bundled rules when absent.
    #[arg(long = "rules", value_name = "PATH")]
    pub rules: Vec<PathBuf>,
}

impl RulesArg {
    /// Loads and compiles the rules.
    pub fn engine(&self) -> Result<Engine, shenhe::Error> {
        let rules = if self.rules.is_empty() {
            RuleSet::bundled()
        } else {
            RuleSet::from_paths(&self.rules)?
        };
        Engine::new(&rules)
    }
}

/// Exit code for bad usage, unreadable input and rule sets that do not load.
pub const EXIT_TROUBLE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(args) => scan::run(args),
        Command::Check(args) => check::run(args),
        Command::Test(args) => test_examples::run(args),
        Command::Lint(args) => lint::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Import(args) => import::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Review(args) => review::run(args),
        #[cfg(feature = "serve")]
        Command::Serve(args) => serve::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("shenhe: error: {e:#}");
            ExitCode::from(EXIT_TROUBLE)
        }
    }
}
