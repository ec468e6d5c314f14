//! Rule sets: the model of what a community forbids, and how it is loaded.
//!
//! A [`RuleSet`] is loaded from TOML files (see `rules/README.md` for the format),
//! validated completely — a rule set that fails to load is never half-loaded — and
//! hashed. This module owns the model and the loading; it does not match text.

mod import;
mod load;
mod testfile;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::category::{self, Category};
use crate::error::{Location, Result};
use crate::post::{Post, RulesetInfo};
pub use crate::vocab::{Action, Detector, Field, Severity, Step};

pub use import::{import_word_list, Imported};
pub use load::lint::{lint_bundled, lint_paths, LintFinding, LintLevel};
pub use load::BUNDLED_PREFIX;
pub use load::MAX_RULE_FILE_BYTES;
pub use load::{MAX_REGEX_LEN, MAX_TERM_CHARS};
pub(crate) use load::{REGEX_SET_SIZE_LIMIT, REGEX_SIZE_LIMIT};
pub use testfile::{bundled_test_files, parse_tests, test_files, RuleTest};

/// Where a term may match relative to the words around it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Boundary {
    /// A term starting or ending with an ASCII letter must not touch another ASCII letter there.
    #[default]
    Auto,
    /// `auto`, and no word of the segmented text may straddle the hit's start or end.
    Word,
    /// Plain substring matching.
    None,
}

/// Whether a rule's terms also match their pinyin written in Latin letters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pinyin {
    /// No pinyin matching.
    #[default]
    Off,
    /// Full syllables (dubo, du-bo, 赌bo).
    Full,
    /// Full syllables and initials as a standalone word (db).
    Initials,
}

/// A rule's examples, run by `shenhe test` and by the test suite.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Examples {
    /// Texts the rule must hit.
    #[serde(rename = "match", default)]
    pub matches: Vec<String>,
    /// Texts the rule must not hit.
    #[serde(default)]
    pub no_match: Vec<String>,
}

/// One rule, validated.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Rule {
    /// Unique, stable id.
    pub id: String,
    /// Category number (1–9 or a declared custom category).
    pub category: u16,
    /// Severity.
    pub severity: Severity,
    /// The rule's own action; when absent the policy decides from the severity.
    pub action: Option<Action>,
    /// Whether a hit must be reported to the authorities.
    pub report: bool,
    /// Literal terms, inline ones first, then those of `terms_file`, trimmed.
    pub terms: Vec<String>,
    /// Regexes (Rust syntax).
    pub regex: Vec<String>,
    /// Built-in detectors (`detect`), in [`Detector::ALL`] order. Left out of the canonical
    /// form when empty, so rule sets without them keep their hash.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub detect: Vec<Detector>,
    /// Fewest digits a `digits` hit has (`digits_min`); set exactly when `detect` has
    /// `digits`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digits_min: Option<u32>,
    /// Allow phrases: a hit inside one of them is not a hit.
    pub allow: Vec<String>,
    /// Boundary mode.
    pub boundary: Boundary,
    /// Normalisation steps, in the documented order.
    pub normalize: Vec<Step>,
    /// Pinyin matching.
    pub pinyin: Pinyin,
    /// Which post fields the rule reads.
    pub fields: Vec<Field>,
    /// Conditions on the post and poster; the rule gives no hit unless all hold.
    pub when: Option<Conditions>,
    /// Examples that must and must not match.
    pub examples: Examples,
    /// Where the rule is defined (its `[[rule]]` header).
    #[serde(skip)]
    pub location: Location,
}

/// Conditions on the post's metadata (`when`): all given ones must hold.
///
/// A condition on a field the post does not have does not hold: a post without poster
/// data is neither verified nor unverified. A field the post has but that cannot be read
/// counts as the riskier value, with a warning in the decision: not verified (`verified` of
/// the wrong type), a new account (`registered` unreadable), an address in the list (`ip`
/// unreadable), now (`time` unreadable).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Conditions {
    /// The poster's real-name verification status must be this.
    pub verified: Option<bool>,
    /// The poster registered less than this many days before the post's time.
    pub account_age_days_lt: Option<u32>,
    /// The poster's IP is in one of these blocks (empty: no condition).
    pub ip_in: Vec<ipnet::IpNet>,
    /// The post is on one of these boards.
    pub board_in: Option<Vec<String>>,
}

impl Conditions {
    /// Whether every given condition holds for `post`. Account age is measured at the
    /// post's `time`, or at `now` when the post has none.
    pub fn holds(&self, post: &Post, now: jiff::Timestamp) -> bool {
        let poster = post.poster.as_ref();
        if let Some(v) = self.verified {
            if poster.and_then(|p| p.verified) != Some(v) {
                return false;
            }
        }
        if let Some(days) = self.account_age_days_lt {
            // Malformed metadata counts as the riskier value: a registration time that
            // cannot be read is a new account; a post time that cannot be read is now.
            let at = post
                .time
                .as_deref()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .unwrap_or(now);
            match poster.and_then(|p| p.registered.as_deref()) {
                None => return false,
                Some(t) => match t.parse::<jiff::Timestamp>() {
                    Err(_) => {}
                    Ok(r) if at.as_second() - r.as_second() >= i64::from(days) * 86_400 => {
                        return false
                    }
                    Ok(_) => {}
                },
            }
        }
        if !self.ip_in.is_empty() {
            // An address that cannot be read counts as one of the listed (the riskier value).
            match poster.and_then(|p| p.ip.as_deref()) {
                None => return false,
                Some(ip) => match ip.trim().parse::<std::net::IpAddr>() {
                    Err(_) => {}
                    Ok(ip) if self.ip_in.iter().any(|n| n.contains(&ip)) => {}
                    Ok(_) => return false,
                },
            }
        }
        if let Some(boards) = &self.board_in {
            match post.board.as_deref() {
                Some(b) if boards.iter().any(|x| x == b) => {}
                _ => return false,
            }
        }
        true
    }
}

/// Default actions per severity and the other rule-set-wide decisions.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Policy {
    /// Action for a hit whose rule has no `action`, by severity.
    pub severity_actions: BTreeMap<Severity, Action>,
    /// A flagged post of an unverified poster gets at least this action.
    pub unverified: Option<Action>,
    /// Categories that always report.
    pub report_categories: Vec<u16>,
    /// Per-board overrides of `severity_actions`.
    pub boards: BTreeMap<String, BTreeMap<Severity, Action>>,
    /// Repeat-offence escalation (applied by the moderation layer, not the engine).
    pub escalation: Escalation,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            severity_actions: BTreeMap::from([
                (Severity::Low, Action::Mask),
                (Severity::Medium, Action::Review),
                (Severity::High, Action::Delete),
                (Severity::Critical, Action::Delete),
            ]),
            unverified: None,
            report_categories: Vec::new(),
            boards: BTreeMap::new(),
            escalation: Escalation::default(),
        }
    }
}

/// Who counts as the same offender for escalation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EscalateBy {
    /// The same account.
    User,
    /// The same IP address.
    Ip,
}

/// Repeat-offence escalation: `count` flagged posts within `window_hours` raise the action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    /// Flagged posts within the window that trigger escalation; 0 turns it off.
    pub count: u32,
    /// The window, in hours.
    pub window_hours: u32,
    /// What identifies the offender.
    pub by: Vec<EscalateBy>,
}

impl Default for Escalation {
    fn default() -> Escalation {
        Escalation {
            count: 3,
            window_hours: 24,
            by: vec![EscalateBy::User, EscalateBy::Ip],
        }
    }
}

/// A validated set of rules: what the engine enforces.
#[derive(Clone, Debug)]
pub struct RuleSet {
    info: Arc<RulesetInfo>,
    categories: BTreeMap<u16, Category>,
    rules: Vec<Rule>,
    policy: Policy,
}

impl RuleSet {
    /// Loads a rule file, or every `*.toml` directly inside a directory (except `*.test.toml`).
    pub fn from_path(path: impl AsRef<Path>) -> Result<RuleSet> {
        load::from_paths(&[path.as_ref().to_path_buf()])
    }

    /// Loads several files or directories as one rule set.
    pub fn from_paths<P: AsRef<Path>>(paths: &[P]) -> Result<RuleSet> {
        let paths: Vec<PathBuf> = paths.iter().map(|p| p.as_ref().to_path_buf()).collect();
        load::from_paths(&paths)
    }

    /// Loads one rule file given as text. `terms_file` is refused: use
    /// [`RuleSet::from_toml_str_with_base`] to give the directory it is relative to.
    pub fn from_toml_str(toml: &str) -> Result<RuleSet> {
        load::from_str(toml, None)
    }

    /// Loads one rule file given as text, resolving `terms_file` relative to `base`.
    pub fn from_toml_str_with_base(toml: &str, base: impl AsRef<Path>) -> Result<RuleSet> {
        load::from_str(toml, Some(base.as_ref()))
    }

    /// The rule sets bundled with shenhe (compiled into the library).
    pub fn bundled() -> RuleSet {
        load::bundled().expect("the bundled rule sets load (checked by the test suite)")
    }

    /// The bundled rule files as `(name, content)`, for inspection or as a starting point.
    pub fn bundled_files() -> &'static [(&'static str, &'static str)] {
        load::BUNDLED
    }

    /// Name, version and hash.
    pub fn info(&self) -> &Arc<RulesetInfo> {
        &self.info
    }

    /// The SHA-256 (hex) of the canonical loaded form, `terms_file` contents included.
    pub fn hash(&self) -> &str {
        &self.info.hash
    }

    /// The rules, in load order (files in name order, rules in file order).
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule with this id.
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Every category the rule set knows: the nine of Article 15 and the declared ones.
    pub fn categories(&self) -> impl Iterator<Item = &Category> {
        self.categories.values()
    }

    /// One category by number.
    pub fn category(&self, number: u16) -> Option<&Category> {
        self.categories.get(&number)
    }

    /// The policy (defaults when the rule set has no `[policy]`).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    fn assemble(
        name: String,
        version: String,
        custom: BTreeMap<u16, Category>,
        rules: Vec<Rule>,
        policy: Policy,
    ) -> Result<RuleSet> {
        let mut categories: BTreeMap<u16, Category> = category::article_15()
            .into_iter()
            .map(|c| (c.number, c))
            .collect();
        categories.extend(custom);
        let hash = canonical_hash(&name, &version, &categories, &rules, &policy);
        Ok(RuleSet {
            info: Arc::new(RulesetInfo {
                name,
                version,
                hash,
            }),
            categories,
            rules,
            policy,
        })
    }
}

/// SHA-256 over a canonical JSON encoding of everything the engine enforces: rules sorted
/// by id with their resolved terms, declared categories and the policy.
fn canonical_hash(
    name: &str,
    version: &str,
    categories: &BTreeMap<u16, Category>,
    rules: &[Rule],
    policy: &Policy,
) -> String {
    use sha2::{Digest, Sha256};
    #[derive(Serialize)]
    struct Canonical<'a> {
        format: u32,
        name: &'a str,
        version: &'a str,
        categories: Vec<&'a Category>,
        rules: Vec<&'a Rule>,
        policy: &'a Policy,
    }
    let mut sorted: Vec<&Rule> = rules.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let canonical = Canonical {
        format: 1,
        name,
        version,
        categories: categories.values().filter(|c| !c.is_statutory()).collect(),
        rules: sorted,
        policy,
    };
    let bytes = serde_json::to_vec(&canonical).expect("rule sets serialise");
    let digest = Sha256::digest(&bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
