//! `shenhe import`: a rule file from a plain word list (UTF-8 or GBK).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use shenhe::rules::import_word_list;
use shenhe::Severity;

#[derive(clap::Args)]
pub struct Args {
    /// The word list: one term a line, `#` comment lines; UTF-8 (with or without BOM) or GBK.
    list: PathBuf,
    /// The category of the rule: 1–9, or a custom number from 100.
    #[arg(long, value_name = "N")]
    category: u16,
    /// The rule's id.
    #[arg(long, value_name = "ID")]
    id: String,
    /// The rule's severity: low, medium, high or critical.
    #[arg(long, default_value = "medium")]
    severity: String,
    /// Write the rule file here instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let severity = Severity::ALL
        .into_iter()
        .find(|s| s.as_str() == args.severity)
        .with_context(|| {
            format!(
                "--severity `{}`: expected low, medium, high or critical",
                args.severity
            )
        })?;
    let bytes = std::fs::read(&args.list)
        .with_context(|| format!("cannot read {}", args.list.display()))?;
    let name = args.list.display().to_string();
    let i = import_word_list(&bytes, &name, args.category, &args.id, severity)?;
    match &args.output {
        Some(p) => {
            std::fs::write(p, &i.toml).with_context(|| format!("cannot write {}", p.display()))?
        }
        None => print!("{}", i.toml),
    }
    let converted = if i.encoding == "GBK" {
        ", converted to UTF-8"
    } else {
        ""
    };
    eprintln!(
        "imported {} terms from {name} ({}{converted}); dropped {} duplicates and {} terms that normalise to nothing",
        i.terms,
        i.encoding,
        i.duplicates.len(),
        i.empty.len()
    );
    for (line, term, first) in &i.duplicates {
        eprintln!("  {name}:{line}: duplicate `{term}` (as line {first})");
    }
    for (line, term) in &i.empty {
        eprintln!("  {name}:{line}: `{term}` normalises to nothing");
    }
    Ok(ExitCode::SUCCESS)
}
