//! Arbitrary text under an arbitrary set of normalisation steps: the offset map is
//! monotonic and lands on char boundaries, every folded char maps to a non-empty original
//! span, and folding is idempotent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shenhe::normalize::Normalizer;
use shenhe::Step;

fuzz_target!(|input: (u16, &str)| {
    let (mask, text) = input;
    let steps: Vec<Step> = Step::ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, s)| *s)
        .collect();
    let n = Normalizer::new(&steps);
    let folded = n.fold(text);
    let f = folded.text();
    let bounds: Vec<usize> = f.char_indices().map(|(i, _)| i).chain([f.len()]).collect();
    // Consecutive folded chars map to spans that never go backwards (the chars of one
    // multi-char fold, like ㈱ → (株), share their original char's span), except in a
    // right-to-left override, which is folded in display order.
    let reversed = steps.contains(&Step::Invisible) && text.contains('\u{202e}');
    let (mut prev_s, mut prev_e) = (0, 0);
    for w in bounds.windows(2) {
        let (s, e) = folded.to_original(w[0], w[1]);
        assert!(s < e, "empty original span for a folded char");
        assert!(text.is_char_boundary(s) && text.is_char_boundary(e));
        assert!(reversed || (s >= prev_s && e >= prev_e), "spans go backwards");
        (prev_s, prev_e) = (s, e);
    }
    if bounds.len() > 1 {
        let (s, e) = folded.to_original(0, f.len());
        assert!(s <= e && e <= text.len());
    }
    assert_eq!(n.fold(f).text(), f, "folding is idempotent");
});
