//! The offence ledger: the history escalation needs. Flagged posts are counted per account
//! and per IP address, in the order posts are given to the ledger (input order, also when
//! the scans ran in parallel), and measured on each post's `time` (the scan time when it
//! has none). What a count means is policy's ([`policy::escalate`]); this room only counts.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::policy;
use crate::post::{Decision, Post};
use crate::rules::{EscalateBy, Escalation};

/// The poster's account and address, as the post gives them.
fn poster_ids(post: &Post) -> (Option<&str>, Option<&str>) {
    let poster = post.poster.as_ref();
    (
        poster.and_then(|p| p.user_id.as_deref()),
        poster.and_then(|p| p.ip.as_deref()),
    )
}

/// What `by` counts a poster under: its account, or its address when that reads as one
/// (written as `IpAddr` writes it, so one address has one key).
fn key_of<'a>(by: EscalateBy, user: Option<&'a str>, ip: Option<&str>) -> Option<Cow<'a, str>> {
    match by {
        EscalateBy::User => user.map(Cow::Borrowed),
        EscalateBy::Ip => ip
            .and_then(|ip| ip.trim().parse::<std::net::IpAddr>().ok())
            .map(|ip| Cow::Owned(ip.to_string())),
    }
}

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
        let keys = self.keys(user, ip);
        self.tally(
            &keys,
            at.as_second(),
            true,
            jiff::Timestamp::now().as_second(),
        );
    }

    fn keys(&self, user: Option<&str>, ip: Option<&str>) -> Vec<(EscalateBy, String)> {
        self.escalation
            .by
            .iter()
            .filter_map(|&by| Some((by, key_of(by, user, ip)?.into_owned())))
            .collect()
    }

    /// Whether giving `post` with `decision` to a ledger applying `escalation` can change
    /// the decision or the ledger: a flagged post with escalation on and a key to count it
    /// under (an account, or an address that reads as one, as `by` asks). Any other post
    /// passes through the ledger untouched, so it need not wait for its turn in input
    /// order.
    pub fn concerns(escalation: &Escalation, post: &Post, decision: &Decision) -> bool {
        if !decision.is_flagged() || escalation.count == 0 {
            return false;
        }
        let (user, ip) = poster_ids(post);
        escalation
            .by
            .iter()
            .any(|&by| key_of(by, user, ip).is_some())
    }

    /// Counts an offence at `at` (when `add`) and returns the most offences of any of
    /// `keys` within the window ending at `at`. `now` is the clock: the newest time the
    /// ledger believes, so one post dated 2099 cannot make everyone's history look old.
    fn tally(&mut self, keys: &[(EscalateBy, String)], at: i64, add: bool, now: i64) -> usize {
        let window = i64::from(self.escalation.window_hours) * 3600;
        self.latest = self.latest.max(at.min(now));
        let mut most = 0;
        for key in keys {
            let times = self.offences.entry(key.clone()).or_default();
            // This offender's offences no window from here on can reach (for its posts in
            // time order; a post older than its newest by more than a window loses that
            // history).
            times.retain(|&t| t > at.saturating_sub(window));
            if add {
                times.push(at);
            }
            let n = times
                .iter()
                .filter(|&&t| at - window < t && t <= at)
                .count();
            most = most.max(n);
        }
        // Offenders with nothing after this can fall in no window any more.
        self.prune(self.latest.saturating_sub(window));
        most
    }

    fn escalate(&mut self, post: &Post, decision: &mut Decision, now: jiff::Timestamp, add: bool) {
        let e = &self.escalation;
        if !decision.is_flagged() || e.count == 0 || e.by.is_empty() {
            return;
        }
        let (at, keys) = self.place(post, now);
        if keys.is_empty() {
            // Nobody to count it against: it neither escalates nor moves the ledger's
            // clock (see `concerns`).
            return;
        }
        let most = self.tally(&keys, at, add, now.as_second());
        if let Some((action, measure)) = policy::escalate(decision.action, most, &self.escalation) {
            decision.action = action;
            if !decision.measures.contains(&measure) {
                decision.measures.push(measure);
            }
        }
    }

    /// When and under which keys `post` counts (`now` when it has no readable time).
    fn place(&self, post: &Post, now: jiff::Timestamp) -> (i64, Vec<(EscalateBy, String)>) {
        let at = post
            .time
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .unwrap_or(now)
            .as_second();
        let (user, ip) = poster_ids(post);
        (at, self.keys(user, ip))
    }

    /// Takes back the offence [`apply`](OffenceLedger::apply) counted for `post` (with the
    /// same `now`): its decision never took effect (its record could not be written), so a
    /// retry must not count it twice. Decisions made since are not changed.
    pub fn forget(&mut self, post: &Post, decision: &Decision, now: jiff::Timestamp) {
        let e = &self.escalation;
        if !decision.is_flagged() || e.count == 0 || e.by.is_empty() {
            return;
        }
        let (at, keys) = self.place(post, now);
        for key in &keys {
            if let Some(times) = self.offences.get_mut(key) {
                if let Some(i) = times.iter().rposition(|&t| t == at) {
                    times.remove(i);
                }
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

    /// Offence times held (tests: memory stays bounded).
    #[cfg(test)]
    pub(crate) fn offences_kept(&self) -> usize {
        self.offences.values().map(Vec::len).sum()
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
