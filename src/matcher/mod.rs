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
mod copies;
mod pinyin;
mod start_filter;

use boundary::Segmenter;
use copies::{AutomataCopy, Copies, GroupCopy};
use start_filter::{FilteredMatches, HanPairs, StartFilter};

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    own_steps: u16,
    /// The character-changing step this spelling of the term stands for (`near_form`,
    /// `split`), or 0.
    via: u16,
    /// For such a spelling, its index in `GroupBuilder::written` plus one (`written` is the
    /// term's), else 0.
    form: u32,
    /// Index of the term as written in `GroupBuilder::written`, to tell an exact match.
    written: u32,
    /// How many owners of the same pattern follow this one in `LiteralGroup::owners`
    /// (set when the group is built).
    more: u32,
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
    pub(crate) steps: u16,
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
    /// aho-corasick's contiguous NFA: linear build for huge lexicons, with the index of
    /// each pattern's first owner (its own ids are the patterns').
    Bytes(aho_corasick::AhoCorasick, Vec<u32>),
}

/// Overlapping matches of an [`Automaton`]: (start, end, the pattern's first owner) in
/// folded bytes.
enum Matches<'a> {
    Chars(daachorse::charwise::iter::FindOverlappingSliceIterator<'a, &'a str, u32>),
    Filtered(FilteredMatches<'a>),
    Bytes(aho_corasick::FindOverlappingIter<'a, 'a>, &'a [u32]),
}

impl Iterator for Matches<'_> {
    type Item = (usize, usize, usize);

    #[inline]
    fn next(&mut self) -> Option<(usize, usize, usize)> {
        match self {
            Matches::Chars(it) => it.next().map(|m| (m.start(), m.end(), m.value() as usize)),
            Matches::Filtered(it) => it.next(),
            Matches::Bytes(it, first) => it
                .next()
                .map(|m| (m.start(), m.end(), first[m.pattern().as_usize()] as usize)),
        }
    }
}

impl Automaton {
    /// Overlapping matches in `folded`, read from this thread's copy of the automaton when
    /// it has one (`own`, see [`copies`]).
    fn find_overlapping<'a>(&'a self, own: Option<&'a GroupCopy>, folded: &'a str) -> Matches<'a> {
        match self {
            Automaton::Chars(ac, filter) => {
                let ac = own.map_or(ac, |c| &c.ac);
                match filter {
                    Some(f) if f.pays() => {
                        let bits = own.and_then(|c| c.bits.as_ref()).unwrap_or(f.bits());
                        Matches::Filtered(f.find_overlapping(bits, ac, folded))
                    }
                    _ => Matches::Chars(ac.find_overlapping_iter(folded)),
                }
            }
            Automaton::Bytes(ac, first) => Matches::Bytes(ac.find_overlapping_iter(folded), first),
        }
    }

    /// A copy for another thread (see [`copies`]): character automata only.
    fn copy(&self) -> Option<GroupCopy> {
        match self {
            Automaton::Chars(ac, filter) => Some(GroupCopy {
                ac: ac.clone(),
                bits: filter.as_ref().map(|f| f.bits().clone()),
            }),
            Automaton::Bytes(..) => None,
        }
    }

    /// What [`Automaton::copy`] copies, in bytes.
    fn copied_bytes(&self) -> usize {
        match self {
            Automaton::Chars(..) => self.heap_bytes(),
            Automaton::Bytes(..) => 0,
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Automaton::Chars(ac, filter) => {
                ac.heap_bytes() + filter.as_ref().map_or(0, StartFilter::heap_bytes)
            }
            Automaton::Bytes(ac, first) => ac.memory_usage() + first.len() * 4,
        }
    }
}

struct LiteralGroup {
    profile: Profile,
    table: Arc<FoldTable>,
    /// With `homophone` or `near_homophone`: the profile's fold without them, to tell
    /// whether a hit needed one.
    plain: Option<Arc<FoldTable>>,
    /// With both: the fold without `near_homophone`, to tell which one.
    homophone_only: Option<Arc<FoldTable>>,
    /// `written` folded by `plain` and by `homophone_only` (empty without them), so that a
    /// match compares the text's fold with them and folds only the text.
    plain_written: Vec<Box<str>>,
    homophone_written: Vec<Box<str>>,
    ac: Automaton,
    /// Terms and allow phrases as written.
    written: Vec<Box<str>>,
    /// The owners of every pattern, a pattern's together: the automaton's value for a
    /// pattern is the index of its first owner, which says how many more follow
    /// (`Owner::more`), so a match reads one place of this table, not two.
    owners: Vec<Owner>,
    /// The longest pattern, in bytes (the reach of a skipping window).
    max_pattern: usize,
    /// The profile skips noise and the group has Han terms: look again with lone Latin
    /// letters and digits between Han characters left out (`Matcher::find_skipping`), where
    /// the two Han characters are neighbours in some pattern (`Some`).
    skip_lone: Option<HanPairs>,
    /// The profile skips noise and the group has pinyin spellings: look again with tone
    /// numbers left out.
    skip_tones: bool,
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
    /// Whether a scan may need the segmenter: word-boundary rules, or a step that changes
    /// chars (whose hits are checked against the text's own words).
    dictionary: bool,
    /// The literal groups' automata, copied for the scanning threads beyond the first.
    copies: Copies,
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
fn needed_steps<'w>(
    span_steps: u16,
    o: &Owner,
    matched: &str,
    written: impl FnOnce() -> &'w str,
) -> u16 {
    // Without steps the answer is none whatever the term: it is not read.
    if span_steps == 0 || matched == written() {
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

/// Whether `said` differs from `meant` (both folded without the sound steps) in at most
/// half of their characters (at least one), position by position, with as many of them
/// as the term has as written (no repeat collapsed).
fn few_changed(said: &str, meant: &str, term: &str) -> bool {
    let n = meant.chars().count();
    n == said.chars().count()
        && n == term.chars().count()
        && said
            .chars()
            .zip(meant.chars())
            .filter(|(a, b)| a != b)
            .count()
            <= (n / 2).max(1)
}

/// The steps that compare Han characters by sound.
const SOUNDS: [Step; 2] = [Step::Homophone, Step::NearHomophone];

/// The steps that change the characters themselves (opt-in).
const CHANGING: [Step; 4] = [
    Step::Homophone,
    Step::NearHomophone,
    Step::NearForm,
    Step::Split,
];

/// The profile regexes of a rule run on: its steps among invisible, width, case and t2s.
pub(crate) fn regex_profile(rule: &Rule) -> Profile {
    Profile::from_steps(&rule.normalize).without(&[
        Step::Variants,
        Step::Noise,
        Step::Repeat,
        Step::Homophone,
        Step::NearHomophone,
        Step::NearForm,
        Step::Split,
    ])
}

/// Collects the patterns of one profile's rules.
#[derive(Default)]
struct GroupBuilder {
    /// Each pattern and its number (its place in `owners`), the pattern kept only here until
    /// [`build`](GroupBuilder::build) lays them out in order: no copy of each, and Fx
    /// hashing (the keys are the rule authors' terms, not posts), took adding 50,000 terms
    /// from 17-22 to 14-16 ms on one core.
    index: rustc_hash::FxHashMap<String, u32>,
    owners: Vec<Vec<Owner>>,
    written: Vec<Box<str>>,
}

impl GroupBuilder {
    /// Adds the pattern of a spelling `form` of `written` that `owner.via` stands for.
    fn add_form(&mut self, pattern: String, written: &str, form: &str, mut owner: Owner) {
        owner.form = self.written.len() as u32 + 1;
        self.written.push(form.into());
        self.add(pattern, written, owner);
    }

    /// Adds `owner`'s pattern; `written` is its term or phrase as the rule wrote it.
    fn add(&mut self, pattern: String, written: &str, mut owner: Owner) {
        if pattern.is_empty() {
            return;
        }
        let next = self.owners.len() as u32;
        let p = *self.index.entry(pattern).or_insert(next);
        if p == next {
            self.owners.push(Vec::new());
        }
        let p = p as usize;
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

    /// The group's tables and automaton: aho-corasick's when it has more than
    /// `large_group` patterns ([`LARGE_GROUP`] but in tests), else daachorse's.
    fn build(self, profile: Profile, large_group: usize) -> Result<Option<LiteralGroup>> {
        if self.owners.is_empty() {
            return Ok(None);
        }
        let patterns = in_order(self.index);
        // Pattern `p`'s owners start at `first[p]`, the automaton's value for it.
        let mut first = Vec::with_capacity(self.owners.len());
        let mut owners = Vec::new();
        for list in self.owners {
            first.push(owners.len() as u32);
            let n = list.len() as u32;
            owners.extend(
                list.into_iter()
                    .zip((0..n).rev())
                    .map(|(o, more)| Owner { more, ..o }),
            );
        }
        let build_error =
            |e: String| Error::new(ErrorKind::Build, format!("building the automaton: {e}"));
        let ac = if patterns.len() > large_group {
            Automaton::Bytes(
                aho_corasick::AhoCorasick::builder()
                    .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
                    .build(&patterns)
                    .map_err(|e| build_error(e.to_string()))?,
                first,
            )
        } else {
            let mut ac = CharwiseDoubleArrayAhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build_with_values(patterns.iter().zip(first.iter().copied()))
                .map_err(|e| build_error(e.to_string()))?;
            let filter = StartFilter::build(&patterns);
            if filter.is_some() {
                ac.cache_depths().map_err(|e| build_error(e.to_string()))?;
            }
            Automaton::Chars(ac, filter)
        };
        let noise = profile.has(Step::Noise);
        let han = |w: &str| w.chars().count() > 1 && w.chars().all(normalize::is_han);
        let plain = (profile.has(Step::Homophone) || profile.has(Step::NearHomophone))
            .then(|| table_for(profile.without(&SOUNDS)));
        let homophone_only = (profile.has(Step::Homophone) && profile.has(Step::NearHomophone))
            .then(|| table_for(profile.without(&[Step::NearHomophone])));
        let fold_all = |table: &Option<Arc<FoldTable>>| -> Vec<Box<str>> {
            table.as_ref().map_or_else(Vec::new, |t| {
                self.written
                    .iter()
                    .map(|w| t.fold_string(w).into())
                    .collect()
            })
        };
        let (plain_written, homophone_written) = (fold_all(&plain), fold_all(&homophone_only));
        Ok(Some(LiteralGroup {
            max_pattern: patterns.iter().map(String::len).max().unwrap_or(0),
            skip_lone: (noise && self.written.iter().any(|w| han(w)))
                .then(|| HanPairs::build(&patterns)),
            skip_tones: noise && owners.iter().any(|o| o.role == Role::Pinyin),
            profile,
            table: table_for(profile),
            plain,
            homophone_only,
            plain_written,
            homophone_written,
            written: self.written,
            ac,
            owners,
        }))
    }
}

/// The patterns of a group's index, by number.
fn in_order(index: rustc_hash::FxHashMap<String, u32>) -> Vec<String> {
    let mut patterns = vec![String::new(); index.len()];
    for (pattern, p) in index {
        patterns[p as usize] = pattern;
    }
    patterns
}

impl Matcher {
    pub(crate) fn new(rules: &[Rule]) -> Result<Matcher> {
        Matcher::with_large_group(rules, LARGE_GROUP)
    }

    fn with_large_group(rules: &[Rule], large_group: usize) -> Result<Matcher> {
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
            if let Some(g) = g.build(profile, large_group)? {
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
        let changing = rules
            .iter()
            .any(|r| r.normalize.iter().any(|s| CHANGING.contains(s)));
        let dictionary = segments || changing;
        if dictionary {
            Segmenter::load_in_background();
        }
        let copied = literal_groups.iter().map(|g| g.ac.copied_bytes()).sum();
        Ok(Matcher {
            literal: literal_groups,
            regex: regex_groups,
            detect: detect_groups,
            segments,
            dictionary,
            copies: Copies::for_size(copied),
        })
    }

    /// A copy of the literal groups' character automata, for another thread.
    fn copy_automata(&self) -> AutomataCopy {
        self.literal.iter().map(|g| g.ac.copy()).collect()
    }

    /// Loads, on this thread, what this matcher's scans would otherwise load on first use:
    /// jieba's dictionary when its rules need it (waiting for the load started in the
    /// background when it was built, if that is under way).
    pub(crate) fn warm_up(&self) {
        if self.dictionary {
            Segmenter::get();
        }
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

    /// Size of the literal automata in bytes (without the copies that threads beyond the
    /// first scan with: at most one per further core, made on their first scan).
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
        let mut sink = Sink {
            text,
            hits,
            allows,
            timed: clock.is_some(),
            segmenting: Duration::ZERO,
            said: Folded::default(),
        };
        let copy = self.copies.for_this_thread(|| self.copy_automata());
        for (i, g) in self.literal.iter().enumerate() {
            let own = copy.and_then(|c| c[i].as_ref());
            // Without steps the text is its own fold: no copy, no offset map.
            let exact = g.profile == Profile::EXACT;
            let folded = if exact {
                text
            } else {
                g.table.fold_into(text, scratch);
                scratch.text()
            };
            for (m_start, m_end, p) in g.ac.find_overlapping(own, folded) {
                let m = Found {
                    fs: m_start,
                    fe: m_end,
                    matched: &folded[m_start..m_end],
                    before: folded[..m_start].chars().next_back(),
                    after: folded[m_end..].chars().next(),
                    skipped: None,
                };
                self.accept(g, scratch, exact, &m, p, &mut sink);
            }
            if !exact && (g.skip_lone.is_some() || g.skip_tones) {
                self.find_skipping(g, own, scratch, &mut sink);
            }
        }
        let segmenting = sink.segmenting;
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

/// What a skipping pass (`Matcher::find_skipping`) left out of the fold under a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Skip {
    /// A lone Latin letter or digit between two Han characters (赌a博).
    Lone,
    /// A tone number after a pinyin syllable (du4bo2), whatever the tone.
    Tone,
}

/// A match of a group's automaton, in folded byte offsets.
struct Found<'h> {
    fs: usize,
    fe: usize,
    /// The folded text the automaton matched (without skipped characters).
    matched: &'h str,
    /// The chars the automaton saw next to the match.
    before: Option<char>,
    after: Option<char>,
    skipped: Option<Skip>,
}

/// Where accepted matches go.
struct Sink<'t, 'o> {
    text: &'t str,
    hits: &'o mut Vec<Candidate>,
    allows: &'o mut Vec<AllowSpan>,
    timed: bool,
    segmenting: Duration,
    /// Scratch for a hit's span folded without the sound steps.
    said: Folded,
}

/// A char of the folded text that a skipping pass leaves out: a lone ASCII letter or digit
/// between two Han chars that are neighbours in some pattern (`lone`), or a tone number 1–5
/// after a lowercase letter (not followed by another digit). `i` is an ASCII byte of
/// `folded`.
fn skip_at(folded: &str, i: usize, lone: Option<&HanPairs>, tones: bool) -> Option<Skip> {
    let b = folded.as_bytes()[i];
    if let Some(pairs) = lone {
        let before = folded[..i]
            .chars()
            .next_back()
            .filter(|&c| normalize::is_han(c));
        let after = folded[i + 1..]
            .chars()
            .next()
            .filter(|&c| normalize::is_han(c));
        if let (Some(a), Some(z)) = (before, after) {
            return pairs.may_have(a, z).then_some(Skip::Lone);
        }
    }
    let tone = tones
        && (b'1'..=b'5').contains(&b)
        && i > 0
        && folded.as_bytes()[i - 1].is_ascii_lowercase()
        && !folded.as_bytes().get(i + 1).is_some_and(u8::is_ascii_digit);
    tone.then_some(Skip::Tone)
}

/// Calls `f` with every byte offset of `bytes` where [`skip_at`] may find a site: an ASCII
/// letter or digit between two non-ASCII bytes (`lone`), or a digit 1–5 after a lowercase
/// letter and not before another digit (`tones`). A superset, narrowed eight bytes at a
/// time: only the ASCII bytes between two non-ASCII ones (and, for tones, the digits 1–5
/// after an ASCII byte) are looked at one by one, so a run of Chinese text costs about
/// half an instruction a byte.
fn for_each_maybe_site(bytes: &[u8], lone: bool, tones: bool, mut f: impl FnMut(usize)) {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const fn splat(b: u8) -> u64 {
        u64::from_le_bytes([b; 8])
    }
    let flag = |p: u8, c: u8, n: u8| -> bool {
        let digit = c.wrapping_sub(b'0') < 10;
        let letter = (c | 0x20).wrapping_sub(b'a') < 26;
        let lone_site = lone && (digit || letter) && p >= 0x80 && n >= 0x80;
        let tone_site = tones
            && c.wrapping_sub(b'1') < 5
            && p.wrapping_sub(b'a') < 26
            && n.wrapping_sub(b'0') >= 10;
        lone_site || tone_site
    };
    let n = bytes.len();
    if n < 2 {
        return;
    }
    // Offsets 1..n-1 have a byte either side; the last byte can only end a tone number.
    let mut i = 1;
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"));
    while i + 9 <= n {
        // The eight bytes from `i`, and the eight before and after them by one: bit 7 of
        // a byte of `before` (`after`) is set when the byte before (after) it is not ASCII.
        let (w, before, after) = (word(i), word(i - 1), word(i + 1));
        let ascii = !w & HIGH;
        let mut m = 0;
        if lone {
            m |= ascii & before & after;
        }
        if tones {
            // ASCII bytes 0x31..=0x35 after an ASCII byte; no carries: bit 7 is clear.
            let low = w & !HIGH;
            let from_1 = (low + splat(0x80 - b'1')) & HIGH;
            let from_6 = (low + splat(0x80 - b'6')) & HIGH;
            m |= ascii & !before & from_1 & !from_6;
        }
        while m != 0 {
            let j = i + (m.trailing_zeros() as usize >> 3);
            if flag(bytes[j - 1], bytes[j], bytes[j + 1]) {
                f(j);
            }
            m &= m - 1;
        }
        i += 8;
    }
    for j in i..n - 1 {
        if flag(bytes[j - 1], bytes[j], bytes[j + 1]) {
            f(j);
        }
    }
    if flag(bytes[n - 2], bytes[n - 1], 0) {
        f(n - 1);
    }
}

impl Matcher {
    /// The second look of a group whose profile skips noise: the matches that need a lone
    /// Latin letter or digit between two Han characters skipped (赌a博 = 赌博), or the tone
    /// numbers of pinyin (du4bo2 = dubo, whatever the tones). The plain fold keeps those
    /// characters (K粉 and 6合彩 need them), so the automaton runs again over small windows
    /// of the fold around them, with them left out. Only matches over a skipped char count
    /// (the others were found by the first look); a lone char must be Latin or a digit in
    /// the original text, not a numeral like 一 (统一战 is no 统战).
    fn find_skipping(
        &self,
        g: &LiteralGroup,
        own: Option<&GroupCopy>,
        scratch: &Folded,
        sink: &mut Sink<'_, '_>,
    ) {
        let folded = scratch.text();
        let mut sites: Vec<(usize, Skip)> = Vec::new();
        let lone = g.skip_lone.as_ref();
        for_each_maybe_site(folded.as_bytes(), lone.is_some(), g.skip_tones, |i| {
            let Some(kind) = skip_at(folded, i, lone, g.skip_tones) else {
                return;
            };
            let (s, e) = scratch.to_original(i, i + 1);
            if !sink.text[s..e].chars().any(normalize::is_han) {
                sites.push((i, kind));
            }
        });
        if sites.is_empty() {
            return;
        }
        let mut window = String::new();
        let mut map: Vec<u32> = Vec::new();
        let mut k = 0;
        while k < sites.len() {
            // A window reaches a pattern's length either side of its sites; windows that
            // overlap are one.
            let lo = floor_char(folded, sites[k].0.saturating_sub(g.max_pattern));
            let mut hi = ceil_char(folded, sites[k].0 + 1 + g.max_pattern);
            let mut last = k;
            while last + 1 < sites.len() && sites[last + 1].0 < hi {
                last += 1;
                hi = ceil_char(folded, sites[last].0 + 1 + g.max_pattern);
            }
            let cluster = &sites[k..=last];
            k = last + 1;
            window.clear();
            map.clear();
            let mut from = lo;
            for &(i, _) in cluster {
                window.push_str(&folded[from..i]);
                map.extend((from..i).map(|x| x as u32));
                from = i + 1;
            }
            window.push_str(&folded[from..hi]);
            map.extend((from..hi).map(|x| x as u32));
            for (ws, we, p) in g.ac.find_overlapping(own, &window) {
                let (fs, mut fe) = (map[ws] as usize, map[we - 1] as usize + 1);
                let mut covered = cluster.iter().filter(|(i, _)| fs < *i && *i < fe);
                let Some(&(_, first)) = covered.next() else {
                    continue;
                };
                let skipped = if first == Skip::Lone || covered.any(|(_, s)| *s == Skip::Lone) {
                    Skip::Lone
                } else {
                    Skip::Tone
                };
                // The tone number of the last syllable belongs to the hit (du4bo4).
                if cluster.contains(&(fe, Skip::Tone)) {
                    fe += 1;
                }
                let before = if ws == 0 {
                    folded[..fs].chars().next_back()
                } else {
                    window[..ws].chars().next_back()
                };
                let after = if we == window.len() {
                    folded[fe..].chars().next()
                } else {
                    window[we..].chars().next()
                };
                let m = Found {
                    fs,
                    fe,
                    matched: &window[ws..we],
                    before,
                    after,
                    skipped: Some(skipped),
                };
                self.accept(g, scratch, false, &m, p, sink);
            }
        }
    }

    /// Judges match `m` of pattern `p` for each of its owners and records what holds.
    fn accept(
        &self,
        g: &LiteralGroup,
        scratch: &Folded,
        exact: bool,
        m: &Found<'_>,
        first: usize,
        sink: &mut Sink<'_, '_>,
    ) {
        let text = sink.text;
        let more = g.owners[first].more as usize;
        let mut mapped: Option<(usize, usize, u16)> = None;
        for o in &g.owners[first..=first + more] {
            match m.skipped {
                // A lone letter is noise inside a Han term only; tone numbers belong to
                // pinyin spellings.
                Some(Skip::Lone)
                    if o.role == Role::Pinyin
                        || !g.written[o.written as usize].chars().all(normalize::is_han) =>
                {
                    continue
                }
                Some(Skip::Tone) if o.role != Role::Pinyin => continue,
                _ => {}
            }
            if o.strict && (is_ascii_letter(m.before) || is_ascii_letter(m.after)) {
                continue;
            }
            let touches_left = o.guard_left && is_ascii_letter(m.before);
            let touches_right = o.guard_right && is_ascii_letter(m.after);
            if (touches_left || touches_right) && exact {
                continue;
            }
            let (start, end, steps) = match mapped {
                Some(x) => x,
                None => {
                    let (s, e) = if exact {
                        (m.fs, m.fe)
                    } else {
                        scratch.to_original(m.fs, m.fe)
                    };
                    let last = m.matched.chars().next_back().unwrap_or_default();
                    let e = g.table.extend_over_repeats(text, e, last);
                    let original = &text[s..e];
                    let steps = if m.skipped.is_none() && original == m.matched {
                        0
                    } else {
                        let stats = g.table.span_stats(original);
                        if stats.max_noise_gap > MAX_NOISE_GAP {
                            break;
                        }
                        // A lone letter is skipped as noise; a tone number is part of
                        // the pinyin it follows.
                        match m.skipped {
                            Some(Skip::Lone) => stats.steps | normalize::bit(Step::Noise),
                            _ => stats.steps,
                        }
                    };
                    *mapped.insert((s, e, steps))
                }
            };
            // The character-changing steps the hit needed: the spelling's own, and a sound
            // step when the text differs from the spelling without them (they fold every
            // Han char, so the fold alone does not tell).
            // The term and the spelling that matched are read only when needed: with a large
            // lexicon each is a cache miss.
            let term = || &*g.written[o.written as usize];
            let written_at = match o.form {
                0 => o.written as usize,
                f => f as usize - 1,
            };
            let written = || &*g.written[written_at];
            let mut changed = o.via;
            // The chars of the text a character-changing step stood in for the term's.
            let mut swapped: Vec<char> = Vec::new();
            if o.via == normalize::bit(Step::NearForm) {
                swapped.extend(
                    written()
                        .chars()
                        .zip(term().chars())
                        .filter(|(a, b)| a != b)
                        .map(|(a, _)| a),
                );
            }
            if let Some(plain) = &g.plain {
                let span = &text[start..end];
                plain.fold_into(span, &mut sink.said);
                let (said, meant) = (sink.said.text(), &*g.plain_written[written_at]);
                if said != meant {
                    swapped.extend(
                        said.chars()
                            .zip(meant.chars())
                            .filter(|(a, b)| a != b)
                            .map(|(a, _)| a),
                    );
                    if o.via != 0 || !few_changed(said, meant, term()) {
                        // A look-alike or components must be written as they are: never a
                        // sound on top of a shape (的家 is no 约架). A sound changes at most
                        // half the characters (one of two), and none are collapsed as
                        // repeats (时才 is no 时时彩): two chance homophones in a row are
                        // everywhere in real text.
                        continue;
                    }
                    let homophone = match &g.homophone_only {
                        Some(h) => h.fold_string(span) == *g.homophone_written[written_at],
                        None => g.profile.has(Step::Homophone),
                    };
                    changed |= normalize::bit(if homophone {
                        Step::Homophone
                    } else {
                        Step::NearHomophone
                    });
                }
            }
            if changed != 0 {
                // An allow phrase suppresses its own words only; a real word that sounds or
                // looks like a term (读博, 独播) is no evasion, nor is a piece of a text's
                // words (都博得 has no 赌博 in it).
                let words = Segmenter::get();
                if o.role == Role::Allow
                    || swapped.iter().any(|&c| words.is_common_char(c))
                    || words.is_word(&text[start..end])
                    || words.splits_words(text, start, end)
                {
                    continue;
                }
            }
            if o.strict
                && (text[..start].chars().next_back().is_some_and(is_digit)
                    || text[end..].chars().next().is_some_and(is_digit))
            {
                // A model number (SB700), not a word; a numeral that folds to a digit is no
                // such thing (ＳＢ一个).
                continue;
            }
            // A letter next to the hit in the fold may have been across a space or a symbol
            // the fold skipped: boundaries are judged on the original text (buy ketamine now).
            if (touches_left && g.table.letter_before(text, start))
                || (touches_right && g.table.letter_after(text, end))
            {
                continue;
            }
            if o.word && self.segments {
                let t = sink.timed.then(Instant::now);
                let term = match o.role {
                    Role::Term => Some(term()),
                    _ => None,
                };
                let straddles = Segmenter::get().straddles(text, start, end, term);
                if let Some(t) = t {
                    sink.segmenting += t.elapsed();
                }
                if straddles {
                    continue;
                }
            }
            let source = match o.role {
                Role::Term => Source::Term(o.index),
                Role::Pinyin => Source::Pinyin(o.index),
                Role::Allow => {
                    sink.allows.push(AllowSpan {
                        rule: o.rule,
                        start,
                        end,
                    });
                    continue;
                }
            };
            let sounds = normalize::bit(Step::Homophone) | normalize::bit(Step::NearHomophone);
            let steps = needed_steps(steps, o, &text[start..end], written) & !sounds | changed;
            sink.hits.push(Candidate {
                rule: o.rule,
                start,
                end,
                source,
                steps,
            });
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

/// `i` moved back to a char boundary of `s`.
fn floor_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `i` moved forward to a char boundary of `s` (at most its length).
fn ceil_char(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Term lists at least this long have their patterns computed on several threads (each term's
/// folds, regional words and pinyin: about 3 µs a term with the default steps).
const PARALLEL_TERMS: usize = 512;
/// Terms whose patterns are computed before they are added to the group (a million-term
/// list is not held twice over, as patterns and in the group).
const PARALLEL_BLOCK: usize = 16_384;

/// One pattern of a rule's term, computed apart from the group (on several threads for long
/// term lists) and then added to it in the term's order.
struct Pending {
    pattern: String,
    /// What the rule wrote for it when it is not the term itself (a pinyin spelling).
    written: Option<String>,
    /// A look-alike spelling of the term (see [`GroupBuilder::add_form`]).
    form: Option<String>,
    owner: Owner,
}

/// Makes the owners of one rule's patterns.
struct Owners<'a> {
    rule_index: u32,
    rule: &'a Rule,
    /// The profile's table, and the table without the character-changing steps.
    table: Arc<FoldTable>,
    plain: Arc<FoldTable>,
    profile: Profile,
}

impl Owners<'_> {
    /// `written` is what the rule wrote (its `own_steps` are read from it), `pattern` its
    /// fold (its ends decide the guards).
    fn owner(
        &self,
        index: usize,
        role: Role,
        written: &str,
        pattern: &str,
        force_guard: bool,
    ) -> Owner {
        let rule = self.rule;
        let guard = rule.boundary != Boundary::None;
        let letter_left = is_ascii_letter(pattern.chars().next());
        let letter_right = is_ascii_letter(pattern.chars().next_back());
        Owner {
            rule: self.rule_index,
            index: index as u32,
            role,
            guard_left: (guard || force_guard) && letter_left,
            guard_right: (guard || force_guard) && letter_right,
            // A word of Latin letters is bounded by the letters around it in the original text
            // (the guards at both its ends); jieba only cuts Chinese. Other terms without Han
            // chars (pk10, 666) keep jieba's judgement.
            word: rule.boundary == Boundary::Word
                && role != Role::Allow
                && (pattern.chars().any(normalize::is_han) || !(letter_left && letter_right)),
            strict: force_guard
                || (pattern.len() <= 2 && pattern.bytes().all(|b| b.is_ascii_alphabetic())),
            own_steps: self.table.span_stats(written).steps,
            via: 0,
            form: 0,
            written: 0,
            more: 0,
        }
    }

    /// `text` folded with the rule's profile.
    fn fold(&self, text: &str) -> String {
        self.table.fold_string(text)
    }

    /// The patterns of term `i`: its fold, its readings (homophone steps), look-alike
    /// spellings, Taiwan and Hong Kong words, pinyin.
    fn term_patterns(&self, i: usize) -> Vec<Pending> {
        let (rule, profile) = (self.rule, self.profile);
        let term = rule.terms[i].as_str();
        let mut out = Vec::new();
        let mut push = |pattern: String, written: Option<String>, form: Option<String>, owner| {
            out.push(Pending {
                pattern,
                written,
                form,
                owner,
            })
        };
        let folded = self.fold(term);
        push(
            folded.clone(),
            None,
            None,
            self.owner(i, Role::Term, term, &folded, false),
        );
        let plain = self.plain.fold_string(term);
        if profile.has(Step::Homophone) || profile.has(Step::NearHomophone) {
            // Every reading of the term's polyphonic chars (a text char is read by its
            // first reading only).
            for form in normalize::homophone_forms(&plain) {
                let form = self.fold(&form);
                let o = self.owner(i, Role::Term, term, &form, false);
                push(form, None, None, o);
            }
        }
        // Look-alike spellings (睹博) and components (弓虽奸), each owned as itself so a hit
        // knows the step and its real-word check reads what the text wrote.
        for (step, forms) in [
            (
                Step::NearForm,
                normalize::near_forms as fn(&str) -> Vec<String>,
            ),
            (Step::Split, normalize::split_forms),
        ] {
            if !profile.has(step) {
                continue;
            }
            for form in forms(&plain) {
                let pattern = self.fold(&form);
                if pattern != folded {
                    let mut o = self.owner(i, Role::Term, &form, &pattern, false);
                    o.via = normalize::bit(step);
                    push(pattern, None, Some(form), o);
                }
            }
        }
        if profile.has(Step::T2s) {
            // Taiwan and Hong Kong words for the term's words (網路 for 网络).
            for form in normalize::regional_forms(term) {
                let form = self.fold(&form);
                if form != folded {
                    let o = self.owner(i, Role::Term, term, &form, false);
                    push(form, None, None, o);
                }
            }
        }
        if rule.pinyin == Pinyin::Off {
            return out;
        }
        // Pinyin comes from the term's Han characters as written, before any folding
        // (六合彩 → liuhecai: `variants` would have made it 6合彩); each spelling is then
        // folded like the term (六hecai → 6hecai, as the text folds).
        let spellings = pinyin::spellings(term);
        // With `noise`, tone numbers are skipped whatever the tones (`find_skipping`);
        // without it the term's own tones are spelled out.
        let tones = match profile.has(Step::Noise) {
            true => Vec::new(),
            false => pinyin::tone_numbers(term),
        };
        for spelling in spellings.iter().chain(&tones) {
            let spelling = self.fold(spelling);
            let o = self.owner(i, Role::Pinyin, &spelling, &spelling, false);
            push(spelling.clone(), Some(spelling), None, o);
        }
        if rule.pinyin == Pinyin::Initials {
            if let Some(initials) = pinyin::initials(term) {
                let initials = self.fold(&initials);
                // Initials match only as a standalone ASCII word, whatever the boundary.
                let o = self.owner(i, Role::Pinyin, &initials, &initials, true);
                push(initials.clone(), Some(initials), None, o);
            }
        }
        out
    }
}

/// Adds a rule's terms (and their pinyin forms) and allow phrases to its profile's group.
fn add_rule_literals(g: &mut GroupBuilder, r: u32, rule: &Rule, profile: Profile) {
    add_rule_literals_from(g, r, rule, profile, PARALLEL_TERMS, PARALLEL_BLOCK);
}

/// [`add_rule_literals`], on several threads when the rule has at least `parallel_terms`
/// terms, `block_terms` of them at a time (the same patterns in the same order either way).
fn add_rule_literals_from(
    g: &mut GroupBuilder,
    r: u32,
    rule: &Rule,
    profile: Profile,
    parallel_terms: usize,
    block_terms: usize,
) {
    let owners = Owners {
        rule_index: r,
        rule,
        table: table_for(profile),
        plain: table_for(profile.without(&CHANGING)),
        profile,
    };
    let terms: Vec<usize> = (0..rule.terms.len()).collect();
    let parallel = terms.len() >= parallel_terms;
    // A block at a time, so that a huge list's patterns are not all held twice at once.
    for block in terms.chunks(block_terms) {
        let pending = match parallel {
            true => normalize::in_parallel(block, |&i| owners.term_patterns(i)),
            false => block.iter().map(|&i| owners.term_patterns(i)).collect(),
        };
        for (&i, patterns) in block.iter().zip(pending) {
            let term = &rule.terms[i];
            for p in patterns {
                let written = p.written.as_deref().unwrap_or(term);
                match p.form {
                    Some(form) => g.add_form(p.pattern, written, &form, p.owner),
                    None => g.add(p.pattern, written, p.owner),
                }
            }
        }
    }
    for (i, phrase) in rule.allow.iter().enumerate() {
        let folded = owners.fold(phrase);
        let o = owners.owner(i, Role::Allow, phrase, &folded, false);
        g.add(folded, phrase, o);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every offset the plain walk (one byte at a time through [`skip_at`]) finds a site at.
    fn sites_one_by_one(text: &str, pairs: Option<&HanPairs>, tones: bool) -> Vec<usize> {
        (0..text.len())
            .filter(|&i| text.as_bytes()[i].is_ascii_alphanumeric())
            .filter(|&i| skip_at(text, i, pairs, tones).is_some())
            .collect()
    }

    /// The sites the word-at-a-time walk offers and [`skip_at`] confirms.
    fn sites_by_words(text: &str, pairs: Option<&HanPairs>, tones: bool) -> Vec<usize> {
        let mut out = Vec::new();
        for_each_maybe_site(text.as_bytes(), pairs.is_some(), tones, |i| {
            if skip_at(text, i, pairs, tones).is_some() {
                out.push(i);
            }
        });
        out
    }

    /// Every hit and allow-phrase span `m` finds in `text`, sorted.
    fn found(m: &Matcher, text: &str) -> (Vec<Candidate>, Vec<AllowSpan>) {
        let (mut hits, mut allows) = (Vec::new(), Vec::new());
        m.find(text, &mut Folded::default(), &mut hits, &mut allows, None);
        hits.sort_by_key(|h| (h.start, h.end, h.rule, h.source));
        allows.sort_by_key(|a| (a.start, a.end, a.rule));
        (hits, allows)
    }

    /// A long term list's patterns are computed on several threads, a block of terms at a
    /// time: the group gets the same patterns, owners and spellings, in the same order, as
    /// computed on one thread all at once.
    #[test]
    fn patterns_computed_in_parallel_are_those_computed_in_order() {
        let mut terms: Vec<String> = [
            "赌博",
            "六合彩",
            "网络赌场",
            "枪支",
            "K粉",
            "ketamine",
            "冰毒",
        ]
        .iter()
        .map(|t| t.to_string())
        .collect();
        let han: Vec<char> = "赌博彩票网络枪支出售冰毒麻古代开发票办证刷单返利"
            .chars()
            .collect();
        for i in 0..600 {
            terms.push(format!(
                "{}{}{}",
                han[i % han.len()],
                han[(i / 3) % han.len()],
                i
            ));
        }
        let text = format!(
            "[[rule]]\nid = \"t\"\ncategory = 7\nseverity = \"high\"\npinyin = \"initials\"\n\
             normalize = [\"invisible\", \"width\", \"case\", \"variants\", \"t2s\", \"repeat\", \"homophone\", \"near_form\", \"split\"]\n\
             terms = {}\nallow = [\"赌博危害\"]\n",
            serde_json::to_string(&terms).unwrap()
        );
        let rules = crate::RuleSet::from_toml_str(&text).unwrap();
        let rule = &rules.rules()[0];
        let profile = Profile::from_steps(&rule.normalize);
        let (mut serial, mut parallel) = (GroupBuilder::default(), GroupBuilder::default());
        add_rule_literals_from(&mut serial, 0, rule, profile, usize::MAX, usize::MAX);
        add_rule_literals_from(&mut parallel, 0, rule, profile, 2, 100);
        let (serial_patterns, parallel_patterns) = (
            in_order(serial.index.clone()),
            in_order(parallel.index.clone()),
        );
        assert!(
            serial_patterns.len() > terms.len() * 2,
            "{}",
            serial_patterns.len()
        );
        assert!(serial_patterns.iter().any(|p| p.contains("dubo")));
        assert_eq!(serial_patterns, parallel_patterns);
        assert_eq!(serial.owners, parallel.owners);
        assert_eq!(serial.written, parallel.written);
    }

    /// Threads beyond the first scan with copies of the automata (and of the start filter's
    /// bits): they find exactly what the originals find, on every group (exact, default
    /// steps with a start filter, a skipping look over a lone letter).
    #[test]
    fn copies_find_what_the_originals_find() {
        let mut terms: Vec<String> = ["赌博", "六合彩", "冰毒", "网络赌场", "K粉"]
            .iter()
            .map(|t| t.to_string())
            .collect();
        // Enough two-char terms that the start filter is built and pays.
        terms.extend((0..300u32).map(|i| {
            let a = char::from_u32(0x4e00 + i * 7).unwrap();
            let b = char::from_u32(0x4e01 + i * 13).unwrap();
            format!("{a}{b}")
        }));
        let list = serde_json::to_string(&terms).unwrap();
        let rules = crate::RuleSet::from_toml_str(&format!(
            "[[rule]]\nid = \"exact\"\ncategory = 7\nseverity = \"high\"\nnormalize = []\nterms = {list}\n\
             [[rule]]\nid = \"default\"\ncategory = 7\nseverity = \"high\"\nterms = {list}\n"
        ))
        .unwrap();
        let mut m = Matcher::new(rules.rules()).unwrap();
        assert!(m.literal.len() >= 2);
        assert!(
            matches!(&m.literal[1].ac, Automaton::Chars(_, Some(f)) if f.pays()),
            "the default steps' group scans through its start filter"
        );
        let texts = [
            "今天在网络赌场赌博，买了冰毒和K粉",
            "赌a博 六-合-彩 網絡賭場 冰 毒",
            "一丁七丈三上下不与丐丑专且丕世丗丘丙业丛东丝",
            "",
        ];
        // What the originals find (no copies at all), then the same with three copies.
        m.copies = Copies::new(0);
        let want: Vec<_> = texts.iter().map(|t| found(&m, t)).collect();
        assert!(!want[0].0.is_empty() && !want[1].0.is_empty());
        m.copies = Copies::new(3);
        // Threads are numbered as they first scan; each new thread takes the next number,
        // so a few of them reach a slot with a copy.
        let mut threads = 0;
        while m.copies.made() < 2 && threads < 64 {
            std::thread::scope(|s| {
                s.spawn(|| {
                    for (t, w) in texts.iter().zip(&want) {
                        assert_eq!(found(&m, t), *w, "{t}");
                    }
                });
            });
            threads += 1;
        }
        assert!(m.copies.made() >= 2, "copies made: {}", m.copies.made());
    }

    /// A pattern with several owners (the same term in three rules, a term that is another
    /// rule's allow phrase) reports each of them, with either automaton: daachorse's, and
    /// aho-corasick's that groups beyond `LARGE_GROUP` patterns get.
    #[test]
    fn every_owner_of_a_pattern_is_found_by_either_automaton() {
        let rules = crate::RuleSet::from_toml_str(
            r#"
[[rule]]
id = "a"
category = 7
severity = "high"
terms = ["赌博"]
[[rule]]
id = "b"
category = 7
severity = "high"
terms = ["六合彩", "赌博"]
[[rule]]
id = "c"
category = 7
severity = "low"
terms = ["网站"]
allow = ["赌博网站"]
[[rule]]
id = "d"
category = 7
severity = "high"
terms = ["赌博网站", "赌博"]
"#,
        )
        .unwrap();
        let chars = Matcher::with_large_group(rules.rules(), usize::MAX).unwrap();
        let bytes = Matcher::with_large_group(rules.rules(), 0).unwrap();
        assert!(matches!(chars.literal[0].ac, Automaton::Chars(..)));
        assert!(matches!(bytes.literal[0].ac, Automaton::Bytes(..)));
        let text = "这个赌博网站还卖六合彩，赌博害人";
        let (hits, allows) = found(&chars, text);
        let at = |s: &str| text.find(s).unwrap();
        let (first, web, last) = (at("赌博"), at("赌博网站"), text.rfind("赌博").unwrap());
        let mut got: Vec<_> = hits
            .iter()
            .map(|h| (h.start, h.rule, &text[h.start..h.end]))
            .collect();
        got.sort();
        let mut want = vec![
            (first, 0, "赌博"),
            (first, 1, "赌博"),
            (first, 3, "赌博"),
            (web, 3, "赌博网站"),
            (at("网站"), 2, "网站"),
            (at("六合彩"), 1, "六合彩"),
            (last, 0, "赌博"),
            (last, 1, "赌博"),
            (last, 3, "赌博"),
        ];
        want.sort();
        assert_eq!(got, want);
        assert_eq!(
            allows,
            vec![AllowSpan {
                rule: 2,
                start: web,
                end: web + "赌博网站".len()
            }]
        );
        assert_eq!((hits, allows), found(&bytes, text));
    }

    proptest! {
        /// The eight-bytes-at-a-time walk misses no site the plain walk finds, at any
        /// length and alignment (the text mixes Han, Latin, digits and punctuation).
        #[test]
        fn site_walk_misses_nothing(
            text in proptest::collection::vec(
                prop_oneof![
                    Just("赌"), Just("博"), Just("彩"), Just("一"), Just("a"), Just("Z"),
                    Just("3"), Just("du"), Just("4"), Just("1"), Just(","), Just(" "),
                    Just("😀"), Just("é"),
                ],
                0..40,
            ).prop_map(|parts| parts.concat()),
            lone in any::<bool>(),
            tones in any::<bool>(),
        ) {
            let pairs = HanPairs::build(&["赌博".to_owned(), "博彩".to_owned()]);
            let pairs = lone.then_some(&pairs);
            prop_assert_eq!(
                sites_by_words(&text, pairs, tones),
                sites_one_by_one(&text, pairs, tones)
            );
        }
    }

    #[test]
    fn lone_sites_need_a_pair_of_some_pattern() {
        let pairs = HanPairs::build(&["赌博".to_owned()]);
        assert_eq!(sites_by_words("赌a博", Some(&pairs), false), vec![3]);
        // 在3月: 在月 is in no pattern, so no window is opened there.
        assert!(sites_by_words("在3月", Some(&pairs), false).is_empty());
        // du4bo4: both tone numbers, the last one at the end of the text.
        assert_eq!(sites_by_words("du4bo4", None, true), vec![2, 5]);
    }
}
