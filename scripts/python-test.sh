#!/usr/bin/env bash
# The Python package (python/, PyO3): rustfmt and clippy of its crate, `pip install ./python`
# into target/py-venv (scripts/python-venv.sh), `pip wheel ./python` (an abi3 wheel), then
# pytest over python/tests/test_shenhe.py: decisions against `shenhe scan` (the debug
# binary `cargo test` leaves, built if missing), exceptions, two threads against one, the
# Pipeline's audit store against `audit verify`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=$PWD/target/python
(cd python && cargo fmt --check && cargo clippy --locked --all-targets -- -D warnings)
source scripts/python-venv.sh
# The wheel a user would ship: one abi3 wheel for every CPython from 3.9 (the build is
# the one just installed, so this only packs it).
rm -rf target/wheels
"$venv/bin/pip" wheel -q --no-deps --disable-pip-version-check -w target/wheels ./python
ls target/wheels/shenhe-*-cp39-abi3-*.whl >/dev/null || { echo "python-test: no abi3 wheel in target/wheels" >&2; exit 1; }
CARGO_TARGET_DIR=$PWD/target cargo build --locked --bin shenhe
export SHENHE_BIN=${SHENHE_BIN:-$PWD/target/debug/shenhe}
"$venv/bin/python" -m pytest -q -p no:cacheprovider python/tests/test_shenhe.py
