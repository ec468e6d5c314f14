//! The shared vocabulary: the small enums every room of the crate speaks (what happens to a
//! post, how bad a rule is, which field a rule reads, which normalisation step found a hit,
//! which account measure escalation adds). They sit on the ground floor and import nothing
//! of the crate, so the rooms above import them from here and never from each other.

use serde::{Deserialize, Serialize};

/// How bad a rule's content is. Ordered: `Low < Medium < High < Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Mild: usually masked.
    Low,
    /// Held for review by default.
    Medium,
    /// Deleted by default.
    High,
    /// Deleted by default; the worst.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The name used in rule files and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// What happens to a post. Ordered by strength: `Allow < Mask < Review < Block < Delete`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Publish as is.
    #[default]
    Allow,
    /// Publish with the hits masked.
    Mask,
    /// Hold for a person to review.
    Review,
    /// Stop transmission: not shown, kept as evidence.
    Block,
    /// Remove the post.
    Delete,
}

impl Action {
    /// Every action, weakest first.
    pub const ALL: [Action; 5] = [
        Action::Allow,
        Action::Mask,
        Action::Review,
        Action::Block,
        Action::Delete,
    ];

    /// The name used in rule files and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Mask => "mask",
            Action::Review => "review",
            Action::Block => "block",
            Action::Delete => "delete",
        }
    }
}

/// A built-in detector a rule can name in `detect` (see `rules/README.md`): contact details
/// and personal data, read through the usual disguises. A hit names it as its `term`
/// (`$PHONE`, `$QQ`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    /// A mainland China mobile number: 11 digits, 1[3-9]…, optionally +86 or 0086 first.
    Phone,
    /// A QQ number after a cue (QQ, 扣扣, 企鹅, Q号): 5–11 digits, not starting with 0.
    Qq,
    /// A WeChat id after a cue (微信, 薇信, VX, wx, ➕V, …): 6–20 letters, digits, `_` or `-`
    /// starting with a letter, or a mobile number.
    Wechat,
    /// A link: a host under a public suffix, with an optional scheme, port and path.
    Url,
    /// An e-mail address whose domain is under a public suffix.
    Email,
    /// A dotted IPv4 address, every octet 0–255.
    Ipv4,
    /// A mainland resident identity card number (GB 11643: 18 characters, a plausible birth
    /// date and a valid check character).
    IdCard,
    /// A bank card number: 16–19 digits passing the Luhn check.
    BankCard,
    /// Any run of at least `digits_min` digits (8 by default) that is not a date, time,
    /// amount, version, timestamp, ISBN or order number.
    Digits,
}

impl Detector {
    /// Every detector.
    pub const ALL: [Detector; 9] = [
        Detector::Phone,
        Detector::Qq,
        Detector::Wechat,
        Detector::Url,
        Detector::Email,
        Detector::Ipv4,
        Detector::IdCard,
        Detector::BankCard,
        Detector::Digits,
    ];

    /// The name used in rule files.
    pub fn as_str(self) -> &'static str {
        match self {
            Detector::Phone => "phone",
            Detector::Qq => "qq",
            Detector::Wechat => "wechat",
            Detector::Url => "url",
            Detector::Email => "email",
            Detector::Ipv4 => "ipv4",
            Detector::IdCard => "id_card",
            Detector::BankCard => "bank_card",
            Detector::Digits => "digits",
        }
    }

    /// The `term` of its hits: `$PHONE`, `$QQ`, `$WECHAT`, `$URL`, `$EMAIL`, `$IPV4`,
    /// `$ID_CARD`, `$BANK_CARD`, `$DIGITS`.
    pub fn term(self) -> &'static str {
        match self {
            Detector::Phone => "$PHONE",
            Detector::Qq => "$QQ",
            Detector::Wechat => "$WECHAT",
            Detector::Url => "$URL",
            Detector::Email => "$EMAIL",
            Detector::Ipv4 => "$IPV4",
            Detector::IdCard => "$ID_CARD",
            Detector::BankCard => "$BANK_CARD",
            Detector::Digits => "$DIGITS",
        }
    }

    /// The detector of this rule-file name.
    pub fn from_name(name: &str) -> Option<Detector> {
        Detector::ALL.into_iter().find(|d| d.as_str() == name)
    }

    /// Its bit in a set of detectors.
    pub(crate) fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// One normalisation step (see DESIGN.md for the exact semantics and order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// Drop default-ignorable code points (zero-width, bidi controls, …).
    Invisible,
    /// Full/half width and NFKC compatibility forms.
    Width,
    /// Case folding.
    Case,
    /// Number and letter styles (①, 壹, Ⓕ, Cyrillic homoglyphs) to ASCII.
    Variants,
    /// Traditional to simplified Chinese.
    T2s,
    /// Skip symbols and punctuation inserted between the characters of a term.
    Noise,
    /// Collapse repeated characters (opt-in).
    Repeat,
    /// Han characters compared by their toneless pinyin syllable: 堵博 = 赌博 (opt-in; a hit
    /// only this step found is dropped when its characters are a real word, as 读博).
    Homophone,
    /// Also the usual confusions of syllables: z/zh, c/ch, s/sh, n/l, an/ang, en/eng,
    /// in/ing (opt-in, same rule for real words).
    #[serde(rename = "near_homophone")]
    NearHomophone,
    /// A character with the same phonetic component under another radical: 睹博 = 赌博
    /// (opt-in, same rule for real words).
    #[serde(rename = "near_form")]
    NearForm,
    /// A character written as its components, recomposed: 氵去 = 法, 弓虽 = 强 (opt-in).
    Split,
}

impl Step {
    /// Every step, in the order they are applied.
    pub const ALL: [Step; 11] = [
        Step::Invisible,
        Step::Width,
        Step::Case,
        Step::Variants,
        Step::T2s,
        Step::Noise,
        Step::Repeat,
        Step::Homophone,
        Step::NearHomophone,
        Step::NearForm,
        Step::Split,
    ];

    /// The steps applied when a rule has no `normalize` key: all but the opt-in `repeat`,
    /// `homophone`, `near_homophone`, `near_form` and `split`.
    pub const DEFAULT: [Step; 6] = [
        Step::ALL[0],
        Step::ALL[1],
        Step::ALL[2],
        Step::ALL[3],
        Step::ALL[4],
        Step::ALL[5],
    ];

    /// The name used in rule files and in a hit's `steps`.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Invisible => "invisible",
            Step::Width => "width",
            Step::Case => "case",
            Step::Variants => "variants",
            Step::T2s => "t2s",
            Step::Noise => "noise",
            Step::Repeat => "repeat",
            Step::Homophone => "homophone",
            Step::NearHomophone => "near_homophone",
            Step::NearForm => "near_form",
            Step::Split => "split",
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

/// An account measure added by escalation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Measure {
    /// Warn the account.
    Warn,
    /// Restrict what the account may do (posting limits, review of every post).
    Restrict,
    /// Suspend the account.
    Suspend,
}

impl Measure {
    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Measure::Warn => "warn",
            Measure::Restrict => "restrict",
            Measure::Suspend => "suspend",
        }
    }
}
