//! `Pipeline` for Python: [`shenhe::Pipeline`], the route every face takes (escalation,
//! audit record, report), so a post moderated from Django gets the same decision, record
//! and report as through `shenhe scan --audit --reports`, C or HTTP.
//!
//! `moderate` waits for the audit commit with the GIL released: Python threads moderating
//! at once share commits (group commit) instead of queueing behind the GIL.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use shenhe::audit::{AuditKey, AuditStore};
use shenhe::Post;

use crate::convert::{decision_dict, decision_list, Input};
use crate::engine::Engine;
use crate::errors::{line_error, post_error, ShenheError};

/// Moderation with memory and consequences: `Pipeline(engine, *, audit=None,
/// audit_key_file=None, reports=None, escalation=True, report_deadline_hours=24,
/// utc_offset_hours=None)` over `engine` (and its reloads). `audit`: an audit store
/// (created when missing), its key from `audit_key_file` or else `$SHENHE_AUDIT_KEY` (none
/// when unset); `reports`: the directory for reports to the authorities; `escalation`:
/// repeat-offence escalation. Raises RecordError when the store or directory cannot be
/// opened, or the store has another writer. Thread-safe; `close()` (or a `with` block)
/// ends the audit run.
#[pyclass(frozen, module = "shenhe")]
pub(crate) struct Pipeline {
    inner: shenhe::Pipeline,
    engine: Py<Engine>,
    closed: AtomicBool,
}

#[pymethods]
impl Pipeline {
    #[new]
    #[pyo3(signature = (engine, *, audit=None, audit_key_file=None, reports=None,
                        escalation=true, report_deadline_hours=24, utc_offset_hours=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        engine: Py<Engine>,
        audit: Option<PathBuf>,
        audit_key_file: Option<PathBuf>,
        reports: Option<PathBuf>,
        escalation: bool,
        report_deadline_hours: u32,
        utc_offset_hours: Option<i8>,
    ) -> PyResult<Pipeline> {
        if utc_offset_hours.is_some_and(|h| !(-12..=14).contains(&h)) {
            return Err(PyValueError::new_err(
                "utc_offset_hours: an offset from -12 to 14",
            ));
        }
        if audit.is_none() && audit_key_file.is_some() {
            return Err(PyValueError::new_err("audit_key_file without audit"));
        }
        let handle = engine.get().handle.clone();
        let built = py.detach(|| {
            let mut b = shenhe::Pipeline::builder(handle)
                .escalation(escalation)
                .report_deadline_hours(report_deadline_hours);
            if let Some(h) = utc_offset_hours {
                b = b.utc_offset_hours(h);
            }
            if let Some(dir) = reports {
                b = b.reports(dir);
            }
            if let Some(db) = audit {
                let key = match &audit_key_file {
                    Some(file) => AuditKey::from_file(file).map(Some),
                    None => AuditKey::from_env(),
                };
                b = b.audit(AuditStore::open(db, key?)?);
            }
            b.build()
        });
        let inner = built.map_err(|e| post_error("pipeline", e.kind(), &e.to_string()))?;
        Ok(Pipeline {
            inner,
            engine,
            closed: AtomicBool::new(false),
        })
    }

    /// Moderates one post (a dict or a str, as `Engine.scan` takes): scans it, applies
    /// escalation, writes its report when one is due and records it, returning the
    /// decision (with `measures`) once the record is durable. Raises InputError for a post
    /// that cannot be decided, RecordError when its record or report could not be written:
    /// no decision then; hold the post.
    fn moderate<'py>(
        &self,
        py: Python<'py>,
        post: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(ShenheError::new_err("the pipeline is closed"));
        }
        let decided = match Input::read(post, "post")? {
            Input::Text(text) => py
                .detach(|| self.inner.moderate(&Post::from_text(text)))
                .map_err(|e| post_error("post", e.kind(), &e.to_string()))?,
            Input::Json(line) => py
                .detach(|| self.inner.moderate_json(&line))
                .map_err(|e| line_error("post", &e))?,
        };
        decision_dict(py, &decided)
    }

    /// Moderates many posts in one go: scanned on every core, then escalated, recorded (one
    /// audit commit for the batch) and reported in input order; returns the decisions in
    /// order. Every post is read first, so one that cannot be decided raises InputError
    /// naming it (`posts[i]`) before anything is recorded. RecordError when the batch's
    /// records or reports could not be written: none of its posts is decided then.
    fn moderate_batch<'py>(
        &self,
        py: Python<'py>,
        posts: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(ShenheError::new_err("the pipeline is closed"));
        }
        let lines = posts
            .try_iter()?
            .enumerate()
            .map(|(i, p)| Input::read(&p?, &format!("posts[{i}]")).map(Input::into_line))
            .collect::<PyResult<Vec<_>>>()?;
        let limits = self.inner.limits();
        let outcome = py.detach(|| {
            for (i, line) in lines.iter().enumerate() {
                shenhe::jsonl::read_post(line, &limits).map_err(|e| (i, e))?;
            }
            let lines: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
            Ok(self.inner.moderate_json_batch(&lines))
        });
        let results = outcome.map_err(|(i, e)| line_error(&format!("posts[{i}]"), &e))?;
        let mut decisions = Vec::with_capacity(results.len());
        for (i, r) in results.into_iter().enumerate() {
            decisions.push(r.map_err(|e| line_error(&format!("posts[{i}]"), &e))?);
        }
        decision_list(py, &decisions)
    }

    /// The engine this pipeline decides with (its reloads apply here too).
    #[getter]
    fn engine(&self, py: Python<'_>) -> Py<Engine> {
        self.engine.clone_ref(py)
    }

    /// Ends the audit run and writes the reports index; afterwards `moderate` raises.
    /// Returns {"records", "commits", "reports"} (reports None without a directory).
    /// Called on garbage collection when not called before; `with Pipeline(...) as p:`
    /// calls it at the end of the block.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(out);
        }
        let finished = py
            .detach(|| self.inner.finish())
            .map_err(|e| post_error("pipeline", e.kind(), &e.to_string()))?;
        out.set_item("records", finished.records)?;
        out.set_item("commits", finished.commits)?;
        out.set_item("reports", finished.reports)?;
        Ok(out)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            // Nobody is left to tell: the run stays unfinished in the store, which is what
            // `audit verify` and `--resume` already handle after a crash.
            let _ = self.inner.finish();
        }
    }
}
