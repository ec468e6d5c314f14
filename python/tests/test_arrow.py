"""scan_arrow without Spark: slices, nulls, string types, errors, and the same decisions as
the command line."""
import json
import os
import subprocess
import unittest
from pathlib import Path

import pyarrow as pa

import shenhe
from shenhe_spark import DECISION_SCHEMA, Engine, scan_arrow
from shenhe_spark.arrow import RuleSource

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("SHENHE_BIN", str(ROOT / "target/debug/shenhe"))
TEXTS = ["今天天气不错", "出售冰毒，有意私聊", "賭博网站", "ｄｕｂｏ", "平台独立运营"]


def actions(batch):
    return batch.column("action").to_pylist()


class ScanArrow(unittest.TestCase):
    def test_decisions_equal_the_command_line(self):
        posts = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in TEXTS)
        cli = subprocess.run([BIN, "scan", "-q", "--no-escalation"], input=posts.encode(), capture_output=True,
                             check=True).stdout.decode().splitlines()
        got = scan_arrow(pa.array(TEXTS)).to_pylist()
        self.assertEqual(len(got), len(TEXTS))
        for want, row in zip(map(json.loads, cli), got):
            self.assertEqual(row["action"], want["action"])
            self.assertEqual(row["report"], want["report"])
            self.assertEqual(row["categories"], want["categories"])
            self.assertEqual([(h["rule"], h["start"], h["end"], h["steps"]) for h in row["hits"]],
                             [(h["rule"], h["start"], h["end"], h["steps"]) for h in want["hits"]])
            self.assertEqual(row["masked"], want.get("masked"))
            self.assertEqual(row["ruleset"], want["ruleset"]["hash"])
        self.assertEqual(actions(scan_arrow(pa.array(TEXTS)))[:3], ["allow", "delete", "delete"])

    def test_slices_nulls_and_string_types(self):
        whole = pa.array(["x", "出售冰毒", None, "賭博网站", "今天天气不错", None])
        sliced = whole.slice(1, 4)
        batch = scan_arrow(sliced)
        self.assertEqual(batch.num_rows, 4)
        # A null text is not a post: an error and no decision, never allow.
        self.assertEqual(actions(batch), ["delete", None, "delete", "allow"])
        self.assertIsNone(batch.column("hits").to_pylist()[1])
        self.assertEqual(batch.column("error").null_count, 3)
        self.assertIn("null", batch.column("error").to_pylist()[1])
        self.assertEqual(scan_arrow(sliced.cast(pa.large_string())).to_pylist(), batch.to_pylist())
        chunked = pa.chunked_array([whole.slice(0, 2), whole.slice(2)])
        self.assertEqual(actions(scan_arrow(chunked)), actions(scan_arrow(whole)))
        self.assertEqual(scan_arrow(pa.array([], pa.string())).num_rows, 0)
        self.assertEqual(batch.schema, DECISION_SCHEMA)
        with self.assertRaises(TypeError):
            scan_arrow(pa.array([1, 2]))

    def test_offsets_in_a_slice_are_the_texts_own(self):
        texts = pa.array(["前缀很长的一段文字" * 3, "你好，出售冰毒"]).slice(1)
        hit = scan_arrow(texts).column("hits").to_pylist()[0][0]
        self.assertEqual((hit["char_start"], hit["char_end"], hit["matched"]), (3, 7, "出售冰毒"))
        self.assertEqual("你好，出售冰毒".encode()[hit["start"]:hit["end"]].decode(), "出售冰毒")

    def test_a_post_that_cannot_be_decided_gets_an_error_and_the_rest_are_decided(self):
        posts = pa.array(['{"id":1,"text":"出售冰毒"}', '{"id":2', None, json.dumps({"text": "字" * 400_000}),
                          '{"text":"赌博","poster":{"port":"x"}}'])
        batch = scan_arrow(posts, posts_json=True)
        self.assertEqual(actions(batch), ["delete", None, None, None, "review"])
        errors = batch.column("error").to_pylist()
        self.assertIsNone(errors[0])
        self.assertIn("EOF", errors[1])
        self.assertIn("null", errors[2])
        self.assertIn("max_post_bytes", errors[3])
        [warning] = batch.column("warnings").to_pylist()[4]
        self.assertTrue(warning.startswith("poster.port: ") and warning.endswith("ignored"), warning)

    def test_rules_from_bytes_and_their_errors(self):
        rules = b'[[rule]]\nid = "t.weather"\ncategory = 9\nseverity = "high"\nterms = ["\xe5\xa4\xa9\xe6\xb0\x94"]\n'
        batch = scan_arrow(pa.array(["今天天气不错", "出售冰毒"]), rules=rules)
        self.assertEqual(actions(batch), ["delete", "allow"])
        self.assertEqual(Engine.cached(rules), Engine.cached(RuleSource.of(rules)))
        with self.assertRaises(shenhe.RulesError) as e:
            scan_arrow(pa.array(["x"]), rules=b'[[rule]]\nid = "t"\ncategory = 10\nseverity = "high"\nterms = ["x"]\n')
        self.assertIn("<input>:3:", str(e.exception))
        self.assertEqual(e.exception.line, 3)


if __name__ == "__main__":
    unittest.main()
