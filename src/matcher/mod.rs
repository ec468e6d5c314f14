//! The compiled automata. Rules are grouped by normalisation profile; each group has one
//! charwise Aho-Corasick automaton (daachorse) holding every term, allow phrase and pinyin
//! form of its rules, run over the text folded with that profile (overlapping matches).
//! Regexes are grouped the same way into `RegexSet`s over their own, lighter fold.
//!
//! The matcher does not fold text itself (that is `normalize`'s job): it asks the group's
//! fold table for the folded text and maps every match back through the offset map, so
//! what leaves this module is in original byte offsets. It knows nothing about posts,
//! fields, conditions or policy.

mod boundary;
mod pinyin;
mod start_filter;

use boundary::Segmenter;
use start_filter::{FilteredMatches, StartFilter};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use daachorse::{CharwiseDoubleArrayAhoCorasick, CharwiseDoubleArrayAhoCorasickBuilder, MatchKind};
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use crate::detect;
use crate::error::{Error, ErrorKind, Result};
use crate::normalize::{self, table_for, FoldTable, Folded, Profile, MAX_NOISE_GAP};
use crate::rules::{Boundary, Pinyin, Rule, REGEX_SET_SIZE_LIMIT, REGEX_SIZE_LIMIT};
use crate::vocab::{Detector, Step};

/// Where a scan's time went, per kind of rule (`Engine::scan_timed`), in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct KindTimes {
    /// Folding and the literal automata (terms, pinyin, allow phrases).
    pub literal_ns: u64,
    /// Word segmentation around candidate hits of `boundary = "word"` rules (part of
    /// `literal_ns`).
    pub word_boundary_ns: u64,
    /// Folding and the regex sets, and the built-in detectors (`detect`).
    pub regex_ns: u64,
    /// The whole scan: matching, conditions, policy, masking, the decision.
    pub total_ns: u64,
}

impl std::ops::AddAssign for KindTimes {
    fn add_assign(&mut self, o: KindTimes) {
        self.literal_ns += o.literal_ns;
        self.word_boundary_ns += o.word_boundary_ns;
        self.regex_ns += o.regex_ns;
        self.total_ns += o.total_ns;
    }
}

/// Whether jieba's dictionary (for `boundary = "word"`) is loaded in this process.
pub(crate) fn word_dictionary_loaded() -> bool {
    Segmenter::loaded()
}

/// What a pattern of an automaton stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// `rules[rule].terms[index]`.
    Term,
    /// A pinyin spelling of `rules[rule].terms[index]`.
    Pinyin,
    /// `rules[rule].allow[index]`.
    Allow,
}

#[derive(Clone, Copy, Debug)]
struct Owner {
    rule: u32,
    index: u32,
    role: Role,
    /// The hit must not touch an ASCII letter on the left / right.
    guard_left: bool,
    guard_right: bool,
    /// `boundary = "word"`: no word of the text may straddle the hit.
    word: bool,
    /// Pinyin initials (sb) and Latin terms of two letters or fewer: weak evidence, so
    /// they must stand alone in the fold too, with no letter or digit next to them even
    /// across skipped spaces (I S B N, AMD SB700 are no insults).
    strict: bool,
    /// The steps that change the term as written (see `needed_steps`).
    own_steps: u8,
    /// Index of the term as written in `GroupBuilder::written`, to tell an exact match.
    written: u32,
}

/// Which of a rule's patterns made a hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Source {
    /// `terms[i]`.
    Term(u32),
    /// `terms[i]`, written in pinyin.
    Pinyin(u32),
    /// `regex[i]`.
    Regex(u32),
    /// A built-in detector of `detect`.
    Detect(Detector),
}

/// A match in original byte offsets, before conditions and policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) rule: u32,
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) source: Source,
    /// Normalisation steps the match needed (bit set, `normalize::steps_of`).
    pub(crate) steps: u8,
}

/// An occurrence of an allow phrase of `rule`, in original byte offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AllowSpan {
    pub(crate) rule: u32,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Groups with more patterns than this use `aho-corasick` instead of daachorse: the
/// double array's build time grows faster than linearly with very large, varied lexicons
/// (1,000,000 random Han terms took 94 s), the NFA's stays linear.
const LARGE_GROUP: usize = 200_000;

/// A literal group's automaton, chosen by size (see [`LARGE_GROUP`]).
enum Automaton {
    /// Charwise double-array Aho-Corasick: fastest on Chinese text. With a start filter
    /// when the patterns' first characters are selective (`start_filter`); its depths are
    /// then cached, so the filter knows when the automaton is back at its root.
    Chars(CharwiseDoubleArrayAhoCorasick<u32>, Option<StartFilter>),
    /// aho-corasick's contiguous NFA: linear build for huge lexicons.
    Bytes(aho_corasick::AhoCorasick),
}

/// Overlapping matches of an [`Automaton`]: (start, end, pattern) in folded bytes.
enum Matches<'a> {
    Chars(daachorse::charwise::iter::FindOverlappingSliceIterator<'a, &'a str, u32>),
    Filtered(FilteredMatches<'a>),
    Bytes(aho_corasick::FindOverlappingIter<'a, 'a>),
}

impl Iterator for Matches<'_> {
    type Item = (usize, usize, usize);

    #[inline]
    fn next(&mut self) -> Option<(usize, usize, usize)> {
        match self {
            Matches::Chars(it) => it.next().map(|m| (m.start(), m.end(), m.value() as usize)),
            Matches::Filtered(it) => it.next(),
            Matches::Bytes(it) => it
                .next()
                .map(|m| (m.start(), m.end(), m.pattern().as_usize())),
        }
    }
}

impl Automaton {
    fn find_overlapping<'a>(&'a self, folded: &'a str) -> Matches<'a> {
        match self {
            Automaton::Chars(ac, Some(filter)) if filter.pays() => {
                Matches::Filtered(filter.find_overlapping(ac, folded))
            }
            Automaton::Chars(ac, _) => Matches::Chars(ac.find_overlapping_iter(folded)),
            Automaton::Bytes(ac) => Matches::Bytes(ac.find_overlapping_iter(folded)),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Automaton::Chars(ac, filter) => {
                ac.heap_bytes() + filter.as_ref().map_or(0, StartFilter::heap_bytes)
            }
            Automaton::Bytes(ac) => ac.memory_usage(),
        }
    }
}

struct LiteralGroup {
    profile: Profile,
    table: Arc<FoldTable>,
    /// With `homophone`: the profile's fold without it, to tell whether a hit needed it.
    plain: Option<Arc<FoldTable>>,
    ac: Automaton,
    /// Terms and allow phrases as written.
    written: Vec<Box<str>>,
    /// For pattern `p`, its owners are `owners[starts[p]..starts[p + 1]]`.
    starts: Vec<u32>,
    owners: Vec<Owner>,
}

/// A compiled regex with its rule and its index in the rule's `regex`.
type RuleRegex = (Regex, u32, u32);

struct RegexGroup {
    profile: Profile,
    table: Arc<FoldTable>,
    set: RegexSet,
    regexes: Vec<RuleRegex>,
}

/// The detectors of the rules that share a fold (`detect`): what they want together, and
/// which rule wants which.
struct DetectGroup {
    profile: Profile,
    table: Arc<FoldTable>,
    wanted: detect::Wanted,
    /// (rule, its detectors as a bit set, its `digits_min`).
    rules: Vec<(u32, u16, u32)>,
}

/// The fold detectors run on for a rule: its steps among invisible, width, case, variants
/// and t2s; and whether it has `noise` (separators and spelled-out dots are read).
fn detect_profile(rule: &Rule) -> (Profile, bool) {
    let profile =
        Profile::from_steps(&rule.normalize).without(&[Step::Noise, Step::Repeat, Step::Homophone]);
    (profile, rule.normalize.contains(&Step::Noise))
}

/// The compiled form of a rule set's patterns. Immutable, `Send + Sync`.
pub(crate) struct Matcher {
    literal: Vec<LiteralGroup>,
    regex: Vec<RegexGroup>,
    /// Empty unless some rule has `detect`: then the scan runs no detector code at all.
    detect: Vec<DetectGroup>,
    /// Whether some rule has `boundary = "word"` (the segmenter loads on first use).
    segments: bool,
}

impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matcher")
            .field("literal_groups", &self.literal.len())
            .field("regex_groups", &self.regex.len())
            .finish()
    }
}

/// The steps a hit needed: none when the text is the term as written; else the steps that
/// changed the matched text, leaving out those the term itself needs (六 → 6 on both sides
/// of 六合彩) unless nothing else explains the match (陆合彩 needed `variants`).
fn needed_steps(span_steps: u8, o: &Owner, matched: &str, written: &str) -> u8 {
    if matched == written {
        return 0;
    }
    match span_steps & !o.own_steps {
        0 => span_steps,
        needed => needed,
    }
}

/// An ASCII or full-width digit.
fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || ('０'..='９').contains(&c)
}

fn is_ascii_letter(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphabetic())
}

/// The profile regexes of a rule run on: its steps among invisible, width, case and t2s.
pub(crate) fn regex_profile(rule: &Rule) -> Profile {
    Profile::from_steps(&rule.normalize).without(&[
        Step::Variants,
        Step::Noise,
        Step::Repeat,
        Step::Homophone,
    ])
}

/// Collects the patterns of one profile's rules.
#[derive(Default)]
struct GroupBuilder {
    index: HashMap<String, usize>,
    patterns: Vec<String>,
    owners: Vec<Vec<Owner>>,
    written: Vec<Box<str>>,
}

impl GroupBuilder {
    /// Adds `owner`'s pattern; `written` is its term or phrase as the rule wrote it.
    fn add(&mut self, pattern: String, written: &str, mut owner: Owner) {
        if pattern.is_empty() {
            return;
        }
        let p = match self.index.get(&pattern) {
            Some(&p) => p,
            None => {
                self.index.insert(pattern.clone(), self.patterns.len());
                self.patterns.push(pattern);
                self.owners.push(Vec::new());
                self.patterns.len() - 1
            }
        };
        // The same rule listing a term twice (or two terms folding alike) reports it once.
        if !self.owners[p]
            .iter()
            .any(|o| o.rule == owner.rule && o.role == owner.role)
        {
            owner.written = self.written.len() as u32;
            self.written.push(written.into());
            self.owners[p].push(owner);
        }
    }

    fn build(self, profile: Profile) -> Result<Option<LiteralGroup>> {
        if self.patterns.is_empty() {
            return Ok(None);
        }
        let mut starts = Vec::with_capacity(self.owners.len() + 1);
        let mut owners = Vec::new();
        for list in self.owners {
            starts.push(owners.len() as u32);
            owners.extend(list);
        }
        starts.push(owners.len() as u32);
        let build_error =
            |e: String| Error::new(ErrorKind::Build, format!("building the automaton: {e}"));
        let ac = if self.patterns.len() > LARGE_GROUP {
            Automaton::Bytes(
                aho_corasick::AhoCorasick::builder()
                    .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
                    .build(&self.patterns)
                    .map_err(|e| build_error(e.to_string()))?,
            )
        } else {
            let mut ac = CharwiseDoubleArrayAhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build_with_values(self.patterns.iter().enumerate().map(|(i, p)| (p, i as u32)))
                .map_err(|e| build_error(e.to_string()))?;
            let filter = StartFilter::build(&self.patterns);
            if filter.is_some() {
                ac.cache_depths().map_err(|e| build_error(e.to_string()))?;
            }
            Automaton::Chars(ac, filter)
        };
        Ok(Some(LiteralGroup {
            profile,
            table: table_for(profile),
            plain: profile
                .has(Step::Homophone)
                .then(|| table_for(profile.without(&[Step::Homophone]))),
            written: self.written,
            ac,
            starts,
            owners,
        }))
    }
}

impl Matcher {
    pub(crate) fn new(rules: &[Rule]) -> Result<Matcher> {
        let mut literal: Vec<(Profile, GroupBuilder)> = Vec::new();
        let mut regex: Vec<(Profile, Vec<String>, Vec<RuleRegex>)> = Vec::new();
        for (r, rule) in rules.iter().enumerate() {
            let profile = Profile::from_steps(&rule.normalize);
            // A rule with allow phrases and only regexes or detectors needs them matched too.
            if !rule.terms.is_empty() || !rule.allow.is_empty() {
                let g = match literal.iter().position(|(p, _)| *p == profile) {
                    Some(i) => &mut literal[i].1,
                    None => {
                        literal.push((profile, GroupBuilder::default()));
                        &mut literal.last_mut().expect("just pushed").1
                    }
                };
                add_rule_literals(g, r as u32, rule, profile);
            }
            for (i, re) in rule.regex.iter().enumerate() {
                let compiled = RegexBuilder::new(re)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| Error::new(ErrorKind::InvalidRegex, e.to_string()))?;
                let profile = regex_profile(rule);
                let g = match regex.iter().position(|(p, _, _)| *p == profile) {
                    Some(i) => &mut regex[i],
                    None => {
                        regex.push((profile, Vec::new(), Vec::new()));
                        regex.last_mut().expect("just pushed")
                    }
                };
                g.1.push(re.clone());
                g.2.push((compiled, r as u32, i as u32));
            }
        }
        let mut literal_groups = Vec::new();
        for (profile, g) in literal {
            if let Some(g) = g.build(profile)? {
                literal_groups.push(g);
            }
        }
        let mut regex_groups = Vec::new();
        for (profile, sources, regexes) in regex {
            let set = RegexSetBuilder::new(&sources)
                .size_limit(
                    REGEX_SIZE_LIMIT
                        .saturating_mul(sources.len())
                        .min(REGEX_SET_SIZE_LIMIT),
                )
                .build()
                .map_err(|e| {
                    Error::new(
                        ErrorKind::TooLarge,
                        format!("the rule set's regexes together exceed the compiled size limit (regex_set_size, {REGEX_SET_SIZE_LIMIT} bytes): {e}"),
                    )
                })?;
            regex_groups.push(RegexGroup {
                profile,
                table: table_for(profile),
                set,
                regexes,
            });
        }
        let mut detect_groups: Vec<DetectGroup> = Vec::new();
        for (r, rule) in rules.iter().enumerate() {
            if rule.detect.is_empty() {
                continue;
            }
            let (profile, noise) = detect_profile(rule);
            let set = rule.detect.iter().fold(0, |m, d| m | d.bit());
            let digits_min = rule.digits_min.unwrap_or(u32::MAX);
            let g = match detect_groups
                .iter()
                .position(|g| g.profile == profile && g.wanted.noise == noise)
            {
                Some(i) => &mut detect_groups[i],
                None => {
                    detect_groups.push(DetectGroup {
                        profile,
                        table: table_for(profile),
                        wanted: detect::Wanted {
                            set: 0,
                            digits_min: u32::MAX,
                            noise,
                        },
                        rules: Vec::new(),
                    });
                    detect_groups.last_mut().expect("just pushed")
                }
            };
            g.wanted.set |= set;
            g.wanted.digits_min = g.wanted.digits_min.min(digits_min);
            g.rules.push((r as u32, set, digits_min));
        }
        let segments = rules.iter().any(|r| r.boundary == Boundary::Word);
        let homophones = rules.iter().any(|r| r.normalize.contains(&Step::Homophone));
        if segments || homophones {
            Segmenter::load_in_background();
        }
        Ok(Matcher {
            literal: literal_groups,
            regex: regex_groups,
            detect: detect_groups,
            segments,
        })
    }

    /// The fold profiles the matcher uses: literal groups first, then regex groups.
    pub(crate) fn profiles(&self) -> Vec<Profile> {
        let mut out: Vec<Profile> = Vec::new();
        let groups = self.literal.iter().map(|g| g.profile);
        let detect = self.detect.iter().map(|g| g.profile);
        for p in groups
            .chain(self.regex.iter().map(|g| g.profile))
            .chain(detect)
        {
            if !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }

    /// Size of the literal automata in bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.literal
            .iter()
            .map(|g| g.ac.heap_bytes() + g.owners.len() * std::mem::size_of::<Owner>())
            .sum()
    }

    /// Appends every term, pinyin and regex match in `text` to `hits` and every allow-phrase
    /// occurrence to `allows`, in original byte offsets. `scratch` holds the folded text.
    pub(crate) fn find(
        &self,
        text: &str,
        scratch: &mut Folded,
        hits: &mut Vec<Candidate>,
        allows: &mut Vec<AllowSpan>,
        timing: Option<&mut KindTimes>,
    ) {
        let clock = timing.is_some().then(Instant::now);
        let mut segmenting = Duration::ZERO;
        for g in &self.literal {
            // Without steps the text is its own fold: no copy, no offset map.
            let exact = g.profile == Profile::EXACT;
            let folded = if exact {
                text
            } else {
                g.table.fold_into(text, scratch);
                scratch.text()
            };
            for (m_start, m_end, p) in g.ac.find_overlapping(folded) {
                let (lo, hi) = (g.starts[p] as usize, g.starts[p + 1] as usize);
                let mut mapped: Option<(usize, usize, u8)> = None;
                for o in &g.owners[lo..hi] {
                    let before = folded[..m_start].chars().next_back();
                    let after = folded[m_end..].chars().next();
                    if o.strict && (is_ascii_letter(before) || is_ascii_letter(after)) {
                        continue;
                    }
                    let touches_left = o.guard_left && is_ascii_letter(before);
                    let touches_right = o.guard_right && is_ascii_letter(after);
                    if (touches_left || touches_right) && exact {
                        continue;
                    }
                    let (start, end, steps) = match mapped {
                        Some(x) => x,
                        None => {
                            let (s, e) = if exact {
                                (m_start, m_end)
                            } else {
                                scratch.to_original(m_start, m_end)
                            };
                            let last = folded[..m_end].chars().next_back().unwrap_or_default();
                            let e = g.table.extend_over_repeats(text, e, last);
                            let original = &text[s..e];
                            let steps = if original == &folded[m_start..m_end] {
                                0
                            } else {
                                let stats = g.table.span_stats(original);
                                if stats.max_noise_gap > MAX_NOISE_GAP {
                                    break;
                                }
                                stats.steps
                            };
                            *mapped.insert((s, e, steps))
                        }
                    };
                    let mut homophone = None;
                    if let Some(plain) = &g.plain {
                        // `homophone` folds every Han char: it made the hit only when the
                        // text differs from the term without it.
                        let written = &g.written[o.written as usize];
                        if plain.fold_string(&text[start..end]) == plain.fold_string(written) {
                            homophone = Some(false);
                        } else if o.role == Role::Allow
                            || Segmenter::get().is_word(&text[start..end])
                        {
                            // An allow phrase suppresses its own words only; a real word
                            // that sounds like a term (读博, 独播) is no evasion.
                            continue;
                        } else {
                            homophone = Some(true);
                        }
                    }
                    if o.strict
                        && (text[..start].chars().next_back().is_some_and(is_digit)
                            || text[end..].chars().next().is_some_and(is_digit))
                    {
                        // A model number (SB700), not a word; a numeral that folds to a
                        // digit is no such thing (ＳＢ一个).
                        continue;
                    }
                    // A letter next to the hit in the fold may have been across a space
                    // or a symbol the fold skipped: boundaries are judged on the original
                    // text (buy ketamine now).
                    if (touches_left && g.table.letter_before(text, start))
                        || (touches_right && g.table.letter_after(text, end))
                    {
                        continue;
                    }
                    if o.word && self.segments {
                        let t = clock.map(|_| Instant::now());
                        let term = match o.role {
                            Role::Term => Some(&*g.written[o.written as usize]),
                            _ => None,
                        };
                        let straddles = Segmenter::get().straddles(text, start, end, term);
                        if let Some(t) = t {
                            segmenting += t.elapsed();
                        }
                        if straddles {
                            continue;
                        }
                    }
                    let source = match o.role {
                        Role::Term => Source::Term(o.index),
                        Role::Pinyin => Source::Pinyin(o.index),
                        Role::Allow => {
                            allows.push(AllowSpan {
                                rule: o.rule,
                                start,
                                end,
                            });
                            continue;
                        }
                    };
                    let mut steps =
                        needed_steps(steps, o, &text[start..end], &g.written[o.written as usize]);
                    match homophone {
                        Some(true) => steps |= normalize::bit(Step::Homophone),
                        Some(false) => steps &= !normalize::bit(Step::Homophone),
                        None => {}
                    }
                    hits.push(Candidate {
                        rule: o.rule,
                        start,
                        end,
                        source,
                        steps,
                    });
                }
            }
        }
        let literal_done = clock.map(|c| (c.elapsed(), Instant::now()));
        for g in &self.regex {
            g.table.fold_into(text, scratch);
            let folded = scratch.text();
            for i in g.set.matches(folded).iter() {
                let (re, rule, index) = &g.regexes[i];
                for m in re.find_iter(folded) {
                    if m.is_empty() {
                        continue;
                    }
                    let (start, end) = scratch.to_original(m.start(), m.end());
                    let original = &text[start..end];
                    let steps = if original == m.as_str() {
                        0
                    } else {
                        g.table.span_stats(original).steps
                    };
                    hits.push(Candidate {
                        rule: *rule,
                        start,
                        end,
                        source: Source::Regex(*index),
                        steps,
                    });
                }
            }
        }
        self.detect(text, scratch, hits);
        if let (Some(t), Some((literal, regex_start))) = (timing, literal_done) {
            t.literal_ns += literal.as_nanos() as u64;
            t.word_boundary_ns += segmenting.as_nanos() as u64;
            t.regex_ns += regex_start.elapsed().as_nanos() as u64;
        }
    }
}

impl Matcher {
    /// The built-in detectors' hits, in original byte offsets: each group's fold is made
    /// only when the text passes the detectors' cheap look (`detect::worth_scanning`).
    fn detect(&self, text: &str, scratch: &mut Folded, hits: &mut Vec<Candidate>) {
        let mut finds = Vec::new();
        for g in &self.detect {
            if !detect::worth_scanning(text, &g.wanted) {
                continue;
            }
            // Roman numerals are digits to the detectors only; same byte offsets.
            g.table.fold_into(&detect::roman_as_digits(text), scratch);
            let folded = scratch.text();
            finds.clear();
            detect::find(folded, &g.wanted, &mut finds);
            for f in &finds {
                if f.start >= f.end {
                    continue;
                }
                let (start, end) = scratch.to_original(f.start, f.end);
                let original = &text[start..end];
                let mut steps = if original == &folded[f.start..f.end] {
                    0
                } else {
                    g.table.span_stats(original).steps
                };
                if f.noise {
                    steps |= normalize::bit(Step::Noise);
                }
                for &(rule, set, digits_min) in &g.rules {
                    let wanted = set & f.detector.bit() != 0
                        && (f.detector != Detector::Digits
                            || (f.digits >= digits_min && set & f.shadowed_by == 0));
                    if wanted {
                        hits.push(Candidate {
                            rule,
                            start,
                            end,
                            source: Source::Detect(f.detector),
                            steps,
                        });
                    }
                }
            }
        }
    }
}

/// Adds a rule's terms (and their pinyin forms) and allow phrases to its profile's group.
fn add_rule_literals(g: &mut GroupBuilder, r: u32, rule: &Rule, profile: Profile) {
    let guard = rule.boundary != Boundary::None;
    let table = table_for(profile);
    // `written` is set by `GroupBuilder::add`.
    let owner = |index: usize, role: Role, written: &str, pattern: &str, force_guard: bool| Owner {
        rule: r,
        index: index as u32,
        role,
        guard_left: (guard || force_guard) && is_ascii_letter(pattern.chars().next()),
        guard_right: (guard || force_guard) && is_ascii_letter(pattern.chars().next_back()),
        word: rule.boundary == Boundary::Word && role != Role::Allow,
        strict: force_guard
            || (pattern.len() <= 2 && pattern.bytes().all(|b| b.is_ascii_alphabetic())),
        own_steps: table.span_stats(written).steps,
        written: 0,
    };
    for (i, term) in rule.terms.iter().enumerate() {
        let folded = normalize::fold_str(profile, term);
        let o = owner(i, Role::Term, term, &folded, false);
        g.add(folded.clone(), term, o);
        if profile.has(Step::Homophone) {
            // Every reading of the term's polyphonic chars (a text char is read by its
            // first reading only).
            let plain = normalize::fold_str(profile.without(&[Step::Homophone]), term);
            for form in normalize::homophone_forms(&plain) {
                let form = normalize::fold_str(profile, &form);
                let o = owner(i, Role::Term, term, &form, false);
                g.add(form, term, o);
            }
        }
        if profile.has(Step::T2s) {
            // Taiwan and Hong Kong words for the term's words (網路 for 网络).
            for form in normalize::regional_forms(term) {
                let form = normalize::fold_str(profile, &form);
                if form != folded {
                    let o = owner(i, Role::Term, term, &form, false);
                    g.add(form, term, o);
                }
            }
        }
        if rule.pinyin == Pinyin::Off {
            continue;
        }
        // Pinyin comes from the term's Han characters as written, before any folding
        // (六合彩 → liuhecai: `variants` would have made it 6合彩); each spelling is then
        // folded like the term (六hecai → 6hecai, as the text folds).
        let spellings = pinyin::spellings(term);
        for spelling in spellings.iter().chain(&pinyin::tone_numbers(term)) {
            let spelling = normalize::fold_str(profile, spelling);
            let o = owner(i, Role::Pinyin, &spelling, &spelling, false);
            g.add(spelling.clone(), &spelling, o);
        }
        if rule.pinyin == Pinyin::Initials {
            if let Some(initials) = pinyin::initials(term) {
                let initials = normalize::fold_str(profile, &initials);
                // Initials match only as a standalone ASCII word, whatever the boundary.
                let o = owner(i, Role::Pinyin, &initials, &initials, true);
                g.add(initials.clone(), &initials, o);
            }
        }
    }
    for (i, phrase) in rule.allow.iter().enumerate() {
        let folded = normalize::fold_str(profile, phrase);
        let o = owner(i, Role::Allow, phrase, &folded, false);
        g.add(folded, phrase, o);
    }
}
