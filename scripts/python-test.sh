#!/usr/bin/env bash
# The Python package (python/, PyO3): rustfmt and clippy of its crate, `pip install ./python`
# into target/py-venv (scripts/python-venv.sh), then pytest over python/tests/test_shenhe.py:
# decisions against `shenhe scan` (the debug binary `cargo test` leaves, built if missing),
# exceptions, two threads against one, the Pipeline's audit store against `audit verify`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=$PWD/target/python
(cd python && cargo fmt --check && cargo clippy --locked --all-targets -- -D warnings)
source scripts/python-venv.sh
CARGO_TARGET_DIR=$PWD/target cargo build --locked --bin shenhe
export SHENHE_BIN=${SHENHE_BIN:-$PWD/target/debug/shenhe}
"$venv/bin/python" -m pytest -q -p no:cacheprovider python/tests/test_shenhe.py
