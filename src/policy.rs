//! Policy: what happens to a post, from its hits, its poster's metadata and, for repeat-
//! offence escalation, how many offences its account or address has in the window.
//!
//! Pure functions of their inputs: no clock, no store, no state. The engine folds each hit
//! into a `Verdict` as it scans; the pipeline's offence ledger counts offences and asks
//! [`escalate`] what the count means. The rule set's `[policy]` is the model
//! ([`Policy`]); this room holds what it means, in the precedence DESIGN.md gives: a hit's
//! action is its rule's `action`, else the board's override for its severity, else
//! `severity_actions`; then `unverified`, a truncated hit list and escalation can only raise
//! it, and `report_categories` can only add a report.

use crate::post::{Decision, Post};
use crate::rules::{Escalation, Policy, Rule};
use crate::vocab::{Action, Measure, Severity};

/// The action for a hit of `rule` in a post on `board`: the rule's own action, else the
/// board's override for its severity, else `severity_actions`.
pub fn hit_action(policy: &Policy, rule: &Rule, board: Option<&str>) -> Action {
    if let Some(action) = rule.action {
        return action;
    }
    board
        .and_then(|b| policy.boards.get(b))
        .and_then(|o| o.get(&rule.severity))
        .or_else(|| policy.severity_actions.get(&rule.severity))
        .copied()
        .unwrap_or(Action::Review)
}

/// The next stronger action (`mask → review → block → delete`; allow and delete stay).
pub fn raise(action: Action) -> Action {
    match action {
        Action::Allow => Action::Allow,
        Action::Mask => Action::Review,
        Action::Review => Action::Block,
        Action::Block | Action::Delete => Action::Delete,
    }
}

/// What escalation does to a flagged post whose account or address has `offences` offences
/// in the window (the post itself included): nothing below `count`; at `count` the action
/// is raised one level and the account warned, at twice `count` restricted, at three times
/// or more suspended. `count = 0` turns escalation off.
pub fn escalate(
    action: Action,
    offences: usize,
    escalation: &Escalation,
) -> Option<(Action, Measure)> {
    let count = escalation.count as usize;
    if action == Action::Allow || count == 0 || offences < count {
        return None;
    }
    let measure = match offences / count {
        1 => Measure::Warn,
        2 => Measure::Restrict,
        _ => Measure::Suspend,
    };
    Some((raise(action), measure))
}

/// Cuts a decision's hit list to `max_hits` (a pipeline's limit below its engine's): the
/// post is then `truncated` and goes to a person, as the engine does at its own limit.
pub(crate) fn limit_hits(d: &mut Decision, max_hits: usize) {
    if d.hits.len() > max_hits {
        d.hits.truncate(max_hits);
        d.truncated = true;
        d.action = d.action.max(Action::Review);
    }
}

/// The post-level outcome of a scan, built hit by hit.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    pub(crate) action: Action,
    pub(crate) report: bool,
    pub(crate) severity: Option<Severity>,
    /// Sorted, each once.
    pub(crate) categories: Vec<u16>,
}

impl Verdict {
    /// Counts one hit of `rule` (on `board`); returns the hit's own action (a hit at `mask`
    /// or above is masked).
    pub(crate) fn add_hit(&mut self, policy: &Policy, rule: &Rule, board: Option<&str>) -> Action {
        let action = hit_action(policy, rule, board);
        self.action = self.action.max(action);
        self.report |= rule.report || policy.report_categories.contains(&rule.category);
        self.severity = self.severity.max(Some(rule.severity));
        if let Err(i) = self.categories.binary_search(&rule.category) {
            self.categories.insert(i, rule.category);
        }
        action
    }

    /// After the last hit: a post with more hits than its list holds goes to a person; a
    /// flagged post of an unverified poster gets at least the policy's `unverified` action.
    pub(crate) fn finish(&mut self, policy: &Policy, post: &Post, truncated: bool) {
        if truncated {
            self.action = self.action.max(Action::Review);
        }
        let unverified = post.poster.as_ref().and_then(|p| p.verified) == Some(false);
        if self.action > Action::Allow && unverified {
            if let Some(min) = policy.unverified {
                self.action = self.action.max(min);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{EscalateBy, RuleSet};

    #[test]
    fn escalation_raises_one_level_and_measures_grow_with_the_count() {
        let e = Escalation {
            count: 3,
            window_hours: 24,
            by: vec![EscalateBy::User],
        };
        assert_eq!(escalate(Action::Mask, 2, &e), None);
        assert_eq!(
            escalate(Action::Mask, 3, &e),
            Some((Action::Review, Measure::Warn))
        );
        assert_eq!(
            escalate(Action::Review, 6, &e),
            Some((Action::Block, Measure::Restrict))
        );
        assert_eq!(
            escalate(Action::Delete, 9, &e),
            Some((Action::Delete, Measure::Suspend))
        );
        assert_eq!(escalate(Action::Allow, 9, &e), None);
        let off = Escalation { count: 0, ..e };
        assert_eq!(escalate(Action::Mask, 9, &off), None);
    }

    #[test]
    fn precedence_rule_then_board_then_severity() {
        let rules = RuleSet::from_toml_str(
            r#"
[policy]
boards.finance = { low = "block" }
[[rule]]
id = "a"
category = 7
severity = "low"
terms = ["甲"]
[[rule]]
id = "b"
category = 7
severity = "low"
action = "review"
terms = ["乙"]
"#,
        )
        .unwrap();
        let (a, b) = (&rules.rules()[0], &rules.rules()[1]);
        let p = rules.policy();
        assert_eq!(hit_action(p, a, None), Action::Mask);
        assert_eq!(hit_action(p, a, Some("finance")), Action::Block);
        assert_eq!(hit_action(p, b, Some("finance")), Action::Review);
    }
}
