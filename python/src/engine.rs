//! `RuleSet` and `Engine` for Python.
//!
//! Both are frozen Python classes over immutable Rust values, so any number of Python
//! threads may share one without a lock; `Engine.reload` swaps the compiled rules through
//! an [`EngineHandle`], the same slot a `Pipeline` built on the engine reads.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use rayon::prelude::*;
use shenhe::{EngineHandle, Limits, Post};

use crate::convert::{decision_dict, decision_list, text_of, to_python, Input};
use crate::errors::{line_error, rules_error};

/// The most threads a batch may ask for, as `shenhe scan --threads`.
const MAX_THREADS: usize = 1024;

/// A loaded rule set: `RuleSet.from_path`, `RuleSet.bundled()`, `RuleSet.from_toml`.
#[pyclass(frozen, module = "shenhe")]
pub(crate) struct RuleSet {
    pub(crate) inner: Arc<shenhe::RuleSet>,
}

#[pymethods]
impl RuleSet {
    /// Loads a rule file, or every `*.toml` directly inside a directory.
    #[staticmethod]
    fn from_path(py: Python<'_>, path: PathBuf) -> PyResult<RuleSet> {
        let loaded = py.detach(|| shenhe::RuleSet::from_path(&path));
        loaded
            .map(|r| RuleSet { inner: Arc::new(r) })
            .map_err(|e| rules_error(py, &e))
    }

    /// The rule sets bundled with shenhe.
    #[staticmethod]
    fn bundled() -> RuleSet {
        RuleSet {
            inner: Arc::new(shenhe::RuleSet::bundled()),
        }
    }

    /// A rule set from the text of one rule file (str, or UTF-8 bytes); `base` is the
    /// directory its `terms_file` paths are taken from. Errors name the place as `<input>`.
    #[staticmethod]
    #[pyo3(signature = (source, base=None))]
    fn from_toml(
        py: Python<'_>,
        source: &Bound<'_, PyAny>,
        base: Option<PathBuf>,
    ) -> PyResult<RuleSet> {
        let text = if let Ok(s) = source.cast::<PyString>() {
            s.to_cow()?.into_owned()
        } else if let Ok(b) = source.cast::<PyBytes>() {
            String::from_utf8(b.as_bytes().to_vec()).map_err(|e| {
                PyValueError::new_err(format!(
                    "rules: not valid UTF-8 at byte {}",
                    e.utf8_error().valid_up_to()
                ))
            })?
        } else {
            return Err(PyTypeError::new_err("rules: expected a str or bytes"));
        };
        let loaded = py.detach(|| match &base {
            Some(base) => shenhe::RuleSet::from_toml_str_with_base(&text, base),
            None => shenhe::RuleSet::from_toml_str(&text),
        });
        loaded
            .map(|r| RuleSet { inner: Arc::new(r) })
            .map_err(|e| rules_error(py, &e))
    }

    /// `[ruleset] name`, or the path it was loaded from.
    #[getter]
    fn name(&self) -> String {
        self.inner.info().name.clone()
    }

    /// `[ruleset] version`, or "".
    #[getter]
    fn version(&self) -> String {
        self.inner.info().version.clone()
    }

    /// SHA-256 (hex) of the loaded rule set: the `ruleset.hash` of its decisions.
    #[getter]
    fn hash(&self) -> String {
        self.inner.hash().to_owned()
    }

    /// The number of rules.
    fn __len__(&self) -> usize {
        self.inner.rules().len()
    }

    fn __repr__(&self) -> String {
        let info = self.inner.info();
        format!(
            "<shenhe.RuleSet {:?} {:?}, {} rules, hash {}>",
            info.name,
            info.version,
            self.inner.rules().len(),
            &info.hash[..info.hash.len().min(12)]
        )
    }
}

/// A rule set compiled for scanning: `Engine(ruleset=None, *, max_hits=None,
/// max_post_bytes=None)` compiles `ruleset` (the bundled rules when None) with the per-post
/// limits of `shenhe scan --max-hits/--max-post-bytes`. Thread-safe: share one per process.
#[pyclass(frozen, module = "shenhe")]
pub(crate) struct Engine {
    pub(crate) handle: EngineHandle,
    limits: Limits,
}

impl Engine {
    fn compile(
        py: Python<'_>,
        rules: &shenhe::RuleSet,
        limits: Limits,
    ) -> PyResult<shenhe::Engine> {
        py.detach(|| shenhe::Engine::with_limits(rules, limits))
            .map_err(|e| rules_error(py, &e))
    }
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (ruleset=None, *, max_hits=None, max_post_bytes=None))]
    fn new(
        py: Python<'_>,
        ruleset: Option<PyRef<'_, RuleSet>>,
        max_hits: Option<usize>,
        max_post_bytes: Option<usize>,
    ) -> PyResult<Engine> {
        let defaults = Limits::default();
        let limits = Limits {
            max_hits: max_hits.unwrap_or(defaults.max_hits),
            max_post_bytes: max_post_bytes.unwrap_or(defaults.max_post_bytes),
        };
        let rules = match &ruleset {
            Some(r) => r.inner.clone(),
            None => Arc::new(shenhe::RuleSet::bundled()),
        };
        let engine = Engine::compile(py, &rules, limits)?;
        Ok(Engine {
            handle: EngineHandle::new(engine),
            limits,
        })
    }

    /// Decides one post: a dict with `text` and optional metadata (id, title, board, time,
    /// poster), or a str. Returns the decision as `shenhe scan --no-escalation` writes it
    /// (without `line`). Raises InputError for a post that cannot be decided.
    fn scan<'py>(&self, py: Python<'py>, post: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let input = Input::read(post, "post")?;
        let engine = self.handle.load();
        let decision = py
            .detach(|| input.decide(&engine))
            .map_err(|e| line_error("post", &e))?;
        decision_dict(py, &decision)
    }

    /// Decides many posts on `threads` threads (0: every core; 1: this thread only), in
    /// order. Raises InputError naming the first post (`posts[i]`) that cannot be decided.
    #[pyo3(signature = (posts, threads=0))]
    fn scan_batch<'py>(
        &self,
        py: Python<'py>,
        posts: &Bound<'py, PyAny>,
        threads: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        check_threads(threads)?;
        let inputs = posts
            .try_iter()?
            .enumerate()
            .map(|(i, p)| Input::read(&p?, &format!("posts[{i}]")))
            .collect::<PyResult<Vec<_>>>()?;
        let engine = self.handle.load();
        let results = py.detach(|| run(threads, inputs.len(), |i| inputs[i].decide(&engine)))?;
        let mut decisions = Vec::with_capacity(results.len());
        for (i, r) in results.into_iter().enumerate() {
            decisions.push(r.map_err(|e| line_error(&format!("posts[{i}]"), &e))?);
        }
        decision_list(py, &decisions)
    }

    /// What the rules make of `text`, for a person: the decision, the text as each
    /// normalisation profile folds it, the hit spans marked with ⟦…⟧, and where each rule
    /// that hit is defined (file:line:column) with its category's title.
    fn explain<'py>(
        &self,
        py: Python<'py>,
        text: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let text = text_of(text, &"text")?;
        let engine = self.handle.load();
        let (decision, folded) = py.detach(|| {
            let decision = engine.scan(&Post::from_text(text.as_str()));
            (decision, engine.folded_forms(&text))
        });
        let mut marked = String::with_capacity(text.len() + 16);
        let mut pos = 0;
        for (s, e) in decision.spans(shenhe::Field::Text) {
            marked.push_str(&text[pos..s]);
            marked.push('⟦');
            marked.push_str(&text[s..e]);
            marked.push('⟧');
            pos = e;
        }
        marked.push_str(&text[pos..]);
        let mut rules = serde_json::Map::new();
        for hit in &decision.hits {
            let rule = engine.rules().rule(&hit.rule);
            let category = engine.rules().category(hit.category);
            rules.insert(
                hit.rule.to_string(),
                serde_json::json!({
                    "location": rule.map(|r| r.location.to_string()),
                    "category": category.map(|c| format!("{} {}", c.label(), c.title)),
                }),
            );
        }
        let folded: Vec<_> = folded
            .into_iter()
            .map(|(steps, text)| {
                let steps: Vec<&str> = steps.iter().map(|s| s.as_str()).collect();
                serde_json::json!({"steps": steps, "text": text})
            })
            .collect();
        let out = serde_json::json!({
            "text": text,
            "marked": marked,
            "folded": folded,
            "rules": rules,
            "decision": decision,
        });
        to_python(py, &out)
    }

    /// Compiles `ruleset` and swaps it in atomically, for this engine and every Pipeline
    /// built on it: scans under way finish on the old rules. On error the old rules stay.
    fn reload(&self, py: Python<'_>, ruleset: PyRef<'_, RuleSet>) -> PyResult<()> {
        let engine = Engine::compile(py, &ruleset.inner, self.limits)?;
        self.handle.reload(engine);
        Ok(())
    }

    /// Loads now what scans would otherwise load on first use (jieba's dictionary, about
    /// 150 ms, started in the background when the engine was built), with the GIL
    /// released; returns once it is loaded. Call it where a wait is harmless (a worker's
    /// start, after a reload) so that no post waits for it.
    fn warm_up(&self, py: Python<'_>) {
        let engine = self.handle.load();
        py.detach(|| engine.warm_up());
    }

    /// The rule set in force: {"name", "version", "hash"}.
    #[getter]
    fn ruleset<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.handle.load();
        let info = engine.rules().info();
        to_python(py, &**info)
    }

    /// Decides an Arrow string column (for `shenhe_spark`): see [`crate::column`].
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (data, offsets, offset_width, validity, validity_bit, count, posts_json, threads))]
    fn _decide_column<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyBytes>,
        offsets: &Bound<'py, PyBytes>,
        offset_width: usize,
        validity: Option<Bound<'py, PyBytes>>,
        validity_bit: usize,
        count: usize,
        posts_json: bool,
        threads: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        check_threads(threads)?;
        let column = crate::column::Column::new(
            data.as_bytes(),
            offsets.as_bytes(),
            offset_width,
            validity.as_ref().map(|v| v.as_bytes()),
            validity_bit,
            count,
        )?;
        let engine = self.handle.load();
        let lines = py.detach(|| {
            run(threads, count, |i| column.decide(&engine, i, posts_json)).map(|lines| {
                let mut out = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
                for line in lines {
                    out.extend_from_slice(&line);
                    out.push(b'\n');
                }
                out
            })
        })?;
        Ok(PyBytes::new(py, &lines))
    }

    fn __repr__(&self) -> String {
        let engine = self.handle.load();
        let info = engine.rules().info();
        format!(
            "<shenhe.Engine {:?} {:?}, hash {}>",
            info.name,
            info.version,
            &info.hash[..info.hash.len().min(12)]
        )
    }
}

fn check_threads(threads: usize) -> PyResult<()> {
    if threads > MAX_THREADS {
        return Err(PyValueError::new_err(format!(
            "threads: at most {MAX_THREADS}, got {threads}"
        )));
    }
    Ok(())
}

/// `f(0..n)` in order: on this thread (`threads` 1), rayon's shared pool (0), or a pool of
/// `threads` threads for this call.
pub(crate) fn run<T: Send>(
    threads: usize,
    n: usize,
    f: impl Fn(usize) -> T + Sync + Send,
) -> PyResult<Vec<T>> {
    let parallel = || (0..n).into_par_iter().with_min_len(4).map(&f).collect();
    match threads {
        1 => Ok((0..n).map(&f).collect()),
        0 => Ok(parallel()),
        k => rayon::ThreadPoolBuilder::new()
            .num_threads(k)
            .build()
            .map(|pool| pool.install(parallel))
            .map_err(|e| PyValueError::new_err(format!("cannot start {k} threads: {e}"))),
    }
}
