//! Text from posts and records shown on a terminal: control characters (ESC, BEL, CR, …)
//! and bidirectional overrides are shown as escapes, so a post cannot move the cursor,
//! rewrite what an officer sees, or reorder a line.

use std::borrow::Cow;

/// `s` with every control character, line separator and bidirectional control written as
/// `\u{…}`; `s` itself when there is none.
///
/// ```
/// assert_eq!(shenhe::terminal::printable("ok\x1b[2J"), "ok\\u{1b}[2J");
/// assert_eq!(shenhe::terminal::printable("正常"), "正常");
/// ```
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}'
        )
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}
