"""End to end in Spark local[2]: a generated archive of 100,000 posts rescanned through
`rescan` (JSONL lines, and Parquet columns mapped to a post) must give, post by post, what
`shenhe scan --no-escalation` gives on the same posts; posts that cannot be decided give an
error column and never fail the task."""
import json
import os
import subprocess
import sys
import tempfile
import unittest
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.json as pajson
import pyarrow.parquet as pq

from shenhe_spark import rescan, scan_dataframe

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("SHENHE_BIN", str(ROOT / "target/debug/shenhe"))
RULES = str(ROOT / "rules")
POSTS = int(os.environ.get("SHENHE_SPARK_POSTS", "100000"))
# Lines `shenhe scan` cannot decide, or decides with a warning, appended to the archive.
ODD_LINES = [
    '{"id":"cut","text":"出售',
    '{"text":5}',
    json.dumps({"id": "big", "text": "字" * 400_000}),
    '{"id":"odd-port","text":"赌博","poster":{"user_id":"u1","port":"x"}}',
    '{"id":"no-text","title":"出售冰毒"}',
]
# The decision as `shenhe scan` writes it, without what a rescan does not carry.
COMPARED = ["action", "report", "categories", "severity", "hits", "masked", "masked_fields", "truncated",
            "warnings", "error"]


def normal(decision):
    """A decision in a form both sides share: absent lists empty, absent flags false."""
    if decision.get("error") is not None:
        return {"error": decision["error"]}
    out = {k: decision.get(k) for k in COMPARED}
    for k in ("masked_fields", "warnings"):
        out[k] = out[k] or []
    out["truncated"] = bool(out["truncated"])
    return out


class SparkRescan(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        # py4j leaves its gateway sockets to the garbage collector.
        warnings.simplefilter("ignore", ResourceWarning)
        from pyspark.sql import SparkSession

        cls.tmp = tempfile.TemporaryDirectory(prefix="shenhe-spark-test-")
        tmp = Path(cls.tmp.name)
        cls.archive = tmp / "archive.jsonl"
        posts = subprocess.run([sys.executable, str(ROOT / "examples/make_posts.py"), "--count", str(POSTS)],
                               capture_output=True, check=True).stdout
        cls.archive.write_bytes(posts + "\n".join(ODD_LINES).encode() + b"\n")
        expected = subprocess.run([BIN, "scan", "-q", "--no-escalation", "--rules", RULES, "-i", str(cls.archive)],
                                  capture_output=True, check=True).stdout.decode().splitlines()
        cls.lines = cls.archive.read_text().splitlines()
        assert len(expected) == len(cls.lines) == POSTS + len(ODD_LINES)
        cls.expected = [json.loads(e) for e in expected]
        cls.spark = (SparkSession.builder.master("local[2]").appName("shenhe-spark-test")
                     .config("spark.sql.shuffle.partitions", "2").config("spark.ui.enabled", "false")
                     .config("spark.ui.showConsoleProgress", "false")
                     .config("spark.sql.session.timeZone", "Asia/Shanghai").getOrCreate())
        cls.spark.sparkContext.setLogLevel("ERROR")

    @classmethod
    def tearDownClass(cls):
        cls.spark.stop()
        cls.tmp.cleanup()

    def test_jsonl_archive_equals_shenhe_scan_line_by_line(self):
        out = Path(self.tmp.name) / "jsonl-decisions"
        flagged = Path(self.tmp.name) / "jsonl-flagged"
        counts = rescan(self.spark, self.archive, out, RULES, flagged_path=flagged)
        table = pq.read_table(out)
        self.assertEqual(table.num_rows, len(self.lines))
        got = {}
        for row in table.to_pylist():
            got.setdefault(row.pop("post"), []).append(row)
        mismatches = 0
        for line, want in zip(self.lines, self.expected):
            rows = got[line]
            if normal(rows[0]) != normal(want):
                mismatches += 1
                if mismatches <= 3:
                    self.assertEqual(normal(rows[0]), normal(want), line)
            if "error" not in want:
                self.assertEqual(rows[0]["ruleset"], want["ruleset"]["hash"])
        self.assertEqual(mismatches, 0)
        want_flagged = sum(1 for d in self.expected if "error" not in d and (d["action"] != "allow" or d["report"]))
        want_errors = sum(1 for d in self.expected if "error" in d)
        self.assertEqual(counts, {"posts": len(self.lines), "flagged": want_flagged, "errors": want_errors})
        self.assertGreater(want_flagged, POSTS // 20)
        self.assertEqual(want_errors, 4)
        # The flagged export is the flagged posts' own lines, for `shenhe scan --reports --audit`.
        exported = [ln for f in sorted(flagged.glob("part-*")) for ln in f.read_text().splitlines()]
        self.assertEqual(len(exported), want_flagged)
        self.assertTrue(set(exported) <= set(self.lines))
        # The documented follow-up: shenhe turns them into report bundles and audit records.
        tmp = Path(self.tmp.name)
        (tmp / "flagged.jsonl").write_text("".join(line + "\n" for line in exported))
        reports, audit = tmp / "reports", tmp / "audit.db"
        subprocess.run([BIN, "scan", "-q", "--no-escalation", "--rules", RULES, "-i", str(tmp / "flagged.jsonl"),
                        "-o", str(tmp / "flagged-decisions.jsonl"), "--reports", str(reports), "--audit", str(audit)],
                       check=True)
        head = subprocess.run([BIN, "audit", "head", "--db", str(audit)], capture_output=True, check=True, text=True)
        self.assertEqual(int(head.stdout.split()[0]), want_flagged)
        subprocess.run([BIN, "audit", "verify", "--db", str(audit)], capture_output=True, check=True)
        want_reports = sum(1 for d in self.expected if d.get("report"))
        self.assertEqual(len(list(reports.glob("report-*.json"))), want_reports)

    def test_parquet_columns_mapped_to_posts_equal_shenhe_scan(self):
        good = self.archive.read_bytes().split(b"\n")[:POSTS]
        # Times with their offsets: timestamp columns, also inside the poster struct.
        stamp = pa.timestamp("s", tz="+08:00")
        poster = pa.struct([("user_id", pa.string()), ("name", pa.string()), ("verified", pa.bool_()),
                            ("ip", pa.string()), ("port", pa.int32()), ("registered", stamp),
                            ("identity_ref", pa.string())])
        schema = pa.schema([("id", pa.string()), ("board", pa.string()), ("time", stamp), ("title", pa.string()),
                            ("text", pa.string()), ("poster", poster)])
        table = pajson.read_json(pa.BufferReader(b"\n".join(good)),
                                 parse_options=pajson.ParseOptions(explicit_schema=schema))
        # The archive as a platform keeps it: other column names, a real timestamp column.
        table = table.rename_columns([{"id": "post_id", "text": "content"}.get(n, n) for n in table.column_names])
        parquet = Path(self.tmp.name) / "archive.parquet"
        pq.write_table(table, parquet, row_group_size=25_000)
        out = Path(self.tmp.name) / "parquet-decisions"
        counts = rescan(self.spark, parquet, out, RULES, text_col="content", id_col="post_id")
        self.assertEqual(counts["posts"], POSTS)
        self.assertEqual(counts["errors"], 0)
        got = {row["post_id"]: row for row in pq.read_table(out).to_pylist()}
        want = {d["id"]: d for d in self.expected[:POSTS]}
        self.assertEqual(set(got), set(want))
        diffs = [i for i in want if normal(got[i]) != normal(want[i])]
        self.assertEqual(diffs, [], diffs[:1] and (normal(got[diffs[0]]), normal(want[diffs[0]])))

    def test_executors_use_the_installed_wheel(self):
        import shenhe

        def on_executor(_):
            import shenhe as on_worker
            import shenhe_spark

            return on_worker.__file__, on_worker._shenhe.__file__, shenhe_spark.__file__

        [(package, extension, spark)] = self.spark.sparkContext.parallelize([0], 1).map(on_executor).collect()
        # The executor's Python imports the wheel from its environment: nothing is shipped.
        self.assertEqual(package, shenhe.__file__)
        self.assertTrue(extension.endswith(".abi3.so"), extension)
        self.assertIn("site-packages", spark)
        self.assertEqual(self.spark.sparkContext.listFiles, [])

    def test_spark_types_nulls_and_rules_as_bytes(self):
        from pyspark.sql.types import ArrayType, IntegerType, LongType, StructType

        rules = '[[rule]]\nid = "t.weather"\ncategory = 9\nseverity = "high"\nterms = ["天气"]\n'.encode()
        df = self.spark.createDataFrame([(1, "今天天气不错"), (2, None), (3, "出售冰毒")], "n long, text string")
        out = scan_dataframe(df, "text", rules)
        rows = sorted(out.collect(), key=lambda r: r.n)
        self.assertEqual([r.action for r in rows], ["delete", None, "allow"])
        self.assertIn("null", rows[1].error)
        self.assertEqual(rows[0].hits[0].char_start, 2)
        fields = {f.name: f.dataType for f in out.schema.fields}
        self.assertEqual(fields["categories"], ArrayType(IntegerType(), True))
        hit = fields["hits"].elementType
        self.assertIsInstance(hit, StructType)
        self.assertEqual(hit["start"].dataType, LongType())
        with self.assertRaises(ValueError):
            scan_dataframe(out, "text", rules)  # would overwrite decision columns


if __name__ == "__main__":
    unittest.main()
