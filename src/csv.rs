//! CSV as the people who open it read it: the one writer behind every CSV shenhe writes
//! (the reports' `index.csv`, `audit export --format csv`). RFC 4180 quoting, UTF-8 with a
//! byte-order mark so spreadsheet programs show Chinese, and cells defused so a post's text
//! is never run as a spreadsheet formula. It knows nothing of reports or records.

use std::borrow::Cow;

/// One cell: a value starting with `=`, `+`, `-`, `@`, TAB or CR (what spreadsheet programs
/// take for a formula, OWASP's list) gets a leading `'`; a value holding a comma, a quote or
/// a line break is quoted, its quotes doubled.
pub(crate) fn field(s: &str) -> Cow<'_, str> {
    let s: Cow<'_, str> = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    };
    if s.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        s
    }
}

/// One row, without its line break.
pub(crate) fn row<S: AsRef<str>>(cells: impl IntoIterator<Item = S>) -> String {
    let mut out = String::new();
    for (i, cell) in cells.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&field(cell.as_ref()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_quoting_is_rfc_4180() {
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        for lead in ["+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(
                field(lead).trim_start_matches('"').starts_with('\''),
                "{lead:?}"
            );
        }
        assert_eq!(field("赌博"), "赌博");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(row(["1", "a\nb", ""]), "1,\"a\nb\",");
    }
}
