//! Arbitrary bytes as one JSON Lines post, through the line contract every face reads posts
//! with (`shenhe::jsonl`): reading never panics; a line that is not a post gets an error
//! line that is JSON; a post that reads gets a decision whose hits lie on char boundaries
//! of their field and match its text, and whose JSON round-trips.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use shenhe::{Decision, Engine};

fuzz_target!(|data: &[u8]| {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    let engine = ENGINE.get_or_init(Engine::bundled);
    let (post, d, _) = match shenhe::jsonl::scan_line(engine, data, false) {
        Ok(scanned) => scanned,
        Err(e) => {
            let line: serde_json::Value =
                serde_json::from_slice(&e.to_line()).expect("error lines are JSON");
            assert!(line["error"].is_string());
            return;
        }
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
