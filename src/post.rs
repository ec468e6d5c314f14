//! The JSON contract: [`Post`] in, [`Decision`] out, with [`Hit`]s inside.
//!
//! These are plain serde types; their field names and shapes are the contract in
//! DESIGN.md ("Posts in, decisions out") and must not change by accident.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::rules::{Action, Severity};

/// A post id as the forum gave it: a string or an integer, echoed back unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PostId {
    /// An integer id.
    Int(i64),
    /// A string id.
    Str(String),
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

    /// Parses one post from its JSON form.
    pub fn from_json(json: &str) -> crate::Result<Post> {
        serde_json::from_str(json)
            .map_err(|e| crate::Error::new(crate::ErrorKind::InvalidPost, e.to_string()))
    }

    /// The content of a field, when the post has it.
    pub fn field(&self, field: Field) -> Option<&str> {
        match field {
            Field::Text => Some(&self.text),
            Field::Title => self.title.as_deref(),
            Field::Name => self.poster.as_ref()?.name.as_deref(),
            Field::Bio => self.poster.as_ref()?.bio.as_deref(),
        }
    }
}

/// A field of a post that rules can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    /// The body.
    Text,
    /// The title.
    Title,
    /// The poster's display name.
    Name,
    /// The poster's profile text.
    Bio,
}

impl Field {
    /// Every field, in a fixed order.
    pub const ALL: [Field; 4] = [Field::Text, Field::Title, Field::Name, Field::Bio];

    /// The name used in rule files and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Text => "text",
            Field::Title => "title",
            Field::Name => "name",
            Field::Bio => "bio",
        }
    }
}

/// One match of one rule at one place in one field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hit {
    /// The rule's id.
    pub rule: String,
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
    /// The rule's term (or regex) that matched.
    pub term: String,
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
    /// More hits than the engine's limit: the rest were dropped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// Problems with metadata fields; the post is still decided.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
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
    /// True when the action is anything but `allow`.
    pub fn is_flagged(&self) -> bool {
        self.action > Action::Allow
    }
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
