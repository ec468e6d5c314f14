//! `shenhe test`: run every rule's examples and the test files kept beside the rule sets
//! (`*.test.toml`), and say what failed and why.

use std::process::ExitCode;

use crate::RulesArg;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    rules: RulesArg,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let engine = args.rules.engine()?;
    let (checked, failures) = engine.check_examples();
    for f in &failures {
        let loc = engine
            .rules()
            .rule(&f.rule)
            .map(|r| r.location.to_string())
            .unwrap_or_default();
        if f.expected_match {
            println!(
                "FAIL {loc}: rule `{}`: examples.match {:?} (as {}) gave no hit",
                f.rule,
                f.example,
                f.field.as_str()
            );
        } else {
            println!(
                "FAIL {loc}: rule `{}`: examples.no_match {:?} (as {}) was hit:",
                f.rule,
                f.example,
                f.field.as_str()
            );
            for h in &f.hits {
                println!(
                    "     {:?} at chars {}..{} by term {:?}",
                    h.matched, h.char_start, h.char_end, h.term
                );
            }
        }
    }
    let mut failed = failures.len();
    let mut checked = checked;
    let files = if args.rules.rules.is_empty() {
        shenhe::rules::bundled_test_files()
    } else {
        shenhe::rules::test_files(&args.rules.rules)?
    };
    for (path, text) in files {
        for t in shenhe::rules::parse_tests(&path, &text)? {
            checked += 1;
            if let Err(what) = t.check(&engine) {
                failed += 1;
                println!("FAIL {}: test {:?}: {what}", t.location, t.post.text);
            }
        }
    }
    println!("{} passed, {} failed", checked - failed, failed);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
