//! `shenhe check`: explain, for a person, what the rules make of some texts.

use std::io::{self, BufRead, IsTerminal, Write};
use std::process::ExitCode;

use shenhe::{Decision, Engine, Post};

use crate::RulesArg;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    rules: RulesArg,
    /// Print each decision as JSON (one line per text) instead of the explanation.
    #[arg(long)]
    json: bool,
    /// Texts to check; one per line from standard input when none are given.
    #[arg(value_name = "TEXT")]
    texts: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let engine = args.rules.engine()?;
    let texts: Vec<String> = if args.texts.is_empty() {
        io::stdin().lock().lines().collect::<Result<_, _>>()?
    } else {
        args.texts
    };
    let color = io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut out = io::stdout().lock();
    let mut flagged = false;
    for text in &texts {
        let decision = engine.scan(&Post::from_text(text.as_str()));
        flagged |= !decision.hits.is_empty();
        let written = if args.json {
            serde_json::to_writer(&mut out, &decision)
                .map_err(io::Error::from)
                .and_then(|_| writeln!(out))
        } else {
            explain(&mut out, &engine, text, &decision, color)
        };
        if let Err(e) = written {
            if e.kind() == io::ErrorKind::BrokenPipe {
                break;
            }
            return Err(e.into());
        }
    }
    Ok(if flagged {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn explain(
    out: &mut impl Write,
    engine: &Engine,
    text: &str,
    d: &Decision,
    color: bool,
) -> io::Result<()> {
    writeln!(out, "text:    {text}")?;
    for (steps, folded) in engine.folded_forms(text) {
        let names: Vec<&str> = steps.iter().map(|s| s.as_str()).collect();
        let names = if names.is_empty() {
            "exact".to_owned()
        } else {
            names.join("+")
        };
        writeln!(out, "folded:  {folded}    [{names}]")?;
    }
    if d.hits.is_empty() {
        writeln!(out, "result:  no hit (allow)")?;
        return writeln!(out);
    }
    writeln!(out, "marked:  {}", highlight(text, d, color))?;
    let cats: Vec<String> = d.categories.iter().map(|c| c.to_string()).collect();
    writeln!(
        out,
        "result:  {}{} · categories {}",
        d.action.as_str(),
        if d.report { " · report" } else { "" },
        cats.join(", ")
    )?;
    for h in &d.hits {
        let category = engine
            .rules()
            .category(h.category)
            .map(|c| format!("{} {}", c.label(), c.title))
            .unwrap_or_else(|| format!("#{}", h.category));
        let rule = engine.rules().rule(&h.rule);
        let loc = rule.map(|r| r.location.to_string()).unwrap_or_default();
        writeln!(out, "  hit {} ({}, {})", h.rule, h.severity.as_str(), loc)?;
        writeln!(out, "      category {category}")?;
        let steps = if h.steps.is_empty() {
            "exact".to_owned()
        } else {
            h.steps.join("+")
        };
        writeln!(
            out,
            "      {:?} at chars {}..{} (bytes {}..{}), term {:?}, steps: {}",
            h.matched, h.char_start, h.char_end, h.start, h.end, h.term, steps
        )?;
    }
    if let Some(m) = &d.masked {
        writeln!(out, "masked:  {m}")?;
    }
    writeln!(out)
}

/// The text with every hit's span marked: reverse video on a terminal, ⟦…⟧ otherwise.
fn highlight(text: &str, d: &Decision, color: bool) -> String {
    let merged = d.spans(shenhe::Field::Text);
    let (open, close) = if color {
        ("\x1b[7m", "\x1b[0m")
    } else {
        ("⟦", "⟧")
    };
    let mut out = String::with_capacity(text.len() + merged.len() * 8);
    let mut pos = 0;
    for (s, e) in merged {
        out.push_str(&text[pos..s]);
        out.push_str(open);
        out.push_str(&text[s..e]);
        out.push_str(close);
        pos = e;
    }
    out.push_str(&text[pos..]);
    out
}
