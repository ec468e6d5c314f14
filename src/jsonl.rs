//! The line contract of JSON Lines: a line in gives a post, or the error line that says
//! why it is not one; a decision out gives one line. Every face reads posts through here
//! (`shenhe scan` and `diff`, the C batch calls, the pipeline's `moderate_json`, the Python
//! package's dict posts and Spark's Arrow columns), so a line is refused, limited and
//! reported the same way wherever it comes from. This room reads and writes lines; it decides nothing.

use std::io::{self, BufRead};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::engine::{Engine, Limits};
use crate::error::{Error, ErrorKind};
use crate::matcher::KindTimes;
use crate::post::{Decision, Hit, Post, PostId, RulesetInfo};
use crate::vocab::Severity;

/// Lines per chunk, and bytes per chunk: whichever is reached first ends the chunk.
pub(crate) const CHUNK_LINES: usize = 2048;
const CHUNK_BYTES: usize = 1 << 20;

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

/// Byte buffers given back after use, for the next chunk to reuse. A rescan moves about
/// twice its input through fresh buffers (the chunks read, the decision lines written);
/// taken from the allocator each time, their pages are mapped and zeroed by the kernel
/// again and again (6% of a one-core rescan with the default steps). Reused, they stay
/// mapped and warm in the cache.
#[derive(Debug, Default)]
pub struct Spare {
    free: Mutex<Vec<Vec<u8>>>,
}

impl Spare {
    /// Buffers kept at most: the chunks in flight between the stages, a chunk's decision
    /// lines in parts (several a thread).
    const KEEP: usize = 64;
    /// A buffer larger than this (a chunk with a giant post) goes back to the allocator.
    const MAX_BYTES: usize = 8 << 20;

    /// An empty buffer with room for at least `capacity` bytes: a spare one when there is.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        let spare = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match spare {
            Some(mut buf) => {
                buf.reserve(capacity);
                buf
            }
            None => Vec::with_capacity(capacity),
        }
    }

    /// Gives `buf` back for reuse (emptied), unless enough are kept or it is too large.
    pub fn give(&self, mut buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > Self::MAX_BYTES {
            return;
        }
        buf.clear();
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < Self::KEEP {
            free.push(buf);
        }
    }
}

/// A chunk being filled: whole lines are appended as the reader's buffer yields them.
struct Filling {
    chunk: Chunk,
    /// Where the line being read starts in `chunk.data`.
    line_start: usize,
    /// The line being read is over [`MAX_LINE_BYTES`]: its bytes are dropped until its end.
    dropping: bool,
    /// The next line ended is the input's first (a UTF-8 byte-order mark is dropped).
    first: bool,
}

impl Filling {
    fn new(first_line: u64, first: bool, spare: &Spare) -> Filling {
        Filling {
            chunk: Chunk {
                first_line,
                data: spare.take(CHUNK_BYTES + (64 << 10)),
                ends: Vec::with_capacity(CHUNK_LINES),
                too_long: Vec::new(),
            },
            line_start: 0,
            dropping: false,
            first,
        }
    }

    /// Lines enough, and none half read: the next line starts the next chunk.
    fn full(&self) -> bool {
        !self.in_line()
            && (self.chunk.ends.len() >= CHUNK_LINES || self.chunk.data.len() >= CHUNK_BYTES)
    }

    /// A line is being read (some of its bytes were seen, no newline yet).
    fn in_line(&self) -> bool {
        self.dropping || self.chunk.data.len() > self.line_start
    }

    /// More bytes of the line being read.
    fn extend(&mut self, bytes: &[u8]) {
        if self.dropping {
            return;
        }
        if self.chunk.data.len() - self.line_start + bytes.len() > MAX_LINE_BYTES {
            self.dropping = true;
            self.chunk.data.truncate(self.line_start);
        } else {
            self.chunk.data.extend_from_slice(bytes);
        }
    }

    /// The line being read ends (at a newline, or at the end of the input).
    fn end_line(&mut self) {
        let c = &mut self.chunk;
        if std::mem::take(&mut self.dropping) {
            c.too_long.push(c.ends.len());
        } else if self.first && c.data[self.line_start..].starts_with(b"\xEF\xBB\xBF") {
            c.data.drain(self.line_start..self.line_start + 3);
        }
        self.first = false;
        c.ends.push(c.data.len());
        // The newline's place: the next line starts one byte after the end.
        c.data.push(b'\n');
        self.line_start = c.data.len();
    }
}

/// Sends the input in chunks of whole lines, after skipping its first `skip` lines. Lines
/// are cut where the reader's buffer has them (memchr over the buffer, one copy of each
/// byte into the chunk); a line longer than [`MAX_LINE_BYTES`] is not kept, and the chunk
/// lists it in `too_long`.
pub fn read_chunks<R: BufRead>(
    reader: R,
    skip: u64,
    tx: std::sync::mpsc::SyncSender<io::Result<Chunk>>,
) {
    read_chunks_reusing(reader, skip, tx, &Spare::default());
}

/// [`read_chunks`], taking each chunk's buffer from `spare`: give a chunk's `data` back
/// there once its lines are read as posts.
pub fn read_chunks_reusing<R: BufRead>(
    mut reader: R,
    skip: u64,
    tx: std::sync::mpsc::SyncSender<io::Result<Chunk>>,
    spare: &Spare,
) {
    let mut next_line = 1u64;
    let mut discard = Vec::new();
    while next_line <= skip {
        discard.clear();
        match reader.read_until(b'\n', &mut discard) {
            Ok(0) => return,
            Ok(_) => next_line += 1,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        }
    }
    let mut first = next_line == 1;
    let mut at_end = false;
    while !at_end {
        let mut f = Filling::new(next_line, first, spare);
        while !f.full() {
            let buf = match reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            if buf.is_empty() {
                if f.in_line() {
                    f.end_line();
                }
                at_end = true;
                break;
            }
            let mut used = 0;
            while used < buf.len() && !f.full() {
                match memchr::memchr(b'\n', &buf[used..]) {
                    Some(n) => {
                        f.extend(&buf[used..used + n]);
                        f.end_line();
                        used += n + 1;
                    }
                    None => {
                        f.extend(&buf[used..]);
                        used = buf.len();
                    }
                }
            }
            reader.consume(used);
        }
        first = f.first;
        let chunk = f.chunk;
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
    let mut v = Vec::with_capacity(256);
    push_decision_line(&mut v, decision);
    v
}

/// A decision as JSON, without a newline: the bytes of `serde_json::to_vec`.
pub fn decision_json(decision: &Decision) -> Vec<u8> {
    let mut v = decision_line(decision);
    v.pop();
    v
}

/// Appends a decision as one line, with its newline, to `out`: the bytes serde_json writes
/// for [`Decision`] (same fields, order and escapes; a test holds the two together), written
/// directly. A rescan writes a line per post, and the masked text of a flagged post is most
/// of its bytes: serde_json escapes a string one byte at a time, this looks at eight.
pub fn push_decision_line(out: &mut Vec<u8>, d: &Decision) {
    push_line(out, d, None);
}

/// Writes decision lines ([`push_decision_line`]) keeping what consecutive lines share
/// escaped once: the rule set (every line of a rescan names the same one) and the opening of
/// a hit (rule, category, severity), for the next line or hit with the same ones.
#[derive(Default)]
pub(crate) struct LineWriter {
    ruleset: Option<(Arc<RulesetInfo>, Vec<u8>)>,
    hit: Option<(Arc<str>, u16, Severity, Vec<u8>)>,
}

impl LineWriter {
    /// Appends `d` as one line, with its newline.
    pub(crate) fn push(&mut self, out: &mut Vec<u8>, d: &Decision) {
        push_line(out, d, Some(self));
    }

    /// Appends `,"ruleset":{…}}` and the newline, escaped once per rule set.
    fn ruleset(&mut self, out: &mut Vec<u8>, r: &Arc<RulesetInfo>) {
        if !matches!(&self.ruleset, Some((known, _)) if Arc::ptr_eq(known, r)) {
            let mut b = Vec::new();
            push_ruleset(&mut b, r);
            self.ruleset = Some((r.clone(), b));
        }
        out.extend_from_slice(&self.ruleset.as_ref().expect("just set").1);
    }

    /// Appends `{"rule":…,"category":…,"severity":…` of a hit, escaped once per rule.
    fn hit_opening(&mut self, out: &mut Vec<u8>, h: &Hit) {
        if !matches!(&self.hit, Some((rule, c, s, _))
            if Arc::ptr_eq(rule, &h.rule) && *c == h.category && *s == h.severity)
        {
            let mut b = Vec::new();
            push_hit_opening(&mut b, h);
            self.hit = Some((h.rule.clone(), h.category, h.severity, b));
        }
        out.extend_from_slice(&self.hit.as_ref().expect("just set").3);
    }
}

/// `,"ruleset":{…}}` and the newline: every line has fields before the rule set, so it
/// starts with their separator.
fn push_ruleset(out: &mut Vec<u8>, r: &RulesetInfo) {
    out.extend_from_slice(b",\"ruleset\":{\"name\":");
    push_json_str(out, &r.name);
    out.extend_from_slice(b",\"version\":");
    push_json_str(out, &r.version);
    out.extend_from_slice(b",\"hash\":");
    push_json_str(out, &r.hash);
    out.extend_from_slice(b"}}\n");
}

/// `{"rule":…,"category":…,"severity":…` of a hit.
fn push_hit_opening(out: &mut Vec<u8>, h: &Hit) {
    out.extend_from_slice(b"{\"rule\":");
    push_json_str(out, &h.rule);
    out.extend_from_slice(b",\"category\":");
    push_int(out, h.category);
    out.extend_from_slice(b",\"severity\":");
    push_name(out, h.severity.as_str());
}

/// A decision line; with a writer, what consecutive lines share comes from its cache (a
/// single line is written directly: no clone of the shared names).
fn push_line(out: &mut Vec<u8>, d: &Decision, mut w: Option<&mut LineWriter>) {
    out.push(b'{');
    let mut first = true;
    let mut key = |out: &mut Vec<u8>, k: &str| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
    };
    if let Some(id) = &d.id {
        key(out, "id");
        match id {
            PostId::Int(n) => push_int(out, *n),
            PostId::Str(s) => push_json_str(out, s),
        }
    }
    if let Some(line) = d.line {
        key(out, "line");
        push_int(out, line);
    }
    key(out, "action");
    push_name(out, d.action.as_str());
    key(out, "report");
    out.extend_from_slice(if d.report { b"true" } else { b"false" });
    key(out, "categories");
    push_list(out, &d.categories, |out, c| push_int(out, *c));
    if let Some(s) = d.severity {
        key(out, "severity");
        push_name(out, s.as_str());
    }
    key(out, "hits");
    push_list(out, &d.hits, |out, h| {
        match w.as_deref_mut() {
            Some(w) => w.hit_opening(out, h),
            None => push_hit_opening(out, h),
        }
        push_hit_rest(out, h);
    });
    if let Some(m) = &d.masked {
        key(out, "masked");
        push_json_str(out, m);
    }
    if !d.masked_fields.is_empty() {
        key(out, "masked_fields");
        push_list(out, &d.masked_fields, |out, m| {
            out.extend_from_slice(b"{\"field\":");
            push_name(out, m.field.as_str());
            out.extend_from_slice(b",\"masked\":");
            push_json_str(out, &m.masked);
            out.push(b'}');
        });
    }
    if !d.measures.is_empty() {
        key(out, "measures");
        push_list(out, &d.measures, |out, m| push_name(out, m.as_str()));
    }
    if d.truncated {
        key(out, "truncated");
        out.extend_from_slice(b"true");
    }
    if !d.warnings.is_empty() {
        key(out, "warnings");
        push_list(out, &d.warnings, |out, w| push_json_str(out, w));
    }
    if let Some(r) = d.review_id {
        key(out, "review_id");
        push_int(out, r);
    }
    match w {
        Some(w) => w.ruleset(out, &d.ruleset),
        None => push_ruleset(out, &d.ruleset),
    }
}

/// A hit after its opening ([`LineWriter::hit_opening`]): from `,"field"` to the `}`.
fn push_hit_rest(out: &mut Vec<u8>, h: &Hit) {
    out.extend_from_slice(b",\"field\":");
    push_name(out, h.field.as_str());
    for (k, v) in [
        (&b",\"start\":"[..], h.start),
        (b",\"end\":", h.end),
        (b",\"char_start\":", h.char_start),
        (b",\"char_end\":", h.char_end),
    ] {
        out.extend_from_slice(k);
        push_int(out, v);
    }
    out.extend_from_slice(b",\"matched\":");
    push_json_str(out, &h.matched);
    out.extend_from_slice(b",\"term\":");
    push_json_str(out, &h.term);
    out.extend_from_slice(b",\"steps\":");
    push_list(out, &h.steps, |out, s| push_json_str(out, s));
    out.push(b'}');
}

/// Appends one of the vocabulary's names (an action, a severity, a field, a measure): plain
/// ASCII words, quoted as they are.
fn push_name(out: &mut Vec<u8>, name: &'static str) {
    debug_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.push(b'"');
}

fn push_list<T>(out: &mut Vec<u8>, items: &[T], mut each: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        each(out, item);
    }
    out.push(b']');
}

fn push_int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// serde_json's escape for each byte: 0 for none, else the letter after the backslash
/// (`u` for `\u00XX`).
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = b'u';
        b += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0A] = b'n';
    t[0x0C] = b'f';
    t[0x0D] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Not zero when one of the eight bytes of `w` is escaped in JSON: a control char, `"` or
/// `\`. (The zero-byte tests may flag a byte above a true hit by borrowing, never a word
/// without one: as a yes or no for the whole word they are exact.)
#[inline]
fn escape_bits(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_in = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    control | zero_in(w ^ (ONES * b'"' as u64)) | zero_in(w ^ (ONES * b'\\' as u64))
}

/// Where the first 32-byte block of `bytes` from `i` on that may hold an escaped byte
/// starts (or where the last whole block ends): four words tested with one branch, which
/// the compiler turns into vector code. 1.45× the eight-byte loop on the peers' posts.
#[inline]
fn skip_clean_blocks(bytes: &[u8], mut i: usize) -> usize {
    while let Some(block) = bytes.get(i..i + 32) {
        let word = |k: usize| u64::from_le_bytes(block[k..k + 8].try_into().expect("8 bytes"));
        if escape_bits(word(0))
            | escape_bits(word(8))
            | escape_bits(word(16))
            | escape_bits(word(24))
            != 0
        {
            break;
        }
        i += 32;
    }
    i
}

/// Appends `s` as a JSON string, escaped as serde_json escapes it.
pub(crate) fn push_json_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let (mut run, mut i) = (0, 0);
    while i < bytes.len() {
        i = skip_clean_blocks(bytes, i);
        while let Some(word) = bytes.get(i..i + 8) {
            if escape_bits(u64::from_le_bytes(word.try_into().expect("eight bytes"))) != 0 {
                break;
            }
            i += 8;
        }
        let stop = (i + 8).min(bytes.len());
        for (at, &b) in bytes.iter().enumerate().take(stop).skip(i) {
            let e = ESCAPE[b as usize];
            if e != 0 {
                out.extend_from_slice(&bytes[run..at]);
                run = at + 1;
                if e == b'u' {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(b"\\u00");
                    out.extend_from_slice(&[HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
                } else {
                    out.extend_from_slice(&[b'\\', e]);
                }
            }
        }
        i = stop;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::post::{MaskedField, RulesetInfo};
    use crate::vocab::{Action, Field, Measure, Severity};

    #[test]
    fn a_buffer_given_back_is_reused_emptied_and_a_giant_one_is_not_kept() {
        let spare = Spare::default();
        let mut buf = spare.take(1000);
        buf.extend_from_slice(b"decisions");
        let (at, cap) = (buf.as_ptr(), buf.capacity());
        spare.give(buf);
        let again = spare.take(10);
        assert_eq!(
            (again.as_ptr(), again.capacity(), again.len()),
            (at, cap, 0)
        );
        // Kept at most KEEP; a buffer over MAX_BYTES goes back to the allocator.
        for _ in 0..Spare::KEEP + 5 {
            spare.give(Vec::with_capacity(16));
        }
        spare.give(Vec::with_capacity(Spare::MAX_BYTES + 1));
        let kept: Vec<Vec<u8>> = (0..Spare::KEEP + 1).map(|_| spare.take(0)).collect();
        assert_eq!(
            kept.iter().filter(|b| b.capacity() == 16).count(),
            Spare::KEEP
        );
        assert_eq!(
            kept[Spare::KEEP].capacity(),
            0,
            "a fresh buffer once none are left"
        );
    }

    #[test]
    fn chunks_read_into_reused_buffers_hold_exactly_their_lines() {
        let input: String = (0..5000)
            .map(|i| format!("{{\"text\":\"帖子{i}\"}}\n"))
            .collect();
        let spare = Arc::new(Spare::default());
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let reader = {
            let spare = Arc::clone(&spare);
            let input = input.clone();
            std::thread::spawn(move || read_chunks_reusing(input.as_bytes(), 0, tx, &spare))
        };
        let mut lines = Vec::new();
        for chunk in rx {
            let chunk = chunk.unwrap();
            lines.extend((0..chunk.len()).map(|i| chunk.line(i).to_vec()));
            spare.give(chunk.data);
        }
        reader.join().unwrap();
        let expected: Vec<Vec<u8>> = input.lines().map(|l| l.as_bytes().to_vec()).collect();
        assert_eq!(lines, expected);
    }

    fn serde_line(d: &Decision) -> Vec<u8> {
        let mut v = serde_json::to_vec(d).unwrap();
        v.push(b'\n');
        v
    }

    /// Text with what JSON escapes (every control char, quotes, backslashes) among Han,
    /// ASCII and four-byte chars, in runs long and short around the eight-byte words and
    /// the 32-byte blocks.
    fn text() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just('"'.to_string()),
                Just('\\'.to_string()),
                (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap().to_string()),
                Just('\u{7f}'.to_string()),
                Just('赌'.to_string()),
                Just('😀'.to_string()),
                prop::char::range('a', 'z').prop_map(String::from),
                (1usize..40).prop_map(|n| "赌".repeat(n)),
                (1usize..70).prop_map(|n| "x".repeat(n)),
            ],
            0..40,
        )
        .prop_map(|cs| cs.concat())
    }

    fn hit() -> impl Strategy<Value = Hit> {
        (
            text(),
            text(),
            any::<(u16, usize, usize)>(),
            0usize..4,
            0usize..4,
        )
            .prop_map(|(matched, term, (category, start, end), sev, field)| Hit {
                rule: Arc::from(format!("r.{category}")),
                category,
                severity: Severity::ALL[sev],
                field: Field::ALL[field],
                start,
                end,
                char_start: start / 3,
                char_end: end / 3,
                matched,
                term: Arc::from(term),
                steps: vec!["noise".into(); start % 3],
            })
    }

    prop_compose! {
        fn decision()(
            id in prop_oneof![Just(None), any::<i64>().prop_map(|n| Some(PostId::Int(n))),
                text().prop_map(|s| Some(PostId::Str(s)))],
            line in any::<Option<u64>>(),
            action in 0usize..5,
            report in any::<bool>(),
            categories in prop::collection::vec(any::<u16>(), 0..3),
            severity in prop::option::of(0usize..4),
            hits in prop::collection::vec(hit(), 0..3),
            masked in prop::option::of(text()),
            masked_fields in prop::collection::vec((0usize..4, text()), 0..2),
            measures in prop::collection::vec(0usize..3, 0..2),
            truncated in any::<bool>(),
            warnings in prop::collection::vec(text(), 0..2),
            review_id in any::<Option<i64>>(),
            names in (text(), text(), text()),
        ) -> Decision {
            let measure = [Measure::Warn, Measure::Restrict, Measure::Suspend];
            Decision {
                id,
                line,
                action: Action::ALL[action],
                report,
                categories,
                severity: severity.map(|s| Severity::ALL[s]),
                hits,
                masked,
                masked_fields: masked_fields
                    .into_iter()
                    .map(|(f, masked)| MaskedField { field: Field::ALL[f], masked })
                    .collect(),
                measures: measures.into_iter().map(|m| measure[m]).collect(),
                truncated,
                warnings,
                review_id,
                ruleset: Arc::new(RulesetInfo { name: names.0, version: names.1, hash: names.2 }),
            }
        }
    }

    /// Every line the reader sends, in order, with the line number of each chunk's first.
    fn lines_read(input: &[u8], buffer: usize, skip: u64) -> Vec<(u64, Vec<u8>)> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let reader =
            std::io::BufReader::with_capacity(buffer, std::io::Cursor::new(input.to_vec()));
        let t = std::thread::spawn(move || read_chunks(reader, skip, tx));
        let mut out = Vec::new();
        for chunk in rx {
            let chunk = chunk.unwrap();
            assert_eq!(chunk.first_line, skip + 1 + out.len() as u64);
            assert!(chunk.too_long.is_empty());
            out.extend(
                (0..chunk.len()).map(|i| (chunk.first_line + i as u64, chunk.line(i).to_vec())),
            );
        }
        t.join().unwrap();
        out
    }

    #[test]
    fn chunks_hold_every_line_whatever_the_reader_buffer() {
        let lines: Vec<String> = (0..20_000)
            .map(|i| format!("{{\"id\":{i},\"text\":\"帖子{}\"}}", "长".repeat(i % 700)))
            .collect();
        let mut input = lines.join("\n").into_bytes();
        for (buffer, newline_at_end) in [(7, false), (1 << 20, true), (3, true)] {
            if newline_at_end && input.last() != Some(&b'\n') {
                input.push(b'\n');
            }
            let read = lines_read(&input, buffer, 0);
            assert_eq!(read.len(), lines.len(), "buffer {buffer}");
            for (i, (n, l)) in read.iter().enumerate() {
                assert_eq!((*n, l.as_slice()), (i as u64 + 1, lines[i].as_bytes()));
            }
        }
        let read = lines_read(&input, 5, 19_998);
        assert_eq!(
            read,
            vec![
                (19_999, lines[19_998].clone().into_bytes()),
                (20_000, lines[19_999].clone().into_bytes())
            ]
        );
    }

    #[test]
    fn the_first_lines_byte_order_mark_is_dropped_and_empty_lines_are_kept() {
        let read = lines_read(b"\xEF\xBB\xBF{}\n\n\xEF\xBB\xBFx\r\n", 2, 0);
        let lines: Vec<&[u8]> = read.iter().map(|(_, l)| l.as_slice()).collect();
        assert_eq!(lines, [&b"{}"[..], b"", b"\xEF\xBB\xBFx\r"]);
        assert!(lines_read(b"", 4, 0).is_empty());
    }

    proptest! {
        /// The hand-written line is serde_json's, byte for byte, for any decision: a field
        /// added to `Decision` and not written here fails it.
        #[test]
        fn decision_lines_are_serde_jsons(d in decision()) {
            prop_assert_eq!(
                String::from_utf8(decision_line(&d)).unwrap(),
                String::from_utf8(serde_line(&d)).unwrap()
            );
        }
    }

    proptest! {
        /// Lines written one after another by one `LineWriter`, whose lines share rule sets
        /// and whose hits share rule ids (with other categories and severities), are serde's
        /// lines: what it keeps from one line or hit is used only where it is the same.
        #[test]
        fn a_writers_lines_are_serde_jsons(mut ds in prop::collection::vec(decision(), 1..8)) {
            let rules: [Arc<str>; 2] = [Arc::from("r.a"), Arc::from("r\"b")];
            let first = ds[0].ruleset.clone();
            for (i, d) in ds.iter_mut().enumerate() {
                if i % 3 != 1 {
                    d.ruleset = first.clone();
                }
                for h in &mut d.hits {
                    h.rule = rules[h.start % 2].clone();
                    h.category = (h.end % 2) as u16;
                }
            }
            let mut writer = LineWriter::default();
            let (mut ours, mut serde) = (Vec::new(), Vec::new());
            for d in &ds {
                writer.push(&mut ours, d);
                serde.extend(serde_line(d));
            }
            prop_assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(serde).unwrap());
        }
    }

    #[test]
    fn every_optional_field_is_written() {
        let hit = Hit {
            rule: Arc::from("drugs.trade"),
            category: 7,
            severity: Severity::High,
            field: Field::Title,
            start: 3,
            end: 9,
            char_start: 1,
            char_end: 3,
            matched: "冰\u{0}毒".into(),
            term: Arc::from("冰毒"),
            steps: vec!["noise".into()],
        };
        let d = Decision {
            id: Some(PostId::Str("p\"1".into())),
            line: Some(7),
            action: Action::Delete,
            report: true,
            categories: vec![7, 9],
            severity: Some(Severity::High),
            hits: vec![hit.clone(), hit],
            masked: Some("出售＊＊\n\t".into()),
            masked_fields: vec![MaskedField {
                field: Field::Title,
                masked: "＊＊".into(),
            }],
            measures: vec![Measure::Warn, Measure::Suspend],
            truncated: true,
            warnings: vec!["poster.port: \\ignored".into()],
            review_id: Some(-3),
            ruleset: Arc::new(RulesetInfo {
                name: "rules/".into(),
                version: "1".into(),
                hash: "ab".into(),
            }),
        };
        let line = decision_line(&d);
        let value: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(value.as_object().unwrap().len(), 14, "{value}");
        assert_eq!(
            String::from_utf8(line).unwrap(),
            String::from_utf8(serde_line(&d)).unwrap()
        );
    }
}
