"""What a call from Python costs: `Engine.scan` from Python against `Engine::scan` in Rust on
the same posts (the 300 sample posts, bundled rules, one thread, best of 200 rounds each; the
Rust side runs before and after the Python side and keeps its best, so a machine busy with
something else for a while does not tilt the ratio).

    CARGO_TARGET_DIR=target/python target/py-venv/bin/python python/bench/overhead.py [POSTS.jsonl]
    (from the repository root, with the wheel installed: scripts/python-test.sh installs it)
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import shenhe

crate = Path(__file__).resolve().parents[1]
posts_path = Path(sys.argv[1]) if len(sys.argv) > 1 else crate.parent / "examples/posts.jsonl"
rounds = 200
lines = posts_path.read_text(encoding="utf-8").splitlines()
posts = [json.loads(line) for line in lines]
texts = [p["text"] for p in posts]
engine = shenhe.Engine()


def best(fn):
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times) * 1e9 / len(posts)


def dicts():
    for p in posts:
        engine.scan(p)


def strs():
    for t in texts:
        engine.scan(t)


def rust_best():
    out = subprocess.run(
        ["cargo", "run", "-q", "--release", "--locked", "--features", "pyo3/extension-module", "--example",
         "scan_rust", "--", str(posts_path), str(rounds)],
        cwd=crate, check=True, capture_output=True, text=True, env={**os.environ},
    )
    return [float(x) for x in out.stdout.split()]


rust = rust_best()
py_dict = best(dicts)
py_str = best(strs)
py_batch = best(lambda: engine.scan_batch(posts, threads=1))
rust, rust_lines = (min(a, b) for a, b in zip(rust, rust_best()))
print(f"{len(posts)} posts, ns per post (ratio to Rust Engine::scan)")
print(f"  Rust Engine::scan:                    {rust:8.0f}")
print(f"  Rust jsonl::scan_line (read + scan):  {rust_lines:8.0f}  ({rust_lines / rust:.2f}x)")
print(f"  Python Engine.scan(dict):             {py_dict:8.0f}  ({py_dict / rust:.2f}x)")
print(f"  Python Engine.scan(str):              {py_str:8.0f}  ({py_str / rust:.2f}x)")
print(f"  Python Engine.scan_batch(threads=1):  {py_batch:8.0f}  ({py_batch / rust:.2f}x)")
