//! The compiled automata: every literal term and allow phrase of every rule in one
//! charwise Aho-Corasick automaton (overlapping matches), every regex in one `RegexSet`.
//!
//! The matcher works on folded text only and reports folded offsets; it never folds text
//! itself (that is `normalize`'s job) and knows nothing about posts, fields or policy.

use daachorse::{CharwiseDoubleArrayAhoCorasick, CharwiseDoubleArrayAhoCorasickBuilder, MatchKind};
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use crate::error::{Error, ErrorKind, Result};
use crate::normalize;
use crate::rules::{Boundary, Rule, REGEX_SIZE_LIMIT};

/// What a pattern of the automaton stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// `rules[rule].terms[index]`.
    Term,
    /// `rules[rule].allow[index]`.
    Allow,
}

#[derive(Clone, Copy, Debug)]
struct Owner {
    rule: u32,
    index: u32,
    role: Role,
    /// Check that the hit does not touch an ASCII letter on the left / right.
    guard_left: bool,
    guard_right: bool,
}

/// A raw match in folded offsets, before allow-lists, conditions and policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawHit {
    pub(crate) rule: u32,
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) source: Source,
}

/// Which of the rule's patterns made a hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// `terms[i]`.
    Term(u32),
    /// `regex[i]`.
    Regex(u32),
}

/// An occurrence of an allow phrase of `rule`, in folded offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AllowSpan {
    pub(crate) rule: u32,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// The compiled form of a rule set's patterns. Immutable, `Send + Sync`.
pub(crate) struct Matcher {
    ac: Option<CharwiseDoubleArrayAhoCorasick<u32>>,
    /// For pattern `p`, its owners are `owners[starts[p]..starts[p + 1]]`.
    starts: Vec<u32>,
    owners: Vec<Owner>,
    set: Option<RegexSet>,
    regexes: Vec<(Regex, u32, u32)>,
}

fn is_ascii_letter(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphabetic())
}

impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matcher")
            .field("patterns", &(self.starts.len().saturating_sub(1)))
            .field("regexes", &self.regexes.len())
            .finish()
    }
}

impl Matcher {
    pub(crate) fn new(rules: &[Rule]) -> Result<Matcher> {
        let mut index: std::collections::HashMap<String, usize> = Default::default();
        let mut per_pattern: Vec<Vec<Owner>> = Vec::new();
        let mut patterns: Vec<String> = Vec::new();
        for (r, rule) in rules.iter().enumerate() {
            let guard = rule.boundary != Boundary::None;
            let lists = [(Role::Term, &rule.terms), (Role::Allow, &rule.allow)];
            for (role, list) in lists {
                for (i, term) in list.iter().enumerate() {
                    let folded = normalize::fold_term(term);
                    if folded.is_empty() {
                        continue;
                    }
                    let owner = Owner {
                        rule: r as u32,
                        index: i as u32,
                        role,
                        guard_left: guard && is_ascii_letter(folded.chars().next()),
                        guard_right: guard && is_ascii_letter(folded.chars().next_back()),
                    };
                    let p = *index.entry(folded.clone()).or_insert_with(|| {
                        patterns.push(folded);
                        per_pattern.push(Vec::new());
                        per_pattern.len() - 1
                    });
                    // The same rule listing a term twice must not report it twice.
                    let dup = per_pattern[p]
                        .iter()
                        .any(|o| o.rule == owner.rule && o.role == owner.role);
                    if !dup {
                        per_pattern[p].push(owner);
                    }
                }
            }
        }
        let mut starts = Vec::with_capacity(per_pattern.len() + 1);
        let mut owners = Vec::new();
        for list in per_pattern {
            starts.push(owners.len() as u32);
            owners.extend(list);
        }
        starts.push(owners.len() as u32);
        let ac = if patterns.is_empty() {
            None
        } else {
            let ac = CharwiseDoubleArrayAhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build_with_values(patterns.iter().enumerate().map(|(i, p)| (p, i as u32)))
                .map_err(|e| {
                    Error::new(ErrorKind::Build, format!("building the automaton: {e}"))
                })?;
            Some(ac)
        };

        let mut sources = Vec::new();
        let mut regexes = Vec::new();
        for (r, rule) in rules.iter().enumerate() {
            for (i, re) in rule.regex.iter().enumerate() {
                let compiled = RegexBuilder::new(re)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| Error::new(ErrorKind::InvalidRegex, e.to_string()))?;
                sources.push(re.clone());
                regexes.push((compiled, r as u32, i as u32));
            }
        }
        let set = if sources.is_empty() {
            None
        } else {
            Some(
                RegexSetBuilder::new(&sources)
                    .size_limit(
                        REGEX_SIZE_LIMIT
                            .saturating_mul(sources.len())
                            .max(REGEX_SIZE_LIMIT),
                    )
                    .build()
                    .map_err(|e| Error::new(ErrorKind::InvalidRegex, e.to_string()))?,
            )
        };
        Ok(Matcher {
            ac,
            starts,
            owners,
            set,
            regexes,
        })
    }

    /// Size of the literal automaton in bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.ac.as_ref().map_or(0, |ac| ac.heap_bytes())
            + self.owners.len() * std::mem::size_of::<Owner>()
    }

    /// Appends every term and regex occurrence in `text` to `hits` and every allow-phrase
    /// occurrence to `allows`, all in folded offsets.
    pub(crate) fn find(&self, text: &str, hits: &mut Vec<RawHit>, allows: &mut Vec<AllowSpan>) {
        if let Some(ac) = &self.ac {
            for m in ac.find_overlapping_iter(text) {
                let p = m.value() as usize;
                let (lo, hi) = (self.starts[p] as usize, self.starts[p + 1] as usize);
                for o in &self.owners[lo..hi] {
                    if (o.guard_left && is_ascii_letter(text[..m.start()].chars().next_back()))
                        || (o.guard_right && is_ascii_letter(text[m.end()..].chars().next()))
                    {
                        continue;
                    }
                    match o.role {
                        Role::Term => hits.push(RawHit {
                            rule: o.rule,
                            start: m.start(),
                            end: m.end(),
                            source: Source::Term(o.index),
                        }),
                        Role::Allow => allows.push(AllowSpan {
                            rule: o.rule,
                            start: m.start(),
                            end: m.end(),
                        }),
                    }
                }
            }
        }
        if let Some(set) = &self.set {
            for i in set.matches(text).iter() {
                let (re, rule, index) = &self.regexes[i];
                for m in re.find_iter(text) {
                    if m.is_empty() {
                        continue;
                    }
                    hits.push(RawHit {
                        rule: *rule,
                        start: m.start(),
                        end: m.end(),
                        source: Source::Regex(*index),
                    });
                }
            }
        }
    }
}
