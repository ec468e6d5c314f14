//! The crate's one error type.
//!
//! [`Error`] is opaque: callers match on [`Error::kind`], read the message through
//! `Display`, and get the place (`file:line:column`) and rule id where they are known.
//! New failure modes add [`ErrorKind`] variants without breaking anyone.

use std::fmt;
use std::path::{Path, PathBuf};

/// What went wrong, coarsely. Marked non-exhaustive: new kinds may be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A file could not be read (rule file, terms file, directory).
    Io,
    /// TOML syntax error, or a value of the wrong type.
    Syntax,
    /// A key the rule format does not know.
    UnknownKey,
    /// Two rules with the same id.
    DuplicateId,
    /// A rule names a category that is neither 1–9 nor declared in `[categories]`.
    UnknownCategory,
    /// A regex that does not compile or exceeds the size limit.
    InvalidRegex,
    /// An empty or whitespace-only term, allow phrase or example.
    EmptyTerm,
    /// A `terms_file` that does not exist or cannot be read.
    MissingTermsFile,
    /// A value outside what the format allows (e.g. a second `[ruleset]`).
    InvalidValue,
    /// A post that is not valid JSON or lacks `text`.
    InvalidPost,
    /// The automaton could not be built (too many or too long patterns).
    Build,
    /// The audit store could not be opened, read or written.
    Audit,
    /// The audit key is missing, malformed, or not the store's key.
    AuditKey,
    /// Input over a limit (a post larger than `max_post_bytes`, a term or regex too long).
    TooLarge,
    /// The output's reader went away (a closed pipe): not a failure for a command-line tool.
    BrokenPipe,
    /// What was asked for does not exist (a review id).
    NotFound,
    /// The request contradicts what was done before (a second verdict on a decided post).
    Conflict,
}

/// A place in a source file, 1-based.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file, as given by the caller (bundled files are shown as `<bundled>/NAME`).
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` in `text`, which is the content of `file`.
    pub fn from_offset(file: &Path, text: &str, offset: usize) -> Location {
        let offset = offset.min(text.len());
        let mut offset = offset;
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Location {
            file: file.to_path_buf(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// The error of every fallible operation in shenhe.
#[derive(Clone, Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    location: Option<Location>,
    rule: Option<String>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            location: None,
            rule: None,
        }
    }

    pub(crate) fn at(mut self, location: Location) -> Error {
        self.location = Some(location);
        self
    }

    pub(crate) fn in_rule(mut self, rule: Option<&str>) -> Error {
        if self.rule.is_none() {
            self.rule = rule.map(str::to_owned);
        }
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Where the failure is, when it concerns a file.
    pub fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }

    /// The id of the rule concerned, when known.
    pub fn rule(&self) -> Option<&str> {
        self.rule.as_deref()
    }

    /// The message alone, without location and rule id.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.location {
            write!(f, "{loc}: ")?;
        }
        if let Some(rule) = &self.rule {
            write!(f, "rule `{rule}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Shorthand for results carrying [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<std::io::Error> for Error {
    /// An I/O failure (reading, writing), as [`ErrorKind::Io`].
    fn from(e: std::io::Error) -> Error {
        Error::new(ErrorKind::Io, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_counts_chars_not_bytes() {
        let text = "a = 1\n名字 = \"x\"\n";
        let off = text.find('=').unwrap();
        let loc = Location::from_offset(Path::new("f.toml"), text, off);
        assert_eq!((loc.line, loc.column), (1, 3));
        let off = text.rfind('=').unwrap();
        let loc = Location::from_offset(Path::new("f.toml"), text, off);
        assert_eq!((loc.line, loc.column), (2, 4));
        assert_eq!(loc.to_string(), "f.toml:2:4");
    }

    #[test]
    fn display_has_location_rule_and_message() {
        let e = Error::new(ErrorKind::EmptyTerm, "empty term")
            .at(Location {
                file: "r.toml".into(),
                line: 3,
                column: 9,
            })
            .in_rule(Some("x.y"));
        assert_eq!(e.to_string(), "r.toml:3:9: rule `x.y`: empty term");
        assert_eq!(e.kind(), ErrorKind::EmptyTerm);
    }
}
