"""The native side: libshenhe loaded with ctypes, engines cached per process, and the batch
call that turns an Arrow string column into decision columns.

One C call per Arrow batch (`shenhe_scan_batch_jsonl`): the column's buffers are handed to
shenhe as they are (slices and null entries included), shenhe decides every entry on the
calling thread and returns one JSON line per entry, the decision `shenhe scan` writes; the
lines become Arrow columns in pyarrow's JSON reader (C++), so no Python code runs per post.
"""
import ctypes
import hashlib
import os
import tempfile
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

LIBRARY_NAME = "libshenhe.so"

OK = 0
STATUS_NAMES = {
    0: "SHENHE_OK",
    1: "SHENHE_NULL_ARGUMENT",
    2: "SHENHE_INVALID_UTF8",
    3: "SHENHE_RULES_ERROR",
    4: "SHENHE_INVALID_POST",
    5: "SHENHE_BUFFER_TOO_SMALL",
    6: "SHENHE_INVALID_ARGUMENT",
    7: "SHENHE_PANIC",
    8: "SHENHE_IO_ERROR",
    9: "SHENHE_AUDIT_ERROR",
    10: "SHENHE_TOO_LARGE",
}
BATCH_TEXTS = 0
BATCH_POSTS_JSON = 1

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


class ShenheError(Exception):
    """A call failed: `status` is the C status name, the message is shenhe's."""

    def __init__(self, status, message):
        super().__init__(f"{STATUS_NAMES.get(status, status)}: {message}")
        self.status = STATUS_NAMES.get(status, status)


_LIBS = {}
_LIBS_LOCK = threading.Lock()


def find_library(lib_path=None, shipped_first=False):
    """The path of libshenhe.so: `lib_path`, else $SHENHE_LIB, else a copy shipped to this
    Spark executor with `addFile`, else one installed beside this package. On executors
    (`shipped_first`) the shipped copy comes first: the driver's path may not exist there."""
    candidates = [lib_path, os.environ.get("SHENHE_LIB")]
    try:
        from pyspark import SparkFiles

        shipped = SparkFiles.get(LIBRARY_NAME)
        candidates.insert(0 if shipped_first else 2, shipped)
    except Exception:  # no Spark, or no SparkContext in this process
        pass
    candidates.append(str(Path(__file__).with_name(LIBRARY_NAME)))
    for c in candidates:
        if c and os.path.isfile(c):
            return os.path.abspath(c)
    raise FileNotFoundError(
        f"{LIBRARY_NAME} not found: pass lib_path, set SHENHE_LIB, or build it with `cargo build --release`"
    )


def load_library(lib_path=None):
    """The loaded C library (loaded once per process and path)."""
    path = find_library(lib_path)
    with _LIBS_LOCK:
        lib = _LIBS.get(path)
        if lib is None:
            lib = _declare(ctypes.CDLL(path))
            _LIBS[path] = lib
        return lib


def _declare(lib):
    p = ctypes.c_void_p
    size = ctypes.c_size_t
    lib.shenhe_engine_new_bundled.argtypes = [ctypes.POINTER(p)]
    lib.shenhe_engine_new_from_path.argtypes = [ctypes.c_char_p, ctypes.POINTER(p)]
    lib.shenhe_engine_new_from_bytes.argtypes = [ctypes.c_char_p, size, ctypes.POINTER(p)]
    lib.shenhe_engine_free.argtypes = [p]
    lib.shenhe_engine_free.restype = None
    lib.shenhe_engine_ruleset_hash.argtypes = [p, ctypes.c_char_p, size, ctypes.POINTER(size)]
    lib.shenhe_scan_batch_jsonl.argtypes = [p, ctypes.c_int, p, p, p, size, size, p, ctypes.POINTER(p),
                                            ctypes.POINTER(size)]
    lib.shenhe_string_free.argtypes = [p]
    lib.shenhe_string_free.restype = None
    lib.shenhe_last_error.argtypes = [ctypes.c_char_p, size, ctypes.POINTER(size)]
    return lib


def _check(lib, status):
    if status != OK:
        buf = ctypes.create_string_buffer(4096)
        written = ctypes.c_size_t()
        lib.shenhe_last_error(buf, len(buf), ctypes.byref(written))
        raise ShenheError(status, buf.value.decode("utf-8", "replace"))


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
    """A compiled rule set (thread-safe). Use `Engine.cached(rules)` on executors."""

    def __init__(self, source=None, lib_path=None):
        self.source = RuleSource.of(source)
        self.lib = load_library(lib_path)
        handle = ctypes.c_void_p()
        if self.source.kind == "bundled":
            status = self.lib.shenhe_engine_new_bundled(ctypes.byref(handle))
        elif self.source.kind == "bytes":
            data = self.source.files[0][1]
            status = self.lib.shenhe_engine_new_from_bytes(data, len(data), ctypes.byref(handle))
        else:
            path = str(self.source.materialise()).encode()
            status = self.lib.shenhe_engine_new_from_path(path, ctypes.byref(handle))
        _check(self.lib, status)
        self.handle = handle
        buf = ctypes.create_string_buffer(128)
        written = ctypes.c_size_t()
        _check(self.lib, self.lib.shenhe_engine_ruleset_hash(handle, buf, len(buf), ctypes.byref(written)))
        self.ruleset_hash = buf.value.decode()

    def __del__(self):
        handle = getattr(self, "handle", None)
        if handle:
            self.lib.shenhe_engine_free(handle)
            self.handle = None

    _cache = {}
    _cache_lock = threading.Lock()

    @classmethod
    def cached(cls, rules=None, lib_path=None):
        """One engine per rule set and process (Spark reuses its Python workers across tasks,
        so the rules are compiled once per worker, not once per task)."""
        source = RuleSource.of(rules)
        key = (source.key, find_library(lib_path))
        with cls._cache_lock:
            engine = cls._cache.get(key)
            if engine is None:
                engine = cls(source, lib_path)
                cls._cache[key] = engine
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
            width = np.int32
        elif pa.types.is_large_string(column.type):
            width = np.int64
        else:
            raise TypeError(f"expected a string column, got {column.type}")
        n = len(column)
        if n == 0:
            return pa.RecordBatch.from_pylist([], schema=DECISION_SCHEMA)
        _, offsets_buf, data_buf = column.buffers()[:3]
        itemsize = np.dtype(width).itemsize
        offsets = np.frombuffer(offsets_buf, dtype=width, count=n + 1, offset=column.offset * itemsize)
        offsets = np.ascontiguousarray(offsets, dtype=np.uintp)
        valid = None
        if column.null_count:
            valid = np.ascontiguousarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=np.uint8)
        statuses = np.empty(n, dtype=np.int32)
        out = ctypes.c_void_p()
        out_len = ctypes.c_size_t()
        _check(self.lib, self.lib.shenhe_scan_batch_jsonl(
            self.handle,
            BATCH_POSTS_JSON if posts_json else BATCH_TEXTS,
            data_buf.address if data_buf is not None and data_buf.size else None,
            offsets.ctypes.data,
            valid.ctypes.data if valid is not None else None,
            n,
            threads,
            statuses.ctypes.data,
            ctypes.byref(out),
            ctypes.byref(out_len),
        ))
        try:
            lines = ctypes.string_at(out, out_len.value)
        finally:
            self.lib.shenhe_string_free(out)
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
            raise ShenheError(6, f"{n} entries gave {table.num_rows} decision lines")
        batch = table.combine_chunks().to_batches()[0]
        decided = pc.is_null(batch.column("error"))
        columns = {name: batch.column(name) for name in _LINE_SCHEMA.names}
        # Written only when true, or when not empty: false and [] for every decided post.
        columns["truncated"] = pc.if_else(decided, pc.fill_null(columns["truncated"], False), None)
        for name in ("masked_fields", "warnings"):
            col = columns[name]
            empty = pa.ListArray.from_arrays(np.zeros(n + 1, dtype=np.int32), pa.array([], col.type.value_type))
            columns[name] = pc.if_else(decided, pc.coalesce(col, empty), pa.nulls(n, col.type))
        columns["ruleset"] = pa.array([self.ruleset_hash] * n, pa.string())
        return pa.RecordBatch.from_arrays([columns[c] for c in DECISION_COLUMNS], schema=DECISION_SCHEMA)


def scan_arrow(column, rules=None, lib_path=None, posts_json=False, threads=1):
    """Decides every entry of a pyarrow string column (`pa.Array` or `pa.ChunkedArray`, slices
    and nulls welcome): the decision columns as a `pa.RecordBatch`, one row per entry, in
    order. `rules`: None (bundled), bytes of a rule file, or a path; the engine is cached per
    rule set and process."""
    return Engine.cached(rules, lib_path).decide(column, posts_json=posts_json, threads=threads)
