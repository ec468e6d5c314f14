#!/usr/bin/env bash
# The Spark path against `shenhe scan` on the same archive: N generated posts (default
# 1,000,000) as JSON Lines and as Parquet, rescanned in Spark local[CORES] (default 2) and by
# `shenhe scan --threads CORES --no-escalation`, REPS times each (default 3, medians).
# Prints posts per second per core of each and their ratio: Spark warm (one session, the
# rescan alone, decision table written as Parquet), Spark cold (the whole
# `scripts/spark-rescan` command, JVM start included) and the CLI.
#
# Usage: scripts/bench-spark.sh [N] [REPS] [CORES]   (needs Java; builds the release library
# binary; the venv of scripts/spark-test.sh, with the shenhe wheel)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
reps=${2:-3}
cores=${3:-2}
cargo build --release --locked --quiet --bin shenhe
venv=${SHENHE_PY_VENV:-$PWD/target/py-venv}
"$venv/bin/python" -c "import pyspark, pyarrow, shenhe_spark" || { echo "run scripts/spark-test.sh first (it makes $venv)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 examples/make_posts.py --count "$n" --seed 7 > "$work/posts.jsonl"
cli=()
for _ in $(seq "$reps"); do
  t0=$(date +%s.%N)
  target/release/shenhe scan -q --threads "$cores" --no-escalation -i "$work/posts.jsonl" -o /dev/null
  t1=$(date +%s.%N)
  cli+=("$(python3 -c "print($t1 - $t0)")")
done
t0=$(date +%s.%N)
scripts/spark-rescan -i "$work/posts.jsonl" -o "$work/cold" --master "local[$cores]" >/dev/null 2>&1
t1=$(date +%s.%N)
cold=$(python3 -c "print($t1 - $t0)")
"$venv/bin/python" - "$work" "$n" "$reps" "$cores" "$cold" "${cli[*]}" <<'PY' 2> >(grep -v -e WARN -e log4j -e setLogLevel >&2)
import os, statistics, sys, time
work, n, reps, cores, cold, cli = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
from pyspark.sql import SparkSession
from shenhe_spark import rescan

spark = (SparkSession.builder.master(f"local[{cores}]").config("spark.ui.showConsoleProgress", "false")
         .getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
spark.read.json(f"{work}/posts.jsonl").write.parquet(f"{work}/posts.parquet")
times = {"jsonl": [], "parquet": []}
for i in range(reps + 1):
    for fmt, path in (("jsonl", f"{work}/posts.jsonl"), ("parquet", f"{work}/posts.parquet")):
        t = time.perf_counter()
        rescan(spark, path, f"{work}/out-{fmt}", mode="overwrite")
        if i:  # the first round warms the JVM and the Python workers
            times[fmt].append(time.perf_counter() - t)
spark.stop()
rate = lambda secs: n / secs / cores
cli_rate = rate(statistics.median(float(x) for x in cli.split()))
print(f"{n} posts, {cores} cores; posts/s per core (ratio to shenhe scan)")
print(f"  shenhe scan --threads {cores}:   {cli_rate:10.0f}")
for fmt in times:
    r = rate(statistics.median(times[fmt]))
    print(f"  spark warm, {fmt:8} input:  {r:10.0f}  ({r / cli_rate:.2f})")
r = rate(cold)
print(f"  spark cold, jsonl (command):  {r:10.0f}  ({r / cli_rate:.2f})")
PY
