//! Hit statistics over an archive (`shenhe scan --stats FILE`): hits and posts per rule and
//! per category, the rules that never fired, the share of posts each rule flags (a rule that
//! flags a large share of an archive is suspect: a term like 管理 in every post), and where
//! the scan's time went per kind of rule.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::matcher::KindTimes;
use crate::post::Decision;
use crate::rules::RuleSet;

/// Share of posts above which a rule is reported as suspect, by default.
pub const DEFAULT_SUSPECT_SHARE: f64 = 0.05;

/// Counts accumulated over decisions.
#[derive(Clone, Debug, Default)]
pub struct HitStats {
    posts: u64,
    flagged: u64,
    /// rule id → (category, hits, posts hit).
    rules: BTreeMap<String, (u16, u64, u64)>,
    /// category → (hits, posts).
    categories: BTreeMap<u16, (u64, u64)>,
    times: KindTimes,
}

/// One rule's line of the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleStats {
    /// The rule.
    pub rule: String,
    /// Its category.
    pub category: u16,
    /// Hits, all posts together.
    pub hits: u64,
    /// Posts it hit.
    pub posts: u64,
    /// `posts` divided by all posts.
    pub share: f64,
    /// Whether `share` is above the suspect threshold.
    pub suspect: bool,
}

/// One category's line of the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CategoryStats {
    /// The category.
    pub category: u16,
    /// Hits.
    pub hits: u64,
    /// Posts with at least one hit in it.
    pub posts: u64,
    /// `posts` divided by all posts.
    pub share: f64,
}

/// The statistics, as written to the `--stats` file (JSON).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatsReport {
    /// Posts decided.
    pub posts: u64,
    /// Posts flagged.
    pub flagged: u64,
    /// Share of posts above which a rule is suspect.
    pub suspect_share: f64,
    /// Every rule, most posts first.
    pub rules: Vec<RuleStats>,
    /// Rules that never fired.
    pub never_fired: Vec<String>,
    /// Rules above the suspect share.
    pub suspect: Vec<String>,
    /// Every category hit.
    pub categories: Vec<CategoryStats>,
    /// Scan time per kind of rule, in milliseconds of CPU time summed over threads.
    pub time_ms: BTreeMap<&'static str, f64>,
}

impl HitStats {
    /// Empty statistics over the rules of `rules` (so rules that never fire are listed).
    pub fn new(rules: &RuleSet) -> HitStats {
        let mut s = HitStats::default();
        for r in rules.rules() {
            s.rules.insert(r.id.clone(), (r.category, 0, 0));
        }
        s
    }

    /// Adds one decision, and the time its scan took.
    pub fn add(&mut self, d: &Decision, times: KindTimes) {
        self.posts += 1;
        self.flagged += u64::from(d.is_flagged());
        self.times += times;
        let mut rules_hit = BTreeSet::new();
        for h in &d.hits {
            let e = self
                .rules
                .entry(h.rule.to_string())
                .or_insert((h.category, 0, 0));
            e.1 += 1;
            if rules_hit.insert(h.rule.clone()) {
                e.2 += 1;
            }
            self.categories.entry(h.category).or_default().0 += 1;
        }
        for &c in &d.categories {
            self.categories.entry(c).or_default().1 += 1;
        }
    }

    /// The report, with rules flagging more than `suspect_share` of posts marked suspect.
    pub fn report(&self, suspect_share: f64) -> StatsReport {
        let share = |n: u64| n as f64 / self.posts.max(1) as f64;
        let mut rules: Vec<RuleStats> = self
            .rules
            .iter()
            .map(|(id, &(category, hits, posts))| RuleStats {
                rule: id.clone(),
                category,
                hits,
                posts,
                share: share(posts),
                suspect: share(posts) > suspect_share,
            })
            .collect();
        rules.sort_by(|a, b| b.posts.cmp(&a.posts).then_with(|| a.rule.cmp(&b.rule)));
        let ms = |ns: u64| ns as f64 / 1e6;
        let t = self.times;
        let time_ms = BTreeMap::from([
            (
                "literal",
                ms(t.literal_ns.saturating_sub(t.word_boundary_ns)),
            ),
            ("word_boundary", ms(t.word_boundary_ns)),
            ("regex", ms(t.regex_ns)),
            (
                "policy_and_decision",
                ms(t.total_ns.saturating_sub(t.literal_ns + t.regex_ns)),
            ),
            ("total", ms(t.total_ns)),
        ]);
        StatsReport {
            posts: self.posts,
            flagged: self.flagged,
            suspect_share,
            never_fired: rules
                .iter()
                .filter(|r| r.hits == 0)
                .map(|r| r.rule.clone())
                .collect(),
            suspect: rules
                .iter()
                .filter(|r| r.suspect)
                .map(|r| r.rule.clone())
                .collect(),
            rules,
            categories: self
                .categories
                .iter()
                .map(|(&category, &(hits, posts))| CategoryStats {
                    category,
                    hits,
                    posts,
                    share: share(posts),
                })
                .collect(),
            time_ms,
        }
    }
}
