//! `shenhe import`: a rule file from a plain word list (one term a line), the form most
//! existing Chinese lexicons come in, often in GBK.

use std::fmt::Write as _;

use crate::error::{Error, ErrorKind, Result};
use crate::normalize::{fold_str, Profile};
use crate::vocab::{Severity, Step};

/// What `import_word_list` made of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    /// The rule file (TOML).
    pub toml: String,
    /// The encoding the list was read in: `UTF-8` or `GBK` (converted).
    pub encoding: &'static str,
    /// Terms kept.
    pub terms: usize,
    /// (line, term, earlier line) of terms dropped as duplicates: the same term, or one that
    /// normalises to the same form as an earlier one.
    pub duplicates: Vec<(usize, String, usize)>,
    /// (line, term) of terms dropped because they normalise to nothing: no letter, digit
    /// or Han character is left (only spaces, punctuation, symbols or invisible characters).
    pub empty: Vec<(usize, String)>,
}

/// Reads `bytes` as a word list (UTF-8 with or without BOM, or GBK; `#` comment lines and
/// blank lines skipped) and writes one rule of `category` with id `id` holding its terms.
/// Text that is neither valid UTF-8 nor cleanly GBK is refused, naming the line.
pub fn import_word_list(
    bytes: &[u8],
    name: &str,
    category: u16,
    id: &str,
    severity: Severity,
) -> Result<Imported> {
    if !(1..=9).contains(&category) && category < crate::category::FIRST_CUSTOM {
        return Err(Error::new(
            ErrorKind::InvalidValue,
            format!(
                "category {category}: use 1–9 (Article 15) or a custom number from {}",
                crate::category::FIRST_CUSTOM
            ),
        ));
    }
    if id.trim().is_empty() || id.contains(['"', '\n', '\\']) {
        return Err(Error::new(
            ErrorKind::InvalidValue,
            format!("id `{id}`: give a plain, non-empty rule id"),
        ));
    }
    let (text, encoding) = decode(bytes, name)?;
    let profile = Profile::from_steps(&Step::DEFAULT);
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let (mut terms, mut duplicates, mut empty) = (Vec::new(), Vec::new(), Vec::new());
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let key = fold_str(profile, t);
        // Nothing left that a term is made of: no letter, digit or Han character.
        if !key.chars().any(char::is_alphanumeric) {
            empty.push((n + 1, t.to_owned()));
            continue;
        }
        if let Some(&first) = seen.get(&key) {
            duplicates.push((n + 1, t.to_owned(), first));
            continue;
        }
        seen.insert(key, n + 1);
        terms.push(t.to_owned());
    }
    if terms.is_empty() {
        return Err(Error::new(
            ErrorKind::EmptyTerm,
            format!("{name}: no terms (one term a line; # starts a comment)"),
        ));
    }
    let mut toml = String::new();
    let _ = writeln!(
        toml,
        "# Imported from {name} ({encoding}) by `shenhe import`: {} terms.\n# Check it with `shenhe lint`, try it with `shenhe diff`, and add examples.no_match.\n",
        terms.len()
    );
    if category >= crate::category::FIRST_CUSTOM {
        let _ = writeln!(toml, "[categories]\n{category} = {{ title = \"{id}\" }}\n");
    }
    let q = |s: &str| serde_json::to_string(s).expect("JSON string");
    let _ = writeln!(
        toml,
        "[[rule]]\nid = {}\ncategory = {category}\nseverity = \"{}\"\nterms = [",
        q(id),
        severity.as_str()
    );
    for t in &terms {
        let _ = writeln!(toml, "  {},", q(t));
    }
    let _ = writeln!(toml, "]\nexamples.match = [{}]", q(&terms[0]));
    Ok(Imported {
        toml,
        encoding,
        terms: terms.len(),
        duplicates,
        empty,
    })
}

/// UTF-8 (BOM stripped) when valid; else GBK (as GB18030, its superset) when it decodes
/// cleanly into ordinary characters; else an error naming the line.
fn decode(bytes: &[u8], name: &str) -> Result<(String, &'static str)> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(Error::new(
            ErrorKind::Syntax,
            format!("{name}: UTF-16 (byte-order mark found); convert it to UTF-8"),
        ));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Ok((s.to_owned(), "UTF-8"));
    }
    let (text, _, errors) = encoding_rs::GB18030.decode(bytes);
    let line_of = |pred: &dyn Fn(&str) -> bool| text.lines().position(pred).map_or(1, |n| n + 1);
    if errors {
        let n = line_of(&|l: &str| l.contains('\u{fffd}'));
        return Err(Error::new(
            ErrorKind::Syntax,
            format!("{name}: line {n}: neither UTF-8 nor GBK; convert the file to UTF-8 (e.g. iconv -f BIG5 -t UTF-8)"),
        ));
    }
    // Clean GBK decodes to CJK, ASCII and common punctuation; private-use or control
    // characters mean the bytes were something else that happens to decode.
    let odd = |c: char| {
        matches!(c as u32, 0xE000..=0xF8FF | 0x80..=0x9F) || (c.is_control() && !c.is_whitespace())
    };
    if text.chars().any(odd) {
        let n = line_of(&|l: &str| l.chars().any(odd));
        return Err(Error::new(
            ErrorKind::Syntax,
            format!("{name}: line {n}: not UTF-8, and reading it as GBK gives private-use or control characters: the conversion is ambiguous; convert the file to UTF-8 yourself"),
        ));
    }
    Ok((text.into_owned(), "GBK"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gbk_lists_are_converted_and_duplicates_reported() {
        let (gbk, _, _) = encoding_rs::GBK.encode("赌博\n賭博\n# 注释\n网络赌场\n***\n网络赌场\n");
        let i = import_word_list(&gbk, "list.txt", 7, "gambling.imported", Severity::High).unwrap();
        assert_eq!(i.encoding, "GBK");
        assert_eq!(i.terms, 2);
        assert_eq!(
            i.duplicates,
            vec![(2, "賭博".to_owned(), 1), (6, "网络赌场".to_owned(), 4)]
        );
        assert_eq!(i.empty, vec![(5, "***".to_owned())]);
        let rules = crate::RuleSet::from_toml_str(&i.toml).unwrap();
        assert_eq!(rules.rules()[0].terms, vec!["赌博", "网络赌场"]);
    }

    #[test]
    fn undecodable_lists_are_refused_with_the_line() {
        let e =
            import_word_list(b"ok\n\x80\xff\xfe\n", "x.txt", 7, "x", Severity::Low).unwrap_err();
        assert!(e.to_string().contains("x.txt: line 2"), "{e}");
        let e = import_word_list(b"\xff\xfea\x00", "u.txt", 7, "x", Severity::Low).unwrap_err();
        assert!(e.to_string().contains("UTF-16"), "{e}");
        let e = import_word_list("词".as_bytes(), "c.txt", 42, "x", Severity::Low).unwrap_err();
        assert!(e.to_string().contains("category 42"), "{e}");
    }
}
