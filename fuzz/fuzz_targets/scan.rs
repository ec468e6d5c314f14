//! Arbitrary text through the bundled engine: every hit's span is a char boundary of the
//! text, maps back exactly, and masking keeps the text outside the spans.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use shenhe::{Engine, Post};

fuzz_target!(|text: &str| {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    let engine = ENGINE.get_or_init(Engine::bundled);
    let d = engine.scan(&Post::from_text(text));
    for h in &d.hits {
        assert!(text.is_char_boundary(h.start) && text.is_char_boundary(h.end));
        assert_eq!(&text[h.start..h.end], h.matched);
        assert_eq!(text[..h.start].chars().count(), h.char_start);
    }
    if let (Some(first), Some(masked)) = (d.hits.iter().map(|h| h.start).min(), &d.masked) {
        assert!(masked.starts_with(&text[..first]));
    }
});
