"""Arrow columns in, decision columns out: engines cached per rule set and process, and the
batch call that turns an Arrow string column into decision columns.

One call per Arrow batch into the `shenhe` extension (`Engine._decide_column`): the column's
buffers are handed over as they are (slices and null entries included), shenhe decides every
entry with the GIL released and returns one JSON line per entry, the decision `shenhe scan`
writes; the lines become Arrow columns in pyarrow's JSON reader (C++), so no Python code runs
per post.
"""
import hashlib
import sys
import tempfile
import threading
from pathlib import Path

try:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pajson
except ImportError as e:  # the wheel's extras: the engine alone does not need pyarrow
    raise ImportError(f"shenhe_spark needs pyarrow ({e}): install the shenhe wheel with its `arrow` or `spark` "
                      "extra (from the repository: pip install './python[spark]')") from e

import shenhe
from shenhe import ShenheError

# The decision columns, in Spark-compatible Arrow types (signed integers, 32-bit offsets).
HIT_TYPE = pa.struct([
    ("rule", pa.string()),
    ("category", pa.int32()),
    ("severity", pa.string()),
    ("field", pa.string()),
    ("start", pa.int64()),
    ("end", pa.int64()),
    ("char_start", pa.int64()),
    ("char_end", pa.int64()),
    ("matched", pa.string()),
    ("term", pa.string()),
    ("steps", pa.list_(pa.string())),
])
MASKED_FIELD_TYPE = pa.struct([("field", pa.string()), ("masked", pa.string())])
# What shenhe writes per line (the subset kept as columns; `id`, `line` and `ruleset` are not
# read back: the row keeps its own columns and `ruleset` is the engine's hash).
_LINE_SCHEMA = pa.schema([
    ("action", pa.string()),
    ("report", pa.bool_()),
    ("categories", pa.list_(pa.int32())),
    ("severity", pa.string()),
    ("hits", pa.list_(HIT_TYPE)),
    ("masked", pa.string()),
    ("masked_fields", pa.list_(MASKED_FIELD_TYPE)),
    ("truncated", pa.bool_()),
    ("warnings", pa.list_(pa.string())),
    ("error", pa.string()),
])
DECISION_SCHEMA = pa.schema(
    [f for f in _LINE_SCHEMA if f.name != "error"] + [("ruleset", pa.string()), ("error", pa.string())]
)
DECISION_COLUMNS = DECISION_SCHEMA.names


class RuleSource:
    """A rule set as it travels to Spark executors (in a broadcast): the bundled rules, the
    bytes of one rule file, or every file of a rules directory. `key` is a digest of the
    content, so executors build one engine per rule set and process."""

    def __init__(self, kind, files):
        self.kind = kind  # "bundled", "bytes" or "files"
        self.files = files  # [(relative path, bytes)]
        digest = hashlib.sha256(kind.encode())
        for name, data in files:
            digest.update(name.encode() + b"\0" + len(data).to_bytes(8, "little") + data)
        self.key = digest.hexdigest()

    @classmethod
    def of(cls, rules):
        """`rules`: None for the bundled rules, bytes of a rule file, or a path to a rule file
        or a directory of them (read here, on the driver)."""
        if rules is None:
            return cls("bundled", [])
        if isinstance(rules, RuleSource):
            return rules
        if isinstance(rules, (bytes, bytearray, memoryview)):
            return cls("bytes", [("rules.toml", bytes(rules))])
        root = Path(rules)
        if root.is_file():
            return cls("files", [(root.name, root.read_bytes())])
        if root.is_dir():
            files = sorted(p for p in root.rglob("*") if p.is_file())
            return cls("files", [(str(p.relative_to(root)), p.read_bytes()) for p in files])
        raise FileNotFoundError(f"rules: no such file or directory: {rules}")

    def materialise(self):
        """The path to load from: the files written once under the temporary directory."""
        base = Path(tempfile.gettempdir()) / f"shenhe-rules-{self.key[:24]}"
        if not base.exists():
            staging = Path(tempfile.mkdtemp(prefix="shenhe-rules-"))
            for name, data in self.files:
                target = staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            try:
                staging.rename(base)
            except OSError:  # another worker process got there first
                pass
        return base / self.files[0][0] if len(self.files) == 1 else base


class Engine:
    """A compiled rule set for Arrow columns (thread-safe). Use `Engine.cached(rules)` on
    executors."""

    def __init__(self, source=None):
        self.source = RuleSource.of(source)
        if self.source.kind == "bundled":
            rules = shenhe.RuleSet.bundled()
        elif self.source.kind == "bytes":
            rules = shenhe.RuleSet.from_toml(self.source.files[0][1])
        else:
            rules = shenhe.RuleSet.from_path(self.source.materialise())
        self.engine = shenhe.Engine(rules)
        self.ruleset_hash = rules.hash

    _cache = {}
    _cache_lock = threading.Lock()

    @classmethod
    def cached(cls, rules=None):
        """One engine per rule set and process (Spark reuses its Python workers across tasks,
        so the rules are compiled once per worker, not once per task)."""
        source = RuleSource.of(rules)
        with cls._cache_lock:
            engine = cls._cache.get(source.key)
            if engine is None:
                engine = cls(source)
                cls._cache[source.key] = engine
            return engine

    def decide(self, column, posts_json=False, threads=1):
        """The decision columns (a `pa.RecordBatch` in DECISION_SCHEMA, one row per entry) of
        a string column: texts, or posts as JSON when `posts_json`. A null text, a null or
        unreadable post JSON, or a post over the size limit, gets `error`
        and null decision columns, never an exception. `threads=1` decides on this thread
        only; 0 uses every core."""
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if pa.types.is_string_view(column.type):
            column = column.cast(pa.string())
        if pa.types.is_string(column.type):
            width = 4
        elif pa.types.is_large_string(column.type):
            width = 8
        else:
            raise TypeError(f"expected a string column, got {column.type}")
        if sys.byteorder != "little":
            raise NotImplementedError("Arrow buffers are read as little-endian")
        n = len(column)
        if n == 0:
            return pa.RecordBatch.from_pylist([], schema=DECISION_SCHEMA)
        validity_buf, offsets_buf, data_buf = column.buffers()[:3]
        start = column.offset
        # Only the slice's part of the offsets and bitmap is copied; the data stays whole
        # (its offsets point into it), which for a Spark batch is the batch's own buffer.
        offsets = offsets_buf.slice(start * width, (n + 1) * width).to_pybytes()
        validity, bit = None, 0
        if column.null_count and validity_buf is not None:
            validity, bit = validity_buf.slice(start // 8, (start % 8 + n + 7) // 8).to_pybytes(), start % 8
        data = data_buf.to_pybytes() if data_buf is not None else b""
        lines = self.engine._decide_column(data, offsets, width, validity, bit, n, posts_json, threads)
        return self._columns(lines, n)

    def _columns(self, lines, n):
        table = pajson.read_json(
            pa.BufferReader(lines),
            # One block for a usual batch; at most 1 GiB (the reader's blocks are int32), which
            # still holds any line (a post is at most 16 MiB).
            read_options=pajson.ReadOptions(use_threads=False, block_size=min(len(lines) + 1, 1 << 30)),
            parse_options=pajson.ParseOptions(explicit_schema=_LINE_SCHEMA, unexpected_field_behavior="ignore"),
        )
        if table.num_rows != n:
            raise ShenheError(f"{n} entries gave {table.num_rows} decision lines")
        batch = table.combine_chunks().to_batches()[0]
        decided = pc.is_null(batch.column("error"))
        columns = {name: batch.column(name) for name in _LINE_SCHEMA.names}
        # Written only when true, or when not empty: false and [] for every decided post.
        columns["truncated"] = pc.if_else(decided, pc.fill_null(columns["truncated"], False), None)
        for name in ("masked_fields", "warnings"):
            col = columns[name]
            empty = pa.repeat(pa.scalar([], col.type), n)
            columns[name] = pc.if_else(decided, pc.coalesce(col, empty), pa.nulls(n, col.type))
        columns["ruleset"] = pa.repeat(pa.scalar(self.ruleset_hash, pa.string()), n)
        return pa.RecordBatch.from_arrays([columns[c] for c in DECISION_COLUMNS], schema=DECISION_SCHEMA)


def scan_arrow(column, rules=None, posts_json=False, threads=1):
    """Decides every entry of a pyarrow string column (`pa.Array` or `pa.ChunkedArray`, slices
    and nulls welcome): the decision columns as a `pa.RecordBatch`, one row per entry, in
    order. `rules`: None (bundled), bytes of a rule file, or a path; the engine is cached per
    rule set and process."""
    return Engine.cached(rules).decide(column, posts_json=posts_json, threads=threads)
