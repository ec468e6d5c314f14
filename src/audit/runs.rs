//! What a run over an input file remembers of it, so that `--resume` continues a run only
//! over the contents it was started on.

use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

/// Bytes at the start of an input file that its print hashes.
const HEAD_BYTES: u64 = 64 * 1024;

/// An input file as a run saw it: its size and a SHA-256 of its first 64 KiB (all of it
/// when smaller). The same file, unchanged or with lines appended, still
/// [`matches`](InputPrint::matches); one rewritten under the same name does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputPrint {
    /// The file's size, in bytes.
    pub bytes: u64,
    /// Hex SHA-256 of its first `min(bytes, 64 KiB)` bytes.
    pub head: String,
}

impl InputPrint {
    /// The print of the file at `path` as it is now. Only a regular file has one: a named
    /// pipe is not opened (its writer would see the reader go away).
    pub fn of(path: &Path) -> io::Result<InputPrint> {
        let Some(bytes) = regular_file_len(path)? else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        };
        Ok(InputPrint {
            bytes,
            head: range_hash(path, 0, bytes.min(HEAD_BYTES))?,
        })
    }

    /// Whether the file at `path` still starts as the file printed did: a regular file at
    /// least as large, with the same first bytes.
    pub fn matches(&self, path: &Path) -> io::Result<bool> {
        match regular_file_len(path)? {
            Some(len) if len >= self.bytes => {
                Ok(range_hash(path, 0, self.bytes.min(HEAD_BYTES))? == self.head)
            }
            _ => Ok(false),
        }
    }
}

/// The size of the regular file at `path`, `None` for what is not one (looked up, never
/// opened).
pub(crate) fn regular_file_len(path: &Path) -> io::Result<Option<u64>> {
    let meta = std::fs::metadata(path)?;
    Ok(meta.is_file().then_some(meta.len()))
}

/// SHA-256 (hex) of the (at most) 4 KiB of the file at `path` that end at byte `end`: what
/// a checkpoint keeps of the output it wrote, so that another file of the same size is not
/// taken for it.
pub(crate) fn tail_hash(path: &Path, end: u64) -> io::Result<String> {
    let start = end.saturating_sub(4096);
    range_hash(path, start, end - start)
}

/// SHA-256 (hex) of `len` bytes of the file at `path` from byte `start`.
fn range_hash(path: &Path, start: u64, len: u64) -> io::Result<String> {
    use std::io::Seek;
    let mut bytes = Vec::with_capacity(len as usize);
    let mut f = std::fs::File::open(path)?;
    f.seek(io::SeekFrom::Start(start))?;
    f.take(len).read_to_end(&mut bytes)?;
    if (bytes.len() as u64) < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the file got shorter while it was read",
        ));
    }
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// The last run over an input ([`AuditStore::last_run`](super::AuditStore::last_run)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastRun {
    /// The run's number.
    pub run: i64,
    /// The last input line it recorded (0 when none).
    pub line: u64,
    /// Whether it got to the end of its input.
    pub finished: bool,
    /// The input as the run last saw it; `None` for a run of a shenhe that did not keep it.
    pub print: Option<InputPrint>,
    /// The output file the run was started with, as it was named.
    pub output: Option<String>,
    /// The size that output ended with when the run finished, when known.
    pub output_bytes: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_matches_its_print_when_unchanged_or_grown_and_not_when_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("in.jsonl");
        std::fs::write(&f, "{\"text\":\"a\"}\n").unwrap();
        let small = InputPrint::of(&f).unwrap();
        assert_eq!(small.bytes, 13);
        assert!(small.matches(&f).unwrap());
        // Appended: still the same input, even past the hashed head.
        let big = "{\"text\":\"b\"}\n".repeat(10_000);
        std::fs::write(&f, format!("{{\"text\":\"a\"}}\n{big}")).unwrap();
        assert!(small.matches(&f).unwrap());
        let grown = InputPrint::of(&f).unwrap();
        assert!(grown.matches(&f).unwrap());
        // Cut short, or rewritten with the same size: another input.
        std::fs::write(&f, "{\"text\":\"a\"}\n").unwrap();
        assert!(!grown.matches(&f).unwrap());
        assert!(small.matches(&f).unwrap());
        std::fs::write(&f, "{\"text\":\"z\"}\n").unwrap();
        assert!(!small.matches(&f).unwrap());
        // A change after the first 64 KiB of a large file is not seen: only its size is.
        let mut tail_changed = format!("{{\"text\":\"a\"}}\n{big}").into_bytes();
        let n = tail_changed.len();
        tail_changed[n - 3] = b'c';
        std::fs::write(&f, tail_changed).unwrap();
        assert!(grown.matches(&f).unwrap());
        assert!(InputPrint::of(&dir.path().join("missing")).is_err());
    }
}
