"""Tests the ctypes wrapper against the real library: python3 test_shenhe.py LIBSHENHE.so"""
import glob
import os
import sys
import tempfile
import threading

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
action, report, hits = engine.scan_text("你好，賭*博", hits=True)
assert [(h["rule"], h["start"], h["end"]) for h in hits] == [("gambling.mention", 3, 6)], hits
assert hits[0]["steps"] == (1 << 4) | (1 << 5), "賭*博 needed t2s and noise"
texts = ["出售冰毒", "今天天气不错", b"\xff\xfe", "賭博"]
batch = engine.scan_batch(texts)
assert batch[0] == ("delete", True) and batch[1] == ("allow", False), batch
assert isinstance(batch[2], ShenheError) and batch[2].status == "SHENHE_INVALID_UTF8", batch
assert batch[3][0] == engine.scan_text("賭博")[0], "the batch call agrees with one call per text"

with tempfile.TemporaryDirectory() as tmp:
    m = engine.moderator(os.path.join(tmp, "reports"), os.path.join(tmp, "audit.db"))
    d = m.moderate({"id": "r1", "text": "出售冰毒", "poster": {"user_id": "u1", "ip": "203.0.113.9"}})
    assert d["action"] == "delete" and d["report"] and not d.get("warnings"), d
    m.close()
    import sqlite3
    rows = sqlite3.connect(os.path.join(tmp, "audit.db")).execute("SELECT post_id, action FROM records").fetchall()
    assert rows == [('"r1"', "delete")], rows
    assert len(glob.glob(os.path.join(tmp, "reports", "report-*.json"))) == 1
    assert os.path.exists(os.path.join(tmp, "reports", "index.html"))

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

    # Reloads under load: four threads scan while the rules flip between two sets; every
    # decision comes from one whole rule set.
    other = os.path.join(tmp, "s.toml")
    with open(other, "w", encoding="utf-8") as f:
        f.write('[[rule]]\nid = "y"\ncategory = 8\nseverity = "high"\nterms = ["坏蛋"]\n')
    stop, bad, scans = threading.Event(), [], [0]

    def scanner():
        while not stop.is_set():
            d = engine.scan({"text": "笨蛋坏蛋"})
            rules = {h["rule"] for h in d["hits"]}
            if rules not in ({"x"}, {"y"}):
                bad.append(rules)
            scans[0] += 1

    threads = [threading.Thread(target=scanner) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(200):
        engine.reload(other if i % 2 == 0 else rules)
    stop.set()
    for t in threads:
        t.join()
    assert not bad and scans[0] > 0, (bad[:3], scans[0])
engine.close()
print("python wrapper: ok")
