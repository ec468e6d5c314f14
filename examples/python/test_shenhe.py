"""Tests the ctypes wrapper against the real library: python3 test_shenhe.py LIBSHENHE.so"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shenhe import Engine, ShenheError  # noqa: E402

lib = sys.argv[1]
engine = Engine.bundled(lib)
d = engine.scan({"id": "p1", "text": "出售冰*毒", "poster": {"user_id": "u1", "port": "abc"}})
assert d["id"] == "p1" and d["action"] == "delete" and d["report"] is True, d
assert d["hits"][0]["steps"] == ["noise"], d["hits"]
assert any(w.startswith("poster.port") for w in d["warnings"]), d["warnings"]
assert engine.scan_text("今天天气不错") == ("allow", False, 0)
assert engine.scan_text("賭博")[0] == "review"
assert len(engine.ruleset_hash()) == 64

try:
    engine.scan('{"id": 1}')
    raise AssertionError("a post without text must fail")
except ShenheError as e:
    assert e.status == "SHENHE_INVALID_POST" and "text" in str(e), e

try:
    Engine.from_toml(lib, '[[rule]]\nid = "x"\ncategory = 7\nseverity = "high"\nterms = [" "]\n')
    raise AssertionError("an empty term must fail")
except ShenheError as e:
    assert e.status == "SHENHE_RULES_ERROR" and "<input>:5:" in str(e), e

with tempfile.TemporaryDirectory() as tmp:
    rules = os.path.join(tmp, "r.toml")
    with open(rules, "w", encoding="utf-8") as f:
        f.write('[[rule]]\nid = "x"\ncategory = 8\nseverity = "low"\nterms = ["笨蛋"]\n')
    before = engine.ruleset_hash()
    engine.reload(rules)
    assert engine.ruleset_hash() != before
    assert engine.scan_text("你这个笨蛋") == ("mask", False, 1)
    try:
        engine.reload(os.path.join(tmp, "missing.toml"))
        raise AssertionError("a missing rule file must fail")
    except ShenheError as e:
        assert e.status == "SHENHE_RULES_ERROR", e
    assert engine.scan_text("你这个笨蛋") == ("mask", False, 1), "the old rules stay"
engine.close()
print("python wrapper: ok")
