#!/usr/bin/env bash
# The Arrow and Spark tests of python/shenhe_spark: scan_arrow without Spark, then an
# end-to-end rescan of 100,000 generated posts in Spark local[2] checked post by post against
# `shenhe scan`. Needs Java (17+, for Spark); pyspark, pyarrow, pandas and numpy go into a
# virtual environment (target/spark-venv, reused) when missing. Uses the debug build that
# `cargo test` leaves (libshenhe.so and the shenhe binary), building it if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${SHENHE_SPARK_VENV:-$PWD/target/spark-venv}
command -v java >/dev/null || { echo "spark-test: Java is needed (apt-get install default-jre-headless)" >&2; exit 2; }
if ! "$venv/bin/python" -c "import pyspark, pyarrow, pandas, numpy" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --no-cache-dir --disable-pip-version-check -r python/requirements-test.txt
fi
cargo build --locked --lib --bin shenhe
export SHENHE_LIB=${SHENHE_LIB:-$PWD/target/debug/libshenhe.so}
export SHENHE_BIN=${SHENHE_BIN:-$PWD/target/debug/shenhe}
cd python
"$venv/bin/python" -W error::DeprecationWarning:shenhe_spark -m unittest -v tests.test_arrow tests.test_spark 2>&1 \
  | grep -v -e '^WARNING: Using incubator' -e 'WARN NativeCodeLoader'
