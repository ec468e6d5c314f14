"""A small ctypes wrapper over shenhe's C API (libshenhe.so), for forums written in Python.

    engine = Engine.bundled("target/release/libshenhe.so")
    decision = engine.scan({"id": "p1", "text": "出售冰毒"})   # the decision as a dict
    engine.reload("/etc/shenhe/rules")                       # atomic; old rules kept on error

Every call checks the status and raises ShenheError with shenhe's own message.
"""
import ctypes
import json

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
ACTIONS = ["allow", "mask", "review", "block", "delete"]


class ShenheError(Exception):
    """A call failed: `status` is the C status name, the message is shenhe's."""

    def __init__(self, status, message):
        super().__init__(f"{STATUS_NAMES.get(status, status)}: {message}")
        self.status = STATUS_NAMES.get(status, status)


class Hit(ctypes.Structure):
    """`shenhe_hit`: offsets into the scanned text (bytes and chars), category, rule."""
    _fields_ = [("start", ctypes.c_size_t), ("end", ctypes.c_size_t), ("char_start", ctypes.c_size_t),
                ("char_end", ctypes.c_size_t), ("category", ctypes.c_uint16), ("severity", ctypes.c_int),
                ("rule", ctypes.c_char_p), ("steps", ctypes.c_uint32)]


def _hits(lib, handle, text_index):
    """The hits of one text of a hits handle, as dicts with char offsets."""
    out = []
    for i in range(lib.shenhe_hits_count(handle, text_index)):
        h = Hit()
        _check(lib, lib.shenhe_hits_get(handle, text_index, i, ctypes.byref(h)))
        out.append({"rule": h.rule.decode(), "category": h.category, "start": h.char_start, "end": h.char_end,
                    "steps": h.steps})
    return out


def _load(path):
    lib = ctypes.CDLL(path)
    p_engine = ctypes.c_void_p
    lib.shenhe_engine_new_bundled.argtypes = [ctypes.POINTER(p_engine)]
    lib.shenhe_engine_new_from_path.argtypes = [ctypes.c_char_p, ctypes.POINTER(p_engine)]
    lib.shenhe_engine_new_from_bytes_with_base.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.POINTER(p_engine)]
    lib.shenhe_engine_reload_from_path.argtypes = [p_engine, ctypes.c_char_p]
    lib.shenhe_engine_free.argtypes = [p_engine]
    lib.shenhe_engine_free.restype = None
    lib.shenhe_engine_ruleset_hash.argtypes = [p_engine, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)]
    lib.shenhe_scan_json.argtypes = [p_engine, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)]
    lib.shenhe_string_free.argtypes = [ctypes.c_void_p]
    lib.shenhe_string_free.restype = None
    lib.shenhe_scan_text.argtypes = [p_engine, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_int),
                                     ctypes.POINTER(ctypes.c_bool), ctypes.POINTER(ctypes.c_size_t),
                                     ctypes.POINTER(ctypes.c_void_p)]
    lib.shenhe_scan_batch.argtypes = [p_engine, ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t), ctypes.c_size_t,
                                      ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_bool),
                                      ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_void_p)]
    lib.shenhe_hits_count.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    lib.shenhe_hits_count.restype = ctypes.c_size_t
    lib.shenhe_hits_get.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.POINTER(Hit)]
    lib.shenhe_hits_free.argtypes = [ctypes.c_void_p]
    lib.shenhe_hits_free.restype = None
    lib.shenhe_moderator_new.argtypes = [p_engine, ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.shenhe_moderate_json.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                         ctypes.POINTER(ctypes.c_void_p)]
    lib.shenhe_moderator_free.argtypes = [ctypes.c_void_p]
    lib.shenhe_last_error.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)]
    for name in ["shenhe_engine_new_bundled", "shenhe_engine_new_from_path", "shenhe_engine_new_from_bytes_with_base",
                 "shenhe_engine_reload_from_path", "shenhe_engine_ruleset_hash", "shenhe_scan_json",
                 "shenhe_scan_text", "shenhe_scan_batch", "shenhe_hits_get", "shenhe_moderator_new",
                 "shenhe_moderate_json", "shenhe_moderator_free", "shenhe_last_error"]:
        getattr(lib, name).restype = ctypes.c_int
    return lib


class Engine:
    """A compiled rule set; thread-safe (the C engine is), freed when closed or collected."""

    def __init__(self, lib, handle):
        self._lib = lib
        self._handle = handle

    @classmethod
    def bundled(cls, library):
        lib = _load(library)
        return cls(lib, cls._new(lib, lambda out: lib.shenhe_engine_new_bundled(out)))

    @classmethod
    def from_path(cls, library, path):
        lib = _load(library)
        return cls(lib, cls._new(lib, lambda out: lib.shenhe_engine_new_from_path(path.encode(), out)))

    @classmethod
    def from_toml(cls, library, toml, base_dir=None):
        lib = _load(library)
        data = toml.encode()
        base = base_dir.encode() if base_dir else None
        return cls(lib, cls._new(lib, lambda out: lib.shenhe_engine_new_from_bytes_with_base(data, len(data), base, out)))

    @staticmethod
    def _new(lib, call):
        handle = ctypes.c_void_p()
        _check(lib, call(ctypes.byref(handle)))
        return handle

    def scan(self, post):
        """Scans one post (a dict, or a JSON string); returns the decision as a dict."""
        data = (post if isinstance(post, str) else json.dumps(post, ensure_ascii=False)).encode()
        out = ctypes.c_void_p()
        _check(self._lib, self._lib.shenhe_scan_json(self._handle, data, len(data), ctypes.byref(out)))
        try:
            return json.loads(ctypes.string_at(out.value).decode())
        finally:
            self._lib.shenhe_string_free(out)

    def scan_text(self, text, hits=False):
        """The fast path: (action, report, number of hits) for a plain text; with
        `hits=True`, (action, report, list of hits with char offsets)."""
        data = text.encode()
        action, report, count = ctypes.c_int(), ctypes.c_bool(), ctypes.c_size_t()
        handle = ctypes.c_void_p()
        _check(self._lib, self._lib.shenhe_scan_text(self._handle, data, len(data), ctypes.byref(action),
                                                     ctypes.byref(report), ctypes.byref(count),
                                                     ctypes.byref(handle) if hits else None))
        if not hits:
            return ACTIONS[action.value], report.value, count.value
        try:
            return ACTIONS[action.value], report.value, _hits(self._lib, handle, 0)
        finally:
            self._lib.shenhe_hits_free(handle)

    def scan_batch(self, texts):
        """One call for many texts (an Arrow-like column): a list of (action, report)
        per text, or a ShenheError instance for a text that could not be scanned."""
        encoded = [t.encode() if isinstance(t, str) else t for t in texts]
        n = len(encoded)
        offsets = (ctypes.c_size_t * (n + 1))()
        for i, b in enumerate(encoded):
            offsets[i + 1] = offsets[i] + len(b)
        data = b"".join(encoded)
        actions, reports, statuses = (ctypes.c_int * n)(), (ctypes.c_bool * n)(), (ctypes.c_int * n)()
        _check(self._lib, self._lib.shenhe_scan_batch(self._handle, data, offsets, n, actions, reports,
                                                      statuses, None))
        return [(ACTIONS[actions[i]], reports[i]) if statuses[i] == OK
                else ShenheError(statuses[i], "text %d" % i) for i in range(n)]

    def moderator(self, reports_dir=None, audit_db=None):
        """The whole pipeline over this engine: escalation, reports, audit (see Moderator)."""
        return Moderator(self, reports_dir, audit_db)

    def reload(self, path):
        """Swaps in the rules at `path` atomically; on error the old rules stay."""
        _check(self._lib, self._lib.shenhe_engine_reload_from_path(self._handle, path.encode()))

    def ruleset_hash(self):
        buf = ctypes.create_string_buffer(65)
        n = ctypes.c_size_t()
        _check(self._lib, self._lib.shenhe_engine_ruleset_hash(self._handle, buf, 65, ctypes.byref(n)))
        return buf.value.decode()

    def close(self):
        if self._handle:
            self._lib.shenhe_engine_free(self._handle)
            self._handle = None

    def __del__(self):
        self.close()


class Moderator:
    """Engine + offence ledger + optional reports directory and audit store; sees the
    engine's reloads."""

    def __init__(self, engine, reports_dir=None, audit_db=None):
        self._lib = engine._lib
        self._handle = ctypes.c_void_p()
        _check(self._lib, self._lib.shenhe_moderator_new(engine._handle,
                                                         reports_dir.encode() if reports_dir else None,
                                                         audit_db.encode() if audit_db else None,
                                                         ctypes.byref(self._handle)))

    def moderate(self, post):
        """Moderates one post (dict or JSON string): the decision after escalation."""
        data = (post if isinstance(post, str) else json.dumps(post, ensure_ascii=False)).encode()
        out = ctypes.c_void_p()
        _check(self._lib, self._lib.shenhe_moderate_json(self._handle, data, len(data), ctypes.byref(out)))
        try:
            return json.loads(ctypes.string_at(out.value).decode())
        finally:
            self._lib.shenhe_string_free(out)

    def close(self):
        """Writes the reports index and frees the moderator."""
        if self._handle:
            handle, self._handle = self._handle, None
            _check(self._lib, self._lib.shenhe_moderator_free(handle))

    def __del__(self):
        self.close()


def _check(lib, status):
    if status != OK:
        buf = ctypes.create_string_buffer(1024)
        n = ctypes.c_size_t()
        lib.shenhe_last_error(buf, len(buf), ctypes.byref(n))
        raise ShenheError(status, buf.value.decode("utf-8", "replace"))
