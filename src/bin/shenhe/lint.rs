//! `shenhe lint`: errors and warnings in rule files, each with its place and a fix.

use std::process::ExitCode;

use shenhe::rules::{lint_bundled, lint_paths, LintLevel};

use crate::RulesArg;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    rules: RulesArg,
    /// Exit 1 on warnings too.
    #[arg(long)]
    strict: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let findings = if args.rules.rules.is_empty() {
        lint_bundled()
    } else {
        lint_paths(&args.rules.rules)?
    };
    for f in &findings {
        println!("{f}");
    }
    let errors = findings
        .iter()
        .filter(|f| f.level == LintLevel::Error)
        .count();
    let warnings = findings.len() - errors;
    println!("{errors} errors, {warnings} warnings");
    Ok(if errors > 0 || (args.strict && warnings > 0) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
