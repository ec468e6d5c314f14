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

extern "C" {
    // mimalloc's options (mimalloc.h; linked by the mimalloc crate, which does not bind them).
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// For a batch job (`scan`, `diff`): freed memory stays with the process instead of going
/// back to the OS a second after it is freed. A rescan frees and allocates a chunk's
/// buffers, posts and decisions every few milliseconds, and mimalloc handed about 175 MiB
/// back over 100 MB of posts, each time to have it zeroed again by the kernel: 0.15–0.25 s
/// of system time, against 0.06 s kept (peak memory the same, about 130 MB; the
/// pipeline's bounded channels already cap it). `serve` keeps the default and returns what
/// an idle service does not use. Changed only when the option reads as mimalloc 3's
/// `purge_delay` default, so an operator's MIMALLOC_PURGE_DELAY, or another mimalloc's
/// layout, is left alone.
fn keep_freed_memory() {
    /// `mi_option_purge_delay` in mimalloc 3's option enum, and its default (ms).
    const PURGE_DELAY: std::ffi::c_int = 15;
    const DEFAULT: std::ffi::c_long = 1000;
    // SAFETY: plain C calls on an integer option, no pointers; mimalloc reads options
    // atomically.
    unsafe {
        if mi_option_get(PURGE_DELAY) == DEFAULT {
            mi_option_set(PURGE_DELAY, -1);
        }
    }
}

/// For batch jobs (`scan`, `diff`) and the service: no transparent huge pages. mimalloc
/// asks the kernel for them (`madvise`), and on the virtual machines this project is
/// measured on, the kernel's zeroing of fresh huge pages now and then costs far more than
/// its share: a whole `shenhe scan` of 100 MB (peers' 50k lexicon, one core) took
/// 0.76–1.97 s with them, median 1.65 s, 0.86 s of it system time, against 0.81–0.90 s,
/// median 0.85 s, without (eleven runs of each, alternated); in rounds without such runs
/// huge pages were 0–3% faster. Peak memory is lower without them (54 MB against 77 MB for
/// the 10k lexicon). `serve` under wrk, five alternated pairs: 1–2% more posts per second
/// without them, p99 2.6–2.9 ms against 2.7–3.3 ms. An operator's MIMALLOC_ALLOW_THP in
/// the environment is left to decide.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    {
        extern "C" {
            fn prctl(option: std::ffi::c_int, ...) -> std::ffi::c_int;
        }
        /// `PR_SET_THP_DISABLE` (linux/prctl.h).
        const PR_SET_THP_DISABLE: std::ffi::c_int = 41;
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
            // SAFETY: a plain system call on this process's flags, no pointers. It can only
            // fail on kernels older than 3.15, which then keep their huge pages.
            unsafe {
                prctl(
                    PR_SET_THP_DISABLE,
                    1 as std::ffi::c_ulong,
                    0 as std::ffi::c_ulong,
                    0 as std::ffi::c_ulong,
                    0 as std::ffi::c_ulong,
                );
            }
        }
    }
}
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
        Engine::new(&self.rule_set()?)
    }

    /// Loads the rules.
    pub fn rule_set(&self) -> Result<RuleSet, shenhe::Error> {
        if self.rules.is_empty() {
            Ok(RuleSet::bundled())
        } else {
            RuleSet::from_paths(&self.rules)
        }
    }
}

/// Exit code for bad usage, unreadable input and rule sets that do not load.
pub const EXIT_TROUBLE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(args) => {
            keep_freed_memory();
            no_huge_pages();
            scan::run(args)
        }
        Command::Check(args) => check::run(args),
        Command::Test(args) => test_examples::run(args),
        Command::Lint(args) => lint::run(args),
        Command::Diff(args) => {
            keep_freed_memory();
            no_huge_pages();
            diff::run(args)
        }
        Command::Import(args) => import::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Review(args) => review::run(args),
        #[cfg(feature = "serve")]
        Command::Serve(args) => {
            no_huge_pages();
            serve::run(args)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("shenhe: error: {e:#}");
            ExitCode::from(EXIT_TROUBLE)
        }
    }
}
