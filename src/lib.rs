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
//! ## The engine alone, or the pipeline?
//!
//! Use [`Engine`] alone when you only need to know what a text contains: a preview while
//! someone types, a rule author's check, a one-off sweep whose results nobody must keep.
//! It is pure: nothing is counted, recorded or written.
//!
//! Use [`Pipeline`] for posts that are really published: it adds what the law and the
//! forum need after the scan, the same way for every face (the CLI, the C moderator, the
//! HTTP service, Python, Spark): repeat-offence escalation, an audit record that is durable
//! before the call returns (concurrent callers share commits), the report to the
//! authorities, the hand-over of held posts to review. A post it cannot decide or record
//! gets an error, never `allow`.
//!
//! ```
//! use shenhe::{audit::AuditStore, Action, Engine, EngineHandle, Pipeline, Post};
//!
//! let dir = std::env::temp_dir().join(format!("shenhe-lib-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let handle = EngineHandle::new(Engine::bundled());   // handle.reload(engine) swaps rules
//! let pipeline = Pipeline::builder(handle)
//!     .audit(AuditStore::open(dir.join("audit.db"), None)?)  // optional
//!     .reports(dir.join("reports"))                          // optional
//!     .build()?;
//!
//! let decision = pipeline.moderate(&Post::from_text("出售冰毒"))?;  // recorded when it returns
//! assert_eq!((decision.action, decision.report), (Action::Delete, true));
//! let batch = pipeline.moderate_batch(&[Post::from_text("你好"), Post::from_text("赌博网站")]);
//! assert_eq!(batch[0].as_ref().unwrap().action, Action::Allow);
//!
//! let finished = pipeline.finish()?;    // ends the audit run, writes the reports index
//! assert_eq!(finished.records, 3);
//! assert!(finished.reports.unwrap() >= 1);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), shenhe::Error>(())
//! ```
//!
//! ## What is here
//!
//! | piece | what it does |
//! | --- | --- |
//! | [`RuleSet`] | loads TOML rule files (`rules/README.md`), validates them completely, hashes them |
//! | [`Engine`], [`EngineHandle`] | compiles a rule set into one charwise Aho-Corasick automaton per normalisation profile and regex sets; [`Engine::scan`], [`Engine::scan_batch`]; the handle swaps engines atomically |
//! | [`Detector`] | the built-in detectors a rule names in `detect`: mobile numbers, QQ and WeChat ids, links, e-mail and IPv4 addresses, ID-card and bank-card numbers, long digit runs, read through numeral styles, separators and spelled-out dots; hits name them as `$PHONE`, `$URL`, … |
//! | [`Post`], [`Decision`], [`Hit`] | the JSON Lines contract of `shenhe scan` (serde); [`jsonl`] reads lines into posts or error lines |
//! | [`Pipeline`], [`OffenceLedger`] | the one route after the engine: escalation, audit record (group commit), report, review hook; rescans of JSON Lines files with resume ([`Pipeline::rescan`]) |
//! | [`policy`] | what hits, metadata and offence counts mean: actions, reports, measures (pure) |
//! | [`audit`] | the audit log: an append-only, hash-chained SQLite store with six-month retention, verification and sealed personal fields |
//! | [`Report`], [`ReportWriter`] | reports to the authorities: every field an officer needs, as JSON, CSV and HTML |
//! | [`category`] | the nine categories of Article 15: official text and English gloss |
//! | [`normalize`] | *expert*: the folding the engine applies (width, case, variants, traditional → simplified, noise, repeat), with the offset map back to the original |
//!
//! Matching resists the usual evasions: 賭博, 赌*博, 赌\u{200b}博, ｄｕｂｏ, ⑥合彩, 赌赌博博 and
//! dubo all match a rule on 赌博 (see `rules/README.md`), and every hit is still reported at
//! its exact place in the original text, with the normalisation steps it needed.
//!
//! The engine is immutable and `Send + Sync`; share it with `Arc` across threads. The
//! pipeline is `Send + Sync` too: share one per forum.

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod audit;
pub mod category;
mod csv;
mod detect;
pub mod diff;
mod engine;
mod error;
pub mod ffi;
mod fsx;
pub mod jsonl;
mod matcher;
pub mod normalize;
pub mod pipeline;
pub mod policy;
mod post;
pub mod report;
pub mod review;
pub mod rules;
pub mod stats;
pub mod terminal;
mod vocab;

pub use category::Category;
pub use engine::{
    Engine, EngineHandle, ExampleFailure, Limits, DEFAULT_MAX_HITS, DEFAULT_MAX_POST_BYTES,
    MASK_CHAR, MAX_POST_BYTES_CAP,
};
pub use error::{Error, ErrorKind, Location, Result};
pub use jsonl::LineError;
pub use matcher::KindTimes;
pub use pipeline::{
    AuditFigures, Finished, Moderated, OffenceLedger, Pipeline, PipelineBuilder, ReviewHook,
};
pub use post::{Decision, Hit, MaskedField, Post, PostId, Poster, RulesetInfo};
pub use report::{Report, ReportWriter};
pub use rules::{Boundary, Conditions, Policy, Rule, RuleSet};
pub use vocab::{Action, Detector, Field, Measure, Severity, Step};

/// Whether jieba's dictionary (used by `boundary = "word"` rules) is loaded in this
/// process. An engine whose rules need it starts loading it in the background when it is
/// built, so the first post near such a hit does not wait for it; this is how tests see
/// that happen.
#[doc(hidden)]
pub fn word_dictionary_loaded() -> bool {
    matcher::word_dictionary_loaded()
}
