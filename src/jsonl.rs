//! The line contract of JSON Lines: a line in gives a post, or the error line that says
//! why it is not one; a decision out gives one line. Every face reads posts through here
//! (`shenhe scan` and `diff`, the C batch calls, the pipeline's `moderate_json`, the Python
//! package's dict posts and Spark's Arrow columns), so a line is refused, limited and
//! reported the same way wherever it comes from. This room reads and writes lines; it decides nothing.

use std::io::{self, BufRead};

use serde::Serialize;

use crate::engine::{Engine, Limits};
use crate::error::{Error, ErrorKind};
use crate::matcher::KindTimes;
use crate::post::{Decision, Post, PostId};

/// Lines per chunk, and bytes per chunk: whichever is reached first ends the chunk.
const CHUNK_LINES: usize = 8192;
const CHUNK_BYTES: usize = 4 << 20;

/// Longest input line read (`max_line_bytes`): 64 MiB, room for a post at the 16 MiB cap
/// with every character escaped. A longer line is skipped without being held in memory
/// and gets an error line.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// A run of whole input lines, as [`read_chunks`] cuts them.
#[derive(Debug)]
pub struct Chunk {
    /// The input line number of the chunk's first line (1-based).
    pub first_line: u64,
    /// The lines, each followed by one byte where its newline was.
    pub data: Vec<u8>,
    /// End offset of each line in `data` (newline excluded).
    pub ends: Vec<usize>,
    /// Indices of lines longer than [`MAX_LINE_BYTES`]: not kept (empty in `data`).
    pub too_long: Vec<usize>,
}

impl Chunk {
    /// Line `i` of the chunk (without its newline).
    pub fn line(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] + 1 };
        &self.data[start..self.ends[i]]
    }

    /// The number of lines.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when the chunk has no line.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The input line number of the chunk's last line.
    pub fn last_line(&self) -> u64 {
        self.first_line + self.ends.len() as u64 - 1
    }

    /// Line `i` read as a post, or why it is not one ([`read_post`]).
    pub fn post(&self, i: usize, limits: &Limits) -> Result<(Post, Vec<String>), LineError> {
        let line_no = self.first_line + i as u64;
        let result = if self.too_long.contains(&i) {
            Err(LineError::new(
                None,
                format!("the line is longer than {MAX_LINE_BYTES} bytes (max_line_bytes); skipped"),
                ErrorKind::TooLarge,
            ))
        } else {
            read_post(self.line(i), limits)
        };
        result.map_err(|e| e.at_line(line_no))
    }
}

/// Appends one line (with its newline, if any) to `buf`, keeping at most `cap` bytes of it
/// and consuming the rest. Returns the bytes consumed and whether the line was cut.
fn read_line_capped<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    cap: usize,
) -> io::Result<(usize, bool)> {
    let (mut consumed, mut kept, mut cut) = (0, 0, false);
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok((consumed, cut));
        }
        let (n, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        let room = cap.saturating_sub(kept);
        if n > room {
            cut = true;
        }
        buf.extend_from_slice(&available[..n.min(room)]);
        kept += n.min(room);
        reader.consume(n);
        consumed += n;
        if done {
            return Ok((consumed, cut));
        }
    }
}

/// Sends the input in chunks of whole lines, after skipping its first `skip` lines.
pub fn read_chunks<R: BufRead>(
    mut reader: R,
    skip: u64,
    tx: std::sync::mpsc::SyncSender<io::Result<Chunk>>,
) {
    let mut next_line = 1u64;
    let mut first = true;
    let mut discard = Vec::new();
    while next_line <= skip {
        discard.clear();
        match reader.read_until(b'\n', &mut discard) {
            Ok(0) => return,
            Ok(_) => {
                next_line += 1;
                first = false;
            }
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        }
    }
    loop {
        let mut chunk = Chunk {
            first_line: next_line,
            data: Vec::with_capacity(CHUNK_BYTES + (64 << 10)),
            ends: Vec::with_capacity(CHUNK_LINES),
            too_long: Vec::new(),
        };
        while chunk.ends.len() < CHUNK_LINES && chunk.data.len() < CHUNK_BYTES {
            let before = chunk.data.len();
            match read_line_capped(&mut reader, &mut chunk.data, MAX_LINE_BYTES) {
                Ok((0, _)) => break,
                Ok((_, true)) => {
                    first = false;
                    chunk.data.truncate(before);
                    chunk.too_long.push(chunk.ends.len());
                    chunk.ends.push(chunk.data.len());
                    chunk.data.push(b'\n');
                }
                Ok(_) => {
                    if chunk.data.last() == Some(&b'\n') {
                        chunk.data.pop();
                    }
                    if first {
                        first = false;
                        if chunk.data[before..].starts_with(b"\xEF\xBB\xBF") {
                            chunk.data.drain(before..before + 3);
                        }
                    }
                    chunk.ends.push(chunk.data.len());
                    // The newline's place: the next line starts one byte after the end.
                    chunk.data.push(b'\n');
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
        if chunk.ends.is_empty() {
            return;
        }
        next_line += chunk.ends.len() as u64;
        if tx.send(Ok(chunk)).is_err() {
            return;
        }
    }
}

/// Refuses encodings that cannot be read line by line (UTF-16, UTF-32), by their
/// byte-order marks; `name` names the input in the error.
pub fn check_encoding<R: BufRead>(reader: &mut R, name: &str) -> crate::Result<()> {
    let head = reader.fill_buf()?;
    let refuse = |m: String| Err(Error::new(ErrorKind::InvalidPost, m));
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return refuse(format!(
            "{name}: the input is UTF-16 (byte-order mark found); convert it to UTF-8"
        ));
    }
    if head.starts_with(&[0, 0, 0xFE, 0xFF]) {
        return refuse(format!("{name}: the input is UTF-32; convert it to UTF-8"));
    }
    Ok(())
}

/// A line that could not be decided: written as `{"id":…,"line":N,"error":"…"}`, the id
/// when the line had a readable one, the line number when it came from a file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LineError {
    /// The post's id, when the line had a readable one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<PostId>,
    /// The input line number, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// Why, as the error line says it.
    #[serde(rename = "error")]
    pub message: String,
    /// `TooLarge` for a post over a size limit, `InvalidPost` for a line that is not a
    /// post; `Audit` or `Io` when the post was decided but its record or report could not
    /// be kept (the pipeline then gives no decision: the post must not be published).
    #[serde(skip)]
    pub kind: ErrorKind,
}

impl LineError {
    /// An error line without a line number.
    pub fn new(id: Option<PostId>, message: impl Into<String>, kind: ErrorKind) -> LineError {
        LineError {
            id,
            line: None,
            message: message.into(),
            kind,
        }
    }

    /// The same error at input line `line`.
    pub fn at_line(mut self, line: u64) -> LineError {
        self.line = Some(line);
        self
    }

    /// The error line, with its newline.
    pub fn to_line(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).expect("error lines serialise");
        v.push(b'\n');
        v
    }
}

/// A decision as one line, with its newline.
pub fn decision_line(decision: &Decision) -> Vec<u8> {
    let mut v = serde_json::to_vec(decision).expect("decisions serialise");
    v.push(b'\n');
    v
}

/// Reads one line of JSON Lines as a post: a trailing `\r` is dropped; an empty line,
/// invalid UTF-8 and JSON that is not a post fail as `InvalidPost`, a post whose text fields
/// together exceed `limits.max_post_bytes` as `TooLarge`, each with the post's id when it
/// can be read. A metadata field of the wrong type is dropped with a warning
/// ([`Post::from_json_lenient`]): the warnings come back with the post.
pub fn read_post(line: &[u8], limits: &Limits) -> Result<(Post, Vec<String>), LineError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = crate::engine::utf8(line).map_err(|e| {
        LineError::new(
            None,
            format!("not valid UTF-8 at byte {}", e.valid_up_to()),
            ErrorKind::InvalidPost,
        )
    })?;
    if text.trim().is_empty() {
        return Err(LineError::new(
            None,
            "empty line: expected a JSON post",
            ErrorKind::InvalidPost,
        ));
    }
    let id_of = || {
        #[derive(serde::Deserialize)]
        struct IdOnly {
            id: Option<PostId>,
        }
        serde_json::from_str::<IdOnly>(text).ok().and_then(|x| x.id)
    };
    let (post, warnings) = Post::from_json_lenient(text).map_err(|e| {
        LineError::new(
            id_of(),
            format!("not a valid post: {}", e.message()),
            ErrorKind::InvalidPost,
        )
    })?;
    limits
        .check(&post)
        .map_err(|e| LineError::new(post.id.clone(), e.message(), e.kind()))?;
    Ok((post, warnings))
}

/// Reads one line as a post and scans it with `engine` (its limits), exactly as `shenhe
/// scan` does before escalation; the post's metadata warnings come first in the decision's
/// `warnings`. With `timed`, the decision comes with the times of
/// [`Engine::scan_timed`].
pub fn scan_line(
    engine: &Engine,
    line: &[u8],
    timed: bool,
) -> Result<(Post, Decision, KindTimes), LineError> {
    let (post, warnings) = read_post(line, &engine.limits())?;
    let (mut decision, times) = if timed {
        engine.scan_timed(&post)
    } else {
        (engine.scan(&post), KindTimes::default())
    };
    decision.prepend_warnings(warnings);
    Ok((post, decision, times))
}
