//! The JSON contract: [`Post`] in, [`Decision`] out, with [`Hit`]s inside.
//!
//! These are plain serde types; their field names and shapes are the contract in
//! DESIGN.md ("Posts in, decisions out") and must not change by accident. Decision lines
//! are written without serde, by [`crate::jsonl::push_decision_line`] (a rescan writes one
//! per post); a field added here must be added there too, and its proptest fails until it
//! is.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::vocab::{Action, Field, Measure, Severity};

/// A post id as the forum gave it: a string or an integer, echoed back unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PostId {
    /// An integer id.
    Int(i64),
    /// A string id.
    Str(String),
}

/// Read by type, as `#[serde(untagged)]` would, without buffering every post's id into
/// serde's intermediate form first (an allocation and a second pass per post on the hot
/// path of a rescan).
impl<'de> Deserialize<'de> for PostId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<PostId, D::Error> {
        struct Id;
        impl serde::de::Visitor<'_> for Id {
            type Value = PostId;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a post id (a string or a 64-bit integer)")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<PostId, E> {
                Ok(PostId::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<PostId, E> {
                i64::try_from(v)
                    .map(PostId::Int)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PostId, E> {
                Ok(PostId::Str(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<PostId, E> {
                Ok(PostId::Str(v))
            }
        }
        d.deserialize_any(Id)
    }
}

/// Who posted: account, real-name status and network origin.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Poster {
    /// The forum's account id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Display name (scanned by rules whose `fields` include `name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Profile text (scanned by rules whose `fields` include `bio`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bio: Option<String>,
    /// Whether the account passed real-name verification (后台实名).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// A reference to the real-name record, never the ID number itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_ref: Option<String>,
    /// The IP address the post came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The source port (behind carrier NAT an IP alone does not identify a poster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// When the account was registered (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered: Option<String>,
}

/// One post to moderate. Only `text` is required.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Post {
    /// The forum's post id, echoed in the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<PostId>,
    /// The body of the post.
    pub text: String,
    /// The title, for rules whose `fields` include `title`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The board (sub-forum) the post was made in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board: Option<String>,
    /// When it was posted (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// Who posted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poster: Option<Poster>,
}

impl Post {
    /// A post with only a text.
    pub fn from_text(text: impl Into<String>) -> Post {
        Post {
            text: text.into(),
            ..Post::default()
        }
    }

    /// Parses one post from its JSON form, strictly: any malformed field is an error.
    pub fn from_json(json: &str) -> crate::Result<Post> {
        serde_json::from_str(json)
            .map_err(|e| crate::Error::new(crate::ErrorKind::InvalidPost, e.to_string()))
    }

    /// Parses one post, keeping what can be kept: a metadata field of the wrong type is
    /// dropped with a warning naming it (`poster.port: …`), and the post is still decided on
    /// its text. A line that is not a JSON object, lacks a string `text`, or names a key twice
    /// in one object fails: with `{"text":"出售冰毒","text":"ok"}` a host whose parser keeps
    /// the first value would publish what shenhe never read.
    pub fn from_json_lenient(json: &str) -> crate::Result<(Post, Vec<String>)> {
        let invalid = |m: String| crate::Error::new(crate::ErrorKind::InvalidPost, m);
        // The strict reader refuses a known field given twice; only when it refuses the
        // line for another reason can a duplicate hide, so only then is every object
        // checked for one (the lenient reader below would keep the last value).
        match serde_json::from_str::<Post>(json) {
            Ok(post) => return Ok((post, Vec::new())),
            Err(e) if e.to_string().starts_with("duplicate field") => {
                return Err(invalid(e.to_string()))
            }
            Err(_) => {
                if let Err(d) = serde_json::from_str::<UniqueKeys>(json) {
                    if d.to_string().starts_with("duplicate key") {
                        return Err(invalid(d.to_string()));
                    }
                }
            }
        }
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
        let serde_json::Value::Object(mut map) = value else {
            return Err(invalid("a post must be a JSON object".into()));
        };
        let text = match map.remove("text") {
            Some(serde_json::Value::String(t)) => t,
            Some(other) => {
                return Err(invalid(format!(
                    "`text` must be a string, not {}",
                    kind_of(&other)
                )))
            }
            None => return Err(invalid("missing field `text`".into())),
        };
        let mut warnings = Vec::new();
        // An id that is a number but not a 64-bit integer (12345678901234567890, 1.5) is
        // kept, as its decimal text, so the decision, the record and the report still name
        // the post.
        if let Some(serde_json::Value::Number(n)) = map.get("id") {
            if n.as_i64().is_none() {
                let text = n.to_string();
                warnings.push(format!(
                    "id: the number {text} is not a 64-bit integer; kept as the string \"{text}\""
                ));
                map.insert("id".into(), serde_json::Value::String(text));
            }
        }
        let mut post = Post {
            text,
            id: take(&mut map, "id", "id", &mut warnings),
            title: take(&mut map, "title", "title", &mut warnings),
            board: take(&mut map, "board", "board", &mut warnings),
            time: take(&mut map, "time", "time", &mut warnings),
            poster: None,
        };
        match map.remove("poster") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Object(mut p)) => {
                let w = &mut warnings;
                post.poster = Some(Poster {
                    user_id: take(&mut p, "user_id", "poster.user_id", w),
                    name: take(&mut p, "name", "poster.name", w),
                    bio: take(&mut p, "bio", "poster.bio", w),
                    // Unreadable, it counts as the riskier value: not verified.
                    verified: riskier(
                        &mut p,
                        "verified",
                        "poster.verified",
                        w,
                        false,
                        "treated as not verified",
                    ),
                    identity_ref: take(&mut p, "identity_ref", "poster.identity_ref", w),
                    ip: take(&mut p, "ip", "poster.ip", w),
                    port: take(&mut p, "port", "poster.port", w),
                    // Unreadable, it counts as the riskier value: a new account (a
                    // registration time no condition can read holds `account_age_days_lt`).
                    registered: riskier(
                        &mut p,
                        "registered",
                        "poster.registered",
                        w,
                        "(unreadable)".to_owned(),
                        "treated as a new account",
                    ),
                });
            }
            Some(other) => warnings.push(format!(
                "poster: expected an object, got {}; ignored",
                kind_of(&other)
            )),
        }
        Ok((post, warnings))
    }

    /// Problems with the metadata a typed post can still carry: an `ip` that is not an
    /// address, times that are not RFC 3339. The post is decided all the same.
    pub fn metadata_warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        let bad_time = |t: &Option<String>| {
            t.as_deref()
                .is_some_and(|t| t.parse::<jiff::Timestamp>().is_err())
        };
        if bad_time(&self.time) {
            w.push(format!(
                "time: `{}` is not an RFC 3339 time",
                self.time.as_deref().unwrap_or_default()
            ));
        }
        if let Some(p) = &self.poster {
            if let Some(ip) = p.ip.as_deref() {
                if ip.trim().parse::<std::net::IpAddr>().is_err() {
                    w.push(format!("poster.ip: `{ip}` is not an IP address"));
                }
            }
            if bad_time(&p.registered) {
                w.push(format!(
                    "poster.registered: `{}` is not an RFC 3339 time",
                    p.registered.as_deref().unwrap_or_default()
                ));
            }
        }
        w
    }

    /// The content of a field, when the post has it.
    pub fn field(&self, field: Field) -> Option<&str> {
        match field {
            Field::Text => Some(&self.text),
            Field::Title => self.title.as_deref(),
            // The poster is read through an opaque reference: without it the optimiser
            // loads `name` and `bio` before knowing there is a poster (the bytes of an
            // absent poster are uninitialised), which is harmless, as the values are then
            // discarded, but is reported by valgrind in every host that links the release
            // library (issue 20, item 16).
            Field::Name => std::hint::black_box(self.poster.as_ref())?.name.as_deref(),
            Field::Bio => std::hint::black_box(self.poster.as_ref())?.bio.as_deref(),
        }
    }
}

/// Takes `key` out of `map` as a `T`; a value of the wrong type is dropped with a warning.
/// Any JSON value whose objects name each key once; reading it fails with "duplicate key
/// `K`" otherwise.
struct UniqueKeys;

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<UniqueKeys, D::Error> {
        d.deserialize_any(UniqueKeysVisitor)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!("duplicate key `{key}`")));
            }
            map.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }

    fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
}

fn take<T: serde::de::DeserializeOwned>(
    map: &mut serde_json::Map<String, serde_json::Value>,
    key: &str,
    name: &str,
    warnings: &mut Vec<String>,
) -> Option<T> {
    let value = map.remove(key)?;
    if value.is_null() {
        return None;
    }
    match serde_json::from_value::<T>(value.clone()) {
        Ok(v) => Some(v),
        Err(e) => {
            warnings.push(format!("{name}: {e} (got {}); ignored", kind_of(&value)));
            None
        }
    }
}

/// [`take`] for a field whose unreadable value must not make a post look safer: a value of
/// the wrong type becomes `risky`, with a warning saying so.
fn riskier<T: serde::de::DeserializeOwned>(
    map: &mut serde_json::Map<String, serde_json::Value>,
    key: &str,
    name: &str,
    warnings: &mut Vec<String>,
    risky: T,
    meaning: &str,
) -> Option<T> {
    let value = map.get(key).filter(|v| !v.is_null()).cloned();
    let given = take(map, key, name, warnings);
    match (given, value) {
        (Some(v), _) => Some(v),
        (None, Some(_)) => {
            if let Some(w) = warnings.last_mut() {
                *w = w.replace("; ignored", &format!("; {meaning}"));
            }
            Some(risky)
        }
        (None, None) => None,
    }
}

fn kind_of(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

/// One match of one rule at one place in one field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hit {
    /// The rule's id (shared with the engine: cloning a hit does not copy it).
    pub rule: Arc<str>,
    /// The rule's category.
    pub category: u16,
    /// The rule's severity.
    pub severity: Severity,
    /// The field the hit is in.
    pub field: Field,
    /// Byte offset of the start in the original field.
    pub start: usize,
    /// Byte offset of the end (exclusive) in the original field.
    pub end: usize,
    /// Char (Unicode scalar) offset of the start.
    pub char_start: usize,
    /// Char offset of the end (exclusive).
    pub char_end: usize,
    /// The original text of the span: `field[start..end]`.
    pub matched: String,
    /// The rule's term (or regex) that matched, as written in the rule.
    pub term: Arc<str>,
    /// The normalisation steps that were needed for the match (empty for an exact match).
    pub steps: Vec<String>,
}

/// The name, version and hash of the rule set that made a decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesetInfo {
    /// `[ruleset] name`, or the path it was loaded from.
    pub name: String,
    /// `[ruleset] version`, or empty.
    pub version: String,
    /// SHA-256 (hex) of the canonical loaded form.
    pub hash: String,
}

/// What must happen to a post, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The post's id, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<PostId>,
    /// The 1-based input line (set by `shenhe scan`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The action: the strongest among the hits (allow when there are none).
    pub action: Action,
    /// Whether the post must be reported to the authorities.
    pub report: bool,
    /// Categories of the hits, ascending, each once.
    pub categories: Vec<u16>,
    /// The highest severity among the hits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// Every hit, in field order then by position.
    pub hits: Vec<Hit>,
    /// The text with every masked hit replaced by `＊` (present when there are hits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masked: Option<String>,
    /// Masked title, name and bio, for those fields that had hits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masked_fields: Vec<MaskedField>,
    /// Account measures added by escalation (see [`crate::OffenceLedger`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measures: Vec<Measure>,
    /// More hits than the engine's limit: the rest were dropped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// Problems with metadata fields; the post is still decided.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The review queue's id for a post held for review, when a queue took it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_id: Option<i64>,
    /// The rule set that decided.
    pub ruleset: Arc<RulesetInfo>,
}

/// A masked field other than the text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskedField {
    /// Which field.
    pub field: Field,
    /// Its masked content.
    pub masked: String,
}

impl Decision {
    /// Puts `warnings` (about the post as read) before the decision's own.
    pub(crate) fn prepend_warnings(&mut self, mut warnings: Vec<String>) {
        if !warnings.is_empty() {
            warnings.append(&mut self.warnings);
            self.warnings = warnings;
        }
    }

    /// True when the action is anything but `allow`.
    pub fn is_flagged(&self) -> bool {
        self.action > Action::Allow
    }

    /// The byte spans of the hits in `field`, sorted, overlapping ones merged.
    pub fn spans(&self, field: Field) -> Vec<(usize, usize)> {
        merge_spans(
            self.hits
                .iter()
                .filter(|h| h.field == field)
                .map(|h| (h.start, h.end)),
        )
    }
}

/// Sorts spans and merges those that overlap or touch.
pub(crate) fn merge_spans(spans: impl Iterator<Item = (usize, usize)>) -> Vec<(usize, usize)> {
    let mut spans: Vec<(usize, usize)> = spans.collect();
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for (s, e) in spans {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_ids_round_trip_as_given() {
        let p = Post::from_json(r#"{"id":42,"text":"x"}"#).unwrap();
        assert_eq!(p.id, Some(PostId::Int(42)));
        let p = Post::from_json(r#"{"id":"p1","text":"x","extra":1}"#).unwrap();
        assert_eq!(serde_json::to_string(&p.id).unwrap(), "\"p1\"");
        // Escaped strings, negative and extreme integers, as the untagged enum read them.
        let p = Post::from_json(r#"{"id":"p\"1\u4e00","text":"x"}"#).unwrap();
        assert_eq!(p.id, Some(PostId::Str("p\"1一".into())));
        for n in [i64::MIN, -1, 0, i64::MAX] {
            let p = Post::from_json(&format!(r#"{{"id":{n},"text":"x"}}"#)).unwrap();
            assert_eq!(p.id, Some(PostId::Int(n)));
        }
    }

    #[test]
    fn an_id_of_another_type_is_dropped_with_a_warning_that_says_what_an_id_is() {
        for (json, got) in [
            (r#"{"id":true,"text":"x"}"#, "boolean"),
            (r#"{"id":[1],"text":"x"}"#, "sequence"),
            (r#"{"id":{"n":1},"text":"x"}"#, "map"),
        ] {
            assert!(Post::from_json(json).is_err(), "{json}");
            let (p, w) = Post::from_json_lenient(json).unwrap();
            assert_eq!(p.id, None, "{json}");
            assert_eq!(w.len(), 1, "{w:?}");
            assert!(w[0].starts_with("id: invalid type"), "{w:?}");
            assert!(w[0].contains("a string or a 64-bit integer"), "{w:?}");
            assert!(w[0].contains(got), "{w:?}");
        }
        // Too large for 64 bits: kept as its decimal text (the lenient reader's rule).
        let (p, w) = Post::from_json_lenient(r#"{"id":18446744073709551615,"text":"x"}"#).unwrap();
        assert_eq!(p.id, Some(PostId::Str("18446744073709551615".into())));
        assert_eq!(w.len(), 1, "{w:?}");
    }

    #[test]
    fn lenient_parse_drops_bad_fields_with_warnings_naming_them() {
        let (p, w) = Post::from_json_lenient(
            r#"{"id":"p1","text":"t","time":5,"poster":{"user_id":"u","port":"abc","verified":"yes","ip":"1.2.3.4"}}"#,
        )
        .unwrap();
        assert_eq!(p.text, "t");
        assert_eq!(p.time, None);
        let poster = p.poster.unwrap();
        // A port that cannot be read is dropped; a verification status that cannot be read
        // counts as the riskier value.
        assert_eq!(
            (poster.user_id.as_deref(), poster.port, poster.verified),
            (Some("u"), None, Some(false))
        );
        assert_eq!(poster.ip.as_deref(), Some("1.2.3.4"));
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].starts_with("time: invalid type: integer `5`"), "{w:?}");
        assert!(w.iter().any(|x| x.starts_with("poster.port: ")), "{w:?}");
        assert!(
            w.iter().any(|x| x.starts_with("poster.verified: ")),
            "{w:?}"
        );
        assert!(Post::from_json_lenient(r#"{"text":5}"#).is_err());
        assert!(Post::from_json_lenient(r#"[1]"#).is_err());
    }

    #[test]
    fn metadata_warnings_name_the_field() {
        let p = Post::from_json(r#"{"text":"t","time":"yesterday","poster":{"ip":"999.1.1.1","registered":"2025-01-01T00:00:00+08:00"}}"#).unwrap();
        assert_eq!(
            p.metadata_warnings(),
            vec![
                "time: `yesterday` is not an RFC 3339 time",
                "poster.ip: `999.1.1.1` is not an IP address"
            ]
        );
    }

    #[test]
    fn a_key_given_twice_is_refused_wherever_it_hides() {
        for json in [
            r#"{"text":"出售冰毒","text":"ok"}"#,
            r#"{"text":"ok","poster":{"ip":"203.0.113.1","ip":"198.51.100.1"}}"#,
            // Another field of the wrong type sends the line to the lenient reader.
            r#"{"poster":{"port":"x"},"text":"出售冰毒","text":"ok"}"#,
            r#"{"text":"ok","extra":{"a":1,"a":2},"title":[1,{"b":1,"b":2}]}"#,
        ] {
            let e = Post::from_json_lenient(json).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidPost, "{json}");
            assert!(e.message().starts_with("duplicate"), "{json}: {e}");
        }
        // Each key once, in different objects: fine.
        let (p, w) = Post::from_json_lenient(
            r#"{"text":"a","poster":{"name":"n","port":"x"},"extra":{"name":"n"}}"#,
        )
        .unwrap();
        assert_eq!((p.text.as_str(), w.len()), ("a", 1));
    }

    #[test]
    fn text_is_required() {
        let e = Post::from_json(r#"{"id":"p1"}"#).unwrap_err();
        assert!(e.to_string().contains("text"), "{e}");
    }

    #[test]
    fn fields_come_from_post_and_poster() {
        let p = Post::from_json(
            r#"{"text":"t","title":"ti","poster":{"name":"n","verified":false,"port":51234}}"#,
        )
        .unwrap();
        assert_eq!(p.field(Field::Title), Some("ti"));
        assert_eq!(p.field(Field::Name), Some("n"));
        assert_eq!(p.field(Field::Bio), None);
        assert_eq!(p.poster.unwrap().port, Some(51234));
    }
}
