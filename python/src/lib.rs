//! `shenhe._shenhe`: the native half of the `shenhe` Python package (the pure-Python half
//! in `python/shenhe/` re-exports it, with type stubs).
//!
//! Python reaches the same code as `shenhe scan`: a post given as a dict is written out as
//! the JSON line `shenhe scan` would read and goes through [`shenhe::jsonl`] (the line
//! contract: duplicate keys, lenient metadata with warnings, the size limit), and a
//! decision comes back as the JSON value `shenhe scan` writes, as a dict. So a post decided
//! from Python, from the command line, from C or over HTTP gets the same answer.
//!
//! The GIL is held only to read Python objects and to build the result; every scan, batch,
//! rule compilation and audit commit runs with it released, so Python threads scan on as
//! many cores as they have. Nothing here panics on input: bad input is a Python exception
//! naming what and where, and a panic inside shenhe reaches Python as pyo3's
//! `PanicException` (or, in the Arrow column call, as one entry's error), never as a crash.

use pyo3::prelude::*;

mod column;
mod convert;
mod engine;
mod errors;
mod pipeline;

/// The module: classes, exceptions and the version.
#[pymodule]
fn _shenhe(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<engine::RuleSet>()?;
    m.add_class::<engine::Engine>()?;
    m.add_class::<pipeline::Pipeline>()?;
    m.add("ShenheError", py.get_type::<errors::ShenheError>())?;
    m.add("RulesError", py.get_type::<errors::RulesError>())?;
    m.add("InputError", py.get_type::<errors::InputError>())?;
    m.add("RecordError", py.get_type::<errors::RecordError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
