//! Test files kept beside rule sets (`*.test.toml`), run by `shenhe test`: posts with the
//! rules, categories, action and masked text they must get.
//!
//! ```toml
//! [[test]]
//! text = "你这个笨蛋"              # required; title, board, time and poster are optional
//! rules = ["insult.sample"]       # exactly these rules hit ([] for none)
//! categories = [8]                # exactly these categories
//! action = "mask"
//! masked = "你这个＊＊"
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Location, Result};
use crate::post::{Post, Poster};
use crate::vocab::Action;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    test: Vec<Spanned<RawTest>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTest {
    text: String,
    title: Option<String>,
    board: Option<String>,
    time: Option<String>,
    poster: Option<Poster>,
    rules: Option<Vec<String>>,
    categories: Option<Vec<u16>>,
    action: Option<Action>,
    masked: Option<String>,
}

/// One test of a test file.
#[derive(Clone, Debug)]
pub struct RuleTest {
    /// Where the `[[test]]` is.
    pub location: Location,
    /// The post it scans.
    pub post: Post,
    /// The rules that must hit, exactly (sorted), when given.
    pub rules: Option<Vec<String>>,
    /// The categories the decision must have, exactly (sorted), when given.
    pub categories: Option<Vec<u16>>,
    /// The action the decision must have, when given.
    pub action: Option<Action>,
    /// The masked text the decision must have, when given.
    pub masked: Option<String>,
}

/// The tests of the test file `path` whose content is `text`.
pub fn parse_tests(path: &Path, text: &str) -> Result<Vec<RuleTest>> {
    let loc = |offset: usize| Location::from_offset(path, text, offset);
    let file: RawFile = toml::from_str(text).map_err(|e| {
        Error::new(ErrorKind::Syntax, e.message().trim().to_owned())
            .at(loc(e.span().map_or(0, |s| s.start)))
    })?;
    Ok(file
        .test
        .into_iter()
        .map(|t| {
            let location = loc(t.span().start);
            let t = t.into_inner();
            let mut post = Post::from_text(t.text);
            post.title = t.title;
            post.board = t.board;
            post.time = t.time;
            post.poster = t.poster;
            RuleTest {
                location,
                post,
                rules: t.rules.map(sorted),
                categories: t.categories.map(sorted),
                action: t.action,
                masked: t.masked,
            }
        })
        .collect())
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v.dedup();
    v
}

impl RuleTest {
    /// Scans the post; `Err` says what differs from what the test expects, and what the
    /// scan found (every hit with its span and steps).
    pub fn check(&self, engine: &Engine) -> std::result::Result<(), String> {
        let d = engine.scan(&self.post);
        let mut wrong = Vec::new();
        let got_rules = sorted(d.hits.iter().map(|h| h.rule.to_string()).collect());
        if let Some(want) = &self.rules {
            if *want != got_rules {
                wrong.push(format!("rules {got_rules:?}, expected {want:?}"));
            }
        }
        if let Some(want) = &self.categories {
            if *want != d.categories {
                wrong.push(format!("categories {:?}, expected {want:?}", d.categories));
            }
        }
        if let Some(want) = self.action {
            if want != d.action {
                wrong.push(format!(
                    "action {}, expected {}",
                    d.action.as_str(),
                    want.as_str()
                ));
            }
        }
        if let Some(want) = &self.masked {
            let got = d.masked.clone().unwrap_or_else(|| self.post.text.clone());
            if *want != got {
                wrong.push(format!("masked {got:?}, expected {want:?}"));
            }
        }
        if wrong.is_empty() {
            return Ok(());
        }
        let mut msg = wrong.join("; ");
        if d.hits.is_empty() {
            msg.push_str("\n     no hits");
        }
        for h in &d.hits {
            let steps = if h.steps.is_empty() {
                "as written".to_owned()
            } else {
                h.steps.join("+")
            };
            msg.push_str(&format!(
                "\n     hit {} {:?} at chars {}..{} (bytes {}..{}) by term {:?}, {steps}",
                h.rule, h.matched, h.char_start, h.char_end, h.start, h.end, h.term
            ));
        }
        Err(msg)
    }
}

/// The test files beside the rule sets of `paths`: `*.test.toml` in a directory, and
/// `NAME.test.toml` beside a rule file `NAME.toml`; (path, content).
pub fn test_files(paths: &[PathBuf]) -> Result<Vec<(PathBuf, String)>> {
    super::load::test_files(paths)
}

/// The test files of the bundled rule sets; (path, content).
pub fn bundled_test_files() -> Vec<(PathBuf, String)> {
    super::load::bundled_test_files()
}
