//! Posts in from Python, decisions out to Python.
//!
//! A dict post is written as the JSON line `shenhe scan` would read, and read back through
//! [`shenhe::jsonl::read_post`], rather than mapped field by field onto [`shenhe::Post`]:
//! that way the line contract (metadata of the wrong type dropped with a warning, a numeric
//! id beyond 64 bits kept as text, the size limit) is the one the command line applies,
//! not a second copy of it that could drift. A decision goes out through its serde form,
//! so the dict has exactly the keys and values of the line `shenhe scan` writes.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use shenhe::{Decision, Engine, LineError, Post};

use crate::errors::InputError;

/// Nesting deeper than this is refused: a post is a flat object with one nested `poster`,
/// and a dict that contains itself must not recurse forever.
const MAX_DEPTH: usize = 32;

/// A post as read from Python, before the GIL is released.
pub(crate) enum Input {
    /// A bare text: `{"text": …}` with nothing else.
    Text(String),
    /// A dict, written out as its JSON line.
    Json(Vec<u8>),
}

impl Input {
    /// Reads `obj` (a dict with `text` and optional metadata, or a str); `where_` names it
    /// in errors (`post`, `posts[3]`).
    pub(crate) fn read(obj: &Bound<'_, PyAny>, where_: &str) -> PyResult<Input> {
        if let Ok(s) = obj.cast::<PyString>() {
            return Ok(Input::Text(text_of(s, &where_)?));
        }
        let Ok(dict) = obj.cast::<PyDict>() else {
            return Err(InputError::new_err(format!(
                "{where_}: expected a dict with `text` or a str, got {}",
                type_name(obj)
            )));
        };
        match dict.get_item("text")? {
            None => {
                return Err(InputError::new_err(format!(
                    "{where_}: no `text`: a post must have a text (a str; \"\" for an empty one)"
                )))
            }
            Some(t) if !t.is_instance_of::<PyString>() => {
                return Err(InputError::new_err(format!(
                    "{where_}.text: expected a str, got {}",
                    type_name(&t)
                )))
            }
            Some(_) => {}
        }
        let mut out = Vec::with_capacity(256);
        write_json(obj, Place::Root(where_), &mut out, 0)?;
        Ok(Input::Json(out))
    }

    /// The post as the JSON line `shenhe scan` would read.
    pub(crate) fn into_line(self) -> Vec<u8> {
        match self {
            Input::Text(text) => {
                serde_json::to_vec(&serde_json::json!({ "text": text })).expect("a text serialises")
            }
            Input::Json(line) => line,
        }
    }

    /// Decides the post with `engine`, as `shenhe scan --no-escalation` decides its line.
    pub(crate) fn decide(&self, engine: &Engine) -> Result<Decision, LineError> {
        match self {
            Input::Text(text) => engine
                .try_scan(&Post::from_text(text.as_str()))
                .map_err(|e| LineError::new(None, e.message(), e.kind())),
            Input::Json(line) => shenhe::jsonl::scan_line(engine, line, false).map(|(_, d, _)| d),
        }
    }
}

pub(crate) fn text_of(s: &Bound<'_, PyString>, where_: &dyn std::fmt::Display) -> PyResult<String> {
    // A str with lone surrogates has no UTF-8 form: say where it is.
    s.to_cow()
        .map(|c| c.into_owned())
        .map_err(|e| InputError::new_err(format!("{where_}: not valid Unicode text ({e})")))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "an unknown type".to_owned())
}

/// Where a value sits in the post (`post.poster.port`, `posts[3].id`), spelled out only
/// when an error needs it: building the name for every value cost more than writing it.
#[derive(Clone, Copy)]
enum Place<'a> {
    Root(&'a str),
    Key(&'a Place<'a>, &'a str),
    Index(&'a Place<'a>, usize),
}

impl std::fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Root(name) => f.write_str(name),
            Place::Key(parent, key) => write!(f, "{parent}.{key}"),
            Place::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// Writes `obj` as JSON. Only what JSON has: dict (str keys), list, tuple, str, int,
/// finite float, bool, None; anything else is an error naming its place.
fn write_json(
    obj: &Bound<'_, PyAny>,
    at: Place<'_>,
    out: &mut Vec<u8>,
    depth: usize,
) -> PyResult<()> {
    if depth > MAX_DEPTH {
        return Err(InputError::new_err(format!(
            "{at}: nested more than {MAX_DEPTH} levels deep"
        )));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        let text = text_of(s, &at)?;
        serde_json::to_writer(&mut *out, &text).expect("a str serialises");
    } else if obj.is_none() {
        out.extend_from_slice(b"null");
    } else if let Ok(b) = obj.cast::<PyBool>() {
        // Before int: a bool is an int to Python, not to JSON.
        out.extend_from_slice(if b.is_true() { b"true" } else { b"false" });
    } else if obj.is_instance_of::<PyInt>() {
        match obj.extract::<i64>() {
            Ok(n) => out.extend_from_slice(n.to_string().as_bytes()),
            // Beyond 64 bits: its digits, as the JSON line would carry them.
            Err(_) => out.extend_from_slice(obj.str()?.to_cow()?.as_bytes()),
        }
    } else if obj.is_instance_of::<PyFloat>() {
        let f: f64 = obj.extract()?;
        if !f.is_finite() {
            return Err(InputError::new_err(format!(
                "{at}: {f} is not a JSON number"
            )));
        }
        serde_json::to_writer(&mut *out, &f).expect("a finite float serialises");
    } else if let Ok(dict) = obj.cast::<PyDict>() {
        out.push(b'{');
        for (i, (key, value)) in dict.iter().enumerate() {
            let Ok(key) = key.cast::<PyString>() else {
                return Err(InputError::new_err(format!(
                    "{at}: keys must be str, got {}",
                    type_name(&key)
                )));
            };
            let key = text_of(key, &at)?;
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, &key).expect("a str serialises");
            out.push(b':');
            write_json(&value, Place::Key(&at, &key), out, depth + 1)?;
        }
        out.push(b'}');
    } else if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        out.push(b'[');
        for (i, item) in obj.try_iter()?.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json(&item?, Place::Index(&at, i), out, depth + 1)?;
        }
        out.push(b']');
    } else {
        return Err(InputError::new_err(format!(
            "{at}: a {} is not JSON (times are RFC 3339 strings: use .isoformat())",
            type_name(obj)
        )));
    }
    Ok(())
}

/// Any serde value (an explanation, a rule set's name, version and hash) as Python objects.
pub(crate) fn to_python<'py, T: serde::Serialize + ?Sized>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(pythonize::pythonize(py, value)?)
}

/// A decision as a dict, with exactly the keys and values of the line `shenhe scan` writes
/// (built from its serde form, so fields skipped there are absent here).
pub(crate) fn decision_dict<'py>(py: Python<'py>, d: &Decision) -> PyResult<Bound<'py, PyAny>> {
    Ok(pythonize::pythonize(py, d)?)
}

/// Decisions as a list of dicts.
pub(crate) fn decision_list<'py>(py: Python<'py>, ds: &[Decision]) -> PyResult<Bound<'py, PyAny>> {
    Ok(pythonize::pythonize(py, ds)?)
}
