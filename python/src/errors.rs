//! The exceptions, and how shenhe's errors become them. One base class (`ShenheError`) so a
//! caller can catch everything shenhe raises; the subclasses say what the caller must do:
//! fix the rules, fix the post, or hold the post because its record or report was not kept.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use shenhe::{ErrorKind, LineError};

create_exception!(
    shenhe,
    ShenheError,
    PyException,
    "Base class of every error shenhe raises."
);
create_exception!(
    shenhe,
    RulesError,
    ShenheError,
    "Rules that do not load: the message names file:line:column and the rule; the attributes \
     `file`, `line`, `column` and `rule` hold them (None where unknown), `kind` the failure."
);
create_exception!(
    shenhe,
    InputError,
    ShenheError,
    "A post that cannot be decided (not a dict or str, no `text`, a value that is not JSON, \
     over max_post_bytes): the message names the post and the field. Never published as allowed."
);
create_exception!(
    shenhe,
    RecordError,
    ShenheError,
    "The post was decided but its audit record or report could not be kept, or the audit \
     store or reports directory could not be opened: the post is not decided; hold it."
);

/// A rules error with its place as attributes.
pub(crate) fn rules_error(py: Python<'_>, e: &shenhe::Error) -> PyErr {
    if e.kind() == ErrorKind::InvalidValue && e.location().is_none() {
        // A limit out of range (max_post_bytes above the cap), not a rule file's fault.
        return PyValueError::new_err(e.to_string());
    }
    let err = RulesError::new_err(e.to_string());
    let value = err.value(py);
    let location = e.location();
    let set = || -> PyResult<()> {
        value.setattr("kind", format!("{:?}", e.kind()))?;
        value.setattr(
            "file",
            location.map(|l| l.file.to_string_lossy().into_owned()),
        )?;
        value.setattr("line", location.map(|l| l.line))?;
        value.setattr("column", location.map(|l| l.column))?;
        value.setattr("rule", e.rule())?;
        Ok(())
    };
    match set() {
        Ok(()) => err,
        Err(failed) => failed,
    }
}

/// The exception for a post that failed with `kind`: `where_` names the post (`post`,
/// `posts[3]`).
pub(crate) fn post_error(where_: &str, kind: ErrorKind, message: &str) -> PyErr {
    let message = format!("{where_}: {message}");
    match kind {
        ErrorKind::Audit | ErrorKind::AuditKey | ErrorKind::Io => RecordError::new_err(message),
        _ => InputError::new_err(message),
    }
}

/// [`post_error`] for an error line.
pub(crate) fn line_error(where_: &str, e: &LineError) -> PyErr {
    post_error(where_, e.kind, &e.message)
}
