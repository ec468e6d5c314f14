//! `shenhe lint`: what is wrong or risky in rule files, each finding at `file:line:column`
//! with a suggested fix. Works on the files as written (so it can report every empty term
//! and bad regex, not only the first one that stops loading), then on the folded forms.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::{
    bundled_file, bundled_sources, decode_utf8, gather, parse_file, parse_word_list, Ctx, RawRule,
    Resolver, SourceFile, REGEX_SIZE_LIMIT,
};
use crate::error::{Location, Result};
use crate::normalize::{fold_str, Profile};
use crate::rules::Boundary;
use crate::vocab::Step;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LintLevel {
    /// Risky or useless, but the rules work.
    Warning,
    /// The rule set is wrong: it does not load, or a rule can never work as meant.
    Error,
}

/// One finding of `lint`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LintFinding {
    /// Error or warning.
    pub level: LintLevel,
    /// Where: the term, regex, phrase or rule.
    pub location: Location,
    /// The rule, when the finding is about one.
    pub rule: Option<String>,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

impl std::fmt::Display for LintFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.level {
            LintLevel::Error => "error",
            LintLevel::Warning => "warning",
        };
        write!(f, "{}: {level}: ", self.location)?;
        if let Some(r) = &self.rule {
            write!(f, "rule `{r}`: ")?;
        }
        write!(f, "{}\n    fix: {}", self.message, self.fix)
    }
}

/// Lints the rule files of `paths` (as `RuleSet::from_paths` reads them).
pub fn lint_paths(paths: &[PathBuf]) -> Result<Vec<LintFinding>> {
    let sources = gather(paths)?;
    Ok(lint_sources(&sources, &|p: &Path| {
        crate::rules::load::read_bounded(p)
    }))
}

/// Lints the bundled rule files.
pub fn lint_bundled() -> Vec<LintFinding> {
    lint_sources(&bundled_sources(), &bundled_file)
}

/// A term (or phrase) as written, where it is, and its rule.
struct Item {
    text: String,
    location: Location,
}

/// What the cross-rule checks need of a rule.
struct Parsed {
    id: String,
    category: i64,
    verdict: String,
    profile: Profile,
    terms: Vec<Item>,
    allow: Vec<Item>,
    regexes: Vec<regex::Regex>,
}

fn finding(
    level: LintLevel,
    location: Location,
    rule: Option<&str>,
    message: String,
    fix: &str,
) -> LintFinding {
    LintFinding {
        level,
        location,
        rule: rule.map(str::to_owned),
        message,
        fix: fix.to_owned(),
    }
}

fn lint_sources(sources: &[SourceFile], resolve: Resolver<'_>) -> Vec<LintFinding> {
    let mut out = Vec::new();
    let mut rules: Vec<Parsed> = Vec::new();
    let mut ids: HashMap<String, Location> = HashMap::new();
    for source in sources {
        let ctx = Ctx {
            path: &source.path,
            text: &source.text,
        };
        let file = match parse_file(&ctx) {
            Ok(f) => f,
            Err(e) => {
                out.push(LintFinding {
                    level: LintLevel::Error,
                    location: e.location().cloned().unwrap_or(Location {
                        file: source.path.clone(),
                        line: 1,
                        column: 1,
                    }),
                    rule: e.rule().map(str::to_owned),
                    message: e.message().to_owned(),
                    fix: "correct the file so that it loads (see rules/README.md)".into(),
                });
                continue;
            }
        };
        for raw in &file.rule {
            if let Some(p) = lint_rule(&ctx, raw, resolve, &mut ids, &mut out) {
                rules.push(p);
            }
        }
    }
    cross_rule(&rules, &mut out);
    out.sort_by(|a, b| {
        (&a.location.file, a.location.line, a.location.column).cmp(&(
            &b.location.file,
            b.location.line,
            b.location.column,
        ))
    });
    out
}

fn lint_rule(
    ctx: &Ctx<'_>,
    raw: &Spanned<RawRule>,
    resolve: Resolver<'_>,
    ids: &mut HashMap<String, Location>,
    out: &mut Vec<LintFinding>,
) -> Option<Parsed> {
    let r = raw.get_ref();
    let id = r.id.get_ref().clone();
    let rule = Some(id.as_str());
    let at = |span: std::ops::Range<usize>| ctx.loc(span.start);
    if let Some(first) = ids.get(&id) {
        out.push(finding(
            LintLevel::Error,
            at(r.id.span()),
            rule,
            format!("duplicate id: also at {first}"),
            "give each rule its own id",
        ));
    } else {
        ids.insert(id.clone(), at(r.id.span()));
    }
    let steps = r
        .normalize
        .clone()
        .unwrap_or_else(|| Step::DEFAULT.to_vec());
    let profile = Profile::from_steps(&steps);

    let mut items = |list: &[Spanned<String>], what: &str| -> Vec<Item> {
        let mut kept: Vec<Item> = Vec::new();
        for t in list {
            let text = t.get_ref().trim();
            if text.is_empty() {
                out.push(finding(
                    LintLevel::Error,
                    at(t.span()),
                    rule,
                    format!("empty or whitespace-only {what}"),
                    "remove it",
                ));
                continue;
            }
            if kept.iter().any(|k| k.text == text) {
                out.push(finding(
                    LintLevel::Warning,
                    at(t.span()),
                    rule,
                    format!("duplicate {what} `{text}`"),
                    "remove the second one",
                ));
                continue;
            }
            kept.push(Item {
                text: text.to_owned(),
                location: at(t.span()),
            });
        }
        kept
    };
    let mut terms = items(&r.terms, "term");
    let allow = items(&r.allow, "allow phrase");
    if let Some(tf) = &r.terms_file {
        let dir = ctx.path.parent().unwrap_or_else(|| Path::new(""));
        let path = dir.join(tf.get_ref().trim());
        match resolve(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| decode_utf8(&path, b).map_err(|e| e.to_string()))
        {
            Ok(text) => {
                for (n, line) in text.lines().enumerate() {
                    let t = line.trim();
                    if parse_word_list(line).is_empty() {
                        continue;
                    }
                    let location = Location {
                        file: path.clone(),
                        line: n + 1,
                        column: 1,
                    };
                    if terms.iter().any(|k| k.text == t) {
                        out.push(finding(
                            LintLevel::Warning,
                            location,
                            rule,
                            format!(
                                "duplicate term `{t}` (also in the rule or earlier in the list)"
                            ),
                            "remove the second one",
                        ));
                        continue;
                    }
                    terms.push(Item {
                        text: t.to_owned(),
                        location,
                    });
                }
            }
            Err(e) => out.push(finding(
                LintLevel::Error,
                at(tf.span()),
                rule,
                format!("terms_file `{}`: {e}", path.display()),
                "point terms_file at a word list next to the rule file",
            )),
        }
    }

    let mut regexes = Vec::new();
    for re in &r.regex {
        let src = re.get_ref();
        match regex::RegexBuilder::new(src)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
        {
            Err(e) => {
                let msg = one_line_error(&e.to_string());
                out.push(finding(
                    LintLevel::Error,
                    at(re.span()),
                    rule,
                    format!("regex `{src}` does not compile: {msg}"),
                    if msg.contains("size limit") {
                        "narrow the regex (bounded repetitions, fewer alternatives) or split it"
                    } else {
                        "correct the syntax (Rust regex syntax)"
                    },
                ));
            }
            Ok(compiled) => {
                if compiled.is_match("") {
                    out.push(finding(
                        LintLevel::Error,
                        at(re.span()),
                        rule,
                        format!("regex `{src}` can match the empty string"),
                        "require at least one character (`+` instead of `*`, no empty alternative)",
                    ));
                }
                regexes.push(compiled);
            }
        }
    }

    for t in &terms {
        let mut chars = t.text.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            if is_han(c) && r.boundary != Boundary::Word {
                out.push(finding(
                    LintLevel::Warning,
                    t.location.clone(),
                    rule,
                    format!("single-character Chinese term `{}` without boundary = \"word\": it hits inside every word that contains it", t.text),
                    "use a longer term, or set boundary = \"word\" on the rule",
                ));
            }
        }
    }
    let examples = r.examples.as_ref();
    if examples.is_none_or(|e| e.matches.is_empty() && e.no_match.is_empty()) {
        out.push(finding(
            LintLevel::Warning,
            at(raw.span()),
            rule,
            "no examples".into(),
            "add examples.match (texts it must hit) and examples.no_match (texts it must not)",
        ));
    }
    let verdict = match r.action {
        Some(a) => a.as_str().to_owned(),
        None => format!("severity {}", r.severity.as_str()),
    };
    Some(Parsed {
        id,
        category: *r.category.get_ref(),
        verdict,
        profile,
        terms,
        allow,
        regexes,
    })
}

fn one_line_error(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or(s)
        .to_owned()
}

fn is_han(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x3134F)
}

/// Checks across terms: folded duplicates between rules with different verdicts, terms an
/// allow phrase always covers, allow phrases that cover no term.
fn cross_rule(rules: &[Parsed], out: &mut Vec<LintFinding>) {
    // Folded term → (rule index, term index), the first seen.
    let mut seen: HashMap<String, (usize, usize)> = HashMap::new();
    for (ri, r) in rules.iter().enumerate() {
        let folded_terms: Vec<String> = r
            .terms
            .iter()
            .map(|t| fold_str(r.profile, &t.text))
            .collect();
        for (ti, (t, key)) in r.terms.iter().zip(&folded_terms).enumerate() {
            if key.is_empty() {
                out.push(finding(
                    LintLevel::Warning,
                    t.location.clone(),
                    Some(&r.id),
                    format!("term `{}` normalises to nothing: it can never hit", t.text),
                    "remove it, or add the characters it is made of without normalisation",
                ));
                continue;
            }
            match seen.get(key) {
                Some(&(oi, oti)) if oi != ri => {
                    let o = &rules[oi];
                    if o.category != r.category || o.verdict != r.verdict {
                        out.push(finding(
                            LintLevel::Warning,
                            t.location.clone(),
                            Some(&r.id),
                            format!(
                                "term `{}` folds to `{key}`, as term `{}` of rule `{}` ({}) does: one text, two verdicts (category {} {} here, category {} {} there)",
                                t.text, o.terms[oti].text, o.id, o.terms[oti].location, r.category, r.verdict, o.category, o.verdict
                            ),
                            "keep the term in one rule",
                        ));
                    }
                }
                Some(_) => {}
                None => {
                    seen.insert(key.clone(), (ri, ti));
                }
            }
        }
        for a in &r.allow {
            let folded = fold_str(r.profile, &a.text);
            let covers_term = folded_terms
                .iter()
                .any(|t| !t.is_empty() && folded.contains(t.as_str()));
            let covers_regex = r
                .regexes
                .iter()
                .any(|re| re.is_match(&a.text) || re.is_match(&folded));
            if !covers_term && !covers_regex {
                out.push(finding(
                    LintLevel::Warning,
                    a.location.clone(),
                    Some(&r.id),
                    format!(
                        "allow phrase `{}` contains no term of the rule: it does nothing",
                        a.text
                    ),
                    "remove it, or put it in the rule whose term it should shield",
                ));
            }
            for (t, key) in r.terms.iter().zip(&folded_terms) {
                if !key.is_empty() && *key == folded {
                    out.push(finding(
                        LintLevel::Warning,
                        t.location.clone(),
                        Some(&r.id),
                        format!("term `{}` is always covered by allow phrase `{}` ({}): it can never hit", t.text, a.text, a.location),
                        "remove the term or the allow phrase",
                    ));
                }
            }
        }
    }
}
