#!/usr/bin/env bash
# The Arrow and Spark tests of shenhe_spark (part of the `shenhe` wheel): scan_arrow without
# Spark, then an end-to-end rescan of 100,000 generated posts in Spark local[2] checked post
# by post against `shenhe scan`. Needs Java (17+, for Spark). Shares target/py-venv with
# scripts/python-test.sh (scripts/python-venv.sh: the wheel from python/, and pyspark,
# pyarrow, pandas and numpy when missing); Spark's workers run that environment's Python,
# so they import the installed wheel. Uses the debug `shenhe` binary `cargo test` leaves,
# building it if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v java >/dev/null || { echo "spark-test: Java is needed (apt-get install default-jre-headless)" >&2; exit 2; }
source scripts/python-venv.sh python/requirements-spark.txt
CARGO_TARGET_DIR=$PWD/target cargo build --locked --bin shenhe
export SHENHE_BIN=${SHENHE_BIN:-$PWD/target/debug/shenhe}
export PYSPARK_PYTHON=$venv/bin/python
# From python/tests, not python/: the tests must import the installed wheel, not the sources.
cd python/tests
"$venv/bin/python" -W error::DeprecationWarning:shenhe_spark -m pytest -v -p no:cacheprovider test_arrow.py test_spark.py 2>&1 \
  | grep -v -e '^WARNING: Using incubator' -e 'WARN NativeCodeLoader'
