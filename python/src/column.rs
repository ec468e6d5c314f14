//! An Arrow string column decided in one call, for `shenhe_spark`: the column's buffers
//! come in as bytes (data, the slice's offsets of 4 or 8 bytes, its validity bitmap with
//! the bit where the slice starts, exactly as Arrow lays them out), and one JSON line per
//! entry goes out, the
//! line `shenhe scan` writes for it, error lines included. pyarrow's JSON reader (C++) turns
//! those into columns, so no Python code runs per post.
//!
//! It is the C API's `shenhe_scan_batch_jsonl` (same messages for null and unreadable
//! entries) without raw pointers: offsets that do not fit the data fail their entry, never
//! read out of bounds, and each entry is guarded on its own, so even a bug in shenhe fails
//! one row of a Spark task, not the task.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::PyValueError;
use pyo3::PyResult;
use shenhe::{Engine, ErrorKind, LineError, Post};

/// A borrowed Arrow string column (or a slice of one).
pub(crate) struct Column<'a> {
    data: &'a [u8],
    offsets: &'a [u8],
    width: usize,
    validity: Option<&'a [u8]>,
    /// The bit of `validity` that holds entry 0.
    bit: usize,
}

impl<'a> Column<'a> {
    /// Checks that `offsets` (`count + 1` of them, each `width` bytes: 4 for `string`, 8 for
    /// `large_string`) and `validity` (from bit `bit` on) hold `count` entries.
    pub(crate) fn new(
        data: &'a [u8],
        offsets: &'a [u8],
        width: usize,
        validity: Option<&'a [u8]>,
        bit: usize,
        count: usize,
    ) -> PyResult<Column<'a>> {
        if width != 4 && width != 8 {
            return Err(PyValueError::new_err(format!(
                "offset_width: 4 or 8, got {width}"
            )));
        }
        let needed = count.checked_add(1).and_then(|n| n.checked_mul(width));
        if needed.is_none_or(|n| n > offsets.len()) {
            return Err(PyValueError::new_err(format!(
                "offsets: {} bytes cannot hold the offsets of {count} entries",
                offsets.len()
            )));
        }
        if let Some(v) = validity {
            let needed = bit.checked_add(count).map(|n| n.div_ceil(8));
            if needed.is_none_or(|n| n > v.len()) {
                return Err(PyValueError::new_err(format!(
                    "validity: {} bytes cannot hold {count} entries from bit {bit}",
                    v.len()
                )));
            }
        }
        Ok(Column {
            data,
            offsets,
            width,
            validity,
            bit,
        })
    }

    fn offset(&self, i: usize) -> Option<usize> {
        let at = i * self.width;
        let raw = &self.offsets[at..at + self.width];
        if self.width == 4 {
            usize::try_from(i32::from_le_bytes(raw.try_into().ok()?)).ok()
        } else {
            usize::try_from(i64::from_le_bytes(raw.try_into().ok()?)).ok()
        }
    }

    /// Entry `i` of the slice: `Ok(None)` when null, `Err` when its offsets do not fit.
    fn entry(&self, i: usize) -> Result<Option<&'a [u8]>, ()> {
        if let Some(v) = self.validity {
            let at = self.bit + i;
            if v[at / 8] & (1 << (at % 8)) == 0 {
                return Ok(None);
            }
        }
        let (Some(s), Some(e)) = (self.offset(i), self.offset(i + 1)) else {
            return Err(());
        };
        self.data.get(s..e).map(Some).ok_or(())
    }

    /// Entry `i` decided: its decision line, or its error line (no newline).
    pub(crate) fn decide(&self, engine: &Engine, i: usize, posts_json: bool) -> Vec<u8> {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let raw = self
                .entry(i)
                .map_err(|()| invalid("the entry's offsets are not ascending within the data"))?;
            match (raw, posts_json) {
                (None, false) => Err(invalid("the entry is null: no text to decide")),
                (None, true) => Err(invalid("the entry is null: no post")),
                (Some(raw), false) => {
                    let text = std::str::from_utf8(raw).map_err(|e| {
                        invalid(&format!("not valid UTF-8 at byte {}", e.valid_up_to()))
                    })?;
                    engine
                        .try_scan(&Post::from_text(text))
                        .map_err(|e| LineError::new(None, e.message(), e.kind()))
                }
                (Some(raw), true) => {
                    shenhe::jsonl::scan_line(engine, raw, false).map(|(_, d, _)| d)
                }
            }
        }));
        let line = match outcome {
            Ok(Ok(decision)) => serde_json::to_vec(&decision),
            Ok(Err(error)) => serde_json::to_vec(&error),
            Err(payload) => {
                let why = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                serde_json::to_vec(&invalid(&format!(
                    "internal error (panic caught at the Python boundary): {why}"
                )))
            }
        };
        line.expect("decisions and error lines serialise")
    }
}

fn invalid(message: &str) -> LineError {
    LineError::new(None, message, ErrorKind::InvalidPost)
}
