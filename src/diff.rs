//! What changing the rules would do to an archive: the decisions of the old and the new
//! rule set on the same post, compared (`shenhe diff`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::post::{Decision, PostId};
use crate::vocab::Action;

/// How a post's decision changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Allowed before, flagged now.
    NewlyFlagged,
    /// Flagged before, allowed now.
    Cleared,
    /// Flagged both times, with another action.
    ActionChanged,
    /// Flagged both times with the same action, with other categories.
    CategoriesChanged,
    /// Same action and categories, other rules hit.
    RulesChanged,
}

impl ChangeKind {
    /// Every kind, in report order.
    pub const ALL: [ChangeKind; 5] = [
        ChangeKind::NewlyFlagged,
        ChangeKind::Cleared,
        ChangeKind::ActionChanged,
        ChangeKind::CategoriesChanged,
        ChangeKind::RulesChanged,
    ];

    /// The name used in the JSON details and the summary.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::NewlyFlagged => "newly_flagged",
            ChangeKind::Cleared => "cleared",
            ChangeKind::ActionChanged => "action_changed",
            ChangeKind::CategoriesChanged => "categories_changed",
            ChangeKind::RulesChanged => "rules_changed",
        }
    }
}

/// One side of a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Side {
    /// The action.
    pub action: Action,
    /// The categories.
    pub categories: Vec<u16>,
    /// The rules that hit (sorted, distinct).
    pub rules: Vec<String>,
}

impl Side {
    fn of(d: &Decision) -> Side {
        let rules: BTreeSet<String> = d.hits.iter().map(|h| h.rule.to_string()).collect();
        Side {
            action: d.action,
            categories: d.categories.clone(),
            rules: rules.into_iter().collect(),
        }
    }
}

/// A post whose decision changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Input line.
    pub line: Option<u64>,
    /// Post id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<PostId>,
    /// How it changed.
    pub change: ChangeKind,
    /// The old rules' decision.
    pub old: Side,
    /// The new rules' decision.
    pub new: Side,
}

/// The change between two decisions of the same post, if any.
pub fn compare(old: &Decision, new: &Decision) -> Option<Change> {
    let (o, n) = (Side::of(old), Side::of(new));
    let change = match (old.is_flagged(), new.is_flagged()) {
        (false, true) => ChangeKind::NewlyFlagged,
        (true, false) => ChangeKind::Cleared,
        _ if o.action != n.action => ChangeKind::ActionChanged,
        _ if o.categories != n.categories => ChangeKind::CategoriesChanged,
        _ if o.rules != n.rules => ChangeKind::RulesChanged,
        _ => return None,
    };
    Some(Change {
        line: new.line.or(old.line),
        id: new.id.clone(),
        change,
        old: o,
        new: n,
    })
}

/// Counts over a whole archive.
#[derive(Clone, Debug, Default)]
pub struct DiffSummary {
    /// Posts compared.
    pub posts: u64,
    /// Posts flagged by the old rules.
    pub flagged_old: u64,
    /// Posts flagged by the new rules.
    pub flagged_new: u64,
    /// Changed posts per kind.
    pub by_kind: BTreeMap<ChangeKind, u64>,
    /// Per rule: posts it newly hits, posts it no longer hits.
    pub by_rule: BTreeMap<String, (u64, u64)>,
    /// Per category: posts newly in it, posts no longer in it.
    pub by_category: BTreeMap<u16, (u64, u64)>,
    /// Up to `samples` changes of each kind, with the post's text.
    pub samples: BTreeMap<ChangeKind, Vec<(Change, String)>>,
}

impl DiffSummary {
    /// Adds one post: its old and new decisions, its text (for samples), keeping at most
    /// `samples` samples per kind.
    pub fn add(
        &mut self,
        old: &Decision,
        new: &Decision,
        text: &str,
        samples: usize,
    ) -> Option<Change> {
        self.posts += 1;
        self.flagged_old += u64::from(old.is_flagged());
        self.flagged_new += u64::from(new.is_flagged());
        let change = compare(old, new)?;
        *self.by_kind.entry(change.change).or_default() += 1;
        let (o, n) = (&change.old, &change.new);
        for r in n.rules.iter().filter(|r| !o.rules.contains(r)) {
            self.by_rule.entry(r.clone()).or_default().0 += 1;
        }
        for r in o.rules.iter().filter(|r| !n.rules.contains(r)) {
            self.by_rule.entry(r.clone()).or_default().1 += 1;
        }
        for c in n.categories.iter().filter(|c| !o.categories.contains(c)) {
            self.by_category.entry(*c).or_default().0 += 1;
        }
        for c in o.categories.iter().filter(|c| !n.categories.contains(c)) {
            self.by_category.entry(*c).or_default().1 += 1;
        }
        let list = self.samples.entry(change.change).or_default();
        if list.len() < samples {
            list.push((change.clone(), text.to_owned()));
        }
        Some(change)
    }

    /// The summary for a person.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let changed: u64 = self.by_kind.values().sum();
        let _ = writeln!(
            s,
            "shenhe diff: {} posts, {} changed; flagged {} -> {}",
            self.posts, changed, self.flagged_old, self.flagged_new
        );
        for k in ChangeKind::ALL {
            let _ = writeln!(
                s,
                "  {:<19} {}",
                k.as_str(),
                self.by_kind.get(&k).copied().unwrap_or(0)
            );
        }
        if !self.by_rule.is_empty() {
            let _ = writeln!(s, "by rule (posts newly hit / no longer hit):");
            for (r, (gained, lost)) in &self.by_rule {
                let _ = writeln!(s, "  {r:<28} +{gained} -{lost}");
            }
        }
        if !self.by_category.is_empty() {
            let _ = writeln!(s, "by category (posts newly in / no longer in):");
            for (c, (gained, lost)) in &self.by_category {
                let _ = writeln!(s, "  {c:<28} +{gained} -{lost}");
            }
        }
        for (k, list) in &self.samples {
            let _ = writeln!(s, "samples, {}:", k.as_str());
            for (c, text) in list {
                let excerpt: String = text.chars().take(40).collect();
                let excerpt = crate::terminal::printable(&excerpt);
                let _ = writeln!(
                    s,
                    "  line {}: {} {:?} -> {} {:?}  {excerpt}",
                    c.line.unwrap_or(0),
                    c.old.action.as_str(),
                    c.old.rules,
                    c.new.action.as_str(),
                    c.new.rules
                );
            }
        }
        s
    }
}
