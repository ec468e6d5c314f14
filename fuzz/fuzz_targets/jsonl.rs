//! Arbitrary bytes as one JSON Lines post, the way `shenhe scan` and the C API read it:
//! reading never panics; a post that reads gets a decision whose hits lie on char
//! boundaries of their field and match its text, and whose JSON round-trips.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use shenhe::{Decision, Engine};

fuzz_target!(|data: &[u8]| {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    let engine = ENGINE.get_or_init(Engine::bundled);
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let Ok((post, d)) = engine.scan_json(line) else {
        return;
    };
    for h in &d.hits {
        let text = post.field(h.field).expect("a hit's field exists");
        assert!(text.is_char_boundary(h.start) && text.is_char_boundary(h.end));
        assert_eq!(&text[h.start..h.end], h.matched);
    }
    let json = serde_json::to_string(&d).expect("decisions serialise");
    let back: Decision = serde_json::from_str(&json).expect("decisions read back");
    assert_eq!(back.hits.len(), d.hits.len());
    assert_eq!(back.action, d.action);
});
