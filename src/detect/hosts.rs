//! Links, e-mail addresses and IPv4 addresses: dotted names, with their dots and at-signs
//! read also when spelled out.

use super::{Find, Text, Wanted};
use crate::vocab::Detector;

/// A char of a host label (folded, lower case).
fn is_label_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

/// A char of an e-mail address's local part.
fn is_local_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '%' | '+' | '-')
}

/// A char that may follow a host in a link's port, path, query or fragment.
fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "/_-.?=&%#~+:@!$,;*'()".contains(c)
}

/// Opening and closing brackets around a spelled-out dot or at-sign: (.) [.] {.} <.> 【.】.
fn closing(c: char) -> Option<char> {
    match c {
        '(' => Some(')'),
        '[' => Some(']'),
        '{' => Some('}'),
        '<' => Some('>'),
        '【' => Some('】'),
        '「' => Some('」'),
        _ => None,
    }
}

/// Up to two spaces from char `i` (with `noise`): where the next token starts.
fn spaces(text: &Text, i: usize, noise: bool) -> usize {
    let mut j = i;
    while noise && j < i + 2 && text.c(j) == ' ' {
        j += 1;
    }
    j
}

/// A dot at char `i`: the index after it and whether it was spelled out. Spelled-out dots
/// (with `noise`): 。 点 and "dot" or a dot in brackets; "dot" alone needs a space or a
/// bracket on each side.
fn dot_at(text: &Text, i: usize, noise: bool) -> Option<(usize, bool)> {
    let c = text.c(i);
    if c == '.' {
        return Some((i + 1, false));
    }
    if !noise {
        return None;
    }
    if matches!(c, '。' | '点' | '｡') {
        return Some((i + 1, true));
    }
    if text.starts_with(i, "dot") && text.before(i) == ' ' && text.c(i + 3) == ' ' {
        return Some((i + 3, true));
    }
    let close = closing(c)?;
    let j = spaces(text, i + 1, true);
    let k = match text.c(j) {
        '.' | '点' | '。' => j + 1,
        'd' if text.starts_with(j, "dot") => j + 3,
        _ => return None,
    };
    let k = spaces(text, k, true);
    (text.c(k) == close).then_some((k + 1, true))
}

/// An at-sign at char `i`: the index after it and how it was written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum At {
    Sign,
    /// `#`, `艾特`, `(at)` and the like: with `noise`.
    SpelledOut,
    /// "at" between spaces: an English word too, so it needs more evidence.
    Word,
}

fn at_at(text: &Text, i: usize, noise: bool) -> Option<(usize, At)> {
    let c = text.c(i);
    if c == '@' {
        return Some((i + 1, At::Sign));
    }
    if !noise {
        return None;
    }
    if c == '#' {
        return Some((i + 1, At::SpelledOut));
    }
    if text.starts_with(i, "艾特") {
        return Some((i + 2, At::SpelledOut));
    }
    if text.starts_with(i, "at") && text.before(i) == ' ' && text.c(i + 2) == ' ' {
        return Some((i + 2, At::Word));
    }
    let close = closing(c)?;
    let j = spaces(text, i + 1, true);
    let k = match text.c(j) {
        '@' => j + 1,
        'a' if text.starts_with(j, "at") => j + 2,
        _ => return None,
    };
    let k = spaces(text, k, true);
    (text.c(k) == close).then_some((k + 1, At::SpelledOut))
}

/// A dotted name from char `i` (a label starts there): its labels, the index after it, and
/// whether a dot was spelled out.
struct Host {
    labels: Vec<(usize, usize)>,
    end: usize,
    spelled: bool,
}

impl Host {
    fn name(&self, text: &Text) -> String {
        let parts: Vec<&str> = self
            .labels
            .iter()
            .map(|&(s, e)| &text.lower[text.at(s)..text.at(e)])
            .collect();
        parts.join(".")
    }
}

fn host_at(text: &Text, i: usize, noise: bool) -> Option<Host> {
    let label = |s: usize| {
        let mut e = s;
        while is_label_char(text.c(e)) {
            e += 1;
        }
        (e > s).then_some((s, e))
    };
    let mut labels = vec![label(i)?];
    let mut spelled = false;
    loop {
        let last = labels[labels.len() - 1].1;
        let j = spaces(text, last, noise);
        let Some((k, obfuscated)) = dot_at(text, j, noise) else {
            break;
        };
        let after = spaces(text, k, noise);
        // Spaces around a plain dot end a sentence (there. My), they do not make a name.
        if !obfuscated && (j != last || after != k) {
            break;
        }
        let Some(next) = label(after) else {
            break;
        };
        spelled |= obfuscated;
        labels.push(next);
    }
    let end = labels[labels.len() - 1].1;
    (labels.len() >= 2).then_some(Host {
        labels,
        end,
        spelled,
    })
}

/// Whether `host` is a name under a public suffix (the Public Suffix List), with labels of
/// 1–63 chars that neither start nor end with a dash. With `www_ok`, a name that starts with
/// www. and ends in letters is taken whatever its suffix (www.big-image.png): www is as
/// plain a sign of a link as a scheme.
fn valid_host(name: &str, www_ok: bool) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    if labels
        .iter()
        .any(|l| l.is_empty() || l.len() > 63 || l.starts_with('-') || l.ends_with('-'))
    {
        return false;
    }
    let tld = labels[labels.len() - 1];
    if !(tld.bytes().all(|b| b.is_ascii_lowercase()) || tld.starts_with("xn--")) {
        return false;
    }
    if let Some(domain) = psl::domain(name.as_bytes()) {
        if domain.suffix().is_known() {
            return true;
        }
    }
    www_ok && labels.len() >= 3 && labels[0] == "www" && (2..=6).contains(&tld.len())
}

pub(super) fn find(text: &Text, w: &Wanted, out: &mut Vec<Find>) {
    let first = out.len();
    if w.has(Detector::Email) {
        emails(text, w.noise, out);
    }
    if w.has(Detector::Url) {
        let emails: Vec<(usize, usize)> = out[first..]
            .iter()
            .filter(|f| f.detector == Detector::Email)
            .map(|f| (f.start, f.end))
            .collect();
        links(text, w.noise, &emails, out);
    }
    if w.has(Detector::Ipv4) {
        ipv4(text, w.noise, out);
    }
}

fn emails(text: &Text, noise: bool, out: &mut Vec<Find>) {
    for i in 0..text.len() {
        let Some((after, how)) = at_at(text, i, noise) else {
            continue;
        };
        // The local part, right before the at-sign (or one space before a spelled one).
        let mut end = i;
        if how != At::Sign && text.before(end) == ' ' {
            end -= 1;
        }
        let mut start = end;
        while start > 0 && is_local_char(text.before(start)) {
            start -= 1;
        }
        while start < end && text.c(start) == '.' {
            start += 1;
        }
        let local = &text.lower[text.at(start)..text.at(end)];
        if local.is_empty() || local.len() > 64 || local.ends_with('.') {
            continue;
        }
        if how == At::SpelledOut && local.len() < 2 {
            continue;
        }
        let Some(host) = host_at(text, spaces(text, after, noise), noise) else {
            continue;
        };
        if !valid_host(&host.name(text), false) {
            continue;
        }
        if how == At::Word
            && !(host.spelled || local.bytes().any(|b| b.is_ascii_digit() || b == b'_'))
        {
            continue;
        }
        out.push(Find {
            detector: Detector::Email,
            start: text.at(start),
            end: text.at(host.end),
            digits: 0,
            noise: how != At::Sign || host.spelled,
            shadowed_by: 0,
        });
    }
}

fn links(text: &Text, noise: bool, emails: &[(usize, usize)], out: &mut Vec<Find>) {
    let mut i = 0;
    while i < text.len() {
        if !is_label_char(text.c(i)) || is_label_char(text.before(i)) {
            i += 1;
            continue;
        }
        let Some(host) = host_at(text, i, noise) else {
            i += 1;
            continue;
        };
        // The scheme before the host, if any.
        let mut start = i;
        let mut scheme = false;
        for s in ["https://", "http://"] {
            let n = s.chars().count();
            if i >= n && text.window_before(i, n) == s {
                start = i - n;
                scheme = true;
            }
        }
        let name = host.name(text);
        let before = text.before(start);
        let inside_dotted = before == '.' || before == '_' || before == '/';
        if inside_dotted
            || !valid_host(&name, true)
            || (!scheme && before == '@')
            || (!scheme && !bare_host_is_a_link(&host, text))
        {
            i = host.end;
            continue;
        }
        // Port, path, query: ASCII up to a space or a non-ASCII char, trailing punctuation
        // left out.
        let mut end = host.end;
        if matches!(text.c(end), '/' | ':' | '?') {
            while is_path_char(text.c(end)) {
                end += 1;
            }
            while end > host.end
                && matches!(
                    text.c(end - 1),
                    '.' | ',' | ')' | ';' | ':' | '!' | '?' | '\''
                )
            {
                end -= 1;
            }
        }
        let (s, e) = (text.at(start), text.at(end));
        if !emails.iter().any(|&(a, b)| a < e && s < b) {
            out.push(Find {
                detector: Detector::Url,
                start: s,
                end: e,
                digits: 0,
                noise: host.spelled,
                shadowed_by: 0,
            });
        }
        i = end.max(i + 1);
    }
}

/// Domain suffixes that are far more often a file's (readme.md, setup.py, build.sh, main.rs,
/// photos.zip): a bare name of two labels under one is a file name, not a link.
const FILE_SUFFIXES: [&str; 10] = ["md", "py", "sh", "rs", "pl", "ps", "so", "mk", "zip", "mov"];

/// Whether a name without scheme or www reads as a link rather than as words run together:
/// two labels under a two-letter suffix amid English words are too often a sentence's end
/// and the next word (It was suitable.In the end), a first label of one or two digits
/// is a list item (1.SONY, 2.windows), and two labels under a [`FILE_SUFFIXES`] suffix are
/// a file name.
fn bare_host_is_a_link(host: &Host, text: &Text) -> bool {
    let label = |(s, e): (usize, usize)| &text.lower[text.at(s)..text.at(e)];
    let first = label(host.labels[0]);
    if first == "www" {
        return true;
    }
    if first.len() <= 2 && first.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let last = label(host.labels[host.labels.len() - 1]);
    if host.labels.len() == 2 && FILE_SUFFIXES.contains(&last) {
        return false;
    }
    if host.labels.len() >= 3 || last.len() >= 3 {
        return true;
    }
    // Two labels under a country code (example.cn): a link unless English words stand
    // around it.
    let start = host.labels[0].0;
    let english_before = text.before(start) == ' ' && text.before(start - 1).is_ascii_alphabetic();
    let english_after = text.c(host.end) == ' ' && text.c(host.end + 1).is_ascii_alphabetic();
    !(english_before || english_after)
}

/// Words before an address that make a short one (8.8.8.8) an address and not a section
/// number.
const IP_CUES: [&str; 6] = ["ip", "地址", "服务器", "访问", "dns", "://"];

/// Whether an [`IP_CUES`] word stands before char `i` in the same clause.
fn ip_cue_before(text: &Text, i: usize) -> bool {
    let window = text.window_before(i, 12);
    let clause = window
        .rfind(crate::normalize::is_break)
        .map_or(window, |b| &window[b..]);
    IP_CUES.iter().any(|c| clause.contains(c))
}

fn ipv4(text: &Text, noise: bool, out: &mut Vec<Find>) {
    let mut i = 0;
    while i < text.len() {
        let c = text.c(i);
        let prev = text.before(i);
        if !c.is_ascii_digit() || prev.is_ascii_alphanumeric() || prev == '.' {
            i += 1;
            continue;
        }
        let mut octets = Vec::with_capacity(4);
        let mut j = i;
        let mut spelled = false;
        let mut digits = 0;
        loop {
            let s = j;
            while text.c(j).is_ascii_digit() && j - s < 4 {
                j += 1;
            }
            let part = &text.lower[text.at(s)..text.at(j)];
            if part.is_empty() || part.len() > 3 || (part.len() > 1 && part.starts_with('0')) {
                break;
            }
            digits += part.len();
            octets.push(part.parse::<u16>().unwrap_or(999));
            if octets.len() == 4 {
                break;
            }
            match dot_at(text, j, noise) {
                Some((k, obfuscated)) if text.c(k).is_ascii_digit() => {
                    spelled |= obfuscated;
                    j = k;
                }
                _ => break,
            }
        }
        let tail_dotted = dot_at(text, j, noise).is_some_and(|(k, _)| text.c(k).is_ascii_digit());
        let ok = octets.len() == 4
            && octets.iter().all(|&o| o <= 255)
            && !text.c(j).is_ascii_alphanumeric()
            && !tail_dotted
            && (digits >= 6 || ip_cue_before(text, i));
        if ok {
            out.push(Find {
                detector: Detector::Ipv4,
                start: text.at(i),
                end: text.at(j),
                digits: 0,
                noise: spelled,
                shadowed_by: 0,
            });
            i = j;
        } else {
            i += 1;
        }
    }
}
