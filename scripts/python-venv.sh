#!/usr/bin/env bash
# Sourced by scripts/python-test.sh and scripts/spark-test.sh: the virtual environment they
# share (target/py-venv, or $SHENHE_PY_VENV), with the `shenhe` wheel built from python/ and
# installed into it (`pip install ./python`, as a user does). The extension is built in
# release under target/python; when nothing changed since the last run cargo has nothing to
# do, so the second script of a CI run reinstalls in seconds instead of compiling again.
# Extra requirement files to install are the arguments.
venv=${SHENHE_PY_VENV:-$PWD/target/py-venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip=("$venv/bin/pip" install -q --no-cache-dir --disable-pip-version-check)
for req in python/requirements-test.txt "$@"; do
  # Installs only what is missing; pinned versions, so a run is repeatable.
  "$venv/bin/python" - "$req" <<'PY' || "${pip[@]}" -r "$req"
import sys
from importlib.metadata import PackageNotFoundError, version
for line in open(sys.argv[1]):
    name, _, want = line.split("#")[0].strip().partition("==")
    if name:
        try:
            assert version(name) == want
        except (PackageNotFoundError, AssertionError):
            sys.exit(1)
PY
done
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/python}
"${pip[@]}" --force-reinstall --no-deps ./python
