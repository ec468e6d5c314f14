"""python -m shenhe_spark rescan: rescans a Parquet or JSON Lines archive on a Spark master.

    python -m shenhe_spark rescan --input archive.jsonl --output decisions/ \\
        --rules rules/ --master 'local[*]' --flagged flagged/
    shenhe scan --rules rules/ -i <(cat flagged/part-*) -o flagged.jsonl \\
        --no-escalation --reports reports/ --audit audit.db
"""
import argparse
import json
import os
import sys
import time


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m shenhe_spark")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("rescan", help="rescan an archive; write the decision table as Parquet")
    r.add_argument("--input", "-i", required=True, help="Parquet file or directory, or JSON Lines posts")
    r.add_argument("--output", "-o", required=True, help="directory for the decision table (Parquet)")
    r.add_argument("--rules", help="rule file or directory (default: the bundled rules)")
    r.add_argument("--format", choices=["parquet", "jsonl"], help="input format (default: by file name)")
    r.add_argument("--master", default="local[*]", help="Spark master URL (default: local[*])")
    r.add_argument("--flagged", help="also write the flagged posts here as JSON Lines, for reports and audit")
    r.add_argument("--overwrite", action="store_true", help="replace existing output")
    for name in ("text", "id", "title", "board", "time", "poster"):
        r.add_argument(f"--{name}-col", help=f"Parquet column of the post's {name}")
    args = parser.parse_args(argv)

    if args.master.startswith("local"):
        # Local workers run this interpreter (with pyarrow), not whatever `python3` is first on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    from .spark import rescan

    spark = SparkSession.builder.master(args.master).appName("shenhe rescan").getOrCreate()
    columns = {f"{n}_col": getattr(args, f"{n}_col") for n in ("text", "id", "title", "board", "time", "poster")
               if getattr(args, f"{n}_col")}
    started = time.monotonic()
    try:
        counts = rescan(spark, args.input, args.output, args.rules, input_format=args.format,
                        flagged_path=args.flagged,
                        mode="overwrite" if args.overwrite else "errorifexists", **columns)
    finally:
        spark.stop()
    counts["seconds"] = round(time.monotonic() - started, 3)
    json.dump(counts, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
