//! What needs history: repeat-offence escalation, and [`Moderator`], the engine plus an
//! offence ledger (and optionally reports and an audit store), which embedders use; the CLI
//! uses the ledger directly.
//!
//! The engine stays pure; the ledger is the state that changes. Offences are counted in
//! the order posts are given to the ledger (input order, also when the scans ran in
//! parallel) and measured on each post's `time` (the scan time when it has none).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use arc_swap::ArcSwap;

use crate::audit::AuditStore;
use crate::engine::Engine;
use crate::post::RulesetInfo;
use crate::post::{Decision, Post};
use crate::report::{Report, ReportWriter};
use crate::rules::{EscalateBy, Escalation};
use crate::vocab::{Action, Measure};

/// Flagged posts per account and per IP address, for escalation.
///
/// A post is an offence when its decision is flagged (any action but `allow`). When the
/// offences of its account or IP within the window `(time − window, time]` — the post itself
/// included — reach `count`, its action is raised one level (`mask → review → block →
/// delete`) and a measure added: `warn` at `count` offences, `restrict` at twice that,
/// `suspend` at three times or more.
#[derive(Debug)]
pub struct OffenceLedger {
    escalation: Escalation,
    offences: HashMap<(EscalateBy, String), Vec<i64>>,
    latest: i64,
}

impl OffenceLedger {
    /// An empty ledger applying `escalation` (usually the rule set's policy).
    pub fn new(escalation: Escalation) -> OffenceLedger {
        OffenceLedger {
            escalation,
            offences: HashMap::new(),
            latest: i64::MIN,
        }
    }

    /// Applies `escalation` from now on; the offences recorded so far are kept.
    pub fn set_escalation(&mut self, escalation: Escalation) {
        self.escalation = escalation;
    }

    /// Records `post`'s decision and escalates it when the post repeats an offence.
    /// `now` stands in for the post's time when it has none (or an unreadable one).
    pub fn apply(&mut self, post: &Post, decision: &mut Decision, now: jiff::Timestamp) {
        self.escalate(post, decision, now, true);
    }

    /// Escalates `post`'s decision as [`apply`](OffenceLedger::apply) does, without
    /// counting the post again: it was counted before (replayed from an audit store by
    /// [`record_offence`](OffenceLedger::record_offence), e.g. by an earlier run).
    pub fn apply_counted(&mut self, post: &Post, decision: &mut Decision, now: jiff::Timestamp) {
        self.escalate(post, decision, now, false);
    }

    /// Counts an offence from history (an audit record of a flagged post): its account,
    /// IP address and time (RFC 3339; an unreadable time is ignored).
    pub fn record_offence(&mut self, user: Option<&str>, ip: Option<&str>, time: &str) {
        let Ok(at) = time.parse::<jiff::Timestamp>() else {
            return;
        };
        let keys = self.keys(user.map(str::to_owned), ip);
        self.tally(&keys, at.as_second(), true);
    }

    fn keys(&self, user: Option<String>, ip: Option<&str>) -> Vec<(EscalateBy, String)> {
        let mut keys = Vec::new();
        for &by in &self.escalation.by {
            let key = match by {
                EscalateBy::User => user.clone(),
                EscalateBy::Ip => ip
                    .and_then(|ip| ip.trim().parse::<std::net::IpAddr>().ok())
                    .map(|ip| ip.to_string()),
            };
            if let Some(key) = key {
                keys.push((by, key));
            }
        }
        keys
    }

    /// Counts an offence at `at` (when `add`) and returns the most offences of any of
    /// `keys` within the window ending at `at`.
    fn tally(&mut self, keys: &[(EscalateBy, String)], at: i64, add: bool) -> usize {
        let window = i64::from(self.escalation.window_hours) * 3600;
        self.latest = self.latest.max(at);
        // Offences at or before this can fall in no window any more (for posts in time
        // order; a post older than the newest by more than a window loses that history).
        let horizon = self.latest.saturating_sub(window);
        let mut most = 0;
        for key in keys {
            let times = self.offences.entry(key.clone()).or_default();
            times.retain(|&t| t > horizon);
            if add {
                times.push(at);
            }
            let n = times
                .iter()
                .filter(|&&t| at - window < t && t <= at)
                .count();
            most = most.max(n);
        }
        self.prune(horizon);
        most
    }

    fn escalate(&mut self, post: &Post, decision: &mut Decision, now: jiff::Timestamp, add: bool) {
        let e = &self.escalation;
        if !decision.is_flagged() || e.count == 0 || e.by.is_empty() {
            return;
        }
        let at = post
            .time
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .unwrap_or(now)
            .as_second();
        let poster = post.poster.as_ref();
        let keys = self.keys(
            poster.and_then(|p| p.user_id.clone()),
            poster.and_then(|p| p.ip.as_deref()),
        );
        let most = self.tally(&keys, at, add);
        let count = self.escalation.count as usize;
        if most >= count {
            decision.action = raise(decision.action);
            let measure = match most / count {
                1 => Measure::Warn,
                2 => Measure::Restrict,
                _ => Measure::Suspend,
            };
            if !decision.measures.contains(&measure) {
                decision.measures.push(measure);
            }
        }
    }

    /// Forgets offenders with no offence after `horizon`, once there are many of them, so
    /// memory is bounded by the offenders active within one window.
    fn prune(&mut self, horizon: i64) {
        if self.offences.len() < 4096 {
            return;
        }
        self.offences.retain(|_, times| {
            times.retain(|&t| t > horizon);
            !times.is_empty()
        });
    }

    /// How many accounts and addresses the ledger tracks.
    pub fn len(&self) -> usize {
        self.offences.len()
    }

    /// True when no offence is recorded.
    pub fn is_empty(&self) -> bool {
        self.offences.is_empty()
    }
}

/// The next stronger action (delete stays delete).
fn raise(action: Action) -> Action {
    match action {
        Action::Allow => Action::Allow,
        Action::Mask => Action::Review,
        Action::Review => Action::Block,
        Action::Block | Action::Delete => Action::Delete,
    }
}

/// The whole pipeline for one forum: the engine, an offence ledger and, optionally, a
/// reports directory ([`with_reports`](Moderator::with_reports)) and an audit store
/// ([`with_audit`](Moderator::with_audit)). Its decisions come after policy *and*
/// escalation; every decision is recorded, and each that must be reported is written as a
/// report, as it is made.
///
/// `Send + Sync`: share it. The engine can be replaced while posts are moderated
/// ([`Moderator::reload`]); the ledger keeps its history across reloads and takes the new
/// rule set's escalation settings. The ledger and the report writer are behind mutexes,
/// taken once per post (once per batch after the parallel scan).
#[derive(Debug)]
pub struct Moderator {
    engine: Arc<ArcSwap<Engine>>,
    ledger: Mutex<Ledger>,
    reports: Option<Mutex<ReportWriter>>,
    deadline_hours: u32,
    audit: Option<Mutex<(AuditStore, i64)>>,
}

/// The ledger and the rule set whose escalation settings it applies.
#[derive(Debug)]
struct Ledger {
    offences: OffenceLedger,
    ruleset: Arc<RulesetInfo>,
}

impl Moderator {
    /// A moderator with an empty ledger, escalating as the engine's rule set says, and no
    /// reports.
    pub fn new(engine: Arc<Engine>) -> Moderator {
        Moderator::sharing(Arc::new(ArcSwap::new(engine)))
    }

    /// A moderator that scans with whatever engine `engine` holds at each call (the C
    /// API's engine handle, which reloads swap).
    pub(crate) fn sharing(engine: Arc<ArcSwap<Engine>>) -> Moderator {
        let current = engine.load_full();
        let ledger = Ledger {
            offences: OffenceLedger::new(current.rules().policy().escalation.clone()),
            ruleset: current.rules().info().clone(),
        };
        Moderator {
            engine,
            ledger: Mutex::new(ledger),
            reports: None,
            deadline_hours: crate::report::DEFAULT_DEADLINE_HOURS,
            audit: None,
        }
    }

    /// Records every decision in `store` (under a new run), one transaction per post
    /// (per batch for [`moderate_batch`](Moderator::moderate_batch)), and counts the
    /// offences already recorded there for escalation. A decision that cannot be recorded
    /// says so in its `warnings`.
    pub fn with_audit(self, mut store: AuditStore) -> crate::Result<Moderator> {
        store.can_record()?;
        let engine = self.engine.load_full();
        let run = store.begin_run(None, None, engine.rules().hash())?;
        {
            let mut ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
            store.offences(|user, ip, time, _| ledger.offences.record_offence(user, ip, time))?;
        }
        Ok(Moderator {
            audit: Some(Mutex::new((store, run))),
            ..self
        })
    }

    /// Writes a report for every decision with `report` set into `writer`, due
    /// `deadline_hours` after detection.
    pub fn with_reports(mut self, writer: ReportWriter, deadline_hours: u32) -> Moderator {
        self.reports = Some(Mutex::new(writer));
        self.deadline_hours = deadline_hours;
        self
    }

    /// The engine posts are scanned with now.
    pub fn engine(&self) -> Arc<Engine> {
        self.engine.load_full()
    }

    /// Replaces the engine atomically: posts being moderated finish on the old one.
    pub fn reload(&self, engine: Arc<Engine>) {
        self.engine.store(engine);
    }

    /// Scans one post, applies escalation, and writes its report when it must be reported.
    /// A report that cannot be written is named in the decision's `warnings`.
    pub fn moderate(&self, post: &Post) -> Decision {
        let engine = self.engine.load_full();
        let mut d = engine.scan(post);
        let now = jiff::Timestamp::now();
        self.record(&engine, post, &mut d, now);
        self.audit(std::iter::once((post, &mut d)), now);
        d
    }

    /// Reads one post from JSON leniently, as [`Engine::scan_json`] does, and moderates it.
    pub fn moderate_json(&self, json: &str) -> crate::Result<(Post, Decision)> {
        let (post, warnings) = Post::from_json_lenient(json)?;
        let mut decision = self.moderate(&post);
        decision.prepend_warnings(warnings);
        Ok((post, decision))
    }

    /// Scans posts in parallel, then applies escalation and writes reports in input order.
    pub fn moderate_batch(&self, posts: &[Post]) -> Vec<Decision> {
        let engine = self.engine.load_full();
        let mut decisions: Vec<Decision> = posts.par_iter().map(|p| engine.scan(p)).collect();
        let now = jiff::Timestamp::now();
        for (p, d) in posts.iter().zip(&mut decisions) {
            self.record(&engine, p, d, now);
        }
        self.audit(posts.iter().zip(decisions.iter_mut()), now);
        decisions
    }

    /// Records decisions in the audit store, if there is one, in one transaction.
    fn audit<'a>(
        &self,
        entries: impl Iterator<Item = (&'a Post, &'a mut Decision)>,
        now: jiff::Timestamp,
    ) {
        let Some(audit) = &self.audit else { return };
        let mut entries: Vec<(&Post, &mut Decision)> = entries.collect();
        let mut guard = audit.lock().unwrap_or_else(|e| e.into_inner());
        let (store, run) = &mut *guard;
        let result = store.append(*run, entries.iter().map(|(p, d)| (None, *p, &**d)), now);
        if let Err(e) = result {
            for (_, d) in &mut entries {
                d.warnings
                    .push(format!("not recorded in the audit store: {e}"));
            }
        }
    }

    /// Flushes the reports index (`index.csv`, `index.html`); returns the number of
    /// reports written, if reports are kept. Moderating after this is allowed.
    pub fn flush_reports(&self) -> std::io::Result<Option<u64>> {
        match &self.reports {
            Some(w) => w
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .flush()
                .map(Some),
            None => Ok(None),
        }
    }

    fn record(&self, engine: &Engine, post: &Post, d: &mut Decision, now: jiff::Timestamp) {
        {
            let mut ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
            if !Arc::ptr_eq(&ledger.ruleset, engine.rules().info()) {
                ledger
                    .offences
                    .set_escalation(engine.rules().policy().escalation.clone());
                ledger.ruleset = engine.rules().info().clone();
            }
            ledger.offences.apply(post, d, now);
        }
        if let (Some(w), true) = (&self.reports, d.report) {
            let report = Report::new(post, d, engine.rules(), now, self.deadline_hours);
            let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = w.write(&report) {
                d.warnings.push(format!("report not written: {e}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RuleSet;

    const RULES: &str = r#"
[policy]
escalation = { count = 3, window_hours = 24, by = ["user", "ip"] }

[[rule]]
id = "insult"
category = 8
severity = "low"
terms = ["傻逼"]
"#;

    fn moderator() -> Moderator {
        Moderator::new(Arc::new(
            Engine::new(&RuleSet::from_toml_str(RULES).unwrap()).unwrap(),
        ))
    }

    fn post(user: &str, ip: &str, time: &str, text: &str) -> Post {
        Post::from_json(&format!(
            r#"{{"text":"{text}","time":"{time}","poster":{{"user_id":"{user}","ip":"{ip}"}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn third_offence_within_the_window_escalates() {
        let m = moderator();
        let a = m.moderate(&post(
            "u1",
            "203.0.113.1",
            "2026-11-20T00:00:00+08:00",
            "傻逼",
        ));
        let b = m.moderate(&post(
            "u1",
            "203.0.113.2",
            "2026-11-20T10:00:00+08:00",
            "傻逼",
        ));
        let clean = m.moderate(&post(
            "u1",
            "203.0.113.3",
            "2026-11-20T11:00:00+08:00",
            "你好",
        ));
        let c = m.moderate(&post(
            "u1",
            "203.0.113.4",
            "2026-11-20T23:59:59+08:00",
            "傻逼",
        ));
        assert_eq!(
            (a.action, b.action, clean.action),
            (Action::Mask, Action::Mask, Action::Allow)
        );
        assert!(a.measures.is_empty() && clean.measures.is_empty());
        assert_eq!(c.action, Action::Review, "raised one level");
        assert_eq!(c.measures, vec![Measure::Warn]);
    }

    #[test]
    fn window_edges_are_exact() {
        let m = moderator();
        m.moderate(&post("u1", "", "2026-11-20T00:00:00+08:00", "傻逼"));
        m.moderate(&post("u1", "", "2026-11-20T12:00:00+08:00", "傻逼"));
        // Exactly 24 hours after the first: the first is out of (t − 24h, t].
        let d = m.moderate(&post("u1", "", "2026-11-21T00:00:00+08:00", "傻逼"));
        assert_eq!((d.action, d.measures.len()), (Action::Mask, 0));
        // One second inside the window of the second and third: three in the window.
        let d = m.moderate(&post("u1", "", "2026-11-21T11:59:59+08:00", "傻逼"));
        assert_eq!(
            (d.action, d.measures.clone()),
            (Action::Review, vec![Measure::Warn])
        );
    }

    #[test]
    fn offences_count_by_ip_across_accounts_and_measures_grow() {
        let m = moderator();
        let mut last = None;
        for (i, user) in ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
            .iter()
            .enumerate()
        {
            let t = format!("2026-11-20T0{}:00:00+08:00", i);
            last = Some(m.moderate(&post(user, "198.51.100.9", &t, "傻逼")));
            if i == 5 {
                assert_eq!(last.as_ref().unwrap().measures, vec![Measure::Restrict]);
            }
        }
        assert_eq!(last.unwrap().measures, vec![Measure::Suspend]);
    }

    #[test]
    fn batches_escalate_in_input_order() {
        let m = moderator();
        let posts: Vec<Post> = (0..6)
            .map(|i| post("u9", "", &format!("2026-11-20T0{i}:00:00+08:00"), "傻逼"))
            .collect();
        let d = m.moderate_batch(&posts);
        let measures: Vec<Vec<Measure>> = d.iter().map(|d| d.measures.clone()).collect();
        assert_eq!(measures[..2], [vec![], vec![]]);
        assert_eq!(measures[2], vec![Measure::Warn]);
        assert_eq!(measures[5], vec![Measure::Restrict]);
    }

    #[test]
    fn the_ledger_forgets_what_no_window_can_reach() {
        let m = moderator();
        for day in 1..=28 {
            for hour in [0, 8, 16] {
                let t = format!("2026-11-{day:02}T{hour:02}:00:00+08:00");
                m.moderate(&post("u1", "203.0.113.1", &t, "傻逼"));
            }
        }
        let ledger = m.ledger.lock().unwrap();
        let kept: usize = ledger.offences.offences.values().map(Vec::len).sum();
        assert!(
            kept <= 2 * 3,
            "only the last day's offences are kept: {kept}"
        );
    }

    #[test]
    fn count_zero_turns_escalation_off() {
        let rules = RULES.replace("count = 3", "count = 0");
        let m = Moderator::new(Arc::new(
            Engine::new(&RuleSet::from_toml_str(&rules).unwrap()).unwrap(),
        ));
        for i in 0..5 {
            let d = m.moderate(&post(
                "u1",
                "",
                &format!("2026-11-20T0{i}:00:00+08:00"),
                "傻逼",
            ));
            assert!(d.measures.is_empty());
        }
    }
}
