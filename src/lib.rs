//! # shenhe (审核)
//!
//! A content-moderation engine for Chinese-language communities. It scans posts against
//! rule sets organised by the nine prohibited categories of Article 15 of
//! 《互联网信息服务管理办法》, reports every hit at its exact place in the original text,
//! and decides what must happen to the post: allow, mask, hold for review, block or delete,
//! and whether to report it to the authorities.
//!
//! ```
//! use shenhe::{Action, Engine, Post, RuleSet};
//!
//! let rules = RuleSet::from_toml_str(r#"
//!     [[rule]]
//!     id = "gambling.casino"
//!     category = 7
//!     severity = "high"
//!     report = true
//!     terms = ["网络赌场", "赌博"]
//!     allow = ["打击赌博"]
//! "#)?;
//! let engine = Engine::new(&rules)?;
//!
//! let decision = engine.scan(&Post::from_text("这里有网络赌场，欢迎赌博"));
//! assert_eq!(decision.action, Action::Delete);
//! assert!(decision.report);
//! let hit = &decision.hits[0];
//! assert_eq!((&*hit.rule, hit.matched.as_str()), ("gambling.casino", "网络赌场"));
//! assert_eq!(&"这里有网络赌场，欢迎赌博"[hit.start..hit.end], hit.matched);
//! assert_eq!(decision.masked.as_deref(), Some("这里有＊＊＊＊，欢迎＊＊"));
//!
//! // Allow phrases suppress hits inside them.
//! assert!(engine.scan(&Post::from_text("警方打击赌博团伙")).hits.is_empty());
//!
//! // The bundled rule sets are compiled in.
//! let bundled = Engine::bundled();
//! assert!(bundled.scan(&Post::from_text("出售冰毒")).is_flagged());
//! # Ok::<(), shenhe::Error>(())
//! ```
//!
//! ## What is here
//!
//! | piece | what it does |
//! | --- | --- |
//! | [`RuleSet`] | loads TOML rule files (`rules/README.md`), validates them completely, hashes them |
//! | [`Engine`] | compiles a rule set into one charwise Aho-Corasick automaton per normalisation profile and regex sets; [`Engine::scan`], [`Engine::scan_batch`] |
//! | [`Post`], [`Decision`], [`Hit`] | the JSON Lines contract of `shenhe scan` (serde) |
//! | [`Moderator`], [`OffenceLedger`] | the whole pipeline: decisions after repeat-offence escalation, recorded and reported (the state the engine does not keep) |
//! | [`audit`] | the audit log: an append-only, hash-chained SQLite store with six-month retention, verification and sealed personal fields |
//! | [`Report`], [`ReportWriter`] | reports to the authorities: every field an officer needs, as JSON, CSV and HTML |
//! | [`category`] | the nine categories of Article 15: official text and English gloss |
//! | [`normalize`] | *expert*: the folding the engine applies (width, case, variants, traditional → simplified, noise, repeat), with the offset map back to the original |
//!
//! Matching resists the usual evasions: 賭博, 赌*博, 赌\u{200b}博, ｄｕｂｏ, ⑥合彩, 赌赌博博 and
//! dubo all match a rule on 赌博 (see `rules/README.md`), and every hit is still reported at
//! its exact place in the original text, with the normalisation steps it needed.
//!
//! The engine is immutable and `Send + Sync`; share it with `Arc` across threads.

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod audit;
pub mod category;
pub mod diff;
mod csv;
mod engine;
mod error;
pub mod ffi;
mod matcher;
mod moderator;
pub mod normalize;
mod post;
pub mod report;
pub mod rules;
pub mod stats;
mod vocab;

pub use category::Category;
pub use engine::{
    Engine, ExampleFailure, Limits, LineError, DEFAULT_MAX_HITS, DEFAULT_MAX_POST_BYTES, MASK_CHAR,
    MAX_POST_BYTES_CAP,
};
pub use error::{Error, ErrorKind, Location, Result};
pub use matcher::KindTimes;
pub use moderator::{Moderator, OffenceLedger};
pub use post::{Decision, Hit, MaskedField, Post, PostId, Poster, RulesetInfo};
pub use report::{Report, ReportWriter};
pub use rules::{Boundary, Conditions, Policy, Rule, RuleSet};
pub use vocab::{Action, Field, Measure, Severity, Step};

/// Whether jieba's dictionary (used by `boundary = "word"` rules) is loaded in this
/// process. An engine whose rules need it starts loading it in the background when it is
/// built, so the first post near such a hit does not wait for it; this is how tests see
/// that happen.
#[doc(hidden)]
pub fn word_dictionary_loaded() -> bool {
    matcher::word_dictionary_loaded()
}
