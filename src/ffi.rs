//! The C API: what forum back ends in PHP, Java or Go call on every post (Python has its
//! own package, `python/`).
//! `include/shenhe.h` is generated from this file by cbindgen (see `cbindgen.toml`).
//!
//! The discipline (after rustls-ffi): every fallible call returns a [`shenhe_status`];
//! out-parameters are written only on success; NULL arguments and invalid UTF-8 give a
//! status, never a crash; no panic crosses the boundary; the calling thread's last error
//! message is copied by [`shenhe_last_error`]. This is the only module with `unsafe`.

#![allow(unsafe_code, non_camel_case_types)]

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;

use crate::audit::{AuditKey, AuditStore};
use crate::{Action, Decision, Engine, EngineHandle, Hit, Pipeline, RuleSet, Severity, Step};

/// The result of every fallible call. `SHENHE_OK` is 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum shenhe_status {
    /// Success.
    SHENHE_OK = 0,
    /// A required pointer argument was NULL.
    SHENHE_NULL_ARGUMENT = 1,
    /// A text or path was not valid UTF-8.
    SHENHE_INVALID_UTF8 = 2,
    /// The rule set did not load (the message says file:line:column and rule).
    SHENHE_RULES_ERROR = 3,
    /// The post JSON could not be read (not an object, or no string `text`).
    SHENHE_INVALID_POST = 4,
    /// The caller's buffer is too small.
    SHENHE_BUFFER_TOO_SMALL = 5,
    /// Offsets of a batch are not ascending.
    SHENHE_INVALID_ARGUMENT = 6,
    /// A bug in shenhe: a panic was caught at the boundary. The host is unharmed.
    SHENHE_PANIC = 7,
    /// A file or directory could not be written (reports).
    SHENHE_IO_ERROR = 8,
    /// The audit store could not be opened or written, or its key is missing or wrong.
    SHENHE_AUDIT_ERROR = 9,
    /// The post is larger than the engine's `max_post_bytes` (1 MiB by default).
    SHENHE_TOO_LARGE = 10,
}

/// The action a decision asks for, weakest first.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum shenhe_action {
    /// Publish as is.
    SHENHE_ACTION_ALLOW = 0,
    /// Publish with the hits masked.
    SHENHE_ACTION_MASK = 1,
    /// Hold for a person to review.
    SHENHE_ACTION_REVIEW = 2,
    /// Stop transmission: not shown, kept as evidence.
    SHENHE_ACTION_BLOCK = 3,
    /// Remove the post.
    SHENHE_ACTION_DELETE = 4,
}

impl From<Action> for shenhe_action {
    fn from(a: Action) -> shenhe_action {
        match a {
            Action::Allow => shenhe_action::SHENHE_ACTION_ALLOW,
            Action::Mask => shenhe_action::SHENHE_ACTION_MASK,
            Action::Review => shenhe_action::SHENHE_ACTION_REVIEW,
            Action::Block => shenhe_action::SHENHE_ACTION_BLOCK,
            Action::Delete => shenhe_action::SHENHE_ACTION_DELETE,
        }
    }
}

/// A compiled rule set. Thread-safe: share one engine across all threads. Lives from
/// `shenhe_engine_new_*` until `shenhe_engine_free`; `shenhe_engine_reload_from_path`
/// swaps its rules atomically while scans in flight finish on the old ones.
pub struct shenhe_engine {
    handle: EngineHandle,
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

fn set_error(message: impl Into<String>) {
    let message = message.into();
    LAST_ERROR.with(|e| *e.borrow_mut() = message);
}

/// Runs `f`, turning a panic into `SHENHE_PANIC` with its message as the last error.
fn guard(f: impl FnOnce() -> shenhe_status) -> shenhe_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(status) => status,
        Err(payload) => {
            set_error(format!(
                "internal error (panic caught at the C boundary): {}",
                panic_message(&*payload)
            ));
            shenhe_status::SHENHE_PANIC
        }
    }
}

/// The message of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// Like [`guard`], for bodies that stop at the first bad argument with `?`.
fn guard_args(f: impl FnOnce() -> Result<(), shenhe_status>) -> shenhe_status {
    guard(|| match f() {
        Ok(()) => shenhe_status::SHENHE_OK,
        Err(status) => status,
    })
}

/// `SHENHE_NULL_ARGUMENT`, with a message naming the argument.
fn null_argument(what: &str) -> shenhe_status {
    set_error(format!("{what} is NULL"));
    shenhe_status::SHENHE_NULL_ARGUMENT
}

/// Fails with `SHENHE_NULL_ARGUMENT` when `ptr` is NULL.
fn non_null<T>(ptr: *const T, what: &str) -> Result<(), shenhe_status> {
    if ptr.is_null() {
        Err(null_argument(what))
    } else {
        Ok(())
    }
}

/// The engine behind `engine`.
///
/// # Safety
/// `engine` must be NULL or a live engine.
unsafe fn engine_ref<'a>(engine: *const shenhe_engine) -> Result<&'a shenhe_engine, shenhe_status> {
    // SAFETY: NULL or a live engine (caller's contract).
    unsafe { engine.as_ref() }.ok_or_else(|| null_argument("engine"))
}

/// The UTF-8 text `ptr[..len]`.
///
/// # Safety
/// `ptr` must be NULL or valid for reads of `len` bytes for `'a`.
unsafe fn utf8<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a str, shenhe_status> {
    // SAFETY: forwarded caller contract.
    let b = unsafe { bytes(ptr, len) }.ok_or_else(|| null_argument(what))?;
    crate::engine::utf8(b).map_err(|_| {
        set_error(format!("{what} is not valid UTF-8"));
        shenhe_status::SHENHE_INVALID_UTF8
    })
}

/// The bytes `ptr[..len]`; `None` when `ptr` is NULL (a NULL pointer with length 0 is empty).
///
/// # Safety
/// `ptr` must be NULL or valid for reads of `len` bytes for `'a`.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> Option<&'a [u8]> {
    if ptr.is_null() {
        return (len == 0).then_some(&[][..]);
    }
    // SAFETY: the caller guarantees `ptr` is valid for `len` bytes.
    Some(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A batch laid out like an Arrow string column: entry `i` is `data[offsets[i]..offsets[i + 1]]`.
struct Column<'a> {
    data: &'a [u8],
    offsets: &'a [usize],
}

impl<'a> Column<'a> {
    /// The column behind `data`, `offsets` (`count + 1` entries).
    ///
    /// # Safety
    /// `offsets` NULL or valid for `count + 1` reads; `data` NULL or valid for
    /// `offsets[count]` bytes.
    unsafe fn new(
        data: *const u8,
        offsets: *const usize,
        count: usize,
    ) -> Result<Column<'a>, shenhe_status> {
        non_null(offsets, "offsets")?;
        // SAFETY: `offsets` is valid for `count + 1` reads (caller's contract).
        let offsets = unsafe { std::slice::from_raw_parts(offsets, count + 1) };
        // SAFETY: `data` is valid for `offsets[count]` bytes (caller's contract).
        let data = unsafe { bytes(data, offsets[count]) }.ok_or_else(|| null_argument("data"))?;
        Ok(Column { data, offsets })
    }

    /// Entry `i`, or `None` when its offsets are not ascending within the data.
    fn entry(&self, i: usize) -> Option<&'a [u8]> {
        let (s, e) = (self.offsets[i], self.offsets[i + 1]);
        (s <= e && e <= self.data.len()).then(|| &self.data[s..e])
    }
}

/// A NUL-terminated UTF-8 path.
///
/// # Safety
/// `ptr` must be NULL or a valid NUL-terminated string.
unsafe fn path<'a>(ptr: *const c_char) -> Result<&'a str, shenhe_status> {
    non_null(ptr, "path")?;
    // SAFETY: the caller guarantees a NUL-terminated string.
    let c = unsafe { CStr::from_ptr(ptr) };
    c.to_str().map_err(|_| {
        set_error("path is not valid UTF-8");
        shenhe_status::SHENHE_INVALID_UTF8
    })
}

fn engine_from(rules: crate::Result<RuleSet>) -> Result<Engine, shenhe_status> {
    rules.and_then(|r| Engine::new(&r)).map_err(|e| {
        set_error(e.to_string());
        shenhe_status::SHENHE_RULES_ERROR
    })
}

/// Writes a new engine to `*out`.
///
/// # Safety
/// `out` must be non-NULL and valid for a write.
unsafe fn give(out: *mut *mut shenhe_engine, engine: Engine) -> Result<(), shenhe_status> {
    let boxed = Box::new(shenhe_engine {
        handle: EngineHandle::new(engine),
    });
    // SAFETY: `out` is non-NULL and valid for a write (this function's contract).
    unsafe { *out = Box::into_raw(boxed) };
    Ok(())
}

/// An engine with the bundled rule sets. On success `*out` is a new engine to free with
/// `shenhe_engine_free`.
///
/// # Safety
/// `out` must be NULL (an error) or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shenhe_engine_new_bundled(out: *mut *mut shenhe_engine) -> shenhe_status {
    guard_args(|| {
        non_null(out, "out")?;
        let engine = engine_from(Ok(RuleSet::bundled()))?;
        // SAFETY: `out` is non-NULL and valid for a write (the caller's contract).
        unsafe { give(out, engine) }
    })
}

/// An engine from a rule file or a directory of them (`path`: NUL-terminated UTF-8).
///
/// # Safety
/// `path` must be NULL or NUL-terminated; `out` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shenhe_engine_new_from_path(
    path: *const c_char,
    out: *mut *mut shenhe_engine,
) -> shenhe_status {
    guard_args(|| {
        non_null(out, "out")?;
        // SAFETY: forwarded caller contract.
        let p = unsafe { self::path(path) }?;
        let engine = engine_from(RuleSet::from_path(p))?;
        // SAFETY: `out` is non-NULL and valid for a write.
        unsafe { give(out, engine) }
    })
}

/// An engine from the bytes of one rule file (UTF-8 TOML). A rule set using `terms_file`
/// needs `shenhe_engine_new_from_bytes_with_base`.
///
/// # Safety
/// `toml` must be valid for `len` bytes; `out` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shenhe_engine_new_from_bytes(
    toml: *const u8,
    len: usize,
    out: *mut *mut shenhe_engine,
) -> shenhe_status {
    // SAFETY: forwarded caller contract; a NULL base directory is allowed.
    unsafe { shenhe_engine_new_from_bytes_with_base(toml, len, std::ptr::null(), out) }
}

/// An engine from the bytes of one rule file. `base_dir` (NUL-terminated, may be NULL) is
/// where its `terms_file`s are; without it a rule set using `terms_file` fails to load.
///
/// # Safety
/// `toml` must be valid for `len` bytes; `base_dir` NULL or NUL-terminated; `out` NULL or
/// valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shenhe_engine_new_from_bytes_with_base(
    toml: *const u8,
    len: usize,
    base_dir: *const c_char,
    out: *mut *mut shenhe_engine,
) -> shenhe_status {
    guard_args(|| {
        non_null(out, "out")?;
        // SAFETY: forwarded caller contract.
        let text = unsafe { utf8(toml, len, "the rule file") }?;
        let rules = if base_dir.is_null() {
            RuleSet::from_toml_str(text)
        } else {
            // SAFETY: forwarded caller contract.
            let dir = unsafe { path(base_dir) }?;
            RuleSet::from_toml_str_with_base(text, Path::new(dir))
        };
        let engine = engine_from(rules)?;
        // SAFETY: `out` is non-NULL and valid for a write.
        unsafe { give(out, engine) }
    })
}

/// Replaces the engine's rules with those at `path`, atomically: scans in flight finish
/// on the old rules, later ones see the new. When the new rules fail to load, the old
/// ones stay and the status says why.
///
/// # Safety
/// `engine` must be NULL or a live engine; `path` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn shenhe_engine_reload_from_path(
    engine: *const shenhe_engine,
    path: *const c_char,
) -> shenhe_status {
    guard_args(|| {
        // SAFETY: forwarded caller contract.
        let engine = unsafe { engine_ref(engine) }?;
        // SAFETY: forwarded caller contract.
        let p = unsafe { self::path(path) }?;
        engine.handle.reload(engine_from(RuleSet::from_path(p))?);
        Ok(())
    })
}

/// Frees an engine. NULL is allowed and does nothing.
///
/// # Safety
/// `engine` must be NULL or an engine from `shenhe_engine_new_*`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn shenhe_engine_free(engine: *mut shenhe_engine) {
    if !engine.is_null() {
        // SAFETY: the engine came from Box::into_raw in `give` and is freed once.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(engine) })));
    }
}

/// Copies `s` and a NUL into `buf` (capacity `len`); `*written` is the length without NUL.
///
/// # Safety
/// `buf` must be valid for `len` bytes; `written` valid for a write.
unsafe fn copy_out(
    s: &str,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> Result<(), shenhe_status> {
    non_null(buf, "buf")?;
    non_null(written, "written")?;
    if s.len() >= len {
        set_error(format!(
            "the buffer holds {len} bytes; {} are needed",
            s.len() + 1
        ));
        return Err(shenhe_status::SHENHE_BUFFER_TOO_SMALL);
    }
    // SAFETY: `buf` holds `len > s.len()` bytes; `written` is valid for a write.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), s.len());
        *buf.add(s.len()) = 0;
        *written = s.len();
    }
    Ok(())
}

/// Loads now, and returns once it is loaded, what the engine's scans would otherwise load
/// on first use (jieba's dictionary, for word-boundary rules and the steps that change
/// chars: about 150 ms, started in the background when the engine was built). Call it
/// where a wait is harmless (a worker's start, after a reload) so that no post waits for
/// it. Safe to call from any thread, any number of times.
///
/// # Safety
/// `engine` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn shenhe_engine_warm_up(engine: *const shenhe_engine) -> shenhe_status {
    guard_args(|| {
        // SAFETY: forwarded caller contract.
        let engine = unsafe { engine_ref(engine) }?;
        engine.handle.load().warm_up();
        Ok(())
    })
}

/// Copies the SHA-256 (64 hex chars and a NUL) of the engine's current rule set into
/// `buf`, which must hold at least 65 bytes.
///
/// # Safety
/// `engine` NULL or live; `buf` valid for `len` bytes; `written` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shenhe_engine_ruleset_hash(
    engine: *const shenhe_engine,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> shenhe_status {
    guard_args(|| {
        // SAFETY: forwarded caller contract.
        let engine = unsafe { engine_ref(engine) }?;
        let current = engine.handle.load();
        // SAFETY: forwarded caller contract.
        unsafe { copy_out(current.rules().hash(), buf, len, written) }
    })
}

/// Scans one post given as JSON (`{"text": …, "id": …, "poster": {…}}`, as `shenhe scan`
/// reads) and writes the decision as NUL-terminated JSON to `*decision_json`, to be freed
/// with `shenhe_string_free`. Metadata of the wrong type is ignored with a warning in the
/// decision; only JSON that is not an object with a string `text` fails.
///
/// # Safety
/// `engine` NULL or live; `post_json` valid for `len` bytes; `decision_json` NULL or valid
/// for a write.
#[no_mangle]
pub unsafe extern "C" fn shenhe_scan_json(
    engine: *const shenhe_engine,
    post_json: *const u8,
    len: usize,
    decision_json: *mut *mut c_char,
) -> shenhe_status {
    guard_args(|| {
        // SAFETY: forwarded caller contract.
        let engine = unsafe { engine_ref(engine) }?;
        non_null(decision_json, "decision_json")?;
        // SAFETY: forwarded caller contract.
        let decision =
            unsafe { decide_json(post_json, len, |t| engine.handle.load().scan_json(t)) }?;
        // SAFETY: `decision_json` is non-NULL and valid for a write.
        unsafe { give_json(&decision, decision_json) };
        Ok(())
    })
}

/// Frees a string returned by shenhe. NULL is allowed and does nothing.
///
/// # Safety
/// `s` must be NULL or a string from shenhe, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn shenhe_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: `s` came from CString::into_raw and is freed once.
        drop(unsafe { CString::from_raw(s) });
    }
}

/// The fast path: scans a plain text (UTF-8, `len` bytes) as the text of a post without
/// metadata, and writes its action, report flag and number of hits. When `hits` is not
/// NULL, `*hits` receives a new hits handle (one post, index 0) to read with
/// `shenhe_hits_get` and free with `shenhe_hits_free`.
///
/// # Safety
/// `engine` NULL or live; `text` valid for `len` bytes; the out-pointers NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn shenhe_scan_text(
    engine: *const shenhe_engine,
    text: *const u8,
    len: usize,
    action: *mut shenhe_action,
    report: *mut bool,
    hit_count: *mut usize,
    hits: *mut *mut shenhe_hits,
) -> shenhe_status {
    guard_args(|| {
        // SAFETY: forwarded caller contract.
        let engine = unsafe { engine_ref(engine) }?;
        non_null(action, "action")?;
        non_null(report, "report")?;
        non_null(hit_count, "hit_count")?;
        // SAFETY: forwarded caller contract.
        let t = unsafe { utf8(text, len, "the text") }?;
        let current = engine.handle.load();
        let d = current.try_scan(&crate::Post::from_text(t)).map_err(|e| {
            set_error(e.to_string());
            shenhe_status::SHENHE_TOO_LARGE
        })?;
        // SAFETY: the out-pointers are non-NULL (or, for `hits`, checked) and valid.
        unsafe {
            *action = d.action.into();
            *report = d.report;
            *hit_count = d.hits.len();
            if !hits.is_null() {
                *hits = Box::into_raw(Box::new(shenhe_hits::new(vec![d.hits])));
            }
        }
        Ok(())
    })
}

/// Scans `count` texts laid out like an Arrow string column: text `i` is
/// `data[offsets[i] .. offsets[i + 1]]` (`offsets` has `count + 1` entries), in parallel.
/// For each text, `statuses[i]` says whether it was decided; when it was, `actions[i]` and
/// `reports[i]` are written (either may be NULL when not wanted). When `hits` is not NULL,
/// `*hits` receives a new hits handle with one entry per text (no hits for a text that
/// failed), to free with `shenhe_hits_free`. The call itself fails only for NULL required
/// arguments.
///
/// # Safety
/// `engine` NULL or live; `offsets` valid for `count + 1` reads; `data` valid for
/// `offsets[count]` bytes; `statuses`, and `actions`/`reports` when not NULL, valid for
/// `count` writes; `hits` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shenhe_scan_batch(
    engine: *const shenhe_engine,
    data: *const u8,
    offsets: *const usize,
    count: usize,
    actions: *mut shenhe_action,
    reports: *mut bool,
    statuses: *mut shenhe_status,
    hits: *mut *mut shenhe_hits,
) -> shenhe_status {
    guard_args(|| {
        // SAFETY: forwarded caller contract.
        let engine = unsafe { engine_ref(engine) }?;
        // SAFETY: forwarded caller contract.
        let column = unsafe { Column::new(data, offsets, count) }?;
        non_null(statuses, "statuses")?;
        let current = engine.handle.load();
        let want_hits = !hits.is_null();
        // Each worker keeps only what is written out (and the hits when asked for), so a
        // large batch does not hold every decision in memory at once.
        let results: Vec<Result<BatchEntry, shenhe_status>> = (0..count)
            .into_par_iter()
            .with_min_len(16)
            .map(|i| {
                let raw = column
                    .entry(i)
                    .ok_or(shenhe_status::SHENHE_INVALID_ARGUMENT)?;
                let text =
                    crate::engine::utf8(raw).map_err(|_| shenhe_status::SHENHE_INVALID_UTF8)?;
                let d = current
                    .try_scan(&crate::Post::from_text(text))
                    .map_err(|_| shenhe_status::SHENHE_TOO_LARGE)?;
                Ok((
                    d.action,
                    d.report,
                    if want_hits { d.hits } else { Vec::new() },
                ))
            })
            .collect();
        let mut all_hits = Vec::with_capacity(if want_hits { count } else { 0 });
        for (i, r) in results.into_iter().enumerate() {
            // SAFETY: the output arrays are valid for `count` writes; NULL ones are skipped.
            unsafe {
                match r {
                    Ok((action, report, h)) => {
                        *statuses.add(i) = shenhe_status::SHENHE_OK;
                        if !actions.is_null() {
                            *actions.add(i) = action.into();
                        }
                        if !reports.is_null() {
                            *reports.add(i) = report;
                        }
                        if want_hits {
                            all_hits.push(h);
                        }
                    }
                    Err(s) => {
                        *statuses.add(i) = s;
                        if want_hits {
                            all_hits.push(Vec::new());
                        }
                    }
                }
            }
        }
        if !hits.is_null() {
            // SAFETY: `hits` is non-NULL and valid for a write (caller's contract).
            unsafe { *hits = Box::into_raw(Box::new(shenhe_hits::new(all_hits))) };
        }
        Ok(())
    })
}

/// What the entries of a [`shenhe_scan_batch_jsonl`] batch are.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum shenhe_batch_input {
    /// Each entry is the text of a post without metadata; a null entry is an error
    /// (`SHENHE_INVALID_POST`): nothing to decide is never `allow`.
    SHENHE_BATCH_TEXTS = 0,
    /// Each entry is a post as JSON, the shape `shenhe scan` reads; a null entry is an error.
    SHENHE_BATCH_POSTS_JSON = 1,
}

/// Scans `count` entries laid out like an Arrow string column (entry `i` is
/// `data[offsets[i] .. offsets[i + 1]]`; `offsets` has `count + 1` entries; `valid`, one
/// byte per entry, NULL when every entry is valid, marks null entries with 0) and writes
/// the decisions as JSON Lines to `*decisions` (NUL-terminated, `*decisions_len` bytes
/// without the NUL, free with `shenhe_string_free`): exactly one line per entry, in order,
/// each the decision `shenhe scan` writes for that post (escalation aside, and without
/// `line`), or the error line it writes (`{"id":…,"error":"…"}`) for an entry that could
/// not be decided. `statuses[i]` says why entry `i` failed (`SHENHE_INVALID_POST` for a
/// post JSON that cannot be read, invalid UTF-8 included; `SHENHE_INVALID_UTF8` for a text;
/// `SHENHE_TOO_LARGE`), `SHENHE_OK` when it was decided. Each entry is guarded on its own:
/// even a bug in shenhe fails only its entry (`SHENHE_PANIC`).
///
/// `threads`: 1 scans on the calling thread only (inside a host that runs one task per core,
/// such as a Spark executor); 0 uses shenhe's shared pool (all cores); another number, a
/// pool of that many threads for this call. The call itself fails only for NULL required
/// arguments and offsets that do not fit `data`.
///
/// # Safety
/// `engine` NULL or live; `offsets` valid for `count + 1` reads; `data` valid for
/// `offsets[count]` bytes; `valid` NULL or valid for `count` reads; `statuses` valid for
/// `count` writes; `decisions` and `decisions_len` valid for a write.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn shenhe_scan_batch_jsonl(
    engine: *const shenhe_engine,
    input: shenhe_batch_input,
    data: *const u8,
    offsets: *const usize,
    valid: *const u8,
    count: usize,
    threads: usize,
    statuses: *mut shenhe_status,
    decisions: *mut *mut c_char,
    decisions_len: *mut usize,
) -> shenhe_status {
    guard_args(|| {
        // SAFETY: forwarded caller contract.
        let engine = unsafe { engine_ref(engine) }?;
        // SAFETY: forwarded caller contract.
        let column = unsafe { Column::new(data, offsets, count) }?;
        non_null(statuses, "statuses")?;
        non_null(decisions, "decisions")?;
        non_null(decisions_len, "decisions_len")?;
        // SAFETY: forwarded caller contract.
        let valid = unsafe { validity(valid, count) };
        let current = engine.handle.load();
        let entry = |i: usize| -> (shenhe_status, Vec<u8>) {
            let is_valid = valid.is_none_or(|v| v[i] != 0);
            batch_entry(&current, input, column.entry(i), is_valid)
        };
        let in_parallel = || -> Vec<(shenhe_status, Vec<u8>)> {
            (0..count)
                .into_par_iter()
                .with_min_len(16)
                .map(entry)
                .collect()
        };
        let lines = match threads {
            1 => (0..count).map(entry).collect(),
            0 => in_parallel(),
            n => rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| {
                    set_error(format!("cannot start {n} threads: {e}"));
                    shenhe_status::SHENHE_INVALID_ARGUMENT
                })?
                .install(in_parallel),
        };
        let mut out = Vec::with_capacity(lines.iter().map(|(_, l)| l.len() + 1).sum::<usize>() + 1);
        for (i, (status, line)) in lines.into_iter().enumerate() {
            // SAFETY: `statuses` is valid for `count` writes (caller's contract).
            unsafe { *statuses.add(i) = status };
            out.extend_from_slice(&line);
            out.push(b'\n');
        }
        // SAFETY: both out-pointers are non-NULL and valid for a write.
        unsafe { give_lines(out, decisions, decisions_len) };
        Ok(())
    })
}

/// The null mask of a batch: `None` when `valid` is NULL (every entry valid).
///
/// # Safety
/// `valid` NULL or valid for `count` reads.
unsafe fn validity<'a>(valid: *const u8, count: usize) -> Option<&'a [u8]> {
    // SAFETY: non-NULL and valid for `count` reads (this function's contract).
    (!valid.is_null()).then(|| unsafe { std::slice::from_raw_parts(valid, count) })
}

/// Gives JSON lines to the caller as a NUL-terminated string and its length.
///
/// # Safety
/// `out` and `out_len` non-NULL and valid for a write.
unsafe fn give_lines(lines: Vec<u8>, out: *mut *mut c_char, out_len: *mut usize) {
    let len = lines.len();
    // JSON escapes NUL, so the lines have none.
    let c = CString::new(lines).expect("no NUL in JSON lines");
    // SAFETY: this function's contract.
    unsafe {
        *out = c.into_raw();
        *out_len = len;
    }
}

/// One entry of [`shenhe_scan_batch_jsonl`]: its status and its JSON line (no newline).
/// `raw` is `None` when the entry's offsets do not fit the data.
fn batch_entry(
    engine: &Engine,
    input: shenhe_batch_input,
    raw: Option<&[u8]>,
    valid: bool,
) -> (shenhe_status, Vec<u8>) {
    let failed = |status, id, message: String| {
        let line = serde_json::to_vec(&crate::LineError::new(
            id,
            message,
            crate::ErrorKind::InvalidPost,
        ))
        .expect("an error line serialises");
        (status, line)
    };
    let Some(raw) = raw else {
        return failed(
            shenhe_status::SHENHE_INVALID_ARGUMENT,
            None,
            "the entry's offsets are not ascending within the data".to_owned(),
        );
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| match (input, valid) {
        (shenhe_batch_input::SHENHE_BATCH_TEXTS, false) => Err((
            shenhe_status::SHENHE_INVALID_POST,
            None,
            "the entry is null: no text to decide".to_owned(),
        )),
        (shenhe_batch_input::SHENHE_BATCH_TEXTS, true) => {
            let text = crate::engine::utf8(raw).map_err(|e| {
                let message = format!("not valid UTF-8 at byte {}", e.valid_up_to());
                (shenhe_status::SHENHE_INVALID_UTF8, None, message)
            })?;
            engine.try_scan(&crate::Post::from_text(text)).map_err(|e| {
                (
                    shenhe_status::SHENHE_TOO_LARGE,
                    None,
                    e.message().to_owned(),
                )
            })
        }
        (shenhe_batch_input::SHENHE_BATCH_POSTS_JSON, false) => Err((
            shenhe_status::SHENHE_INVALID_POST,
            None,
            "the entry is null: no post".to_owned(),
        )),
        (shenhe_batch_input::SHENHE_BATCH_POSTS_JSON, true) => {
            crate::jsonl::scan_line(engine, raw, false)
                .map(|(_, d, _)| d)
                .map_err(|e| {
                    let status = match e.kind {
                        crate::ErrorKind::TooLarge => shenhe_status::SHENHE_TOO_LARGE,
                        _ => shenhe_status::SHENHE_INVALID_POST,
                    };
                    (status, e.id, e.message)
                })
        }
    }));
    match outcome {
        Ok(Ok(decision)) => (
            shenhe_status::SHENHE_OK,
            crate::jsonl::decision_json(&decision),
        ),
        Ok(Err((status, id, message))) => failed(status, id, message),
        Err(payload) => failed(
            shenhe_status::SHENHE_PANIC,
            None,
            format!(
                "internal error (panic caught at the C boundary): {}",
                panic_message(&*payload)
            ),
        ),
    }
}

/// A hit's severity.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum shenhe_severity {
    /// Mild.
    SHENHE_SEVERITY_LOW = 0,
    /// Held for review by default.
    SHENHE_SEVERITY_MEDIUM = 1,
    /// Deleted by default.
    SHENHE_SEVERITY_HIGH = 2,
    /// The worst.
    SHENHE_SEVERITY_CRITICAL = 3,
}

impl From<Severity> for shenhe_severity {
    fn from(s: Severity) -> shenhe_severity {
        match s {
            Severity::Low => shenhe_severity::SHENHE_SEVERITY_LOW,
            Severity::Medium => shenhe_severity::SHENHE_SEVERITY_MEDIUM,
            Severity::High => shenhe_severity::SHENHE_SEVERITY_HIGH,
            Severity::Critical => shenhe_severity::SHENHE_SEVERITY_CRITICAL,
        }
    }
}

/// Bit of `shenhe_hit.steps` for a match through a pinyin spelling. Bits 0–6 are the
/// normalisation steps in the documented order: invisible, width, case, variants, t2s,
/// noise, repeat; the opt-in steps after them take bits 8–11: homophone, near_homophone,
/// near_form, split.
pub const SHENHE_STEP_PINYIN: u32 = 1 << 7;

/// One hit, as `shenhe_hits_get` gives it. Offsets are into the text that was scanned.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct shenhe_hit {
    /// Byte offset of the first matched byte (a char boundary).
    pub start: usize,
    /// Byte offset just past the match (a char boundary).
    pub end: usize,
    /// `start` counted in Unicode scalar values.
    pub char_start: usize,
    /// `end` counted in Unicode scalar values.
    pub char_end: usize,
    /// The rule's category (1–9 statutory, 10+ the operator's own).
    pub category: u16,
    /// The rule's severity.
    pub severity: shenhe_severity,
    /// The rule id, NUL-terminated UTF-8, owned by the hits handle (valid until
    /// `shenhe_hits_free`).
    pub rule: *const c_char,
    /// Bit set of the normalisation steps the hit needed (bit `i` = step `i` of the
    /// documented order for invisible … repeat, bits 8–11 for the opt-in homophone …
    /// split, `SHENHE_STEP_PINYIN` for pinyin); 0 for a verbatim match.
    pub steps: u32,
}

/// The hits of one scan or of a batch (one entry per text). Immutable: may be read from
/// several threads at once. Lives from the scan that made it until `shenhe_hits_free`;
/// independent of the engine (freeing or reloading the engine does not affect it).
pub struct shenhe_hits {
    posts: Vec<Vec<shenhe_hit>>,
    /// The rule ids the hits point into.
    _rules: Vec<CString>,
}

impl shenhe_hits {
    fn new(per_post: Vec<Vec<Hit>>) -> shenhe_hits {
        let mut rules: Vec<(Arc<str>, CString)> = Vec::new();
        let posts = per_post
            .into_iter()
            .map(|hits| {
                hits.into_iter()
                    .map(|h| {
                        let rule = match rules.iter().find(|(id, _)| Arc::ptr_eq(id, &h.rule)) {
                            Some((_, c)) => c.as_ptr(),
                            None => {
                                // Rule ids are TOML strings checked at load: no NUL.
                                let c = CString::new(h.rule.as_bytes()).unwrap_or_default();
                                let ptr = c.as_ptr();
                                rules.push((h.rule.clone(), c));
                                ptr
                            }
                        };
                        shenhe_hit {
                            start: h.start,
                            end: h.end,
                            char_start: h.char_start,
                            char_end: h.char_end,
                            category: h.category,
                            severity: h.severity.into(),
                            rule,
                            steps: step_bits(&h.steps),
                        }
                    })
                    .collect()
            })
            .collect();
        shenhe_hits {
            posts,
            // The CStrings' heap buffers do not move when the Vec moves.
            _rules: rules.into_iter().map(|(_, c)| c).collect(),
        }
    }
}

fn step_bits(names: &[String]) -> u32 {
    names.iter().fold(0, |bits, name| {
        match Step::ALL.iter().position(|s| s.as_str() == name) {
            // Bit 7 is `SHENHE_STEP_PINYIN`: the steps after `repeat` come after it.
            Some(i) if i >= 7 => bits | 1 << (i + 1),
            Some(i) => bits | 1 << i,
            None if name == "pinyin" => bits | SHENHE_STEP_PINYIN,
            None => bits,
        }
    })
}

/// The number of texts in a hits handle (1 for `shenhe_scan_text`, `count` for a batch);
/// 0 for NULL.
///
/// # Safety
/// `hits` NULL or a live hits handle.
#[no_mangle]
pub unsafe extern "C" fn shenhe_hits_texts(hits: *const shenhe_hits) -> usize {
    // SAFETY: NULL or live (caller's contract).
    unsafe { hits.as_ref() }.map_or(0, |h| h.posts.len())
}

/// The number of hits of text `text`; 0 for NULL or a text out of range.
///
/// # Safety
/// `hits` NULL or a live hits handle.
#[no_mangle]
pub unsafe extern "C" fn shenhe_hits_count(hits: *const shenhe_hits, text: usize) -> usize {
    // SAFETY: NULL or live (caller's contract).
    unsafe { hits.as_ref() }.map_or(0, |h| h.posts.get(text).map_or(0, Vec::len))
}

/// Writes hit `index` of text `text` to `*out`; `SHENHE_INVALID_ARGUMENT` when either is
/// out of range.
///
/// # Safety
/// `hits` NULL or a live hits handle; `out` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shenhe_hits_get(
    hits: *const shenhe_hits,
    text: usize,
    index: usize,
    out: *mut shenhe_hit,
) -> shenhe_status {
    guard_args(|| {
        // SAFETY: NULL or live (caller's contract).
        let h = unsafe { hits.as_ref() }.ok_or_else(|| null_argument("hits"))?;
        non_null(out, "out")?;
        let hit = h
            .posts
            .get(text)
            .and_then(|p| p.get(index))
            .ok_or_else(|| {
                set_error(format!("no hit {index} of text {text}"));
                shenhe_status::SHENHE_INVALID_ARGUMENT
            })?;
        // SAFETY: `out` is non-NULL and valid for a write.
        unsafe { *out = *hit };
        Ok(())
    })
}

/// Frees a hits handle. NULL is allowed and does nothing.
///
/// # Safety
/// `hits` NULL or a handle from a scan, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn shenhe_hits_free(hits: *mut shenhe_hits) {
    if !hits.is_null() {
        // SAFETY: the handle came from Box::into_raw and is freed once.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(hits) })));
    }
}

/// Like `shenhe_scan_json`, but writes the decision JSON and a NUL into the caller's
/// buffer `buf` of `cap` bytes: no allocation for the caller to free. `*len` receives the
/// JSON's length (without the NUL) on success, and, on `SHENHE_BUFFER_TOO_SMALL` (the
/// one failure that writes an out-parameter), the capacity needed (with the NUL), so
/// the caller can grow the buffer and call again.
///
/// # Safety
/// `engine` NULL or live; `post_json` valid for `post_len` bytes; `buf` NULL or valid for
/// `cap` bytes; `len` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shenhe_scan_json_into(
    engine: *const shenhe_engine,
    post_json: *const u8,
    post_len: usize,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> shenhe_status {
    guard_args(|| {
        // SAFETY: forwarded caller contract.
        let engine = unsafe { engine_ref(engine) }?;
        non_null(buf, "buf")?;
        non_null(len, "len")?;
        // SAFETY: forwarded caller contract.
        let decision =
            unsafe { decide_json(post_json, post_len, |t| engine.handle.load().scan_json(t)) }?;
        let json = crate::jsonl::decision_json(&decision);
        if json.len() >= cap {
            set_error(format!(
                "the buffer holds {cap} bytes; {} are needed",
                json.len() + 1
            ));
            // SAFETY: `len` is non-NULL and valid for a write.
            unsafe { *len = json.len() + 1 };
            return Err(shenhe_status::SHENHE_BUFFER_TOO_SMALL);
        }
        // SAFETY: `buf` holds `cap > json.len()` bytes; `len` is valid for a write.
        unsafe {
            std::ptr::copy_nonoverlapping(json.as_ptr(), buf.cast::<u8>(), json.len());
            *buf.add(json.len()) = 0;
            *len = json.len();
        }
        Ok(())
    })
}

/// Reads the post JSON `ptr[..len]` and decides it with `scan`.
///
/// # Safety
/// `ptr` NULL or valid for `len` bytes.
unsafe fn decide_json(
    ptr: *const u8,
    len: usize,
    scan: impl FnOnce(&str) -> crate::Result<(crate::Post, Decision)>,
) -> Result<Decision, shenhe_status> {
    // SAFETY: forwarded caller contract.
    let text = unsafe { utf8(ptr, len, "the post") }?;
    scan(text).map(|(_, d)| d).map_err(|e| {
        set_error(e.to_string());
        match e.kind() {
            crate::ErrorKind::TooLarge => shenhe_status::SHENHE_TOO_LARGE,
            _ => shenhe_status::SHENHE_INVALID_POST,
        }
    })
}

/// Writes `decision` as a new NUL-terminated JSON string to `*out`.
///
/// # Safety
/// `out` non-NULL and valid for a write.
unsafe fn give_json(decision: &Decision, out: *mut *mut c_char) {
    let json = serde_json::to_string(decision).expect("decisions serialise");
    // JSON escapes NUL, so the string has none.
    let c = CString::new(json).expect("no NUL in JSON");
    // SAFETY: this function's contract.
    unsafe { *out = c.into_raw() };
}

/// The whole pipeline for embedders ([`Pipeline`]): an engine's current rules, an offence
/// ledger for repeat-offence escalation, and optionally a reports directory and an audit
/// store. Thread-safe: share one per forum; concurrent calls share audit commits. Lives
/// from `shenhe_moderator_new*` until `shenhe_moderator_free`; it keeps the engine's rules
/// alive on its own (the engine handle may be freed first), and sees every reload of the
/// engine it was made from.
pub struct shenhe_moderator {
    inner: Pipeline,
}

/// `utc_offset_hours` value meaning: the audit store's calendar (UTC+8 for a new store).
pub const SHENHE_UTC_OFFSET_STORE: i32 = 99;

/// How a moderator is set up. Fill it with `shenhe_moderator_options_init`, then change
/// what you need; the strings are read only during `shenhe_moderator_new_with_options`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct shenhe_moderator_options {
    /// Directory for reports to the authorities (NUL-terminated), or NULL for none. Reports
    /// already there are kept and listed.
    pub reports_dir: *const c_char,
    /// Audit store (NUL-terminated path; created when missing), or NULL for none.
    pub audit_db: *const c_char,
    /// File holding the audit store's key (64 hex digits or 32 bytes), or NULL to read it
    /// from the environment variable `SHENHE_AUDIT_KEY` (no key when unset).
    pub audit_key_file: *const c_char,
    /// Hours after detection by which a report is due (default 24).
    pub report_deadline_hours: u32,
    /// UTC offset of the calendar audit days and report times use, -12 to 14, or
    /// `SHENHE_UTC_OFFSET_STORE` (default) for the store's own (UTC+8 for a new store).
    pub utc_offset_hours: i32,
    /// Repeat-offence escalation (default on).
    pub escalation: bool,
    /// Largest post, its text fields together, in bytes; 0 (default) for the engine's limit.
    pub max_post_bytes: usize,
    /// Most hits listed per post; 0 (default) for the engine's limit.
    pub max_hits: usize,
}

impl Default for shenhe_moderator_options {
    fn default() -> Self {
        shenhe_moderator_options {
            reports_dir: std::ptr::null(),
            audit_db: std::ptr::null(),
            audit_key_file: std::ptr::null(),
            report_deadline_hours: crate::report::DEFAULT_DEADLINE_HOURS,
            utc_offset_hours: SHENHE_UTC_OFFSET_STORE,
            escalation: true,
            max_post_bytes: 0,
            max_hits: 0,
        }
    }
}

/// Fills `*options` with the defaults: no reports, no audit store, reports due in 24 hours,
/// the store's calendar, escalation on, the engine's limits.
///
/// # Safety
/// `options` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shenhe_moderator_options_init(
    options: *mut shenhe_moderator_options,
) -> shenhe_status {
    guard_args(|| {
        non_null(options, "options")?;
        // SAFETY: non-NULL and valid for a write (caller's contract).
        unsafe { options.write(shenhe_moderator_options::default()) };
        Ok(())
    })
}

/// A moderator over `engine` with the defaults and, when given (NUL-terminated, may be
/// NULL), a reports directory and an audit store (key from `SHENHE_AUDIT_KEY`); see
/// `shenhe_moderator_new_with_options`.
///
/// # Safety
/// `engine` NULL or live; `reports_dir` and `audit_db` NULL or NUL-terminated; `out` NULL
/// or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shenhe_moderator_new(
    engine: *const shenhe_engine,
    reports_dir: *const c_char,
    audit_db: *const c_char,
    out: *mut *mut shenhe_moderator,
) -> shenhe_status {
    let options = shenhe_moderator_options {
        reports_dir,
        audit_db,
        ..Default::default()
    };
    // SAFETY: forwarded caller contract; `options` lives for the call.
    unsafe { shenhe_moderator_new_with_options(engine, &options, out) }
}

/// A moderator over `engine`, set up by `*options`: every decision that must be reported
/// is written to the reports directory as a report file and a row of `index.csv` as it is
/// made (`index.html` is rewritten by `shenhe_moderator_free`); every decision is recorded
/// in the audit store before the call that made it returns, and escalation counts the
/// offences already recorded there. `SHENHE_IO_ERROR` when the reports directory cannot be
/// written, `SHENHE_AUDIT_ERROR` when the store cannot be opened or its key is missing,
/// wrong or unreadable, `SHENHE_INVALID_ARGUMENT` for an offset out of range.
///
/// # Safety
/// `engine` NULL or live; `options` NULL or valid for reads, its strings NULL or
/// NUL-terminated; `out` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shenhe_moderator_new_with_options(
    engine: *const shenhe_engine,
    options: *const shenhe_moderator_options,
    out: *mut *mut shenhe_moderator,
) -> shenhe_status {
    guard_args(|| {
        // SAFETY: forwarded caller contract.
        let engine = unsafe { engine_ref(engine) }?;
        // SAFETY: NULL or valid for reads (caller's contract).
        let o = *unsafe { options.as_ref() }.ok_or_else(|| null_argument("options"))?;
        non_null(out, "out")?;
        let mut b = Pipeline::builder(engine.handle.clone())
            .escalation(o.escalation)
            .report_deadline_hours(o.report_deadline_hours);
        if o.utc_offset_hours != SHENHE_UTC_OFFSET_STORE {
            let hours = i8::try_from(o.utc_offset_hours)
                .ok()
                .filter(|h| (-12..=14).contains(h))
                .ok_or_else(|| {
                    set_error(format!(
                        "utc_offset_hours {} is not an offset from -12 to 14",
                        o.utc_offset_hours
                    ));
                    shenhe_status::SHENHE_INVALID_ARGUMENT
                })?;
            b = b.utc_offset_hours(hours);
        }
        if o.max_post_bytes != 0 || o.max_hits != 0 {
            let own = engine.handle.load().limits();
            b = b.limits(crate::Limits {
                max_hits: if o.max_hits == 0 {
                    own.max_hits
                } else {
                    o.max_hits
                },
                max_post_bytes: if o.max_post_bytes == 0 {
                    own.max_post_bytes
                } else {
                    o.max_post_bytes.min(crate::MAX_POST_BYTES_CAP)
                },
            });
        }
        if !o.reports_dir.is_null() {
            // SAFETY: forwarded caller contract.
            b = b.reports(unsafe { path(o.reports_dir) }?);
        }
        if !o.audit_db.is_null() {
            // SAFETY: forwarded caller contract.
            let db = unsafe { path(o.audit_db) }?;
            let key = if o.audit_key_file.is_null() {
                AuditKey::from_env()
            } else {
                // SAFETY: forwarded caller contract.
                let file = unsafe { path(o.audit_key_file) }?;
                AuditKey::from_file(Path::new(file)).map(Some)
            };
            let store = key.and_then(|key| AuditStore::open(db, key));
            b = b.audit(store.map_err(|e| failed(&e))?);
        }
        let inner = b.build().map_err(|e| failed(&e))?;
        // SAFETY: `out` is non-NULL and valid for a write.
        unsafe { *out = Box::into_raw(Box::new(shenhe_moderator { inner })) };
        Ok(())
    })
}

/// Records `e` as the thread's last error and gives its status.
fn failed(e: &crate::Error) -> shenhe_status {
    set_error(e.to_string());
    status_of(e.kind())
}

fn status_of(kind: crate::ErrorKind) -> shenhe_status {
    use crate::ErrorKind as K;
    match kind {
        K::TooLarge => shenhe_status::SHENHE_TOO_LARGE,
        K::Audit | K::AuditKey => shenhe_status::SHENHE_AUDIT_ERROR,
        K::Io | K::BrokenPipe => shenhe_status::SHENHE_IO_ERROR,
        _ => shenhe_status::SHENHE_INVALID_POST,
    }
}

/// Moderates one post given as JSON: scans it, applies escalation (the post's account and
/// IP offences so far), records it in the audit store (returning once the record is
/// durable), writes its report when one is due, and writes the decision JSON (with
/// `measures`) to `*decision_json`, to free with `shenhe_string_free`.
///
/// Fails closed: `SHENHE_INVALID_POST`, `SHENHE_INVALID_UTF8` or `SHENHE_TOO_LARGE` when the
/// post cannot be decided; `SHENHE_AUDIT_ERROR` when its record, `SHENHE_IO_ERROR` when its
/// report could not be written. No decision is given then: hold the post.
///
/// # Safety
/// `moderator` NULL or live; `post_json` valid for `len` bytes; `decision_json` NULL or
/// valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shenhe_moderate_json(
    moderator: *const shenhe_moderator,
    post_json: *const u8,
    len: usize,
    decision_json: *mut *mut c_char,
) -> shenhe_status {
    guard_args(|| {
        // SAFETY: NULL or live (caller's contract).
        let m = unsafe { moderator.as_ref() }.ok_or_else(|| null_argument("moderator"))?;
        non_null(decision_json, "decision_json")?;
        // SAFETY: forwarded caller contract.
        let text = unsafe { utf8(post_json, len, "the post") }?;
        let decision = m.inner.moderate_json(text.as_bytes()).map_err(|e| {
            set_error(e.message.clone());
            status_of(e.kind)
        })?;
        // SAFETY: `decision_json` is non-NULL and valid for a write.
        unsafe { give_json(&decision, decision_json) };
        Ok(())
    })
}

/// Moderates `count` posts laid out like an Arrow string column, as
/// `shenhe_scan_batch_jsonl` reads them (`input`, `data`, `offsets`, `valid`): scanned in
/// parallel on shenhe's pool, then escalated, recorded (one audit commit) and reported in
/// input order. Writes one JSON line per entry to `*decisions` (NUL-terminated,
/// `*decisions_len` bytes without the NUL; free with `shenhe_string_free`): the decision as
/// `shenhe_moderate_json` gives it, or an error line (`{"id":…,"error":"…"}`) with
/// `statuses[i]` saying why. When the batch's records or reports cannot be written every
/// decided entry fails with `SHENHE_AUDIT_ERROR` or `SHENHE_IO_ERROR`: hold those posts.
///
/// # Safety
/// As `shenhe_scan_batch_jsonl`, with `moderator` NULL or live.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn shenhe_moderate_batch_jsonl(
    moderator: *const shenhe_moderator,
    input: shenhe_batch_input,
    data: *const u8,
    offsets: *const usize,
    valid: *const u8,
    count: usize,
    statuses: *mut shenhe_status,
    decisions: *mut *mut c_char,
    decisions_len: *mut usize,
) -> shenhe_status {
    guard_args(|| {
        // SAFETY: NULL or live (caller's contract).
        let m = unsafe { moderator.as_ref() }.ok_or_else(|| null_argument("moderator"))?;
        // SAFETY: forwarded caller contract.
        let column = unsafe { Column::new(data, offsets, count) }?;
        // SAFETY: forwarded caller contract.
        let valid = unsafe { validity(valid, count) };
        non_null(statuses, "statuses")?;
        non_null(decisions, "decisions")?;
        non_null(decisions_len, "decisions_len")?;
        let limits = m.inner.limits();
        let results = m.inner.moderate_entries(count, |i| {
            let raw = column.entry(i).ok_or_else(|| {
                crate::LineError::new(
                    None,
                    "the entry's offsets are not ascending within the data",
                    crate::ErrorKind::InvalidValue,
                )
            })?;
            let is_valid = valid.is_none_or(|v| v[i] != 0);
            match (input, is_valid) {
                (shenhe_batch_input::SHENHE_BATCH_POSTS_JSON, true) => {
                    crate::jsonl::read_post(raw, &limits)
                }
                (shenhe_batch_input::SHENHE_BATCH_POSTS_JSON, false) => Err(crate::LineError::new(
                    None,
                    "the entry is null: no post",
                    crate::ErrorKind::InvalidPost,
                )),
                (shenhe_batch_input::SHENHE_BATCH_TEXTS, _) => {
                    let text = if is_valid {
                        crate::engine::utf8(raw).map_err(|e| {
                            crate::LineError::new(
                                None,
                                format!("not valid UTF-8 at byte {}", e.valid_up_to()),
                                crate::ErrorKind::InvalidPost,
                            )
                        })?
                    } else {
                        ""
                    };
                    Ok((crate::Post::from_text(text), Vec::new()))
                }
            }
        });
        let mut out = Vec::new();
        for (i, r) in results.into_iter().enumerate() {
            let status = match &r {
                Ok(d) => {
                    out.extend_from_slice(&serde_json::to_vec(d).expect("decisions serialise"));
                    shenhe_status::SHENHE_OK
                }
                Err(e) => {
                    out.extend_from_slice(&serde_json::to_vec(e).expect("error lines serialise"));
                    match e.kind {
                        crate::ErrorKind::InvalidValue => shenhe_status::SHENHE_INVALID_ARGUMENT,
                        // A text is never an invalid post: only its UTF-8 can be wrong.
                        crate::ErrorKind::InvalidPost
                            if input == shenhe_batch_input::SHENHE_BATCH_TEXTS =>
                        {
                            shenhe_status::SHENHE_INVALID_UTF8
                        }
                        k => status_of(k),
                    }
                }
            };
            out.push(b'\n');
            // SAFETY: `statuses` is valid for `count` writes (caller's contract).
            unsafe { *statuses.add(i) = status };
        }
        // SAFETY: both out-pointers are non-NULL and valid for a write.
        unsafe { give_lines(out, decisions, decisions_len) };
        Ok(())
    })
}

/// Writes the reports index (`index.html`), marks the audit run finished, and frees the
/// moderator. NULL is allowed and does nothing. Returns `SHENHE_IO_ERROR` when the index,
/// `SHENHE_AUDIT_ERROR` when the run's end could not be written (the moderator is freed all
/// the same).
///
/// # Safety
/// `moderator` NULL or from `shenhe_moderator_new*`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn shenhe_moderator_free(moderator: *mut shenhe_moderator) -> shenhe_status {
    if moderator.is_null() {
        return shenhe_status::SHENHE_OK;
    }
    guard(|| {
        // SAFETY: the moderator came from Box::into_raw and is freed once.
        let m = unsafe { Box::from_raw(moderator) };
        match m.inner.finish() {
            Ok(_) => shenhe_status::SHENHE_OK,
            Err(e) => failed(&e),
        }
    })
}

/// What the batch call keeps of one text's decision.
type BatchEntry = (Action, bool, Vec<Hit>);

/// Copies the calling thread's last error message (NUL-terminated, truncated at a char
/// boundary to fit) into `buf` of `len` bytes; `*written` is its length without the NUL.
/// An empty message when nothing failed yet.
///
/// # Safety
/// `buf` valid for `len` bytes; `written` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shenhe_last_error(
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> shenhe_status {
    guard(|| {
        if buf.is_null() || written.is_null() || len == 0 {
            return shenhe_status::SHENHE_NULL_ARGUMENT;
        }
        let message = LAST_ERROR.with(|e| e.borrow().clone());
        let mut cut = message.len().min(len - 1);
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        // SAFETY: forwarded caller contract; `cut < len`.
        match unsafe { copy_out(&message[..cut], buf, len, written) } {
            Ok(()) => shenhe_status::SHENHE_OK,
            Err(status) => status,
        }
    })
}
