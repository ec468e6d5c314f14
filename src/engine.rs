//! [`Engine`]: a rule set compiled for scanning, and the scan itself.
//!
//! `Engine::scan` is pure: it reads a post and returns a [`Decision`], touching no state.
//! Everything that changes over time (offence counters, the audit log) lives in types of
//! its own. The engine never writes files.

use std::sync::Arc;

use rayon::prelude::*;
use unicode_segmentation::GraphemeCursor;

use crate::error::{Error, ErrorKind, Result};
use crate::matcher::{AllowSpan, Candidate, KindTimes, Matcher, Source};
use crate::normalize::{self, Folded};
use crate::policy::Verdict;
use crate::post::{Decision, Hit, MaskedField, Post};
use crate::rules::RuleSet;
use crate::vocab::{Action, Field};

/// The character that replaces each masked grapheme.
pub const MASK_CHAR: char = '＊';

/// The default limit on hits reported per post (`max_hits`).
pub const DEFAULT_MAX_HITS: usize = 10_000;
/// The default limit on a post's size, its text fields together (`max_post_bytes`): 1 MiB.
pub const DEFAULT_MAX_POST_BYTES: usize = 1 << 20;
/// The most `max_post_bytes` can be raised to: 16 MiB.
pub const MAX_POST_BYTES_CAP: usize = 16 << 20;

/// Per-post limits of an engine. Rule-file limits (term and regex length, compiled regex
/// size) are in [`rules`](crate::rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Hits listed per post; beyond it the decision says `truncated` and its action is at
    /// least `review` (a person should look at a post that hits so much).
    pub max_hits: usize,
    /// Bytes of text (text, title, name and bio together) a post may have; a larger post is
    /// refused by [`Engine::try_scan`] and [`Engine::scan_json`] (and so by the CLI and the
    /// C API) with an error naming `max_post_bytes`. At most [`MAX_POST_BYTES_CAP`].
    pub max_post_bytes: usize,
}

impl Limits {
    /// Whether `post` fits: its text fields together at most `max_post_bytes`; otherwise
    /// an error ([`ErrorKind::TooLarge`]) naming the limit.
    pub fn check(&self, post: &Post) -> Result<()> {
        let size: usize = Field::ALL
            .iter()
            .filter_map(|&f| post.field(f))
            .map(str::len)
            .sum();
        if size > self.max_post_bytes {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!(
                    "the post is {size} bytes; the limit (max_post_bytes) is {}",
                    self.max_post_bytes
                ),
            ));
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_hits: DEFAULT_MAX_HITS,
            max_post_bytes: DEFAULT_MAX_POST_BYTES,
        }
    }
}

/// A rule set compiled for scanning. Immutable and `Send + Sync`: share it with `Arc`.
#[derive(Debug)]
pub struct Engine {
    rules: Arc<RuleSet>,
    matcher: Matcher,
    /// Per rule: its id, terms and regexes, shared by every hit that names them.
    names: Vec<RuleNames>,
    /// The fields some rule reads, in `Field::ALL` order.
    fields: Vec<Field>,
    /// Each detector's `term` (`$PHONE`, …), by `Detector as usize`.
    detector_terms: Vec<Arc<str>>,
    max_hits: usize,
    max_post_bytes: usize,
}

#[derive(Debug)]
struct RuleNames {
    id: Arc<str>,
    terms: Vec<Arc<str>>,
    regex: Vec<Arc<str>>,
}

/// Buffers reused from post to post on each thread, so a scan allocates only what its
/// decision keeps.
#[derive(Default)]
struct Scratch {
    folded: Folded,
    raw: Vec<Candidate>,
    allows: Vec<AllowSpan>,
    spans: Vec<(usize, usize, Candidate)>,
    mask_spans: Vec<(usize, usize)>,
    /// For `allows` sorted by rule and start: the furthest end of the rule's spans so far.
    allow_max_end: Vec<usize>,
    /// Set by [`Engine::scan_timed`]: where the time goes.
    timing: Option<KindTimes>,
}

/// `bytes` as UTF-8, checked with SIMD (simdutf8); on failure, std's error says where.
pub(crate) fn utf8(bytes: &[u8]) -> std::result::Result<&str, std::str::Utf8Error> {
    match simdutf8::basic::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(_) => std::str::from_utf8(bytes),
    }
}

/// An engine that can be replaced while it is in use: each scan loads the current engine
/// (one atomic pointer read) and finishes on it, and [`reload`](EngineHandle::reload) swaps
/// in another for every later scan. Clones share the same slot: a pipeline, the C API's
/// engine handle and a reload route can all hold one.
#[derive(Clone, Debug)]
pub struct EngineHandle(Arc<arc_swap::ArcSwap<Engine>>);

impl EngineHandle {
    /// A handle holding `engine`.
    pub fn new(engine: Engine) -> EngineHandle {
        EngineHandle::from_arc(Arc::new(engine))
    }

    /// A handle holding a shared engine.
    pub fn from_arc(engine: Arc<Engine>) -> EngineHandle {
        EngineHandle(Arc::new(arc_swap::ArcSwap::new(engine)))
    }

    /// The engine now in force.
    pub fn load(&self) -> Arc<Engine> {
        self.0.load_full()
    }

    /// Replaces the engine atomically: scans under way finish on the old one.
    pub fn reload(&self, engine: Engine) {
        self.0.store(Arc::new(engine));
    }

    /// [`reload`](EngineHandle::reload) with a shared engine.
    pub fn reload_arc(&self, engine: Arc<Engine>) {
        self.0.store(engine);
    }
}

/// A rule whose examples did not behave as declared.
#[derive(Clone, Debug, PartialEq)]
pub struct ExampleFailure {
    /// The rule's id.
    pub rule: String,
    /// The example text.
    pub example: String,
    /// The field the example was scanned as.
    pub field: Field,
    /// True when the example is in `examples.match` (and did not match).
    pub expected_match: bool,
    /// The rule's hits on the example (empty when it should have matched).
    pub hits: Vec<Hit>,
}

impl Engine {
    /// Compiles a rule set.
    pub fn new(rules: &RuleSet) -> Result<Engine> {
        Engine::with_limits(rules, Limits::default())
    }

    /// Compiles a rule set, reporting at most `max_hits` hits per post (the decision is
    /// still made on every hit; only the list is cut, and `truncated` is set).
    pub fn with_max_hits(rules: &RuleSet, max_hits: usize) -> Result<Engine> {
        Engine::with_limits(
            rules,
            Limits {
                max_hits,
                ..Limits::default()
            },
        )
    }

    /// Compiles a rule set with these per-post limits.
    pub fn with_limits(rules: &RuleSet, limits: Limits) -> Result<Engine> {
        if limits.max_post_bytes > MAX_POST_BYTES_CAP {
            return Err(Error::new(
                ErrorKind::InvalidValue,
                format!(
                    "max_post_bytes {} is above the hard cap of {MAX_POST_BYTES_CAP} bytes (16 MiB)",
                    limits.max_post_bytes
                ),
            ));
        }
        let max_hits = limits.max_hits;
        let matcher = Matcher::new(rules.rules())?;
        let fields = Field::ALL
            .into_iter()
            .filter(|f| rules.rules().iter().any(|r| r.fields.contains(f)))
            .collect();
        let names = rules
            .rules()
            .iter()
            .map(|r| RuleNames {
                id: Arc::from(r.id.as_str()),
                terms: r.terms.iter().map(|t| Arc::from(t.as_str())).collect(),
                regex: r.regex.iter().map(|t| Arc::from(t.as_str())).collect(),
            })
            .collect();
        Ok(Engine {
            rules: Arc::new(rules.clone()),
            matcher,
            names,
            fields,
            detector_terms: crate::vocab::Detector::ALL
                .iter()
                .map(|d| Arc::from(d.term()))
                .collect(),
            max_hits: max_hits.max(1),
            max_post_bytes: limits.max_post_bytes.max(1),
        })
    }

    /// The bundled rule sets, compiled.
    pub fn bundled() -> Engine {
        Engine::new(&RuleSet::bundled()).expect("the bundled rule sets compile")
    }

    /// The rule set this engine enforces.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// How the engine folds `text` before matching: one entry per normalisation profile
    /// its rules use (the steps, and the folded text), for explaining a match.
    pub fn folded_forms(&self, text: &str) -> Vec<(Vec<crate::Step>, String)> {
        let mut out: Vec<(Vec<crate::Step>, String)> = Vec::new();
        for profile in self.matcher.profiles() {
            let steps = profile.steps();
            let folded = normalize::Normalizer::new(&steps)
                .fold(text)
                .text()
                .to_owned();
            out.push((steps, folded));
        }
        out
    }

    /// Loads now, on the calling thread, what this engine's scans would otherwise load on
    /// first use, and returns when it is loaded: jieba's dictionary, for rules with
    /// `boundary = "word"` or a step that changes chars (about 150 ms; [`Engine::new`]
    /// starts loading it in the background, and a scan that comes sooner waits for it).
    /// A service calls this before it takes traffic, so its first posts, after a start or a
    /// reload, are not the ones that wait. Cheap once loaded: the dictionary is shared by
    /// every engine in the process. (Each scanning thread beyond the first still copies the
    /// automata on its first scan, a memory copy of at most 8 MiB: see [`heap_bytes`].)
    ///
    /// [`heap_bytes`]: Engine::heap_bytes
    pub fn warm_up(&self) {
        self.matcher.warm_up();
    }

    /// Approximate heap size of the compiled automata, in bytes. Threads beyond the first
    /// that scan with this engine each read a copy of the character automata, made on their
    /// first scan (one per further core, at most seven, none when the automata are under
    /// 256 KiB or over 8 MiB), which this does not count.
    pub fn heap_bytes(&self) -> usize {
        self.matcher.heap_bytes()
    }

    /// Scans one post and decides what must happen to it.
    pub fn scan(&self, post: &Post) -> Decision {
        self.decide(post, None)
    }

    /// The engine's per-post limits.
    pub fn limits(&self) -> Limits {
        Limits {
            max_hits: self.max_hits,
            max_post_bytes: self.max_post_bytes,
        }
    }

    /// Scans `post` when its text fields together fit in `max_post_bytes`; otherwise an
    /// error ([`ErrorKind::TooLarge`]) naming the limit. ([`scan`](Engine::scan) scans any
    /// size: the caller chose the post.)
    pub fn try_scan(&self, post: &Post) -> Result<Decision> {
        self.limits().check(post)?;
        Ok(self.scan(post))
    }

    /// Scans many posts in parallel (rayon); the decisions are in input order.
    pub fn scan_batch(&self, posts: &[Post]) -> Vec<Decision> {
        posts.par_iter().map(|p| self.scan(p)).collect()
    }

    /// Reads one post from JSON leniently ([`Post::from_json_lenient`]) and scans it; the
    /// warnings about its malformed fields come first in the decision's `warnings`. Fails
    /// only when the JSON is not an object with a string `text`. The CLI and the C API
    /// read posts through this.
    pub fn scan_json(&self, json: &str) -> Result<(Post, Decision)> {
        let (post, d, _) = self.read_json(json, |p| (self.scan(p), KindTimes::default()))?;
        Ok((post, d))
    }

    /// [`scan_json`](Engine::scan_json) with the times of [`scan_timed`](Engine::scan_timed).
    pub fn scan_json_timed(&self, json: &str) -> Result<(Post, Decision, KindTimes)> {
        self.read_json(json, |p| self.scan_timed(p))
    }

    fn read_json(
        &self,
        json: &str,
        scan: impl FnOnce(&Post) -> (Decision, KindTimes),
    ) -> Result<(Post, Decision, KindTimes)> {
        let (post, warnings) = Post::from_json_lenient(json)?;
        self.limits().check(&post)?;
        let (mut decision, times) = scan(&post);
        decision.prepend_warnings(warnings);
        Ok((post, decision, times))
    }

    /// Scans a plain text (as the `text` field of a post without metadata).
    pub fn scan_text(&self, text: &str) -> Decision {
        self.scan(&Post::from_text(text))
    }

    /// Runs every rule's examples: each `examples.match` text must give the rule a hit and
    /// each `examples.no_match` text must not, as the text of every field the rule reads,
    /// with the rule's `when` taken to hold.
    pub fn check_examples(&self) -> (usize, Vec<ExampleFailure>) {
        let mut checked = 0;
        let mut failures = Vec::new();
        for (r, rule) in self.rules.rules().iter().enumerate() {
            let cases = rule
                .examples
                .matches
                .iter()
                .map(|e| (e, true))
                .chain(rule.examples.no_match.iter().map(|e| (e, false)));
            for (example, expected_match) in cases {
                for &field in &rule.fields {
                    checked += 1;
                    let post = post_with_field(field, example);
                    let decision = self.decide(&post, Some(r as u32));
                    let hits: Vec<Hit> = decision
                        .hits
                        .into_iter()
                        .filter(|h| *h.rule == *rule.id)
                        .collect();
                    if hits.is_empty() == expected_match {
                        failures.push(ExampleFailure {
                            rule: rule.id.clone(),
                            example: example.clone(),
                            field,
                            expected_match,
                            hits,
                        });
                    }
                }
            }
        }
        (checked, failures)
    }

    /// The scan. `assume_when` names a rule whose conditions are taken to hold.
    /// Scans `post` as [`scan`](Engine::scan) does, and says where the time went per kind
    /// of rule (`shenhe scan --stats`). Costs a few clock reads per field.
    pub fn scan_timed(&self, post: &Post) -> (Decision, KindTimes) {
        let started = std::time::Instant::now();
        let run = |scratch: &mut Scratch| {
            scratch.timing = Some(KindTimes::default());
            let d = self.decide_with(post, None, scratch);
            (d, scratch.timing.take().unwrap_or_default())
        };
        let (d, mut times) = SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => run(&mut scratch),
            Err(_) => run(&mut Scratch::default()),
        });
        times.total_ns = started.elapsed().as_nanos() as u64;
        (d, times)
    }

    fn decide(&self, post: &Post, assume_when: Option<u32>) -> Decision {
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => self.decide_with(post, assume_when, &mut scratch),
            // Only reachable if a scan ever ran inside another on one thread.
            Err(_) => self.decide_with(post, assume_when, &mut Scratch::default()),
        })
    }

    /// The term (or pattern, or detector) a candidate hit stands for, as hits carry it.
    fn term_of(&self, h: Candidate) -> &Arc<str> {
        let names = &self.names[h.rule as usize];
        match h.source {
            Source::Term(i) | Source::Pinyin(i) => &names.terms[i as usize],
            Source::Regex(i) => &names.regex[i as usize],
            Source::Detect(d) => &self.detector_terms[d as usize],
        }
    }

    fn decide_with(
        &self,
        post: &Post,
        assume_when: Option<u32>,
        scratch: &mut Scratch,
    ) -> Decision {
        let rules = self.rules.rules();
        let policy = self.rules.policy();
        let mut now: Option<jiff::Timestamp> = None;
        let mut hits = Vec::new();
        let mut masked_fields = Vec::new();
        let mut masked_text = None;
        let mut verdict = Verdict::default();
        let mut truncated = false;
        let Scratch {
            folded,
            raw,
            allows,
            spans,
            mask_spans,
            allow_max_end,
            timing,
        } = scratch;
        // Conditions are evaluated only for rules that hit, once per post.
        let mut when_cache: Vec<(u32, bool)> = Vec::new();

        for &field in &self.fields {
            let Some(text) = post.field(field) else {
                continue;
            };
            if text.is_empty() {
                continue;
            }
            raw.clear();
            allows.clear();
            self.matcher
                .find(text, folded, raw, allows, timing.as_mut());
            if raw.is_empty() {
                continue;
            }
            index_allows(allows, allow_max_end);
            raw.retain(|h| {
                let rule = &rules[h.rule as usize];
                if !rule.fields.contains(&field) || is_allowed(h, allows, allow_max_end) {
                    return false;
                }
                match &rule.when {
                    None => true,
                    Some(_) if assume_when == Some(h.rule) => true,
                    Some(cond) => match when_cache.iter().find(|(r, _)| *r == h.rule) {
                        Some(&(_, ok)) => ok,
                        None => {
                            let now = *now.get_or_insert_with(jiff::Timestamp::now);
                            let ok = cond.holds(post, now);
                            when_cache.push((h.rule, ok));
                            ok
                        }
                    },
                }
            });
            if raw.is_empty() {
                continue;
            }
            // Widen to whole grapheme clusters; one hit per rule and span.
            spans.clear();
            spans.extend(raw.iter().map(|h| {
                let (s, e) = widen_to_graphemes(text, h.start, h.end);
                (s, e, *h)
            }));
            spans.sort_by_key(|&(s, e, h)| (s, e, h.rule, h.source));
            spans.dedup_by_key(|&mut (s, e, h)| (s, e, h.rule));

            // Each hit clones its term's `Arc`, a locked increment: the processor waits for
            // one before it starts the next, so their cache misses (the term table, then
            // the count) add up. Plain reads of the same places first let those misses
            // overlap, and the clones below find them cached.
            let touched = spans
                .iter()
                .take(self.max_hits.saturating_sub(hits.len()))
                .fold(0, |n, &(_, _, h)| n ^ Arc::strong_count(self.term_of(h)));
            std::hint::black_box(touched);

            mask_spans.clear();
            let mut chars = CharCounter::new(text);
            for &(start, end, h) in spans.iter() {
                let rule = &rules[h.rule as usize];
                let hit_action = verdict.add_hit(policy, rule, post.board.as_deref());
                if hit_action >= Action::Mask {
                    mask_spans.push((start, end));
                }
                if hits.len() >= self.max_hits {
                    truncated = true;
                    continue;
                }
                let char_start = chars.at(start);
                let char_end = chars.at(end);
                let names = &self.names[h.rule as usize];
                hits.push(Hit {
                    rule: names.id.clone(),
                    category: rule.category,
                    severity: rule.severity,
                    field,
                    start,
                    end,
                    char_start,
                    char_end,
                    matched: text[start..end].to_owned(),
                    term: self.term_of(h).clone(),
                    steps: step_names(h),
                });
            }
            let masked = mask(text, mask_spans);
            if field == Field::Text {
                masked_text = Some(masked);
            } else if !mask_spans.is_empty() {
                masked_fields.push(MaskedField { field, masked });
            }
        }

        verdict.finish(policy, post, truncated);
        if !hits.is_empty() && masked_text.is_none() {
            masked_text = Some(post.text.clone());
        }

        Decision {
            id: post.id.clone(),
            line: None,
            action: verdict.action,
            report: verdict.report,
            categories: verdict.categories,
            severity: verdict.severity,
            hits,
            masked: masked_text,
            masked_fields,
            measures: Vec::new(),
            truncated,
            warnings: post.metadata_warnings(),
            review_id: None,
            ruleset: self.rules.info().clone(),
        }
    }
}

/// The names of the steps a hit needed, in the documented order; `pinyin` last.
fn step_names(h: Candidate) -> Vec<String> {
    let mut names: Vec<String> = normalize::steps_of(h.steps)
        .map(|s| s.as_str().to_owned())
        .collect();
    if matches!(h.source, Source::Pinyin(_)) {
        names.push("pinyin".to_owned());
    }
    names
}

thread_local! {
    /// The scan's working buffers: allocated once per thread.
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

fn post_with_field(field: Field, text: &str) -> Post {
    let mut post = Post::default();
    match field {
        Field::Text => post.text = text.to_owned(),
        Field::Title => post.title = Some(text.to_owned()),
        Field::Name | Field::Bio => {
            let mut poster = crate::post::Poster::default();
            if field == Field::Name {
                poster.name = Some(text.to_owned());
            } else {
                poster.bio = Some(text.to_owned());
            }
            post.poster = Some(poster);
        }
    }
    post
}

/// A hit inside an occurrence of one of its own rule's allow phrases is not a hit.
/// Sorts `allows` by rule and start and writes, for each, the furthest end of its rule's
/// allow spans up to it, so [`is_allowed`] answers in O(log n): a post with many hits and
/// many allow phrases stays linear.
fn index_allows(allows: &mut [AllowSpan], max_end: &mut Vec<usize>) {
    allows.sort_unstable_by_key(|a| (a.rule, a.start));
    max_end.clear();
    let mut prev: Option<(u32, usize)> = None;
    for a in allows.iter() {
        let m = match prev {
            Some((rule, m)) if rule == a.rule => m.max(a.end),
            _ => a.end,
        };
        max_end.push(m);
        prev = Some((a.rule, m));
    }
}

/// Whether an allow phrase of the hit's rule covers the hit (`allows` indexed by
/// [`index_allows`]).
fn is_allowed(h: &Candidate, allows: &[AllowSpan], max_end: &[usize]) -> bool {
    let lo = allows.partition_point(|a| a.rule < h.rule);
    let hi =
        allows.partition_point(|a| a.rule < h.rule || (a.rule == h.rule && a.start <= h.start));
    hi > lo && max_end[hi - 1] >= h.end
}

/// Chars between which there is always a grapheme boundary (UAX #29): CJK ideographs,
/// printable ASCII, and CJK punctuation. Neither extends nor joins anything.
fn is_simple(c: Option<char>) -> bool {
    c.is_none_or(
        |c| matches!(c as u32, 0x20..=0x7E | 0x3000..=0x303F | 0x4E00..=0x9FFF | 0xFF01..=0xFF5E),
    )
}

/// Whether `at` is certainly a grapheme boundary of `text`, judged from its neighbours.
fn is_simple_boundary(text: &str, at: usize) -> bool {
    is_simple(text[..at].chars().next_back()) && is_simple(text[at..].chars().next())
}

/// Widens `start..end` so that it neither starts nor ends inside a grapheme cluster.
pub(crate) fn widen_to_graphemes(text: &str, start: usize, end: usize) -> (usize, usize) {
    if is_simple_boundary(text, start) && is_simple_boundary(text, end) {
        return (start, end);
    }
    let mut start = start;
    let mut cursor = GraphemeCursor::new(start, text.len(), true);
    if !matches!(cursor.is_boundary(text, 0), Ok(true)) {
        if let Ok(Some(prev)) = cursor.prev_boundary(text, 0) {
            start = prev;
        }
    }
    let mut end = end;
    let mut cursor = GraphemeCursor::new(end, text.len(), true);
    if !matches!(cursor.is_boundary(text, 0), Ok(true)) {
        if let Ok(Some(next)) = cursor.next_boundary(text, 0) {
            end = next;
        }
    }
    (start, end)
}

/// Replaces each grapheme cluster inside the spans with [`MASK_CHAR`]; the spans are
/// sorted and merged in place. Text outside the spans is copied unchanged.
pub(crate) fn mask(text: &str, spans: &mut Vec<(usize, usize)>) -> String {
    use unicode_segmentation::UnicodeSegmentation;
    *spans = crate::post::merge_spans(spans.iter().copied());
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for &(s, e) in spans.iter() {
        out.push_str(&text[pos..s]);
        let span = &text[s..e];
        // Between simple chars every char is a grapheme: no need to segment.
        let graphemes = if span.chars().all(|c| is_simple(Some(c))) {
            span.chars().count()
        } else {
            span.graphemes(true).count()
        };
        out.extend(std::iter::repeat_n(MASK_CHAR, graphemes));
        pos = e;
    }
    out.push_str(&text[pos..]);
    out
}

/// Byte offset → char offset, for offsets visited mostly in increasing order.
struct CharCounter<'a> {
    text: &'a str,
    byte: usize,
    chars: usize,
}

impl<'a> CharCounter<'a> {
    fn new(text: &'a str) -> Self {
        CharCounter {
            text,
            byte: 0,
            chars: 0,
        }
    }

    /// Moves to `byte` from the last offset asked for, either way: O(distance), so the
    /// overlapping hits of a long post never recount from its start.
    fn at(&mut self, byte: usize) -> usize {
        if byte < self.byte {
            self.chars -= self.text[byte..self.byte].chars().count();
        } else {
            self.chars += self.text[self.byte..byte].chars().count();
        }
        self.byte = byte;
        self.chars
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(toml: &str) -> Engine {
        Engine::new(&RuleSet::from_toml_str(toml).unwrap()).unwrap()
    }

    const RULES: &str = r#"
[[rule]]
id = "g"
category = 7
severity = "high"
report = true
terms = ["赌博", "网络赌场"]
allow = ["打击赌博"]

[[rule]]
id = "cn"
category = 9
severity = "low"
terms = ["中国", "国人"]

[[rule]]
id = "gun"
category = 7
severity = "medium"
terms = ["gun", "Q币"]

[[rule]]
id = "inv"
category = 9
severity = "medium"
action = "block"
regex = ['代开.{0,4}发票']
"#;

    #[test]
    fn reports_every_overlapping_occurrence_with_offsets() {
        let e = engine(RULES);
        let d = e.scan_text("我是中国人");
        let got: Vec<_> = d
            .hits
            .iter()
            .map(|h| (&*h.term, h.start, h.char_start))
            .collect();
        assert_eq!(got, vec![("中国", 6, 2), ("国人", 9, 3)]);
        assert_eq!(d.action, Action::Mask);
        assert_eq!(d.masked.as_deref(), Some("我是＊＊＊"));
    }

    #[test]
    fn strongest_action_report_and_categories() {
        let e = engine(RULES);
        let d = e.scan_text("中国有网络赌场，代开增值税发票");
        assert_eq!(d.action, Action::Delete);
        assert!(d.report);
        assert_eq!(d.categories, vec![7, 9]);
        assert_eq!(d.severity, Some(crate::Severity::High));
        let inv = d.hits.iter().find(|h| &*h.rule == "inv").unwrap();
        assert_eq!(inv.matched, "代开增值税发票");
        for h in &d.hits {
            assert_eq!(&"中国有网络赌场，代开增值税发票"[h.start..h.end], h.matched);
        }
    }

    #[test]
    fn allow_phrase_suppresses_only_hits_inside_it() {
        let e = engine(RULES);
        assert!(e.scan_text("警方打击赌博团伙").hits.is_empty());
        let d = e.scan_text("打击赌博？我就爱赌博");
        assert_eq!(d.hits.len(), 1);
        assert_eq!(d.hits[0].char_start, 8);
    }

    #[test]
    fn ascii_terms_do_not_match_inside_ascii_words() {
        let e = engine(RULES);
        assert!(e.scan_text("it has begun").hits.is_empty());
        assert!(e.scan_text("充值QQ币").hits.is_empty());
        assert_eq!(e.scan_text("买gun枪").hits.len(), 1);
        assert_eq!(e.scan_text("3gun3").hits.len(), 1);
        assert_eq!(e.scan_text("卖Q币").hits.len(), 1);
    }

    #[test]
    fn masking_never_splits_a_grapheme_cluster() {
        let mut spans = vec![(0, 3)];
        assert_eq!(mask("赌👨‍👩‍👧x", &mut spans), "＊👨‍👩‍👧x");
        let text = "e\u{301}gun";
        assert_eq!(widen_to_graphemes(text, 1, 3), (0, 3));
    }

    #[test]
    fn truncates_but_still_decides_on_every_hit() {
        let rs = RuleSet::from_toml_str(RULES).unwrap();
        let e = Engine::with_max_hits(&rs, 2).unwrap();
        let d = e.scan_text("中国人中国人网络赌场");
        assert!(d.truncated);
        assert_eq!(d.hits.len(), 2);
        assert_eq!(d.action, Action::Delete);
        assert_eq!(d.masked.as_deref(), Some("＊＊＊＊＊＊＊＊＊＊"));
    }

    #[test]
    fn empty_text_is_valid_and_clean() {
        let d = engine(RULES).scan_text("");
        assert!(d.hits.is_empty() && d.masked.is_none() && d.action == Action::Allow);
    }

    #[test]
    fn malformed_metadata_counts_as_the_riskier_value() {
        let e = engine(
            r#"
[policy]
unverified = "review"
[[rule]]
id = "new-unverified"
category = 7
severity = "low"
terms = ["加我"]
when = { verified = false, account_age_days_lt = 7 }
[[rule]]
id = "from-a-bad-range"
category = 7
severity = "low"
terms = ["看片"]
when = { ip_in = ["203.0.113.0/24"] }
"#,
        );
        let post = |poster: &str, text: &str| {
            let json = format!(
                r#"{{"text":"{text}","time":"2026-11-20T08:00:00+08:00","poster":{poster}}}"#
            );
            let (p, w) = Post::from_json_lenient(&json).unwrap();
            let mut d = e.scan(&p);
            d.warnings.splice(0..0, w);
            d
        };
        // A string where a boolean belongs, and a time nobody can read: still a new,
        // unverified account (was: both conditions false, the post allowed).
        let d = post(r#"{"verified":"false","registered":"yesterday"}"#, "加我");
        assert_eq!(d.action, Action::Review, "{:?}", d.warnings);
        assert!(d
            .warnings
            .iter()
            .any(|w| w.contains("treated as not verified")));
        let d = post(r#"{"verified":"no","registered":20261119}"#, "加我");
        assert_eq!(d.hits.len(), 1, "{:?}", d.warnings);
        assert!(d
            .warnings
            .iter()
            .any(|w| w.contains("treated as a new account")));
        // An address that cannot be read counts as one in the listed range.
        assert_eq!(post(r#"{"ip":"203.0.113.x"}"#, "看片").hits.len(), 1);
        // Missing is not malformed: no poster data, no condition holds.
        assert!(post("{}", "加我看片").hits.is_empty());
        // Well-formed values are read as they are.
        assert!(post(r#"{"verified":true,"ip":"198.51.100.1"}"#, "加我看片")
            .hits
            .is_empty());
    }

    #[test]
    fn engine_is_send_sync_and_unwind_safe() {
        fn assert<T: Send + Sync + std::panic::UnwindSafe + std::panic::RefUnwindSafe>() {}
        assert::<Engine>();
        assert::<RuleSet>();
        assert::<Decision>();
    }
}
